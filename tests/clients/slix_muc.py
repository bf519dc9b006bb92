"""slix_features.py's client with slixmpp's own XEP-0045 plugin (xep_0045, with xep_0030 and
xep_0004) and its XEP-0249 plugin (xep_0249): every room operation goes through the plugins'
API. Results are JSON events; the
`ok` of a command carries what it returned.

Usage and the base commands: see slix_im.py and slix_features.py. More commands:
  {"cmd": "join", "room": JID, "nick": N}    join_muc_wait; ok has "statuses" (own presence)
                                             and "occupants" (the others' nicks), or
                                             "condition" when the room refused
  {"cmd": "instant", "room": JID}            set_room_config with an empty submitted form
  {"cmd": "configure", "room": JID, "fields": {VAR: VALUE}}
                                             get_room_config (reported as "config", its
                                             fields), then the same form submitted with these
                                             values
  {"cmd": "say", "room": JID, "body": B}     a groupchat message
  {"cmd": "subject", "room": JID, "subject": S}
  {"cmd": "kick", "room": JID, "nick": N}    set_role none
  {"cmd": "ban", "room": JID, "jid": J}      set_affiliation outcast
  {"cmd": "destroy", "room": JID, "reason": R, "alt": JID}
  {"cmd": "invite", "room": JID, "jid": J, "reason": R}
                                             a mediated invitation (XEP-0045 §7.8.2)
  {"cmd": "decline", "room": JID, "jid": J, "reason": R}
                                             declines one, to the inviter J
  {"cmd": "direct_invite", "jid": J, "room": JID, "password": P, "reason": R}
                                             a direct invitation (XEP-0249)
  {"cmd": "register", "room": JID, "nick": N}
                                             registering with the room (XEP-0045 §7.10)
                                             through xep_0077's get_registration: reported
                                             as "registration" (registered, username, the
                                             form's fields and required ones); unless
                                             already registered, the same form submitted
                                             with the nickname
  {"cmd": "unregister", "room": JID}         xep_0077's cancel_registration
  {"cmd": "reserved_nick", "room": JID}      xep_0030's get_info on node x-roomuser-item
                                             (§7.12); ok has "names" (the identities')
  {"cmd": "affiliations", "room": JID, "affiliation": A}
                                             get_affiliation_list; ok has "jids"
Events: muc_presence (nick, type, statuses, destroy), groupchat (nick, body), subject (nick,
subject), invite (room, inviter, reason, password), decline (room, decliner, reason),
direct_invite (from, room, password, reason).
"""

import asyncio

from slixmpp import JID
from slixmpp.exceptions import IqError, PresenceError

import slix_im
import slix_features
from slix_im import emit

MUC_USER = "{http://jabber.org/protocol/muc#user}"


