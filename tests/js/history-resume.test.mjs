// tutti's own: history on attach, getHistory, seq/time, reconnection with
// resume, session loss, and the sync clock.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../web/tutti.js';
import { startServer, connect, waitFor, sleep, TEST_SCHEMAS } from './helpers.mjs';

const servers = [];
const clients = [];
async function server(opts) { const s = await startServer({ schemas: TEST_SCHEMAS, ...opts }); servers.push(s); return s; }
async function client(srv, opts) { const c = await connect(srv, opts); clients.push(c); return c; }
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
});

test('history on attach (last N, since seq) and getHistory', async () => {
  const srv = await server({ history: 5 });
  const a = await client(srv);
  const s = await a.stateManager.attach('demo');
  const seq0 = s.seq;
  for (let i = 1; i <= 8; i++) await s.set({ frequency: 100 * i });
  await s.set({ bang: true });
  assert.equal(s.seq, seq0 + 9);
  const b = await client(srv);
  const late = await b.stateManager.attach('demo', { history: 3 });
  assert.equal(late.history.length, 3);
  assert.deepEqual(late.history.map((e) => e.seq), [seq0 + 7, seq0 + 8, seq0 + 9]);
  const last = late.history[2];
  assert.deepEqual(last.changes, { bang: true });
  assert.equal(last.origin, a.session);
  assert.equal(typeof last.time, 'number');
  assert.equal(late.get('bang'), null, 'late joiners see null for an event');
  assert.equal(late.historyComplete, true);
  const since = await b.stateManager.attach('demo', null, { since: seq0 + 2 });
  assert.equal(since.historyComplete, false, 'history holds only 5 events');
  assert.deepEqual(since.history.map((e) => e.seq), [seq0 + 5, seq0 + 6, seq0 + 7, seq0 + 8, seq0 + 9]);
  const h = await late.getHistory({ last: 2 });
  assert.deepEqual(h.events.map((e) => e.seq), [seq0 + 8, seq0 + 9]);
  assert.equal(h.complete, true);
  const h2 = await late.getHistory({ since: seq0 + 7 });
  assert.deepEqual(h2.events.map((e) => e.seq), [seq0 + 8, seq0 + 9]);
  assert.equal(late.history === null, false);
  const plain = await b.stateManager.attach('demo');
  assert.equal(plain.history, null, 'no history unless asked');
  // filtered history
  const f = await b.stateManager.attach('demo', { filter: ['volume'], history: 5 });
  for (const e of f.history) assert.deepEqual(Object.keys(e.changes).filter((k) => k !== 'volume'), []);
});

test('update time is the server sync time; getSyncTime tracks it', async () => {
  const srv = await server();
  const a = await client(srv);
  await waitFor(() => Number.isFinite(a.syncTravel), { what: 'a pong' });
  const s = await a.stateManager.attach('demo');
  let t = null;
  s.onUpdate((n, o, ctx) => { t = ctx.time; });
  const before = a.getSyncTime();
  await s.set({ frequency: 321 });
  const afterT = a.getSyncTime();
  assert.ok(t >= before - 0.05 && t <= afterT + 0.05, `update time ${t} within [${before}, ${afterT}]`);
  assert.ok(Math.abs(a.getLocalTime(a.getSyncTime()) - a.getLocalTime()) < 0.01);
  assert.ok(a.syncTravel < 0.5);
  const t1 = a.getSyncTime();
  await sleep(100);
  const t2 = a.getSyncTime();
  assert.ok(t2 - t1 > 0.08 && t2 - t1 < 0.5, 'sync time advances like the local clock');
});

test('the clock estimator (sync.js) takes over after its first series, in step with the quick estimate', async () => {
  const srv = await server();
  const a = await client(srv);
  const reports = [];
  a.on('syncreport', (r) => reports.push(r.status));
  assert.equal(a.getSyncReport().status, 'startup');
  await waitFor(() => a.getSyncReport().status === 'training', { timeout: 15000, what: 'first series' });
  assert.ok(reports.includes('training'));
  const local = a.getLocalTime();
  const quick = local + a.syncOffset;
  const est = a.getSyncTime(local);
  assert.ok(Math.abs(est - quick) < 0.01, `estimator ${est} vs quick ${quick}`);
  assert.ok(Math.abs(a.getLocalTime(est) - local) < 1e-6, 'getLocalTime inverts getSyncTime');
  // server times land between two readings of the estimated clock
  const s = await a.stateManager.attach('demo');
  let t = null;
  s.onUpdate((n, o, ctx) => { t = ctx.time; });
  const before = a.getSyncTime();
  await s.set({ frequency: 432 });
  const after = a.getSyncTime();
  assert.ok(t >= before - 0.01 && t <= after + 0.01, `update time ${t} within [${before}, ${after}]`);
  // monotonic
  let prev = a.getSyncTime();
  for (let i = 0; i < 1000; i++) { const x = a.getSyncTime(); assert.ok(x >= prev); prev = x; }
});

