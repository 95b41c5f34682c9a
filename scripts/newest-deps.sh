#!/usr/bin/env bash
# Checks the library crates (kingest-protocol, kingest-client, kingest-testkit) against the
# newest versions of their dependencies that Cargo.toml allows, warnings denied.
#
# A program that depends on these crates resolves its own lock file, so it gets the newest
# compatible versions, not the ones in our Cargo.lock: a deprecation in a newer rustls (0.23.48
# deprecated ring's provider) fails its `-D warnings` build while ours stays green. This
# updates a throwaway copy of the workspace (`cargo update`; our Cargo.lock is not touched) and
# runs clippy over those crates and their tests there. Clippy type-checks without generating
# code, so this costs a check build of their dependencies, not a full one.
#
# Needs the crates.io index (network). Usage: scripts/newest-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sources, without build output or data: git's files (tracked, and new ones not ignored),
# or outside a git checkout everything but target/ directories.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$work"
else
  tar --exclude=./target --exclude=./fuzz/target -cf - . | tar -xf - -C "$work"
fi
# Its own target directory, kept between runs (a local rerun only checks what changed).
target="${CARGO_TARGET_DIR:-$PWD/target}/newest-deps"
cd "$work"
cargo update 2>"$work/update.log" || { cat "$work/update.log" >&2; exit 1; }
sed -n 's/^ *\(Updating\|Adding\|Removing\|Downgrading\) /newest-deps: \1 /p' "$work/update.log" >&2
CARGO_TARGET_DIR="$target" cargo clippy --locked -p kingest-protocol -p kingest-client \
  -p kingest-testkit --all-targets -- -D warnings
echo "newest-deps: the library crates build without warnings against the newest compatible dependencies" >&2
