// Boolean, string, enum (strict type equality) and any (deep
// equality with map key order ignored, canonical maps, duplicate keys and
// depth refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass, assertNames, RawClient } from './lib/harness.mjs';
import { RawMap, Raw } from '../lib/mp.mjs';

const CLS = uniqueClass('kinds');
const DESC = {
  flag: { type: 'boolean', default: false },
  label: { type: 'string', default: '' },
  mode: { type: 'enum', list: ['sine', 'square', 1, '2'], default: 'sine' },
  blob: { type: 'any', default: { x: 1, y: [1, 2] } },
  maybe: { type: 'any', default: null, nullable: true },
};
const h = useServer({}, async (hh) => {
  const c = await RawClient.open(hh.url);
  await c.define(CLS, DESC);
  await c.close();
});
const DEFAULTS = { flag: false, label: '', mode: 'sine', blob: { x: 1, y: [1, 2] }, maybe: null };


async function pair(t, init = {}) {
  const a = await h.client(t);
  const b = await h.client(t);
  const st = await a.create(CLS, init);
  const att = await b.attach(CLS, st.state, {});
  return { a, b, st, att };
}

async function setAndSeen(t, updates, expectedChanges) {
  const p = await pair(t);
  const r = await p.a.set(p.st.instance, updates);
  assert.deepEqual(r.changes, expectedChanges);
  const u = await p.b.nextUpdate(p.st.state);
  assert.deepEqual(u[4], expectedChanges);
  return { ...p, r, u };
}

async function rejected(t, updates, code, param, valueText) {
  const { a, b, st } = await pair(t);
  const e = await a.fail(code, T.SET, st.instance, updates);
  assertNames(e.message, { cls: CLS, param, value: valueText });
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE, 'UPDATE after a refused set');
  const again = await b.attach(CLS, st.state, {});
  assert.equal(again.seq, 0);
  assert.deepEqual(again.values, DEFAULTS);
}

test('boolean accepts true and broadcasts it', async (t) => {
  await setAndSeen(t, { flag: true }, { flag: true });
});

test('boolean rejects 1 with BAD_VALUE', async (t) => {
  await rejected(t, { flag: 1 }, E.BAD_VALUE, 'flag', '1');
});

test('boolean rejects the string "true" with BAD_VALUE', async (t) => {
  await rejected(t, { flag: 'true' }, E.BAD_VALUE, 'flag', 'true');
});

test('string accepts UTF-8 text and broadcasts it unchanged', async (t) => {
  await setAndSeen(t, { label: 'héllo ✓ 音' }, { label: 'héllo ✓ 音' });
});

test('string rejects a number with BAD_VALUE', async (t) => {
  await rejected(t, { label: 4242 }, E.BAD_VALUE, 'label', '4242');
});

test('string rejects a msgpack bin with BAD_VALUE', async (t) => {
  await rejected(t, { label: new Uint8Array([104, 105]) }, E.BAD_VALUE, 'label');
});

const NOT_UTF8 = () => new Raw(Buffer.from([0xa2, 0xc3, 0x28])); // str of 2 bytes, invalid UTF-8

test('string rejects a msgpack str that is not valid UTF-8 with BAD_VALUE', async (t) => {
  await rejected(t, { label: NOT_UTF8() }, E.BAD_VALUE, 'label');
});

test('any rejects a string that is not valid UTF-8 (also nested) with BAD_VALUE', async (t) => {
  await rejected(t, { blob: { deep: [NOT_UTF8()] } }, E.BAD_VALUE, 'blob');
});

test('a class name that is not valid UTF-8 is refused', async (t) => {
  const a = await h.client(t);
  const reply = await a.request(T.DEFINE, NOT_UTF8(), { x: { type: 'integer', default: 0 } });
  assert.equal(reply[0], T.ERROR);
});

test('enum accepts a string item of its list', async (t) => {
  await setAndSeen(t, { mode: 'square' }, { mode: 'square' });
});

test('enum accepts an integer item of its list (1)', async (t) => {
  await setAndSeen(t, { mode: 1 }, { mode: 1 });
});

test('enum accepts the string item "2" of its list', async (t) => {
  await setAndSeen(t, { mode: '2' }, { mode: '2' });
});

