// Hooks (PROTOCOL.md §8a) end to end from Node: a piece's server logic in
// web/server.js (soundworks' names) or a Client with the admin role, and
// players as ordinary clients, against the real tutti-server. Hook rights:
// the admin role (its token is printed at start) or "hooks": true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { Client, ErrorCode } from '../../web/tutti.js';
import { Server } from '../../web/server.js';
import { startServer, connect, waitFor, sleep, within } from './helpers.mjs';

const SCHEMAS = {
  tempo: { class: 'tempo', server: true, description: { bpm: { type: 'float', default: 120 }, beats: { type: 'integer', default: 0 } } },
};

/** The admin token tutti-server printed at start. */
function adminToken(srv) {
  const m = /role admin \(admin\): \S*#role=admin&token=([0-9a-f]+)/.exec(srv.stdout());
  assert.ok(m, `no admin token in the server's start banner:\n${srv.stdout().slice(-2000)}`);
  return m[1];
}

let srv, token;
const clients = [];
async function client(opts) { const c = await connect(srv, opts); clients.push(c); return c; }
async function admin(opts) { return client({ role: 'admin', token, ...opts }); }
/** A Server of web/server.js, started; stopped after the suite. */
async function piece(setup, s = srv, tok = token) {
  const server = new Server({ url: s.url, token: tok, WebSocket, requestTimeout: 10000 });
  clients.push(server.client);
  if (setup) await setup(server.stateManager);
  await server.start();
  return server;
}
let nextClass = 0;
const unique = (name) => `${name}-${++nextClass}`;

before(async () => {
  srv = await startServer({ schemas: SCHEMAS, resumeWindow: 0 });
  token = adminToken(srv);
});
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

const SCALE = [60, 62, 64, 65, 67, 69, 71, 72];
const NOTE = {
  pitch: { type: 'integer', default: 60 },
  velocity: { type: 'float', default: 0.5, min: 0, max: 1 },
  count: { type: 'integer', default: 0 },
  label: { type: 'string', default: '' },
};

test('an update hook changes the update: the requester gets the changed values, everyone sees them', async () => {
  const cls = unique('note');
  const server = await piece((sm) => {
    sm.defineClass(cls, NOTE);
    // quantise the velocity to tenths
    sm.registerUpdateHook(cls, (updates) => ('velocity' in updates ? { ...updates, velocity: Math.round(updates.velocity * 10) / 10 } : undefined));
  });
  const a = await client();
  const b = await client();
  const s = await a.stateManager.create(cls);
  const peer = await b.stateManager.attach(cls, s.id);
  const seen = [];
  peer.onUpdate((n) => seen.push(n));
  assert.deepEqual(await s.set({ velocity: 0.7312 }), { velocity: 0.7 });
  assert.equal(s.get('velocity'), 0.7);
  await waitFor(() => seen.length === 1, { what: 'peer update' });
  assert.deepEqual(seen[0], { velocity: 0.7 });
  assert.deepEqual(await s.set({ label: 'x' }), { label: 'x' }, 'undefined: unchanged');
  await server.stop();
});

test('an update hook adds keys; a hook-added key needs no right of the requester and is in its result', async () => {
  const cls = unique('note');
  await piece((sm) => {
    sm.defineClass(cls, NOTE);
    sm.registerUpdateHook(cls, (updates, current) => ({ ...updates, count: current.count + 1 }));
  });
  const a = await client();
  const s = await a.stateManager.create(cls);
  assert.deepEqual(await s.set({ pitch: 62 }), { pitch: 62, count: 1 });
  assert.deepEqual(await s.set({ pitch: 64 }), { pitch: 64, count: 2 });
  assert.equal(s.get('count'), 2);
  // a set that the hook turns into nothing new still counts
  assert.deepEqual(await s.set({ pitch: 64 }), { count: 3 });
});

