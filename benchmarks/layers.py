"""Benchmark the registered sequence families against the FFT floor and against their own projections, and check
the targets the families declare (same as ``ptdssm bench layers``; see benchmarks/README.md).

    python benchmarks/layers.py [--layers s4d s5 ...] [--lengths 1024 4096 16384] [--batch 16] [--width 256]
                                [--repeats 3] [--threads 2] [--no-proj] [--json]
"""

import sys

from ptdssm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "layers", *sys.argv[1:]]))
