"""ptdssm analyze: numerics of the papers (PTD diagnostics, transfer functions, eigenvector conditioning, HiPPO bases).

Subcommands::

    ptdssm analyze diagonalize  --n N [--ptd NAME] [--gamma G] [--method optimized|random] [--epsilon E]
                                [--seed S] [--json]
    ptdssm analyze transfer     --n N1 N2 ... [--ptd NAME] [--seeds K] [--gamma G] [--json] [--plot FILE]
    ptdssm analyze conditioning --n N1 N2 ... [--gamma G] [--trials T] [--json] [--plot FILE]
    ptdssm analyze basis        [--measure legs|legt|fout ...] [--n N] [--window W] [--t-max T] [--points P]
                                [--orders K] [--json] [--plot FILE]

``--ptd`` names the decomposition as the layers' ``init`` does: ``ptd`` (the default PTD), ``ptd-paper`` (the paper's
objective), ``ptd-paper-pairs`` or ``ptd-response`` (:mod:`ptdssm.theory.init`); the JSON names the objective used.
With ``--json`` exactly one JSON document goes to stdout; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable

from .._checks import check_choice, check_positive_float, check_positive_int, ensure_writable_file
from ..experiments.numerics import (
    FLOAT64_EIG_SATURATION,
    MAX_N,
    check_sizes,
    conditioning_row,
    conditioning_series,
    finite_or_none,
    transfer_rows,
)

# ------------------------------------------------------------------------------------------------------------
# argument handling


def _progress(iterable: Iterable[int], desc: str) -> Iterable[int]:
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (CI logs, tests); the bar never touches stdout.
    return tqdm(iterable, desc=desc, file=sys.stderr, disable=None, leave=False)


def _dump(doc: dict) -> None:
    print(json.dumps(doc, indent=2, allow_nan=False))


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Fixed-width text table: ``columns`` = (key, header, format)."""
    def cell(row: dict, key: str, fmt: str) -> str:
        v = row
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        return "-" if v is None else format(v, fmt)

    cells = [[h for _, h, _ in columns]] + [[cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c[i].rjust(widths[i]) for i in range(len(columns))) for c in cells]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# diagonalize


def _ptd_names() -> list[str]:
    from ..theory.init import PTD_INITS

    return [name for name in PTD_INITS if not name.startswith("s5-")]


def _ptd_kwargs(args: argparse.Namespace) -> dict:
    """``perturb_then_diagonalize`` options of ``--ptd`` (objective, pairs) and ``--response-weight``."""
    from ..theory.init import ptd_options

    opts = ptd_options(check_choice("--ptd", args.ptd, _ptd_names()))
    if opts["objective"] == "response":
        opts["response_weight"] = check_positive_float("--response-weight", args.response_weight)
    return opts


