#!/usr/bin/env bash
# Installs a Debian package only if its command is missing: `apt-install.sh COMMAND PACKAGE`.
# Used by `make setup` for chromium (the drift-report screenshot test,
# tests/trainer/test_report_browser.py) and iproute2 (`ip`: the dev kubelet's pod networking,
# hack/kubelet/network.py). Prints the installed command's version.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 COMMAND PACKAGE" >&2
  exit 2
fi
COMMAND="$1"
PACKAGE="$2"

if command -v "$COMMAND" >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$PACKAGE" >/dev/null
"$COMMAND" --version 2>/dev/null || "$COMMAND" -V
