"""The continuous delay and reconstruction tasks (How to Train Your HiPPO): band-limited white noise, targets that are
the shifted / final inputs, task metadata and bad options."""

import numpy as np
import pytest
import torch

from ptdssm.config import load_config
from ptdssm.data import build_task, task_info
from ptdssm.data.generators.signals import delay_example, reconstruct_example, white_signal


def _data_cfg(task, **options):
    cfg = load_config("src/ptdssm/configs/synthetic/delay-s4-legs.yaml").data
    cfg.task, cfg.seq_len = task, 400
    cfg.options = {"n_train": 8, "n_val": 4, "n_test": 4, **options}
    return cfg


def test_white_signal_is_band_limited_and_starts_at_rest():
    rng = np.random.default_rng(0)
    L, dt, freq = 1000, 1e-3, 120.0
    x = white_signal(rng, L, dt, freq, rms=0.5)
    assert x.shape == (L,) and x[0] == 0.0
    spectrum = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(L, d=dt)
    # subtracting x[0] only moves the DC term: everything above freq is zero, the band itself is not
    assert spectrum[f > freq].max() < 1e-9 * spectrum.max()
    assert np.count_nonzero(spectrum[(f > 0) & (f <= freq)] > 1e-6 * spectrum.max()) == np.sum((f > 0) & (f <= freq))
    centred = x - x.mean()
    assert np.sqrt(np.mean(centred**2)) == pytest.approx(0.5, rel=1e-9)  # rms before the shift (DC-free)


def test_delay_target_is_the_input_lag_steps_earlier():
    x, y = delay_example(np.random.default_rng(3), 300, 70, 1e-3, 200.0)
    assert x.shape == y.shape == (300, 1) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(y[70:, 0], x[:230, 0])
    np.testing.assert_array_equal(y[:70], 0.0)


def test_reconstruct_target_is_the_last_window():
    x, y = reconstruct_example(np.random.default_rng(4), 300, 50, 1e-3, 200.0)
    assert x.shape == (300, 1) and y.shape == (50,)
    np.testing.assert_array_equal(y, x[-50:, 0])


def test_tasks_through_the_registry():
    cfg = _data_cfg("delay", lag=100)
    info = task_info(cfg)
    assert (info.head, info.loss, info.n_classes, info.d_input, info.seq_len) == ("token", "mse", 1, 1, 400)
    data = build_task(cfg)
    x, y = data.train[2]
    assert isinstance(x, torch.Tensor) and x.shape == (400, 1) and y.shape == (400, 1)
    torch.testing.assert_close(y[100:], x[:300])
    torch.testing.assert_close(data.train[2][0], x)  # the same example every time
    assert not torch.equal(data.train[3][0], x) and not torch.equal(data.val[2][0], x)
    cfg = _data_cfg("reconstruct", window=60)
    info = task_info(cfg)
    assert (info.head, info.loss, info.n_classes) == ("pooled", "mse", 60)
    x, y = build_task(cfg).test[0]
    torch.testing.assert_close(y, x[-60:, 0])


@pytest.mark.parametrize(("task", "options", "needle"), [
    ("delay", {"lag": 400}, "lag must be"),
    ("delay", {"lag": 0}, "data.options.lag"),
    ("delay", {"lag": 2.5}, "data.options.lag"),
    ("reconstruct", {"window": 401}, "window must be"),
    ("delay", {"freq": 600.0}, "Nyquist"),
    ("delay", {"freq": 0.5}, "below"),
    ("delay", {"dt": -1.0}, "data.options.dt"),
    ("delay", {"rms": "loud"}, "data.options.rms"),
    ("delay", {"window": 3}, "unknown option"),
])
def test_bad_options_one_line(task, options, needle):
    with pytest.raises(ValueError, match=needle) as err:
        build_task(_data_cfg(task, **options))
    assert "\n" not in str(err.value)


def test_white_signal_bad_arguments():
    rng = np.random.default_rng(0)
    for kwargs, needle in (({"length": 1}, "length"), ({"dt": 0.0}, "dt"), ({"freq": float("nan")}, "freq"),
                           ({"rms": -1.0}, "rms")):
        args = {"length": 100, "dt": 1e-3, "freq": 100.0, **kwargs}
        with pytest.raises(ValueError, match=needle):
            white_signal(rng, **args)
