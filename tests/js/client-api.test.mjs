// The JS client's state API against the real server: classes, create/attach,
// set/get, listeners, errors, detach/delete, batching, integers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, TuttiError, ErrorCode } from '../../web/tutti.js';
import { startServer, connect, waitFor, within, TEST_SCHEMAS, THING } from './helpers.mjs';

let srv;
const clients = [];
async function client(opts) { const c = await connect(srv, opts); clients.push(c); return c; }

before(async () => { srv = await startServer({ schemas: TEST_SCHEMAS, resumeWindow: 0 }); });
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

test('connect: welcome, status and events', async () => {
  const c = new Client({ url: srv.url, WebSocket, connectTimeout: 5000 });
  clients.push(c);
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  assert.equal(c.status, 'idle');
  const welcome = await c.connect();
  assert.equal(c.status, 'open');
  assert.ok(Number.isInteger(welcome.session) && welcome.session > 0, 'session id > 0');
  assert.equal(typeof welcome.token, 'string');
  assert.equal(welcome.resumed, false);
  assert.equal(typeof welcome.time, 'number');
  assert.ok(welcome.maxMessage > 0);
  assert.equal(c.session, welcome.session);
  assert.deepEqual(statuses, ['connecting', 'open']);
  c.close();
  assert.equal(c.status, 'closed');
  await assert.rejects(c.stateManager.attach('demo'), (e) => e instanceof TuttiError && e.code === ErrorCode.CLOSED);
});

test('connect to nothing rejects after connectTimeout', async () => {
  const c = new Client({ url: 'ws://127.0.0.1:1/', WebSocket, connectTimeout: 600, backoffMin: 50 });
  await assert.rejects(within(c.connect(), 3000, 'connect'), (e) => e.code === ErrorCode.TIMEOUT);
  assert.equal(c.status, 'closed');
});

test('defineClass: new, identical (no-op), conflicting', async () => {
  const c = await client();
  const sm = c.stateManager;
  assert.equal(await sm.defineClass('thing', THING), true);
  assert.equal(await sm.defineClass('thing', THING), false);
  // same class with defaults spelled out is identical
  const spelled = { ...THING, bool: { type: 'boolean', default: false, nullable: false } };
  assert.equal(await sm.defineClass('thing', spelled), false);
  await assert.rejects(sm.defineClass('thing', { bool: { type: 'boolean', default: true } }),
    (e) => e instanceof TuttiError && e.code === ErrorCode.CLASS_EXISTS && e.codeName === 'CLASS_EXISTS');
  await assert.rejects(sm.defineClass('broken', { x: { type: 'integer' } }), // no default
    (e) => e.code === ErrorCode.BAD_DESCRIPTION && /x/.test(e.message));
  await assert.rejects(sm.defineClass('broken2', { x: { type: 'nope', default: 1 } }), (e) => e.code === ErrorCode.BAD_DESCRIPTION);
});

