// What the browser scripts share: how Debian's Chromium is started, and `ink`, which
// measures the text drawn in one rectangle of a screenshot.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

// playwright-core's launch options: /usr/bin/chromium (no browser is ever downloaded),
// headless, loopback only.
export const chromiumOptions = {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Loopback only: no name resolves, and only IP literals are used.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    // The server under test has a self-signed certificate (generated into its data dir).
    "--ignore-certificate-errors",
  ],
};

// The text drawn in `rect` ({x, y, width, height} in PNG pixels) of the screenshot at
// `pngPath`, read by loading it into a page of `context` (a playwright BrowserContext; no
// image library needed): the number of text lines (runs of rows holding dark pixels,
// separated by rows without) and of dark pixels (luminance below 128, i.e. text on the
// light backgrounds the widgets use), and the image's size.
export async function ink(context, pngPath, rect) {
  const page = await context.newPage();
  try {
    const data = `data:image/png;base64,${readFileSync(pngPath).toString("base64")}`;
    return await page.evaluate(
      async ({ data, rect }) => {
        const img = new Image();
        img.src = data;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = img.width;
        canvas.height = img.height;
        const g = canvas.getContext("2d");
        g.drawImage(img, 0, 0);
        const px = g.getImageData(rect.x, rect.y, rect.width, rect.height).data;
        let rows = 0;
        let dark = 0;
        let inRun = false;
        for (let y = 0; y < rect.height; y++) {
          let rowDark = 0;
          for (let x = 0; x < rect.width; x++) {
            const i = (y * rect.width + x) * 4;
            if (0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] < 128) rowDark++;
          }
          dark += rowDark;
          if (rowDark > 0 && !inRun) rows++;
          inRun = rowDark > 0;
        }
        return { rows, dark, width: img.width, height: img.height };
      },
      { data, rect },
    );
  } finally {
    await page.close();
  }
}

// Opens the server's chat page at `url` in `page` and logs in as `user` through Converse's
// own login form (just the user name: its default_domain is the server's); the page's
// HTTP status and title.
export async function converseLogin(page, url, user, pass) {
  const response = await page.goto(url);
  const loaded = { status: response?.status() ?? 0, title: await page.title() };
  await page.locator("#converse-login-jid").fill(user, { timeout: 30_000 });
  await page.locator("#converse-login-password").fill(pass);
  await page.locator("converse-login-form button[type=submit]").first().click();
  return loaded;
}

// A script's options (node:util's parseArgs `options`), with each of `required` given (else
// it exits 2), and its deadline: `--timeout` seconds from now; 30 s past it the script is
// stopped whatever it is doing.
export function scriptOptions(script, options, required) {
  const { values: opt } = parseArgs({ options });
  for (const name of required) {
    if (!opt[name]) {
      console.error(`missing --${name}`);
      process.exit(2);
    }
  }
  const seconds = Number(opt.timeout);
  setTimeout(() => {
    console.error(`${script}: hard deadline passed`);
    process.exit(1);
  }, seconds * 1000 + 30_000).unref();
  return { opt, deadline: Date.now() + seconds * 1000 };
}

// A page in a new context (1100×700) of `browser`, for the chat page: it may fetch only the
// URLs `ours` (given a URL) accepts — anything else is aborted, and said on stderr — its
// console goes to stderr, and `converseHook` is installed with `settings`.
export async function conversePage(browser, ours, settings = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (ours(url)) return route.continue();
    console.error(`blocked a request to ${url}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("console", (m) => console.error(`[console.${m.type()}] ${m.text().slice(0, 500)}`));
  page.on("pageerror", (e) => console.error(`[pageerror] ${e}`));
  await page.addInitScript(converseHook, { settings });
  return { context, page };
}

// Waits (30 s at most) until Converse in `page` is connected.
export async function converseConnected(page) {
  await page.waitForFunction(() => window.testConverse?.api?.connection?.connected(), null, {
    timeout: 30_000,
  });
}

// A page init script (`page.addInitScript(converseHook, { settings })`, run before the
// page's own scripts, not part of the page): registers a tiny Converse plugin that puts
// Converse's internal object at `window.testConverse`, and adds `settings` to the page's
// Converse settings.
export const converseHook = ({ settings }) => {
  window.addEventListener("converse-loaded", (e) => {
    const converse = e.detail.converse;
    converse.plugins.add("jabberwock-test", {
      initialize() {
        window.testConverse = this._converse;
      },
    });
    const initialize = converse.initialize.bind(converse);
    converse.initialize = (given) =>
      initialize({ ...given, whitelisted_plugins: ["jabberwock-test"], ...settings });
  });
};
