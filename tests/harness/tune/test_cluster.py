"""`ascbench tune --address` on a real two-node Ray cluster on loopback; the worker node is
killed mid-run and the experiment still completes with every trial exactly once.

Two nodes from `harness.local_cluster.loopback_cluster` (head + one worker, 1 CPU each, both
bound to 127.0.0.1; its docstring says why loopback needs `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`
and a short `RAY_TMPDIR`), started by this test and removed by it: never `ray stop`. The tune
driver runs in a subprocess because this pytest process may already hold the session-wide
local runtime (one cluster per driver process); it inherits those environment variables.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.bench.searches import cpmobile_space
from harness.local_cluster import LOOPBACK, loopback_cluster
from harness.tune.results import FINISHED
from tests.support import REPO
from tests.support.processes import kill_group

pytestmark = pytest.mark.ray   # every test here starts or joins a Ray runtime


# grace_period = max_epochs: no ASHA stops, so every trial must reach its last epoch
SPACE = cpmobile_space({"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}}, samples=3, max_epochs=8, grace_period=8,
                       max_concurrent=2, max_failures=2)


def test_tune_on_two_node_cluster_survives_worker_node_loss(tmp_path, micro_data_config):
    # the cluster lives in a child process: Ray's in-process GCS client (which Cluster opens)
    # aborts its whole process once that GCS is gone, and this pytest process may hold the
    # session runtime besides
    out = subprocess.run([sys.executable, __file__, str(tmp_path), str(micro_data_config.cache_dir)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-6000:]
    assert "CLUSTER-OK" in out.stdout


def run_on_cluster(tmp_path: Path, cache_dir: str) -> None:
    with loopback_cluster(nodes=2, cpus_per_node=1) as (cluster, (worker,)):
        _run_on_cluster(cluster, worker, tmp_path, cache_dir)
    print("CLUSTER-OK")


def _run_on_cluster(cluster, worker, tmp_path: Path, cache_dir: str) -> None:
    assert cluster.address.startswith(f"{LOOPBACK}:")
    space = tmp_path / "cluster.yaml"
    space.write_text(yaml.safe_dump(SPACE, sort_keys=False))
    storage = tmp_path / "runs"
    exp = storage / "cluster"
    cmd = [sys.executable, "-m", "harness.cli", "tune", "--space", str(space), "--name", "cluster",
           "--storage", str(storage), "--address", cluster.address, "--confirm-top", "0",
           "data.preset=micro", f"data.cache_dir={cache_dir}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    raylet = worker.all_processes["raylet"][0].process.pid
    victim = None
    try:
        # kill the worker node once a trial running there (its pid descends from the node's
        # raylet) has written a checkpoint and is not at its last epoch: it is mid-run
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            for result_file in glob.glob(str(exp / "*" / "result.json")):
                last = _last_result(Path(result_file))
                if (last and last["epoch"] <= SPACE["budget"]["max_epochs"] - 4 and _descends_from(last["pid"], raylet)
                        and glob.glob(str(Path(result_file).parent / "checkpoint_*"))):
                    victim, victim_pid = Path(result_file).parent, last["pid"]
                    break
            time.sleep(0.2)
        if victim is None:
            raise AssertionError("no trial on the worker node checkpointed within 120 s")
        killed_at = time.monotonic() - t0
        cluster.remove_node(worker, allow_graceful=False)
        out, _ = proc.communicate(timeout=150)
    finally:
        kill_group(proc)
    wall = time.monotonic() - t0
    print(f"cluster tune: worker killed at {killed_at:.1f}s, done at {wall:.1f}s")
    assert proc.returncode == 0, out

    df = pd.read_csv(exp / "results.csv")
    assert len(df) == SPACE["budget"]["samples"] and df["trial_id"].is_unique, df
    assert (df["status"] == FINISHED).all() and (df["epochs"] == SPACE["budget"]["max_epochs"]).all(), df
    row = df[df["path"].map(lambda p: Path(p).name) == victim.name]
    assert len(row) == 1 and int(row["failures"].iloc[0]) >= 1, df   # it lost its node and was retried
    last = _last_result(victim / "result.json")
    # it continued from its checkpoint on the head node: fewer iterations since the restore than epochs
    assert last["epoch"] == SPACE["budget"]["max_epochs"] and last["iterations_since_restore"] < last["epoch"]
    assert last["pid"] != victim_pid


def _last_result(path: Path) -> dict | None:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):   # being written
        return None


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])   # field 4: the parent's pid
    return False


if __name__ == "__main__":
    run_on_cluster(Path(sys.argv[1]), sys.argv[2])
