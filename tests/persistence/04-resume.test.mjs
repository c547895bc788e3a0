// Resume (PROTOCOL.md §3, §9): a client whose socket is cut
// mid-stream (and one cut across a server restart) gets exactly the events it
// missed, in order, no gap, no duplicate, or a SNAPSHOT when they left the
// history; it keeps its session, instances, owned states and observes. An
// owner that does not come back within --resume-window loses its states
// ("owner left"); an unknown token gives a new session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Site, RawClient, T, E, sleep, short, assertContiguous, within, resume } from './lib/persist.mjs';

const ROOM = { n: { type: 'integer', default: 0 }, tag: { type: 'string', default: '' } };

/** Sequential writer of `n` on an instance; records acknowledged seq -> value. */
function startWriter(c, instance, { from = 1, pause = 0 } = {}) {
  const w = { acked: new Map(), next: from, stopped: false, error: null, lastSeq: 0 };
  w.done = (async () => {
    while (!w.stopped) {
      const v = w.next++;
      let r;
      try { r = await c.set(instance, { n: v }); } catch (err) { if (err.code !== undefined) w.error = err; return; }
      w.acked.set(r.seq, v);
      w.lastSeq = r.seq;
      if (pause) await sleep(pause);
    }
  })();
  w.stop = async () => { w.stopped = true; await within(w.done, 10000, 'writer to stop'); };
  w.waitAcked = (n, what = `${n} acknowledged sets`) => within((async () => { while (w.acked.size < n && !w.stopped) await sleep(5); })(), 10000, what);
  return w;
}

/** UPDATEs (and SNAPSHOTs) of `state` a client received, in arrival order. */
const updatesOf = (c, state) => c.log.map((e) => e.msg).filter((m) => (m[0] === T.UPDATE || m[0] === T.SNAPSHOT) && m[1] === state);

function waitSeq(c, state, seq, what) {
  return c.waitFor(() => (updatesOf(c, state).some((m) => m[2] >= seq) ? true : undefined), { timeout: 10000, what });
}

/** The values the updates carry must be the ones the writer was acknowledged for those seqs. */
function checkValues(msgs, acked, what) {
  for (const m of msgs) {
    if (m[0] !== T.UPDATE || !acked.has(m[2])) continue;
    assert.deepEqual(m[4], { n: acked.get(m[2]) }, `${what}: UPDATE seq ${m[2]} carries ${short(m[4])}, the writer was acknowledged n=${acked.get(m[2])}`);
  }
}

