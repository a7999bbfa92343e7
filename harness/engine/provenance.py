"""Where a report's numbers came from (versions, commit, hardware), recorded in the experiment folder
when it starts, on the machine that runs it (harness/engine/store.py), so a report made elsewhere can say.
Versions come from the installed distributions' metadata, without importing the packages."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "ray", "optuna", "numpy", "scipy", "statsmodels", "pandas")


def git_commit(repo: Path = REPO) -> str:
    """The checked-out commit, `-dirty` when the working tree differs from it (worktrees included);
    "unknown" without git or a checkout."""
    if not (repo / ".git").exists():   # an installed package: no checkout of its own (not an enclosing repo's)
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def hardware() -> dict:
    import torch

    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def provenance() -> dict:
    return {"git_commit": git_commit(), "versions": versions(), "hardware": hardware()}
