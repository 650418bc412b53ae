"""Leader election timing (``freshness_operator.leader``) on an injected clock, and its wiring:
settings, the write fence, the runner paused on a standby. The real Lease on the local control
plane is exercised by test_failover.py."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from freshness_operator.kube import Kube, NotLeading
from freshness_operator.leader import Conflict, Elector, Timing, TimingError
from freshness_operator.metrics import Metrics
from freshness_operator.settings import Settings, SettingsError
from kubernetes import client as k8s_client

from tests.operator.test_reconcile_queue import Script, make, settle

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Store:
    """One Lease in memory, with resourceVersion conflicts like the API server's."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.rv = clock, 0
        self.lease: dict[str, Any] | None = None
        self.writes: list[str] = []

    def view(self, who: str, *, down: bool = False, write_takes: float = 0.0) -> View:
        return View(self, who, down, write_takes)


class View:
    """What one replica reaches of the store: ``down`` simulates a partition, ``write_takes`` a slow API."""

    def __init__(self, store: Store, who: str, down: bool, write_takes: float) -> None:
        self.store, self.who, self.down, self.write_takes = store, who, down, write_takes

    async def get(self) -> dict[str, Any] | None:
        if self.down:
            raise ConnectionError("partitioned")
        return copy.deepcopy(self.store.lease)

    async def write(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("partitioned")
        self.store.clock.t += self.write_takes
        current = self.store.lease
        sent = body["metadata"].get("resourceVersion")
        if (current is None) != (sent is None) or (
            current is not None and current["metadata"]["resourceVersion"] != sent
        ):
            raise Conflict("409")
        self.store.rv += 1
        self.store.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": str(self.store.rv)},
        }
        self.store.writes.append(self.who)
        return copy.deepcopy(self.store.lease)


class Replica:
    def __init__(self, store: Store, clock: Clock, who: str) -> None:
        self.view = store.view(who)
        self.started: list[float] = []
        self.stopped: list[float] = []
        self.elector = Elector(
            self.view,
            "ops",
            "mf",
            who,
            TIMING,
            on_started=lambda: self.started.append(clock.t),
            on_stopped=lambda: self.stopped.append(clock.t),
            clock=clock,
            wall=lambda: datetime.fromtimestamp(clock.t, UTC),
            jitter=lambda: 0.0,
        )
        self.alive = True
        self.due = clock.t


def simulate(clock: Clock, replicas: list[Replica], until: float, events: dict[float, Any] | None = None) -> None:
    """Step time by 0.1 s; each live replica tries every retry period (and its deadline timer runs).
    Checks at every step that never two replicas may act."""
    events = dict(events or {})

    async def go() -> None:
        while clock.t < until:
            for at in [at for at in events if at <= clock.t]:
                events.pop(at)()
            for r in replicas:
                if r.alive:
                    r.elector._check_deadline()  # what the armed timer does
                if r.alive and clock.t >= r.due:
                    await r.elector.tick()
                    r.due = clock.t + r.elector.next_wait()
            acting = [r.elector.identity for r in replicas if r.alive and r.elector.may_act()]
            assert len(acting) <= 1, f"two replicas act at t={clock.t}: {acting}"
            clock.t = round(clock.t + 0.1, 6)
            await asyncio.sleep(0)  # tasks the events started run between steps

    asyncio.run(go())


def test_timing_refuses_settings_that_cannot_fence() -> None:
    with pytest.raises(TimingError, match="renew_deadline=15 must be less than lease_duration=15"):
        Timing(lease_duration=15, renew_deadline=15, retry_period=2)
    with pytest.raises(TimingError, match="retry_period=9 must be less than renew_deadline"):
        Timing(lease_duration=15, renew_deadline=10, retry_period=9)
    with pytest.raises(TimingError, match="lease_duration=0: expected a number of seconds > 0"):
        Timing(lease_duration=0)


def test_the_first_replica_creates_the_lease_and_acts_until_its_renew_deadline() -> None:
    clock = Clock()
    a = Replica(Store(clock), clock, "a")
    asyncio.run(a.elector.tick())
    assert a.started == [1000.0] and a.elector.may_act()
    lease = a.view.store.lease
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 15
    clock.t += 9.9
    assert a.elector.may_act()
    clock.t += 0.1  # renew_deadline after the start of the last successful renew: no more writes
    assert not a.elector.may_act()


