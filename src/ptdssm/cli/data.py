"""ptdssm data: generate offline data in the LRA release layouts, and check a data folder for a task.

* ``ptdssm data generate listops --out DIR [--n N]`` writes ``DIR/listops-1000/basic_{train,val,test}.tsv``;
* ``ptdssm data generate pathfinder --out DIR [--n N] [--resolution 32]`` writes
  ``DIR/pathfinder<res>/curv_contour_length_14/{metadata,imgs}``;
* ``ptdssm data check --task T --data-dir D`` reads the task's data (as training would) and reports the folder, the
  split sizes, labels and vocabulary, or exactly which folder or file is missing (exit status 2). For the
  file-backed tasks (``ucr``, ``arrays``, ``csv``) it also reports the files read, the classes in id order (or the
  regression outputs), the series lengths and the normalization; for the text tasks (``fortunes``,
  ``text-bytes``) the files read (entries or bytes each), those skipped, the tokenizer and the bytes per split.
  ``--task my_module:my_task`` checks a plug-in task.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

import yaml

from .._checks import ensure_writable_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="generate offline data (listops, pathfinder) or check a data folder",
                              description="Generate offline data in the LRA release layouts, or check a data "
                                          "folder for a task.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    g = sub.add_parser("generate", help="write generated ListOps or Pathfinder data in the release layout",
                       description="Generate a dataset with a seeded generator, in the layout of the LRA release "
                                   "(so ptdssm train --data-dir DIR reads it like the real one): "
                                   "DIR/listops-1000/basic_{train,val,test}.tsv or "
                                   "DIR/pathfinder<res>/curv_contour_length_<k>/{metadata,imgs}.")
    g.add_argument("kind", choices=("listops", "pathfinder"), help="what to generate: listops or pathfinder")
    g.add_argument("--out", required=True, metavar="DIR",
                   help="output root, created if missing and checked writable before generating; required")
    g.add_argument("--n", type=int, default=None, metavar="N",
                   help="listops: training examples (default 2000); pathfinder: images (default 1000)")
    g.add_argument("--n-val", type=int, default=None, metavar="N",
                   help="listops: validation examples (default n/10)")
    g.add_argument("--n-test", type=int, default=None, metavar="N", help="listops: test examples (default n/10)")
    g.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    g.add_argument("--min-length", type=int, default=500,
                   help="listops: keep examples longer than this, in tokens (default 500)")
    g.add_argument("--max-length", type=int, default=2000,
                   help="listops: keep examples shorter than this, in tokens (default 2000)")
    g.add_argument("--max-depth", type=int, default=10, help="listops: maximum tree depth (default 10)")
    g.add_argument("--max-args", type=int, default=10, help="listops: most arguments per operator (default 10)")
    g.add_argument("--resolution", type=int, default=32,
                   help="pathfinder: image side in pixels, >= 16; 128 = Path-X (default 32)")
    g.add_argument("--contour-length", type=int, default=14,
                   help="pathfinder: paddles per target path; 14 = hard, the LRA setting (default 14)")
    g.add_argument("--per-batch", type=int, default=1000,
                   help="pathfinder: images per imgs/<k> folder and metadata file (default 1000)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON document, counts and statistics (default: text lines)")
    g.set_defaults(func=run_generate)

    c = sub.add_parser("check", help="read a task's data and report what was found or what is missing",
                       description="Read the data of a task as training would (finding the release folder under "
                                   "--data-dir, building vocabularies and the cache) and report the folder, split "
                                   "sizes, labels and vocabulary, or which folder or file is missing (exit 2).")
    c.add_argument("--task", required=True, metavar="T",
                   help="task name (listops, text, retrieval, image, ucr, arrays, csv, ..., or my_module:my_task); "
                        "required")
    c.add_argument("--data-dir", metavar="D", default=None,
                   help="data folder, must exist (default: $PTDSSM_DATA_DIR, else the task's own)")
    c.add_argument("--seq-len", type=int, default=None, metavar="L",
                   help="sequence length in positions (config key data.seq_len; default: the task's)")
    c.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a task option (data.options), e.g. --option level=byte (repeatable; default: none)")
    c.add_argument("--json", action="store_true", help="print one JSON document (default: text lines)")
    c.set_defaults(func=run_check)


def _emit(doc: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print("\n".join(lines))


def run_generate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    ensure_writable_dir(args.out, "--out")
    if args.kind == "listops":
        from ..data.generators.listops import ListOpsParams, write_listops_release

        params = ListOpsParams(min_length=args.min_length, max_length=args.max_length, max_depth=args.max_depth,
                               max_args=args.max_args)
        params.validate()
        res = write_listops_release(args.out, args.n or 2000, args.n_val, args.n_test, seed=args.seed,
                                    params=params)
        st = res["stats"]
        lines = [f"wrote {res['folder']}: " + ", ".join(f"{k} {v}" for k, v in res["counts"].items()),
                 "token length (no parentheses): min {min} median {median} mean {mean:.0f} max {max}".format(
                     **st["length"]),
                 "labels: " + " ".join(f"{k}:{v:.1%}" for k, v in st["label_freq"].items())]
    else:
        from ..data.generators.pathfinder import write_pathfinder_release

        if args.resolution < 16:
            raise ValueError(f"--resolution must be >= 16, got {args.resolution}")
        res = write_pathfinder_release(args.out, args.n or 1000, resolution=args.resolution,
                                       contour_length=args.contour_length, seed=args.seed,
                                       per_batch=args.per_batch)
        lines = [f"wrote {res['folder']}: {res['n']} images",
                 "labels: " + " ".join(f"{k}:{v:.1%}" for k, v in res["label_freq"].items()),
                 f"pixels brighter than 60/255: {res['bright_fraction']:.1%}"]
    res["seconds"] = round(time.perf_counter() - t0, 2)
    lines.append(f"({res['seconds']} s)")
    _emit(res, args.json, lines)
    return 0


def _parse_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _report_files(extras: dict[str, Any], info: Any, doc: dict[str, Any], lines: list[str]) -> None:
    """The file-backed tasks' extras: files, classes / regression outputs, lengths, normalization."""
    doc["head"], doc["loss"] = info.head, info.loss
    if "files" in extras:
        doc["files"] = extras["files"]
        lines.append("  files: " + ", ".join(f"{k} {v}" for k, v in extras["files"].items()))
    if "classes" in extras:
        doc["classes"] = extras["classes"]
        shown = ", ".join(f"{i}={c}" for i, c in enumerate(extras["classes"][:20]))
        lines.append(f"  classes ({len(extras['classes'])}): {shown}{' ...' if len(extras['classes']) > 20 else ''}")
    elif info.loss == "mse":
        lines.append(f"  regression: {info.n_classes} output(s), loss mse")
    if info.head == "forecast":  # forecasting tasks: the series, its channels, the borders and the train scaler
        for key in ("file", "n_steps", "columns", "inputs", "targets", "borders", "scaler"):
            if key in extras:
                doc[key] = extras[key]
                lines.append(f"  {key.replace('_', ' ')}: {extras[key]}")
        doc["lookback"], doc["horizon"] = info.seq_len, info.target_len
        lines.append(f"  windows: lookback {info.seq_len} -> horizon {info.target_len}")
    if "length_range" in extras:
        doc["length_range"] = extras["length_range"]
        lines.append("  series length: {} to {} (seq_len {})".format(*extras["length_range"], info.seq_len))
    if "normalization" in extras:
        doc["normalization"] = extras["normalization"]
        lines.append(f"  normalization (train mean, std): {extras['normalization']}")


