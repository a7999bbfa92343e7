"""Mamba-1 selective scan (real-valued) behind one function, with swappable backends.

`selective_scan` follows mamba-ssm's `selective_scan_fn` conventions so that model code
runs unchanged on a CUDA machine with mamba-ssm's kernel and anywhere else on the
pure-PyTorch chunked backend; the sequential reference is kept as the test oracle.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .reference import selective_scan_reference

BACKENDS: tuple[str, ...] = ("reference", "chunked", "cuda")
"""Concrete backends; `backend="auto"` picks the CUDA kernel when usable, else "chunked"."""

__all__ = ["BACKENDS", "available_backends", "selective_scan", "selective_scan_reference"]


def _chunked() -> Callable[..., Tensor]:
    from .chunked import selective_scan_chunked

    return selective_scan_chunked


def _cuda() -> Callable[..., Tensor]:
    from .cuda import selective_scan_cuda

    return selective_scan_cuda


def _cuda_usable() -> bool:
    from .cuda import is_available

    return is_available()


def available_backends() -> list[str]:
    """Backends that can run on this machine (the CUDA kernel needs mamba-ssm and a GPU)."""
    names = ["reference", "chunked"]
    if _cuda_usable():
        names.append("cuda")
    return names


def _resolve(backend: str, device: torch.device) -> str:
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown selective-scan backend {backend!r}; valid: {', '.join(('auto', *BACKENDS))}")
    if backend != "auto":
        return backend
    return "cuda" if device.type == "cuda" and _cuda_usable() else "chunked"


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be (batch, d_inner, L); got {tuple(u.shape)} and {tuple(delta.shape)}")
    batch, d_inner, L = u.shape
    if L < 1:
        raise ValueError("the sequence length L must be at least 1")
    if A.shape[0] != d_inner or A.dim() != 2:
        raise ValueError(f"A must be (d_inner={d_inner}, d_state); got {tuple(A.shape)}")
    for name, X in (("B", B), ("C", C)):
        ok = (X.dim() == 3 and X.shape == (batch, A.shape[1], L)) or (
            X.dim() == 4 and X.shape[0] == batch and X.shape[2:] == (A.shape[1], L) and d_inner % X.shape[1] == 0
        )
        if not ok:
            raise ValueError(
                f"{name} must be (batch, d_state, L) or (batch, groups, d_state, L) with d_inner divisible by "
                f"groups; got {tuple(X.shape)} for u {tuple(u.shape)}, A {tuple(A.shape)}"
            )


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    backend: str = "auto",
) -> Tensor:
    """y = selective scan of u (see `selective_scan_reference` for the exact semantics).

    u, delta, z: (batch, d_inner, L); A: (d_inner, d_state); B, C: (batch, d_state, L) or
    (batch, groups, d_state, L); D, delta_bias: (d_inner,). Returns (batch, d_inner, L) in
    u's dtype. On the `meta` device only the output's shape is produced (for MAC counting).
    """
    name = _resolve(backend, u.device)
    _check_shapes(u, delta, A, B, C)
    if u.device.type == "meta":
        return torch.empty(u.shape, dtype=u.dtype, device=u.device)
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "reference":
        return selective_scan_reference(*args)
    if name == "chunked":
        return _chunked()(*args)
    return _cuda()(*args)