for (const keys of ['string', 'integer']) {
  test(`socket cut mid-stream, resume with token + seqs (${keys} keys): exactly the missed events, same session, instances, owned states and observes`, { timeout: 60000 }, async (t) => {
    const site = await Site.create(t, { history: 1000, resumeWindow: 30 });
    await site.start();
    const owner = await site.client();
    await owner.define('room', ROOM);
    const x = await owner.create('room', {});
    const W = await site.client();
    const wx = await W.attach('room', x.state, {});
    const B = await site.client();
    const bx = await B.attach('room', x.state, {});
    const by = await B.create('room', { tag: 'owned by B' });
    await B.observe('room');

    const writer = startWriter(W, wx.instance, { pause: 1 });
    await waitSeq(B, x.state, 20, 'B sees 20 updates');
    await B.terminate(); // no close handshake: the socket just goes
    const before = updatesOf(B, x.state);
    const lastSeen = before.at(-1)[2];
    assertContiguous(before.map((m) => m[2]), 1, lastSeen, 'B before the cut');
    const cutAt = writer.lastSeq;
    await within((async () => { while (writer.lastSeq < cutAt + 30) await sleep(5); })(), 10000, '30 more sets after the cut');

    const seqs = keys === 'string' ? { [String(x.state)]: lastSeen } : new Map([[x.state, lastSeen]]);
    const B2 = await resume(site, B, seqs);
    assert.equal(B2.welcome.resumed, true, 'resumed');
    assert.equal(B2.welcome.session, B.welcome.session, 'same session id');
    assert.equal(B2.welcome.token, B.welcome.token, 'same token');
    await sleep(100); // the writer keeps going during and after the resume
    await writer.stop();
    assert.equal(writer.error, null, `writer refused: ${writer.error?.message}`);
    const final = writer.lastSeq;
    await waitSeq(B2, x.state, final, `B2 reaches seq ${final}`);
    await B2.expectNoPush(200, (m) => m[0] === T.UPDATE && m[1] === x.state && m[2] > final, 'update beyond the last write');
    const after = updatesOf(B2, x.state);
    assert.equal(after.filter((m) => m[0] === T.SNAPSHOT).length, 0, 'no SNAPSHOT: the missed events are in the history');
    assertContiguous(after.map((m) => m[2]), lastSeen + 1, final, 'B2 after the resume (missed + live)');
    checkValues([...before, ...after], writer.acked, 'B');
    assert.equal(after.filter((m) => m[2] > cutAt).length >= 30, true);

    // the instances kept their ids: SET through the instance from before the cut
    const r = await B2.set(bx.instance, { tag: 'back' });
    assert.equal(r.seq, final + 1);
    const u = await W.nextPush((m) => m[0] === T.UPDATE && m[1] === x.state && m[2] === final + 1, { what: 'W sees B2\'s set' });
    assert.deepEqual(u[4], { tag: 'back' });
    // B still owns its state: set and the owner's DELETE through the old instance
    assert.equal((await B2.set(by.instance, { n: 5 })).seq, 1);
    const wy = await W.attach('room', by.state, {});
    assert.equal(wy.owner, B.welcome.session);
    assert.equal(wy.values.n, 5);
    // the observe survived: a new room is noticed
    const z = await owner.create('room', {});
    await B2.nextNotice((m) => m[1] === 'create' && m[3] === z.state, { what: 'create NOTICE after the resume' });
    await B2.delete(by.instance);
    await W.nextDeleted(by.state);
    B2.assertWellFormed();
    await site.stop();
  });
}

for (const how of ['stop', 'kill9']) {
  test(`resume across a server restart (${how === 'stop' ? 'SIGTERM' : 'kill -9'}) within the window: missed events in order, instances still work`, { timeout: 60000 }, async (t) => {
    const site = await Site.create(t, { history: 1000, resumeWindow: 30 });
    await site.start();
    const W = await site.client();
    await W.define('room', ROOM);
    const x = await W.create('room', {});
    const B = await site.client();
    await B.attach('room', x.state, {});
    await B.observe('room');
    const writer = startWriter(W, x.instance, { pause: 1 });
    await waitSeq(B, x.state, 20, 'B sees 20 updates');
    await sleep(Math.random() * 30);
    if (how === 'stop') await site.stop(); else await site.kill9(); // mid-stream
    await writer.stop();
    const before = updatesOf(B, x.state);
    const lastSeen = before.at(-1)[2];
    assertContiguous(before.map((m) => m[2]), 1, lastSeen, 'B before the restart');

    await site.start();
    // the writer resumes too, and keeps writing through its old instance id
    const W2 = await resume(site, W, { [x.state]: writer.lastSeq });
    assert.equal(W2.welcome.resumed, true, 'writer resumed across the restart');
    assert.equal(W2.welcome.session, W.welcome.session);
    // events committed but never acknowledged to W (kill -9 mid-flight) come back to it as UPDATEs
    await sleep(100);
    const wMissed = updatesOf(W2, x.state);
    const restored = wMissed.length ? wMissed.at(-1)[2] : writer.lastSeq;
    if (wMissed.length) assertContiguous(wMissed.map((m) => m[2]), writer.lastSeq + 1, restored, 'W: its own committed but unacknowledged events');
    assert.ok(restored - writer.lastSeq <= 1, `at most the one set in flight was committed without its ack (${restored} vs ${writer.lastSeq})`);
    const writer2 = startWriter(W2, x.instance, { from: 100000 });
    await writer2.waitAcked(30);
    const B2 = await resume(site, B, { [x.state]: lastSeen });
    assert.equal(B2.welcome.resumed, true, 'B resumed across the restart');
    assert.equal(B2.welcome.session, B.welcome.session);
    await sleep(50);
    await writer2.stop();
    assert.equal(writer2.error, null, `writer refused after the restart: ${writer2.error?.message}`);
    assert.equal([...writer2.acked.keys()][0], restored + 1, 'seq continues after the restart');
    const final = writer2.lastSeq;
    await waitSeq(B2, x.state, final, `B2 reaches ${final}`);
    await B2.expectNoPush(200, (m) => m[1] === x.state && m[2] > final, 'update beyond the last write');
    const after = updatesOf(B2, x.state);
    assert.equal(after.filter((m) => m[0] === T.SNAPSHOT).length, 0, 'no SNAPSHOT');
    assertContiguous(after.map((m) => m[2]), lastSeen + 1, final, 'B2 after the restart');
    checkValues([...before, ...after], new Map([...writer.acked, ...writer2.acked]), 'B');
    // B's observe came back with the session
    const z = await W2.create('room', {});
    await B2.nextNotice((m) => m[1] === 'create' && m[3] === z.state, { what: 'create NOTICE after a restart' });
    await site.stop();
  });
}

