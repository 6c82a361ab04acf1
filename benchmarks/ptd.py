"""Time and quality of a PTD solve per n, uncached, on one CPU core (the solver pins itself to one thread).

    python benchmarks/ptd.py [--n 16 32 64 128] [--ptd ptd|ptd-paper|ptd-paper-pairs|ptd-response] [--json]

Per n: kappa(V), ||E||_2/||A||_2, the largest Re(lambda), the number of real eigenvalues, the CPU seconds of the
solve (a response solve includes the paper solve it starts from), and the transfer-function error of the result
against S4's, sup_w |G_PTD - G_DPLR| / sup_w |G_DPLR| (mean over 5 unit-norm C, the `analyze transfer` definitions).

Targets (issue 12, for the default PTD): kappa(V) <= 20, ||E||/||A|| <= 0.10, every Re(lambda) <= -0.5, sup error
<= 0.25 sup|G_DPLR| for n <= 32 and <= 0.5 for n = 64, under 120 s per n.
"""

import argparse
import json
import sys
import time

import numpy as np

from ptdssm import perturb_then_diagonalize
from ptdssm.theory.init import PTD_PRESETS, ptd_options
from ptdssm.theory.transfer import transfer_analysis


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--ptd", default="ptd", choices=["ptd", *PTD_PRESETS],
                   help="the decomposition, named as the layers' init (default ptd, the default PTD)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    opts = ptd_options(args.ptd)
    rows = []
    for n in args.n:
        t0 = time.process_time()
        res = perturb_then_diagonalize(n=n, cache=False, **opts)
        cpu = time.process_time() - t0
        d = res.diagnostics
        lam = np.asarray(res.eigenvalues)
        ratios = []
        for seed in range(5):
            a = transfer_analysis(n, seed=seed, ptd=res)
            ratios.append(a["sup_ptd_error"] / a["sup_dplr"])
        rows.append({"n": n, "ptd": args.ptd, "objective": opts.get("objective"), "pairs": opts.get("pairs"),
                     "kappa": float(d["kappa"]), "relative_perturbation": float(d["relative_perturbation"]),
                     "max_real": float(lam.real.max()), "real_eigenvalues": int(np.sum(np.abs(lam.imag) < 1e-9)),
                     "cpu_seconds": cpu, "sup_error_ratio": float(np.mean(ratios))})
        if not args.json:
            r = rows[-1]
            print(f"n={n:4d} {args.ptd}: kappa={r['kappa']:6.2f}  ||E||/||A||={r['relative_perturbation']:.4f}  "
                  f"max Re={r['max_real']:.3f}  real eigenvalues={r['real_eigenvalues']}  "
                  f"sup error / sup|G_DPLR|={r['sup_error_ratio']:.3f}  {cpu:.1f} CPU s", flush=True)
    if args.json:
        json.dump(rows, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
