// Integer and float validation and coercion (PROTOCOL.md §7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass, assertNames, RawClient } from './lib/harness.mjs';
import { F64 } from '../lib/mp.mjs';

const CLS = uniqueClass('numbers');
const DESC = {
  level: { type: 'integer', default: 5, min: 0, max: 10 },
  bigint: { type: 'integer', default: 0 },
  gain: { type: 'float', default: 0.5, min: 0, max: 1 },
  freq: { type: 'float', default: 440 },
};
const h = useServer({}, async (hh) => {
  const c = await RawClient.open(hh.url);
  await c.define(CLS, DESC);
  await c.close();
});


/** owner a with a fresh state, peer b attached to it */
async function pair(t, init = {}) {
  const a = await h.client(t);
  const b = await h.client(t);
  const st = await a.create(CLS, init);
  const att = await b.attach(CLS, st.state, {});
  return { a, b, st, att };
}

async function setAndSeen(t, updates, expectedChanges) {
  const { a, b, st } = await pair(t);
  const r = await a.set(st.instance, updates);
  assert.deepEqual(r.changes, expectedChanges);
  const u = await b.nextUpdate(st.state);
  assert.deepEqual(u[4], expectedChanges);
  return { a, b, st, r };
}

async function rejected(t, updates, code, param, valueText) {
  const { a, b, st } = await pair(t);
  const e = await a.fail(code, T.SET, st.instance, updates);
  assertNames(e.message, { cls: CLS, param, value: valueText });
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE, 'UPDATE after a refused set');
  const again = await b.attach(CLS, st.state, {});
  assert.equal(again.seq, 0);
  assert.deepEqual(again.values, { level: 5, bigint: 0, gain: 0.5, freq: 440 });
}

test('integer above max is clipped to max', async (t) => {
  await setAndSeen(t, { level: 99 }, { level: 10 });
});

test('integer below min is clipped to min', async (t) => {
  await setAndSeen(t, { level: -7 }, { level: 0 });
});

test('integer inside [min, max] is stored as is', async (t) => {
  await setAndSeen(t, { level: 7 }, { level: 7 });
});

test('integer clipping also applies to CREATE init values', async (t) => {
  const a = await h.client(t);
  const st = await a.create(CLS, { level: 1000, gain: -3 });
  assert.equal(st.values.level, 10);
  assert.equal(st.values.gain, 0);
});

test('integer accepts an integral float (1.0 sent as msgpack float64)', async (t) => {
  await setAndSeen(t, { level: new F64(3.0) }, { level: 3 });
});

test('integer accepts an integral float above max and clips it', async (t) => {
  await setAndSeen(t, { level: new F64(20.0) }, { level: 10 });
});

test('unbounded integer keeps large values exactly (2^53 - 1 and -(2^53 - 1))', async (t) => {
  const { a, b, st } = await setAndSeen(t, { bigint: Number.MAX_SAFE_INTEGER }, { bigint: Number.MAX_SAFE_INTEGER });
  const r = await a.set(st.instance, { bigint: -Number.MAX_SAFE_INTEGER });
  assert.deepEqual(r.changes, { bigint: -Number.MAX_SAFE_INTEGER });
  const u = await b.nextUpdate(st.state);
  assert.deepEqual(u[4], { bigint: -Number.MAX_SAFE_INTEGER });
});

test('integer clips a huge msgpack int (2^62, int64 encoding) to max', async (t) => {
  await setAndSeen(t, { level: 2n ** 62n }, { level: 10 });
});

test('unbounded integer rejects a msgpack uint64 above the int64 range (2^63) with BAD_VALUE', async (t) => {
  await rejected(t, { bigint: 2n ** 63n }, E.BAD_VALUE, 'bigint');
});

test('integer accepts -0.0 as 0', async (t) => {
  const { a, st } = await pair(t, { level: 3 });
  const r = await a.set(st.instance, { level: new F64(-0) });
  assert.deepEqual(r.changes, { level: 0 });
});

test('integer rejects a fraction (1.5) with BAD_VALUE naming class, param and value', async (t) => {
  await rejected(t, { level: 1.5 }, E.BAD_VALUE, 'level', '1.5');
});

test('integer rejects NaN with BAD_VALUE', async (t) => {
  await rejected(t, { level: NaN }, E.BAD_VALUE, 'level');
});

