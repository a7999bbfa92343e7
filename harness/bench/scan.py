"""Selective-scan benchmark: our backends vs mambapy's parallel scan and vs autograd
through the sequential reference, next to the machine's exp floor, all in one run.

Every method computes the same math, y = scan(u) + D * u with delta already positive (no
softplus, delta_bias or z gating, since mambapy's `selective_scan` has none), forward and
forward+backward with respect to all of u, delta, A, B, C, D.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from torch import Tensor

from ascmamba.ssm import available_backends, selective_scan

from .common import median_ms, times_ms

Inputs = dict[str, Tensor]

MAMBAPY_NOTE = (
    "mambapy = the body of mambapy's Mamba.selective_scan in its own (b, L, d, n) layout: "
    "deltaA = exp(delta*A), deltaB_u = delta*B*u, mambapy.pscan.pscan (Blelloch parallel scan, "
    "pads L to a power of two), y = hs @ C, + D*u; the same work our backends do, nothing more."
)
REFERENCE_NOTE = (
    "reference = autograd through ascmamba.ssm.reference (a sequential time loop written to be "
    "linear in L; mamba-ssm's selective_scan_ref indexes x[:, :, i] per step and has a quadratic "
    "backward, so it would be far slower than this)."
)
FLOOR_NOTE = (
    "exp floor = batch*L*d_inner*d_state exponentials at the faster of the measured torch.exp and "
    "torch.exp2 rates (the chunked backend uses exp2), once forward and twice for forward+backward "
    "(its backward recomputes exp(delta*A) chunk by chunk); every other op is extra."
)


def measure_machine(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """float32 matmul GFLOP/s and torch.exp / torch.exp2 rates (G/s): the scan's ceilings."""
    n = 1024 if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    mm_ms = median_ms(lambda: a @ b, repeats, device)
    x = -torch.rand(1 << 22, device=device)
    out = torch.empty_like(x)
    exp_ms = median_ms(lambda: torch.exp(x, out=out), repeats, device)
    exp2_ms = median_ms(lambda: torch.exp2(x, out=out), repeats, device)
    return {
        "matmul_gflops": 2 * n**3 / (mm_ms * 1e-3) / 1e9,
        "exp_gexp_per_s": x.numel() / (exp_ms * 1e-3) / 1e9,
        "exp2_gexp_per_s": x.numel() / (exp2_ms * 1e-3) / 1e9,
    }


def make_inputs(batch: int, d_inner: int, d_state: int, L: int, device: torch.device, seed: int = 0) -> Inputs:
    """(b, L, d)-layout tensors, as nn.Linear produces them; delta is already positive."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g)

    x = {
        "u": randn(batch, L, d_inner),
        "delta": torch.nn.functional.softplus(randn(batch, L, d_inner) * 0.5 - 2.0),
        "A": -torch.exp(randn(d_inner, d_state) * 0.5),
        "B": randn(batch, L, d_state),
        "C": randn(batch, L, d_state),
        "D": randn(d_inner),
    }
    return {k: v.to(device).requires_grad_() for k, v in x.items()}


def ours(backend: str) -> Callable[[Inputs], Tensor]:
    """Our selective_scan fed the transposed (b, d, L) views that model code passes."""

    def fn(x: Inputs) -> Tensor:
        t = lambda v: v.transpose(1, 2)  # noqa: E731
        return selective_scan(t(x["u"]), t(x["delta"]), x["A"], t(x["B"]), t(x["C"]), x["D"], backend=backend)

    return fn


def mambapy_scan(x: Inputs) -> Tensor:
    """The body of mambapy's Mamba.selective_scan (inputs (b, L, .), output (b, L, d))."""
    from mambapy.pscan import pscan

    u, delta, A, B, C, D = (x[k] for k in ("u", "delta", "A", "B", "C", "D"))
    deltaA = torch.exp(delta.unsqueeze(-1) * A)  # (b, L, d, n)
    deltaB_u = delta.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)
    hs = pscan(deltaA, deltaB_u)
    return (hs @ C.unsqueeze(-1)).squeeze(3) + D * u


def _mambapy_available() -> bool:
    try:
        import mambapy.pscan  # noqa: F401
    except ImportError:
        return False
    return True


