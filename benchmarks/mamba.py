"""Mamba-1 / Mamba-2 blocks against their own Linear layers, and the streaming cost per token (same as
``ptdssm bench mamba``; see benchmarks/README.md for a measured table).

    python benchmarks/mamba.py [--lengths 1024 4096] [--batch 8] [--width 256] [--d-state 16] [--expand 2]
                               [--modes fwd fwdbwd] [--threads 1] [--repeats 3] [--json] [--profile mamba]
"""

import sys

from ptdssm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "mamba", *sys.argv[1:]]))
