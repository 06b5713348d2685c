// End-to-end test of the web demo as a person uses it every day (issue 17's ten items), in
// Debian's Chromium driven by playwright-core: Carol on a desktop window, Dave on a 390 px
// touch phone. Every check goes through the UI; only the 1 000-message backlog is written
// by an SDK client in Dave's page (a second session of Dave's), as the storm test does.
// Screenshots go to examples/web/test-results/ (prefix "d").
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

const CAROL = "+15550100021";
const DAVE = "+15550100022";
const ERIN = "+15550100023";
const BACKLOG = 1000;

let proxy, server, browser, dataDir, base;
let carol, dave; // { context, page }
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

const shot = (page, name) => page.screenshot({ path: join(outDir, `d${name}.png`) });

function watch(page, who) {
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) console.log(`[${who} console] ${m.text()}`);
  });
  page.setDefaultTimeout(20000);
}

async function newUser(who, options) {
  const context = await browser.newContext({ deviceScaleFactor: 1, ...options });
  // Desktop notifications and the chime are recorded (the real ones still run).
  await context.addInitScript(() => {
    globalThis.__notes = [];
    globalThis.__chimes = 0;
    if (globalThis.Notification) {
      globalThis.Notification = new Proxy(globalThis.Notification, {
        construct(t, args) {
          globalThis.__notes.push({ title: args[0], body: args[1]?.body });
          return Reflect.construct(t, args);
        },
      });
    }
    const AC = globalThis.AudioContext;
    if (AC) {
      globalThis.AudioContext = class extends AC {
        createOscillator() {
          globalThis.__chimes += 1;
          return super.createOscillator();
        }
      };
    }
  });
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

const connectionState = (page) => page.getByTestId("connection").getAttribute("data-state");

async function login(page, phone, name) {
  await page.goto(base);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("send-code").click();
  await page.getByTestId("code").fill(await server.codeFor(phone));
  await page.getByTestId("verify").click();
  // A new account is asked for its name first.
  await page.getByTestId("welcome-name").fill(name);
  await page.getByTestId("welcome-save").click();
  await until(async () => (await connectionState(page)) === "connected", `${name} connected`);
}

const msg = (page, text) => page.locator('[data-testid="message"]', { hasText: text }).last();
const tickOf = (page, text) => msg(page, text).locator('[data-testid="tick"]').getAttribute("data-tick");
const row = (page, title) => page.locator(`[data-testid="conversation"][data-title="${title}"]`);
const inViewport = (loc) =>
  loc.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const box = el.closest('[data-testid="messages"]')?.getBoundingClientRect() ?? { top: 0, bottom: innerHeight };
    return r.bottom > box.top && r.top < box.bottom;
  });
const send = async (page, text) => {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
};

