// Ordering under load: one state fanned out to many subscribers,
// several writers at once, and a DELETE or an owner leaving in the middle of
// a stream of sets: no gap, no duplicate, nothing after DELETED, one reply
// per request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, defineFresh, RawClient } from './lib/harness.mjs';

const h = useServer({ resumeWindow: 0 });
const DESC = { v: { type: 'integer', default: 0 }, w: { type: 'string', default: '' } };

async function openMany(t, n) {
  const cs = await Promise.all(Array.from({ length: n }, () => RawClient.open(h.url)));
  t.after(async () => { for (const c of cs) c.assertWellFormed(); await Promise.all(cs.map((c) => c.close())); });
  return cs;
}

function updatesOf(c, stateId) {
  return c.log.filter((e) => e.msg[0] === T.UPDATE && e.msg[1] === stateId).map((e) => e.msg);
}

test('one state, 200 subscribers, 3 writers pipelining 100 sets each: every subscriber sees seq 1..300 in order', { timeout: 120000 }, async (t) => {
  const [owner, ...rest] = await openMany(t, 203);
  const writers = rest.slice(0, 3);
  const subs = rest.slice(3);
  const cls = await defineFresh(owner, DESC);
  const st = await owner.create(cls, {});
  const winst = await Promise.all(writers.map((w) => w.attach(cls, st.state, {})));
  await Promise.all(subs.map((s) => s.attach(cls, st.state, {})));
  const N = 100;
  const all = [];
  writers.forEach((w, k) => {
    for (let i = 0; i < N; i++) all.push(w.set(winst[k].instance, { v: k * 1000 + i, w: `writer${k}` }));
  });
  const results = await Promise.all(all);
  const seqs = results.map((r) => r.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 3 * N }, (_, i) => i + 1), 'every set applied once, seqs 1..300');
  // per writer, its own sets are applied in the order it sent them
  for (let k = 0; k < 3; k++) {
    const mine = results.slice(k * N, (k + 1) * N).map((r) => r.seq);
    assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `writer ${k} sets applied in order`);
  }
  // the owner is attached too: wait for its updates as for the others'
  for (const s of [...subs, owner]) {
    await s.waitFor(() => (updatesOf(s, st.state).length >= 3 * N ? true : undefined), { timeout: 30000, what: '300 UPDATEs' });
  }
  for (const s of [...subs, owner]) {
    const us = updatesOf(s, st.state);
    assert.deepEqual(us.map((u) => u[2]), Array.from({ length: 3 * N }, (_, i) => i + 1));
  }
  // the values a subscriber saw for seq k are the ones the writer of seq k wrote
  const bySeq = new Map(results.map((r) => [r.seq, r.changes]));
  for (const u of updatesOf(subs[0], st.state)) assert.deepEqual(u[4], bySeq.get(u[2]));
});

test('a DELETE in the middle of a stream of sets: updates stop at DELETED, later sets get UNKNOWN_INSTANCE, one reply each', { timeout: 60000 }, async (t) => {
  const [owner, w, x] = await openMany(t, 3);
  const cls = await defineFresh(owner, DESC);
  const st = await owner.create(cls, {});
  const wi = await w.attach(cls, st.state, {});
  await x.attach(cls, st.state, {});
  const N = 300;
  const msgs = [];
  for (let i = 0; i < N; i++) msgs.push([T.SET, 10000 + i, wi.instance, { v: i + 1 }]);
  w.sendMany(msgs.slice(0, N / 2));
  owner.send([T.DELETE, 999, st.instance]);
  const del = await owner.waitReply(999);
  assert.deepEqual(del, [T.RESULT, 999, null]);
  w.sendMany(msgs.slice(N / 2)); // after the DELETE: all refused
  const replies = [];
  for (const m of msgs) replies.push(await w.waitReply(m[1], { timeout: 20000 }));
  // a prefix of the sets succeeded with seqs 1..k, the rest are refused
  const ok = replies.filter((r) => r[0] === T.RESULT);
  const k = ok.length;
  assert.ok(k <= N / 2, `${k} sets applied, at most the ${N / 2} sent before the DELETE`);
  assert.deepEqual(replies.slice(0, k).map((r) => r[0]), Array(k).fill(T.RESULT), 'successes form a prefix');
  assert.deepEqual(ok.map((r) => r[2].seq), Array.from({ length: k }, (_, i) => i + 1));
  for (const r of replies.slice(k)) assert.deepEqual([r[0], r[2]], [T.ERROR, E.UNKNOWN_INSTANCE], JSON.stringify(r));
  // the writer and the watcher are both told, once; nothing for the state after it
  for (const c of [w, x]) {
    await c.nextDeleted(st.state);
    await c.expectNoPush(200, (m) => m[0] === T.DELETED && m[1] === st.state, 'a second DELETED');
  }
  const xs = x.log.filter((e) => (e.msg[0] === T.UPDATE || e.msg[0] === T.DELETED) && e.msg[1] === st.state).map((e) => e.msg);
  assert.equal(xs.at(-1)[0], T.DELETED, 'DELETED is the last message about the state');
  assert.deepEqual(xs.slice(0, -1).map((u) => u[2]), Array.from({ length: k }, (_, i) => i + 1), 'watcher saw exactly the applied seqs');
  const ws = w.log.filter((e) => e.msg[0] === T.UPDATE && e.msg[1] === st.state);
  assert.equal(ws.length, 0, 'the writer never got UPDATEs for its own sets');
});

