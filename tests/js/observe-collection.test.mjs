// observe() and getCollection() against the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../web/tutti.js';
import { startServer, connect, waitFor, sleep, TEST_SCHEMAS } from './helpers.mjs';

const PLAYER = {
  name: { type: 'string', default: '' },
  x: { type: 'float', default: 0 },
  hit: { type: 'boolean', event: true },
};

let srv;
const clients = [];
async function client(opts) { const c = await connect(srv, opts); clients.push(c); return c; }

before(async () => { srv = await startServer({ schemas: TEST_SCHEMAS, resumeWindow: 0 }); });
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

test('observe: existing states first (awaited), then creations and deletions', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('player', PLAYER);
  const p1 = await a.stateManager.create('player', { name: 'one' });
  const seen = [];
  const deleted = [];
  let inCallback = false;
  const unobserve = await b.stateManager.observe('player', async (className, stateId, owner) => {
    inCallback = true;
    await sleep(10);
    seen.push([className, stateId, owner]);
    inCallback = false;
  }, { onDelete: (className, stateId) => deleted.push(stateId) });
  assert.equal(inCallback, false, 'resolved after the callbacks of existing states');
  assert.deepEqual(seen, [['player', p1.id, a.session]]);
  const p2 = await a.stateManager.create('player', { name: 'two' });
  await waitFor(() => seen.length === 2, { what: 'create notice' });
  assert.deepEqual(seen[1], ['player', p2.id, a.session]);
  await p1.delete();
  await waitFor(() => deleted.length === 1, { what: 'delete notice' });
  assert.deepEqual(deleted, [p1.id]);
  assert.equal(typeof unobserve, 'function');
  await unobserve();
  await a.stateManager.create('player', { name: 'three' });
  await sleep(100);
  assert.equal(seen.length, 2, 'no notice after unobserve');
});

test('observe all classes; excludeLocal; two observers on one client', async () => {
  const a = await client();
  await a.stateManager.defineClass('player', PLAYER);
  const all = [];
  const nonLocal = [];
  const un1 = await a.stateManager.observe((className, stateId) => { all.push([className, stateId]); });
  const un2 = await a.stateManager.observe('player', (className, stateId) => { nonLocal.push(stateId); }, { excludeLocal: true });
  assert.ok(all.some(([cn]) => cn === 'demo'), 'the server-owned demo state is listed');
  const before = nonLocal.length;
  const mine = await a.stateManager.create('player', { name: 'mine' });
  await waitFor(() => all.some(([, id]) => id === mine.id), { what: 'own create seen by the all-classes observer' });
  await sleep(50);
  assert.equal(nonLocal.length, before, 'excludeLocal skipped our own state');
  const b = await client();
  const theirs = await b.stateManager.create('player', { name: 'theirs' });
  await waitFor(() => nonLocal.includes(theirs.id), { what: 'other client state' });
  assert.equal(all.filter(([, id]) => id === theirs.id).length, 1, 'seen once');
  await un2();
  // the other observer still works after un2 (server-side observe still needed)
  const third = await b.stateManager.create('player', { name: 'third' });
  await waitFor(() => all.some(([, id]) => id === third.id), { what: 'notice after the other unobserve' });
  await un1();
});

