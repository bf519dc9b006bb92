"""slix_pep.py's client, pointed at a publish-subscribe service of its own (pubsub.HOST)
through slixmpp's xep_0060 plugin. Every request goes through the plugin's API; IQ errors
are reported as in slix_pep.py ("iq_error" with "condition" and "pubsub").

More commands (SERVICE: the service's JID):
  {"cmd": "create", "to": SERVICE, "node": N or null, "options": {VAR: VALUE}}
                                   xep_0060.create_node; reports "created" (the node)
  {"cmd": "configure_at", "to": SERVICE, "node": N, "options": {VAR: VALUE}}
  {"cmd": "subscribe", "to": SERVICE, "node": N, "options": {VAR: VALUE} or null}
                                   with the options form if given (XEP-0060 §6.3.7);
                                   reports "subscribed" (subid)
  {"cmd": "unsubscribe", "to": SERVICE, "node": N}
  {"cmd": "publish_to", "to": SERVICE, "node": N, "id": ID, "payload": XML,
   "options": {VAR: VALUE}}       id, payload and options (publish options, §7.1.5) may be
                                   null (or left out): no payload
                                   makes an empty <item/>, neither no <item/> at all;
                                   reports "published" (the id in the answer, "" if none)
  {"cmd": "page", "to": SERVICE, "node": N, "max": M, "after": ID, "before": ID or ""}
                                   one XEP-0059 page; reports "page" (ids, first, last, count)
  {"cmd": "purge_at", "to": SERVICE, "node": N}
  {"cmd": "retract_at", "to": SERVICE, "node": N, "id": ID, "notify": BOOL or null}
  {"cmd": "affiliate", "to": SERVICE, "node": N, "jid": JID, "affiliation": A}
  {"cmd": "affiliations", "to": SERVICE, "node": N}  reports "affiliations" ([[jid, a]…])
  {"cmd": "my_subscriptions", "to": SERVICE}         reports "my_subscriptions" (nodes and
                                   [node, state] pairs)
  {"cmd": "node_subscriptions", "to": SERVICE, "node": N}
                                   xep_0060.get_node_subscriptions; reports
                                   "node_subscriptions" ([[jid, state]…])
  {"cmd": "set_subscription", "to": SERVICE, "node": N, "jid": JID, "state": S}
                                   xep_0060.modify_subscriptions
  {"cmd": "answer", "to": SERVICE, "node": N, "jid": JID, "subid": ID, "allow": BOOL}
                                   submits the XEP-0060 §8.6 authorization form in a message
  {"cmd": "get_options", "to": SERVICE, "node": N}    xep_0060.get_subscription_options for
                                   the client's bare JID; reports "options" (the values)
  {"cmd": "set_options", "to": SERVICE, "node": N, "options": {VAR: VALUE}}
                                   the options form submitted in an IQ set (the plugin's own
                                   call sends a get)
  {"cmd": "delete_at", "to": SERVICE, "node": N, "redirect": URI or null}
  {"cmd": "node_info", "to": SERVICE, "node": N}      disco#info of a node; reports
                                   "node_info" (identities, features, the meta-data values)
  {"cmd": "node_items", "to": SERVICE, "node": N}     disco#items of a node; reports
                                   "node_items" (the items' names)
  {"cmd": "commands_at", "to": SERVICE}  xep_0050.get_commands; reports "commands" (nodes)
  {"cmd": "get_pending", "to": SERVICE, "node": N or null}
                                   runs XEP-0060 §8.7's command through xep_0050; reports
                                   "pending_nodes" (the nodes offered) when it asks for one,
                                   then, if N is given, submits it; reports "command" (status,
                                   notes)
Notifications are the "pep" events of slix_pep.py ("from" is the service); more events:
"subscription_event" (node, jid, subscription: a pubsub#event <subscription/>),
"config_event" (node, the form's values if any), "empty_items" (node: an <items/> event
with no item, a transient notification-only publish), "auth_request" (node, jid, subid: the §8.6
form), "affiliation_notice" (node, jid, affiliation: §8.9.4), "message_error" (condition),
each with "from".
"""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0059.stanza import Set
from slixmpp.plugins.xep_0060.stanza.pubsub import Pubsub
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import slix_im
import slix_pep
from slix_im import emit

NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
SUBSCRIBE_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
SUBSCRIBE_AUTHORIZATION = "http://jabber.org/protocol/pubsub#subscribe_authorization"
GET_PENDING = "http://jabber.org/protocol/pubsub#get-pending"
EVENT = "{http://jabber.org/protocol/pubsub#event}"
COMMANDS = "{http://jabber.org/protocol/commands}"
PUBSUB = "{http://jabber.org/protocol/pubsub}"
OWNER = "{http://jabber.org/protocol/pubsub#owner}"
DATA = "{jabber:x:data}"


