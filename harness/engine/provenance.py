"""What a report must say about where numbers came from: versions, commit, hardware.

Recorded in the experiment folder when the experiment starts, on the machine that runs it
(harness/engine/store.py), so a report made elsewhere says where its numbers came from.
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def git_commit(repo: Path = REPO) -> str:
    """The checkout's commit as git reports it (worktrees included); "unknown" without git or a checkout."""
    if not (repo / ".git").exists():   # an installed package: no checkout of its own (not an enclosing repo's)
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


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
