"""Each pod's hostname and /etc/hosts, as a kubelet gives them, plus the names cluster DNS would serve.

A kubelet sets a pod's hostname (``spec.hostname``, else its name) in the pod's own UTS namespace
and writes its ``/etc/hosts``: localhost and ``<ip> <hostname>.<subdomain>.<ns>.svc.cluster.local
<hostname>`` when the pod has a ``subdomain``. Cluster DNS then answers for the other pods behind the
headless Service named like the subdomain, from that Service's EndpointSlices. There is no cluster
DNS here, so the dev kubelet writes those answers into the same file: one line per endpoint with a
hostname, ``<ip> <host>.<svc>.<ns>.svc.cluster.local <host>.<svc>``, refreshed every second while
the pod runs (``follow``); the short ``<host>.<svc>`` is the name a pod's search path would complete.
Pure, except ``follow`` (reads the API through ``list_slices``, writes the file in place, so the
bind mount in the pod sees every version).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

DOMAIN = "svc.cluster.local"
BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
ListSlices = Callable[[str, str], list[dict[str, Any]]]  # (namespace, service) -> EndpointSlices as dicts


def hostname(pod: Mapping[str, Any]) -> str:
    """The pod's hostname: ``spec.hostname``, else its name (cut to a DNS label, as the kubelet does)."""
    name = pod["spec"].get("hostname") or pod["metadata"]["name"]
    return str(name)[:63].rstrip("-.")


def render(pod: Mapping[str, Any], ip: str, slices: Iterable[Mapping[str, Any]] = ()) -> str:
    """The pod's /etc/hosts: its own line, then the endpoints of its subdomain's Service."""
    host, ns, sub = hostname(pod), pod["metadata"]["namespace"], pod["spec"].get("subdomain")
    own = f"{ip}\t{host}.{sub}.{ns}.{DOMAIN} {host}.{sub} {host}\n" if sub else f"{ip}\t{host}\n"
    lines = []
    for s in slices:
        for ep in s.get("endpoints") or []:
            peer, addresses = ep.get("hostname"), ep.get("addresses") or []
            if peer and addresses and peer != host:
                lines.append(f"{addresses[0]}\t{peer}.{sub}.{ns}.{DOMAIN} {peer}.{sub}\n")
    return BASE + own + "".join(sorted(set(lines)))


def start(pod: Mapping[str, Any], ip: str, path: Path, api: Any) -> threading.Event:
    """Write the pod's /etc/hosts at ``path`` and keep it current (``follow``) until the returned
    event is set. ``api``: a kubernetes ``CoreV1Api`` (its client reads the EndpointSlices)."""
    path.write_text(render(pod, ip))
    stop = threading.Event()
    threading.Thread(target=follow, args=(pod, ip, path, endpoint_slices(api), stop), daemon=True).start()
    return stop


def endpoint_slices(api: Any) -> ListSlices:
    from kubernetes import client

    def list_slices(namespace: str, service: str) -> list[dict[str, Any]]:
        found = client.DiscoveryV1Api(api.api_client).list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}")
        return list(api.api_client.sanitize_for_serialization(found.items))

    return list_slices


def follow(pod: Mapping[str, Any], ip: str, path: Path, list_slices: ListSlices, stop: threading.Event,
           period: float = 1.0) -> None:
    """Rewrite ``path`` whenever the subdomain's endpoints change, until ``stop``; a pod without a
    subdomain keeps the file it was started with."""
    sub = pod["spec"].get("subdomain")
    if not sub:
        return
    last = path.read_text()
    while not stop.wait(period):
        try:
            text = render(pod, ip, list_slices(pod["metadata"]["namespace"], sub))
        except Exception:  # an API hiccup: keep the last answer, as a DNS cache would
            continue
        if text != last:
            with path.open("r+") as f:  # in place: the pod's bind mount follows the inode, not the name
                f.write(text)
                f.truncate()
            last = text
