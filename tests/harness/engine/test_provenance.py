"""Provenance names the commit git reports, marks uncommitted changes, and works in a worktree."""
from __future__ import annotations

import subprocess

from harness.engine.provenance import git_commit, versions


def _git(cwd, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_commit_dirty_mark_worktree_and_no_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")
    assert git_commit(repo) == head
    (repo / "a.txt").write_text("two\n")
    assert git_commit(repo) == f"{head}-dirty"
    _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))   # .git is a file there, not a folder
    assert git_commit(tmp_path / "wt") == head
    assert git_commit(tmp_path / "no-checkout") == "unknown"


def test_versions_come_from_installed_metadata():
    v = versions()
    assert v["torch"].split("+")[0].count(".") == 2 and v["ray"].startswith("2.60")
