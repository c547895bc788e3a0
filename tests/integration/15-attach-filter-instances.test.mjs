// ATTACH by class (oldest state), by class + id, with a filter the
// server enforces; two attachments to one state by one client; ids never
// reused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, defineFresh, assertNames } from './lib/harness.mjs';

const h = useServer({ resumeWindow: 0 });

const DESC = {
  a: { type: 'integer', default: 0 },
  b: { type: 'string', default: 'b0' },
  c: { type: 'boolean', default: false },
};

test('ATTACH with stateId nil attaches the oldest state of the class', async (t) => {
  const o1 = await h.client(t);
  const o2 = await h.client(t);
  const cls = await defineFresh(o1, DESC);
  const s1 = await o1.create(cls, { a: 1 });
  const s2 = await o2.create(cls, { a: 2 });
  await o1.create(cls, { a: 3 });
  const x = await h.client(t);
  const att = await x.attach(cls, null, {});
  assert.equal(att.state, s1.state);
  assert.equal(att.values.a, 1);
  // once the oldest is deleted, the next oldest is chosen
  await o1.delete(s1.instance);
  const att2 = await x.attach(cls, null, {});
  assert.equal(att2.state, s2.state);
});

test('ATTACH with class and state id attaches that state', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  await o.create(cls, { a: 1 });
  const s2 = await o.create(cls, { a: 2 });
  const x = await h.client(t);
  const att = await x.attach(cls, s2.state, {});
  assert.equal(att.state, s2.state);
  assert.equal(att.values.a, 2);
  assert.equal(att.owner, o.welcome.session);
});

test('ATTACH to an unknown class is UNKNOWN_CLASS', async (t) => {
  const x = await h.client(t);
  await x.fail(E.UNKNOWN_CLASS, T.ATTACH, 'attach-no-such-class', null, {});
});

test('ATTACH with stateId nil to a class with no state is UNKNOWN_STATE', async (t) => {
  const x = await h.client(t);
  const cls = await defineFresh(x, DESC);
  await x.fail(E.UNKNOWN_STATE, T.ATTACH, cls, null, {});
});

test('ATTACH to a state id that does not exist is UNKNOWN_STATE', async (t) => {
  const x = await h.client(t);
  const cls = await defineFresh(x, DESC);
  await x.create(cls, {});
  await x.fail(E.UNKNOWN_STATE, T.ATTACH, cls, 99999999, {});
});

test('ATTACH to a state id of another class is UNKNOWN_STATE', async (t) => {
  const x = await h.client(t);
  const cls1 = await defineFresh(x, DESC);
  const cls2 = await defineFresh(x, DESC);
  const s = await x.create(cls1, {});
  await x.fail(E.UNKNOWN_STATE, T.ATTACH, cls2, s.state, {});
});

test('filter: the ATTACH result holds only the filtered params and echoes the filter', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, { a: 5 });
  const x = await h.client(t);
  const att = await x.attach(cls, s.state, { filter: ['a', 'c'] });
  assert.deepEqual(att.values, { a: 5, c: false });
  assert.deepEqual([...att.filter].sort(), ['a', 'c']);
});

test('filter: UPDATEs carry only the filtered params', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  await x.attach(cls, s.state, { filter: ['a'] });
  await o.set(s.instance, { a: 1, b: 'hidden', c: true });
  const u = await x.nextUpdate(s.state);
  assert.deepEqual(u[4], { a: 1 });
});

test('filter: an update touching only filtered-out params sends nothing to that client, and its seq then jumps', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  await x.attach(cls, s.state, { filter: ['a'] });
  await o.set(s.instance, { b: 'hidden' });
  await x.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE with only filtered-out params');
  await o.set(s.instance, { a: 2 });
  const u = await x.nextUpdate(s.state);
  assert.deepEqual([u[2], u[4]], [2, { a: 2 }]);
});

