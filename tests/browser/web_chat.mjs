// Runs the server's own chat page (Converse.js, self-hosted by the server from the npm
// package) in headless Debian Chromium, twice: one user logs in over RFC 7395 WebSocket,
// the other over BOSH (`?transport=bosh`), both by filling in Converse's login form.
//
// - starts /usr/bin/chromium through playwright-core (no browser is ever downloaded);
//   the pages may only fetch from the server under test (--base), loopback only;
// - a test hook (added before the page's scripts, not part of the page) registers a tiny
//   Converse plugin that records "connected", every incoming chat message, and every IQ
//   request the client makes with its answer ("iq": to, payload namespace and name, the
//   pubsub node if any, answer type, error condition), read from the connection's
//   xmlOutput/xmlInput;
// - waits until each user sees every contact of --peers online (presence), prints
//   {"kind":"ready"} so the caller can have its TCP and Flash clients send their messages;
// - each user then opens a chat with every peer through Converse's UI, types a message and
//   presses Enter;
// - stops once each user has received a message from every peer (or at the deadline),
//   takes a screenshot of each page, and exits 0 when everything was received.
//
// Every step is one JSON line on stdout: {"who":"alice","kind":"...",...}.
// Usage: node web_chat.mjs --base https://127.0.0.1:N --chat-path /chat --domain localhost
//          --ws-user alice --ws-pass PW --bosh-user bob --bosh-pass PW
//          --peers carol@localhost,dave@localhost --screenshot-dir DIR [--timeout 90]
// Browser console lines go to stderr.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { chromiumOptions, converseLogin, scriptOptions } from "./chromium.mjs";

const { opt, deadline } = scriptOptions(
  "web_chat",
  {
    base: { type: "string" },
    "chat-path": { type: "string", default: "/chat" },
    domain: { type: "string", default: "localhost" },
    "ws-user": { type: "string" },
    "ws-pass": { type: "string" },
    "bosh-user": { type: "string" },
    "bosh-pass": { type: "string" },
    peers: { type: "string", default: "" },
    "screenshot-dir": { type: "string" },
    timeout: { type: "string", default: "90" },
  },
  ["base", "ws-user", "ws-pass", "bosh-user", "bosh-pass", "screenshot-dir"],
);

const base = new URL(opt.base);
const emit = (who, kind, fields = {}) => console.log(JSON.stringify({ who, kind, ...fields }));
const bare = (jid) => String(jid ?? "").split("/")[0];
const otherPeers = opt.peers.split(",").filter(Boolean);

// The test hook: runs before the page's own scripts.
const hook = () => {
  window.testEvents = [];
  window.addEventListener("converse-loaded", (e) => {
    const converse = e.detail.converse;
    converse.plugins.add("jabberwock-test", {
      initialize() {
        const _converse = this._converse;
        const api = _converse.api;
        window.testConverse = _converse;
        api.listen.on("connected", () => {
          const conn = api.connection.get();
          window.testEvents.push({ kind: "connected", service: String(conn?.service ?? "") });
        });
        // Every IQ request the client makes and how it was answered, from the
        // connection's own traffic hooks (a BOSH <body/> is opened to its stanzas).
        api.listen.on("connectionInitialized", () => {
          const conn = api.connection.get();
          const asked = new Map();
          const stanzas = (el) => (el?.nodeName === "body" ? [...el.children] : el ? [el] : []);
          const output = conn.xmlOutput?.bind(conn);
          conn.xmlOutput = (el) => {
            for (const s of stanzas(el)) {
              const type = s.getAttribute("type");
              if (s.nodeName !== "iq" || (type !== "get" && type !== "set")) continue;
              // Strophe writes xmlns as an attribute: namespaceURI stays null.
              const payload = s.firstElementChild;
              const ns = payload?.getAttribute("xmlns") ?? payload?.namespaceURI;
              asked.set(s.getAttribute("id"), {
                to: s.getAttribute("to") ?? "",
                type,
                payload: payload ? `${ns} ${payload.localName}` : "",
                node: payload?.querySelector("[node]")?.getAttribute("node") ?? "",
              });
            }
            return output?.(el);
          };
          const input = conn.xmlInput?.bind(conn);
          conn.xmlInput = (el) => {
            for (const s of stanzas(el)) {
              const request = s.nodeName === "iq" && asked.get(s.getAttribute("id"));
              if (!request) continue;
              asked.delete(s.getAttribute("id"));
              const error = [...(s.querySelector("error")?.children ?? [])].find(
                (c) => c.namespaceURI === "urn:ietf:params:xml:ns:xmpp-stanzas",
              );
              window.testEvents.push({
                kind: "iq",
                ...request,
                answer: s.getAttribute("type"),
                condition: error?.localName ?? "",
              });
            }
            return input?.(el);
          };
        });
        api.listen.on("message", (data) => {
          const a = data?.attrs ?? {};
          if (a.body && !a.is_archived) {
            window.testEvents.push({ kind: "message", from: String(a.from), body: String(a.body) });
          }
        });
      },
    });
    const initialize = converse.initialize.bind(converse);
    converse.initialize = (settings) =>
      initialize({ ...settings, whitelisted_plugins: ["jabberwock-test"] });
  });
};

