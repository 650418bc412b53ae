"""Scale: N ModelDeployments, our operator against the simplest competent kopf design, same work.

    .venv/bin/python -m benchmarks.scale                           # N = 100, 300, 1000; 3 reps each
    .venv/bin/python -m benchmarks.scale --sizes 1000 --reps 3 --json out.json   # + out.png
    .venv/bin/python -m benchmarks.scale --ours-src ../wt-old      # + "ours (before)" from that tree
    .venv/bin/python -m benchmarks.scale --sizes 10000 --reps 1 --serving paused --lead 600
    .venv/bin/python -m benchmarks.scale --smoke                   # CI: N=5, 2 reps, correctness only
    .venv/bin/python -m benchmarks.scale.startup --n 1000          # start-up alone (startup.py)

Modules: ``model`` (configuration, results), ``tracker`` (this benchmark's watches), ``bench``
(seeding, the wipe, the windows), ``report`` (tables, figure, JSON, smoke checks), ``__main__``.

Per size, on a fresh local control plane (or the cluster of ``--kubeconfig``): N serving
Deployments (one kwok pod each; ``--serving paused``: none) and N ModelDeployments. The drift
interval is N / ``--rate``, so the work (drift checks per second) is the same at every N and only
the object count grows (or pass a fixed ``--interval``). The completer (benchmarks/common) finishes
every drift pod with "no drift". Then ``--reps`` repetitions; in each, every operator gets one busy
window alone, the order alternating between repetitions (ours first, then the baseline first, ...).
Before every window the slate is wiped the same way: drift Jobs deleted, each object's status reset
to one seeded last check (spread over one interval by a hash of its name, the baseline's
first-check jitter, with the baseline's epoch set to match), so every window sees the SAME checks
fall due at the same offsets (the "first checks due" row): ``--lead`` s after the wipe ends, the
window opening ``--settle`` s later. Operators:

- ours: ``python -m freshness_operator``; ours (before): the same from ``--ours-src`` (PYTHONPATH);
- baseline (benchmarks/baseline_operator.py): async kopf timer per object listing the object's
  Jobs on every tick, one shared aiohttp client.

Then idle, once per size: every interval set to 24h; the baseline starts, and our operator
restarts twice on the same objects (it rebuilds its status from the Jobs): first on specs all
changed while it was down (each object's status is written again), then plainly (nothing to
write); the baseline and the second ours are measured with nothing due. A restart settles when
our operator has reconciled every object once, which its own /metrics show (each reconcile sets
the object's ``modelfreshness_phase`` series; a new process has none): the time from its start to
the last, and its API requests until then.

Measured per window: RSS (end and peak) and CPU of the operator process (/proc), drift-due ->
Job-created latency, API requests per minute by verb from the API server's own metrics (a
FlowSchema per verb for the operator's ServiceAccount). The due time of a check is the operator's
own: ours publishes it in ``status.drift.nextCheckTime``; the baseline's is the previous Job's
creationTimestamp plus the interval. A check cannot start before the previous one has finished,
so the latency is ``Job seen - max(due, previous Job seen finished)``, both as seen by this
benchmark's watches: an upper bound, since it includes the watch delivery. Checks due but never
started by the window's end count with their overdue time (a lower bound, marked ≥). Tables
show the median over repetitions and [min, max].
"""
