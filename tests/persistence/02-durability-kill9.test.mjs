// Durability: writers get updates acknowledged while the server is
// kill -9ed again and again (at least 20 cycles) on the same database file.
// An update is acknowledged (RESULT) only after its transaction committed, so
// every acknowledged update must be in the restored state and its history.
//
// Each cycle: start the server on the db, two writers (a sequential one on
// the server-owned state, a pipelined one, 4 sets in flight, on the same
// state and on a state it CREATEs in that cycle), set as fast as the acks
// come for a random 50-300 ms, kill -9 at a random moment. Odd cycles run
// with --sync full. Every acknowledged (state, seq, value) and CREATE is
// recorded; at the start of each cycle and at the end, the restored state
// must hold all of them.
//
// Env: TUTTI_PERSIST_SEED (PRNG seed, printed on failure), TUTTI_PERSIST_CYCLES (default 24).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Site, T, sleep, short, within } from './lib/persist.mjs';

const CYCLES = Math.max(20, Number(process.env.TUTTI_PERSIST_CYCLES ?? 24));
const SEED = Number(process.env.TUTTI_PERSIST_SEED ?? (Date.now() % 1e9));

function prng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIXER = {
  counter: { type: 'integer', default: 0 },
  note: { type: 'string', default: '' },
  bang: { type: 'integer', event: true },
};
const ROOM = { n: { type: 'integer', default: -1 }, tag: { type: 'string', default: '' } };