test('a filtered instance keeps its filter across a kill -9: missed events restricted to it, SET outside it is FILTERED', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { history: 1000, resumeWindow: 30 });
  await site.start();
  const W = await site.client();
  await W.define('room', ROOM);
  const x = await W.create('room', {});
  const B = await site.client();
  const bf = await B.attach('room', x.state, { filter: ['tag'] });
  await W.set(x.instance, { tag: 'a' });                 // seq 1
  await waitSeq(B, x.state, 1, 'B sees seq 1');
  await B.terminate();
  await W.set(x.instance, { n: 1 });                     // seq 2: invisible to B
  await W.set(x.instance, { n: 2, tag: 'b' });           // seq 3: B sees {tag}
  await W.set(x.instance, { n: 3 });                     // seq 4: invisible
  await site.kill9();
  await site.start();
  const W2 = await resume(site, W, { [x.state]: 4 });
  assert.equal(W2.welcome.resumed, true);
  const B2 = await resume(site, B, { [x.state]: 1 });
  assert.equal(B2.welcome.resumed, true);
  await waitSeq(B2, x.state, 3, 'B2 gets the visible missed event');
  await B2.expectNoPush(200, (m) => m[1] === x.state && m[2] !== 3, 'events the filter hides');
  assert.deepEqual(updatesOf(B2, x.state).map((m) => [m[0], m[2], m[4]]), [[T.UPDATE, 3, { tag: 'b' }]]);
  const f = await B2.fail(E.FILTERED, T.SET, bf.instance, { n: 9 });
  assert.ok(f.message.includes('n'));
  assert.equal((await B2.set(bf.instance, { tag: 'c' })).seq, 5);
  const h = await B2.call(T.HISTORY, bf.instance, { since: 1 });
  for (const e of h.events) assert.deepEqual(Object.keys(e.changes).filter((k) => k !== 'tag'), [], `history through the filter: ${short(e)}`);
  await site.stop();
});

test('a session, instance and observe acknowledged right before a kill -9 are restored: resume, SET, notices', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  const B = await site.client();          // the welcome was acknowledged: the session is durable
  const bx = await B.attach('room', x.state, {});
  await B.observe('room');                // the last acknowledged request before the crash
  await site.kill9();
  await site.start();
  const B2 = await resume(site, B, { [x.state]: 0 });
  assert.equal(B2.welcome.resumed, true, 'the session acknowledged before the kill -9 resumes');
  assert.equal(B2.welcome.session, B.welcome.session);
  await B2.expectNoPush(200, (m) => m[1] === x.state, 'push for a state that missed nothing');
  assert.equal((await B2.set(bx.instance, { n: 1 })).seq, 1, 'the instance acknowledged before the kill -9 works');
  const O2 = await resume(site, O, { [x.state]: 0 });
  const u = await O2.nextUpdate(x.state);
  assert.deepEqual([u[2], u[4]], [1, { n: 1 }]);
  const z = await O2.create('room', {});
  await B2.nextNotice((m) => m[1] === 'create' && m[3] === z.state, { what: 'notice from the observe acknowledged before the kill -9' });
  // a brand-new session right before the crash, never used: resumes as well
  const N = await site.client();
  await site.kill9();
  await site.start();
  const N2 = await resume(site, N, {});
  assert.equal(N2.welcome.resumed, true);
  assert.equal(N2.welcome.session, N.welcome.session);
  await site.stop();
});