test('getCollection: existing and new states, updates, detach, helpers', async () => {
  const a = await client();
  const b = await client();
  const c = await client();
  await a.stateManager.defineClass('player', PLAYER);
  // clean slate for this class: delete what earlier tests left (they are owned by other clients)
  const pa = await a.stateManager.create('player', { name: 'a' });
  const coll = await c.stateManager.getCollection('player');
  assert.equal(coll.className, 'player');
  const startSize = coll.size;
  assert.ok(coll.find((s) => s.id === pa.id), 'existing state attached');
  assert.equal(coll.length, coll.size);
  assert.equal(coll.getDescription('x').type, 'float');
  assert.equal(coll.getDefaults().name, '');
  const attached = [], detached = [], updates = [];
  let changes = 0;
  coll.onAttach((s) => attached.push(s.id));
  coll.onDetach((s) => detached.push(s.id));
  coll.onUpdate((s, n, o, ctx) => updates.push([s.id, n, ctx.source]));
  coll.onChange(() => { changes++; });
  const pb = await b.stateManager.create('player', { name: 'b' });
  await waitFor(() => attached.includes(pb.id), { what: 'onAttach' });
  assert.equal(coll.size, startSize + 1);
  await pb.set({ x: 0.5 });
  await waitFor(() => updates.some(([id, n]) => id === pb.id && n.x === 0.5), { what: 'collection onUpdate' });
  assert.ok(coll.get('name').includes('b'));
  assert.ok(coll.getValues().some((v) => v.name === 'a' && v.x === 0));
  const names = [];
  for (const s of coll) names.push(s.get('name'));
  assert.ok(names.includes('a') && names.includes('b'));
  assert.deepEqual(coll.map((s) => s.id).sort(), coll.filter(() => true).map((s) => s.id).sort());
  let n = 0; coll.forEach(() => { n++; }); assert.equal(n, coll.size);
  assert.equal(coll.reduce((acc) => acc + 1, 0), coll.size);
  coll.sort((x, y) => y.id - x.id);
  assert.ok(coll.map((s) => s.id).every((id, i, arr) => i === 0 || arr[i - 1] > id), 'sorted in place');
  assert.deepEqual(coll.getUnsafe('name'), coll.get('name'));
  assert.deepEqual(coll.getValuesUnsafe(), coll.getValues());
  // executeListener: onAttach for every existing state, onUpdate with current values, onChange once
  const existing = [];
  const offA = coll.onAttach((s) => existing.push(s.id), true);
  assert.equal(existing.length, coll.size);
  const initial = [];
  const offU = coll.onUpdate((s, nv, ov, ctx) => initial.push([s.id, nv, ov, ctx.source]), true);
  assert.equal(initial.length, coll.size);
  assert.ok(initial.every(([, nv, ov, src]) => !('hit' in nv) && 'name' in nv && Object.keys(ov).length === 0 && src === 'initial'));
  let once = 0;
  const offC = coll.onChange(() => { once++; }, true);
  assert.equal(once, 1);
  offA(); offU(); offC();
  // collection.set sets every state
  await coll.set({ x: 0.25 });
  await waitFor(() => pa.get('x') === 0.25 && pb.get('x') === 0.25, { what: 'owners see the collection set' });
  // deletion by the owner: onDetach
  await pb.delete();
  await waitFor(() => detached.includes(pb.id), { what: 'collection onDetach' });
  assert.ok(!coll.find((s) => s.id === pb.id));
  // owner disconnect (resume window 0)
  a.close();
  await waitFor(() => detached.includes(pa.id), { timeout: 10000, what: 'owner left' });
  assert.ok(changes >= 4);
  await coll.detach();
  assert.equal(coll.size, 0);
});

test('getCollection: excludeLocal and a filter; unknown class rejects', async () => {
  const a = await client();
  await a.stateManager.defineClass('player', PLAYER);
  const mine = await a.stateManager.create('player', { name: 'mine' });
  const coll = await a.stateManager.getCollection('player', ['name'], { excludeLocal: true });
  assert.ok(!coll.find((s) => s.id === mine.id), 'own state excluded');
  const b = await client();
  const theirs = await b.stateManager.create('player', { name: 'theirs', x: 0.3 });
  await waitFor(() => coll.find((s) => s.id === theirs.id), { what: 'attached' });
  const s = coll.find((st) => st.id === theirs.id);
  assert.deepEqual(s.getValues(), { name: 'theirs' });
  await coll.detach();
  await assert.rejects(a.stateManager.getCollection('nope'), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
});

test('getCollection over 200 states: the attaches go out together, in few WebSocket messages', async () => {
  const a = await client();
  const c = await client();
  await a.stateManager.defineClass('dot', { x: { type: 'float', default: 0 } });
  const created = [];
  for (let i = 0; i < 200; i++) created.push(a.stateManager.create('dot', { x: i }));
  await Promise.all(created);
  await sleep(400); // let the client's ping burst pass
  const frames = c.stats.framesOut, reqs = c.stats.requestsOut;
  const coll = await c.stateManager.getCollection('dot');
  assert.equal(coll.size, 200);
  assert.equal(c.stats.requestsOut - reqs, 202, 'describe + observe + 200 attaches');
  assert.ok(c.stats.framesOut - frames <= 6, `${c.stats.framesOut - frames} frames`);
  assert.deepEqual(coll.get('x').sort((p, q) => p - q), Array.from({ length: 200 }, (_, i) => i));
  // one set on every state, batched too
  const f2 = c.stats.framesOut;
  await coll.set({ x: 0.5 });
  assert.ok(c.stats.framesOut - f2 <= 3, `${c.stats.framesOut - f2} frames for 200 sets`);
  await waitFor(async () => (await Promise.all(created)).every((s) => s.get('x') === 0.5), { what: 'owners see the sets' });
  await coll.detach();
});
