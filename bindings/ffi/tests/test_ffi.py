"""The generated Python bindings of chatico-ffi, driving two clients against a real
chatico-server started by the test (in-memory database, console SMS sender whose log the test
reads for login codes).

Run by bindings/ffi/test-python.sh (after generate.sh); by hand:

    CHATICO_PY_BINDINGS=<dir with chatico_ffi.py and the library> \
    CHATICO_SERVER_BIN=<path to chatico-server> python3 bindings/ffi/tests/test_ffi.py
"""

import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import struct
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.environ["CHATICO_PY_BINDINGS"])
import chatico_ffi as ffi  # noqa: E402

SERVER_BIN = os.environ["CHATICO_SERVER_BIN"]
# How long a test waits for something that must happen (a hang is a failure).
PATIENCE = 30.0


class Server:
    """chatico-server on 127.0.0.1:0 with JSON logs on stdout, read by a thread."""

    def __init__(self):
        self.data = tempfile.TemporaryDirectory(prefix="chatico-ffi-test-")
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--addr", "127.0.0.1:0", "--data-dir", self.data.name, "--log-json",
             "--log", "info,chatico=info"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = queue.Queue()
        self.sms = []  # (to, body)
        self.sms_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = None
        deadline = time.monotonic() + PATIENCE
        while self.url is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("the server did not say where it listens")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.url = m.group(1)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            fields = rec.get("fields", {})
            if rec.get("target") == "chatico::sms::console" and "body" in fields:
                with self.sms_lock:
                    self.sms.append((fields.get("to"), fields["body"]))

    def code_for(self, phone):
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            with self.sms_lock:
                for to, body in reversed(self.sms):
                    if to == phone:
                        m = re.search(r"\b(\d{6})\b", body)
                        if m:
                            return m.group(1)
            time.sleep(0.02)
        raise AssertionError(f"no login code for {phone} in the server log")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.data.cleanup()


class Recorder(ffi.ChatEventListener):
    """Keeps every event (called on an SDK thread)."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def messages(self, conv):
        return [e.message for e in self.snapshot()
                if e.is_message_received() and e.message.conversation_id == conv]


class States(ffi.ConnectionListener):
    def __init__(self):
        self.states = []
        self.lock = threading.Lock()

    def on_state(self, state):
        with self.lock:
            self.states.append(state)

    def last(self):
        with self.lock:
            return self.states[-1] if self.states else None


async def eventually(what, pred):
    deadline = time.monotonic() + PATIENCE
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


def text(m):
    assert m.content is not None and m.content.is_text(), m
    return m.content.text


def png(width, height):
    """A complete, valid RGB PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class User:
    def __init__(self, client, recorder, states, handles, user_id):
        self.client, self.rec, self.states, self.handles, self.id = client, recorder, states, handles, user_id


async def login(server, phone, name):
    client = ffi.ChatClient(ffi.ClientOptions(
        base_url=server.url, device="python-test", backoff_initial_ms=20, backoff_max_ms=500,
        request_timeout_ms=10_000, auto_delivered=True))
    info = await client.request_otp(phone)
    assert info.expires_in_ms > 0
    result = await client.verify_otp(phone, server.code_for(phone))
    assert result.user.phone == phone
    me = await client.update_profile(ffi.ProfileUpdate(
        display_name=name, bio=None, avatar_url=None, clear_avatar=False))
    assert me.display_name == name
    rec, states = Recorder(), States()
    handles = [client.subscribe_events(rec), client.subscribe_connection(states)]
    return User(client, rec, states, handles, result.user.id)


