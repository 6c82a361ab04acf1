"""Networks built from SSM layers: :class:`SequenceModel`, heads, and the model factory."""

from .factory import MODEL_LAYERS, build_model, make_ssm_layer
from .heads import ClassificationHead, RetrievalHead
from .sequence import Mixer, ResidualBlock, SequenceModel, pool_sequence

__all__ = [
    "MODEL_LAYERS",
    "ClassificationHead",
    "Mixer",
    "ResidualBlock",
    "RetrievalHead",
    "SequenceModel",
    "build_model",
    "make_ssm_layer",
    "pool_sequence",
]
