"""lstm-zoo export: convert zoo models to LiteRT and ONNX bundles, run them, prove parity.

Example:
    >>> from export import export_model, load_bundle  # doctest: +SKIP
    >>> report = export_model("bilstm_activity", "out/bilstm")  # doctest: +SKIP
    >>> load_bundle("out/bilstm").predict(x, backend="onnx")  # doctest: +SKIP
"""

from export.pipeline import FORMATS, PRECISIONS, export_model
from export.runtime import Bundle, load_bundle

__all__ = ["FORMATS", "PRECISIONS", "Bundle", "export_model", "load_bundle"]
