// Persistence test helpers: one server "site" = a temp dir holding a database
// file and a schemas dir, on which the real tutti-server is started, stopped
// (SIGTERM), killed (SIGKILL) and started again. Built on the shared fixture
// tests/lib/server.mjs (each start gets a port of its own, --port 0); every
// server's stderr is kept and checked for sanitizer reports, whatever way it
// ended.
//
//   const site = await Site.create(t, { schemas: [...], history: 100 });
//   await site.start();            // site.url
//   await site.stop();             // SIGTERM: exit 0, clean stderr
//   await site.kill9();            // SIGKILL: clean stderr so far
//   // t.after: anything still running is killed, the dir removed

import { mkdirSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { startServer, runServerToExit, tmpDir, tail, assertNoSanitizer, SANITIZER, SERVER, ROOT } from '../../lib/server.mjs';
import { startNats } from '../../lib/nats.mjs';
import { RawClient, T, E, short } from '../../lib/client.mjs';

export { RawClient, T, E, short, SERVER, ROOT, runServerToExit, tmpDir, tail, assertNoSanitizer, SANITIZER };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Resolve `p` or reject after `ms` with a message naming `what`. */
export async function within(p, ms, what) {
  let timer;
  try {
    return await Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: timeout after ${ms} ms`)), ms); })]);
  } finally { clearTimeout(timer); }
}

export class Site {
  /**
   * @param {import('node:test').TestContext|null} t  cleanup registered on it
   * @param {object} o
   * @param {Array<{class:string, server?:boolean, description:object}>} [o.schemas]
   * @param {number} [o.history] --history
   * @param {number} [o.resumeWindow] --resume-window (default 60)
   * @param {string[]} [o.args] extra arguments for every start
   */
  static async create(t, o = {}) {
    const site = new Site(o);
    if (t) t.after(() => site.destroy());
    // the same suite on NATS JetStream instead of SQLite (tests/tests.cmake
    // registers it again as nats/persistence/...): the site's store of
    // record is a nats-server of its own, which outlives the tutti-servers
    if (process.env.TUTTI_TEST_ENGINE === 'nats') site.nats = await startNats({ dir: join(site.dir, 'nats') });
    return site;
  }

  constructor(o = {}) {
    this.dir = tmpDir('tutti-persist-');
    this.db = join(this.dir, 'tutti.db');
    this.schemasDir = join(this.dir, 'schemas');
    mkdirSync(this.schemasDir);
    (o.schemas || []).forEach((s, i) => writeFileSync(join(this.schemasDir, `${i}-${s.class}.json`), JSON.stringify(s)));
    this.o = o;
    this.srv = null;
    this.runs = [];      // {how, stderr} of every server that ended
    this.clients = new Set();
  }

  get url() { return this.srv.url; }
  get running() { return !!this.srv; }

  args(extra = []) {
    const a = ['--resume-window', String(this.o.resumeWindow ?? 60)];
    if (this.o.history !== undefined) a.push('--history', String(this.o.history));
    if (this.nats) a.push('--engine', this.nats.url);
    return [...a, ...(this.o.args || []), ...extra];
  }

  /** Start the server on the site's database (a fresh port each time). */
  async start({ args = [], startTimeout = 15000 } = {}) {
    assert.equal(this.srv, null, 'a server of this site is already running');
    this.srv = await startServer({ db: this.db, schemasDir: this.schemasDir, args: this.args(args), startTimeout });
    return this.srv;
  }

  /** The running server must not have died by itself. */
  assertAlive(what = 'server') {
    const p = this.srv.proc;
    assert.ok(p.exitCode === null && p.signalCode === null,
      `${what} died by itself (exit ${p.exitCode}, signal ${p.signalCode}):\n${tail(this.srv.stderr())}`);
  }

  /** SIGTERM; asserts exit 0 and no sanitizer report (the shared fixture does). */
  async stop() {
    const srv = this.srv;
    this.assertAlive('server before SIGTERM');
    this.srv = null;
    const r = await srv.stop({ timeout: 10000 });
    this.runs.push({ how: 'stop', stderr: r.stderr });
    return r;
  }

  /** SIGKILL (a crash); asserts it had not died already and no sanitizer report. */
  async kill9() {
    const srv = this.srv;
    this.assertAlive('server before kill -9');
    this.srv = null;
    this.runs.push({ how: 'kill9', stderr: '' });
    await srv.kill9(); // throws on a sanitizer report
    this.runs.at(-1).stderr = srv.stderr();
  }

  /** A connected raw client (no HELLO); closed when the site is destroyed. */
  async connect() {
    const c = await RawClient.connect(this.url);
    this.clients.add(c);
    return c;
  }

  /** Connected + HELLO (new session unless `hello` carries a token). */
  async client(hello = { version: 1 }) {
    const c = await this.connect();
    c.welcome = await c.hello(hello);
    return c;
  }

  async destroy() {
    for (const c of this.clients) { try { c.ws.terminate(); } catch { /* gone */ } }
    this.clients.clear();
    let died = null;
    if (this.srv) {
      const srv = this.srv;
      this.srv = null;
      const p = srv.proc;
      if (p.exitCode !== null || p.signalCode !== null) died = `exit ${p.exitCode}, signal ${p.signalCode}`;
      await srv.kill9().catch(() => {}); // its stderr is checked below, with the others
      this.runs.push({ how: 'destroy', stderr: srv.stderr() });
    }
    if (this.nats) await this.nats.stop();
    rmSync(this.dir, { recursive: true, force: true });
    if (process.env.TUTTI_PERSIST_LOG_DIR) { // debugging: keep every server's stderr
      this.runs.forEach((r, i) => writeFileSync(join(process.env.TUTTI_PERSIST_LOG_DIR, `${process.pid}-${Date.now()}-${i}-${r.how}.log`), r.stderr));
    }
    for (const r of this.runs) assertNoSanitizer(r.stderr, `tutti-server (${r.how})`);
    if (died !== null) assert.fail(`the server died by itself during the test (${died}):\n${tail(this.runs.at(-1).stderr)}`);
  }
}

/** Events of `list` as compact [seq, changes] pairs (for messages). */
/** A new connection that resumes old's session (HELLO with its token and seqs); welcome set. */
export async function resume(site, old, seqs) {
  const c = await site.connect();
  c.welcome = await c.hello({ version: 1, token: old.welcome.token, seqs });
  return c;
}

export function seqsOf(events) { return events.map((e) => e.seq); }

/** Check a list of seqs is exactly from..to, in order, no gap, no duplicate. */
export function assertContiguous(seqs, from, to, what) {
  const want = [];
  for (let s = from; s <= to; s++) want.push(s);
  assert.deepEqual(seqs, want, `${what}: expected seqs ${from}..${to} in order, got ${short(seqs, 1200)}`);
}

export { existsSync };
