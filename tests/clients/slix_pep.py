"""slix_im.py's client with slixmpp's own plugins for personal eventing: publish-subscribe
(xep_0060), PEP (xep_0163, whose `+notify` interests ride on entity capabilities,
xep_0115), avatars (xep_0084), nicknames (xep_0172), bookmarks (xep_0402), and blocking
(xep_0191). Every request
goes through the plugins' API; results are JSON events, IQ errors
{"event": "iq_error", "cmd": …, "condition": …, "pubsub": the pubsub#errors condition}.

xep_0084 and xep_0172 declare an interest in avatar metadata and nicknames when the session
is bound; `interests` replaces the client's interests.

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "interests", "nodes": [NS…]}        exactly these `NS+notify` features in the caps
                                             (send "available" after it to announce them)
  {"cmd": "nick", "nick": N}                 xep_0172.publish_nick
  {"cmd": "avatar", "png_b64": DATA}         xep_0084.publish_avatar, then its metadata
  {"cmd": "avatar_data", "to": JID, "id": ID} xep_0084.retrieve_avatar; reports "avatar_data"
  {"cmd": "bookmark", "room": JID, "name": N} an XEP-0402 bookmark, with its publish options
  {"cmd": "publish", "node": N, "id": ID, "payload": XML, "options": {VAR: VALUE}}
                                             xep_0060.publish; reports "published" (id)
  {"cmd": "items", "to": JID, "node": N, "max_items": M, "ids": [ID…]}
                                             xep_0060.get_items; reports "items" (ids, texts)
  {"cmd": "retract", "node": N, "id": ID, "notify": BOOL}
  {"cmd": "purge", "node": N} / {"cmd": "delete", "node": N}
  {"cmd": "node_config", "node": N, "to": JID} reports "node_config" (the form's values);
                                             "to" may be left out (the account's own)
  {"cmd": "configure", "node": N, "options": {VAR: VALUE}}
  {"cmd": "disco_items", "to": JID}          reports "disco_items" (the nodes listed)
  {"cmd": "disco_info", "to": JID}           reports "disco_info" (identities, features)
  {"cmd": "block", "jid": JID}               xep_0191.block
Events: "pep" for each notification ("kind": publish, retract, purge or delete; "from",
"node", "ids", "text": the payload's text, "delayed": whether it carries a XEP-0203
stamp, "redirect": a deletion's redirect URI, "body": the message's <body/> or null), "caps_query" when the server asks this
client's disco#info, "peer_caps_query" ("from") when another server asks it for one of its
accounts.
"""

import asyncio
import base64
import hashlib
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form

import slix_im
from slix_im import emit

BOOKMARKS = "urn:xmpp:bookmarks:1"


def options_form(form_type, options):
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
    for var, value in options.items():
        form.add_field(var=var, value=value)
    return form


def report_iq_error(cmd, e):
    """Reports an IQ error as "iq_error" with its condition and pubsub#errors condition."""
    error = e.iq["error"]
    pubsub_condition = None
    for child in error.xml:
        if child.tag.startswith("{http://jabber.org/protocol/pubsub#errors}"):
            pubsub_condition = child.tag.split("}")[1]
    emit("iq_error", cmd=cmd, condition=error["condition"], pubsub=pubsub_condition)


def payload_text(item):
    """The text of an item's payload (a nickname, a bookmark's name…), given the item's
    XML element."""
    if len(item) == 0:
        return None
    payload = item[0]
    texts = [t.strip() for t in payload.itertext() if t.strip()]
    if payload.get("name"):
        texts.insert(0, payload.get("name"))
    return " ".join(texts) or None


class PepClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ["xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084",
                       "xep_0172", "xep_0402", "xep_0191"]:
            self.register_plugin(plugin)
        # Mutual subscriptions: the tests need them, approved by the clients themselves.
        self.auto_authorize = True
        self.auto_subscribe = True
        for kind in ["publish", "retract", "purge", "delete"]:
            self.add_event_handler(f"pubsub_{kind}", self.on_event(kind))
        self.register_handler_caps_query()

    def register_handler_caps_query(self):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        def seen(iq):
            if iq["type"] != "get":
                return
            if iq["from"] == self.boundjid.bare:
                emit("caps_query", node=iq["disco_info"]["node"])
            elif not iq["from"].resource and iq["from"].domain != self.boundjid.domain:
                # A contact's server asking on behalf of its account's PEP service.
                emit("peer_caps_query", node=iq["disco_info"]["node"], **{"from": str(iq["from"])})

        # Seen, not answered: xep_0030 answers it.
        self.register_handler(Callback(
            "caps query seen",
            MatchXPath("{jabber:client}iq/{http://jabber.org/protocol/disco#info}query"),
            seen))

    def on_event(self, kind):
        def handler(msg):
            # Read from the XML: iterating the stanza object here would reset the iteration
            # slixmpp's own handler is in the middle of (ElementBase keeps one index).
            event = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event")
            child = event[0]
            node = child.get("node")
            ids, text = [], None
            if kind in ("publish", "retract"):
                tag = "item" if kind == "publish" else "retract"
                items = child.findall("{http://jabber.org/protocol/pubsub#event}" + tag)
                ids = [i.get("id") for i in items]
                if kind == "publish" and items:
                    text = payload_text(items[0])
            redirect = child.find("{http://jabber.org/protocol/pubsub#event}redirect")
            emit("pep", kind=kind, node=node, ids=ids, text=text,
                 redirect=None if redirect is None else redirect.get("uri"),
                 body=msg.xml.findtext("{jabber:client}body"),
                 **{"from": str(msg["from"]), "type": msg["type"],
                    "delayed": msg.xml.find("{urn:xmpp:delay}delay") is not None})
        return handler

    async def run(self, command):
        cmd = command["cmd"]
        t = self.args.timeout
        pubsub = self.plugin["xep_0060"]
        try:
            if cmd == "interests":
                disco = self.plugin["xep_0030"]
                info = await disco.get_info(jid=self.boundjid, local=True)
                for feature in list(info["features"]):
                    if feature.endswith("+notify"):
                        disco.del_feature(jid=self.boundjid, feature=feature)
                for node in command["nodes"]:
                    disco.add_feature(f"{node}+notify", jid=self.boundjid)
                await self.plugin["xep_0115"].update_caps(self.boundjid, broadcast=False)
            elif cmd == "nick":
                await self.plugin["xep_0172"].publish_nick(command["nick"], timeout=t)
            elif cmd == "avatar":
                data = base64.b64decode(command["png_b64"])
                await self.plugin["xep_0084"].publish_avatar(data, timeout=t)
                await self.plugin["xep_0084"].publish_avatar_metadata(
                    [{"id": hashlib.sha1(data).hexdigest(), "type": "image/png",
                      "bytes": len(data)}], timeout=t)
            elif cmd == "avatar_data":
                iq = await self.plugin["xep_0084"].retrieve_avatar(
                    command["to"], command["id"], timeout=t)
                item = iq["pubsub"]["items"]["item"]
                data = item.xml[0].text or ""
                emit("avatar_data", id=item["id"],
                     sha1=hashlib.sha1(base64.b64decode(data)).hexdigest())
            elif cmd == "bookmark":
                # XEP-0402 §3: one item per room, whitelisted, as many as the server keeps,
                # never sent on presence.
                conference = self.plugin["xep_0402"].stanza.Conference()
                conference["name"] = command["name"]
                conference["autojoin"] = True
                await pubsub.publish(
                    None, BOOKMARKS, id=command["room"], payload=conference.xml,
                    options=options_form(
                        "http://jabber.org/protocol/pubsub#publish-options", {
                            "pubsub#persist_items": "true",
                            "pubsub#max_items": "max",
                            "pubsub#send_last_published_item": "never",
                            "pubsub#access_model": "whitelist",
                        }),
                    timeout=t)
            elif cmd == "publish":
                options = command.get("options")
                form = options_form("http://jabber.org/protocol/pubsub#publish-options",
                                    options) if options else None
                iq = await pubsub.publish(
                    None, command["node"], id=command.get("id"),
                    payload=ET.fromstring(command["payload"]), options=form, timeout=t)
                emit("published", node=command["node"],
                     id=iq["pubsub"]["publish"]["item"]["id"])
            elif cmd == "items":
                iq = await pubsub.get_items(
                    command["to"], command["node"], item_ids=command.get("ids"),
                    max_items=command.get("max_items"), timeout=t)
                items = iq.xml.findall(
                    "{http://jabber.org/protocol/pubsub}pubsub/"
                    "{http://jabber.org/protocol/pubsub}items/"
                    "{http://jabber.org/protocol/pubsub}item")
                emit("items", node=command["node"], ids=[i.get("id") for i in items],
                     texts=[payload_text(i) for i in items])
            elif cmd == "retract":
                await pubsub.retract(None, command["node"], command["id"],
                                     notify=command.get("notify"), timeout=t)
            elif cmd == "purge":
                await pubsub.purge(None, command["node"], timeout=t)
            elif cmd == "delete":
                await pubsub.delete_node(None, command["node"], timeout=t)
            elif cmd == "node_config":
                iq = await pubsub.get_node_config(command.get("to"), command["node"], timeout=t)
                form = iq["pubsub_owner"]["configure"]["form"]
                emit("node_config", node=command["node"], values={
                    var: field.get_value(convert=False)
                    for var, field in form.get_fields().items()})
            elif cmd == "configure":
                await pubsub.set_node_config(
                    None, command["node"],
                    options_form("http://jabber.org/protocol/pubsub#node_config",
                                 command["options"]),
                    timeout=t)
            elif cmd == "disco_items":
                iq = await self.plugin["xep_0030"].get_items(jid=command["to"], timeout=t)
                emit("disco_items", nodes=sorted(
                    item[1] for item in iq["disco_items"]["items"] if item[1]))
            elif cmd == "block":
                await self.plugin["xep_0191"].block([command["jid"]], timeout=t)
            elif cmd == "disco_info":
                iq = await self.plugin["xep_0030"].get_info(jid=command["to"], timeout=t)
                info = iq["disco_info"]
                emit("disco_info", identities=[list(i) for i in info["identities"]],
                     features=sorted(info["features"]))
            else:
                return await super().run(command)
        except IqError as e:
            report_iq_error(cmd, e)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(PepClient))
