"""Every registered model, tested the moment it is registered."""
from __future__ import annotations

import pytest
import torch

from ascmamba import MetaContext, create_model, get_spec, list_models
from ascmamba.complexity import count_params, model_complexity
from ascmamba.metadata import TIME_FEATURES

MODELS = list_models()
FRAMES = 64  # short clips keep the whole registry under a few seconds on CPU


def _batch(name: str, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    spec = get_spec(name)
    mel = torch.randn(batch, 1, FRAMES, spec.front_end.n_mels, generator=g)
    context = MetaContext(torch.tensor([1, 3])[:batch], torch.randn(batch, TIME_FEATURES, generator=g))
    return mel, context


def test_registry_has_every_family():
    families = {get_spec(n).family for n in MODELS}
    assert {"ascmamba", "cnn", "transformer", "official"} <= families
    assert {"ascmamba_tiny", "ascmamba_base", "cpmobile", "patch_transformer", "apsipa_setrans"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shape(name):
    torch.manual_seed(0)
    model = create_model(name)
    mel, context = _batch(name)
    mel.requires_grad_(True)
    logits = model(mel, context)
    assert logits.shape == (2, model.num_classes)
    assert torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    assert mel.grad is not None and torch.isfinite(mel.grad).all() and mel.grad.abs().sum() > 0
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    # the metadata encoder of a model whose fusion is off is absent, so every parameter learns
    assert not without_grad, f"parameters without gradient: {without_grad[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_deterministic_under_seed(name):
    mel, context = _batch(name)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = create_model(name).eval()
        with torch.no_grad():
            outs.append(model(mel, context))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.manual_seed(124)
    other = create_model(name).eval()
    with torch.no_grad():
        assert not torch.allclose(other(mel, context), outs[0])


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_declared(name):
    spec = get_spec(name)
    assert count_params(create_model(name)) == spec.expected_params


@pytest.mark.parametrize("name", MODELS)
def test_context_used_or_ignored(name):
    """Metadata models react to the city; audio-only models give identical logits for any context."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    # push every metadata pathway away from its identity initialisation
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    mel, context = _batch(name)
    other_city = MetaContext(torch.tensor([2, 5]), context.time)
    unknown = MetaContext(torch.tensor([0, 0]), context.time)
    with torch.no_grad():
        a, b, c = model(mel, context), model(mel, other_city), model(mel, unknown)
        none = model(mel)
    assert torch.isfinite(c).all() and torch.isfinite(none).all()
    if model.uses_metadata:
        assert not torch.allclose(a, b)
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, none, rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_complexity_counts_macs(name):
    spec = get_spec(name)
    model = create_model(name)
    cx = model_complexity(model, spec.front_end)
    assert cx.params == spec.expected_params
    assert cx.macs > cx.params  # every weight is used at least once per clip
    if spec.family == "ascmamba":
        assert cx.macs_by_kind.get("scan", 0) > 0


def test_none_override_keeps_default():
    a = create_model("ascmamba_tiny", channels=None)
    assert count_params(a) == get_spec("ascmamba_tiny").expected_params


def test_unknown_model_names_the_registry():
    with pytest.raises(KeyError, match="ascmamba_tiny"):
        create_model("no_such_model")


def test_rejects_wrong_input_shape():
    model = create_model("ascmamba_tiny")
    with pytest.raises(ValueError, match="batch, 1, frames, mels"):
        model(torch.randn(2, FRAMES, 64))


# --------------------------------------------------------------------------- ASCMamba's parts


def test_fused_bidirectional_scan_equals_two_scans():
    from ascmamba.mamba import BiMamba

    torch.manual_seed(0)
    bi = BiMamba(8, d_state=4, expand=2).double()
    x = torch.randn(3, 29, 8, dtype=torch.double, requires_grad=True)
    fused = bi(x)
    separate = bi.merge(torch.cat([bi.forward_mixer(x), bi.backward_mixer(x.flip(1)).flip(1)], dim=-1))
    assert torch.allclose(fused, separate, atol=1e-12)
    g_fused = torch.autograd.grad(fused.square().sum(), [x, *bi.parameters()])
    g_sep = torch.autograd.grad(separate.square().sum(), [x, *bi.parameters()])
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g_fused, g_sep, strict=True))


@pytest.mark.parametrize("head", ["freq_stats", "freq_mean"])
def test_heads_train_and_frequency_stats_do_not_depend_on_mel_bins(head):
    torch.manual_seed(0)
    model = create_model("ascmamba_tiny", head=head)
    for mels in (64, 128):
        mel = torch.randn(2, 1, FRAMES, mels)
        assert model(mel, MetaContext.unknown(2)).shape == (2, 10)
    assert (model.stats is not None) == (head == "freq_stats") and (model.norm is not None) == (head == "freq_mean")
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("ascmamba_tiny", head="attention")


def test_zero_initialised_blocks_start_as_the_identity():
    from ascmamba.ascmamba_model import DualPathBlock

    torch.manual_seed(0)
    x = torch.randn(2, 11, 5, 8)
    for residual in ("shared", "per_direction"):
        block = DualPathBlock(8, "tf", None, True, zero_init=True, residual=residual, d_state=4, expand=1)
        assert torch.allclose(block(x, None), x, atol=1e-6), residual
    assert not torch.equal(DualPathBlock(8, "tf", None, True, d_state=4, expand=1)(x, None), x)


def test_ssm_parameters_are_kept_out_of_weight_decay(micro_data_config):
    from harness.train.config import compose_config
    from harness.train.trial import Trial

    cfg = compose_config(["model=ascmamba_tiny", "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}",
                          "pseudo=none", "train.epochs=1"])
    trial = Trial(cfg, progress=False)
    decayed = {id(p) for p in trial.optimizer.param_groups[0]["params"]}
    names = {id(p): n for n, p in trial.model.named_parameters()}
    ssm = [i for i, n in names.items() if n.endswith(("A_log", ".D"))]
    assert ssm and not decayed & set(ssm)
    assert trial.optimizer.param_groups[0]["weight_decay"] > 0 == trial.optimizer.param_groups[1]["weight_decay"]
    assert any(n.endswith("in_proj.weight") for i, n in names.items() if i in decayed)


@pytest.mark.parametrize("key", ["stem_stride", "downsample"])
@pytest.mark.parametrize("value", [(0, 4), (2,), (-1, 1)])
def test_bad_strides_are_a_clear_error(key, value):
    with pytest.raises(ValueError, match=rf"{key} must be two whole numbers >= 1"):
        create_model("ascmamba_tiny", **{key: value})
