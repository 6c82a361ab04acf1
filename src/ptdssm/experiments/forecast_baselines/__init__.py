"""Forecasting baselines in the same protocol as trained models: naive and seasonal naive (:mod:`.naive`),
DLinear fitted in closed form (:mod:`.dlinear`), and the least-squares AR forecaster, the oracle of the AR task
(:mod:`.ar_oracle`); :mod:`.protocol` runs them on a task's data (``ptdssm baselines``)."""

from .ar_oracle import ar_forecast, fit_ar
from .dlinear import DLinear, NormalEquations, fit_dlinear, moving_average_matrix
from .naive import naive_forecast, seasonal_naive_forecast
from .protocol import METHODS, ar_oracle, evaluate_forecaster, run_baselines

__all__ = ["METHODS", "DLinear", "NormalEquations", "ar_forecast", "ar_oracle", "evaluate_forecaster", "fit_ar",
           "fit_dlinear", "moving_average_matrix", "naive_forecast", "run_baselines", "seasonal_naive_forecast"]
