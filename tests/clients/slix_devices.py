"""slix_im.py's client as one of a user's several devices, with slixmpp's own plugins for
that: XEP-0280 Message Carbons (xep_0280) and XEP-0352 Client State Indication (xep_0352).
Same arguments, commands and events as slix_im.py, plus:

Commands (stdin):
  {"cmd": "carbons_enable"} / {"cmd": "carbons_disable"}
                                             plugin['xep_0280'].enable() / .disable(),
                                             the server's result awaited
  {"cmd": "private_message", "to": JID, "body": TEXT}
                                             a chat message marked <private/> (the plugin's
                                             carbon_private)
  {"cmd": "inactive"} / {"cmd": "active"}    plugin['xep_0352'].send_inactive() / send_active()
  {"cmd": "csi_state"}                       reports "csi" (whether the stream offered CSI)
  {"cmd": "ping"}                            XEP-0199 ping to the server, the pong awaited
Events (stdout): carbon_received and carbon_sent (the plugin's events: the carbon's from
and the forwarded message's from, to and body), csi; "received" (a message that is no
carbon) also says whether it still carried <private/>, and "presence" its status;
carbon_ignored: a <received/> or <sent/> wrapper that is not from the account's own bare
JID, which the plugin does not take for a carbon (XEP-0280 §11), with its from, direction
and the forwarded body.
"""

import asyncio

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

import slix_im
from slix_im import emit

CARBONS = "{urn:xmpp:carbons:2}"
FORWARDED_BODY = "{urn:xmpp:forward:0}forwarded/{jabber:client}message/{jabber:client}body"


class Client(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0280")
        self.register_plugin("xep_0352")
        self.register_plugin("xep_0199")
        self.add_event_handler("carbon_received", self.on_carbon_received)
        self.add_event_handler("carbon_sent", self.on_carbon_sent)
        for direction in ("received", "sent"):
            self.register_handler(
                Callback(
                    "Carbon wrapper " + direction,
                    StanzaPath("message/carbon_" + direction),
                    lambda msg, d=direction: self.on_wrapper(msg, d),
                )
            )

    def on_wrapper(self, msg, direction):
        # The plugin drops a wrapper from anyone but the account without a word (and
        # slixmpp's "message" event needs a body of the message's own): reported here.
        if msg["from"].bare == self.boundjid.bare:
            return
        body = msg.xml.find(CARBONS + direction + "/" + FORWARDED_BODY)
        emit(
            "carbon_ignored",
            **{
                "from": str(msg["from"]),
                "direction": direction,
                "body": body.text if body is not None else None,
            },
        )

    def on_message(self, msg):
        # Carbons are reported by the plugin's events below.
        if msg.xml.find(CARBONS + "received") is not None:
            return
        if msg.xml.find(CARBONS + "sent") is not None:
            return
        if msg["type"] in ("chat", "normal"):
            emit(
                "received",
                **{
                    "from": str(msg["from"]),
                    "body": msg["body"],
                    "private": msg.xml.find(CARBONS + "private") is not None,
                },
            )

    def on_presence(self, presence):
        emit(
            "presence",
            **{
                "from": str(presence["from"]),
                "type": presence["type"],
                "status": presence["status"],
            },
        )

    def report_carbon(self, event, msg, forwarded):
        emit(
            event,
            **{
                "from": str(msg["from"]),
                "forwarded_from": str(forwarded["from"]),
                "forwarded_to": str(forwarded["to"]),
                "body": forwarded["body"],
            },
        )

    def on_carbon_received(self, msg):
        self.report_carbon("carbon_received", msg, msg["carbon_received"])

    def on_carbon_sent(self, msg):
        self.report_carbon("carbon_sent", msg, msg["carbon_sent"])

    async def run(self, command):
        cmd = command["cmd"]
        if cmd == "carbons_enable":
            await self.plugin["xep_0280"].enable(timeout=self.args.timeout)
        elif cmd == "carbons_disable":
            await self.plugin["xep_0280"].disable(timeout=self.args.timeout)
        elif cmd == "private_message":
            msg = self.make_message(mto=command["to"], mbody=command["body"], mtype="chat")
            msg.enable("carbon_private")
            msg.send()
        elif cmd == "inactive":
            self.plugin["xep_0352"].send_inactive()
        elif cmd == "active":
            self.plugin["xep_0352"].send_active()
        elif cmd == "ping":
            await self.plugin["xep_0199"].ping(jid=self.boundjid.domain, timeout=self.args.timeout)
        elif cmd == "csi_state":
            emit("csi", enabled=self.plugin["xep_0352"].enabled)
        else:
            return await super().run(command)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(Client))
