"""slix_pep.py's client, pointed at a publish-subscribe service of its own (pubsub.HOST)
through slixmpp's xep_0060 plugin. Every request goes through the plugin's API; IQ errors
are reported as in slix_pep.py ("iq_error" with "condition" and "pubsub").

More commands (SERVICE: the service's JID):
  {"cmd": "create", "to": SERVICE, "node": N or null, "options": {VAR: VALUE}}
                                   xep_0060.create_node; reports "created" (the node)
  {"cmd": "configure_at", "to": SERVICE, "node": N, "options": {VAR: VALUE}}
  {"cmd": "subscribe", "to": SERVICE, "node": N}      reports "subscribed" (subid)
  {"cmd": "unsubscribe", "to": SERVICE, "node": N}
  {"cmd": "publish_to", "to": SERVICE, "node": N, "id": ID, "payload": XML}
  {"cmd": "page", "to": SERVICE, "node": N, "max": M, "after": ID, "before": ID or ""}
                                   one XEP-0059 page; reports "page" (ids, first, last, count)
  {"cmd": "purge_at", "to": SERVICE, "node": N}
  {"cmd": "affiliate", "to": SERVICE, "node": N, "jid": JID, "affiliation": A}
  {"cmd": "affiliations", "to": SERVICE, "node": N}  reports "affiliations" ([[jid, a]…])
  {"cmd": "my_subscriptions", "to": SERVICE}         reports "my_subscriptions" (nodes)
Notifications are the "pep" events of slix_pep.py ("from" is the service).
"""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0059.stanza import Set
from slixmpp.plugins.xep_0060.stanza.pubsub import Pubsub
from slixmpp.xmlstream import register_stanza_plugin

import slix_im
import slix_pep
from slix_im import emit

NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"


class PubsubClient(slix_pep.PepClient):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0059")
        # XEP-0060 §6.5.4: a <set/> inside <pubsub/>.
        register_stanza_plugin(Pubsub, Set)

    async def run(self, command):
        cmd = command["cmd"]
        t = self.args.timeout
        pubsub = self.plugin["xep_0060"]
        to = command.get("to")
        try:
            if cmd == "create":
                options = command.get("options")
                form = slix_pep.options_form(NODE_CONFIG, options) if options else None
                iq = await pubsub.create_node(to, command.get("node"), config=form, timeout=t)
                emit("created", node=iq["pubsub"]["create"]["node"])
            elif cmd == "configure_at":
                await pubsub.set_node_config(
                    to, command["node"],
                    slix_pep.options_form(NODE_CONFIG, command["options"]), timeout=t)
            elif cmd == "subscribe":
                iq = await pubsub.subscribe(to, command["node"], timeout=t)
                emit("subscribed", node=command["node"],
                     subid=iq["pubsub"]["subscription"]["subid"])
            elif cmd == "unsubscribe":
                await pubsub.unsubscribe(to, command["node"], timeout=t)
            elif cmd == "publish_to":
                iq = await pubsub.publish(
                    to, command["node"], id=command.get("id"),
                    payload=ET.fromstring(command["payload"]), timeout=t)
                emit("published", node=command["node"],
                     id=iq["pubsub"]["publish"]["item"]["id"])
            elif cmd == "page":
                iq = self.make_iq_get(ito=to)
                iq["pubsub"]["items"]["node"] = command["node"]
                rsm = iq["pubsub"]["rsm"]
                rsm["max"] = str(command["max"])
                if command.get("after") is not None:
                    rsm["after"] = command["after"]
                if command.get("before") is not None:
                    rsm["before"] = command["before"] or True
                result = await iq.send(timeout=t)
                items = result.xml.findall(
                    "{http://jabber.org/protocol/pubsub}pubsub/"
                    "{http://jabber.org/protocol/pubsub}items/"
                    "{http://jabber.org/protocol/pubsub}item")
                got = result["pubsub"]["rsm"]
                emit("page", node=command["node"], ids=[i.get("id") for i in items],
                     first=got["first"], last=got["last"], count=got["count"])
            elif cmd == "purge_at":
                await pubsub.purge(to, command["node"], timeout=t)
            elif cmd == "affiliate":
                await pubsub.modify_affiliations(
                    to, command["node"], [(command["jid"], command["affiliation"])], timeout=t)
            elif cmd == "affiliations":
                iq = await pubsub.get_node_affiliations(to, command["node"], timeout=t)
                emit("affiliations", list=sorted(
                    [a["jid"].bare, a["affiliation"]]
                    for a in iq["pubsub_owner"]["affiliations"]))
            elif cmd == "my_subscriptions":
                iq = await pubsub.get_subscriptions(to, timeout=t)
                emit("my_subscriptions", nodes=sorted(
                    s["node"] for s in iq["pubsub"]["subscriptions"]))
            else:
                return await super().run(command)
        except IqError as e:
            slix_pep.report_iq_error(cmd, e)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(PubsubClient))
