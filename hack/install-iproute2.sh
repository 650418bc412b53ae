#!/usr/bin/env bash
# Installs iproute2 (`ip`: network namespaces, veth pairs, a bridge) for the dev kubelet's pod
# networking (hack/kubelet/network.py), only if it is missing.
set -euo pipefail

if command -v ip >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
ip -V
