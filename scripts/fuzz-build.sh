#!/usr/bin/env bash
# Checks (or with FUZZ_BUILD=1 builds) every cargo-fuzz target of fuzz/ (CI calls this so the
# targets keep compiling; running them is described in FUZZING.md). Installs what is missing and
# nothing else: a nightly toolchain via rustup, and cargo-fuzz into ~/.cargo/bin.
#
# Usage: scripts/fuzz-build.sh [extra `cargo fuzz check|build` arguments, e.g. a target name]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz-build: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-build: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# fuzz/ is its own workspace (excluded from the root one) with its own Cargo.lock.
# CI type-checks the targets (with the sanitizer flags cargo-fuzz uses) rather than building
# them: since the ingest_decode target links the ingest crate (arrow, parquet, ...), a full
# AddressSanitizer build with one codegen unit costs over a quarter of an hour on 2 cores, and
# what CI must catch is a target that stopped compiling. `cargo fuzz run` builds what it runs.
# Set FUZZ_BUILD=1 for the full build.
if [ "${FUZZ_BUILD:-0}" = 1 ]; then
  cargo +nightly fuzz build "$@"
else
  cargo +nightly fuzz check "$@"
fi
# The seed generator is an ordinary example; make sure it still compiles too.
cargo check --release --manifest-path fuzz/Cargo.toml --example make_seeds
