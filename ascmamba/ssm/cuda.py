"""mamba-ssm's fused CUDA kernel, imported lazily: it is an optional extra (`.[cuda]`) and
cannot even be imported without its compiled extension, so every use is guarded."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=1)
def _load() -> Callable[..., Tensor] | None:
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or OSError/RuntimeError from a broken CUDA extension
        return None
    return selective_scan_fn


def kernel_importable() -> bool:
    """True when mamba-ssm and its compiled extension import."""
    return _load() is not None


def is_available() -> bool:
    """True when the kernel imports and a CUDA device is present."""
    return kernel_importable() and torch.cuda.is_available()


def selective_scan_cuda(
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
    """Run mamba-ssm's `selective_scan_fn` (same argument conventions as ours)."""
    fn = _load()
    if fn is None:
        raise RuntimeError("the 'cuda' selective-scan backend needs mamba-ssm (pip install '.[cuda]') "
                           "and its CUDA extension")
    if u.device.type != "cuda":
        raise RuntimeError(f"the 'cuda' selective-scan backend needs CUDA tensors; got device {u.device}")
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
