// The basic state life cycle between two raw clients: define, create,
// attach, set (diff to the other client, RESULT and no UPDATE to the
// requester), invalid set, detach, delete, owner disconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, defineFresh } from './lib/harness.mjs';

const h = useServer({ resumeWindow: 0 });

const DESC = {
  volume: { type: 'float', default: 0.5, min: 0, max: 1 },
  count: { type: 'integer', default: 0 },
  name: { type: 'string', default: 'none' },
  on: { type: 'boolean', default: false },
};

async function setup(t) {
  const a = await h.client(t);
  const b = await h.client(t);
  const cls = await defineFresh(a, DESC);
  const created = await a.create(cls, { name: 'first' });
  const attached = await b.attach(cls, created.state, {});
  return { a, b, cls, created, attached };
}

test('CREATE answers instance, state, class, owner, seq 0, time, values with defaults and init values, description', async (t) => {
  const a = await h.client(t);
  const cls = await defineFresh(a, DESC);
  const r = await a.create(cls, { count: 4 });
  assert.ok(Number.isInteger(r.instance) && r.instance >= 0);
  assert.ok(Number.isInteger(r.state));
  assert.equal(r.class, cls);
  assert.equal(r.owner, a.welcome.session);
  assert.equal(r.seq, 0);
  assert.equal(typeof r.time, 'number');
  assert.deepEqual(r.values, { volume: 0.5, count: 4, name: 'none', on: false });
  assert.deepEqual(Object.keys(r.description).sort(), ['count', 'name', 'on', 'volume']);
  assert.equal(r.description.volume.type, 'float');
  assert.equal(r.filter ?? null, null);
});

test('ATTACH by another client answers the current values, seq, owner and description', async (t) => {
  const { a, cls, created, attached } = await setup(t);
  assert.equal(attached.state, created.state);
  assert.equal(attached.class, cls);
  assert.equal(attached.owner, a.welcome.session);
  assert.equal(attached.seq, 0);
  assert.deepEqual(attached.values, { volume: 0.5, count: 0, name: 'first', on: false });
  assert.deepEqual(attached.description, created.description);
});

test('SET sends the diff to the other attached client as an UPDATE with seq and time', async (t) => {
  const { a, b, created } = await setup(t);
  await a.set(created.instance, { volume: 0.25, count: 0, on: true }); // count unchanged
  const u = await b.nextUpdate(created.state);
  assert.equal(u.length, 5);
  assert.equal(u[1], created.state);
  assert.equal(u[2], 1);
  assert.equal(typeof u[3], 'number');
  assert.deepEqual(u[4], { volume: 0.25, on: true }, 'only changed keys are sent');
});

test('the requester gets RESULT {seq, time, changes} and no UPDATE for its own set', async (t) => {
  const { a, b, created } = await setup(t);
  const r = await a.set(created.instance, { count: 9 });
  assert.equal(r.seq, 1);
  assert.equal(typeof r.time, 'number');
  assert.deepEqual(r.changes, { count: 9 });
  const u = await b.nextUpdate(created.state);
  assert.equal(u[3], r.time, 'UPDATE carries the same time as the RESULT');
  await a.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE to the requester');
});

test('a set by the attached (non-owner) client reaches the owner', async (t) => {
  const { a, b, created, attached } = await setup(t);
  const r = await b.set(attached.instance, { name: 'from-b' });
  assert.deepEqual(r.changes, { name: 'from-b' });
  const u = await a.nextUpdate(created.state);
  assert.deepEqual(u[4], { name: 'from-b' });
  assert.equal(u[2], r.seq);
});

test('an invalid set is answered with ERROR, nothing is broadcast and the values are unchanged for a fresh attach', async (t) => {
  const { a, b, cls, created } = await setup(t);
  const e = await a.fail(E.BAD_VALUE, T.SET, created.instance, { count: 'twelve' });
  assert.ok(e.message.includes('count'));
  await b.expectNoPush(400, () => true, 'push after an invalid set');
  const c = await h.client(t);
  const fresh = await c.attach(cls, created.state, {});
  assert.equal(fresh.seq, 0);
  assert.deepEqual(fresh.values, { volume: 0.5, count: 0, name: 'first', on: false });
});

test('SET on an instance id that is not one of this session\'s is UNKNOWN_INSTANCE', async (t) => {
  const { a, b, created, attached } = await setup(t);
  await a.fail(E.UNKNOWN_INSTANCE, T.SET, 987654, { count: 1 });
  await b.fail(E.UNKNOWN_INSTANCE, T.SET, attached.instance + 100000, { count: 1 });
  // another session's instance id cannot be used (unless ids are per session and collide)
  if (attached.instance !== created.instance) {
    await a.fail(E.UNKNOWN_INSTANCE, T.SET, attached.instance, { count: 1 });
  }
});

test('DETACH answers nil and the detached client stops receiving updates', async (t) => {
  const { a, b, created, attached } = await setup(t);
  const r = await b.detach(attached.instance);
  assert.equal(r, null);
  await a.set(created.instance, { count: 1 });
  await b.expectNoPush(400, (m) => m[0] === T.UPDATE, 'UPDATE after detach');
  await b.fail(E.UNKNOWN_INSTANCE, T.SET, attached.instance, { count: 2 });
  await b.fail(E.UNKNOWN_INSTANCE, T.DETACH, attached.instance);
});

test('DELETE by the owner answers nil and the attached client gets DELETED with reason "deleted"', async (t) => {
  const { a, b, cls, created, attached } = await setup(t);
  const r = await a.delete(created.instance);
  assert.equal(r, null);
  const d = await b.nextDeleted(created.state);
  assert.deepEqual(d, [T.DELETED, created.state, 'deleted']);
  await b.fail(E.UNKNOWN_INSTANCE, T.SET, attached.instance, { count: 1 });
  await a.fail(E.UNKNOWN_INSTANCE, T.SET, created.instance, { count: 1 });
  await b.fail(E.UNKNOWN_STATE, T.ATTACH, cls, created.state, {});
  await a.expectNoPush(200, (m) => m[0] === T.DELETED, 'DELETED to the deleting owner');
});

test('when the owner disconnects (resume window 0) the attached client gets DELETED with reason "owner left"', async (t) => {
  const { a, b, cls, created } = await setup(t);
  await a.terminate();
  const d = await b.nextDeleted(created.state);
  assert.deepEqual(d, [T.DELETED, created.state, 'owner left']);
  await b.fail(E.UNKNOWN_STATE, T.ATTACH, cls, created.state, {});
});

test('when an attached (non-owner) client disconnects the state lives on', async (t) => {
  const { a, b, cls, created } = await setup(t);
  await b.close();
  const r = await a.set(created.instance, { count: 3 });
  assert.equal(r.seq, 1);
  const c = await h.client(t);
  const again = await c.attach(cls, created.state, {});
  assert.equal(again.values.count, 3);
});

test('CREATE of an undefined class is UNKNOWN_CLASS', async (t) => {
  const a = await h.client(t);
  await a.fail(E.UNKNOWN_CLASS, T.CREATE, 'never-defined-class', {});
});
