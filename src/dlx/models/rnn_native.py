"""The LSTM of `rnn_fused` with its time loop in C (`rnn_native.c`): the same math, ~1.5x
faster a batch on a 2-core CPU (the loop's small ops cost dispatch, not arithmetic).
`embedded_lstm` runs the embedding's lookup and Keras 1's input dropouts into the loop's
buffer in C too, the values and gradients equal to torch's ops to the bit (~5% off a step of
the book's 6-14: a gather, two masks, a transposed copy and their backward passes less).

The C code is built on first use (`native_build`); where it cannot be (no compiler, not
torch's Linux x86-64 build), and for float64, CUDA or the GRU, `why_not` says why and the
model runs `rnn_fused` (`model.impl=auto`).
"""

from __future__ import annotations

from typing import Any

import torch

from dlx.models.native_build import library
from dlx.models.rnn_fused import (
    LOW_PRECISION,
    apply_sequence,
    lstm_buffers,
    lstm_inputs,
    lstm_param_grads,
    no_autocast,
)

Tensor = torch.Tensor


def why_not(x: Tensor) -> str | None:
    """Why the C loop cannot run this input (one clause), or None when it can."""
    if x.device.type != "cpu":
        return f"it runs on the CPU, not {x.device.type}"
    autocast = x.dtype in LOW_PRECISION and torch.is_autocast_enabled("cpu")  # runs float32
    if x.dtype != torch.float32 and not autocast:
        return f"it runs float32, not {x.dtype}"
    return library()[1]


def lstm_sequence(
    x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, mask: Tensor | None = None
) -> Tensor:
    """`rnn_fused.lstm_sequence` with the time loop in C (check `why_not(x)` first)."""
    return apply_sequence(_NativeLSTM, x, w_ih, w_hh, b_ih, b_hh, mask)


@torch._disable_dynamo  # as apply_sequence
def embedded_lstm(
    ids: Tensor,
    table: Tensor,
    keep: Tensor | None,
    mask_x: Tensor | None,
    weights: tuple[Tensor, Tensor, Tensor, Tensor],
    mask: Tensor | None,
    padding_idx: int | None,
) -> Tensor:
    """`lstm_sequence` over `table[ids] * keep[ids].unsqueeze(-1) * mask_x.unsqueeze(1)`:
    Keras 1's embedding with its word dropout (`keep` [V]) and the LSTM's input dropout
    (`mask_x` [N, E]; either may be None), the lookup and its backward in C as well (check
    `why_not(table)` first). The same values as `nn.Embedding` and those products, to the bit;
    no row `padding_idx` in the table's gradient. ids [N, T]; weights (w_ih, w_hh, b_ih, b_hh)."""
    pad = -1 if padding_idx is None else padding_idx
    return _EmbeddedLSTM.apply(ids.long().contiguous(), table, keep, mask_x, *weights, mask, pad)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _recur(xh: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor, mask: Tensor | None):
    """The forward time loop in C over xh (its x part written): the buffers backward needs
    and the last state."""
    steps, n, _ = xh.shape
    emb, hid = w_ih.shape[1], w_hh.shape[1]
    gates, cells, tanh_c, h = lstm_buffers(xh, w_ih, bias)
    library()[0].dlx_lstm_fwd(torch.get_num_threads(), steps, n, hid, _ptr(gates), _ptr(w_hh),
                              _ptr(cells), _ptr(tanh_c), xh[0, 0, emb:].data_ptr(), emb + hid,
                              n * (emb + hid), _ptr(h), _ptr(mask))  # fmt: skip
    return gates, cells, tanh_c, h


