// The one server fixture of every Node suite: starts the real tutti-server
// with `--port 0` (the kernel picks the port, the server's log line names
// it, so no other process can take it in between), stops it with SIGTERM and
// fails on a non-zero exit or a sanitizer report.
//
//   import { startServer } from '../lib/server.mjs';
//   const srv = await startServer({ schemas: [{ class, server, description }], resumeWindow: 0 });
//   ... srv.url (ws://127.0.0.1:PORT/), srv.httpUrl (http://127.0.0.1:PORT/)
//   await srv.stop();   // SIGTERM; throws on exit != 0, a signal, or a sanitizer report
//
// Env: TUTTI_SERVER (the tutti-server binary; default $TUTTI_ROOT/build/tutti-server),
// TUTTI_ROOT (the repo root; default two levels above this file).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(process.env.TUTTI_ROOT || join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
export const SERVER = resolve(process.env.TUTTI_SERVER || join(ROOT, 'build', 'tutti-server'));

/** What ASan, LSan, UBSan, TSan and MSan print: any of it on stderr fails the test. */
export const SANITIZER = /AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer|MemorySanitizer/;

/** The server's start-up log line, e.g. "listening on http://127.0.0.1:41234 (web ...". */
const LISTENING = /listening on (https?):\/\/\S+:(\d+) /;
/** The same port in the start banner on stdout (the log line is not there with -q). */
const BANNER = /^ {2}(https?):\/\/[^\s/]+:(\d+)\/$/m;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The last n characters of s (for messages). */
export function tail(s, n = 4000) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

/** Throw when stderr holds a sanitizer report. */
export function assertNoSanitizer(stderr, what = 'tutti-server') {
  if (SANITIZER.test(stderr)) throw new Error(`${what} reported a sanitizer error:\n${tail(stderr, 8000)}`);
}

/** True when the server binary exists (tests may skip themselves otherwise). */
export function serverAvailable() { return existsSync(SERVER); }

// Temporary directories made here are removed when the test process ends,
// whatever way the test ended (a killed server's schemas may be reused by a
// restart until then).
const temps = new Set();
process.on('exit', () => { for (const d of temps) rmSync(d, { recursive: true, force: true }); });

/** A fresh temporary directory, removed when the process exits. */
export function tmpDir(prefix = 'tutti-test-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.add(d);
  return d;
}

/**
 * Write schema files into dir (created if missing). `schemas` is either
 * - an array of `{class, server, description}` (written as NN-<class>.json,
 *   in order) or of `{file, content}` raw files, or
 * - an object `{fileName: body}` (".json" appended when missing; a string
 *   body is written as it is).
 */
