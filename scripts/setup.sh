#!/usr/bin/env bash
# Installs everything kingest's tests need, each thing only when missing, so a second run takes
# seconds: Debian packages (C libraries for librdkafka's build, stunnel, PostgreSQL), the nisshi
# broker (built once with the Rust 1.96 toolchain it requires), the object store servers the
# sink is tested against (moto for S3 from PyPI, Azurite for Azure from npm) with their Python
# SDKs, the Apache Kafka Java client the transaction and group tests run as a peer, the test
# runner (cargo-nextest), and the nightly toolchain and cargo-fuzz that build the fuzz targets.
#
# Usage: scripts/setup.sh            everything the test suite needs
#        scripts/setup.sh --fixtures  also what scripts/gen-fixtures.sh needs (Java, kafka-python)
set -euo pipefail

NISSHI_VERSION=0.8.1
NISSHI_TOOLCHAIN=1.96.0
# musl-tools: musl-gcc, for the C code (ring, zstd) of the static binary scripts/musl.sh builds.
APT_PACKAGES=(cmake pkg-config libcurl4-openssl-dev libsasl2-dev libssl-dev zlib1g-dev stunnel4 postgresql musl-tools)
# PostgreSQL sink tests and benchmark: the server they start themselves (postgresql: initdb,
# pg_ctl under /usr/lib/postgresql/*/bin) and psql, the independent reader and \copy baseline.
APT_PACKAGES+=(postgresql-client)
# The Java client's own dependencies (logging facade, compression codecs); javac/java come with
# default-jdk-headless.
APT_PACKAGES+=(default-jdk-headless libslf4j-java liblz4-java libzstd-jni-java libsnappy-java)
# Apache Kafka's Java client (kafka-clients 3.9.1) as PyPI ships it: pyflink/lib/kafka-clients.jar.
JAVA_CLIENT_PIP="shigawire-apache-flink-libraries==2.0.0.post1"
FIXTURE_APT_PACKAGES=(default-jdk-headless libsnappy-java)
FIXTURE_PIP_PACKAGES=(kafka-python python-snappy lz4 xxhash)

log() { printf 'setup: %s\n' "$*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A toolchain that runs, installed when missing. One whose install was interrupted is listed by
# rustup but cannot run (`Missing manifest in toolchain`): it is removed and installed again.
ensure_toolchain() {
  rustc "+$1" --version >/dev/null 2>&1 && return 0
  if rustup toolchain list | grep -q "^$1"; then
    log "toolchain $1 is broken (an interrupted install?): installing it again"
    rustup toolchain uninstall "$1" >/dev/null 2>&1 || true
  fi
  rustup toolchain install "$1" --profile minimal
}

install_nisshi() {
  if command -v nisshi >/dev/null 2>&1 && nisshi --version 2>/dev/null | grep -q "$NISSHI_VERSION"; then
    return 0
  fi
  log "building nisshi $NISSHI_VERSION with Rust $NISSHI_TOOLCHAIN (about 12 minutes, once)"
  ensure_toolchain "$NISSHI_TOOLCHAIN"
  cargo "+$NISSHI_TOOLCHAIN" install nisshi --version "$NISSHI_VERSION" --locked \
    --no-default-features --features dynostore,libsql
}

install_python_readers() {
  # pyarrow reads our Parquet files back in tests: an independent reader.
  python3 -c "import pyarrow" 2>/dev/null || python3 -m pip install -q pyarrow
  # pyiceberg reads the Iceberg sink's tables back through the same SQL catalog (SQLite and
  # PostgreSQL: SQLAlchemy and psycopg2).
  python3 -c "import pyiceberg.catalog.sql, sqlalchemy, psycopg2" 2>/dev/null ||
    python3 -m pip install -q "pyiceberg[sql-sqlite,sql-postgres,pyarrow]"
  # deltalake (delta-rs's kernel) and polars read the Delta sink's tables back: independent
  # readers of its log, checkpoints and data files.
  python3 -c "import deltalake" 2>/dev/null || python3 -m pip install -q deltalake
  python3 -c "import polars" 2>/dev/null || python3 -m pip install -q polars
}

install_object_stores() {
  # moto[server]: an S3 API server (moto_server), with boto3 to read back what the sink wrote.
  { command -v moto_server >/dev/null 2>&1 && python3 -c "import moto, boto3" 2>/dev/null; } ||
    python3 -m pip install -q 'moto[server]'
  # azure-storage-blob: Azure's own Python SDK, to create containers in and read back from Azurite.
  python3 -c "import azure.storage.blob" 2>/dev/null || python3 -m pip install -q azure-storage-blob
  # Azurite: Microsoft's Azure Storage emulator (azurite-blob), from npm (Node 20 or later).
  if ! command -v azurite-blob >/dev/null 2>&1; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    npm install -g --silent azurite
  fi
}

install_java_client() {
  # tests/src/peers/java.rs finds the jar through the same import.
  python3 -c "import importlib.util as u, os, sys; s = u.find_spec('pyflink'); sys.exit(0 if s and any(os.path.isfile(os.path.join(d, 'lib', 'kafka-clients.jar')) for d in s.submodule_search_locations) else 1)" 2>/dev/null ||
    python3 -m pip install -q "$JAVA_CLIENT_PIP"
}

install_test_runner() {
  # cargo-nextest runs the test suite (scripts/test.sh); machines of this kind come with it.
  cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked
}

install_fuzz_tools() {
  ensure_toolchain nightly
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
}

export PATH="$HOME/.cargo/bin:$PATH"
apt_install "${APT_PACKAGES[@]}"
install_nisshi
install_python_readers
install_object_stores
install_java_client
install_test_runner
install_fuzz_tools
if [ "${1:-}" = "--fixtures" ]; then
  apt_install "${FIXTURE_APT_PACKAGES[@]}"
  python3 -m pip install -q "${FIXTURE_PIP_PACKAGES[@]}"
fi
log "ready"
