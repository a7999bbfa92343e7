"""The package installs as a wheel (not only editable) with its data files, and the CLI answers."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from tests.support import REPO


def test_wheel_contains_packages_and_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = tmp_path.glob("ascbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "ascmamba/ssm/chunked.py", "ascmamba/baselines/cpmobile.py", "harness/cli/__init__.py",
        "harness/data/apsipa2025/APSIPA2025_GC_ASC_dev_metadata.csv", "harness/data/apsipa2025/LICENSE",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ascbench = harness.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    shipped_yaml = {Path(n).name for n in names if n.startswith("search_spaces/") and n.endswith(".yaml")}
    in_repo = {p.name for p in (REPO / "search_spaces").glob("*.yaml")}
    assert shipped_yaml == in_repo


def test_help_lists_every_command(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    helps = parser.format_help()
    for name in commands:
        assert name in helps
    for name in commands:
        try:
            main([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
    assert {"models", "demo", "bench"} <= set(commands)


@pytest.mark.slow   # runs the installed console script: ~15 s on 2 cores
def test_console_script_runs():
    exe = Path(sys.executable).with_name("ascbench")
    out = subprocess.run([str(exe), "models", "--family", "cnn"], check=True, capture_output=True, text=True).stdout
    assert "cpmobile" in out and "MMACs/10s" in out


def test_unknown_model_family_is_a_clean_error(capsys):
    assert main(["models", "--family", "rnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rnn" in err and "ascmamba" in err
