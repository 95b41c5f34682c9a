#!/usr/bin/env bash
# The README's "run it" command: the whole thing on one machine.
#
# Starts a local broker (`kingest dev-broker`, in-memory) unless --brokers points at a real
# cluster, generates 100,000 events like the Pinot quickstart's {"ts", "uuid", "count"},
# ingests them into ./data as Parquet with `kingest run --until-eof`, and prints the row count
# and a few rows (read back with pyarrow, an independent Parquet reader).
#
# Usage: scripts/quickstart.sh [--brokers HOST:PORT] [--events N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

brokers=""
events=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) brokers="$2"; shift 2 ;;
    --events) events="$2"; shift 2 ;;
    *) echo "usage: $0 [--brokers HOST:PORT] [--events N]" >&2; exit 2 ;;
  esac
done

cargo build --release -p kingest
kingest=./target/release/kingest
python3 -c "import pyarrow" 2>/dev/null || python3 -m pip install -q pyarrow

topic="quickstart-events"
work=$(mktemp -d)
cleanup() { [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$brokers" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$kingest" dev-broker --port "$port" --topic "$topic:3" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  brokers="127.0.0.1:$port"
  for _ in $(seq 50); do grep -q bootstrap.servers "$work/broker.log" && break; sleep 0.1; done
else
  "$kingest" topics --brokers "$brokers" create "$topic" --partitions 3 || true
fi

# A fresh in-memory broker starts from offset 0: start ./data afresh too, or the sink's
# recorded offsets would skip the new events.
rm -rf ./data
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
path = "./data"
TOML

"$kingest" produce --brokers "$brokers" --topic "$topic" --generate "$events"
"$kingest" run "$work/job.toml" --until-eof
python3 - <<'PY'
import pyarrow.parquet as pq
table = pq.ParquetDataset("./data").read()
print(f"{table.num_rows} rows in ./data ({len(pq.ParquetDataset('./data').files)} Parquet files)")
for row in table.sort_by([("partition", "ascending"), ("offset", "ascending")]).slice(0, 5).to_pylist():
    print(row)
PY
