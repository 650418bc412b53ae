"""Shared parts of the operator benchmarks (scale.py, time_to_fresh.py, failover.py), on ``testkit``.

- ``testkit.api``: ``Api``/``Watch``, a small JSON client and a list-then-watch loop that stamps
  every event with the time it arrived; ``testkit.wait.wait_for`` (here also ``wait_until``).
- ``benchmarks.common.cluster``: ``cluster()``, the local control plane (hack/localcluster) or an
  existing cluster; benchmark namespaces.
- ``benchmarks.common.completer``: ``Completer`` plays the step containers; the benchmarks' manifests
  and result documents.
- ``benchmarks.common.identity``: ``Identity``, a ServiceAccount plus FlowSchemas per operator under
  test, so that the API server counts its requests by verb.
- ``benchmarks.common.processes``: ``Process``/``ProcStats``, the operators as subprocesses.
- ``benchmarks.common.numbers``: percentiles, ratios, times and tables (pure).

This module only gathers those names, so that ``from benchmarks.common import X`` keeps working.
Everything touches the API, a process or the filesystem unless its docstring says pure.
"""

from __future__ import annotations

from benchmarks.common.cluster import CRD, REPO, Cluster, apply_crd, cluster, create_namespace, delete_namespace
from benchmarks.common.completer import (
    Completer,
    ResultFor,
    container_arg,
    drift_doc,
    model_deployment,
    package_doc,
    serving_deployment,
    train_doc,
)
from benchmarks.common.identity import VERBS, Identity, delete_identity, diff, make_identity, request_counts
from benchmarks.common.numbers import fmt, format_time, parse_time, percentile, ratio, table
from benchmarks.common.processes import TRAINER_IMAGE, Process, ProcStats, baseline_operator, our_operator
from testkit.api import Api, ApiError, Watch, create_all, patch_all
from testkit.labels import CHECK as CHECK_LABEL
from testkit.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from testkit.labels import MANAGED_BY, MANAGER
from testkit.labels import STEP as STEP_LABEL
from testkit.manifests import DIGEST, SERVING_IMAGE, mdeps_path
from testkit.net import free_port
from testkit.wait import wait_for
from testkit.wait import wait_for as wait_until

__all__ = [
    "CHECK_LABEL",
    "CRD",
    "DEPLOYMENT_LABEL",
    "DIGEST",
    "MANAGED_BY",
    "MANAGER",
    "REPO",
    "SERVING_IMAGE",
    "STEP_LABEL",
    "TRAINER_IMAGE",
    "VERBS",
    "Api",
    "ApiError",
    "Cluster",
    "Completer",
    "Identity",
    "ProcStats",
    "Process",
    "ResultFor",
    "Watch",
    "apply_crd",
    "baseline_operator",
    "cluster",
    "container_arg",
    "create_all",
    "create_namespace",
    "delete_identity",
    "delete_namespace",
    "diff",
    "drift_doc",
    "fmt",
    "format_time",
    "free_port",
    "make_identity",
    "mdeps_path",
    "model_deployment",
    "our_operator",
    "package_doc",
    "parse_time",
    "patch_all",
    "percentile",
    "ratio",
    "request_counts",
    "serving_deployment",
    "table",
    "train_doc",
    "wait_for",
    "wait_until",
]
