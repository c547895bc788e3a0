// Finding: a reply larger than --max-queue could never be delivered. A client
// that missed 100 updates of 50 KB could never resume (closed with 4001
// before its welcome, retrying forever), and five 1 MiB SETs made every load
// of the demo page fail. Now replies (and a resume's catch-up) are always
// queued; while too much waits unread, the client's further requests wait
// (the rest of its message held, its socket not read) and are answered once
// it reads; only pushes it did not ask for close a client that does not
// read (4001) (PROTOCOL.md §12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { secureServer, withServer, phone, closeAll, closedWithin, memory, bigString, sleep, MiB, T, E, VERSION } from './lib/hostile.mjs';

const FEED = { class: 'feed', description: { s: { type: 'string', default: '' }, t: { type: 'string', default: '' } } };
const QUEUE = ['--max-queue', '65536'];

/** w makes n sets of `bytes` on its instance, a few in flight. */
async function sets(w, instance, n, bytes, tag = '') {
  let inflight = [];
  for (let i = 0; i < n; i++) {
    inflight.push(w.set(instance, { s: bigString(bytes, `${tag}${i}`) }));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
}

test('a client that missed more than --max-queue resumes and gets every update it missed, in order, without a 4001', async () => {
  await withServer({ schemas: [FEED], args: QUEUE }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const st = await w.create('feed', {});
    const r = await phone(srv, { clients: cs });
    const seen = await r.attach('feed', st.state);
    await r.terminate(); // gone without a word; its session waits for it
    await sets(w, st.instance, 100, 5000); // 500 kB missed, the queue holds 64 kB

    const back = await phone(srv, { hello: null, clients: cs });
    const welcome = await back.hello({ version: VERSION, token: r.welcome.token, seqs: { [st.state]: seen.seq } });
    assert.equal(welcome.resumed, true);
    const ups = [];
    for (let i = 0; i < 100; i++) ups.push(await back.nextUpdate(st.state, { timeout: 10000 }));
    assert.deepEqual(ups.map((u) => u[2]), Array.from({ length: 100 }, (_, i) => seen.seq + 1 + i), 'every missed seq, in order');
    assert.equal(ups[99][4].s, bigString(5000, '99'));
    await w.set(st.instance, { s: 'live' });
    assert.deepEqual((await back.nextUpdate(st.state))[4], { s: 'live' });
    assert.equal(back.closeInfo, null);
  });
});

test('the JS client: its connection drops, 100 updates go by, it comes back and sees every one', async () => {
  const srv = await secureServer({ schemas: [FEED], args: QUEUE });
  const cs = [];
  // the phone's network: while down, its connections go nowhere
  let down = false;
  class Net extends WebSocket {
    constructor(url, protocols, opts) { super(down ? 'ws://127.0.0.1:9/' : url, protocols, opts); }
  }
  const js = new Client({ url: srv.url, WebSocket: Net, connectTimeout: 10000, backoffMin: 50, backoffMax: 300 });
  try {
    const w = await phone(srv, { clients: cs });
    const st = await w.create('feed', {});
    await js.connect();
    const state = await js.stateManager.attach('feed', st.state);
    const got = [];
    const closes = [];
    state.onUpdate((v) => { if ('s' in v) got.push(v.s); });
    js.on('close', (e) => closes.push(e.code));
    down = true;
    js.dropConnection(); // the Wi-Fi drops...
    await sets(w, st.instance, 100, 5000);
    down = false; // ...and comes back: the client reconnects and resumes
    for (let i = 0; i < 400 && got.length < 100; i++) await sleep(25);
    assert.equal(got.length, 100, `updates seen after the resume (closes: ${closes})`);
    assert.equal(state.get('s'), bigString(5000, '99'));
    assert.deepEqual(closes.filter((c) => c !== 1006), [4999], 'no close but the drop (and refused attempts while down)');
  } finally {
    js.close();
    await closeAll(cs);
    await srv.stop();
  }
});

test('an ATTACH or a HISTORY whose reply is larger than --max-queue gets through', async () => {
  await withServer({ schemas: [FEED], args: QUEUE }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const st = await w.create('feed', {});
    await sets(w, st.instance, 60, 5000);
    await w.set(st.instance, { s: bigString(60000, 's'), t: bigString(60000, 't') });
    const r = await phone(srv, { clients: cs });
    const at = await r.attach('feed', st.state, { history: 100 });
    assert.equal(at.values.t.length, 60000);
    assert.equal(at.history.length, 61, 'the history asked for, with the values: ~420 kB');
    const h = await r.call(T.HISTORY, at.instance, { last: 100 });
    assert.equal(h.events.length, 61);
    await r.ping();
    assert.equal(r.closeInfo, null);
  });
});