def _dgates(grad_h: Tensor, w_hh: Tensor, mask: Tensor | None, gates: Tensor, cells: Tensor,
            tanh_c: Tensor) -> Tensor:  # fmt: skip
    """Backward through time in C: the gates' pre-activation gradients [T, N, 4H]."""
    steps, n, hid = tanh_c.shape
    dh = grad_h.float().contiguous().clone()
    dc, dgates = torch.empty_like(dh), torch.empty_like(gates)  # (held: C writes them)
    library()[0].dlx_lstm_bwd(torch.get_num_threads(), steps, n, hid, _ptr(gates), _ptr(w_hh),
                              _ptr(cells), _ptr(tanh_c), _ptr(mask), _ptr(dh), _ptr(dc),
                              _ptr(dgates))  # fmt: skip
    return dgates


class _NativeLSTM(torch.autograd.Function):
    @staticmethod
    @no_autocast
    def forward(
        ctx: Any,
        x: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        mask: Tensor | None,
    ) -> Tensor:
        w_hh = w_hh.contiguous()
        mask = None if mask is None else mask.contiguous()
        xh = lstm_inputs(x, w_hh.shape[1])
        gates, cells, tanh_c, h = _recur(xh, w_ih, w_hh, b_ih + b_hh, mask)
        ctx.save_for_backward(w_ih, w_hh, mask, xh, gates, cells, tanh_c)
        return h

    @staticmethod
    @no_autocast
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        w_ih, w_hh, mask, xh, gates, cells, tanh_c = ctx.saved_tensors
        dgates = _dgates(grad_h, w_hh, mask, gates, cells, tanh_c)
        return lstm_param_grads(ctx.needs_input_grad, dgates, w_ih, xh)


class _EmbeddedLSTM(torch.autograd.Function):
    @staticmethod
    @no_autocast
    def forward(
        ctx: Any,
        ids: Tensor,
        table: Tensor,
        keep: Tensor | None,
        mask_x: Tensor | None,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        mask: Tensor | None,
        pad: int,
    ) -> Tensor:
        n, steps = ids.shape
        vocab, emb = table.shape
        table, w_hh = table.contiguous(), w_hh.contiguous()
        keep, mask_x, mask = (None if t is None else t.contiguous() for t in (keep, mask_x, mask))
        xh = table.new_empty(steps, n, emb + w_hh.shape[1])
        bad = library()[0].dlx_embed_fwd(torch.get_num_threads(), steps, n, emb, _ptr(ids),
                                         vocab, _ptr(table), _ptr(keep), _ptr(mask_x),
                                         _ptr(xh), xh.shape[2])  # fmt: skip
        if bad:
            raise IndexError(
                f"token id {ids.view(-1)[bad - 1].item()} is outside the embedding's "
                f"{vocab} rows (ids run 0..{vocab - 1})"
            )
        gates, cells, tanh_c, h = _recur(xh, w_ih, w_hh, b_ih + b_hh, mask)
        ctx.save_for_backward(ids, keep, mask_x, w_ih, w_hh, mask, xh, gates, cells, tanh_c)
        ctx.vocab, ctx.pad = vocab, pad
        return h

    @staticmethod
    @no_autocast
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        ids, keep, mask_x, w_ih, w_hh, mask, xh, gates, cells, tanh_c = ctx.saved_tensors
        dgates = _dgates(grad_h, w_hh, mask, gates, cells, tanh_c)
        need = ctx.needs_input_grad  # ids, table, keep, mask_x, w_ih, w_hh, b_ih, b_hh, ...
        grads = lstm_param_grads((False, *need[4:8]), dgates, w_ih, xh)
        d_table = None
        if need[1]:
            steps, n, emb = xh.shape[0], xh.shape[1], w_ih.shape[1]
            d_x = dgates.view(steps * n, -1) @ w_ih  # [T * N, E], time-major
            d_table = d_x.new_empty(ctx.vocab, emb)
            library()[0].dlx_embed_bwd(torch.get_num_threads(), steps, n, emb, _ptr(ids),
                                       ctx.vocab, ctx.pad, _ptr(d_x), _ptr(keep),
                                       _ptr(mask_x), _ptr(d_table))  # fmt: skip
        return None, d_table, None, None, *grads[1:5], None, None