test('getClassDescription: expanded; unknown class rejects', async () => {
  const c = await client();
  await c.stateManager.defineClass('thing', THING);
  const d = await c.stateManager.getClassDescription('thing');
  assert.equal(d.int.type, 'integer');
  assert.equal(d.int.min, 0);
  assert.equal(d.int.max, 10);
  assert.equal(d.big.min, -Infinity, 'unbounded min is -Infinity, as in soundworks');
  assert.equal(d.big.max, Infinity, 'unbounded max is +Infinity');
  assert.equal(d.bool.nullable, false);
  assert.equal(d.bool.filterChange, true);
  assert.equal(d.bool.acknowledge, true);
  assert.equal(d.ev.nullable, true);
  assert.equal(d.ev.default, null);
  assert.deepEqual(d.choice.list, ['a', 'b', 1]);
  assert.deepEqual(d.bool.metas, {});
  const demo = await c.stateManager.getClassDescription('demo');
  assert.equal(demo.volume.default, 0.5);
  await assert.rejects(c.stateManager.getClassDescription('nope'), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
});

test('create and attach: ids, owner, values, description, defaults', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const owned = await a.stateManager.create('thing', { req: 'yes', int: 42 });
  assert.equal(owned.isOwner, true);
  assert.equal(owned.className, 'thing');
  assert.equal(owned.ownerSession, a.session);
  assert.ok(owned.id > 0);
  assert.equal(owned.get('int'), 10, 'clipped to max at create');
  assert.equal(owned.get('req'), 'yes');
  assert.equal(owned.seq, 0);
  const other = await b.stateManager.attach('thing', owned.id);
  assert.equal(other.isOwner, false);
  assert.equal(other.id, owned.id);
  assert.notEqual(other.instanceId, owned.instanceId);
  assert.deepEqual(other.getValues(), owned.getValues());
  assert.equal(other.get('ev'), null);
  assert.equal(other.getDescription('float').max, 1);
  assert.equal(other.getDescription().str.default, 'a');
  assert.throws(() => other.getDescription('zzz'), ReferenceError);
  const defaults = other.getDefaults();
  assert.equal(defaults.int, 0);
  assert.deepEqual(defaults.any, { x: [1, 2] });
  // get() of an `any` is a copy; getUnsafe a reference
  const any = other.get('any');
  any.x.push(3);
  assert.deepEqual(other.get('any'), { x: [1, 2] });
  assert.equal(other.getUnsafe('any'), other.getUnsafe('any'));
  assert.equal(other.getValuesUnsafe().any, other.getUnsafe('any'), 'getValuesUnsafe: references');
  assert.notEqual(other.getValues().any, other.getUnsafe('any'), 'getValues: copies');
  assert.deepEqual(other.getValues(), other.getValuesUnsafe());
  assert.throws(() => other.get('zzz'), ReferenceError);
  // attach without id: the oldest state of the class
  const demo = await b.stateManager.attach('demo');
  assert.equal(demo.ownerSession, 0);
  assert.equal(demo.get('volume'), 0.5);
});

test('create/attach errors carry the server code', async () => {
  const a = await client();
  await a.stateManager.defineClass('thing', THING);
  await assert.rejects(a.stateManager.create('nope'), (e) => e.code === ErrorCode.UNKNOWN_CLASS && /nope/.test(e.message));
  await assert.rejects(a.stateManager.create('thing', {}), (e) => e.code === ErrorCode.REQUIRED && /req/.test(e.message));
  await assert.rejects(a.stateManager.create('thing', { req: 'x', zzz: 1 }), (e) => e.code === ErrorCode.UNKNOWN_PARAM);
  await assert.rejects(a.stateManager.create('thing', { req: 'x', int: 1.5 }), (e) => e.code === ErrorCode.BAD_VALUE);
  await assert.rejects(a.stateManager.attach('nope'), (e) => e.code === ErrorCode.UNKNOWN_CLASS);
  await assert.rejects(a.stateManager.attach('demo', 999999), (e) => e.code === ErrorCode.UNKNOWN_STATE);
  await assert.rejects(a.stateManager.attach('demo', ['volume', 'zzz']), (e) => e.code === ErrorCode.BAD_FILTER);
});

test('set: the requester gets its changes, others an update, in seq order', async () => {
  const a = await client();
  const b = await client();
  const sa = await a.stateManager.attach('demo');
  const sb = await b.stateManager.attach('demo');
  const seenA = [], seenB = [];
  sa.onUpdate((n, o, ctx) => seenA.push({ n, o, ctx }));
  sb.onUpdate((n, o, ctx) => seenB.push({ n, o, ctx }));
  const seq0 = sa.seq;
  const r = await sa.set({ volume: 0.25, frequency: 880 });
  assert.deepEqual(r, { volume: 0.25, frequency: 880 });
  // the requester's listeners ran before set() resolved
  assert.equal(seenA.length, 1);
  assert.deepEqual(seenA[0].n, { volume: 0.25, frequency: 880 });
  assert.equal(seenA[0].o.volume, 0.5);
  assert.equal(seenA[0].ctx.source, 'set');
  assert.equal(seenA[0].ctx.seq, seq0 + 1);
  assert.equal(typeof seenA[0].ctx.time, 'number');
  assert.equal(sa.seq, seq0 + 1);
  await waitFor(() => seenB.length === 1, { what: 'update on b' });
  assert.deepEqual(seenB[0].n, { volume: 0.25, frequency: 880 });
  assert.equal(seenB[0].ctx.source, 'update');
  assert.equal(seenB[0].ctx.seq, seq0 + 1);
  assert.equal(seenB[0].ctx.time, seenA[0].ctx.time);
  assert.equal(sb.get('volume'), 0.25);
  // set(name, value); clipping
  const r2 = await sb.set('volume', 7);
  assert.equal(r2.volume, 1);
  assert.equal(sb.get('volume'), 1);
  await waitFor(() => sa.get('volume') === 1, { what: 'clipped value on a' });
  // a set that changes nothing: answered, not broadcast, seq unchanged
  const before = sb.seq;
  const nA = seenA.length;
  const r3 = await sb.set({ volume: 1 });
  assert.deepEqual(r3, { volume: 1 });
  assert.equal(sb.seq, before);
  await sb.set({ message: 'sync point' }); // a later change, to be sure nothing came in between
  await waitFor(() => sa.get('message') === 'sync point');
  assert.equal(seenA.length, nA + 1, 'no update for the no-op set');
  assert.equal(sa.seq, before + 1);
  // unsubscribe
  const off = sb.onUpdate(() => assert.fail('unsubscribed listener called'));
  off();
  await sa.set({ message: 'again' });
  await waitFor(() => sb.get('message') === 'again');
});

