// The generated Kotlin bindings of chatico-ffi, driving clients against a real chatico-server
// started by the test (in-memory database, console SMS sender whose log the test reads for
// login codes). The same flow and the same checks as tests/test_ffi.py, on the JVM through JNA.
//
// Run by bindings/ffi/test-kotlin.sh (which compiles it with the generated sources); by hand:
//
//     CHATICO_SERVER_BIN=<path to chatico-server> java -Djna.library.path=<dir of libchatico_ffi> \
//       -cp <this program>:<bindings jar>:kotlin-stdlib.jar:kotlinx-coroutines-core-jvm.jar:jna.jar \
//       chatico.ffitest.ChatFfiTestKt
//
// Prints "N passed, N failed" and exits non-zero when a test fails.

package chatico.ffitest

import java.io.File
import java.nio.ByteBuffer
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.zip.CRC32
import java.util.zip.Deflater
import kotlin.system.exitProcess
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import uniffi.chatico_ffi.*

val SERVER_BIN: String = System.getenv("CHATICO_SERVER_BIN") ?: error("CHATICO_SERVER_BIN is not set")

// How long a test waits for something that must happen (a hang is a failure).
const val PATIENCE_MS = 30_000L

/** chatico-server on 127.0.0.1:0 with JSON logs on stdout, read by a thread. */
class Server {
    private val data: File = Files.createTempDirectory("chatico-ffi-test-").toFile()
    private val proc: Process = ProcessBuilder(
        SERVER_BIN, "--addr", "127.0.0.1:0", "--data-dir", data.path, "--log-json",
        "--log", "info,chatico=info",
    ).redirectErrorStream(true).start()
    private val lines = LinkedBlockingQueue<String>()
    private val sms = mutableListOf<Pair<String?, String>>() // (to, body), guarded by itself
    val url: String

    init {
        Thread({ read() }, "server-log").apply { isDaemon = true }.start()
        val deadline = System.nanoTime() + PATIENCE_MS * 1_000_000
        var found: String? = null
        while (found == null) {
            val left = deadline - System.nanoTime()
            if (left <= 0) throw RuntimeException("the server did not say where it listens")
            val line = lines.poll(left, TimeUnit.NANOSECONDS) ?: continue
            found = Regex("""listening on (http://127\.0\.0\.1:\d+)""").find(line)?.groupValues?.get(1)
        }
        url = found
    }

    private fun read() {
        try {
            readLines()
        } catch (e: java.io.IOException) {
            // The stream is closed when stop() ends the server.
        }
    }

    private fun readLines() {
        proc.inputStream.bufferedReader().forEachLine { line ->
            lines.put(line)
            val rec = try {
                Json.parse(line) as? Map<*, *>
            } catch (e: IllegalArgumentException) {
                null
            } ?: return@forEachLine
            val fields = rec["fields"] as? Map<*, *> ?: return@forEachLine
            val body = fields["body"] as? String
            if (rec["target"] == "chatico::sms::console" && body != null) {
                synchronized(sms) { sms.add(fields["to"] as? String to body) }
            }
        }
    }

    fun codeFor(phone: String): String {
        val deadline = System.nanoTime() + PATIENCE_MS * 1_000_000
        while (System.nanoTime() < deadline) {
            synchronized(sms) {
                for ((to, body) in sms.asReversed()) {
                    if (to == phone) {
                        Regex("""\b(\d{6})\b""").find(body)?.let { return it.groupValues[1] }
                    }
                }
            }
            Thread.sleep(20)
        }
        throw AssertionError("no login code for $phone in the server log")
    }

    fun stop() {
        proc.destroy()
        if (!proc.waitFor(10, TimeUnit.SECONDS)) proc.destroyForcibly().waitFor()
        data.deleteRecursively()
    }
}

/** Keeps every event (called on an SDK thread). */
class Recorder : ChatEventListener {
    private val events = mutableListOf<ChatEvent>()

    override fun onEvent(event: ChatEvent) {
        synchronized(events) { events.add(event) }
    }

    fun snapshot(): List<ChatEvent> = synchronized(events) { events.toList() }

    fun messages(conv: String): List<Message> =
        snapshot().filterIsInstance<ChatEvent.MessageReceived>().map { it.message }.filter { it.conversationId == conv }
}

class States : ConnectionListener {
    private val states = mutableListOf<ConnectionState>()

    override fun onState(state: ConnectionState) {
        synchronized(states) { states.add(state) }
    }