test('observe-all (nil class) and an UNOBSERVE survive a restart', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  await O.define('hall', ROOM);
  const A = await site.client();
  await A.observe(null);                  // everything
  const U = await site.client();
  await U.observe('room');
  await U.unobserve('room');              // and then not
  await site.kill9();
  await site.start();
  const A2 = await resume(site, A, {});
  const U2 = await resume(site, U, {});
  const O2 = await resume(site, O, {});
  assert.ok(A2.welcome.resumed && U2.welcome.resumed && O2.welcome.resumed);
  const h = await O2.create('hall', {});
  const r = await O2.create('room', {});
  await A2.nextNotice((m) => m[1] === 'create' && m[2] === 'hall' && m[3] === h.state, { what: 'observe-all: hall' });
  await A2.nextNotice((m) => m[1] === 'create' && m[2] === 'room' && m[3] === r.state, { what: 'observe-all: room' });
  await A2.expectNoPush(200, (m) => m[0] === T.NOTICE, 'a second notice for the same state');
  await U2.expectNoPush(300, (m) => m[0] === T.NOTICE, 'NOTICE after an UNOBSERVE');
  await site.stop();
});

test('missed events that left the history (--history 5): a SNAPSHOT with the current values, then live updates', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { history: 5, resumeWindow: 30 });
  await site.start();
  const W = await site.client();
  await W.define('room', ROOM);
  const x = await W.create('room', {});
  const y = await W.create('room', {});
  const quiet = await W.create('room', {});
  const B = await site.client();
  await B.attach('room', x.state, {});
  await B.attach('room', y.state, {});
  await B.attach('room', quiet.state, {});
  for (let i = 1; i <= 3; i++) { await W.set(x.instance, { n: i }); await W.set(y.instance, { n: i }); }
  await W.set(quiet.instance, { n: 1 });
  await waitSeq(B, x.state, 3, 'B at 3');
  await waitSeq(B, y.state, 3, 'B at 3');
  await waitSeq(B, quiet.state, 1, 'B at 1');
  await B.terminate();
  for (let i = 4; i <= 23; i++) await W.set(x.instance, { n: i, tag: `t${i}` }); // 20 missed: more than --history 5
  await W.set(y.instance, { n: 4 });                                             // 2 missed: in the history
  await W.set(y.instance, { tag: 'y5' });
  const B2 = await resume(site, B, { [x.state]: 3, [y.state]: 3, [quiet.state]: 1 });
  assert.equal(B2.welcome.resumed, true);
  await waitSeq(B2, x.state, 23, 'snapshot of x');
  await waitSeq(B2, y.state, 5, 'updates of y');
  await B2.expectNoPush(200, (m) => m[1] === quiet.state, 'push for a state that missed nothing');
  const xs = updatesOf(B2, x.state);
  assert.equal(xs.length, 1, `one SNAPSHOT, no replay: ${short(xs)}`);
  assert.equal(xs[0][0], T.SNAPSHOT);
  assert.equal(xs[0][2], 23, 'snapshot seq');
  assert.deepEqual(xs[0][4], { n: 23, tag: 't23' }, 'snapshot: the current values');
  const ys = updatesOf(B2, y.state);
  assert.deepEqual(ys.map((m) => [m[0], m[2], m[4]]), [[T.UPDATE, 4, { n: 4 }], [T.UPDATE, 5, { tag: 'y5' }]]);
  // live updates continue after the snapshot
  await W.set(x.instance, { n: 24 });
  const u = await B2.nextPush((m) => m[0] === T.UPDATE && m[1] === x.state, { what: 'live update after the snapshot' });
  assert.equal(u[2], 24);
  // and the same across a kill -9: still a snapshot
  await B2.terminate();
  for (let i = 25; i <= 40; i++) await W.set(x.instance, { n: i });
  await site.kill9();
  await site.start();
  const B3 = await resume(site, B, { [x.state]: 24, [y.state]: 5, [quiet.state]: 1 });
  assert.equal(B3.welcome.resumed, true);
  await waitSeq(B3, x.state, 40, 'snapshot of x after kill -9');
  const x3 = updatesOf(B3, x.state);
  assert.deepEqual(x3.map((m) => [m[0], m[2], m[4]]), [[T.SNAPSHOT, 40, { n: 40, tag: 't23' }]]);
  await B3.expectNoPush(200, (m) => m[1] === y.state || m[1] === quiet.state, 'push for states that missed nothing');
  await site.stop();
});