test('abort: null, or a throw with its reason: the set rejects ABORTED and nothing is applied or sent', async () => {
  const cls = unique('note');
  await piece((sm) => {
    sm.defineClass(cls, NOTE);
    sm.registerUpdateHook(cls, (updates) => {
      if ('pitch' in updates && !SCALE.includes(updates.pitch)) throw new Error(`pitch ${updates.pitch} is not in the scale`);
      if (updates.label === 'refuse') return null;
      return undefined;
    });
  });
  const a = await client();
  const b = await client();
  const s = await a.stateManager.create(cls);
  const peer = await b.stateManager.attach(cls, s.id);
  let peerCalls = 0;
  peer.onUpdate(() => { peerCalls++; });
  const seq = s.seq;
  await assert.rejects(s.set({ pitch: 61 }), (e) => e.code === ErrorCode.ABORTED && e.codeName === 'ABORTED' && /pitch 61 is not in the scale/.test(e.message));
  await assert.rejects(s.set({ label: 'refuse', pitch: 62 }), (e) => e.code === ErrorCode.ABORTED);
  assert.equal(s.get('pitch'), 60);
  assert.equal(s.get('label'), '');
  assert.equal(s.seq, seq);
  await s.set({ pitch: 67 });
  await waitFor(() => peer.get('pitch') === 67, { what: 'the next set' });
  assert.equal(peerCalls, 1, 'the peer saw only the applied set');
  assert.equal(peer.seq, seq + 1, 'no seq was used by the aborted sets');
});

test('async hooks, and several hooks run in registration order, across hook clients', async () => {
  const cls = unique('note');
  const order = [];
  await piece((sm) => {
    sm.defineClass(cls, NOTE);
    sm.registerUpdateHook(cls, async (u) => { order.push('first'); await sleep(30); return { ...u, pitch: u.pitch + 1 }; });
    sm.registerUpdateHook(cls, (u) => { order.push('second'); return { ...u, pitch: u.pitch * 2 }; });
  });
  // a third hook, in another connection, registered after
  const other = await admin();
  const off = other.stateManager.registerUpdateHook(cls, async (u, current, info) => {
    order.push('third');
    assert.equal(info.className, cls);
    assert.equal(typeof info.stateId, 'number');
    await sleep(10);
    return { ...u, label: `from ${current.pitch}` };
  });
  await off.ready;
  const a = await client();
  const s = await a.stateManager.create(cls);
  assert.deepEqual(await s.set({ pitch: 10 }), { pitch: 22, label: 'from 60' });
  assert.deepEqual(order, ['first', 'second', 'third']);
  off();
  await sleep(50); // the UNHOOK
  order.length = 0;
  assert.deepEqual(await s.set({ pitch: 1 }), { pitch: 4 });
  assert.deepEqual(order, ['first', 'second']);
});

test('a scheduled set goes through the hooks when it is made, not when it fires', async () => {
  const cls = unique('note');
  let calls = 0;
  await piece((sm) => {
    sm.defineClass(cls, NOTE);
    sm.registerUpdateHook(cls, (u) => { calls++; return { ...u, label: 'hooked' }; });
  });
  const a = await client();
  await waitFor(() => Number.isFinite(a.syncTravel), { what: 'clock estimate' });
  const s = await a.stateManager.create(cls);
  const at = a.getSyncTime() + 0.5;
  const r = await s.set({ pitch: 64 }, { at });
  assert.equal(calls, 1, 'hooked when made');
  assert.deepEqual({ ...r }, { pitch: 64, label: 'hooked' });
  await waitFor(() => s.get('label') === 'hooked' && s.get('pitch') === 64, { timeout: 5000, what: 'applied at `at`' });
  assert.equal(calls, 1, 'not again when it fires');
});

