"""The pod network's bridge when two runners on one machine make it at the same moment (the demo runs
beside the test suite, tests/demo/background.py). Touches the host's network: a bridge of its own."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from hack.kubelet import network


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
def test_runners_racing_to_make_the_bridge_all_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bridge and subnet of the test's own, so the pods of a cluster running now keep theirs.
    bridge = f"mft{uuid.uuid4().hex[:8]}"
    subnet = ipaddress.IPv4Network("10.87.0.0/16")
    monkeypatch.setattr(network, "BRIDGE", bridge)
    monkeypatch.setattr(network, "SUBNET", subnet)
    monkeypatch.setattr(network, "GATEWAY", next(subnet.hosts()))
    try:
        runners = [network.Pods(block=i + 1) for i in range(8)]
        with ThreadPoolExecutor(len(runners)) as pool:
            errors = [f.exception() for f in [pool.submit(r._bridge) for r in runners]]
        assert errors == [None] * len(runners), errors
        addr = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True).stdout
        assert addr.count(" inet ") == 1 and " 10.87.0.1/16 " in addr, addr
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
