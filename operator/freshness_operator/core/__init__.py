"""The pure decision core: spec + status + observations + now -> actions + new status.

Nothing here does I/O, reads the clock or imports kopf/kubernetes (enforced by .importlinter).
"""

from freshness_operator.core.decide import Decision, decide
from freshness_operator.core.spec import Spec, SpecError, parse_spec

__all__ = ["Decision", "Spec", "SpecError", "decide", "parse_spec"]
