"""The generalized-HiPPO inits (S4-LegT, S4-FouT, S4D-LegT, S4D-FouT), the timescale rule and the layers that take
them, checked against dense float64 references built from the HiPPO matrices."""

import numpy as np
import pytest
import torch

from ptdssm import S4, S4D, ssm_init
from ptdssm.config import load_config
from ptdssm.errors import ConfigError
from ptdssm.layers.registry import build_checked
from ptdssm.theory.hippo import hippo_nplr
from ptdssm.theory.init import DPLR_INITS
from ptdssm.theory.timescale import dt_range, init_window


def _full(init):
    """Kept modes plus their conjugates (conj_sym): V (n, n), Lambda (n,), P (r, n), B (n,)."""
    if not init.conj_sym:
        return init.V, init.Lambda, init.P, init.B
    cat = np.concatenate
    P = None if init.P is None else cat([init.P, init.P.conj()], 1)
    return cat([init.V, init.V.conj()], 1), cat([init.Lambda, init.Lambda.conj()]), P, cat([init.B, init.B.conj()])


@pytest.mark.parametrize(("name", "measure", "rank"), [("s4-legt", "legt", 2), ("s4-fout", "fout", 1)])
@pytest.mark.parametrize("conj_sym", [False, True])
@pytest.mark.parametrize("n", [2, 8, 32])
def test_s4_inits_are_dplr_forms_of_the_hippo_matrix(name, measure, rank, conj_sym, n):
    A_N, P, B = hippo_nplr(measure, n)
    A = A_N - P.T @ P
    init = ssm_init(name, n, conj_sym=conj_sym)
    assert init.P.shape == (rank, init.n_modes) and init.name == name
    assert init.n_modes == (n // 2 if conj_sym else n)
    np.testing.assert_allclose(init.Lambda.real, 0.0, atol=1e-12)  # the normal part is skew-symmetric
    V, Lam, Pm, Bm = _full(init)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(n), atol=1e-12)  # unitary, FouT's double 0 eigenvalue too
    dplr = np.diag(Lam) - Pm.T @ Pm.conj()
    np.testing.assert_allclose(V @ dplr @ V.conj().T, A, atol=1e-10 * n)
    np.testing.assert_allclose(V @ Bm, B, atol=1e-12)


