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


@pytest.mark.slow
def test_sigint_to_ablate_exits_nonzero_with_the_resume_command_which_finishes(tmp_path, micro_data_config):
    grid = {"name": "cut", "seeds": 1, "resources": {"cpu": 1, "gpu": 0},
            "base": {"label": "cp", "overrides": ["model=cpmobile", "train.epochs=4", "pseudo=none",
                                                  "train.batch_size=16"]}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    storage = tmp_path / "runs"
    data = ["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    proc = spawn("ablate", "--config", str(path), "--storage", str(storage), *data)
    try:
        wait_for(lambda: any((storage / "cut" / "ray").glob("*/*/checkpoint_*")), proc, what="first checkpoint")
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert proc.returncode == 130, out
    line = next((ln for ln in out.splitlines() if ln.startswith("interrupted:")), None)
    assert line is not None and "resume with: ascbench ablate --config" in line and "--resume" in line, out
    assert not list((storage / "cut" / "ray").glob("*/.complete"))   # not marked complete: --resume restores it
    command = line.split("resume with: ", 1)[1].split()
    assert command[0] == "ascbench"
    resumed = ascbench(*command[1:], timeout=300)
    assert resumed.returncode == 0, resumed.stdout
    assert "1 ran now" in resumed.stdout or "ran now" in resumed.stdout


def test_status_of_a_trial_the_driver_cut_off_is_interrupted_not_stopped():
    """Ray's record after a driver crash or Ctrl-C: TERMINATED without the `done` mark."""
    from types import SimpleNamespace

    from harness.tune.results import ERROR, trial_status

    def trial(status, **last):
        return SimpleNamespace(status=status, last_result=last)

    assert trial_status(trial("TERMINATED", epoch=1), 3) == INTERRUPTED
    assert trial_status(trial("TERMINATED", epoch=1, done=True), 3) == STOPPED
    assert trial_status(trial("TERMINATED", epoch=3, done=True), 3) == FINISHED
    assert trial_status(trial("ERROR", epoch=1), 3) == ERROR
    assert trial_status(trial("RUNNING", epoch=2), 3) == "running"
    assert trial_status(trial("RUNNING", epoch=2), 3, experiment_over=True) == INTERRUPTED
    assert set(ENDED) == {FINISHED, STOPPED, ERROR}


# ------------------------------------------------------------ a small APSIPA-format dataset on disk
CITIES = ("Beijing", "Shanghai")


def write_dataset(root: Path, n: int = 6, seconds: float = 10.0, sr: int = 16000,
                  subtype: str = "PCM_16") -> tuple[Path, Path]:
    """`n` real wav files and their metadata CSV (official format, UTF-8 with BOM)."""
    from harness.data.corpus import APSIPA_CLASSES

    audio = root / "audio"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["filename,location,record_time,scene_label"]
    for i in range(n):
        name = f"clip{i:02d}"
        sf.write(audio / f"{name}.wav", (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr,
                 subtype=subtype)
        lines.append(f"{name},{CITIES[i % 2]},2023-05-0{1 + i % 5} 1{i % 10}:00:00,{APSIPA_CLASSES[i % 10]}")
    csv_path = root / "meta.csv"
    csv_path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, audio


def cli(capsys, *argv: str) -> tuple[int, str]:
    """The real CLI entry point in this process: exit status and everything printed."""
    from harness.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("ascbench: error:")]
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------ 2. NaN and inf samples
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_float_wav_is_named_by_check_and_prepare_and_never_cached(tmp_path, capsys, bad):
    csv_path, audio = write_dataset(tmp_path, subtype="FLOAT")
    x, sr = sf.read(audio / "clip03.wav", dtype="float32")
    x[100] = bad
    sf.write(audio / "clip03.wav", x, sr, subtype="FLOAT")
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    line = error_line(out)
    assert rc == 2 and f"{csv_path}: row 5: audio {audio / 'clip03.wav'}" in line and "non-finite" in line, out
    cache = tmp_path / "cache"
    rc, out = cli(capsys, "data", "prepare", "--metadata", str(csv_path), "--audio-dir", str(audio),
                  "--cache-dir", str(cache), "--quiet")
    assert rc == 2 and "row 5" in error_line(out) and "non-finite" in out
    assert not cache.exists() or not [p for p in cache.iterdir() if p.is_dir()]   # nothing cached
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio),
                  "--on-bad-audio", "skip")
    assert rc == 0 and "skipped 1 clips with bad audio" in out and "row 5" in out, out


def test_nonfinite_audio_is_refused_by_the_loader_too(tmp_path):
    from harness.data.audio import load_clip
    from harness.errors import UserError

    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1] * 100, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"nan\.wav: audio has non-finite samples"):
        load_clip(path, 16000, 0.1)


# ------------------------------------------------------------ 3, 4, 12. overrides, sizes, wording
@pytest.mark.parametrize("override, expected", [
    ("+train.foo=1", "train.foo: no such config key (keys of train: epochs"),
    ("train.foo=1", "train.foo: no such config key (keys of train: epochs"),
    ("model.num_blocks=-3", "model.num_blocks must be >= 0, got -3"),
    ("model.channels=-4", "model.channels must be >= 1, got -4"),
    ("train.threads=-2", "train.threads must be >= 1, got -2"),
    ("model=doesnotexist", "model=doesnotexist: no such model config; available: apsipa_setrans, ascmamba_base"),
    ("train.lr=abc", "train.lr=abc: expected a float, got 'abc'"),
    ("model.stem_stride=[0,4]", "stem_stride must be two whole numbers >= 1"),
])
def test_bad_override_is_one_line_before_anything_runs(tmp_path, capsys, override, expected):
    out_dir = tmp_path / "out"
    rc, out = cli(capsys, "train", "--out", str(out_dir), override)
    line = error_line(out)
    assert rc == 2 and expected in line, line
    assert "+train" not in line   # never recommends the form that was silently dropped
    assert not out_dir.exists()