class ChatThroughFfi(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def test_errors_carry_stable_codes(self):
        c = ffi.ChatClient(ffi.ClientOptions(
            base_url=self.server.url, device=None, backoff_initial_ms=None, backoff_max_ms=None,
            request_timeout_ms=None, auto_delivered=None))
        with self.assertRaises(ffi.ChatError.InvalidInput) as e:
            await c.request_otp("not a phone")
        self.assertEqual(e.exception.field, "phone")
        with self.assertRaises(ffi.ChatError.Unauthorized):
            await c.verify_otp("+15551230000", "000000")
        with self.assertRaises(ffi.ChatError.InvalidInput):
            c.send_text("not-a-uuid", "x", None)
        with self.assertRaises(ffi.ChatError.Unauthorized):
            await c.connect()

    async def test_two_clients_chat_offline_and_back_exactly_once(self):
        alice = await login(self.server, "+15557000001", "Alice")
        bob = await login(self.server, "+15557000002", "Bob")
        for u in (alice, bob):
            await u.client.connect()
        for u in (alice, bob):
            await eventually("connected", lambda u=u: u.states.last() == ffi.ConnectionState.CONNECTED())

        conv = (await alice.client.open_direct(bob.id)).id
        await eventually("bob's view has the conversation", lambda: bob.client.conversation(conv) is not None)

        # Messages both ways.
        for i in range(3):
            p = alice.client.send_text(conv, f"hi {i}", None)
            self.assertEqual(p.conversation_id, conv)
        await eventually("bob received 3", lambda: len(bob.rec.messages(conv)) >= 3)
        # Bob's client acknowledges delivery by itself.
        await eventually("alice sees bob's delivery receipt", lambda: any(
            e.is_receipt() and e.user_id == bob.id and e.delivered_seq == 3 for e in alice.rec.snapshot()))
        # Bob reads them; alice sees the read receipt.
        marks = await bob.client.mark_read(conv, 3)
        self.assertEqual((marks.delivered_seq, marks.read_seq), (3, 3))
        await eventually("alice sees bob's read receipt", lambda: any(
            e.is_receipt() and e.user_id == bob.id and e.read_seq == 3 for e in alice.rec.snapshot()))
        self.assertEqual(bob.client.conversation(conv).unread, 0)
        bob_in_alice_view = [m for m in alice.client.conversation(conv).members if m.user_id == bob.id]
        self.assertEqual(bob_in_alice_view[0].read_seq, 3)

        bob.client.send_text(conv, "hello alice", None)
        await eventually("alice received 4", lambda: len(alice.rec.messages(conv)) >= 4)
        sent = [e for e in alice.rec.snapshot() if e.is_sent()]
        self.assertEqual(len(sent), 3, "one acknowledgement per message")

        # Typing.
        await bob.client.set_typing(conv, True)
        await eventually("alice sees bob typing", lambda: any(
            e.is_typing() and e.user_id == bob.id and e.typing for e in alice.rec.snapshot()))
        self.assertIn(bob.id, alice.client.conversation(conv).typing)

        # Bob goes offline; both keep writing.
        await bob.client.disconnect()
        self.assertEqual(bob.client.connection_state(), ffi.ConnectionState.DISCONNECTED())
        for i in range(2):
            alice.client.send_text(conv, f"while you were away {i}", None)
        offline = [bob.client.send_text(conv, f"written offline {i}", None) for i in range(2)]
        self.assertEqual([p.client_msg_id for p in bob.client.pending()], [p.client_msg_id for p in offline])
        await eventually("alice's sends acknowledged", lambda: not alice.client.pending())
        self.assertTrue(any(e.is_queued() for e in bob.rec.snapshot()))
        state = bob.client.export_state()
        self.assertIn(offline[0].client_msg_id, state)

        # Back online: resume and resend.
        await bob.client.connect()
        await eventually("bob's outbox drained", lambda: not bob.client.pending())
        await eventually("bob has all 8", lambda: len(bob.client.messages(conv)) == 8)
        await eventually("alice has all 8", lambda: len(alice.client.messages(conv)) == 8)
        await eventually("both reported all 8", lambda: len(alice.rec.messages(conv)) >= 8
                         and len(bob.rec.messages(conv)) >= 8)

        expected = ["hi 0", "hi 1", "hi 2", "hello alice", "while you were away 0", "while you were away 1",
                    "written offline 0", "written offline 1"]
        for u in (alice, bob):
            got = u.rec.messages(conv)
            self.assertEqual([m.seq for m in got], list(range(1, 9)),
                             "every message reported exactly once, in seq order")
            self.assertEqual([text(m) for m in got], expected)
            self.assertEqual([text(m) for m in u.client.messages(conv)], expected)
        ids = {m.client_msg_id for m in alice.client.messages(conv)}
        for p in offline:
            self.assertIn(p.client_msg_id, ids, "resent with its original client_msg_id")
        self.assertEqual(alice.client.conversation(conv).unread, 2)

        # History through REST matches.
        hist = await bob.client.history(conv, None, 50)
        self.assertEqual([text(m) for m in hist], expected)

        # Cancelling a subscription stops its callbacks.
        handle = alice.handles[0]
        handle.cancel()
        await eventually("the subscription ended", handle.is_finished)
        before = len(alice.rec.snapshot())
        bob.client.send_text(conv, "after cancel", None)
        await eventually("alice's view has it", lambda: len(alice.client.messages(conv)) == 9)
        self.assertEqual(len(alice.rec.snapshot()), before, "no event after cancel")

        for u in (alice, bob):
            await u.client.logout()
            self.assertEqual(u.client.connection_state(), ffi.ConnectionState.LOGGED_OUT())


    async def test_media_message_and_presence(self):
        alice = await login(self.server, "+15557000011", "Alice")
        bob = await login(self.server, "+15557000012", "Bob")
        for u in (alice, bob):
            await u.client.connect()
        for u in (alice, bob):
            await eventually("connected", lambda u=u: u.states.last() == ffi.ConnectionState.CONNECTED())
        conv = (await alice.client.open_direct(bob.id)).id

        image = png(3, 2)
        blob = await alice.client.upload_blob(image, ffi.BlobPurpose.MEDIA)
        self.assertEqual((blob.content_type, blob.width, blob.height, blob.size), ("image/png", 3, 2, len(image)))
        alice.client.send_media(conv, ffi.MediaRef(
            blob_key=blob.key, content_type=blob.content_type, size=blob.size, width=blob.width,
            height=blob.height, caption="a picture"), None)
        await eventually("bob received the picture", lambda: len(bob.rec.messages(conv)) == 1)
        content = bob.rec.messages(conv)[0].content
        self.assertTrue(content.is_media())
        self.assertEqual((content.media.blob_key, content.media.caption), (blob.key, "a picture"))
        self.assertEqual(await bob.client.download_blob(blob.key), image)
        # Media is served to the conversation's members only: to anyone else it does not exist.
        carol = await login(self.server, "+15557000013", "Carol")
        with self.assertRaises(ffi.ChatError.NotFound):
            await carol.client.download_blob(blob.key)

        with self.assertRaises(ffi.ChatError.InvalidInput):
            await alice.client.upload_blob(b"not an image", ffi.BlobPurpose.MEDIA)

        presence = await alice.client.fetch_presence([bob.id])
        self.assertEqual([(p.user_id, p.online) for p in presence], [(bob.id, True)])
        self.assertTrue(alice.client.presence(bob.id).online)
        await bob.client.disconnect()
        await eventually("alice sees bob offline", lambda: any(
            e.is_presence_changed() and e.presence.user_id == bob.id and not e.presence.online
            for e in alice.rec.snapshot()))
        await alice.client.disconnect()


    async def test_message_search(self):
        alice = await login(self.server, "+15557000051", "Alice")
        bob = await login(self.server, "+15557000052", "Bob")
        carol = await login(self.server, "+15557000053", "Carol")
        await alice.client.connect()
        await eventually("connected", lambda: alice.states.last() == ffi.ConnectionState.CONNECTED())
        conv = (await alice.client.open_direct(bob.id)).id
        for i in range(3):
            alice.client.send_text(conv, "Papaya smoothie %d" % i, None)
        alice.client.send_text(conv, "nothing to find", None)
        await eventually("alice's sends acknowledged", lambda: not alice.client.pending())

        page = await bob.client.search("PAPAYA", None, None, 2)
        self.assertEqual([text(m) for m in page.messages], ["Papaya smoothie 2", "Papaya smoothie 1"])
        self.assertIsNotNone(page.next_cursor)
        last = await bob.client.search("papaya", conv, None, 5)
        self.assertEqual(len(last.messages), 3)
        rest = await bob.client.search("papaya", None, page.next_cursor, 2)
        self.assertEqual([text(m) for m in rest.messages], ["Papaya smoothie 0"])
        self.assertIsNone(rest.next_cursor)

        # Full-text syntax is plain words; a wordless query and a foreign cursor are typed errors.
        self.assertEqual(len((await bob.client.search('"papaya" OR', None, None, None)).messages), 0)
        with self.assertRaises(ffi.ChatError.InvalidInput) as e:
            await bob.client.search("*:()", None, None, None)
        self.assertEqual(e.exception.field, "q")
        with self.assertRaises(ffi.ChatError.InvalidInput) as e:
            await alice.client.search("papaya", None, page.next_cursor, 2)
        self.assertEqual(e.exception.field, "cursor")
        # Someone else's conversation does not exist for carol.
        self.assertEqual((await carol.client.search("papaya", None, None, None)).messages, [])
        with self.assertRaises(ffi.ChatError.NotFound):
            await carol.client.search("papaya", conv, None, None)
        await alice.client.disconnect()


    async def test_push_token_mute_and_payload(self):
        alice = await login(self.server, "+15557000021", "Alice")
        bob = await login(self.server, "+15557000022", "Bob")
        with self.assertRaises(ffi.ChatError.InvalidInput) as e:
            await bob.client.register_push(ffi.PushPlatform.APNS, "not hex", "com.example.chat", None)
        self.assertEqual(e.exception.field, "token")
        await bob.client.register_push(ffi.PushPlatform.FCM, "fcm-token", "com.example.chat", "en-GB")
        conv = (await alice.client.open_direct(bob.id)).id
        await bob.client.mute(conv, None)
        await bob.client.connect()
        await eventually("bob's view is muted", lambda: bob.client.conversation(conv) is not None
                         and bob.client.conversation(conv).muted)
        await bob.client.unmute(conv)
        await eventually("bob's view is unmuted", lambda: not bob.client.conversation(conv).muted)
        await bob.client.unregister_push()
        # A received push (FCM `data`, or APNs `userInfo`) read back into what to open.
        target = ffi.parse_push_payload(
            '{"chatico_conversation": "%s", "chatico_seq": "7", "chatico_kind": "reply"}' % conv)
        self.assertEqual((target.conversation_id, target.seq, target.kind), (conv, 7, ffi.PushKind.REPLY))
        with self.assertRaises(ffi.ChatError.InvalidInput):
            ffi.parse_push_payload('{"aps": {}}')
        await bob.client.disconnect()

    async def test_mentions_and_pins(self):
        alice = await login(self.server, "+15557000031", "Alice")
        bob = await login(self.server, "+15557000032", "Bob")
        carol = await login(self.server, "+15557000033", "Carol")
        for u in (alice, bob):
            await u.client.connect()
        g = (await alice.client.create_group("Trip", [bob.id], None)).id
        await eventually("bob's view has the group", lambda: bob.client.conversation(g) is not None)

        # "é @Bob": the mention is 2..6 in UTF-16 code units.
        alice.client.send_text_with_mentions(g, "é @Bob", [ffi.Mention(user_id=bob.id, start=2, end=6)], None)
        await eventually("bob received the mention", lambda: any(
            m.content.is_text() and m.content.mentions for m in bob.rec.messages(g)))
        got = [m for m in bob.rec.messages(g) if m.content.is_text() and m.content.mentions][0]
        self.assertEqual(got.content.mentions, [ffi.Mention(user_id=bob.id, start=2, end=6)])
        await eventually("bob's unread mention", lambda: bob.client.conversation(g).unread_mentions == 1)
        self.assertEqual(alice.client.conversation(g).unread_mentions, 0)
        await bob.client.mark_read(g, got.seq)
        await eventually("read", lambda: bob.client.conversation(g).unread_mentions == 0)

        # A non-member is refused by the server; a malformed id before anything is sent.
        p = alice.client.send_text_with_mentions(g, "@Carol", [ffi.Mention(user_id=carol.id, start=0, end=6)], None)
        await eventually("the send failed", lambda: any(
            e.is_send_failed() and e.client_msg_id == p.client_msg_id and e.code == ffi.ErrorCode.INVALID_INPUT
            for e in alice.rec.snapshot()))
        with self.assertRaises(ffi.ChatError.InvalidInput):
            alice.client.send_text_with_mentions(g, "@x", [ffi.Mention(user_id="nope", start=0, end=2)], None)

        # Pins: per user, synced to the user's devices, listed first; an outsider gets 404.
        d = (await bob.client.open_direct(alice.id)).id
        bob.client.send_text(d, "newer", None)
        await eventually("the direct chat first", lambda: bob.client.conversations(False)[0].conversation.id == d)
        pinned_at = await bob.client.pin(g)
        self.assertGreater(pinned_at, 0)
        await eventually("bob's view pinned", lambda: bob.client.conversation(g).pinned)
        self.assertEqual(bob.client.conversation(g).pinned_at, pinned_at)
        self.assertEqual(bob.client.conversations(False)[0].conversation.id, g)
        await eventually("the pinned event", lambda: any(
            e.is_pinned() and e.conversation_id == g and e.pinned for e in bob.rec.snapshot()))
        self.assertFalse(alice.client.conversation(g).pinned, "pins are per user")
        with self.assertRaises(ffi.ChatError.NotFound):
            await carol.client.pin(g)
        await bob.client.unpin(g)
        await eventually("unpinned", lambda: not bob.client.conversation(g).pinned)
        self.assertEqual(bob.client.conversations(False)[0].conversation.id, d)
        target = ffi.parse_push_payload(
            '{"chatico_conversation": "%s", "chatico_seq": "2", "chatico_kind": "mention"}' % g)
        self.assertEqual(target.kind, ffi.PushKind.MENTION)
    async def test_edit_and_react(self):
        alice = await login(self.server, "+15557000041", "Alice")
        bob = await login(self.server, "+15557000042", "Bob")
        for u in (alice, bob):
            await u.client.connect()
        for u in (alice, bob):
            await eventually("connected", lambda u=u: u.states.last() == ffi.ConnectionState.CONNECTED())
        conv = (await alice.client.open_direct(bob.id)).id
        alice.client.send_text(conv, "helo", None)
        await eventually("bob received it", lambda: len(bob.rec.messages(conv)) == 1)
        seq = bob.rec.messages(conv)[0].seq

        edited = await alice.client.edit_message(conv, seq, "hello")
        self.assertEqual(text(edited), "hello")
        self.assertIsNotNone(edited.edited_at)
        await eventually("bob got the edit", lambda: any(
            e.is_message_edited() and e.seq == seq and e.content.text == "hello" for e in bob.rec.snapshot()))
        await eventually("bob's view shows it edited", lambda: any(
            m.seq == seq and m.edited_at == edited.edited_at and text(m) == "hello"
            for m in bob.client.messages(conv)))
        with self.assertRaises(ffi.ChatError.Forbidden):
            await bob.client.edit_message(conv, seq, "not mine")

        m = await bob.client.react(conv, seq, "👍")
        self.assertEqual([(r.emoji, r.count, r.user_ids) for r in m.reactions], [("👍", 1, [bob.id])])
        await eventually("alice got the reaction", lambda: any(
            e.is_reaction_changed() and e.added and e.user_id == bob.id and e.emoji == "👍" for e in alice.rec.snapshot()))
        await eventually("alice's view counts it", lambda: any(
            m.seq == seq and [(r.emoji, r.count) for r in m.reactions] == [("👍", 1)]
            for m in alice.client.messages(conv)))
        m = await bob.client.unreact(conv, seq, "👍")
        self.assertEqual(m.reactions, [])
        await eventually("alice's view drops it", lambda: any(
            m.seq == seq and m.reactions == [] for m in alice.client.messages(conv)))
        with self.assertRaises(ffi.ChatError.InvalidInput) as e:
            await bob.client.react(conv, seq, "not an emoji")
        self.assertEqual(e.exception.field, "emoji")
        for u in (alice, bob):
            await u.client.disconnect()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit, not sys.exit: SDK threads may still be inside a callback into Python, and a
    # thread that touches the interpreter during its finalization is killed by CPython with
    # a forced unwind through Rust frames (an abort). Nothing is left to clean up here.
    os._exit(0 if failed == 0 and result.testsRun > 0 else 1)