test('set rejects with code and message (local validation), nothing sent or applied', async () => {
  const a = await client();
  const s = await a.stateManager.attach('demo');
  const sent = a.stats.requestsOut;
  await assert.rejects(s.set({ volume: 'loud' }), (e) => e instanceof TuttiError && e.code === ErrorCode.BAD_VALUE && /demo/.test(e.message) && /volume/.test(e.message));
  await assert.rejects(s.set({ zzz: 1 }), (e) => e.code === ErrorCode.UNKNOWN_PARAM && /zzz/.test(e.message));
  await assert.rejects(s.set({ playing: null }), (e) => e.code === ErrorCode.NOT_NULLABLE);
  await assert.rejects(s.set({ mode: 'triangle' }), (e) => e.code === ErrorCode.BAD_VALUE);
  await assert.rejects(s.set({ volume: NaN }), (e) => e.code === ErrorCode.BAD_VALUE);
  await assert.rejects(s.set({ volume: 0.1, zzz: 1 }), (e) => e.code === ErrorCode.UNKNOWN_PARAM);
  assert.equal(s.get('volume') !== 0.1 || true, true);
  await assert.rejects(s.set('volume'), (e) => e.code === ErrorCode.NOT_NULLABLE); // set(name) with no value = null
  await assert.rejects(s.set({ volume: 0.2 }, { context: 1 }), TypeError);
  await assert.rejects(s.set(42), TypeError);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.stats.requestsOut, sent, 'nothing sent');
});

test('set rejects with the server code and message when validation is left to the server', async () => {
  const a = await client({ validate: false });
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const peer = await b.stateManager.attach('thing', s.id);
  let peerUpdates = 0;
  peer.onUpdate(() => { peerUpdates++; });
  const seq = s.seq;
  const cases = [
    [{ int: 1.5 }, ErrorCode.BAD_VALUE, /int/],
    [{ bool: 1 }, ErrorCode.BAD_VALUE, /bool/],
    [{ zzz: 1 }, ErrorCode.UNKNOWN_PARAM, /zzz/],
    [{ str: null }, ErrorCode.NOT_NULLABLE, /str/],
    [{ choice: '1' }, ErrorCode.BAD_VALUE, /choice/],
    [{ float: NaN }, ErrorCode.BAD_VALUE, /float/],
    [{ int: 3, bool: 'x' }, ErrorCode.BAD_VALUE, /bool/], // atomic: int not applied
  ];
  for (const [updates, code, re] of cases) {
    await assert.rejects(within(s.set(updates), 10000, 'set'), (e) => {
      assert.ok(e instanceof TuttiError, 'TuttiError');
      assert.equal(e.code, code, `${JSON.stringify(updates)}: ${e.codeName} ${e.message}`);
      assert.match(e.message, re);
      assert.match(e.message, /thing/);
      return true;
    });
  }
  assert.equal(s.get('int'), 0, 'atomic: nothing applied');
  assert.equal(s.seq, seq);
  await s.set({ str: 'after' });
  await waitFor(() => peer.get('str') === 'after');
  assert.equal(peerUpdates, 1, 'peer saw only the good set');
  assert.equal(peer.get('int'), 0);
});

