#!/usr/bin/env bash
# Side-by-side benchmark against the Python peer (bench/run.py says what it prints).
# Builds callnote --release, installs the peer's two libraries into a venv (once), makes the
# corpora (once, under $BENCH_DIR/callnote-bench) and runs. BENCH_SMOKE=1: a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PEER_VENV:-target/bench-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r bench/peer/requirements.txt
fi
nice -n 5 cargo build --release --quiet --bin callnote
PEER_PYTHON="$venv/bin/python" exec "$venv/bin/python" bench/run.py
