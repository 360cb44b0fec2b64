#!/usr/bin/env bash
# A throwaway OpenLDAP slapd for callnote's LDAP tests and benchmark: its own slapd.conf,
# data and TLS material in a temp folder, loopback ports only, stopped by PID.
#
#   scripts/ldap-server.sh packages    Debian packages it needs (for scripts/test.sh)
#   scripts/ldap-server.sh install     checks they are there (installs them when root)
#   eval "$(scripts/ldap-server.sh start)"   starts it; prints `export LDAP_…=…` lines
#   scripts/ldap-server.sh status      what runs, where
#   scripts/ldap-server.sh stop        stops every instance by PID, removes the temp folder
#
# Outage control for tests (only the separate "outage" instance, LDAP_OUTAGE_URL, so the
# other tests running at the same time are not disturbed; data is kept across these):
#   scripts/ldap-server.sh outage-stop     SIGTERM, wait until the port refuses connections
#   scripts/ldap-server.sh outage-start    start it again on the same port with the same data
#   scripts/ldap-server.sh outage-freeze   SIGSTOP: connections are accepted, nothing answers
#   scripts/ldap-server.sh outage-thaw     SIGCONT
#
# What `start` sets up (PORT = LDAP_PORT, default 3890):
#   main instance     ldap://127.0.0.1:PORT (StartTLS offered), ldaps://localhost:PORT+1
#                     (also listening on 127.0.0.2, whose address the certificate does not
#                     name: LDAPS_WRONG_HOST_URL; and on [::1], which it names:
#                     LDAP_V6_URL, LDAPS_V6_URL). Two databases:
#                       dc=contoso,dc=com   tests/fixtures/directory.ldif + the service account
#                       dc=bulk,dc=example  LDAP_BULK_COUNT generated people (default 3000),
#                                           AD-like limits: at most 1000 entries per search or
#                                           page, any number through paged results
#   outage instance   ldap://127.0.0.1:PORT+2, the fixture data only
#   schemas           core, cosine, inetorgperson and tests/fixtures/ad-phone.schema.ldif,
#                     converted to slapd.conf syntax at start
#   TLS               a throwaway CA and a leaf for DNS:localhost, IP:127.0.0.1, IP:::1 (serverAuth),
#                     plus an unrelated second CA (LDAP_WRONG_CA)
#   access            nothing anonymous except the root DSE and the schema; the service
#                     account (LDAP_BIND_DN, random LDAP_BIND_PW) reads everything; the
#                     rootdn (LDAP_ROOT_DN, random LDAP_ROOT_PW) may change entries
#
# Settings: LDAP_PORT (3890), LDAP_BULK_COUNT (3000), LDAP_STATE_DIR
# (${TMPDIR:-/tmp}/callnote-slapd-PORT-<checksum of this checkout's path>, so that `stop` in
# one clone never stops another clone's server), LDAP_LOGLEVEL (0; e.g. "stats").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${LDAP_PORT:-3890}
ldaps_port=$((port + 1))
outage_port=$((port + 2))
# One state folder per checkout and port: `stop` in another clone never touches this one.
state=${LDAP_STATE_DIR:-${TMPDIR:-/tmp}/callnote-slapd-$port-$(printf %s "$root" | cksum | cut -d' ' -f1)}
bulk_count=${LDAP_BULK_COUNT:-3000}
base="dc=contoso,dc=com"
bulk_base="dc=bulk,dc=example"
bind_dn="cn=svc-callnote,ou=Service,$base"
schema_dir=/etc/ldap/schema
PATH=$PATH:/usr/sbin:/sbin

source "$(dirname "$0")/lib/server-common.sh"

# Prints the PID in FILE if that process is alive.
alive_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Waits until an ldap:// URL answers a root DSE query (up to 10 s).
wait_ready() {
  local url=$1 log=$2
  for _ in $(seq 1 100); do
    if ldapsearch -x -H "$url" -b "" -s base -o nettimeout=1 "(objectClass=*)" namingContexts >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  cat "$log" >&2 || true
  die "slapd did not answer on $url within 10 s (log above)"
}

# Waits until nothing accepts connections on a loopback port (up to 10 s).
wait_closed() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0
    sleep 0.1
  done
  die "port $1 still accepts connections"
}

# ad-phone.schema.ldif (cn=config form) -> slapd.conf syntax: unfold continuation lines,
# then olcAttributeTypes -> attributetype, olcObjectClasses -> objectclass.
convert_schema() {
  awk '
    /^#/ { next }
    /^ / { if (n) line[n] = line[n] substr($0, 2); next }
    { line[++n] = $0 }
    END {
      for (i = 1; i <= n; i++) {
        if (sub(/^olcAttributeTypes:[ \t]*/, "attributetype ", line[i])) print line[i]
        else if (sub(/^olcObjectClasses:[ \t]*/, "objectclass ", line[i])) print line[i]
      }
    }' "$1"
}

