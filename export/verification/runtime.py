"""One Runner interface over Keras, LiteRT and ONNX Runtime, and bundles loaded from disk.

A Runner is a callable ``runner(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]``
with ``backend``, ``input_names`` and ``output_names``: the same interface as
:class:`zoo.graphs.KerasGraph`, so task code (greedy decoding, classification) runs on
every backend through identical code. LiteRT runs through ``ai_edge_litert`` (the
runtime devices use), not ``tf.lite``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export.verification.manifest import read_manifest
from zoo.errors import ArgumentError, ArtifactError, ShapeError, UnsupportedError
from zoo.weights import sha256_of

BACKENDS = ("keras", "litert", "onnx")
FORMAT_OF_BACKEND = {"litert": "tflite", "onnx": "onnx"}


class FeedCheck:
    """Validates a graph's feeds: names, ranks, static dims, dtypes and finiteness; returns
    them as contiguous arrays of the graph's dtypes. Built once per graph: a decoder step
    is called ~10,000 times per parity check, and checking with ``np.issubdtype`` per call
    cost 30-40 µs of a ~100 µs step (measured, 4 inputs). Finiteness is read off one dot
    product per input (NaN and infinity make it non-finite; so can a finite value whose
    square overflows, which the exact element test then clears): a float64 sum per input
    was 7.8 µs of an 18 µs LiteRT step call with three inputs (measured, ``kws_lstm``)."""

    def __init__(self, inputs: list[dict], where: str):
        self.where = where
        self.names = [i["name"] for i in inputs]
        self._names = set(self.names)
        self._specs = [(i["name"], tuple(i["shape"]), len(i["shape"]),
                        tuple((a, d) for a, d in enumerate(i["shape"]) if d is not None),
                        np.dtype(i["dtype"]), np.dtype(i["dtype"]).kind in "iu")
                       for i in inputs]

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict:
        if feeds.keys() != self._names:
            raise ShapeError(f"{self.where}: expected inputs {self.names}, got "
                             f"{sorted(feeds)}")
        out = {}
        for name, shape, rank, static, want, integer in self._specs:
            x = feeds[name]
            if type(x) is not np.ndarray:
                x = np.asarray(x)
            if x.ndim != rank:
                self._bad_shape(name, x, shape)
            dims = x.shape
            for a, d in static:
                if dims[a] != d:
                    self._bad_shape(name, x, shape)
            if x.dtype is want:  # the usual case, and the kind is the graph's
                if not (integer or math.isfinite(np.vdot(x, x)) or np.isfinite(x).all()):
                    self._not_finite(name)
                out[name] = x if x.flags.c_contiguous else np.ascontiguousarray(x)
                continue
            kind = x.dtype.kind
            if integer:
                if kind not in "iu":
                    raise ShapeError(f"{self.where}: input {name!r} must be integer ids; "
                                     f"got dtype {x.dtype}")
                limits = np.iinfo(want)
                if x.size and (x.min() < limits.min or x.max() > limits.max):
                    raise ShapeError(f"{self.where}: input {name!r} holds ids outside "
                                     f"{want}'s range [{limits.min}, {limits.max}]")
                out[name] = np.ascontiguousarray(x, dtype=want)
                continue
            if kind not in "fiu":
                raise ShapeError(f"{self.where}: input {name!r} must be numeric; got "
                                 f"{x.dtype}")
            # tested as the graph receives it: a float64 value beyond float32's range
            # arrives as infinity
            x = np.ascontiguousarray(x, dtype=want)
            # a finite sum of squares has no NaN or infinity in it (the exact test only if
            # the sum is not finite: a square may overflow)
            if not math.isfinite(np.vdot(x, x)) and not np.isfinite(x).all():
                self._not_finite(name)
            out[name] = x
        return out

    def _bad_shape(self, name, x, shape):
        dims = ", ".join("?" if d is None else str(d) for d in shape)
        raise ShapeError(f"{self.where}: input {name!r} has shape {x.shape}; expected ({dims})")

    def _not_finite(self, name):
        raise ShapeError(f"{self.where}: input {name!r} holds NaN or infinite values")


def _same_inputs(path: Path, names, inputs: list[dict]) -> None:
    """An :class:`ArtifactError` naming ``path`` when the graph in it takes other inputs
    than the manifest lists (an artifact of another graph or bundle)."""
    listed = sorted(i["name"] for i in inputs)
    if sorted(names) != listed:
        raise ArtifactError(f"{path} takes inputs {sorted(names)}; the manifest lists "
                            f"{listed} (an artifact of another graph or bundle)")


class LiteRTRunner:
    """A .tflite graph on the LiteRT interpreter (batch 1; the time axis resizes).

    Safe to call from several threads at once: calls take turns on the one interpreter
    (a lock; the input checks run outside it), which is not thread-safe (a call sets its
    input tensors, invokes, reads its outputs, and the fused LSTM keeps its state in
    between). An interpreter per thread, the other way, did no better for its memory:
    from 8 threads, 0.82x the lock's throughput on ``bilstm_activity`` and 1.10x on
    ``lstm_forecaster_co2`` (medians of per-round ratios, ``python -m benchmarks.threads``
    on 2 shared cores), and 4.9 MB more RSS for the seven more interpreters.
    """

    backend = "litert"

    def __init__(self, path: str | Path, inputs: list[dict], threads: int = 1):
        self.path = Path(path)
        self.inputs = inputs
        self.threads = threads
        self._interpreter = _Interpreter(self.path, threads)
        _same_inputs(self.path, tuple(self._interpreter.runner.get_input_details()), inputs)
        self.input_names = tuple(i["name"] for i in inputs)
        self.output_names = tuple(self._interpreter.runner.get_output_details())
        self._check = FeedCheck(inputs, str(self.path))
        self._lock = threading.Lock()

    def __call__(self, feeds):
        feeds = self._check(feeds)
        batch = next(iter(feeds.values())).shape[0]
        if batch != 1:
            raise ShapeError(f"{self.path}: TFLite graphs run batch 1; got batch {batch}")
        return self._run(feeds)

    def _run(self, feeds: dict) -> dict:
        with self._lock:
            return self._interpreter(feeds)


class _Interpreter:
    """One LiteRT interpreter of a graph, for one thread at a time: a call sets its input
    tensors, invokes and reads its outputs, and another thread's call in between would
    mix them."""

    def __init__(self, path: Path, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()  # variable tensors need buffers to be reset
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            raise ArtifactError(f"LiteRT cannot load {path}: {e}") from None
        self.direct = _DirectSignature.of(self.interpreter, self.runner,
                                          tuple(self.runner.get_input_details()))

    def __call__(self, feeds: dict) -> dict:
        # The fused LSTM op keeps its h/c state in variable tensors that persist across
        # invocations (they are only zeroed on allocation), so a second call with the same
        # shape would start from the previous call's final state. Each call is a new
        # sequence: zero them first.
        self.interpreter.reset_all_variables()
        if self.direct is not None:
            return self.direct(feeds)
        return dict(self.runner(**feeds))


class _DirectSignature:
    """A signature's tensors set, invoked and read through the interpreter's own wrapper,
    resizing an input (and re-planning the allocation) only when its shape changes.
    LiteRT's ``SignatureRunner`` resizes every input and re-plans on every call: 3.6 µs of
    a 9 µs step-graph call with three inputs (measured, ``kws_lstm`` dynamic), and a
    streamed keyword or a generated text is hundreds of such calls. It reads the
    signature runner's private fields (ai-edge-litert 2.3); :meth:`of` returns ``None``
    where they are missing or the signature's inputs are not the manifest's, and the
    runner keeps the signature runner. It owns the interpreter's input shapes: whatever
    else resizes them must go through it (a failed call forgets the shapes it knew)."""

    def __init__(self, wrapper, subgraph: int, inputs: dict, outputs: list):
        self._wrapper, self._subgraph = wrapper, subgraph
        self._inputs, self._outputs = inputs, outputs
        self._shapes: dict[str, tuple] = {}

    @classmethod
    def of(cls, interpreter, signature_runner, input_names):
        try:
            wrapper = interpreter._interpreter
            subgraph = int(signature_runner._subgraph_index)
            inputs = {n: int(i) for n, i in signature_runner._inputs.items()}
            outputs = [(n, int(i)) for n, i in signature_runner._outputs]
            methods = (wrapper.ResizeInputTensor, wrapper.AllocateTensors, wrapper.SetTensor,
                       wrapper.Invoke, wrapper.GetTensor)
        except (AttributeError, TypeError, ValueError):
            return None
        if set(inputs) != set(input_names) or not all(map(callable, methods)):
            return None
        return cls(wrapper, subgraph, inputs, outputs)

    def __call__(self, feeds: dict) -> dict:
        w, g = self._wrapper, self._subgraph
        if any(self._shapes.get(n) != x.shape for n, x in feeds.items()):
            self._shapes = {}  # unknown until the new allocation succeeds
            for n, x in feeds.items():
                w.ResizeInputTensor(self._inputs[n], np.array(x.shape, np.int32), False, g)
            w.AllocateTensors(g)
            self._shapes = {n: x.shape for n, x in feeds.items()}
        try:
            for n, x in feeds.items():
                w.SetTensor(self._inputs[n], x, g)
            w.Invoke(g)
        except Exception:
            self._shapes = {}  # resize and re-plan on the next call
            raise
        return {n: w.GetTensor(i, g) for n, i in self._outputs}


class ORTRunner:
    """An .onnx graph on ONNX Runtime's CPU provider."""

    backend = "onnx"

    def __init__(self, path: str | Path, inputs: list[dict], threads: int = 1):
        import onnxruntime as ort

        self.path = Path(path)
        self.inputs = inputs
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        _no_external_data(self.path)
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf types
            raise ArtifactError(f"ONNX Runtime cannot load {self.path}: {e}") from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        _same_inputs(self.path, self.input_names, inputs)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._fetch = list(self.output_names)
        self._check = FeedCheck(inputs, str(self.path))

    def __call__(self, feeds):
        feeds = self._check(feeds)
        # named outputs: with None, ORT lists the graph's output names again on every call
        return dict(zip(self.output_names, self.session.run(self._fetch, feeds), strict=True))


