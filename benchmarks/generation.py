"""Generation cost per token against the context length: step mode (fixed-size state) versus recomputing a full
forward per new token, for a small Mamba LM and an S4D LM side by side.

For each model and context length L: a prompt of L random byte ids is prefilled (``SequenceModel.prefill``), then
``--steps`` tokens are fed one at a time with ``SequenceModel.step``; the step time is the median over those steps.
The contrast is one full forward over L + 1 tokens (what a model without a step mode pays per new token), median of
``--repeats``. The step time should be flat in L; the forward grows with L.

    python benchmarks/generation.py            # ~30 s on 1 thread
    python benchmarks/generation.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ptdssm.layers.registry import build_layer, get_family
from ptdssm.models import SequenceModel

VOCAB = 257


def lm(name: str, d_model: int, n_layers: int, layer: dict) -> SequenceModel:
    torch.manual_seed(0)
    layers = [build_layer(name, d_model, layer) for _ in range(n_layers)]
    return SequenceModel(layers, d_model, VOCAB, vocab_size=VOCAB, norm="rms", block=get_family(name).block,
                         head="lm").eval()


@torch.no_grad()
def measure(model: SequenceModel, L: int, steps: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(L)
    prompt = torch.randint(1, VOCAB, (1, L), generator=g)
    t0 = time.perf_counter()
    _, state = model.prefill(prompt)
    prefill_s = time.perf_counter() - t0
    toks = torch.randint(1, VOCAB, (steps + 2,), generator=g)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        _, state = model.step(toks[i:i + 1], state)
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times[2:])  # the first steps warm up
    x = torch.cat([prompt, toks[:1, None]], 1)
    fwd = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        fwd.append(time.perf_counter() - t0)
    forward_s = statistics.median(fwd)
    return {"L": L, "prefill_ms": 1e3 * prefill_s, "step_ms": 1e3 * step_s, "forward_ms": 1e3 * forward_s,
            "ratio": forward_s / step_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 1024, 8192])
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = {"mamba": lm("mamba", args.d_model, args.layers, {"d_state": 16}),
              "s4d": lm("s4d", args.d_model, args.layers, {"d_state": 64})}
    for m in models.values():  # warm up both paths once
        measure(m, 16, 2, 1)
    rows = []
    for L in args.lengths:
        for name, m in models.items():
            rows.append({"model": name, **measure(m, L, args.steps, args.repeats)})
    if args.json:
        print(json.dumps({"d_model": args.d_model, "layers": args.layers, "threads": args.threads, "rows": rows}))
        return
    print(f"# batch 1, d_model {args.d_model}, {args.layers} layers, RMSNorm, vocab {VOCAB}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print("| model | L | prefill ms | step ms / token | full forward ms / token | forward / step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['L']} | {r['prefill_ms']:.1f} | {r['step_ms']:.3f} | {r['forward_ms']:.1f} | "
              f"{r['ratio']:.0f}x |")


if __name__ == "__main__":
    main()
