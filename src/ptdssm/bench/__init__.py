"""``ptdssm bench``: layer and Mamba benchmarks, as ratios to floors measured in the same run.

- :mod:`~ptdssm.bench.layers` (``ptdssm bench layers``): every registered family's layer against the FFT floor and
  against its own projections, with the targets the families declare in the registry;
- :mod:`~ptdssm.bench.mamba` (``ptdssm bench mamba``): the Mamba-1 / Mamba-2 mixers against their own Linear layers,
  memory, and the streaming cost per token (issue 10);
- :mod:`~ptdssm.bench.floors`: the FFT floor and the replay of a layer's own ``nn.Linear`` / ``nn.Conv1d`` calls;
- :mod:`~ptdssm.bench.common`: timing, peak memory, the subprocess runner (which calls the functions named here,
  e.g. ``from ptdssm.bench import run_case``) and the load average.
"""

from .floors import Projections, fft_floor
from .layers import (
    MEM_GROWTH_LIMIT,
    TARGET_L,
    bench_layers,
    bench_options,
    evaluate_targets,
    format_table,
    memory_growth,
    run_benchmark,
    run_case,
)
from .mamba import (
    MAMBA_MODELS,
    MAMBA_TARGETS,
    format_mamba_table,
    mamba_layer,
    profile_mamba,
    run_mamba_benchmark,
    run_mamba_case,
    run_mamba_stream,
)

__all__ = ["MAMBA_MODELS", "MAMBA_TARGETS", "MEM_GROWTH_LIMIT", "TARGET_L", "Projections", "bench_layers",
           "bench_options", "evaluate_targets", "fft_floor", "format_mamba_table", "format_table", "mamba_layer",
           "memory_growth", "profile_mamba", "run_benchmark", "run_case", "run_mamba_benchmark", "run_mamba_case",
           "run_mamba_stream"]
