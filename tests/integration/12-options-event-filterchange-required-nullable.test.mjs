// Param options event, filterChange, required, nullable, local.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass, assertNames, RawClient } from './lib/harness.mjs';

const CLS = uniqueClass('options');
const DESC = {
  bang: { type: 'boolean', event: true },
  note: { type: 'integer', event: true, min: 0, max: 127 },
  level: { type: 'integer', default: 0, filterChange: false },
  plain: { type: 'integer', default: 0 },
  title: { type: 'string', required: true },
  comment: { type: 'string', default: null, nullable: true },
  strict: { type: 'integer', default: 1 },
  secret: { type: 'integer', default: 0, local: true },
};
const h = useServer({}, async (hh) => {
  const c = await RawClient.open(hh.url);
  await c.define(CLS, DESC);
  await c.close();
});


async function pair(t, init = { title: 't' }) {
  const a = await h.client(t);
  const b = await h.client(t);
  const st = await a.create(CLS, init);
  const att = await b.attach(CLS, st.state, {});
  return { a, b, st, att };
}

test('event param: the set is broadcast with its value and the RESULT carries it', async (t) => {
  const { a, b, st } = await pair(t);
  const r = await a.set(st.instance, { bang: true, note: 60 });
  assert.deepEqual(r.changes, { bang: true, note: 60 });
  assert.equal(r.seq, 1);
  const u = await b.nextUpdate(st.state);
  assert.deepEqual(u[4], { bang: true, note: 60 });
});

test('event param: after the broadcast the state holds nil, so a fresh attach sees nil', async (t) => {
  const { a, st } = await pair(t);
  await a.set(st.instance, { bang: true, note: 64 });
  const c = await h.client(t);
  const att = await c.attach(CLS, st.state, {});
  assert.equal(att.seq, 1);
  assert.equal(att.values.bang, null);
  assert.equal(att.values.note, null);
  assert.ok('bang' in att.values && 'note' in att.values, 'event params are present, as nil');
});

test('event param: a fresh state has nil for its event params', async (t) => {
  const { st, att } = await pair(t);
  assert.equal(st.values.bang, null);
  assert.equal(att.values.note, null);
});

test('event param: the same value set twice is broadcast twice (seq +1 each time)', async (t) => {
  const { a, b, st } = await pair(t);
  const r1 = await a.set(st.instance, { bang: true });
  const r2 = await a.set(st.instance, { bang: true });
  assert.deepEqual([r1.seq, r2.seq], [1, 2]);
  assert.deepEqual(r2.changes, { bang: true });
  const u1 = await b.nextUpdate(st.state);
  const u2 = await b.nextUpdate(st.state);
  assert.deepEqual([u1[2], u2[2]], [1, 2]);
  assert.deepEqual(u2[4], { bang: true });
});

test('event param: values are still validated and clipped (note 200 -> 127, "x" refused)', async (t) => {
  const { a, b, st } = await pair(t);
  const r = await a.set(st.instance, { note: 200 });
  assert.deepEqual(r.changes, { note: 127 });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { note: 127 });
  await a.fail(E.BAD_VALUE, T.SET, st.instance, { note: 'x' });
});

test('filterChange false: an unchanged value is broadcast again and seq grows', async (t) => {
  const { a, b, st } = await pair(t);
  const r1 = await a.set(st.instance, { level: 0 });
  assert.deepEqual(r1.changes, { level: 0 });
  assert.equal(r1.seq, 1);
  const r2 = await a.set(st.instance, { level: 0 });
  assert.equal(r2.seq, 2);
  assert.deepEqual((await b.nextUpdate(st.state))[4], { level: 0 });
  assert.deepEqual((await b.nextUpdate(st.state))[2], 2);
});

test('filterChange false: the value stays stored (unlike event), a fresh attach sees it', async (t) => {
  const { a, st } = await pair(t);
  await a.set(st.instance, { level: 9 });
  const c = await h.client(t);
  const att = await c.attach(CLS, st.state, {});
  assert.equal(att.values.level, 9);
});

