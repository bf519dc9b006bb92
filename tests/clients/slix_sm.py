"""slix_im.py's client with slixmpp's own XEP-0198 plugin (xep_0198): it enables stream
management with resumption at login, and on the test's command drops its connection
without closing the stream and connects again, so that the plugin resumes the session
(or, when the server refuses, logs in afresh).

Extra commands (stdin):
  {"cmd": "reconnect"}   abort the TCP connection (no </stream:stream>) and connect again
Extra events (stdout): sm_enabled (id, resume), resumed (h), sm_failed, and session_start
again after a login that was not a resumption.
"""

import asyncio

import slix_im
from slix_im import emit


class SmClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0198")
        self.add_event_handler(
            "sm_enabled",
            lambda e: emit("sm_enabled", id=e["id"], resume=str(e["resume"]).lower()),
        )
        self.add_event_handler("session_resumed", lambda e: emit("resumed", h=e["h"]))
        self.add_event_handler("sm_failed", lambda _: emit("sm_failed"))

    async def run(self, command):
        if command["cmd"] != "reconnect":
            return await super().run(command)

        async def again(_):
            await asyncio.sleep(0)
            self.connect(host=self.args.host, port=self.args.port)

        self.add_event_handler("disconnected", again, disposable=True)
        self.abort()
        emit("ok", cmd="reconnect")
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(SmClient))
