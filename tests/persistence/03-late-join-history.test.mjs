// Late join: a client attaching after N events gets the current
// values and the last n events in order (ATTACH `history: n`), or exactly the
// events after s (`since: s`); `historyComplete` is false when the asked range
// has left the history (--history 10); event params are in the history while
// the state's value is nil; HISTORY fetches more later; all of it the same
// after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Site, T, E } from './lib/persist.mjs';

const HISTORY = 10;
const DESC = {
  n: { type: 'integer', default: 0 },
  label: { type: 'string', default: '' },
  start: { type: 'float', event: true },   // "the conductor starts a sound at t"
};
const N = 25; // events written before the late joiner comes

let site, writer, w, events; // events: what the writer's RESULTs said, [{seq, time, changes}]
let lastInstance = 0;

before(async () => {
  site = new Site({ history: HISTORY, resumeWindow: 60 });
  await site.start();
  writer = await site.client();
  await writer.define('room', DESC);
  w = await writer.create('room', {});
  events = [];
  for (let i = 1; i <= N; i++) {
    const upd = i === 20 ? { start: 12.5 } : i % 5 === 0 ? { label: `L${i}`, n: i } : { n: i };
    const r = await writer.set(w.instance, upd);
    assert.equal(r.seq, i);
    events.push({ seq: r.seq, time: r.time, changes: r.changes, origin: writer.welcome.session });
  }
}, { timeout: 30000 });

after(async () => { if (site) { if (site.running) await site.stop(); await site.destroy(); } }, { timeout: 30000 });

const expectValues = () => ({ n: 25, label: 'L25', start: null });
const lastEvents = (n) => events.slice(Math.max(0, events.length - n));

function checkEvents(got, want, what) {
  assert.deepEqual(got.map((e) => e.seq), want.map((e) => e.seq), `${what}: seqs`);
  assert.deepEqual(got, want, `${what}: events {seq, time, changes, origin} as the writer was told`);
}

async function lateJoiner() {
  const c = await site.client();
  return c;
}

function suite(label) {
  test(`${label}: attach with history: n gets the current values and the last n events in order`, async () => {
    const c = await lateJoiner();
    for (const n of [1, 5, HISTORY]) {
      const att = await c.attach('room', w.state, { history: n });
      lastInstance = Math.max(lastInstance, att.instance);
      assert.equal(att.seq, N);
      assert.deepEqual(att.values, expectValues());
      checkEvents(att.history, lastEvents(n), `history: ${n}`);
      assert.equal(att.historyComplete, true, `history: ${n} fits in --history ${HISTORY}`);
      assert.equal(att.time, events.at(-1).time, 'time is the last update\'s');
    }
    await c.close();
  });

  test(`${label}: history: 0 gives an empty list; no history option gives no history field`, async () => {
    const c = await lateJoiner();
    const a0 = await c.attach('room', w.state, { history: 0 });
    assert.deepEqual(a0.history, []);
    assert.equal(a0.historyComplete, true);
    const plain = await c.attach('room', w.state, {});
    assert.equal(plain.history, undefined, 'no history asked, none sent');
    assert.deepEqual(plain.values, expectValues());
    await c.close();
  });

  test(`${label}: since: s gets exactly the events after s`, async () => {
    const c = await lateJoiner();
    for (const s of [N - HISTORY, N - 3, N - 1, N]) {
      const att = await c.attach('room', w.state, { since: s });
      checkEvents(att.history, events.filter((e) => e.seq > s), `since: ${s}`);
      assert.equal(att.historyComplete, true, `since: ${s} is still in the history`);
    }
    await c.close();
  });

  test(`${label}: a range that left the history (--history ${HISTORY}) says historyComplete: false`, async () => {
    const c = await lateJoiner();
    const big = await c.attach('room', w.state, { history: 20 });
    assert.equal(big.historyComplete, false, 'history: 20 > --history 10');
    checkEvents(big.history, lastEvents(HISTORY), 'history: 20 returns what is kept (at most --history events)');
    const old = await c.attach('room', w.state, { since: 3 });
    assert.equal(old.historyComplete, false, 'since: 3 left the history');
    checkEvents(old.history, lastEvents(HISTORY), 'since: 3 returns what is kept');
    const edge = await c.attach('room', w.state, { since: N - HISTORY - 1 });
    assert.equal(edge.historyComplete, false, `since: ${N - HISTORY - 1}: event ${N - HISTORY} has left`);
    await c.close();
  });

  test(`${label}: an event param is in the history while its value is nil`, async () => {
    const c = await lateJoiner();
    const att = await c.attach('room', w.state, { history: 6 });
    assert.equal(att.values.start, null);
    const ev = att.history.find((e) => e.seq === 20);
    assert.ok(ev, 'event 20 in the history');
    assert.deepEqual(ev.changes, { start: 12.5 });
    assert.equal(typeof ev.time, 'number');
    assert.equal(ev.origin, writer.welcome.session);
    await c.close();
  });

  test(`${label}: HISTORY fetches more later (last / since), in order, and says when incomplete`, async () => {
    const c = await lateJoiner();
    const att = await c.attach('room', w.state, { history: 2 });
    const h1 = await c.call(T.HISTORY, att.instance, { last: 7 });
    checkEvents(h1.events, lastEvents(7), 'HISTORY last: 7');
    assert.equal(h1.complete, true);
    const h2 = await c.call(T.HISTORY, att.instance, { since: N - 4 });
    checkEvents(h2.events, events.filter((e) => e.seq > N - 4), `HISTORY since: ${N - 4}`);
    assert.equal(h2.complete, true);
    const h3 = await c.call(T.HISTORY, att.instance, { last: 100 });
    assert.equal(h3.complete, false);
    checkEvents(h3.events, lastEvents(HISTORY), 'HISTORY last: 100');
    const h4 = await c.call(T.HISTORY, att.instance, { since: 0 });
    assert.equal(h4.complete, false);
    await c.fail(E.BAD_REQUEST, T.HISTORY, att.instance, {});
    await c.close();
  });

  test(`${label}: a filtered late joiner gets the history restricted to its filter`, async () => {
    const c = await lateJoiner();
    const att = await c.attach('room', w.state, { history: 5, filter: ['label'] });
    assert.deepEqual(att.values, { label: 'L25' });
    const want = lastEvents(5).map((e) => ({ ...e, changes: 'label' in e.changes ? { label: e.changes.label } : {} }));
    // events whose changes the filter hides entirely may be left out or sent with empty changes
    const got = att.history;
    for (const e of got) {
      const x = want.find((y) => y.seq === e.seq);
      assert.ok(x, `unexpected event seq ${e.seq}`);
      assert.deepEqual(e.changes, x.changes, `filtered event ${e.seq}`);
    }
    assert.ok(got.some((e) => e.seq === 25 && e.changes.label === 'L25'));
    assert.deepEqual(got.map((e) => e.seq), [...got.map((e) => e.seq)].sort((a, b) => a - b), 'in order');
    await c.close();
  });
}

