#!/usr/bin/env bash
# A throwaway SMTP server on loopback for callnote's real-server tests (aiosmtpd 1.4.6).
#
#   scripts/smtp-server.sh packages        Debian packages this script needs, one per line
#   scripts/smtp-server.sh install         Python venv at .cache/aiosmtpd-venv (inside the repo)
#   eval "$(scripts/smtp-server.sh start)" starts it; prints `export SMTP_…=…` lines
#   scripts/smtp-server.sh status          running or not (exit 0 / 1)
#   scripts/smtp-server.sh count           number of messages delivered so far
#   scripts/smtp-server.sh stop            stops it by PID and removes its temp folder
#
# Settings (environment, all optional):
#   SMTP_PORT=10025          first of six consecutive loopback ports (see below)
#   SMTP_REJECT_RCPT=regex   RCPT answered 550 5.1.1          (default ^rejected[-.+@])
#   SMTP_TEMPFAIL_RCPT=regex RCPT answered 451 4.3.0          (default ^tempfail[-.+@])
#   SMTP_TEMPFAIL_ONCE_RCPT  451 on an address's first RCPT, 250 after (default ^greylist[-.+@])
#   KEEP=1                   `stop` leaves the temp folder (Maildir, certificates, log)
#
# `start` prints, for eval:
#   SMTP_HOST=127.0.0.1  SMTP_TLS_NAME=localhost  SMTP_USER / SMTP_PASS (random per start)
#   SMTP_PORT            STARTTLS offered and required, AUTH PLAIN/LOGIN required
#   SMTP_PLAIN_PORT      no STARTTLS offered, no AUTH
#   SMTP_SMTPS_PORT      implicit TLS (smtps://), AUTH required
#   SMTP_BADNAME_PORT    STARTTLS + AUTH, but the certificate names only mail.invalid
#   SMTP_SELFSIGNED_PORT STARTTLS + AUTH with a self-signed certificate (CA:TRUE, no CA)
#   SMTP_CLEARTEXT_PORT  no STARTTLS, AUTH PLAIN/LOGIN required in clear
#   SMTP_CA              the test CA (PEM) that signed the main and badname certificates
#   SMTP_WRONG_CA        an unrelated CA, for "wrong CA" tests
#   SMTP_SERVER_CERT     the main listener's certificate (PEM; also used by smtps)
#   SMTP_SELFSIGNED_CERT the self-signed certificate (PEM), SMTP_SELFSIGNED_KEY its key (for
#                        tests that run a TLS server of their own)
#   SMTP_SERVER_FINGERPRINT, SMTP_SELFSIGNED_FINGERPRINT
#                        their SHA-256 fingerprints as openssl prints them: sha256:AB:CD:…
#   SMTP_MAILDIR         Maildir: new/<key> (exact bytes) + envelope/<key>.json
#                        {queue_id, mail_from, rcpt_tos, tls, tls_version, auth, listener, port, peer,
#                        connection} + quit/<connection> for every QUIT received
#   SMTP_REJECT_RCPT, SMTP_TEMPFAIL_RCPT, SMTP_TEMPFAIL_ONCE_RCPT (the regexes in force)
#   SMTP_SERVER_PID
# The certificates are made fresh with openssl on every start: a CA, and leaf certificates
# with SAN DNS:localhost + IP:127.0.0.1 (badname: DNS:mail.invalid) and the serverAuth EKU;
# and a self-signed one with the same SAN.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.cache/aiosmtpd-venv"
port=${SMTP_PORT:-10025}
state="${TMPDIR:-/tmp}/callnote-smtp-$port"
reject=${SMTP_REJECT_RCPT:-'^rejected[-.+@]'}
tempfail=${SMTP_TEMPFAIL_RCPT:-'^tempfail[-.+@]'}
tempfail_once=${SMTP_TEMPFAIL_ONCE_RCPT:-'^greylist[-.+@]'}

source "$(dirname "$0")/lib/server-common.sh"