    fun last(): ConnectionState? = synchronized(states) { states.lastOrNull() }
}

suspend fun eventually(what: String, pred: () -> Boolean) {
    val deadline = System.nanoTime() + PATIENCE_MS * 1_000_000
    while (!pred()) {
        if (System.nanoTime() > deadline) throw AssertionError("timed out waiting until $what")
        delay(20)
    }
}

fun check(cond: Boolean, what: () -> String) {
    if (!cond) throw AssertionError(what())
}

fun <T> assertEqual(expected: T, actual: T, what: String = "") {
    if (expected != actual) throw AssertionError("$what: expected <$expected>, got <$actual>".removePrefix(": "))
}

/** Runs `block` (which may suspend) and returns what it threw, which must be a `T`. */
inline fun <reified T : Throwable> assertRaises(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.qualifiedName}, got $e", e)
    }
    throw AssertionError("expected ${T::class.qualifiedName}, nothing was thrown")
}

fun text(m: Message): String {
    val c = m.content
    check(c is MessageContent.Text) { "not a text message: $m" }
    return (c as MessageContent.Text).text
}

/** A complete, valid RGB PNG. */
fun png(width: Int, height: Int): ByteArray {
    fun u32(v: Long) = ByteBuffer.allocate(4).putInt(v.toInt()).array()
    fun chunk(kind: String, data: ByteArray): ByteArray {
        val kd = kind.toByteArray(Charsets.US_ASCII) + data
        val crc = CRC32().apply { update(kd) }.value
        return u32(data.size.toLong()) + kd + u32(crc)
    }
    val row = byteArrayOf(0) + ByteArray(3 * width) { i -> byteArrayOf(0x80.toByte(), 0x40, 0x20)[i % 3] }
    val raw = ByteArray(0).let { var r = it; repeat(height) { r += row }; r }
    val deflater = Deflater().apply { setInput(raw); finish() }
    val buf = ByteArray(raw.size + 64)
    val idat = buf.copyOf(deflater.deflate(buf)).also { deflater.end() }
    val ihdr = ByteBuffer.allocate(13).putInt(width).putInt(height).put(8).put(2).put(0).put(0).put(0).array()
    return byteArrayOf(0x89.toByte(), 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A) +
        chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", ByteArray(0))
}

class User(
    val client: ChatClient,
    val rec: Recorder,
    val states: States,
    val handles: List<TaskHandle>,
    val id: String,
)

suspend fun login(server: Server, phone: String, name: String): User {
    val client = ChatClient(
        ClientOptions(
            baseUrl = server.url, device = "kotlin-test", backoffInitialMs = 20uL, backoffMaxMs = 500uL,
            requestTimeoutMs = 10_000uL, autoDelivered = true,
        ),
    )
    val info = client.requestOtp(phone)
    check(info.expiresInMs > 0uL) { "expiresInMs = ${info.expiresInMs}" }
    val result = client.verifyOtp(phone, server.codeFor(phone))
    assertEqual(phone, result.user.phone)
    val me = client.updateProfile(ProfileUpdate(displayName = name, bio = null, avatarUrl = null, clearAvatar = false))
    assertEqual(name, me.displayName)
    val rec = Recorder()
    val states = States()
    val handles = listOf(client.subscribeEvents(rec), client.subscribeConnection(states))
    return User(client, rec, states, handles, result.user.id)
}

suspend fun errorsCarryStableCodes(server: Server) {
    val c = ChatClient(
        ClientOptions(
            baseUrl = server.url, device = null, backoffInitialMs = null, backoffMaxMs = null,
            requestTimeoutMs = null, autoDelivered = null,
        ),
    )
    val e = assertRaises<ChatException.InvalidInput> { c.requestOtp("not a phone") }
    assertEqual("phone", e.field)
    // Kotlin only: the human text is `reason` (uniffi.toml), and Throwable.message carries it.
    check(e.reason.isNotEmpty() && e.message.orEmpty().contains(e.reason)) { "reason/message: ${e.reason} / ${e.message}" }
    assertRaises<ChatException.Unauthorized> { c.verifyOtp("+15551230000", "000000") }
    assertRaises<ChatException.InvalidInput> { c.sendText("not-a-uuid", "x", null) }
    assertRaises<ChatException.Unauthorized> { c.connect() }
}

