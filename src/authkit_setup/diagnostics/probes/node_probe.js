/* authkit-setup inside probe v1 */
// Runs as a Render one-off job: node -e <this file> <step ms> <targets>. It reads DATABASE_URL
// and REDIS_URL from the environment of the job itself (never from its command line) and proves, per
// store, the rungs of `authkit-setup check`: url, dns, tcp, tls (when the URL asks for it), auth
// and query. It prints ONE line starting with {"authkit_probe": and exits 1 when any check fails,
// so the final status of the job alone tells pass from fail. Standard library only (net, tls, dns,
// crypto): the image of the service has node, nothing else is assumed. No password is ever printed.
// The tool passes it as one shell-quoted argument (diagnostics/inside.py: shlex.quote).
"use strict";
const net = require("net"), tls = require("tls"), dns = require("dns"), crypto = require("crypto");
const STEP_MS = Number(process.argv[1]) > 0 ? Number(process.argv[1]) : 10000;
const TARGETS = (process.argv[2] || "postgres,redis").split(",").filter(Boolean);
const VARS = { postgres: "DATABASE_URL", redis: "REDIS_URL" };
const STOP = new Error("stop");

function fail(code, message, rung) {
  const e = new Error(message);
  e.code_ = code;
  if (rung) e.rung_ = rung;
  return e;
}

function withTimeout(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(fail("timeout", what + " took longer than " + STEP_MS + " ms")), STEP_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// A byte reader over a socket: read(n) resolves with exactly n bytes.
function reader(sock) {
  let buf = Buffer.alloc(0), want = 0, pending = null, broken = null;
  const pump = () => {
    if (pending && buf.length >= want) {
      const out = buf.subarray(0, want);
      buf = buf.subarray(want);
      const p = pending;
      pending = null;
      p.resolve(out);
    } else if (pending && broken) {
      const p = pending;
      pending = null;
      p.reject(broken);
    }
  };
  const onData = (d) => { buf = Buffer.concat([buf, d]); pump(); };
  const onEnd = () => { broken = broken || fail("closed", "the server closed the connection"); pump(); };
  const onError = (e) => { broken = fail("io", "connection error: " + (e.code || e.message)); pump(); };
  sock.on("data", onData);
  sock.on("end", onEnd);
  sock.on("close", onEnd);
  sock.on("error", onError);
  return {
    read(n) {
      return new Promise((resolve, reject) => { want = n; pending = { resolve, reject }; pump(); });
    },
    detach() {
      sock.removeListener("data", onData);
      sock.removeListener("end", onEnd);
      sock.removeListener("close", onEnd);
      sock.removeListener("error", onError);
    },
  };
}

async function readLine(r) {
  const bytes = [];
  for (;;) {
    const b = (await r.read(1))[0];
    if (b === 10) return Buffer.from(bytes).toString("utf8").replace(/\r$/, "");
    bytes.push(b);
  }
}

function connectTcp(address, port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: address, port: port });
    sock.once("connect", () => { sock.removeAllListeners("error"); resolve(sock); });
    sock.once("error", (e) => reject(fail("tcp_failed", "cannot connect to " + address + ":" + port + " (" + (e.code || e.message) + ")")));
  });
}

function upgradeTls(sock, host) {
  return new Promise((resolve, reject) => {
    const opts = { socket: sock, rejectUnauthorized: true };
    if (!net.isIP(host)) opts.servername = host;
    const secure = tls.connect(opts, () => resolve(secure));
    secure.once("error", (e) => reject(fail("tls_failed", "TLS handshake failed (" + (e.code || e.message) + ")")));
  });
}

// -- Redis: RESP over the socket --------------------------------------------------------------
function resp(args) {
  let out = "*" + args.length + "\r\n";
  for (const a of args) out += "$" + Buffer.byteLength(a) + "\r\n" + a + "\r\n";
  return out;
}

async function redisCommand(sock, r, args) {
  sock.write(resp(args));
  const line = await readLine(r);
  if (line.startsWith("$")) {
    const n = Number(line.slice(1));
    if (n >= 0) await r.read(n + 2);
  }
  return line;
}

async function checkRedis(c, u, rung) {
  const secure = u.protocol === "rediss:";
  const host = u.hostname, port = Number(u.port || 6379);
  let sock = await openSocket(c, host, port, rung);
  if (secure) sock = await rung("tls", async () => { const s = await upgradeTls(sock, host); return [s, "TLS " + s.getProtocol()]; });
  const r = reader(sock);
  try {
    const user = decodeURIComponent(u.username), password = decodeURIComponent(u.password);
    if (password) {
      await rung("auth", async () => {
        const line = await redisCommand(sock, r, user ? ["AUTH", user, password] : ["AUTH", password]);
        if (line !== "+OK") throw fail("auth_failed", "the server refused the password: " + line.replace(/^-/, ""));
        return [null, user ? "authenticated as '" + user + "'" : "authenticated"];
      });
    }
    await rung("query", async () => {
      const line = await redisCommand(sock, r, ["PING"]);
      if (line.startsWith("-NOAUTH")) throw fail("auth_required", "the server wants a password (NOAUTH)", "auth");
      if (line !== "+PONG") throw fail("ping_failed", "PING answered " + line);
      return [null, "PING -> PONG"];
    });
  } finally {
    sock.destroy();
  }
}

