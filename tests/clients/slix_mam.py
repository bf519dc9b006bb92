"""slix_im.py's client with slixmpp's own XEP-0313 (message archive), XEP-0059 (result set
management) and XEP-0359 (stanza ids) plugins: it queries its account's archive page by
page or through the plugin's own iterator, reads and sets archiving preferences, and
reports the stanza-id of every message it receives.

Extra commands (stdin):
  {"cmd": "page", "max": N, "after": ID, "before": ID or true, "with": JID,
   "start": ISO, "end": ISO, "to": JID}
                                  one query (every key but max optional) of the account's
                                  archive, or of the archive at "to" (a room's); reports
                                  "page" with the results' ids, bodies, senders and
                                  stanza-ids as forwarded, each result message's XML
                                  ("raw"), and the <fin/>'s complete, first, last
  {"cmd": "iterate", "max": N, "reverse": BOOL}
                                  the whole archive through xep_0313's iterate(), pages of
                                  N; reports "history" with the bodies and ids in the order
                                  the iterator gave them
  {"cmd": "fields"}               the query form's fields; reports "fields"
  {"cmd": "prefs_get"} / {"cmd": "prefs_set", "default": D, "always": [...], "never": [...]}
                                  reports "prefs" (default, always, never) as the server
                                  answered
Extra events (stdout): "received" carries stanza_id and stanza_id_by.
"""

import asyncio
from datetime import datetime
from xml.etree import ElementTree as ET

import slix_im
from slix_im import emit
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Collector
from slixmpp.xmlstream.matcher import MatchXMLMask

MAM = "urn:xmpp:mam:2"


class MamClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ("xep_0059", "xep_0313", "xep_0359"):
            self.register_plugin(plugin)

    def on_message(self, msg):
        # Archive results come as messages too: they are reported with their page.
        if msg.xml.find("{%s}result" % MAM) is not None:
            return
        if msg["type"] in ("chat", "normal"):
            emit(
                "received",
                **{
                    "from": str(msg["from"]),
                    "body": msg["body"],
                    "stanza_id": msg["stanza_id"]["id"],
                    "stanza_id_by": str(msg["stanza_id"]["by"]),
                },
            )

    def own(self):
        return JID(self.boundjid.bare)

    async def page(self, command):
        mam = self.plugin["xep_0313"]
        start = command.get("start")
        end = command.get("end")
        iq, mask = mam._pre_mam_retrieve(
            JID(command["to"]) if command.get("to") else self.own(),
            datetime.fromisoformat(start) if start else None,
            datetime.fromisoformat(end) if end else None,
            JID(command["with"]) if command.get("with") else None,
        )
        rsm = iq["mam"]["rsm"]
        rsm["max"] = str(command["max"])
        if command.get("after"):
            rsm["after"] = command["after"]
        if command.get("before") is True:
            rsm["before"] = True
        elif command.get("before"):
            rsm["before"] = command["before"]
        collector = Collector("mam-page-%s" % iq["id"], MatchXMLMask(str(mask)))
        self.register_handler(collector)
        try:
            result = await iq.send(timeout=self.args.timeout)
        except IqError as e:  # the server's error, reported to the test
            collector.stop()
            emit("page_error", error=e.iq["error"]["condition"])
            return
        results = collector.stop()
        fin = result["mam_fin"]
        forwarded = [m["mam_result"]["forwarded"]["stanza"] for m in results]
        emit(
            "page",
            ids=[m["mam_result"]["id"] for m in results],
            bodies=[f["body"] for f in forwarded],
            senders=[str(f["from"]) for f in forwarded],
            stamps=[
                m["mam_result"]["forwarded"]["delay"]["stamp"].isoformat() for m in results
            ],
            raw=[str(m) for m in results],
            complete=fin["complete"] in (True, "true", "1"),
            first=fin["rsm"]["first"],
            last=fin["rsm"]["last"],
        )

    async def iterate(self, command):
        bodies, ids = [], []
        async for message in self.plugin["xep_0313"].iterate(
            jid=self.own(), reverse=command.get("reverse", False), rsm={"max": command["max"]}
        ):
            bodies.append(message["mam_result"]["forwarded"]["stanza"]["body"])
            ids.append(message["mam_result"]["id"])
        emit("history", bodies=bodies, ids=ids)

    async def prefs(self, command):
        if command["cmd"] == "prefs_get":
            iq = self.make_iq_get(ito=self.own())
            iq.append(ET.Element("{%s}prefs" % MAM))
        else:
            iq = self.make_iq_set(ito=self.own())
            prefs = ET.Element("{%s}prefs" % MAM, default=command["default"])
            for name in ("always", "never"):
                jids = ET.SubElement(prefs, "{%s}%s" % (MAM, name))
                for jid in command.get(name, []):
                    ET.SubElement(jids, "{%s}jid" % MAM).text = jid
            iq.append(prefs)
        result = await iq.send(timeout=self.args.timeout)
        prefs = result.xml.find("{%s}prefs" % MAM)
        emit(
            "prefs",
            default=prefs.get("default"),
            always=[j.text for j in prefs.findall("{%s}always/{%s}jid" % (MAM, MAM))],
            never=[j.text for j in prefs.findall("{%s}never/{%s}jid" % (MAM, MAM))],
        )

    async def run(self, command):
        cmd = command["cmd"]
        if cmd == "page":
            await self.page(command)
        elif cmd == "iterate":
            await self.iterate(command)
        elif cmd == "fields":
            form = await self.plugin["xep_0313"].get_fields(jid=self.own())
            emit("fields", fields=sorted(form.get_fields().keys()))
        elif cmd in ("prefs_get", "prefs_set"):
            await self.prefs(command)
        else:
            return await super().run(command)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(MamClient))
