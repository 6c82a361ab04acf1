"""Forecasting data: a lookback window of a multichannel series in, the next ``horizon`` steps out.

One concept per module: :mod:`.table` (the Informer/TSLib CSV layout and the ``M``/``S``/``MS`` features),
:mod:`.splits` (the benchmark's chronological borders), :mod:`.scaler` (standard scaling fitted on train only),
:mod:`.windows` (sliding windows as a dataset), :mod:`.sources` (the offline real series: vic_elec, ECL-mean),
:mod:`.ar` (AR(p) series with known coefficients) and :mod:`.tasks` (the registered tasks ``forecast-csv``,
``forecast-vic-elec``, ``forecast-ecl-mean``, ``forecast-ar``).
"""

from .ar import ar_coefficients_from_poles, check_stationary, default_phi, simulate_ar
from .scaler import StandardScaler
from .splits import SPLITS, custom_borders, month_borders, split_borders
from .table import FEATURES, SeriesTable, parse_series_csv, read_series_csv, select_features
from .windows import ForecastWindows, n_windows

__all__ = ["FEATURES", "SPLITS", "ForecastWindows", "SeriesTable", "StandardScaler", "ar_coefficients_from_poles",
           "check_stationary", "custom_borders", "default_phi", "month_borders", "n_windows", "parse_series_csv",
           "read_series_csv", "select_features", "simulate_ar", "split_borders"]
