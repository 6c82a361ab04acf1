"""Benchmark the registered sequence families against the FFT floor (same as ``ptdssm bench layers``).

    python benchmarks/layers.py [--layers s4d s5 ...] [--lengths 1024 4096 16384] [--json]
"""

import sys

from ptdssm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "layers", *sys.argv[1:]]))