before(async () => {
  mkdirSync(outDir, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "chatico-e2e-daily-"));
  proxy = await startProxy();
  base = `http://127.0.0.1:${proxy.port}`;
  // The backlog is written fast: a higher per-user rate than the default 50/s.
  server = await startServer({
    bin: serverBin,
    dataDir,
    webDir,
    origins: [base],
    env: { CHATICO_RATE_PER_SECOND: "2000", CHATICO_RATE_BURST: "4000" },
  });
  proxy.setTarget(server.host, server.port);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  carol = await newUser("carol", { viewport: { width: 1280, height: 800 } });
  await carol.context.grantPermissions(["notifications"], { origin: base });
  dave = await newUser("dave", { viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  proxy?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("1: a 1 000-message chat opens at its first unread, reads only what is shown, and scrolls back to message 1", async () => {
  await login(carol.page, CAROL, "Carol");
  await login(dave.page, DAVE, "Dave");
  await dave.page.getByTestId("open-people").click();
  await dave.page.getByTestId("people-search").fill("Carol");
  await dave.page.locator('[data-testid="person"][data-name="Carol"]').getByTestId("message-user").click();
  await dave.page.getByTestId("chat-title").filter({ hasText: "Carol" }).waitFor();

  // The backlog, from an SDK client in Dave's page on his session (it neither refreshes
  // nor logs out, so the app's client keeps the session).
  await dave.page.evaluate(async (n) => {
    const c = new globalThis.chaticoSdk.ChatClient(location.origin, { device: "backlog", maxInflightSends: 64 });
    c.restoreSession(JSON.parse(localStorage.getItem("chatico.session")));
    c.connect();
    const carol = (await c.listUsers("Carol", undefined, 5))[0];
    const conv = await c.openDirect(carol.id);
    for (let i = 1; i <= n; i++) c.sendText(conv.id, `msg ${String(i).padStart(4, "0")}`);
    while (c.pending().length > 0) await new Promise((r) => setTimeout(r, 100));
    c.disconnect();
  }, BACKLOG);
  await row(carol.page, "Dave").getByTestId("unread").filter({ hasText: String(BACKLOG) }).waitFor({ timeout: 60000 });
  await until(async () => (await carol.page.title()) === `(${BACKLOG}) ChatiCO`, "the unread count in Carol's tab title");

  // Opening: the unread divider and the first unread message are on screen.
  await row(carol.page, "Dave").click();
  const first = msg(carol.page, "msg 0001");
  await first.waitFor({ timeout: 60000 });
  await until(() => inViewport(carol.page.getByTestId("unread-divider")), "the unread divider on screen");
  assert.ok(await inViewport(first), "the first unread message is on screen");
  await shot(carol.page, "01-first-unread");
  // ... and only what was shown is read: the title still counts the rest.
  await until(async () => /^\((\d+)\) ChatiCO$/.test(await carol.page.title()) && (await carol.page.title()) !== `(${BACKLOG}) ChatiCO`, "some read");
  await new Promise((r) => setTimeout(r, 500));
  const left = Number((await carol.page.title()).match(/^\((\d+)\)/)[1]);
  assert.ok(left > BACKLOG / 2, `most messages are still unread (${left})`);
  assert.notEqual(await tickOf(dave.page, "msg 1000"), "read", "the newest message is not read yet");

  // Reading down to the end reads everything.
  const scroller = carol.page.getByTestId("messages");
  await until(async () => {
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
    return (await carol.page.title()) === "ChatiCO";
  }, "everything read at the bottom");
  await until(async () => (await tickOf(dave.page, "msg 1000")) === "read", "Dave sees msg 1000 read");

  // After a reload, the chat is open again; scrolling up pages back to message 1.
  await carol.page.reload();
  await carol.page.getByTestId("chat-title").filter({ hasText: "Dave" }).waitFor();
  await until(async () => {
    await scroller.evaluate((el) => (el.scrollTop = 0));
    return carol.page.getByTestId("history-start").isVisible();
  }, "the beginning of the chat", 60000);
  await first.waitFor();
  const seqs = await carol.page.locator('[data-testid="message"][data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.equal(seqs.length, BACKLOG, "every message is shown once");
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
  await shot(carol.page, "02-scrolled-to-first");
});

test("5: a new message does not yank a reader down; a button brings them there; date separators", async () => {
  const scroller = carol.page.getByTestId("messages");
  const top = await scroller.evaluate((el) => el.scrollTop);
  await send(dave.page, "Are you still reading?");
  const button = carol.page.getByTestId("new-messages");
  await button.filter({ hasText: "1 new message" }).waitFor();
  assert.ok(Math.abs((await scroller.evaluate((el) => el.scrollTop)) - top) < 5, "the reader's position is kept");
  assert.ok(!(await inViewport(msg(carol.page, "Are you still reading?"))), "the new message is below");
  await until(async () => (await carol.page.title()) === "(1) ChatiCO", "it counts as unread");
  await carol.page.getByTestId("day-separator").filter({ hasText: "Today" }).first().waitFor();
  await shot(carol.page, "03-new-messages-button");
  await button.click();
  await until(() => inViewport(msg(carol.page, "Are you still reading?")), "the new message on screen");
  await until(async () => (await carol.page.title()) === "ChatiCO", "read once shown");
});

test("6: multi-line composer, a reply with an emoji, the draft kept across a reload, a second tab", async () => {
  // Reply from the keyboard: the message menu opens with Enter, moves with the arrows.
  const theirs = msg(carol.page, "Are you still reading?");
  await theirs.getByTestId("message-menu").focus();
  await carol.page.keyboard.press("Enter");
  await carol.page.getByTestId("menu").waitFor();
  assert.equal(await carol.page.evaluate(() => document.activeElement?.dataset.testid), "reply", "the first item takes the focus");
  await carol.page.keyboard.press("ArrowDown");
  assert.equal(await carol.page.evaluate(() => document.activeElement?.dataset.testid), "react", "the menu now offers React second");
  await carol.page.keyboard.press("ArrowUp");
  await carol.page.keyboard.press("Enter");
  await carol.page.getByTestId("reply-bar").filter({ hasText: "Are you still reading?" }).waitFor();
  await carol.page.keyboard.type("Yes, all of it ");
  await carol.page.getByTestId("emoji-button").click();
  await carol.page.getByTestId("emoji-👍").click();
  await carol.page.keyboard.press("Escape");
  assert.equal(await carol.page.getByTestId("composer").inputValue(), "Yes, all of it 👍");
  await carol.page.getByTestId("composer").press("Enter");
  const reply = msg(dave.page, "Yes, all of it 👍");
  await reply.getByTestId("quote").filter({ hasText: "Are you still reading?" }).waitFor();
  await shot(dave.page, "04-reply");

  // Enter sends, Shift+Enter starts a new line.
  await carol.page.getByTestId("composer").click();
  await carol.page.keyboard.type("line one");
  await carol.page.keyboard.press("Shift+Enter");
  await carol.page.keyboard.type("line two");
  await carol.page.keyboard.press("Enter");
  await until(async () => (await msg(dave.page, "line two").getByTestId("text").innerText()) === "line one\nline two", "two lines arrive");

  // The draft and the open chat survive a reload.
  await carol.page.getByTestId("composer").fill("a draft for later");
  await carol.page.reload();
  await carol.page.getByTestId("chat-title").filter({ hasText: "Dave" }).waitFor();
  assert.equal(await carol.page.getByTestId("composer").inputValue(), "a draft for later");
  await carol.page.getByTestId("composer").fill("");

  // A second tab is signed in too: it takes the session over, and the first offers it back.
  const second = await carol.context.newPage();
  watch(second, "carol-2");
  await second.goto(base);
  await until(async () => (await connectionState(second)) === "connected", "the second tab signed in");
  await carol.page.getByTestId("other-tab").waitFor();
  await shot(carol.page, "04b-other-tab");
  await carol.page.getByTestId("use-here").click();
  await until(async () => (await connectionState(carol.page)) === "connected", "the first tab back");
  await second.getByTestId("other-tab").waitFor();
  await second.close();
  await carol.page.getByTestId("chat-title").filter({ hasText: "Dave" }).waitFor();
});

test("3: on a 390 px touch screen the last message's menu fits, closes on Escape and outside taps, and delete-for-everyone asks first", async () => {
  await send(dave.page, "Delete me please");
  const mine = msg(dave.page, "Delete me please");
  await until(async () => (await tickOf(dave.page, "Delete me please")) !== "pending", "sent");
  const more = mine.getByTestId("message-menu");
  await more.tap();
  const menu = dave.page.getByTestId("menu");
  await menu.waitFor();
  const box = await menu.boundingBox();
  const debug = await more.evaluate((b) => JSON.stringify({ r: b.getBoundingClientRect(), w: innerWidth, h: innerHeight }));
  assert.ok(box.y >= 0 && box.y + box.height <= 780 && box.x >= 0 && box.x + box.width <= 390, `the menu is on screen (${JSON.stringify(box)} ${debug})`);
  await shot(dave.page, "05-touch-menu");
  await dave.page.keyboard.press("Escape");
  await menu.waitFor({ state: "detached" });
  assert.equal(await dave.page.evaluate(() => document.activeElement?.dataset.testid), "message-menu", "the focus goes back to the button");
  await more.tap();
  await menu.waitFor();
  await dave.page.getByTestId("chat-title").tap();
  await menu.waitFor({ state: "detached" });
  // The info panel opened by that tap is closed again.
  await dave.page.getByTestId("panel-back").tap();

  await more.tap();
  await dave.page.getByTestId("delete-everyone").tap();
  await dave.page.getByTestId("confirm-dialog").waitFor();
  await shot(dave.page, "06-confirm-delete");
  await dave.page.getByTestId("confirm-cancel").tap();
  await dave.page.getByTestId("confirm-dialog").waitFor({ state: "detached" });
  assert.equal(await mine.getByTestId("deleted").count(), 0, "cancel keeps the message");
  await more.tap();
  await dave.page.getByTestId("delete-everyone").tap();
  await dave.page.getByTestId("confirm-ok").tap();
  await carol.page.locator('[data-testid="message"] [data-testid="deleted"]').last().waitFor();
  assert.equal(await msg(carol.page, "Delete me please").count(), 0, "gone for Carol");
});

test("2 and 9: a group managed end to end; emoji initials; left members keep their names after a reload", async () => {
  const p = carol.page;
  await p.getByTestId("open-new-group").click();
  await p.getByTestId("group-title").fill("🎉 Party planning");
  await p.locator('[data-testid="pick-member"][data-name="Dave"]').check();
  await p.getByTestId("create-group").click();
  await p.getByTestId("chat-title").filter({ hasText: "Party planning" }).waitFor();
  assert.equal(await row(p, "🎉 Party planning").locator(".avatar-fallback").innerText(), "🎉", "an emoji title's initial is the emoji");

  await p.getByTestId("chat-info").click();
  const info = p.getByTestId("group-info");
  await info.locator('[data-testid="group-member"][data-name="You"][data-role="owner"]').waitFor();
  // Rename.
  if (await dave.page.locator(".back").isVisible()) await dave.page.locator(".back").tap();
  await p.getByTestId("group-rename").fill("🎉 Party crew");
  await p.getByTestId("group-rename-save").click();
  await row(dave.page, "🎉 Party crew").waitFor();
  // Photo.
  await p.getByTestId("group-photo-input").setInputFiles({ name: "g.png", mimeType: "image/png", buffer: png(64, 64, (x) => [200, 4 * x, 90]) });
  await row(dave.page, "🎉 Party crew").getByTestId("avatar-img").waitFor();
  // Roles.
  const daveRow = info.locator('[data-testid="group-member"][data-name="Dave"]');
  await daveRow.getByTestId("member-menu").click();
  await p.getByTestId("make-admin").click();
  await info.locator('[data-testid="group-member"][data-name="Dave"][data-role="admin"]').waitFor();
  await row(dave.page, "🎉 Party crew").click();
  await dave.page.getByTestId("chat-info").tap();
  await dave.page.locator('[data-testid="group-member"][data-name="You"][data-role="admin"]').waitFor();
  await shot(dave.page, "07-group-info-admin");
  await dave.page.getByTestId("panel-back").tap();
  // Remove, then add back.
  await daveRow.getByTestId("member-menu").click();
  await p.getByTestId("dismiss-admin").click();
  await info.locator('[data-testid="group-member"][data-name="Dave"][data-role="member"]').waitFor();
  await daveRow.getByTestId("member-menu").click();
  await p.getByTestId("remove-member").click();
  await daveRow.waitFor({ state: "detached" });
  await row(dave.page, "🎉 Party crew").waitFor({ state: "detached" });
  await p.getByTestId("add-members").click();
  await p.locator('[data-testid="add-pick"][data-name="Dave"]').check();
  await p.getByTestId("add-confirm").click();
  await daveRow.waitFor();
  await shot(p, "08-group-info");
  await p.getByTestId("panel-back").click();

  // Dave leaves: Carol sees it; Dave keeps the group in his list, marked as left.
  if (await dave.page.locator(".back").isVisible()) await dave.page.locator(".back").tap();
  await row(dave.page, "🎉 Party crew").click();
  await dave.page.getByTestId("chat-info").tap();
  await dave.page.getByTestId("leave").tap();
  await dave.page.getByTestId("confirm-ok").tap();
  await p.getByTestId("system-note").filter({ hasText: "Dave left" }).waitFor();
  await dave.page.locator('[data-testid="conversation"][data-left="true"][data-title="🎉 Party crew"]').waitFor();
  await shot(dave.page, "09-left-group");
  await p.reload();
  await p.getByTestId("chat-title").filter({ hasText: "Party crew" }).waitFor();
  await p.getByTestId("system-note").filter({ hasText: "Dave left" }).waitFor();
  await p.getByTestId("system-note").filter({ hasText: "Dave was removed" }).waitFor();
  await dave.page.reload();
  await dave.page.locator('[data-testid="conversation"][data-left="true"][data-title="🎉 Party crew"]').waitFor();
});

test("4: a message in a chat that is not open: unread in the tab title, a desktop notification and a sound", async () => {
  // Carol has the group open; Dave writes in their direct chat.
  if (await dave.page.locator(".back").isVisible()) await dave.page.locator(".back").tap();
  await row(dave.page, "Carol").click();
  await send(dave.page, "Ping from Dave");
  await until(async () => (await carol.page.title()) === "(1) ChatiCO", "(1) in Carol's title");
  const notes = await until(async () => {
    const n = await carol.page.evaluate(() => globalThis.__notes);
    return n.length > 0 && n;
  }, "a desktop notification");
  assert.deepEqual(notes.at(-1), { title: "Dave", body: "Ping from Dave" });
  assert.ok((await carol.page.evaluate(() => globalThis.__chimes)) > 0, "a sound played");
  await shot(carol.page, "10-title-unread");
  // A message in the open chat, on a visible page, does not ring.
  const before = await carol.page.evaluate(() => globalThis.__notes.length);
  await row(carol.page, "Dave").click();
  await until(async () => (await carol.page.title()) === "ChatiCO", "read");
  await send(dave.page, "Now you see me");
  await msg(carol.page, "Now you see me").waitFor();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await carol.page.evaluate(() => globalThis.__notes.length), before, "no notification for the open chat");
});

test("10 and 9: right-to-left text, a profile view, one colour per person, presence unknown while disconnected", async () => {
  await send(dave.page, "שלום עולם");
  const text = msg(carol.page, "שלום עולם").getByTestId("text");
  await text.waitFor();
  assert.equal(await text.evaluate((el) => getComputedStyle(el).direction), "rtl");
  assert.equal(await text.getAttribute("dir"), "auto");

  // Dave's profile, from the chat header.
  await carol.page.getByTestId("chat-info").click();
  await carol.page.getByTestId("contact-info").getByTestId("contact-name").filter({ hasText: "Dave" }).waitFor();
  await shot(carol.page, "11-contact-info");
  await carol.page.getByTestId("panel-back").click();
  // The same colour for Dave in the chat list and among people.
  const listColour = await row(carol.page, "Dave").locator(".avatar-fallback").evaluate((el) => getComputedStyle(el).backgroundColor);
  await carol.page.getByTestId("open-people").click();
  const peopleColour = await carol.page.locator('[data-testid="person"][data-name="Dave"] .avatar-fallback').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(listColour, peopleColour);
  await carol.page.getByTestId("panel-back").click();

  const status = carol.page.getByTestId("chat-status");
  await status.filter({ hasText: "online" }).waitFor();
  proxy.drop(true);
  await status.filter({ hasText: "waiting for network" }).waitFor();
  assert.equal(await row(carol.page, "Dave").getByTestId("online-dot").count(), 0, "no stale online dot");
  await shot(carol.page, "12-presence-unknown");
  proxy.accept();
  await status.filter({ hasText: "online" }).waitFor({ timeout: 60000 });
  await until(async () => (await connectionState(dave.page)) === "connected", "Dave reconnected", 60000);
});

test("7: blocked: the refused message stays visible as not delivered, and presence is hidden", async () => {
  await carol.page.getByTestId("chat-menu").click();
  await carol.page.getByTestId("block").click();
  await carol.page.getByTestId("blocked-banner").waitFor();
  await send(dave.page, "Hello? Anyone?");
  const failed = dave.page.locator('[data-testid="message"][data-failed="true"]', { hasText: "Hello? Anyone?" });
  await failed.getByTestId("not-sent").waitFor();
  await dave.page.getByTestId("chat-error").filter({ hasText: "isn't accepting your messages" }).waitFor();
  assert.equal(await dave.page.getByTestId("chat-status").innerText(), "", "no presence from someone who blocked you");
  await shot(dave.page, "13-not-delivered");
  await failed.getByTestId("dismiss-failed").tap();
  await failed.waitFor({ state: "detached" });
  await carol.page.getByTestId("unblock").click();
  await carol.page.getByTestId("composer").waitFor();
});

test("8: pictures: drop and paste give a preview with a caption; viewer and download; sent when back online", async () => {
  const p = carol.page;
  const picture = png(120, 80, (x, y) => [x * 2, y * 3, 120]);
  const b64 = picture.toString("base64");
  // Drag and drop.
  await p.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "drop.png", { type: "image/png" }));
    const target = document.querySelector(".composer-wrap");
    target.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, b64);
  await p.getByTestId("image-preview").waitFor();
  await p.getByTestId("caption-input").fill("Dropped in");
  await shot(p, "14-image-preview");
  await p.getByTestId("send-image").click();
  const photo = msg(dave.page, "Dropped in");
  await photo.getByTestId("photo").waitFor();
  // Paste.
  await p.getByTestId("composer").focus();
  await p.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "paste.png", { type: "image/png" }));
    document.querySelector('[data-testid="composer"]').dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  }, b64);
  await p.getByTestId("image-preview").waitFor();
  await p.getByTestId("cancel-image").click();
  await p.getByTestId("image-preview").waitFor({ state: "detached" });

  // The viewer, with a download link; Escape closes it.
  await photo.getByTestId("open-photo").tap();
  const viewer = dave.page.getByTestId("photo-viewer");
  await viewer.waitFor();
  await until(() => viewer.getByTestId("viewer-img").evaluate((img) => img.complete && img.naturalWidth === 120), "the full photo");
  assert.match(await viewer.getByTestId("viewer-download").getAttribute("href"), /blobs/);
  await shot(dave.page, "15-viewer");
  await dave.page.keyboard.press("Escape");
  await viewer.waitFor({ state: "detached" });

  // Offline: the picture waits, then goes.
  proxy.drop(true);
  await until(async () => (await connectionState(p)) !== "connected", "Carol offline");
  await p.getByTestId("image-input").setInputFiles({ name: "later.png", mimeType: "image/png", buffer: picture });
  await p.getByTestId("caption-input").fill("Sent when back");
  await p.getByTestId("send-image").click();
  await p.getByTestId("image-queued").waitFor();
  await shot(p, "16-image-queued");
  proxy.accept();
  await msg(dave.page, "Sent when back").getByTestId("photo").waitFor({ timeout: 60000 });
  await p.getByTestId("image-queued").waitFor({ state: "detached" });
});

