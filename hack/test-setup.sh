#!/usr/bin/env bash
# `make test`'s setup in two lanes at once: the Go builds (hack/build-binaries.sh with Kueue:
# CPU-bound, minutes when cold) in the background, and `make ARGS...` (the Python install, the Debian
# packages one after another since apt holds a lock, then lint) in the foreground. A cold setup takes
# the longer lane's time rather than the sum. Exits non-zero if either lane failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash hack/build-binaries.sh kueue >/dev/null &
go=$!
make --no-print-directory "$@"
rc=$?
if ! wait "$go"; then
  echo "hack/build-binaries.sh kueue failed (its log is above)" >&2
  rc=1
fi
exit "$rc"
