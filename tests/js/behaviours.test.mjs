// Client-side param behaviours, as in soundworks: immediate, local,
// acknowledge:false, event, filterChange:false.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, waitFor, sleep, THING } from './helpers.mjs';

let srv, a, b, owned, peer;

before(async () => {
  srv = await startServer({ schemas: {} });
  a = await connect(srv);
  b = await connect(srv);
  await a.stateManager.defineClass('thing', THING);
  owned = await a.stateManager.create('thing', { req: 'r' });
  peer = await b.stateManager.attach('thing', owned.id);
});
after(async () => {
  a?.close(); b?.close();
  await srv.stop();
});

// make sure the peer has seen every earlier update before a test starts recording
let settleN = 0;
async function settle() {
  const v = `settle ${++settleN}`;
  await owned.set({ str: v });
  await waitFor(() => peer.get('str') === v, { what: 'peer settled' });
}

function recorder(state) {
  const calls = [];
  const off = state.onUpdate((n, o, ctx) => calls.push({ n, o, source: ctx.source, seq: ctx.seq }));
  return { calls, off };
}

test('regular param: listeners run when the reply arrives, not inside set()', async () => {
  await settle();
  const r = recorder(owned);
  const p = owned.set({ int: 4 });
  assert.equal(r.calls.length, 0, 'not synchronous');
  assert.equal(owned.get('int'), 0, 'not applied before the reply');
  await p;
  assert.equal(r.calls.length, 1);
  assert.equal(owned.get('int'), 4);
  r.off();
});

test('immediate: applied and listeners called synchronously inside set(), not again on the reply', async () => {
  await settle();
  const r = recorder(owned);
  const rp = recorder(peer);
  const p = owned.set({ imm: 5 });
  assert.equal(owned.get('imm'), 5, 'applied at once');
  assert.equal(r.calls.length, 1);
  assert.equal(r.calls[0].source, 'immediate');
  assert.deepEqual(r.calls[0].n, { imm: 5 });
  assert.deepEqual(r.calls[0].o, { imm: 0 });
  const res = await p;
  // as in soundworks: an immediate key the server applied unchanged is not
  // in the result (the listeners saw it already)
  assert.deepEqual(res, {});
  assert.equal(owned.get('imm'), 5);
  assert.equal(r.calls.length, 1, 'the reply did not fire again (same value)');
  await waitFor(() => rp.calls.length === 1, { what: 'peer update' });
  assert.deepEqual(rp.calls[0].n, { imm: 5 });
  assert.equal(rp.calls[0].source, 'update');
  // clipped by the local check too, so no second call either
  r.off(); rp.off();
});

test('immediate: a set refused by the server is reverted locally', async () => {
  const c = await connect(srv, { validate: false });
  try {
    const s = await c.stateManager.attach('thing', owned.id);
    const r = recorder(s);
    const before = s.get('imm');
    await assert.rejects(s.set({ imm: 7, bool: 'not a bool' }), (e) => e.code === 31);
    assert.equal(s.get('imm'), before, 'reverted');
    assert.deepEqual(r.calls.map((x) => x.source), ['immediate', 'revert']);
  } finally { c.close(); }
});

test('local: never sent, applied at once, resolves at once', async () => {
  await settle();
  const r = recorder(owned);
  const sent = a.stats.requestsOut;
  const res = await owned.set({ loc: 'mine' });
  assert.deepEqual(res, { loc: 'mine' });
  assert.equal(owned.get('loc'), 'mine');
  assert.equal(r.calls.length, 1);
  assert.equal(r.calls[0].source, 'local');
  await sleep(20);
  assert.equal(a.stats.requestsOut, sent, 'nothing sent for a local-only set');
  assert.equal(peer.get('loc'), 'here', 'the peer keeps its own local value');
  // mixed with a shared key: local listeners first, then the server's reply
  const p = owned.set({ loc: 'both', str: 'shared' });
  assert.equal(r.calls.length, 2);
  assert.deepEqual(r.calls[1].n, { loc: 'both' });
  const res2 = await p;
  assert.deepEqual(res2, { loc: 'both', str: 'shared' });
  assert.equal(r.calls.length, 3);
  assert.deepEqual(r.calls[2].n, { str: 'shared' });
  await waitFor(() => peer.get('str') === 'shared');
  assert.equal(peer.get('loc'), 'here');
  r.off();
});

test('acknowledge:false: applied at once, sent to peers, not echoed to the requester', async () => {
  await settle();
  const r = recorder(owned);
  const rp = recorder(peer);
  const res = await owned.set({ unack: 0.75 });
  assert.deepEqual(res, { unack: 0.75 });
  assert.equal(owned.get('unack'), 0.75);
  assert.equal(r.calls.length, 1);
  await waitFor(() => rp.calls.length === 1, { what: 'peer update' });
  assert.deepEqual(rp.calls[0].n, { unack: 0.75 });
  await owned.set({ str: 'flush' }); // the RESULT of the unack set came before this one
  assert.equal(r.calls.length, 2, 'no echo of the unacknowledged key');
  assert.deepEqual(r.calls[1].n, { str: 'flush' });
  r.off(); rp.off();
});

test('event: broadcast every time, value visible inside listeners, null after', async () => {
  await settle();
  const r = [], rp = [];
  const off1 = owned.onUpdate((n) => { if ('ev' in n) r.push([n.ev, owned.get('ev')]); });
  const off2 = peer.onUpdate((n) => { if ('ev' in n) rp.push([n.ev, peer.get('ev')]); });
  const seq = owned.seq;
  const res = await owned.set({ ev: 3 });
  assert.equal(res.ev, 3);
  await owned.set({ ev: 3 }); // same value again: still broadcast
  assert.equal(owned.seq, seq + 2);
  await waitFor(() => rp.length === 2, { what: 'two events on peer' });
  assert.deepEqual(r, [[3, 3], [3, 3]]);
  assert.deepEqual(rp, [[3, 3], [3, 3]]);
  assert.equal(owned.get('ev'), null);
  assert.equal(peer.get('ev'), null);
  assert.equal(peer.getValues().ev, null);
  off1(); off2();
});

test('filterChange:false: broadcast even when unchanged', async () => {
  await settle();
  const rp = recorder(peer);
  await owned.set({ always: 2 });
  await owned.set({ always: 2 });
  await waitFor(() => rp.calls.length === 2, { what: 'two updates' });
  assert.deepEqual(rp.calls.map((c) => c.n), [{ always: 2 }, { always: 2 }]);
  // while a regular param set to its current value is not
  await owned.set({ str: owned.get('str') });
  await owned.set({ always: 3 });
  await waitFor(() => rp.calls.length === 3);
  assert.deepEqual(rp.calls[2].n, { always: 3 });
  rp.off();
});

test('any: deep equality, key order ignored', async () => {
  await settle();
  const rp = recorder(peer);
  await owned.set({ any: { a: 1, b: [1, { c: 2 }] } });
  await waitFor(() => rp.calls.length === 1);
  const seq = owned.seq;
  const res = await owned.set({ any: { b: [1, { c: 2 }], a: 1 } });
  assert.equal(owned.seq, seq, 'same map in another key order is no change');
  assert.deepEqual(res.any, { a: 1, b: [1, { c: 2 }] });
  await owned.set({ any: null }); // nullable
  await waitFor(() => rp.calls.length === 2);
  assert.equal(peer.get('any'), null);
  rp.off();
});
