"""One trial: reproducible, resumable to the same result, honest pseudo-labels and metrics."""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from harness.cli import main
from harness.data.prepare import prepare_data, synthetic_root
from harness.train import pseudo
from harness.train.checkpoint import load_checkpoint, save_checkpoint
from harness.train.config import TrainConfig, compose_config, load_config, stage_epochs, to_dict
from harness.train.evaluate import recalibrate_batchnorm
from harness.train.metrics import classification_report, macro_accuracy
from harness.train.optim import make_optimizer, make_scheduler, start_epoch
from harness.train.run import run_training
from harness.train.trial import Trial


def _cfg(micro_data_config, *extra):
    return compose_config([
        "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}", "train.batch_size=16", *extra,
    ])


def test_batchnorm_recalibration_sets_the_statistics_of_the_given_batches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5))
    batches = [torch.randn(8, 1, 5, 6) * 3 + 2 for _ in range(3)]
    with torch.no_grad():
        acts = [model[0](b) for b in batches]
    for _ in range(2):            # a stale moving average from other data
        model.train()(torch.randn(8, 1, 5, 6))
    used = recalibrate_batchnorm(model, batches, lambda m, b: m(b))
    bn = model[1]
    assert used == 3 and not model.training and not bn.training and bn.momentum == 0.1
    expect_mean = torch.stack([a.mean(dim=(0, 2, 3)) for a in acts]).mean(0)
    expect_var = torch.stack([a.var(dim=(0, 2, 3), unbiased=True) for a in acts]).mean(0)
    assert torch.allclose(bn.running_mean, expect_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, expect_var, rtol=1e-4)
    assert int(bn.num_batches_tracked) == 3
    assert recalibrate_batchnorm(torch.nn.Linear(3, 3), batches, lambda m, b: m(b)) == 0   # nothing to do


def test_trial_recalibrates_before_each_validation_only_when_asked(micro_data_config):
    on = list(Trial(_cfg(micro_data_config, "model=cpmobile", "train.epochs=2", "pseudo=none")).epochs())
    off = list(Trial(_cfg(micro_data_config, "model=cpmobile", "train.epochs=2", "pseudo=none",
                          "train.bn_recalibration_batches=0")).epochs())
    assert [m["bn/recalibrated_batches"] for m in on] == [1, 1]
    assert [m["bn/recalibrated_batches"] for m in off] == [0, 0]
    # the pass draws no global random numbers: training itself is unchanged
    assert on[0]["train/loss"] == pytest.approx(off[0]["train/loss"], abs=1e-6)
    # and it changes what validation sees: stale running averages vs. the epoch's own statistics
    assert [m["val/log_loss"] for m in on] != pytest.approx([m["val/log_loss"] for m in off])


@pytest.mark.slow   # trains the same micro run twice: ~12 s on 2 cores
def test_same_seed_same_metrics(micro_data_config):
    cfg = _cfg(micro_data_config, "model=ascmamba_tiny", "train.epochs=3", "pseudo.tau1=0.1", "pseudo.tau2=0.1")
    runs = [list(Trial(cfg).epochs()) for _ in range(2)]
    def strip(hist):
        return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in hist]
    assert strip(runs[0]) == strip(runs[1])
    other = list(Trial(_cfg(micro_data_config, "model=ascmamba_tiny", "train.epochs=3", "seed=1")).epochs())
    assert strip(other) != strip(runs[0])


def test_resume_matches_uninterrupted(micro_data_config, tmp_path):
    # stages [2, 1, 1]: the kill falls on a stage boundary, so pseudo-labelling runs after the resume
    cfg = _cfg(micro_data_config, "model=cpmobile", "train.epochs=4", "pseudo.tau1=0", "pseudo.tau2=0.1")
    full = run_training(cfg, tmp_path / "full", progress=False)
    assert run_training(cfg, tmp_path / "cut", progress=False, stop_after=2) == {"stopped_at": 2}
    assert not (tmp_path / "cut" / "final.json").exists()
    resumed = run_training(cfg, tmp_path / "cut", progress=False)
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("full", "cut"))
    a, b = (df[[c for c in df.columns if not c.startswith("time/")]] for df in (a, b))
    pd.testing.assert_frame_equal(a, b)
    assert full["val"] == resumed["val"] and full["pseudo_steps"] == resumed["pseudo_steps"]
    assert full["pseudo_steps"][0]["kept"] > 0
    state = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert {"model_state", "optimizer", "scheduler", "epoch", "stage", "pseudo_ids", "rng"} <= set(state)


