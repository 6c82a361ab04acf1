"""Pure tensor kernels of the sequence layers: discretization, Vandermonde / Cauchy / DPLR kernels, FFT convolution,
scans.

Everything here is a plain function of tensors (no ``nn.Module``), device-agnostic and differentiable. Each module
carries its plain-definition reference (``*_ref``: explicit powers, dense matrices, one step at a time or direct
sums) beside the fast path; ``tests/kernels/test_<module>.py`` compares them in float64 (outputs and gradients).
Ready-made SSM kernels from continuous parameters: :func:`s4d_kernel` (diagonal) and :func:`s4_kernel` (DPLR).
Explicit long convolutions with the Squash/Smooth regularizers: :mod:`~ptdssm.kernels.long_conv`; the LRU map:
:func:`lru_forward`. H3's shift SSM and the short causal FIR: :mod:`~ptdssm.kernels.shift`; Hyena's recurrence
and filter pieces: :mod:`~ptdssm.kernels.hyena`. SpaceTime's companion kernels (the fast roots-of-unity
algorithm, the closed loop): :mod:`~ptdssm.kernels.companion`.
Selective (input-dependent) scans: :func:`selective_scan` (Mamba-1) and :func:`ssd_chunked` (Mamba-2's SSD).
"""

from .cauchy import dplr_dense, dplr_kernel, dplr_kernel_ref
from .companion import companion_kernel, companion_kernel_krylov, companion_kernel_ref
from .discretize import conj_pair_to_real, discretize_dense, discretize_diag, discretize_dplr, discretize_ref
from .dplr import s4_kernel, s4_kernel_ref
from .fftconv import fft_conv, fft_conv_blh, fft_conv_ref
from .hyena import (
    decay_deltas,
    exponential_modulation,
    hyena_operator,
    hyena_recurrence,
    hyena_recurrence_ref,
    positional_features,
)
from .long_conv import long_conv, long_conv_ref, long_conv_step, regularize, smooth, smooth_ref, squash, squash_ref
from .lru import lru_forward, lru_forward_ref
from .scan import diag_scan, diag_scan_chunked, diag_scan_fft, diag_scan_ref
from .selective_scan import selective_scan, selective_scan_ref
from .shift import causal_conv, causal_conv_ref, fir_step, shift_ssm_kernel, shift_ssm_kernel_ref
from .ssd import ssd_chunked, ssd_ref
from .vandermonde import (
    diag_ssm_coeffs,
    krylov_kernel,
    krylov_kernel_ref,
    s4d_kernel,
    s4d_kernel_ref,
    vandermonde_kernel,
    vandermonde_kernel_ref,
)

__all__ = [
    "causal_conv",
    "causal_conv_ref",
    "companion_kernel",
    "companion_kernel_krylov",
    "companion_kernel_ref",
    "conj_pair_to_real",
    "decay_deltas",
    "diag_scan",
    "diag_scan_chunked",
    "diag_scan_fft",
    "diag_scan_ref",
    "diag_ssm_coeffs",
    "discretize_dense",
    "discretize_diag",
    "discretize_dplr",
    "discretize_ref",
    "dplr_dense",
    "dplr_kernel",
    "dplr_kernel_ref",
    "exponential_modulation",
    "fft_conv",
    "fft_conv_blh",
    "fft_conv_ref",
    "fir_step",
    "hyena_operator",
    "hyena_recurrence",
    "hyena_recurrence_ref",
    "krylov_kernel",
    "krylov_kernel_ref",
    "long_conv",
    "long_conv_ref",
    "long_conv_step",
    "lru_forward",
    "lru_forward_ref",
    "positional_features",
    "regularize",
    "s4_kernel",
    "s4_kernel_ref",
    "s4d_kernel",
    "s4d_kernel_ref",
    "selective_scan",
    "selective_scan_ref",
    "shift_ssm_kernel",
    "shift_ssm_kernel_ref",
    "smooth",
    "smooth_ref",
    "squash",
    "squash_ref",
    "ssd_chunked",
    "ssd_ref",
    "vandermonde_kernel",
    "vandermonde_kernel_ref",
]
