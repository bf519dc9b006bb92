// Runs the server's own chat page (Converse.js, self-hosted by the server from the npm package)
// in headless Debian Chromium and sends a file with Converse's own XEP-0363 upload.
//
// - logs in through Converse's login form (over RFC 7395 WebSocket);
// - opens a chat with --to and hands Converse the file (--file, named --name, of type
//   --type) the way its file picker and drag-and-drop do (`sendFiles`): Converse finds the
//   upload service through disco, asks for a slot, PUTs the file from the page with
//   XMLHttpRequest (another origin than the page's: CORS), and sends the GET URL to --to;
// - reports the message once Converse has the upload's URL (set when its PUT got 201).
//
// Every step is one JSON line on stdout: {"kind":"...",...}.
// Usage: node converse_upload.mjs --base http://127.0.0.1:N --chat-path /chat --user alice
//          --pass PW --to bob@localhost --file PATH --name NAME --type MIME [--timeout 80]
// Browser console lines go to stderr.

import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import {
  chromiumOptions,
  converseConnected,
  converseLogin,
  conversePage,
  scriptOptions,
} from "./chromium.mjs";

const { opt, deadline } = scriptOptions(
  "converse_upload",
  {
    base: { type: "string" },
    "chat-path": { type: "string", default: "/chat" },
    user: { type: "string" },
    pass: { type: "string" },
    to: { type: "string" },
    file: { type: "string" },
    name: { type: "string" },
    type: { type: "string" },
    timeout: { type: "string", default: "80" },
  },
  ["base", "user", "pass", "to", "file", "name", "type"],
);

const base = new URL(opt.base);
const emit = (kind, fields = {}) => console.log(JSON.stringify({ kind, ...fields }));

// The slot URLs name the XMPP domain (`localhost`): it resolves to the loopback listener,
// and still nothing else does.
const options = {
  ...chromiumOptions,
  args: chromiumOptions.args.map((a) =>
    a.startsWith("--host-resolver-rules=")
      ? "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
      : a,
  ),
};

let browser;
let ok = false;
try {
  browser = await chromium.launch(options);
  // Anything the page fetches must come from the server under test: the page's origin, or
  // the upload URLs on the same listener under the XMPP domain's name.
  const { page } = await conversePage(
    browser,
    (url) => url.port === base.port && ["127.0.0.1", "localhost"].includes(url.hostname),
  );
  const url = new URL(opt["chat-path"], base).href;
  emit("page", await converseLogin(page, url, opt.user, opt.pass));
  await converseConnected(page);
  emit("connected");

  const data = readFileSync(opt.file).toString("base64");
  await page.evaluate(
    async ({ to, name, type, data }) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const chat = await window.testConverse.api.chats.open(to, {}, true);
      await chat.sendFiles([new File([bytes], name, { type })]);
    },
    { to: opt.to, name: opt.name, type: opt.type, data },
  );
  emit("handed", { name: opt.name, bytes: readFileSync(opt.file).length });

  // The message Converse made for the file, until its upload is done (or failed).
  let last = "";
  while (Date.now() < deadline && !ok) {
    const state = await page.evaluate(async (to) => {
      const chat = await window.testConverse.api.chats.get(to);
      const m = chat?.messages.models.find(
        (m) => m.get("file") || m.get("oob_url") || m.get("type") === "error",
      );
      if (!m) return { count: chat?.messages.length ?? -1 };
      return {
        upload: m.get("upload") ?? "",
        oob_url: m.get("oob_url") ?? "",
        body: m.get("body") ?? "",
        error: m.get("type") === "error" ? (m.get("message") ?? "") : "",
        progress: m.get("progress") ?? 0,
      };
    }, opt.to);
    const text = JSON.stringify(state);
    if (state && text !== last) {
      last = text;
      emit("message", state);
    }
    if (state?.error) break;
    // Converse sets `oob_url` (and the body) only once its PUT was answered 201.
    ok = !!state?.oob_url;
    if (!ok) await page.waitForTimeout(200);
  }
  if (ok) emit("uploaded", JSON.parse(last));
  emit(ok ? "done" : "incomplete");
} catch (e) {
  console.error(`converse_upload: ${e.stack ?? e}`);
  ok = false;
} finally {
  await browser?.close().catch(() => {});
}
process.exit(ok ? 0 : 1);
