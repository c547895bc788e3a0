// Bounds (PROTOCOL.md §11-12): everything a client can make the server hold
// or do is capped, so one client cannot starve the others: per-session state
// and attachment limits, the class limit, the message rate limit, and the close
// of a client that only sends garbage (4002). Each limit is started on its own
// server so the others stay at their defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { RawClient, T, E } from '../lib/client.mjs';
import { orTimeout } from './lib/harness.mjs';

const DESC = { v: { type: 'integer', default: 0 } };

async function withServer(opts, fn) {
  const srv = await startServer({ schemas: [], resumeWindow: 0, ...opts }); // no class, sessions go at once
  const clients = [];
  const open = async () => { const c = await RawClient.open(srv.url); clients.push(c); return c; };
  try {
    await fn(srv, open);
    for (const c of clients) c.assertWellFormed();
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await srv.stop();
  }
}

test('--max-states: a session past its limit gets LIMIT at CREATE; other sessions and a freed slot still work', async () => {
  await withServer({ args: ['--max-states', '3'] }, async (srv, open) => {
    const a = await open();
    await a.call(T.DEFINE, 'lim', DESC);
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await a.call(T.CREATE, 'lim', {}));
    const e = await a.fail(E.LIMIT, T.CREATE, 'lim', {});
    assert.ok(e.message.length > 0);
    const b = await open();
    await b.call(T.CREATE, 'lim', {});
    await a.call(T.DELETE, made[0].instance);
    await a.call(T.CREATE, 'lim', {});
    // the refused CREATE made no state
    const obs = await b.call(T.OBSERVE, 'lim');
    assert.equal(obs.states.length, 4);
  });
});

test('--max-instances: a session past its limit gets LIMIT at ATTACH; a detach frees a slot', async () => {
  await withServer({ args: ['--max-instances', '3'] }, async (srv, open) => {
    const o = await open();
    await o.call(T.DEFINE, 'lim', DESC);
    const s = await o.call(T.CREATE, 'lim', {});
    const x = await open();
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await x.call(T.ATTACH, 'lim', s.state, {}));
    await x.fail(E.LIMIT, T.ATTACH, 'lim', s.state, {});
    await x.call(T.DETACH, got[0].instance);
    await x.call(T.ATTACH, 'lim', s.state, {});
  });
});

test('--max-classes: DEFINE past the limit gets LIMIT; an identical re-DEFINE is still a no-op', async () => {
  await withServer({ args: ['--max-classes', '2'] }, async (srv, open) => {
    const a = await open();
    await a.call(T.DEFINE, 'k1', DESC);
    await a.call(T.DEFINE, 'k2', DESC);
    await a.fail(E.LIMIT, T.DEFINE, 'k3', DESC);
    assert.deepEqual(await a.call(T.DEFINE, 'k1', DESC), { defined: false });
    await a.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'k3');
  });
});

test('--max-rate: requests past the rate get RATE_LIMIT, each request still gets exactly one reply, other clients are not affected', async () => {
  await withServer({ args: ['--max-rate', '20'] }, async (srv, open) => {
    const a = await open();
    const b = await open();
    await new Promise((r) => setTimeout(r, 1100)); // a fresh one-second window for both
    const msgs = [];
    for (let i = 0; i < 60; i++) msgs.push([T.DESCRIBE, 100 + i, 'nope']);
    a.sendMany(msgs);
    await a.waitFor(() => (a.replies.length >= 60 ? true : undefined), { what: '60 replies' });
    const codes = a.replies.map((m) => m[2]);
    assert.deepEqual(a.replies.map((m) => m[1]), msgs.map((m) => m[1]), 'one reply per request, in order');
    assert.ok(codes.filter((c) => c === E.RATE_LIMIT).length >= 30, `RATE_LIMIT answers: ${codes.join(',')}`);
    assert.ok(codes.filter((c) => c === E.UNKNOWN_CLASS).length >= 1, 'the first requests are served');
    await b.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'nope');
  });
});