suspend fun twoClientsChatOfflineAndBackExactlyOnce(server: Server) {
    val alice = login(server, "+15557000001", "Alice")
    val bob = login(server, "+15557000002", "Bob")
    for (u in listOf(alice, bob)) u.client.connect()
    for (u in listOf(alice, bob)) eventually("connected") { u.states.last() == ConnectionState.Connected }

    val conv = alice.client.openDirect(bob.id).id
    eventually("bob's view has the conversation") { bob.client.conversation(conv) != null }

    // Messages both ways.
    for (i in 0 until 3) {
        val p = alice.client.sendText(conv, "hi $i", null)
        assertEqual(conv, p.conversationId)
    }
    eventually("bob received 3") { bob.rec.messages(conv).size >= 3 }
    // Bob's client acknowledges delivery by itself.
    eventually("alice sees bob's delivery receipt") {
        alice.rec.snapshot().any { it is ChatEvent.Receipt && it.userId == bob.id && it.deliveredSeq == 3L }
    }
    // Bob reads them; alice sees the read receipt.
    val marks = bob.client.markRead(conv, 3)
    assertEqual(3L to 3L, marks.deliveredSeq to marks.readSeq)
    eventually("alice sees bob's read receipt") {
        alice.rec.snapshot().any { it is ChatEvent.Receipt && it.userId == bob.id && it.readSeq == 3L }
    }
    assertEqual(0L, bob.client.conversation(conv)!!.unread)
    val bobInAliceView = alice.client.conversation(conv)!!.members.filter { it.userId == bob.id }
    assertEqual(3L, bobInAliceView[0].readSeq)

    bob.client.sendText(conv, "hello alice", null)
    eventually("alice received 4") { alice.rec.messages(conv).size >= 4 }
    val sent = alice.rec.snapshot().filterIsInstance<ChatEvent.Sent>()
    assertEqual(3, sent.size, "one acknowledgement per message")

    // Typing.
    bob.client.setTyping(conv, true)
    eventually("alice sees bob typing") {
        alice.rec.snapshot().any { it is ChatEvent.Typing && it.userId == bob.id && it.typing }
    }
    check(bob.id in alice.client.conversation(conv)!!.typing) { "bob is not in alice's typing list" }

    // Bob goes offline; both keep writing.
    bob.client.disconnect()
    assertEqual<ConnectionState>(ConnectionState.Disconnected, bob.client.connectionState())
    for (i in 0 until 2) alice.client.sendText(conv, "while you were away $i", null)
    val offline = (0 until 2).map { bob.client.sendText(conv, "written offline $it", null) }
    assertEqual(offline.map { it.clientMsgId }, bob.client.pending().map { it.clientMsgId })
    eventually("alice's sends acknowledged") { alice.client.pending().isEmpty() }
    check(bob.rec.snapshot().any { it is ChatEvent.Queued }) { "no Queued event" }
    val state = bob.client.exportState()
    check(offline[0].clientMsgId in state) { "the exported state lacks the outbox" }

    // Back online: resume and resend.
    bob.client.connect()
    eventually("bob's outbox drained") { bob.client.pending().isEmpty() }
    eventually("bob has all 8") { bob.client.messages(conv).size == 8 }
    eventually("alice has all 8") { alice.client.messages(conv).size == 8 }
    eventually("both reported all 8") { alice.rec.messages(conv).size >= 8 && bob.rec.messages(conv).size >= 8 }

    val expected = listOf(
        "hi 0", "hi 1", "hi 2", "hello alice", "while you were away 0", "while you were away 1",
        "written offline 0", "written offline 1",
    )
    for (u in listOf(alice, bob)) {
        val got = u.rec.messages(conv)
        assertEqual((1L..8L).toList(), got.map { it.seq }, "every message reported exactly once, in seq order")
        assertEqual(expected, got.map { text(it) })
        assertEqual(expected, u.client.messages(conv).map { text(it) })
    }
    val ids = alice.client.messages(conv).map { it.clientMsgId }.toSet()
    for (p in offline) check(p.clientMsgId in ids) { "resent with its original client_msg_id" }
    assertEqual(2L, alice.client.conversation(conv)!!.unread)

    // History through REST matches.
    val hist = bob.client.history(conv, null, 50u)
    assertEqual(expected, hist.map { text(it) })

    // Cancelling a subscription stops its callbacks.
    val handle = alice.handles[0]
    handle.cancel()
    eventually("the subscription ended") { handle.isFinished() }
    val before = alice.rec.snapshot().size
    bob.client.sendText(conv, "after cancel", null)
    eventually("alice's view has it") { alice.client.messages(conv).size == 9 }
    assertEqual(before, alice.rec.snapshot().size, "no event after cancel")

    for (u in listOf(alice, bob)) {
        u.client.logout()
        assertEqual<ConnectionState>(ConnectionState.LoggedOut, u.client.connectionState())
    }
}

