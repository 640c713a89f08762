#!/bin/sh
# Runs one test file RUNS times in a row while another process keeps one core busy (`yes`),
# stopping at the first failed run; for flakes that only show under load.
#   tests/soak.sh RUNS FILE [deno test args...]
#   e.g. tests/soak.sh 20 tests/presence_modes_e2e_test.ts --filter "redis cluster"
set -u
runs=$1 file=$2
shift 2
logs=$(mktemp -d /tmp/soak.XXXXXX)
yes >/dev/null &
busy=$!
trap 'kill $busy' EXIT INT TERM
i=1
while [ "$i" -le "$runs" ]; do
  start=$(date +%s)
  if ! deno test -A "$file" "$@" >"$logs/run-$i.log" 2>&1; then
    echo "run $i of $runs FAILED ($(($(date +%s) - start)) s): $logs/run-$i.log"
    grep -E "FAILED|Error:|still holds" "$logs/run-$i.log" | head -20
    exit 1
  fi
  echo "run $i of $runs ok ($(($(date +%s) - start)) s): $(grep -Eo '[0-9]+ passed \| [0-9]+ failed' "$logs/run-$i.log")"
  i=$((i + 1))
done
echo "all $runs runs passed"
