"""Noise models: the frequency and amplitude are what was asked for (checked with an FFT), and the layer hooks leave
a model bit-identical."""

import math

import numpy as np
import pytest
import torch

from ptdssm.experiments.noise import InputNoise, NoiseSpec, layer_noise, lti_layers, s4d_spike_frequency
from ptdssm.layers import LTISSM, S4D, S5, SequenceMixer


def test_sinusoid_has_the_requested_bin_and_amplitude():
    L, m, a = 256, 17, 0.3
    x = torch.zeros(4, L, 2)
    noisy = InputNoise(NoiseSpec("sinusoid", amplitude=a, frequency=2 * math.pi * m / L, seed=1))(x)
    spec = np.abs(np.fft.rfft(noisy.numpy(), axis=1)) * 2 / L  # one-sided amplitude spectrum
    assert np.all(spec.argmax(axis=1) == m)
    np.testing.assert_allclose(spec[:, m, :], a, rtol=1e-6)
    np.testing.assert_allclose(noisy[:, :, 0], noisy[:, :, 1])  # the same sinusoid on every channel


def test_fourier_modes_are_band_limited_with_rms_amplitude():
    L, modes, a = 512, (3, 40, 100), 0.2
    noise = InputNoise(NoiseSpec("fourier", amplitude=a, modes=modes, seed=0)).noise((8, L, 3))
    spec = np.abs(np.fft.rfft(noise.numpy(), axis=1))
    energy = (spec**2).sum(axis=1)
    on_modes = (spec[:, list(modes), :] ** 2).sum(axis=1)
    np.testing.assert_allclose(on_modes / energy, 1.0, rtol=1e-9)  # nothing outside the chosen bins
    rms = noise.pow(2).mean(dim=1).sqrt()
    np.testing.assert_allclose(rms.numpy(), a, rtol=1e-6)


def test_gaussian_control_and_seeding():
    spec = NoiseSpec("gaussian", amplitude=0.5, seed=3)
    a = InputNoise(spec).noise((16, 1024, 1))
    b = InputNoise(spec).noise((16, 1024, 1))
    assert torch.equal(a, b)
    assert float(a.std()) == pytest.approx(0.5, rel=0.03)
    assert abs(float(a.mean())) < 0.02


def test_input_noise_rejects_tokens_and_bad_specs():
    with pytest.raises(ValueError, match="continuous"):
        InputNoise(NoiseSpec("gaussian"))(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="amplitude"):
        NoiseSpec("gaussian", amplitude=-1.0)
    with pytest.raises(ValueError, match="frequency"):
        NoiseSpec("sinusoid")
    with pytest.raises(ValueError, match="noise kind"):
        NoiseSpec("pink")
    with pytest.raises(ValueError, match="Nyquist"):
        InputNoise(NoiseSpec("fourier", modes=(9,))).noise((1, 16, 1))


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(S4D(6, d_state=16), torch.nn.GELU(), S5(6, d_state=8)).eval()


def test_layer_noise_is_the_papers_cosine_at_each_channel_step_size():
    model = _model()
    layer = model[0]
    seen = []
    x = torch.randn(3, 512, 6)
    omega, a = 200.0, 0.1
    with layer_noise(model, NoiseSpec("layer", amplitude=a, frequency=omega, seed=0)) as n_hooked:
        assert n_hooked == 2
        h = layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
        model(x)
        h.remove()
    injected = (seen[0] - x).double()
    dt = layer.step_sizes().detach().double()
    k = torch.arange(512, dtype=torch.float64)
    # Each (b, c) noise is U * a * cos(omega dt_c k) with one U in [0, 1): the ratio to the cosine is constant.
    cos = torch.cos(omega * dt[None, None, :] * k[None, :, None])
    U = (injected * cos).sum(1) / (cos * cos).sum(1)
    np.testing.assert_allclose(injected.numpy(), (U[:, None, :] * cos).numpy(), atol=1e-6)
    assert bool(((U >= 0) & (U < a)).all())


def test_layer_noise_leaves_the_model_bit_identical():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 256, 6)
    clean = model(x)
    with layer_noise(model, NoiseSpec("layer", amplitude=0.1, frequency=325.4)):
        noisy = model(x)
    assert not torch.allclose(noisy, clean)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(model(x), clean)
    with pytest.raises(ValueError, match="kind 'layer'"), layer_noise(model, NoiseSpec("gaussian")):
        pass


def test_spike_frequency_matches_the_spec():
    # ptd-spec section 4: w_max = 325.43 for n = 32 and 1303.27 for n = 64.
    assert s4d_spike_frequency(32) == pytest.approx(325.43, abs=0.01)
    assert s4d_spike_frequency(64) == pytest.approx(1303.27, abs=0.01)


class _Identity(SequenceMixer):
    """A mixer that is not LTI: layer noise must leave it alone."""

    def _forward(self, u, lengths):
        return u


def test_layer_noise_acts_on_every_lti_layer_and_only_those():
    torch.manual_seed(0)
    model = torch.nn.Sequential(S4D(6, d_state=16), _Identity(6), S5(6, d_state=8)).eval()
    assert lti_layers(model) == [model[0], model[2]] and all(isinstance(m, LTISSM) for m in lti_layers(model))
    seen, produced = [], []
    hooks = [model[1].register_forward_hook(lambda m, args, out: seen.append(out.clone())),
             model[0].register_forward_hook(lambda m, args, out: produced.append(out.clone()))]
    x = torch.randn(2, 64, 6)
    with layer_noise(model, NoiseSpec("layer", amplitude=0.5, frequency=30.0)) as n_hooked:
        assert n_hooked == 2
        model(x)
    for h in hooks:
        h.remove()
    # the identity mixer returns the S4D output unchanged: nothing was added at its input
    assert torch.equal(seen[0], produced[0])
    with pytest.raises(ValueError, match="no LTI layer"), layer_noise(torch.nn.Sequential(_Identity(6)),
                                                                       NoiseSpec("layer", frequency=1.0)):
        pass