test('enum rejects "1" when the list holds the integer 1 (strict type equality)', async (t) => {
  await rejected(t, { mode: '1' }, E.BAD_VALUE, 'mode', '1');
});

test('enum rejects 2 when the list holds the string "2" (strict type equality)', async (t) => {
  await rejected(t, { mode: 2 }, E.BAD_VALUE, 'mode', '2');
});

test('enum rejects a value not in its list', async (t) => {
  await rejected(t, { mode: 'triangle' }, E.BAD_VALUE, 'mode', 'triangle');
});

test('any accepts nested maps and arrays and broadcasts them', async (t) => {
  const v = { list: [1, 'two', { three: 3.5 }, null, true], nested: { deep: { deeper: [[]] } } };
  await setAndSeen(t, { blob: v }, { blob: v });
});

test('any accepts scalars of any type (string, float, bool)', async (t) => {
  const { a, b, st } = await setAndSeen(t, { blob: 'just a string' }, { blob: 'just a string' });
  for (const v of [2.5, false, -3]) {
    const r = await a.set(st.instance, { blob: v });
    assert.deepEqual(r.changes, { blob: v });
    assert.deepEqual((await b.nextUpdate(st.state))[4], { blob: v });
  }
});

test('any: the same map in another key order is not a change (not broadcast, seq unchanged)', async (t) => {
  const { a, b, st, r } = await setAndSeen(t, { blob: { alpha: 1, beta: { c: 2, d: [3, 4] } } }, { blob: { alpha: 1, beta: { c: 2, d: [3, 4] } } });
  const again = await a.set(st.instance, { blob: new RawMap([['beta', new RawMap([['d', [3, 4]], ['c', 2]])], ['alpha', 1]]) });
  assert.deepEqual(again.changes, {});
  assert.equal(again.seq, r.seq);
  await b.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE for a reordered identical map');
});

test('any: a different array order is a change', async (t) => {
  const { a, b, st } = await setAndSeen(t, { blob: [1, 2, 3] }, { blob: [1, 2, 3] });
  const r = await a.set(st.instance, { blob: [3, 2, 1] });
  assert.deepEqual(r.changes, { blob: [3, 2, 1] });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { blob: [3, 2, 1] });
});

test('any: a change deep inside a map is a change', async (t) => {
  const { a, b, st } = await setAndSeen(t, { blob: { k: { l: [1, { m: 1 }] } } }, { blob: { k: { l: [1, { m: 1 }] } } });
  const r = await a.set(st.instance, { blob: { k: { l: [1, { m: 2 }] } } });
  assert.equal(r.seq, 2);
  assert.deepEqual((await b.nextUpdate(st.state))[4], { blob: { k: { l: [1, { m: 2 }] } } });
});

test('any: maps are canonicalised with their keys sorted', async (t) => {
  const { u } = await setAndSeen(t, { blob: new RawMap([['zeta', 1], ['alpha', new RawMap([['y', 1], ['b', 2]])], ['mid', 3]]) }, { blob: { alpha: { b: 2, y: 1 }, mid: 3, zeta: 1 } });
  assert.deepEqual(Object.keys(u[4].blob), ['alpha', 'mid', 'zeta']);
  assert.deepEqual(Object.keys(u[4].blob.alpha), ['b', 'y']);
});

/** Send a SET with raw parts; resolve the ERROR, with its reqId or reqId 0 (unreadable request). */
async function refusedRaw(t, updates, codes) {
  const { a, b, st } = await pair(t);
  const reqId = 7000 + a.nextReqId++;
  a.send([T.SET, reqId, st.instance, updates]);
  const reply = await a.waitFor(() => a.replies.find((m) => m[1] === reqId || m[1] === 0), { what: `reply ${reqId} or 0` });
  assert.equal(reply[0], T.ERROR, `refused: ${JSON.stringify(reply)}`);
  assert.ok(codes.includes(reply[2]), `code ${reply[2]}: ${reply[3]}`);
  await b.expectNoPush(250, (m) => m[0] === T.UPDATE, 'UPDATE after a refused set');
  const again = await b.attach(CLS, st.state, {});
  assert.equal(again.seq, 0);
  assert.deepEqual(again.values, DEFAULTS);
  // the connection is still served
  const r = await a.set(st.instance, { flag: true });
  assert.equal(r.seq, 1);
  return reply;
}

