"""Search-space validation: every bad space fails before Ray starts, naming the file and the key."""
from __future__ import annotations

import pytest
import yaml

from harness.cli import main
from harness.tune.space import diff_canonical, load_space, resolve_space_path

GOOD = {
    "metric": "val/best_macro_acc", "mode": "max",
    "budget": {"samples": 2, "max_epochs": 3},
    "base": {"model": {"name": "ascmamba_tiny"}, "pseudo.mode": "none"},   # a model with fusion
    "search": {
        "train.lr": {"loguniform": [1e-4, 1e-2]},
        "model.fusion": {"choice": ["none", "film"]},
        "model.city_dropout": {"uniform": [0.0, 0.3], "when": {"model.fusion": ["film"]}},
        "train.freq_masks": {"int": [0, 4], "step": 2},
    },
}


def write(tmp_path, doc, name="space.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def with_search(key, spec):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["search"][key] = spec
    return doc


def test_good_space_resolves_types_and_base(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert space.base["model"]["name"] == "ascmamba_tiny"
    assert space.base["train"]["epochs"] == 3          # the budget sets the epochs
    assert space.base["pseudo"]["mode"] == "none"
    keys = [d.key for d in space.search]
    assert sorted(keys) == sorted(GOOD["search"])
    assert keys.index("model.fusion") < keys.index("model.city_dropout")   # conditions sample first
    assert {d.key: d for d in space.search}["model.city_dropout"].when == {"model.fusion": ("film",)}
    assert space.strategy == {"scheduler": "asha", "searcher": "tpe"}   # the defaults
    fifo = load_space(write(tmp_path, {**GOOD, "strategy": {"scheduler": "fifo", "searcher": "random"}}, "f.yaml"))
    assert fifo.strategy == {"scheduler": "fifo", "searcher": "random"}
    assert diff_canonical(space.canonical(), fifo.canonical()) == [
        'strategy.scheduler: "asha" -> "fifo"', 'strategy.searcher: "tpe" -> "random"']


@pytest.mark.parametrize("key,spec,fragment", [
    ("model.no_such_knob", {"uniform": [0, 1]}, "no such config key"),
    ("train.lr", {"uniform": [0.1, 0.01]}, "wrong order"),
    ("model.fusion", {"choice": []}, "non-empty"),
    ("model.fusion", {"uniform": [0.0, 1.0]}, "str key cannot take uniform"),
    ("model.num_blocks", {"choice": [2, "four"]}, "not a int"),
    ("train.lr", {"loguniform": [0.0, 0.1]}, "low > 0"),
    ("pseudo.tau1", {"uniform": [0.5, 1.5]}, "must be in [0, 1]"),
    ("model.name", {"choice": ["cpmobile", "resnet9000"]}, "is not one of"),
    ("model.fusion", {"choice": ["none", "gated"]}, "gated"),
    ("train.freq_masks", {"int": [0, 5], "step": 2}, "multiple of step"),
    ("model.dropout", {"uniform": [0, 0.2], "when": {"model.expand": [2]}}, "which is not a searched key"),
    ("model.dropout", {"uniform": [0, 0.2], "when": {"model.fusion": ["cln"]}}, "never takes that value"),
    ("data.holdout_cities", {"choice": [["a"]]}, "not searchable"),
])
def test_bad_search_key_names_file_and_key(tmp_path, key, spec, fragment):
    path = write(tmp_path, with_search(key, spec))
    with pytest.raises(ValueError) as err:
        load_space(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: search.{key}:"), msg
    assert fragment in msg and "\n" not in msg


@pytest.mark.parametrize("patch,fragment", [
    ({"base": {"model": {"nope": 1}}}, "base.model.nope: no such config key"),
    ({"budget": {"samples": 0}}, "budget.samples"),
    ({"budget": {"max_epochs": 2, "grace_period": 3}}, "budget.grace_period"),
    ({"resources": {"tpus": 1}}, "resources.tpus"),
    ({"mode": "maximise"}, "mode"),
    ({"serach": {}}, "unknown top-level key 'serach'"),
    ({"strategy": {"scheduler": "hyperband"}}, "strategy.scheduler: expected one of asha, fifo"),
    ({"strategy": {"sampler": "tpe"}}, "strategy.sampler: unknown key"),
])
def test_bad_top_level_names_file_and_key(tmp_path, patch, fragment):
    doc = {**GOOD, **patch}
    path = write(tmp_path, doc)
    with pytest.raises(ValueError, match=r"^" + str(path).replace("\\", "\\\\") + ": ") as err:
        load_space(path)
    assert fragment in str(err.value)


def test_cli_exits_2_with_one_line_before_ray(tmp_path, capsys):
    path = write(tmp_path, with_search("train.lr", {"uniform": [0.1, 0.01]}))
    assert main(["tune", "--space", path, "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ascbench: error: {path}: search.train.lr:") and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_shipped_spaces_validate_and_resolve_by_name():
    for name in ("quick", "ascmamba", "cpmobile", "patch_transformer", "apsipa_setrans"):
        space = load_space(name)
        assert space.search, name
    assert resolve_space_path("quick").name == "quick.yaml"
    fusion = {d.key: d for d in load_space("ascmamba").search}["model.fusion"]
    assert set(fusion.values) == {"none", "concat", "film", "cln", "cross_attn"}


def test_overrides_fix_keys_and_canonical_diff(tmp_path):
    path = write(tmp_path, GOOD)
    a = load_space(path)
    b = load_space(path, overrides=["data.preset=micro"], samples=5)
    changed = diff_canonical(a.canonical(), b.canonical())
    assert any(c.startswith("base.data.preset") for c in changed)
    assert any(c.startswith("budget.samples: 2 -> 5") for c in changed)
    with pytest.raises(ValueError, match="search.train.lr: is searched"):
        load_space(path, overrides=["train.lr=0.1"])


def test_a_space_json_stored_before_the_resource_rename_resumes_with_cpu_and_gpu():
    from harness.tune.run import space_from_canonical

    doc = {"metric": "val/best_macro_acc", "mode": "max", "seed": 0, "budget": {}, "base": {}, "search": {},
           "resources": {"cpus": 2, "gpus": 0.5}}
    assert space_from_canonical(doc, "old.yaml").resources == {"cpu": 2, "gpu": 0.5}
    doc["resources"] = {"cpu": 1, "gpu": 0}
    assert space_from_canonical(doc, "new.yaml").resources == {"cpu": 1, "gpu": 0}
