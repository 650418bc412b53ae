"""status.lastReconcileTime: proof that an operator still acts on this object. Pure.

It moves with every status change and at least every ``HEARTBEAT`` otherwise (``decide`` asks to
be woken for it), so a value much older than that means no operator is running for it (uninstalled,
crashed, or not watching this namespace). Between beats nothing is written: no extra API traffic.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from freshness_operator.core.context import Context
from freshness_operator.core.status import Status

HEARTBEAT = timedelta(minutes=10)


def beat(ctx: Context, before: Status) -> None:
    """Step 9: stamp lastReconcileTime when the status changed or the last stamp is HEARTBEAT old."""
    last = before.last_reconcile_time
    unchanged = dataclasses.replace(ctx.status, last_reconcile_time=last) == before
    if last is None or not unchanged or ctx.now >= last + HEARTBEAT:
        last = ctx.status.last_reconcile_time = ctx.now
    ctx.wake_at(last + HEARTBEAT)
