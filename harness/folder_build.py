"""Build a shared folder (the synthetic corpus, a feature-cache entry) once, whoever asks first.

A builder holds an exclusive `flock` on `.NAME.lock` beside the folder while it builds into
`.NAME.partial-XXXX` and renames that into place, so a second process (two seeds started
together, trials on several nodes) waits for the first and then uses its result, and never
reads half of one. A partial folder whose lock nobody holds was left by a killed builder:
the next builder, or the next sweep of the parent folder, removes it.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import fs_errors, make_dirs
from .io import dir_mode, try_lock

PARTIAL = ".partial-"


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _partials(folder: Path, name: str = "*") -> list[str]:
    pattern = glob.escape(f".{name}{PARTIAL}") if name != "*" else f".*{glob.escape(PARTIAL)}"
    return glob.glob(os.path.join(glob.escape(str(folder)), pattern + "*"))


@contextlib.contextmanager
def building(target: Path) -> Iterator[None]:
    """Hold the build lock of `target` (waiting for another builder), after removing the partial
    folders a killed builder of `target` left behind."""
    make_dirs(target.parent)
    lock = lock_path(target)
    with fs_errors(lock, "create the lock file"):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for orphan in _partials(target.parent, target.name):
            shutil.rmtree(orphan, ignore_errors=True)
        yield
    finally:
        os.close(fd)


def new_partial(target: Path) -> Path:
    """A fresh private folder beside `target` to build into (call inside `building(target)`)."""
    with fs_errors(target.parent, "write"):
        return Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))


def publish(partial: Path, target: Path) -> None:
    """Give the finished folder default permissions and rename it into place."""
    with fs_errors(target, "write"):
        os.chmod(partial, dir_mode())   # mkdtemp made it private
        os.replace(partial, target)


def sweep_orphans(folder: Path) -> None:
    """Remove partial folders in `folder` whose builder is gone (its lock is free)."""
    for orphan in _partials(folder):
        name = os.path.basename(orphan)[1:].split(PARTIAL, 1)[0]
        lock = lock_path(folder / name)
        fd = try_lock(lock)
        if fd is None and lock.exists():
            continue   # a live builder holds it
        try:
            shutil.rmtree(orphan, ignore_errors=True)
        finally:
            if fd is not None:
                os.close(fd)
