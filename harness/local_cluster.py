"""A real multi-node Ray cluster on one machine, bound to loopback: for the cluster test and
`ascbench bench scale`.

Nodes come from `ray.cluster_utils.Cluster` (a head plus `nodes - 1` workers, each a full set
of Ray daemons with its own CPUs, no dashboard, Ray's default authentication settings) and
are removed by the context manager that started them: never `ray stop`, which would also
kill runtimes other people have running on the machine.

Why the environment is changed, in the calling process (and so in every subprocess it
starts, and in every Ray worker, which inherits its raylet's environment):

- `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`: on Linux Ray rewrites a 127.0.0.1 bootstrap address
  to the machine's outward IP; this variable selects the single-machine mode Ray uses on
  macOS, so the nodes listen on loopback only and a driver can join at 127.0.0.1:PORT.
- `RAY_TMPDIR` set to a fresh short folder under /tmp: Ray's Unix socket paths live there and
  overflow the 107-byte limit under a long temporary folder. It is deleted on a clean exit
  and kept (with the nodes' logs) when the body raised.

Call it from a dedicated child process: `Cluster` opens an in-process GCS client, which aborts
its whole process once that GCS is gone, and a process holding a Ray runtime of its own
cannot also host a cluster driver.
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
