"""Fault injection on real components: SIGINT and SIGKILL to real `ascbench` processes at chosen
moments, read-only and full file systems, symlink loops, NaN audio, truncated checkpoints,
hostile CSVs and overrides, concurrent first use. Each case expects one `ascbench: error:` line
naming the file, row or key and a non-zero exit, or the correct result; never a traceback, a
half-written output or a mislabelled status.
"""
from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from harness.tune.results import ENDED, FINISHED, INTERRUPTED, STOPPED
from processes import kill_group

REPO = Path(__file__).resolve().parents[1]


def ascbench(*args: str, preexec=None, timeout: float = 300, env: dict | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess; stdout and stderr together in `.stdout`."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd or REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, preexec_fn=preexec)


def spawn(*args: str, **kw) -> subprocess.Popen:
    """Start the real CLI in its own process group (so the test can end it and its Ray processes)."""
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The process failed with exactly one `ascbench: error:` line containing every fragment, no traceback."""
    out = result.stdout
    assert result.returncode == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.startswith("ascbench: error:")]
    assert len(lines) == 1, out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, f"exited before {what}: {proc.stdout.read()}"
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout} s")


# ------------------------------------------------------------ 1. Ctrl-C during tune / ablate
TUNE_SPACE = {
    "metric": "val/best_macro_acc", "mode": "max", "seed": 0,
    # grace_period = max_epochs: ASHA never stops a trial, so "stopped" would be a mislabel
    "budget": {"samples": 2, "max_epochs": 3, "grace_period": 3, "reduction_factor": 2,
               "max_concurrent": 2, "max_failures": 0},
    "resources": {"cpus": 1},
    "base": {"model": {"name": "cpmobile"}, "pseudo": {"mode": "none"}, "train": {"batch_size": 16}},
    "search": {"train.lr": {"choice": [1.0e-3, 3.0e-3]}},
}


def _first_checkpoint(exp: Path):
    return lambda: any(exp.glob("*/checkpoint_*"))


@pytest.mark.slow
def test_sigint_to_tune_is_interrupted_not_done_then_resume_finishes(tmp_path, micro_data_config):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(TUNE_SPACE))
    storage, exp = tmp_path / "runs", tmp_path / "runs" / "cut"
    data = ["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    proc = spawn("tune", "--space", str(space), "--name", "cut", "--storage", str(storage), *data)
    try:
        wait_for(_first_checkpoint(exp), proc, what="first trial checkpoint")
        os.kill(proc.pid, signal.SIGINT)   # Ctrl-C to the driver just after the first checkpoint
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert proc.returncode == 130, out
    hint = f"resume with: ascbench tune --resume --name cut --storage {storage}"
    assert hint in out and "done in" not in out and "reproduce:" not in out, out
    table = pd.read_csv(exp / "results.csv")
    assert STOPPED not in set(table["status"]), table   # ASHA stopped nothing (grace period = budget)
    assert INTERRUPTED in set(table["status"]) and set(table["status"]) <= {FINISHED, INTERRUPTED}, table
    assert (table.loc[table["status"] == INTERRUPTED, "epochs"] < 3).all()

    resumed = ascbench("tune", "--resume", "--name", "cut", "--storage", str(storage), timeout=300)
    assert resumed.returncode == 0, resumed.stdout
    after = pd.read_csv(exp / "results.csv")
    assert len(after) == 2 and (after["status"] == FINISHED).all() and (after["epochs"] == 3).all(), after
