#!/usr/bin/env bash
# Installs promtool and the Prometheus server (Debian package `prometheus`), only if one is missing:
# promtool for the alert-rule tests, the server binary for the tests that start their own throw-away
# Prometheus (hack/prometheus.py). No system service may start, so a temporary policy-rc.d tells
# invoke-rc.d to refuse service starts during the install (exit 101 = "action forbidden").
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"

POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=0
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 0755 "$POLICY"
  ADDED_POLICY=1
fi
cleanup() { [[ "$ADDED_POLICY" -eq 0 ]] || $SUDO rm -f "$POLICY"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Belt and braces: if a service manager started it anyway, stop only that service.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
fi

promtool --version
