#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for the drift-report screenshot test
# (tests/trainer/test_report_browser.py), only if it is missing.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
