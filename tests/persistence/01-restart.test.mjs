// Restart: classes, states, values, seq, history and ids survive a
// clean stop (SIGTERM) and a kill -9; ids continue (never reused, not even
// the id of a deleted state); the sync clock continues (never backwards).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Site, T, E, sleep } from './lib/persist.mjs';

const MIXER = {
  volume: { type: 'float', default: 0.5, min: 0, max: 1 },
  playing: { type: 'boolean', default: false },
  bang: { type: 'integer', event: true },
  mode: { type: 'enum', list: ['sine', 'square'], default: 'sine' },
};
const ROOM = {
  n: { type: 'integer', default: 0 },
  label: { type: 'string', default: '' },
  data: { type: 'any', default: null, nullable: true },
  hit: { type: 'string', event: true },
};
const SCHEMAS = [{ class: 'mixer', server: true, description: MIXER }];

/** Everything observable about the site before a restart. */
async function populate(site) {
  const a = await site.client();
  const b = await site.client();
  assert.deepEqual(await a.define('room', ROOM), { defined: true });
  const describe = await a.describe('room');
  const r1 = await a.create('room', { label: 'one' });
  const r2 = await a.create('room', { n: 7 });
  for (let i = 1; i <= 12; i++) await a.set(r1.instance, { n: i, data: { i, list: [i, 'x'] } });
  await a.set(r1.instance, { hit: 'boom' });            // an event: in the history, value stays nil
  await a.set(r1.instance, { label: 'ünïcødé ✓' });
  const viaB = await b.attach('room', r2.state, { filter: ['n', 'label'] });
  await b.set(viaB.instance, { n: 8 });                  // origin: b's session
  const mixer = await b.attach('mixer', null, {});
  await b.set(mixer.instance, { volume: 0.25, mode: 'square' });
  await b.set(mixer.instance, { bang: 3 });
  // a third state, the newest, then deleted: its id must not come back
  const r3 = await a.create('room', { n: 99 });
  await a.delete(r3.instance);
  const last = await a.set(r2.instance, { label: 'last' });
  // what a late joiner sees now
  const c = await site.client();
  const snap = {};
  const instances = [r1.instance, r2.instance, r3.instance, viaB.instance, mixer.instance];
  for (const [name, id] of [['room', r1.state], ['room', r2.state], ['mixer', mixer.state]]) {
    const att = await c.attach(name, id, { since: 0 });
    instances.push(att.instance);
    snap[id] = { class: att.class, owner: att.owner, seq: att.seq, time: att.time, values: att.values, history: att.history, historyComplete: att.historyComplete };
  }
  const obs = await c.observe(null);
  const maxInstance = Math.max(...instances);
  const maxSession = Math.max(a.welcome.session, b.welcome.session, c.welcome.session);
  return {
    a, b, c, describe, r1, r2, r3, viaB, mixer, snap, states: obs.states, lastTime: last.time,
    maxState: Math.max(r1.state, r2.state, r3.state, mixer.state), maxInstance, maxSession,
  };
}

