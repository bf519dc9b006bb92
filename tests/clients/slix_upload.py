"""slix_im.py's client with slixmpp's own XEP-0363 plugin (xep_0363): it finds the upload
service through disco (the host's items, then each item's info), asks it for a slot and PUTs
the file with aiohttp, all as slixmpp does it for its users. Downloads are aiohttp GETs.

Usage and the base commands: see slix_im.py. More commands:
  {"cmd": "upload", "path": FILE, "content_type": T}
        xep_0363.upload_file; reports "uploaded" (url, service, max_file_size), or
        "upload_failed" (kind: the exception's class, status for an HTTP error)
  {"cmd": "download", "url": URL}
        GET; reports "downloaded" (status, sha1 and length of the body, content_type,
        disposition, nosniff)
"""

import asyncio
import hashlib

import aiohttp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0363.http_upload import HTTPError

import slix_im
from slix_im import emit


class UploadClient(slix_im.Client):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ["xep_0030", "xep_0363"]:
            self.register_plugin(plugin)

    async def run(self, command):
        cmd = command["cmd"]
        t = self.args.timeout
        upload = self.plugin["xep_0363"]
        if cmd == "upload":
            try:
                url = await upload.upload_file(
                    command["path"], content_type=command.get("content_type"), timeout=t)
                emit("uploaded", url=url, service=str(upload.upload_service),
                     max_file_size=upload.max_file_size)
            except HTTPError as e:
                emit("upload_failed", kind="HTTPError", status=e.args[0])
            except IqError as e:
                emit("upload_failed", kind="IqError", condition=e.iq["error"]["condition"])
            except Exception as e:  # noqa: BLE001 — reported, the test decides
                emit("upload_failed", kind=type(e).__name__, text=str(e))
        elif cmd == "download":
            async with aiohttp.ClientSession() as session:
                async with session.get(command["url"]) as response:
                    body = await response.read()
                    emit("downloaded", status=response.status,
                         sha1=hashlib.sha1(body).hexdigest(), length=len(body),
                         content_type=response.headers.get("Content-Type"),
                         disposition=response.headers.get("Content-Disposition"),
                         nosniff=response.headers.get("X-Content-Type-Options"))
        else:
            return await super().run(command)
        emit("ok", cmd=cmd)
        return True


if __name__ == "__main__":
    asyncio.run(slix_im.main(UploadClient))
