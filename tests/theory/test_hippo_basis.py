"""Basis functions ``K(t) = e^{tA} B`` of the HiPPO systems (How to Train Your HiPPO) against their closed forms.

The references are computed here from their definitions (``numpy.polynomial.legendre``, cosines and sines) and the
matrix exponential is taken point by point with ``scipy.linalg.expm``, independently of the grid stepping of
:func:`~ptdssm.theory.basis.hippo_basis`. Tolerances for LegT and FouT are the state-truncation errors measured in
float64 (families.md: at n = 64 the low-order RMS is ~0.03 inside the window), with margin.
"""

import numpy as np
import pytest
import scipy.linalg
from numpy.polynomial import legendre

from ptdssm.theory.basis import basis_closed_form, basis_errors, hippo_basis
from ptdssm.theory.hippo import hippo_fout, hippo_legs, hippo_legt

W = 2.0  # s4's normalisation


def _expm_basis(A, B, t):
    return np.stack([scipy.linalg.expm(s * A) @ B for s in t])


def _legs_closed(n, t):
    return np.stack([np.sqrt(2 * k + 1) * legendre.Legendre.basis(k)(2 * np.exp(-t) - 1) * np.exp(-t)
                     for k in range(n)], 1)


def _legt_closed(n, t):
    return np.stack([0.5 * np.sqrt(2 * k + 1) * legendre.Legendre.basis(k)(1 - t) for k in range(n)], 1)


def _fout_closed(n, t):
    cols = [0.5 * np.ones_like(t), np.zeros_like(t)]
    for k in range(1, n // 2):
        cols += [0.5 * np.sqrt(2) * np.cos(np.pi * k * t), 0.5 * np.sqrt(2) * np.sin(np.pi * k * t)]
    return np.stack(cols[:n], 1)


def _rms(a):
    return float(np.sqrt(np.mean(a**2)))


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legs_basis_is_exactly_the_warped_legendre_polynomials(n):
    t = np.linspace(0.0, 5.0, 41)
    A, B = hippo_legs(n)
    ref = _legs_closed(n, t)
    np.testing.assert_allclose(_expm_basis(A, B, t), ref, atol=1e-11)
    np.testing.assert_allclose(hippo_basis("legs", n, t), ref, atol=1e-11)


def test_grid_stepping_equals_pointwise_expm():
    t_uniform = np.linspace(0.0, 4.0, 81)
    t_ragged = np.array([0.0, 0.1, 0.35, 1.7, 2.0, 3.9])
    for measure, (A, B) in {"legt": hippo_legt(32, W), "fout": hippo_fout(32, W)}.items():
        np.testing.assert_allclose(hippo_basis(measure, 32, t_uniform), _expm_basis(A, B, t_uniform), atol=1e-11)
        np.testing.assert_allclose(hippo_basis(measure, 32, t_ragged), _expm_basis(A, B, t_ragged), atol=1e-11)


def test_legt_basis_is_a_legendre_window_of_two_time_units():
    n, low = 64, 8
    inside, after = np.linspace(0.05, 1.8, 60), np.linspace(2.3, 4.0, 30)
    A, B = hippo_legt(n, W)
    K_in, K_after = _expm_basis(A, B, inside), _expm_basis(A, B, after)
    assert _rms((K_in - _legt_closed(n, inside))[:, :low]) < 0.05  # measured 0.030
    assert _rms(K_after[:, :low]) < 0.01  # measured 0.0015: the window has closed
    assert _rms(K_after) < 0.01
    # more state, a better window
    A2, B2 = hippo_legt(256, W)
    err256 = _rms((_expm_basis(A2, B2, inside) - _legt_closed(256, inside))[:, :low])
    assert err256 < 0.6 * _rms((K_in - _legt_closed(n, inside))[:, :low])


def test_fout_basis_is_a_fourier_window_of_two_time_units():
    n, low = 64, 8
    inside, after = np.linspace(0.05, 1.8, 60), np.linspace(2.3, 4.0, 30)
    A, B = hippo_fout(n, W)
    np.testing.assert_allclose(A + np.outer(B, B), -(A + np.outer(B, B)).T, atol=1e-13)  # skew minus B B^T
    K_in, K_after = _expm_basis(A, B, inside), _expm_basis(A, B, after)
    assert _rms((K_in - _fout_closed(n, inside))[:, :low]) < 0.03  # measured 0.011
    assert _rms(K_after[:, :low]) < 0.03  # measured 0.012
    # the highest orders do not close: the full-vector tail stays ~0.11 at every n (weak truncation)
    assert 0.05 < _rms(K_after) < 0.2
    A2, B2 = hippo_fout(256, W)
    assert _rms((_expm_basis(A2, B2, inside) - _fout_closed(256, inside))[:, :low]) < 0.01  # measured 0.0025


def test_closed_forms_and_error_summary():
    t = np.linspace(0.0, 4.0, 201)
    for measure, ref in (("legs", _legs_closed), ("legt", _legt_closed), ("fout", _fout_closed)):
        expected = ref(12, t)
        if measure != "legs":
            expected[t >= W] = 0.0
        np.testing.assert_allclose(basis_closed_form(measure, 12, t), expected, atol=1e-12)
    errs = basis_errors("legs", 12, t, hippo_basis("legs", 12, t))
    assert max(errs.values()) < 1e-12
    errs = basis_errors("legt", 64, t, hippo_basis("legt", 64, t))
    assert 0.01 < errs["rms_low_window"] < 0.05 and errs["rms_low_after"] < 0.01


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"measure": "lagt"}, "measure"), ({"n": 0}, "n must be"), ({"t": [-1.0, 0.0]}, "t must be"),
    ({"t": [[0.0]]}, "t"), ({"window": -2.0}, "window"), ({"t": [np.nan]}, "t"),
])
def test_bad_input(kwargs, needle):
    args = {"measure": "legt", "n": 4, "t": [0.0, 1.0], **kwargs}
    with pytest.raises(ValueError, match=needle):
        hippo_basis(args.pop("measure"), args.pop("n"), args.pop("t"), **args)