test('filter: setting a param outside the filter is FILTERED', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const att = await x.attach(cls, s.state, { filter: ['a'] });
  const e = await x.fail(E.FILTERED, T.SET, att.instance, { b: 'nope' });
  assertNames(e.message, { cls, param: 'b' });
  const r = await x.set(att.instance, { a: 4 });
  assert.deepEqual(r.changes, { a: 4 });
  assert.deepEqual((await o.nextUpdate(s.state))[4], { a: 4 });
});

test('filter naming an unknown param is BAD_FILTER naming it', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const e = await x.fail(E.BAD_FILTER, T.ATTACH, cls, s.state, { filter: ['a', 'ghost'] });
  assertNames(e.message, { param: 'ghost' });
});

test('two attachments to one state by one client get distinct instance ids and both work', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const i1 = await x.attach(cls, s.state, {});
  const i2 = await x.attach(cls, s.state, {});
  assert.notEqual(i1.instance, i2.instance);
  assert.equal(i1.state, i2.state);
  await x.set(i1.instance, { a: 1 });
  await x.set(i2.instance, { a: 2 });
  const u1 = await o.nextUpdate(s.state);
  const u2 = await o.nextUpdate(s.state);
  assert.deepEqual([u1[4], u2[4]], [{ a: 1 }, { a: 2 }]);
});

test('a client with two attachments gets one UPDATE per set, with the union of what its filters see', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  await x.attach(cls, s.state, { filter: ['a'] });
  await x.attach(cls, s.state, { filter: ['b'] });
  await o.set(s.instance, { a: 1, b: 'seen', c: true });
  const u = await x.nextUpdate(s.state);
  assert.deepEqual(u[4], { a: 1, b: 'seen' });
  await x.expectNoPush(300, (m) => m[0] === T.UPDATE && m[1] === s.state, 'second UPDATE for the same set');
});

test('a client that sets through one of its two attachments gets no UPDATE for the other', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const i1 = await x.attach(cls, s.state, {});
  await x.attach(cls, s.state, {});
  await x.set(i1.instance, { a: 7 });
  await o.nextUpdate(s.state);
  await x.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE to the requester');
});

test('detaching one of two attachments keeps the updates coming; detaching both stops them', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const i1 = await x.attach(cls, s.state, {});
  const i2 = await x.attach(cls, s.state, {});
  await x.detach(i1.instance);
  await o.set(s.instance, { a: 1 });
  assert.deepEqual((await x.nextUpdate(s.state))[4], { a: 1 });
  await x.fail(E.UNKNOWN_INSTANCE, T.SET, i1.instance, { a: 9 });
  await x.set(i2.instance, { a: 2 });
  await x.detach(i2.instance);
  await o.set(s.instance, { a: 3 });
  await x.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE after detaching every instance');
});

test('the owner can attach its own state again and delete through that instance', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  await x.attach(cls, s.state, {});
  const again = await o.attach(cls, s.state, {});
  assert.notEqual(again.instance, s.instance);
  assert.equal(await o.delete(again.instance), null);
  assert.deepEqual(await x.nextDeleted(s.state), [T.DELETED, s.state, 'deleted']);
});

test('state ids are never reused after deletions', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const seen = new Set();
  for (let i = 0; i < 20; i++) {
    const s = await o.create(cls, {});
    assert.ok(!seen.has(s.state), `state id ${s.state} reused`);
    seen.add(s.state);
    await o.delete(s.instance);
  }
  // also across clients and after the owner left
  const p = await h.client(t);
  const s = await p.create(cls, {});
  assert.ok(!seen.has(s.state));
  seen.add(s.state);
  await p.close();
  const q = await h.client(t);
  const s2 = await q.create(cls, {});
  assert.ok(!seen.has(s2.state));
});

test('instance ids of one session are never reused after detach', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const seen = new Set();
  for (let i = 0; i < 20; i++) {
    const a = await x.attach(cls, s.state, {});
    assert.ok(!seen.has(a.instance), `instance id ${a.instance} reused`);
    seen.add(a.instance);
    await x.detach(a.instance);
  }
});
