// Atomic sets (one bad key rejects everything, with the right code,
// a message naming class, param and value, nothing applied or broadcast,
// exactly one reply), no-op sets, seq +1 per applied update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass, assertNames, RawClient } from './lib/harness.mjs';

const CLS = uniqueClass('atomic');
const DESC = {
  count: { type: 'integer', default: 0 },
  label: { type: 'string', default: 'start' },
  strict: { type: 'integer', default: 7 },
  secret: { type: 'integer', default: 0, local: true },
  other: { type: 'float', default: 0 },
};
const h = useServer({}, async (hh) => {
  const c = await RawClient.open(hh.url);
  await c.define(CLS, DESC);
  await c.close();
});
const DEFAULTS = { count: 0, label: 'start', strict: 7, other: 0 };


async function trio(t) {
  const a = await h.client(t);
  const b = await h.client(t);
  const st = await a.create(CLS, {});
  const att = await b.attach(CLS, st.state, {});
  return { a, b, st, att };
}

/** Send `updates` through `via` (client, instance) and check the atomic refusal. */
async function atomicRefusal(t, { via, instance, watcher, st, updates, code, param, value }) {
  const reply = await via.request(T.SET, instance, updates);
  assert.equal(reply[0], T.ERROR, `expected ERROR, got ${JSON.stringify(reply)}`);
  assert.equal(reply[2], code, `code ${reply[2]}: ${reply[3]}`);
  assertNames(reply[3], { cls: CLS, param, value });
  await watcher.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE after a refused set');
  await via.expectNoPush(0, (m) => m[0] === T.UPDATE, 'UPDATE after a refused set');
  assert.equal(via.replyCount(reply[1]), 1, 'exactly one reply');
  const fresh = await h.client(t);
  const att = await fresh.attach(CLS, st.state, {});
  assert.equal(att.seq, 0, 'seq unchanged');
  const visible = Object.fromEntries(Object.entries(att.values).filter(([k]) => k in DEFAULTS));
  assert.deepEqual(visible, DEFAULTS, 'nothing applied');
}

test('atomic: an unknown key with good keys rejects the whole set with UNKNOWN_PARAM', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { count: 5, label: 'x', zorglub: 4242 }, code: E.UNKNOWN_PARAM, param: 'zorglub' });
});

test('atomic: an unknown key placed first still rejects the good keys after it', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { zorglub: 'first', count: 5 }, code: E.UNKNOWN_PARAM, param: 'zorglub' });
});

test('atomic: a wrong type with good keys rejects the whole set with BAD_VALUE', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { count: 5, label: 31337 }, code: E.BAD_VALUE, param: 'label', value: '31337' });
});

test('atomic: a fraction for an integer with good keys rejects the whole set with BAD_VALUE', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { label: 'changed', count: 2.75 }, code: E.BAD_VALUE, param: 'count', value: '2.75' });
});

test('atomic: nil on a non-nullable param with good keys rejects the whole set with NOT_NULLABLE', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { count: 5, strict: null }, code: E.NOT_NULLABLE, param: 'strict' });
});

test('atomic: a local param with good keys rejects the whole set with LOCAL_PARAM', async (t) => {
  const { a, b, st } = await trio(t);
  await atomicRefusal(t, { via: a, instance: st.instance, watcher: b, st, updates: { count: 5, secret: 99 }, code: E.LOCAL_PARAM, param: 'secret' });
});

test('atomic: a key outside the attach filter with good keys rejects the whole set with FILTERED', async (t) => {
  const { a, st } = await trio(t);
  const f = await h.client(t);
  const inst = await f.attach(CLS, st.state, { filter: ['count'] });
  await atomicRefusal(t, { via: f, instance: inst.instance, watcher: a, st, updates: { count: 5, label: 'sneaky' }, code: E.FILTERED, param: 'label' });
});

test('atomic: a refused set by a non-owner reaches neither the owner nor other peers', async (t) => {
  const { a, b, st, att } = await trio(t);
  const c = await h.client(t);
  await c.attach(CLS, st.state, {});
  await atomicRefusal(t, { via: b, instance: att.instance, watcher: c, st, updates: { count: 1, nope: 1 }, code: E.UNKNOWN_PARAM, param: 'nope' });
  await a.expectNoPush(0, (m) => m[0] === T.UPDATE);
});