test('reconnect and resume: same session, instances kept, missed updates delivered in order', async () => {
  const srv = await server({ resumeWindow: 30 });
  const a = await client(srv, { backoffMin: 50, backoffMax: 200 });
  const b = await client(srv);
  await a.stateManager.defineClass('room', { n: { type: 'integer', default: 0 }, e: { type: 'integer', event: true } });
  const owned = await a.stateManager.create('room');
  const sa = await a.stateManager.attach('demo');
  const sb = await b.stateManager.attach('demo');
  const peer = await b.stateManager.attach('room', owned.id);
  const seen = [];
  const statusInListener = [];
  sa.onUpdate((n, o, ctx) => { seen.push([ctx.seq, n.frequency, ctx.source]); statusInListener.push(a.status); });
  const statuses = [];
  a.on('status', (s) => statuses.push(s));
  let resumed = null;
  a.on('resumed', (w) => { resumed = w; });
  const session = a.session;
  const seq0 = sa.seq;
  a.dropConnection();
  assert.notEqual(a.status, 'open');
  await assert.rejects(sa.set({ volume: 0.1 }), (e) => e.code === ErrorCode.DISCONNECTED);
  // b writes while a is away
  await sb.set({ frequency: 600 });
  await sb.set({ frequency: 700 });
  await waitFor(() => resumed, { timeout: 10000, what: 'resumed event' });
  assert.equal(resumed.resumed, true);
  assert.equal(a.session, session, 'same session');
  assert.ok(statuses.includes('reconnecting'));
  assert.equal(statuses.at(-1), 'open');
  await waitFor(() => sa.get('frequency') === 700, { what: 'missed updates' });
  assert.deepEqual(seen.map((x) => x[0]), [seq0 + 1, seq0 + 2], 'each missed update, in order');
  assert.deepEqual(seen.map((x) => x[1]), [600, 700]);
  assert.deepEqual(statusInListener, ['open', 'open'], 'the session is open when the missed updates are replayed');
  // instances still work after the resume, the owned state survived
  assert.equal(owned.detached, false);
  await owned.set({ n: 5 });
  await waitFor(() => peer.get('n') === 5, { what: 'set after resume' });
  await sa.set({ volume: 0.9 });
  await waitFor(() => sb.get('volume') === 0.9);
});

test('reconnect after the session expired: old instances detached, sessionlost event', async () => {
  const srv = await server({ resumeWindow: 0 });
  const a = await client(srv, { backoffMin: 300, backoffMax: 400 });
  const b = await client(srv);
  await a.stateManager.defineClass('room', { n: { type: 'integer', default: 0 } });
  const owned = await a.stateManager.create('room');
  const sa = await a.stateManager.attach('demo');
  const peer = await b.stateManager.attach('room', owned.id);
  const events = [];
  owned.onDetach((r) => events.push(`owned detach ${r}`));
  owned.onDelete((r) => events.push(`owned delete ${r}`));
  sa.onDetach((r) => events.push(`demo detach ${r}`));
  let peerReason = null;
  peer.onDetach((r) => { peerReason = r; });
  let lost = null;
  a.on('sessionlost', (w) => { lost = w; });
  const oldSession = a.session;
  a.dropConnection();
  await waitFor(() => peerReason, { timeout: 10000, what: 'owner left on the peer' });
  assert.equal(peerReason, 'owner left');
  await waitFor(() => lost, { timeout: 10000, what: 'sessionlost' });
  assert.equal(lost.resumed, false);
  assert.notEqual(a.session, oldSession);
  assert.deepEqual(events.sort(), ['demo detach session lost', 'owned delete session lost', 'owned detach session lost']);
  assert.equal(sa.detached, true);
  // the app attaches again
  const again = await a.stateManager.attach('demo');
  assert.equal(again.detached, false);
});

test('server restart (kill -9) while clients are connected: clients reconnect on their own', async () => {
  const srv = await server({ resumeWindow: 30 });
  const a = await client(srv, { backoffMin: 50, backoffMax: 300 });
  let opens = 0;
  a.on('open', () => { opens++; });
  await srv.kill9();
  await waitFor(() => a.status === 'reconnecting', { what: 'reconnecting status' });
  // a server on the same port again (a new in-memory server: the session is unknown)
  const srv2 = await server({ resumeWindow: 30, port: srv.port });
  await waitFor(() => a.status === 'open', { timeout: 10000, what: 'reopened' });
  assert.equal(opens, 1);
  const s = await a.stateManager.attach('demo');
  assert.equal(s.get('volume'), 0.5);
  assert.ok(srv2.port === srv.port);
});
