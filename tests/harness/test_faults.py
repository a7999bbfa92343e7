"""Fault injection on real components: SIGINT and SIGKILL to real `ascbench` processes at chosen
moments, read-only and full file systems, symlink loops, NaN audio, truncated checkpoints,
hostile CSVs and overrides, concurrent first use. Each case expects one `ascbench: error:` line
naming the file, row or key and a non-zero exit, or the correct result; never a traceback, a
half-written output or a mislabelled status.
"""
from __future__ import annotations

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

from harness.bench.searches import cpmobile_space
from harness.tune.results import ENDED, FINISHED, INTERRUPTED, STOPPED
from tests.support import REPO
from tests.support.processes import kill_group


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
# grace_period = max_epochs: ASHA never stops a trial, so "stopped" would be a mislabel
TUNE_SPACE = cpmobile_space({"train.lr": {"choice": [1.0e-3, 3.0e-3]}}, samples=2, max_epochs=3, grace_period=3,
                            max_concurrent=2)


def _first_checkpoint(exp: Path):
    return lambda: any(exp.glob("*/checkpoint_*"))


@pytest.mark.slow
@pytest.mark.ray   # the CLI it drives starts a Ray runtime
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
@pytest.mark.ray   # the CLI it drives starts a Ray runtime
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


# ------------------------------------------------------------ a real trained run (1 epoch, micro corpus)
@pytest.fixture(scope="module")
def trained(tmp_path_factory, micro_data_config) -> Path:
    from harness.train.config import compose_config
    from harness.train.run import run_training

    out = tmp_path_factory.mktemp("trained") / "run"
    cfg = compose_config(["model=cpmobile", "pseudo=none", "train.epochs=1", "train.batch_size=16",
                          "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"])
    run_training(cfg, out, progress=False)
    return out


def micro_corpus(micro_data_config) -> Path:
    from harness.data.prepare import synthetic_root

    return synthetic_root(micro_data_config)


# ------------------------------------------------------------ 7. truncated and foreign checkpoints
def test_truncated_checkpoint_is_refused_at_every_cut_point(trained, tmp_path):
    from harness.errors import UserError
    from harness.train.checkpoint import load_checkpoint

    data = (trained / "best.pt").read_bytes()
    cuts = sorted({*np.linspace(0, len(data) - 1, 40).astype(int), *range(0, 64, 7), len(data) - 22, len(data) - 1})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match=rf"cut{cut}\.pt: refused: not a checkpoint that loads with weights_only"):
            load_checkpoint(path)


def test_checkpoint_whose_weights_do_not_fit_its_model_is_one_line(trained, tmp_path, capsys, micro_data_config):
    import torch

    bundle = torch.load(trained / "best.pt", weights_only=True)
    key = next(k for k in bundle["model_state"] if k.endswith("weight"))
    bundle["model_state"][key] = torch.zeros(3, 3)
    bundle["model_state"]["stray.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save(bundle, bad)
    corpus = micro_corpus(micro_data_config)
    rc, out = cli(capsys, "predict", "--checkpoint", str(bad), "--metadata", str(corpus / "eval_metadata.csv"),
                  "--audio-dir", str(corpus / "audio"), "--out", str(tmp_path / "sub.csv"), "--quiet")
    line = error_line(out)
    assert rc == 2 and f"{bad}: refused: its weights do not fit its declared model cpmobile" in line
    assert "1 unexpected (first: stray.weight)" in line and f"of another shape (first: {key})" in line
    assert len(line) < 400 and not (tmp_path / "sub.csv").exists()


def test_predict_names_a_nan_clip_instead_of_labelling_it(trained, tmp_path, capsys, micro_data_config):
    import shutil

    corpus = micro_corpus(micro_data_config)
    audio = tmp_path / "audio"
    shutil.copytree(corpus / "audio", audio)
    eval_csv = corpus / "eval_metadata.csv"
    first = eval_csv.read_text(encoding="utf-8-sig").splitlines()[1].split(",")[0]
    wav = next(audio.glob(f"*{first}*.wav"))
    x, sr = sf.read(wav, dtype="float32")
    x[10] = np.nan
    sf.write(wav, x, sr, subtype="FLOAT")
    rc, out = cli(capsys, "predict", "--checkpoint", str(trained / "best.pt"), "--metadata", str(eval_csv),
                  "--audio-dir", str(audio), "--out", str(tmp_path / "sub.csv"), "--quiet",)
    line = error_line(out)
    assert rc == 2 and f"row 2: audio {wav}" in line and "non-finite" in line
    assert not (tmp_path / "sub.csv").exists()


# ------------------------------------------------------------ 8. file-system faults
@pytest.fixture
def readonly_dir(tmp_path):
    """A folder writes to which fail: a read-only tmpfs when this process may mount (EROFS), else a
    0555 folder for a non-root user (EACCES)."""
    path = tmp_path / "ro"
    path.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root without the right to mount: no way to make a folder read-only here")
        path.chmod(0o555)
    yield path, ("read-only file system" if mounted else "permission denied")
    if mounted:
        subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o755)


