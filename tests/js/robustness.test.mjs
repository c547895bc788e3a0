// The client never hangs: request timeouts, a frozen server (heartbeat),
// resume with a SNAPSHOT, a state deleted while away, oversized messages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import WebSocket from 'ws';
import { Client, ErrorCode } from '../../web/tutti.js';
import { startServer, connect, waitFor, within, sleep, TEST_SCHEMAS } from './helpers.mjs';

const servers = [];
const clients = [];
async function server(opts) { const s = await startServer({ schemas: TEST_SCHEMAS, ...opts }); servers.push(s); return s; }
async function client(srv, opts) { const c = await connect(srv, opts); clients.push(c); return c; }
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) { try { s.proc.kill('SIGCONT'); } catch { /* gone */ } await s.stop(); }
});

test('a request without reply rejects with TIMEOUT; the late reply is ignored', async () => {
  const srv = await server();
  const a = await client(srv, { requestTimeout: 400, heartbeatTimeout: 0 });
  const s = await a.stateManager.attach('demo');
  srv.proc.kill('SIGSTOP');
  try {
    const t0 = Date.now();
    await assert.rejects(within(s.set({ volume: 0.11 }), 3000, 'set'), (e) => e.code === ErrorCode.TIMEOUT && e.codeName === 'TIMEOUT');
    assert.ok(Date.now() - t0 < 2000);
  } finally { srv.proc.kill('SIGCONT'); }
  // the server applied it when it woke up; the late RESULT went nowhere, and the next set works
  const r = await s.set({ volume: 0.12 });
  assert.equal(r.volume, 0.12);
  assert.equal(s.get('volume'), 0.12);
});

test('a frozen server: the heartbeat notices, the client reconnects and resumes', async () => {
  const srv = await server({ resumeWindow: 30 });
  const a = await client(srv, { pingInterval: 100, heartbeatTimeout: 500, backoffMin: 50, backoffMax: 200 });
  const s = await a.stateManager.attach('demo');
  const session = a.session;
  let resumed = false;
  a.on('resumed', () => { resumed = true; });
  srv.proc.kill('SIGSTOP');
  try {
    await waitFor(() => a.status !== 'open', { timeout: 10000, what: 'heartbeat timeout' });
  } finally { srv.proc.kill('SIGCONT'); }
  await waitFor(() => resumed, { timeout: 10000, what: 'resume' });
  assert.equal(a.session, session);
  const r = await s.set({ frequency: 555 });
  assert.equal(r.frequency, 555);
});

test('resume after more missed updates than the history holds: a SNAPSHOT', async () => {
  const srv = await server({ resumeWindow: 30, history: 2 });
  const a = await client(srv, { backoffMin: 400, backoffMax: 500 });
  const b = await client(srv);
  const sa = await a.stateManager.attach('demo');
  const sb = await b.stateManager.attach('demo');
  const seen = [];
  sa.onUpdate((n, o, ctx) => seen.push({ n, source: ctx.source, seq: ctx.seq }));
  a.dropConnection();
  for (let i = 1; i <= 6; i++) await sb.set({ frequency: 1000 + i });
  await sb.set({ message: 'missed a lot' });
  await waitFor(() => a.status === 'open', { timeout: 10000, what: 'reconnected' });
  await waitFor(() => sa.get('message') === 'missed a lot', { what: 'caught up' });
  assert.equal(sa.get('frequency'), 1006);
  assert.equal(sa.seq, sb.seq);
  assert.equal(seen.length, 1, 'one snapshot, not a replay');
  assert.equal(seen[0].source, 'snapshot');
  assert.deepEqual(seen[0].n, { frequency: 1006, message: 'missed a lot' });
  assert.equal(seen[0].seq, sb.seq);
});

test('a state deleted while the client was away: onDetach("deleted") after the resume', async () => {
  const srv = await server({ resumeWindow: 30 });
  const a = await client(srv, { backoffMin: 300, backoffMax: 400 });
  const b = await client(srv);
  await b.stateManager.defineClass('room', { n: { type: 'integer', default: 0 } });
  const owned = await b.stateManager.create('room');
  const peer = await a.stateManager.attach('room', owned.id);
  let reason = null;
  peer.onDetach((r) => { reason = r; });
  a.dropConnection();
  await owned.delete();
  await waitFor(() => reason, { timeout: 10000, what: 'onDetach after resume' });
  assert.equal(reason, 'deleted');
  assert.equal(a.welcome.resumed, true);
});

test('a message larger than the server limit is refused locally (LIMIT), the connection stays', async () => {
  const srv = await server({ maxMessage: 4096 });
  const a = await client(srv);
  assert.equal(a.maxMessage, 4096);
  await a.stateManager.defineClass('blob', { data: { type: 'any', default: null, nullable: true } });
  const s = await a.stateManager.create('blob');
  await assert.rejects(s.set({ data: 'x'.repeat(10000) }), (e) => e.code === ErrorCode.LIMIT);
  assert.equal(a.status, 'open');
  // many small sets in one microtask go out in several frames, each under the limit
  const ps = [];
  for (let i = 0; i < 40; i++) ps.push(s.set({ data: `${i}`.padEnd(300, '.') }));
  await within(Promise.all(ps), 15000, '40 sets');
  assert.ok(s.get('data').startsWith('39'));
  assert.equal(a.status, 'open');
});

test('close() rejects pending requests at once and stops reconnecting', async () => {
  const srv = await server();
  const a = await client(srv);
  const s = await a.stateManager.attach('demo');
  srv.proc.kill('SIGSTOP');
  try {
    const p = s.set({ volume: 0.3 });
    await sleep(20);
    a.close();
    await assert.rejects(within(p, 1000, 'pending set'), (e) => e.code === ErrorCode.CLOSED);
  } finally { srv.proc.kill('SIGCONT'); }
  await sleep(300);
  assert.equal(a.status, 'closed');
});

test('a peer that never answers HELLO: the client gives up on that connection and tries a new one', async () => {
  // not the tutti server: a WebSocket endpoint that accepts tutti.v1 and stays silent
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (ps) => (ps.has('tutti.v1') ? 'tutti.v1' : false) });
  await new Promise((r) => wss.once('listening', r));
  let connections = 0;
  wss.on('connection', () => { connections++; });
  const c = new Client({ url: `ws://127.0.0.1:${wss.address().port}/`, WebSocket, requestTimeout: 300, backoffMin: 50, backoffMax: 100, connectTimeout: 3000 });
  try {
    await assert.rejects(within(c.connect(), 6000, 'connect'), (e) => e.code === ErrorCode.TIMEOUT);
    assert.ok(connections >= 2, `reconnected after the silent HELLO (${connections} connections)`);
    assert.equal(c.status, 'closed');
  } finally {
    c.close();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});
