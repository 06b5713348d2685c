// End-to-end test of mentions and pins in the web demo (issue 19, items 3 and 4), in
// Debian's Chromium driven by playwright-core: Hana mentions Ivan in a group through the
// @-suggestions; Ivan sees the mention badge in his list and the highlighted mention, which
// his reading clears; Ivan pins the group from the chat menu, and his second device (a
// second login) lists it first too. Screenshots go to examples/web/test-results/ (prefix "m").
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

const HANA = "+15550100041";
const IVAN = "+15550100042";

let proxy, server, browser, dataDir, base;
let hana, ivan, ivan2; // { context, page }
// The server refuses a second code for one phone within 30 s (the resend cooldown).
let ivanCodeAt = 0;
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

const shot = (page, name) => page.screenshot({ path: join(outDir, `m${name}.png`) });

async function newUser(who, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) console.log(`[${who} console] ${m.text()}`);
  });
  page.setDefaultTimeout(20000);
  return { context, page };
}

const connectionState = (page) => page.getByTestId("connection").getAttribute("data-state");

/** Logs in; a new account names itself (`name`), a known one (`name` null) does not. */
async function login(page, phone, name) {
  await page.goto(base);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("send-code").click();
  await page.getByTestId("code").fill(await server.codeFor(phone));
  await page.getByTestId("verify").click();
  if (name) {
    await page.getByTestId("welcome-name").fill(name);
    await page.getByTestId("welcome-save").click();
  }
  await until(async () => (await connectionState(page)) === "connected", `${phone} connected`);
}

const row = (page, title) => page.locator(`[data-testid="conversation"][data-title="${title}"]`);
const titles = (page) => page.locator('[data-testid="conversation"]').evaluateAll((els) => els.map((e) => e.dataset.title));