make_certs() {
  local d=$1
  openssl_quiet() { openssl "$@" 2>>"$d/openssl.log" >/dev/null; }
  for ca in ca wrong-ca; do
    openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$d/$ca.key" -out "$d/$ca.pem" \
      -subj "/CN=callnote test $ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  done
  leaf() { # name, subjectAltName
    openssl_quiet req -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$1"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$2" >"$d/$1.ext"
    openssl_quiet x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -days 2 -extfile "$d/$1.ext" -out "$d/$1.pem"
  }
  leaf server "DNS:localhost,IP:127.0.0.1"
  leaf badname "DNS:mail.invalid"
  openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$d/selfsigned.key" -out "$d/selfsigned.pem" \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "extendedKeyUsage=serverAuth"
}

# `sha256:AB:CD:…`, the SHA-256 of the certificate's DER bytes.
fingerprint() {
  openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^[^=]*=/sha256:/'
}

cmd=${1:-}
case "$cmd" in
  packages)
    echo openssl
    ;;
  install)
    install_venv aiosmtpd 'aiosmtpd==1.4.6'
    ;;
  start)
    [ -x "$venv/bin/python" ] || die "not installed: run scripts/smtp-server.sh install first"
    if pid=$(running_pid); then die "already running (pid $pid, $state)"; fi
    for p in $(seq "$port" $((port + 5))); do
      port_busy "$p" && die "port $p is already in use (choose another SMTP_PORT)"
    done
    rm -rf "$state"
    mkdir -p "$state/maildir"
    make_certs "$state" || die "openssl failed: $(cat "$state/openssl.log")"
    pass=$(openssl rand -hex 12)
    SMTP_PASS=$pass setsid nohup "$venv/bin/python" "$root/scripts/smtp_server.py" \
      --port "$port" --maildir "$state/maildir" \
      --cert "$state/server.pem" --key "$state/server.key" \
      --badname-cert "$state/badname.pem" --badname-key "$state/badname.key" \
      --selfsigned-cert "$state/selfsigned.pem" --selfsigned-key "$state/selfsigned.key" \
      --user relay --reject-rcpt "$reject" --tempfail-rcpt "$tempfail" \
      --tempfail-once-rcpt "$tempfail_once" --ready-file "$state/ready" \
      >"$state/server.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    for _ in $(seq 100); do
      [ -f "$state/ready" ] && break
      kill -0 "$(cat "$state/pid")" 2>/dev/null || die "server exited: $(tail -5 "$state/server.log")"
      sleep 0.1
    done
    [ -f "$state/ready" ] || die "server did not start within 10 s: $(tail -5 "$state/server.log")"
    cat <<EOF
export SMTP_HOST=127.0.0.1
export SMTP_TLS_NAME=localhost
export SMTP_PORT=$port
export SMTP_PLAIN_PORT=$((port + 1))
export SMTP_SMTPS_PORT=$((port + 2))
export SMTP_BADNAME_PORT=$((port + 3))
export SMTP_SELFSIGNED_PORT=$((port + 4))
export SMTP_CLEARTEXT_PORT=$((port + 5))
export SMTP_USER=relay
export SMTP_PASS=$pass
export SMTP_CA=$state/ca.pem
export SMTP_WRONG_CA=$state/wrong-ca.pem
export SMTP_SERVER_CERT=$state/server.pem
export SMTP_SELFSIGNED_CERT=$state/selfsigned.pem
export SMTP_SELFSIGNED_KEY=$state/selfsigned.key
export SMTP_SERVER_FINGERPRINT=$(fingerprint "$state/server.pem")
export SMTP_SELFSIGNED_FINGERPRINT=$(fingerprint "$state/selfsigned.pem")
export SMTP_MAILDIR=$state/maildir
export SMTP_REJECT_RCPT='$reject'
export SMTP_TEMPFAIL_RCPT='$tempfail'
export SMTP_TEMPFAIL_ONCE_RCPT='$tempfail_once'
export SMTP_SERVER_PID=$(cat "$state/pid")
EOF
    ;;
  status)
    if pid=$(running_pid); then echo "running (pid $pid, ports $port-$((port + 5)), $state)"; else echo "not running"; exit 1; fi
    ;;
  count)
    find "$state/maildir/new" -type f 2>/dev/null | wc -l
    ;;
  stop)
    if pid=$(running_pid); then
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    [ "${KEEP:-}" = 1 ] || rm -rf "$state"
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
