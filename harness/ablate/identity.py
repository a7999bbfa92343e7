"""A run's identity: the hash of its resolved config, so a repeated or resumed ablation skips it.

Keys that change where things live or how fast they run, not what is computed, are left
out (thread count, cache location), so moving the cache or the CPU share keeps the hash.
"""
from __future__ import annotations

import copy
import hashlib
import json

VOLATILE_KEYS = ("train.threads", "data.cache_dir")


def identity_dict(cfg: dict) -> dict:
    out = copy.deepcopy(cfg)
    for dotted in VOLATILE_KEYS:
        group, key = dotted.split(".")
        out.get(group, {}).pop(key, None)
    return out


def run_hash(cfg: dict) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of the resolved config."""
    text = json.dumps(identity_dict(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
