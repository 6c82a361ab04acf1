r"""Transfer functions of linear state-space systems, their sup norms and output L2 errors (float64).

A continuous-time system ``x' = A x + B u``, ``y = C x`` has the transfer function

.. math:: G(s) = C (sI - A)^{-1} B, \qquad s = i\omega,

and for a diagonal system ``(Lambda, B~, C~)`` (``A = diag(Lambda)``) it is the partial-fraction sum

.. math:: G(s) = \sum_k \frac{\tilde C_k \tilde B_k}{s - \lambda_k}.

The paper compares three systems built on HiPPO-LegS of size ``n`` (see :func:`paper_systems`):

- ``G_DPLR``: ``(A_H, B_H, C)``, what S4 computes (diagonal-plus-low-rank, through the Woodbury identity);
- ``G_Diag``: ``(A_N, B_H, C)`` with the normal part ``A_N = A_H + P P^T`` diagonalized by a unitary ``V``
  (S4D-LegS / S5): ``Lambda = eig(A_N)``, ``B~ = V^H B_H``, ``C~ = C V``;
- ``G_PTD``: ``(A_H + E, B_H, C)`` from :func:`~ptdssm.theory.ptd.perturb_then_diagonalize`:
  ``B~ = V~^{-1} B_H``, ``C~ = C V~``.

Because ``A_H = A_N - P P^T`` and ``B_H = sqrt(2) P``, the Sherman-Morrison formula gives, for **every** ``C``
(checked against dense solves in the tests),

.. math:: G_{DPLR}(s) = \frac{G_{Diag}(s)}{1 + P^T (sI - A_N)^{-1} P}

(:func:`legs_low_rank_factor` is the denominator). For a general ``B`` the Woodbury form
``C R B - (C R P)(P^T R B) / (1 + P^T R P)``, ``R = (sI - A_N)^{-1}``, is needed
(:func:`transfer_function_dplr`); it reduces to the identity above when ``B`` is parallel to ``P``.

S4D's error ``G_Diag - G_DPLR`` has Theta(1) spikes at the imaginary parts of ``eig(A_N)`` (the largest at
``w_max ~ n^2 / pi``) for every ``n`` (weak, not strong, convergence); PTD's error stays bounded (strong
convergence).
:func:`sup_norm` estimates ``sup_w |G(iw)|`` with a log grid plus the pole frequencies and local refinement;
:func:`output_l2_error` integrates ``|(G_1 - G_2)(iw) U(iw)|^2`` over ``w`` (Parseval).

Frequencies ``w`` are real and 1-D (shape ``(m,)``); ``s = i w``. All results are complex128.

This module gathers the public names of three: :mod:`~ptdssm.theory.transfer_functions` (``G`` of dense, diagonal
and DPLR systems), :mod:`~ptdssm.theory.frequency_norms` (sup norms and output L2 errors) and
:mod:`~ptdssm.theory.paper_systems` (the three LegS systems and :func:`transfer_analysis`).
"""

from __future__ import annotations

from .frequency_norms import INPUTS, SupNorm, output_l2_error, sup_norm
from .paper_systems import PaperSystems, paper_systems, transfer_analysis, transfer_curves
from .transfer_functions import (
    TransferFunction,
    legs_low_rank_factor,
    random_unit_vector,
    transfer_function,
    transfer_function_diagonal,
    transfer_function_dplr,
)

__all__ = [
    "transfer_function",
    "transfer_function_diagonal",
    "transfer_function_dplr",
    "legs_low_rank_factor",
    "random_unit_vector",
    "PaperSystems",
    "paper_systems",
    "transfer_curves",
    "SupNorm",
    "sup_norm",
    "output_l2_error",
    "transfer_analysis",
    "INPUTS",
    "TransferFunction",
]
