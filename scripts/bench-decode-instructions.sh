#!/usr/bin/env bash
# Instructions per record of each ingest decoding case (ingest/benches/decode.rs), counted by
# callgrind: repeatable on a loaded machine, where criterion's wall-clock figures wander.
# Each case runs N iterations of 10,000 records and 0 iterations; the difference / (N*10,000)
# is the cost of one record, setup excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
bin=$(cargo bench -p kingest --bench decode --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*decode-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the decode bench" >&2; exit 1; }
count() {
  local out
  out=$(mktemp)
  KINGEST_BENCH_CASE=$1 KINGEST_BENCH_ITERS=$2 valgrind --tool=callgrind \
    --callgrind-out-file="$out" "$bin" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
printf '%-34s %14s\n' case instructions/record
for case in json/kingest_fetch_to_arrow json/arrow_json_fetch_to_arrow json/arrow_json_bulk \
  csv/kingest_fetch_to_arrow json/kingest_fetch_to_parquet csv/kingest_fetch_to_parquet; do
  base=$(count "$case" 0)
  full=$(count "$case" "$N")
  printf '%-34s %14.0f\n' "$case" "$(echo "($full - $base) / ($N * 10000)" | bc -l)"
done