test('an owner that does not come back within --resume-window 1: its states are deleted, attached clients get DELETED "owner left"', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 1 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  const keep = await O.create('room', {});
  const B = await site.client();
  await B.attach('room', x.state, {});
  const obs = await site.client();
  await obs.observe('room');
  // within the window: a quick resume keeps everything
  await O.terminate();
  await sleep(200);
  const O2 = await resume(site, O, { [x.state]: 0, [keep.state]: 0 });
  assert.equal(O2.welcome.resumed, true);
  await sleep(1800);
  assert.deepEqual(B.pushes.filter((m) => m[0] === T.DELETED), [], 'no DELETED while the owner came back in time');
  await O2.set(x.instance, { n: 1 });
  // now gone for good
  const cut = Date.now();
  await O2.terminate();
  const del = await B.nextDeleted(x.state, { timeout: 6000 });
  const ms = Date.now() - cut;
  assert.deepEqual(del, [T.DELETED, x.state, 'owner left']);
  assert.ok(ms >= 800, `DELETED after ${ms} ms: before the 1 s window was over`);
  await obs.nextNotice((m) => m[1] === 'delete' && m[3] === x.state, { what: 'delete notice of x' });
  await obs.nextNotice((m) => m[1] === 'delete' && m[3] === keep.state, { what: 'delete notice of the other owned state' });
  await B.fail(E.UNKNOWN_STATE, T.ATTACH, 'room', x.state, {});
  // the token is no longer valid
  const late = await resume(site, O, { [x.state]: 1 });
  assert.equal(late.welcome.resumed, false, 'an expired token gives a new session');
  assert.notEqual(late.welcome.session, O.welcome.session);
  await late.expectNoPush(200);
  // the deletion is durable
  await site.kill9();
  await site.start();
  const c = await site.client();
  assert.deepEqual((await c.observe('room')).states, []);
  await site.stop();
});

test('an owner that does not come back after a restart: deleted once the window is over, the resumed attached client gets DELETED', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 2 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  const B = await site.client();
  await B.attach('room', x.state, {});
  await site.stop();
  await site.start();
  const B2 = await resume(site, B, { [x.state]: 0 });
  assert.equal(B2.welcome.resumed, true);
  const other = await site.client();
  assert.equal((await other.attach('room', x.state, {})).owner, O.welcome.session, 'the state is restored while the owner may still come back');
  const del = await B2.nextDeleted(x.state, { timeout: 8000 });
  assert.deepEqual(del, [T.DELETED, x.state, 'owner left']);
  assert.deepEqual(await other.nextDeleted(x.state), [T.DELETED, x.state, 'owner left']);
  const late = await resume(site, O, {});
  assert.equal(late.welcome.resumed, false);
  await site.stop();
});

test('the resume window counts from the disconnect, also across a restart: a session gone longer than the window before and after the restart is over', {
  timeout: 30000,
}, async (t) => {
  const site = await Site.create(t, { resumeWindow: 2 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  await O.terminate();
  await sleep(1500);
  await site.stop();
  await site.start();
  await sleep(1000);                          // 2.5 s since the disconnect, downtime included
  const late = await resume(site, O, { [x.state]: 0 });
  assert.equal(late.welcome.resumed, false, 'the window was over');
  const other = await site.client();
  await other.fail(E.UNKNOWN_STATE, T.ATTACH, 'room', x.state, {});
  await site.stop();
});

test('an unknown, malformed or empty token: resumed false and a new session; the seqs are ignored', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30 });
  await site.start();
  const A = await site.client();
  await A.define('room', ROOM);
  const x = await A.create('room', {});
  await A.set(x.instance, { n: 1 });
  const sessions = new Set([A.welcome.session]);
  for (const token of ['0'.repeat(32), 'f'.repeat(32), A.welcome.token.slice(0, 31), A.welcome.token + 'x', '', A.welcome.token.toUpperCase() === A.welcome.token ? 'a'.repeat(32) : A.welcome.token.toUpperCase()]) {
    const c = await site.connect();
    const w = await c.hello({ version: 1, token, seqs: { [x.state]: 0 } });
    assert.equal(w.resumed, false, `token ${JSON.stringify(token)}`);
    assert.ok(!sessions.has(w.session), `a new session id, got ${w.session}`);
    assert.notEqual(w.token, A.welcome.token);
    assert.equal(typeof w.token, 'string');
    assert.ok(w.token.length >= 16, 'a token that is hard to guess');
    sessions.add(w.session);
    await c.expectNoPush(150);
    await c.fail(E.UNKNOWN_INSTANCE, T.SET, x.instance, { n: 2 });
    await c.close();
  }
  // none of that disturbed the real session: its token still resumes, also after a restart
  await site.stop();
  await site.start();
  const again = await resume(site, A, {});
  assert.equal(again.welcome.resumed, true, 'the real token still resumes after a restart');
  await site.stop();
});

