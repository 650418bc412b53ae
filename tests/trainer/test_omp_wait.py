"""The trainer's commands load torch's OpenMP runtime with a passive wait policy unless told otherwise
(freshness_trainer/__init__.py): spinning threads slow two trainings sharing the same cores
(benchmarks/omp_wait.py).

libgomp prints the settings it read at load with OMP_DISPLAY_ENV=VERBOSE; GOMP_SPINCOUNT is 0 under
PASSIVE, 300000 when no policy is named and larger under ACTIVE.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.trainer.conftest import ROOT


def spin_count(code: str, **env: str) -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    base.update(PYTHONPATH=os.pathsep.join(str(ROOT / d) for d in ("contract", "trainer")), OMP_DISPLAY_ENV="VERBOSE")
    proc = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                          timeout=300, check=True)
    match = re.search(r"GOMP_SPINCOUNT = '(\d+)'", proc.stderr)
    assert match, proc.stderr[-2000:]
    return int(match.group(1))


def test_torch_alone_spins_but_the_trainer_loads_it_passive() -> None:
    assert spin_count("import torch") > 0  # what the default would be: the check below can fail
    assert spin_count("import freshness_trainer.engine") == 0


def test_a_policy_the_environment_names_is_kept() -> None:
    assert spin_count("import freshness_trainer.engine", OMP_WAIT_POLICY="ACTIVE") > 300000
