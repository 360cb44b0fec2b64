#!/usr/bin/env bash
# The Debian package, end to end, on this machine (as root):
#
#   scripts/package-test.sh
#
# 1. installs cargo-deb if missing (`cargo install cargo-deb --locked`, kept in ~/.cargo);
# 2. builds the .deb (release build, stripped binary, light compression) and installs it;
# 3. checks what the package put in place: binary, configuration, unit, `callnote` user,
#    spool and state folders with their owners and modes;
# 4. starts the relay as the unit does: with systemctl when systemd runs this machine, else
#    the unit's own ExecStart command line as the callnote user;
# 5. drops one missed-call header file into the spool (written under a dot-name, then renamed)
#    and waits until its notification is in the outbox of the shipped configuration;
# 6. stops the service, purges the package and checks that nothing of it is left.
#
# Refuses to run where callnote is already installed or its user or folders exist: the test
# purges everything it installed. PACKAGE_TEST_LISTEN (default 127.0.0.1:19925) replaces the
# shipped [server] listen address, so a relay already running here is not disturbed.
set -euo pipefail
cd "$(dirname "$0")/.."

listen=${PACKAGE_TEST_LISTEN:-127.0.0.1:19925}
fixture=tests/fixtures/mc-legacy-blog-shape.txt
call_id=6e838afc-7d1a-4ad5-b1e3-fde1990e11e7
leftovers=(/usr/bin/callnote /etc/callnote /var/spool/callnote /var/lib/callnote)

die() { echo "package-test: $*" >&2; exit 1; }
# Anything named after the package in the places a package or its maintainer scripts write.
traces() {
  find /etc /usr/bin /usr/share/doc /lib/systemd /usr/lib/systemd /var/lib /var/spool \
    -name '*callnote*' 2>/dev/null || true
}
step() { echo "== package-test: $*"; }

[ "$(id -u)" -eq 0 ] || die "needs root (dpkg -i, a system user)"
if dpkg -s callnote >/dev/null 2>&1; then
  die "the callnote package is already installed here; this test would purge it"
fi
getent passwd callnote >/dev/null && die "a callnote user exists already; this test would delete it"
for path in "${leftovers[@]}"; do
  [ -e "$path" ] && die "$path exists already; this test would delete it"
done
[ -z "$(traces)" ] || die "files named after callnote exist already: $(traces | tr '\n' ' ')"

if ! command -v cargo-deb >/dev/null; then
  step "installing cargo-deb"
  cargo install cargo-deb --locked
fi

step "building the package (release build)"
deb=$(cargo deb --locked --strip --fast | tail -n 1)
[ -f "$deb" ] || die "cargo deb did not name a package file (got: $deb)"
echo "$deb"

