#!/usr/bin/env bash
# The Parquet sink into S3 (moto) against a local directory, same job and data, side by side in
# one run; then `kingest compact` of over a thousand small files for every sink, local and S3
# (scripts/bench-compact.sh). Prints Markdown tables for BENCHMARKS.md.
#
# Usage: scripts/bench-objstore.sh [RECORDS] [RUNS]      (defaults 1000000 and 3)
#        COMPACT_RECORDS (default 250000): the records written as small files for compaction.
#
# A release `kingest`, its in-memory dev-broker (the broker is the same for both sides, and
# not what is measured), `kingest produce --generate` events like the quickstart's, and
# moto_server (scripts/setup.sh installs it). Each run of each side is its own group and its
# own empty destination, the sides alternating; every run is printed, not the best.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
RUNS=${2:-3}
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p kingest --bin kingest
K=${CARGO_TARGET_DIR:-$PWD/target}/release/kingest
WORK=$(mktemp -d)
BROKER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$K" dev-broker --port "$BROKER_PORT" --topic events:4 >"$WORK/broker.log" 2>&1 &
BROKER=$!
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
trap 'kill $BROKER $MOTO 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/" && break
  sleep 0.1
done
curl -s -X PUT -o /dev/null "http://127.0.0.1:$MOTO_PORT/bench"
"$K" produce --brokers "127.0.0.1:$BROKER_PORT" --topic events --generate "$RECORDS" >/dev/null

job() { # job GROUP PATH [FLUSH_ROWS] [STORAGE]
  cat <<EOF
[source]
brokers = "127.0.0.1:$BROKER_PORT"
topics = ["events"]
group = "$1"
[flush]
rows = ${3:-200000}
[sink]
type = "parquet"
path = "$2"
[sink.storage]
${4:-}
EOF
}
S3_STORAGE="aws_endpoint = \"http://127.0.0.1:$MOTO_PORT\"
aws_allow_http = \"true\"
aws_access_key_id = \"bench\"
aws_secret_access_key = \"bench\"
aws_region = \"us-east-1\""

now() { date +%s.%N; }
echo "| run | local directory rows/s | S3 (moto) rows/s | S3 / local |"
echo "| --- | --- | --- | --- |"
for run in $(seq "$RUNS"); do
  job "local-$run" "$WORK/local-$run" >"$WORK/local.toml"
  job "s3-$run" "s3://bench/run-$run" 200000 "$S3_STORAGE" >"$WORK/s3.toml"
  t0=$(now); "$K" run "$WORK/local.toml" --until-eof 2>/dev/null; t1=$(now)
  "$K" run "$WORK/s3.toml" --until-eof 2>/dev/null; t2=$(now)
  python3 - "$RECORDS" "$t0" "$t1" "$t2" "$run" <<'EOF'
import sys
n, t0, t1, t2, run = int(sys.argv[1]), *map(float, sys.argv[2:5]), sys.argv[5]
local, s3 = n / (t1 - t0), n / (t2 - t1)
print(f"| {run} | {local:,.0f} | {s3:,.0f} | {s3 / local:.2f} |")
EOF
done

# Compaction of over a thousand small files (issue 14): every sink, local and S3, on the same
# broker and moto_server; see bench-compact.sh.
echo
K="$K" BROKER="127.0.0.1:$BROKER_PORT" MOTO="127.0.0.1:$MOTO_PORT" \
  scripts/bench-compact.sh "${COMPACT_RECORDS:-250000}" "$RUNS"
