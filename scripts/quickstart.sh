#!/usr/bin/env bash
# The README's "run it" command. Until the ingest engine lands (issue 6) the main job is the
# protocol layer's speed: it builds kingest and runs the record batch decoding benchmark, ours
# against the kafka-protocol crate's decoder and bare decompression, for every codec.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p kingest
./target/release/kingest --version
cargo bench -p kingest-benches --bench batch_decode -- --quick "$@"
