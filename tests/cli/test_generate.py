"""``ptdssm generate`` on a tiny byte-level LM checkpoint written in the checkpoint schema."""

import dataclasses
import json

import pytest
import torch

from ptdssm.cli import main
from ptdssm.cli.generate import decode_bytes, encode_bytes
from ptdssm.config import config_from_dict, config_to_dict
from ptdssm.data import TaskInfo
from ptdssm.experiments.checkpoint import atomic_save, best_payload
from ptdssm.models import build_model


def _save(path, *, head="lm", vocab=257, tokenizer="bytes", name="mamba"):
    cfg = config_from_dict({"model": {"name": name, "n_layers": 2, "d_model": 8, "norm": "rms",
                                      "layer": {"d_state": 4}},
                            "data": {"task": "tiny-bytes-lm"}})
    info = TaskInfo("tiny-bytes-lm", n_classes=vocab if head == "lm" else 3, seq_len=64, vocab_size=vocab,
                    head=head)
    torch.manual_seed(0)
    model = build_model(cfg.model, info)
    stored = dataclasses.asdict(info)
    if tokenizer is not None:
        stored["tokenizer"] = tokenizer
    atomic_save(best_payload(config=config_to_dict(cfg), task_info=stored, model=model.state_dict(), epoch=1,
                             val={"loss": 5.0}), path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("gen") / "best.pt")


def test_byte_codec():
    assert encode_bytes("hé") == [ord("h") + 1, 0xC3 + 1, 0xA9 + 1]
    assert decode_bytes(encode_bytes("hé") + [0]) == "hé"
    assert decode_bytes([0xC3 + 1]) == "\ufffd"


def test_generate_json_and_text(ckpt, capsys):
    args = ["generate", "--checkpoint", str(ckpt), "--prompt", "Hello", "--max-new-tokens", "12", "--device", "cpu"]
    assert main([*args, "--json", "--seed", "3", "--top-k", "20"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"prompt", "text", "new_tokens", "seconds", "tokens_per_s"}
    assert doc["prompt"] == "Hello" and doc["new_tokens"] == 12 and doc["seconds"] > 0
    assert 1 <= len(doc["text"].encode("utf-8", errors="surrogatepass")) <= 12 * 3  # U+FFFD is 3 bytes
    assert main([*args, "--json", "--seed", "3", "--top-k", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == doc["text"]  # seeded
    assert main([*args, "--temperature", "0"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("Hello") and "12 new tokens" in out.err


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "checkpoint not found"),
    ("token-head", "head 'token'"),
    ("words", "tokenizer 'words'"),
    ("vocab", "vocab_size 300"),
    ("empty", "--prompt must be"),
    ("negative", "--max-new-tokens"),
])
def test_generate_errors_exit_2_with_one_line(tmp_path, capsys, kind, message):
    path = tmp_path / "c.pt"
    if kind == "token-head":
        _save(path, head="token")
    elif kind == "words":
        _save(path, tokenizer="words")
    elif kind == "vocab":
        _save(path, vocab=300, tokenizer=None)
    elif kind in ("empty", "negative"):
        _save(path)
    prompt = "" if kind == "empty" else "hi"
    extra = ["--max-new-tokens", "-1"] if kind == "negative" else []
    assert main(["generate", "--checkpoint", str(path), "--prompt", prompt, "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bidirectional_checkpoint_is_refused(tmp_path, capsys):
    path = tmp_path / "bi.pt"
    cfg = config_from_dict({"model": {"name": "s4d", "n_layers": 1, "d_model": 8, "norm": "layer",
                                      "layer": {"d_state": 4, "bidirectional": True}}})
    info = TaskInfo("tiny-bytes-lm", n_classes=257, seq_len=64, vocab_size=257, head="lm")
    model = build_model(cfg.model, info)
    atomic_save(best_payload(config=config_to_dict(cfg), task_info=dataclasses.asdict(info),
                             model=model.state_dict(), epoch=1, val={}), path)
    assert main(["generate", "--checkpoint", str(path), "--prompt", "hi", "--device", "cpu"]) == 2
    assert "bidirectional" in capsys.readouterr().err
