// Framing and bad input. Not msgpack, text frames, not an array,
// wrong field types, oversized messages (close 1009); the server keeps
// serving the other clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, defineFresh, orTimeout } from './lib/harness.mjs';
import { encode, encodeMany } from '../lib/mp.mjs';

const MAX = 4096;
const h = useServer({ maxMessage: MAX });

function errorsWithReqId0(c) {
  return c.replies.filter((m) => m[0] === T.ERROR && m[1] === 0);
}

test('a binary frame that is not msgpack is answered ERROR BAD_MESSAGE with reqId 0', async (t) => {
  const c = await h.client(t);
  c.sendRaw(Buffer.from([0xc1, 0xc1, 0xc1]));
  const e = await c.waitReply(0, { what: 'ERROR reqId 0' });
  assert.equal(e[0], T.ERROR);
  assert.equal(e[2], E.BAD_MESSAGE);
  assert.equal(typeof e[3], 'string');
});

test('after a not-msgpack frame the server keeps serving the other clients and the sender', async (t) => {
  const bad = await h.client(t);
  const good = await h.client(t);
  const cls = await defineFresh(good, { x: { type: 'integer', default: 0 } });
  bad.sendRaw(Buffer.from([0xc1]));
  bad.sendRaw(Buffer.from([0x93, 0x01])); // truncated array
  await bad.waitFor(() => (errorsWithReqId0(bad).length >= 1 ? true : undefined), { what: 'BAD_MESSAGE' });
  assert.ok(errorsWithReqId0(bad).every((m) => m[2] === E.BAD_MESSAGE));
  const r = await good.create(cls, { x: 3 });
  assert.equal(r.values.x, 3);
  // the sender itself is still served
  const d = await bad.describe(cls);
  assert.equal(d.x.type, 'integer');
});

test('a text frame is answered ERROR BAD_MESSAGE with reqId 0 and otherwise ignored', async (t) => {
  const c = await h.client(t);
  // valid-looking JSON of a request: must not be executed
  c.sendRaw(JSON.stringify([2, 5, 'textframe_class', { x: { type: 'integer', default: 0 } }]), { binary: false });
  const e = await c.waitReply(0, { what: 'ERROR reqId 0' });
  assert.deepEqual([e[0], e[2]], [T.ERROR, E.BAD_MESSAGE]);
  await c.ping();
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'textframe_class');
  assert.equal(c.replyCount(5), 0, 'the text request got no reply of its own');
});

test('a msgpack value that is not an array is answered ERROR BAD_MESSAGE with reqId 0', async (t) => {
  const c = await h.client(t);
  c.sendRaw(encode({ type: 11, reqId: 3 }));
  const e = await c.waitReply(0);
  assert.deepEqual([e[0], e[2]], [T.ERROR, E.BAD_MESSAGE]);
  assert.equal(c.replyCount(3), 0);
});

test('an array whose type is not an integer, or that has no reqId, is answered ERROR BAD_MESSAGE with reqId 0', async (t) => {
  const c = await h.client(t);
  c.sendRaw(encode(['DESCRIBE', 4, 'x']));
  const e1 = await c.waitReply(0);
  assert.deepEqual([e1[0], e1[2]], [T.ERROR, E.BAD_MESSAGE]);
  c.sendRaw(encode([T.DESCRIBE]));
  const e2 = await c.waitReply(0);
  assert.deepEqual([e2[0], e2[2]], [T.ERROR, E.BAD_MESSAGE]);
  c.sendRaw(encode([]));
  const e3 = await c.waitReply(0);
  assert.deepEqual([e3[0], e3[2]], [T.ERROR, E.BAD_MESSAGE]);
});

test('a request with a field of the wrong type is answered BAD_MESSAGE with its reqId', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_MESSAGE, T.DESCRIBE, 12345);          // className must be a str
  await c.fail(E.BAD_MESSAGE, T.SET, 'not-an-instance', {}); // instanceId must be uint
  const r = await c.request(T.DEFINE, 'wrongtype', [1, 2]); // description must be a map
  assert.deepEqual([r[0], r[1]], [T.ERROR, c.nextReqId - 1]);
  assert.ok([E.BAD_MESSAGE, E.BAD_DESCRIPTION].includes(r[2]), `code ${r[2]}`);
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'wrongtype');
});