def _cmd_diagonalize(args: argparse.Namespace) -> int:
    from ..theory.ptd import perturb_then_diagonalize

    n = check_sizes([args.n])[0]
    gamma = check_positive_float("--gamma", args.gamma)
    epsilon = check_positive_float("--epsilon", args.epsilon)
    max_iter = None if args.max_iter is None else check_positive_int("--max-iter", args.max_iter)
    opts = _ptd_kwargs(args) if args.method == "optimized" else {}
    res = perturb_then_diagonalize(n=n, method=args.method, gamma=gamma, epsilon=epsilon, seed=args.seed,
                                   stability=args.stability, max_iter=max_iter, cache=not args.no_cache,
                                   progress=sys.stderr.isatty() and not args.json, **opts)
    diag = {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in res.diagnostics.items()}
    if args.json:
        _dump(diag)
        return 0
    print(f"PTD of HiPPO-LegS, n = {n} ({args.method}" + (f", {args.ptd}: objective {opts['objective']}, pairs "
                                                            f"{opts['pairs']})" if opts else ")"))
    width = max(len(k) for k in diag)
    for k, v in diag.items():
        print(f"  {k.ljust(width)}  {format(v, '.6g') if isinstance(v, float) else v}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# transfer

def _cmd_transfer(args: argparse.Namespace) -> int:
    ns = check_sizes(args.n)
    gamma = check_positive_float("--gamma", args.gamma)
    n_seeds = check_positive_int("--seeds", args.seeds)
    if args.plot:
        ensure_writable_file(args.plot, "--plot")
    seeds = list(range(args.seed, args.seed + n_seeds))
    opts = _ptd_kwargs(args)
    rows, panels = transfer_rows(_progress(ns, "transfer"), seeds, {"gamma": gamma, "ptd_seed": args.ptd_seed, **opts},
                                 curves=bool(args.plot))
    plot = None
    if args.plot:
        from ..plots import plot_transfer

        plot_transfer(panels, args.plot)
        plot = str(args.plot)
    if args.json:
        _dump({"command": "transfer", "seeds": seeds, "ptd": args.ptd, **opts, "gamma": gamma,
               "ptd_seed": args.ptd_seed, "rows": rows, "plot": plot})
        return 0
    print(f"S4D (Diag) and S4-PTD against S4 (DPLR); random unit-norm C, mean over seeds {seeds}; PTD {args.ptd}: "
          f"objective {opts['objective']}, pairs {opts['pairs']}")
    print(_table(rows, [
        ("n", "n", "d"), ("spike_frequency", "w_max", ".2f"), ("sup_dplr", "sup|G_DPLR|", ".3g"),
        ("sup_diag_error", "sup|Diag-DPLR|", ".3g"), ("sup_ptd_error", "sup|PTD-DPLR|", ".3g"),
        ("l2_exp_diag", "L2 e^-t Diag", ".3g"), ("l2_exp_ptd", "L2 e^-t PTD", ".3g"),
        ("l2_impulse_diag", "L2 imp Diag", ".3g"), ("l2_impulse_ptd", "L2 imp PTD", ".3g"),
        ("ptd.kappa", "kappa(PTD)", ".3g"), ("ptd.relative_perturbation", "|E|/|A|", ".3f"),
    ]))
    if plot:
        print(f"wrote {plot}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# conditioning


def _cmd_conditioning(args: argparse.Namespace) -> int:
    ns = check_sizes(args.n)
    gamma = check_positive_float("--gamma", args.gamma)
    trials = check_positive_int("--trials", args.trials)
    if args.plot:
        ensure_writable_file(args.plot, "--plot")
    rows = [conditioning_row(n, gamma=gamma, ptd_seed=args.ptd_seed, trials=trials)
            for n in _progress(ns, "conditioning")]
    plot = None
    if args.plot:
        from ..plots import plot_conditioning

        plot_conditioning(ns, conditioning_series(rows), args.plot)
        plot = str(args.plot)
    note = ("kappa_exact comes from float64 eig, which cannot resolve kappa above"
            f" ~{FLOAT64_EIG_SATURATION:.0e}"
            " and saturates near 1e19-1e21; the true kappa of HiPPO-LegS grows like (3 + 2 sqrt 2)^n"
            " (1.2e23 at n = 32)")
    if args.json:
        _dump({"command": "conditioning", "gamma": gamma, "ptd_seed": args.ptd_seed, "trials": trials,
               "rows": rows, "note": note, "plot": plot})
        return 0
    print(f"Eigenvector condition numbers of HiPPO-LegS (random: median of {trials} Gaussian E of PTD's"
          " size)")
    for r in rows:
        r["_exact"] = ("> " if r["exact_saturated"] else "") + (
            format(r["kappa_exact"], ".3g") if r["kappa_exact"] is not None else "inf")
    print(_table(rows, [
        ("n", "n", "d"), ("_exact", "kappa exact eig", "s"), ("kappa_ptd", "kappa PTD", ".3g"),
        ("relative_perturbation_ptd", "|E|/|A| PTD", ".4f"), ("kappa_random_median", "kappa random", ".3g"),
        ("relative_perturbation_random", "|E|/|A| random", ".4f"),
        ("kappa_random_over_ptd", "random/PTD", ".3g"),
    ]))
    print(f"note: {note}")
    if plot:
        print(f"wrote {plot}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# basis

#: largest state size of ``analyze basis`` (one dense float64 ``expm`` of an n x n matrix per measure)
BASIS_MAX_N = 2048


def _basis_panel(measure: str, n: int, window: float, t, orders: int) -> dict:
    from ..theory.basis import basis_closed_form, basis_errors, hippo_basis

    K = hippo_basis(measure, n, t, window=window)
    idx = [i for i in range(n) if not (measure == "fout" and i == 1)][:orders]  # FouT's index 1 is a dead state
    ref = basis_closed_form(measure, n, t, window=window)
    return {"measure": measure, "n": n, "window": window, "orders": idx, "t": t, "K": K[:, idx],
            "closed_form": ref[:, idx], "errors": basis_errors(measure, n, t, K, window=window)}


def _cmd_basis(args: argparse.Namespace) -> int:
    import numpy as np

    from ..theory.basis import BASIS_MEASURES

    measures = [check_choice("--measure", m, BASIS_MEASURES) for m in args.measure]
    n = check_positive_int("--n", args.n)
    if n > BASIS_MAX_N:
        raise ValueError(f"--n {n} is above the limit {BASIS_MAX_N} (a dense n x n matrix exponential per measure)")
    window = check_positive_float("--window", args.window)
    t_max = 2.0 * window if args.t_max is None else check_positive_float("--t-max", args.t_max)
    points = check_positive_int("--points", args.points, minimum=3)
    if points > 100_000:
        raise ValueError(f"--points must be at most 100000, got {points}")
    orders = check_positive_int("--orders", args.orders)
    if args.plot:
        ensure_writable_file(args.plot, "--plot")
    t = np.linspace(0.0, t_max, points)
    panels = [_basis_panel(m, n, window, t, orders) for m in _progress(measures, "basis")]
    plot = None
    if args.plot:
        from ..plots import plot_basis

        plot_basis(panels, args.plot)
        plot = str(args.plot)
    if args.json:
        rows = [{"measure": p["measure"], "orders": p["orders"], "errors": p["errors"],
                 "K": p["K"].T.round(10).tolist(), "closed_form": p["closed_form"].T.round(10).tolist()}
                for p in panels]
        _dump({"command": "basis", "n": n, "window": window, "t_max": t_max, "points": points,
               "t": t.round(12).tolist(), "measures": rows, "plot": plot})
        return 0
    print(f"Basis functions K_n(t) = (e^(tA) B)_n against their closed forms, n = {n}, window W = {window:g} (LegT "
          f"and FouT: 2/dt steps at W = 2); RMS over the first 8 orders")
    table = [{"measure": p["measure"], **p["errors"]} for p in panels]
    print(_table(table, [("measure", "measure", "s"), ("rms_low_window", "in window (0.025W..0.9W)", ".3g"),
                         ("rms_low_after", "after (t >= 1.15W)", ".3g"),
                         ("rms_all_after", "after, all orders", ".3g")]))
    if plot:
        print(f"wrote {plot}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# registration


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` and its subcommands to the ``ptdssm`` parser."""
    from ..theory.init import DEFAULT_PTD
    from ..theory.ptd import DEFAULT_GAMMA, DEFAULT_MAX_ITER, DEFAULT_RESPONSE_WEIGHT, DEFAULT_SPECTRAL_ITER

    p = subparsers.add_parser("analyze",
                              help="numerics of the papers: PTD, transfer functions, conditioning, HiPPO bases",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    sizes = f"(integers in 1..{MAX_N}; the cost grows like n^3)"

    def common(q: argparse.ArgumentParser, plot: bool) -> None:
        q.add_argument("--gamma", type=float, default=DEFAULT_GAMMA,
                       help=f"weight of ||E|| in the PTD objective, > 0; larger gives a smaller perturbation and a "
                            f"larger condition number (default {DEFAULT_GAMMA:g})")
        q.add_argument("--json", action="store_true",
                       help="print one JSON document on stdout and nothing else (default: a text table)")
        if plot:
            q.add_argument("--plot", metavar="FILE",
                           help="also write a figure to FILE, format from the suffix, e.g. .png (default: none)")

    def ptd_choice(q: argparse.ArgumentParser) -> None:
        q.add_argument("--ptd", metavar="NAME", default="ptd",
                       help=f"which decomposition, as the layers' init names it: ptd (the default PTD, now "
                            f"{DEFAULT_PTD}), ptd-paper (the paper's objective kappa + gamma ||E||), ptd-paper-pairs "
                            f"(same, conjugate pairs only), ptd-response (plus the relative state-response error, "
                            f"conjugate pairs only) (default ptd)")
        q.add_argument("--response-weight", type=float, default=DEFAULT_RESPONSE_WEIGHT,
                       help=f"weight of the state-response error in the ptd-response objective, > 0 (default "
                            f"{DEFAULT_RESPONSE_WEIGHT:g})")

    d = sub.add_parser("diagonalize", help="PTD of HiPPO-LegS of size n and its diagnostics",
                       description="Perturb-then-diagonalize HiPPO-LegS of size n and print the diagnostics "
                                   "(condition number, perturbation size, backward error, ...). Results are cached "
                                   "on disk ($PTDSSM_CACHE_DIR, default ~/.cache/ptdssm).")
    d.add_argument("--n", type=int, required=True, help=f"state size n {sizes}; required")
    d.add_argument("--method", choices=("optimized", "random"), default="optimized",
                   help="optimized: minimize the PTD objective; random: a Gaussian E of relative size --epsilon "
                        "(default optimized)")
    d.add_argument("--epsilon", type=float, default=0.03,
                   help="relative size ||E||_2/||A||_2 of the random perturbation, method random only "
                        "(default 0.03)")
    d.add_argument("--seed", type=int, default=0, help="random seed of the perturbation (default 0)")
    d.add_argument("--stability", choices=("reflect", "clip"), default="reflect",
                   help="how eigenvalues with Re >= 0 are made stable: reflect (Re -> -|Re|) or clip "
                        "(Re -> min(Re, -1e-4)) (default reflect)")
    d.add_argument("--max-iter", type=int, default=None,
                   help=f"iterations of the PTD optimization, >= 1 (default {DEFAULT_MAX_ITER} for ptd-paper, "
                        f"{DEFAULT_SPECTRAL_ITER} for the conjugate-pairs and response decompositions)")
    d.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the on-disk cache (default: cache on)")
    common(d, plot=False)
    ptd_choice(d)
    d.set_defaults(func=_cmd_diagonalize)

    t = sub.add_parser("transfer", help="sup and L2 errors of S4D and S4-PTD transfer functions against S4",
                       description="Transfer functions G(iw) of S4 (DPLR), S4D (diagonalized normal part) and "
                                   "S4-PTD for each n: sup and L2 errors against S4, averaged over random C.")
    t.add_argument("--n", type=int, nargs="+", required=True, help=f"state sizes {sizes}; required")
    t.add_argument("--seeds", type=int, default=1,
                   help="number of random unit-norm C to average over, >= 1 (default 1)")
    t.add_argument("--seed", type=int, default=0, help="first seed of C: seeds S .. S+K-1 (default 0)")
    t.add_argument("--ptd-seed", type=int, default=0, help="seed of the PTD optimization (default 0)")
    common(t, plot=True)
    ptd_choice(t)
    t.set_defaults(func=_cmd_transfer)

    c = sub.add_parser("conditioning", help="kappa(V) of exact eig vs PTD vs random perturbation",
                       description="Condition number of the eigenvector matrix of HiPPO-LegS from a float64 eig, "
                                   "of PTD, and of random perturbations of PTD's size, for each n.")
    c.add_argument("--n", type=int, nargs="+", required=True, help=f"state sizes {sizes}; required")
    c.add_argument("--trials", type=int, default=5,
                   help="random perturbations per n, >= 1; the median is reported (default 5)")
    c.add_argument("--ptd-seed", type=int, default=0, help="seed of the PTD optimization (default 0)")
    common(c, plot=True)
    c.set_defaults(func=_cmd_conditioning)

    b = sub.add_parser("basis", help="HiPPO basis functions e^(tA) B (LegS, LegT, FouT) against their closed forms",
                       description="Basis functions K_n(t) = (e^(tA) B)_n of the HiPPO systems in s4's normalisation "
                                   "(How to Train Your HiPPO): LegS's warped Legendre polynomials (exact), LegT's "
                                   "and FouT's windows of W time units (2/dt steps at W = 2), computed with a float64 "
                                   "matrix exponential and compared with the closed forms.")
    b.add_argument("--measure", nargs="+", default=["legs", "legt", "fout"], metavar="M",
                   help="one or more of legs, legt, fout (default: all three)")
    b.add_argument("--n", type=int, default=64, help=f"state size, 1..{BASIS_MAX_N} (default 64)")
    b.add_argument("--window", type=float, default=2.0,
                   help="window of LegT and FouT in time units, > 0 (default 2, s4's normalisation)")
    b.add_argument("--t-max", type=float, default=None,
                   help="last time of the grid, > 0 (default 2 x window)")
    b.add_argument("--points", type=int, default=401, help="grid points from 0 to --t-max, 3..100000 (default 401)")
    b.add_argument("--orders", type=int, default=4,
                   help="how many basis functions to plot and print in the JSON, >= 1 (default 4; FouT's dead "
                        "state 1 is skipped)")
    b.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout and nothing else (default: a text table)")
    b.add_argument("--plot", metavar="FILE",
                   help="also write a figure to FILE, format from the suffix, e.g. .png (default: none)")
    b.set_defaults(func=_cmd_basis)