test('create hooks: change the init values, or abort the create', async () => {
  const cls = unique('player');
  await piece((sm) => {
    sm.defineClass(cls, { name: { type: 'string', required: true }, group: { type: 'string', default: 'none' }, ready: { type: 'boolean', default: false } });
    sm.registerCreateHook(cls, async (init, info) => {
      assert.equal(info.stateId, null, 'no state yet');
      // as in soundworks, the hook runs before the required check: it may
      // give a required param
      if (init.name === undefined) return init.group === 'anon' ? { ...init, name: 'anonymous' } : undefined;
      if (init.name === 'intruder') return null;
      if (init.name === 'bad') throw new Error('no such player');
      return { ...init, group: init.name.startsWith('v') ? 'strings' : 'winds' };
    });
  });
  const a = await client();
  const s = await a.stateManager.create(cls, { name: 'violin' });
  assert.equal(s.get('group'), 'strings');
  assert.deepEqual(s.getInitValues(), { name: 'violin', group: 'strings', ready: false }, 'the init values are the hooked ones');
  await assert.rejects(a.stateManager.create(cls, { name: 'intruder' }), (e) => e.code === ErrorCode.ABORTED);
  await assert.rejects(a.stateManager.create(cls, { name: 'bad' }), (e) => e.code === ErrorCode.ABORTED && /no such player/.test(e.message));
  const anon = await a.stateManager.create(cls, { group: 'anon' });
  assert.equal(anon.get('name'), 'anonymous');
  // still missing after the hooks: refused
  await assert.rejects(a.stateManager.create(cls, {}), (e) => e.code === ErrorCode.REQUIRED);
  // a value of the wrong type is refused before any hook runs
  await assert.rejects(a.stateManager.create(cls, { name: 3 }), (e) => e.code === ErrorCode.BAD_VALUE);
  const coll = await a.stateManager.getCollection(cls);
  assert.equal(coll.size, 2, 'the aborted and refused creates made no state');
  await coll.detach();
});

test('delete hooks see the final values, cannot prevent the delete, and an explicit delete waits for them', async () => {
  const cls = unique('player');
  const finals = [];
  await piece((sm) => {
    sm.defineClass(cls, { name: { type: 'string', default: '' }, score: { type: 'integer', default: 0 } });
    sm.registerDeleteHook(cls, async (values, info) => {
      await sleep(50);
      finals.push({ ...values, id: info.stateId });
      return null; // cannot stop it
    });
  });
  const a = await client();
  const b = await client();
  const s = await a.stateManager.create(cls, { name: 'kept' });
  await s.set({ score: 42 });
  const peer = await b.stateManager.attach(cls, s.id);
  let detached = null;
  peer.onDetach((reason) => { detached = reason; });
  await s.delete();
  assert.deepEqual(finals, [{ name: 'kept', score: 42, id: s.id }], 'delete() resolved after the hook answered');
  await waitFor(() => detached, { what: 'peer onDetach' });
  assert.equal(detached, 'deleted');
  // an owner that leaves: the hook is told (not waited for)
  const c = await client();
  const t = await c.stateManager.create(cls, { name: 'leaver' });
  c.close();
  await waitFor(() => finals.some((f) => f.id === t.id), { timeout: 5000, what: 'hook told of the owner leaving' });
});

test('timeout: a hook that does not answer fails the set with HOOK_FAILED, nothing applied; the state goes on', async () => {
  const slow = await startServer({ schemas: SCHEMAS, resumeWindow: 0, args: ['--hook-timeout', '0.3'] });
  const tok = adminToken(slow);
  try {
    const cls = unique('note');
    let hang = true;
    const server = await piece((sm) => {
      sm.defineClass(cls, NOTE);
      sm.registerUpdateHook(cls, (u) => (hang ? new Promise(() => {}) : u));
    }, slow, tok);
    const a = await connect(slow);
    clients.push(a);
    const s = await a.stateManager.create(cls);
    const t0 = Date.now();
    const outcome = (p) => p.then(() => ({ ms: Date.now() - t0 }), (err) => ({ err, ms: Date.now() - t0 }));
    const first = outcome(s.set({ pitch: 64 }));
    const second = outcome(s.set({ label: 'queued behind' })); // waits for the first job of the state
    const r1 = await first, r2 = await second;
    for (const r of [r1, r2]) assert.ok(r.err && r.err.code === ErrorCode.HOOK_FAILED && /in time/.test(r.err.message), String(r.err));
    assert.ok(r1.ms >= 250, `failed after ${r1.ms} ms (--hook-timeout 0.3)`);
    assert.ok(r2.ms >= 550, `the second waited its turn, then its own hook's timeout (${r2.ms} ms)`);
    assert.equal(s.get('pitch'), 60);
    assert.equal(s.get('label'), '');
    hang = false;
    assert.deepEqual(await s.set({ pitch: 64 }), { pitch: 64 });
    await server.stop();
  } finally {
    await slow.stop();
  }
});