test('a client that asks without reading: the rest of its requests wait (held, its socket no longer read), then each gets its real reply, in order, exactly once', async (t) => {
  await withServer({ schemas: [FEED], args: QUEUE }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const st = await w.create('feed', {});
    await sets(w, st.instance, 100, 5000);
    const r = await phone(srv, { clients: cs });
    const at = await r.attach('feed', st.state);
    const base = memory(srv.proc.pid).rss;
    r.ws._socket.pause(); // reads nothing more
    // one message of 50 requests whose replies take 500 kB each, then 150
    // more messages: 100 MB if every reply were built
    const history = (i) => [T.HISTORY, 5000 + i, at.instance, { last: 100 }];
    r.sendMany(Array.from({ length: 50 }, (_, i) => history(i)));
    for (let i = 50; i < 200; i++) r.send(history(i));
    await sleep(1500);
    const peak = memory(srv.proc.pid).hwm;
    assert.equal(r.closeInfo, null);
    r.ws._socket.resume();
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => r.waitReply(5000 + i, { timeout: 30000 })));
    for (const m of replies) assert.equal(m[0], T.RESULT, `every request is answered: ${JSON.stringify(m).slice(0, 200)}`);
    const order = r.log.filter((e) => e.msg[0] === T.RESULT && e.msg[1] >= 5000).map((e) => e.msg[1]);
    assert.deepEqual(order, Array.from({ length: 200 }, (_, i) => 5000 + i), 'in the order asked');
    for (let i = 0; i < 200; i++) assert.equal(r.replyCount(5000 + i), 1);
    t.diagnostic(`the server's RSS grew by ${((peak - base) / MiB).toFixed(1)} MiB`);
    assert.ok(peak - base < 32 * MiB, `the server's RSS grew by ${((peak - base) / MiB).toFixed(1)} MiB while a client did not read`);
    r.assertWellFormed();
  });
});

test('a frame full of small requests from a client that does not read: the server\'s memory stays bounded', async () => {
  // 200,000 DESCRIBEs of 5 bytes in one message of 1 MB, before any HELLO:
  // each would be answered NOT_READY, and nothing is read by the client.
  // With a 256 KiB queue, what the server holds for each is that queue and
  // the rest of the message (1 MB), whatever the number of requests in it. The queue bound (4 MiB) and the message bound (1 MiB) should
  // bound what the server holds for it.
  // (ASan's quarantine keeps freed blocks: off, so RSS measures what is held)
  const env = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || 'detect_leaks=1'}:quarantine_size_mb=0` };
  await withServer({ schemas: [FEED], args: ['--max-queue', String(256 * 1024)], env }, async (srv, cs) => {
    const base = memory(srv.proc.pid).rss;
    const frame = Buffer.concat(Array(200000).fill(Buffer.from([0x93, T.DESCRIBE, 0x01, 0xa1, 0x78]))); // [11, 1, "x"]
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      const c = await phone(srv, { hello: null, from, clients: cs });
      c.ws._socket.pause();
      c.sendRaw(frame);
    }
    await sleep(3000);
    const peak = memory(srv.proc.pid).hwm;
    assert.ok(peak - base < 16 * MiB, `two clients that do not read made the server's RSS grow by ${((peak - base) / MiB).toFixed(1)} MiB ` +
      'with one 1 MB message each');
    for (const c of cs.splice(0)) c.terminate();
  });
});

test('a subscriber that does not read its pushes is still closed with 4001; the others are served', async () => {
  // a queue that holds a burst of the writer's updates for a reader that reads
  await withServer({ schemas: [FEED], args: ['--max-queue', String(MiB)] }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const st = await w.create('feed', {});
    const slow = await phone(srv, { clients: cs });
    const fine = await phone(srv, { clients: cs });
    await slow.attach('feed', st.state);
    await fine.attach('feed', st.state);
    slow.ws._socket.pause();
    let n = 0;
    // the kernel's socket buffers take several MB before the queue grows
    while (!/closed as a slow consumer/.test(srv.stderr()) && n < 1500) {
      await sets(w, st.instance, 50, 60000, `${n}-`);
      n += 50;
    }
    assert.match(srv.stderr(), /closed as a slow consumer/);
    slow.ws._socket.resume();
    const closed = await closedWithin(slow, 10000);
    assert.equal(closed.code, 4001);
    assert.match(closed.reason, /slow consumer/);
    const last = await w.set(st.instance, { s: 'end' });
    await fine.waitFor(() => (fine.pushes.some((m) => m[0] === T.UPDATE && m[2] === last.seq) ? true : undefined), { timeout: 20000, what: 'the last update' });
    assert.equal(fine.closeInfo, null);
    assert.equal(w.closeInfo, null);
  });
});