test('several msgpack values in one WebSocket message are each handled, in order', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: 0 } });
  c.sendRaw(encodeMany([
    [T.CREATE, 501, cls, { x: 1 }],
    [T.DESCRIBE, 502, cls],
    [T.DESCRIBE, 503, 'nope-batch'],
  ]));
  await c.waitFor(() => (c.replies.length >= 3 ? true : undefined), { what: '3 replies' });
  const [a, b, d] = c.replies.splice(0, 3);
  assert.deepEqual([a[0], a[1]], [T.RESULT, 501]);
  assert.equal(a[2].values.x, 1);
  assert.deepEqual([b[0], b[1]], [T.RESULT, 502]);
  assert.deepEqual([d[0], d[1], d[2]], [T.ERROR, 503, E.UNKNOWN_CLASS]);
});

test('a message just under --max-message is accepted', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { s: { type: 'string', default: '' } });
  const st = await c.create(cls, {});
  const big = 'a'.repeat(MAX - 200);
  const msg = encode([T.SET, 77, st.instance, { s: big }]);
  assert.ok(msg.length < MAX);
  c.sendRaw(msg);
  const r = await c.waitReply(77);
  assert.equal(r[0], T.RESULT, JSON.stringify(r).slice(0, 300));
  assert.equal(r[2].changes.s, big);
});

test('a message over --max-message closes that connection with 1009 and the other clients keep working', async (t) => {
  const big = await h.client(t);
  const other = await h.client(t);
  const cls = await defineFresh(other, { x: { type: 'integer', default: 0 } });
  const st = await other.create(cls, {});
  // a well-formed msgpack message, only too large
  big.sendRaw(encode([T.SET, 9, 1, { s: 'b'.repeat(MAX + 100) }]));
  const info = await orTimeout(big.closed, 5000);
  assert.notEqual(info, 'timeout', 'connection was not closed');
  assert.equal(info.code, 1009);
  assert.equal(big.replyCount(9), 0, 'the oversized request was not processed');
  const r = await other.set(st.instance, { x: 5 });
  assert.deepEqual(r.changes, { x: 5 });
  const c3 = await h.client(t);
  assert.ok(c3.welcome.session > 0, 'new connections are still accepted');
});

test('a much larger message (64 KiB, not msgpack) over --max-message also closes with 1009', async (t) => {
  const big = await h.client(t);
  big.sendRaw(Buffer.alloc(64 * 1024, 0xc1));
  const info = await orTimeout(big.closed, 5000);
  assert.notEqual(info, 'timeout');
  assert.equal(info.code, 1009);
  const other = await h.client(t);
  await other.ping();
});

function sendFragments(c, bytes, parts) {
  const step = Math.ceil(bytes.length / parts);
  for (let off = 0; off < bytes.length; off += step) {
    c.ws.send(bytes.subarray(off, off + step), { binary: true, fin: off + step >= bytes.length });
  }
}

test('a request split across several WebSocket fragments is reassembled and answered', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { s: { type: 'string', default: '' } });
  const st = await c.create(cls, {});
  const value = 'frag'.repeat(500);
  sendFragments(c, encode([T.SET, 321, st.instance, { s: value }]), 7);
  const r = await c.waitReply(321);
  assert.equal(r[0], T.RESULT);
  assert.equal(r[2].changes.s, value);
});

test('fragments that add up to more than --max-message close the connection with 1009', async (t) => {
  const c = await h.client(t);
  const other = await h.client(t);
  sendFragments(c, encode([T.SET, 322, 1, { s: 'z'.repeat(MAX * 2) }]), 8);
  const info = await orTimeout(c.closed, 5000);
  assert.notEqual(info, 'timeout');
  assert.equal(info.code, 1009);
  await other.ping();
});

test('200 PINGs in one WebSocket message get 200 PONGs, in order', async (t) => {
  const c = await h.client(t);
  const msgs = [];
  for (let i = 0; i < 200; i++) msgs.push([T.PING, 50000 + i, i / 10]);
  assert.ok(Buffer.concat(msgs.map((m) => encode(m))).length < MAX);
  c.sendMany(msgs);
  await c.waitFor(() => (c.pushes.filter((m) => m[0] === T.PONG).length >= 200 ? true : undefined), { what: '200 PONGs' });
  const pongs = c.pushes.filter((m) => m[0] === T.PONG);
  assert.deepEqual(pongs.map((m) => m[1]), msgs.map((m) => m[1]));
  assert.deepEqual(pongs.map((m) => m[2]), msgs.map((m) => m[2]));
});