test('integer rejects +Infinity with BAD_VALUE', async (t) => {
  await rejected(t, { level: Infinity }, E.BAD_VALUE, 'level');
});

test('integer rejects -Infinity with BAD_VALUE', async (t) => {
  await rejected(t, { bigint: -Infinity }, E.BAD_VALUE, 'bigint');
});

test('integer rejects an integral float outside the int64 range (1e20) with BAD_VALUE', async (t) => {
  await rejected(t, { bigint: 1e20 }, E.BAD_VALUE, 'bigint');
});

test('integer rejects a numeric string ("3") with BAD_VALUE', async (t) => {
  await rejected(t, { level: '3' }, E.BAD_VALUE, 'level', '3');
});

test('integer rejects a boolean with BAD_VALUE', async (t) => {
  await rejected(t, { level: true }, E.BAD_VALUE, 'level', 'true');
});

test('float above max is clipped to max', async (t) => {
  await setAndSeen(t, { gain: 1.75 }, { gain: 1 });
});

test('float below min is clipped to min', async (t) => {
  await setAndSeen(t, { gain: -0.25 }, { gain: 0 });
});

test('float accepts a msgpack integer', async (t) => {
  await setAndSeen(t, { freq: 880 }, { freq: 880 });
});

test('float keeps a fractional value exactly', async (t) => {
  await setAndSeen(t, { gain: 0.123456789 }, { gain: 0.123456789 });
});

test('float rejects NaN with BAD_VALUE naming class and param', async (t) => {
  await rejected(t, { gain: NaN }, E.BAD_VALUE, 'gain');
});

test('unbounded float accepts +Infinity and -Infinity', async (t) => {
  const { a, b, st } = await setAndSeen(t, { freq: Infinity }, { freq: Infinity });
  const r = await a.set(st.instance, { freq: -Infinity });
  assert.deepEqual(r.changes, { freq: -Infinity });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { freq: -Infinity });
});

test('bounded float clips +Infinity to max', async (t) => {
  await setAndSeen(t, { gain: Infinity }, { gain: 1 });
});

test('float rejects a string with BAD_VALUE', async (t) => {
  await rejected(t, { gain: 'loud' }, E.BAD_VALUE, 'gain', 'loud');
});

test('a set whose value clips to the current value changes nothing: answered, not broadcast, seq unchanged', async (t) => {
  const { a, b, st } = await pair(t, { level: 10 });
  const r = await a.set(st.instance, { level: 50 });
  assert.deepEqual(r.changes, {});
  assert.equal(r.seq, 0);
  await b.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE for a no-op set');
});

test('an integer with fractional bounds [0.5, 10.5] clips to integers inside them (1 and 10)', async (t) => {
  const a = await h.client(t);
  const cls = uniqueClass('fracbounds');
  // a default outside the bounds is a mistake in the description, refused
  await a.fail(E.BAD_DESCRIPTION, T.DEFINE, cls, { i: { type: 'integer', default: 0, min: 0.5, max: 10.5 } });
  await a.define(cls, { i: { type: 'integer', default: 1, min: 0.5, max: 10.5 } });
  const st = await a.create(cls, { i: 0 });
  assert.equal(st.values.i, 1, 'a value of 0 is clipped to the smallest integer >= 0.5');
  assert.deepEqual((await a.set(st.instance, { i: 100 })).changes, { i: 10 });
  assert.deepEqual((await a.set(st.instance, { i: -100 })).changes, { i: 1 });
});

test('values are coerced before the change check: int 1 on a float holding 1.0 is not a change', async (t) => {
  const { a, b, st } = await pair(t, { freq: 1 });
  const r = await a.set(st.instance, { freq: 1 });
  assert.deepEqual(r.changes, {});
  const r2 = await a.set(st.instance, { freq: new F64(1) });
  assert.deepEqual(r2.changes, {});
  assert.equal(r2.seq, 0);
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE);
});

test('values are coerced before the change check: float 3.0 on an integer holding 3 is not a change', async (t) => {
  const { a, b, st } = await pair(t, { level: 3 });
  const r = await a.set(st.instance, { level: new F64(3) });
  assert.deepEqual(r.changes, {});
  assert.equal(r.seq, 0);
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE);
});
