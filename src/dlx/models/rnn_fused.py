"""Whole-sequence LSTM and GRU with Keras 1's recurrent dropout, backward through time by hand.

Why: Keras' `dropout_U` multiplies the hidden state by one mask per sequence before every
recurrent matmul. Fused RNN kernels (cuDNN, oneDNN: `nn.LSTM`) cannot do that, and a Python
loop over `nn.LSTMCell` records a dozen autograd nodes a step, 80 steps a batch in the book's
6-14. Here one autograd node covers the whole sequence:
- the input projections of all steps are one matmul ([T*N, E] @ [E, G*H]);
- the recurrence is a loop of in-place ops on preallocated time-major [T, N, *] buffers,
  which keep the activated gates that backward needs;
- backward through time is written out: what does not depend on the recurrence is computed
  for all steps at once before the loop, and each weight gradient is one matmul after it
  (a sum over steps and samples at once: [G*H, T*N] @ [T*N, H]).

The math and parameters are torch's cells' (gates i, f, g, o for the LSTM; r, z, n for the
GRU); the cell sees the masked state, as in the loop `cell(x_t, h * mask)` (for the GRU both
in the recurrent matmul and in `z * h`). The initial state is zero; the functions return the
last hidden state [N, H]. tanh is 2 sigmoid(2a) - 1 (torch's CPU tanh costs ~3 sigmoids):
the same values to rounding. `rnn_native` runs the LSTM's time loop in C on a CPU.

Under autocast the sequence runs in float32 and returns float32: a hand-written recurrence
has no per-op autocast rules, and 80 steps of a bf16 state would lose the small gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor
LOW_PRECISION = (torch.float16, torch.bfloat16)


def lstm_sequence(
    x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, mask: Tensor | None = None
) -> Tensor:
    """The last hidden state [N, H] of an LSTM over x [N, T, E] (batch first), starting from
    zeros; `mask` [N, H] (or None) multiplies the state before every recurrent matmul."""
    return apply_sequence(_LSTM, x, w_ih, w_hh, b_ih, b_hh, mask)


def gru_sequence(
    x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, mask: Tensor | None = None
) -> Tensor:
    """The last hidden state [N, H] of a GRU over x [N, T, E], as `lstm_sequence`."""
    return apply_sequence(_GRU, x, w_ih, w_hh, b_ih, b_hh, mask)


@torch._disable_dynamo  # torch.compile leaves the loop eager (tracing would unroll it)
def apply_sequence(fn: type[torch.autograd.Function], x: Tensor, *params: Tensor | None) -> Tensor:
    if x.shape[1] == 0:
        raise ValueError("a recurrent layer needs at least one time step")
    if torch.is_autocast_enabled(x.device.type):
        params = tuple(
            p.float() if p is not None and p.dtype in LOW_PRECISION else p for p in params
        )
        x = x.float() if x.dtype in LOW_PRECISION else x
    return fn.apply(x, *params)


def no_autocast(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a forward or backward with autocast off (its second argument gives the device):
    the buffers are float32 and autocast would turn the matmuls into bf16."""

    @functools.wraps(method)
    def run(ctx: Any, first: Tensor, *args: Any) -> Any:
        with torch.autocast(first.device.type, enabled=False):
            return method(ctx, first, *args)

    return run


