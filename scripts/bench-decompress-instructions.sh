#!/usr/bin/env bash
# Decoding a compressed batch, before and after a change, side by side in one run: instructions
# per record (callgrind: repeatable on a loaded machine) and allocations per batch (counted by
# the example's allocator) for each case of the batch_decode bench (1000 x 100 B and 1024 x 1 KiB
# JSON records; none, gzip, snappy, lz4, zstd).
#
# BASE (default: main) is built from `git archive` into a scratch directory with the current
# protocol/examples/decode_instructions.rs copied in, sharing CARGO_TARGET_DIR, so only the
# workspace's own crates build twice. Each case runs N iterations (default 20) and 0; the
# difference / (N * records) is one record's cost, setup excluded. FEATURES goes to cargo build:
# FEATURES=flate2/zlib-rs measures gzip with the zlib-rs backend, which the `kingest` binary gets
# (parquet enables it) where a client-only build has miniz_oxide.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-main}
N=${N:-20}
CASES=${CASES:-"none/100 gzip/100 snappy/100 lz4/100 zstd/100 none/1024 gzip/1024 snappy/1024 lz4/1024 zstd/1024"}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # $1: source tree; prints the example's path
  (cd "$1" && cargo build --release -p kingest-protocol --example decode_instructions \
    ${FEATURES:+--features "$FEATURES"} --message-format=json 2>/dev/null) \
    | sed -n 's/.*"executable":"\([^"]*decode_instructions[^"]*\)".*/\1/p' | tail -1
}

mkdir -p "$work/base"
git archive "$BASE" | tar -x -C "$work/base"
mkdir -p "$work/base/protocol/examples"
cp protocol/examples/decode_instructions.rs "$work/base/protocol/examples/"
bin=$(build "$work/base"); [ -x "$bin" ] || { echo "could not build $BASE" >&2; exit 1; }
cp "$bin" "$work/before"
bin=$(build .); [ -x "$bin" ] || { echo "could not build the work tree" >&2; exit 1; }
cp "$bin" "$work/after"

instructions() { # $1: binary, $2: codec, $3: size, $4: iterations
  local out="$work/callgrind.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" "$2" "$3" "$4" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
per_record() { # $1: binary, $2: codec, $3: size, $4: records
  local base full
  base=$(instructions "$1" "$2" "$3" 0)
  full=$(instructions "$1" "$2" "$3" "$N")
  echo "($full - $base) / ($N * $4)" | bc -l
}
allocs() { # $1: binary, $2: codec, $3: size; prints "calls bytes"
  "$1" "$2" "$3" "$N" | awk '{print $2, $4}'
}

echo "BASE=$BASE ($(git rev-parse --short "$BASE")) vs work tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- protocol || echo ', modified')), N=$N"
printf '| %-11s | %12s | %12s | %6s | %14s | %14s | %16s | %16s |\n' case \
  "instr/rec before" "instr/rec after" "after/before" "allocs/batch before" "allocs/batch after" \
  "bytes/batch before" "bytes/batch after"
echo '|---|---:|---:|---:|---:|---:|---:|---:|'
for c in $CASES; do
  codec=${c%/*}; size=${c#*/}
  records=$([ "$size" = 100 ] && echo 1000 || echo 1024)
  b=$(per_record "$work/before" "$codec" "$size" "$records")
  a=$(per_record "$work/after" "$codec" "$size" "$records")
  read -r ab bb <<<"$(allocs "$work/before" "$codec" "$size")"
  read -r aa ba <<<"$(allocs "$work/after" "$codec" "$size")"
  printf '| %-11s | %12.0f | %12.0f | %6.2fx | %14s | %14s | %16s | %16s |\n' "$codec ${size}B" \
    "$b" "$a" "$(echo "$a / $b" | bc -l)" "$ab" "$aa" "$bb" "$ba"
done
