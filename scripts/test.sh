#!/usr/bin/env bash
# Runs every test of the workspace, after installing (only when missing) what the tests need.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
