"""The code-shape limits of the project: no function over 60 lines (complexity is ruff's C901, run by `make test`)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

MAX_LINES = 60
PACKAGES = ("ascmamba", "harness", "reports", "search_spaces")


def long_functions(root: Path, package: str) -> list[str]:
    """`path:line name (n lines)` of every function or method of `package` longer than MAX_LINES."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_longer_than_60_lines(package):
    assert not long_functions(REPO, package), "functions over 60 lines: " + "; ".join(long_functions(REPO, package))


def test_the_check_finds_a_61_line_method_and_passes_a_60_line_function(tmp_path):
    (tmp_path / "pkg").mkdir()
    ok = "def ok():\n" + "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1)) + "\n"
    long = "class C:\n    def long(self):\n" + "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES)) + "\n"
    (tmp_path / "pkg" / "mod.py").write_text(ok + "\n\n" + long)
    assert long_functions(tmp_path, "pkg") == [f"pkg/mod.py:{MAX_LINES + 4} long (61 lines)"]
