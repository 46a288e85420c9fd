"""LSTM and GRU text classifiers, the book's 6-14: Embedding -> LSTM(128) -> Dense(1, sigmoid).

Dropouts as in Keras 1, which the book used:
- `embedding_dropout`: Keras 1's `Embedding(dropout=p)` drops whole words (rows of the
  embedding matrix) for a batch, not single activations.
- `dropout` (Keras' `dropout_W`): on the recurrent layer's inputs, one mask per sequence,
  the same at every time step.
- `recurrent_dropout` (Keras' `dropout_U`): on the hidden state between steps, one mask per
  sequence. cuDNN's fused LSTM cannot do this, so a value > 0 keeps the parameters of an
  `nn.LSTMCell`/`nn.GRUCell` and runs the whole sequence as one autograd node with a
  hand-written backward (evaluation, which draws no mask, runs torch's fused kernel on the
  same weights). `impl`: `fused_bptt` in torch ops (`rnn_fused`); `native`, the LSTM's time
  loop in C (`rnn_native`, ~1.5x faster a batch on a 2-core CPU; CPU float32, built on first
  use; in training the embedding's lookup and its two dropouts run in that C code too, bit
  for bit as in torch ops); `auto` (default) runs `native` where it can and says once why
  not where it cannot; `loop` is the plain loop over the cell, the reference they must equal
  (~2x slower to train, 2.5x to evaluate). 0 keeps the fused `nn.LSTM`/`nn.GRU`.
"""

from __future__ import annotations

import logging

import torch
from torch import _VF, nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models import rnn_native
from dlx.models.rnn_fused import gru_sequence, lstm_sequence

log = logging.getLogger("dlx")
CELLS = {"lstm": (nn.LSTM, nn.LSTMCell), "gru": (nn.GRU, nn.GRUCell)}
SEQUENCES = {"lstm": lstm_sequence, "gru": gru_sequence}
IMPLS = ("auto", "native", "fused_bptt", "loop")


def sequence_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """A dropout mask (scaled by 1/(1-p)) to broadcast over the time axis."""
    return torch.empty(shape, device=like.device, dtype=like.dtype).bernoulli_(1 - p) / (1 - p)


@torch._disable_dynamo  # as rnn_fused.apply_sequence: torch.compile leaves it eager
def fused_kernel_last(
    cell: str, x: torch.Tensor, weights: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """The last hidden state with no mask, by the kernel `nn.LSTM`/`nn.GRU` run (oneDNN on a
    CPU, cuDNN on CUDA) on a cell's weights: evaluation, where no mask is drawn (here ~1.7x
    faster than `lstm_sequence`'s forward for the LSTM, as fast for the GRU)."""
    h0 = x.new_zeros(1, x.shape[0], weights[1].shape[1])
    # (input, h0, weights, has_biases, layers, dropout, train, bidirectional, batch_first)
    if cell == "lstm":
        out = _VF.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)
    else:
        out = _VF.gru(x, h0, weights, True, 1, 0.0, False, False, True)
    return out[0][:, -1]


