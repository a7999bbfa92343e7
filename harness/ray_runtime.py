"""Start or join the Ray runtime that `ascbench tune` and `ascbench ablate` run on.

One place decides how a runtime is started or joined, so `tune`, `ablate`, the benchmarks and
the test session all run on the same settings: no dashboard, Ray's own logs only with
`verbose`, token authentication left at Ray's default (on). A local runtime listens on
127.0.0.1 only (a laptop run needs nothing outside loopback; without this Ray listens on
every interface). Joining `address` (or `$RAY_ADDRESS`) leaves the cluster's settings alone.
"""
from __future__ import annotations

import logging
import os

LOOPBACK = "127.0.0.1"


def ensure_ray(address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> bool:
    """Join `address` (`auto` or HOST:PORT), or start a local runtime with `num_cpus` (default:
    every CPU). Returns True if this call started or joined it (the caller shuts it down),
    False if a runtime was already up."""
    import ray

    if ray.is_initialized():
        return False
    common = dict(log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.ERROR,
                  include_dashboard=False)
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **common)
    else:
        # on Linux Ray rewrites 127.0.0.1 to the outward IP unless in single-machine mode (see
        # harness/local_cluster.py); the variable reaches the raylet and GCS, which inherit it
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address=LOOPBACK, **common)
    return True
