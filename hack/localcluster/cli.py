"""``python -m hack.localcluster up|down|env``: the local control plane by hand (``make cluster-up``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hack.localcluster.cluster import down, up
from hack.localcluster.state import DEFAULT_STATE_DIR, ClusterError, ClusterInfo


def _print_env(info: ClusterInfo) -> None:
    print(f"export KUBECONFIG={info.kubeconfig}")
    print(f"export PATH={info.bin_dir}:$PATH")
    print(f"# logs: {info.log_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.localcluster", description="A real local Kubernetes control plane on 127.0.0.1."
    )
    parser.add_argument("command", choices=["up", "down", "env"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--nodes", type=int, default=2, help="kwok nodes to create (default 2)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            start = time.monotonic()
            info = up(args.state_dir, nodes=args.nodes)
            print(f"# local control plane up in {time.monotonic() - start:.1f}s at {info.server}", file=sys.stderr)
            _print_env(info)
        elif args.command == "down":
            stopped = down(args.state_dir)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
        else:
            loaded = ClusterInfo.load(args.state_dir)
            if loaded is None:
                print(f"no local cluster state in {args.state_dir}; run `up` first", file=sys.stderr)
                return 1
            _print_env(loaded)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