class RecurrentClassifier(nn.Module):
    def __init__(
        self,
        spec: Spec,
        cell: str = "lstm",
        embed_dim: int = 128,
        hidden: int = 128,
        embedding_dropout: float = 0.0,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        init: str = "keras",
        impl: str = "auto",
    ) -> None:
        if spec.vocab_size is None:
            raise ConfigError(
                f"model={cell} reads token ids (dataset=imdb or text); this data set gives "
                f"inputs of shape {tuple(spec.input_shape)}"
            )
        if cell not in CELLS:
            raise ConfigError(f"model.cell={cell!r} must be lstm or gru")
        if init not in ("keras", "torch"):
            raise ConfigError(f"model.init={init!r} must be keras or torch")
        if impl not in IMPLS:
            raise ConfigError(f"model.impl={impl!r} must be one of {', '.join(IMPLS)}")
        if impl == "native" and cell != "lstm":
            raise ConfigError("model.impl=native runs the LSTM only; use auto or fused_bptt")
        if impl == "native" and rnn_native.library()[1]:
            raise ConfigError(
                f"model.impl=native cannot run here: {rnn_native.library()[1]}; "
                "model.impl=auto falls back to fused_bptt"
            )
        for name, p in (
            ("embedding_dropout", embedding_dropout),
            ("dropout", dropout),
            ("recurrent_dropout", recurrent_dropout),
        ):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"model.{name}={p} must be in [0, 1)")
        super().__init__()
        self.cell_type = cell
        self.embedding = nn.Embedding(spec.vocab_size, embed_dim, padding_idx=0)
        fused, step = CELLS[cell]
        self.rnn = (
            step(embed_dim, hidden)
            if recurrent_dropout > 0
            else fused(embed_dim, hidden, batch_first=True)
        )
        # two classes -> one logit (sigmoid, binary cross-entropy), else one per class
        self.head = nn.Linear(hidden, 1 if spec.num_classes == 2 else spec.num_classes)
        self.embedding_dropout = embedding_dropout
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.impl = impl
        if init == "keras":
            self._keras_init()

    @torch.no_grad()
    def _keras_init(self) -> None:
        """Keras' defaults: embeddings U(-0.05, 0.05) (torch: N(0, 1), which saturates the
        gates early), glorot-uniform input kernel, orthogonal recurrent kernel, zero biases
        but 1 for the LSTM's forget gate (`unit_forget_bias`)."""
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.embedding.weight[0].zero_()
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(p)
            else:
                p.zero_()
        if self.cell_type == "lstm":  # gates are stacked i, f, g, o: f is the second quarter
            hidden = self.rnn.hidden_size
            next(b for n, b in self.rnn.named_parameters() if n.startswith("bias_ih"))[
                hidden : 2 * hidden
            ] = 1.0
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        keep, mask_x = self._input_masks(ids.shape[0], x)
        if keep is not None:  # Keras 1: drop rows of the embedding matrix, every occurrence
            x = x * keep[ids].unsqueeze(-1)
        if mask_x is not None:
            x = x * mask_x
        return x

    def _input_masks(
        self, n: int, like: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Keras 1's word mask [V] and input mask [N, 1, E] in training (None where off),
        drawn in this order, then `_mask`'s: the same seed, the same masks on every path."""
        if not self.training:
            return None, None
        emb, p_words, p_x = self.embedding, self.embedding_dropout, self.dropout
        keep = sequence_mask((emb.num_embeddings,), p_words, like) if p_words else None
        mask_x = sequence_mask((n, 1, emb.embedding_dim), p_x, like) if p_x else None
        return keep, mask_x

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._front_in_c():
            return self._logits(self._embedded_native(ids))
        x = self.embed(ids)
        if isinstance(self.rnn, (nn.LSTM, nn.GRU)):
            out, _ = self.rnn(x)
            last = out[:, -1]  # sequences are padded at the front: the last step is real
        elif self.impl == "loop":
            last = self._loop(x)
        else:
            last = self._sequence(x)
        return self._logits(last)

    def _logits(self, last: torch.Tensor) -> torch.Tensor:
        logits = self.head(last)
        return logits.squeeze(1) if logits.shape[1] == 1 else logits

    def _mask(self, n: int, like: torch.Tensor) -> torch.Tensor | None:
        """The recurrent dropout's mask [N, H] in training, drawn after `_input_masks`'."""
        if not self.training:
            return None
        return sequence_mask((n, self.rnn.hidden_size), self.recurrent_dropout, like)

    def _front_in_c(self) -> bool:
        """Training an LSTM where the C loop runs: the embedding's lookup and its dropouts
        join it (`rnn_native.embedded_lstm`, the same values to the bit)."""
        return (
            self.training
            and self.impl in ("auto", "native")
            and isinstance(self.rnn, nn.LSTMCell)
            and rnn_native.why_not(self.embedding.weight) is None
        )

    def _embedded_native(self, ids: torch.Tensor) -> torch.Tensor:
        table, n = self.embedding.weight, ids.shape[0]
        keep, mask_x = self._input_masks(n, table)
        mask = self._mask(n, table)
        rnn = self.rnn
        weights = (rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh)
        mask_x = None if mask_x is None else mask_x.view(n, -1)
        return rnn_native.embedded_lstm(
            ids, table, keep, mask_x, weights, mask, self.embedding.padding_idx
        )

    def _sequence(self, x: torch.Tensor) -> torch.Tensor:
        rnn = self.rnn
        weights = (rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh)
        mask = self._mask(x.shape[0], x)
        if mask is None:  # evaluation: no mask, so the fused kernel nn.LSTM runs will do
            return fused_kernel_last(self.cell_type, x, weights)
        if self.impl in ("auto", "native") and self.cell_type == "lstm":
            why = rnn_native.why_not(x)
            if why is None:
                return rnn_native.lstm_sequence(x, *weights, mask)
            if self.impl == "native":
                raise ConfigError(f"model.impl=native cannot run this batch: {why}")
            _say_once(f"model.impl=auto runs fused_bptt, not the C loop: {why}")
        return SEQUENCES[self.cell_type](x, *weights, mask)

    def _loop(self, x: torch.Tensor) -> torch.Tensor:
        n, steps, _ = x.shape
        h = x.new_zeros(n, self.rnn.hidden_size)
        c = x.new_zeros(n, self.rnn.hidden_size)
        mask = self._mask(x.shape[0], x)
        for t in range(steps):
            h_in = h * mask if mask is not None else h
            if self.cell_type == "lstm":
                h, c = self.rnn(x[:, t], (h_in, c))
            else:
                h = self.rnn(x[:, t], h_in)
        return h


_said: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _said:
        _said.add(line)
        log.info(line)
