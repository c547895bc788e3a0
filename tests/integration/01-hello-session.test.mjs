// Session start. HELLO/welcome, NOT_READY, BAD_VERSION, second HELLO,
// unknown message type, PING before HELLO.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E } from './lib/harness.mjs';

const h = useServer({ maxMessage: 65536, resumeWindow: 7 });

test('HELLO version 1 is answered with a welcome carrying session, token, time, resumed, maxMessage, resumeWindow', async (t) => {
  const c = await h.rawClient(t);
  const w = await c.hello({ version: 1 });
  assert.equal(typeof w, 'object');
  assert.ok(Number.isInteger(w.session) && w.session > 0, `session is a positive integer (0 is the server): ${w.session}`);
  assert.equal(typeof w.token, 'string');
  assert.ok(w.token.length >= 16, `token looks like a secret: ${w.token}`);
  assert.equal(typeof w.time, 'number');
  assert.ok(Number.isFinite(w.time) && w.time >= 0);
  assert.equal(w.resumed, false);
  assert.equal(w.maxMessage, 65536, 'maxMessage reflects --max-message');
  assert.equal(w.resumeWindow, 7, 'resumeWindow reflects --resume-window');
});

test('two clients get different session ids and different tokens', async (t) => {
  const a = await h.client(t);
  const b = await h.client(t);
  assert.notEqual(a.welcome.session, b.welcome.session);
  assert.notEqual(a.welcome.token, b.welcome.token);
});

test('a request before HELLO is answered NOT_READY with its reqId', async (t) => {
  const c = await h.rawClient(t);
  const e = await c.fail(E.NOT_READY, T.DESCRIBE, 'anything');
  assert.ok(e.reqId > 0);
  const e2 = await c.fail(E.NOT_READY, T.CREATE, 'anything', {});
  assert.notEqual(e2.reqId, e.reqId);
  // and HELLO still works afterwards
  const w = await c.hello({ version: 1 });
  assert.ok(w.session > 0);
});

test('HELLO with version 2 is refused with BAD_VERSION', async (t) => {
  const c = await h.rawClient(t);
  const e = await c.fail(E.BAD_VERSION, T.HELLO, { version: 2 });
  assert.ok(e.reqId > 0);
  // no session was opened: other requests are still NOT_READY (if the server kept the connection)
  let r = null;
  try { r = await c.request(T.DESCRIBE, 'x'); } catch (err) { if (!c.closeInfo) throw err; }
  if (r) assert.deepEqual([r[0], r[2]], [T.ERROR, E.NOT_READY]);
});

test('HELLO without a version is refused (BAD_VERSION or BAD_REQUEST), not welcomed', async (t) => {
  const c = await h.rawClient(t);
  const reply = await c.request(T.HELLO, {});
  assert.equal(reply[0], T.ERROR, `expected ERROR, got ${JSON.stringify(reply)}`);
  assert.ok([E.BAD_VERSION, E.BAD_REQUEST, E.BAD_MESSAGE].includes(reply[2]), `code ${reply[2]}`);
});

test('a second HELLO on the same connection is BAD_REQUEST', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_REQUEST, T.HELLO, { version: 1 });
  // the session is still usable
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'no-such-class-hello');
});

test('an unknown message type is answered UNKNOWN_TYPE with its reqId and the connection stays open', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.UNKNOWN_TYPE, 42, 'x');
  assert.ok(e.reqId > 0);
  const e2 = await c.fail(E.UNKNOWN_TYPE, 63);
  assert.ok(e2.reqId > 0);
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'no-such-class-unknown-type');
  assert.equal(c.closeInfo, null);
});

test('a server-to-client type sent by the client (RESULT) is refused with an ERROR carrying its reqId', async (t) => {
  const c = await h.client(t);
  const reply = await c.request(T.RESULT, {});
  assert.equal(reply[0], T.ERROR);
  assert.ok([E.UNKNOWN_TYPE, E.BAD_MESSAGE, E.BAD_REQUEST].includes(reply[2]), `code ${reply[2]}`);
});

test('PING before HELLO is answered with PONG echoing pingId and clientTime, with server times', async (t) => {
  const c = await h.rawClient(t);
  c.send([T.PING, 77, 123.25]);
  const p = await c.nextPush((m) => m[0] === T.PONG);
  assert.equal(p.length, 5);
  assert.equal(p[1], 77);
  assert.equal(p[2], 123.25);
  assert.equal(typeof p[3], 'number');
  assert.equal(typeof p[4], 'number');
  assert.ok(p[4] >= p[3], 'serverSendTime >= serverRecvTime');
  // PING is not a request: no RESULT/ERROR
  await c.expectSilence(200);
});

test('replies come in request order for requests pipelined in one WebSocket message', async (t) => {
  const c = await h.client(t);
  const msgs = [];
  for (let i = 0; i < 20; i++) msgs.push([T.DESCRIBE, 1000 + i, `missing-${i}`]);
  c.sendMany(msgs);
  await c.waitFor(() => (c.replies.length >= 20 ? true : undefined), { what: '20 replies' });
  assert.deepEqual(c.replies.map((m) => m[1]), msgs.map((m) => m[1]));
  assert.ok(c.replies.every((m) => m[0] === T.ERROR && m[2] === E.UNKNOWN_CLASS));
});

test('the largest reqId (2^32 - 1) is echoed in its reply', async (t) => {
  const c = await h.client(t);
  c.send([T.DESCRIBE, 4294967295, 'nope-max-reqid']);
  const r = await c.waitReply(4294967295);
  assert.deepEqual([r[0], r[1], r[2]], [T.ERROR, 4294967295, E.UNKNOWN_CLASS]);
});