def test_pseudo_labels_never_from_validation(micro_data_config):
    cfg = _cfg(micro_data_config, "model=cpmobile", "train.epochs=3", "pseudo.tau1=0", "pseudo.tau2=0")
    trial = Trial(cfg)
    list(trial.epochs())
    split = trial.data.split
    assert trial.state.pseudo_ids and set(trial.state.pseudo_ids) <= set(split.unlabelled)
    clips = prepare_data(micro_data_config, seed=cfg.seed, progress=False).corpus.clips.set_index("clip_id")
    val_sessions = set(clips.loc[list(split.val), "session"])
    assert not set(clips.loc[trial.state.pseudo_ids, "session"]) & val_sessions
    assert not set(trial.state.pseudo_ids) & set(split.val)
    assert all(s["kept"] == len(split.unlabelled) for s in trial.state.pseudo_steps)  # tau=0 keeps all
    assert trial.state.pseudo_steps[0]["accuracy_kept"] is not None  # truth known on the synthetic corpus


def test_session_agreement_filter():
    probs = np.array([[0.95, 0.05], [0.92, 0.08], [0.05, 0.95], [0.97, 0.03], [0.6, 0.4]])
    sessions = np.array(["a", "a", "a", "b", "b"])
    keep, pred = pseudo.select(probs, sessions, tau=0.9)
    assert keep.tolist() == [True, True, True, True, False]
    keep, _ = pseudo.select(probs, sessions, tau=0.9, tau_session=0.6)
    assert keep.tolist() == [True, True, False, True, False]  # the lone dissenter of session a goes
    keep, _ = pseudo.select(probs, sessions, tau=0.0)
    assert keep.all()


def test_stage_epochs_and_modes():
    assert stage_epochs(compose_config(["train.epochs=12"])) == [6, 3, 3]
    assert stage_epochs(compose_config(["train.epochs=5", "pseudo=one_step"])) == [2, 3]
    assert stage_epochs(compose_config(["train.epochs=5", "pseudo=none"])) == [5]
    with pytest.raises(ValueError, match="pseudo stages"):
        compose_config(["train.epochs=4", "pseudo.stage0_epochs=3", "pseudo.step1_epochs=1"])


def test_metrics_known_values():
    y = np.array([0, 0, 0, 1, 2, 2])
    p = np.array([0, 0, 1, 1, 2, 0])
    assert macro_accuracy(y, p, 4) == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)  # class 3 absent: not counted
    probs = np.eye(4)[p] * 0.7 + 0.075
    rep = classification_report(probs, y, ("a", "b", "c", "d"), np.array(["x", "x", "y", "y", "z", "z"]), {"x", "y"})
    assert rep["acc"] == pytest.approx(4 / 6)
    assert rep["per_class_acc"]["d"] is None
    assert rep["per_city"]["z"]["seen"] is False and rep["unseen_n"] == 2
    assert np.array(rep["confusion"]).sum() == 6


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    bad = tmp_path / "bad.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"model_state": Evil()}, fh)
    with pytest.raises(ValueError, match="refused: not a checkpoint that loads with weights_only=True"):
        load_checkpoint(bad)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"w": torch.ones(2), "epoch": 3})
    assert load_checkpoint(good)["epoch"] == 3


