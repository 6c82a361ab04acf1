"""Selective scan on CPU: the chunked autograd Function against the one-step reference (split with ``unbind``).

    python benchmarks/selective_scan.py [--cases 2x512 8x256] [--L 1024 4096] [--repeats 3] [--threads 2] [--json]

Mamba-1 inputs (fp32): ``u, delta, z (B, D, L)``, input-dependent ``B, C (B, N, L)``, ``A = -(1..N)``, ``D``,
``delta_bias`` with the softplus, N = 16. Per case, one subprocess times both implementations alternating (minimum
over repeats after a warm-up, of a no-grad forward and of forward+backward), and one subprocess per implementation
measures the peak-RSS rise of one forward+backward over its inputs. The machine load average is printed with the
table: on a shared 2-core box the absolute times move by 2-10x, the ratios measured in the same process much less.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

N_STATE = 16


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _inputs(Bsz: int, D: int, L: int) -> dict:
    torch.manual_seed(0)
    leaf = dict(u=torch.randn(Bsz, D, L), delta=torch.randn(Bsz, D, L) - 2.0,
                A=-torch.arange(1, N_STATE + 1.0).repeat(D, 1), B=torch.randn(Bsz, N_STATE, L),
                C=torch.randn(Bsz, N_STATE, L), D=torch.ones(D), z=torch.randn(Bsz, D, L),
                delta_bias=torch.zeros(D))
    for t in leaf.values():
        t.requires_grad_(True)
    return leaf


def _fwd_bwd(fn, leaf: dict) -> tuple[float, float]:
    t0 = time.perf_counter()
    with torch.no_grad():
        fn(**leaf, delta_softplus=True)
    t1 = time.perf_counter()
    fn(**leaf, delta_softplus=True).sum().backward()
    t2 = time.perf_counter()
    for t in leaf.values():
        t.grad = None
    return t1 - t0, t2 - t1


def _one(mode: str, Bsz: int, D: int, L: int, repeats: int, threads: int) -> dict:
    """``mode`` "time": both implementations alternating in this process (min over repeats after a warm-up);
    "fast" / "ref": one forward+backward of that implementation, for its peak-RSS rise over the inputs."""
    from ptdssm.kernels.selective_scan import selective_scan, selective_scan_ref

    torch.set_num_threads(threads)
    fns = {"fast": selective_scan, "ref": selective_scan_ref}
    leaf = _inputs(Bsz, D, L)
    if mode != "time":
        base = _rss_mib()
        _fwd_bwd(fns[mode], leaf)
        return {"peak_rise_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}
    times = {k: ([], []) for k in fns}
    for rep in range(repeats + 1):
        for k, fn in fns.items():
            f, fb = _fwd_bwd(fn, leaf)
            if rep:
                times[k][0].append(f)
                times[k][1].append(fb)
    return {f"{k}_{w}": min(v[i]) for k, v in times.items() for i, w in enumerate(("fwd_s", "fwdbwd_s"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["2x512", "8x256"], help="BxD")
    p.add_argument("--L", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--one", nargs=4, metavar=("MODE", "B", "D", "L"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        impl, b, d, L = args.one
        print(json.dumps(_one(impl, int(b), int(d), int(L), args.repeats, args.threads)))
        return 0
    rows = []
    load0 = os.getloadavg()[0]
    if not args.json:
        print(f"torch {torch.__version__}, threads {args.threads}, N={N_STATE}, fp32, load average {load0:.2f}")
        print(f"{'B':>3} {'D':>4} {'L':>5} | {'fast fwd':>9} {'ref fwd':>8} {'ratio':>6} | {'fast f+b':>9} "
              f"{'ref f+b':>8} {'ratio':>6} | {'fast MiB':>8} {'ref MiB':>8}", flush=True)
    for case in args.cases:
        b, d = (int(v) for v in case.split("x"))
        for L in args.L:
            res = {}
            for mode in ("time", "fast", "ref"):
                cmd = [sys.executable, __file__, "--one", mode, str(b), str(d), str(L),
                       "--repeats", str(args.repeats), "--threads", str(args.threads)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                res[mode] = json.loads(out.strip().splitlines()[-1])
            t = res["time"]
            f = {"fwd_s": t["fast_fwd_s"], "fwdbwd_s": t["fast_fwdbwd_s"], **res["fast"]}
            r = {"fwd_s": t["ref_fwd_s"], "fwdbwd_s": t["ref_fwdbwd_s"], **res["ref"]}
            row = {"B": b, "D": d, "L": L, "fast": f, "ref": r, "fwd_ratio": r["fwd_s"] / f["fwd_s"],
                   "fwdbwd_ratio": r["fwdbwd_s"] / f["fwdbwd_s"]}
            rows.append(row)
            if not args.json:
                print(f"{b:>3} {d:>4} {L:>5} | {f['fwd_s']:9.3f} {r['fwd_s']:8.3f} {row['fwd_ratio']:6.2f} | "
                      f"{f['fwdbwd_s']:9.3f} {r['fwdbwd_s']:8.3f} {row['fwdbwd_ratio']:6.2f} | "
                      f"{f['peak_rise_mib']:8.0f} {r['peak_rise_mib']:8.0f}", flush=True)
    load1 = os.getloadavg()[0]
    if args.json:
        json.dump({"load_before": load0, "load_after": load1, "rows": rows}, sys.stdout)
        print()
    else:
        print(f"(seconds; ratio = ref / fast; MiB = peak RSS rise over the inputs; load average after {load1:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