def _no_external_data(path: Path) -> None:
    """Refuses an .onnx file with a tensor whose data lives in another file: ONNX Runtime
    would read it from beside the model (it refuses one outside the model's folder,
    measured with ORT 1.31), a file no manifest lists and no sha256 checks. The exporter
    never writes external data (a bundle's .onnx files are under 2 GiB)."""
    import onnx
    from google.protobuf.message import DecodeError, Message

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as e:
        raise ArtifactError(f"ONNX Runtime cannot load {path}: not an ONNX model "
                            f"({str(e)[:200]})") from None
    stack: list = [model]  # every message: graphs, functions, attributes, subgraphs
    while stack:
        message = stack.pop()
        if (isinstance(message, onnx.TensorProto)
                and message.data_location == onnx.TensorProto.EXTERNAL):
            raise ArtifactError(f"{path}: tensor {message.name[:80]!r} keeps its data in "
                                "another file (ONNX external data); a bundle's artifacts hold "
                                "their own")
        for field, value in message.ListFields():
            if isinstance(value, Message):
                stack.append(value)
            elif field.type == field.TYPE_MESSAGE:
                stack.extend(value)


def _self_contained_h5(path: Path) -> None:
    """Refuses a weights file with an HDF5 link to another file or to a path in it, or a
    dataset stored in other files (external or virtual): h5py would follow them to files
    no manifest lists. Keras writes none of them."""
    import h5py

    found: list[str] = []

    def link(name, target):
        if not isinstance(target, h5py.HardLink):
            found.append(f"{name} ({type(target).__name__})")

    def dataset(name, obj):
        if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
            found.append(f"{name} (stored in other files)")

    try:
        with h5py.File(path, "r") as f:
            f.visititems_links(link)
            f.visititems(dataset)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        # h5py raises RuntimeError ("Link visitation failed"), ValueError or KeyError, not
        # only OSError, for a damaged file it opened (measured: bit flips in the weights)
        raise ArtifactError(f"{path}: not a readable HDF5 weights file ({e})") from None
    if found:
        raise ArtifactError(f"{path}: {found[0][:120]} points outside the file; a bundle's "
                            "weights hold their own data")


