"""Did the recurrence survive conversion as fused ops? An artifact's op counts against the
recurrent directions its Keras graph holds (:func:`fusion_report`, recorded per artifact in
``manifest.json``)."""

from __future__ import annotations

from pathlib import Path

from export.conversion import onnx as onnx_export
from export.conversion import tflite as tflite_export

# Recurrent cells a format has no fused op for: their layers become a loop there, which is
# accepted (and said so) rather than failed. Measured, TF 2.21: TFLite's converter fuses
# only Keras' LSTM; a GRU becomes a WHILE loop (ONNX has a GRU op, which tf2onnx emits).
NO_FUSED_OP = {"tflite": {"GRU": "TFLite has no fused GRU op: its converter writes a WHILE "
                                 "loop (TF 2.21)"}}


def fusion_report(fmt: str, path: Path, expected: dict[str, int], recurrent: str,
                  expectation: dict | None = None) -> dict:
    """Whether every recurrent direction became a fused op and nothing became a loop
    (``all_fused``), and whether the artifact is as it must be (``as_expected``): also
    true when the only recurrent cells are ones the format has no fused op for
    (:data:`NO_FUSED_OP`) and they became loops (``loop_reason`` says why), or, given
    an ``expectation`` (:attr:`zoo.registry.GraphSpec.fusion`), when the artifact holds
    exactly the fused directions it names and loops where it says they must."""
    if fmt == "tflite":
        ops = tflite_export.op_counts(path)
        fused = {"LSTM": 0, "GRU": 0, "other": 0}
        for op, (kind, n) in tflite_export.FUSED_OPS.items():
            fused[kind] += n * ops.get(op, 0)
        loops = {op: ops[op] for op in tflite_export.LOOP_OPS if op in ops}
    else:
        ops = onnx_export.op_counts(path)
        fused = onnx_export.recurrent_directions(path)
        loops = {op: ops[op] for op in onnx_export.LOOP_OPS if op in ops}
    loop_reason = None
    if recurrent in ("step", "unrolled"):
        # A single cell step (the recurrence is driven by the host), or a recurrence
        # unrolled over a fixed number of steps: neither a loop nor a sequence op.
        ok = not loops and not any(fused.values())
        expected_ok = ok
    else:
        ok = not loops and all(fused[k] == expected[k] for k in expected)
        unfusable = {k: why for k, why in NO_FUSED_OP.get(fmt, {}).items() if expected.get(k)}
        expected_ok = ok
        if expectation is not None:
            expected_ok = (all(fused[k] == n for k, n in
                               expectation["fused_directions"].items())
                           and bool(loops) == expectation["loops"])
            loop_reason = expectation["loop_reason"]
        elif not ok and unfusable and loops and all(
                fused[k] == (0 if k in unfusable else expected[k]) for k in expected):
            expected_ok, loop_reason = True, "; ".join(unfusable.values())
    return {"ops": ops, "expected_directions": expected, "fused_directions": fused,
            "loops": loops, "all_fused": ok, "as_expected": expected_ok,
            "loop_reason": loop_reason}
