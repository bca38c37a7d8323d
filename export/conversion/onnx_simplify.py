"""Removes the glue tf2onnx writes around recurrent ops (LSTM, GRU, RNN) that ORT runs as
separate small kernels.

A Keras recurrent layer over a dynamic batch becomes, in tf2onnx's graph, the fused op
plus (1) a zero initial state built at run time for the batch (Shape, Slice, Concat,
Expand, Unsqueeze, Concat, ...), which is what the op does when the state input is left
out, and (2) for ``return_sequences=False``, the last step of each direction cut out of
the full output ``Y`` by a Slice and a Squeeze per axis, which is the op's second output
``Y_h``. Measured on `handwriting_rows`' BiLSTM(64) (ORT fp32, 1 thread, batch 1,
interleaved medians of 40 x 200 calls): 82.6 µs as converted, 79.5 µs without the
zero-state glue, 74.6 µs with the last steps read from ``Y_h`` too; same outputs.

Two more for layers that return sequences: (3) a bidirectional layer's ``Y`` (T, 2, B, H)
cut into its two directions (a Slice and a Squeeze each) and concatenated on the feature
axis is one Transpose and a Reshape (folding the batch-major Transpose that usually
follows); (4) a Dense layer over a sequence, which tf2onnx writes as Tensordot (a Reshape
to (B*T, K) and back, both shapes computed at run time by ten Shape / Gather / ReduceProd
/ Concat ops), is one MatMul, which multiplies leading axes the same way. Measured on
``speech_ctc`` / ``handwriting_ctc`` (two BiLSTMs and a Dense head; 41 nodes become 19):
outputs identical (max |diff| 0.0 on 20 test inputs), and ORT at 1 thread, batch 1,
interleaved medians of 25 rounds of 0.1 s, new / old: fp32 0.944 / 0.968, dynamic range
0.966 / 0.935 (a one-off script, 2026-12-02).

The rewrites hold by construction, not by pattern: a state is dropped only when every
value it can take is a constant zero moved by data-preserving ops; a slice chain is
replaced only when it selects exactly one direction's final step (no ``sequence_lens``,
where ``Y_h`` and ``Y``'s last row would differ), or both whole directions in order; a
Tensordot only when following its shape ops symbolically (:func:`_symbolic`) proves both
shapes are the input's. Anything else is left as it is.
"""

from __future__ import annotations

import numpy as np

RECURRENT = {"LSTM": (5, 6), "GRU": (5,), "RNN": (5,)}  # op -> its initial-state inputs
# ops whose output holds only values of these inputs (rearranged, repeated or cast)
_MOVES_DATA = {"Concat": None, "Unsqueeze": (0,), "Squeeze": (0,), "Reshape": (0,),
               "Transpose": (0,), "Identity": (0,), "Expand": (0,), "Tile": (0,),
               "Cast": (0,)}
_INT_MAX = 2**31 - 1


def simplify_recurrent(graph) -> dict[str, int]:
    """Rewrites ``graph`` (an ``onnx.GraphProto``) in place; returns what it changed:
    ``{"zero_states": n, "final_steps": n, "directions_merged": n,
    "matmuls_unflattened": n, "nodes_removed": n}``."""
    from onnx import numpy_helper

    fed = {i.name for i in graph.input}  # an initializer listed as an input is a default
    constants = {t.name: t for t in graph.initializer if t.name not in fed}
    for node in graph.node:
        if node.op_type == "Constant":
            value = _attribute(node, "value")  # a TensorProto (value_float etc. are not)
            if value is not None:
                constants[node.output[0]] = value
    producer = {o: n for n in graph.node for o in n.output}

    def const(name):
        return numpy_helper.to_array(constants[name]) if name in constants else None

    zero_states, memo = 0, {}
    for node in graph.node:
        for k in RECURRENT.get(node.op_type, ()):
            if len(node.input) > k and node.input[k] and _all_zero(node.input[k], const,
                                                                   producer, memo):
                node.input[k] = ""  # an omitted initial state is zeros
                zero_states += 1
    final_steps = sum(_read_final_steps(graph, node, const)
                      for node in list(graph.node) if node.op_type in RECURRENT)
    before = len(graph.node)
    matmuls = _flat_matmuls(graph, const)
    _remove_dead(graph)  # the Shape ops that fed the flattening, before the merges
    merged = sum(_merge_directions(graph, node, const)
                 for node in list(graph.node) if node.op_type in RECURRENT)
    _remove_dead(graph)
    return {"zero_states": zero_states, "final_steps": final_steps,
            "directions_merged": merged, "matmuls_unflattened": matmuls,
            "nodes_removed": before - len(graph.node)}


