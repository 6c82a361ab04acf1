"""ptdssm: robust state-space sequence models (S4, S4D, S5 and their perturb-then-diagonalize variants)."""

from .theory.hippo import hippo, hippo_fout, hippo_lagt, hippo_legs, hippo_legs_nplr, hippo_legt
from .theory.init import INITS, SSMInit, ssm_init
from .theory.ptd import PTDResult, perturb_then_diagonalize

__version__ = "0.1.0"

__all__ = [
    "INITS",
    "PTDResult",
    "SSMInit",
    "hippo",
    "hippo_fout",
    "hippo_lagt",
    "hippo_legs",
    "hippo_legs_nplr",
    "hippo_legt",
    "perturb_then_diagonalize",
    "ssm_init",
    "__version__",
]
