"""Sequence layers: the family-neutral contract (:class:`SequenceMixer`), the LTI-SSM base (:class:`LTISSM`), the
families :class:`S4` (DPLR), :class:`S4D` (diagonal, incl. S4-PTD), :class:`S5` (MIMO, incl. S5-PTD), the
selective SSMs :class:`Mamba` and :class:`Mamba2`, :class:`LongConv` (explicit long convolutions), :class:`LRU`
(linear recurrent unit), the gated convolutional mixers :class:`H3` and :class:`Hyena`, :class:`SpaceTime`
(companion SSMs), and the one family table
(:mod:`ptdssm.layers.registry`)."""

from .h3 import H3
from .hyena import Hyena
from .long_conv import LongConv
from .lru import LRU
from .lti import LTISSM
from .mamba import Mamba
from .mamba2 import Mamba2
from .mixer import SequenceMixer
from .registry import (
    Family,
    build_layer,
    family_names,
    get_family,
    layer_kwargs,
    layer_kwargs_schema,
    register_family,
)
from .s4 import S4
from .s4d import S4D
from .s5 import S5
from .spacetime import SpaceTime

__all__ = ["H3", "Hyena", "LRU", "LTISSM", "LongConv", "Mamba", "Mamba2", "S4", "S4D", "S5", "SpaceTime", "Family",
           "SequenceMixer", "build_layer", "family_names", "get_family", "layer_kwargs", "layer_kwargs_schema",
           "register_family"]