def test_train_cli_then_predict_submission(micro_data_config, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "cpmobile", "--epochs", "3", "--out", str(out), "--quiet",
            "data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]
    assert main(args) == 0
    final = json.loads((out / "final.json").read_text())
    assert {"per_class_acc", "per_city", "confusion"} <= set(final["val"])
    saved = load_config(str(out / "config.yaml"))
    assert saved.model.name == "cpmobile" and saved.train.epochs == 3

    root = synthetic_root(micro_data_config)
    eval_csv, audio = root / "eval_metadata.csv", root / "audio"
    sub = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--metadata", str(eval_csv),
                 "--audio-dir", str(audio), "--out", str(sub), "--quiet"]) == 0
    raw_in, raw_out = eval_csv.read_bytes(), sub.read_bytes()
    assert raw_out.startswith(b"\xef\xbb\xbf") and raw_in.splitlines()[0] == raw_out.splitlines()[0]
    src = pd.read_csv(eval_csv, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    got = pd.read_csv(sub, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(src.drop(columns="scene_label"), got.drop(columns="scene_label"))
    assert got["scene_label"].isin(final["data"]["classes"]).all()
    assert "unseen" in capsys.readouterr().out


def test_train_cli_bad_override_is_one_line_error(capsys, micro_data_config, tmp_path):
    assert main(["train", "--out", str(tmp_path / "x"), "train.epochz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.epochz" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("override, message", [
    ("model.name=nope", r"model.name 'nope' is not one of: .*ascmamba_tiny"),
    ("model.fusion=sum", r"model.fusion 'sum' is not one of: none, concat, film, cln, cross_attn"),
    ("data.front_end=48k", r"data.front_end '48k' is not one of: auto, apsipa, dcase, 16k"),
    ("pseudo.mode=three_step", r"pseudo.mode 'three_step' is not one of: two_step, one_step, none"),
    ("data.val_fraction=1.5", r"data.val_fraction must be in \(0, 1\)"),
    ("train.bn_recalibration_batches=-1", r"train.bn_recalibration_batches must be >= 0"),
])
def test_bad_values_fail_before_any_work(override, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x"), override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "x").exists()


def _hand_written_warmup_cosine(progress: float, warmup: float, total: int) -> float:
    """The schedule the torch scheduler replaced, as it was written (linear warm-up, then cosine)."""
    if warmup > 0 and progress < warmup:
        return (progress + 1e-3) / warmup
    span = max(1e-9, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / span)))


def test_torch_scheduler_gives_the_hand_written_learning_rates_and_resumes(tmp_path):
    t = TrainConfig(lr=0.01, warmup_epochs=1.5, epochs=4)
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, t)
    scheduler = make_scheduler(optimizer, t)
    got, progress = [], []
    for epoch, batches in enumerate([3, 5, 2, 4]):   # pseudo-labels change how many batches an epoch has
        if epoch == 2:   # resume from a checkpoint as a trial does
            save_checkpoint(tmp_path / "s.pt",
                            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
            state = load_checkpoint(tmp_path / "s.pt")
            optimizer = make_optimizer(model, t)
            scheduler = make_scheduler(optimizer, t)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        start_epoch(scheduler, epoch, batches)
        for b in range(batches):
            got.append([g["lr"] for g in optimizer.param_groups])
            progress.append(epoch + b / batches)
            optimizer.step()
            scheduler.step()
    got.append([g["lr"] for g in optimizer.param_groups])
    progress.append(4)
    assert progress[:5] == [0, 1 / 3, 2 / 3, 1, 1.2] and progress[8:10] == [2, 2.5]
    assert got == [[0.01 * _hand_written_warmup_cosine(p, 1.5, 4)] * 2 for p in progress]
    assert got[0][0] < got[4][0] and got[-1][0] == 0.0    # warm-up rises, the cosine ends at zero


def test_train_tune_and_bare_optuna_run_the_one_epoch_loop(micro_data_config, tmp_path, monkeypatch):
    from ray import tune

    from harness.bench import bare_optuna
    from harness.data.handle import handle_key, prepare_handles
    from harness.tune.trainable import FINAL_FILE, trial_trainable

    loops = []
    real_run = Trial.run
    monkeypatch.setattr(Trial, "run", lambda self, on_epoch: loops.append(self.cfg.seed) or real_run(self, on_epoch))
    cfg = _cfg(micro_data_config, "model=cpmobile", "train.epochs=2", "pseudo=none")
    base = to_dict(cfg)
    final = run_training(cfg, tmp_path / "train", progress=False)

    reports = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append((metrics, checkpoint)))
    monkeypatch.setattr(tune, "get_context", lambda: type("Ctx", (), {"get_trial_dir": lambda _: str(tmp_path)})())
    handles = prepare_handles([cfg])
    trial_trainable({"_run": "a"}, configs={"a": base}, handles=handles)
    assert [m["epoch"] for m, _ in reports] == [1, 2] and all(c is not None for _, c in reports)
    assert json.loads((tmp_path / FINAL_FILE).read_text())["val"] == final["val"]

    journal = str(tmp_path / "journal.log")
    study = optuna.create_study(study_name="s", storage=bare_optuna._storage(journal), direction="maximize")
    bare_optuna._init_worker("s", journal, optuna.pruners.NopPruner(), torch.get_num_threads())
    row = bare_optuna._run_trial(study.ask()._trial_id, {}, base, "val/macro_acc", 0.0, handles)
    assert len(row["epoch_s"]) == 2 and not row["pruned"]
    assert row["value"] == pytest.approx(final["last"]["val/macro_acc"])
    assert loops == [0, 0, 0] and handle_key(cfg) in handles
