#!/usr/bin/env bash
# Runs a private Postfix instance for the relay benchmark's comparison (benches/relay.rs):
# its own configuration and queue under DIR (on the disk under test), listening on
# 127.0.0.1:LISTEN_PORT and relaying everything to the benchmark's SMTP sink on
# 127.0.0.1:SINK_PORT. Postfix's durability is left as it ships: the queue file is fsynced
# before the 250 to the client.
#
#   bash scripts/bench-postfix.sh install                       # the Debian package, no system config
#   bash scripts/bench-postfix.sh start DIR SINK_PORT LISTEN_PORT
#   bash scripts/bench-postfix.sh stop DIR
#
# Needs root (Postfix drops to its `postfix` user). The system's own Postfix instance is
# neither configured nor touched.
set -euo pipefail

cmd=${1:-}
case "$cmd" in
install)
    if ! command -v postfix >/dev/null 2>&1 && ! [ -x /usr/sbin/postfix ]; then
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >&2
    fi
    ;;
start)
    dir=$(realpath -m "${2:?DIR}")
    sink=${3:?SINK_PORT}
    listen=${4:?LISTEN_PORT}
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
    chown postfix "$dir/data"
    if ! runuser -u postfix -- test -w "$dir/data"; then
        echo "the postfix user cannot reach $dir/data: every folder above DIR must be searchable (chmod o+x)" >&2
        exit 1
    fi
    cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$sink
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
disable_dns_lookups = yes
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
biff = no
alias_maps =
alias_database =
local_recipient_maps =
EOF
    # The stock services, not chrooted (the queue is not a prepared chroot), smtpd on
    # the benchmark's port.
    cat >"$dir/etc/master.cf" <<EOF
127.0.0.1:$listen inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    postfix -c "$dir/etc" start >&2
    # Ready when smtpd answers.
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null; then
            exit 0
        fi
        sleep 0.1
    done
    echo "postfix did not start listening on 127.0.0.1:$listen; see $dir/maillog" >&2
    exit 1
    ;;
stop)
    dir=$(realpath -m "${2:?DIR}")
    postfix -c "$dir/etc" stop >&2 || true
    ;;
*)
    echo "usage: $0 install | start DIR SINK_PORT LISTEN_PORT | stop DIR" >&2
    exit 2
    ;;
esac