class MucClient(slix_features.FeaturesClient):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ["xep_0004", "xep_0045", "xep_0249", "xep_0077"]:
            self.register_plugin(plugin)
        self.add_event_handler("groupchat_presence", self.on_muc_presence)
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("groupchat_subject", self.on_subject)
        self.add_event_handler("groupchat_invite", self.on_invite)
        # slixmpp 1.17's groupchat_decline looks the room up among the wrong keys and never
        # fires for a client: declines are read from every message instead.
        self.add_event_handler("message", self.on_decline)
        self.add_event_handler("groupchat_direct_invite", self.on_direct_invite)

    def on_muc_presence(self, pr):
        destroy = pr.xml.find(f"{MUC_USER}x/{MUC_USER}destroy")
        reason = destroy.find(f"{MUC_USER}reason") if destroy is not None else None
        emit("muc_presence", nick=pr["from"].resource, type=pr["type"],
             statuses=sorted(pr["muc"]["status_codes"]),
             destroy=None if destroy is None else {
                 "jid": destroy.get("jid"),
                 "reason": reason.text if reason is not None else None})

    def on_groupchat(self, msg):
        emit("groupchat", nick=msg["from"].resource, body=msg["body"])

    def on_subject(self, msg):
        emit("subject", nick=msg["from"].resource, subject=msg["subject"])

    def on_invite(self, msg):
        # XEP-0045 puts the password beside the <invite/>, where the plugin does not look.
        password = msg.xml.find(f"{MUC_USER}x/{MUC_USER}password")
        emit("invite", room=str(msg["from"]), inviter=str(msg["muc"]["invite"]["from"]),
             reason=msg["muc"]["invite"]["reason"],
             password=password.text if password is not None else None)

    def on_decline(self, msg):
        if msg.xml.find(f"{MUC_USER}x/{MUC_USER}decline") is None:
            return
        emit("decline", room=str(msg["from"]), decliner=str(msg["muc"]["decline"]["from"]),
             reason=msg["muc"]["decline"]["reason"])

    def on_direct_invite(self, msg):
        invite = msg["groupchat_invite"]
        emit("direct_invite", **{"from": str(msg["from"])}, room=str(invite["jid"]),
             password=invite["password"], reason=invite["reason"])

    async def register_with(self, room, nick, timeout):
        reply = await self.plugin["xep_0077"].get_registration(jid=room, timeout=timeout)
        register = reply["register"]
        form = register["form"]
        fields = form.get_fields()
        emit("registration", registered=register["registered"], username=register["username"],
             fields=sorted(fields.keys()),
             required=sorted(var for var, f in fields.items() if f["required"]))
        if register["registered"]:
            return
        form["type"] = "submit"
        form.set_values({"muc#register_roomnick": nick})
        iq = self.make_iq_set(ito=room)
        iq["register"].append(form)
        await iq.send(timeout=timeout)

    async def run(self, command):
        cmd = command["cmd"]
        t = self.args.timeout
        muc = self.plugin["xep_0045"]
        extra = {}
        try:
            if cmd == "join":
                room, nick = JID(command["room"]), command["nick"]
                try:
                    pres, _subject, occupants, _history = await muc.join_muc_wait(
                        room, nick, timeout=t)
                    extra["statuses"] = sorted(pres["muc"]["status_codes"])
                    extra["occupants"] = sorted(
                        p["from"].resource for p in occupants if p["from"].resource != nick)
                except PresenceError as e:
                    extra["condition"] = e.presence["error"]["condition"]
            elif cmd == "instant":
                form = self.plugin["xep_0004"].make_form(ftype="submit")
                await muc.set_room_config(command["room"], form, timeout=t)
            elif cmd == "configure":
                form = await muc.get_room_config(command["room"], timeout=t)
                emit("config", fields=sorted(form.get_fields().keys()))
                form.set_values(command["fields"])
                await muc.set_room_config(command["room"], form, timeout=t)
            elif cmd == "say":
                self.send_message(mto=command["room"], mbody=command["body"], mtype="groupchat")
            elif cmd == "subject":
                muc.set_subject(command["room"], command["subject"])
            elif cmd == "kick":
                await muc.set_role(command["room"], command["nick"], "none", timeout=t)
            elif cmd == "ban":
                await muc.set_affiliation(command["room"], "outcast", jid=command["jid"],
                                          timeout=t)
            elif cmd == "destroy":
                await muc.destroy(command["room"], reason=command["reason"],
                                  altroom=command["alt"], timeout=t)
            elif cmd == "invite":
                muc.invite(command["room"], command["jid"], command["reason"])
            elif cmd == "decline":
                muc.decline(command["room"], command["jid"], command["reason"])
            elif cmd == "direct_invite":
                self.plugin["xep_0249"].send_invitation(
                    JID(command["jid"]), JID(command["room"]),
                    password=command["password"], reason=command["reason"])
            elif cmd == "register":
                await self.register_with(command["room"], command["nick"], t)
            elif cmd == "unregister":
                await self.plugin["xep_0077"].cancel_registration(jid=command["room"], timeout=t)
            elif cmd == "reserved_nick":
                info = await self.plugin["xep_0030"].get_info(
                    jid=command["room"], node="x-roomuser-item", timeout=t)
                extra["names"] = sorted(i[3] for i in info["disco_info"]["identities"])
            elif cmd == "affiliations":
                jids = await muc.get_affiliation_list(
                    command["room"], command["affiliation"], timeout=t)
                extra["jids"] = sorted(str(j) for j in jids)
            else:
                return await super().run(command)
        except IqError as e:
            emit("iq_error", cmd=cmd, condition=e.iq["error"]["condition"])
        emit("ok", cmd=cmd, **extra)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(MucClient))