test('a local param cannot go over the wire (LOCAL_PARAM), a filtered key is refused (FILTERED)', async () => {
  const a = await client({ validate: false });
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  // with validate:false the client still never sends local params; send a raw SET through the internals
  await assert.rejects(a._request([7, 0, s.instanceId, { loc: 'x' }]), (e) => e.code === ErrorCode.LOCAL_PARAM);
  const f = await a.stateManager.attach('thing', s.id, ['int']);
  assert.deepEqual(Object.keys(f.getValues()), ['int']);
  await assert.rejects(f.set({ str: 'x' }), (e) => e.code === ErrorCode.FILTERED);
  const v = await client();
  const fv = await v.stateManager.attach('thing', s.id, ['int']);
  await assert.rejects(fv.set({ str: 'x' }), (e) => e.code === ErrorCode.FILTERED); // local check
  assert.throws(() => fv.get('str'), (e) => e.code === ErrorCode.FILTERED);
});

test('filtered instances only see their params', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const f = await b.stateManager.attach('thing', s.id, { filter: ['int', 'str'] });
  const full = await b.stateManager.attach('thing', s.id);
  assert.deepEqual(f.filter, ['int', 'str']);
  const seenF = [], seenFull = [];
  f.onUpdate((n) => seenF.push(n));
  full.onUpdate((n) => seenFull.push(n));
  await s.set({ int: 3, bool: true });
  await waitFor(() => seenFull.length === 1 && seenF.length === 1);
  assert.deepEqual(seenF[0], { int: 3 });
  assert.deepEqual(seenFull[0], { int: 3, bool: true });
  await s.set({ bool: false });
  await waitFor(() => seenFull.length === 2);
  assert.equal(seenF.length, 1, 'filtered instance not told about bool');
});

test('two instances of one state on one client both see the own set and peers', async () => {
  const a = await client();
  const b = await client();
  const s1 = await a.stateManager.attach('demo');
  const s2 = await a.stateManager.attach('demo');
  const p = await b.stateManager.attach('demo');
  const seen1 = [], seen2 = [];
  s1.onUpdate((n, o, ctx) => seen1.push([n, ctx.source]));
  s2.onUpdate((n, o, ctx) => seen2.push([n, ctx.source]));
  await s1.set({ message: 'from s1' });
  assert.deepEqual(seen1, [[{ message: 'from s1' }, 'set']]);
  assert.deepEqual(seen2, [[{ message: 'from s1' }, 'set']], 'the other local instance applied the RESULT');
  assert.equal(s2.get('message'), 'from s1');
  await p.set({ message: 'from b' });
  await waitFor(() => seen1.length === 2 && seen2.length === 2);
  assert.equal(s1.get('message'), 'from b');
  assert.equal(s2.get('message'), 'from b');
});

test('onUpdate(cb, true) runs at once with current values, events left out', async () => {
  const a = await client();
  const s = await a.stateManager.attach('demo');
  let call = null;
  s.onUpdate((n, o, ctx) => { call ??= { n, o, ctx }; }, true);
  assert.ok(call, 'called synchronously');
  assert.deepEqual(call.o, {});
  assert.equal(call.ctx.source, 'initial');
  assert.ok(!('bang' in call.n));
  assert.ok('volume' in call.n);
});

test('detach: onDetach, no more updates, double detach rejects', async () => {
  const a = await client();
  const b = await client();
  const s = await a.stateManager.attach('demo');
  const p = await b.stateManager.attach('demo');
  let detached = 0;
  s.onDetach(() => { detached++; });
  assert.throws(() => s.onDelete(() => {}), /onDetach/);
  await s.detach();
  assert.equal(detached, 1);
  assert.equal(s.detached, true);
  await assert.rejects(s.detach(), (e) => e.code === ErrorCode.DETACHED);
  await assert.rejects(s.set({ volume: 0.3 }), (e) => e.code === ErrorCode.DETACHED);
  await assert.rejects(s.delete(), /not owned/);
  await p.set({ message: 'after detach' });
  await new Promise((r) => setTimeout(r, 50));
  assert.notEqual(s.getValues().message, 'after detach');
});