suite('live');

test('a young state: history: n larger than its event count is complete (nothing left)', async () => {
  const c = await lateJoiner();
  const fresh = await c.create('room', {});
  const a0 = await c.attach('room', fresh.state, { history: 5 });
  assert.deepEqual(a0.history, []);
  assert.equal(a0.historyComplete, true, 'no event yet: complete');
  const r1 = await c.set(fresh.instance, { n: 1 });
  const r2 = await c.set(fresh.instance, { n: 2 });
  const a2 = await c.attach('room', fresh.state, { history: 5 });
  assert.deepEqual(a2.history.map((e) => [e.seq, e.time, e.changes]), [[1, r1.time, { n: 1 }], [2, r2.time, { n: 2 }]]);
  assert.equal(a2.historyComplete, true, 'every event since creation is there');
  const s0 = await c.attach('room', fresh.state, { since: 0 });
  assert.equal(s0.historyComplete, true);
  assert.equal(s0.history.length, 2);
  await c.close();
});

test('restart (SIGTERM): the late-join views are the same', async () => {
  await site.stop();
  await site.start();
}, { timeout: 30000 });

suite('after a clean restart');

test('restart (kill -9): the late-join views are the same', async () => {
  await site.kill9();
  await site.start();
}, { timeout: 30000 });

suite('after kill -9');

test('after restarts a new event continues the history without a gap', async () => {
  const c = await lateJoiner();
  const att = await c.attach('room', w.state, {});
  assert.ok(att.instance > lastInstance, 'instance ids continue');
  const r = await c.set(att.instance, { start: 99.5 });
  assert.equal(r.seq, N + 1);
  events.push({ seq: r.seq, time: r.time, changes: r.changes, origin: c.welcome.session });
  const d = await lateJoiner();
  const late = await d.attach('room', w.state, { history: 3 });
  checkEvents(late.history, lastEvents(3), 'history after a new event');
  assert.equal(late.values.start, null, 'the event value is nil again');
  assert.ok(late.history[2].time > late.history[1].time, 'time continues after the restart');
  await c.close();
  await d.close();
});
