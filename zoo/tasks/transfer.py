"""Fine-tuning's weight transfer: a parent model's weights copied into a model built for
new data, layer by layer (by name), and the output symbols two vocabularies share.

Each task's :meth:`~zoo.tasks.base.Task.transfer` calls these (:mod:`zoo.finetune` runs
it); they read and write Keras weights only.
"""

from __future__ import annotations


def transfer_layers(parent, model, head, keep_normalization: bool = False) -> dict[str, str]:
    """Copies weights from ``parent`` into ``model`` layer by layer (by name), except the
    ``head`` layers and (unless ``keep_normalization``) the normalisation (adapted to the
    new data instead). A weight whose shape changed (the first layer's input kernel, for
    data with another number of features) keeps its fresh initialisation.

    Returns:
        ``{layer: "all" | "partial: kept fresh <weights>"}`` for the layers copied.
    """
    done = {}
    for layer in model.layers:
        if layer.name in head or not layer.weights or (
                layer.name == "normalize" and not keep_normalization):
            continue
        source = parent.get_layer(layer.name).get_weights()
        target = layer.get_weights()
        fresh = [w.name for w, s, t in zip(layer.weights, source, target, strict=True)
                 if s.shape != t.shape]
        layer.set_weights([s if s.shape == t.shape else t
                           for s, t in zip(source, target, strict=True)])
        done[layer.name] = "all" if not fresh else "partial: kept fresh " + ", ".join(fresh)
    return done


def transfer_symbols(parent, model, parent_alphabet: str, alphabet: str) -> str:
    """The new CTC output layer (``logits``) starts from the parent's columns for the blank
    and for every symbol both alphabets share; other symbols keep their fresh
    initialisation."""
    kernel, bias = parent.get_layer("logits").get_weights()
    new_kernel, new_bias = model.get_layer("logits").get_weights()
    pairs = [(0, 0)] + [(i + 1, parent_alphabet.index(ch) + 1)
                        for i, ch in enumerate(alphabet) if ch in parent_alphabet]
    for new, old in pairs:
        new_kernel[:, new], new_bias[new] = kernel[:, old], bias[old]
    model.get_layer("logits").set_weights([new_kernel, new_bias])
    return (f"partial: the blank and {len(pairs) - 1} of {len(alphabet)} symbols from the "
            "parent")


def transfer_symbol_prefix(parent, model, layers) -> dict[str, str]:
    """The target symbols the parent knew keep their weights: the first rows of the
    target embedding, the first columns of the projection (the vocabulary extends the
    parent's); new symbols keep their fresh initialisation."""
    done = {}
    for name in layers:
        source, target = parent.get_layer(name).get_weights(), model.get_layer(name).get_weights()
        old = source[0].shape[0 if name == "target_embedding" else -1]
        out = []
        for s, t in zip(source, target, strict=True):
            t = t.copy()
            if name == "target_embedding":
                t[:old] = s
            else:  # projection kernel (units, V) and bias (V,)
                t[..., :old] = s
            out.append(t)
        model.get_layer(name).set_weights(out)
        new = target[0].shape[0 if name == "target_embedding" else -1] - old
        done[name] = f"partial: {old} symbols from the parent, {new} new"
    return done
