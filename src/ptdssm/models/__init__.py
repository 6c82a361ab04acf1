"""Networks built from sequence mixers: :class:`SequenceModel`, residual blocks, heads, and the model factory."""

from .blocks import BLOCK_KINDS, MLP, NORMS, ChannelMix, ResidualBlock, RMSNorm
from .factory import build_model, make_layer
from .generation import generate, sample_next
from .heads import ClassificationHead, LastKHead, LMHead, RetrievalHead, TokenHead, gather_last_k, pool_sequence
from .sequence import HEADS, SequenceModel

__all__ = [
    "BLOCK_KINDS",
    "HEADS",
    "MLP",
    "NORMS",
    "ChannelMix",
    "ClassificationHead",
    "LMHead",
    "LastKHead",
    "RMSNorm",
    "ResidualBlock",
    "RetrievalHead",
    "SequenceModel",
    "TokenHead",
    "build_model",
    "gather_last_k",
    "generate",
    "make_layer",
    "pool_sequence",
    "sample_next",
]