def test_plus_override_of_an_existing_key_is_applied_not_dropped():
    from harness.train.config import compose_config

    assert compose_config(["+train.lr=0.002"]).train.lr == 0.002
    assert compose_config(["++train.epochs=5"]).train.epochs == 5


def test_relative_override_below_zero_in_a_grid_is_refused(tmp_path):
    from harness.ablate.grid import load_grid, plan_runs
    from harness.errors import UserError

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"name": "g", "seeds": 1, "base": {"overrides": ["model=ascmamba_tiny"]},
                                    "variants": {"shallow": ["model.num_blocks-=10"]}}))
    with pytest.raises(UserError, match=r"variants\.shallow: model\.num_blocks must be >= 0, got -9"):
        plan_runs(load_grid(path))


def test_config_that_is_not_yaml_mapping_is_one_short_line(tmp_path, capsys, apsipa_metadata_dir):
    csv_file = next(apsipa_metadata_dir.glob("*.csv"))
    rc, out = cli(capsys, "train", "--out", str(tmp_path / "o"), "--config", str(csv_file))
    line = error_line(out)
    assert rc == 2 and line.startswith(f"ascbench: error: {csv_file}: expected a run config") and len(line) < 300
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    rc, out = cli(capsys, "train", "--out", str(tmp_path / "o"), "--config", str(bad))
    assert rc == 2 and "line 3" in error_line(out)


def test_space_yaml_syntax_error_names_the_line(tmp_path, capsys):
    space = tmp_path / "s.yaml"
    space.write_text("metric: val/best_macro_acc\nsearch:\n  train.lr: {loguniform: [1e-3, 1e-2]\n")
    rc, out = cli(capsys, "tune", "--space", str(space), "--storage", str(tmp_path / "runs"))
    line = error_line(out)
    assert rc == 2 and f"{space}: not valid YAML: line " in line and "column" in line


# ------------------------------------------------------------ 6. the space's metric
def test_space_metric_typo_is_one_line_before_ray_starts(tmp_path, capsys):
    doc = dict(TUNE_SPACE, metric="val/macro_accuracy")
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(doc))
    rc, out = cli(capsys, "tune", "--space", str(space), "--name", "typo", "--storage", str(tmp_path / "runs"))
    line = error_line(out)
    assert rc == 2 and "metric: 'val/macro_accuracy' is not a metric every epoch reports" in line
    assert "val/best_macro_acc" in line and not (tmp_path / "runs" / "typo").exists()


# ------------------------------------------------------------ 5. symlink loops
def test_symlink_loop_in_the_audio_folder(tmp_path, capsys):
    csv_path, audio = write_dataset(tmp_path)
    os.symlink("loop.wav", audio / "loop.wav")            # a loop the CSV does not list
    os.symlink("self", audio / "self")                    # and a looping folder link
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    assert rc == 0, out
    (audio / "clip02.wav").unlink()
    os.symlink("clip02.wav", audio / "clip02.wav")        # a listed clip that is a loop
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    line = error_line(out)
    assert rc == 2 and f"row 4: audio {audio / 'clip02.wav'} cannot be read" in line, line
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio),
                  "--on-bad-audio", "skip")
    assert rc == 0 and "skipped 1 clips" in out and "row 4" in out, out


# ------------------------------------------------------------ 10. CSV gaps
def test_row_with_a_missing_field_and_rows_after_a_blank_line(tmp_path, capsys):
    csv_path, audio = write_dataset(tmp_path)
    lines = csv_path.read_text(encoding="utf-8-sig").splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]                  # file line 4: no label column
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    assert rc == 2 and f"{csv_path}: row 4: 3 fields; expected 4" in error_line(out)
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    lines[3] += ","                                       # fixed: an unlabelled clip
    lines.insert(2, "")                                   # a blank line: later rows move one line down
    name, city, _, label = lines[5].split(",")
    lines[5] = f"{name},{city},2023-02-30 10:00:00,{label}"   # file line 6: an impossible date
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    line = error_line(out)
    assert rc == 2 and f"{csv_path}: row 6: record_time" in line and "is not a real date and time" in line, line
    assert "day is out of range for month" in line


def test_future_record_time_and_truncated_wav_are_warned(tmp_path, capsys):
    csv_path, audio = write_dataset(tmp_path)
    text = csv_path.read_text(encoding="utf-8-sig").replace("2023-05-02", "2099-05-02")
    csv_path.write_text(text, encoding="utf-8")
    data = (audio / "clip00.wav").read_bytes()
    (audio / "clip00.wav").write_bytes(data[:len(data) // 4])   # cut at a quarter of its length
    rc, out = cli(capsys, "data", "check", "--metadata", str(csv_path), "--audio-dir", str(audio))
    assert rc == 0, out
    warnings = [ln for ln in out.splitlines() if ln.startswith("ascbench: warning:")]
    assert any("record_time in the future (first: row 3: 2099-05-02" in w for w in warnings), out
    assert any("1 clips are shorter than 90% of the 10-s clip length" in w and "row 2:" in w for w in warnings), out
