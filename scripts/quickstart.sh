#!/usr/bin/env bash
# The README's "run it" command: the whole thing on one machine, with nothing but cargo.
#
# Builds kingest, starts a local broker (`kingest dev-broker`, in-memory, on a free port)
# unless --brokers points at a real cluster, generates 100,000 events like the Pinot
# quickstart's {"ts", "uuid", "count"}, ingests them into ./data as Parquet with
# `kingest run --until-eof`, and prints the result with `kingest inspect` (the columns, the
# row count, each file's Kafka offsets, the first rows).
#
# The binary is wherever cargo put it: the script asks cargo (so CARGO_TARGET_DIR and a
# `build.target-dir` setting are honoured) rather than assuming ./target.
#
# Usage: scripts/quickstart.sh [--brokers HOST:PORT] [--events N] [--out DIR] [--profile P]
#   --out DIR     where the Parquet files go (default ./data); the Parquet files already there
#                 are deleted first (a fresh broker starts from offset 0 again), and a directory
#                 holding anything else is refused
#   --profile P   the cargo profile to build (default release; tests use dev, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

brokers=""
events=100000
out=./data
profile=release
usage() { echo "usage: $0 [--brokers HOST:PORT] [--events N] [--out DIR] [--profile P]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --brokers) brokers="$2" ;;
    --events) events="$2" ;;
    --out) out="$2" ;;
    --profile) profile="$2" ;;
    *) usage ;;
  esac
  shift 2
done
log() { printf 'quickstart: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# Cargo says where the binary is in its compiler-artifact message.
kingest=$(cargo build --profile "$profile" -p kingest --bin kingest \
  --message-format=json-render-diagnostics \
  | sed -n 's/^{"reason":"compiler-artifact".*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -n "$kingest" ] && [ -x "$kingest" ] || die "cargo built no kingest executable"
log "using $kingest"

topic="quickstart-events"
work=$(mktemp -d)
cleanup() {
  if [ -n "${broker_pid:-}" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$brokers" ]; then
  # Port 0: the broker takes a free port and prints it.
  "$kingest" dev-broker --port 0 --topic "$topic:3" >"$work/broker.out" 2>"$work/broker.log" &
  broker_pid=$!
  for _ in $(seq 100); do grep -q '^bootstrap.servers=' "$work/broker.out" && break; sleep 0.1; done
  brokers=$(sed -n 's/^bootstrap.servers=//p' "$work/broker.out")
  [ -n "$brokers" ] || die "kingest dev-broker did not start: $(cat "$work/broker.log")"
else
  "$kingest" topics --brokers "$brokers" create "$topic" --partitions 3 || true
fi

# A fresh in-memory broker starts from offset 0: start the output afresh too, or the sink's
# recorded offsets would skip the new events.
if [ -d "$out" ]; then
  other=$(find "$out" -mindepth 1 ! -name '*.parquet' ! -name '.*.parquet.tmp' -print -quit)
  [ -z "$other" ] || die "refusing to clear $out: it holds more than Parquet files ($other)"
  find "$out" -mindepth 1 \( -name '*.parquet' -o -name '.*.parquet.tmp' \) -delete
fi
group="quickstart-$(date +%s)"
cat >"$work/job.toml" <<TOML
[source]
brokers = "$brokers"
topics = ["$topic"]
group = "$group"
start = "earliest"

[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "uuid"
type = "string"

[[columns]]
name = "count"
type = "int64"

[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[sink]
type = "parquet"
path = "$out"
TOML

"$kingest" produce --brokers "$brokers" --topic "$topic" --generate "$events"
"$kingest" run "$work/job.toml" --until-eof
"$kingest" inspect "$out" --rows 5
