"""Throwaway SMTP server for callnote's real-server tests (aiosmtpd, loopback only).

Started and stopped by scripts/smtp-server.sh; not meant to be run by hand. One process
serves six listeners that share one Maildir:

  main        PORT      STARTTLS offered and required before MAIL; AUTH PLAIN/LOGIN required
  plain       PORT+1    no TLS at all (STARTTLS never offered), no AUTH
  smtps       PORT+2    implicit TLS from the first byte; AUTH PLAIN/LOGIN required
  badname     PORT+3    like main, but its certificate names only mail.invalid (same CA)
  selfsigned  PORT+4    like main, but with a self-signed certificate (no CA; CA:TRUE, as
                        `openssl req -x509` and Exchange's default receive connector make them)
  cleartext   PORT+5    no TLS at all, AUTH PLAIN/LOGIN offered and required in clear

Scripted recipients (regular expressions, matched against the RCPT address):
  --reject-rcpt         550 5.1.1 for every attempt
  --tempfail-rcpt       451 4.3.0 for every attempt
  --tempfail-once-rcpt  451 4.3.0 for the first attempt of each address, 250 afterwards

Every accepted message is written byte for byte to MAILDIR/new/<key> (through tmp/), and
its envelope to MAILDIR/envelope/<key>.json: mail_from, rcpt_tos, mail_options, tls,
tls_version, auth (the user name, or null), listener, port, peer, connection, queue_id. The final
reply is `250 2.0.0 Ok: queued as <queue_id>`, the way Postfix says it.

Each connection gets a random id, `connection` in the envelope JSON; every QUIT received is
recorded as an empty file MAILDIR/quit/<connection>, so tests can tell a polite goodbye from
a dropped connection (client ports are reused, so the peer address cannot name it).
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import ssl
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def connection_id(session):
    """A random id for the connection of `session`, made on first use."""
    if not hasattr(session, "callnote_connection"):
        session.callnote_connection = secrets.token_hex(8)
    return session.callnote_connection


class Handler:
    def __init__(self, listener, port, maildir, rules):
        self.listener = listener
        self.port = port
        self.maildir = maildir
        self.reject, self.tempfail, self.tempfail_once, self.seen = rules

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.tempfail and self.tempfail.search(address):
            return f"451 4.3.0 <{address}>: Temporary lookup failure, try again later"
        if self.tempfail_once and self.tempfail_once.search(address) and address not in self.seen:
            self.seen.add(address)
            return f"451 4.3.0 <{address}>: Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_QUIT(self, server, session, envelope):
        open(os.path.join(self.maildir, "quit", connection_id(session)), "w").close()
        return "221 2.0.0 Bye"

    async def handle_DATA(self, server, session, envelope):
        key = f"{time.time_ns()}.{secrets.token_hex(4)}.callnote-test"
        queue_id = secrets.token_hex(5).upper()
        tmp = os.path.join(self.maildir, "tmp", key)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.maildir, "new", key))
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        auth = session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data
        peer = session.peer
        record = {
            "queue_id": queue_id,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": ssl_object is not None,
            "tls_version": ssl_object.version() if ssl_object else None,
            "auth": auth if session.authenticated else None,
            "listener": self.listener,
            "port": self.port,
            "peer": f"{peer[0]}:{peer[1]}" if peer else None,
            "connection": connection_id(session),
        }
        env_tmp = os.path.join(self.maildir, "tmp", key + ".json")
        with open(env_tmp, "w") as f:
            json.dump(record, f)
        os.rename(env_tmp, os.path.join(self.maildir, "envelope", key + ".json"))
        return f"250 2.0.0 Ok: queued as {queue_id}"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword)
                and auth_data.login == user.encode()
                and auth_data.password == password.encode()):
            return AuthResult(success=True, auth_data=user)
        # handled=False: aiosmtpd then answers 535 itself (handled=True would answer nothing).
        return AuthResult(success=False, handled=False)
    return authenticate


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def serve(args):
    for sub in ("new", "cur", "tmp", "envelope", "quit"):
        os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
    compile_ = lambda r: re.compile(r) if r else None
    rules = (compile_(args.reject_rcpt), compile_(args.tempfail_rcpt),
             compile_(args.tempfail_once_rcpt), set())
    password = os.environ["SMTP_PASS"]
    auth = authenticator_for(args.user, password)
    main_tls = tls_context(args.cert, args.key)
    badname_tls = tls_context(args.badname_cert, args.badname_key)
    selfsigned_tls = tls_context(args.selfsigned_cert, args.selfsigned_key)
    loop = asyncio.get_running_loop()

    listeners = [
        # name, port offset, SMTP keyword arguments, implicit TLS context
        ("main", 0, dict(tls_context=main_tls, require_starttls=True,
                         auth_required=True, authenticator=auth), None),
        ("plain", 1, dict(), None),
        # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is TLS all the same.
        ("smtps", 2, dict(auth_required=True, auth_require_tls=False, authenticator=auth), main_tls),
        ("badname", 3, dict(tls_context=badname_tls, require_starttls=True,
                            auth_required=True, authenticator=auth), None),
        ("selfsigned", 4, dict(tls_context=selfsigned_tls, require_starttls=True,
                               auth_required=True, authenticator=auth), None),
        ("cleartext", 5, dict(auth_required=True, auth_require_tls=False, authenticator=auth), None),
    ]
    servers = []
    for name, offset, kwargs, implicit in listeners:
        port = args.port + offset
        handler = Handler(name, port, args.maildir, rules)
        factory = (lambda h=handler, kw=kwargs:
                   SMTP(h, hostname="localhost", ident="callnote-test-smtpd", loop=loop, **kw))
        servers.append(await loop.create_server(factory, args.host, port, ssl=implicit))

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(args.ready_file, "w") as f:
        f.write(str(os.getpid()))
    await stop.wait()
    for s in servers:
        s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--badname-cert", required=True)
    p.add_argument("--badname-key", required=True)
    p.add_argument("--selfsigned-cert", required=True)
    p.add_argument("--selfsigned-key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--reject-rcpt")
    p.add_argument("--tempfail-rcpt")
    p.add_argument("--tempfail-once-rcpt")
    p.add_argument("--ready-file", required=True)
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
