#!/usr/bin/env bash
# Proves that each house check in scripts/check.sh can fail: a check that never fails guards
# nothing. It builds four throwaway crates in a temporary folder, each with this repository's
# rustfmt.toml and deny.toml, and runs check.sh on them through CHECK_ROOT:
#
#   clean     passes fmt, clippy and deny (so the failures below are the defect's, not the
#             toy crate's)
#   unformatted  a badly formatted line        -> `check.sh fmt` fails
#   warning      code with a clippy warning    -> `check.sh clippy` fails (-D warnings)
#   gpl          a crate licensed GPL-3.0-only -> `check.sh deny` fails on the licence
#
# The toy crates have no dependencies, so this needs no network and takes seconds. Exit 0
# only if the clean crate passes and every broken one is refused for its own reason.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$work/target"

# make_crate NAME LICENSE MAIN_RS: a binary crate with the house configuration.
make_crate() {
  local dir="$work/$1"
  mkdir -p "$dir/src"
  cp "$here/rustfmt.toml" "$here/deny.toml" "$dir/"
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "checkselftest-$1"
version = "0.1.0"
edition = "2024"
license = "$2"
publish = false

[dependencies]
TOML
  printf '%s\n' "$3" >"$dir/src/main.rs"
  (cd "$dir" && cargo generate-lockfile --offline --quiet)
}

failures=0
# expect OUTCOME NAME CHECK PATTERN: runs `check.sh CHECK` on crate NAME; OUTCOME is pass or
# fail; on fail the output must contain PATTERN (the reason the check gives).
expect() {
  local outcome=$1 name=$2 check=$3 pattern=${4:-} out status=0
  out=$(CHECK_ROOT="$work/$name" bash "$here/scripts/check.sh" "$check" 2>&1) || status=$?
  if [ "$outcome" = pass ] && [ "$status" -eq 0 ]; then
    echo "ok: $check passes on $name"
  elif [ "$outcome" = fail ] && [ "$status" -ne 0 ] && grep -q -- "$pattern" <<<"$out"; then
    echo "ok: $check refuses $name ($pattern)"
  else
    echo "FAILED: $check on $name: expected $outcome${pattern:+ with '$pattern'}, got exit $status:"
    sed 's/^/    /' <<<"$out" | tail -20
    failures=$((failures + 1))
  fi
}

make_crate clean "MIT OR Apache-2.0" 'fn main() {
    println!("{}", 1 + 1);
}'
make_crate unformatted "MIT" 'fn main() { println!("{}",   1+1); }'
make_crate warning "MIT" 'fn main() {
    let v = vec![1, 2, 3];
    println!("{}", v.len() == 0);
}'
make_crate gpl "GPL-3.0-only" 'fn main() {}'

for check in fmt clippy deny; do expect pass clean "$check"; done
expect fail unformatted fmt "formatting differs"
expect fail warning clippy "len_zero"
expect fail gpl deny "GPL-3.0-only"

if [ "$failures" -ne 0 ]; then
  echo "check-selftest: $failures check(s) did not behave" >&2
  exit 1
fi
echo "check-selftest: every house check passes a clean crate and refuses its defect"
