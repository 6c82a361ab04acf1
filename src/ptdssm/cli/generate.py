"""``ptdssm generate``: continue a text prompt with a byte-level language-model checkpoint.

The checkpoint's model must have the ``lm`` head over the byte vocabulary: token id = byte value + 1 (id 0 is
padding), ``vocab_size`` 257, and, where the checkpoint's task stores a ``tokenizer``, ``"bytes"``. The prompt is
encoded as UTF-8 bytes, run in parallel through the model, and continued one token at a time in step mode
(:func:`ptdssm.models.generate`); the new bytes are decoded as UTF-8 (invalid sequences become U+FFFD).

Output: the prompt followed by its continuation on stdout (timing on stderr), or with ``--json`` one document
``{"prompt", "text", "new_tokens", "seconds", "tokens_per_s"}`` where ``text`` is the continuation alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

BYTE_VOCAB = 257  # 256 byte values shifted by one, and the padding id 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import DEVICE_HELP

    p = subparsers.add_parser(
        "generate", help="continue a text prompt with a byte-level language-model checkpoint",
        description="Load a checkpoint of a byte-level language model (head 'lm', 257 tokens: byte + 1, 0 = "
                    "padding), run the prompt in parallel, then sample new bytes one step at a time (the cost per "
                    "token does not grow with the context).")
    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="checkpoint file, e.g. RUN/checkpoints/best.pt; required")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue (UTF-8); required")
    p.add_argument("--max-new-tokens", type=int, default=200, metavar="N",
                   help="bytes to generate, >= 0 (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="sampling temperature; 0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, metavar="K",
                   help="sample among the K most likely bytes only, >= 1 (default: all 256)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of the sampling (default 0)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout (default: the text, timing on stderr)")
    p.set_defaults(func=run)


def encode_bytes(text: str) -> list[int]:
    """Token ids of ``text``: its UTF-8 bytes plus one."""
    return [b + 1 for b in text.encode("utf-8")]


def decode_bytes(ids: Any) -> str:
    """Text of token ids (byte + 1; padding ids 0 are dropped), invalid UTF-8 replaced by U+FFFD."""
    return bytes(int(i) - 1 for i in ids if int(i) > 0).decode("utf-8", errors="replace")


def _check_byte_lm(path: str, model: Any, ckpt: dict[str, Any]) -> None:
    head = getattr(model, "head", None)
    if head != "lm":
        raise ValueError(f"checkpoint {path}: its model has head {head!r}; generate needs a language model "
                         "(head 'lm')")
    vocab = getattr(model, "vocab_size", None)
    stored = ckpt.get("task_info") if isinstance(ckpt.get("task_info"), dict) else {}
    tokenizer = stored.get("tokenizer", "bytes")  # checkpoints written before TaskInfo.tokenizer: by vocab_size
    if tokenizer != "bytes" or vocab != BYTE_VOCAB:
        raise ValueError(f"checkpoint {path}: generate reads byte-level models (tokenizer 'bytes', vocab_size "
                         f"{BYTE_VOCAB}); this one has tokenizer {stored.get('tokenizer')!r} and vocab_size {vocab}")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..experiments.distributed import resolve_device
    from ..experiments.evaluate import load_checkpoint
    from ..models import generate

    if not args.prompt:
        raise ValueError("--prompt must be a non-empty text")
    if args.max_new_tokens < 0:
        raise ValueError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if not args.temperature >= 0 or args.temperature == float("inf"):
        raise ValueError(f"--temperature must be a finite number >= 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    device = resolve_device(args.device)
    model, _cfg, ckpt = load_checkpoint(args.checkpoint, device)
    _check_byte_lm(args.checkpoint, model, ckpt)

    prompt = torch.tensor([encode_bytes(args.prompt)], dtype=torch.long, device=device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    t0 = time.perf_counter()
    out = generate(model, prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   generator=gen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    new = out[0, prompt.shape[1]:].tolist()
    text = decode_bytes(new)
    rate = len(new) / seconds if seconds > 0 else float("inf")
    if args.json:
        json.dump({"prompt": args.prompt, "text": text, "new_tokens": len(new), "seconds": seconds,
                   "tokens_per_s": rate}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(args.prompt + text + "\n")
        print(f"{len(new)} new tokens in {seconds:.3f} s ({rate:.1f} tokens/s)", file=sys.stderr)
    return 0
