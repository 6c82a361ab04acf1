"""ptdssm: robust state-space sequence models (S4, S4D, S5 and their perturb-then-diagonalize variants) in one house
with every sequence family (Mamba-1/2, long convolutions, H3, Hyena, LRU, SpaceTime): one mixer contract
(:class:`SequenceMixer`) and one family registry (:func:`register_family`)."""

from . import optim
from .config import Config, load_config
from .data import register_task
from .layers import (
    H3,
    LRU,
    LTISSM,
    S4,
    S4D,
    S5,
    Hyena,
    LongConv,
    Mamba,
    Mamba2,
    SequenceMixer,
    SpaceTime,
    family_names,
    register_family,
)
from .models import SequenceModel, build_model, generate
from .theory.basis import hippo_basis
from .theory.hippo import hippo, hippo_fout, hippo_lagt, hippo_legs, hippo_legs_nplr, hippo_legt
from .theory.init import INITS, SSMInit, ssm_init
from .theory.ptd import PTDResult, perturb_then_diagonalize
from .theory.transfer import (
    output_l2_error,
    paper_systems,
    sup_norm,
    transfer_analysis,
    transfer_function,
    transfer_function_diagonal,
    transfer_function_dplr,
)

__version__ = "0.2.0"

__all__ = [
    "S4",
    "S4D",
    "S5",
    "Mamba",
    "Mamba2",
    "LongConv",
    "LRU",
    "H3",
    "Hyena",
    "SpaceTime",
    "LTISSM",
    "SequenceMixer",
    "family_names",
    "register_family",
    "register_task",
    "Config",
    "SequenceModel",
    "build_model",
    "generate",
    "load_config",
    "optim",
    "INITS",
    "PTDResult",
    "SSMInit",
    "hippo",
    "hippo_basis",
    "hippo_fout",
    "hippo_lagt",
    "hippo_legs",
    "hippo_legs_nplr",
    "hippo_legt",
    "perturb_then_diagonalize",
    "output_l2_error",
    "paper_systems",
    "sup_norm",
    "transfer_analysis",
    "transfer_function",
    "transfer_function_diagonal",
    "transfer_function_dplr",
    "ssm_init",
    "__version__",
]
