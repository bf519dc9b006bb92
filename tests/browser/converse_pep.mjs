// Runs the server's own chat page (Converse.js, self-hosted by the server from the npm package)
// in headless Debian Chromium and reports what it shows of what other clients stored on the
// account: a room bookmark and a contact's avatar.
//
// - logs in through Converse's login form (over RFC 7395 WebSocket);
// - opens Converse's own bookmark list (the groupchats menu, "Bookmarks") and reports the
//   entry for --room: the name it shows, and the nick and autojoin flag Converse read;
// - reports when --contact is in the roster it shows (and the subscription), then waits
//   for that contact's avatar to be drawn in the roster and reports the image's data (the
//   base64 of the `data:` URL Converse draws), and the hash Converse computed of it.
//
// Every step is one JSON line on stdout: {"kind":"...",...}.
// Usage: node converse_pep.mjs --base http://127.0.0.1:N --chat-path /chat --user alice
//          --pass PW --room lobby@conference.localhost --contact bob@localhost [--timeout 80]
// Browser console lines go to stderr.

import { chromium } from "playwright-core";
import {
  chromiumOptions,
  converseConnected,
  converseLogin,
  conversePage,
  scriptOptions,
} from "./chromium.mjs";

const { opt, deadline } = scriptOptions(
  "converse_pep",
  {
    base: { type: "string" },
    "chat-path": { type: "string", default: "/chat" },
    user: { type: "string" },
    pass: { type: "string" },
    room: { type: "string" },
    contact: { type: "string" },
    timeout: { type: "string", default: "80" },
  },
  ["base", "user", "pass", "room", "contact"],
);

const base = new URL(opt.base);
const emit = (kind, fields = {}) => console.log(JSON.stringify({ kind, ...fields }));

// Polls `probe` (run in the page) every 200 ms until it returns something truthy or `until`
// (the script's deadline unless given) passes; its last answer.
async function poll(page, probe, arg, until = deadline) {
  for (;;) {
    const found = await page.evaluate(probe, arg);
    if (found || Date.now() >= until) return found;
    await page.waitForTimeout(200);
  }
}

let browser;
let ok = false;
try {
  browser = await chromium.launch(chromiumOptions);
  // Anything the page fetches must come from the server under test.
  const { page } = await conversePage(browser, (url) => url.host === base.host);
  const url = new URL(opt["chat-path"], base).href;
  emit("page", await converseLogin(page, url, opt.user, opt.pass));
  await converseConnected(page);
  emit("connected");

  // Converse makes its bookmark list once it has decided the server can keep bookmarks
  // (disco#info of the account) and fetched them.
  await page.evaluate(() => window.testConverse.api.waitUntil("bookmarksInitialized"));
  // The user's way to the list: the groupchats menu, then "Bookmarks".
  await page.locator("converse-rooms-list converse-dropdown button.dropdown-toggle").click();
  await page.locator("converse-rooms-list a.show-bookmark-list-modal").click();
  const entry = await poll(
    page,
    (room) => {
      const link = document.querySelector(
        `converse-bookmark-list-modal a.open-room[data-room-jid="${room}"]`,
      );
      if (!link) return null;
      const bookmark = window.testConverse.state.bookmarks.get(room);
      return {
        jid: room,
        shown: link.textContent.trim(),
        nick: bookmark?.get("nick") ?? "",
        autojoin: !!bookmark?.get("autojoin"),
      };
    },
    opt.room,
    // A bookmark that is not there must not use up the time the avatar needs.
    Math.min(deadline, Date.now() + 30_000),
  );
  const listed = await page.evaluate(() =>
    [...document.querySelectorAll("converse-bookmark-list-modal a.open-room")].map((a) =>
      a.textContent.trim(),
    ),
  );
  emit("bookmarks", { shown: listed });
  if (entry) emit("bookmark", entry);
  await page.keyboard.press("Escape");

  // The contact as the roster shows it.
  const contact = await poll(
    page,
    async (jid) => {
      const link = document.querySelector(`converse-roster a.open-chat[data-jid="${jid}"]`);
      if (!link) return null;
      const model = await window.testConverse.api.contacts.get(jid);
      return { jid, subscription: model?.get("subscription") ?? "" };
    },
    opt.contact,
  );
  if (contact) emit("roster", contact);

  // Its avatar, once Converse draws one (an image, not initials).
  const avatar = contact
    ? await poll(
        page,
        async (jid) => {
          const image = document.querySelector(
            `converse-roster a.open-chat[data-jid="${jid}"] converse-avatar svg image`,
          );
          const href = image?.getAttribute("href") ?? "";
          const match = href.match(/^data:([^;]+);base64,(.*)$/s);
          if (!match) return null;
          const model = await window.testConverse.api.contacts.get(jid);
          return {
            jid,
            type: match[1],
            data: match[2],
            image_hash: model?.vcard?.get("image_hash") ?? "",
          };
        },
        opt.contact,
      )
    : null;
  if (avatar) emit("avatar", avatar);
  ok = !!(entry && contact && avatar);
  emit(ok ? "done" : "incomplete");
} catch (e) {
  console.error(`converse_pep: ${e.stack ?? e}`);
  ok = false;
} finally {
  await browser?.close().catch(() => {});
}
process.exit(ok ? 0 : 1);
