#!/usr/bin/env bash
# `make test`'s setup in two lanes at once: the Go builds (hack/build-binaries.sh: CPU-bound, minutes
# when cold) in the background, and `make ARGS...` (the Python install, the Debian packages one after
# another since apt holds a lock, then lint) in the foreground. A cold setup takes the longer lane's
# time rather than the sum; each lane's time is printed. Exits non-zero if either lane failed.
# Kueue is not built here: pytest's session builds it beside the suite (tests/conftest.py).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
{ bash hack/build-binaries.sh >/dev/null; rc=$?; echo "[test-setup] Go lane done in $(( $(date +%s) - start )) s" >&2; exit "$rc"; } &
go=$!
make --no-print-directory "$@"
rc=$?
echo "[test-setup] Python, Debian packages and lint done in $(( $(date +%s) - start )) s" >&2
if ! wait "$go"; then
  echo "hack/build-binaries.sh failed (its log is above)" >&2
  rc=1
fi
exit "$rc"