async function durability(t, { cycles, history }) {
  const rnd = prng(SEED + history);
  const site = await Site.create(t, {
    schemas: [{ class: 'mixer', server: true, description: MIXER }, { class: 'room', server: false, description: ROOM }],
    history,
    resumeWindow: 3600, // the writers never come back: their rooms must not be deleted during the test
    args: ['--max-rate', '0'], // as fast as the acks come, also on a fast (Release) build
  });
  const ctx = `seed ${SEED}`;
  // acked: stateId -> Map(seq -> {key, value, origin})
  const acked = new Map();
  const sent = new Map();     // stateId -> Set of values sent (acknowledged or not)
  const rooms = [];           // acknowledged CREATEs: {state, cycle}
  const deleted = [];         // acknowledged DELETEs: state ids
  const seenByPeer = new Map(); // mixer seq -> counter, from UPDATEs a third client received
  const classes = [];         // acknowledged DEFINEs: class names
  let mixerId = null;
  let k = 0;                  // unique value per set
  let totalAcked = 0;
  const refused = [];         // ERROR replies: a valid set must never be refused
  const failed = (err) => { if (err && err.code !== undefined) refused.push(err.message); };
  const ack = (state, seq, key, value, origin) => {
    if (!acked.has(state)) acked.set(state, new Map());
    const m = acked.get(state);
    assert.ok(!m.has(seq), `${ctx}: two acknowledgements for state ${state} seq ${seq}`);
    m.set(seq, { key, value, origin });
    totalAcked++;
  };
  const note = (state, v) => { if (!sent.has(state)) sent.set(state, new Set()); sent.get(state).add(v); };
  const maxAcked = (state) => Math.max(0, ...(acked.get(state)?.keys() ?? []));

  /** Check a restored state (attach result with since:0) against everything acknowledged. */
  function checkState(att, key, what) {
    const id = att.state;
    const m = acked.get(id) ?? new Map();
    const top = maxAcked(id);
    assert.ok(att.seq >= top, `${what}: state ${id} restored at seq ${att.seq} but seq ${top} was acknowledged (${ctx})`);
    const want1 = Math.max(1, att.seq - history + 1); // the first event still kept
    assert.equal(att.historyComplete, want1 === 1, `${what}: state ${id}: historyComplete (seq ${att.seq}, --history ${history})`);
    const seqs = att.history.map((e) => e.seq);
    const first = seqs[0] ?? att.seq + 1;
    for (let i = 0; i < seqs.length; i++) {
      assert.equal(seqs[i], first + i, `${what}: state ${id}: history has a gap or disorder at ${i}: ${short(seqs.slice(Math.max(0, i - 3), i + 3))}`);
    }
    assert.ok(seqs.length === 0 || seqs.at(-1) === att.seq, `${what}: state ${id}: history ends at ${seqs.at(-1)}, seq is ${att.seq}`);
    if (att.seq > 0) assert.equal(first, want1, `${what}: state ${id}: history starts at ${want1} (seq ${att.seq}, --history ${history})`);
    const bySeq = new Map(att.history.map((e) => [e.seq, e]));
    for (const [seq, a] of m) {
      if (seq < want1) continue; // left the history: the seq check above covers it
      const e = bySeq.get(seq);
      assert.ok(e, `${what}: acknowledged update seq ${seq} of state ${id} missing from the history (${ctx})`);
      assert.equal(e.changes[a.key], a.value, `${what}: state ${id} seq ${seq}: history has ${short(e.changes)}, acknowledged ${a.key}=${a.value} (${ctx})`);
      assert.equal(e.origin, a.origin, `${what}: state ${id} seq ${seq}: origin`);
    }
    // nothing in the history that nobody sent, times never go backwards (the clock continues over kill -9)
    const sentHere = sent.get(id) ?? new Set();
    let prevTime = -Infinity;
    let lastVal;
    for (const e of att.history) {
      const v = e.changes[key];
      if (v !== undefined) {
        assert.ok(sentHere.has(v), `${what}: state ${id} seq ${e.seq}: ${key}=${v} was never sent`);
        lastVal = v;
      }
      assert.ok(e.time >= prevTime, `${what}: state ${id} seq ${e.seq}: time ${e.time} < previous ${prevTime} (the clock went backwards)`);
      prevTime = e.time;
    }
    if (lastVal !== undefined) assert.equal(att.values[key], lastVal, `${what}: state ${id}: value ${key} is the last one in the history`);
    if (att.history.length) assert.equal(att.time, att.history.at(-1).time, `${what}: state ${id}: time is the last event's time`);
  }

  async function checkAll(c, what) {
    const m = await c.attach('mixer', null, { since: 0 });
    mixerId ??= m.state;
    assert.equal(m.state, mixerId, `${what}: the server-owned state kept its id`);
    checkState(m, 'counter', what);
    const kept = new Map(m.history.map((e) => [e.seq, e]));
    const firstKept = m.history[0]?.seq ?? Infinity;
    for (const [seq, v] of seenByPeer) {
      assert.ok(seq <= m.seq, `${what}: a peer was sent UPDATE seq ${seq} of the mixer, restored seq is ${m.seq}: broadcast before commit (${ctx})`);
      if (seq >= firstKept) assert.equal(kept.get(seq)?.changes.counter, v, `${what}: a peer was sent counter=${v} at seq ${seq}, the history says ${short(kept.get(seq))} (${ctx})`);
    }
    const obs = await c.observe('room');
    const have = new Set(obs.states.map((s) => s[1]));
    for (const r of rooms) {
      assert.ok(have.has(r.state), `${what}: room ${r.state} (CREATE acknowledged in cycle ${r.cycle}) is gone (${ctx})`);
      checkState(await c.attach('room', r.state, { since: 0 }), 'n', what);
    }
    for (const id of deleted) assert.ok(!have.has(id), `${what}: room ${id} is back although its DELETE was acknowledged (${ctx})`);
    await c.unobserve('room');
    for (const name of classes) {
      const d = await c.describe(name).catch((err) => assert.fail(`${what}: class ${name} (DEFINE acknowledged) is gone: ${err.message} (${ctx})`));
      assert.equal(d.v.default, classes.indexOf(name));
    }
  }

  /** Sequential writer on the mixer. */
  async function sequential(c, inst, stop) {
    while (!stop.v) {
      const v = ++k;
      note(mixerId, v);
      const upd = rnd() < 0.2 ? { counter: v, bang: v } : { counter: v };
      let r;
      try { r = await c.set(inst, upd); } catch (err) { failed(err); return; }
      ack(mixerId, r.seq, 'counter', v, c.welcome.session);
    }
  }

  /** Pipelined writer: up to 4 sets in flight, on the mixer or its room. */
  async function pipelined(c, targets, stop) {
    const inflight = new Set();
    while (!stop.v) {
      while (inflight.size < 4 && !stop.v) {
        const tg = targets[Math.floor(rnd() * targets.length)];
        const v = ++k;
        note(tg.state, v);
        const p = c.set(tg.instance, { [tg.key]: v }).then(
          (r) => { ack(tg.state, r.seq, tg.key, v, c.welcome.session); },
          (err) => { failed(err); stop.v = true; },
        ).finally(() => inflight.delete(p));
        inflight.add(p);
      }
      if (inflight.size) await Promise.race(inflight);
    }
    await Promise.allSettled([...inflight]);
  }

  const t0 = Date.now();
  for (let cycle = 0; cycle < cycles; cycle++) {
    await site.start({ args: cycle % 2 ? ['--sync', 'full'] : [] });
    const w1 = await site.client();
    const w2 = await site.client();
    // the restored state holds everything acknowledged so far
    if (cycle > 0) await checkAll(w1, `start of cycle ${cycle}`);
    const m1 = await w1.attach('mixer', null, {});
    mixerId ??= m1.state;
    const m2 = await w2.attach('mixer', null, {});
    const room = await w2.create('room', { tag: `cycle ${cycle}` });
    rooms.push({ state: room.state, cycle });
    const doomed = await w2.create('room', { tag: 'doomed' });
    await w2.delete(doomed.instance);
    deleted.push(doomed.state);
    const cls = `c${cycle}_${SEED}`;
    assert.deepEqual(await w1.define(cls, { v: { type: 'integer', default: classes.length } }), { defined: true });
    classes.push(cls);
    const reader = await site.client();  // a peer: what it is sent was committed too
    await reader.attach('mixer', null, {});
    const stop = { v: false };
    const writers = [
      sequential(w1, m1.instance, stop),
      pipelined(w2, [{ state: mixerId, instance: m2.instance, key: 'counter' }, { state: room.state, instance: room.instance, key: 'n' }], stop),
    ];
    await sleep(50 + rnd() * 250);
    await site.kill9();       // mid-stream: requests are in flight
    stop.v = true;
    await within(Promise.allSettled(writers), 10000, `cycle ${cycle}: writers to notice the kill`);
    for (const msg of reader.log.map((e) => e.msg)) {
      if (msg[0] === T.UPDATE && msg[1] === mixerId) seenByPeer.set(msg[2], msg[4].counter);
    }
    w1.ws.terminate();
    w2.ws.terminate();
    reader.ws.terminate();
  }
  const loopMs = Date.now() - t0;
  assert.deepEqual(refused, [], 'sets refused with an ERROR');
  assert.ok(totalAcked > cycles * 10, `only ${totalAcked} acknowledged updates in ${cycles} cycles: the writers did not write`);
  await site.start();
  const c = await site.client();
  await checkAll(c, 'final restart');
  // and once more after a clean stop
  await c.close();
  await site.stop();
  await site.start();
  await checkAll(await site.client(), 'after a clean stop');
  await site.stop();
  t.diagnostic(`--history ${history}: ${cycles} cycles in ${loopMs} ms, ${totalAcked} acknowledged updates, ${rooms.length} rooms, mixer seq ${maxAcked(mixerId)}, seed ${SEED}`);
}

test(`acknowledged updates survive ${CYCLES} kill -9 cycles (seed ${SEED})`, { timeout: 120000 }, (t) => durability(t, { cycles: CYCLES, history: 100000 }));

// the same with a short history: trimming (batched, in the commit) under kill -9
test(`with --history 40: 8 kill -9 cycles, the kept history is the last 40 events and holds every acknowledged one among them (seed ${SEED})`, { timeout: 60000 }, (t) => durability(t, { cycles: 8, history: 40 }));