export function writeSchemas(dir, schemas = []) {
  mkdirSync(dir, { recursive: true });
  if (Array.isArray(schemas)) {
    schemas.forEach((s, i) => {
      if (s.file) writeFileSync(join(dir, s.file), s.content);
      else writeFileSync(join(dir, `${String(i).padStart(2, '0')}-${s.class}.json`), JSON.stringify(s, null, 2));
    });
  } else {
    for (const [name, body] of Object.entries(schemas)) {
      writeFileSync(join(dir, name.endsWith('.json') ? name : `${name}.json`), typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    }
  }
  return dir;
}

/** Write {relPath: content} under dir. */
function writeFiles(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

/**
 * HTTP(S) GET with a bounded time. Resolves {status, headers, body (Buffer)}.
 * https: `ca` (PEM) to trust; without it any certificate is taken (the
 * server's own, made by --https).
 */
export function httpGet(url, { timeout = 5000, headers = {}, ca } = {}) {
  return new Promise((res, rej) => {
    const get = url.startsWith('https:') ? httpsRequest : request;
    const tls = url.startsWith('https:') ? (ca ? { ca } : { rejectUnauthorized: false }) : {};
    const req = get(url, { headers, timeout, ...tls }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', rej);
    req.end();
  });
}

// libnats's own stray message at a stop (see the file)
const NATS_LSAN = `suppressions=${join(ROOT, 'tests', 'lsan-nats.supp')}:print_suppressions=0`;

function spawnServer(args, env, server = SERVER) {
  if (!existsSync(server)) throw new Error(`tutti-server not found at ${server} (set TUTTI_SERVER)`);
  const lsan = args.includes('--engine')
    ? { LSAN_OPTIONS: [process.env.LSAN_OPTIONS, NATS_LSAN].filter(Boolean).join(':') } : {};
  return spawn(server, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ASAN_OPTIONS: 'detect_leaks=1', ...process.env, ...lsan, ...env } });
}

/**
 * Run the binary to completion (--help, a refused start, --delete-class...).
 * Killed after `timeout` ms. Resolves {code, signal, stdout, stderr, ms, timedOut}.
 */
export function runServerToExit(args, { timeout = 10000, env = {}, server } = {}) {
  return new Promise((res) => {
    const t0 = Date.now();
    const child = spawnServer(args, env, server);
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeout);
    child.on('error', (err) => { stderr += `\nspawn error: ${err.message}`; });
    // 'close' comes after the pipes drained: nothing of stderr is lost
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
}

async function healthy(port, timeout, scheme = 'http') {
  try {
    return (await httpGet(`${scheme}://127.0.0.1:${port}/healthz`, { timeout })).status === 200;
  } catch { return false; }
}

/**
 * Start tutti-server. Every option is the server's default unless given:
 * a test that depends on one (the resume window above all) says so.
 * @param {object} [opts]
 * @param {string} [opts.schemasDir] an existing schemas directory
 * @param {Array|Object} [opts.schemas] schema files for a fresh directory (see writeSchemas);
 *   without schemas or schemasDir: the repo's schemas/
 * @param {string} [opts.webDir] an existing web directory
 * @param {Object<string,string>} [opts.webFiles] {relPath: content} for a fresh web directory;
 *   without webFiles or webDir: the repo's web/
 * @param {string} [opts.db] default ':memory:'
 * @param {number} [opts.port] only to restart on the port of an earlier server (default 0: the kernel picks)
 * @param {number} [opts.resumeWindow] seconds (--resume-window; the server's default is 60)
 * @param {number} [opts.history] (--history)
 * @param {number} [opts.maxMessage] bytes (--max-message)
 * @param {boolean} [opts.secure] the server's security defaults as they are: the
 *   default role's rights checked and the per-address limits on. Without it the
 *   fixture starts the server as a laptop ensemble would: --open (every client
 *   trusted) and no per-address limits (every test client comes from 127.0.0.1);
 *   tests/security/ uses secure: true
 * @param {string[]} [opts.args] more arguments (they come last, so they win)
 * @param {string} [opts.server] another tutti-server binary (an installed one)
 * @param {string[]} [opts.rawArgs] exactly these arguments, none of the above
 *   (a piece folder, a config file: the test gives the port, 0 for any)
 * @param {object} [opts.env] more environment
 * @param {number} [opts.startTimeout=15000] ms until the server must answer /healthz
 */
export async function startServer(opts = {}) {
  // TUTTI_TEST_CLUSTER=N: the same suite against N nodes on one engine
  if (Number(process.env.TUTTI_TEST_CLUSTER) > 1 && !opts.single && !opts.rawArgs && !opts.server) {
    return startClusterAsOne(opts, Number(process.env.TUTTI_TEST_CLUSTER));
  }
  let schemasDir = opts.schemasDir;
  if (!schemasDir) schemasDir = opts.schemas ? writeSchemas(tmpDir('tutti-schemas-'), opts.schemas) : join(ROOT, 'schemas');
  let webDir = opts.webDir;
  if (!webDir) webDir = opts.webFiles ? writeFiles(tmpDir('tutti-web-'), opts.webFiles) : join(ROOT, 'web');

  let args = ['--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--schemas', schemasDir, '--web', webDir,
    '--db', opts.db ?? ':memory:'];
  if (opts.resumeWindow !== undefined) args.push('--resume-window', String(opts.resumeWindow));
  if (opts.history !== undefined) args.push('--history', String(opts.history));
  if (opts.maxMessage !== undefined) args.push('--max-message', String(opts.maxMessage));
  if (!opts.secure) args.push('--open', '--max-conns-per-addr', '0', '--max-new-sessions-per-addr', '0');
  if (opts.args) args.push(...opts.args);
  if (opts.rawArgs) args = opts.rawArgs;

  const proc = spawnServer(args, opts.env || {}, opts.server);
  let stderr = '', stdout = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.on('error', (err) => { stderr += `\nspawn error: ${err.message}`; });
  let exited = null;
  const exitP = new Promise((res) => proc.on('close', (code, signal) => { exited = { code, signal }; res(exited); }));

  const deadline = Date.now() + (opts.startTimeout ?? 15000);
  let port = 0, ok = false, scheme = 'http';
  while (Date.now() < deadline && !exited) {
    if (!port) {
      const m = LISTENING.exec(stderr) || BANNER.exec(stdout);
      if (!m) { await sleep(20); continue; }
      scheme = m[1];
      port = Number(m[2]);
    }
    if (await healthy(port, 1000, scheme)) { ok = true; break; }
    await sleep(50);
  }
  if (!ok) {
    if (!exited) { proc.kill('SIGKILL'); await exitP; }
    throw new Error(`tutti-server did not become healthy (port ${port || 'not logged'}, exit ${JSON.stringify(exited)})\n` +
      `args: ${args.join(' ')}\nstderr:\n${tail(stderr)}`);
  }

  let stopped = false;
  return {
    port, args, proc, schemasDir, webDir,
    url: `${scheme === 'https' ? 'wss' : 'ws'}://127.0.0.1:${port}/`,
    httpUrl: `${scheme}://127.0.0.1:${port}/`,
    /** "https" when the server serves TLS (--https, --tls-cert). */
    scheme,
    stderr: () => stderr,
    stdout: () => stdout,
    /** null while running, else {code, signal}. */
    exited: () => exited,
    /**
     * SIGTERM and wait (SIGKILL after `timeout` ms). Unless allowFail, throws
     * when the server had died by itself, did not exit in time, exited with a
     * signal or a code other than 0, or printed a sanitizer report.
     * Resolves {code, signal, stderr, timedOut}.
     */
    async stop({ timeout = 10000, allowFail = false } = {}) {
      if (stopped) return { ...exited, stderr, timedOut: false };
      stopped = true;
      const diedBefore = exited;
      if (!exited) proc.kill('SIGTERM');
      let timedOut = false;
      const t = setTimeout(() => { if (!exited) { timedOut = true; proc.kill('SIGKILL'); } }, timeout);
      const { code, signal } = await exitP;
      clearTimeout(t);
      if (!allowFail) {
        assertNoSanitizer(stderr);
        const how = code === null ? `signal ${signal}` : `code ${code}`;
        if (diedBefore) throw new Error(`tutti-server died during the test (${how}):\n${tail(stderr)}`);
        if (timedOut) throw new Error(`tutti-server did not exit within ${timeout} ms of SIGTERM:\n${tail(stderr)}`);
        if (code !== 0) throw new Error(`tutti-server exited with ${how} on SIGTERM:\n${tail(stderr)}`);
      }
      return { code, signal, stderr, timedOut };
    },
    /** SIGKILL (a crash). Checks nothing but the sanitizer: a report before the kill is still a bug. */
    async kill9() {
      if (!exited) proc.kill('SIGKILL');
      await exitP;
      stopped = true;
      assertNoSanitizer(stderr);
      return exited;
    },
  };
}

/**
 * N nodes on one nats-server standing for one server (TUTTI_TEST_CLUSTER=N):
 * `url` names the nodes in turn (each client of a suite connects to the next
 * one), `httpUrl` and `port` are the first node's; stop() stops them all
 * (each must exit 0 with no sanitizer report), kill9() kills them all.
 */
// the nats-servers of the clusters: stopped when the test process ends (a
// server "restarted" by a test comes back on the same piece)
const natsServers = new Set();
process.on('exit', () => { for (const n of natsServers) n.proc.kill('SIGKILL'); });
const clusterPorts = new Map(); // first node's port -> every node's
const clusterNats = new Map();  // first node's port -> its nats-server (a restart keeps the piece)

async function startClusterAsOne(opts, n) {
  const { startNats } = await import('./nats.mjs');
  const nats = (opts.port && clusterNats.get(opts.port)) || await startNats();
  let schemasDir = opts.schemasDir;
  if (!schemasDir) schemasDir = opts.schemas ? writeSchemas(tmpDir('tutti-schemas-'), opts.schemas) : join(ROOT, 'schemas');
  let webDir = opts.webDir;
  if (!webDir) webDir = opts.webFiles ? writeFiles(tmpDir('tutti-web-'), opts.webFiles) : join(ROOT, 'web');
  const nodes = [];
  // a restart on the first node's port (a test that restarts "the server"):
  // every node comes back on its own port
  const ports = opts.port ? clusterPorts.get(opts.port) : null;
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startServer({ ...opts, schemasDir, webDir, single: true, port: ports ? ports[i] : (i === 0 ? (opts.port ?? 0) : 0),
        args: [...(opts.args || []), '--engine', `${nats.url}/piece`, '--node-id', String(i + 1)] }));
    }
    clusterPorts.set(nodes[0].port, nodes.map((s) => s.port));
    clusterNats.set(nodes[0].port, nats);
  } catch (e) {
    for (const srv of nodes) await srv.kill9().catch(() => {});
    throw e;
  }
  // the nats-server must not keep the test process alive (it is killed
  // when the process exits)
  if (!natsServers.has(nats)) {
    natsServers.add(nats);
    nats.proc.unref();
    nats.proc.stdout.unref();
    nats.proc.stderr.unref();
  }
  let next = 0;
  const first = nodes[0];
  return {
    nodes, nats,
    port: first.port, args: first.args, proc: first.proc, schemasDir, webDir, scheme: first.scheme,
    get url() { return nodes[next++ % n].url; },
    httpUrl: first.httpUrl,
    stderr: () => nodes.map((s, i) => `--- node ${i + 1}\n${s.stderr()}`).join('\n'),
    stdout: () => nodes.map((s) => s.stdout()).join('\n'),
    exited: () => nodes.find((s) => s.exited())?.exited() ?? null,
    async stop(o = {}) {
      let r = null, err = null;
      for (const srv of nodes) {
        try { const x = await srv.stop(o); r = r ?? x; } catch (e) { err = err ?? e; }
      }
      if (err) throw err;
      return r;
    },
    async kill9() {
      let r = null;
      for (const srv of nodes) { const x = await srv.kill9(); r = r ?? x; }
      return r;
    },
  };
}