class _LSTM(torch.autograd.Function):
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
        _, steps, emb = x.shape
        hid = w_hh.shape[1]
        # g's rows doubled, and cells[t] = 2 c_{t-1}: tanh(a) = 2 sigmoid(2a) - 1
        bias, w_ih2 = _doubled(b_ih + b_hh, hid, 2), _doubled(w_ih, hid, 2)
        xh = lstm_inputs(x, hid)
        gates, cells, tanh_c, h = lstm_buffers(xh, w_ih2, bias)
        w_hh_t = _doubled(w_hh, hid, 2).t()
        minus_one = x.new_full((), -1.0)
        # per-step views made once, in C++, rather than sliced in the loop
        a_s, (i_s, f_s, g_s, o_s) = gates.unbind(0), _steps(gates, hid, 1, 1, 1, 1)
        c_s, tc_s, hin_s = cells.unbind(0), tanh_c.unbind(0), xh[..., emb:].unbind(0)
        for t in range(steps):
            if t:  # h_{-1} = 0 adds nothing
                a_s[t].addmm_(hin_s[t], w_hh_t)
            a_s[t].sigmoid_()
            torch.add(minus_one, g_s[t], alpha=2, out=g_s[t])  # g = tanh
            torch.mul(f_s[t], c_s[t], out=c_s[t + 1])
            c_s[t + 1].addcmul_(i_s[t], g_s[t], value=2)
            torch.sigmoid(c_s[t + 1], out=tc_s[t])
            torch.add(minus_one, tc_s[t], alpha=2, out=tc_s[t])  # tanh(c)
            out = hin_s[t + 1] if t + 1 < steps else h
            torch.mul(o_s[t], tc_s[t], out=out)
            if mask is not None and t + 1 < steps:
                out.mul_(mask)
        # intermediates too: autograd frees them after backward (unless retain_graph)
        ctx.save_for_backward(w_ih, w_hh, mask, xh, gates, cells, tanh_c)
        return h

    @staticmethod
    @no_autocast
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        w_ih, w_hh, mask, xh, gates, cells, tanh_c = ctx.saved_tensors
        steps, n, hid = tanh_c.shape
        one = gates.new_ones(())
        i, f, g, o = gates.view(steps, n, 4, hid).unbind(2)
        # All but the recurrence, for every step at once: the factors that turn dc (for i, f,
        # g) or dh (for o) into each gate's pre-activation gradient...
        coef = torch.addcmul(gates, gates, gates, value=-1)  # sigmoid' = s (1 - s)
        c_i, c_f, c_g, c_o = coef.view(steps, n, 4, hid).unbind(2)
        c_i.mul_(g)
        c_f.mul_(cells[:-1]).mul_(0.5)  # cells hold 2c
        torch.addcmul(one, g, g, value=-1, out=c_g).mul_(i)  # tanh' = 1 - g^2
        c_o.mul_(tanh_c)
        # ... and the one that adds dh to dc: o * tanh'(c)
        dc_dh = torch.addcmul(one, tanh_c, tanh_c, value=-1).mul_(o)
        if mask is not None:  # dh_{t-1} = (dgates_t @ W_hh) * mask: the mask joins t-1's factors
            c_o[:-1].mul_(mask)
            dc_dh[:-1].mul_(mask)
        dgates = torch.empty_like(gates)
        dh = grad_h.contiguous().clone()
        dc = torch.zeros_like(dh)
        dc_3 = dc.unsqueeze(1)  # [N, 1, H]: one multiply gives i's, f's and g's gradients
        c_ifg_s = coef.view(steps, n, 4, hid)[:, :, :3].unbind(0)
        d_ifg_s = dgates.view(steps, n, 4, hid)[:, :, :3].unbind(0)
        d_o_s = dgates.view(steps, n, 4, hid)[:, :, 3].unbind(0)
        c_o_s, dcdh_s, f_s, d_s = c_o.unbind(0), dc_dh.unbind(0), f.unbind(0), dgates.unbind(0)
        for t in reversed(range(steps)):
            dc.addcmul_(dh, dcdh_s[t])
            torch.mul(dc_3, c_ifg_s[t], out=d_ifg_s[t])
            torch.mul(dh, c_o_s[t], out=d_o_s[t])
            if t:
                dc.mul_(f_s[t])
                torch.mm(d_s[t], w_hh, out=dh)
        return lstm_param_grads(ctx.needs_input_grad, dgates, w_ih, xh)