def test_readonly_out_and_cache_are_one_line(readonly_dir, tmp_path, capsys, micro_data_config):
    ro, cause = readonly_dir
    data = ["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    rc, out = cli(capsys, "train", "--out", str(ro / "run"), "--epochs", "1", "pseudo=none", *data)
    assert rc == 2 and error_line(out) == f"ascbench: error: {ro / 'run'}: cannot create the output folder: {cause}"
    rc, out = cli(capsys, "data", "prepare", "--preset", "micro", "--cache-dir", str(ro / "cache"), "--quiet")
    line = error_line(out)   # the synthetic corpus is written under the cache first
    assert (rc == 2 and line.startswith(f"ascbench: error: {ro / 'cache'}")
            and line.endswith(f"cannot create the folder: {cause}"))
    csv_path, audio = write_dataset(tmp_path / "data")
    rc, out = cli(capsys, "data", "prepare", "--metadata", str(csv_path), "--audio-dir", str(audio),
                  "--cache-dir", str(ro / "cache"), "--quiet")
    assert rc == 2 and error_line(out) == (f"ascbench: error: {ro / 'cache'}: "
                                           f"cannot create the feature cache folder: {cause}")
    rc, out = cli(capsys, "data", "synth", "--preset", "micro", "--out", str(ro / "corpus"), "--quiet")
    assert rc == 2 and str(ro) in error_line(out) and cause in error_line(out)


def test_out_that_is_a_file_or_inside_one(tmp_path, capsys, micro_data_config):
    data = ["--epochs", "1", "pseudo=none", "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, out = cli(capsys, "train", "--out", str(afile), *data)
    assert rc == 2 and error_line(out) == (f"ascbench: error: {afile}: cannot create the output folder: "
                                           "exists and is not a folder")
    rc, out = cli(capsys, "train", "--out", str(afile / "run"), *data)
    assert rc == 2 and error_line(out) == (f"ascbench: error: {afile / 'run'}: cannot create the output folder: "
                                           "a part of the path is a file, not a folder")
    assert afile.read_text() == "x"


def test_predict_out_that_is_a_folder(trained, tmp_path, capsys, micro_data_config):
    corpus = micro_corpus(micro_data_config)
    rc, out = cli(capsys, "predict", "--checkpoint", str(trained / "best.pt"), "--metadata",
                  str(corpus / "eval_metadata.csv"), "--audio-dir", str(corpus / "audio"), "--out", str(tmp_path))
    assert rc == 2 and f"{tmp_path}: --out is a folder" in error_line(out)


def _file_size_limit(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.slow
def test_full_disk_during_training_is_one_line_and_leaves_whole_files(tmp_path, micro_data_config):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--model", "cpmobile", "--epochs", "2", "--quiet", "pseudo=none",
            "train.batch_size=16", "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    result = ascbench(*args, preexec=_file_size_limit(64 * 1024))   # config.yaml fits, a checkpoint does not
    one_error_line(result, f"{out / 'last.pt'}: cannot write: file too large")
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 2
    assert not list(out.glob(".*.tmp")) and not (out / "last.pt").exists()
    resumed = ascbench(*args)   # the limit lifted: the same command trains from the start to the end
    assert resumed.returncode == 0, resumed.stdout
    assert len(pd.read_csv(out / "metrics.csv")) == 2


@pytest.mark.slow
def test_full_disk_while_building_the_feature_cache(tmp_path):
    cache = tmp_path / "cache"
    result = ascbench("data", "prepare", "--preset", "micro", "--cache-dir", str(cache), "--quiet",
                      preexec=_file_size_limit(256 * 1024))   # the corpus's wavs fit, the feature array does not
    line = one_error_line(result, "cannot write", "file too large")
    assert str(cache) in line
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name != "synthetic"]   # no entry, no partial
    assert not list(cache.glob(".*.partial-*"))
    again = ascbench("data", "prepare", "--preset", "micro", "--cache-dir", str(cache), "--quiet")
    assert again.returncode == 0, again.stdout


def test_full_disk_while_writing_the_synthetic_corpus(tmp_path):
    out = tmp_path / "corpus"
    result = ascbench("data", "synth", "--preset", "micro", "--out", str(out), "--quiet",
                      preexec=_file_size_limit(16 * 1024))   # smaller than one wav
    one_error_line(result, f"{out}: cannot write the synthetic corpus: file too large")
    assert not out.exists() and not list(tmp_path.glob(".*.partial-*"))


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 128-KiB file system (tmpfs): needs the right to mount, else the test is skipped."""
    path = tmp_path / "small"
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root with the right to mount")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def test_no_space_left_while_building_the_feature_cache(small_tmpfs, tmp_path, capsys):
    csv_path, audio = write_dataset(tmp_path / "data")   # 6 clips of 10 s: ~380 KiB of features
    cache = small_tmpfs / "cache"
    rc, out = cli(capsys, "data", "prepare", "--metadata", str(csv_path), "--audio-dir", str(audio),
                  "--cache-dir", str(cache), "--quiet")
    line = error_line(out)
    assert rc == 2 and line.startswith(f"ascbench: error: {cache}/") and "no space left on device" in line, line
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []   # no entry, no partial


# ------------------------------------------------------------ 9. orphans of a SIGKILL
HOLDER = """
import sys, time
from pathlib import Path
from harness.folder_build import building, new_partial
target = Path(sys.argv[1])
with building(target):
    partial = new_partial(target)
    (partial / "features.npy").write_bytes(b"\\0" * 4096)
    print(partial, flush=True)
    time.sleep(600)
"""


def _builder_holding(target: Path) -> tuple[subprocess.Popen, Path]:
    """A real process that holds the build lock of `target` and has half-built it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, start_new_session=True)
    return proc, Path(proc.stdout.readline().strip())


def test_partial_build_of_a_killed_builder_is_removed_and_a_live_one_is_kept(tmp_path):
    from harness.folder_build import sweep_orphans

    proc, partial = _builder_holding(tmp_path / "entry")
    try:
        sweep_orphans(tmp_path)
        assert partial.is_dir()              # its builder lives: never removed under it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sweep_orphans(tmp_path)
        assert not partial.exists()          # the builder is gone: the next sweep removes its partial
    finally:
        kill_group(proc)


@pytest.mark.slow
def test_sigkill_mid_corpus_and_mid_cache_then_the_next_run_cleans_up(tmp_path):
    cache = tmp_path / "cache"
    proc = spawn("data", "prepare", "--preset", "tiny", "--cache-dir", str(cache), "--quiet")
    try:
        wait_for(lambda: any((cache / "synthetic").glob(".*.partial-*/audio/*.wav")), proc, what="a partial corpus")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        kill_group(proc)
    assert list((cache / "synthetic").glob(".*.partial-*"))
    # a half-built cache entry with a full-size features.npy, its builder SIGKILLed
    holder, partial = _builder_holding(cache / "0123456789abcdef01234567")
    kill_group(holder)
    assert (partial / "features.npy").exists()
    result = ascbench("data", "prepare", "--preset", "micro", "--cache-dir", str(cache), "--quiet")
    assert result.returncode == 0, result.stdout
    assert not list((cache / "synthetic").glob(".*.partial-*")) and not list(cache.glob(".*.partial-*"))


WRITER = """
import sys, time
from pathlib import Path
from harness.io import write_atomic

def slow(tmp):
    tmp.write_bytes(b"half a checkpoint")
    print(tmp, flush=True)
    time.sleep(600)

write_atomic(Path(sys.argv[1]), slow)
"""


def test_temp_file_of_a_writer_killed_mid_write_is_removed_by_the_next_write(tmp_path):
    from harness.io import STALE_AFTER_S, write_text_atomic

    target = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.name.startswith(".last.pt.") and tmp.name.endswith(".tmp") and tmp.exists()
        old = time.time() - 2 * STALE_AFTER_S    # old enough to be removed, were its writer dead
        os.utime(tmp, (old, old))
        write_text_atomic(target, "x")
        assert tmp.exists()                      # its writer lives and holds the lock: kept
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        write_text_atomic(target, "y")
        assert not tmp.exists() and target.read_text() == "y"
    finally:
        kill_group(proc)


def test_stale_temp_file_is_removed_and_a_live_writers_is_kept(tmp_path):
    import fcntl

    from harness.io import STALE_AFTER_S, write_text_atomic

    old = time.time() - 2 * STALE_AFTER_S
    stale, live = tmp_path / ".last.pt.dead1.tmp", tmp_path / ".last.pt.live1.tmp"
    for p in (stale, live):
        p.write_bytes(b"half")
        os.utime(p, (old, old))
    with open(live, "rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)   # as a writer in another process holds its own
        write_text_atomic(tmp_path / "last.pt", "x")
        assert live.exists() and not stale.exists()
    assert (tmp_path / "last.pt").read_text() == "x"


# ------------------------------------------------------------ 11. outputs readable under the umask
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_outputs_follow_the_umask(tmp_path, umask, mode):
    from harness.io import write_text_atomic

    old = os.umask(umask)
    try:
        target = tmp_path / "sub" / "results.csv"
        write_text_atomic(target, "a\n")
        assert stat.S_IMODE(target.stat().st_mode) == mode
        assert stat.S_IMODE(target.parent.stat().st_mode) == 0o777 & ~umask
        target.chmod(0o644)
        write_text_atomic(target, "b\n")   # overwriting keeps the umask's mode, not 0600
        assert stat.S_IMODE(target.stat().st_mode) == mode
    finally:
        os.umask(old)


@pytest.mark.slow
def test_train_outputs_and_cache_folders_are_readable_by_the_group(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = ascbench("train", "--out", str(out), "--model", "cpmobile", "--epochs", "1", "--quiet", "pseudo=none",
                      "data.preset=micro", f"data.cache_dir={cache}", preexec=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stdout
    for name in ("config.yaml", "split.json", "metrics.csv", "final.json", "best.pt", "last.pt"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    entries = [p for p in cache.iterdir() if p.is_dir()]
    assert entries and all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in entries)
    for p in (cache / "synthetic").iterdir():
        if p.is_dir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o755, p


# ------------------------------------------------------------ 13. concurrent first use
@pytest.mark.slow
def test_processes_started_together_on_an_empty_cache_all_succeed_with_one_entry(tmp_path):
    cache = tmp_path / "cache"
    procs = [spawn("data", "prepare", "--preset", "micro", "--cache-dir", str(cache), "--quiet") for _ in range(3)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=300)[0])
    finally:
        for p in procs:
            kill_group(p)
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    import json

    entries = {json.loads(o[o.index("{"):])["feature_cache"] for o in outs}
    assert len(entries) == 1
    assert len([p for p in (cache / "synthetic").iterdir() if p.is_dir()]) == 1
    assert not list(cache.glob(".*.partial-*")) and not list((cache / "synthetic").glob(".*.partial-*"))


# ------------------------------------------------------------ Also: Ray on loopback only
def test_local_ray_runtime_listens_on_loopback_only(ray_runtime):
    from tests.support.listening import listening_addresses

    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads listening sockets from /proc (Linux)")
    addresses = listening_addresses(os.getpid())
    assert addresses, "no listening socket found in this process tree"
    assert {ip for ip, _ in addresses} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, addresses