test('delete by the owner: owner gets onDetach+onDelete, others onDetach("deleted")', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const p = await b.stateManager.attach('thing', s.id);
  const events = [];
  s.onDetach(() => events.push('owner detach'));
  s.onDelete(() => events.push('owner delete'));
  let reason = null;
  p.onDetach((r) => { reason = r; });
  await s.delete();
  assert.deepEqual(events, ['owner detach', 'owner delete']);
  await waitFor(() => reason !== null, { what: 'peer onDetach' });
  assert.equal(reason, 'deleted');
  assert.equal(p.detached, true);
  await assert.rejects(b.stateManager.attach('thing', s.id), (e) => e.code === ErrorCode.UNKNOWN_STATE);
  // the owner's detach deletes, as in soundworks
  const s2 = await a.stateManager.create('thing', { req: 'r' });
  const p2 = await b.stateManager.attach('thing', s2.id);
  let gone = false;
  p2.onDetach(() => { gone = true; });
  await s2.detach();
  await waitFor(() => gone, { what: 'owner detach deleting' });
  // a non-owner session cannot delete (raw DELETE through b's instance)
  const s3 = await a.stateManager.create('thing', { req: 'r' });
  const p3 = await b.stateManager.attach('thing', s3.id);
  await assert.rejects(b._request([6, 0, p3.instanceId]), (e) => e.code === ErrorCode.NOT_OWNER);
  await s3.delete();
});

test('owner disconnect deletes its states (resume window 0): peers get onDetach("owner left")', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const p = await b.stateManager.attach('thing', s.id);
  let reason = null;
  p.onDetach((r) => { reason = r; });
  a.close();
  await waitFor(() => reason !== null, { timeout: 10000, what: 'owner left' });
  assert.equal(reason, 'owner left');
  await assert.rejects(b.stateManager.attach('thing', s.id), (e) => e.code === ErrorCode.UNKNOWN_STATE);
});

test('messages issued in one microtask go out in one WebSocket message', async () => {
  const a = await client();
  const s = await a.stateManager.attach('demo');
  await new Promise((r) => setTimeout(r, 50)); // let the ping burst pass
  a._stopTimers();
  const frames = a.stats.framesOut, msgs = a.stats.messagesOut;
  const ps = [];
  for (let i = 0; i < 43; i++) ps.push(s.set({ frequency: 100 + i }));
  const results = await Promise.all(ps);
  assert.equal(a.stats.framesOut - frames, 1, 'one frame');
  assert.equal(a.stats.messagesOut - msgs, 43, '43 messages');
  assert.equal(results[42].frequency, 142);
  assert.equal(s.get('frequency'), 142);
});

test('integers beyond 2^53 stay exact (bigint); ordinary ones are numbers', async () => {
  const a = await client();
  const b = await client();
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const p = await b.stateManager.attach('thing', s.id);
  assert.equal(typeof s.id, 'number');
  assert.equal(typeof s.seq, 'number');
  const big = 2n ** 62n + 1n;
  await s.set({ big });
  await waitFor(() => p.get('big') !== 0);
  assert.equal(p.get('big'), big);
  assert.equal(typeof p.get('big'), 'bigint');
  await s.set({ big: 2 ** 40 });
  await waitFor(() => p.get('big') === 2 ** 40);
  assert.equal(typeof p.get('big'), 'number');
  await s.set({ big: -(2n ** 63n) });
  await waitFor(() => p.get('big') === -(2n ** 63n));
  // integral floats are accepted for integers
  await s.set({ int: 3.0 });
  assert.equal(s.get('int'), 3);
});

test('any: nesting depth 16 accepted, 17 refused (locally and by the server)', async () => {
  const a = await client();
  const raw = await client({ validate: false });
  await a.stateManager.defineClass('thing', THING);
  const s = await a.stateManager.create('thing', { req: 'r' });
  const r = await raw.stateManager.attach('thing', s.id);
  const nest = (n) => { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v; };
  await s.set({ any: nest(16) });
  await assert.rejects(s.set({ any: nest(17) }), (e) => e.code === ErrorCode.BAD_VALUE);
  await assert.rejects(r.set({ any: nest(17) }), (e) => e.code === ErrorCode.BAD_VALUE && /any/.test(e.message));
  await r.set({ any: { a: nest(15) } });
  await waitFor(() => JSON.stringify(s.get('any')) === JSON.stringify({ a: nest(15) }));
});