// -- PostgreSQL: startup, authentication (cleartext, md5, SCRAM-SHA-256), SELECT 1 ------------------
function pgMessage(type, body) {
  const head = Buffer.alloc(type ? 5 : 4);
  if (type) head.write(type, 0);
  head.writeInt32BE(body.length + 4, type ? 1 : 0);
  return Buffer.concat([head, body]);
}

function cstr(s) { return Buffer.concat([Buffer.from(s, "utf8"), Buffer.from([0])]); }

async function pgRead(r) {
  const head = await r.read(5);
  const len = head.readInt32BE(1);
  if (len < 4 || len > 1 << 24) throw fail("protocol", "not a PostgreSQL server (bad message length)");
  return { type: String.fromCharCode(head[0]), body: await r.read(len - 4) };
}

function pgError(body) {
  const fields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const key = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    fields[key] = body.subarray(i + 1, end).toString("utf8");
    i = end + 1;
  }
  const code = fields.C || "";
  const missing = code === "3D000";
  return fail(missing ? "database_missing" : code.startsWith("28") ? "auth_failed" : "server_error",
    (fields.M || "error") + (code ? " (SQLSTATE " + code + ")" : ""), missing ? "database" : "auth");
}

function hmac(key, text) { return crypto.createHmac("sha256", key).update(text).digest(); }

