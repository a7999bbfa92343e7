"""One phase of `ascbench bench scale`: start a loopback Ray cluster, time `ascbench tune
--address` on it, remove the cluster, write what happened as JSON.

Its own process (`python -m harness.bench.scale_phase --nodes N ... -- TUNE ARGS`) because the
cluster's in-process GCS client aborts its process once the GCS is gone, and each phase needs a
fresh cluster. The tuner is a further subprocess, the command a user would type, so its wall time
is what the user waits for (start, imports, joining, search, table); it inherits the loopback
environment (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, `RAY_TMPDIR`) that `loopback_cluster` sets.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from ..io import write_json_atomic
from ..local_cluster import loopback_cluster


def run_phase(nodes: int, cpus_per_node: int, tune_args: list[str], log: str, timeout_s: float) -> dict:
    """Time `ascbench tune TUNE_ARGS --address ADDR` on a fresh `nodes` x `cpus_per_node` cluster."""
    t0 = time.monotonic()
    with loopback_cluster(nodes=nodes, cpus_per_node=cpus_per_node) as (cluster, _workers):
        cluster_start_s = time.monotonic() - t0
        cmd = [sys.executable, "-m", "harness.cli", "tune", *tune_args, "--address", cluster.address]
        with open(log, "w") as out:
            t1 = time.monotonic()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
            except subprocess.TimeoutExpired:
                rc = 124
            tune_wall_s = time.monotonic() - t1
        address = cluster.address
    return {"nodes": nodes, "cpus_per_node": cpus_per_node, "address": address, "tune_rc": rc,
            "tune_wall_s": tune_wall_s, "cluster_start_s": cluster_start_s, "log": log, "command": cmd}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.scale_phase", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--cpus-per-node", type=int, required=True)
    p.add_argument("--out", required=True, help="JSON file for the phase's timings")
    p.add_argument("--log", required=True, help="where the tuner's output goes")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the tuner is killed")
    p.add_argument("tune_args", nargs=argparse.REMAINDER, help="-- then the arguments after `ascbench tune`")
    args = p.parse_args(argv)
    tune_args = args.tune_args[1:] if args.tune_args[:1] == ["--"] else args.tune_args
    write_json_atomic(args.out, run_phase(args.nodes, args.cpus_per_node, tune_args, args.log, args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
