"""SSM layers: :class:`S4` (DPLR), :class:`S4D` (diagonal, incl. S4-PTD) and :class:`S5` (MIMO, incl. S5-PTD)."""

from .base import SSMLayer
from .s4 import S4
from .s4d import S4D
from .s5 import S5

__all__ = ["S4", "S4D", "S5", "SSMLayer"]
