"""lstm-zoo: registered tf_keras builders for the LSTM family, with pretrained weights.

Example:
    >>> import zoo
    >>> model = zoo.create_model("bilstm_activity_tiny", num_classes=3)
    >>> model.output_shape
    (None, 3)
"""

import zoo.model_dir  # noqa: F401  (registers fine-tuned model directories' resolvers)
from zoo.registry import (
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    register_family_loader,
    register_model,
)


def _import_families() -> None:
    import zoo.models  # noqa: F401  (each family registers its models on import)


register_family_loader(_import_families)

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model"]
__version__ = "0.1.0"