before(async () => {
  mkdirSync(outDir, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "chatico-e2e-mentions-"));
  proxy = await startProxy();
  base = `http://127.0.0.1:${proxy.port}`;
  server = await startServer({ bin: serverBin, dataDir, webDir, origins: [base] });
  proxy.setTarget(server.host, server.port);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  hana = await newUser("hana", { width: 1280, height: 800 });
  ivan = await newUser("ivan", { width: 1280, height: 800 });
  ivan2 = await newUser("ivan2", { width: 390, height: 780 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  proxy?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a mention picked from the @-suggestions is highlighted, badged in the list, and cleared by reading", async () => {
  await login(hana.page, HANA, "Hana");
  ivanCodeAt = Date.now();
  await login(ivan.page, IVAN, "Ivan");
  // A group of the two, and a direct chat that is newer.
  await hana.page.getByTestId("open-new-group").click();
  await hana.page.getByTestId("group-title").fill("Trip");
  await hana.page.locator('[data-testid="pick-member"][data-name="Ivan"]').check();
  await hana.page.getByTestId("create-group").click();
  await hana.page.getByTestId("chat-title").filter({ hasText: "Trip" }).waitFor();

  // "@Iv" opens the suggestions with Ivan (not Hana herself); Enter picks him.
  const composer = hana.page.getByTestId("composer");
  await composer.click();
  await composer.pressSequentially("Train at 9, @Iv");
  const options = hana.page.getByTestId("mention-option");
  await options.first().waitFor();
  assert.deepEqual(await options.evaluateAll((els) => els.map((e) => e.dataset.name)), ["Ivan"]);
  await shot(hana.page, "01-suggestions");
  await composer.press("Enter");
  assert.equal(await composer.inputValue(), "Train at 9, @Ivan ");
  await composer.pressSequentially("ok?");
  await composer.press("Enter");
  const sent = hana.page.locator('[data-testid="message"]', { hasText: "Train at 9" }).last();
  await sent.getByTestId("mention").filter({ hasText: "@Ivan" }).waitFor();
  // A plain "@Ivan" typed without picking is just text.
  await composer.fill("bye @Ivan, see you");
  await composer.press("Enter");
  await hana.page.locator('[data-testid="message"]', { hasText: "bye @Ivan" }).waitFor();
  assert.equal(await hana.page.locator('[data-testid="message"]', { hasText: "bye @Ivan" }).getByTestId("mention").count(), 0);

  // Ivan: the mention badge on the group, and the mention highlighted as his.
  const trip = row(ivan.page, "Trip");
  await trip.getByTestId("mention-badge").waitFor();
  await shot(ivan.page, "02-mention-badge");
  await trip.click();
  const got = ivan.page.locator('[data-testid="message"]', { hasText: "Train at 9" }).last();
  const mention = got.getByTestId("mention");
  await mention.waitFor();
  assert.equal(await mention.textContent(), "@Ivan");
  assert.match(await mention.getAttribute("class"), /\bme\b/);
  await shot(ivan.page, "03-mention-highlighted");
  // Reading the chat clears the badge.
  await until(async () => (await trip.getByTestId("mention-badge").count()) === 0, "the mention badge cleared by reading");
  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
});

test("a pinned chat comes first, on every device of the user, until unpinned", async () => {
  // A direct chat, newer than the group: it lists first for Ivan.
  await hana.page.getByTestId("open-people").click();
  await hana.page.getByTestId("people-search").fill("Ivan");
  await hana.page.locator('[data-testid="person"][data-name="Ivan"]').getByTestId("message-user").click();
  await hana.page.getByTestId("chat-title").filter({ hasText: "Ivan" }).waitFor();
  await hana.page.getByTestId("composer").fill("direct hello");
  await hana.page.getByTestId("composer").press("Enter");
  await until(async () => (await titles(ivan.page))[0] === "Hana", "the direct chat first for Ivan");

  await new Promise((r) => setTimeout(r, Math.max(0, ivanCodeAt + 31000 - Date.now())));
  await login(ivan2.page, IVAN, null);
  await until(async () => (await titles(ivan2.page))[0] === "Hana", "the direct chat first on Ivan's phone");

  // Ivan pins the group from its chat menu.
  await row(ivan.page, "Trip").click();
  await ivan.page.getByTestId("chat-menu").click();
  await ivan.page.getByTestId("pin").click();
  await until(async () => (await titles(ivan.page))[0] === "Trip", "the pinned group first");
  await row(ivan.page, "Trip").getByTestId("pinned").waitFor();
  // His other device follows, live.
  await until(async () => (await titles(ivan2.page))[0] === "Trip", "the pin on Ivan's phone");
  await row(ivan2.page, "Trip").getByTestId("pinned").waitFor();
  await shot(ivan2.page, "04-pinned-on-phone");
  // A newer message elsewhere does not move a pinned chat down; Hana's list is hers.
  await hana.page.getByTestId("composer").fill("another one");
  await hana.page.getByTestId("composer").press("Enter");
  await row(ivan.page, "Hana").getByTestId("unread").waitFor();
  assert.equal((await titles(ivan.page))[0], "Trip");
  assert.equal(await row(hana.page, "Trip").getByTestId("pinned").count(), 0, "pins are per user");
  // The pin survives a reload (it comes from the server's list).
  await ivan2.page.reload();
  await until(async () => (await titles(ivan2.page))[0] === "Trip", "the pin after a reload");

  // Unpinned: back to activity order, on both devices.
  await ivan.page.getByTestId("chat-menu").click();
  assert.equal(await ivan.page.getByTestId("pin").textContent(), "Unpin chat");
  await ivan.page.getByTestId("pin").click();
  await until(async () => (await titles(ivan.page))[0] === "Hana", "unpinned on the desktop");
  await until(async () => (await titles(ivan2.page))[0] === "Hana", "unpinned on the phone");
  assert.equal(await row(ivan2.page, "Trip").getByTestId("pinned").count(), 0);
  await shot(ivan.page, "05-unpinned");
  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
});
