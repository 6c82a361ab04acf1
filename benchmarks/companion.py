"""SpaceTime's companion kernel on CPU: the fast roots-of-unity algorithm against repeated squaring (the authors'
model path), side by side in one process.

    python benchmarks/companion.py [--L 1024 4096] [--kernels 128] [--d 64] [--repeats 3] [--threads 1] [--json]

Per length ``L``: ``kernels`` companion systems of state size ``d`` (the paper's decoder: 128 x 64), float32,
``a``, ``b``, ``c`` L1-normalized. Both implementations are timed alternating (the least of ``repeats`` calls
after a warm-up), for the kernel alone (no grad) and for kernel + backward of a fixed random cotangent. The ratio
``squaring / fast`` is what counts: on a shared 2-core box absolute times move by 2-10x, ratios measured in the
same process much less. The maximum relative difference of the two kernels is printed as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from ptdssm.kernels.companion import companion_kernel, companion_kernel_krylov, l1_normalize

IMPLS = {"fast": companion_kernel, "squaring": companion_kernel_krylov}


def _time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def run(L: int, n: int, d: int, repeats: int) -> dict:
    torch.manual_seed(0)
    raw = [torch.randn(n, d, requires_grad=True) for _ in range(3)]
    g = torch.randn(n, L)

    def kernel(impl):
        a, b, c = (l1_normalize(t) for t in raw)
        return IMPLS[impl](a, b, c, L)

    def fwd(impl):
        with torch.no_grad():
            kernel(impl)

    def fwdbwd(impl):
        (kernel(impl) * g).sum().backward()

    out = {"L": L, "kernels": n, "d": d}
    for mode, fn in (("fwd", fwd), ("fwdbwd", fwdbwd)):
        for impl in IMPLS:
            out[f"{impl}_{mode}_ms"] = _time(lambda fn=fn, impl=impl: fn(impl), repeats)
        out[f"{mode}_ratio"] = out[f"squaring_{mode}_ms"] / out[f"fast_{mode}_ms"]
    with torch.no_grad():
        kf, ks = kernel("fast"), kernel("squaring")
    out["max_rel_diff"] = float((kf - ks).abs().max() / ks.abs().max())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--L", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--kernels", type=int, default=128)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run(L, args.kernels, args.d, args.repeats) for L in args.L]
    if args.json:
        print(json.dumps({"load": os.getloadavg(), "threads": args.threads, "rows": rows}, indent=2))
        return
    print(f"companion kernel, {args.kernels} systems x d={args.d}, float32, {args.threads} thread(s), "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'L':>6} {'fast fwd':>10} {'squar. fwd':>11} {'ratio':>6} {'fast f+b':>10} {'squar. f+b':>11} "
          f"{'ratio':>6} {'rel diff':>9}")
    for r in rows:
        print(f"{r['L']:>6} {r['fast_fwd_ms']:>8.1f}ms {r['squaring_fwd_ms']:>9.1f}ms {r['fwd_ratio']:>6.1f} "
              f"{r['fast_fwdbwd_ms']:>8.1f}ms {r['squaring_fwdbwd_ms']:>9.1f}ms {r['fwdbwd_ratio']:>6.1f} "
              f"{r['max_rel_diff']:>9.1e}")


if __name__ == "__main__":
    main()
