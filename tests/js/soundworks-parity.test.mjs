// Where tutti's client behaves as soundworks v5 does (the differences a
// soundworks-style test suite found), each against the real server. The
// soundworks source a case follows is named in it (src/common/SharedState.js,
// ParameterBag.js, BaseStateManager.js of collective-soundworks/soundworks).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Client, TuttiError, ErrorCode } from '../../web/tutti.js';
import { startServer, connect, waitFor, sleep, within } from './helpers.mjs';

const SCHEMAS = {
  global: { class: 'global', server: true, description: { tempo: { type: 'float', default: 120, min: 20, max: 300 } } },
};

const ITEM = {
  bool: { type: 'boolean', default: false },
  int: { type: 'integer', default: 0, min: 0, max: 10 },
  free: { type: 'integer', default: 0 },
  f: { type: 'float', default: 0.5, max: 1 },
  name: { type: 'string', required: true },
  label: { type: 'string', default: 'none' },
  ev: { type: 'integer', event: true },
  imm: { type: 'integer', default: 0, immediate: true },
  loc: { type: 'string', default: 'here', local: true },
  a: { type: 'integer', default: 0, acknowledge: false },
};

let srv;
const clients = [];
async function client(opts) { const c = await connect(srv, opts); clients.push(c); return c; }

before(async () => {
  srv = await startServer({ schemas: SCHEMAS, resumeWindow: 0 });
  const c = await client();
  await c.stateManager.defineClass('item', ITEM);
  await c.stateManager.defineClass('empty-class', { x: { type: 'integer', default: 0 } });
});
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

// ---- init values and defaults (ParameterBag: `initValue`, required -> default)

test('getInitValues(): the values given at create (coerced), defaults for the rest, on the owner and on an attached instance', async () => {
  const a = await client();
  const b = await client();
  const s = await a.stateManager.create('item', { name: 'violin', f: 5, int: 3 });
  const want = { bool: false, int: 3, free: 0, f: 1, name: 'violin', label: 'none', ev: null, imm: 0, loc: 'here', a: 0 };
  assert.deepEqual(s.getInitValues(), want, 'f clipped to its max, as coerced by the server');
  await s.set({ int: 7, label: 'changed' });
  assert.deepEqual(s.getInitValues(), want, 'a set does not change the init values');
  const other = await b.stateManager.attach('item', s.id);
  assert.deepEqual(other.getInitValues(), want, 'an attached instance knows the values the state was created with');
  const filtered = await b.stateManager.attach('item', s.id, ['name', 'int']);
  assert.deepEqual(filtered.getInitValues(), { name: 'violin', int: 3 }, 'restricted to the attach filter');
  // a server-owned state: the defaults
  const g = await a.stateManager.attach('global');
  assert.deepEqual(g.getInitValues(), { tempo: 120 });
  // a copy, not the instance's own object
  s.getInitValues().name = 'cello';
  assert.equal(s.getInitValues().name, 'violin');
});

test('getDefaults() of a `required` param is the value given at create, so set(getDefaults()) works', async () => {
  const a = await client();
  const s = await a.stateManager.create('item', { name: 'flute' });
  await s.set({ name: 'oboe', int: 4 });
  const d = s.getDefaults();
  assert.equal(d.name, 'flute');
  assert.equal(d.int, 0);
  assert.equal(d.ev, null, 'an event param has no default');
  assert.equal(s.getDescription('name').default, 'flute');
  assert.equal(s.getDescription('name').initValue, 'flute');
  assert.equal(s.getDescription('int').initValue, 0);
  await s.set(s.getDefaults()); // NOT_NULLABLE before: the required default was null
  assert.equal(s.get('name'), 'flute');
  assert.equal(s.get('int'), 0);
  // the class description itself keeps the declared default (null)
  assert.equal((await a.stateManager.getClassDescription('item')).name.default, null);
});

// ---- set(): when it resolves and with what (SharedState.js #commit, set)