test("7: login: human error texts, a resend countdown, and the sixth code refused as too many attempts", async () => {
  const erin = await newUser("erin", { viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
  const p = erin.page;
  await p.goto(base);
  await p.getByTestId("phone").fill("12");
  await p.getByTestId("send-code").click();
  const error = p.getByTestId("login-error");
  await error.filter({ hasText: "doesn't look like a phone number" }).waitFor();
  assert.doesNotMatch(await error.innerText(), /invalid/i);
  await p.getByTestId("phone").fill(ERIN);
  await p.getByTestId("send-code").click();
  const right = await server.codeFor(ERIN);
  const wrong = String((Number(right) + 1) % 1000000).padStart(6, "0");
  await p.getByTestId("resend").filter({ hasText: /Resend code in \d+ s/ }).waitFor();
  assert.ok(await p.getByTestId("resend").isDisabled(), "no resend during the countdown");
  for (let i = 1; i <= 5; i++) {
    await p.getByTestId("code").fill(wrong);
    await p.getByTestId("verify").click();
    await error.filter({ hasText: i < 5 ? `${5 - i} ${5 - i === 1 ? "try" : "tries"} left` : "Too many wrong attempts" }).waitFor();
  }
  await p.getByTestId("code").fill(right);
  assert.ok(await p.getByTestId("verify").isDisabled(), "the sixth code is not even sent");
  await shot(p, "17-too-many-attempts");
  await erin.context.close();
  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
});
