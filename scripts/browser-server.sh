#!/usr/bin/env bash
# Headless Chromium behind chromedriver on loopback, for the preview's browser tests.
#
#   scripts/browser-server.sh packages        Debian packages this script needs, one per line
#   scripts/browser-server.sh install         checks they are there (scripts/test.sh installs them)
#   eval "$(scripts/browser-server.sh start)" starts chromedriver; prints `export …` lines
#   scripts/browser-server.sh status          running or not (exit 0 / 1)
#   scripts/browser-server.sh stop            stops it (and its browsers) by PID, removes its temp folder
#
# Settings (environment, optional): BROWSER_PORT=19515, KEEP=1 (stop leaves the log).
# `start` prints, for eval: CHROMEDRIVER_URL=http://127.0.0.1:PORT, CHROME_BIN (the
# Chromium binary the tests ask chromedriver to run), BROWSER_SERVER_PID.
set -euo pipefail

port=${BROWSER_PORT:-19515}
state="${TMPDIR:-/tmp}/callnote-browser-$port"
chrome=$(command -v chromium || true)
driver=$(command -v chromedriver || true)

source "$(dirname "$0")/lib/server-common.sh"

case "${1:-}" in
  packages)
    echo chromium
    echo chromium-driver
    ;;
  install)
    [ -n "$chrome" ] && [ -n "$driver" ] || die "chromium or chromedriver missing: apt-get install chromium chromium-driver"
    ;;
  start)
    [ -n "$chrome" ] && [ -n "$driver" ] || die "not installed: apt-get install chromium chromium-driver"
    if pid=$(running_pid); then die "already running (pid $pid, $state)"; fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is already in use (choose another BROWSER_PORT)"
    rm -rf "$state"
    mkdir -p "$state"
    setsid nohup "$driver" --port="$port" --allowed-ips=127.0.0.1 --log-path="$state/chromedriver.log" \
      >"$state/server.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      kill -0 "$(cat "$state/pid")" 2>/dev/null || die "chromedriver exited: $(tail -5 "$state/server.log")"
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "chromedriver did not start within 10 s"
    cat <<EOT
export CHROMEDRIVER_URL=http://127.0.0.1:$port
export CHROME_BIN=$chrome
export BROWSER_SERVER_PID=$(cat "$state/pid")
EOT
    ;;
  status)
    if pid=$(running_pid); then echo "running (pid $pid, port $port, $state)"; else echo "not running"; exit 1; fi
    ;;
  stop)
    if pid=$(running_pid); then
      # chromedriver leads its own process group (setsid): the group holds the browsers it
      # started, which a plain TERM to chromedriver would leave running.
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid"
    fi
    [ "${KEEP:-}" = 1 ] || rm -rf "$state"
    ;;
  *)
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
esac
