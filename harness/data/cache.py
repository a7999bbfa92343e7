"""On-disk log-mel cache shared by every trial on a node (README, "Feature cache").

An entry is keyed by the audio *content* (a hash per file, memoised on path, size and mtime)
and the feature parameters, so changing either makes a new entry and nothing is ever recomputed
by a trial. It is built once, under a lock, in a partial folder renamed into place
(`harness.folder_build`); trials memory-map its one float16 array read-only.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ascmamba.frontend import FrontEnd

from ..errors import UserError, fs_errors, make_dirs
from ..folder_build import building, new_partial, publish, sweep_orphans
from ..io import write_json_atomic
from .audio import load_clip
from .features import log_mel

FORMAT_VERSION = 1
FEATURES_FILE = "features.npy"
INDEX_FILE = "index.json"


def default_cache_root() -> Path:
    """`$ASCBENCH_CACHE`, else `~/.cache/ascbench`."""
    return Path(os.environ.get("ASCBENCH_CACHE", Path.home() / ".cache" / "ascbench"))


def file_digest(path: str | Path, memo: dict[str, list]) -> str:
    """blake2b of the file's bytes, memoised in `memo` on (path, size, mtime_ns)."""
    st = os.stat(path)
    key = str(path)
    if key in memo and memo[key][:2] == [st.st_size, st.st_mtime_ns]:
        return memo[key][2]
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    memo[key] = [st.st_size, st.st_mtime_ns, digest]
    return digest


@dataclass(frozen=True)
class FeatureSpec:
    front_end: FrontEnd
    seconds: float

    def to_dict(self) -> dict:
        return {"front_end": self.front_end.to_dict(), "seconds": self.seconds, "version": FORMAT_VERSION}


@dataclass
class CachedFeatures:
    """A read-only memory map of one cache entry, with the clip order it was built in."""

    path: Path
    features: np.ndarray  # (clips, frames, mels) float16, memory-mapped
    clip_ids: tuple[str, ...]
    spec: dict

    def rows(self, clip_ids: Sequence[str]) -> np.ndarray:
        """Row index of each clip id in `features`."""
        index = {c: i for i, c in enumerate(self.clip_ids)}
        missing = [c for c in clip_ids if c not in index]
        if missing:
            raise KeyError(f"{self.path}: clip {missing[0]!r} is not in this feature cache entry")
        return np.fromiter((index[c] for c in clip_ids), dtype=np.int64, count=len(clip_ids))


def open_features(path: str | Path) -> np.ndarray:
    """The features of the entry at `path`, memory-mapped read-only (nothing is read until indexed)."""
    return np.load(Path(path) / FEATURES_FILE, mmap_mode="r")


def open_entry(path: str | Path) -> CachedFeatures:
    path = Path(path)
    meta = json.loads((path / INDEX_FILE).read_text())
    return CachedFeatures(path, open_features(path), tuple(meta["clip_ids"]), meta["spec"])


def reserve(path: Path) -> None:
    """Allocate the blocks of a memory-mapped file now: on a full disk the writes through the map
    would otherwise kill the process with SIGBUS; here they fail as one ENOSPC."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):   # a file system without fallocate
                raise


class FeatureCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_root()
        make_dirs(self.root, "feature cache folder")

    def _digests(self, paths: Sequence[str]) -> list[str]:
        memo_path = self.root / "digests.json"
        try:
            memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
        except (OSError, ValueError):
            memo = {}   # a memo only: rebuilt from the files
        digests = []
        for p in paths:
            with fs_errors(p, "read the audio file"):
                digests.append(file_digest(p, memo))
        with contextlib.suppress(UserError):   # a read-only cache still serves the entries it holds
            write_json_atomic(memo_path, memo)
        return digests

    def key(self, clip_ids: Sequence[str], paths: Sequence[str], spec: FeatureSpec) -> str:
        h = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode())
        for clip_id, digest in zip(clip_ids, self._digests(paths), strict=True):
            h.update(f"{clip_id}\0{digest}\n".encode())
        return h.hexdigest()[:24]

    def get_or_build(
        self, clip_ids: Sequence[str], paths: Sequence[str], spec: FeatureSpec,
        batch_size: int = 32, progress: bool = True,
    ) -> CachedFeatures:
        """The cache entry for these clips and features, computing it once if absent; a process
        that finds another one building it waits and uses that result."""
        if len(clip_ids) != len(paths):
            raise ValueError("clip_ids and paths differ in length")
        entry = self.root / self.key(clip_ids, paths, spec)
        if (entry / INDEX_FILE).exists():
            return open_entry(entry)
        sweep_orphans(self.root)
        with building(entry):
            if not (entry / INDEX_FILE).exists():  # another process may have built it meanwhile
                self._build(entry, clip_ids, paths, spec, batch_size, progress)
        return open_entry(entry)

    def _build(self, entry: Path, clip_ids, paths, spec: FeatureSpec, batch_size: int, progress: bool) -> None:
        fe = spec.front_end
        frames = fe.frames(spec.seconds)
        tmp = new_partial(entry)
        try:
            with fs_errors(entry, "write the feature cache entry"):
                out = np.lib.format.open_memmap(
                    tmp / FEATURES_FILE, mode="w+", dtype=np.float16, shape=(len(paths), frames, fe.n_mels)
                )
                reserve(tmp / FEATURES_FILE)
                bar = tqdm(total=len(paths), desc="log-mel cache", unit="clip", disable=not progress, leave=False)
                for start in range(0, len(paths), batch_size):
                    chunk = paths[start:start + batch_size]
                    waves = np.stack([load_clip(p, fe.sample_rate, spec.seconds) for p in chunk])
                    out[start:start + len(chunk)] = log_mel(waves, fe)
                    bar.update(len(chunk))
                bar.close()
                out.flush()
                del out
                (tmp / INDEX_FILE).write_text(json.dumps({"clip_ids": list(clip_ids), "spec": spec.to_dict()}))
            publish(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