test('the owner leaving in the middle of a stream of sets: DELETED "owner left" ends the stream for every attached client', { timeout: 60000 }, async (t) => {
  const [owner, w, x] = await openMany(t, 3);
  const cls = await defineFresh(owner, DESC);
  const st = await owner.create(cls, {});
  const wi = await w.attach(cls, st.state, {});
  await x.attach(cls, st.state, {});
  const N = 200;
  const ids = [];
  for (let i = 0; i < N / 4; i++) { ids.push(20000 + i); w.send([T.SET, 20000 + i, wi.instance, { v: i + 1 }]); }
  owner.terminate();
  await x.waitFor(() => (x.log.some((e) => e.msg[0] === T.DELETED) ? true : undefined), { what: 'DELETED' });
  for (let i = N / 4; i < N; i++) { ids.push(20000 + i); w.send([T.SET, 20000 + i, wi.instance, { v: i + 1 }]); }
  const replies = [];
  for (const id of ids) replies.push(await w.waitReply(id, { timeout: 20000 }));
  const k = replies.filter((r) => r[0] === T.RESULT).length;
  assert.ok(k <= N / 4, `${k} sets applied, at most the ${N / 4} sent before the owner left`);
  assert.deepEqual(replies.slice(0, k).map((r) => r[2].seq), Array.from({ length: k }, (_, i) => i + 1));
  for (const r of replies.slice(k)) assert.deepEqual([r[0], r[2]], [T.ERROR, E.UNKNOWN_INSTANCE]);
  assert.deepEqual(await w.nextDeleted(st.state), [T.DELETED, st.state, 'owner left']);
  assert.deepEqual(await x.nextDeleted(st.state), [T.DELETED, st.state, 'owner left']);
  const xs = x.log.filter((e) => (e.msg[0] === T.UPDATE || e.msg[0] === T.DELETED) && e.msg[1] === st.state).map((e) => e.msg);
  assert.equal(xs.at(-1)[0], T.DELETED);
  assert.deepEqual(xs.slice(0, -1).map((u) => u[2]), Array.from({ length: k }, (_, i) => i + 1));
});

test('clients attaching during a stream of sets each see consecutive seqs from their attach seq, and attach values match that seq', { timeout: 60000 }, async (t) => {
  const [owner, ...cs] = await openMany(t, 11);
  const cls = await defineFresh(owner, DESC);
  const st = await owner.create(cls, {});
  const N = 200;
  const setting = (async () => { for (let i = 0; i < N; i++) await owner.set(st.instance, { v: i + 1 }); })();
  // clients attach at various points while the stream runs
  const attached = [];
  for (const c of cs) {
    attached.push(await c.attach(cls, st.state, {}));
    await new Promise((r) => setTimeout(r, 5));
  }
  await setting;
  for (let j = 0; j < cs.length; j++) {
    const c = cs[j];
    const from = attached[j].seq;
    const expected = Array.from({ length: N - from }, (_, i) => from + i + 1);
    await c.waitFor(() => (updatesOf(c, st.state).length >= expected.length ? true : undefined), { timeout: 20000, what: `client ${j} updates` });
    const got = updatesOf(c, st.state).map((u) => u[2]);
    assert.deepEqual(got, expected, `client ${j} attached at seq ${from}`);
    // the attach values match that seq: v == seq here
    assert.equal(attached[j].values.v, from);
  }
});
