"""Parameters and multiply-accumulates per model, counted honestly.

Generic MAC counters see only convolutions and linear layers; they miss the
attention matmuls and Mamba's selective scan. Those modules report their own
MACs through `add_macs`, which is a no-op unless a `MacCounter` is active.
The count runs on the `meta` device: shapes only, no arithmetic.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import nn

from .frontend import FrontEnd
from .interface import ASCModel, MetaContext
from .metadata import TIME_FEATURES

_ACTIVE: ContextVar[MacCounter | None] = ContextVar("ascmamba_mac_counter", default=None)


def add_macs(count: int, kind: str = "other") -> None:
    """Record `count` MACs for math that hooks on nn.Linear/nn.Conv cannot see."""
    counter = _ACTIVE.get()
    if counter is not None:
        counter.by_kind[kind] += int(count)


def scan_macs(batch: int, d_inner: int, length: int, d_state: int) -> int:
    """MACs of one selective scan: per state element deltaB*u, the recurrence and C.h (3),
    plus the D skip per channel. The exp of delta*A is counted as one op per element too."""
    return batch * d_inner * length * (4 * d_state + 1)


@dataclass
class MacCounter:
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def _conv_hook(module: nn.Module, inputs, output) -> None:
    kernel = 1
    for k in module.kernel_size:
        kernel *= k
    add_macs(output.numel() * (module.in_channels // module.groups) * kernel, "conv")


def _linear_hook(module: nn.Linear, inputs, output) -> None:
    add_macs(output.numel() * module.in_features, "linear")


def _batchnorm_hook(module: nn.Module, inputs, output) -> None:
    # The DCASE Task 1 complexity helper (torchinfo) counts a BatchNorm as its weight and bias
    # elements, once per forward; counted the same way, CP-Mobile gives the published 29,419,156.
    add_macs(sum(p.numel() for p in module.parameters()), "norm")


@dataclass(frozen=True)
class Complexity:
    params: int
    param_bytes: int
    macs: int
    macs_by_kind: dict[str, int]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_complexity(model: ASCModel, front_end: FrontEnd, seconds: float = 10.0) -> Complexity:
    """Params and MACs of one forward pass on a single clip of `seconds` at `front_end`."""
    params = count_params(model)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    shadow = copy.deepcopy(model).to("meta").eval()
    hooks = []
    for m in shadow.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            hooks.append(m.register_forward_hook(_conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(_linear_hook))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            hooks.append(m.register_forward_hook(_batchnorm_hook))
    counter = MacCounter()
    token = _ACTIVE.set(counter)
    try:
        mel = torch.zeros(1, 1, front_end.frames(seconds), front_end.n_mels, device="meta")
        context = MetaContext(torch.zeros(1, dtype=torch.long, device="meta"),
                              torch.zeros(1, TIME_FEATURES, device="meta"))
        with torch.no_grad():
            shadow(mel, context)
    finally:
        _ACTIVE.reset(token)
        for h in hooks:
            h.remove()
    return Complexity(params, param_bytes, counter.total, dict(counter.by_kind))
