"""A real multi-node Ray cluster on one machine, bound to loopback: for the cluster test and
`ascbench bench scale`.

Nodes come from `ray.cluster_utils.Cluster` (a head plus `nodes - 1` workers, each a full set of
Ray daemons with its own CPUs, no dashboard, Ray's default authentication) and are removed by the
context manager that started them: never `ray stop`, which would kill other people's runtimes.

The environment of the calling process (so of its subprocesses, and of every Ray worker, which
inherits its raylet's) is changed because:
- `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`: on Linux Ray rewrites a 127.0.0.1 bootstrap address to
  the outward IP; this selects Ray's single-machine (macOS) mode, so nodes listen on loopback
  only and a driver can join at 127.0.0.1:PORT.
- `RAY_TMPDIR` is a fresh short folder under /tmp: Ray's Unix socket paths live there and overflow
  the 107-byte limit under a long temporary folder. Deleted on a clean exit, kept (with the
  nodes' logs) when the body raised.

Call it from a dedicated child process: `Cluster` opens an in-process GCS client, which aborts
its process once that GCS is gone, and a process holding its own Ray runtime cannot also host a
cluster driver.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from .errors import UserError
from .ray_runtime import LOOPBACK


@contextlib.contextmanager
def loopback_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[tuple[Any, list[Any]]]:
    """Yield `(cluster, worker_nodes)`: `nodes` Ray nodes on 127.0.0.1 with `cpus_per_node` CPUs each;
    join it at `cluster.address`."""
    if nodes < 1 or cpus_per_node < 1:
        raise UserError(f"loopback cluster: need nodes >= 1 and cpus_per_node >= 1, got {nodes} and {cpus_per_node}")
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    os.environ["RAY_TMPDIR"] = tmp
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    node = {"num_cpus": cpus_per_node, "node_ip_address": LOOPBACK, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=dict(node))
    try:
        workers = [cluster.add_node(**node) for _ in range(nodes - 1)]
        yield cluster, workers
    finally:
        for n in list(cluster.worker_nodes):   # only the nodes started here
            cluster.remove_node(n, allow_graceful=False)
        if cluster.head_node is not None:
            cluster.remove_node(cluster.head_node, allow_graceful=False)
    shutil.rmtree(tmp, ignore_errors=True)   # reached only when the body did not raise
