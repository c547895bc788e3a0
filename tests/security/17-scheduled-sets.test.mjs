// Finding: scheduled-set poisoning. Five SETs of ~900 KB with {at: 9e14}
// made every later ATTACH of that state close with 4001, and survived a
// restart; 1000 tiny far-future schedules made every other scheduled SET
// fail with LIMIT, also across restarts. Now a schedule is bounded in
// horizon (--max-schedule-ahead), per session (--max-schedules) and in bytes
// per state (--max-state-bytes), a pending one can be cancelled (CANCEL,
// CANCELLED), and no reply closes its client (PROTOCOL.md §6a, §12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpDir } from '../lib/server.mjs';
import { withServer, schemasDir, phone, asRole, printedToken, serverNow, sleep, T, E, VERSION } from './lib/hostile.mjs';

const PAD = { class: 'pad', description: { s: { type: 'string', default: '', maxBytes: 400000 }, n: { type: 'integer', default: 0 } } };
const BOARD = { class: 'board', server: true, rights: { set: ['*'] }, description: { n: { type: 'integer', default: 0 } } };
const ROLES = { default: 'audience', roles: { audience: {}, conductor: { token: 'conductor-secret-0001' } } };

test('horizon and bytes: {at: 9e14} is BAD_REQUEST; big pending sets stop at --max-state-bytes; ATTACH still answers; and all of it after a restart', async () => {
  const db = join(tmpDir('tutti-sec-db-'), 'tutti.db');
  const dir = schemasDir([PAD]);
  // a small queue: the ATTACH reply listing ~900 kB of pending sets is far
  // larger, and a reply is never a reason to close
  const args = ['--max-queue', '65536'];
  let o, pad;
  await withServer({ schemasDir: dir, db, args }, async (srv, cs) => {
    o = await phone(srv, { clients: cs });
    pad = await o.create('pad', {});
    const at = (await serverNow(o)) + 3600;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await o.call(T.SET, pad.instance, { s: String(i).repeat(300000) }, { at })).scheduled);
    const w = await phone(srv, { clients: cs });
    const seen = await w.attach('pad', pad.state);
    assert.deepEqual(seen.scheduled.map((x) => x[0]), ids, 'the ATTACH lists the pending sets');
    assert.equal(seen.values.s, '', 'none applied');
    await w.ping();
    assert.equal(w.closeInfo, null);

    let e = await o.fail(E.LIMIT, T.SET, pad.instance, { s: '3'.repeat(300000) }, { at });
    assert.match(e.message, /--max-state-bytes/);
    e = await o.fail(E.BAD_REQUEST, T.SET, pad.instance, { n: 1 }, { at: 9e14 });
    assert.match(e.message, /--max-schedule-ahead/);
    e = await o.fail(E.BAD_REQUEST, T.SET, pad.instance, { n: 1 }, { at: (await serverNow(o)) + 2 * 86400 });
    assert.match(e.message, /at most 86400 s ahead/);
  });
  await withServer({ schemasDir: dir, db, args }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const seen = await w.attach('pad', pad.state);
    assert.equal(seen.scheduled.length, 3, 'the pending sets survived the restart');
    const back = await phone(srv, { hello: { version: VERSION, token: o.welcome.token }, clients: cs });
    assert.equal(back.welcome.resumed, true);
    const e = await back.fail(E.LIMIT, T.SET, pad.instance, { s: '3'.repeat(300000) }, { at: (await serverNow(back)) + 60 });
    assert.match(e.message, /--max-state-bytes/);
    await back.fail(E.BAD_REQUEST, T.SET, pad.instance, { n: 1 }, { at: 9e14 });
    await back.call(T.SET, pad.instance, { n: 2 }, { at: (await serverNow(back)) + 60 }); // a small one still fits
    await w.ping();
    assert.equal(w.closeInfo, null);
  });
});

test('--max-schedules per session: past it LIMIT, another phone still schedules; a cancel or an applied set frees a place; the count survives a restart', async () => {
  const db = join(tmpDir('tutti-sec-db-'), 'tutti.db');
  const dir = schemasDir([PAD, BOARD]);
  const args = ['--max-schedules', '3'];
  let a, ba;
  await withServer({ schemasDir: dir, db, args }, async (srv, cs) => {
    a = await phone(srv, { clients: cs });
    ba = await a.attach('board');
    const far = (await serverNow(a)) + 3600;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await a.call(T.SET, ba.instance, { n: i }, { at: far })).scheduled);
    let e = await a.fail(E.LIMIT, T.SET, ba.instance, { n: 9 }, { at: far });
    assert.match(e.message, /3 scheduled sets pending \(--max-schedules\)/);
    const b = await phone(srv, { clients: cs });
    const bb = await b.attach('board');
    await b.call(T.SET, bb.instance, { n: 100 }, { at: far }); // another phone is not blocked

    await a.call(T.CANCEL, ba.instance, ids[0]);
    const soon = (await a.call(T.SET, ba.instance, { n: 5 }, { at: (await serverNow(a)) + 0.3 })).scheduled;
    e = await a.fail(E.LIMIT, T.SET, ba.instance, { n: 9 }, { at: far });
    const applied = await b.nextPush((m) => m[0] === T.UPDATE && m[5] === soon, { timeout: 5000, what: 'the applied schedule' });
    assert.deepEqual(applied[4], { n: 5 });
    await a.call(T.SET, ba.instance, { n: 6 }, { at: far }); // the applied one freed its place
    e = await a.fail(E.LIMIT, T.SET, ba.instance, { n: 9 }, { at: far });
  });
  await withServer({ schemasDir: dir, db, args }, async (srv, cs) => {
    const back = await phone(srv, { hello: { version: VERSION, token: a.welcome.token }, clients: cs });
    assert.equal(back.welcome.resumed, true);
    const e = await back.fail(E.LIMIT, T.SET, ba.instance, { n: 9 }, { at: (await serverNow(back)) + 60 });
    assert.match(e.message, /--max-schedules/);
    const fresh = await phone(srv, { clients: cs });
    const fb = await fresh.attach('board');
    await fresh.call(T.SET, fb.instance, { n: 1 }, { at: (await serverNow(fresh)) + 60 });
  });
});

