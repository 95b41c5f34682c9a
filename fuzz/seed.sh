#!/usr/bin/env bash
# Writes the seed corpora of every fuzz target into fuzz/corpus/<target>/ (cargo-fuzz's default
# corpus directories), from batches and messages our encoders write and from every *.bin fixture
# under protocol/tests/fixtures/ (captured from librdkafka). Safe to re-run at any time, e.g. when
# new fixtures land: seeds are overwritten by name, and what the fuzzer added to a corpus stays.
#
# Usage: fuzz/seed.sh [fixtures dir]   (default: protocol/tests/fixtures)
set -euo pipefail
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
fixtures="${1:-$root/protocol/tests/fixtures}"
# The generator is an ordinary (stable, unsanitized) example of the fuzz crate.
cargo run --quiet --release --manifest-path "$fuzz_dir/Cargo.toml" --example make_seeds -- \
  "$fixtures" "$fuzz_dir/corpus"
for dir in "$fuzz_dir"/corpus/*/; do
  printf '%-24s %5d files\n' "$(basename "$dir")" "$(find "$dir" -type f | wc -l)"
done