// The value named in the message, per kind of refusal (PROTOCOL.md §6, §11:
// "an ERROR naming class, parameter and value").
for (const [kind, code, updates, param, value, todo] of [
  ['BAD_VALUE', E.BAD_VALUE, { label: 31337 }, 'label', '31337'],
  ['UNKNOWN_PARAM', E.UNKNOWN_PARAM, { zorglub: 4242 }, 'zorglub', '4242'],
  ['LOCAL_PARAM', E.LOCAL_PARAM, { secret: 9876 }, 'secret', '9876'],
  ['NOT_NULLABLE', E.NOT_NULLABLE, { strict: null }, 'strict', 'null'],
]) {
  test(`the ${kind} message names class, param and value`, todo ? { todo } : {}, async (t) => {
    const { a, st } = await trio(t);
    const e = await a.fail(code, T.SET, st.instance, updates);
    assertNames(e.message, { cls: CLS, param, value });
  });
}

test('the FILTERED message names class, param and value', async (t) => {
  const { st } = await trio(t);
  const f = await h.client(t);
  const inst = await f.attach(CLS, st.state, { filter: ['count'] });
  const e = await f.fail(E.FILTERED, T.SET, inst.instance, { label: 'sneaky' });
  assertNames(e.message, { cls: CLS, param: 'label', value: 'sneaky' });
});

test('a set that changes nothing is answered {changes: {}} with the unchanged seq and not broadcast', async (t) => {
  const { a, b, st } = await trio(t);
  const r1 = await a.set(st.instance, { count: 3 });
  assert.equal(r1.seq, 1);
  await b.nextUpdate(st.state);
  const r2 = await a.set(st.instance, { count: 3, label: 'start' });
  assert.deepEqual(r2.changes, {});
  assert.equal(r2.seq, 1);
  assert.equal(typeof r2.time, 'number');
  await b.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE for a no-op set');
  const r3 = await a.set(st.instance, { count: 4 });
  assert.equal(r3.seq, 2, 'the no-op did not consume a seq');
  assert.equal((await b.nextUpdate(st.state))[2], 2);
});

test('an empty set is answered {changes: {}} and not broadcast', async (t) => {
  const { a, b, st } = await trio(t);
  const r = await a.set(st.instance, {});
  assert.deepEqual(r.changes, {});
  assert.equal(r.seq, 0);
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE);
});

test('seq grows by exactly one per applied update and UPDATEs carry the same seqs', async (t) => {
  const { a, b, st } = await trio(t);
  const seqs = [];
  for (let i = 1; i <= 10; i++) seqs.push((await a.set(st.instance, { count: i })).seq);
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const got = [];
  for (let i = 1; i <= 10; i++) {
    const u = await b.nextUpdate(st.state);
    got.push([u[2], u[4].count]);
  }
  assert.deepEqual(got, seqs.map((s) => [s, s]));
});

test('update times never go backwards along seq', async (t) => {
  const { a, b, st } = await trio(t);
  const times = [st.time];
  for (let i = 1; i <= 10; i++) times.push((await a.set(st.instance, { count: i })).time);
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], `time[${i}] ${times[i]} < ${times[i - 1]}`);
  for (let i = 1; i <= 10; i++) assert.equal((await b.nextUpdate(st.state))[3], times[i]);
});

test('pipelined sets from one client are applied in order with consecutive seqs', async (t) => {
  const { a, b, st } = await trio(t);
  const msgs = [];
  for (let i = 1; i <= 50; i++) msgs.push([T.SET, 5000 + i, st.instance, { count: i }]);
  a.sendMany(msgs);
  const replies = [];
  for (let i = 1; i <= 50; i++) replies.push(await a.waitReply(5000 + i));
  assert.deepEqual(replies.map((r) => r[2].seq), msgs.map((_, i) => i + 1));
  for (let i = 1; i <= 50; i++) {
    const u = await b.nextUpdate(st.state);
    assert.deepEqual([u[2], u[4]], [i, { count: i }]);
  }
});

test('sets from two writers are seen by a third client in seq order with no gap', async (t) => {
  const { a, b, st, att } = await trio(t);
  const w = await h.client(t);
  await w.attach(CLS, st.state, {});
  const N = 40;
  const pa = (async () => { for (let i = 0; i < N; i++) await a.set(st.instance, { count: i + 1 }); })();
  const pb = (async () => { for (let i = 0; i < N; i++) await b.set(att.instance, { other: i + 0.5 }); })();
  await Promise.all([pa, pb]);
  const seqs = [];
  for (let i = 0; i < 2 * N; i++) seqs.push((await w.nextUpdate(st.state))[2]);
  assert.deepEqual(seqs, Array.from({ length: 2 * N }, (_, i) => i + 1));
});

test('a SET whose updates is not a map is refused (BAD_MESSAGE) and changes nothing', async (t) => {
  const { a, b, st } = await trio(t);
  await a.fail(E.BAD_MESSAGE, T.SET, st.instance, ['count', 1]);
  await b.expectNoPush(200, (m) => m[0] === T.UPDATE);
});
