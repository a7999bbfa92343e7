"""Fast pure-PyTorch selective scan: time-sequential over chunks, hand-written backward.

Why this shape (measured on a 2-core CPU, see shared/notes/measured-facts.md):
- The scan costs one exponential per (batch, step, channel, state) element, computed as
  exp2(dt * A log2 e) because `torch.exp2` runs ~2.5x faster than `torch.exp` there. A
  closed form in log space (`exp(cumsum(delta * A))`) overflows float32, so the recurrence
  h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t is walked one step at a time.
- Storing every state costs O(batch L d_inner d_state) memory and bandwidth. Instead L is
  walked in chunks of ~8-64 steps through small reused work buffers (~4 MB); only the state
  at each chunk start is kept, and the backward recomputes each chunk before running the
  adjoint recurrence backwards in time.
- Work buffers are (step, batch, group, d_state, channel): time-major so that a chunk and
  each step in it are contiguous, channels innermost so that the reductions over d_state
  become batched row-vector products (bmm). O(batch L d_inner) arrays are kept time-major
  inside; inputs are read through free views, and the output and input gradients are
  written in (batch, L, d_inner) memory layout, the layout nn.Linear produces and consumes
  (callers pass `x.transpose(1, 2)` views).
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .reference import compute_dtype

LOG2E = math.log2(math.e)
CPU_BUFFER_BYTES, CPU_CHUNK_RANGE = 4 << 20, (8, 64)
CUDA_BUFFER_BYTES, CUDA_CHUNK_RANGE = 64 << 20, (32, 256)


def default_chunk_size(batch: int, d_inner: int, d_state: int, dtype: torch.dtype, device: torch.device) -> int:
    """Steps per chunk: as many as keep one work buffer near its byte budget, clamped.

    On CUDA every step is a kernel launch either way; longer chunks only save launches of
    the per-chunk ops, so the budget there is larger.
    """
    budget, (lo, hi) = ((CUDA_BUFFER_BYTES, CUDA_CHUNK_RANGE) if device.type == "cuda"
                        else (CPU_BUFFER_BYTES, CPU_CHUNK_RANGE))
    per_step = batch * d_inner * d_state * torch.empty((), dtype=dtype).element_size()
    return max(lo, min(hi, budget // max(per_step, 1)))


def _tm(x: Tensor) -> Tensor:
    """(batch, d, L) -> time-major (L, batch, d) view."""
    return x.permute(2, 0, 1)


def _bld_out(like: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """An empty (batch, L, d) tensor for a result, and its time-major (L, batch, d) view."""
    b, d, L = like.shape
    out = like.new_empty(b, L, d, dtype=dtype)
    return out, out.transpose(0, 1)


def _group_count(B: Tensor, C: Tensor) -> int:
    gb = 1 if B.dim() == 3 else B.shape[1]
    gc = 1 if C.dim() == 3 else C.shape[1]
    return gb * gc // math.gcd(gb, gc)


def _time_major_bc(X: Tensor, groups: int, dtype: torch.dtype) -> Tensor:
    """(b, n, L) or (b, g', n, L) -> contiguous (L, b, groups, n); small (no d_inner axis)."""
    if X.dim() == 3:
        X = X.unsqueeze(1)
    if X.shape[1] != groups:
        X = X.repeat_interleave(groups // X.shape[1], dim=1)
    return X.permute(3, 0, 1, 2).to(dtype).contiguous()


def _from_time_major_bc(dX: Tensor, like: Tensor) -> Tensor:
    """Gradient counterpart of `_time_major_bc`: (L, b, groups, n) -> like's shape and dtype."""
    dX = dX.permute(1, 2, 3, 0)
    g_like = 1 if like.dim() == 3 else like.shape[1]
    if dX.shape[1] != g_like:
        dX = dX.unflatten(1, (g_like, dX.shape[1] // g_like)).sum(2)
    return (dX.squeeze(1) if like.dim() == 3 else dX).to(like.dtype)


@dataclass
class _Prepared:
    """Inputs in the scan's working dtype and layout; all (L, b, ...) arrays contiguous."""

    pre: Tensor  # delta + delta_bias, (L, b, d)
    dt: Tensor  # softplus(pre) or pre, (L, b, d)
    du: Tensor  # dt * u, (L, b, d)
    A_r: Tensor  # (groups, n, d // groups)
    A2_r: Tensor  # A_r * log2(e), so that exp(dt A) = exp2(dt A2)
    B_t: Tensor  # (L, b, groups, n)
    C_t: Tensor  # (L, b, groups, n)

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(L, batch, groups, d_state, channels per group)."""
        L, b, _ = self.dt.shape
        g, n, dg = self.A_r.shape
        return L, b, g, n, dg


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus: bool, dtype: torch.dtype) -> _Prepared:
    batch, d_inner, L = u.shape
    groups = _group_count(B, C)
    pre = u.new_empty(L, batch, d_inner, dtype=dtype)
    if delta_bias is None:
        pre.copy_(_tm(delta))
    else:
        torch.add(_tm(delta), delta_bias.to(dtype), out=pre)
    dt = F.softplus(pre) if delta_softplus else pre
    du = torch.mul(dt, _tm(u), out=torch.empty_like(dt))
    A_r = A.to(dtype).reshape(groups, d_inner // groups, -1).transpose(1, 2).contiguous()
    return _Prepared(pre, dt, du, A_r, A_r * LOG2E, _time_major_bc(B, groups, dtype), _time_major_bc(C, groups, dtype))


_CPU_CACHE = threading.local()
MAX_CACHED_SHAPES = 4


def _work_buffers(like: Tensor, shape: tuple[int, ...], count: int) -> list[Tensor]:
    """`count` uninitialised buffers of `shape`; on CPU reused across calls (per thread).

    Why: with THP_MEM_ALLOC_ENABLE=1 every fresh multi-MB CPU tensor is page-faulted in
    again (measured ~0.8 ms per 4 MB, a tenth of a short scan). CUDA's caching allocator
    already reuses memory, so nothing is cached there. At most MAX_CACHED_SHAPES shapes are
    kept per thread (about 12 MB each at the default chunk size).
    """
    if like.device.type != "cpu":
        return [like.new_empty(shape) for _ in range(count)]
    cache: OrderedDict = _CPU_CACHE.__dict__.setdefault("bufs", OrderedDict())
    key = (like.dtype, shape)
    bufs = cache.pop(key, [])
    with torch.inference_mode(False):  # usable in and outside inference mode alike
        bufs += [like.new_empty(shape) for _ in range(count - len(bufs))]
    cache[key] = bufs
    while len(cache) > MAX_CACHED_SHAPES:
        cache.popitem(last=False)
    return bufs[:count]


class _Workspace:
    """`count` reused (chunk, b, groups, n, channels) buffers and their per-step views."""

    def __init__(self, p: _Prepared, T: int, count: int):
        L, b, g, n, dg = p.shape
        self.bufs = _work_buffers(p.dt, (min(T, L), b, g, n, dg), count)
        self.steps = [buf.unbind(0) for buf in self.bufs]


def _recompute_chunk(ws: _Workspace, p: _Prepared, t0: int, t1: int, h0: Tensor | None) -> tuple[Tensor, Tensor]:
    """Fill buffer 0 with a_t = exp(dt_t A) and buffer 1 with the states h_t for steps t0:t1."""
    m, (_, b, g, _, dg) = t1 - t0, p.shape
    a, h = ws.bufs[0][:m], ws.bufs[1][:m]
    a_s, h_s = ws.steps[0], ws.steps[1]
    torch.mul(p.dt[t0:t1].view(m, b, g, 1, dg), p.A2_r, out=a)
    a.exp2_()  # measured 2.5x faster than exp_ on CPU (float32 and float64); mamba-ssm does the same
    torch.mul(p.B_t[t0:t1].unsqueeze(-1), p.du[t0:t1].view(m, b, g, 1, dg), out=h)
    if h0 is not None:
        h_s[0].addcmul_(a_s[0], h0)
    for k in range(1, m):
        h_s[k].addcmul_(a_s[k], h_s[k - 1])
    return a, h


def _forward_scan(p: _Prepared, T: int) -> tuple[Tensor, Tensor]:
    """y (L, b, d) without the D term, and the state at every chunk start (zeros first)."""
    L, b, g, n, dg = p.shape
    n_chunks = -(-L // T)
    states = p.dt.new_empty(n_chunks, b, g, n, dg)
    states[0].zero_()
    y = torch.empty_like(p.dt)
    ws = _Workspace(p, T, 2)
    for c in range(n_chunks):
        t0, t1 = c * T, min(L, (c + 1) * T)
        rows = (t1 - t0) * b * g
        _, h = _recompute_chunk(ws, p, t0, t1, states[c] if c else None)
        torch.bmm(p.C_t[t0:t1].view(rows, 1, n), h.view(rows, n, dg), out=y[t0:t1].view(rows, 1, dg))
        if c + 1 < n_chunks:
            states[c + 1].copy_(h[-1])
    return y, states


@dataclass
class _ScanGrads:
    """Gradients the reverse-time pass produces (None where not needed)."""

    ddu: Tensor | None  # d loss / d (dt * u), (L, b, d)
    ddt_A: Tensor | None  # the part of d loss / d dt that flows through exp(dt A), (L, b, d)
    dA_r: Tensor | None  # (groups, n, dg)
    dB_t: Tensor | None  # (L, b, groups, n)
    dC_t: Tensor | None


def _backward_scan(p: _Prepared, states: Tensor, dy: Tensor, T: int,
                   need_ddu: bool, need_ddt: bool, need_A: bool, need_B: bool, need_C: bool) -> _ScanGrads:
    """Reverse-time adjoint pass, one chunk at a time, recomputing each chunk's states.

    With g_t = d loss / d h_t = C_t dy_t + a_{t+1} g_{t+1} and q_t = g_t a_t h_{t-1} (the
    gradient with respect to dt_t A): dC_t = h_t . dy_t, dB_t = g_t . du_t,
    d du_t = B_t . g_t, dA = sum_t q_t dt_t, d dt_t (via a) = sum_n q_t A.
    """
    L, b, g, n, dg = p.shape
    out = _ScanGrads(
        ddu=torch.empty_like(p.dt) if need_ddu else None,
        ddt_A=torch.empty_like(p.dt) if need_ddt else None,
        dA_r=torch.zeros_like(p.A_r) if need_A else None,
        dB_t=torch.empty_like(p.B_t) if need_B else None,
        dC_t=torch.empty_like(p.C_t) if need_C else None,
    )
    ws = _Workspace(p, T, 3)
    a_s, g_s = ws.steps[0], ws.steps[2]
    carry = None  # a_{t1} g_{t1}: what the chunk after this one sends back into its last state
    for c in range(states.shape[0] - 1, -1, -1):
        t0, t1 = c * T, min(L, (c + 1) * T)
        m = t1 - t0
        rows = m * b * g
        h0 = states[c] if c else None
        a, h = _recompute_chunk(ws, p, t0, t1, h0)
        gr = ws.bufs[2][:m]
        torch.mul(p.C_t[t0:t1].unsqueeze(-1), dy[t0:t1].view(m, b, g, 1, dg), out=gr)
        if carry is not None:
            g_s[m - 1].add_(carry)
        for k in range(m - 2, -1, -1):
            g_s[k].addcmul_(a_s[k + 1], g_s[k + 1])
        if c:
            carry = a_s[0] * g_s[0]

        # Matrix-vector products take the vector as a transposed row: a contiguous (rows, dg, 1)
        # operand, or an out= argument, was measured 2-8x slower in CPU bmm.
        h3, g3 = h.view(rows, n, dg), gr.view(rows, n, dg)
        if out.dC_t is not None:
            out.dC_t[t0:t1] = torch.bmm(h3, dy[t0:t1].view(rows, 1, dg).transpose(1, 2)).view(m, b, g, n)
        if out.dB_t is not None:
            out.dB_t[t0:t1] = torch.bmm(g3, p.du[t0:t1].view(rows, 1, dg).transpose(1, 2)).view(m, b, g, n)
        if out.ddu is not None:
            torch.bmm(p.B_t[t0:t1].view(rows, 1, n), g3, out=out.ddu[t0:t1].view(rows, 1, dg))
        if need_ddt or need_A:
            q = a  # a is no longer needed: overwrite it with q = g * a * h_prev
            q[1:].mul_(h[:-1])
            if h0 is None:
                q[0].zero_()
            else:
                q[0].mul_(h0)
            q.mul_(gr)
            scratch = h  # so are the states
            if out.dA_r is not None:
                torch.mul(q, p.dt[t0:t1].view(m, b, g, 1, dg), out=scratch)
                out.dA_r += scratch.view(m * b, g, n, dg).sum(0)
            if out.ddt_A is not None:
                torch.mul(q, p.A_r, out=scratch)
                torch.sum(scratch, dim=3, out=out.ddt_A[t0:t1].view(m, b, g, dg))
    return out


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool, chunk_size: int | None):
        dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
        batch, d_inner, L = u.shape
        T = chunk_size or default_chunk_size(batch, d_inner, A.shape[1], dtype, u.device)
        p = _prepare(u, delta, A, B, C, delta_bias, delta_softplus, dtype)
        y, states = _forward_scan(p, T)
        if D is not None:
            y.addcmul_(_tm(u), D.to(dtype))
        out, out_tm = _bld_out(u, u.dtype)
        if z is None:
            out_tm.copy_(y)
        else:
            torch.mul(y, F.silu(_tm(z).to(dtype)), out=out_tm)

        keep_y = z is not None and ctx.needs_input_grad[6]
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states, y if keep_y else None)
        ctx.delta_softplus, ctx.T, ctx.dtype = delta_softplus, T, dtype
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx, dout):
        u, delta, A, B, C, D, z, delta_bias, states, y = ctx.saved_tensors
        need_u, need_delta, need_A, need_B, need_C, need_D, need_z, need_bias = ctx.needs_input_grad[:8]
        need_ddt = need_delta or need_bias
        dtype = ctx.dtype
        p = _prepare(u, delta, A, B, C, delta_bias, ctx.delta_softplus, dtype)
        dout_tm = _tm(dout).to(dtype)

        dy = torch.empty_like(p.dt)  # d loss / d y, y being the scan output with the D term
        dz = None
        if z is None:
            dy.copy_(dout_tm)
        else:
            z_tm = _tm(z).to(dtype)
            sig = torch.sigmoid(z_tm)
            torch.mul(dout_tm, z_tm * sig, out=dy)
            if need_z:
                dz, dz_tm = _bld_out(z, z.dtype)
                dsilu = (1 - sig).mul_(z_tm).add_(1).mul_(sig)  # silu'(z)
                torch.mul(dsilu.mul_(dout_tm), y, out=dz_tm)

        if need_u or need_ddt or need_A or need_B or need_C:
            sg = _backward_scan(p, states, dy, ctx.T, need_u or need_ddt, need_ddt, need_A, need_B, need_C)

        du = ddelta = dbias = dD = dA = dB = dC = None
        u_tm = _tm(u)
        if need_u:
            du, du_tm = _bld_out(u, u.dtype)
            torch.mul(sg.ddu, p.dt, out=du_tm)
            if D is not None:
                du_tm.addcmul_(dy, D.to(dtype))
        if need_ddt:
            ddt = sg.ddt_A.addcmul_(sg.ddu, u_tm)
            if ctx.delta_softplus:
                ddt.mul_(p.pre.sigmoid_())  # softplus' = sigmoid; pre is not needed any more
            if need_bias:
                dbias = ddt.sum((0, 1)).to(delta_bias.dtype)
            if need_delta:
                ddelta, ddelta_tm = _bld_out(delta, delta.dtype)
                ddelta_tm.copy_(ddt)
        if need_D:
            dD = torch.mul(dy, u_tm).sum((0, 1)).to(D.dtype)
        if need_A:
            dA = sg.dA_r.transpose(1, 2).reshape(A.shape).to(A.dtype)
        if need_B:
            dB = _from_time_major_bc(sg.dB_t, B)
        if need_C:
            dC = _from_time_major_bc(sg.dC_t, C)
        t = lambda x: None if x is None else x.transpose(1, 2)  # noqa: E731  (b, L, d) -> (b, d, L) view
        return t(du), t(ddelta), dA, dB, dC, dD, t(dz), dbias, None, None


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

    chunk_size: steps per chunk; None picks one from the work-buffer budget. The result is a
    (batch, d_inner, L) view of a tensor laid out (batch, L, d_inner).
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _ChunkedScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, chunk_size)