def test_a_standby_measures_the_lease_on_its_own_clock_from_when_it_saw_the_record() -> None:
    """The holder's renewTime is hours old by the standby's wall clock (skew): it still waits a full
    lease_duration from its own first sight of the record, then takes over with a new transition."""
    clock = Clock()
    store = Store(clock)
    store.rv = 7
    old: dict[str, Any] = {
        "holderIdentity": "gone",
        "leaseDurationSeconds": 15,
        "renewTime": "2020-01-01T00:00:00.000000Z",
    }
    store.lease = {"metadata": {"name": "mf", "namespace": "ops", "resourceVersion": "7"}, "spec": old}
    b = Replica(store, clock, "b")
    simulate(clock, [b], until=1014.9)
    assert b.started == [], "took a lease that may still be held"
    simulate(clock, [b], until=1017.0)
    assert b.started and 1015.0 <= b.started[0] <= 1015.0 + TIMING.retry_period
    assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1


def test_a_partitioned_leader_stops_acting_before_the_standby_starts() -> None:
    clock = Clock()
    store = Store(clock)
    a, b = Replica(store, clock, "a"), Replica(store, clock, "b")
    b.due += 0.5

    def partition() -> None:
        a.view.down = True

    simulate(clock, [a, b], until=1060.0, events={1020.0: partition})
    assert a.started == [1000.0] and len(a.stopped) == 1, (a.started, a.stopped)
    assert len(b.started) == 1
    # a's last good renew started at 1018 (every 2 s from 1000): it stops at 1028; b may start at 1033 or later.
    assert a.stopped[0] == pytest.approx(1028.0)
    assert b.started[0] - a.stopped[0] >= TIMING.lease_duration - TIMING.renew_deadline
    assert b.started[0] <= 1018.0 + TIMING.lease_duration + 2 * TIMING.retry_period


def test_a_killed_leader_is_replaced_within_a_lease_and_a_retry_and_a_restart_stands_by() -> None:
    clock = Clock()
    store = Store(clock)
    a, b = Replica(store, clock, "a"), Replica(store, clock, "b")
    b.due += 1.0

    def kill() -> None:
        a.alive = False

    simulate(clock, [a, b], until=1040.0, events={1010.1: kill})
    assert len(b.started) == 1 and a.stopped == []  # killed: no callback runs, the process is gone
    assert (
        1010.0 + TIMING.lease_duration - TIMING.retry_period
        <= b.started[0]
        <= 1010.1 + TIMING.lease_duration + TIMING.retry_period
    )
    restarted = Replica(store, clock, "a2")
    simulate(clock, [b, restarted], until=1080.0)
    assert restarted.started == [] and b.stopped == []  # b renews; the new replica stays standby


def test_the_renew_deadline_counts_from_the_start_of_a_slow_write() -> None:
    clock = Clock()
    store = Store(clock)
    a = Replica(store, clock, "a")
    a.view.write_takes = 3.0  # the API answers 3 s after the request left
    asyncio.run(a.elector.tick())
    assert a.elector.may_act()
    clock.t = 1000.0 + TIMING.renew_deadline
    assert not a.elector.may_act()


def test_of_two_standbys_taking_a_free_lease_one_wins() -> None:
    clock = Clock()
    store = Store(clock)
    a, b = Replica(store, clock, "a"), Replica(store, clock, "b")

    async def race() -> None:
        await asyncio.gather(a.elector.tick(), b.elector.tick())

    asyncio.run(race())
    assert len(a.started) + len(b.started) == 1
    assert a.elector.may_act() != b.elector.may_act()


def test_release_hands_over_at_the_next_try_and_stops_acting_first() -> None:
    clock = Clock()
    store = Store(clock)
    a, b = Replica(store, clock, "a"), Replica(store, clock, "b")
    b.due += 1.0
    order: list[str] = []

    async def work_done() -> None:
        order.append("work stopped" if not a.elector.may_act() else "work still allowed")

    def release() -> None:
        asyncio.get_running_loop().create_task(a.elector.release(before=work_done))
        a.alive = False

    simulate(clock, [a, b], until=1030.0, events={1010.0: release})
    assert order == ["work stopped"] and len(a.stopped) == 1 and a.stopped[0] <= 1010.1
    assert b.started and b.started[0] <= 1010.0 + TIMING.retry_period + 0.1


