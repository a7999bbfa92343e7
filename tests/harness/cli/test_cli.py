"""The `ascbench` front door: one module per command, the data options turned into config in one
place, and `ascbench models` showing the front end a run trains on."""
from __future__ import annotations

import argparse
import json
import pkgutil
import subprocess
import sys

import pytest

from ascmamba import get_spec
from harness import cli
from harness.cli.models import describe_front_end
from harness.cli.options import SOURCES
from harness.data import prepare


def _funcs(parser: argparse.ArgumentParser) -> set:
    """The functions a parser and its nested sub-commands dispatch to."""
    found = {parser.get_default("func")} - {None}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _funcs(child)
    return found


def test_every_command_module_is_a_command_of_ascbench_help():
    modules = {m.name for m in pkgutil.iter_modules(cli.__path__)} - {"options", "__main__"}
    assert modules == set(cli.COMMANDS)
    out = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], check=True, capture_output=True,
                         text=True).stdout
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in modules:
        assert f"\n    {name} " in out, name
        funcs = _funcs(commands.choices[name])
        assert funcs and {f.__module__ for f in funcs} == {f"harness.cli.{name}"}, name


def test_the_source_choices_are_the_loaders_sources():
    assert set(SOURCES) == set(prepare.SOURCES)


@pytest.mark.parametrize("argv", [
    ["train", "--out", "unused", "--metadata", "m.csv"],
    ["tune", "--space", "quick", "--audio-dir", "audio"],
    ["data", "check", "--metadata", "m.csv"],
    ["data", "prepare", "--audio-dir", "audio"],
])
def test_metadata_without_audio_dir_is_the_same_one_line_everywhere(argv, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "ascbench: error: --metadata and --audio-dir go together\n"


def test_a_dataset_on_the_command_line_leaves_the_front_end_to_the_model():
    from harness.cli.train import overrides
    from harness.train.config import load_config

    args = cli.build_parser().parse_args(["train", "--out", "o", "--model", "cpmobile", "--metadata", "dev.csv",
                                          "--audio-dir", "audio dir", "--test-city", "Xi'an"])
    cfg = load_config(None, overrides(args))
    assert (cfg.data.source, cfg.data.metadata, cfg.data.audio_dir) == ("apsipa", "dev.csv", "audio dir")
    assert cfg.data.test_cities == ["Xi'an"] and cfg.data.front_end == "auto" and cfg.data.seconds is None
    assert prepare.resolve_front_end(cfg.data, get_spec("cpmobile").front_end) == get_spec("cpmobile").front_end


def _models(capsys, *argv: str) -> dict[str, dict]:
    assert cli.main(["models", "--json", *argv]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_models_shows_the_front_end_that_trains_and_its_macs(capsys, micro_data_config):
    synthetic = _models(capsys, "--family", "cnn")["cpmobile"]
    trained = prepare.prepare_data(micro_data_config, progress=False,
                                   model_front_end=get_spec("cpmobile").front_end).front_end
    assert synthetic["front_end"] == describe_front_end(trained) and synthetic["front_end"].startswith("16k:")
    assert synthetic["declared_front_end"].startswith("dcase:")
    dcase = _models(capsys, "--family", "cnn", "--source", "dcase")["cpmobile"]
    assert dcase["front_end"].startswith("dcase:") and dcase["macs_1s"] == 29_419_156   # as published
    assert synthetic["macs_1s"] < dcase["macs_1s"]
    assert cli.main(["models", "--family", "official"]) == 0
    table = capsys.readouterr().out
    assert "front end (trains)" in table and "16k: 16kHz/64mel/hop320" in table