suspend fun mediaMessageAndPresence(server: Server) {
    val alice = login(server, "+15557000011", "Alice")
    val bob = login(server, "+15557000012", "Bob")
    for (u in listOf(alice, bob)) u.client.connect()
    for (u in listOf(alice, bob)) eventually("connected") { u.states.last() == ConnectionState.Connected }
    val conv = alice.client.openDirect(bob.id).id

    val image = png(3, 2)
    val blob = alice.client.uploadBlob(image, BlobPurpose.MEDIA)
    assertEqual(
        listOf<Any?>("image/png", 3u, 2u, image.size.toULong()),
        listOf<Any?>(blob.contentType, blob.width, blob.height, blob.size),
    )
    alice.client.sendMedia(
        conv,
        MediaRef(
            blobKey = blob.key, contentType = blob.contentType, size = blob.size, width = blob.width,
            height = blob.height, caption = "a picture",
        ),
        null,
    )
    eventually("bob received the picture") { bob.rec.messages(conv).size == 1 }
    val content = bob.rec.messages(conv)[0].content
    check(content is MessageContent.Media) { "not a media message: $content" }
    val media = (content as MessageContent.Media).media
    assertEqual(blob.key to "a picture", media.blobKey to media.caption)
    check(bob.client.downloadBlob(blob.key).contentEquals(image)) { "the downloaded blob differs" }
    // Media is served to the conversation's members only: to anyone else it does not exist.
    val carol = login(server, "+15557000013", "Carol")
    assertRaises<ChatException.NotFound> { carol.client.downloadBlob(blob.key) }

    assertRaises<ChatException.InvalidInput> {
        alice.client.uploadBlob("not an image".toByteArray(), BlobPurpose.MEDIA)
    }

    val presence = alice.client.fetchPresence(listOf(bob.id))
    assertEqual(listOf(bob.id to true), presence.map { it.userId to it.online })
    check(alice.client.presence(bob.id)?.online == true) { "alice's view does not have bob online" }
    bob.client.disconnect()
    eventually("alice sees bob offline") {
        alice.rec.snapshot().any { it is ChatEvent.PresenceChanged && it.presence.userId == bob.id && !it.presence.online }
    }
    alice.client.disconnect()
}

suspend fun mentionsAndPins(server: Server) {
    val alice = login(server, "+15557000041", "Alice")
    val bob = login(server, "+15557000042", "Bob")
    val carol = login(server, "+15557000043", "Carol")
    for (u in listOf(alice, bob)) u.client.connect()
    val g = alice.client.createGroup("Trip", listOf(bob.id), null).id
    eventually("bob's view has the group") { bob.client.conversation(g) != null }

    // Kotlin's String indices are UTF-16 code units: the mention's range is indexOf's.
    val text = "😀 @Bob"
    val start = text.indexOf("@Bob")
    alice.client.sendTextWithMentions(g, text, listOf(Mention(bob.id, start.toUInt(), (start + 4).toUInt())), null)
    eventually("bob received the mention") {
        bob.rec.messages(g).any { (it.content as? MessageContent.Text)?.mentions?.isNotEmpty() == true }
    }
    val got = bob.rec.messages(g).first { (it.content as? MessageContent.Text)?.mentions?.isNotEmpty() == true }
    val mention = (got.content as MessageContent.Text).mentions.single()
    assertEqual("@Bob", text.substring(mention.start.toInt(), mention.end.toInt()))
    eventually("bob's unread mention") { bob.client.conversation(g)!!.unreadMentions == 1L }
    bob.client.markRead(g, got.seq)
    eventually("read") { bob.client.conversation(g)!!.unreadMentions == 0L }

    // A range splitting the emoji is refused by the server.
    val bad = alice.client.sendTextWithMentions(g, text, listOf(Mention(bob.id, 1u, 7u)), null)
    eventually("the send failed") {
        alice.rec.snapshot().any {
            it is ChatEvent.SendFailed && it.clientMsgId == bad.clientMsgId && it.code == ErrorCode.INVALID_INPUT
        }
    }

    // Pins: listed first, on the user's devices only; an outsider gets NotFound.
    val d = bob.client.openDirect(alice.id).id
    bob.client.sendText(d, "newer", null)
    eventually("the direct chat first") { bob.client.conversations(false).first().conversation.id == d }
    val at = bob.client.pin(g)
    eventually("bob's view pinned") { bob.client.conversation(g)!!.pinned }
    assertEqual(at, bob.client.conversation(g)!!.pinnedAt)
    assertEqual(g, bob.client.conversations(false).first().conversation.id)
    eventually("the pinned event") { bob.rec.snapshot().any { it is ChatEvent.Pinned && it.conversationId == g && it.pinned } }
    check(!alice.client.conversation(g)!!.pinned) { "pins are per user" }
    assertRaises<ChatException.NotFound> { carol.client.pin(g) }
    bob.client.unpin(g)
    eventually("unpinned") { !bob.client.conversation(g)!!.pinned }
    assertEqual(PushKind.MENTION, parsePushPayload("""{"chatico_conversation": "$g", "chatico_seq": "2", "chatico_kind": "mention"}""").kind)
    for (u in listOf(alice, bob)) u.client.disconnect()
}