def form_values(x):
    """A data form's values from its XML: {var: value or [values]}."""
    values = {}
    for field in x.findall(DATA + "field"):
        got = [v.text or "" for v in field.findall(DATA + "value")]
        values[field.get("var")] = got[0] if len(got) == 1 else got
    return values


class PubsubClient(slix_pep.PepClient):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin("xep_0059")
        self.register_plugin("xep_0050")
        # XEP-0060 §6.5.4: a <set/> inside <pubsub/>.
        register_stanza_plugin(Pubsub, Set)
        self.add_event_handler("pubsub_subscription", self.on_subscription)
        self.add_event_handler("pubsub_config", self.on_config)
        # slixmpp's own `message` event wants a <body/>; these messages have none.
        for name, path in [("form", "{jabber:x:data}x"),
                           ("affiliations", "{http://jabber.org/protocol/pubsub}pubsub"),
                           ("error", "{jabber:client}error")]:
            self.register_handler(Callback(
                f"pubsub service {name}", MatchXPath("{jabber:client}message/" + path),
                self.on_service_message))
        # slixmpp raises no event for an <items/> without items.
        self.register_handler(Callback(
            "pubsub empty items", MatchXPath("{jabber:client}message/" + EVENT + "event"),
            self.on_event_message))

    def on_event_message(self, msg):
        for items in msg.xml.findall(EVENT + "event/" + EVENT + "items"):
            if len(items) == 0:
                emit("empty_items", node=items.get("node"), **{"from": str(msg["from"])})

    def on_subscription(self, msg):
        sub = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event/"
                           "{http://jabber.org/protocol/pubsub#event}subscription")
        emit("subscription_event", node=sub.get("node"), jid=sub.get("jid"),
             subscription=sub.get("subscription"), **{"from": str(msg["from"])})

    def on_config(self, msg):
        conf = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event/"
                            "{http://jabber.org/protocol/pubsub#event}configuration")
        x = conf.find(DATA + "x")
        emit("config_event", node=conf.get("node"),
             values=None if x is None else form_values(x), **{"from": str(msg["from"])})

    def on_service_message(self, msg):
        """What slixmpp has no handler for: the §8.6 form, the §8.9.4 notice, errors."""
        if msg["type"] == "error":
            emit("message_error", condition=msg["error"]["condition"],
                 **{"from": str(msg["from"])})
            return
        for x in msg.xml.findall(DATA + "x"):
            values = form_values(x)
            if values.get("FORM_TYPE") == SUBSCRIBE_AUTHORIZATION:
                emit("auth_request", node=values.get("pubsub#node"),
                     jid=values.get("pubsub#subscriber_jid"), subid=values.get("pubsub#subid"),
                     allow=values.get("pubsub#allow"), form_type=x.get("type"),
                     **{"from": str(msg["from"])})
        for affs in msg.xml.findall(PUBSUB + "pubsub/" + PUBSUB + "affiliations"):
            for a in affs.findall(PUBSUB + "affiliation"):
                emit("affiliation_notice", node=affs.get("node"), jid=a.get("jid"),
                     affiliation=a.get("affiliation"), **{"from": str(msg["from"])})

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
                options = command.get("options")
                form = slix_pep.options_form(SUBSCRIBE_OPTIONS, options) if options else None
                iq = await pubsub.subscribe(to, command["node"], options=form, timeout=t)
                sub = iq["pubsub"]["subscription"]
                emit("subscribed", node=command["node"], subid=sub["subid"],
                     subscription=sub["subscription"])
            elif cmd == "unsubscribe":
                await pubsub.unsubscribe(to, command["node"], timeout=t)
            elif cmd == "publish_to":
                payload = command.get("payload")
                options = command.get("options")
                iq = await pubsub.publish(
                    to, command["node"], id=command.get("id"),
                    payload=None if payload is None else ET.fromstring(payload),
                    options=slix_pep.options_form(
                        "http://jabber.org/protocol/pubsub#publish-options", options)
                    if options else None,
                    timeout=t)
                item = iq.xml.find(PUBSUB + "pubsub/" + PUBSUB + "publish/" + PUBSUB + "item")
                emit("published", node=command["node"],
                     id="" if item is None else item.get("id"))
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
            elif cmd == "retract_at":
                await pubsub.retract(to, command["node"], command["id"],
                                     notify=command.get("notify"), timeout=t)
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
                subs = iq.xml.findall(PUBSUB + "pubsub/" + PUBSUB + "subscriptions/"
                                      + PUBSUB + "subscription")
                emit("my_subscriptions", nodes=sorted(s.get("node") for s in subs),
                     states=sorted([s.get("node"), s.get("subscription")] for s in subs))
            elif cmd == "node_subscriptions":
                iq = await pubsub.get_node_subscriptions(to, command["node"], timeout=t)
                subs = iq.xml.findall(OWNER + "pubsub/" + OWNER + "subscriptions/"
                                      + OWNER + "subscription")
                emit("node_subscriptions", node=command["node"], list=sorted(
                    [s.get("jid"), s.get("subscription")] for s in subs))
            elif cmd == "set_subscription":
                await pubsub.modify_subscriptions(
                    to, command["node"], [(command["jid"], command["state"])], timeout=t)
            elif cmd == "answer":
                form = self.plugin["xep_0004"].make_form(ftype="submit")
                form.add_field(var="FORM_TYPE", ftype="hidden", value=SUBSCRIBE_AUTHORIZATION)
                form.add_field(var="pubsub#node", value=command["node"])
                form.add_field(var="pubsub#subscriber_jid", value=command["jid"])
                if command.get("subid"):
                    form.add_field(var="pubsub#subid", value=command["subid"])
                form.add_field(var="pubsub#allow", ftype="boolean",
                               value="true" if command["allow"] else "false")
                msg = self.make_message(mto=to)
                msg.append(form)
                msg.send()
            elif cmd == "get_options":
                iq = await pubsub.get_subscription_options(
                    to, command["node"], user_jid=self.boundjid.bare, timeout=t)
                x = iq.xml.find(PUBSUB + "pubsub/" + PUBSUB + "options/" + DATA + "x")
                emit("options", node=command["node"], values=form_values(x))
            elif cmd == "set_options":
                iq = self.make_iq_set(ito=to)
                iq["pubsub"]["options"]["node"] = command["node"]
                iq["pubsub"]["options"]["jid"] = self.boundjid.bare
                iq["pubsub"]["options"].append(
                    slix_pep.options_form(SUBSCRIBE_OPTIONS, command["options"]))
                await iq.send(timeout=t)
            elif cmd == "delete_at":
                iq = self.make_iq_set(ito=to)
                iq["pubsub_owner"]["delete"]["node"] = command["node"]
                if command.get("redirect"):
                    ET.SubElement(iq["pubsub_owner"]["delete"].xml, OWNER + "redirect",
                                  uri=command["redirect"])
                await iq.send(timeout=t)
            elif cmd == "node_info":
                iq = await self.plugin["xep_0030"].get_info(
                    jid=to, node=command["node"], timeout=t)
                x = iq.xml.find("{http://jabber.org/protocol/disco#info}query/" + DATA + "x")
                info = iq["disco_info"]
                emit("node_info", node=command["node"],
                     identities=[list(i) for i in info["identities"]],
                     features=sorted(info["features"]),
                     meta=None if x is None else form_values(x))
            elif cmd == "node_items":
                iq = await self.plugin["xep_0030"].get_items(
                    jid=to, node=command["node"], timeout=t)
                emit("node_items", node=command["node"], names=sorted(
                    item[2] or "" for item in iq["disco_items"]["items"]))
            elif cmd == "commands_at":
                iq = await self.plugin["xep_0050"].get_commands(to, timeout=t)
                emit("commands", nodes=[item[1] for item in iq["disco_items"]["items"]])
            elif cmd == "get_pending":
                adhoc = self.plugin["xep_0050"]
                iq = await adhoc.send_command(to, GET_PENDING, timeout=t)
                if iq["command"]["status"] == "executing":
                    field = iq.xml.find(COMMANDS + "command/" + DATA + "x/" + DATA
                                        + "field[@var='pubsub#node']")
                    emit("pending_nodes", nodes=sorted(
                        v.text for v in field.findall(DATA + "option/" + DATA + "value")))
                    if command.get("node") is None:
                        await adhoc.send_command(to, GET_PENDING, action="cancel",
                                                 sessionid=iq["command"]["sessionid"], timeout=t)
                        emit("ok", cmd=cmd)
                        return True
                    form = self.plugin["xep_0004"].make_form(ftype="submit")
                    form.add_field(var="FORM_TYPE", ftype="hidden", value=SUBSCRIBE_AUTHORIZATION)
                    form.add_field(var="pubsub#node", value=command["node"])
                    iq = await adhoc.send_command(to, GET_PENDING, action="complete",
                                                  sessionid=iq["command"]["sessionid"],
                                                  payload=form, timeout=t)
                emit("command", status=iq["command"]["status"],
                     notes=[text for _, text in iq["command"]["notes"]])
            else:
                return await super().run(command)
        except IqError as e:
            slix_pep.report_iq_error(cmd, e)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(PubsubClient))
