"""Mamba (S6) mixer and its bidirectional wrapper, on `ascmamba.ssm.selective_scan`.

Tensors stay in (batch, length, channels) layout, as nn.Linear produces them;
the scan receives transposed views, which its CPU backend turns back for free.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .complexity import add_macs, scan_macs
from .ssm import selective_scan


class MambaMixer(nn.Module):
    """One Mamba-1 mixer: in-projection, causal depthwise conv, input-dependent SSM, gate."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        scan_backend: str = "auto",
    ):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        # S4D-real initialisation of A and the Mamba time-step initialisation: dt spread
        # log-uniformly in [dt_min, dt_max], stored through the inverse softplus.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.A_log._no_weight_decay = True  # mamba-ssm's convention, honoured by the trainer
        self.D._no_weight_decay = True
        with torch.no_grad():
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            nn.init.uniform_(self.dt_proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)

    def scan_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything before the selective scan, in `selective_scan`'s (batch, channels, L) layout."""
        length = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length]).transpose(1, 2).contiguous()
        dt, b, c = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)
        return {"u": u.transpose(1, 2), "delta": dt.transpose(1, 2), "A": -torch.exp(self.A_log.float()),
                "B": b.transpose(1, 2), "C": c.transpose(1, 2), "D": self.D.float(), "z": z.transpose(1, 2),
                "delta_bias": self.dt_proj.bias.float()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, length, d_model) -> (batch, length, d_model)."""
        return fused_scan([self], [x])[0]


def fused_scan(mixers: list[MambaMixer], inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Several mixers over same-shaped inputs as ONE selective scan, one B/C group per mixer.

    The scan's channels are independent, so stacking the mixers' channels (and giving each its
    own B and C group) computes exactly what separate scans compute, with one time-sequential
    pass instead of one per mixer: on the CPU the per-step overhead, not arithmetic, dominates.
    """
    parts = [m.scan_inputs(x) for m, x in zip(mixers, inputs, strict=True)]
    stacked = {k: torch.cat([p[k] for p in parts], dim=0 if parts[0][k].dim() <= 2 else 1)
               for k in ("u", "delta", "A", "D", "z", "delta_bias")}
    for k in ("B", "C"):
        stacked[k] = torch.stack([p[k] for p in parts], dim=1)  # (batch, groups, d_state, L)
    batch, _, length = stacked["u"].shape
    for m in mixers:
        add_macs(scan_macs(batch, m.d_inner, length, m.d_state), "scan")
    y = selective_scan(**stacked, delta_softplus=True, backend=mixers[0].scan_backend)
    return [m.out_proj(part.transpose(1, 2))
            for m, part in zip(mixers, y.split([m.d_inner for m in mixers], dim=1), strict=True)]


class BiMamba(nn.Module):
    """A forward and a time-reversed mixer whose outputs are concatenated and projected
    (the SEMamba arrangement); with `bidirectional=False`, the forward mixer alone."""

    def __init__(self, d_model: int, bidirectional: bool = True, **mixer_kwargs):
        super().__init__()
        self.forward_mixer = MambaMixer(d_model, **mixer_kwargs)
        self.backward_mixer = MambaMixer(d_model, **mixer_kwargs) if bidirectional else None
        self.merge = nn.Linear(2 * d_model, d_model) if bidirectional else None

    def directions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward and the (re-reversed) backward mixer outputs, before merging."""
        y, y_back = fused_scan([self.forward_mixer, self.backward_mixer], [x, x.flip(1)])
        return y, y_back.flip(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backward_mixer is None:
            return self.forward_mixer(x)
        return self.merge(torch.cat(self.directions(x), dim=-1))