def test_the_timer_stops_a_leader_whose_renew_hangs() -> None:
    """Real clock, short timings: the renew never returns, and the leader stops at the deadline anyway."""
    stopped: list[float] = []

    class Hanging:
        def __init__(self) -> None:
            self.hang = False
            self.lease: dict[str, Any] | None = None

        async def get(self) -> dict[str, Any] | None:
            if self.hang:
                await asyncio.Event().wait()
            return self.lease

        async def write(self, body: dict[str, Any]) -> dict[str, Any]:
            self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
            return self.lease

    async def go() -> float:
        store = Hanging()
        timing = Timing(lease_duration=0.9, renew_deadline=0.6, retry_period=0.1)
        e = Elector(store, "ops", "mf", "a", timing, lambda: None, lambda: stopped.append(time.monotonic()))
        await e.tick()
        start = time.monotonic()
        store.hang = True
        renew = asyncio.get_running_loop().create_task(e.tick())
        await asyncio.sleep(1.0)
        assert not renew.done(), "the hanging renew returned"
        renew.cancel()
        return start

    start = asyncio.run(go())
    assert len(stopped) == 1 and 0.4 < stopped[0] - start < 0.9, stopped


def test_writes_are_fenced_but_reads_are_not() -> None:
    config = k8s_client.Configuration()
    config.host = "http://127.0.0.1:9"
    leading = [False]

    async def go() -> None:
        kube = Kube(config, None)  # type: ignore[arg-type]  # a refused write never reaches the session
        kube.fence = lambda: leading[0]
        with pytest.raises(NotLeading, match="not the leader"):
            await kube.patch_deployment("ml", "cats-dogs", {"spec": {}})
        with pytest.raises(NotLeading):
            await kube.create_job({"metadata": {"namespace": "ml", "name": "j"}})
        with pytest.raises(AttributeError):  # a read goes on to the (absent) session
            await kube.get_deployment("ml", "cats-dogs")

    asyncio.run(go())


def test_a_standby_queue_reconciles_nothing_until_resumed_and_stops_when_paused() -> None:
    script = Script()

    async def go() -> None:
        r = make(script)
        r.active = False
        r.kick(("ml", "cats"))
        r.kick(("ml", "dogs"))
        await settle(r)
        assert script.calls == 0
        r.resume()
        await settle(r)
        assert script.calls == 2
        script.hang = True  # the next reconcile never returns until cancelled
        r.kick(("ml", "cats"))
        await asyncio.sleep(0.05)
        assert script.calls == 3 and r._tasks
        r.pause()
        await asyncio.sleep(0.05)
        assert not r._tasks and not r._timers, "a reconcile in flight survived the pause"
        r.kick(("ml", "cats"))
        await asyncio.sleep(0.05)
        assert script.calls == 3
        await r.close()

    asyncio.run(go())


def test_leader_election_settings(tmp_path: Path) -> None:
    assert not Settings.from_env({}).leader_election  # off unless asked: one replica acts at once, as before
    sa = tmp_path / "namespace"
    sa.write_text("ops\n")
    s = Settings.from_env(
        {"FRESHNESS_LEADER_ELECTION": "true", "FRESHNESS_LEASE_DURATION": "6", "FRESHNESS_RENEW_DEADLINE": "4"}, sa
    )
    assert (s.lease_namespace, s.lease_name, s.timing) == ("ops", "model-freshness-operator", Timing(6, 4, 2))
    assert s.leader_identity and s.leader_identity != Settings.from_env({}, sa).leader_identity
    with pytest.raises(SettingsError, match="FRESHNESS_LEASE_NAMESPACE is empty"):
        Settings.from_env({"FRESHNESS_LEADER_ELECTION": "1"}, tmp_path / "missing")
    with pytest.raises(
        SettingsError, match=r"FRESHNESS_RENEW_DEADLINE=20\.0 must be less than FRESHNESS_LEASE_DURATION"
    ):
        Settings.from_env({"FRESHNESS_RENEW_DEADLINE": "20"})
    with pytest.raises(SettingsError, match="FRESHNESS_RETRY_PERIOD='2s': expected a number of seconds"):
        Settings.from_env({"FRESHNESS_RETRY_PERIOD": "2s"})


def test_one_replica_without_election_acts_at_once() -> None:
    from freshness_operator.leadership import Leadership

    metrics = Metrics()
    queue = make(Script())
    Leadership(Settings(), queue, metrics, None)
    assert queue.active and metrics.registry.get_sample_value("modelfreshness_leader") == 1.0