async function checkRestored(site, before) {
  const c = await site.client();
  assert.ok(c.welcome.session > before.maxSession, `a new session id (${c.welcome.session}) continues after the earlier ones (max ${before.maxSession})`);
  assert.ok(c.welcome.time >= before.lastTime, `the sync clock did not go backwards: welcome time ${c.welcome.time} < last update time ${before.lastTime}`);
  assert.deepEqual(await c.describe('room'), before.describe, 'a class defined over the wire survives');
  assert.deepEqual((await c.observe(null)).states, before.states, 'the same states (and owners) exist, oldest first');
  let maxInst = 0;
  for (const [id, want] of Object.entries(before.snap)) {
    const att = await c.attach(want.class, Number(id), { since: 0 });
    maxInst = Math.max(maxInst, att.instance);
    assert.equal(att.seq, want.seq, `state ${id}: seq`);
    assert.deepEqual(att.values, want.values, `state ${id}: values`);
    assert.equal(att.owner, want.owner, `state ${id}: owner`);
    assert.equal(att.time, want.time, `state ${id}: time of the last update`);
    assert.deepEqual(att.history, want.history, `state ${id}: history (seq, time, changes, origin)`);
    assert.equal(att.historyComplete, want.historyComplete);
  }
  assert.ok(maxInst > before.maxInstance, `instance ids continue: ${maxInst} > ${before.maxInstance}`);
  // the deleted state stays deleted
  await c.fail(E.UNKNOWN_STATE, T.ATTACH, 'room', before.r3.state, {});
  // a new state gets a fresh id, above every earlier one (the deleted one included)
  const fresh = await c.create('room', {});
  assert.ok(fresh.state > before.maxState, `new state id ${fresh.state} must be > every earlier id (max ${before.maxState}, deleted ${before.r3.state})`);
  assert.ok(fresh.instance > before.maxInstance);
  // a new update: seq continues, time after the last one before the restart
  const inst = (await c.attach('room', before.r1.state, {})).instance;
  const r = await c.set(inst, { n: 1000 });
  assert.equal(r.seq, before.snap[before.r1.state].seq + 1, 'seq continues');
  assert.ok(r.time > before.lastTime, `time of a new update (${r.time}) > last time before the restart (${before.lastTime})`);
  assert.ok(r.time > before.snap[before.r1.state].time);
  // the state's history continues without a gap
  const h = await c.call(T.HISTORY, inst, { last: 3 });
  assert.deepEqual(h.events.map((e) => e.seq), [r.seq - 2, r.seq - 1, r.seq]);
  assert.deepEqual(h.events.at(-1).changes, { n: 1000 });
  assert.equal(h.events.at(-1).origin, c.welcome.session);
  // an event param: in the history, nil in the values
  const ev = before.snap[before.r1.state].history.find((e) => e.changes.hit === 'boom');
  assert.ok(ev, 'the event "hit" is in the restored history');
  assert.equal(before.snap[before.r1.state].values.hit, null);
  return c;
}

for (const how of ['stop', 'kill9']) {
  test(`state survives a ${how === 'stop' ? 'clean stop (SIGTERM)' : 'kill -9'}: values, seq, history, ids, clock`, { timeout: 60000 }, async (t) => {
    const site = await Site.create(t, { schemas: SCHEMAS, history: 1000 });
    await site.start();
    const before = await populate(site);
    // sanity: the content is what was written
    const s1 = before.snap[before.r1.state];
    assert.equal(s1.seq, 14);
    assert.deepEqual(s1.values, { n: 12, label: 'ünïcødé ✓', data: { i: 12, list: [12, 'x'] }, hit: null });
    assert.equal(s1.history.length, 14);
    assert.equal(before.snap[before.mixer.state].values.volume, 0.25);
    if (how === 'stop') await site.stop(); else await site.kill9();
    await site.start();
    const c = await checkRestored(site, before);
    // a second restart of the same kind changes nothing more
    const ids = await c.observe(null);
    await c.terminate(); // its line drops: its session (and the state it made) waits to resume
    if (how === 'stop') await site.stop(); else await site.kill9();
    await site.start();
    const d = await site.client();
    assert.deepEqual((await d.observe(null)).states, ids.states, 'second restart: same states');
    const att = await d.attach('room', before.r1.state, { history: 2 });
    assert.equal(att.seq, s1.seq + 1);
    assert.deepEqual(att.values.n, 1000);
    const fresh = await d.create('room', {});
    assert.ok(fresh.state > Math.max(...ids.states.map((s) => s[1])), 'ids still continue after a second restart');
    await site.stop();
  });
}

test('ids are never reused: create, delete, kill -9 right after the acknowledgement, restart', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { history: 50 });
  let maxState = 0;
  let maxInstance = 0;
  for (let round = 0; round < 3; round++) {
    await site.start();
    const a = await site.client();
    await a.define('room', ROOM);
    for (let i = 0; i < 3; i++) {
      const r = await a.create('room', { n: i });
      assert.ok(r.state > maxState, `round ${round}: state id ${r.state} reused or smaller than ${maxState}`);
      assert.ok(r.instance > maxInstance, `round ${round}: instance id ${r.instance} reused or smaller than ${maxInstance}`);
      maxState = r.state;
      maxInstance = r.instance;
      await a.delete(r.instance);
    }
    await site.kill9(); // right after the last DELETE was acknowledged
  }
  await site.start();
  const c = await site.client();
  assert.deepEqual((await c.observe('room')).states, [], 'every deleted state stays deleted');
  const r = await c.create('room', {});
  assert.ok(r.state > maxState, `after restarts, new id ${r.state} > ${maxState}`);
  await site.stop();
});

