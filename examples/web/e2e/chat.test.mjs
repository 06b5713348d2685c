// End-to-end test of the web demo on the WASM SDK in a real browser: Debian's Chromium,
// headless, driven by playwright-core, with two browser contexts as two users (Alice on a
// desktop-sized window, Bob on a phone-sized one). Run by scripts/e2e-web.sh (which builds
// the demo and the server first); screenshots go to examples/web/test-results/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { png, startProxy, startServer } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/chatico-target");
const serverBin = process.env.CHATICO_SERVER_BIN ?? join(targetDir, "debug/chatico-server");
const webDir = resolve(here, "../dist");
const outDir = process.env.CHATICO_E2E_OUT ?? resolve(here, "../test-results");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const ALICE = "+15550100001";
const BOB = "+15550100002";

let proxy, server, browser, dataDir, base;
let alice, bob; // { context, page }
const pageErrors = [];

/** Waits until `fn()` is truthy (generous deadline: this waits for a state, it does not
 * measure speed). */
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

async function shot(page, name) {
  await page.screenshot({ path: join(outDir, `${name}.png`) });
}

function watch(page, who) {
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[${who} console] ${m.text()}`);
  });
  page.setDefaultTimeout(20000);
}

async function newUser(who, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

async function connectionState(page) {
  return page.locator('[data-testid="connection"]').getAttribute("data-state");
}

async function login(page, phone, name) {
  await page.goto(base);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("send-code").click();
  const code = await server.codeFor(phone);
  await page.getByTestId("code").fill(code);
  await shot(page, `00-${name.toLowerCase()}-login`);
  await page.getByTestId("verify").click();
  // A new account is asked for a name before anything else.
  await page.getByTestId("welcome-name").fill(name);
  await page.getByTestId("welcome-save").click();
  await until(async () => (await connectionState(page)) === "connected", `${name} connected`);
  await page.getByTestId("open-profile").click();
  await page.getByTestId("profile-name").fill(name);
  await page.getByTestId("profile-save").click();
  await page.getByTestId("profile-note").filter({ hasText: "Saved" }).waitFor();
}

/** The last message bubble sent by the page's user with this text. */
function ownMessage(page, text) {
  return page.locator('[data-testid="message"]', { hasText: text }).last();
}

async function tickOf(page, text) {
  return ownMessage(page, text).locator('[data-testid="tick"]').getAttribute("data-tick");
}

before(async () => {
  mkdirSync(outDir, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "chatico-e2e-"));
  proxy = await startProxy();
  base = `http://127.0.0.1:${proxy.port}`;
  server = await startServer({ bin: serverBin, dataDir, webDir, origins: [base] });
  proxy.setTarget(server.host, server.port);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Playwright gives every launch a fresh temporary --user-data-dir of its own.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  alice = await newUser("alice", { width: 1280, height: 800 });
  bob = await newUser("bob", { width: 390, height: 780 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  proxy?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("both log in with a console OTP, set their profiles and find each other", async () => {
  await login(alice.page, ALICE, "Alice");
  await alice.page
    .getByTestId("avatar-input")
    .setInputFiles({ name: "alice.png", mimeType: "image/png", buffer: png(96, 96, (x, y) => [40 + x, 120 + y, 200]) });
  await alice.page.getByTestId("profile-note").filter({ hasText: "Picture updated" }).waitFor();
  // The picture is served to signed-in users only: it loads through the token-bearing URL.
  const loaded = (img) => img.complete && img.naturalWidth === 96;
  await until(() => alice.page.getByTestId("avatar-img").first().evaluate(loaded), "Alice's picture loaded");
  await shot(alice.page, "01-alice-profile");
  await alice.page.getByTestId("panel-back").click();

  await login(bob.page, BOB, "Bob");
  await bob.page.getByTestId("panel-back").click();
  await bob.page.getByTestId("open-people").click();
  // Finding someone by their whole number (an exact lookup; numbers are never matched by
  // prefix), then by name.
  await bob.page.getByTestId("people-search").fill(ALICE);
  const person = bob.page.locator('[data-testid="person"][data-name="Alice"]');
  await person.waitFor();
  await bob.page.getByTestId("people-search").fill(ALICE.slice(0, -2));
  await person.waitFor({ state: "detached" });
  await bob.page.getByTestId("people-search").fill("Ali");
  await person.waitFor();
  await until(() => person.getByTestId("avatar-img").evaluate(loaded), "Alice's picture loaded in Bob's page");
  await person.getByTestId("toggle-contact").click();
  await person.locator(".tag", { hasText: "contact" }).waitFor();
  await shot(bob.page, "02-bob-people");
  await person.getByTestId("message-user").click();
  await bob.page.getByTestId("chat-title").filter({ hasText: "Alice" }).waitFor();
  await bob.page.getByTestId("chat-status").filter({ hasText: "online" }).waitFor();
});

test("typing shows on the other side, the message arrives and is delivered", async () => {
  await bob.page.getByTestId("composer").click();
  await bob.page.keyboard.type("Hi Alice! Lunch tomorrow?", { delay: 40 });
  const row = alice.page.locator('[data-testid="conversation"][data-title="Bob"]');
  await row.locator(".typing-text").waitFor();
  await shot(alice.page, "03-alice-sees-typing");
  await bob.page.keyboard.press("Enter");
  await until(async () => (await tickOf(bob.page, "Hi Alice!")) === "delivered", "Bob's message delivered");
  await row.getByTestId("unread").filter({ hasText: "1" }).waitFor();
  await shot(alice.page, "04-alice-unread");
});

test("ticks turn to read when the other opens the chat, and replies flow back", async () => {
  await alice.page.locator('[data-testid="conversation"][data-title="Bob"]').click();
  await alice.page.locator('[data-testid="message"]', { hasText: "Hi Alice!" }).waitFor();
  await until(async () => (await tickOf(bob.page, "Hi Alice!")) === "read", "Bob's message read");
  await alice.page.getByTestId("composer").fill("Sure! 12:30 at the usual place?");
  await alice.page.getByTestId("send").click();
  await bob.page.locator('[data-testid="message"]', { hasText: "12:30 at the usual place" }).waitFor();
  await until(async () => (await tickOf(alice.page, "12:30 at the usual place")) === "read", "Alice's reply read");
  await shot(alice.page, "05-alice-chat-read");
  await shot(bob.page, "06-bob-chat-read");
});

test("presence changes when a page closes, and comes back with the session", async () => {
  const status = bob.page.getByTestId("chat-status");
  await status.filter({ hasText: "online" }).waitFor();
  const saved = await alice.page.evaluate(() => JSON.stringify({ ...sessionStorage }));
  await alice.page.close();
  await status.filter({ hasText: "last seen" }).waitFor();
  await shot(bob.page, "07-bob-sees-last-seen");

  // Alice comes back in a new tab of her browser with her saved session (no new login).
  await alice.context.addInitScript((s) => {
    if (!sessionStorage.getItem("chatico.session")) {
      for (const [k, v] of Object.entries(JSON.parse(s))) sessionStorage.setItem(k, v);
    }
  }, saved);
  alice.page = await alice.context.newPage();
  watch(alice.page, "alice");
  await alice.page.goto(base);
  await until(async () => (await connectionState(alice.page)) === "connected", "Alice reconnected");
  await status.filter({ hasText: "online" }).waitFor();
});

test("an image message is uploaded, sent and shown on both sides", async () => {
  await alice.page.locator('[data-testid="conversation"][data-title="Bob"]').click();
  const picture = png(320, 200, (x, y) => [(x * 255) / 320, (y * 255) / 200, 160]);
  await alice.page.getByTestId("image-input").setInputFiles({ name: "sunset.png", mimeType: "image/png", buffer: picture });
  // A preview with a caption before it goes.
  await alice.page.getByTestId("image-preview").waitFor();
  await alice.page.getByTestId("caption-input").fill("Sunset");
  await alice.page.getByTestId("send-image").click();
  const photo = bob.page.locator('img[data-testid="photo"]').last();
  await photo.waitFor();
  await until(() => photo.evaluate((img) => img.complete && img.naturalWidth === 320), "the photo loaded in Bob's page");
  await until(
    () => alice.page.locator('img[data-testid="photo"]').last().evaluate((img) => img.complete && img.naturalWidth === 320),
    "the photo loaded in Alice's page",
  );
  await shot(alice.page, "08-alice-image");
  await shot(bob.page, "09-bob-image");
});

test("after the server's sockets drop, both reconnect, resume, and the outbox is sent once", async () => {
  proxy.drop(true);
  await until(async () => (await connectionState(alice.page)) !== "connected", "Alice notices the drop");
  const text = "Sent while the server was away";
  await bob.page.getByTestId("composer").fill(text);
  await bob.page.getByTestId("send").click();
  await bob.page.locator('[data-testid="message"][data-pending="true"]', { hasText: text }).waitFor();
  await shot(bob.page, "10-bob-offline-pending");
  await shot(alice.page, "11-alice-reconnecting");

  proxy.accept();
  await bob.page.getByTestId("chat-menu").isVisible(); // Bob's page is still usable meanwhile.
  await until(async () => (await connectionState(alice.page)) === "connected", "Alice reconnected", 60000);
  await alice.page.locator('[data-testid="message"]', { hasText: text }).waitFor({ timeout: 60000 });
  await until(async () => (await tickOf(bob.page, text)) === "read", "the resent message read", 60000);
  assert.equal(await alice.page.locator('[data-testid="message"]', { hasText: text }).count(), 1, "delivered exactly once");
  assert.equal(await bob.page.locator('[data-testid="message"]', { hasText: text }).count(), 1, "shown once to its sender");
  await shot(alice.page, "12-alice-after-reconnect");
  await shot(bob.page, "13-bob-after-reconnect");
});

test("delete for everyone, block and unblock, archive, and a group", async () => {
  // Bob deletes his offline message for everyone.
  const mine = ownMessage(bob.page, "Sent while the server was away");
  await mine.hover();
  await mine.getByTestId("message-menu").click();
  await bob.page.getByTestId("delete-everyone").click();
  await bob.page.getByTestId("confirm-ok").click();
  await alice.page.locator('[data-testid="deleted"]').first().waitFor();

  // Alice blocks Bob: her composer gives way to a banner, and Bob's messages are refused.
  await alice.page.getByTestId("chat-menu").click();
  await alice.page.getByTestId("block").click();
  await alice.page.getByTestId("blocked-banner").waitFor();
  await shot(alice.page, "14-alice-blocked");
  await bob.page.getByTestId("composer").fill("Are you there?");
  await bob.page.getByTestId("send").click();
  await bob.page.getByTestId("chat-error").filter({ hasText: "Not delivered" }).waitFor();
  await shot(bob.page, "15-bob-refused");
  await alice.page.getByTestId("unblock").click();
  await alice.page.getByTestId("composer").waitFor();

  // A group with both.
  await alice.page.getByTestId("open-new-group").click();
  await alice.page.getByTestId("group-title").fill("Lunch club");
  await alice.page.locator('[data-testid="pick-member"][data-name="Bob"]').check();
  await alice.page.getByTestId("create-group").click();
  await alice.page.getByTestId("chat-title").filter({ hasText: "Lunch club" }).waitFor();
  await alice.page.getByTestId("composer").fill("Welcome to the lunch club!");
  await alice.page.getByTestId("send").click();
  await bob.page.locator(".back").click();
  const group = bob.page.locator('[data-testid="conversation"][data-title="Lunch club"]');
  await group.waitFor();
  await group.getByTestId("unread").waitFor();
  await shot(bob.page, "16-bob-list");

  // Alice archives the direct chat: it leaves her list for the archive.
  await alice.page.locator('[data-testid="conversation"][data-title="Bob"]').click();
  await alice.page.getByTestId("chat-menu").click();
  await alice.page.getByTestId("archive").click();
  await alice.page.getByTestId("show-archived").waitFor();
  await shot(alice.page, "17-alice-archived");
  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
});

test("a reconnect storm: sockets cut again and again while two users send; each page reports every message once, in order", async () => {
  const N = 40;
  // A client of the SDK itself in each page (the app's own keeps running beside it), logged
  // in as a new user; it records the message changes it reports, in order.
  async function stormClient(page, phone) {
    await page.evaluate(async (phone) => {
      const client = new globalThis.chaticoSdk.ChatClient(location.origin, {
        device: "storm",
        backoffInitialMs: 10,
        backoffMaxMs: 300,
      });
      globalThis.storm = { client, log: [] };
      client.onEvent((ev) => {
        if (ev.type === "change" && ev.change.kind.type === "message") {
          const m = ev.change.kind.message;
          globalThis.storm.log.push([m.conversation_id, m.seq]);
        }
      });
      await client.requestOtp(phone);
    }, phone);
    const code = await server.codeFor(phone);
    return page.evaluate(
      async ([phone, code]) => {
        await globalThis.storm.client.verifyOtp(phone, code);
        globalThis.storm.client.connect();
        return globalThis.storm.client.userId;
      },
      [phone, code],
    );
  }
  const stormState = (page) => page.evaluate(() => globalThis.storm.client.connectionState().state);
  await stormClient(alice.page, "+15550100011");
  const bobId = await stormClient(bob.page, "+15550100012");
  for (const p of [alice.page, bob.page]) await until(async () => (await stormState(p)) === "connected", "storm client connected");
  const conv = await alice.page.evaluate((bob) => globalThis.storm.client.createGroup("storm", [bob]).then((c) => c.id), bobId);
  for (const p of [alice.page, bob.page]) {
    await until(() => p.evaluate((c) => globalThis.storm.client.conversation(c) !== undefined, conv), "the group loaded");
  }
  const notices = await alice.page.evaluate((c) => globalThis.storm.client.conversation(c).conversation.last_seq, conv);

  // The storm: every page's sockets cut every 200-500 ms while both write.
  let cuts = 0;
  let storming = true;
  const storm = (async () => {
    while (storming) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
      if (storming) {
        proxy.drop(false);
        cuts += 1;
      }
    }
  })();
  await Promise.all(
    [alice.page, bob.page].map((p, w) =>
      p.evaluate(
        // Paced (40 ms apart), so the writing spans several cuts however fast the machine is.
        async ([c, w, n]) => {
          for (let i = 0; i < n; i++) {
            globalThis.storm.client.sendText(c, `${w}:${i}`);
            await new Promise((r) => setTimeout(r, 40));
          }
        },
        [conv, w, N],
      ),
    ),
  );
  const pending = (p) => p.evaluate(() => globalThis.storm.client.pending().length);
  await until(async () => (await pending(alice.page)) === 0 && (await pending(bob.page)) === 0, "every send acknowledged", 120000);
  await until(async () => cuts >= 3, "the storm cut the sockets at least 3 times", 10000);
  storming = false;
  await storm;
  assert.ok(cuts >= 3, `the proxy cut the sockets (${cuts} times)`);

  const expected = Array.from({ length: 2 * N }, (_, i) => notices + 1 + i);
  for (const [who, p] of [["alice", alice.page], ["bob", bob.page]]) {
    const reported = async () =>
      (await p.evaluate(() => globalThis.storm.log)).filter(([c, seq]) => c === conv && seq > notices).map(([, seq]) => seq);
    await until(async () => (await reported()).length >= 2 * N, `${who} reported every message`, 60000);
    await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show now
    assert.deepEqual(await reported(), expected, `${who}: every message reported once, in seq order`);
    // Each writer's messages are stored once, in the order they were written.
    const texts = await p.evaluate(
      ([c, after]) => globalThis.storm.client.messages(c).filter((m) => m.seq > after).map((m) => m.content.text),
      [conv, notices],
    );
    for (const w of [0, 1]) {
      const mine = texts.filter((t) => t.startsWith(`${w}:`));
      assert.deepEqual(mine, Array.from({ length: N }, (_, i) => `${w}:${i}`), `${who}: writer ${w} in send order, once`);
    }
  }
  for (const p of [alice.page, bob.page]) await p.evaluate(() => globalThis.storm.client.disconnect());
});
