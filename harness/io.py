"""Atomic writes: a crash leaves either the old file or the new one, never half of one.

Outputs get the permissions of a plain `open()` under the user's umask (temporary files are
private, so each is given them before the rename); a file-system condition becomes one
`UserError` naming the path. A live writer holds an `flock` on its temporary file, so the next
write of the same file removes only the temporary files of killed writers.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import fs_errors, make_dirs

STALE_AFTER_S = 10.0   # a temporary file younger than this is never removed (its writer may not hold its lock yet)


def current_umask() -> int:
    """The process umask (Linux reads it without changing it; elsewhere set and restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What `open(path, "w")` would give a new file."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """What `mkdir` would give a new folder."""
    return 0o777 & ~current_umask()


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None if a live process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_stale_temps(path: Path) -> None:
    """Remove `.NAME.*.tmp` beside `path` that no live writer holds (left by a SIGKILL)."""
    pattern = os.path.join(glob.escape(str(path.parent)), glob.escape(f".{path.name}.") + "*.tmp")
    for tmp in glob.glob(pattern):
        try:
            if time.time() - os.stat(tmp).st_mtime < STALE_AFTER_S:
                continue
        except OSError:
            continue
        fd = try_lock(Path(tmp))
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            os.close(fd)


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    make_dirs(path.parent)
    remove_stale_temps(path)
    with fs_errors(path, "write"):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp_path = Path(tmp)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)   # ours while we live: see remove_stale_temps
            write(tmp_path)
            os.chmod(tmp_path, file_mode())
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Bytes serialised in memory first: a full disk is then an OSError of this write, which
    `write_atomic` names, not a library's own error from inside its writer."""
    return write_atomic(path, lambda p: p.write_bytes(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
