r"""Autoregressive generation from a causal language model (a :class:`~ptdssm.models.SequenceModel` with the
``lm`` head) whose mixers have a step mode.

:func:`generate` runs the prompt in parallel (:meth:`SequenceModel.prefill_features`: each mixer's ``prefill``, the
state after each prompt's last real position), then samples one token at a time with
:meth:`SequenceModel.step_features`: the cost of a new token is one recurrent step of every block, whatever the
length of the context (the state has a fixed size: no cache grows with the sequence).

Sampling (:func:`sample_next`): the logits of the last position divided by ``temperature`` (0: greedy argmax),
optionally kept to the ``top_k`` largest, then one draw from their softmax with ``generator``. The padding id 0 is
never produced (the ``lm`` head gives it logit ``-inf``; it is masked here again).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .sequence import SequenceModel

__all__ = ["generate", "sample_next"]


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ids ``(B,)`` int64 from logits ``(B, V)``; id 0 (padding) is never drawn.

    Args:
        logits: ``(B, V)`` scores of the next token.
        temperature: ``>= 0``; 0 picks the argmax (greedy), otherwise the logits are divided by it.
        top_k: keep only the ``top_k`` largest logits (``None``: all).
        generator: random generator of the draw (on ``logits``' device).
    """
    logits = logits.detach().to(torch.float64 if logits.dtype == torch.float64 else torch.float32).clone()
    logits[:, 0] = float("-inf")
    if temperature == 0:
        return logits.argmax(dim=-1)
    if top_k is not None and top_k < logits.shape[-1] - 1:
        vals, idx = torch.topk(logits, top_k, dim=-1)
        logits = torch.full_like(logits, float("-inf")).scatter_(-1, idx, vals)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _check(model: nn.Module, prompt_ids: object, max_new_tokens: object, temperature: object,
           top_k: object) -> torch.Tensor:
    if not isinstance(model, SequenceModel) or model.head != "lm":
        what = f"a SequenceModel with head {model.head!r}" if isinstance(model, SequenceModel) else \
            type(model).__name__
        raise ValueError(f"generate needs a language model (a SequenceModel with head 'lm'), got {what}")
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError("prompt_ids must be an int64 tensor of token ids (B, L0)")
    if prompt_ids.dim() == 1:
        prompt_ids = prompt_ids[None]
    if prompt_ids.dim() != 2 or prompt_ids.shape[0] < 1 or prompt_ids.shape[1] < 1:
        raise ValueError(f"prompt_ids must have shape (B, L0) with B, L0 >= 1, got {tuple(prompt_ids.shape)}")
    V = int(model.vocab_size)  # type: ignore[arg-type]
    if bool(((prompt_ids < 0) | (prompt_ids >= V)).any()):
        raise ValueError(f"prompt_ids must lie in [0, {V}) (the vocabulary), got values in "
                         f"[{int(prompt_ids.min())}, {int(prompt_ids.max())}]")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
    return prompt_ids.long()


@torch.no_grad()
def generate(model: SequenceModel, prompt_ids: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None,
             lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Continue each prompt by ``max_new_tokens`` sampled tokens (module docstring).

    The model runs in eval mode (restored afterwards) without gradients.

    Args:
        model: a :class:`SequenceModel` with the ``lm`` head whose mixers have a step mode.
        prompt_ids: ``(B, L0)`` int64 token ids (``(L0,)`` is taken as one prompt).
        max_new_tokens: tokens to add (``>= 0``).
        temperature, top_k, generator: sampling (:func:`sample_next`).
        lengths: optional ``(B,)`` real lengths of right-padded prompts; each sequence then continues right after
            its own prompt, and its row ends with ``L0 - lengths[b]`` padding ids 0.

    Returns:
        ``(B, L0 + max_new_tokens)`` int64: the prompts followed by the new tokens.

    Raises:
        ValueError: not an ``lm`` model, a mixer without a step mode (e.g. bidirectional), or bad arguments.
    """
    prompt_ids = _check(model, prompt_ids, max_new_tokens, temperature, top_k)
    Bsz, L0 = prompt_ids.shape
    device = model.encoder.weight.device
    prompt_ids = prompt_ids.to(device)
    out = torch.cat([prompt_ids, prompt_ids.new_zeros(Bsz, max_new_tokens)], dim=1)
    if lengths is not None:
        lengths = lengths.to(device=device, dtype=torch.long)
        out[:, :L0] *= torch.arange(L0, device=device)[None, :] < lengths[:, None]  # pads are padding ids
    if max_new_tokens == 0:
        return out
    rows = torch.arange(Bsz, device=device)
    ends = torch.full((Bsz,), L0, device=device) if lengths is None else lengths
    was_training = model.training
    model.eval()
    try:
        h, state = model.prefill_features(out[:, :L0], lengths)
        h_last = h[rows, ends - 1]  # (B, H): features at each prompt's last real position
        for i in range(max_new_tokens):
            logits = model.decoder(h_last[:, None])[:, 0]
            tok = sample_next(logits, temperature=float(temperature), top_k=top_k, generator=generator)
            out[rows, ends + i] = tok
            if i + 1 < max_new_tokens:
                h_last, state = model._step_features(tok, state)  # checked by prefill_features
    finally:
        model.train(was_training)
    return out