suspend fun editAndReact(server: Server) {
    val alice = login(server, "+15557000031", "Alice")
    val bob = login(server, "+15557000032", "Bob")
    for (u in listOf(alice, bob)) u.client.connect()
    for (u in listOf(alice, bob)) eventually("connected") { u.states.last() == ConnectionState.Connected }
    val conv = alice.client.openDirect(bob.id).id
    alice.client.sendText(conv, "helo", null)
    eventually("bob received it") { bob.rec.messages(conv).size == 1 }
    val seq = bob.rec.messages(conv)[0].seq

    val edited = alice.client.editMessage(conv, seq, "hello")
    assertEqual("hello", text(edited))
    check(edited.editedAt != null) { "no edited_at: $edited" }
    eventually("bob got the edit") {
        bob.rec.snapshot().any {
            it is ChatEvent.MessageEdited && it.seq == seq && (it.content as? MessageContent.Text)?.text == "hello"
        }
    }
    eventually("bob's view shows it edited") {
        bob.client.messages(conv).any { it.seq == seq && it.editedAt == edited.editedAt && text(it) == "hello" }
    }
    assertRaises<ChatException.Forbidden> { bob.client.editMessage(conv, seq, "not mine") }

    val m = bob.client.react(conv, seq, "👍")
    assertEqual(listOf(Triple("👍", 1u, listOf(bob.id))), m.reactions.map { Triple(it.emoji, it.count, it.userIds) })
    eventually("alice got the reaction") {
        alice.rec.snapshot().any { it is ChatEvent.ReactionChanged && it.added && it.userId == bob.id && it.emoji == "👍" }
    }
    eventually("alice's view counts it") {
        alice.client.messages(conv).any { it.seq == seq && it.reactions.map { r -> r.emoji to r.count } == listOf("👍" to 1u) }
    }
    assertEqual(emptyList<Reaction>(), bob.client.unreact(conv, seq, "👍").reactions)
    eventually("alice's view drops it") { alice.client.messages(conv).any { it.seq == seq && it.reactions.isEmpty() } }
    val e = assertRaises<ChatException.InvalidInput> { bob.client.react(conv, seq, "not an emoji") }
    assertEqual("emoji", e.field)
    for (u in listOf(alice, bob)) u.client.disconnect()
}

suspend fun messageSearch(server: Server) {
    val alice = login(server, "+15557000051", "Alice")
    val bob = login(server, "+15557000052", "Bob")
    val carol = login(server, "+15557000053", "Carol")
    alice.client.connect()
    eventually("connected") { alice.states.last() == ConnectionState.Connected }
    val conv = alice.client.openDirect(bob.id).id
    for (i in 0 until 3) alice.client.sendText(conv, "Guava tart $i", null)
    alice.client.sendText(conv, "nothing to find", null)
    eventually("alice's sends acknowledged") { alice.client.pending().isEmpty() }

    val page = bob.client.search("GUAVA", null, null, 2u)
    assertEqual(listOf("Guava tart 2", "Guava tart 1"), page.messages.map { text(it) })
    val cursor = page.nextCursor
    check(cursor != null) { "a second page" }
    val rest = bob.client.search("guava", conv, null, 5u)
    assertEqual(3, rest.messages.size)
    val last = bob.client.search("guava", null, cursor, 2u)
    assertEqual(listOf("Guava tart 0"), last.messages.map { text(it) })
    assertEqual(null, last.nextCursor)

    val noWords = assertRaises<ChatException.InvalidInput> { bob.client.search("*:()", null, null, null) }
    assertEqual("q", noWords.field)
    val foreign = assertRaises<ChatException.InvalidInput> { alice.client.search("guava", null, cursor, 2u) }
    assertEqual("cursor", foreign.field)
    assertEqual(0, carol.client.search("guava", null, null, null).messages.size)
    assertRaises<ChatException.NotFound> { carol.client.search("guava", conv, null, null) }
    alice.client.disconnect()
}

