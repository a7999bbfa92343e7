"""The one exception type that carries a user's problem to the CLI, and file-system errors
translated into it where they happen.

`ascbench` prints a `UserError` as one line (`ascbench: error: ...`, exit 2); every other
exception is a bug and keeps its traceback. A `UserError` is a `ValueError` so that library
code catching bad values (and tests written against them) keeps working.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator


class UserError(ValueError):
    """Something the user can fix: a bad file, row, key or value, or a path that cannot be used."""


# errno -> what the user is told; only conditions of the file system or the path, never a bug
FS_CAUSES = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EFBIG: "file too large (disk full, or the file size limit of ulimit -f)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.EEXIST: "exists and is not a folder",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOENT: "no such file or folder",
}


def fs_error(exc: OSError, path: str | os.PathLike, action: str) -> UserError:
    """One line naming the path, what was being done and the cause."""
    cause = FS_CAUSES.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    return UserError(f"{path}: cannot {action}: {cause}")


def is_fs_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FS_CAUSES


@contextlib.contextmanager
def fs_errors(path: str | os.PathLike, action: str = "write") -> Iterator[None]:
    """Translate a file-system condition (read-only, full, not a folder, ...) raised inside into a
    `UserError` naming `path`; any other OSError is a bug and propagates unchanged."""
    try:
        yield
    except OSError as exc:
        if is_fs_error(exc):
            raise fs_error(exc, path, action) from None
        raise


def make_dirs(path: str | os.PathLike, what: str = "folder") -> None:
    """`mkdir -p` with default permissions, or one line saying why the folder cannot be made."""
    with fs_errors(path, f"create the {what}"):
        os.makedirs(path, exist_ok=True)
    if not os.path.isdir(path):
        raise UserError(f"{path}: cannot create the {what}: exists and is not a folder")


def warn(message: str) -> None:
    """One line on stderr for something that runs on but deserves a look (a short clip, a future date)."""
    print(f"ascbench: warning: {message}", file=sys.stderr, flush=True)
