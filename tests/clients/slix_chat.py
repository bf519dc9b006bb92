"""A standard XMPP client we did not write (slixmpp, from PyPI), driven by the end-to-end
tests: logs in over STARTTLS (or direct TLS) with the SASL mechanism the test names, sends
one chat message, waits for one, and prints what happened as JSON lines on stdout.

Usage: slix_chat.py --jid JID --password PW --host 127.0.0.1 --port N --cafile PEM
                    [--direct-tls] [--mechanism SCRAM-SHA-256] [--send-to JID --body TEXT]
                    [--expect-from BAREJID] [--timeout 20]
"""

import argparse
import asyncio
import json
import ssl
import sys

import slixmpp


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.done = asyncio.get_event_loop().create_future()
        self.received = None
        # Trust exactly the test server's self-signed certificate.
        ctx = ssl.create_default_context(cafile=args.cafile)
        self.ssl_context = ctx
        self.enable_plaintext = False
        if args.direct_tls:
            self.enable_direct_tls = True
            self.enable_starttls = False
        else:
            self.enable_direct_tls = False
            self.enable_starttls = True
        if args.mechanism:
            self.plugin["feature_mechanisms"].use_mech = args.mechanism
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("ssl_invalid_chain", self.on_bad_cert)

    def on_bad_cert(self, *_):
        emit("tls_invalid")
        self.finish(False)

    def on_failed_auth(self, *_):
        emit("auth_failed")
        self.finish(False)

    def on_auth_success(self, *_):
        mech = self.plugin["feature_mechanisms"].mech
        emit("auth_success", mechanism=getattr(mech, "name", None) if mech else None)

    async def on_start(self, _):
        emit("session_start", jid=str(self.boundjid), encrypted=self.is_secure if hasattr(self, "is_secure") else None)
        self.send_presence()
        emit("presence_sent")
        if self.args.send_to:
            self.send_message(mto=self.args.send_to, mbody=self.args.body, mtype="chat")
            emit("sent", to=self.args.send_to, body=self.args.body)
        if not self.args.expect_from:
            self.finish(True)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            emit("received", **{"from": str(msg["from"]), "body": msg["body"]})
            if self.args.expect_from and msg["from"].bare == self.args.expect_from:
                self.finish(True)

    def finish(self, ok):
        if not self.done.done():
            self.done.set_result(ok)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--direct-tls", action="store_true")
    p.add_argument("--mechanism")
    p.add_argument("--send-to")
    p.add_argument("--body", default="hello from slixmpp")
    p.add_argument("--expect-from")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()

    client = Client(args)
    client.connect(host=args.host, port=args.port)
    try:
        ok = await asyncio.wait_for(client.done, args.timeout)
    except asyncio.TimeoutError:
        emit("timeout")
        ok = False
    client.disconnect()
    await asyncio.sleep(0.2)
    emit("done", ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
