"""What a report must say about where numbers came from: versions, commit, hardware.

The git commit is read from .git files, not by running git, so it works in any
environment where the checkout is present and says "unknown" otherwise.
"""
from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def git_commit(repo: Path = REPO) -> str:
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        ref_file = git / ref
        if ref_file.is_file():
            return ref_file.read_text().strip()
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    except OSError:
        pass
    return "unknown"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "ray", "optuna", "numpy", "scipy", "statsmodels", "pandas"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # pragma: no cover - optional in some environments
            out[name] = "absent"
    return out


def hardware() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def provenance() -> dict:
    return {"git_commit": git_commit(), "versions": versions(), "hardware": hardware()}
