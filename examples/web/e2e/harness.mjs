// Test plumbing for the browser end-to-end test: the example server as a child process
// (login codes read from its console, as a developer would), a TCP proxy in front of it
// that can cut every connection (the "server's socket drops"), and PNG images.
import { spawn } from "node:child_process";
import { createServer, connect } from "node:net";
import { deflateSync } from "node:zlib";
import { once } from "node:events";

/** A TCP proxy to `target` (set later) that can drop all connections and refuse new ones. */
export async function startProxy() {
  const sockets = new Set();
  let target = null;
  let refusing = false;
  const server = createServer((client) => {
    if (refusing || !target) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: server.address().port,
    setTarget(host, port) {
      target = { host, port };
    },
    /** Cuts every open connection (browsers see their WebSockets drop) and, while
     * `refuse` is true, refuses new ones. */
    drop(refuse) {
      refusing = refuse;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    accept() {
      refusing = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Starts the example server binary; resolves once it listens. */
export async function startServer({ bin, dataDir, webDir, origins, env = {} }) {
  const child = spawn(bin, ["--addr", "127.0.0.1:0", "--data-dir", dataDir, "--web-dir", webDir, "--allowed-origins", origins.join(",")], {
    env: { ...process.env, CHATICO_LOG: "info", NO_COLOR: "1", RUST_LOG_STYLE: "never", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const codes = new Map();
  const waiters = [];
  let log = "";
  let listening;
  const ready = new Promise((resolve, reject) => {
    listening = resolve;
    child.on("exit", (code) => reject(new Error(`chatico-server exited with ${code}\n${log}`)));
  });
  const onLine = (line) => {
    log += line + "\n";
    // ANSI colours off or not, the address follows "listening on http://".
    const clean = line.replace(/\x1b\[[0-9;]*m/g, "");
    const addr = clean.match(/listening on http:\/\/([0-9.]+):(\d+)/);
    if (addr) listening({ host: addr[1], port: Number(addr[2]) });
    if (clean.includes("DEVELOPMENT MODE")) {
      const to = clean.match(/to=(\+\d+)/);
      const code = clean.match(/code is (\d+)/);
      if (to && code) {
        codes.set(to[1], code[1]);
        for (const w of waiters.splice(0)) w();
      }
    }
  };
  let buf = "";
  const feed = (chunk) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  child.stdout.on("data", feed);
  child.stderr.on("data", feed);
  const addr = await ready;
  return {
    ...addr,
    log: () => log,
    /** The last code texted to `phone` (waits for it to appear on the console). */
    async codeFor(phone, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      while (!codes.has(phone)) {
        if (Date.now() > deadline) throw new Error(`no code for ${phone} on the server console`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
      const c = codes.get(phone);
      codes.delete(phone);
      return c;
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** An RGB PNG of `w`×`h` painted by `paint(x, y) -> [r, g, b]`. */
export function png(w, h, paint) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const [r, g, b] = paint(x, y);
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
