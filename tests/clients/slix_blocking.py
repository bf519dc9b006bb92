"""slix_im.py with slixmpp's own XEP-0191 plugin (xep_0191): the blocklist is read, changed
and pushed through the plugin's API and events, not hand-built stanzas.

Usage: as slix_im.py. Extra commands (stdin):
  {"cmd": "blocklist"}                   plugin.get_blocked_jids(); reports "blocklist"
  {"cmd": "block", "jids": [JID, ...]}   plugin.block(jids), awaited
  {"cmd": "unblock", "jids": [JID, ...]} plugin.unblock(jids), awaited
  {"cmd": "disco_server"}                disco#info of the server; reports "features"
Extra events (stdout): blocklist, features, blocked / unblocked (a push, with its items),
message_error (condition, and whether XEP-0191's <blocked/> came with it).
"""

import asyncio

import slix_im

BLOCKED = "{urn:xmpp:blocking:errors}blocked"


class BlockingClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0191")
        self.add_event_handler("blocked", lambda iq: self.on_push("blocked", iq["block"]))
        self.add_event_handler("unblocked", lambda iq: self.on_push("unblocked", iq["unblock"]))
        self.add_event_handler("message_error", self.on_message_error)

    def on_push(self, event, payload):
        slix_im.emit(event, items=sorted(str(item["jid"]) for item in payload))

    def on_message_error(self, msg):
        error = msg["error"]
        slix_im.emit(
            "message_error",
            **{
                "from": str(msg["from"]),
                "condition": error["condition"],
                "blocked": error.xml.find(BLOCKED) is not None,
            },
        )

    async def run(self, command):
        cmd = command["cmd"]
        plugin = self.plugin["xep_0191"]
        if cmd == "blocklist":
            jids = await plugin.get_blocked_jids(timeout=self.args.timeout)
            slix_im.emit("blocklist", items=sorted(str(j) for j in jids))
        elif cmd == "block":
            await plugin.block(command["jids"], timeout=self.args.timeout)
        elif cmd == "unblock":
            await plugin.unblock(command["jids"], timeout=self.args.timeout)
        elif cmd == "disco_server":
            info = await self.plugin["xep_0030"].get_info(
                jid=self.boundjid.domain, timeout=self.args.timeout
            )
            slix_im.emit("features", features=sorted(info["disco_info"]["features"]))
        else:
            return await super().run(command)
        slix_im.emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(BlockingClient))
