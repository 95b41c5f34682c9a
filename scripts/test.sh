#!/usr/bin/env bash
# Runs every test of the workspace, after installing (only when missing) what the tests need.
# This is the README's test command and what CI runs.
#
# cargo-nextest runs the tests, several at once across test binaries (.config/nextest.toml says
# how many and why), and lists the slowest at the end. Criterion benchmarks, which nextest
# cannot list, run once each in test mode through `cargo test --bench '*'`, and doc tests through
# `cargo test --doc`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
status=0
cargo nextest run --workspace --lib --bins --tests --examples --no-fail-fast || status=$?
cargo test --workspace --bench '*' --no-fail-fast || status=$?
cargo test --workspace --doc || status=$?
exit "$status"
