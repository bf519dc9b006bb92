// Runs the Flash test widget (tests/flash/FlashXmpp.hx, compiled to a SWF) in headless Debian
// Chromium under Ruffle, and reports what it did.
//
// - serves a page, the SWF and node_modules/@ruffle-rs/ruffle (self-hosted, never a CDN) on
//   127.0.0.1 with an ephemeral port;
// - starts /usr/bin/chromium through playwright-core (no browser is ever downloaded);
// - loads the SWF with Ruffle; its socket to --host:--port goes through Ruffle's socketProxy
//   to the WebSocket --proxy-url (the server's Flash endpoint, or websockify in front of a
//   c2s port);
// - prints every step the SWF reports (ExternalInterface "xmppStep") as one JSON line on stdout
//   as soon as it is seen: {"variant": "...", "kind": "...", "text": "..."};
// - stops at "received" (then waits briefly for "closed"), at an "error", or at the deadline;
//   takes a screenshot; exits 0 when a message was received and no error was reported, else 1.
//
// Usage: node flash_widget.mjs --swf W.swf --proxy-url ws://127.0.0.1:N/flash --port 5222
//          --user alice --pass secret --peer bob@localhost --screenshot out.png
//          [--host 127.0.0.1] [--domain localhost] [--resource flashwidget] [--body text]
//          [--header flash|standard|selfclosed] [--nul 1|0] [--timeout 60]
//          [--variants JSON]
//          [--room ROOM@SERVICE --nick N --join muc|plain --occupants N1,N2]
// --room puts the widget in room mode (XEP-0045; see FlashXmpp.hx) instead of chatting with
// --peer: it enters ROOM as --nick, speaks once every nick of --occupants is there and is
// done once each of them has spoken. The screenshot's room panel is then measured: one
// {"kind":"ink","text":"{\"rows\":R,\"dark\":D}"} line gives the text lines (bands of dark
// pixels) and dark pixels inside it (chromium.mjs's ink).
// --variants runs several widgets one after another in the same browser, each in its own
// page: a JSON array of objects overriding any of name, proxyUrl, port, header, nul,
// resource, body (the screenshot of each is saved as <screenshot>-<name>.png). The exit
// status is 0 only if every variant succeeded.
// Browser console lines go to stderr.

import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { chromiumOptions, ink } from "./chromium.mjs";

