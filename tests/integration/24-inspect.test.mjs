// The operator's view (PROTOCOL.md §8b, §10a): INSPECT and its ROOM pushes
// for admin roles only, clients' SYNC_REPORTs (validated, kept per
// connection, counted in the room), and KICK (the connection closed with
// 4005, the session's states deleted, its token void). Raw protocol and the
// JS client, against the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from '../lib/server.mjs';
import { RawClient, T, E } from '../lib/client.mjs';
import { Client } from '../../web/tutti.js';

const DESC = { v: { type: 'integer', default: 0 } };
let srv, token;

before(async () => {
  srv = await startServer({ secure: true, resumeWindow: 60, schemas: [{ class: 'knob', description: DESC }] });
  const m = /the inspector: http\S+\/inspect#role=admin&token=([0-9a-f]+)/.exec(srv.stdout());
  assert.ok(m, `the banner names the inspector's URL with the admin token:\n${srv.stdout()}`);
  token = m[1];
});
after(() => srv.stop());

const admin = () => RawClient.open(srv.url, { version: 1, role: 'admin', roleToken: token });
const phone = () => RawClient.open(srv.url);
const close = (...cs) => Promise.all(cs.map(async (c) => { if (!c.closeInfo) { c.ws.close(1000); await c.closed; } }));

test('INSPECT is the operator\'s: the audience gets FORBIDDEN, bad options BAD_REQUEST', async () => {
  const p = await phone();
  const a = await admin();
  try {
    const e = await p.fail(E.FORBIDDEN, T.INSPECT, {});
    assert.match(e.message, /audience.*inspect/);
    await p.fail(E.FORBIDDEN, T.KICK, 1);
    await a.fail(E.BAD_REQUEST, T.INSPECT, { sessions: -1 });
    await a.fail(E.BAD_REQUEST, T.INSPECT, { sessions: 10001 });
    await a.fail(E.BAD_REQUEST, T.INSPECT, { rows: 3 });
    await a.fail(E.BAD_MESSAGE, T.INSPECT, 'all');
    await p.expectNoPush(1300, (m) => m[0] === T.ROOM, 'ROOM for the audience');
  } finally { await close(p, a); }
});

test('the room: counts, rows of sessions and states, ten minutes of samples, then a ROOM a second until stopped', async () => {
  const p = await phone();
  const a = await admin();
  try {
    const st = await p.call(T.CREATE, 'knob', {});
    await p.call(T.SET, st.instance, { v: 3 });
    const room = await a.call(T.INSPECT, { sessions: 50, states: 50 });
    for (const k of ['time', 'uptime', 'connections', 'sessions', 'resuming', 'states', 'classes', 'scheduled',
      'inspectors', 'queueBytes', 'databaseBytes', 'storage', 'sample', 'sessionRows', 'stateRows', 'history']) {
      assert.ok(k in room, `room has ${k}: ${JSON.stringify(Object.keys(room))}`);
    }
    assert.equal(room.connections, 2);
    assert.equal(room.inspectors, 1);
    assert.equal(room.storage, null);
    assert.ok(Array.isArray(room.history) && room.history.length >= 1, 'samples since the start');
    const mine = room.sessionRows.find((s) => s.id === p.welcome.session);
    assert.ok(mine, JSON.stringify(room.sessionRows));
    assert.equal(mine.connected, true);
    assert.equal(mine.address, '127.0.0.1');
    assert.equal(mine.owned, 1);
    assert.equal(mine.sync, null, 'no report yet');
    assert.equal(room.sessionRows.find((s) => s.role === 'admin').inspecting, true);
    const row = room.stateRows.find((r) => r[0] === st.state);
    assert.deepEqual(row.slice(1), ['knob', mine.id, 1, 1, 0], '[id, class, owner, seq, subscribers, scheduled]');

    // pushes, about one a second, with the updates of the last second
    const t0 = Date.now();
    const first = await a.nextPush((m) => m[0] === T.ROOM, { timeout: 3000 });
    for (let i = 0; i < 5; i++) await p.call(T.SET, st.instance, { v: 10 + i });
    // the pushes that follow count them: a second's updates (the 5 may
    // fall in two seconds), and the state's seq
    await a.waitFor(() => a.pushes.find((m) => m[0] === T.ROOM && m[1].stateRows.find((r) => r[0] === st.state)[3] === 6 &&
      m[1].sample.t > first[1].sample.t + 1.5), { timeout: 5000, what: 'a ROOM with seq 6, two samples later' });
    const counted = a.pushes.filter((m) => m[0] === T.ROOM).reduce((n, m) => n + m[1].sample.updates * 1, 0);
    assert.equal(Math.round(counted), 5, `updates per second over the samples: ${counted}`);
    assert.ok(first[1].sample.t > room.sample.t - 1e-9);
    assert.ok(Date.now() - t0 < 6000);
    // stop: no more pushes
    assert.equal(await a.call(T.INSPECT, null), null);
    a.pushes.length = 0;
    await a.expectNoPush(1500, (m) => m[0] === T.ROOM, 'ROOM after INSPECT nil');
  } finally { await close(p, a); }
});

