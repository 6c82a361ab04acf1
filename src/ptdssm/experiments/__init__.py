"""Experiments: the training loop, evaluation, and (later) robustness sweeps and paper reproductions."""