def _time_method(fn: Callable[[Inputs], Tensor], x: Inputs, repeats: int, device: torch.device) -> dict[str, float]:
    def fwd() -> None:
        with torch.no_grad():
            fn(x)

    def fwd_bwd() -> None:
        for v in x.values():
            v.grad = None
        fn(x).sum().backward()

    fwd_t, fwd_bwd_t = times_ms(fwd, repeats, device), times_ms(fwd_bwd, repeats, device)
    # The median is the headline; the minimum is kept because shared machines add bursts.
    return {
        "fwd_ms": statistics.median(fwd_t), "fwd_bwd_ms": statistics.median(fwd_bwd_t),
        "fwd_min_ms": min(fwd_t), "fwd_bwd_min_ms": min(fwd_bwd_t),
    }


def _ratio(slow: dict | None, fast: dict | None) -> dict[str, float] | None:
    if not slow or not fast:
        return None
    return {k.removesuffix("_ms"): slow[k] / fast[k] for k in ("fwd_ms", "fwd_bwd_ms")}


HEADLINE_L = 512
GOALS = {"mambapy": 5.0, "reference": 20.0}   # forward+backward speed-ups at HEADLINE_L, judged at GOAL_CONFIG only
GOAL_CONFIG = {"batch": 16, "d_inner": 128, "d_state": 16, "threads": 2}


def _headline(rows: list[dict], backends: list[str], config: dict) -> dict | None:
    """Forward+backward at L=512 for the default backend (the CUDA kernel if present); the
    goals are only judged at the configuration they were set for."""
    row = next((r for r in rows if r["L"] == HEADLINE_L), None)
    if row is None or not backends:
        return None
    name = "cuda" if "cuda" in backends else backends[0]
    judged = config == GOAL_CONFIG
    out = {"L": HEADLINE_L, "method": name, "fwd_bwd_ms": row["timings"][name]["fwd_bwd_ms"]}
    for other, goal in GOALS.items():
        r = row["ratios"].get(f"{name}_vs_{other}")
        out[f"vs_{other}"] = None if r is None else r["fwd_bwd"]
        out[f"vs_{other}_goal"] = goal if judged else None
        out[f"vs_{other}_met"] = None if r is None or not judged else r["fwd_bwd"] >= goal
    return out


def _methods(dev: torch.device,
             include_reference: bool) -> tuple[list[str], dict[str, Callable[[Inputs], Tensor]], list[dict]]:
    """Our backends usable on `dev`, then mambapy and the reference when available, and why any is left out."""
    backends = [b for b in available_backends() if b != "reference" and (b != "cuda" or dev.type == "cuda")]
    methods: dict[str, Callable[[Inputs], Tensor]] = {b: ours(b) for b in backends}
    skipped: list[dict] = []
    if _mambapy_available():
        methods["mambapy"] = mambapy_scan
    else:
        skipped.append({"method": "mambapy", "L": "all", "reason": "mambapy is not installed (pip install mambapy)"})
    if include_reference:
        methods["reference"] = ours("reference")
    else:
        skipped.append({"method": "reference", "L": "all", "reason": "include_reference=False"})
    return backends, methods, skipped


def _measure_length(L: int, methods: dict, backends: list[str], batch: int, d_inner: int, d_state: int,
                    repeats: int, dev: torch.device, machine: dict, reference_max_len: int,
                    skipped: list[dict]) -> dict:
    """Timings of every method at sequence length L, the exp() floor, and our backends' ratios."""
    x = make_inputs(batch, d_inner, d_state, L, dev, seed=L)
    timings = {}
    for name, fn in methods.items():
        if name == "reference" and L > reference_max_len:
            skipped.append({"method": name, "L": L, "reason": f"reference measured only up to L={reference_max_len}"})
            continue
        timings[name] = _time_method(fn, x, repeats, dev)
    rate = max(machine["exp_gexp_per_s"], machine["exp2_gexp_per_s"])
    exp_s = batch * L * d_inner * d_state / (rate * 1e9)
    floor = {"fwd_ms": exp_s * 1e3, "fwd_bwd_ms": 2 * exp_s * 1e3}
    ratios = {}
    for b in backends:
        ratios[f"{b}_vs_mambapy"] = _ratio(timings.get("mambapy"), timings[b])
        ratios[f"{b}_vs_reference"] = _ratio(timings.get("reference"), timings[b])
        ratios[f"{b}_over_exp_floor"] = _ratio(timings[b], floor)
    return {"L": L, "timings": timings, "exp_floor": floor, "ratios": ratios}


