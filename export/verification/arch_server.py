"""Runs a bundle's artifacts inside an emulated root, on request (see export.verification.arch).

Self-contained: the root's Python runs it with numpy, onnxruntime and ai-edge-litert and
nothing of lstm-zoo. It reads one JSON request a line on stdin and answers one JSON line on
the descriptor its parent names: ``{"artifact": PATH, "format": "tflite"|"onnx", "feeds":
NPZ, "count": N, "out": NPZ}`` runs N feeds (``"{i}/{input}"`` in the feeds file) and writes
the outputs (``"{i}/{output}"``); the answer is ``{"ok": true}`` or ``{"error": TEXT}``.
``{"reset": true}`` lets go of every loaded artifact (a process kept for the next bundle).
Every artifact runs as the host runners run it (export.verification.runtime): one thread,
the CPU provider, and LiteRT's variable tensors zeroed before each call.
"""

import json
import os
import platform
import sys

import numpy as np


def _litert(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()

    def run(feeds):
        interpreter.reset_all_variables()  # each call is a new sequence (as LiteRTRunner)
        return dict(runner(**feeds))

    return run


def _onnx(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(names, feeds), strict=True))


def _versions():
    from importlib.metadata import version

    import ai_edge_litert
    import onnxruntime

    del ai_edge_litert, onnxruntime  # imported to fail here, not on the first request
    return {"machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "onnxruntime": version("onnxruntime"),
            "ai-edge-litert": version("ai-edge-litert")}


def _serve(answer):
    loaded = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("reset"):  # the next bundle's: what is loaded is let go
            loaded.clear()
            answer({"ok": True})
            continue
        try:
            key = (request["format"], request["artifact"])
            if key not in loaded:
                loaded[key] = (_litert if key[0] == "tflite" else _onnx)(key[1])
            run = loaded[key]
            out = {}
            with np.load(request["feeds"]) as data:
                feeds = {}
                for name in data.files:
                    i, _, inp = name.partition("/")
                    feeds.setdefault(int(i), {})[inp] = data[name]
            for i in range(request["count"]):
                for name, value in run(feeds[i]).items():
                    out[f"{i}/{name}"] = np.asarray(value)
            np.savez(request["out"], **out)
            answer({"ok": True})
        except Exception as e:  # answered, not raised: the host turns it into its error
            answer({"error": f"{type(e).__name__}: {e}"})


def main():
    # the answers get a descriptor of their own: the runtimes print to stdout
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(obj):
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    try:
        answer({"ok": True, "versions": _versions()})
    except Exception as e:
        answer({"error": f"{type(e).__name__}: {e}"})
        return
    _serve(answer)


if __name__ == "__main__":
    main()