const WS_URL = import.meta.resolve('ws');
const SERVER_URL = new URL('../../web/server.js', import.meta.url).href;

test('hook client lost: its process is killed while a set waits: HOOK_FAILED at once, nothing applied, its hooks are gone', async () => {
  // a long --hook-timeout: what fails the set is the hook client going
  const own = await startServer({ schemas: SCHEMAS, resumeWindow: 0, args: ['--hook-timeout', '60'] });
  const ownToken = adminToken(own);
  const cls = unique('note');
  const a = await connect(own, { role: 'admin', token: ownToken });
  clients.push(a);
  await a.stateManager.defineClass(cls, NOTE);
  // the piece's logic in a process of its own, whose hook never answers
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import WebSocket from ${JSON.stringify(WS_URL)};
    import { Server } from ${JSON.stringify(SERVER_URL)};
    const server = new Server({ url: ${JSON.stringify(own.url)}, token: ${JSON.stringify(ownToken)}, WebSocket });
    server.stateManager.registerUpdateHook(${JSON.stringify(cls)}, () => { console.log('called'); return new Promise(() => {}); });
    await server.start();
    console.log('ready');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((r) => child.on('close', r));
  try {
    await waitFor(() => out.includes('ready'), { timeout: 10000, what: 'the hook process' });
    const s = await a.stateManager.create(cls);
    const pending = s.set({ pitch: 64 });
    await waitFor(() => out.includes('called'), { what: 'the hook called' });
    const t0 = Date.now();
    child.kill('SIGKILL');
    await assert.rejects(within(pending, 20000, 'the set'), (e) => e.code === ErrorCode.HOOK_FAILED && /went away/.test(e.message));
    assert.ok(Date.now() - t0 < 20000, 'long before the hook timeout');
    assert.equal(s.get('pitch'), 60);
    assert.deepEqual(await s.set({ pitch: 65 }), { pitch: 65 }, 'no hook left');
  } finally {
    child.kill('SIGKILL');
    await exited;
    a.close();
    await own.stop();
  }
});

test('ordering under concurrent sets from several clients: per-state order kept, each set answered once, none applied twice', async () => {
  const cls = unique('counter');
  let calls = 0;
  await piece((sm) => {
    sm.defineClass(cls, { n: { type: 'integer', default: 0 }, last: { type: 'string', default: '' } });
    // read-modify-write in the hook, with an await in the middle: only a
    // server that runs one job per state at a time keeps the count exact
    sm.registerUpdateHook(cls, async (u, current) => {
      calls++;
      await sleep(Math.random() * 4);
      return { last: u.last, n: current.n + 1 };
    });
  });
  const owner = await client();
  const s = await owner.stateManager.create(cls);
  const writers = [await client(), await client(), await client()];
  const states = await Promise.all(writers.map((w) => w.stateManager.attach(cls, s.id)));
  const watcher = await (await client()).stateManager.attach(cls, s.id);
  const seqs = [];
  watcher.onUpdate((n, o, ctx) => seqs.push(ctx.seq));
  const PER = 25;
  const results = await Promise.all(states.map((st, w) => Promise.all(
    Array.from({ length: PER }, (_, i) => st.set({ last: `w${w}-${i}` }).then((r) => ({ w, i, r }))))));
  const all = results.flat();
  assert.equal(all.length, 3 * PER, 'every set answered');
  assert.equal(calls, 3 * PER, 'each set hooked once');
  const ns = all.map(({ r }) => r.n).sort((x, y) => x - y);
  assert.deepEqual(ns, Array.from({ length: 3 * PER }, (_, i) => i + 1), 'each set applied once, none lost: n counts them all');
  for (let w = 0; w < 3; w++) {
    const mine = all.filter((x) => x.w === w).sort((x, y) => x.i - y.i).map((x) => x.r.n);
    assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `writer ${w}: its sets applied in the order it sent them`);
  }
  await waitFor(() => watcher.get('n') === 3 * PER, { what: 'the watcher saw them all' });
  assert.deepEqual(seqs, Array.from({ length: 3 * PER }, (_, i) => i + 1), 'the watcher saw every seq, in order');
});

