"""``SequenceModel``: encoder -> residual blocks around sequence mixers -> final norm -> head.

* **Encoder**: token ids ``(B, L)`` through ``Embedding(vocab_size, H)`` (id 0 = padding), or values
  ``(B, L, d_input)`` through ``Linear(d_input, H)``.
* **Blocks**: one :class:`~ptdssm.models.blocks.ResidualBlock` per mixer, of the family's block kind.
* **Head** (from the task's :attr:`~ptdssm.data.TaskInfo.head`, see :mod:`ptdssm.models.heads`): ``pooled`` ->
  ``(B, C)`` (two-document pair tasks: the retrieval head), ``last-k`` -> ``(B, K, C)``, ``token`` -> ``(B, L, C)``,
  ``lm`` -> ``(B, L, vocab_size)`` with the output weight tied to the embedding, ``forecast`` -> ``(B, K, C)``: the
  lookback window ``(B, L, d_input)`` is extended by ``K`` zero steps and a future-indicator channel
  (:func:`~ptdssm.models.heads.append_future`; the encoder is ``Linear(d_input + 1, H)``) and the last-``K`` head
  reads the future positions.

**Streaming** (recurrent mode, for causal mixers with a step mode): :meth:`SequenceModel.init_state` (one mixer
state per block, of a size that does not grow with the length), :meth:`SequenceModel.step` (one position ->
``(B, C)``, equal to :meth:`~SequenceModel.forward` position by position) and :meth:`SequenceModel.prefill` (a
prompt in parallel -> per-position outputs and the state after each sequence's last real position, ready for
``step``). The outputs of a position are the head applied there: the ``token``/``lm`` outputs, the ``last-k``
head's linear map, or the ``pooled`` (``pool="last"``) classifier of the prefix so far; mean pooling and pair tasks
do not stream. :func:`ptdssm.models.generation.generate` samples from ``lm`` models this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data.base import HEADS
from .blocks import ACTIVATIONS, ChannelMix, ChannelNorm, NormKind, ResidualBlock
from .heads import ClassificationHead, LastKHead, LMHead, RetrievalHead, TokenHead, append_future, pool_sequence

__all__ = ["ACTIVATIONS", "HEADS", "ChannelMix", "ResidualBlock", "SequenceModel", "pool_sequence"]

LM_EMBED_STD = 0.02  # std of a tied LM embedding (GPT-2's and Mamba's choice); see _init_tied_embedding


class SequenceModel(nn.Module):
    """A stack of residual blocks around sequence mixers, with an encoder and a head.

    Args:
        layers: the mixers, one per residual block, each ``(B, L, H) -> (B, L, H)`` with ``lengths=``.
        d_model: ``H``.
        n_classes: outputs per prediction ``C`` (classes, or regression outputs); ignored by the ``lm`` head, whose
            outputs are the ``vocab_size`` tokens.
        vocab_size: token inputs ``(B, L)`` int64 through ``Embedding(vocab_size, H)`` (id 0 = padding), or
        d_input: continuous inputs ``(B, L, d_input)`` through ``Linear(d_input, H)``.
        norm, prenorm, activation, dropout, bn_momentum, residual: block layout (see :class:`ResidualBlock`).
        block: block kind, ``"ssm"``, ``"mixer"`` or ``"mlp"`` (the family's :attr:`Family.block`).
        head: ``"pooled"``, ``"last-k"``, ``"token"``, ``"lm"`` or ``"forecast"``.
        target_len: ``K`` of the ``last-k`` head, the horizon of the ``forecast`` head.
        pool: ``"mean"`` or ``"last"`` (the ``pooled`` head).
        is_pair: two-document task: ``forward(x, lengths, x2, lengths2)`` and a :class:`RetrievalHead`.
        retrieval_hidden: hidden width of the retrieval head.
    """

    def __init__(self, layers: Sequence[nn.Module], d_model: int, n_classes: int, *, vocab_size: int | None = None,
                 d_input: int | None = None, norm: NormKind = "batch", prenorm: bool = True,
                 activation: str = "glu", dropout: float = 0.0, pool: str = "mean", bn_momentum: float = 0.1,
                 is_pair: bool = False, retrieval_hidden: int | None = None, residual: bool = True,
                 block: str = "ssm", head: str = "pooled", target_len: int | None = None) -> None:
        super().__init__()
        if (vocab_size is None) == (d_input is None):
            raise ValueError("give exactly one of vocab_size (token inputs) and d_input (continuous inputs)")
        if pool not in ("mean", "last"):
            raise ValueError(f"unknown pooling {pool!r}; expected mean or last")
        if len(layers) == 0:
            raise ValueError("a SequenceModel needs at least one sequence layer")
        self._check_head(head, vocab_size, target_len, is_pair)
        self.d_model, self.pool, self.is_pair, self.head = d_model, pool, is_pair, head
        self.n_classes = int(vocab_size) if head == "lm" else n_classes  # type: ignore[arg-type]
        self.vocab_size, self.d_input, self.target_len = vocab_size, d_input, target_len
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model, padding_idx=0)
            if head == "lm":
                self._init_tied_embedding(self.encoder)  # type: ignore[arg-type]
        else:
            extra = 1 if head == "forecast" else 0  # the future-indicator channel of append_future
            self.encoder = nn.Linear(int(d_input) + extra, d_model)  # type: ignore[arg-type]
        self.blocks = nn.ModuleList(
            ResidualBlock(layer, d_model, block=block, norm=norm, prenorm=prenorm, activation=activation,
                          dropout=dropout, bn_momentum=bn_momentum, residual=residual)
            for layer in layers
        )
        self.final_norm = ChannelNorm(norm if prenorm else "none", d_model, bn_momentum)
        self.decoder = self._make_head(retrieval_hidden)

    @staticmethod
    def _init_tied_embedding(emb: nn.Embedding) -> None:
        """``E ~ N(0, LM_EMBED_STD^2)``, padding row zero. The head's logits are ``h E^T`` with ``h`` normalized to
        unit RMS by the final norm, so each logit has std ``LM_EMBED_STD * sqrt(H)``: the first loss is about
        ``ln V`` nats, where PyTorch's default ``N(0, 1)`` gave logits of std ``sqrt(H)`` and a first loss of ~100
        nats (measured on the fortunes recipe, H = 128)."""
        with torch.no_grad():
            emb.weight.normal_(0.0, LM_EMBED_STD)
            if emb.padding_idx is not None:
                emb.weight[emb.padding_idx].zero_()

    @staticmethod
    def _check_head(head: str, vocab_size: int | None, target_len: int | None, is_pair: bool) -> None:
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; expected one of: {', '.join(HEADS)}")
        if head == "lm" and vocab_size is None:
            raise ValueError("head 'lm' needs token inputs (vocab_size): its weight is the input embedding's")
        if (head in ("last-k", "forecast")) != (target_len is not None):
            raise ValueError(f"target_len is required with heads 'last-k' and 'forecast' and only then (head "
                             f"{head!r}, target_len {target_len!r})")
        if head == "forecast" and vocab_size is not None:
            raise ValueError("head 'forecast' needs continuous inputs (d_input), not token ids")
        if is_pair and head != "pooled":
            raise ValueError(f"a pair (retrieval) task needs head 'pooled', got {head!r}")

    def _make_head(self, retrieval_hidden: int | None) -> nn.Module:
        H, C = self.d_model, self.n_classes
        if self.head == "lm":
            return LMHead(self.encoder)  # type: ignore[arg-type]
        if self.head == "token":
            return TokenHead(H, C)
        if self.head in ("last-k", "forecast"):
            return LastKHead(H, C, int(self.target_len))  # type: ignore[arg-type]
        return RetrievalHead(H, C, retrieval_hidden) if self.is_pair else ClassificationHead(H, C)

    def _encode_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.vocab_size is not None:
            if x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"token inputs must be integer ids (B, L), got dtype {x.dtype}")
            return self.encoder(x.long())
        if x.dim() == 2 and self.d_input == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"continuous inputs must be (B, L, {self.d_input}), got {tuple(x.shape)}")
        if self.head == "forecast":
            x = append_future(x, int(self.target_len))  # type: ignore[arg-type]
        return self.encoder(x.to(self.encoder.weight.dtype))

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone: ``x`` ``(B, L[, d_input])`` -> ``(B, L, H)``."""
        h = self._encode_input(x)
        for block in self.blocks:
            h = block(h, lengths)
        return self.final_norm(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, x2: torch.Tensor | None = None,
                lengths2: torch.Tensor | None = None) -> torch.Tensor:
        """The head's output: ``(B, C)`` (pooled), ``(B, K, C)`` (last-k, forecast), ``(B, L, C)`` (token, lm).

        Args:
            x: ``(B, L)`` token ids or ``(B, L, d_input)`` values, right-padded.
            lengths: ``(B,)`` real lengths or ``None`` (all ``L``).
            x2, lengths2: the second document of a pair task (required iff ``is_pair``).
        """
        if self.is_pair != (x2 is not None):
            raise ValueError("a pair (retrieval) model needs x2, and only a pair model takes it")
        if x2 is None:
            if self.head == "forecast" and lengths is not None and bool((lengths != x.shape[1]).any()):
                raise ValueError("a forecast model reads full lookback windows; got padded ones (lengths)")
            h = self.features(x, None if self.head == "forecast" else lengths)
            if self.head == "pooled":
                return self.decoder(pool_sequence(h, lengths, self.pool))
            return self.decoder(h, lengths)
        B = x.shape[0]
        L = max(x.shape[1], x2.shape[1])
        full1 = lengths if lengths is not None else torch.full((B,), x.shape[1], dtype=torch.long)
        full2 = lengths2 if lengths2 is not None else torch.full((x2.shape[0],), x2.shape[1], dtype=torch.long)
        xs = torch.cat([_pad_to(x, L), _pad_to(x2, L)], dim=0)
        lens = torch.cat([full1.to(xs.device), full2.to(xs.device)])
        lens_arg = None if bool((lens == L).all()) else lens
        pooled = pool_sequence(self.features(xs, lens_arg), lens_arg, self.pool)
        return self.decoder(pooled[:B], pooled[B:])

    # ------------------------------------------------------------------ streaming (module docstring)
    def check_streaming(self) -> None:
        """Raise ``ValueError`` (one line, naming the block) unless the model can run one position at a time."""
        if self.is_pair:
            raise ValueError("a pair (retrieval) model does not stream: its head needs both whole documents")
        if self.head == "forecast":
            raise ValueError("a forecast model does not stream: it reads a whole lookback window and its horizon")
        if self.head == "pooled" and self.pool != "last":
            raise ValueError("a mean-pooled model does not stream: its output needs the whole sequence "
                             "(pool 'last', or the token/last-k/lm heads, do)")
        for i, block in enumerate(self.blocks):
            block.check_streaming(f"block {i}")  # type: ignore[operator]
        if not self.final_norm.position_wise:
            raise ValueError("final norm: BatchNorm in training mode normalizes over the batch and the length; call "
                             "model.eval() or use norm 'layer' or 'rms'")

    def init_state(self, batch: int) -> list[Any]:
        """Initial (zero) streaming state of ``batch`` sequences: one mixer state per block."""
        self.check_streaming()
        return [block.mixer.init_state(batch) for block in self.blocks]

    def _encode_step(self, x_t: torch.Tensor) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor):
            raise TypeError(f"step expects a torch.Tensor, got {type(x_t).__name__}")
        if self.vocab_size is not None:
            if x_t.dim() != 1:
                raise ValueError(f"step of a token model takes ids of shape (B,), got {tuple(x_t.shape)}")
            return self._encode_input(x_t[:, None])[:, 0]
        if x_t.dim() == 1 and self.d_input == 1:
            x_t = x_t[:, None]
        if x_t.dim() != 2:
            raise ValueError(f"step of a continuous-input model takes (B, {self.d_input}), got {tuple(x_t.shape)}")
        return self._encode_input(x_t[:, None])[:, 0]

    def _position_head(self, h: torch.Tensor) -> torch.Tensor:
        """The head at every position of ``h (B, L, H)`` -> ``(B, L, C)``."""
        if self.head in ("token", "last-k"):
            return self.decoder.linear(h)
        return self.decoder(h)  # lm: tied; pooled (pool 'last'): the classifier of the prefix so far

    def step(self, x_t: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """One position: ``x_t`` token ids ``(B,)`` or values ``(B, d_input)``, the state -> ``(output (B, C),
        new state)``; equals :meth:`forward`'s output at that position (module docstring)."""
        h, state = self.step_features(x_t, state)
        return self._position_head(h[:, None])[:, 0], state

    def step_features(self, x_t: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """:meth:`step` without the head: ``(features (B, H) after the final norm, new state)``."""
        self.check_streaming()
        return self._step_features(x_t, state)

    def _step_features(self, x_t: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        # step_features without check_streaming (generate checks once, in prefill)
        if not isinstance(state, (list, tuple)) or len(state) != len(self.blocks):
            raise ValueError(f"state must be a list of {len(self.blocks)} block states; use init_state(batch) or "
                             "prefill(x)")
        h = self._encode_step(x_t)
        new = []
        for block, s in zip(self.blocks, state, strict=True):
            h, s = block.step(h, s)
            new.append(s)
        return self.final_norm(h[:, None])[:, 0], new

    def prefill(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, list[Any]]:
        """Run ``x`` ``(B, L[, d_input])`` (right-padded to ``lengths``) in parallel through every block ->
        ``(outputs (B, L, C) at every position, state after each sequence's last real position)``; then
        :meth:`step` continues the sequences. ``token``/``lm`` outputs equal :meth:`forward`."""
        h, state = self.prefill_features(x, lengths)
        return self._position_head(h), state

    def prefill_features(self, x: torch.Tensor,
                         lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, list[Any]]:
        """:meth:`prefill` without the head: ``(features (B, L, H) after the final norm, state)``."""
        self.check_streaming()
        h = self._encode_input(x)
        state = []
        for block in self.blocks:
            h, s = block.prefill(h, lengths)
            state.append(s)
        return self.final_norm(h), state


def _pad_to(x: torch.Tensor, L: int) -> torch.Tensor:
    """Right-pad ``(B, l, ...)`` with zeros to ``(B, L, ...)``."""
    if x.shape[1] == L:
        return x
    pad = x.new_zeros((x.shape[0], L - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)
