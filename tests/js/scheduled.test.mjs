// Scheduled sets (PROTOCOL.md §6a): set(updates, { at }) takes effect at
// sync time `at` on every client, requester included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, waitFor, sleep, TEST_SCHEMAS } from './helpers.mjs';

let srv;
const clients = [];
async function client(opts) { const c = await connect(srv, opts); clients.push(c); return c; }

before(async () => { srv = await startServer({ schemas: TEST_SCHEMAS, resumeWindow: 0 }); });
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

async function synced(c) { await waitFor(() => Number.isFinite(c.syncTravel), { what: 'clock estimate' }); return c; }

test('a scheduled set fires on every client at `at`, not before; seq follows once', async () => {
  const a = await synced(await client());
  const b = await synced(await client());
  const sa = await a.stateManager.attach('demo');
  const sb = await b.stateManager.attach('demo');
  const fired = { a: [], b: [] };
  sa.onUpdate((n, o, ctx) => fired.a.push({ n, ctx, local: a.getSyncTime() }));
  sb.onUpdate((n, o, ctx) => fired.b.push({ n, ctx, local: b.getSyncTime() }));
  const seq0 = sa.seq;
  const at = a.getSyncTime() + 0.4;
  const res = await sa.set({ frequency: 1234 }, { at });
  assert.equal(res.frequency, 1234);
  assert.equal(sa.get('frequency') === 1234, false, 'not applied before `at`');
  await sleep(100);
  assert.equal(fired.a.length + fired.b.length, 0, 'nothing fired before `at`');
  await waitFor(() => fired.a.length === 1 && fired.b.length === 1, { timeout: 10000, what: 'both fired' });
  for (const [who, f] of Object.entries(fired)) {
    assert.deepEqual(f[0].n, { frequency: 1234 }, who);
    // applied by the local timer at `at`, or by the server's UPDATE if that came first (localhost)
    assert.ok(['scheduled', 'update'].includes(f[0].ctx.source), `${who}: source ${f[0].ctx.source}`);
    assert.equal(typeof f[0].ctx.schedId, 'number', `${who}: schedId`);
    assert.ok(Math.abs(f[0].ctx.time - at) < 1e-9, `${who}: ctx.time is at`);
    assert.ok(f[0].local >= at - 0.03, `${who} fired at ${f[0].local}, at ${at}`);
    assert.ok(f[0].local < at + 1, `${who} fired late: ${f[0].local - at}s`);
  }
  // the server's UPDATE brings the seq, without a second listener call
  await waitFor(() => sa.seq === seq0 + 1 && sb.seq === seq0 + 1, { timeout: 10000, what: 'seq from the UPDATE' });
  await sleep(100);
  assert.equal(fired.a.length, 1);
  assert.equal(fired.b.length, 1);
  assert.equal(sb.get('frequency'), 1234);
  const h = await sb.getHistory({ last: 1 });
  assert.ok(Math.abs(h.events[0].time - at) < 1e-6, 'the event time is `at`');
});

test('a late attacher finds the pending schedule; an `at` in the past is an ordinary set', async () => {
  const a = await synced(await client());
  const sa = await a.stateManager.attach('demo');
  const at = a.getSyncTime() + 0.5;
  await sa.set({ message: 'later' }, { at });
  const b = await synced(await client());
  const sb = await b.stateManager.attach('demo');
  let fired = null;
  sb.onUpdate((n, o, ctx) => { if ('message' in n) fired = ctx; });
  await waitFor(() => fired, { timeout: 10000, what: 'late attacher fired' });
  assert.ok(['scheduled', 'update'].includes(fired.source));
  assert.equal(typeof fired.schedId, 'number');
  assert.equal(sb.get('message'), 'later');
  // `at` already past: applied at once, the usual RESULT. The late
  // attacher's own timer may fire a little before the server's turn does:
  // wait until the server has surely fired 'later' (seq moved on a's side),
  // or 'now' could land first and 'later' legitimately overwrite it.
  await waitFor(() => a.getSyncTime() > at + 0.05 && sa.get('message') === 'later',
    { timeout: 10000, what: 'schedule fired on the writer too' });
  const seq = sa.seq;
  const r = await sa.set({ message: 'now' }, { at: a.getSyncTime() - 1 });
  assert.equal(r.message, 'now');
  assert.equal(sa.get('message'), 'now');
  assert.equal(sa.seq, seq + 1);
});

test('set(updates, options) accepts only { at }', async () => {
  const a = await client();
  const s = await a.stateManager.attach('demo');
  await assert.rejects(s.set({ volume: 0.2 }, { at: 'soon' }), TypeError);
  await assert.rejects(s.set({ volume: 0.2 }, { context: 1 }), TypeError);
  await assert.rejects(s.set({ volume: 0.2 }, { at: 1, other: 2 }), TypeError);
});

test('a set cancelled by another client does not fire at `at` on the clients told, and leaves no timer', async () => {
  const a = await synced(await client());
  const b = await synced(await client());
  const sa = await a.stateManager.attach('demo');
  const sb = await b.stateManager.attach('demo');
  const fired = [];
  sb.onUpdate((n, o, ctx) => { if (ctx.source === 'scheduled') fired.push(n); });
  const cancelled = [];
  b.on('cancelled', (c) => cancelled.push(c.schedId));
  const { schedId } = await sa.set({ frequency: 777 }, { at: a.getSyncTime() + 0.5 });
  await waitFor(() => b.stateManager._records.get(sb.id).pending.has(schedId), { what: 'b knows the schedule' });
  await sa.cancel(schedId);
  await waitFor(() => cancelled.includes(schedId), { what: 'CANCELLED at b' });
  await sleep(900);
  assert.deepEqual(fired, [], 'the cancelled set was not applied at b at `at`');
  assert.notEqual(sb.get('frequency'), 777);
});
