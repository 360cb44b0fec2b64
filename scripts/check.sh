#!/usr/bin/env bash
# The house rules, checked: formatting (rustfmt.toml), clippy with every warning an error,
# and cargo-deny on licences, banned duplicates and sources (deny.toml). Run by
# scripts/test.sh before the tests; run it alone before a commit:
#
#   scripts/check.sh            all three
#   scripts/check.sh fmt|clippy|deny
#
# cargo-deny is installed into ~/.cargo/bin on first use (`cargo install --locked`), and runs
# offline: it reads Cargo.lock and the fetched crates, never an advisory database.
#
# CHECK_ROOT=DIR checks another crate with the same commands (scripts/check-selftest.sh uses
# it to prove each check fails on a crate that breaks its rule).
set -euo pipefail
cd "${CHECK_ROOT:-$(dirname "$0")/..}"
what=${1:-all}

run_fmt() {
  echo "-- cargo fmt --check"
  cargo fmt --check || { echo "check.sh: formatting differs: run \`cargo fmt\`"; return 1; }
}

run_clippy() {
  echo "-- cargo clippy --all-targets -D warnings"
  cargo clippy --all-targets --locked --quiet -- -D warnings
}

run_deny() {
  echo "-- cargo deny check licenses bans sources"
  if ! command -v cargo-deny >/dev/null; then
    echo "installing cargo-deny (once)"
    cargo install --locked --quiet cargo-deny
  fi
  # Every platform's crates must be on disk for the metadata cargo-deny reads (the build
  # fetches only this platform's); after that nothing goes to the network.
  cargo fetch --locked --quiet
  cargo deny --offline --log-level error check licenses bans sources
}

case $what in
  fmt) run_fmt ;;
  clippy) run_clippy ;;
  deny) run_deny ;;
  all) run_fmt; run_clippy; run_deny ;;
  *) echo "usage: scripts/check.sh [fmt|clippy|deny]" >&2; exit 2 ;;
esac
