#!/usr/bin/env bash
# Regenerates the golden record-batch fixtures in protocol/tests/fixtures/ from independent
# clients, then runs the test that reads them (cargo test -p kingest-protocol --test fixtures).
#
#   librdkafka-<codec>.*   librdkafka (rdkafka crate) produces to a nisshi broker started here
#                          (scripts/nisshi.sh), the generator fetches the stored batches back
#   java-xerial-snappy.*   snappy-java's SnappyOutputStream, as the Kafka Java producer compresses
#   kafka-python-*.*       kafka-python's record builders: legacy magic 0/1 and magic 2
#
# Everything runs on loopback; nothing is fetched. Needs (scripts/setup.sh installs them):
# nisshi, a JDK (java), Debian's libsnappy-java, and pip's kafka-python, python-snappy, lz4 and
# xxhash. The fixtures are replaced only when every step succeeded.
#
# Usage: scripts/gen-fixtures.sh [--no-test]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/protocol/tests/fixtures
GEN=$OUT/gen
SNAPPY_JAR=${SNAPPY_JAVA_JAR:-/usr/share/java/snappy-java.jar}
RUN_TEST=1
[[ "${1:-}" == "--no-test" ]] && RUN_TEST=0

die() { echo "gen-fixtures.sh: $*" >&2; exit 1; }

# Check every prerequisite first, so a missing one fails before minutes of building.
command -v java >/dev/null || die "java not found: install a JDK (Debian: openjdk-17-jdk-headless); see scripts/setup.sh"
[[ -f "$SNAPPY_JAR" ]] || die "$SNAPPY_JAR not found: apt-get install libsnappy-java (or set SNAPPY_JAVA_JAR); see scripts/setup.sh"
command -v python3 >/dev/null || die "python3 not found"
python3 - <<'EOF' || die "python modules missing: pip install kafka-python python-snappy lz4 xxhash; see scripts/setup.sh"
import importlib, sys
missing = [m for m in ("kafka", "snappy", "lz4.frame", "xxhash") if importlib.util.find_spec(m.split(".")[0]) is None]
if missing:
    print("missing python modules: " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
EOF

cd "$ROOT"
cargo build -q -p kingest-tests --bin gen_fixtures
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GEN_BIN=$TARGET_DIR/debug/gen_fixtures

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kingest-gen-fixtures.XXXXXX")
cleanup() {
    "$ROOT/scripts/nisshi.sh" stop "$WORK/nisshi" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
STAGE=$WORK/out
mkdir -p "$STAGE"

port=$("$ROOT/scripts/nisshi.sh" start "$WORK/nisshi")
# nisshi.sh found the binary, so one of these is it; its version goes into the fixtures' JSON.
NISSHI_BIN=${NISSHI:-$(command -v nisshi || echo "$HOME/.cargo/bin/nisshi")}
BROKER_NAME=$("$NISSHI_BIN" --version | head -n 1)
echo "$BROKER_NAME on 127.0.0.1:$port"

"$GEN_BIN" librdkafka --broker "127.0.0.1:$port" --broker-name "$BROKER_NAME" --out "$STAGE"
"$GEN_BIN" java-snappy --out "$STAGE" --source "$GEN/XerialSnappy.java" --classpath "$SNAPPY_JAR"
python3 "$GEN/kafka_python_fixtures.py" "$STAGE"

# Replace the old fixtures only now that all were written.
rm -f "$OUT"/*.bin "$OUT"/*.json
cp "$STAGE"/*.bin "$STAGE"/*.json "$OUT"/
echo "fixtures written to $OUT ($(du -sh "$OUT" | cut -f1))"

if ((RUN_TEST)); then
    cargo test -q -p kingest-protocol --test fixtures
fi
