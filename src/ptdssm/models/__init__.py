"""Networks built from sequence mixers: :class:`SequenceModel`, residual blocks, heads, and the model factory."""

from .blocks import BLOCK_KINDS, MLP, ChannelMix, ResidualBlock
from .factory import build_model, make_layer
from .heads import ClassificationHead, LastKHead, LMHead, RetrievalHead, TokenHead, gather_last_k, pool_sequence
from .sequence import HEADS, SequenceModel

__all__ = [
    "BLOCK_KINDS",
    "HEADS",
    "MLP",
    "ChannelMix",
    "ClassificationHead",
    "LMHead",
    "LastKHead",
    "ResidualBlock",
    "RetrievalHead",
    "SequenceModel",
    "TokenHead",
    "build_model",
    "gather_last_k",
    "make_layer",
    "pool_sequence",
]
