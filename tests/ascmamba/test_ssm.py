"""Selective-scan backends agree with the sequential reference (outputs and every gradient)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ascmamba.ssm import BACKENDS, available_backends, selective_scan
from ascmamba.ssm.chunked import selective_scan_chunked
from ascmamba.ssm.reference import selective_scan_reference

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def make_inputs(
    batch: int, d_inner: int, d_state: int, L: int, *, dtype=torch.float64, groups: int | None = None,
    c_groups: int | None = None, seed: int = 0, delta_scale: float = 1.0, device: str = "cpu",
    layout: str = "linear", softplus: bool = True,
) -> dict[str, torch.Tensor]:
    """Realistic Mamba inputs. layout="linear": u/delta/z are transposed views of (b, L, d)
    tensors, as callers produce them from nn.Linear; "contiguous": plain (b, d, L) tensors.
    softplus=False gives delta already positive (the caller applied softplus itself)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def seq(scale=1.0, shift=0.0, positive=False):
        x = randn(batch, L, d_inner) * scale + shift
        x = F.softplus(x) if positive else x
        return x.transpose(1, 2) if layout == "linear" else x.transpose(1, 2).contiguous()

    def bc(gr):
        return randn(batch, d_state, L) if gr is None else randn(batch, gr, d_state, L)

    x = {
        "u": seq(),
        # pre-activation of dt, like x_proj -> dt_proj output; softplus(.. + bias) ~ 0.01-1
        "delta": seq(0.5 * delta_scale, -1.0 * delta_scale, positive=not softplus),
        "A": -torch.exp(randn(d_inner, d_state) * 0.5),
        "B": bc(groups),
        "C": bc(groups if c_groups is None else c_groups),
        "D": randn(d_inner),
        "z": seq(),
        "delta_bias": randn(d_inner) * 0.5 if softplus else torch.rand(d_inner, generator=g, dtype=torch.float64),
    }
    return {k: v.to(dtype=dtype, device=device).requires_grad_() for k, v in x.items()}


def run(fn, x: dict, use: set[str], softplus: bool, seed: int = 1):
    """Output and the gradients of a random projection of it with respect to every input used."""
    for t in x.values():
        t.grad = None
    kwargs = {k: x[k] for k in ("D", "z", "delta_bias") if k in use}
    y = fn(x["u"], x["delta"], x["A"], x["B"], x["C"], delta_softplus=softplus, **kwargs)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (y * w.to(y)).sum().backward()
    grads = {k: x[k].grad.detach().clone() for k in NAMES if k in use or k in "u delta A B C".split()}
    return y.detach(), grads


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / max(scale, 1e-30)


def assert_agree(fn, x: dict, use: set[str], softplus: bool, tol: float):
    y_ref, g_ref = run(selective_scan_reference, x, use, softplus)
    y, g = run(fn, x, use, softplus)
    assert torch.isfinite(y).all()
    assert rel_err(y, y_ref) < tol, f"output: {rel_err(y, y_ref):.2e}"
    for k in g_ref:
        if g_ref[k].abs().max() == 0:  # dA is exactly zero for L=1 (no previous state)
            assert g[k].abs().max() == 0, k
            continue
        assert rel_err(g[k], g_ref[k]) < tol, f"grad {k}: {rel_err(g[k], g_ref[k]):.2e}"


