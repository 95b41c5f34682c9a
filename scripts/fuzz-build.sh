#!/usr/bin/env bash
# Builds every cargo-fuzz target of fuzz/ (CI calls this so the targets keep compiling; running
# them is described in FUZZING.md). Installs what is missing and nothing else: a nightly
# toolchain via rustup, and cargo-fuzz into ~/.cargo/bin.
#
# Usage: scripts/fuzz-build.sh [extra `cargo fuzz build` arguments, e.g. a target name]
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
cargo +nightly fuzz build "$@"
# The seed generator is an ordinary example; make sure it still builds too.
cargo build --release --manifest-path fuzz/Cargo.toml --example make_seeds
