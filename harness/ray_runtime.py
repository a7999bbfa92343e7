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


def single_machine_mode() -> None:
    """Ray's single-machine mode (its default on macOS), in which a node listens on 127.0.0.1 only;
    on Linux Ray otherwise rewrites 127.0.0.1 to the outward IP and listens on every interface.
    The variable reaches the GCS, raylet and workers, which inherit this environment; Ray's
    Python side read it when `ray` was imported, so its constant is set as well."""
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


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
        single_machine_mode()
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address=LOOPBACK, **common)
    return True