# N generated AD-like people for the bulk suffix: valid, unique NANP numbers in several
# attributes and formats, SIP and EUM proxies, display attributes.
generate_people() {
  awk -v n="$1" -v base="$bulk_base" 'BEGIN {
    print "dn: " base; print "objectClass: dcObject"; print "objectClass: organization"
    print "dc: bulk"; print "o: Bulk Test Org"; print ""
    print "dn: ou=People," base; print "objectClass: organizationalUnit"; print "ou: People"; print ""
    split("Ada Ben Chloe Dev Emil Fatima Goran Hana Ivan Jun Kofi Lena Mika Nora Omar Pia", gn, " ")
    split("Abbott Baker Chen Dubois Eriksen Fischer Garcia Haddad Ito Jensen Kowalski Lopez", sn, " ")
    split("Sales Finance Support Engineering Legal Operations", dept, " ")
    for (i = 0; i < n; i++) {
      g = gn[i % 16 + 1]; s = sn[int(i / 16) % 12 + 1]; id = sprintf("u%06d", i)
      ex = 300 + int(i / 10000); line = i % 10000
      print "dn: uid=" id ",ou=People," base
      print "objectClass: inetOrgPerson"; print "objectClass: adPhoneExtras"
      print "uid: " id; print "cn: " g " " s " " i; print "sn: " s; print "givenName: " g
      print "displayName: " g " " s " " i
      print "mail: " id "@bulk.example"; print "title: Specialist"; print "department: " dept[i % 6 + 1]
      print "company: Bulk Test Org"; print "l: Springfield"
      printf "telephoneNumber: +1 425 %03d %04d\n", ex, line
      printf "msRTCSIP-Line: tel:+1425%03d%04d\n", ex, line
      if (i % 2 == 0) printf "mobile: (206) %03d-%04d\n", ex, line
      if (i % 5 == 0) printf "otherTelephone: 425.%03d.%04d\n", ex + 100, line
      print "msRTCSIP-PrimaryUserAddress: sip:" id "@bulk.example"
      print "proxyAddresses: SMTP:" id "@bulk.example"
      print "proxyAddresses: SIP:" id "@bulk.example"
      print ""
    }
  }'
}

# Writes slapd.conf for one instance. $1 = folder, $2 = "main" or "outage".
write_conf() {
  local dir=$1 kind=$2
  cat >"$dir/slapd.conf" <<EOF
include $schema_dir/core.schema
include $schema_dir/cosine.schema
include $schema_dir/inetorgperson.schema
include $state/ad-phone.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
TLSCACertificateFile $state/tls/ca.pem
TLSCertificateFile $state/tls/server.pem
TLSCertificateKeyFile $state/tls/server.key
TLSProtocolMin 3.3
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="$bind_dn" read by * none

database mdb
suffix "$base"
rootdn "cn=admin,$base"
rootpw $root_pw_hash
directory $dir/contoso
maxsize 1073741824
index objectClass eq
index uid,mail eq
EOF
  if [ "$kind" = main ]; then
    cat >>"$dir/slapd.conf" <<EOF

database mdb
suffix "$bulk_base"
rootdn "cn=admin,$bulk_base"
rootpw $root_pw_hash
directory $dir/bulk
maxsize 4294967296
index objectClass eq
limits * size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
EOF
  fi
}

# Starts slapd for the instance in folder $1 on URLs $2 and records its PID.
run_slapd() {
  local dir=$1 urls=$2
  setsid slapd -f "$dir/slapd.conf" -h "$urls" -d "${LDAP_LOGLEVEL:-0}" >>"$dir/slapd.log" 2>&1 < /dev/null &
  echo $! >"$dir/run.pid"
}