test('the sync clock continues across restarts and never goes backwards (PING and updates)', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: SCHEMAS });
  let lastTime = -Infinity;
  for (const how of ['stop', 'kill9', 'stop']) {
    await site.start();
    const c = await site.client();
    assert.ok(c.welcome.time >= lastTime, `welcome time ${c.welcome.time} went backwards from ${lastTime}`);
    const pong = await c.ping();
    assert.ok(pong[3] >= lastTime, `PONG server time ${pong[3]} went backwards from ${lastTime}`);
    const m = await c.attach('mixer', null, {});
    assert.ok(m.time <= pong[3] + 1e-6 || m.time >= lastTime);
    await sleep(150);
    const r = await c.set(m.instance, { bang: 1 });
    assert.ok(r.time > lastTime, `update time ${r.time} not after ${lastTime} (${how})`);
    lastTime = r.time;
    await c.close();
    if (how === 'stop') await site.stop(); else await site.kill9();
  }
});

for (const how of ['stop', 'kill9']) {
  test(`an idle server's clock does not go back after a ${how === 'stop' ? 'SIGTERM' : 'kill -9'}: PONG times keep growing (PROTOCOL.md §10)`, {
    timeout: 30000,
  }, async (t) => {
    const site = await Site.create(t, { schemas: SCHEMAS });
    await site.start();
    const c = await site.client();
    const m = await c.attach('mixer', null, {});
    await c.set(m.instance, { bang: 1 });            // the last commit with changes
    let last = 0;
    for (let i = 0; i < 8; i++) { await sleep(200); last = (await c.ping())[4]; } // idle, but clients see the time run
    if (how === 'stop') await site.stop(); else await site.kill9();
    await site.start();
    const d = await site.client();
    assert.ok(d.welcome.time >= last, `welcome time ${d.welcome.time} < ${last}, a time clients saw before the restart`);
    const pong = await d.ping();
    assert.ok(pong[3] >= last, `PONG time ${pong[3]} < ${last}, a time clients saw before the restart`);
    await site.stop();
  });
}

test('values come back bit-exact after kill -9: int64 edges, floats (-0, ±Infinity, subnormal), binary, unicode, NUL, deep any', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { history: 100 });
  await site.start();
  const c = await site.client();
  await c.define('vals', {
    i: { type: 'integer', default: 0 },
    f: { type: 'float', default: 0 },
    s: { type: 'string', default: '' },
    a: { type: 'any', default: null, nullable: true },
    e: { type: 'enum', list: [1, '1', true], default: 1 },
  });
  const r = await c.create('vals', {});
  const cases = [
    { i: Number.MAX_SAFE_INTEGER }, { i: -Number.MAX_SAFE_INTEGER }, { i: 2 ** 40 + 1 },
    { f: Infinity }, { f: -0 }, { f: -Infinity }, { f: 5e-324 }, { f: 0.1 + 0.2 }, { f: 1.7976931348623157e308 },
    { s: 'nul\u0000inside ✓ 🎵 \u{10FFFF}' },
    { a: { z: 1, a: [1, 2.5, 'x', null, true, { deep: { deeper: [new Uint8Array([0, 255, 7])] } }], m: {} } },
    { a: new Uint8Array([1, 2, 3, 0, 250]) },
    { e: '1' }, { e: true },
  ];
  for (const u of cases) await c.set(r.instance, u);
  const probe = await site.client();
  const before = await probe.attach('vals', r.state, { since: 0 });
  await site.kill9();
  await site.start();
  const d = await site.client();
  const after = await d.attach('vals', r.state, { since: 0 });
  assert.deepEqual(after.values, before.values, 'values');
  assert.ok(after.history.some((e) => Object.is(e.changes.f, -0)), '-0 kept as -0 in the history (deepEqual is strict about -0 too)');
  assert.deepEqual(after.history, before.history, 'history');
  assert.equal(after.values.i, 2 ** 40 + 1);
  assert.equal(after.values.s, 'nul\u0000inside ✓ 🎵 \u{10FFFF}');
  assert.equal(after.values.e, true);
  await site.stop();
});