test('CANCEL: by the writer, the state\'s owner or an admin; FORBIDDEN for others; CANCELLED to the others; UNKNOWN_SCHEDULE when not pending; a cancelled set never applies', async () => {
  await withServer({ schemas: [PAD, BOARD], roles: ROLES }, async (srv, cs) => {
    const a = await phone(srv, { clients: cs });
    const b = await phone(srv, { clients: cs });
    const cond = await asRole(srv, 'conductor', ROLES.roles.conductor.token, { clients: cs });
    const admin = await asRole(srv, 'admin', printedToken(srv, 'admin'), { clients: cs });
    const [ia, ib, ic, iadm] = await Promise.all([a, b, cond, admin].map((c) => c.attach('board')));
    const far = (await serverNow(a)) + 3600;
    const s1 = (await a.call(T.SET, ia.instance, { n: 1 }, { at: far })).scheduled;
    const s2 = (await a.call(T.SET, ia.instance, { n: 2 }, { at: far })).scheduled;

    let e = await b.fail(E.FORBIDDEN, T.CANCEL, ib.instance, s1);
    assert.match(e.message, /its writer, the state's owner or an admin/);
    await cond.fail(E.FORBIDDEN, T.CANCEL, ic.instance, s1); // a role that may set is not the writer
    assert.equal(await a.call(T.CANCEL, ia.instance, s1), null);
    for (const c of [b, cond, admin]) assert.deepEqual(await c.nextPush((m) => m[0] === T.CANCELLED), [T.CANCELLED, ia.state, s1]);
    await admin.call(T.CANCEL, iadm.instance, s2);
    assert.deepEqual(await a.nextPush((m) => m[0] === T.CANCELLED), [T.CANCELLED, ia.state, s2], 'the writer hears of a cancel by someone else');
    await a.expectNoPush(200, (m) => m[0] === T.CANCELLED && m[2] === s1, 'a CANCELLED to the canceller');
    await a.fail(E.UNKNOWN_SCHEDULE, T.CANCEL, ia.instance, s1);
    e = await a.fail(E.UNKNOWN_SCHEDULE, T.CANCEL, ia.instance, 999999);
    assert.match(e.message, /no pending scheduled set 999999/);
    const late = await phone(srv, { clients: cs });
    assert.equal((await late.attach('board')).scheduled, undefined, 'nothing pending any more');

    // the owner of a state cancels what another role scheduled on it
    const pad = await a.create('pad', {});
    const cp = await cond.attach('pad', pad.state);
    const s3 = (await cond.call(T.SET, cp.instance, { n: 3 }, { at: far })).scheduled;
    await b.fail(E.FORBIDDEN, T.SET, (await b.attach('pad', pad.state)).instance, { n: 4 }, { at: far });
    await a.call(T.CANCEL, pad.instance, s3);
    assert.deepEqual(await cond.nextPush((m) => m[0] === T.CANCELLED && m[2] === s3), [T.CANCELLED, pad.state, s3]);

    // cancelled before its time: never applied; applied: no longer cancellable
    const s4 = (await a.call(T.SET, ia.instance, { n: 7 }, { at: (await serverNow(a)) + 0.5 })).scheduled;
    await a.call(T.CANCEL, ia.instance, s4);
    const s5 = (await a.call(T.SET, ia.instance, { n: 8 }, { at: (await serverNow(a)) + 0.3 })).scheduled;
    const up = await b.nextPush((m) => m[0] === T.UPDATE && m[5] === s5, { timeout: 5000, what: 'the applied schedule' });
    assert.deepEqual(up[4], { n: 8 });
    await sleep(400);
    assert.deepEqual(b.pushes.filter((m) => m[0] === T.UPDATE), [], 'the cancelled set was never applied');
    await a.fail(E.UNKNOWN_SCHEDULE, T.CANCEL, ia.instance, s5);
    assert.equal((await late.attach('board')).values.n, 8);
  });
});

test('ten phones cannot fill a state\'s schedule: the conductor\'s scheduled set still goes', async () => {
  // the demo: the audience may set the volume, so every phone may schedule
  // on the demo's one state; one phone opens ten sessions (60 a minute are
  // allowed from an address) and schedules its share, 100 a session, an
  // hour ahead
  await withServer({ resumeWindow: 3600 }, async (srv, cs) => {
    const at = (await serverNow(await phone(srv, { clients: cs }))) + 3600;
    for (let k = 0; k < 10; k++) {
      const p = await phone(srv, { from: '127.0.0.2', clients: cs });
      const d = await p.attach('demo');
      p.sendMany(Array.from({ length: 100 }, (_, i) => [T.SET, 1000 + i, d.instance, { volume: i / 100 }, { at }]));
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => p.waitReply(1000 + i)));
      assert.deepEqual(replies.filter((r) => r[0] !== T.RESULT), [], `session ${k}: its 100 schedules`);
    }
    const cond = await asRole(srv, 'conductor', printedToken(srv, 'conductor'), { clients: cs });
    const dc = await cond.attach('demo');
    const r = await cond.request(T.SET, dc.instance, { playing: true }, { at: (await serverNow(cond)) + 10 });
    assert.equal(r[0], T.RESULT, `the conductor's scheduled set was refused: ${JSON.stringify(r)}`);
  });
});
