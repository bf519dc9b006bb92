// Runs the server's own chat page (Converse.js, self-hosted by the server from the npm package)
// in headless Debian Chromium for one user in one XEP-0045 room.
//
// - logs in through Converse's login form, over RFC 7395 WebSocket or BOSH (--transport);
// - a test hook (added before the page's scripts, not part of the page) adds the room to
//   Converse's own `auto_join_rooms` setting with --nick, so Converse opens and enters it
//   the way a configured deployment does;
// - reads the room as Converse holds it (its occupants and messages models) and reports each
//   occupant and each groupchat message once, as JSON lines;
// - once every nick of --occupants is in the room, types --body in the room's text area and
//   presses Enter;
// - once a live message from each of them has arrived (or at the deadline): reads the room
//   view's DOM (the occupant list's nicks, the messages' texts), takes a screenshot, and
//   measures each expected message's box in it (chromium.mjs's ink: text lines and dark pixels), so
//   the caller can check the messages are really drawn; exits 0 when everything arrived.
//
// Every step is one JSON line on stdout: {"kind":"...",...}.
// Usage: node converse_room.mjs --base https://127.0.0.1:N --chat-path /chat --user alice
//          --pass PW --room room@conference.localhost --nick Alice --occupants Bob,Carol
//          --body text --screenshot out.png [--transport websocket|bosh] [--timeout 80]
// Browser console lines go to stderr.

import { chromium } from "playwright-core";
import { chromiumOptions, converseLogin, conversePage, ink, scriptOptions } from "./chromium.mjs";

const { opt, deadline } = scriptOptions(
  "converse_room",
  {
    base: { type: "string" },
    "chat-path": { type: "string", default: "/chat" },
    user: { type: "string" },
    pass: { type: "string" },
    transport: { type: "string", default: "websocket" },
    room: { type: "string" },
    nick: { type: "string" },
    occupants: { type: "string", default: "" },
    body: { type: "string" },
    screenshot: { type: "string" },
    timeout: { type: "string", default: "80" },
  },
  ["base", "user", "pass", "room", "nick", "body", "screenshot"],
);

const base = new URL(opt.base);
const expected = opt.occupants.split(",").filter(Boolean);
const emit = (kind, fields = {}) => console.log(JSON.stringify({ kind, ...fields }));

// The room as Converse holds it, or null before it exists.
const roomState = (page) =>
  page.evaluate(async (jid) => {
    const api = window.testConverse?.api;
    if (!api || !api.connection.connected()) return null;
    const room = await api.rooms.get(jid);
    if (!room) return null;
    return {
      entered: room.session?.get("connection_status") === 5,
      connection: String(api.connection.get()?.service ?? ""),
      occupants: room.occupants.models.map((o) => ({
        nick: o.get("nick"),
        role: o.get("role") ?? "",
        show: o.get("show") ?? "",
      })),
      messages: room.messages.models
        .filter((m) => m.get("body"))
        .map((m) => ({
          nick: m.get("nick") ?? "",
          from: m.get("from") ?? "",
          type: m.get("type") ?? "",
          body: m.get("body"),
          delayed: !!m.get("is_delayed"),
          sender: m.get("sender") ?? "",
        })),
    };
  }, opt.room);

let browser;
let ok = false;
try {
  browser = await chromium.launch(chromiumOptions);
  // Anything the page fetches must come from the server under test; Converse opens and
  // enters the room the way a configured deployment does.
  const { context, page } = await conversePage(browser, (url) => url.host === base.host, {
    auto_join_rooms: [{ jid: opt.room, nick: opt.nick }],
  });
  const url = new URL(opt["chat-path"], base);
  url.searchParams.set("transport", opt.transport);
  emit("page", await converseLogin(page, url.href, opt.user, opt.pass));

  const seenOccupants = new Set();
  let seenMessages = 0;
  let entered = false;
  let sent = false;
  const heard = new Set();
  while (Date.now() < deadline && expected.some((n) => !heard.has(n))) {
    const state = await roomState(page);
    if (state) {
      if (state.entered && !entered) {
        entered = true;
        emit("entered", { room: opt.room, service: state.connection });
      }
      for (const o of state.occupants) {
        if (!seenOccupants.has(o.nick)) {
          seenOccupants.add(o.nick);
          emit("occupant", o);
        }
      }
      for (; seenMessages < state.messages.length; seenMessages++) {
        const m = state.messages[seenMessages];
        emit("groupchat", m);
        if (!m.delayed && m.nick !== opt.nick) heard.add(m.nick);
      }
      const present = new Set(state.occupants.map((o) => o.nick));
      if (entered && !sent && expected.every((n) => present.has(n))) {
        // Converse's own UI: the room's text area, Enter sends.
        const textarea = page.locator("converse-muc textarea.chat-textarea");
        await textarea.fill(opt.body, { timeout: 15_000 });
        await textarea.press("Enter");
        sent = true;
        emit("sent", { body: opt.body });
      }
    }
    await page.waitForTimeout(200);
  }
  ok = sent && expected.every((n) => heard.has(n));
  if (!ok) console.error(`converse_room: nothing heard from ${expected.filter((n) => !heard.has(n))}`);

  // What the room view shows: its occupant list and its messages.
  await page.waitForTimeout(500);
  const dom = await page.evaluate(() => {
    const view = document.querySelector("converse-muc");
    if (!view) return null;
    return {
      occupants: [...view.querySelectorAll(".occupant-nick")].map((e) => e.textContent.trim()),
      messages: [...view.querySelectorAll(".chat-msg__text")].map((e) => e.textContent.trim()),
    };
  });
  emit("dom", dom ?? { occupants: [], messages: [] });
  await page.screenshot({ path: opt.screenshot });
  emit("screenshot", { path: opt.screenshot });
  // Each message's box in the screenshot: where the page says it is drawn, there is text.
  const texts = page.locator("converse-muc .chat-msg__text");
  for (let i = 0; i < (await texts.count()); i++) {
    const box = await texts.nth(i).boundingBox();
    const text = (await texts.nth(i).textContent()).trim();
    if (!box) {
      emit("shown", { text, box: null });
      continue;
    }
    const rect = {
      x: Math.max(0, Math.floor(box.x)),
      y: Math.max(0, Math.floor(box.y)),
      width: Math.min(1100 - Math.floor(box.x), Math.ceil(box.width)),
      height: Math.min(700 - Math.floor(box.y), Math.ceil(box.height)),
    };
    const inside = rect.width > 0 && rect.height > 0;
    emit("shown", { text, box: rect, ...(inside ? await ink(context, opt.screenshot, rect) : {}) });
  }
  emit(ok ? "done" : "incomplete");
} catch (e) {
  console.error(`converse_room: ${e.stack ?? e}`);
  ok = false;
} finally {
  await browser?.close().catch(() => {});
}
process.exit(ok ? 0 : 1);
