// PROTOCOL.md §6a, the persistence part: "Pending schedules are persisted:
// they survive a restart, and one whose `at` passed while the server was down
// is applied at start." A scheduled set acknowledged before a SIGTERM or a
// kill -9 is applied exactly once after the restart (seq + 1, an event with
// time = at in the history); one applied before the crash is not applied again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Site, T, sleep, short } from './lib/persist.mjs';

const ROOM = { n: { type: 'integer', default: 0 }, cue: { type: 'string', event: true } };
const SCHEDULED = 71;

async function serverNow(c) { return (await c.ping())[3]; }

async function setup(site) {
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  return { O, x };
}

for (const how of ['stop', 'kill9']) {
  test(`a pending scheduled set survives a ${how === 'stop' ? 'SIGTERM' : 'kill -9'} and is applied once, at its time, after the restart`, { timeout: 30000 }, async (t) => {
    const site = await Site.create(t, { resumeWindow: 30, history: 100 });
    const { O, x } = await setup(site);
    const B = await site.client();
    await B.attach('room', x.state, {});
    const at = (await serverNow(O)) + 2.0;
    const r = await O.call(T.SET, x.instance, { n: 42, cue: 'go' }, { at });
    assert.equal(typeof r.scheduled, 'number', `RESULT of a scheduled set: ${short(r)}`);
    assert.equal(r.at, at);
    const pushed = await B.nextPush((m) => m[0] === SCHEDULED && m[1] === x.state, { what: 'SCHEDULED push' });
    assert.deepEqual([pushed[2], pushed[3], pushed[4]], [r.scheduled, at, { n: 42, cue: 'go' }]);
    if (how === 'stop') await site.stop(); else await site.kill9();
    await site.start();
    const C = await site.client();
    const now = await serverNow(C);
    const early = await C.attach('room', x.state, { history: 10 });
    // the sync clock does not run while the server is down, and the restart is quick
    assert.ok(now < at - 0.2, `server time ${now} after the restart, at ${at}: the schedule should still be pending`);
    assert.equal(early.seq, 0, 'not applied before its time');
    assert.deepEqual(early.scheduled, [[r.scheduled, at, { n: 42, cue: 'go' }]], 'the pending schedule is in the ATTACH result after the restart');
    const u = await C.nextPush((m) => m[0] === T.UPDATE && m[1] === x.state, { timeout: 6000, what: 'the scheduled UPDATE after the restart' });
    assert.equal(u[2], 1, 'seq + 1');
    assert.equal(u[3], at, 'time = at');
    assert.deepEqual(u[4], { n: 42, cue: 'go' });
    assert.equal(u[5], r.scheduled, 'UPDATE carries the schedId');
    const after = await C.attach('room', x.state, { history: 10 });
    assert.equal(after.seq, 1);
    assert.deepEqual(after.values, { n: 42, cue: null });
    assert.deepEqual(after.history.map((e) => [e.seq, e.time, e.changes, e.origin]), [[1, at, { n: 42, cue: 'go' }, O.welcome.session]]);
    assert.equal(after.scheduled, undefined, 'no pending schedule left');
    // applied exactly once: not again after one more restart
    await site.kill9();
    await site.start();
    const D = await site.client();
    await sleep(300);
    const again = await D.attach('room', x.state, { history: 10 });
    assert.equal(again.seq, 1, 'not applied a second time after another restart');
    assert.equal(again.scheduled, undefined);
    await D.expectNoPush(300, (m) => m[0] === T.UPDATE, 'UPDATE');
    await site.stop();
  });
}

test('a scheduled set that was applied before a kill -9 is not applied again; one acknowledged right before it is kept', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30, history: 100 });
  const { O, x } = await setup(site);
  const now = await serverNow(O);
  const done = await O.call(T.SET, x.instance, { n: 1 }, { at: now + 0.3 });
  const u = await O.nextPush((m) => m[0] === T.UPDATE && m[1] === x.state && m[5] === done.scheduled, { timeout: 5000, what: 'the first schedule fires' });
  assert.equal(u[2], 1);
  const pending = await O.call(T.SET, x.instance, { n: 2 }, { at: (await serverNow(O)) + 1.5 });
  await site.kill9(); // right after the acknowledgement of the second schedule
  await site.start();
  const C = await site.client();
  const att = await C.attach('room', x.state, { history: 10 });
  assert.equal(att.seq, 1, 'the applied schedule is not re-applied');
  assert.deepEqual((att.scheduled ?? []).map((s) => s[0]), [pending.scheduled], 'only the second schedule is pending');
  const u2 = await C.nextPush((m) => m[0] === T.UPDATE && m[1] === x.state, { timeout: 6000, what: 'the second schedule fires after the restart' });
  assert.deepEqual([u2[2], u2[4], u2[5]], [2, { n: 2 }, pending.scheduled]);
  const h = await C.call(T.HISTORY, att.instance, { since: 0 });
  assert.deepEqual(h.events.map((e) => [e.seq, e.changes]), [[1, { n: 1 }], [2, { n: 2 }]]);
  await site.stop();
});

test('schedule ids continue across restarts (never reused)', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30 });
  const { O, x } = await setup(site);
  const ids = [];
  for (let round = 0; round < 3; round++) {
    const c = round === 0 ? O : await site.client({ version: 1, token: O.welcome.token });
    const r = await c.call(T.SET, x.instance, { n: round + 10 }, { at: (await serverNow(c)) + 30 });
    ids.push(r.scheduled);
    if (round % 2) await site.stop(); else await site.kill9();
    await site.start();
  }
  assert.ok(ids[1] > ids[0] && ids[2] > ids[1], `schedule ids ${ids} must grow`);
  const C = await site.client();
  const att = await C.attach('room', x.state, {});
  assert.deepEqual((att.scheduled ?? []).map((s) => s[0]), ids, 'all three pending, in order of at');
  await site.stop();
});