async function pgAuthenticate(sock, r, user, password, database) {
  const params = Buffer.concat([cstr("user"), cstr(user), cstr("database"), cstr(database),
    cstr("application_name"), cstr("authkit-setup-probe"), Buffer.from([0])]);
  const version = Buffer.alloc(4);
  version.writeInt32BE(196608, 0);
  sock.write(pgMessage(null, Buffer.concat([version, params])));
  let scram = null, method = "trust", serverVersion = null;
  for (;;) {
    const m = await pgRead(r);
    if (m.type === "E") throw pgError(m.body);
    if (m.type === "S") {
      const [k, v] = m.body.toString("utf8").split("\0");
      if (k === "server_version") serverVersion = v;
    }
    if (m.type === "Z") return [method, serverVersion];
    if (m.type !== "R") continue;
    const code = m.body.readInt32BE(0);
    if (code === 0) continue;
    if (!password && code !== 0) throw fail("auth_failed", "the server asks for a password and the URL has none");
    if (code === 3) {
      method = "password";
      sock.write(pgMessage("p", cstr(password)));
    } else if (code === 5) {
      method = "md5";
      const inner = crypto.createHash("md5").update(password + user).digest("hex");
      const outer = crypto.createHash("md5").update(Buffer.concat([Buffer.from(inner), m.body.subarray(4, 8)])).digest("hex");
      sock.write(pgMessage("p", cstr("md5" + outer)));
    } else if (code === 10) {
      const mechanisms = m.body.subarray(4).toString("utf8").split("\0");
      if (!mechanisms.includes("SCRAM-SHA-256")) throw fail("auth_unsupported", "the server offers only " + mechanisms.filter(Boolean).join(", "));
      method = "SCRAM-SHA-256";
      const nonce = crypto.randomBytes(18).toString("base64");
      scram = { nonce: nonce, firstBare: "n=,r=" + nonce };
      const first = Buffer.from("n,," + scram.firstBare, "utf8");
      const len = Buffer.alloc(4);
      len.writeInt32BE(first.length, 0);
      sock.write(pgMessage("p", Buffer.concat([cstr("SCRAM-SHA-256"), len, first])));
    } else if (code === 11 && scram) {
      const serverFirst = m.body.subarray(4).toString("utf8");
      const attrs = Object.fromEntries(serverFirst.split(",").map((p) => [p[0], p.slice(2)]));
      if (!attrs.r || !attrs.r.startsWith(scram.nonce)) throw fail("auth_failed", "SCRAM: the server nonce does not extend ours");
      const salted = crypto.pbkdf2Sync(Buffer.from(password.normalize("NFKC"), "utf8"), Buffer.from(attrs.s, "base64"), Number(attrs.i), 32, "sha256");
      const clientKey = hmac(salted, "Client Key");
      const storedKey = crypto.createHash("sha256").update(clientKey).digest();
      const finalBare = "c=biws,r=" + attrs.r;
      scram.authMessage = scram.firstBare + "," + serverFirst + "," + finalBare;
      const signature = hmac(storedKey, scram.authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
      scram.salted = salted;
      sock.write(pgMessage("p", Buffer.from(finalBare + ",p=" + proof.toString("base64"), "utf8")));
    } else if (code === 12 && scram) {
      const v = m.body.subarray(4).toString("utf8").replace(/^v=/, "");
      const expected = hmac(hmac(scram.salted, "Server Key"), scram.authMessage).toString("base64");
      if (v !== expected) throw fail("auth_failed", "SCRAM: the server signature does not match (not the real server?)");
    } else {
      throw fail("auth_unsupported", "authentication request " + code + " is not supported by the probe");
    }
  }
}

async function pgQuery(sock, r) {
  sock.write(pgMessage("Q", cstr("SELECT 1")));
  let value = null;
  for (;;) {
    const m = await pgRead(r);
    if (m.type === "E") { const e = pgError(m.body); e.rung_ = "query"; e.code_ = "query_failed"; throw e; }
    if (m.type === "D") value = m.body.subarray(6).toString("utf8");
    if (m.type === "Z") return value;
  }
}

async function checkPostgres(c, u, rung) {
  const host = u.hostname, port = Number(u.port || 5432);
  const user = decodeURIComponent(u.username), password = decodeURIComponent(u.password);
  const database = decodeURIComponent(u.pathname.replace(/^\//, "")) || user;
  const sslmode = u.searchParams.get("sslmode") || "prefer";
  let sock = await openSocket(c, host, port, rung);
  try {
    if (["require", "verify-ca", "verify-full"].includes(sslmode)) {
      sock = await rung("tls", async () => {
        const request = Buffer.alloc(8);
        request.writeInt32BE(8, 0);
        request.writeInt32BE(80877103, 4);
        sock.write(request);
        const r0 = reader(sock);
        const answer = (await r0.read(1)).toString();
        r0.detach();
        if (answer !== "S") throw fail("tls_refused", "the server does not offer TLS (sslmode=" + sslmode + ")");
        const s = await upgradeTls(sock, host);
        return [s, "TLS " + s.getProtocol()];
      });
    }
    const r = reader(sock);
    let serverVersion = null;
    await rung("auth", async () => {
      const [method, version] = await pgAuthenticate(sock, r, user, password, database);
      serverVersion = version;
      return [null, "logged in as " + user + " to " + database + " (" + method + ")"];
    });
    c.server_version = serverVersion;
    await rung("query", async () => [null, "SELECT 1 -> " + (await pgQuery(sock, r)) + (serverVersion ? ", PostgreSQL " + serverVersion : "")]);
    sock.write(pgMessage("X", Buffer.alloc(0)));
  } finally {
    sock.destroy();
  }
}

async function openSocket(c, host, port, rung) {
  const address = await rung("dns", () => new Promise((resolve, reject) => {
    dns.lookup(host, (err, a) => err
      ? reject(fail("dns_failed", host + " does not resolve from inside the service (" + err.code + ")"))
      : resolve([a, host + " -> " + a]));
  }));
  return rung("tcp", async () => [await connectTcp(address, port), "connected to " + address + ":" + port]);
}

async function check(target) {
  const c = { target: target, variable: VARS[target], ok: false, rungs: [], failed_rung: null, error: null, server_version: null };
  const rung = async (name, fn) => {
    const start = Date.now();
    try {
      const [value, detail] = await withTimeout(Promise.resolve().then(fn), name);
      c.rungs.push({ name: name, ok: true, ms: Date.now() - start, detail: detail });
      return value;
    } catch (e) {
      const failedAt = e.rung_ || name;
      c.rungs.push({ name: failedAt, ok: false, ms: Date.now() - start, detail: e.message });
      c.failed_rung = failedAt;
      c.error = { code: e.code_ || failedAt + "_failed", message: e.message };
      throw STOP;
    }
  };
  try {
    const raw = process.env[VARS[target]];
    const u = await rung("url", () => {
      if (!raw) throw fail("variable_missing", VARS[target] + " is not set in the job environment");
      let parsed;
      try { parsed = new URL(raw); } catch (e) { throw fail("url_invalid", VARS[target] + " is not a valid URL"); }
      const schemes = target === "postgres" ? ["postgres:", "postgresql:"] : ["redis:", "rediss:"];
      if (!schemes.includes(parsed.protocol)) throw fail("url_scheme", VARS[target] + " has scheme " + parsed.protocol + " (want " + schemes.join(" or ") + ")");
      return [parsed, parsed.protocol + "//" + parsed.hostname + (parsed.port ? ":" + parsed.port : "")];
    });
    if (target === "postgres") await checkPostgres(c, u, rung);
    else await checkRedis(c, u, rung);
    c.ok = true;
  } catch (e) {
    if (e !== STOP) {
      c.failed_rung = c.failed_rung || "tcp";
      c.error = c.error || { code: "probe_error", message: String(e && e.message || e) };
    }
  }
  return c;
}

async function main() {
  const checks = [];
  for (const target of TARGETS) {
    if (!VARS[target]) continue;
    checks.push(await check(target));
  }
  const ok = checks.length > 0 && checks.every((c) => c.ok);
  process.stdout.write(JSON.stringify({ authkit_probe: 1, runtime: "node " + process.version, ok: ok, checks: checks }) + "\n", () => process.exit(ok ? 0 : 1));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ authkit_probe: 1, ok: false, checks: [], error: String(e && e.message || e) }) + "\n", () => process.exit(1));
});
