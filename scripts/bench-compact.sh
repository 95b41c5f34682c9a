#!/usr/bin/env bash
# `kingest compact --execute` on over a thousand small files (issue 14), for the Parquet sink,
# a Delta table and an Iceberg table (SQL catalog), each on a local directory and on S3
# (moto_server). Prints Markdown tables for BENCHMARKS.md.
#
# Usage: scripts/bench-compact.sh [RECORDS] [RUNS]      (defaults 250000 and 2)
#
# The small files are written by real `kingest run --until-eof` jobs: `kingest produce
# --generate` sends the quickstart's events in producer batches of 16 KiB (about 200 events),
# and the job fetches with `max.partition.fetch.bytes = 1` (a broker still returns the first
# batch whole, so each fetch brings one producer batch per partition) and `flush.rows = 1`
# (a fetch is never split), so every file holds one producer batch: a few KiB, what a
# streaming job flushing every few seconds leaves. RECORDS / ~200 files per destination.
#
# Each run of each sink and store is its own group and its own empty destination; the stores
# alternate (local, S3) within each sink, the sinks within each run; every run is printed.
# "seconds" is `compact --execute`'s own figure (reading, merging, writing, committing);
# "plan s" is the rest of the process's wall time (listing the files or loading the table's
# log / metadata, and the plan). The Parquet sink does not compact on an object store (no
# atomic replacement of several objects: see docs/config.md), so its S3 rows show the plan
# only.
#
# Environment: K (a kingest binary; default: a release build in CARGO_TARGET_DIR), BROKER and
# MOTO (host:port of a running broker / moto_server with a `bench` bucket; default: started
# here), as bench-objstore.sh passes them.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-250000}
RUNS=${2:-2}
export PATH="$HOME/.cargo/bin:$PATH"
if [ -z "${K:-}" ]; then
  cargo build --release -q -p kingest --bin kingest
  K=${CARGO_TARGET_DIR:-$PWD/target}/release/kingest
fi
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ -z "${BROKER:-}" ]; then
  BROKER=127.0.0.1:$(port)
  "$K" dev-broker --port "${BROKER##*:}" >"$WORK/broker.log" 2>&1 &
  PIDS+=($!)
fi
if [ -z "${MOTO:-}" ]; then
  MOTO=127.0.0.1:$(port)
  moto_server -H 127.0.0.1 -p "${MOTO##*:}" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://$MOTO/" && break
    sleep 0.1
  done
  curl -s -X PUT -o /dev/null "http://$MOTO/bench"
fi
for _ in $(seq 100); do
  "$K" topics --brokers "$BROKER" create small --partitions 4 >/dev/null 2>&1 && break
  sleep 0.1
done
"$K" produce --brokers "$BROKER" --topic small --generate "$RECORDS" >/dev/null 2>&1

S3_STORAGE="aws_endpoint = \"http://$MOTO\"
aws_allow_http = \"true\"
aws_access_key_id = \"bench\"
aws_secret_access_key = \"bench\"
aws_region = \"us-east-1\""

job() { # job SINK STORE GROUP
  local sink=$1 store=$2 group=$3 root storage=""
  if [ "$store" = s3 ]; then root="s3://bench/$group"; storage=$S3_STORAGE; else root="$WORK/$group"; fi
  cat <<EOF
[source]
brokers = "$BROKER"
topics = ["small"]
group = "$group"
properties = { "max.partition.fetch.bytes" = "1" }
[flush]
rows = 1
EOF
  case $sink in
    parquet) printf '[sink]\ntype = "parquet"\npath = "%s"\n' "$root" ;;
    delta) printf '[sink]\ntype = "delta"\npath = "%s"\n' "$root" ;;
    iceberg) printf '[sink]\ntype = "iceberg"\ncatalog = { type = "sql", uri = "sqlite:///%s" }\ntable = "bench.events"\nwarehouse = "%s"\n' \
      "$WORK/$group.db" "$root" ;;
  esac
  printf '[sink.storage]\n%s\n[sink.compaction]\ntarget_file_size = "128MiB"\n' "$storage"
}

now() { date +%s.%N; }
count() { # count STORE GROUP: the data files written (not Delta checkpoints), listed
  python3 - "$1" "$WORK/$2" "$2" "http://$MOTO" <<'EOF'
import os, sys
store, local, prefix, endpoint = sys.argv[1:5]
if store == "s3":
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                      aws_secret_access_key="bench", region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="bench", Prefix=prefix + "/") for o in page.get("Contents", [])]
else:
    keys = [os.path.join(d, f) for d, _, fs in os.walk(local) for f in fs]
print(sum(1 for k in keys if k.endswith(".parquet") and "_delta_log" not in k))
EOF
}
echo "| run | sink | store | files before | files after | MiB read | MiB written | plan s | seconds | MiB/s | files/s | ms/file |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq "$RUNS"); do
  for sink in parquet delta iceberg; do
    for store in local s3; do
      group="$sink-$store-$run"
      job "$sink" "$store" "$group" >"$WORK/$group.toml"
      "$K" run "$WORK/$group.toml" --until-eof >"$WORK/$group.run.log" 2>&1 ||
        { echo "kingest run failed:"; tail "$WORK/$group.run.log"; exit 1; }
      before=$(count "$store" "$group")
      t0=$(now)
      "$K" compact "$WORK/$group.toml" --execute --json >"$WORK/$group.json" 2>"$WORK/$group.err" ||
        { echo "kingest compact failed:"; cat "$WORK/$group.err"; exit 1; }
      t1=$(now)
      python3 - "$WORK/$group.json" "$t0" "$t1" "$run" "$sink" "$store" "$before" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
run, sink, store = sys.argv[4:7]
before = int(sys.argv[7])
plan, done = doc["plan"], doc["done"]["rewritten"]
inputs = sum(r["inputs"] for r in done)
after = before - inputs + len(done)
mib_in = sum(r["bytes_in"] for r in done) / 2**20
mib_out = sum(r["bytes_out"] for r in done) / 2**20
secs = doc["seconds"]
plan_s = t1 - t0 - secs
if not done:
    note = "not merged: object store (the plan says why)" if plan["notes"] else "nothing merged"
    print(f"| {run} | {sink} | {store} | {before} | {before} | - | - | {plan_s:.2f} | - | - | - | {note} |")
else:
    print(f"| {run} | {sink} | {store} | {before} | {after} | {mib_in:.1f} | {mib_out:.1f} | "
          f"{plan_s:.2f} | {secs:.2f} | {mib_in / secs:.1f} | {inputs / secs:,.0f} | {1000 * secs / inputs:.2f} |")
EOF
    done
  done
done
echo
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
