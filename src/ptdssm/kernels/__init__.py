"""Pure tensor kernels of the sequence layers: discretization, Vandermonde / Cauchy / DPLR kernels, FFT convolution,
scans.

Everything here is a plain function of tensors (no ``nn.Module``), device-agnostic and differentiable. Each module
carries its plain-definition reference (``*_ref``: explicit powers, dense matrices, one step at a time or direct
sums) beside the fast path; ``tests/kernels/test_<module>.py`` compares them in float64 (outputs and gradients).
Ready-made SSM kernels from continuous parameters: :func:`s4d_kernel` (diagonal) and :func:`s4_kernel` (DPLR).
Selective (input-dependent) scans: :func:`selective_scan` (Mamba-1) and :func:`ssd_chunked` (Mamba-2's SSD).
"""

from .cauchy import dplr_dense, dplr_kernel, dplr_kernel_ref
from .discretize import conj_pair_to_real, discretize_dense, discretize_diag, discretize_dplr, discretize_ref
from .dplr import s4_kernel, s4_kernel_ref
from .fftconv import fft_conv, fft_conv_blh, fft_conv_ref
from .scan import diag_scan, diag_scan_chunked, diag_scan_fft, diag_scan_ref
from .selective_scan import selective_scan, selective_scan_ref
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
    "conj_pair_to_real",
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
    "fft_conv",
    "fft_conv_blh",
    "fft_conv_ref",
    "krylov_kernel",
    "krylov_kernel_ref",
    "s4_kernel",
    "s4_kernel_ref",
    "s4d_kernel",
    "s4d_kernel_ref",
    "selective_scan",
    "selective_scan_ref",
    "ssd_chunked",
    "ssd_ref",
    "vandermonde_kernel",
    "vandermonde_kernel_ref",
]
