"""The working state of one ``decide`` call: inputs, the status being edited, actions so far. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

from freshness_operator.core import actions as act
from freshness_operator.core.conditions import set_condition
from freshness_operator.core.observed import JobKind, Observed
from freshness_operator.core.spec import Spec
from freshness_operator.core.status import (
    HISTORY_LIMIT,
    HistoryEntry,
    ModelStatus,
    Outcome,
    RetrainStage,
    RetrainStatus,
    Status,
)


@dataclass(frozen=True)
class Decision:
    """What ``decide`` returns: actions in order, the new status, when to look again.

    ``requeue_at == now`` asks for the next reconcile at once, after this status is written.
    """

    actions: tuple[act.Action, ...]
    status: Status
    requeue_at: datetime | None


@dataclass
class Context:
    name: str
    spec: Spec
    status: Status
    observed: Observed
    now: datetime
    generation: int
    actions: list[act.Action] = field(default_factory=list)
    wakeups: list[datetime] = field(default_factory=list)
    again: bool = False

    @property
    def may_act(self) -> bool:
        """Paused ModelDeployments keep their status fresh but start and patch nothing."""
        return not self.spec.paused

    def emit(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.actions.append(act.Emit(reason, message, warning))

    def count(self, metric: act.Metric, result: str | None = None) -> None:
        self.actions.append(act.Count(metric, result))

    def duration(self, kind: JobKind, started: datetime | None, finished: datetime | None) -> None:
        if started is not None and finished is not None and finished >= started:
            self.actions.append(act.ObserveDuration(kind, (finished - started).total_seconds()))

    def wake_at(self, when: datetime) -> None:
        self.wakeups.append(when)

    def recheck(self) -> None:
        """Decide again right after this status is written: an intent recorded, its action next."""
        self.again = True

    def condition(self, type_: str, status: str, reason: str, message: str) -> bool:
        return set_condition(
            self.status.conditions, type_, status, reason, message, now=self.now, generation=self.generation
        )

    def finish(self, retrain: RetrainStatus, outcome: Outcome, reason: str, message: str, result: str) -> None:
        """Close the retrain with ``outcome``; ``result`` labels modelfreshness_retrains_total."""
        retrain.stage, retrain.outcome, retrain.reason, retrain.message = RetrainStage.DONE, outcome, reason, message
        retrain.finished_at = self.now
        retrain.after_check = self.status.drift.sequence
        self.count(act.Metric.RETRAINS, result)

    def push_history(self, old: ModelStatus | None, *, replaced_by: str | None, reason: str) -> None:
        if old is None or old.image is None:
            return
        served = {f.name: getattr(old, f.name) for f in fields(ModelStatus)}
        entry = HistoryEntry(**served, replaced_at=self.now, replaced_by=replaced_by, reason=reason)
        self.status.history = [entry, *self.status.history][:HISTORY_LIMIT]

    def decision(self) -> Decision:
        future = [w for w in self.wakeups if w > self.now]
        when = self.now if self.again else min(future) if future else None
        return Decision(tuple(self.actions), self.status, when)