test('filterChange true (default): an unchanged value is not broadcast and seq does not grow', async (t) => {
  const { a, b, st } = await pair(t);
  const r = await a.set(st.instance, { plain: 0 });
  assert.deepEqual(r.changes, {});
  assert.equal(r.seq, 0);
  await b.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE for an unchanged value');
});

test('filterChange true: in a mixed set only the changed keys are in changes', async (t) => {
  const { a, b, st } = await pair(t);
  const r = await a.set(st.instance, { plain: 0, strict: 5, level: 0 });
  assert.deepEqual(r.changes, { strict: 5, level: 0 });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { strict: 5, level: 0 });
});

test('required: CREATE without the required param is refused with REQUIRED naming class and param', async (t) => {
  const a = await h.client(t);
  const e = await a.fail(E.REQUIRED, T.CREATE, CLS, { plain: 1 });
  assertNames(e.message, { cls: CLS, param: 'title' });
});

test('required: CREATE with the required param nil is refused with REQUIRED', async (t) => {
  const a = await h.client(t);
  const e = await a.fail(E.REQUIRED, T.CREATE, CLS, { title: null });
  assertNames(e.message, { cls: CLS, param: 'title' });
});

test('required: a refused CREATE creates no state (observers see nothing)', async (t) => {
  const o = await h.client(t);
  await o.observe(CLS);
  const a = await h.client(t);
  await a.fail(E.REQUIRED, T.CREATE, CLS, {});
  await o.expectNoPush(300, (m) => m[0] === T.NOTICE && m[1] === 'create', 'create NOTICE');
});

test('required: CREATE with the required param given stores it', async (t) => {
  const a = await h.client(t);
  const st = await a.create(CLS, { title: 'opening' });
  assert.equal(st.values.title, 'opening');
});

test('required: the required param is not nullable afterwards (set nil is NOT_NULLABLE)', async (t) => {
  const { a, st } = await pair(t);
  await a.fail(E.NOT_NULLABLE, T.SET, st.instance, { title: null });
});

test('nullable: nil is accepted, stored and broadcast, then a value again', async (t) => {
  const { a, b, st } = await pair(t);
  assert.equal(st.values.comment, null);
  const r1 = await a.set(st.instance, { comment: 'hi' });
  assert.deepEqual(r1.changes, { comment: 'hi' });
  const r2 = await a.set(st.instance, { comment: null });
  assert.deepEqual(r2.changes, { comment: null });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { comment: 'hi' });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { comment: null });
});

test('not nullable: nil is refused with NOT_NULLABLE naming class and param', async (t) => {
  const { a, b, st } = await pair(t);
  const e = await a.fail(E.NOT_NULLABLE, T.SET, st.instance, { strict: null });
  assertNames(e.message, { cls: CLS, param: 'strict' });
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE);
});

test('not nullable: nil in CREATE init values is refused with NOT_NULLABLE', async (t) => {
  const a = await h.client(t);
  await a.fail(E.NOT_NULLABLE, T.CREATE, CLS, { title: 'x', strict: null });
});

test('local: a local param sent in a SET is refused with LOCAL_PARAM', async (t) => {
  const { a, b, st } = await pair(t);
  const e = await a.fail(E.LOCAL_PARAM, T.SET, st.instance, { secret: 3 });
  assertNames(e.message, { cls: CLS, param: 'secret' });
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE);
});

test('local: a local param in CREATE init values is refused with LOCAL_PARAM', async (t) => {
  const a = await h.client(t);
  await a.fail(E.LOCAL_PARAM, T.CREATE, CLS, { title: 'x', secret: 1 });
});

test('CREATE init values are validated like a SET: an unknown param is UNKNOWN_PARAM and no state is made', async (t) => {
  const o = await h.client(t);
  await o.observe(CLS);
  const a = await h.client(t);
  const e = await a.fail(E.UNKNOWN_PARAM, T.CREATE, CLS, { title: 'x', zzparam: 1 });
  assertNames(e.message, { cls: CLS, param: 'zzparam' });
  await a.fail(E.BAD_VALUE, T.CREATE, CLS, { title: 'x', plain: 'seven' });
  await o.expectNoPush(300, (m) => m[0] === T.NOTICE && m[1] === 'create', 'create NOTICE for a refused CREATE');
});
