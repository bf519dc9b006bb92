// What the browser scripts share: how Debian's Chromium is started, and `ink`, which
// measures the text drawn in one rectangle of a screenshot.

import { readFileSync } from "node:fs";

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