def _all_zero(name, const, producer, memo, depth: int = 0) -> bool:
    """Whether every value ``name`` can take is a constant zero (memoised per name)."""
    if name not in memo:
        memo[name] = _zero_by_construction(name, const, producer, memo, depth)
    return memo[name]


def _zero_by_construction(name, const, producer, memo, depth) -> bool:
    value = const(name)
    if value is not None:
        return not np.any(value)
    node = producer.get(name)
    if node is None or depth > 64:
        return False  # a graph input, or too deep to be glue
    if node.op_type == "ConstantOfShape":
        from onnx import numpy_helper

        value = _attribute(node, "value")  # zeros when absent
        return value is None or not np.any(numpy_helper.to_array(value))
    if node.op_type not in _MOVES_DATA:
        return False
    index = _MOVES_DATA[node.op_type]
    data = node.input if index is None else [node.input[i] for i in index]
    return all(_all_zero(i, const, producer, memo, depth + 1) for i in data if i)


def _attribute(node, name, default=None):
    from onnx import helper

    a = next((a for a in node.attribute if a.name == name), None)
    return default if a is None else helper.get_attribute_value(a)


def _read_final_steps(graph, node, const) -> int:
    """Replaces each Slice/Squeeze chain on ``Y`` that ends in one direction's final step
    ``(batch, hidden)`` by ``Gather(Y_h, direction)``; returns how many it replaced."""
    from onnx import helper, numpy_helper

    if len(node.input) > 4 and node.input[4]:
        return 0  # sequence_lens: Y_h is each sequence's own last step
    if _attribute(node, "layout", 0) != 0:
        return 0  # batch-major Y (B, T, dirs, H): not the axes followed here
    direction = _direction(node)
    directions = 2 if direction == "bidirectional" else 1
    consumers = _consumers(graph)
    # (tensor, remaining axes of Y: 0 time, 1 direction, 2 batch, 3 hidden, selections)
    todo = [(node.output[0], [0, 1, 2, 3], {})] if node.output and node.output[0] else []
    finals = []
    while todo:
        name, axes, chosen = todo.pop()
        for user in consumers.get(name, []):
            if user.input[0] != name:  # Y must be what is sliced, not a parameter
                continue
            step = _follow(user, axes, chosen, const, directions)
            if step is None:
                continue
            axes2, chosen2 = step
            if axes2 == [2, 3] and set(chosen2) == {0, 1}:
                d = chosen2[1] % directions if chosen2[1] < 0 else chosen2[1]
                reverse = direction == "reverse" or (directions == 2 and d == 1)
                last = chosen2[0] == -1
                if d < directions and (chosen2[0] == 0 if reverse else last):
                    finals.append((user, d))
            else:
                todo.append((user.output[0], axes2, chosen2))
    if not finals:
        return 0
    if len(node.output) < 2 or not node.output[1]:
        while len(node.output) < 2:
            node.output.append("")
        node.output[1] = f"{node.name or node.output[0]}_Y_h"
    for user, d in finals:
        index = f"{node.output[1]}_direction_{d}"
        if index not in {t.name for t in graph.initializer}:
            graph.initializer.append(numpy_helper.from_array(np.array(d, np.int64), index))
        # in place: the graph's other node objects (the caller's loop) stay valid
        user.CopyFrom(helper.make_node("Gather", [node.output[1], index], [user.output[0]],
                                       axis=0, name=f"{user.name or user.output[0]}_from_Y_h"))
    return len(finals)


