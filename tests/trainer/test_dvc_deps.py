"""dvc.yaml lists, as each stage's deps, every file of this repository the stage's code imports.

DVC reruns a stage only when a dep changes; a module the stage imports but does not list (say
``params.py``) could change what the stage computes while ``dvc exp run`` reuses the cached result.
The imports are read statically from the source (every ``import``, at module level or inside a
function, followed through the repository's packages), so a lazy import counts as well.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"freshness_trainer": REPO / "trainer", "freshness_contract": REPO / "contract"}


def _file(module: str) -> Path | None:
    """The repository file of a dotted module name, or None for a module from elsewhere."""
    root = ROOTS.get(module.split(".")[0])
    if root is None:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _packages(module: str) -> list[str]:
    """The packages Python runs the ``__init__`` of before ``module``: a.b.c -> a, a.b."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(path: Path, module: str) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def closure(module: str) -> set[Path]:
    """Every repository file running ``python -m module`` can import."""
    seen: set[Path] = set()
    todo = [module, *_packages(module)]
    while todo:
        name = todo.pop()
        path = _file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_packages(name))
        todo.extend(_imports(path, name))
    return seen


def test_each_stage_lists_every_repository_file_it_imports() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert set(stages) == {"prepare", "train", "evaluate"}
    for name, stage in stages.items():
        match = re.search(r"python -m ([\w.]+)", stage["cmd"])
        assert match, f"{name}: no `python -m` in {stage['cmd']!r}"
        imported = {p.relative_to(REPO).as_posix() for p in closure(match.group(1))}
        deps = {d for d in stage["deps"] if d.endswith(".py")}
        assert imported - deps == set(), f"stage {name}: imported but not in dvc.yaml's deps"
        assert deps - imported == set(), f"stage {name}: in dvc.yaml's deps but never imported"


def test_the_closure_follows_lazy_and_package_imports() -> None:
    """The reader itself: ``impact.trigger`` imports ``freshness_contract.trigger`` inside the
    function, and ``stages/__init__.py`` runs before any stage module."""
    files = {p.relative_to(REPO).as_posix() for p in closure("freshness_trainer.stages.train")}
    assert {"contract/freshness_contract/trigger.py", "trainer/freshness_trainer/stages/__init__.py",
            "trainer/freshness_trainer/__init__.py", "trainer/freshness_trainer/impact.py"} <= files
    assert "trainer/freshness_trainer/serve/__init__.py" not in files  # the server is not a stage's
