// OBSERVE one class / all classes (current states, then create and
// delete notices), UNOBSERVE; DELETE ownership rules and notifications.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, defineFresh } from './lib/harness.mjs';

const h = useServer({ resumeWindow: 0 });
const DESC = { v: { type: 'integer', default: 0 } };

test('OBSERVE a class lists its existing states oldest first as [class, stateId, ownerSession]', async (t) => {
  const o1 = await h.client(t);
  const o2 = await h.client(t);
  const cls = await defineFresh(o1, DESC);
  const other = await defineFresh(o1, DESC);
  const s1 = await o1.create(cls, {});
  const s2 = await o2.create(cls, {});
  await o1.create(other, {});
  const w = await h.client(t);
  const r = await w.observe(cls);
  assert.deepEqual(r.states, [[cls, s1.state, o1.welcome.session], [cls, s2.state, o2.welcome.session]]);
});

test('OBSERVE a class then pushes a create NOTICE for a new state of that class', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const w = await h.client(t);
  assert.deepEqual((await w.observe(cls)).states, []);
  const s = await o.create(cls, {});
  const n = await w.nextNotice();
  assert.deepEqual(n, [T.NOTICE, 'create', cls, s.state, o.welcome.session]);
});

test('OBSERVE a class then pushes a delete NOTICE when one of its states is deleted', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const w = await h.client(t);
  await w.observe(cls);
  await o.delete(s.instance);
  assert.deepEqual(await w.nextNotice(), [T.NOTICE, 'delete', cls, s.state, o.welcome.session]);
});

test('OBSERVE a class: a state deleted because its owner left also gives a delete NOTICE', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const w = await h.client(t);
  await w.observe(cls);
  const owner = o.welcome.session;
  await o.terminate();
  assert.deepEqual(await w.nextNotice(), [T.NOTICE, 'delete', cls, s.state, owner]);
});

test('OBSERVE a class gives no NOTICE for states of other classes', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const other = await defineFresh(o, DESC);
  const w = await h.client(t);
  await w.observe(cls);
  const s = await o.create(other, {});
  await o.delete(s.instance);
  await w.expectNoPush(300, (m) => m[0] === T.NOTICE, 'NOTICE for another class');
});

test('OBSERVE all classes (nil) lists states of every class, then notices for every class', async (t) => {
  const o = await h.client(t);
  const c1 = await defineFresh(o, DESC);
  const c2 = await defineFresh(o, DESC);
  const s1 = await o.create(c1, {});
  const s2 = await o.create(c2, {});
  const w = await h.client(t);
  const r = await w.observe(null);
  const mine = r.states.filter((e) => e[0] === c1 || e[0] === c2);
  assert.deepEqual(mine, [[c1, s1.state, o.welcome.session], [c2, s2.state, o.welcome.session]]);
  // oldest first overall
  const ids = r.states.map((e) => e[1]);
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  const c3 = await defineFresh(o, DESC);
  const s3 = await o.create(c3, {});
  // (other tests' clients may still be leaving: only look at this test's classes)
  const ours = (m) => [c1, c2, c3].includes(m[2]);
  assert.deepEqual(await w.nextNotice(ours), [T.NOTICE, 'create', c3, s3.state, o.welcome.session]);
  await o.delete(s1.instance);
  assert.deepEqual(await w.nextNotice(ours), [T.NOTICE, 'delete', c1, s1.state, o.welcome.session]);
});

test('observing is not attaching: an observer gets no UPDATE and no DELETED, only notices', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const w = await h.client(t);
  await w.observe(cls);
  const s = await o.create(cls, {});
  await w.nextNotice((m) => m[1] === 'create' && m[3] === s.state);
  await o.set(s.instance, { v: 5 });
  await o.delete(s.instance);
  await w.nextNotice((m) => m[1] === 'delete' && m[3] === s.state);
  await w.expectNoPush(200, (m) => m[0] === T.UPDATE || m[0] === T.DELETED, 'UPDATE or DELETED to a mere observer');
});

test('UNOBSERVE a class stops its notices and answers nil', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const w = await h.client(t);
  await w.observe(cls);
  assert.equal(await w.unobserve(cls), null);
  const s = await o.create(cls, {});
  await o.delete(s.instance);
  await w.expectNoPush(300, (m) => m[0] === T.NOTICE, 'NOTICE after UNOBSERVE');
});

test('UNOBSERVE all (nil) stops the notices of OBSERVE all', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const w = await h.client(t);
  await w.observe(null);
  assert.equal(await w.unobserve(null), null);
  await o.create(cls, {});
  await w.expectNoPush(300, (m) => m[0] === T.NOTICE, 'NOTICE after UNOBSERVE all');
});

test('UNOBSERVE of something not observed is not an error', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  assert.equal(await o.unobserve(cls), null);
  assert.equal(await o.unobserve(null), null);
});

test('DELETE by a session that does not own the state is NOT_OWNER and the state lives on', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const att = await x.attach(cls, s.state, {});
  const e = await x.fail(E.NOT_OWNER, T.DELETE, att.instance);
  assert.equal(typeof e.message, 'string');
  await o.expectNoPush(200, (m) => m[0] === T.DELETED);
  const r = await x.set(att.instance, { v: 1 });
  assert.equal(r.seq, 1);
  assert.deepEqual((await o.nextUpdate(s.state))[4], { v: 1 });
});

