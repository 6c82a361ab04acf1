"""Time and quality of the PTD solver per n, uncached, on one CPU core (the solver pins itself to one thread).

    python benchmarks/ptd.py [--n 16 32 64 128] [--json]

Targets (issue 2): kappa(V) <= 20 at ||E||_2/||A||_2 <= 0.10, all Re(lambda) < 0, under 60 s per n.
"""

import argparse
import json
import sys

from ptdssm import perturb_then_diagonalize


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for n in args.n:
        d = perturb_then_diagonalize(n=n, cache=False).diagnostics
        rows.append({k: d[k] for k in ("n", "kappa", "relative_perturbation", "backward_error", "max_real",
                                        "iterations", "seconds")})
        if not args.json:
            r = rows[-1]
            print(f"n={n:4d}  kappa={r['kappa']:6.2f}  ||E||/||A||={r['relative_perturbation']:.4f}  "
                  f"max Re={r['max_real']:.3f}  {r['seconds']:.1f} s", flush=True)
    if args.json:
        json.dump(rows, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