test('a phone that lost its connection is listed as resuming, with the address it had', async () => {
  const p = await phone();
  const a = await admin();
  try {
    p.ws.terminate(); // no goodbye: the session waits to resume
    await p.closed;
    let row;
    for (let i = 0; i < 50; i++) {
      const room = await a.call(T.INSPECT, { sessions: 50 });
      row = room.sessionRows.find((s) => s.id === p.welcome.session);
      if (row && !row.connected) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(row && !row.connected, JSON.stringify(row));
    assert.equal(row.address, '127.0.0.1');
    assert.ok(row.goneFor >= 0 && row.goneFor < 10);
  } finally { await close(a); }
});

test('SYNC_REPORT: kept per connection and counted within 1/2/5/10 ms; a malformed one is BAD_MESSAGE and changes nothing', async () => {
  const phones = await Promise.all([phone(), phone(), phone()]);
  const a = await admin();
  try {
    phones[0].send([T.SYNC_REPORT, 'sync', 0.0004, 2e-5, 0.003]);
    phones[1].send([T.SYNC_REPORT, 'training', 0.004, 0, 0.02]);
    phones[2].send([T.SYNC_REPORT, 'startup', 0.05, 0, 0.1]);
    for (const bad of [[T.SYNC_REPORT, 'great', 0.001, 0, 0.01], [T.SYNC_REPORT, 'sync', -1, 0, 0.01],
      [T.SYNC_REPORT, 'sync', 0.001, 5, 0.01], [T.SYNC_REPORT, 'sync', 0.001, 0], [T.SYNC_REPORT, 'sync', 'x', 0, 0]]) {
      phones[0].send(bad);
      const err = await phones[0].waitReply(0);
      assert.equal(err[0], T.ERROR);
      assert.equal(err[2], E.BAD_MESSAGE, JSON.stringify(bad));
    }
    let room;
    for (let i = 0; i < 50; i++) {
      room = await a.call(T.INSPECT, {});
      if (room.sessionRows.filter((s) => s.sync).length === 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const reports = room.sessionRows.filter((s) => s.sync).map((s) => s.sync).sort((x, y) => x.error - y.error);
    assert.equal(reports.length, 3, JSON.stringify(room.sessionRows));
    assert.equal(reports[0].status, 'sync', 'the first report stays: the bad ones after it were dropped');
    assert.ok(Math.abs(reports[0].error - 0.0004) < 1e-6 && Math.abs(reports[0].roundTrip - 0.003) < 1e-6);
    assert.ok(reports[0].age >= 0 && reports[0].age < 10);
    // the sample of the next second counts them
    const push = await a.nextPush((m) => m[0] === T.ROOM && m[1].sample.reporting === 3, { timeout: 3000, what: 'a sample with 3 reports' });
    assert.deepEqual(push[1].sample.within, [1, 1, 2, 2], 'within 1, 2, 5, 10 ms (0.4, 4 and 50 ms)');
  } finally { await close(...phones, a); }
});

test('KICK: the connection is closed with 4005, its states deleted for everybody, its token void; unknown and own sessions refused', async () => {
  const p = await phone();
  const watcher = await phone();
  const a = await admin();
  try {
    const welcome = p.welcome;
    const st = await p.call(T.CREATE, 'knob', {});
    await watcher.call(T.ATTACH, 'knob', st.state, {});
    const rooms = await a.call(T.INSPECT, {});
    const victim = rooms.sessionRows.find((s) => s.id === welcome.session);
    assert.equal(victim.owned, 1);
    const mine = rooms.sessionRows.find((s) => s.role === 'admin');
    await a.fail(E.BAD_REQUEST, T.KICK, mine.id);
    await a.fail(E.UNKNOWN_SESSION, T.KICK, 999999);
    await a.fail(E.BAD_MESSAGE, T.KICK, 'x');
    assert.equal(await a.call(T.KICK, victim.id), null);
    const closed = await p.closed;
    assert.equal(closed.code, 4005);
    assert.match(closed.reason, /operator/);
    const del = await watcher.nextDeleted(st.state);
    assert.equal(del[2], 'owner left');
    await a.fail(E.UNKNOWN_SESSION, T.KICK, victim.id);
    // its token does not resume it
    const back = await RawClient.open(srv.url, { version: 1, token: welcome.token });
    assert.equal(back.welcome.resumed, false);
    await close(back);
    assert.match(srv.stderr(), new RegExp(`session ${victim.id} \\(audience.*ended by the operator`));
  } finally { await close(watcher, a); }
});

test('the JS client: inspect() emits a room a second, sends its sync reports, and a kicked client does not come back', async () => {
  const WS = WebSocket;
  const op = new Client({ url: srv.url, WebSocket: WS, role: 'admin', token });
  const ph = new Client({ url: srv.url, WebSocket: WS, sync: { rampPingPeriod: 0.01, pingPeriod: 0.01 } });
  try {
    await op.connect();
    await ph.connect();
    await ph.sync.start();
    const rooms = [];
    op.on('room', (r) => rooms.push(r));
    const first = await op.inspect({ sessions: 10 });
    assert.ok(first.history.length >= 1);
    // the phone's report arrives and shows in the rows
    const deadline = Date.now() + 8000;
    let row;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const last = rooms.at(-1);
      row = last?.sessionRows.find((s) => s.id === ph.session);
      if (row?.sync) break;
    }
    assert.ok(row?.sync, `the phone's sync report reached the server: ${JSON.stringify(row)}`);
    assert.ok(['startup', 'training', 'sync'].includes(row.sync.status));
    assert.ok(row.sync.error < 0.01, `loopback: error ${row.sync.error}`);
    while (rooms.length < 2) await new Promise((r) => setTimeout(r, 100));
    const closes = [];
    ph.on('close', (c) => closes.push(c.code));
    await op.kick(ph.session);
    await new Promise((res) => { const t = setInterval(() => { if (ph.status === 'closed') { clearInterval(t); res(); } }, 20); });
    assert.deepEqual(closes, [4005]);
    await assert.rejects(op.kick(ph.session), (e) => e.code === E.UNKNOWN_SESSION);
    await op.stopInspecting();
    const n = rooms.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(rooms.length <= n + 1, 'no more rooms after stopInspecting (one may have been on its way)');
  } finally { op.close(); ph.close(); }
});
