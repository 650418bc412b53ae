#!/usr/bin/env bash
# Samples this machine's idle CPU share every INTERVAL seconds (default 10) until stopped, printing
# "<epoch seconds> <idle share of all cores since the last line> <1-min load average>" per line.
# Run beside `make test` to see where the suite leaves the CPU idle (tests/background.py uses it):
#   bash benchmarks/cpu_idle.sh > idle.log &  make test;  kill %1
#   awk '{s += $2; n++} END {print s / n}' idle.log     # mean idle share over the run
set -euo pipefail
INTERVAL="${1:-10}"
read -ra prev < <(head -1 /proc/stat)
while sleep "$INTERVAL"; do
  read -ra cur < <(head -1 /proc/stat)
  total=0
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + cur[i] - prev[i] )); done
  idle=$(( cur[4] - prev[4] + cur[5] - prev[5] ))  # idle + iowait
  awk -v t="$(date +%s)" -v i="$idle" -v n="$total" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "%d %.2f %s\n", t, (n > 0 ? i / n : 0), l }'
  prev=("${cur[@]}")
done
