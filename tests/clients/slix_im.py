"""A standard XMPP client we did not write (slixmpp, from PyPI), driven step by step by the
IM end-to-end tests: it logs in over STARTTLS (trusting exactly the test server's
certificate), then reads one JSON command per line on stdin and reports everything it sees
as JSON lines on stdout. The test decides every step and waits for the events it needs, so
nothing here sleeps to synchronise.

Subscriptions are handled by hand (auto_authorize = None, auto_subscribe = False): the test
tells this client when to approve. The roster state it reports is slixmpp's own
(`client_roster[jid]['subscription']`), which slixmpp updates only from the server's roster
results and pushes.

Usage: slix_im.py --jid JID --password PW --port N --cafile PEM [--host 127.0.0.1]
                  [--mechanism NAME] [--timeout 60]

Commands (stdin, one JSON object per line):
  {"cmd": "get_roster"}                      roster get; reports "roster"
  {"cmd": "roster_state"}                    reports "roster" from the local copy only
  {"cmd": "available"} / {"cmd": "unavailable"}    "available" is ok once the server
                                             reflected it back to this resource
  {"cmd": "subscribe", "to": BAREJID}        client_roster[to].subscribe()
  {"cmd": "authorize", "to": BAREJID}        client_roster[to].authorize()
  {"cmd": "message", "to": JID, "body": TEXT}
  {"cmd": "quit"}
Events (stdout): session_start, ok (after each command), roster, roster_update (each roster
result or push, with its items and the local state after it), presence, received,
stream_error (with its condition), disconnected, done.
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
        self.started = asyncio.get_event_loop().create_future()
        self.ssl_context = ssl.create_default_context(cafile=args.cafile)
        self.enable_plaintext = False
        self.enable_direct_tls = False
        self.enable_starttls = True
        if args.mechanism:
            self.plugin["feature_mechanisms"].use_mech = args.mechanism
        # The test approves subscriptions itself.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda *_: self.fail("auth_failed"))
        self.add_event_handler("ssl_invalid_chain", lambda *_: self.fail("tls_invalid"))
        self.add_event_handler("disconnected", lambda *_: self.fail("disconnected"))
        self.add_event_handler(
            "stream_error", lambda error: emit("stream_error", condition=error["condition"])
        )
        self.add_event_handler("roster_update", self.on_roster_update)
        self.add_event_handler("presence", self.on_presence)
        # Kept apart from on_presence, which other scripts override.
        self.add_event_handler("presence", self.note_own_presence)
        self.own_presence = None
        self.add_event_handler("message", self.on_message)

    def fail(self, why):
        emit(why)
        if not self.started.done():
            self.started.set_result(False)

    def on_start(self, _):
        emit("session_start", jid=str(self.boundjid))
        if not self.started.done():
            self.started.set_result(True)

    def state(self):
        roster = self.client_roster
        return {
            jid: {
                "subscription": roster[jid]["subscription"],
                "pending_out": roster[jid]["pending_out"],
            }
            for jid in roster
        }

    def on_roster_update(self, iq):
        # Registered after ClientXMPP's own handler, so the local copy is already updated.
        items = {
            str(jid): {"subscription": item["subscription"], "ask": item["ask"]}
            for jid, item in iq["roster"]["items"].items()
        }
        emit(
            "roster_update",
            type=iq["type"],
            ver=iq["roster"]["ver"],
            items=items,
            state=self.state(),
        )

    def on_presence(self, presence):
        emit("presence", **{"from": str(presence["from"]), "type": presence["type"]})

    def note_own_presence(self, presence):
        if (
            presence["from"] == self.boundjid
            and presence["type"] not in ("unavailable", "error")
            and self.own_presence is not None
            and not self.own_presence.done()
        ):
            self.own_presence.set_result(True)

    async def announce(self):
        """Sends available presence and returns once the server has reflected it to this
        resource (RFC 6121 4.2.2), so the session is available (and gets messages to the
        bare JID) before the test's next step, not merely written to the socket."""
        self.own_presence = asyncio.get_event_loop().create_future()
        self.send_presence()
        await asyncio.wait_for(self.own_presence, self.args.timeout)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            emit("received", **{"from": str(msg["from"]), "body": msg["body"]})

    async def run(self, command):
        cmd = command["cmd"]
        if cmd == "get_roster":
            await self.get_roster(timeout=self.args.timeout)
            emit("roster", ver=self.client_roster.version, items=self.state())
        elif cmd == "roster_state":
            emit("roster", ver=self.client_roster.version, items=self.state())
        elif cmd == "available":
            await self.announce()
        elif cmd == "unavailable":
            self.send_presence(ptype="unavailable")
        elif cmd == "subscribe":
            self.client_roster[command["to"]].subscribe()
        elif cmd == "authorize":
            self.client_roster[command["to"]].authorize()
        elif cmd == "message":
            self.send_message(mto=command["to"], mbody=command["body"], mtype="chat")
        elif cmd == "quit":
            return False
        else:
            raise ValueError(f"unknown command {cmd!r}")
        emit("ok", cmd=cmd)
        return True


async def stdin_lines():
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def main(client_class=None):
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--mechanism")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    client = (client_class or Client)(args)
    client.connect(host=args.host, port=args.port)
    ok = False
    try:
        if await asyncio.wait_for(client.started, args.timeout):
            reader = await stdin_lines()
            while True:
                line = await asyncio.wait_for(reader.readline(), args.timeout)
                if not line:
                    break
                if not await client.run(json.loads(line)):
                    ok = True
                    break
    except asyncio.TimeoutError:
        emit("timeout")
    try:
        await asyncio.wait_for(client.disconnect(), 5)
    except asyncio.TimeoutError:
        emit("disconnect_timeout")
    emit("done", ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
