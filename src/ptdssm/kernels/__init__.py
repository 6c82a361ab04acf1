"""Pure tensor kernels of the SSM layers: discretization, Vandermonde / Cauchy kernels, FFT convolution, scans.

Everything here is a plain function of tensors (no ``nn.Module``), device-agnostic and differentiable.
"""

from .cauchy import dplr_kernel
from .discretize import conj_pair_to_real, discretize_dense, discretize_diag, discretize_dplr
from .fftconv import fft_conv, fft_conv_blh
from .scan import diag_scan, diag_scan_chunked, diag_scan_fft
from .vandermonde import krylov_kernel, vandermonde_kernel

__all__ = [
    "conj_pair_to_real",
    "diag_scan",
    "diag_scan_chunked",
    "diag_scan_fft",
    "discretize_dense",
    "discretize_diag",
    "discretize_dplr",
    "dplr_kernel",
    "fft_conv",
    "fft_conv_blh",
    "krylov_kernel",
    "vandermonde_kernel",
]