def run_check(args: argparse.Namespace) -> int:
    from ..config import DataConfig
    from ..data import build_task

    cfg = DataConfig(task=args.task, data_dir=args.data_dir, seq_len=args.seq_len,
                     options=_parse_options(args.options))
    cfg.validate()
    t0 = time.perf_counter()
    data = build_task(cfg)
    info = data.info
    sizes = data.sizes()
    doc: dict[str, Any] = {"task": info.name, "sizes": sizes, "n_classes": info.n_classes, "seq_len": info.seq_len,
                           "vocab_size": info.vocab_size, "d_input": info.d_input, "is_pair": info.is_pair}
    lines = [f"task {info.name}: {info.description}"]
    if "folder" in data.extras:
        doc["folder"] = data.extras["folder"]
        lines.append(f"  found: {data.extras['folder']}")
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    _report_files(data.extras, info, doc, lines)
    if len(data.train) > 0:  # type: ignore[arg-type]
        sample = [data.train[i] for i in range(min(len(data.train), 2000))]  # type: ignore[arg-type]
        labels = Counter(int(s[1]) for s in sample if not hasattr(s[1], "dim") or s[1].dim() == 0)
        x0 = sample[0][0][0] if info.is_pair else sample[0][0]
        doc["train_label_counts_first_2000"] = dict(sorted(labels.items()))
        doc["example_shape"] = list(x0.shape)
        counts = " ".join(f"{k}:{v}" for k, v in sorted(labels.items()))
        if info.head != "forecast":  # a forecast's targets are the horizon values, not labels
            lines.append(f"  train labels (first {len(sample)}): {counts}")
        lines.append(f"  example x: {tuple(x0.shape)} {x0.dtype}")
    if "vocab" in data.extras:
        vocab = data.extras["vocab"]
        doc["vocab_built"] = len(vocab)
        lines.append(f"  vocabulary: {len(vocab)} entries (embedding size {info.vocab_size})")
    if info.tokenizer:  # text tasks: how text maps to ids, and the bytes (entries) per split
        doc["tokenizer"] = info.tokenizer
        lines.append(f"  tokenizer: {info.tokenizer} (head {info.head}, vocabulary {info.vocab_size})")
    for key in ("stream_bytes", "entries"):
        if key in data.extras:
            doc[key] = data.extras[key]
            lines.append(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in data.extras[key].items()))
    for key in ("skipped_empty", "skipped_meta", "skipped"):
        if data.extras.get(key):
            doc[key] = data.extras[key]
            lines.append(f"  {key.replace('_', ' ')}: {len(data.extras[key])} ({data.extras[key][0]} ...)")
    if "truncated" in data.extras:
        doc["truncated"] = data.extras["truncated"]
        lines.append(f"  examples truncated to seq_len: {data.extras['truncated']}")
    doc["seconds"] = round(time.perf_counter() - t0, 2)
    lines.append(f"  ok ({doc['seconds']} s)")
    _emit(doc, args.json, lines)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: ptdssm data ...")
