// End-to-end test of editing and reacting in the web demo (issue 19, items 1 and 2), in
// Debian's Chromium driven by playwright-core: Erin on a desktop window, Frank on a phone.
// Erin edits her message from its menu and Frank sees the new text with an "edited" mark;
// Frank reacts from the picker, Erin adds hers with the chip, Frank takes his back.
// Screenshots go to examples/web/test-results/ (prefix "e").
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startProxy, startServer } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/chatico-target");
const serverBin = process.env.CHATICO_SERVER_BIN ?? join(targetDir, "debug/chatico-server");
const webDir = resolve(here, "../dist");
const outDir = process.env.CHATICO_E2E_OUT ?? resolve(here, "../test-results");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const ERIN = "+15550100031";
const FRANK = "+15550100032";

let proxy, server, browser, dataDir, base;
let erin, frank; // { context, page }
const pageErrors = [];

async function until(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const shot = (page, name) => page.screenshot({ path: join(outDir, `e${name}.png`) });

async function newUser(who, options) {
  const context = await browser.newContext({ deviceScaleFactor: 1, ...options });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  page.setDefaultTimeout(20000);
  return { context, page };
}

async function login(page, phone, name) {
  await page.goto(base);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("send-code").click();
  await page.getByTestId("code").fill(await server.codeFor(phone));
  await page.getByTestId("verify").click();
  await page.getByTestId("welcome-name").fill(name);
  await page.getByTestId("welcome-save").click();
  await until(async () => (await page.getByTestId("connection").getAttribute("data-state")) === "connected", `${name} connected`);
}

const msg = (page, text) => page.locator('[data-testid="message"]', { hasText: text }).last();
const chip = (page, text, emoji) => msg(page, text).locator(`[data-testid="reaction-chip"][data-emoji="${emoji}"]`);

before(async () => {
  mkdirSync(outDir, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "chatico-e2e-edits-"));
  proxy = await startProxy();
  base = `http://127.0.0.1:${proxy.port}`;
  server = await startServer({ bin: serverBin, dataDir, webDir, origins: [base] });
  proxy.setTarget(server.host, server.port);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  erin = await newUser("erin", { viewport: { width: 1280, height: 800 } });
  frank = await newUser("frank", { viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  proxy?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a message is edited from its menu and shows as edited on both sides", async () => {
  await login(erin.page, ERIN, "Erin");
  await login(frank.page, FRANK, "Frank");
  await frank.page.getByTestId("open-people").click();
  await frank.page.getByTestId("people-search").fill("Erin");
  const person = frank.page.locator('[data-testid="person"][data-name="Erin"]');
  await person.getByTestId("message-user").click();
  await frank.page.getByTestId("composer").fill("Hi Erin");
  await frank.page.getByTestId("composer").press("Enter");
  await erin.page.locator('[data-testid="conversation"][data-title="Frank"]').click();
  await erin.page.getByTestId("composer").fill("Lunch at noon?");
  await erin.page.getByTestId("composer").press("Enter");
  await msg(frank.page, "Lunch at noon?").waitFor();

  // Only one's own messages offer "Edit": not Erin's message in Frank's page.
  await msg(frank.page, "Lunch at noon?").getByTestId("message-menu").click();
  await frank.page.getByTestId("react").waitFor();
  assert.equal(await frank.page.getByTestId("edit").count(), 0);
  await frank.page.keyboard.press("Escape");

  const mine = msg(erin.page, "Lunch at noon?");
  await mine.hover();
  await mine.getByTestId("message-menu").click();
  await erin.page.getByTestId("edit").click();
  const input = erin.page.getByTestId("edit-input");
  assert.equal(await input.inputValue(), "Lunch at noon?");
  await input.fill("Lunch at one?");
  await shot(erin.page, "01-erin-editing");
  await erin.page.getByTestId("edit-save").click();
  await msg(erin.page, "Lunch at one?").getByTestId("edited").waitFor();
  await msg(frank.page, "Lunch at one?").getByTestId("edited").waitFor();
  assert.equal(await frank.page.locator('[data-testid="message"]', { hasText: "Lunch at noon?" }).count(), 0);
  await shot(frank.page, "02-frank-sees-edited");
});

test("reactions: picked from the menu, added and taken back with the chips, counted on both sides", async () => {
  const theirs = msg(frank.page, "Lunch at one?");
  await theirs.getByTestId("message-menu").click();
  await frank.page.getByTestId("react").click();
  await frank.page.getByTestId("reaction-picker").waitFor();
  await shot(frank.page, "03-frank-picker");
  await frank.page.locator('[data-testid="pick-reaction"][data-emoji="👍"]').click();
  await until(async () => (await chip(erin.page, "Lunch at one?", "👍").getAttribute("data-count")) === "1", "Erin sees Frank's 👍");
  assert.equal(await chip(frank.page, "Lunch at one?", "👍").getAttribute("aria-pressed"), "true");

  // Erin adds hers with the chip: two on both sides.
  await chip(erin.page, "Lunch at one?", "👍").click();
  for (const p of [erin.page, frank.page]) {
    await until(async () => (await chip(p, "Lunch at one?", "👍").getAttribute("data-count")) === "2", "two 👍");
  }
  await shot(erin.page, "04-erin-two-reactions");

  // Frank takes his back.
  await chip(frank.page, "Lunch at one?", "👍").click();
  for (const p of [erin.page, frank.page]) {
    await until(async () => (await chip(p, "Lunch at one?", "👍").getAttribute("data-count")) === "1", "one 👍 left");
  }
  assert.equal(await chip(frank.page, "Lunch at one?", "👍").getAttribute("aria-pressed"), "false");
  assert.equal(await chip(erin.page, "Lunch at one?", "👍").getAttribute("aria-pressed"), "true");

  // After a reload, the reactions and the edit come back from the server.
  await frank.page.reload();
  // The phone layout may come back with the chat open, or with the list.
  const row = frank.page.locator('[data-testid="conversation"][data-title="Erin"]');
  await until(async () => (await msg(frank.page, "Lunch at one?").count()) > 0 || (await row.isVisible()), "Frank's page back");
  if ((await msg(frank.page, "Lunch at one?").count()) === 0) await row.click();
  await msg(frank.page, "Lunch at one?").getByTestId("edited").waitFor();
  await until(async () => (await chip(frank.page, "Lunch at one?", "👍").getAttribute("data-count")) === "1", "reactions after a reload");
  assert.deepEqual(pageErrors, []);
});