def _direction(node) -> str:
    direction = _attribute(node, "direction", b"forward")
    return direction.decode() if isinstance(direction, bytes) else direction


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _merge_directions(graph, node, const) -> int:
    """Replaces ``Concat([Y[:, 0], Y[:, 1]], axis=-1)`` of a bidirectional op, each
    direction cut out of ``Y`` (T, 2, B, H) by a Slice and a Squeeze, by
    ``Reshape(Transpose(Y, (0, 2, 1, 3)), (0, 0, -1))``: the same (T, B, 2H) values in the
    same order, forward then backward; returns how many it replaced."""
    from onnx import helper, numpy_helper

    if _attribute(node, "layout", 0) != 0 or not node.output or not node.output[0]:
        return 0
    if _direction(node) != "bidirectional":
        return 0
    y = node.output[0]
    consumers = _consumers(graph)
    outputs = {o.name for o in graph.output}
    # every tensor that is one whole direction of Y (T, B, H), and which direction
    whole, todo = {}, [(y, [0, 1, 2, 3], {})]
    while todo:
        name, axes, chosen = todo.pop()
        for user in consumers.get(name, []):
            if user.input[0] != name:
                continue
            step = _follow(user, axes, chosen, const, 2)
            if step is None:
                continue
            if step[0] == [0, 2, 3] and set(step[1]) == {1} and step[1][1] in (0, 1):
                whole[user.output[0]] = step[1][1]
            elif 0 in step[0] and 3 in step[0] and 0 not in step[1]:
                todo.append((user.output[0], *step))
    merged = 0
    for concat in {id(n): n for name in whole for n in consumers.get(name, [])}.values():
        if (concat.op_type != "Concat" or _attribute(concat, "axis") not in (2, -1)
                or [whole.get(i) for i in concat.input] != [0, 1]):
            continue
        stem, out, perm = concat.name or concat.output[0], concat.output[0], [0, 2, 1, 3]
        users = consumers.get(out, [])
        if (out not in outputs and len(users) == 1 and users[0].op_type == "Transpose"
                and list(_attribute(users[0], "perm", [])) == [1, 0, 2]):
            # then batch-major (B, T, 2H): one Transpose of Y (2, 0, 1, 3) instead of two
            perm, out = [2, 0, 1, 3], users[0].output[0]
            graph.node.remove(users[0])
        shape = f"{stem}_merged_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64),
                                                         shape))
        at = list(graph.node).index(concat)  # after Y's producer: the graph is in order
        graph.node.insert(at, helper.make_node("Transpose", [y], [f"{stem}_transposed"],
                                               perm=perm, name=f"{stem}_transposed"))
        concat.CopyFrom(helper.make_node("Reshape", [f"{stem}_transposed", shape], [out],
                                         name=f"{stem}_merged"))
        merged += 1
    return merged


def _flat_matmuls(graph, const) -> int:
    """Replaces ``Reshape(MatMul(Reshape(X, (prod(X.shape[:-1]), K)), W), X.shape[:-1] +
    (N,))`` (tf2onnx's Tensordot, a Dense layer over a sequence) by ``MatMul(X, W)``, which
    multiplies the leading axes the same way; only where both shapes are proven so by
    following the Shape ops that build them (:func:`_symbolic`). Returns how many."""
    from onnx import helper

    consumers = _consumers(graph)
    producer = {o: n for n in graph.node for o in n.output}  # after the other rewrites
    done = 0
    for node in list(graph.node):
        if node.op_type != "MatMul":
            continue
        users = consumers.get(node.output[0], [])
        flat = producer.get(node.input[0])
        weight = const(node.input[1])
        if (len(users) != 1 or users[0].op_type != "Reshape" or flat is None
                or flat.op_type != "Reshape" or weight is None or weight.ndim != 2
                or _attribute(flat, "allowzero", 0) or _attribute(users[0], "allowzero", 0)):
            continue
        memo: dict = {}
        x_shape = _shape_of(flat.input[0], producer)
        flat_shape = _symbolic(flat.input[1], const, producer, memo)
        out_shape = _symbolic(users[0].input[1], const, producer, memo)
        if x_shape is None or len(x_shape) < 2 or flat_shape is None or out_shape is None:
            continue
        lead = x_shape[:-1]
        if (flat_shape != [_product(lead), x_shape[-1]]
                or out_shape != [*lead, (int(weight.shape[1]), ())]):
            continue
        users[0].CopyFrom(helper.make_node("MatMul", [flat.input[0], node.input[1]],
                                           [users[0].output[0]],
                                           name=f"{node.name or node.output[0]}_unflattened"))
        done += 1
    return done


# A shape value followed symbolically: a list of dims (or one dim for a scalar), each a
# monomial (integer coefficient, sorted symbols), where symbol (tensor, axis) is that
# tensor's dim at run time; or a _ShapeOf, the whole shape of a tensor of unknown rank.
class _ShapeOf(str):
    """``Shape(tensor)``: its dims are the symbols (tensor, 0), (tensor, 1), ..."""


def _product(dims) -> tuple:
    coef, symbols = 1, []
    for c, s in dims:
        coef *= c
        symbols += s
    return coef, tuple(sorted(symbols))


def _dim(tensor: str, axis: int) -> tuple:
    return 1, ((tensor, axis),)


def _shape_of(name, producer) -> list | None:
    """The symbolic dims of tensor ``name`` where its rank is known: the output of a
    Transpose has its perm's rank (its input's dims permuted)."""
    node = producer.get(name)
    if node is not None and node.op_type == "Transpose":
        perm = _attribute(node, "perm")
        if perm is not None:
            return [_dim(node.input[0], int(a)) for a in perm]
    return None


def _symbolic(name, const, producer, memo, depth: int = 0):
    """The value of an integer tensor built from constants and Shape ops (see above);
    None where it cannot be followed."""
    if name in memo:
        return memo[name]
    value = const(name)
    out = None
    if value is not None:
        if value.dtype.kind in "iu" and value.ndim <= 1:
            out = ([(int(v), ()) for v in value.tolist()] if value.ndim
                   else (int(value), ()))
    elif depth < 32 and name in producer:
        out = _symbolic_op(producer[name], const, producer, memo, depth + 1)
    memo[name] = out
    return out


