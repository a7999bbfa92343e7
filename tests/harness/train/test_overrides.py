"""One override grammar: the same `key=value` string means the same on the command line, in a grid
arm and in a space's base; the typed space and grid files refuse old keys and wrong types in one line."""
from __future__ import annotations

import pytest
import yaml

from harness.ablate.grid import load_grid, plan_runs
from harness.cli import main
from harness.errors import UserError
from harness.train.config import compose_config, to_dict
from harness.train.overrides import parse_override
from harness.tune.space import load_space

SPACE = {"budget": {"samples": 2, "max_epochs": 3}, "resources": {"cpu": 1, "gpu": 0},
         "search": {"train.lr": {"loguniform": [1e-4, 1e-2]}}}


def _write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("override, key, expected", [
    ("model.num_blocks+=1", "model.num_blocks", 2),          # ascmamba_tiny's registered default is 1
    ("model.num_blocks-=1", "model.num_blocks", 0),
    ("model.stem_stride=[2,4]", "model.stem_stride", [2, 4]),
    ("train.weight_decay=1e-3", "train.weight_decay", 0.001),  # YAML 1.1 would read '1e-3' as a string
    ("+train.mixup_prob=0.5", "train.mixup_prob", 0.5),
    ("model=cpmobile", "model.name", "cpmobile"),
    ("pseudo=one_step", "pseudo.mode", "one_step"),
])
def test_same_override_same_result_on_the_command_line_in_a_grid_and_in_a_space(tmp_path, override, key, expected):
    group, leaf = key.split(".")
    cli = to_dict(compose_config(["model=ascmamba_tiny", override]))
    grid = _write(tmp_path, "grid.yaml", {"seeds": 1, "base": {"overrides": ["model=ascmamba_tiny"]},
                                          "variants": {"v": [override]}})
    arm = next(r for r in plan_runs(load_grid(grid)) if r.arm == "v").config
    space = load_space(_write(tmp_path, "space.yaml", {**SPACE, "base": ["model=ascmamba_tiny", override]})).base
    from_cli = load_space(_write(tmp_path, "plain.yaml", {**SPACE, "base": ["model=ascmamba_tiny"]}),
                          overrides=[override]).base
    assert cli[group][leaf] == arm[group][leaf] == space[group][leaf] == from_cli[group][leaf] == expected
    # a group option replaces the whole group (the space and grid size train.threads, the space train.epochs)
    assert _without_budget(cli[group]) == _without_budget(arm[group]) == _without_budget(space[group]) \
        == _without_budget(from_cli[group])


def _without_budget(group: dict) -> dict:
    return {k: v for k, v in group.items() if k not in ("epochs", "threads")}


def test_a_group_given_as_a_string_in_a_space_mapping_selects_the_option(tmp_path):
    base = load_space(_write(tmp_path, "s.yaml",
                             {**SPACE, "base": {"model": "cpmobile", "pseudo": {"mode": "none"}}})).base
    assert base["model"] == to_dict(compose_config(["model=cpmobile"]))["model"]
    assert base["pseudo"]["mode"] == "none" and base["train"]["epochs"] == 3


@pytest.mark.parametrize("item, fragment", [
    ("~train.lr", "deleting keys is not supported"),
    ("train.lr=0.1,0.2", "a sweep is not supported"),
    ("train.lr", "expected key=value"),
    ("train.lr=[1", "override 'train.lr=[1'"),
])
def test_overrides_hydra_cannot_apply_once_are_one_line(item, fragment):
    with pytest.raises(UserError) as err:
        parse_override(item)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_relative_override_needs_numbers():
    with pytest.raises(UserError, match=r"model\.fusion: relative override needs numbers"):
        compose_config(["model.fusion+=1"])


@pytest.mark.parametrize("old, new", [("cpus", "cpu"), ("gpus", "gpu")])
def test_old_resource_keys_name_the_new_key(tmp_path, old, new):
    space = _write(tmp_path, "space.yaml", {**SPACE, "resources": {old: 1}})
    with pytest.raises(UserError) as err:
        load_space(space)
    assert str(err.value) == f"{space}: resources.{old}: renamed: write {new} (resources are {{cpu: N, gpu: N}})"
    grid = _write(tmp_path, "grid.yaml", {"seeds": 1, "resources": {old: 1}})
    with pytest.raises(UserError) as err:
        load_grid(grid)
    assert str(err.value).startswith(f"{grid}: resources.{old}: renamed: write {new}")


@pytest.mark.parametrize("patch, expected", [
    ({"budget": {"samples": "two"}}, "budget.samples: expected an integer, got 'two'"),
    ({"resources": {"cpu": "many"}}, "resources.cpu: expected a float, got 'many'"),
    ({"seed": 1.5}, "seed: expected an integer, got 1.5"),
    ({"search": {"train.lr": {"uniform": [0.1, "x"]}}}, "search.train.lr.uniform[1]: expected a float, got 'x'"),
    ({"search": {"train.lr": {"normal": [0, 1]}}}, "search.train.lr.normal: unknown key 'normal'"),
    ({"strategy": "asha"}, "strategy: expected a mapping"),
    ({"base": {"train": {"lr": "fast"}}}, "base.train.lr=fast: expected a float, got 'fast'"),
])
def test_wrong_type_in_a_space_is_one_line_naming_file_and_key(tmp_path, patch, expected):
    path = _write(tmp_path, "space.yaml", {**SPACE, **patch})
    with pytest.raises(UserError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}: {expected}") and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("patch, expected", [
    ({"resources": {"gpu": "half"}}, "resources.gpu: expected a float, got 'half'"),
    ({"base": {"label": "b", "overrides": "model=cpmobile"}}, "base.overrides: expected a list, got 'model=cpmobile'"),
    ({"variants": {"v": [3]}}, "variants.v"),
    ({"description": ["a"]}, "description: expected"),
])
def test_wrong_type_in_a_grid_is_one_line_naming_file_and_key(tmp_path, patch, expected):
    path = _write(tmp_path, "grid.yaml", {"seeds": 1, **patch})
    with pytest.raises(UserError) as err:
        load_grid(path)
    assert str(err.value).startswith(f"{path}: {expected}") and "\n" not in str(err.value), str(err.value)


def test_tune_cli_takes_hydra_overrides_and_refuses_a_bad_one_before_ray(tmp_path, capsys):
    path = _write(tmp_path, "space.yaml", SPACE)
    assert main(["tune", "--space", path, "--storage", str(tmp_path / "runs"), "model.num_blocks=abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ascbench: error: command-line override: model.num_blocks=abc: expected an integer, got 'abc'"
    assert not (tmp_path / "runs").exists()
