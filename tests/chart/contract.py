"""The RBAC table of docs/contracts.md, parsed, so the chart is checked against the agreed text.

Pure apart from reading the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.chart.tools import REPO

CONTRACTS = REPO / "docs" / "contracts.md"
CRD_GROUP = "apiextensions.k8s.io"


@dataclass(frozen=True)
class RbacRow:
    group: str
    resource: str
    verbs: frozenset[str]
    cluster_wide_only: bool
    own_namespace_only: bool = False  # the leader Lease: a Role in the release namespace, never cluster-wide

    @property
    def cluster_scoped(self) -> bool:
        return self.group == CRD_GROUP or self.resource == "namespaces"


def rbac_table(path: Path = CONTRACTS) -> list[RbacRow]:
    """Rows of the table under the '## RBAC ...' heading: | apiGroup | resource | verbs |."""
    text = path.read_text()
    section = text.split("## RBAC", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("apiGroup", "") or set(cells[0]) <= {"-"}:
            continue
        group = cells[0].strip('"')
        verbs_cell = cells[2]
        # "(cluster-wide mode, or FRESHNESS_NAMESPACES with globs ...)": the chart's namespaces mode
        # takes exact names only (it creates a Role in each), so for the chart this row is cluster-wide only.
        cluster_only = "cluster-wide mode" in verbs_cell
        own_only = "operator's own namespace only" in verbs_cell
        verbs = re.sub(r"\(.*\)", "", verbs_cell)
        names = frozenset(v.strip() for v in verbs.split(",") if v.strip())
        rows.append(RbacRow(group, cells[1], names, cluster_only, own_only))
    assert rows, f"no RBAC table found in {path}"
    return rows


def as_triples(rules: list[dict]) -> set[tuple[str, str, str]]:
    """Expand Kubernetes PolicyRules into (apiGroup, resource, verb) triples."""
    out = set()
    for rule in rules:
        assert not rule.get("resourceNames"), rule
        assert not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    out.add((group, resource, verb))
    return out


def row_triples(rows: list[RbacRow]) -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, v) for r in rows for v in r.verbs}