make_tls() {
  local t=$state/tls
  mkdir -p "$t"
  (
    cd "$t"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout ca.key -out ca.pem -subj "/CN=callnote test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout wrong-ca.key -out wrong-ca.pem -subj "/CN=unrelated test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    chmod 600 ./*.key
  ) >"$state/openssl.log" 2>&1 || { cat "$state/openssl.log" >&2; die "openssl failed"; }
}

# The service account the relay binds with (not a person: no inetOrgPerson).
service_ldif() {
  cat <<EOF

dn: ou=Service,$base
objectClass: organizationalUnit
ou: Service

dn: $bind_dn
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc-callnote
userPassword: $bind_pw_hash
EOF
}

cmd_start() {
  command -v slapd >/dev/null || die "slapd is not installed (scripts/ldap-server.sh install)"
  if alive_pid "$state/main/run.pid" >/dev/null || alive_pid "$state/outage/run.pid" >/dev/null; then
    die "already running in $state (stop it first)"
  fi
  for p in "$port" "$ldaps_port" "$outage_port"; do
    port_busy "$p" && die "port $p is busy"
  done
  rm -rf "$state"
  mkdir -p "$state/main/contoso" "$state/main/bulk" "$state/outage/contoso"
  chmod 700 "$state"

  make_tls
  convert_schema "$root/tests/fixtures/ad-phone.schema.ldif" >"$state/ad-phone.schema"
  grep -q '^objectclass ' "$state/ad-phone.schema" || die "no object class converted from ad-phone.schema.ldif"

  bind_pw=$(openssl rand -hex 12)
  root_pw=$(openssl rand -hex 12)
  root_pw_hash=$(slappasswd -s "$root_pw")
  bind_pw_hash=$(slappasswd -s "$bind_pw")
  { cat "$root/tests/fixtures/directory.ldif"; service_ldif; } >"$state/contoso.ldif"
  generate_people "$bulk_count" >"$state/bulk.ldif"

  for kind in main outage; do
    write_conf "$state/$kind" "$kind"
    slaptest -u -f "$state/$kind/slapd.conf" >"$state/$kind/slaptest.log" 2>&1 \
      || { cat "$state/$kind/slaptest.log" >&2; die "slaptest refused $state/$kind/slapd.conf"; }
    slapadd -q -f "$state/$kind/slapd.conf" -b "$base" -l "$state/contoso.ldif" >"$state/$kind/slapadd.log" 2>&1 \
      || { cat "$state/$kind/slapadd.log" >&2; die "slapadd of the fixture directory failed"; }
  done
  slapadd -q -f "$state/main/slapd.conf" -b "$bulk_base" -l "$state/bulk.ldif" >"$state/main/slapadd-bulk.log" 2>&1 \
    || { cat "$state/main/slapadd-bulk.log" >&2; die "slapadd of the bulk people failed"; }
  rm -f "$state/bulk.ldif"

  echo "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$ldaps_port/ ldaps://127.0.0.2:$ldaps_port/ ldap://[::1]:$port/ ldaps://[::1]:$ldaps_port/" >"$state/main/urls"
  echo "ldap://127.0.0.1:$outage_port/" >"$state/outage/urls"
  for kind in main outage; do
    run_slapd "$state/$kind" "$(cat "$state/$kind/urls")"
  done
  wait_ready "ldap://127.0.0.1:$port" "$state/main/slapd.log"
  wait_ready "ldap://127.0.0.1:$outage_port" "$state/outage/slapd.log"

  cat <<EOF
export LDAP_PORT='$port'
export LDAP_STATE_DIR='$state'
export LDAP_URL='ldap://127.0.0.1:$port'
export LDAPS_URL='ldaps://localhost:$ldaps_port'
export LDAPS_WRONG_HOST_URL='ldaps://127.0.0.2:$ldaps_port'
export LDAP_V6_URL='ldap://[::1]:$port'
export LDAPS_V6_URL='ldaps://[::1]:$ldaps_port'
export LDAP_CA='$state/tls/ca.pem'
export LDAP_WRONG_CA='$state/tls/wrong-ca.pem'
export LDAP_BASE='$base'
export LDAP_BIND_DN='$bind_dn'
export LDAP_BIND_PW='$bind_pw'
export LDAP_ROOT_DN='cn=admin,$base'
export LDAP_ROOT_PW='$root_pw'
export LDAP_PAGED_URL='ldap://127.0.0.1:$port'
export LDAP_PAGED_BASE='$bulk_base'
export LDAP_PAGED_COUNT='$bulk_count'
export LDAP_PAGED_SIZELIMIT='1000'
export LDAP_OUTAGE_URL='ldap://127.0.0.1:$outage_port'
EOF
}

cmd_stop() {
  local pid
  for kind in main outage; do
    if pid=$(alive_pid "$state/$kind/run.pid"); then
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$state"
}

cmd_status() {
  local pid
  for kind in main outage; do
    if pid=$(alive_pid "$state/$kind/run.pid"); then
      echo "$kind: running, pid $pid, $(cat "$state/$kind/urls")"
    else
      echo "$kind: not running"
    fi
  done
}

outage_pid() {
  alive_pid "$state/outage/run.pid" || die "the outage instance is not running (state $state)"
}

case "${1:-}" in
  packages) printf "%s\n" slapd ldap-utils ;;
  install)
    missing=()
    for p in slapd ldap-utils; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
      echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  outage-stop)
    pid=$(outage_pid)
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    wait_closed "$outage_port"
    ;;
  outage-start)
    alive_pid "$state/outage/run.pid" >/dev/null && die "the outage instance is already running"
    [ -f "$state/outage/slapd.conf" ] || die "no outage instance in $state (start first)"
    run_slapd "$state/outage" "$(cat "$state/outage/urls")"
    wait_ready "ldap://127.0.0.1:$outage_port" "$state/outage/slapd.log"
    ;;
  outage-freeze) kill -STOP "$(outage_pid)" ;;
  outage-thaw) kill -CONT "$(outage_pid)" ;;
  *) sed -n '2,35p' "$0" >&2; exit 2 ;;
esac