test('DELETE by the owner: every other attached client gets DELETED "deleted" and observers a delete NOTICE', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const xs = [await h.client(t), await h.client(t), await h.client(t)];
  for (const x of xs) await x.attach(cls, s.state, {});
  const w = await h.client(t);
  await w.observe(cls);
  assert.equal(await o.delete(s.instance), null);
  for (const x of xs) assert.deepEqual(await x.nextDeleted(s.state), [T.DELETED, s.state, 'deleted']);
  assert.deepEqual(await w.nextNotice(), [T.NOTICE, 'delete', cls, s.state, o.welcome.session]);
});

test('after DELETED every instance of that client on the state is gone (one DELETED per client)', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const i1 = await x.attach(cls, s.state, {});
  const i2 = await x.attach(cls, s.state, { filter: ['v'] });
  await o.delete(s.instance);
  await x.nextDeleted(s.state);
  await x.fail(E.UNKNOWN_INSTANCE, T.SET, i1.instance, { v: 1 });
  await x.fail(E.UNKNOWN_INSTANCE, T.SET, i2.instance, { v: 1 });
  await x.fail(E.UNKNOWN_INSTANCE, T.DETACH, i2.instance);
  await x.expectNoPush(100, (m) => m[0] === T.DELETED, 'a second DELETED');
});

test('ownership belongs to the session: the owner detaching its CREATE instance keeps the state, it still cannot be deleted by others, and it goes when the owner leaves', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const xi = await x.attach(cls, s.state, {});
  assert.equal(await o.detach(s.instance), null);
  const r = await x.set(xi.instance, { v: 2 });
  assert.equal(r.seq, 1);
  await o.expectNoPush(200, (m) => m[0] === T.UPDATE, 'UPDATE to the detached owner');
  await x.fail(E.NOT_OWNER, T.DELETE, xi.instance);
  const again = await o.attach(cls, s.state, {});
  assert.equal(again.owner, o.welcome.session);
  assert.equal(again.values.v, 2);
  await o.terminate();
  assert.deepEqual(await x.nextDeleted(s.state), [T.DELETED, s.state, 'owner left']);
});

test('an observer is also notified of the states it creates itself', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  await o.observe(cls);
  const s = await o.create(cls, {});
  assert.deepEqual(await o.nextNotice(), [T.NOTICE, 'create', cls, s.state, o.welcome.session]);
});

test('OBSERVE of an undefined class is UNKNOWN_CLASS', async (t) => {
  const o = await h.client(t);
  await o.fail(E.UNKNOWN_CLASS, T.OBSERVE, 'observe-never-defined');
});

test('a client that detached before the DELETE gets no DELETED', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const x = await h.client(t);
  const y = await h.client(t);
  const xi = await x.attach(cls, s.state, {});
  await y.attach(cls, s.state, {});
  await x.detach(xi.instance);
  await o.delete(s.instance);
  await y.nextDeleted(s.state);
  await x.expectNoPush(300, (m) => m[0] === T.DELETED, 'DELETED to a detached client');
});

test('the owner deleting through one of its instances loses the others too, and gets no DELETED itself', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  const second = await o.attach(cls, s.state, { filter: ['v'] });
  assert.equal(await o.delete(s.instance), null);
  await o.fail(E.UNKNOWN_INSTANCE, T.SET, second.instance, { v: 1 });
  await o.fail(E.UNKNOWN_INSTANCE, T.DETACH, second.instance);
  await o.expectNoPush(200, (m) => m[0] === T.DELETED, 'DELETED to the deleting owner');
});

test('DELETE of an unknown instance is UNKNOWN_INSTANCE', async (t) => {
  const o = await h.client(t);
  await o.fail(E.UNKNOWN_INSTANCE, T.DELETE, 424242);
});

test('DELETE of an already deleted state through the same instance is UNKNOWN_INSTANCE', async (t) => {
  const o = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s = await o.create(cls, {});
  await o.delete(s.instance);
  await o.fail(E.UNKNOWN_INSTANCE, T.DELETE, s.instance);
});

test('an owner leaving deletes all its states and detaches it from the others', async (t) => {
  const o = await h.client(t);
  const p = await h.client(t);
  const cls = await defineFresh(o, DESC);
  const s1 = await o.create(cls, {});
  const s2 = await o.create(cls, {});
  const sp = await p.create(cls, {});
  await o.attach(cls, sp.state, {});
  const x = await h.client(t);
  await x.attach(cls, s1.state, {});
  await x.attach(cls, s2.state, {});
  await o.terminate();
  const d = [await x.nextDeleted(s1.state), await x.nextDeleted(s2.state)];
  assert.deepEqual(d.map((m) => m[2]), ['owner left', 'owner left']);
  // p's state lives on and p gets no DELETED
  const r = await p.set(sp.instance, { v: 3 });
  assert.equal(r.seq, 1);
  await p.expectNoPush(100, (m) => m[0] === T.DELETED);
});
