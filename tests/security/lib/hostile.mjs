// Shared by the security regression tests: the server's security defaults
// (startServer({secure: true})), roles.json written beside the schemas, the
// role tokens the server prints, clients from other loopback addresses (the
// per-address limits see 127.0.0.2 as another phone), and what the server
// process costs: its memory (/proc/PID/status) and CPU time (/proc/PID/stat).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, tmpDir, writeSchemas } from '../../lib/server.mjs';
import { RawClient, T, E, VERSION } from '../../lib/client.mjs';

export { RawClient, T, E, VERSION };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A schemas directory holding `schemas` (see writeSchemas) and, when given,
 * roles.json with `roles`.
 */
export function schemasDir(schemas, roles = null) {
  const dir = writeSchemas(tmpDir('tutti-sec-schemas-'), schemas);
  if (roles) writeSchemas(dir, { roles });
  return dir;
}

/**
 * The server with its security defaults (no --open, per-address limits on).
 * `schemas` and `roles` make a fresh schemas directory; without either, the
 * repo's schemas/ (the demo, its rights and roles). ASan's quarantine of freed
 * memory is kept small, so that the RSS a test reads is what the server holds,
 * not what the sanitizer keeps aside.
 */
export async function secureServer({ schemas, roles, ...opts } = {}) {
  const env = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? 'detect_leaks=1'}:quarantine_size_mb=16`, ...(opts.env || {}) };
  const o = { secure: true, ...opts, env };
  if (schemas || roles) o.schemasDir = schemasDir(schemas || [], roles);
  return startServer(o);
}

/**
 * The token the server printed at start for `role`
 * ("role conductor: http://.../conductor.html#role=conductor&token=HEX").
 */
export function printedToken(srv, role) {
  const m = new RegExp(`role ${role}( \\(admin\\))?: \\S*#role=${role}&token=([0-9a-f]+)`).exec(srv.stdout());
  assert.ok(m, `the server printed no token for role ${role}:\n${srv.stdout()}`);
  return m[2];
}

/**
 * A connected client (HELLO done unless hello is null), from `from` (a
 * loopback address such as 127.0.0.2: another phone for the per-address
 * limits), put in `clients` when given (see withServer, closeAll).
 */
export async function phone(srv, { hello = { version: VERSION }, from, headers, clients } = {}) {
  const wsOptions = {};
  if (from) wsOptions.localAddress = from;
  if (headers) wsOptions.headers = headers;
  const c = await RawClient.connect(srv.url, { wsOptions });
  if (clients) clients.push(c);
  if (hello) c.welcome = await c.hello(hello);
  return c;
}

export async function closeAll(clients) {
  await Promise.all(clients.splice(0).map((c) => c.close()));
}

/** A client of `role` with its token. */
export function asRole(srv, role, token, opts = {}) {
  return phone(srv, { ...opts, hello: { version: VERSION, role, roleToken: token } });
}

/** The server's sync time now, in seconds (the send time of a PONG). */
export async function serverNow(c) {
  return (await c.ping())[4];
}

/** The server process's memory, in bytes: {rss, hwm} (VmRSS and its peak VmHWM). */
export function memory(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU seconds the process has used (user + system), from /proc/PID/stat. */
export function cpuSeconds(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the fields after the command name (which may hold spaces) in parentheses
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

export const MiB = 1 << 20;

/**
 * Ping `c` every `every` ms until stopped; `stop()` gives {max, n}: the
 * largest round trip in ms (a ping still unanswered at the stop counts as
 * long as it has waited) and the number of answered pings.
 */
export function pingWatch(c, every = 50) {
  let max = 0, n = 0, running = true, since = null;
  (async () => {
    while (running) {
      since = Date.now();
      try { await c.ping(600000); } catch { return; } // closed: stop() reports the wait
      max = Math.max(max, Date.now() - since);
      since = null;
      n++;
      await sleep(every);
    }
  })();
  return {
    stop() {
      running = false;
      if (since !== null) max = Math.max(max, Date.now() - since);
      return { max, n };
    },
  };
}

/** One msgpack str of n bytes of 'x' with a distinct prefix (so every set changes it). */
export function bigString(n, tag = '') {
  const head = `${tag}:`;
  return head + 'x'.repeat(Math.max(0, n - head.length));
}

/** Resolve `p`, or reject after `ms` naming `what` (a finding may be a hang). */
export async function within(p, ms, what) {
  let timer;
  try {
    return await Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms); })]);
  } finally { clearTimeout(timer); }
}

/** The close {code, reason} of raw client c, within ms. */
export function closedWithin(c, ms = 5000, what = 'the close of the connection') {
  return within(c.closed, ms, what);
}

/**
 * fn(srv, clients) against secureServer(opts); the clients fn puts in
 * `clients` must then have received well-formed messages only; all are
 * closed and the server stopped (exit 0, no sanitizer report), whatever
 * fn did.
 */
export async function withServer(opts, fn) {
  const srv = await secureServer(opts);
  const clients = [];
  try {
    await fn(srv, clients);
    for (const c of clients) c.assertWellFormed();
  } finally {
    // the server stops with its clients connected, as at a restart: their
    // sessions wait for a resume (a goodbye from each would end them)
    try { await srv.stop(); } finally { for (const c of clients.splice(0)) c.terminate(); }
  }
}
