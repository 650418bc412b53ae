"""The ModelDeployment a child Job, Event or patch belongs to: its identity, nothing else. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment the children belong to (their ownerReference and labels name it)."""

    name: str
    namespace: str
    uid: str