test('set() resolves after the requester\'s async onUpdate listeners resolved', async () => {
  const a = await client();
  const s = await a.stateManager.create('item', { name: 'x' });
  let done = false, other = false;
  s.onUpdate(async () => { await sleep(100); done = true; });
  s.onUpdate(() => { other = true; });
  const t0 = Date.now();
  const r = await s.set({ int: 1 });
  assert.equal(done, true, 'the async listener had finished');
  assert.equal(other, true);
  assert.ok(Date.now() - t0 >= 90, 'it waited for it');
  assert.deepEqual(r, { int: 1 });
  // a listener that throws is reported, and set() still resolves
  const off = s.onUpdate(async () => { throw new Error('listener failure (expected in this test)'); });
  const orig = console.error;
  console.error = () => {};
  try { assert.deepEqual(await s.set({ int: 2 }), { int: 2 }); } finally { console.error = orig; off(); }
});

test('set() resolves with the applied changes only; a set that changes nothing with the requested (coerced) values', async () => {
  const a = await client();
  const s = await a.stateManager.create('item', { name: 'x' });
  await s.set({ bool: true });
  assert.deepEqual(await s.set({ bool: true, int: 3 }), { int: 3 }, 'bool was already true');
  assert.deepEqual(await s.set({ int: 99 }), { int: 10 }, 'nothing changed (clipped to 10, then again): the requested value, coerced');
  assert.deepEqual(await s.set({ int: 10 }), { int: 10 });
  assert.deepEqual(await s.set({ ev: 1 }), { ev: 1 }, 'an event always applies');
  assert.deepEqual(await s.set({ loc: 'there', int: 4 }), { loc: 'there', int: 4 }, 'local keys join the result');
  assert.deepEqual(await s.set({ loc: 'there', int: 4 }), { loc: 'there', int: 4 }, 'unchanged: the requested values, local ones included');
});

test('set() with acknowledge:false resolves with the value each time, a second identical set too', async () => {
  const a = await client();
  const s = await a.stateManager.create('item', { name: 'x' });
  assert.deepEqual(await s.set({ a: 1 }), { a: 1 });
  assert.deepEqual(await s.set({ a: 1 }), { a: 1 }, 'soundworks: the value, changed or not');
  assert.deepEqual(await s.set({ a: 1, int: 2 }), { a: 1, int: 2 });
});

// ---- getCollection (BaseStateManager#getCollection)