def run_scan_benchmark(
    lengths: tuple[int, ...] = (64, 128, 256, 512, 1024),
    batch: int = 16,
    d_inner: int = 128,
    d_state: int = 16,
    threads: int = 2,
    repeats: int = 3,
    quick: bool = False,
    include_reference: bool = True,
    device: str | None = None,
) -> dict:
    """Time every scan backend usable here against mambapy and the reference (float32). quick: lengths
    128 and 512 only, reference only at L <= 512 (about 20 s on 2 CPU cores)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if quick:
        lengths = tuple(L for L in lengths if L in (128, 512)) or (128, 512)
    reference_max_len = 512 if quick else max(lengths)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        machine = measure_machine(dev)
        backends, methods, skipped = _methods(dev, include_reference)
        rows = [_measure_length(L, methods, backends, batch, d_inner, d_state, repeats, dev, machine,
                                reference_max_len, skipped) for L in lengths]
    finally:
        torch.set_num_threads(prev_threads)

    shape = {"batch": batch, "d_inner": d_inner, "d_state": d_state}
    return {
        "benchmark": "selective_scan",
        "headline": _headline(rows, backends, {**shape, "threads": threads}),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": threads,
        "config": {**shape, "dtype": "float32", "repeats": repeats, "quick": quick, "lengths": list(lengths),
                   "statistic": "median after 1 warm-up"},
        "machine": machine,
        "methods": list(methods),
        "rows": rows,
        "skipped": skipped,
        "notes": {"mambapy": MAMBAPY_NOTE, "reference": REFERENCE_NOTE, "exp_floor": FLOOR_NOTE},
    }


def _fmt(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def format_scan_table(result: dict) -> str:
    """Plain-text table: per L, forward and forward+backward ms per method, then the ratios."""
    cfg, m = result["config"], result["machine"]
    methods = result["methods"]
    ours_names = [n for n in methods if n not in ("mambapy", "reference")]
    lines = [
        f"selective scan, {result['device']}, torch {result['torch']}, {result['threads']} threads; "
        f"batch {cfg['batch']}, d_inner {cfg['d_inner']}, d_state {cfg['d_state']}, {cfg['dtype']}, "
        f"{cfg['statistic']} of {cfg['repeats']}",
        f"machine: float32 matmul {m['matmul_gflops']:.0f} GFLOP/s, torch.exp {m['exp_gexp_per_s']:.2f} G/s, "
        f"torch.exp2 {m['exp2_gexp_per_s']:.2f} G/s",
        "",
    ]
    header = ["L"] + [f"{n} fwd|f+b ms" for n in methods] + ["exp floor f+b"]
    for n in ours_names:
        header += [f"{n} vs mambapy f+b", f"{n} vs ref f+b"]
    table = [header]
    for row in result["rows"]:
        t = row["timings"]
        cells = [str(row["L"])]
        for n in methods:
            cells.append(f"{_fmt(t[n]['fwd_ms'])} | {_fmt(t[n]['fwd_bwd_ms'])}" if n in t else "skipped")
        cells.append(_fmt(row["exp_floor"]["fwd_bwd_ms"]))
        for n in ours_names:
            for other in ("mambapy", "reference"):
                r = row["ratios"].get(f"{n}_vs_{other}")
                cells.append(f"{r['fwd_bwd']:.1f}x (fwd {r['fwd']:.1f}x)" if r else "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    h = result.get("headline")
    if h:
        parts = [f"headline: {h['method']} forward+backward at L={h['L']}: {h['fwd_bwd_ms']:.1f} ms"]
        for other in GOALS:
            if h[f"vs_{other}"] is not None:
                part = f"{h[f'vs_{other}']:.1f}x vs {other}"
                if h[f"vs_{other}_met"] is not None:
                    met = "met" if h[f"vs_{other}_met"] else "NOT met"
                    part += f" (goal {h[f'vs_{other}_goal']:.0f}x: {met})"
                parts.append(part)
        lines += ["", "; ".join(parts)]
    if result["skipped"]:
        lines.append("")
        lines.append("skipped: " + "; ".join(f"{s['method']} at L={s['L']} ({s['reason']})" for s in result["skipped"]))
    lines.append("")
    lines += [f"note: {v}" for v in result["notes"].values()]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(format_scan_table(run_scan_benchmark(quick=args.quick, threads=args.threads)))