const { values: opt } = parseArgs({
  options: {
    swf: { type: "string" },
    "proxy-url": { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    domain: { type: "string", default: "localhost" },
    user: { type: "string" },
    pass: { type: "string" },
    resource: { type: "string", default: "flashwidget" },
    peer: { type: "string" },
    body: { type: "string", default: "hello from the Flash widget" },
    header: { type: "string", default: "flash" },
    nul: { type: "string", default: "1" },
    variants: { type: "string" },
    room: { type: "string", default: "" },
    nick: { type: "string" },
    join: { type: "string", default: "muc" },
    occupants: { type: "string", default: "" },
    screenshot: { type: "string" },
    timeout: { type: "string", default: "60" },
  },
});
for (const name of ["swf", "proxy-url", "port", "user", "pass", "screenshot", opt.room ? "nick" : "peer"]) {
  if (!opt[name]) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
}
const deadlineMs = Number(opt.timeout) * 1000;
// A last resort if the browser itself hangs: never outlive the deadline by much.
setTimeout(() => {
  console.error("flash_widget: hard deadline passed");
  process.exit(1);
}, (opt.variants ? JSON.parse(opt.variants).length : 1) * deadlineMs + 30_000).unref();

const here = dirname(fileURLToPath(import.meta.url));
const rufflePath = join(here, "node_modules", "@ruffle-rs", "ruffle");
if (!existsSync(join(rufflePath, "ruffle.js"))) {
  console.error(`Ruffle is missing at ${rufflePath}: run "npm ci" in ${here}`);
  process.exit(2);
}
const swf = readFileSync(opt.swf);

const single = {
  name: "widget",
  proxyUrl: opt["proxy-url"],
  port: opt.port,
  header: opt.header,
  nul: opt.nul,
  resource: opt.resource,
  body: opt.body,
  room: opt.room,
  nick: opt.nick ?? "",
  join: opt.join,
  occupants: opt.occupants,
};
const variants = opt.variants ? JSON.parse(opt.variants).map((v) => ({ ...single, ...v })) : [single];

function page(v) {
  const flashvars = {
    host: opt.host,
    port: String(v.port),
    domain: opt.domain,
    user: opt.user,
    pass: opt.pass,
    resource: v.resource,
    peer: opt.peer ?? "",
    body: v.body,
    room: v.room,
    nick: v.nick,
    join: v.join,
    occupants: v.occupants,
    header: v.header,
    nul: String(v.nul),
  };
  const socketProxy = [{ host: opt.host, port: Number(v.port), proxyUrl: v.proxyUrl }];
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Jabberwock Flash widget</title>
<style>body { margin: 0; background: #ddd; } ruffle-player { width: 800px; height: 600px; }</style>
<script>
  window.RufflePlayer = { config: { publicPath: "/node_modules/@ruffle-rs/ruffle/",
    autoplay: "on", unmuteOverlay: "hidden", splashScreen: false, letterbox: "off" } };
  window.steps = [];
  window.xmppStep = (kind, text) => { window.steps.push([String(kind), String(text)]); return true; };
</script>
<script src="/node_modules/@ruffle-rs/ruffle/ruffle.js"></script>
</head><body>
<script>
  const player = window.RufflePlayer.newest().createPlayer();
  document.body.appendChild(player);
  player.ruffle().load({
    url: "/widget.swf",
    allowScriptAccess: true,
    parameters: ${JSON.stringify(flashvars)},
    socketProxy: ${JSON.stringify(socketProxy)},
  }).catch((e) => window.xmppStep("error", "Ruffle could not load the SWF: " + e));
</script>
</body></html>`;
}

const types = {
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".json": "application/json",
};

const http = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://127.0.0.1").pathname);
  const send = (status, type, body) => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };
  const index = Number(new URL(req.url, "http://127.0.0.1").searchParams.get("v") ?? "0");
  if (path === "/" && variants[index]) return send(200, "text/html; charset=utf-8", page(variants[index]));
  if (path === "/widget.swf") return send(200, "application/x-shockwave-flash", swf);
  const prefix = "/node_modules/@ruffle-rs/ruffle/";
  if (path.startsWith(prefix)) {
    const file = normalize(join(rufflePath, path.slice(prefix.length)));
    if (file.startsWith(rufflePath + "/") && existsSync(file)) {
      return send(200, types[extname(file)] ?? "application/octet-stream", readFileSync(file));
    }
  }
  send(404, "text/plain", "not found");
});
await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${http.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "jabberwock-chromium-"));
let context;
let ok = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    ...chromiumOptions,
    viewport: { width: 800, height: 600 },
  });
  // Anything the page fetches must come from our own server.
  await context.route("**/*", (route) =>
    route.request().url().startsWith(origin + "/") ? route.continue() : route.abort(),
  );
  // One after another: a page in the background gets no animation frames, and Ruffle
  // stalls there.
  ok = true;
  for (const [index, v] of variants.entries()) {
    const shot = variants.length > 1 ? opt.screenshot.replace(/(\.png)?$/, `-${v.name}.png`) : opt.screenshot;
    ok = (await run(index, v, shot)) && ok;
  }
} catch (e) {
  console.error(`flash_widget: ${e.stack ?? e}`);
  ok = false;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  http.close();
}
process.exit(ok ? 0 : 1);

// One variant in a page of its own; true if it succeeded.
async function run(index, v, screenshot) {
  const tab = await context.newPage();
  const tag = (line) => `[${v.name}] ${line}`;
  tab.on("console", (m) => console.error(tag(`[console.${m.type()}] ${m.text().slice(0, 500)}`)));
  tab.on("pageerror", (e) => console.error(tag(`[pageerror] ${e}`)));
  await tab.goto(`${origin}/?v=${index}`);

  const start = Date.now();
  let seen = 0;
  let receivedAt = null;
  let finished = false;
  while (!finished && Date.now() - start < deadlineMs) {
    const steps = await tab.evaluate(() => window.steps);
    for (; seen < steps.length; seen++) {
      const [kind, text] = steps[seen];
      console.log(JSON.stringify({ variant: v.name, kind, text }));
      if (kind === "received") receivedAt = Date.now();
      if (kind === "error" || kind === "closed") finished = true;
    }
    // After the message, give the close handshake a moment to show up.
    if (receivedAt !== null && Date.now() - receivedAt > 5000) finished = true;
    if (!finished) await tab.waitForTimeout(100);
  }
  const steps = await tab.evaluate(() => window.steps);
  for (; seen < steps.length; seen++) {
    const [kind, text] = steps[seen];
    console.log(JSON.stringify({ variant: v.name, kind, text }));
  }
  if (!finished) console.error(tag(`flash_widget: deadline of ${opt.timeout} s reached`));
  await tab.screenshot({ path: screenshot });
  await tab.close();
  if (v.room) {
    // The room panel (FlashXmpp.hx: x 400, y 44, 390 x 546), inside its 1-pixel border.
    const measured = await ink(context, screenshot, { x: 403, y: 47, width: 384, height: 540 });
    console.log(JSON.stringify({ variant: v.name, kind: "ink", text: JSON.stringify(measured) }));
  }
  return steps.some(([k]) => k === "received") && !steps.some(([k]) => k === "error");
}
