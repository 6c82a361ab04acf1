"""Forecasting data: the Informer/TSLib CSV layout and features, the benchmark's split borders (hand-computed),
the scaler fitted on train only, the sliding windows, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import build_task, task_info
from ptdssm.data.forecasting import (
    ForecastWindows,
    StandardScaler,
    custom_borders,
    parse_series_csv,
    read_series_csv,
    select_features,
    split_borders,
)
from ptdssm.errors import DataError

from .forecasting_fixtures import ETT_COLUMNS, ett_values, write_ett_csv


def _csv_cfg(path, **options):
    return DataConfig(task="forecast-csv", options={"path": str(path), **options})


# ------------------------------------------------------------------------------------------------ CSV and features

def test_reader_reads_the_ett_layout(tmp_path):
    values = ett_values(30)
    table = read_series_csv(write_ett_csv(tmp_path / "ETTh1.csv", values))
    assert table.columns == tuple(ETT_COLUMNS) and table.values.shape == (30, 7)
    np.testing.assert_array_equal(table.values, values)
    assert table.dates[0] == "2016-07-01 00:00:00" and table.dates[2] == "2016-07-01 02:00:00"


def test_features_order_channels_as_tslib():
    """Dataset_Custom: the target moves last; S keeps only it; MS takes all in, the target out."""
    text = "date,OT,a,b\n2020-01-01,1,2,3\n2020-01-02,4,5,6\n"
    table = parse_series_csv(text, "t.csv")
    v, names, inputs, targets = select_features(table, "M", "OT")
    assert names == ["a", "b", "OT"] and inputs == [0, 1, 2] and targets == [0, 1, 2]
    np.testing.assert_array_equal(v, [[2, 3, 1], [5, 6, 4]])
    v, names, inputs, targets = select_features(table, "S", "OT")
    assert names == ["OT"] and inputs == [0] and targets == [0]
    np.testing.assert_array_equal(v, [[1], [4]])
    _, names, inputs, targets = select_features(table, "MS", "OT")
    assert names == ["a", "b", "OT"] and inputs == [0, 1, 2] and targets == [2]


@pytest.mark.parametrize(("features", "shape"), [("M", (7, 7)), ("S", (1, 1)), ("MS", (7, 1))])
def test_task_info_from_the_header_only(tmp_path, features, shape):
    path = write_ett_csv(tmp_path / "ETTh1.csv", ett_values(20))
    info = task_info(_csv_cfg(path, features=features, lookback=96, horizon=24))
    assert (info.d_input, info.n_classes) == shape
    assert (info.head, info.loss, info.seq_len, info.target_len) == ("forecast", "mse", 96, 24)


# ------------------------------------------------------------------------------------------------ split borders

def test_custom_borders_by_hand():
    # n = 52608 (vic_elec): n_train = int(36825.6) = 36825, n_test = int(10521.6) = 10521, n_val = 5262
    assert custom_borders(52608, 336) == {"train": (0, 36825), "val": (36489, 42087), "test": (41751, 52608)}
    # n = 26304 (ECL): 18412 / 2632 / 5260, the benchmark's split sizes
    b = custom_borders(26304, 96)
    assert b == {"train": (0, 18412), "val": (18316, 21044), "test": (20948, 26304)}
    assert (b["val"][1] - b["val"][0] - 96, b["test"][1] - b["test"][0] - 96) == (2632, 5260)


def test_ett_borders_by_hand():
    assert split_borders("ett-hour", 17420, 96) == {"train": (0, 8640), "val": (8544, 11520),
                                                     "test": (11424, 14400)}
    assert split_borders("ett-minute", 69680, 336) == {"train": (0, 34560), "val": (34224, 46080),
                                                        "test": (45744, 57600)}
    assert split_borders("months", 52608, 0, steps_per_day=48) == {"train": (0, 17280), "val": (17280, 23040),
                                                                    "test": (23040, 28800)}
    assert split_borders("auto", 17420, 96, name="ETTh2.csv")["train"] == (0, 8640)
    assert split_borders("auto", 69680, 96, name="ETTm1.csv")["train"] == (0, 34560)
    assert split_borders("auto", 1000, 96, name="weather.csv") == custom_borders(1000, 96)


@pytest.mark.parametrize(("rule", "kw", "match"), [
    ("ett-hour", {}, "needs 14400 rows"),
    ("months", {}, "steps_per_day"),
    ("thirds", {}, "data.options.split"),
])
def test_split_errors_are_one_line(rule, kw, match):
    with pytest.raises(DataError, match=match) as e:
        split_borders(rule, 1000, 96, **kw)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ scaler

def test_scaler_is_fitted_on_train_rows_only(tmp_path):
    """Changing the validation and test rows changes neither the statistics nor the training windows."""
    values = ett_values(200)
    opts = {"lookback": 8, "horizon": 4, "features": "M"}
    a = build_task(_csv_cfg(write_ett_csv(tmp_path / "a.csv", values), **opts))
    n_train = a.extras["borders"]["train"][1]
    assert n_train == 140
    changed = values.copy()
    changed[n_train:] = changed[n_train:] * 10 + 100
    b = build_task(_csv_cfg(write_ett_csv(tmp_path / "b.csv", changed), **opts))
    assert a.extras["scaler"] == b.extras["scaler"]
    raw = np.round(values, 3)
    order = [ETT_COLUMNS.index(c) for c in a.extras["columns"]]
    np.testing.assert_allclose(a.extras["scaler"]["mean"], raw[:n_train, order].mean(0), rtol=1e-12)
    np.testing.assert_allclose(a.extras["scaler"]["std"], raw[:n_train, order].std(0), rtol=1e-12)  # ddof 0
    for i in (0, 50, len(a.train) - 1):
        assert all(torch.equal(u, v) for u, v in zip(a.train[i], b.train[i], strict=True))
    assert not torch.equal(a.test[0][1], b.test[0][1])


def test_scaler_constant_channel_and_inverse():
    s = StandardScaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(s.mean, [2.0, 5.0])
    np.testing.assert_array_equal(s.std, [1.0, 1.0])  # constant channel: std 1, as scikit-learn
    z = s.transform(np.array([[4.0, 7.0]]))
    np.testing.assert_array_equal(z, [[2.0, 2.0]])
    np.testing.assert_array_equal(s.inverse(z), [[4.0, 7.0]])


# ------------------------------------------------------------------------------------------------ windows

def test_windows_are_slices_of_the_series():
    z = np.arange(40, dtype=np.float32).reshape(20, 2)
    w = ForecastWindows(z, 3, 17, lookback=5, horizon=3, inputs=[0, 1], targets=[1])
    assert len(w) == 17 - 3 - 5 - 3 + 1
    x, y = w[2]
    np.testing.assert_array_equal(x.numpy(), z[5:10])
    np.testing.assert_array_equal(y.numpy(), z[10:13, 1:])
    xa, ya = w.arrays()
    np.testing.assert_array_equal(xa[2], z[5:10])
    np.testing.assert_array_equal(ya[-1], z[14:17, 1:])  # the last window ends at the split's end
    strided = ForecastWindows(z, 3, 17, 5, 3, [0], [0], stride=2)
    assert strided.starts.tolist() == [3, 5, 7, 9]


def test_task_windows_match_the_scaled_series(tmp_path):
    values = ett_values(300)
    data = build_task(_csv_cfg(write_ett_csv(tmp_path / "x.csv", values), lookback=24, horizon=12, features="S"))
    series = data.extras["series"]
    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        a, b = data.extras["borders"][split]
        assert len(ds) == b - a - 24 - 12 + 1
        x, y = ds[len(ds) - 1]
        np.testing.assert_array_equal(x.numpy(), series[b - 36 : b - 12])
        np.testing.assert_array_equal(y.numpy(), series[b - 12 : b])
    raw_ot = np.round(values[:, -1], 3)
    mean, std = raw_ot[:210].mean(), raw_ot[:210].std()
    np.testing.assert_allclose(series[:, 0], (raw_ot - mean) / std, rtol=1e-5, atol=1e-6)


def test_subsets_and_stride_of_the_training_windows(tmp_path):
    path = write_ett_csv(tmp_path / "x.csv", ett_values(300))
    full = build_task(_csv_cfg(path, lookback=24, horizon=12))
    strided = build_task(_csv_cfg(path, lookback=24, horizon=12, stride=4))
    assert len(strided.train) == (len(full.train) + 3) // 4 and len(strided.test) == len(full.test)
    cfg = _csv_cfg(path, lookback=24, horizon=12)
    cfg.train_subset, cfg.test_subset = 10, 7
    sub = build_task(cfg)
    assert (len(sub.train), len(sub.test)) == (10, 7)
    assert set(sub.train.starts.tolist()) <= set(full.train.starts.tolist())


# ------------------------------------------------------------------------------------------------ bad input

def _one_line_error(cfg, match, *, info=False):
    with pytest.raises(DataError, match=match) as e:
        task_info(cfg) if info else build_task(cfg)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_missing_file(tmp_path):
    _one_line_error(_csv_cfg(tmp_path / "ETTh1.csv"), r"data\.options\.path: .*ETTh1\.csv does not exist", info=True)
    _one_line_error(DataConfig(task="forecast-csv"), r"needs data\.options\.path", info=True)


def test_missing_column(tmp_path):
    path = write_ett_csv(tmp_path / "x.csv", ett_values(50))
    _one_line_error(_csv_cfg(path, target="price"), r"target 'price' is not a column", info=True)
    _one_line_error(_csv_cfg(path, date_column="Time"), r"no date column 'Time'")


@pytest.mark.parametrize(("cell", "match"), [("nan", "'nan' \\(NaN or inf\\)"), ("", "an empty cell"),
                                             ("n/a", "'n/a', not a number")])
def test_bad_cells_name_file_line_and_column(tmp_path, cell, match):
    path = write_ett_csv(tmp_path / "x.csv", ett_values(50))
    lines = path.read_text().splitlines()
    fields = lines[7].split(",")
    fields[3] = cell
    lines[7] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    msg = _one_line_error(_csv_cfg(path, lookback=8, horizon=4), match)
    assert "x.csv:8: column 'MUFL'" in msg


def test_ragged_row_and_empty_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,a,OT\n2020-01-01,1,2\n2020-01-02,3\n")
    _one_line_error(_csv_cfg(path), r"x\.csv:3: 2 fields, the header has 3")
    path.write_text("")
    _one_line_error(_csv_cfg(path), r"empty file")


def test_lookback_plus_horizon_longer_than_a_split(tmp_path):
    path = write_ett_csv(tmp_path / "x.csv", ett_values(200))  # val: 20 rows + lookback, test: 40 + lookback
    msg = _one_line_error(_csv_cfg(path, lookback=16, horizon=24), r"the val split has 36 steps")
    assert "lookback + horizon = 16 + 24" in msg
    _one_line_error(_csv_cfg(path, lookback=150, horizon=4), r"lookback \(150\) is longer than the training split")


@pytest.mark.parametrize(("options", "match"), [({"lookback": 0}, "lookback must be an integer >= 1"),
                                                ({"horizon": "96"}, "horizon must be an integer"),
                                                ({"features": "X"}, "features must be one of M, S, MS"),
                                                ({"scale": "yes"}, "scale must be true or false")])
def test_bad_options(tmp_path, options, match):
    path = write_ett_csv(tmp_path / "x.csv", ett_values(50))
    _one_line_error(_csv_cfg(path, **options), match, info=True)


def test_seq_len_must_agree_with_lookback():
    _one_line_error(DataConfig(task="forecast-ar", seq_len=100), r"data\.seq_len \(100\) differs", info=True)


def test_data_check_reports_the_forecasting_protocol(capsys):
    from ptdssm.cli import main

    argv = ["data", "check", "--task", "forecast-ar", "--option", "n_steps=1000", "--option", "lookback=32",
            "--option", "horizon=8", "--json"]
    assert main(argv) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["borders"] == {"train": [0, 700], "val": [668, 800], "test": [768, 1000]}
    assert (doc["lookback"], doc["horizon"], doc["sizes"]["test"]) == (32, 8, 232 - 40 + 1)
