"""The lock, the install check and the preinstalled-torch install path, run for real."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.install_check import installed_version, locked_pins
from tests.support import REPO

LOCK = REPO / "requirements" / "lock.txt"
LOCK_NO_TORCH = REPO / "requirements" / "lock-without-torch.txt"
UV = REPO / ".venv-tools" / "bin" / "uv"
TORCH_FAMILY_PREFIXES = ("torch", "triton", "nvidia-", "cuda-")


def run_check(*args: str, env: dict[str, str] | None = None,
              python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "harness.install_check", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


def test_lock_pins_the_measured_pair_and_everything_pyproject_needs():
    pins = locked_pins(LOCK)
    assert pins["torch"] == "2.11.0" and pins["torchaudio"] == "2.11.0"
    without_torch = locked_pins(LOCK_NO_TORCH)
    assert not [n for n in without_torch if n.startswith(TORCH_FAMILY_PREFIXES) and n != "torch-c-dlpack-ext"]
    assert {n: v for n, v in pins.items() if n in without_torch} == without_torch
    assert set(pins) - set(without_torch) == {n for n in pins if n.startswith(TORCH_FAMILY_PREFIXES)}
    for name in ("ray", "optuna", "hydra-core", "pandas", "scipy", "soundfile", "pytest", "mambapy", "setuptools"):
        assert name in pins, name


def test_a_wrong_or_missing_pin_fails_in_one_line_naming_the_package(tmp_path):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("optuna==0.0.1 ; sys_platform == 'linux' or sys_platform == 'darwin' \\\n    --hash=sha256:00\n")
    result = run_check("--lock", str(wrong))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"optuna {installed_version('optuna')} is installed but the lock {wrong} pins optuna==0.0.1" in line

    missing = tmp_path / "missing.txt"
    missing.write_text("# a comment\nnot-a-real-package==1.0\n")
    result = run_check("--lock", str(missing))
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "not-a-real-package is not installed" in line and "==1.0" in line


def test_the_running_environment_passes_the_smoke_check():
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert "torchaudio extension loaded" in result.stdout and "forward+backward ran" in result.stdout


@pytest.fixture(scope="module")
def torchaudio_2_11_1(tmp_path_factory) -> Path:
    """torchaudio 2.11.1 unpacked from its real wheel, to be put in front of the installed one."""
    folder = tmp_path_factory.mktemp("torchaudio-2.11.1")
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "torchaudio==2.11.1",
         "-d", str(folder)],
        capture_output=True, text=True,
    )
    if download.returncode != 0:
        pytest.skip(f"torchaudio 2.11.1 could not be downloaded: {download.stderr.strip().splitlines()[-1:]}")
    (wheel,) = folder.glob("torchaudio-2.11.1-*.whl")
    site = folder / "site"
    shutil.unpack_archive(wheel, site, format="zip")
    return site


@pytest.mark.skipif(not torch.__version__.startswith("2.11."),
                    reason="the broken pair is torchaudio 2.11.1 over torch 2.11")
def test_the_broken_pair_stops_the_check_with_one_line(torchaudio_2_11_1):
    env = {**os.environ, "PYTHONPATH": str(torchaudio_2_11_1)}
    result = run_check(env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("install check failed: torchaudio: torch 2.11.0 with torchaudio 2.11.1 does not load: ")
    assert "undefined symbol" in line and line.endswith("; torch 2.11 works with torchaudio==2.11.0")


def _uv_or_skip() -> Path:
    if not UV.exists():
        pytest.skip("the pinned uv is not installed (`make .venv-tools/bin/uv`; .ci/run installs it first)")
    return UV


def _lock_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, copy / name)
    shutil.copytree(REPO / "requirements", copy / "requirements")
    return copy


def check_lock(copy: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(copy / "requirements" / "lock.sh"), "check"], env={**os.environ, "UV": str(_uv_or_skip())},
        capture_output=True, text=True, timeout=300,
    )


def test_a_dependency_edited_without_relocking_fails_ci_in_one_line(tmp_path):
    copy = _lock_copy(tmp_path)
    assert check_lock(copy).returncode == 0
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tqdm>=4.66"', '"tqdm>=4.67"'))
    result = check_lock(copy)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("stale lock: pyproject.toml's dependencies changed") and "make lock" in line


def test_an_export_edited_by_hand_fails_the_lock_check(tmp_path):
    copy = _lock_copy(tmp_path)
    lock = copy / "requirements" / "lock.txt"
    lock.write_text(lock.read_text().replace("optuna==5.0.0", "optuna==5.0.1"))
    result = check_lock(copy)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "requirements/*.txt do not match uv.lock" in line


def _preinstalled_torch_site(userbase: Path) -> Path:
    """A user site-packages holding only the running torch, torchaudio and their CUDA stack.

    A venv made with --system-site-packages also sees the user site, so to that venv this is a
    machine on which torch was installed before ascbench: the same import path as a GPU box's.
    """
    source = Path(torch.__file__).resolve().parents[1]
    site = userbase / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    for entry in source.iterdir():
        name = entry.name.lower().replace("_", "-")
        if name.startswith(TORCH_FAMILY_PREFIXES) or name.startswith(("functorch", "torchgen")):
            (site / entry.name).symlink_to(entry)
    return site


@pytest.mark.slow
def test_install_with_preinstalled_torch_and_no_registry(tmp_path):
    """`make install-system-torch WHEELHOUSE=...`: no index reached, torch taken from the machine."""
    userbase = tmp_path / "userbase"
    site = _preinstalled_torch_site(userbase)
    wheelhouse = tmp_path / "wheelhouse"
    env = {**os.environ, "PYTHONUSERBASE": str(userbase), "PIP_NO_INDEX": "1"}
    download = subprocess.run(
        ["make", "-s", "-C", str(REPO), "wheelhouse", f"WHEELHOUSE={wheelhouse}", f"PYTHON={sys._base_executable}"],
        env={k: v for k, v in env.items() if k != "PIP_NO_INDEX"}, capture_output=True, text=True, timeout=900,
    )
    if download.returncode != 0:
        pytest.skip(f"the wheelhouse could not be downloaded: {download.stderr.strip().splitlines()[-1:]}")
    venv = tmp_path / "venv"
    make = ["make", "--no-print-directory", "-C", str(REPO), f"VENV={venv}", f"WHEELHOUSE={wheelhouse}",
            f"PYTHON={sys._base_executable}"]

    # A wheelhouse that lacks one locked package stops the install at that package.
    optuna_wheel = next(wheelhouse.glob("optuna-*.whl"))
    hidden = optuna_wheel.rename(tmp_path / optuna_wheel.name)
    result = subprocess.run([*make, "install-system-torch"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode != 0
    assert "No matching distribution found for optuna==" in result.stderr
    assert not (venv / ".installed").exists()
    hidden.rename(optuna_wheel)

    result = subprocess.run([*make, "install-system-torch"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "install check passed" in result.stdout and (venv / ".installed").exists()
    python = str(venv / "bin" / "python")
    where = subprocess.run([python, "-c", "import torch, optuna; print(torch.__file__); print(optuna.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1].startswith(str(venv))

    # The machine's torchaudio removed: the check names the missing package and the range it needs.
    for entry in site.glob("torchaudio*"):
        entry.unlink()
    result = run_check("--lock", str(LOCK_NO_TORCH), env=env, python=python)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("install check failed: torchaudio is not installed (ascbench requires torchaudio")


def test_an_environment_with_nothing_installed_fails_in_one_line(tmp_path):
    # -S: no site-packages at all, as in an interpreter where nothing was installed yet; run from a
    # copy of the package so that the source tree's ascbench.egg-info is not on the path either
    shutil.copytree(REPO / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-S", "-m", "harness.install_check"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == ("install check failed: ascbench is not installed in this environment "
                    "(make install, or pip install -e .)")
