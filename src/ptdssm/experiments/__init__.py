"""Experiments: training, evaluation, noise, robustness sweeps and the paper's reproductions.

* ``train``: the training loop in named steps (setup, resume-or-fresh, run_epoch, validate, end_epoch, final_test);
  ``run``: its Run / TrainState objects and the epoch sampler; ``optimizer``: AdamW groups and the LR schedule;
  ``objective``: loss and metrics per task head; ``checkpoint``: the checkpoint schema, atomic writes, typed load
  errors; ``distributed``: torchrun setup and cross-rank helpers; ``metrics_log``: metrics.jsonl / .csv.
* ``evaluate``: metrics of a model or checkpoint on a split; ``noise``: input- and layer-level noise (every LTI
  layer); ``robustness``: sweeps over noise frequency and amplitude; ``reproduce`` / ``numerics``: the paper's
  tables and figures.
* ``forecast``: the forecast figure of a run; ``forecast_baselines``: naive, seasonal naive, DLinear (closed form)
  and the least-squares AR oracle in the forecasting protocol (``ptdssm baselines``).
"""
