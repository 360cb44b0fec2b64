#!/usr/bin/env bash
# A throwaway CardDAV server on loopback for callnote's contacts tests (Radicale 3).
#
#   scripts/carddav-server.sh packages        Debian packages this script needs, one per line
#   scripts/carddav-server.sh install         Python venv at .cache/radicale-venv (inside the repo)
#   eval "$(scripts/carddav-server.sh start)" starts it; prints `export CARDDAV_…=…` lines
#   scripts/carddav-server.sh status          running or not (exit 0 / 1)
#   scripts/carddav-server.sh stop            stops it by PID and removes its temp folder
#
# Settings (environment, optional): CARDDAV_PORT=5232; KEEP=1 (`stop` leaves the temp folder).
#
# Users (passwords random per start, plain htpasswd): the service account `callnote`, which
# may read every address book and write none, and the owners hannah.whitaker@contoso.com
# (with an empty address book at /hannah.whitaker@contoso.com/contacts/) and
# amara.okafor@contoso.com (no address book). Owners read and write their own books.
#
# `start` prints, for eval:
#   CARDDAV_URL          http://127.0.0.1:PORT
#   CARDDAV_USER / CARDDAV_PASS         the service account
#   CARDDAV_OWNER_PASS   both owners' password
#   CARDDAV_SERVER_PID
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.cache/radicale-venv"
port=${CARDDAV_PORT:-5232}
state="${TMPDIR:-/tmp}/callnote-carddav-$port"

source "$(dirname "$0")/lib/server-common.sh"

write_config() {
  local service_pass=$1 owner_pass=$2
  mkdir -p "$state/collections/collection-root/hannah.whitaker@contoso.com/contacts"
  printf '{"tag": "VADDRESSBOOK", "D:displayname": "Contacts"}' \
    >"$state/collections/collection-root/hannah.whitaker@contoso.com/contacts/.Radicale.props"
  printf 'callnote:%s\nhannah.whitaker@contoso.com:%s\namara.okafor@contoso.com:%s\n' \
    "$service_pass" "$owner_pass" "$owner_pass" >"$state/users"
  cat >"$state/rights" <<'EOF'
[service-reads-every-book]
user: callnote
collection: .*
permissions: Rr

[owner-principal]
user: .+
collection: {user}
permissions: RW

[owner-books]
user: .+
collection: {user}/[^/]+
permissions: rw

[root]
user: .+
collection:
permissions: R
EOF
  cat >"$state/config" <<EOF
[server]
hosts = 127.0.0.1:$port
[auth]
type = htpasswd
htpasswd_filename = $state/users
htpasswd_encryption = plain
delay = 0
[rights]
type = from_file
file = $state/rights
[storage]
filesystem_folder = $state/collections
[web]
type = none
[logging]
level = warning
EOF
}

cmd=${1:-}
case "$cmd" in
  packages)
    ;;
  install)
    install_venv radicale 'radicale==3.9.0'
    ;;
  start)
    [ -x "$venv/bin/python" ] || die "not installed: run scripts/carddav-server.sh install first"
    if pid=$(running_pid); then die "already running (pid $pid, $state)"; fi
    port_busy "$port" && die "port $port is already in use (choose another CARDDAV_PORT)"
    rm -rf "$state"
    mkdir -p "$state"
    service_pass=$(openssl rand -hex 12)
    owner_pass=$(openssl rand -hex 12)
    write_config "$service_pass" "$owner_pass"
    setsid nohup "$venv/bin/python" -m radicale --config "$state/config" \
      >"$state/server.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    for _ in $(seq 100); do
      port_busy "$port" && break
      kill -0 "$(cat "$state/pid")" 2>/dev/null || die "server exited: $(tail -5 "$state/server.log")"
      sleep 0.1
    done
    port_busy "$port" || die "server did not start within 10 s: $(tail -5 "$state/server.log")"
    cat <<EOF
export CARDDAV_URL=http://127.0.0.1:$port
export CARDDAV_USER=callnote
export CARDDAV_PASS=$service_pass
export CARDDAV_OWNER_PASS=$owner_pass
export CARDDAV_SERVER_PID=$(cat "$state/pid")
EOF
    ;;
  status)
    running_pid >/dev/null
    ;;
  stop)
    if pid=$(running_pid); then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$state"
    ;;
  *)
    die "usage: $0 packages|install|start|status|stop"
    ;;
esac
