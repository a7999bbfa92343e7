"""`make gpu-check`: everything that needs CUDA, in one run, on a machine with only torch.

GPU boxes often have torch preinstalled and reach no package registry, and a lent GPU gives a few
minutes, so this needs nothing but torch and numpy (no pytest, Ray or optuna). What it checks:
README, "GPU and clusters". Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from ascmamba.mamba import BiMamba
from ascmamba.ssm import available_backends, selective_scan
from ascmamba.ssm.reference import selective_scan_reference

from .common import sync
from .train import training_step_inputs


def _scan_inputs(device: torch.device, groups: int, L: int = 300, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    b, d, n = 2, 16, 8
    shape_bc = (b, groups, n, L) if groups > 1 else (b, n, L)
    x = {"u": torch.randn(b, d, L, generator=g), "delta": torch.rand(b, d, L, generator=g) * 0.5,
         "A": -torch.rand(d, n, generator=g) - 0.5, "B": torch.randn(*shape_bc, generator=g),
         "C": torch.randn(*shape_bc, generator=g), "D": torch.randn(d, generator=g),
         "z": torch.randn(b, d, L, generator=g), "delta_bias": torch.randn(d, generator=g) * 0.1}
    return {k: v.to(device) for k, v in x.items()}


def _max_error(backend: str, device: torch.device, groups: int) -> float:
    x = _scan_inputs(device, groups)
    ref = selective_scan_reference(**{k: v.double().cpu() for k, v in x.items()}, delta_softplus=True)
    out = selective_scan(**x, delta_softplus=True, backend=backend)
    return float((out.double().cpu() - ref).abs().max())


def check_scans(device: torch.device) -> list[tuple[str, bool, str]]:
    rows = []
    for groups in (1, 2):
        err = _max_error("chunked", device, groups)
        rows.append((f"chunked scan on {device.type} vs float64 reference, groups={groups}", err < 1e-4,
                     f"max |err| {err:.1e}"))
    if "cuda" in available_backends() and device.type == "cuda":
        err = _max_error("cuda", device, 1)
        rows.append(("mamba-ssm CUDA kernel vs float64 reference", err < 1e-3, f"max |err| {err:.1e}"))
    else:
        rows.append(("mamba-ssm CUDA kernel", True,
                     "skipped: mamba-ssm does not import here (our chunked scan serves CUDA)"))
    torch.manual_seed(0)
    bi = BiMamba(16, d_state=8, expand=2).to(device)
    x = torch.randn(4, 50, 16, device=device)
    fused = bi(x)
    separate = bi.merge(torch.cat([bi.forward_mixer(x), bi.backward_mixer(x.flip(1)).flip(1)], dim=-1))
    err = float((fused - separate).detach().abs().max())
    rows.append((f"fused bidirectional scan vs two scans on {device.type}", err < 1e-5, f"max |err| {err:.1e}"))
    return rows


def check_bf16_step(device: torch.device) -> tuple[str, bool, str]:
    batch = 4
    model, opt, mel, ctx, y = training_step_inputs("ascmamba_base", batch, 10.0, device)
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        loss = F.cross_entropy(model(mel, ctx), y)
    loss.backward()
    finite = bool(torch.isfinite(loss)) and all(torch.isfinite(p.grad).all()
                                                for p in model.parameters() if p.grad is not None)
    opt.step()
    sync(device)
    return (f"one bf16 training step of ascmamba_base on {device.type} (batch {batch} of 10-s clips)", finite,
            f"loss {float(loss):.3f}, {time.perf_counter() - start:.2f} s incl. first-call overheads")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run without benchmarks")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: torch.cuda.is_available() is False on this machine; nothing to check", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device "
          f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, scan backends {available_backends()}")
    rows = check_scans(device) + [check_bf16_step(device)]
    for name, ok, detail in rows:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    result = {"checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in rows]}
    if device.type == "cuda":
        from .scan import format_scan_table, run_scan_benchmark
        from .train import format_train_table, run_train_benchmark

        result["scan"] = run_scan_benchmark(include_reference=False, device="cuda")
        print(format_scan_table(result["scan"]))
        result["train"] = run_train_benchmark()
        print(format_train_table(result["train"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
