"""``ptdssm analyze basis``: one JSON document, the plot, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.polynomial import legendre

from ptdssm.cli import main


def test_basis_json_and_plot(capsys, tmp_path):
    png = tmp_path / "sub" / "basis.png"
    assert main(["analyze", "basis", "--n", "32", "--points", "21", "--orders", "3", "--json", "--plot",
                 str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert set(doc) == {"command", "n", "window", "t_max", "points", "t", "measures", "plot"}
    assert (doc["command"], doc["n"], doc["window"], doc["t_max"], doc["plot"]) == ("basis", 32, 2.0, 4.0, str(png))
    assert [m["measure"] for m in doc["measures"]] == ["legs", "legt", "fout"]
    t = np.array(doc["t"])
    legs, legt, fout = doc["measures"]
    # LegS: exactly the warped Legendre polynomials
    ref = [np.sqrt(2 * k + 1) * legendre.Legendre.basis(k)(2 * np.exp(-t) - 1) * np.exp(-t) for k in range(3)]
    np.testing.assert_allclose(legs["K"], ref, atol=1e-9)
    assert legs["errors"]["rms_low_window"] < 1e-12
    assert fout["orders"] == [0, 2, 3]  # FouT's dead state 1 is skipped
    assert legt["errors"]["rms_low_after"] < 0.02 and fout["errors"]["rms_low_window"] < 0.1
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_basis_text_table(capsys):
    assert main(["analyze", "basis", "--measure", "legt", "--n", "16", "--points", "11"]) == 0
    out = capsys.readouterr().out
    assert "legt" in out and "legs" not in out.split("\n", 1)[1]


@pytest.mark.parametrize(("argv", "needle"), [
    (["--measure", "lagt"], "--measure"), (["--n", "0"], "--n"), (["--n", "5000"], "--n 5000 is above"),
    (["--window", "0"], "--window"), (["--points", "2"], "--points"), (["--t-max", "-1"], "--t-max"),
    (["--orders", "0"], "--orders"), (["--plot", "/proc/nope/x.png"], "--plot"),
])
def test_basis_bad_input_one_line(capsys, argv, needle):
    assert main(["analyze", "basis", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
