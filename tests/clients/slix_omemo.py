"""slix_im.py's client with OMEMO (XEP-0384) through slixmpp-omemo 2.x (PyPI), which keeps
its device lists and key bundles in the account's PEP nodes (XEP-0163) and learns the
contacts' devices from PEP notifications. Blind trust before verification, keys kept in a
JSON file of its own for the run.

At start it waits for the plugin to have published its device list and bundles
("omemo_ready", with its device id) before reporting "session_start".

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "send_encrypted", "to": BAREJID, "body": TEXT}  an OMEMO-encrypted chat message
Events: "omemo_ready" (device), "device_list" (from, node) for each device list
notification, "decrypted" (from, body, and "plaintext_seen": whether the stanza as it
arrived carried the text anywhere but inside the encryption).
"""

import asyncio
import atexit
import json
import os
import sys
import tempfile
from typing import Dict, FrozenSet, Optional

from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, JSONType
from slixmpp import JID
from slixmpp.plugins import register_plugin
from slixmpp_omemo import XEP_0384

import slix_im
from slix_im import emit


class JsonStorage(Storage):
    """The plugin's keys and sessions, in a JSON file of this run."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.data: Dict[str, JSONType] = {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = value
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.data, f)

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.data, f)


class Omemo(XEP_0384):
    default_config = {"fallback_message": "This message is OMEMO encrypted.", "path": None}

    def plugin_init(self) -> None:
        self._storage = JsonStorage(self.path)
        super().plugin_init()

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(
        self, blindly_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        pass

    async def _prompt_manual_trust(
        self, manually_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        raise RuntimeError("blind trust before verification is on: nothing to decide")


register_plugin(Omemo)


class OmemoClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        self.keys = tempfile.NamedTemporaryFile(prefix="omemo-", suffix=".json", delete=False)
        self.keys.close()
        atexit.register(os.unlink, self.keys.name)
        for plugin in ["xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0280", "xep_0334"]:
            self.register_plugin(plugin)
        self.register_plugin("xep_0384", {"path": self.keys.name}, module=sys.modules[__name__])
        self.auto_authorize = True
        self.auto_subscribe = True
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("omemo_initialized", self.on_omemo_ready)
        for name in ["oldmemo_device_list_publish", "twomemo_device_list_publish"]:
            self.add_event_handler(name, self.on_device_list)

    async def on_omemo_ready(self, _):
        manager = await self.plugin["xep_0384"].get_session_manager()
        own, _ = await manager.get_own_device_information()
        emit("omemo_ready", device=own.device_id)
        if not self.ready.done():
            self.ready.set_result(True)

    def on_start(self, event):
        # session_start only once OMEMO has published what contacts need.
        async def later():
            await asyncio.wait_for(self.ready, self.args.timeout)
            super(OmemoClient, self).on_start(event)
        asyncio.ensure_future(later())

    def on_device_list(self, msg):
        node = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event")[0].get("node")
        emit("device_list", node=node, **{"from": str(msg["from"])})

    async def on_message(self, msg):
        omemo = self.plugin["xep_0384"]
        if msg["type"] not in ("chat", "normal") or not omemo.is_encrypted(msg):
            return super().on_message(msg)
        decrypted, _device = await omemo.decrypt_message(msg)
        body = decrypted["body"]
        raw = str(msg)
        emit("decrypted", body=body, plaintext_seen=body in raw, **{"from": str(msg["from"])})

    async def run(self, command):
        cmd = command["cmd"]
        if cmd == "send_encrypted":
            omemo = self.plugin["xep_0384"]
            message = self.make_message(mto=JID(command["to"]), mtype="chat")
            message["body"] = command["body"]
            encrypted, errors = await omemo.encrypt_message(message, JID(command["to"]))
            if encrypted is None:
                raise RuntimeError(f"nothing to send: {errors}")
            encrypted.send()
            emit("sent_encrypted", errors=len(errors),
                 plaintext_sent=command["body"] in str(encrypted))
        else:
            return await super().run(command)
        emit("ok", cmd=cmd)
        return True



if __name__ == "__main__":
    asyncio.run(slix_im.main(OmemoClient))