const users = [
  { who: opt["ws-user"], pass: opt["ws-pass"], transport: "websocket" },
  { who: opt["bosh-user"], pass: opt["bosh-pass"], transport: "bosh" },
];
for (const u of users) {
  u.jid = `${u.who}@${opt.domain}`;
  u.seen = 0;
  u.received = new Map();
}
for (const u of users) {
  u.peers = [...users.filter((o) => o !== u).map((o) => o.jid), ...otherPeers];
  u.body = (peer) => `${u.who} to ${bare(peer)} over ${u.transport}: héllo <&> ✓`;
}

let browser;
let ok = false;
try {
  browser = await chromium.launch(chromiumOptions);
  for (const u of users) {
    u.context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    // Anything the page fetches must come from the server under test.
    await u.context.route("**/*", (route) => {
      const url = route.request().url();
      if (new URL(url).host === base.host) return route.continue();
      console.error(`[${u.who}] blocked a request to ${url}`);
      return route.abort();
    });
    u.page = await u.context.newPage();
    u.page.on("console", (m) =>
      console.error(`[${u.who} console.${m.type()}] ${m.text().slice(0, 500)}`),
    );
    u.page.on("pageerror", (e) => console.error(`[${u.who} pageerror] ${e}`));
    await u.page.addInitScript(hook);
    const url = new URL(opt["chat-path"], base);
    if (u.transport === "bosh") url.searchParams.set("transport", "bosh");
    emit(u.who, "page", await converseLogin(u.page, url.href, u.who, u.pass));
  }

  // Presence: each user's roster shows every peer online.
  const pollEvents = async (u) => {
    const events = await u.page.evaluate(() => window.testEvents ?? []);
    for (; u.seen < events.length; u.seen++) {
      const e = events[u.seen];
      emit(u.who, e.kind, e);
      if (e.kind === "message") u.received.set(bare(e.from), e.body);
      if (e.kind === "connected") u.connected = e.service;
    }
  };
  const presences = (u) =>
    u.page.evaluate(async (peers) => {
      const api = window.testConverse?.api;
      if (!api || !api.connection.connected()) return null;
      const out = {};
      for (const jid of peers) {
        const contact = await api.contacts.get(jid);
        out[jid] = contact ? contact.getStatus() : null;
      }
      return out;
    }, u.peers);
  for (const u of users) u.online = new Set();
  while (Date.now() < deadline && users.some((u) => u.online.size < u.peers.length)) {
    for (const u of users) {
      await pollEvents(u);
      const shown = (await presences(u)) ?? {};
      for (const [jid, show] of Object.entries(shown)) {
        if (show && show !== "offline" && !u.online.has(jid)) {
          u.online.add(jid);
          emit(u.who, "presence", { from: jid, show });
        }
      }
    }
    await users[0].page.waitForTimeout(200);
  }
  if (users.some((u) => u.online.size < u.peers.length)) throw new Error("not every contact came online");
  emit("all", "ready");

  // Each user writes to each peer through the UI: open the chat, type, press Enter.
  for (const u of users) {
    for (const peer of u.peers) {
      await u.page.evaluate((jid) => window.testConverse.api.chats.open(jid, {}, true), peer);
      const textarea = u.page.locator(`converse-chat[jid="${peer}"] textarea.chat-textarea`);
      await textarea.fill(u.body(peer), { timeout: 15_000 });
      await textarea.press("Enter");
      emit(u.who, "sent", { to: peer, body: u.body(peer) });
    }
  }

  // Everyone's messages in.
  const expected = (u) => u.peers.filter((p) => !u.received.has(p));
  while (Date.now() < deadline && users.some((u) => expected(u).length > 0)) {
    for (const u of users) await pollEvents(u);
    await users[0].page.waitForTimeout(200);
  }
  for (const u of users) {
    if (expected(u).length > 0) console.error(`web_chat: ${u.who} got nothing from ${expected(u)}`);
  }
  ok = users.every((u) => expected(u).length === 0 && u.connected);

  // The screenshot: each user's chat with the other browser user, the messages shown.
  mkdirSync(opt["screenshot-dir"], { recursive: true });
  for (const u of users) {
    const other = users.find((o) => o !== u);
    await u.page.evaluate((jid) => window.testConverse.api.chats.open(jid, {}, true), other.jid);
    await u.page.waitForTimeout(500);
    const path = join(opt["screenshot-dir"], `web-chat-${u.who}-${u.transport}.png`);
    await u.page.screenshot({ path });
    emit(u.who, "screenshot", { path });
  }
  emit("all", ok ? "done" : "incomplete");
} catch (e) {
  console.error(`web_chat: ${e.stack ?? e}`);
  ok = false;
} finally {
  await browser?.close().catch(() => {});
}
process.exit(ok ? 0 : 1);
