"""lstm-zoo export: convert zoo models to LiteRT and ONNX bundles, run them, prove parity.

Running a bundle (``load_bundle``, the LiteRT and ONNX Runtime runners) does not import
TensorFlow; converting and verifying does. The names below load on first use.

Example:
    >>> from export import export_model, load_bundle  # doctest: +SKIP
    >>> report = export_model("bilstm_activity", "out/bilstm")  # doctest: +SKIP
    >>> load_bundle("out/bilstm").predict([x], backend="onnx")  # doctest: +SKIP
"""

from zoo.lazy import lazy_attributes

_LAZY = {
    "ExportConfig": "export.config",
    "FORMATS": "export.config",
    "export_keras": "export.user.pipeline",
    "PRECISIONS": "export.pipeline",
    "export_model": "export.pipeline",
    "verify_bundle": "export.pipeline",
    "Bundle": "export.verification.runtime",
    "load_bundle": "export.verification.runtime",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
