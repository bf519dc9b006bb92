"""slix_im.py's client with slixmpp's own entity capabilities plugin (xep_0115, with the
xep_0030 disco it depends on). The plugin reads the server's <c/> stream feature itself and
raises its "entity_caps" event; on it this client asks the server's disco#info for
NODE#VER through xep_0030 and hashes the answer with the plugin's generate_verstring, then
reports both: {"event": "server_caps", "node", "hash", "ver" (the stream feature's),
"computed" (slixmpp's hash of the answer), "echoed_node", "features", "identities"}. The
plugin also puts its own <c/> into this client's presence.

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "disco_node", "to": JID, "node": NODE}  reports "disco_node" (features), or
                                                 "iq_error" with the condition
"""

import asyncio

from slixmpp.exceptions import IqError

import slix_im
from slix_im import emit


class CapsClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0115")
        self.add_event_handler("entity_caps", self.on_entity_caps)

    async def on_entity_caps(self, presence):
        # The plugin raises the event for the stream feature with the server's domain as
        # the sender (and for contacts' presence, which this test has none of).
        if presence["from"] != self.boundjid.domain:
            return
        caps = presence["caps"]
        node = "%s#%s" % (caps["node"], caps["ver"])
        try:
            iq = await self.plugin["xep_0030"].get_info(
                jid=presence["from"], node=node, timeout=self.args.timeout)
        except IqError as e:
            emit("server_caps", ver=caps["ver"], error=e.iq["error"]["condition"])
            return
        info = iq["disco_info"]
        emit("server_caps",
             node=caps["node"],
             hash=caps["hash"],
             ver=caps["ver"],
             computed=self.plugin["xep_0115"].generate_verstring(info, caps["hash"]),
             echoed_node=info["node"],
             features=sorted(info["features"]),
             identities=[list(i) for i in info["identities"]])

    async def run(self, command):
        cmd = command["cmd"]
        if cmd != "disco_node":
            return await super().run(command)
        try:
            iq = await self.plugin["xep_0030"].get_info(
                jid=command["to"], node=command["node"], timeout=self.args.timeout)
            emit("disco_node", features=sorted(iq["disco_info"]["features"]))
        except IqError as e:
            emit("iq_error", cmd=cmd, condition=e.iq["error"]["condition"])
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(CapsClient))
