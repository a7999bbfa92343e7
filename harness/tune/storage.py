"""The experiment directory on a local path or any URI Ray's storage accepts (pyarrow filesystems).

Our own files (space.json, results, best config) go beside Ray's experiment state, so a
cluster run on shared storage keeps everything in one place. Local writes are atomic
(temp file + rename); object stores replace whole objects, which is atomic already.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from ..engine.store import ResultStore
from ..io import write_atomic

DEFAULT_STORAGE = "runs"


def is_uri(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def storage_root(storage: str | None) -> str:
    """Ray wants an absolute local path or a URI; default `runs/` under the working directory."""
    storage = (storage or os.environ.get("ASCBENCH_RUNS", DEFAULT_STORAGE)).removeprefix("file://")
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


@dataclass(frozen=True)
class ExperimentDir:
    storage: str   # absolute path or URI
    name: str

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def local(self) -> Path | None:
        """The folder on a local storage path; None on a URI storage."""
        return None if is_uri(self.storage) else Path(self.uri)

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        return pafs.FileSystem.from_uri(self.uri)   # an absolute local path as well

    def exists(self, rel: str = "") -> bool:
        fs, root = self._fs()
        return fs.get_file_info(f"{root}/{rel}" if rel else root).type != pafs.FileType.NotFound

    def open(self, rel: str) -> pafs.NativeFile:
        """The file at `rel` for reading, random access (what parquet wants), on a local path or a URI."""
        fs, root = self._fs()
        return fs.open_input_file(f"{root}/{rel}")

    def read_text(self, rel: str) -> str:
        with self.open(rel) as fh:
            return fh.read().decode("utf-8")

    @property
    def store(self) -> ResultStore:
        """The experiment's per-trial records and provenance, written through this folder or URI."""
        return ResultStore(self.uri, write=self.write_text)

    def write(self, rel: str, write: Callable[[Path], None]) -> str:
        """`write(local_path)` produces the file; it lands at `rel` in the experiment dir."""
        if self.local is not None:
            return str(write_atomic(self.local / rel, write))
        import tempfile

        fs, root = self._fs()
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d) / Path(rel).name
            write(tmp)
            fs.create_dir(str(Path(f"{root}/{rel}").parent), recursive=True)
            with fs.open_output_stream(f"{root}/{rel}") as out:
                out.write(tmp.read_bytes())
        return f"{self.uri}/{rel}"

    def write_text(self, rel: str, text: str) -> str:
        return self.write(rel, lambda p: p.write_text(text, encoding="utf-8"))