def test_s4d_variants_are_the_shifted_skew_parts():
    n = 16
    for measure in ("legt", "fout"):
        A_N, _, B = hippo_nplr(measure, n)
        init = ssm_init(f"s4d-{measure}", n)
        w = np.sort(np.linalg.eigvals(A_N).imag)
        np.testing.assert_allclose(init.Lambda.real, -0.5)
        np.testing.assert_allclose(np.sort(init.Lambda.imag), w[w > -1e-9][-(n // 2):], atol=1e-10)
        V, _, _, Bm = _full(init)
        np.testing.assert_allclose(V @ Bm, B, atol=1e-12)
    # S4D-Lin is FouT's diagonal analogue: the same eigenvalues, |B~| = 1 except the k = 0 mode (1/sqrt2)
    fout, lin = ssm_init("s4d-fout", n), ssm_init("s4d-lin", n)
    np.testing.assert_allclose(fout.Lambda, lin.Lambda, atol=1e-12)
    np.testing.assert_allclose(np.abs(fout.B), [2**-0.5] + [1.0] * (n // 2 - 1), atol=1e-12)


def test_timescale_rule():
    assert dt_range([1000, 1000], init_window("s4-legt")) == (0.002, 0.002)  # the paper's delay dt
    assert dt_range([10, 1000]) == pytest.approx((1e-3, 0.1))  # s4's default range, LegS
    assert dt_range(250, 2.0) == (0.008, 0.008)
    assert init_window("s4-fout") == init_window("s4d-lin") == 2.0
    assert init_window("s4-legs") == init_window("ptd") == init_window(None) == 1.0
    for bad in ([0, 10], [10, 5], [1, 2, 3], [], "10", [float("inf"), 1], [True, 3], None):
        with pytest.raises(ValueError, match="dt_lengths"):
            dt_range(bad)


@pytest.mark.parametrize(("cls", "init", "window"), [(S4, "s4-legt", 2.0), (S4, "s4-legs", 1.0),
                                                     (S4D, "s4d-fout", 2.0), (S4D, "ptd-paper", 1.0)])
def test_layers_take_dt_lengths(cls, init, window):
    layer = cls(4, 8, init=init, dt_lengths=[100, 400])
    dt = layer.step_sizes().double()
    assert layer.dt_min == pytest.approx(window / 400) and layer.dt_max == pytest.approx(window / 100)
    assert torch.all(dt >= window / 400 * (1 - 1e-6)) and torch.all(dt <= window / 100 * (1 + 1e-6))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.layer.*dt_lengths"):
        build_checked("s4", 4, {"init": "s4-fout", "d_state": 8, "dt_lengths": [5, 1]})
    with pytest.raises(ConfigError, match="model.layer.*rank=1 must be a multiple of the rank 2"):
        build_checked("s4", 4, {"init": "s4-legt", "d_state": 8, "rank": 1})
    with pytest.raises(ConfigError, match="init"):
        build_checked("s4", 4, {"init": "s4d-legt", "d_state": 8})
    assert build_checked("s4d", 4, {"init": "s4d-legt", "d_state": 8}).init == "s4d-legt"
    assert build_checked("s4-ptd", 4, {"init": "s4d-fout", "d_state": 8}).init == "s4d-fout"


@pytest.mark.parametrize("init", DPLR_INITS)
@pytest.mark.parametrize("rank", [None, 2])
def test_s4_layer_kernel_is_the_bilinear_hippo_system(init, rank):
    # the layer's kernel against the textbook bilinear discretization of the HiPPO (A, B) in float64, with the
    # layer's readout mapped back to the HiPPO basis; A is shifted by the stability clip (Re Lambda <= -1e-4)
    torch.manual_seed(0)
    n, L = 8, 64
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the parameters themselves in float64, not rounded through float32
    try:
        layer = S4(2, n, init=init, rank=rank, dt_lengths=[20, 20])
    finally:
        torch.set_default_dtype(old)
    measure = init.removeprefix("s4-")
    A_N, P, B = hippo_nplr(measure, n)
    A = A_N - P.T @ P
    if measure != "legs":
        A = A - 1e-4 * np.eye(n)
    si = ssm_init(init, n)
    V = np.concatenate([si.V, si.V.conj()], 1)
    k = layer.kernel(L)[0].detach().numpy()
    for h in range(2):
        C = torch.view_as_complex(layer.C[0, h].detach().contiguous()).numpy()
        c_real = (np.concatenate([C, C.conj()]) @ V.conj().T).real
        dt = float(layer.step_sizes()[h].detach())
        M = np.linalg.inv(np.eye(n) - dt / 2 * A)
        Abar, Bbar = M @ (np.eye(n) + dt / 2 * A), M @ (dt * B)
        ref = [c_real @ np.linalg.matrix_power(Abar, j) @ Bbar for j in range(L)]
        np.testing.assert_allclose(k[h], ref, atol=1e-9)
    # step == forward for the new inits too
    x = torch.randn(1, 12, 2, dtype=torch.float64)
    state, ys = layer.init_state(1), []
    for t in range(12):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), layer(x), atol=1e-10, rtol=0)


def test_delay_configs_are_linear_and_follow_the_timescale_rule():
    from ptdssm.models import build_model

    cfgs = {m: load_config(f"src/ptdssm/configs/synthetic/delay-s4-{m}.yaml") for m in ("legs", "legt", "fout")}
    for m, cfg in cfgs.items():
        assert cfg.model.layer["init"] == f"s4-{m}" and cfg.model.n_layers == 1 and cfg.model.d_model == 4
    torch.manual_seed(0)
    from ptdssm.data import task_info

    model = build_model(cfgs["legt"].model, task_info(cfgs["legt"].data)).double()
    layer = model.blocks[0].mixer
    lag = cfgs["legt"].data.options["lag"]
    assert torch.allclose(layer.step_sizes(), torch.tensor(2.0 / lag, dtype=torch.float64))  # window 2/dt = lag
    x, z = torch.randn(2, 50, 1, dtype=torch.float64), torch.randn(2, 50, 1, dtype=torch.float64)
    with torch.no_grad():  # norm none, no residual, identity activation: the whole network is linear (affine)
        f0 = model(torch.zeros_like(x))
        torch.testing.assert_close(model(2 * x - 3 * z) - f0, 2 * (model(x) - f0) - 3 * (model(z) - f0))
