"""House rules 1 and 2, checked: the core is pure, one module talks to the API."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import freshness_operator
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(freshness_operator.__file__).parent
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "sleep", "open", "getenv"}


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True) == 0


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_reads_no_clock_and_no_files(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    ]
    assert not CLOCK_CALLS & set(calls), f"{path.name} calls {CLOCK_CALLS & set(calls)}"


def test_only_kube_imports_the_http_client() -> None:
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] in ("aiohttp", "kubernetes") for m in mods):
                    importers.append(os.path.relpath(path, PACKAGE))
    assert set(importers) == {"kube.py"}
