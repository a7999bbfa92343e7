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
        with torch.no_grad():
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            nn.init.uniform_(self.dt_proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, length, d_model) -> (batch, length, d_model)."""
        batch, length, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length]).transpose(1, 2).contiguous()
        dt, b, c = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)
        A = -torch.exp(self.A_log.float())
        add_macs(scan_macs(batch, self.d_inner, length, self.d_state), "scan")
        y = selective_scan(
            u.transpose(1, 2), dt.transpose(1, 2), A, b.transpose(1, 2), c.transpose(1, 2),
            D=self.D.float(), z=z.transpose(1, 2), delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True, backend=self.scan_backend,
        )
        return self.out_proj(y.transpose(1, 2))


class BiMamba(nn.Module):
    """A forward and a time-reversed mixer whose outputs are concatenated and projected
    (the SEMamba arrangement); with `bidirectional=False`, the forward mixer alone."""

    def __init__(self, d_model: int, bidirectional: bool = True, **mixer_kwargs):
        super().__init__()
        self.forward_mixer = MambaMixer(d_model, **mixer_kwargs)
        self.backward_mixer = MambaMixer(d_model, **mixer_kwargs) if bidirectional else None
        self.merge = nn.Linear(2 * d_model, d_model) if bidirectional else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward_mixer(x)
        if self.backward_mixer is None:
            return y
        y_back = self.backward_mixer(x.flip(1)).flip(1)
        return self.merge(torch.cat([y, y_back], dim=-1))