fun main() {
    val server = Server()
    val tests: List<Pair<String, suspend (Server) -> Unit>> = listOf(
        "errors carry stable codes" to ::errorsCarryStableCodes,
        "media message and presence" to ::mediaMessageAndPresence,
        "edit and react" to ::editAndReact,
        "message search" to ::messageSearch,
        "two clients chat, offline and back, exactly once" to ::twoClientsChatOfflineAndBackExactlyOnce,
        "mentions and pins" to ::mentionsAndPins,
    )
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        val start = System.nanoTime()
        try {
            runBlocking { test(server) }
            passed++
            println("$name ... ok (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("$name ... FAIL")
            e.printStackTrace(System.out)
        }
        System.out.flush()
    }
    server.stop()
    println("$passed passed, $failed failed")
    System.out.flush()
    System.err.flush()
    // SDK threads may still be running (reconnect loops of clients that were not logged out):
    // end the JVM here rather than wait for the objects to be collected.
    exitProcess(if (failed == 0 && passed > 0) 0 else 1)
}

/** Just enough JSON for the server's log lines: objects, arrays, strings, numbers, literals. */
object Json {
    fun parse(s: String): Any? {
        val p = Parser(s)
        val v = p.value()
        p.ws()
        if (p.i != s.length) throw IllegalArgumentException("trailing characters at ${p.i}")
        return v
    }

    private class Parser(val s: String) {
        var i = 0

        fun ws() {
            while (i < s.length && s[i].isWhitespace()) i++
        }

        fun fail(what: String): Nothing = throw IllegalArgumentException("$what at $i")

        fun value(): Any? {
            ws()
            return when (s.getOrNull(i)) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> lit("true", true)
                'f' -> lit("false", false)
                'n' -> lit("null", null)
                null -> fail("unexpected end")
                else -> num()
            }
        }

        fun lit(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("bad literal")
            i += word.length
            return v
        }

        fun num(): Double {
            val start = i
            while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
            return s.substring(start, i).toDoubleOrNull() ?: fail("bad number")
        }

        fun str(): String {
            i++ // opening quote
            val sb = StringBuilder()
            while (true) {
                val c = s.getOrNull(i++) ?: fail("unterminated string")
                when (c) {
                    '"' -> return sb.toString()
                    '\\' -> when (val e = s.getOrNull(i++) ?: fail("unterminated escape")) {
                        '"', '\\', '/' -> sb.append(e)
                        'b' -> sb.append('\b')
                        'f' -> sb.append('\u000C')
                        'n' -> sb.append('\n')
                        'r' -> sb.append('\r')
                        't' -> sb.append('\t')
                        'u' -> {
                            if (i + 4 > s.length) fail("bad \\u escape")
                            sb.append(s.substring(i, i + 4).toIntOrNull(16)?.toChar() ?: fail("bad \\u escape"))
                            i += 4
                        }
                        else -> fail("bad escape")
                    }
                    else -> sb.append(c)
                }
            }
        }

        fun arr(): List<Any?> {
            i++
            val out = mutableListOf<Any?>()
            ws()
            if (s.getOrNull(i) == ']') return out.also { i++ }
            while (true) {
                out.add(value())
                ws()
                when (s.getOrNull(i++)) {
                    ',' -> continue
                    ']' -> return out
                    else -> fail("expected , or ]")
                }
            }
        }

        fun obj(): Map<String, Any?> {
            i++
            val out = linkedMapOf<String, Any?>()
            ws()
            if (s.getOrNull(i) == '}') return out.also { i++ }
            while (true) {
                ws()
                if (s.getOrNull(i) != '"') fail("expected a key")
                val k = str()
                ws()
                if (s.getOrNull(i++) != ':') fail("expected :")
                out[k] = value()
                ws()
                when (s.getOrNull(i++)) {
                    ',' -> continue
                    '}' -> return out
                    else -> fail("expected , or }")
                }
            }
        }
    }
}