relay_pid=
systemd=false
[ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && systemd=true

# Whatever happened: stop the relay and purge the package, so the machine is left as found.
cleanup() {
  if [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2>/dev/null; then
    kill -TERM "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  if dpkg -s callnote >/dev/null 2>&1; then
    $systemd && systemctl stop callnote-relay 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -qq callnote >/dev/null 2>&1 || dpkg -P callnote >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

step "installing $deb"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null

step "checking the installed layout"
# mode owner:group of a path
stat_of() { stat -c '%a %U:%G' "$1"; }
expect_stat() {
  local got
  got=$(stat_of "$1")
  [ "$got" = "$2" ] || die "$1: expected $2, found $got"
}
getent passwd callnote | grep -q ':/usr/sbin/nologin$' || die "no callnote system user with a nologin shell"
expect_stat /var/spool/callnote "770 callnote:callnote"
expect_stat /var/lib/callnote "750 callnote:callnote"
expect_stat /etc/callnote "750 root:callnote"
expect_stat /etc/callnote/callnote.toml "640 root:callnote"
expect_stat /usr/bin/callnote "755 root:root"
unit=$(dpkg -L callnote | grep '/systemd/system/callnote-relay.service$') || die "the package has no callnote-relay unit"
grep -q '^ExecStart=/usr/bin/callnote relay --config /etc/callnote/callnote.toml' "$unit" \
  || die "$unit does not start /usr/bin/callnote relay with the packaged configuration"
version=$(callnote --version)
[ "$version" = "callnote $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] || die "unexpected version: $version"

# The test's own listen address, in the installed configuration (a conffile: purge removes it).
sed -i "s|^listen = .*|listen = \"$listen\"|" /etc/callnote/callnote.toml
runuser -u callnote -- callnote --config /etc/callnote/callnote.toml check >/dev/null \
  || die "the shipped configuration does not pass check as the callnote user"

log=$(mktemp)
if $systemd; then
  step "starting callnote-relay with systemd"
  systemctl restart callnote-relay
  systemctl is-active --quiet callnote-relay || die "callnote-relay is not active: $(systemctl status callnote-relay)"
else
  step "no systemd here: running the unit's ExecStart as the callnote user"
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  [ -n "$exec_start" ] || die "$unit has no ExecStart"
  if [ -f /etc/callnote/env ]; then set -a; . /etc/callnote/env; set +a; fi
  # shellcheck disable=SC2086 # the unit's command line, split on spaces as systemd does
  setpriv --reuid=callnote --regid=callnote --init-groups $exec_start >"$log" 2>&1 &
  relay_pid=$!
fi

step "dropping one header file into the spool"
install -m 0644 "$fixture" "/var/spool/callnote/.$call_id.txt"
mv "/var/spool/callnote/.$call_id.txt" "/var/spool/callnote/$call_id.txt"

outbox=/var/lib/callnote/outbox
delivered=
archived=
for _ in $(seq 1 600); do
  delivered=$(grep -l "$call_id" "$outbox"/*.eml 2>/dev/null | head -n 1 || true)
  # own mode keeps an accepted item (header and side file) in archive/<item id>/
  archived=$(ls /var/spool/callnote/archive/*/"$call_id.txt" 2>/dev/null | head -n 1 || true)
  [ -n "$delivered" ] && [ -n "$archived" ] && break
  if [ -n "$relay_pid" ] && ! kill -0 "$relay_pid" 2>/dev/null; then
    cat "$log" >&2
    die "the relay exited before delivering"
  fi
  sleep 0.1
done
[ -n "$delivered" ] || { cat "$log" >&2; die "no notification for $call_id in $outbox within 60 s"; }
[ -n "$archived" ] || { cat "$log" >&2; die "the header file was not archived after delivery"; }
grep -q '^To: .*hannah.whitaker@contoso.com' "$delivered" || die "$delivered is not addressed to the header's recipient"
expect_stat "$delivered" "$(stat -c '%a' "$delivered") callnote:callnote"
health=$(exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}" && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -n 1 <&3)
case "$health" in *" 200 "*) ;; *) die "/healthz on $listen answered: $health" ;; esac
echo "delivered: $delivered"

step "stopping the service"
if $systemd; then
  systemctl stop callnote-relay
else
  kill -TERM "$relay_pid"
  wait "$relay_pid" || die "the relay did not stop cleanly on SIGTERM (exit $?): $(cat "$log")"
  relay_pid=
fi
rm -f "$log"

step "purging the package"
files=$(dpkg -L callnote | grep -v '^/\.$')
DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -qq callnote >/dev/null
dpkg -s callnote >/dev/null 2>&1 && die "callnote is still installed after the purge"
for path in "${leftovers[@]}"; do
  [ -e "$path" ] && die "$path is left after the purge"
done
while IFS= read -r path; do
  if [ -f "$path" ] || [ -L "$path" ]; then die "$path is left after the purge"; fi
done <<<"$files"
getent passwd callnote >/dev/null && die "the callnote user is left after the purge"
getent group callnote >/dev/null && die "the callnote group is left after the purge"
[ -z "$(traces)" ] || die "left after the purge: $(traces | tr '\n' ' ')"
step "ok: built, installed, delivered one notification as a service, purged without a trace"