def _symbolic_op(node, const, producer, memo, depth):
    op = node.op_type
    if op == "Shape":
        if len(node.attribute):  # start / end
            return None
        return _shape_of(node.input[0], producer) or _ShapeOf(node.input[0])
    args = [_symbolic(i, const, producer, memo, depth) if i else None for i in node.input]
    if not args or args[0] is None:
        return None
    x = args[0]
    if op == "Cast" and _attribute(node, "to") in (6, 7):  # int32 / int64: dims survive
        return x
    if op == "Gather" and len(args) == 2 and args[1] is not None \
            and _attribute(node, "axis", 0) == 0 and isinstance(x, list | _ShapeOf):
        index = args[1]
        picks = index if isinstance(index, list) else [index]
        if any(s or c < 0 or (isinstance(x, list) and c >= len(x)) for c, s in picks):
            return None  # symbolic or negative indices: not followed
        # a Shape's dims exist wherever the graph runs: Gather fails on an index past them
        chosen = [_dim(x, c) if isinstance(x, _ShapeOf) else x[c] for c, _ in picks]
        return chosen if isinstance(index, list) else chosen[0]
    if isinstance(x, _ShapeOf):
        return None
    if op == "ReduceProd" and isinstance(x, list) and len(node.input) == 1 \
            and list(_attribute(node, "axes", [0])) in ([0], [-1]):
        prod = _product(x)
        return [prod] if _attribute(node, "keepdims", 1) else prod
    if op == "Unsqueeze" and not isinstance(x, list) and len(args) == 2 \
            and args[1] == [(0, ())]:
        return [x]
    if op == "Concat" and _attribute(node, "axis") in (0, -1) and all(
            isinstance(a, list) for a in args):
        return [d for a in args for d in a]
    return None


def _follow(node, axes, chosen, const, directions: int):
    """Where a Slice selecting one index of an axis, or a Squeeze of selected axes, takes
    the (axes, selections) of its input; None for anything else. A single direction's
    axis may be squeezed unselected (tf2onnx's forward layers): it is direction 0."""
    rank = len(axes)
    if node.op_type == "Slice" and len(node.input) >= 4:
        starts, ends, which = (const(i) for i in node.input[1:4])
        steps = np.ones(1) if len(node.input) < 5 or not node.input[4] else const(
            node.input[4])
        if starts is None or ends is None or which is None or steps is None or np.any(
                steps != 1) or not (starts.ndim == ends.ndim == which.ndim == 1) or not (
                len(starts) == len(ends) == len(which)):
            return None
        chosen = dict(chosen)
        for s, e, a in zip(starts.tolist(), ends.tolist(), which.tolist(), strict=True):
            a = a + rank if a < 0 else a
            if not 0 <= a < rank or axes[a] in chosen:
                return None
            if s == -1 and e >= _INT_MAX:
                chosen[axes[a]] = -1
            elif s >= 0 and e == s + 1:
                chosen[axes[a]] = s
            else:
                return None
        return list(axes), chosen
    if node.op_type == "Squeeze":
        which = (const(node.input[1]) if len(node.input) > 1 and node.input[1]
                 else _attribute(node, "axes"))
        if which is None:
            return None
        drop = {int(a) + rank if int(a) < 0 else int(a) for a in np.atleast_1d(which)}
        if not all(0 <= a < rank for a in drop):
            return None
        chosen = dict(chosen)
        for a in drop:
            if axes[a] == 1 and 1 not in chosen and directions == 1:
                chosen[1] = 0
            elif axes[a] not in chosen:
                return None
        return [ax for i, ax in enumerate(axes) if i not in drop], chosen
    return None


def _remove_dead(graph) -> None:
    """Drops nodes none of whose outputs is used, then unused initializers."""
    outputs = {o.name for o in graph.output}
    while True:
        used = outputs | _inputs_used(graph)
        dead = [n for n in graph.node if not any(o in used for o in n.output if o)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    keep = outputs | _inputs_used(graph) | {i.name for i in graph.input}
    for t in [t for t in graph.initializer if t.name not in keep]:
        graph.initializer.remove(t)


def _inputs_used(graph) -> set[str]:
    """Every tensor name read by a node of ``graph`` or of its subgraphs (a Loop body
    may read an outer value without naming it as an input)."""
    used = set()
    for n in graph.node:
        used.update(i for i in n.input if i)
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                used |= _inputs_used(g)
                used |= {o.name for o in g.output}
    return used