class _GRU(torch.autograd.Function):
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
        n, steps, _ = x.shape
        hid = w_hh.shape[1]
        xt = x.transpose(0, 1).contiguous()
        # input parts of all steps (r, z, n); r, z become the gates and n the candidate in
        # place. n's rows are doubled, as the LSTM's g: tanh(a) = 2 sigmoid(2a) - 1
        gi = torch.addmm(
            _doubled(b_ih, hid, 2), xt.view(steps * n, -1), _doubled(w_ih, hid, 2).t()
        ).view(steps, n, 3 * hid)
        gh = torch.empty_like(gi)  # recurrent parts h_in @ W_hh^T + b_hh; backward needs h_n's
        b_hh2, w_hh_t = _doubled(b_hh, hid, 2), _doubled(w_hh, hid, 2).t()
        h_in = x.new_empty(steps, n, hid)  # the state step t's cell sees: h_{t-1} * mask
        h_in[0] = 0
        h = x.new_empty(n, hid)
        minus_one = x.new_full((), -1.0)
        (rz_s, n_s), (r_s, z_s, _) = _steps(gi, hid, 2, 1), _steps(gi, hid, 1, 1, 1)
        (ghrz_s, ghn_s), gh_s, hin_s = _steps(gh, hid, 2, 1), gh.unbind(0), h_in.unbind(0)
        for t in range(steps):
            if t:
                torch.addmm(b_hh2, hin_s[t], w_hh_t, out=gh_s[t])
            else:  # h_{-1} = 0
                gh_s[t].copy_(b_hh2.expand_as(gh_s[t]))
            rz_s[t].add_(ghrz_s[t]).sigmoid_()
            n_s[t].addcmul_(r_s[t], ghn_s[t]).sigmoid_()
            torch.add(minus_one, n_s[t], alpha=2, out=n_s[t])  # n = tanh
            out = hin_s[t + 1] if t + 1 < steps else h
            torch.lerp(n_s[t], hin_s[t], z_s[t], out=out)  # (1 - z) * n + z * h_in
            if mask is not None and t + 1 < steps:
                out.mul_(mask)
        ctx.save_for_backward(w_ih, w_hh, mask, xt, gi, gh, h_in)
        return h

    @staticmethod
    @no_autocast
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        w_ih, w_hh, mask, xt, gi, gh, h_in = ctx.saved_tensors
        steps, n, hid = h_in.shape
        one = gi.new_ones(())
        r, z, cand = gi.view(steps, n, 3, hid).unbind(2)
        # All but the recurrence, for every step at once: the factors that turn dh (the
        # gradient of a step's output) into the pre-activation gradients of r, z, and h_n
        coef = torch.empty_like(gh)
        c_r, c_z, c_hn = coef.view(steps, n, 3, hid).unbind(2)
        rz = gi[..., : 2 * hid]
        torch.addcmul(rz, rz, rz, value=-1, out=coef[..., : 2 * hid])  # sigmoid' = s (1 - s)
        c_n = torch.addcmul(one, cand, cand, value=-1)  # tanh' = 1 - n^2
        c_n.addcmul_(c_n, z, value=-1)  # h' = (1 - z) n + z h_in
        c_r.mul_(c_n).mul_(gh.view(steps, n, 3, hid)[:, :, 2]).mul_(0.5)  # h_n kept doubled
        c_z.mul_(h_in - cand)
        torch.mul(c_n, r, out=c_hn)
        c_direct = z.clone()  # h_in's own share of h', besides the recurrent matmul
        if mask is not None:  # dh_{t-1} = (...) * mask: the mask joins t-1's factors
            coef.view(steps, n, 3, hid)[:-1].mul_(mask.unsqueeze(1))
            c_n[:-1].mul_(mask)
            c_direct[:-1].mul_(mask)
        dh = h_in.new_empty(steps, n, hid)  # dh[t]: the gradient of step t's output, unmasked
        dh[-1] = grad_h
        dgh = torch.empty_like(gh)
        coef_s, dgh3_s = coef.view(steps, n, 3, hid).unbind(0), dgh.view(steps, n, 3, hid).unbind(0)
        dh_s, dh3_s, cd_s = dh.unbind(0), dh.unsqueeze(2).unbind(0), c_direct.unbind(0)
        dgh_s = dgh.unbind(0)
        for t in reversed(range(steps)):
            torch.mul(dh3_s[t], coef_s[t], out=dgh3_s[t])
            if t:
                torch.mul(dh_s[t], cd_s[t], out=dh_s[t - 1])
                dh_s[t - 1].addmm_(dgh_s[t], w_hh)
        dgi = torch.empty_like(gi)  # r's and z's pre-activation gradients are the same
        dgi[..., : 2 * hid] = dgh[..., : 2 * hid]
        torch.mul(dh, c_n, out=dgi[..., 2 * hid :])
        steps_n = steps * n
        d_in2, d_rec2 = dgi.view(steps_n, -1), dgh.view(steps_n, -1)
        need = ctx.needs_input_grad
        d_x = (d_in2 @ w_ih).view(steps, n, -1).transpose(0, 1) if need[0] else None
        d_w_ih = d_in2.t() @ xt.view(steps_n, -1) if need[1] else None
        d_w_hh = d_rec2.t() @ h_in.view(steps_n, -1) if need[2] else None
        d_b_ih = d_in2.sum(0) if need[3] else None
        d_b_hh = d_rec2.sum(0) if need[4] else None
        return d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh, None