test('deleteClass on a running server: attached clients get onDetach, the class is gone, delete hooks are told', async () => {
  const cls = unique('room');
  const told = [];
  const server = await piece((sm) => {
    sm.defineClass(cls, { n: { type: 'integer', default: 0 } });
    sm.registerDeleteHook(cls, (values, info) => { told.push(info.stateId); });
  });
  const a = await client();
  const b = await client();
  const s1 = await a.stateManager.create(cls);
  const s2 = await a.stateManager.create(cls);
  const p1 = await b.stateManager.attach(cls, s1.id);
  const reasons = [];
  p1.onDetach((r) => reasons.push(`peer ${r}`));
  s1.onDetach((r) => reasons.push(`owner ${r}`));
  s2.onDelete((r) => reasons.push(`owner-delete ${r}`));
  const coll = await b.stateManager.getCollection(cls);
  assert.equal(coll.size, 2);
  await server.stateManager.deleteClass(cls);
  await waitFor(() => reasons.length === 3 && coll.size === 0, { what: 'detaches' });
  assert.deepEqual(reasons.sort(), ['owner class deleted', 'owner-delete class deleted', 'peer class deleted']);
  await waitFor(() => told.length === 2, { what: 'delete hooks told' });
  assert.deepEqual(told.sort(), [s1.id, s2.id].sort());
  assert.equal(await server.stateManager.isClassDefined(cls), false);
  await assert.rejects(a.stateManager.create(cls), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
  await assert.rejects(server.stateManager.deleteClass(cls), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
  // the name can be defined again
  assert.equal(await server.stateManager.defineClass(cls, { other: { type: 'boolean', default: true } }), true);
});

test('rights: the audience may not register hooks nor delete classes (FORBIDDEN); a Server without the token cannot start', async () => {
  const cls = unique('note');
  const a = await admin();
  await a.stateManager.defineClass(cls, NOTE);
  const aud = await client();
  assert.equal(aud.role, 'audience');
  const orig = console.error;
  console.error = () => {};
  try {
    const off = aud.stateManager.registerUpdateHook(cls, () => null);
    await assert.rejects(off.ready, (e) => e.code === ErrorCode.FORBIDDEN && /hooks/.test(e.message));
    const s = await aud.stateManager.create(cls);
    assert.deepEqual(await s.set({ pitch: 61 }), { pitch: 61 }, 'the refused hook never runs');
  } finally { console.error = orig; }
  await assert.rejects(aud.stateManager.deleteClass(cls), (e) => e.code === ErrorCode.FORBIDDEN);
  assert.ok(await a.stateManager.getClassDescription(cls));
  const noToken = new Server({ url: srv.url, WebSocket, reconnect: false });
  await assert.rejects(noToken.start(), (e) => e.code === ErrorCode.UNAUTHORIZED);
  assert.equal(noToken.status, 'stopped');
  // an unknown class: start() says so
  const wrong = new Server({ url: srv.url, token, WebSocket });
  wrong.stateManager.registerUpdateHook('no-such-class', () => {});
  console.error = () => {};
  try { await assert.rejects(wrong.start(), (e) => e.code === ErrorCode.UNKNOWN_CLASS); } finally { console.error = orig; }
});

test('a hook client that reconnects registers its hooks again', async () => {
  const cls = unique('note');
  const server = await piece((sm) => {
    sm.defineClass(cls, NOTE);
    sm.registerUpdateHook(cls, (u, current) => ({ ...u, count: current.count + 1 }));
  });
  const a = await client();
  const s = await a.stateManager.create(cls);
  assert.equal((await s.set({ pitch: 62 })).count, 1);
  server.client.dropConnection();
  await waitFor(() => server.client.status === 'open', { timeout: 10000, what: 'reconnected' });
  await sleep(100); // the HOOK after the welcome
  assert.equal((await s.set({ pitch: 64 })).count, 2);
});
