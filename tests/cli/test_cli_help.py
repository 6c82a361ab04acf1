"""Help that helps: every subcommand has a one-line description, every option states its default, no reST markup
reaches the terminal, and the help states the defaults actually used. (``ptdssm bench`` is checked by its own
tests.)"""

from __future__ import annotations

import argparse
import re

import pytest

from ptdssm.cli import build_parser

SKIP = {("ptdssm", "bench")}


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("ptdssm",)):
    """``(path, parser, one-line help shown in the parent's listing)`` of every parser below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                p = (*path, name)
                if p[:2] in SKIP:
                    continue
                yield p, sub, listed.get(name)
                yield from _walk(sub, p)


PARSERS = list(_walk(build_parser()))


def _id(item) -> str:
    return " ".join(item[0])


@pytest.mark.parametrize("item", PARSERS, ids=_id)
def test_every_subcommand_has_a_one_line_description(item):
    path, parser, listed = item
    assert listed and "\n" not in listed and len(listed) <= 100, f"{' '.join(path)}: listing {listed!r}"
    assert parser.description, f"{' '.join(path)} has no description"


@pytest.mark.parametrize("item", PARSERS, ids=_id)
def test_every_option_states_its_default(item):
    path, parser, _ = item
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
            continue
        text = action.help or ""
        assert "default" in text or "required" in text, f"{' '.join(path)} {action.option_strings[0]}: {text!r}"


@pytest.mark.parametrize("item", [((), build_parser(), "top")] + PARSERS, ids=lambda it: _id(it) or "ptdssm")
def test_no_rest_markup_in_terminal_text(item):
    _, parser, listed = item
    text = parser.format_help() + (listed or "")
    for mark in ("`", ":class:", ":func:", ":mod:"):
        assert mark not in text, f"{mark!r} in the help of {parser.prog}"
    assert not re.search(r"(?m)^\s*\.\. \w+::", text), f"a reST directive in the help of {parser.prog}"


def test_reproduce_robustness_states_the_width_it_uses():
    """--d-model's default is the config's: 64 for the CPU budget, 128 at the paper's scale (read from the configs)."""
    from ptdssm.config import load_config
    from ptdssm.experiments.reproduce import robustness_config

    helps = {" ".join(p): s for p, s, _ in PARSERS}
    text = helps["ptdssm reproduce robustness"].format_help().replace("\n", " ")
    text = " ".join(text.split())
    for name in ("fashion-mnist-cpu", "scifar-paper"):
        width = load_config(robustness_config(name)).model.d_model
        assert f"{name} {width}" in text.replace("- ", "-")


def test_robustness_offers_every_noise_model():
    from ptdssm.experiments.noise import NOISE_KINDS

    helps = {" ".join(p): s for p, s, _ in PARSERS}
    kind = next(a for a in helps["ptdssm robustness"]._actions if "--kind" in a.option_strings)
    assert tuple(kind.choices) == NOISE_KINDS and "fourier" in NOISE_KINDS
