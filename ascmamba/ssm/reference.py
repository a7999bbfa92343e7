"""Sequential selective scan in plain PyTorch: the test oracle for the faster backends.

It follows mamba-ssm's `selective_scan_ref` semantics (real case) but is written so that
autograd through it stays linear in L: per-step inputs are produced once with `unbind`
(whose backward is a single `stack`) instead of indexing `x[:, :, i]` inside the loop,
which would make autograd allocate a full-size zero tensor for every step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """Work in at least float32 (half inputs are upcast), float64 stays float64."""
    dtype = torch.float32
    for t in tensors:
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def expand_groups(X: Tensor, d_inner: int) -> Tensor:
    """(batch, n, L) -> (batch, 1, n, L); grouped (batch, g, n, L) -> (batch, d_inner, n, L)."""
    if X.dim() == 3:
        return X.unsqueeze(1)
    groups = X.shape[1]
    if d_inner % groups:
        raise ValueError(f"d_inner {d_inner} is not divisible by {groups} groups")
    return X.repeat_interleave(d_inner // groups, dim=1)


def selective_scan_reference(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """Mamba-1 selective scan, one time step at a time; differentiable by autograd.

    u, delta, z: (batch, d_inner, L); A: (d_inner, d_state); B, C: (batch, d_state, L)
    or (batch, groups, d_state, L); D, delta_bias: (d_inner,). Returns (batch, d_inner, L)
    in u's dtype.
    """
    out_dtype = u.dtype
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
    d_inner = u.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    Bx = expand_groups(B, d_inner)  # (b, 1|d, n, L)
    Cx = expand_groups(C, d_inner)
    # Per-step inputs, time-major so that unbind(0) hands out one (b, d, n) slice per step.
    deltaA = torch.exp(torch.einsum("bdl,dn->lbdn", delta, A))
    deltaB_u = torch.einsum("bdl,bdnl,bdl->lbdn", delta, Bx.expand(-1, d_inner, -1, -1), u)
    C_steps = Cx.permute(3, 0, 1, 2).unbind(0)  # each (b, 1|d, n)

    h = u.new_zeros(u.shape[0], d_inner, A.shape[1])
    ys = []
    for dA, dBu, c in zip(deltaA.unbind(0), deltaB_u.unbind(0), C_steps, strict=True):
        h = dA * h + dBu
        ys.append((h * c).sum(-1))
    y = torch.stack(ys, dim=-1)  # (b, d, L)
    if D is not None:
        y = y + u * D.to(dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y.to(out_dtype)
