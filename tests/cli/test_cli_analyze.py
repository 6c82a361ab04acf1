"""``ptdssm analyze``: JSON documents, tables, plots and argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ptdssm.cli import main

TRANSFER_ROW_KEYS = {"n", "spike_frequency", "sup_dplr", "sup_diag_error", "sup_diag_error_frequency",
                     "sup_ptd_error", "sup_ptd_error_frequency", "l2_exp_diag", "l2_exp_ptd", "l2_impulse_diag",
                     "l2_impulse_ptd", "ptd"}
CONDITIONING_ROW_KEYS = {"n", "kappa_exact", "exact_saturated", "kappa_ptd", "relative_perturbation_ptd",
                         "kappa_random_median", "kappa_random_min", "kappa_random_max",
                         "relative_perturbation_random", "kappa_random_over_ptd", "max_real_ptd"}


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # the whole of stdout must be one JSON document


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_transfer_json_and_plot(capsys, tmp_path):
    png = tmp_path / "sub" / "transfer.png"
    doc = run_json(capsys, ["analyze", "transfer", "--n", "8", "16", "--json", "--plot", str(png)])
    response = {"response_weight"} if doc["objective"] == "response" else set()
    assert set(doc) == {"command", "seeds", "ptd", "objective", "pairs", "gamma", "ptd_seed", "rows", "plot"} | response
    assert doc["command"] == "transfer" and doc["seeds"] == [0] and doc["plot"] == str(png)
    assert doc["ptd"] == "ptd" and doc["objective"] in ("paper", "response")  # the JSON names the objective used
    assert [r["n"] for r in doc["rows"]] == [8, 16]
    for row in doc["rows"]:
        assert set(row) == TRANSFER_ROW_KEYS
        assert row["sup_diag_error"] > row["sup_ptd_error"] > 0
        assert set(row["ptd"]) >= {"kappa", "relative_perturbation", "max_real", "objective", "pairs"}
        assert row["ptd"]["objective"] == doc["objective"] and row["ptd"]["pairs"] == doc["pairs"]
    assert doc["rows"][0]["spike_frequency"] == pytest.approx(19.86, abs=0.01)
    assert is_png(png)


def test_transfer_selects_the_decomposition_by_name(capsys):
    doc = run_json(capsys, ["analyze", "transfer", "--n", "8", "--ptd", "ptd-response", "--json"])
    assert (doc["ptd"], doc["objective"], doc["pairs"], doc["response_weight"]) == ("ptd-response", "response", True,
                                                                                   1000.0)
    row = doc["rows"][0]["ptd"]
    assert (row["objective"], row["pairs"], row["real_eigenvalues"]) == ("response", True, 0)
    paper = run_json(capsys, ["analyze", "transfer", "--n", "8", "--ptd", "ptd-paper", "--json"])
    assert paper["objective"] == "paper" and paper["rows"][0]["ptd"]["objective"] == "paper"
    # The response objective is what makes S4-PTD's transfer function close to S4's.
    assert doc["rows"][0]["sup_ptd_error"] < paper["rows"][0]["sup_ptd_error"] / 3


def test_transfer_table_and_seed_average(capsys):
    assert main(["analyze", "transfer", "--n", "8", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "sup|Diag-DPLR|" in out and "mean over seeds [0, 1]" in out
    doc = run_json(capsys, ["analyze", "transfer", "--n", "8", "--seeds", "2", "--json"])
    one = run_json(capsys, ["analyze", "transfer", "--n", "8", "--seed", "1", "--json"])
    zero = run_json(capsys, ["analyze", "transfer", "--n", "8", "--json"])
    mean = (zero["rows"][0]["sup_diag_error"] + one["rows"][0]["sup_diag_error"]) / 2
    assert doc["rows"][0]["sup_diag_error"] == pytest.approx(mean, rel=1e-12)


def test_conditioning_json_and_plot(capsys, tmp_path):
    png = tmp_path / "kappa.png"
    doc = run_json(capsys, ["analyze", "conditioning", "--n", "8", "16", "--trials", "3", "--json",
                            "--plot", str(png)])
    assert set(doc) == {"command", "gamma", "ptd_seed", "trials", "rows", "note", "plot"}
    for row in doc["rows"]:
        assert set(row) == CONDITIONING_ROW_KEYS
        # exact eig: 7.7e4 (n=8), 8.3e10 (n=16); PTD <= 20 by the target; random in between
        assert row["kappa_ptd"] < row["kappa_random_median"] < row["kappa_exact"]
        assert row["relative_perturbation_random"] == pytest.approx(row["relative_perturbation_ptd"], rel=1e-12)
        assert not row["exact_saturated"]
    assert doc["rows"][0]["kappa_exact"] == pytest.approx(7.8e4, rel=0.05)  # spec: 7.8e4 (150-digit arithmetic)
    assert is_png(png)


def test_conditioning_table_flags_saturation(capsys):
    assert main(["analyze", "conditioning", "--n", "32", "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "> 1." in out and "saturates" in out


def test_diagonalize_json(capsys):
    doc = run_json(capsys, ["analyze", "diagonalize", "--n", "8", "--json"])
    assert {"kappa", "relative_perturbation", "backward_error", "max_real", "iterations", "seconds"} <= set(doc)
    assert doc["n"] == 8 and doc["max_real"] < 0
    doc = run_json(capsys, ["analyze", "diagonalize", "--n", "8", "--method", "random", "--epsilon", "0.05",
                            "--seed", "3", "--json"])
    assert doc["method"] == "random" and doc["seed"] == 3
    doc = run_json(capsys, ["analyze", "diagonalize", "--n", "8", "--ptd", "ptd-paper-pairs", "--max-iter", "100",
                            "--json"])
    assert (doc["objective"], doc["pairs"], doc["real_eigenvalues"]) == ("paper", True, 0)
    assert main(["analyze", "diagonalize", "--n", "8"]) == 0
    assert "kappa" in capsys.readouterr().out


@pytest.mark.parametrize("argv, name", [
    (["analyze", "transfer", "--n", "8", "0"], "--n"),
    (["analyze", "transfer", "--n", "8", "--gamma", "0"], "--gamma"),
    (["analyze", "transfer", "--n", "8", "--seeds", "0"], "--seeds"),
    (["analyze", "conditioning", "--n", "-1"], "--n"),
    (["analyze", "conditioning", "--n", "8", "--gamma", "-2"], "--gamma"),
    (["analyze", "diagonalize", "--n", "0"], "--n"),
    (["analyze", "diagonalize", "--n", "8", "--gamma", "0"], "--gamma"),
    (["analyze", "diagonalize", "--n", "8", "--method", "random", "--epsilon", "0"], "--epsilon"),
    (["analyze", "transfer", "--n", "8", "--ptd", "ptd-fancy"], "--ptd"),
    (["analyze", "transfer", "--n", "8", "--ptd", "ptd-response", "--response-weight", "0"], "--response-weight"),
])
def test_bad_input_exits_2_naming_the_argument(capsys, argv, name):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0]


def test_console_entry_point_stdout_is_pure_json():
    proc = subprocess.run([sys.executable, "-m", "ptdssm", "analyze", "diagonalize", "--n", "6", "--method",
                           "random", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 6
    bad = subprocess.run([sys.executable, "-m", "ptdssm", "analyze", "transfer", "--n", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--n" in bad.stderr and "Traceback" not in bad.stderr
