"""The decision function: spec + status + observations + now -> actions + new status. Pure.

One reconcile is the numbered steps below, in this order; each step's code is the module it calls
(``adopt``, ``serving``, ``drift_check``, ``training``, ``gate``, ``packaging``, ``rollout``,
``storm_control``, ``prune``, ``refused``, ``phase``, ``heartbeat``). Every step only edits the copy
of the status and appends actions, so calling ``decide`` twice on the same inputs gives the same
answer, and executing its actions twice is harmless (names are deterministic).
"""

from __future__ import annotations

import copy
from datetime import datetime

from freshness_operator.core import (
    adopt,
    drift_check,
    gate,
    heartbeat,
    packaging,
    phase,
    prune,
    refused,
    rollout,
    serving,
    storm_control,
    training,
)
from freshness_operator.core.actions import Emit
from freshness_operator.core.conditions import set_condition, stamp
from freshness_operator.core.context import Context, Decision
from freshness_operator.core.observed import Observed
from freshness_operator.core.spec import Spec, SpecError
from freshness_operator.core.status import Phase, Status, StepError

__all__ = ["Decision", "decide", "reject_spec", "retrying"]


def decide(*, name: str, spec: Spec, status: Status, observed: Observed, now: datetime, generation: int) -> Decision:
    """Decide what to do for ModelDeployment ``name``. Pure: no I/O, no clock (``now`` is given)."""
    ctx = Context(name, spec, copy.deepcopy(status), observed, now, generation)
    adopt.adopt_jobs(ctx)  # 1. adopt: take over Jobs the status does not know about
    serving.track(ctx)  # 2. serving: what the serving Deployment runs now
    serving.check(ctx)  # 2a. the serving Deployment and container exist, or nothing starts
    serving.shared(ctx)  # 2b. a warning when other ModelDeployments roll the same Deployment
    drift_check.finish(ctx)  # 3. drift check: the verdict of the finished check
    training.advance(ctx)  # 4a. training: record finished candidates, start pending ones
    gate.judge(ctx)  # 4b. gate: all candidates finished -> the best one passes, or an outcome
    packaging.advance(ctx)  # 4c. packaging: the serving image of the accepted candidate
    rollout.advance(ctx)  # 4d. rollout: patch, then judge; roll back on failure
    storm_control.start_retrain_if_allowed(ctx)  # 5. storm control: a confirmed drift -> a new retrain
    drift_check.start_if_due(ctx)  # 6. drift check: the next one
    prune.prune_jobs(ctx)  # 7. prune: old Jobs
    refused.apply(ctx)  # 7a. an action the API refused for good: out, and its step fails
    phase.summarize(ctx)  # 8. phase and conditions
    heartbeat.beat(ctx, status)  # 9. lastReconcileTime
    return ctx.decision()


def reject_spec(*, status: Status, error: SpecError, now: datetime, generation: int) -> Decision:
    """A spec the operator cannot act on: phase Failed, Ready=False InvalidSpec, one Event. Pure."""
    st = copy.deepcopy(status)
    st.phase = Phase.FAILED
    st.observed_generation = generation
    changed = set_condition(st.conditions, "Ready", "False", "InvalidSpec", str(error), now=now, generation=generation)
    stamp(st.conditions, generation)
    return Decision((Emit("InvalidSpec", str(error), True),) if changed else (), st, None)


def retrying(*, status: Status, error: str, now: datetime, generation: int) -> Decision:
    """An action the API keeps refusing with a retryable error (409/429/5xx, a timeout) past the
    wiring's bound: Ready=False ApiRetrying, one Warning Event; nothing else changes. Pure.

    The next reconcile whose actions succeed derives Ready from the status again.
    """
    st = copy.deepcopy(status)
    st.observed_generation = generation
    changed = set_condition(st.conditions, "Ready", "False", "ApiRetrying", error, now=now, generation=generation)
    stamp(st.conditions, generation)
    if changed:
        st.last_error = StepError("ApiRetrying", error, now)
    return Decision((Emit("ApiRetrying", error, True),) if changed else (), st, None)
