"""A network namespace per pod with its own IP on a bridge (iproute2). Touches the host's network.

The bridge ``mf-pods0`` holds the gateway 10.88.0.1/16; each pod gets a named netns
(``ip netns``), a veth pair with ``eth0`` inside, the next free address of this runner's own /24 of
10.88.0.0/16 (chosen from its process id: runners of parallel test sessions on one machine share
the bridge, and must not hand out the same address) and a default route through the bridge, so
replicas can listen on the same port and this machine (its probes, a client) reaches each at its
pod IP. Pods reach no other network: no NAT, and this
machine's loopback (the API server) is not theirs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import threading

BRIDGE = "mf-pods0"
SUBNET = ipaddress.IPv4Network("10.88.0.0/16")
GATEWAY = next(SUBNET.hosts())


class NetworkError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _bridge_has_gateway() -> bool:
    argv = ["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode == 0 and f" {GATEWAY}/{SUBNET.prefixlen} " in proc.stdout


def available() -> str | None:
    """Why pod networking cannot work here, or None."""
    if shutil.which("ip") is None:
        return "iproute2 is missing (bash hack/apt-install.sh ip iproute2)"
    return None


class Pods:
    """Hands out pod IPs and makes and removes the pods' namespaces."""

    def __init__(self, block: int | None = None) -> None:
        self.lock = threading.Lock()
        self.used: set[ipaddress.IPv4Address] = {GATEWAY}
        self.ready = False
        third = block if block is not None else 1 + os.getpid() % 254  # 10.88.1.0/24 .. 10.88.254.0/24
        self.block = ipaddress.IPv4Network(f"10.88.{third}.0/24")

    def _bridge(self) -> None:
        if self.ready:
            return
        # Another runner on this machine (the demo beside the test suite) may make it at the same
        # moment: whoever loses the race finds it made, with its address.
        if not _bridge_has_gateway():
            with contextlib.suppress(NetworkError):
                _ip("link", "add", BRIDGE, "type", "bridge")
            with contextlib.suppress(NetworkError):
                _ip("addr", "add", f"{GATEWAY}/{SUBNET.prefixlen}", "dev", BRIDGE)
            if not _bridge_has_gateway():
                raise NetworkError(f"could not make bridge {BRIDGE} with address {GATEWAY}/{SUBNET.prefixlen}")
        _ip("link", "set", BRIDGE, "up")
        self.ready = True

    def add(self, key: str) -> tuple[str, str]:
        """Create pod ``key``'s namespace; returns (its /run/netns path, its IP)."""
        with self.lock:
            self._bridge()
            ip = next(a for a in self.block.hosts() if a not in self.used)
            self.used.add(ip)
        ns, host_end = f"mf-{key}", f"mfv{key}"[:15]
        _ip("netns", "add", ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", host_end, "master", BRIDGE, "up")
        _ip("-n", ns, "addr", "add", f"{ip}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", str(GATEWAY))
        return f"/run/netns/{ns}", str(ip)

    def remove(self, key: str, ip: str) -> None:
        """Delete the namespace (its veth pair goes with it) and free the IP."""
        subprocess.run(["ip", "netns", "del", f"mf-{key}"], capture_output=True, check=False)
        with self.lock:
            self.used.discard(ipaddress.IPv4Address(ip))
