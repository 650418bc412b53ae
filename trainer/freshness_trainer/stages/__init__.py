"""The DVC stages of the example project (``dvc.yaml``): prepare -> train -> evaluate.

Each module has a core ``run(...)`` taking typed params and paths, and a thin ``main()`` that reads
``params.yaml`` in the working directory, as DVC runs it, and exits non-zero with the problem on
stderr when an input is bad.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshness_trainer.errors import TrainerError


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_main(name: str, body: Callable[[], object]) -> None:
    """Run a stage body; a TrainerError becomes one line on stderr and exit status 1."""
    try:
        body()
    except TrainerError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