test('getCollection() with an unknown filter key rejects, whether the class has states or not', async () => {
  const a = await client();
  await a.stateManager.create('item', { name: 'x' });
  await assert.rejects(a.stateManager.getCollection('item', ['nope']), (e) => e instanceof TuttiError && e.code === ErrorCode.BAD_FILTER && /nope/.test(e.message));
  await assert.rejects(a.stateManager.getCollection('empty-class', ['nope']), (e) => e.code === ErrorCode.BAD_FILTER);
  await assert.rejects(a.stateManager.getCollection('empty-class', 'x'), TypeError);
  await assert.rejects(a.stateManager.getCollection('no-such-class'), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
  const ok = await a.stateManager.getCollection('empty-class', ['x']);
  assert.equal(ok.size, 0);
  await ok.detach();
});

// ---- unbounded min/max (ParameterBag: min -Infinity, max +Infinity)

test('unbounded min and max are -Infinity and +Infinity, so range checks written for soundworks work', async () => {
  const a = await client();
  const d = await a.stateManager.getClassDescription('item');
  assert.equal(d.free.min, -Infinity);
  assert.equal(d.free.max, Infinity);
  assert.equal(d.f.min, -Infinity);
  assert.equal(d.f.max, 1);
  assert.equal(d.int.min, 0);
  assert.equal(Math.max(d.free.min, -5), -5);
  assert.equal(-5 < d.free.min, false);
  const s = await a.stateManager.create('item', { name: 'x' });
  assert.equal(s.getDescription('free').max, Infinity);
  // values are still clipped where there is a bound, and not where there is none
  assert.deepEqual(await s.set({ free: -1e15, f: 3 }), { free: -1e15, f: 1 });
  // ±Infinity and null spell the same class
  assert.equal(await a.stateManager.defineClass('item', { ...ITEM, free: { type: 'integer', default: 0, min: -Infinity, max: null } }), false);
});

// ---- a scheduled update reports the seq it gets

/** A TCP proxy to the server that delays each chunk by `ms` each way (order kept). */
function delayProxy(port, ms) {
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    for (const s of [down, up]) { s.setNoDelay(true); s.on('error', () => {}); s.on('close', () => { down.destroy(); up.destroy(); }); }
    const pipe = (from, to) => from.on('data', (chunk) => setTimeout(() => { if (!to.destroyed) to.write(chunk); }, ms));
    pipe(down, up);
    pipe(up, down);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('an update fired at its scheduled time reports the seq it gets, not the previous one', async () => {
  // 150 ms each way: the listeners fire at `at` on the clients' clocks,
  // before the server's UPDATE (sent at `at`) can arrive
  const proxy = await delayProxy(srv.port, 150);
  after(() => proxy.close());
  const url = `ws://127.0.0.1:${proxy.address().port}/`;
  const a = await client({ url });
  const b = await client({ url });
  for (const c of [a, b]) await waitFor(() => Number.isFinite(c.syncTravel), { what: 'clock estimate' });
  const sa = await a.stateManager.create('item', { name: 'x' });
  const sb = await b.stateManager.attach('item', sa.id);
  await sa.set({ int: 1 });
  await waitFor(() => sb.seq === sa.seq, { what: 'b caught up' });
  const seen = { a: [], b: [] };
  sa.onUpdate((n, o, ctx) => seen.a.push(ctx));
  sb.onUpdate((n, o, ctx) => seen.b.push(ctx));
  const seq0 = sa.seq;
  const at = a.getSyncTime() + 0.4;
  await sa.set({ int: 2 }, { at });
  await sa.set({ label: 'later' }, { at: at + 0.2 });
  await waitFor(() => seen.a.length === 2 && seen.b.length === 2, { timeout: 10000, what: 'both schedules fired on both' });
  await waitFor(() => sa.seq === seq0 + 2 && sb.seq === seq0 + 2, { timeout: 10000, what: 'the server\'s UPDATEs' });
  for (const [who, ctxs] of Object.entries(seen)) {
    assert.deepEqual(ctxs.map((c) => c.source), ['scheduled', 'scheduled'], `${who}: fired by the local timer at \`at\``);
    assert.deepEqual(ctxs.map((c) => c.seq), [seq0 + 1, seq0 + 2], `${who}: ${JSON.stringify(ctxs)}`);
  }
  // the history agrees
  const h = await sb.getHistory({ last: 2 });
  assert.deepEqual(h.events.map((e) => e.seq), [seq0 + 1, seq0 + 2]);
});

// ---- client.id and observe's third argument (BaseStateManager#observe)

test('client.id is the session; observe gives the creator\'s id, -1 for a server-owned state', async () => {
  const fresh = new Client({ url: srv.url, WebSocket });
  clients.push(fresh);
  assert.equal(fresh.id, null, 'no id before the first connection');
  const a = await client();
  const b = await client();
  assert.equal(a.id, a.session);
  assert.ok(Number.isInteger(a.id) && a.id > 0);
  assert.notEqual(a.id, b.id);
  const mine = await a.stateManager.create('item', { name: 'mine' });
  const seen = new Map();
  const unobserve = await b.stateManager.observe((className, stateId, nodeId) => { seen.set(stateId, nodeId); });
  const g = await b.stateManager.attach('global');
  assert.equal(seen.get(mine.id), a.id);
  assert.equal(seen.get(g.id), -1, 'the server\'s own state');
  const later = await a.stateManager.create('item', { name: 'later' });
  await waitFor(() => seen.has(later.id), { what: 'notice' });
  assert.equal(seen.get(later.id), a.id);
  assert.equal(mine.ownerSession, a.session, 'tutti\'s name stays');
  await unobserve();
});

// ---- start() / stop(), a bounded reconnect policy, a process that can end

test('start() and stop() are promises beside connect() and close()', async () => {
  const c = new Client({ url: srv.url, WebSocket });
  assert.equal(await c.start(), undefined);
  assert.equal(c.status, 'open');
  const s = await c.stateManager.create('item', { name: 'x' });
  let detached = false;
  s.onDetach(() => { detached = true; });
  const stopped = c.stop();
  assert.ok(stopped instanceof Promise);
  await within(stopped, 3000, 'stop()');
  assert.equal(c.status, 'closed');
  await c.stop(); // twice is fine
  await assert.rejects(c.stateManager.create('item', { name: 'y' }), (e) => e.code === ErrorCode.CLOSED);
  assert.equal(detached, false, 'stop() is not a delete: the server deletes the states when the session ends');
});

const WS_URL = import.meta.resolve('ws');
const TUTTI_URL = new URL('../../web/tutti.js', import.meta.url).href;

/**
 * Run a Node script (ESM) in a child process. Returns a promise of
 * {code, out, ms, timedOut}, with out() (the output so far) on it.
 */
function runNode(body, { timeout = 30000 } = {}) {
  const src = `import WebSocket from ${JSON.stringify(WS_URL)};\nimport { Client } from ${JSON.stringify(TUTTI_URL)};\n${body}`;
  let out = '';
  const p = new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', src], { cwd: fileURLToPath(new URL('.', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
    let timedOut = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const t = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeout);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, out, ms: Date.now() - t0, timedOut }); });
  });
  p.out = () => out;
  return p;
}