class Bundle:
    """An exported model on disk: manifest, artifacts, the reference Keras weights.

    Opening one reads only ``manifest.json`` and the files it lists, after checking the
    manifest (:func:`export.verification.manifest.read_manifest`: bounded, its schema and
    ``format_version``, every path inside the bundle); with ``check_files``, every listed
    file's size and sha256 too. Nothing in a bundle is executed as Python: a zoo model is
    rebuilt by its registered builder, a user's from a layer config checked layer by layer.
    """

    def __init__(self, path: str | Path, *, check_files: bool = True):
        if not isinstance(path, (str, Path)):
            raise ArtifactError(f"a bundle is a folder path; got {type(path).__name__}")
        self.path = Path(path)
        self._loaded: dict[tuple[str, str], dict] = {}  # predict's runners (_graphs)
        self._loading = threading.Lock()
        self.manifest: dict[str, Any] = read_manifest(self.path)
        if check_files:
            self.check_files()

    @property
    def model_name(self) -> str:
        return self.manifest["model"]

    @property
    def meta(self) -> dict:
        return self.manifest["meta"]

    @property
    def is_user_model(self) -> bool:
        """A user's own model (export_keras), rebuilt from its bundle, not the registry."""
        return self.manifest["task"] == "user"

    @property
    def task(self):
        from zoo.tasks import get_task

        return get_task(self.manifest["task"]).for_meta(self.meta)

    @property
    def artifacts(self) -> list[dict]:
        return self.manifest["artifacts"]

    def precisions(self, fmt: str) -> list[str]:
        return sorted({a["precision"] for a in self.artifacts if a["format"] == fmt})

    def check_files(self) -> None:
        """Every file the manifest lists exists with its recorded size and sha256 (the
        size first: a file of another size is not read)."""
        for entry in self._entries():
            path = self.path / entry["file"]
            try:
                if not path.is_file():
                    raise ArtifactError(f"{path} is listed in the manifest but missing (or not "
                                        "a regular file)")
                size = path.stat().st_size
                if size != entry["size"]:
                    raise ArtifactError(f"{path} is {size} bytes; the manifest says "
                                        f"{entry['size']} (truncated or replaced)")
                if sha256_of(path) != entry["sha256"]:
                    raise ArtifactError(f"{path}: sha256 differs from the manifest (corrupt or "
                                        "replaced)")
            except OSError as e:  # a name too long, a file that cannot be read
                raise ArtifactError(f"{self.path}: cannot read the listed file "
                                    f"{entry['file'][:120]!r}: {e.strerror or e}") from None

    def file(self, name: str) -> Path:
        """The path of ``name``, a file the manifest lists (only those are read)."""
        if not any(entry["file"] == name for entry in self._entries()):
            raise ArtifactError(f"{self.path}: {name} is not listed in the manifest (a "
                                "bundle's files are read only when listed, with their sha256)")
        return self.path / name

    def _entries(self) -> list[dict]:
        return [*self.artifacts, self.manifest["reference"], *self.manifest.get("files", ())]

    def graph_inputs(self, graph: str) -> list[dict]:
        return next(g for g in self.manifest["graphs"] if g["name"] == graph)["inputs"]

    def runners(self, backend: str, precision: str = "fp32", threads: int = 1) -> dict:
        """``{graph_name: Runner}`` for ``backend`` ("keras", "litert", "onnx")."""
        if backend == "keras":
            from zoo.graphs import KerasGraph, graph_models

            model = self.keras_model()
            return {n: KerasGraph(m) for n, m in graph_models(self.spec(model), model).items()}
        if backend not in FORMAT_OF_BACKEND:
            raise UnsupportedError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
        fmt = FORMAT_OF_BACKEND[backend]
        runner = LiteRTRunner if backend == "litert" else ORTRunner
        found = {a["graph"]: a for a in self.artifacts
                 if a["format"] == fmt and a["precision"] == precision}
        if not found:
            raise UnsupportedError(f"{self.path} has no {fmt} artifacts at precision "
                                   f"{precision!r}; it has {self.precisions(fmt) or 'none'}")
        return {g: runner(self.path / a["file"], self.graph_inputs(g), threads)
                for g, a in found.items()}

    def spec(self, model=None):
        """The spec the bundle was exported with (a user bundle's is derived from its
        Keras model: pass it when it is built already)."""
        if self.is_user_model:
            from export.user.spec import bundle_spec

            return bundle_spec(self, model)
        from zoo.registry import get_spec

        return get_spec(self.model_name)

    def keras_model(self):
        ref = self.manifest["reference"]
        weights = self.file(ref["file"])
        _self_contained_h5(weights)
        if self.is_user_model:
            from export.user.spec import bundle_model

            return bundle_model(self.manifest, weights)
        from zoo.registry import create_model

        return create_model(self.model_name, weights=weights, **ref["config"])

    def predict(self, inputs, *, backend: str = "litert", precision: str = "fp32"):
        """Task predictions for a list of inputs (sequences, or words for G2P), one each.

        A string is refused, not wrapped: ``predict("zoo")`` would be three one-letter
        inputs to a sequence of characters, and one word is ``predict(["zoo"])``.

        Raises:
            ArgumentError: ``inputs`` is a string, not a list, tuple or array, or empty.
            ShapeError: an input the task does not take (``inputs[i]: ...``), checked as
                ``predict`` checks a user's input, before any artifact is loaded.
        """
        if isinstance(inputs, (str, bytes)):
            raise ArgumentError(f"inputs must be a list (one prediction per input); got a "
                                f"{type(inputs).__name__}: for one, pass [{inputs!r}]")
        if not isinstance(inputs, (list, tuple, np.ndarray)) or (
                isinstance(inputs, np.ndarray) and inputs.ndim == 0):  # (a list may be ragged)
            raise ArgumentError(f"inputs must be a list, tuple or array of inputs; got "
                                f"{type(inputs).__name__}")
        if len(inputs) == 0:
            raise ArgumentError("inputs is empty; give at least one input")
        task, meta = self.task, self.meta
        for i, x in enumerate(inputs):
            task.check_input(x, meta, f"inputs[{i}]")
        return task.predict(self._graphs(backend, precision), inputs, meta)

    def _graphs(self, backend: str, precision: str) -> dict:
        """:meth:`runners` for ``predict``, made on its first call and kept: every call and
        every thread shares them (a LiteRT runner's calls take turns on its interpreter;
        an ONNX Runtime session runs calls from several threads at once, as its
        maintainers state: microsoft/onnxruntime#114, #5558; a Keras graph is one
        tf.function). Made per call, they were most of it: ``predict`` of one
        ``lstm_forecaster_co2`` input took 718 µs on LiteRT and 4,085 µs on ONNX Runtime,
        34 and 56 µs with them kept (measured, 200 and 2,000 calls). Made under a lock:
        sessions created at once race in ONNX Runtime (microsoft/onnxruntime#27089)."""
        key = (backend, precision)
        graphs = self._loaded.get(key)
        if graphs is None:
            with self._loading:
                graphs = self._loaded.get(key)
                if graphs is None:
                    graphs = self._loaded[key] = self.runners(backend, precision)
        return graphs


def load_bundle(path: str | Path) -> Bundle:
    """Opens a bundle directory and checks its manifest and every file it lists (see
    :class:`Bundle`; docs/export-and-parity.md, "A bundle from a stranger").

    Raises:
        ArgumentError: ``path`` is not a str or a path.
        ArtifactError: not a bundle, or a file that is not what the manifest says.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"load_bundle takes a bundle directory (a str or a path); got "
                            f"{path!r} ({type(path).__name__})")
    return Bundle(path)
