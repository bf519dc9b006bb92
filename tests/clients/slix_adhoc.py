"""slix_im.py's client with slixmpp's XEP-0050 (ad-hoc commands) and XEP-0133 (service
administration) plugins: lists the server's commands and runs them stage by stage through
the plugins' API, the way an administrator's client does. Every message with a body is
reported, whatever its type (announcements, the message of the day).

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "commands"}                        xep_0133.get_commands (disco#items of the
                                             commands node); reports "commands" (nodes)
  {"cmd": "run", "node": NODE, "fields": {VAR: VALUE or [VALUES]}}
                                             executes NODE; when the answer asks for a form,
                                             submits these fields with the action the
                                             answer names as its default; reports
                                             "command" (status, notes, the result form's
                                             fields as lists of values, the stages run),
                                             or "iq_error" (condition, the XEP-0050 one)
"""

import asyncio
import json

from slixmpp.exceptions import IqError

import slix_im
from slix_im import emit

COMMANDS = "{http://jabber.org/protocol/commands}"


class AdhocClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ["xep_0030", "xep_0004", "xep_0050", "xep_0133"]:
            self.register_plugin(plugin)

    def on_message(self, msg):
        if msg["body"]:
            emit("received", **{"from": str(msg["from"]), "type": msg["type"],
                                "subject": msg["subject"], "body": msg["body"]})

    def submit(self, fields):
        form = self.plugin["xep_0004"].make_form(ftype="submit")
        for var, value in fields.items():
            if isinstance(value, list):
                form.add_field(var=var, ftype="jid-multi", value=value)
            else:
                form.add_field(var=var, value=value)
        return form

    async def run_command(self, command):
        adhoc = self.plugin["xep_0050"]
        host = self.boundjid.domain
        node = command["node"]
        t = self.args.timeout
        iq = await adhoc.send_command(host, node, timeout=t)
        stages = 1
        while iq["command"]["status"] == "executing":
            actions = iq.xml.find(COMMANDS + "command/" + COMMANDS + "actions")
            action = actions.get("execute") if actions is not None else "complete"
            iq = await adhoc.send_command(
                host, node, action=action or "complete",
                sessionid=iq["command"]["sessionid"],
                payload=self.submit(command.get("fields", {})), timeout=t)
            stages += 1
        notes = [text for _, text in iq["command"]["notes"]]
        result = {}
        form = iq.xml.find(COMMANDS + "command/{jabber:x:data}x")
        if form is not None:
            for field in form.findall("{jabber:x:data}field"):
                result[field.get("var")] = [v.text or "" for v in
                                            field.findall("{jabber:x:data}value")]
        emit("command", node=node, status=iq["command"]["status"], notes=notes,
             fields=result, stages=stages)

    async def run(self, command):
        cmd = command["cmd"]
        try:
            if cmd == "commands":
                iq = await self.plugin["xep_0133"].get_commands(timeout=self.args.timeout)
                emit("commands", nodes=[item[1] for item in iq["disco_items"]["items"]])
            elif cmd == "run":
                await self.run_command(command)
            else:
                return await super().run(command)
        except IqError as e:
            app = [child.tag.split("}")[1] for child in e.iq.xml.find("{jabber:client}error")
                   if child.tag.startswith(COMMANDS)]
            emit("iq_error", cmd=cmd, condition=e.iq["error"]["condition"],
                 command_condition=app[0] if app else None)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(AdhocClient))