def lstm_inputs(x: Tensor, hid: int) -> Tensor:
    """xh [T, N, E + H]: the inputs x_t [N, E] time-major, beside room for h_in_t (backward
    gets both weight gradients from one matmul; h_in_t, what step t's recurrent matmul reads,
    is h_{t-1} * mask)."""
    n, steps, emb = x.shape
    xh = x.new_empty(steps, n, emb + hid)
    xh[..., :emb] = x.transpose(0, 1)
    return xh


def lstm_buffers(xh: Tensor, w_ih: Tensor, bias: Tensor) -> tuple[Tensor, ...]:
    """A whole-sequence LSTM's other time-major buffers, given xh (`lstm_inputs`; h_in_0 = 0
    set here): the gates' pre-activations of all steps, biases included (one matmul; the loop
    activates them in place); cells [T+1] (cells[0] = 0); tanh(c) [T]; the last state."""
    steps, n, emb = xh.shape[0], xh.shape[1], w_ih.shape[1]
    hid = xh.shape[2] - emb
    xh[0, :, emb:] = 0
    gates = torch.addmm(bias, xh.view(steps * n, -1)[:, :emb], w_ih.t()).view(steps, n, -1)
    cells = xh.new_empty(steps + 1, n, hid)
    cells[0] = 0
    return gates, cells, xh.new_empty(steps, n, hid), xh.new_empty(n, hid)


def lstm_param_grads(
    need: tuple[bool, ...], dgates: Tensor, w_ih: Tensor, xh: Tensor
) -> tuple[Tensor | None, ...]:
    """The LSTM's gradients (x, w_ih, w_hh, b_ih, b_hh, mask) from the gates' pre-activation
    gradients [T, N, 4H] and the [x_t | h_in_t] inputs [T, N, E + H], each one matmul."""
    steps, n, emb = xh.shape[0], xh.shape[1], w_ih.shape[1]
    d2 = dgates.reshape(steps * n, -1)
    d_x = (d2 @ w_ih).view(steps, n, -1).transpose(0, 1) if need[0] else None
    d_w = d2.t() @ xh.view(steps * n, -1) if need[1] or need[2] else None  # [4H, E + H]
    d_b = d2.sum(0) if need[3] or need[4] else None
    return (
        d_x,
        d_w[:, :emb] if need[1] else None,
        d_w[:, emb:] if need[2] else None,
        d_b if need[3] else None,
        d_b.clone() if need[4] else None,  # not one tensor twice: .grad may be updated in place
        None,
    )


def _doubled(t: Tensor, hid: int, block: int) -> Tensor:
    """A copy of a stacked weight or bias with gate `block`'s rows times 2 (exact)."""
    out = t.clone()
    out[block * hid : (block + 1) * hid] *= 2
    return out


def _steps(buf: Tensor, hid: int, *widths: int) -> list[tuple[Tensor, ...]]:
    """Column blocks of a [T, N, G*H] buffer (`widths` in units of H), each as its T steps'
    [N, w*H] views."""
    return [block.unbind(0) for block in buf.split([w * hid for w in widths], dim=2)]