test('any: a map with a duplicate key is refused (BAD_VALUE, or BAD_MESSAGE)', async (t) => {
  const reply = await refusedRaw(t, { blob: new RawMap([['dup', 1], ['dup', 2]]) }, [E.BAD_VALUE, E.BAD_MESSAGE]);
  if (reply[1] !== 0 && reply[2] === E.BAD_VALUE) assertNames(reply[3], { cls: CLS, param: 'blob' });
});


for (const [what, key] of [['a nil key', null], ['a boolean key', true]]) {
  test(`any: a map with ${what} is refused with one reply and nothing stored (map keys are str)`, async (t) => {
    const { a, b, st } = await pair(t);
    const reqId = 8000 + a.nextReqId++;
    a.send([T.SET, reqId, st.instance, { blob: { inner: new RawMap([[key, 1]]) } }]);
    const reply = await a.waitFor(() => a.replies.find((m) => m[1] === reqId || m[1] === 0), { timeout: 3000, what: `reply ${reqId}` });
    assert.equal(reply[0], T.ERROR);
    assert.ok([E.BAD_VALUE, E.BAD_MESSAGE].includes(reply[2]), `code ${reply[2]}`);
    await b.expectNoPush(200, (m) => m[0] === T.UPDATE);
    const again = await b.attach(CLS, st.state, {});
    assert.deepEqual(again.values, DEFAULTS);
  });

  test(`any: CREATE with ${what} in a map is refused with one reply and no state`, async (t) => {
    const a = await h.client(t);
    const o = await h.client(t);
    await o.observe(CLS);
    const reqId = 8500 + a.nextReqId++;
    a.send([T.CREATE, reqId, CLS, { blob: new RawMap([[key, 'v']]) }]);
    const reply = await a.waitFor(() => a.replies.find((m) => m[1] === reqId || m[1] === 0), { timeout: 3000, what: `reply ${reqId}` });
    assert.equal(reply[0], T.ERROR);
    await o.expectNoPush(200, (m) => m[0] === T.NOTICE && m[1] === 'create', 'create NOTICE');
  });
}

test('any: nesting 16 deep is accepted', async (t) => {
  let v = 'leaf';
  for (let i = 0; i < 16; i++) v = [v];
  await setAndSeen(t, { blob: v }, { blob: v });
});

test('any: nesting 17 deep is refused with BAD_VALUE naming class and param', async (t) => {
  let v = 'leaf';
  for (let i = 0; i < 17; i++) v = { k: v };
  const reply = await refusedRaw(t, { blob: v }, [E.BAD_VALUE]);
  assert.notEqual(reply[1], 0, 'the request was readable: the ERROR carries its reqId');
  assertNames(reply[3], { cls: CLS, param: 'blob' });
});

test('any: 30 nested arrays (a message 32 levels deep) are still readable and refused with BAD_VALUE', async (t) => {
  let v = 'leaf';
  for (let i = 0; i < 30; i++) v = [v];
  const reply = await refusedRaw(t, { blob: v }, [E.BAD_VALUE]);
  assert.notEqual(reply[1], 0);
});

test('a message nested deeper than 32 levels is unreadable: BAD_MESSAGE with reqId 0, and the connection goes on', async (t) => {
  let v = 'leaf';
  for (let i = 0; i < 40; i++) v = { k: v };
  const reply = await refusedRaw(t, { blob: v }, [E.BAD_MESSAGE]);
  assert.equal(reply[1], 0);
});

test('100000 nested arrays are refused as unreadable (BAD_MESSAGE, reqId 0) without harming the server', async (t) => {
  const depth = 100000;
  const bytes = Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
  const reply = await refusedRaw(t, { blob: new Raw(bytes) }, [E.BAD_MESSAGE]);
  assert.equal(reply[1], 0);
});

test('any that is not nullable refuses nil with NOT_NULLABLE', async (t) => {
  await rejected(t, { blob: null }, E.NOT_NULLABLE, 'blob');
});

test('nullable any accepts nil and a value', async (t) => {
  const { a, b, st } = await setAndSeen(t, { maybe: { on: true } }, { maybe: { on: true } });
  const r = await a.set(st.instance, { maybe: null });
  assert.deepEqual(r.changes, { maybe: null });
  assert.deepEqual((await b.nextUpdate(st.state))[4], { maybe: null });
});