ALL = {"D", "z", "delta_bias"}
OPTION_SETS = [
    pytest.param(ALL, True, id="all-softplus"),
    pytest.param(set(), False, id="bare"),
    pytest.param({"D", "delta_bias"}, False, id="D-bias"),
    pytest.param({"z"}, True, id="z-softplus"),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("use,softplus", OPTION_SETS)
@pytest.mark.parametrize("L", [1, 7, 64])
@pytest.mark.parametrize("groups", [None, 2], ids=["ungrouped", "grouped"])
def test_chunked_matches_reference(dtype, use, softplus, L, groups):
    x = make_inputs(2, 8, 4, L, dtype=dtype, groups=groups, seed=L, softplus=softplus)
    assert_agree(selective_scan_chunked, x, use, softplus, TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("L", [500, 1000])
def test_chunked_matches_reference_long(dtype, L):
    x = make_inputs(1, 4, 4, L, dtype=dtype, seed=L)
    assert_agree(selective_scan_chunked, x, ALL, True, TOL[dtype])


@pytest.mark.parametrize("chunk", [1, 8, 16])
@pytest.mark.parametrize("offset", [-1, 0, 1, 17])
def test_chunk_boundaries(chunk, offset):
    L = max(1, 2 * chunk + offset)
    x = make_inputs(2, 6, 3, L, seed=chunk * 100 + offset + 50)
    fn = lambda *a, **k: selective_scan_chunked(*a, **k, chunk_size=chunk)  # noqa: E731
    assert_agree(fn, x, ALL, True, TOL[torch.float64])


def test_prime_length_default_chunk():
    x = make_inputs(2, 8, 4, 97, dtype=torch.float32, seed=97)
    assert_agree(selective_scan_chunked, x, ALL, True, TOL[torch.float32])


@pytest.mark.parametrize("b_groups,c_groups", [(4, 4), (None, 2), (2, 4), (8, 8)])
def test_grouped_variants(b_groups, c_groups):
    x = make_inputs(2, 8, 3, 29, groups=b_groups, c_groups=c_groups, seed=3)
    fn = lambda *a, **k: selective_scan_chunked(*a, **k, chunk_size=8)  # noqa: E731
    assert_agree(fn, x, ALL, True, TOL[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_contiguous_bdl_inputs(dtype):
    """Inputs that are contiguous in (b, d, L), not transposed views, give the same answer."""
    x = make_inputs(2, 8, 4, 40, dtype=dtype, layout="contiguous", seed=5)
    assert_agree(selective_scan_chunked, x, ALL, True, TOL[dtype])


def test_dispatch_backends_agree():
    x = make_inputs(2, 8, 4, 33, dtype=torch.float32)
    y_ref, _ = run(lambda *a, **k: selective_scan(*a, **k, backend="reference"), x, ALL, True)
    for backend in ("auto", "chunked"):
        y, _ = run(lambda *a, backend=backend, **k: selective_scan(*a, **k, backend=backend), x, ALL, True)
        assert rel_err(y, y_ref) < 1e-5


def test_partial_requires_grad():
    """Only some inputs need gradients (the backward skips the rest) and those still match."""
    x = make_inputs(2, 8, 4, 21)
    for k in ("delta", "A", "C", "z"):
        x[k].requires_grad_(False)
    args = [x[k] for k in NAMES]
    selective_scan_reference(*args, delta_softplus=True).square().sum().backward()
    ref = {k: x[k].grad.clone() for k in ("u", "B", "D", "delta_bias")}
    for k in x:
        x[k].grad = None
    selective_scan_chunked(*args, delta_softplus=True).square().sum().backward()
    for k, g in ref.items():
        assert rel_err(x[k].grad, g) < 1e-10, k
    assert x["A"].grad is None and x["z"].grad is None


def test_interleaved_calls_and_inference_mode():
    """Reused CPU work buffers: two graphs of the same shape alive at once, backwards run in
    reverse order, and a call under inference_mode before training calls."""
    x1, x2 = make_inputs(2, 8, 4, 40, seed=1), make_inputs(2, 8, 4, 40, seed=2)
    with torch.inference_mode():
        selective_scan_chunked(*(x1[k].detach() for k in NAMES), delta_softplus=True)
    ys = [selective_scan_chunked(*(x[k] for k in NAMES), delta_softplus=True) for x in (x1, x2)]
    w = torch.randn(ys[0].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for y in reversed(ys):
        (y * w).sum().backward()
    for x in (x1, x2):
        got = {k: x[k].grad.clone() for k in NAMES}
        y_ref, g_ref = run(selective_scan_reference, x, ALL, True)
        for k in NAMES:
            assert rel_err(got[k], g_ref[k]) < 1e-10, k


def test_only_gate_and_skip_gradients():
    """Only z and D need gradients: the scan's own backward is skipped, those still match."""
    x = make_inputs(2, 8, 4, 19)
    for k in ("u", "delta", "A", "B", "C", "delta_bias"):
        x[k].requires_grad_(False)
    args = [x[k] for k in NAMES]
    selective_scan_reference(*args, delta_softplus=True).square().sum().backward()
    ref = {k: x[k].grad.clone() for k in ("D", "z")}
    for k in ref:
        x[k].grad = None
    selective_scan_chunked(*args, delta_softplus=True).square().sum().backward()
    for k, g in ref.items():
        assert rel_err(x[k].grad, g) < 1e-10, k


def test_chunked_gradcheck():
    """The hand-written backward against finite differences, independently of the reference."""
    x = make_inputs(1, 4, 2, 11, groups=2, seed=11)
    args = [x[k] for k in NAMES]
    fn = lambda *a: selective_scan_chunked(*a, delta_softplus=True, chunk_size=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-5)


def naive_scan(u, delta, A, B, C, D, z, delta_bias, softplus):
    """Textbook per-element loops in float64: checks the reference itself on tiny inputs."""
    b, d, L = u.shape
    n = A.shape[1]
    y = torch.zeros(b, d, L, dtype=torch.float64)
    for bi in range(b):
        for di in range(d):
            h = [0.0] * n
            for t in range(L):
                dt = float(delta[bi, di, t] + delta_bias[di])
                dt = math.log1p(math.exp(dt)) if softplus else dt
                acc = 0.0
                for ni in range(n):
                    if B.dim() == 3:
                        bb, cc = float(B[bi, ni, t]), float(C[bi, ni, t])
                    else:
                        grp = di // (d // B.shape[1])
                        bb, cc = float(B[bi, grp, ni, t]), float(C[bi, grp, ni, t])
                    h[ni] = math.exp(dt * float(A[di, ni])) * h[ni] + dt * bb * float(u[bi, di, t])
                    acc += cc * h[ni]
                val = acc + float(D[di]) * float(u[bi, di, t])
                zz = float(z[bi, di, t])
                y[bi, di, t] = val * zz / (1 + math.exp(-zz))
    return y


@pytest.mark.parametrize("groups", [None, 2])
def test_reference_matches_naive_loops(groups):
    x = {k: v.detach() for k, v in make_inputs(2, 4, 3, 6, groups=groups, seed=7).items()}
    y = selective_scan_reference(*(x[k] for k in NAMES), delta_softplus=True)
    y_naive = naive_scan(*(x[k] for k in NAMES), True)
    assert rel_err(y, y_naive) < 1e-12


def graph_nodes(y: torch.Tensor) -> list[str]:
    seen, stack, names = set(), [y.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(fn for fn, _ in node.next_functions)
    return names


def test_reference_backward_is_linear_in_length():
    """No per-step select/slice of full-length tensors in the reference's autograd graph:
    each of their backwards allocates a full-size zero tensor, which makes it quadratic."""
    x = make_inputs(1, 4, 2, 50)
    y = selective_scan_reference(*(x[k] for k in NAMES), delta_softplus=True)
    names = graph_nodes(y)
    assert names.count("UnbindBackward0") >= 3  # the per-step inputs come from unbind
    assert not [n for n in names if n.startswith(("SelectBackward", "SliceBackward", "IndexBackward"))]


def test_large_delta_softplus_stays_finite_float32():
    x = make_inputs(2, 8, 4, 300, dtype=torch.float32, delta_scale=-5.0, seed=2)  # pre-activation ~ +5
    assert x["delta"].mean() > 4
    y, g = run(selective_scan_chunked, x, ALL, True)
    assert torch.isfinite(y).all() and all(torch.isfinite(v).all() for v in g.values())
    assert_agree(selective_scan_chunked, x, ALL, True, TOL[torch.float32])


def test_half_precision_inputs_return_input_dtype():
    x = make_inputs(2, 8, 4, 20, dtype=torch.float32)
    xb = {k: v.detach().to(torch.bfloat16) for k, v in x.items()}
    xb["A"] = x["A"].detach()  # mamba keeps A in float32
    y = selective_scan(*(xb[k] for k in NAMES), delta_softplus=True, backend="chunked")
    y_ref = selective_scan_reference(*(xb[k] for k in NAMES), delta_softplus=True)
    assert y.dtype == torch.bfloat16
    assert rel_err(y.float(), y_ref.float()) < 2e-2


def test_unknown_backend_raises():
    x = make_inputs(1, 2, 2, 3)
    with pytest.raises(ValueError, match="chunked"):
        selective_scan(x["u"], x["delta"], x["A"], x["B"], x["C"], backend="nope")


def test_bad_shapes_raise():
    x = make_inputs(1, 6, 2, 3)
    with pytest.raises(ValueError):
        selective_scan(x["u"], x["delta"], x["A"], x["B"][..., :2], x["C"])
    with pytest.raises(ValueError):
        selective_scan(x["u"], x["delta"], x["A"], torch.zeros(1, 4, 2, 3), torch.zeros(1, 4, 2, 3))
    with pytest.raises(ValueError, match="at least 1"):
        selective_scan(x["u"][..., :0], x["delta"][..., :0], x["A"], x["B"][..., :0], x["C"][..., :0])


@pytest.mark.parametrize("groups", [None, 3])
def test_meta_device_returns_shape_only(groups):
    b, d, n, L = 3, 6, 4, 1000
    meta = dict(device="meta", dtype=torch.float32)
    bc = (b, n, L) if groups is None else (b, groups, n, L)
    for backend in ("auto", "reference", "chunked"):
        y = selective_scan(
            torch.empty(b, d, L, **meta), torch.empty(b, d, L, **meta), torch.empty(d, n, **meta),
            torch.empty(bc, **meta), torch.empty(bc, **meta), D=torch.empty(d, **meta),
            z=torch.empty(b, d, L, **meta), delta_softplus=True, backend=backend,
        )
        assert y.shape == (b, d, L) and y.device.type == "meta" and y.dtype == torch.float32


def test_available_backends():
    names = available_backends()
    assert {"reference", "chunked"} <= set(names) <= set(BACKENDS)
    assert ("cuda" in names) == (torch.cuda.is_available() and _mamba_ssm_importable())


def _mamba_ssm_importable() -> bool:
    from ascmamba.ssm.cuda import kernel_importable

    return kernel_importable()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("groups", [None, 2])
def test_chunked_on_cuda_matches_reference(groups):
    x = make_inputs(2, 16, 8, 300, dtype=torch.float32, groups=groups, device="cuda", seed=4)
    assert_agree(selective_scan_chunked, x, ALL, True, TOL[torch.float32])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("use,softplus", OPTION_SETS)
@pytest.mark.parametrize("L", [1, 64, 1000])
def test_mamba_ssm_kernel_parity(use, softplus, L):
    pytest.importorskip("mamba_ssm.ops.selective_scan_interface")
    from ascmamba.ssm.cuda import selective_scan_cuda

    x = make_inputs(2, 16, 8, L, dtype=torch.float32, device="cuda", seed=L, softplus=softplus)
    assert_agree(selective_scan_cuda, x, use, softplus, 1e-3)  # the kernel's own float32 tolerance
    y_auto, _ = run(lambda *a, **k: selective_scan(*a, **k, backend="auto"), x, use, softplus)
    y_cuda, _ = run(selective_scan_cuda, x, use, softplus)
    assert torch.equal(y_auto, y_cuda)
