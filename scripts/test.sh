#!/usr/bin/env bash
# Runs every test of callnote on a fresh Debian machine.
#
#   scripts/test.sh
#
# 1. installs what is missing (Debian packages with apt-get; a Python venv for the SMTP
#    test servers inside the repo, under .cache/);
# 2. starts the real servers the tests talk to, on loopback ports, with throwaway
#    configuration in a temp folder: an SMTP server (aiosmtpd, STARTTLS + AUTH, test CA),
#    OpenLDAP slapd (loaded with tests/fixtures/directory.ldif) and a CardDAV server
#    (Radicale, with a service account that reads every address book): every
#    scripts/*-server.sh is installed, started and stopped the same way;
# 3. runs the house checks (scripts/check.sh: rustfmt, clippy with warnings as errors,
#    cargo-deny on licences, bans and sources) and scripts/check-selftest.sh (each check
#    refuses a toy crate that breaks its rule), then `cargo test`; a test whose server is
#    missing fails (the opt-out CALLNOTE_SKIP_SERVER_TESTS=1 is refused here);
# 4. runs the README's first command and checks its output;
# 5. builds the Debian package, installs it, runs the relay as a service, sends one
#    notification through it and purges it (scripts/package-test.sh); a failure fails the run;
# 6. stops the servers, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
# a C compiler: Rust links with it, and LAME (the MP3 encoder) is compiled from its source
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
# the package test: cargo deb strips with binutils; the package depends on adduser
command -v strip >/dev/null || need_apt+=(binutils)
dpkg -s adduser >/dev/null 2>&1 || need_apt+=(adduser)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# scores every rendered fixture (tests/it/spam.rs)
command -v spamassassin >/dev/null || need_apt+=(spamassassin)
for f in scripts/*-server.sh; do
  # each server script lists the Debian packages it needs
  for p in $(bash "$f" packages); do dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p"); done
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stop_all() {
  for f in scripts/*-server.sh; do bash "$f" stop || true; done
}
trap stop_all EXIT

for f in scripts/*-server.sh; do
  echo "== $f install + start"
  bash "$f" install
  # an assignment keeps the start's exit status, so a server that cannot start ends the run
  # here (inside eval "$(...)" its failure would be ignored and every test of it would fail)
  started=$(bash "$f" start) || { echo "test.sh: $f could not start its server"; exit 1; }
  eval "$started"
done
if [ -n "${CALLNOTE_SKIP_SERVER_TESTS:-}" ]; then
  echo "CALLNOTE_SKIP_SERVER_TESTS is set: the full test run never skips server tests"; exit 2
fi

echo "== house checks"
bash scripts/check.sh
# ... and proof that each of them can fail (a toy crate per defect; seconds, no network)
bash scripts/check-selftest.sh

echo "== cargo test"
mkdir -p .cache
set +e
rm -f target/skipped-server-tests.txt
cargo test --all-targets 2>&1 | tee .cache/cargo-test.log
status=${PIPESTATUS[0]}
set -e
grep -E '^test result:' .cache/cargo-test.log > .cache/test-results.txt || true
[ "$status" -eq 0 ] || { echo "cargo test failed (exit $status)"; exit "$status"; }

echo "== README command: render the sample spool"
rm -rf out
cargo run --quiet -- render --config examples/callnote.toml --out out/ examples/spool/*.txt
n=$(ls out/*.eml | wc -l)
[ "$n" -ge 20 ] || { echo "expected the sample spool to render, got $n .eml files"; exit 1; }
git status --porcelain --untracked-files=all -- examples | grep . && { echo "the README command changed examples/"; exit 1; }

echo "== package: build, install, run as a service, purge"
set +e
scripts/package-test.sh 2>&1 | tee .cache/package-test.log
package_status=${PIPESTATUS[0]}
set -e
[ "$package_status" -eq 0 ] || { echo "package test failed (exit $package_status)"; exit "$package_status"; }

passed=$(awk '{p+=$4; f+=$6} END {print p}' .cache/test-results.txt)
failed=$(awk '{p+=$4; f+=$6} END {print f}' .cache/test-results.txt)
skipped=0
if [ -f target/skipped-server-tests.txt ]; then skipped=$(wc -l < target/skipped-server-tests.txt); fi
echo "package: installed, delivered, purged"
echo "tests: $passed passed, $failed failed, $skipped skipped"