test('after stop() a Node process ends by itself: no timer of the client is left', async () => {
  const r = await runNode(`
    const c = new Client({ url: ${JSON.stringify(srv.url)}, WebSocket });
    await c.start();
    const s = await c.stateManager.create('item', { name: 'x' });
    await new Promise((r) => setTimeout(r, 300)); // pings, the clock estimator
    await s.set({ int: 1 }, { at: c.getSyncTime() + 3600 }); // a schedule an hour ahead
    await c.stop();
    console.log('stopped');
  `);
  assert.equal(r.timedOut, false, `the process did not end: ${r.out}`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /stopped/);
  assert.ok(r.ms < 15000, `ended ${r.ms} ms after start`);
});

test('maxReconnectAttempts: when the server goes away for good, the client gives up and the process ends', async () => {
  const own = await startServer({ schemas: SCHEMAS, resumeWindow: 0 });
  let stopped = false;
  try {
    const child = runNode(`
      const c = new Client({ url: ${JSON.stringify(own.url)}, WebSocket, maxReconnectAttempts: 3, backoffMin: 50, backoffMax: 200 });
      c.on('giveup', ({ attempts }) => console.log('giveup', attempts, c.status));
      await c.start();
      const g = await c.stateManager.attach('global');
      g.onDetach(() => {});
      console.log('connected');
      await new Promise(() => {}); // nothing else keeps the process: the client must let it end
    `);
    // the child connects, then the server goes away
    await waitFor(() => child.out().includes('connected'), { timeout: 20000, what: 'the child connected' });
    await own.stop();
    stopped = true;
    const r = await child;
    assert.equal(r.timedOut, false, `the process did not end: ${r.out}`);
    assert.match(r.out, /connected/);
    assert.match(r.out, /giveup 3 closed/);
  } finally {
    if (!stopped) await own.stop();
  }
  // the same bound through reconnect: { maxAttempts }
  const c = new Client({ url: 'ws://127.0.0.1:1/', WebSocket, reconnect: { maxAttempts: 1, backoffMin: 20 }, connectTimeout: 0 });
  await assert.rejects(within(c.connect(), 5000, 'connect'), (e) => e.code === ErrorCode.DISCONNECTED && /1 attempt/.test(e.message));
  assert.equal(c.status, 'closed');
});

test('connect() to a server that is not running rejects within the default timeout, and the process ends', async () => {
  const r = await runNode(`
    const c = new Client({ url: 'ws://127.0.0.1:1/', WebSocket });
    const t0 = Date.now();
    try { await c.connect(); console.log('connected?'); } catch (err) { console.log('rejected', err.codeName, Date.now() - t0); }
  `, { timeout: 40000 });
  assert.equal(r.timedOut, false, `the process did not end: ${r.out}`);
  const m = /rejected (\w+) (\d+)/.exec(r.out);
  assert.ok(m, r.out);
  assert.equal(m[1], 'TIMEOUT');
  assert.ok(Number(m[2]) >= 9000 && Number(m[2]) < 20000, `after ${m[2]} ms`);
});