for (const restart of ['none', 'stop', 'kill9']) {
  test(`states deleted while the client was away get DELETED on resume with the real reason (restart: ${restart})`, { timeout: 30000 }, async (t) => {
    // window 4 s: L leaves first and loses its state at 4-5 s; B leaves 2.5 s after L and is still within its window then
    const site = await Site.create(t, { resumeWindow: 4 });
    await site.start();
    const O = await site.client();
    await O.define('room', ROOM);
    const x = await O.create('room', {});
    const L = await site.client();                 // an owner that leaves for good
    const y = await L.create('room', {});
    const kept = await O.create('room', {});
    const B = await site.client();
    const bx = await B.attach('room', x.state, {});
    const by = await B.attach('room', y.state, {});
    const bk = await B.attach('room', kept.state, {});
    await O.set(kept.instance, { n: 1 });
    await waitSeq(B, kept.state, 1, 'B sees kept at 1');
    const watcher = await site.client();
    await watcher.observe('room');
    await L.terminate();                           // "owner left" once the window is over
    await sleep(2500);
    await B.terminate();
    await O.delete(x.instance);                    // "deleted"
    await watcher.nextNotice((m) => m[1] === 'delete' && m[3] === y.state, { timeout: 8000, what: 'y deleted (owner left)' });
    await O.set(kept.instance, { n: 2 });
    if (restart !== 'none') {
      if (restart === 'stop') await site.stop(); else await site.kill9();
      await site.start();
    }
    const B2 = await resume(site, B, { [x.state]: 0, [y.state]: 0, [kept.state]: 1 });
    assert.equal(B2.welcome.resumed, true);
    assert.deepEqual(await B2.nextDeleted(x.state, { timeout: 3000 }), [T.DELETED, x.state, 'deleted']);
    assert.deepEqual(await B2.nextDeleted(y.state, { timeout: 3000 }), [T.DELETED, y.state, 'owner left']);
    const u = await B2.nextUpdate(kept.state);
    assert.deepEqual([u[2], u[4]], [2, { n: 2 }], 'the surviving state gets its missed update');
    await B2.expectNoPush(200, (m) => m[0] === T.DELETED && m[1] === kept.state, 'DELETED for a live state');
    await B2.fail(E.UNKNOWN_INSTANCE, T.SET, bx.instance, { n: 1 });
    await B2.fail(E.UNKNOWN_INSTANCE, T.SET, by.instance, { n: 1 });
    assert.equal((await B2.set(bk.instance, { n: 3 })).seq, 3);
    await site.stop();
  });
}

test('resume seqs naming a live state the session does not hold (detached meanwhile): no DELETED for it', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 30 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  const B = await site.client();
  const bx = await B.attach('room', x.state, {});
  await B.detach(bx.instance);          // e.g. the DETACH was applied but its RESULT lost with the socket
  await B.terminate();
  const B2 = await resume(site, B, { [x.state]: 0 });
  assert.equal(B2.welcome.resumed, true);
  await B2.expectNoPush(300, (m) => m[0] === T.DELETED && m[1] === x.state, 'DELETED for a state that still exists');
  await site.stop();
});
