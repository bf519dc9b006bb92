"""slix_im.py's client with slixmpp's own plugins for the server-side XEPs: software version
(xep_0092), entity time (xep_0202), last activity (xep_0012), private XML storage with
bookmarks (xep_0049, xep_0048), vCards and avatars (xep_0054, xep_0153) and disco
(xep_0030). Every request goes through the plugin's API; results are reported as JSON
events, IQ errors as {"event": "iq_error", "cmd": …, "condition": …}.

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "version", "to": JID}              reports "version" (name, version, os)
  {"cmd": "time", "to": JID}                 reports "time" (utc as ISO 8601, tzo seconds)
  {"cmd": "last", "to": JID}                 reports "last" (seconds, status)
  {"cmd": "bookmark", "room": JID, "name": N, "nick": NICK, "autojoin": BOOL}
                                             stores one conference bookmark (XEP-0048 in
                                             0049); nick "nick" and autojoin by default
  {"cmd": "bookmarks"}                       reports "bookmarks" (the rooms retrieved)
  {"cmd": "set_avatar", "png_b64": DATA}     xep_0153.set_avatar (vCard PHOTO, then presence)
  {"cmd": "vcard", "to": JID}                reports "vcard" (FN, photo size)
  {"cmd": "set_fn", "fn": NAME}              publishes a vCard with FN only
  {"cmd": "disco_info", "to": JID}           reports "disco_info" (identities, features, forms)
  {"cmd": "unavailable_status", "status": S} unavailable presence with a status
  {"cmd": "external_services", "type": T}    XEP-0215 services of the server (type optional),
                                             as a raw IQ (slixmpp has no plugin); reports
                                             "external_services" (each service's attributes)
  {"cmd": "external_credentials", "host": H, "type": T}
                                             XEP-0215 credentials; reports
                                             "external_credentials" (the service's attributes)
Presence events carry the XEP-0153 photo hash ("photo") as slixmpp parsed it.
"""

import asyncio
import base64
import json
import sys
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048.stanza import Bookmarks

import slix_im
from slix_im import emit


class FeaturesClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ["xep_0030", "xep_0092", "xep_0202", "xep_0012", "xep_0049",
                       "xep_0048", "xep_0054", "xep_0153"]:
            self.register_plugin(plugin)
        # Accept and return subscriptions: the tests need mutual ones only.
        self.auto_authorize = True
        self.auto_subscribe = True

    def on_presence(self, presence):
        photo = presence["vcard_temp_update"]["photo"] if presence.xml.find(
            "{vcard-temp:x:update}x") is not None else None
        emit("presence", **{"from": str(presence["from"]), "type": presence["type"],
                            "status": presence["status"], "photo": photo})

    async def run(self, command):
        cmd = command["cmd"]
        t = self.args.timeout
        try:
            if cmd == "version":
                iq = await self.plugin["xep_0092"].get_version(command["to"], timeout=t)
                v = iq["software_version"]
                emit("version", name=v["name"], version=v["version"], os=v["os"])
            elif cmd == "time":
                iq = await self.plugin["xep_0202"].get_entity_time(command["to"], timeout=t)
                # The raw texts: slixmpp 1.17 appends a second "Z" to <utc/> and cannot
                # parse a numeric <tzo/> ("+00:00"), both the XEP's own example forms.
                et = iq.xml.find("{urn:xmpp:time}time")
                emit("time", utc=et.find("{urn:xmpp:time}utc").text,
                     tzo=et.find("{urn:xmpp:time}tzo").text)
            elif cmd == "last":
                iq = await self.plugin["xep_0012"].get_last_activity(command["to"], timeout=t)
                la = iq["last_activity"]
                emit("last", seconds=la["seconds"], status=la["status"])
            elif cmd == "bookmark":
                b = Bookmarks()
                b.add_conference(command["room"], command.get("nick", "nick"),
                                 name=command["name"], autojoin=command.get("autojoin", True))
                await self.plugin["xep_0049"].store(b, timeout=t)
            elif cmd == "bookmarks":
                iq = await self.plugin["xep_0049"].retrieve("bookmarks", timeout=t)
                rooms = [str(c["jid"]) for c in iq["private"]["bookmarks"]["conferences"]]
                emit("bookmarks", rooms=rooms)
            elif cmd == "set_avatar":
                data = base64.b64decode(command["png_b64"])
                await self.plugin["xep_0153"].set_avatar(avatar=data, mtype="image/png", timeout=t)
            elif cmd == "vcard":
                iq = await self.plugin["xep_0054"].get_vcard(command["to"], cached=False, timeout=t)
                vcard = iq["vcard_temp"]
                photo = vcard["PHOTO"]["BINVAL"] or b""
                emit("vcard", fn=vcard["FN"], photo_bytes=len(photo))
            elif cmd == "set_fn":
                vcard = self.plugin["xep_0054"].make_vcard()
                vcard["FN"] = command["fn"]
                await self.plugin["xep_0054"].publish_vcard(vcard, timeout=t)
            elif cmd == "disco_info":
                iq = await self.plugin["xep_0030"].get_info(jid=command["to"], timeout=t)
                info = iq["disco_info"]
                forms = []
                for x in info.xml.findall("{jabber:x:data}x"):
                    forms.append({
                        field.get("var"): [v.text for v in field.findall("{jabber:x:data}value")]
                        for field in x.findall("{jabber:x:data}field")
                    })
                emit("disco_info",
                     identities=[list(i) for i in info["identities"]],
                     features=sorted(info["features"]),
                     forms=forms)
            elif cmd in ("external_services", "external_credentials"):
                await self.external_services(cmd, command)
            elif cmd == "unavailable_status":
                self.send_presence(ptype="unavailable", pstatus=command["status"])
            else:
                return await super().run(command)
        except IqError as e:
            emit("iq_error", cmd=cmd, condition=e.iq["error"]["condition"])
        emit("ok", cmd=cmd)
        return True

    async def external_services(self, cmd, command):
        """XEP-0215 §3.2 and §3.3 through slixmpp's own IQ API."""
        extdisco = "{urn:xmpp:extdisco:2}"
        iq = self.make_iq_get(ito=self.boundjid.domain)
        if cmd == "external_services":
            query = ET.Element(extdisco + "services")
            if command.get("type"):
                query.set("type", command["type"])
        else:
            query = ET.Element(extdisco + "credentials")
            ET.SubElement(query, extdisco + "service",
                          host=command["host"], type=command["type"])
        iq.append(query)
        result = await iq.send(timeout=self.args.timeout)
        wrapper = "services" if cmd == "external_services" else "credentials"
        services = [dict(s.attrib) for s in
                    result.xml.findall(f"{extdisco}{wrapper}/{extdisco}service")]
        emit(cmd, services=services)


if __name__ == "__main__":
    asyncio.run(slix_im.main(FeaturesClient))
