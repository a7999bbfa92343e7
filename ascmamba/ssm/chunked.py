"""Fast pure-PyTorch selective scan: time-sequential over chunks, hand-written backward.

Why this shape (measured on a 2-core CPU, see shared/notes/measured-facts.md):
- The scan costs one exp per (batch, step, channel, state) element, and `torch.exp` is
  the floor; a closed form in log space (`exp(cumsum(delta * A))`) overflows float32, so
  the recurrence h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t is walked step by step.
- Storing every state costs O(batch L d_inner d_state) memory and bandwidth. Instead L is
  walked in chunks of ~8-32 steps through small reused work buffers (~4 MB, cache
  resident); only the state at each chunk start is kept, and the backward recomputes each
  chunk before running the adjoint recurrence backwards in time.
- O(batch L d_inner) arrays stay in (batch, L, d_inner) layout, which is what nn.Linear
  produces (callers pass `x.transpose(1, 2)` views, so transposing back is free). Work
  buffers are (step, batch, group, d_state, channel) with channels innermost, so the
  reductions over d_state become batched row-vector products (matmuls).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .reference import compute_dtype

WORK_BUFFER_BYTES = 4 << 20
"""Target size of one (chunk, batch, d_inner, d_state) work buffer on CPU (cache sized)."""
CPU_CHUNK_RANGE = (8, 32)
CUDA_CHUNK_RANGE = (32, 256)
CUDA_WORK_BUFFER_BYTES = 64 << 20


def default_chunk_size(batch: int, d_inner: int, d_state: int, dtype: torch.dtype, device: torch.device) -> int:
    """Steps per chunk: the most that keep a work buffer near its target size, clamped."""
    per_step = batch * d_inner * d_state * torch.empty((), dtype=dtype).element_size()
    if device.type == "cuda":
        lo, hi = CUDA_CHUNK_RANGE
        budget = CUDA_WORK_BUFFER_BYTES
    else:
        lo, hi = CPU_CHUNK_RANGE
        budget = WORK_BUFFER_BYTES
    return max(lo, min(hi, budget // max(per_step, 1)))


def _bld(x: Tensor, dtype: torch.dtype) -> Tensor:
    """(batch, d, L) -> contiguous (batch, L, d); free when x is a transposed (b, L, d) tensor."""
    return x.transpose(1, 2).to(dtype).contiguous()


def _group_count(B: Tensor, C: Tensor) -> int:
    gb = 1 if B.dim() == 3 else B.shape[1]
    gc = 1 if C.dim() == 3 else C.shape[1]
    return gb * gc // math.gcd(gb, gc)


def _time_major(X: Tensor, groups: int, dtype: torch.dtype) -> Tensor:
    """(b, n, L) or (b, g', n, L) -> contiguous (L, b, groups, n); chunks are then contiguous."""
    if X.dim() == 3:
        X = X.unsqueeze(1)
    if X.shape[1] != groups:
        X = X.repeat_interleave(groups // X.shape[1], dim=1)
    return X.permute(3, 0, 1, 2).to(dtype).contiguous()


def _from_time_major(dX: Tensor, like: Tensor) -> Tensor:
    """Inverse of `_time_major` for a gradient: (L, b, groups, n) -> like's shape and dtype."""
    dX = dX.permute(1, 2, 3, 0)  # (b, groups, n, L)
    g_like = 1 if like.dim() == 3 else like.shape[1]
    if dX.shape[1] != g_like:
        dX = dX.unflatten(1, (g_like, dX.shape[1] // g_like)).sum(2)
    if like.dim() == 3:
        dX = dX.squeeze(1)
    return dX.to(like.dtype)


def _steps(x: Tensor, t0: int, t1: int, groups: int) -> Tensor:
    """(b, L, d) -> contiguous (m, b, groups, 1, d // groups) copy of steps t0:t1.

    The copy is d_state times smaller than a work buffer, and broadcasting or matmul from
    the strided view was measured 3-5x slower than from a contiguous chunk.
    """
    return x[:, t0:t1].transpose(0, 1).contiguous().unflatten(-1, (groups, -1)).unsqueeze(-2)


class _Workspace:
    """Reused (chunk, batch, groups, d_state, channel) buffers and their per-step views."""

    def __init__(self, T: int, batch: int, A_r: Tensor, count: int):
        g, n, dg = A_r.shape
        self.bufs = [A_r.new_empty(T, batch, g, n, dg) for _ in range(count)]
        self.steps = [buf.unbind(0) for buf in self.bufs]


def _recompute_chunk(
    ws: _Workspace, dt_c: Tensor, du_c: Tensor, A_r: Tensor, B_c: Tensor, h0: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Fill a = exp(dt A) and h (the states after each step) for one chunk, from h0.

    dt_c, du_c: (m, b, groups, 1, dg) from `_steps`; B_c: (m, b, groups, n).
    """
    m = dt_c.shape[0]
    a, h = ws.bufs[0][:m], ws.bufs[1][:m]
    a_s, h_s = ws.steps[0], ws.steps[1]
    torch.mul(dt_c, A_r, out=a)
    a.exp_()
    torch.mul(B_c.unsqueeze(-1), du_c, out=h)
    if h0 is not None:
        h_s[0].addcmul_(a_s[0], h0)
    for k in range(1, m):
        h_s[k].addcmul_(a_s[k], h_s[k - 1])
    return a, h


def _write_steps(dst: Tensor, t0: int, t1: int, chunk: Tensor) -> None:
    """dst (b, L, d)[:, t0:t1] = chunk (m, b, groups, 1 or ..., dg) flattened to (m, b, d)."""
    m, b = chunk.shape[:2]
    dst[:, t0:t1] = chunk.reshape(m, b, -1).transpose(0, 1)


def _forward_scan(dt: Tensor, du: Tensor, A_r: Tensor, B_t: Tensor, C_t: Tensor, T: int) -> tuple[Tensor, Tensor]:
    """y (b, L, d) without the D term, and the state at every chunk start (zeros first)."""
    batch, L, d = dt.shape
    groups, n, dg = A_r.shape
    n_chunks = -(-L // T)
    states = dt.new_empty(n_chunks, batch, groups, n, dg)
    states[0].zero_()
    y = dt.new_empty(batch, L, d)
    ws = _Workspace(min(T, L), batch, A_r, 2)
    for c in range(n_chunks):
        t0, t1 = c * T, min(L, (c + 1) * T)
        dt_c, du_c = _steps(dt, t0, t1, groups), _steps(du, t0, t1, groups)
        _, h = _recompute_chunk(ws, dt_c, du_c, A_r, B_t[t0:t1], states[c] if c else None)
        _write_steps(y, t0, t1, torch.matmul(C_t[t0:t1].unsqueeze(-2), h))
        if c + 1 < n_chunks:
            states[c + 1].copy_(h[-1])
    return y, states


def _delta_preact(delta_l: Tensor, delta_bias: Tensor | None, dtype: torch.dtype) -> Tensor:
    return delta_l if delta_bias is None else delta_l + delta_bias.to(dtype)


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool, chunk_size: int | None):
        dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
        batch, d_inner, L = u.shape
        groups = _group_count(B, C)
        n = A.shape[1]
        T = chunk_size or default_chunk_size(batch, d_inner, n, dtype, u.device)

        u_l = _bld(u, dtype)
        pre = _delta_preact(_bld(delta, dtype), delta_bias, dtype)
        dt = F.softplus(pre) if delta_softplus else pre
        A_r = A.to(dtype).reshape(groups, d_inner // groups, n).transpose(1, 2).contiguous()
        y, states = _forward_scan(dt, dt * u_l, A_r, _time_major(B, groups, dtype), _time_major(C, groups, dtype), T)
        if D is not None:
            y.addcmul_(u_l, D.to(dtype))
        out = y if z is None else y * F.silu(_bld(z, dtype))

        keep_y = z is not None and ctx.needs_input_grad[6]
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states, y if keep_y else None)
        ctx.delta_softplus, ctx.T, ctx.dtype = delta_softplus, T, dtype
        return out.to(u.dtype).transpose(1, 2)

    @staticmethod
    def backward(ctx, dout):
        u, delta, A, B, C, D, z, delta_bias, states, y = ctx.saved_tensors
        need = ctx.needs_input_grad
        need_ddu = need[0] or need[1] or need[7]
        need_q = need[1] or need[2] or need[7]
        dtype, T = ctx.dtype, ctx.T
        batch, d_inner, L = u.shape
        groups = _group_count(B, C)
        n = A.shape[1]

        u_l = _bld(u, dtype)
        pre = _delta_preact(_bld(delta, dtype), delta_bias, dtype)
        dt = F.softplus(pre) if ctx.delta_softplus else pre
        du = dt * u_l
        A_r = A.to(dtype).reshape(groups, d_inner // groups, n).transpose(1, 2).contiguous()
        B_t, C_t = _time_major(B, groups, dtype), _time_major(C, groups, dtype)

        dout_l = _bld(dout, dtype)
        dz = None
        if z is None:
            dy = dout_l
        else:
            z_l = _bld(z, dtype)
            sig = torch.sigmoid(z_l)
            dy = dout_l * z_l * sig
            if need[6]:
                dz = dout_l * y * sig * (1 + z_l * (1 - sig))

        ddu = dt.new_empty(batch, L, d_inner) if need_ddu else None
        ddtA = dt.new_empty(batch, L, d_inner) if need[1] or need[7] else None
        dB_t = B_t.new_empty(B_t.shape) if need[3] else None
        dC_t = C_t.new_empty(C_t.shape) if need[4] else None
        dA_r = torch.zeros_like(A_r) if need[2] else None

        ws = _Workspace(min(T, L), batch, A_r, 3)
        g_s = ws.steps[2]
        carry = None
        n_chunks = states.shape[0]
        for c in range(n_chunks - 1, -1, -1):
            t0, t1 = c * T, min(L, (c + 1) * T)
            m = t1 - t0
            dt_c, du_c = _steps(dt, t0, t1, groups), _steps(du, t0, t1, groups)
            a, h = _recompute_chunk(ws, dt_c, du_c, A_r, B_t[t0:t1], states[c] if c else None)
            a_s = ws.steps[0]
            dy_c = _steps(dy, t0, t1, groups)  # (m, b, g, 1, dg)
            # Adjoint of the states: g_t = C_t dy_t + a_{t+1} g_{t+1}, backwards in time.
            gr = ws.bufs[2][:m]
            torch.mul(C_t[t0:t1].unsqueeze(-1), dy_c, out=gr)
            if carry is not None:
                g_s[m - 1].add_(carry)
            for k in range(m - 2, -1, -1):
                g_s[k].addcmul_(a_s[k + 1], g_s[k + 1])
            if c:
                carry = a_s[0] * g_s[0]
            if dC_t is not None:
                dC_t[t0:t1] = torch.matmul(h, dy_c.transpose(-1, -2)).squeeze(-1)
            if dB_t is not None:
                dB_t[t0:t1] = torch.matmul(gr, du_c.transpose(-1, -2)).squeeze(-1)
            if ddu is not None:
                _write_steps(ddu, t0, t1, torch.matmul(B_t[t0:t1].unsqueeze(-2), gr))
            if need_q:
                # q_t = g_t * a_t * h_{t-1}: the gradient with respect to dt_t * A.
                q = a
                if m > 1:
                    q[1:].mul_(h[:-1])
                if c:
                    q[0].mul_(states[c])
                else:
                    q[0].zero_()
                q.mul_(gr)
                scratch = h  # the states are no longer needed for this chunk
                if dA_r is not None:
                    torch.mul(q, dt_c, out=scratch)
                    dA_r += scratch.sum((0, 1))
                if ddtA is not None:
                    torch.mul(q, A_r, out=scratch)
                    _write_steps(ddtA, t0, t1, scratch.sum(3))

        du_grad = ddelta = dbias = dD = None
        if need[0]:
            du_grad = ddu * dt
            if D is not None:
                du_grad.addcmul_(dy, D.to(dtype))
            du_grad = du_grad.to(u.dtype).transpose(1, 2)
        if need[1] or need[7]:
            ddt = ddtA.addcmul_(ddu, u_l)
            if ctx.delta_softplus:
                ddt.mul_(torch.sigmoid(pre))
            if need[7]:
                dbias = ddt.sum((0, 1)).to(delta_bias.dtype)
            if need[1]:
                ddelta = ddt.to(delta.dtype).transpose(1, 2)
        if need[5]:
            dD = (dy * u_l).sum((0, 1)).to(D.dtype)
        dA = dA_r.transpose(1, 2).reshape(d_inner, n).to(A.dtype) if dA_r is not None else None
        dB = _from_time_major(dB_t, B) if dB_t is not None else None
        dC = _from_time_major(dC_t, C) if dC_t is not None else None
        if dz is not None:
            dz = dz.to(z.dtype).transpose(1, 2)
        return du_grad, ddelta, dA, dB, dC, dD, dz, dbias, None, None


def selective_scan_chunked(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Chunked sequential selective scan (same conventions as `selective_scan`).

    chunk_size: steps per chunk; None picks one from the work-buffer budget.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _ChunkedScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, chunk_size)