test('a client that only sends garbage is closed with 4002; the others keep working', async () => {
  await withServer({}, async (srv, open) => {
    const bad = await open();
    const good = await open();
    // one bad frame at a time, each answered, until the server gives up
    const start = bad.log.length;
    let sent = 0;
    while (!bad.closeInfo && sent < 200) {
      const before = bad.log.length;
      bad.sendRaw(Buffer.from([0xc1]));
      sent++;
      await bad.waitFor(() => (bad.log.length > before ? true : undefined), { what: 'ERROR' }).catch(() => {});
    }
    const info = await orTimeout(bad.closed, 5000);
    assert.notEqual(info, 'timeout', 'the garbage client was not closed');
    assert.equal(info.code, 4002);
    assert.ok(sent >= 2, `closed after ${sent} bad frames`);
    assert.ok(bad.log.slice(start).every((e) => e.msg[0] === T.ERROR && e.msg[1] === 0 && e.msg[2] === E.BAD_MESSAGE), 'every bad frame got ERROR BAD_MESSAGE reqId 0');
    await good.call(T.DEFINE, 'still', DESC);
  });
});

test('protocol errors between successful requests do not add up to a 4002 close', async () => {
  await withServer({}, async (srv, open) => {
    const c = await open();
    await c.call(T.DEFINE, 'ok', DESC);
    for (let i = 0; i < 200; i++) {
      c.sendRaw(Buffer.from([0xc1]));
      if (i % 10 === 9) assert.deepEqual(await c.call(T.DEFINE, 'ok', DESC), { defined: false });
    }
    await c.ping();
    assert.equal(c.closeInfo, null);
  });
});

test('protocol errors between valid requests answered with an ERROR (UNKNOWN_CLASS) do not add up to a 4002 close', async () => {
  await withServer({}, async (srv, open) => {
    const c = await open();
    for (let i = 0; i < 200; i++) {
      c.sendRaw(Buffer.from([0xc1]));
      if (i % 10 === 9) await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'nope');
    }
    await c.ping();
    assert.equal(c.closeInfo, null);
  });
});

test('--max-queue: a client that stops reading is closed with 4001 while the others get every update', { timeout: 60000 }, async () => {
  await withServer({ args: ['--max-queue', '65536'], maxMessage: 1024 * 1024 }, async (srv, open) => {
    const o = await open();
    const slow = await open();
    const fast = await open();
    await o.call(T.DEFINE, 'q', { s: { type: 'string', default: '' }, n: { type: 'integer', default: 0 } });
    const st = await o.call(T.CREATE, 'q', {});
    await slow.call(T.ATTACH, 'q', st.state, {});
    await fast.call(T.ATTACH, 'q', st.state, {});
    slow.ws._socket.pause(); // stop reading: the server's queue for it grows
    // enough to fill the kernel's socket buffers too (loopback buffers hold MBs)
    const N = 400;
    for (let i = 0; i < N; i++) {
      const r = await o.call(T.SET, st.instance, { s: String(i).padEnd(60000, 'x'), n: i + 1 });
      assert.equal(r.seq, i + 1);
    }
    await fast.waitFor(() => (fast.log.filter((e) => e.msg[0] === T.UPDATE).length >= N ? true : undefined), { timeout: 20000, what: 'all UPDATEs' });
    assert.deepEqual(fast.log.filter((e) => e.msg[0] === T.UPDATE).map((e) => e.msg[2]), Array.from({ length: N }, (_, i) => i + 1));
    slow.ws._socket.resume();
    const info = await orTimeout(slow.closed, 10000);
    assert.notEqual(info, 'timeout', 'the slow client was not closed');
    assert.equal(info.code, 4001);
    const got = slow.log.filter((e) => e.msg[0] === T.UPDATE).map((e) => e.msg[2]);
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i + 1), 'what the slow client got before the close has no gap');
    assert.ok(got.length < N);
    assert.equal(o.closeInfo, null);
    assert.equal(fast.closeInfo, null);
  });
});
