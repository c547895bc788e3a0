// Three tutti nodes on one NATS JetStream (Debian's nats-server, started by
// the test), clients spread over them, as a piece with phones on several
// nodes behind one URL would be. Real processes on loopback.
//
// - every client sees every update of every state it attached, in seq
//   order, without a gap or a duplicate, whichever node wrote it;
// - a late joiner on a node that did not write gets the whole history; a
//   session resumes on another node with exactly the updates it missed;
// - a set refused on one node is refused the same way on every node, and
//   nothing of it is applied anywhere;
// - kill -9 of a node under load: its clients resume on the others with
//   exactly what they missed, and no acknowledged update is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/cluster.mjs';
import { natsAvailable } from '../lib/nats.mjs';
import { RawClient, T, E, short } from '../lib/client.mjs';

const skip = natsAvailable() ? false : 'nats-server is not installed (make deps-test installs it)';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const MIXER = { n: { type: 'integer', default: 0 }, tag: { type: 'string', default: '' },
  level: { type: 'float', default: 0.5, min: 0, max: 1 }, bang: { type: 'integer', event: true } };
const ROOM = { hue: { type: 'integer', default: 0 }, label: { type: 'string', default: '', maxBytes: 32 } };
const SCHEMAS = [{ class: 'mixer', server: true, description: MIXER }, { class: 'room', server: false, description: ROOM }];

/**
 * What a client saw of each state, in arrival order: seqs of UPDATE and
 * SNAPSHOT pushes and of the RESULTs of its own sets (reqId -> state in
 * `sets`). Returns Map(state -> [seq...]).
 */
function timeline(c, sets) {
  const seen = new Map();
  const add = (id, seq) => { if (!seen.has(id)) seen.set(id, []); seen.get(id).push(seq); };
  for (const { msg } of c.log) {
    if (msg[0] === T.UPDATE || msg[0] === T.SNAPSHOT) add(msg[1], msg[2]);
    else if (msg[0] === T.RESULT && sets.has(msg[1]) && msg[2] && msg[2].seq !== undefined) add(sets.get(msg[1]), msg[2].seq);
  }
  return seen;
}

/** A client that remembers which state each of its SETs was for. */
async function open(url, hello) {
  const c = await RawClient.connect(url);
  c.welcome = await c.hello(hello ?? { version: 1 });
  return remembering(c);
}

function remembering(c) {
  c.sets = new Map();
  c.setOn = async (state, instance, updates) => {
    const id = c.nextReqId;
    c.sets.set(id, state);
    return c.call(T.SET, instance, updates);
  };
  return c;
}

function assertContiguous(seqs, from, to, what) {
  const want = [];
  for (let s = from; s <= to; s++) want.push(s);
  assert.deepEqual(seqs, want, `${what}: expected ${from}..${to} in order, got ${short(seqs, 1500)}`);
}

test('clients spread over three nodes see every update in seq order, no gap, whichever node wrote it', { skip, timeout: 120000 }, async (t) => {
  const cl = await startCluster({ nodes: 3, schemas: SCHEMAS, args: ['--max-rate', '0'] });
  t.after(() => cl.destroy());
  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await open(cl.nodes[i % 3].url));
  // each client makes a room (written by its node) and every client attaches
  // the mixer (written by the first node) and every room
  const rooms = [];
  for (const c of clients) rooms.push(await c.create('room', { label: `r${rooms.length}` }));
  const att = new Map(); // client -> Map(state -> attach result)
  for (const c of clients) {
    const m = new Map();
    const mixer = await c.attach('mixer', null, {});
    m.set(mixer.state, mixer);
    for (const r of rooms) m.set(r.state, await c.attach('room', r.state, {}));
    att.set(c, m);
  }
  const mixerId = att.get(clients[0]).keys().next().value;
  // everyone writes at once: the mixer (forwarded to its node) and every
  // room (forwarded to its creator's node), 40 sets per client, 4 in flight
  await Promise.all(clients.map(async (c, ci) => {
    const m = att.get(c);
    const ids = [...m.keys()];
    let k = 0;
    const one = async () => {
      while (k < 40) {
        const j = k++;
        const st = ids[(ci + j) % ids.length];
        const inst = m.get(st).instance;
        const r = await c.setOn(st, inst, st === mixerId ? { n: ci * 1000 + j, bang: j } : { hue: ci * 1000 + j });
        assert.equal(typeof r.seq, 'number', `client ${ci} set ${j}: ${short(r)}`);
      }
    };
    await Promise.all([one(), one(), one(), one()]);
  }));
  // every node has the same final values and seq for every state
  const finals = new Map();
  for (const [st] of att.get(clients[0])) {
    const views = [];
    for (let i = 0; i < 3; i++) {
      const probe = await open(cl.nodes[i].url);
      const deadline = Date.now() + 10000;
      let a;
      for (;;) {
        a = await probe.attach(st === mixerId ? 'mixer' : 'room', st, {});
        if (a.seq >= (views[0]?.seq ?? 0) || Date.now() > deadline) break;
        await sleep(50);
      }
      views.push(a);
      probe.ws.close();
    }
    for (const v of views.slice(1)) {
      assert.equal(v.seq, views[0].seq, `state ${st}: same seq on every node`);
      assert.deepEqual(v.values, views[0].values, `state ${st}: same values on every node`);
    }
    finals.set(st, views[0].seq);
  }
  // each client got each state's updates from its attach on, once, in order
  for (const [ci, c] of clients.entries()) {
    await c.waitFor(() => {
      const tl = timeline(c, c.sets);
      for (const [st, seq] of finals) if ((tl.get(st) ?? []).at(-1) !== seq && seq > att.get(c).get(st).seq) return undefined;
      return true;
    }, { timeout: 10000, what: `client ${ci} caught up` });
    const tl = timeline(c, c.sets);
    for (const [st, seq] of finals) {
      const from = att.get(c).get(st).seq + 1;
      assertContiguous(tl.get(st) ?? [], from, seq, `client ${ci} (node ${(ci % 3) + 1}), state ${st}`);
    }
  }
  for (const c of clients) c.ws.close();
  await cl.stop();
});

test('late join and resume on a node other than the one that wrote', { skip, timeout: 120000 }, async (t) => {
  const cl = await startCluster({ nodes: 3, schemas: SCHEMAS, args: ['--resume-window', '60'] });
  t.after(() => cl.destroy());
  const w = await open(cl.nodes[0].url);
  const wm = await w.attach('mixer', null, {});
  for (let k = 1; k <= 50; k++) await w.setOn(wm.state, wm.instance, { n: k, tag: `t${k}` });
  // late join on node 3: the whole history, in order, with the writer as origin
  const late = await open(cl.nodes[2].url);
  const lm = await late.attach('mixer', wm.state, { since: 0 });
  assert.equal(lm.seq, 50);
  assert.equal(lm.historyComplete, true);
  assert.deepEqual(lm.history.map((e) => [e.seq, e.changes.n, e.origin]),
    Array.from({ length: 50 }, (_, i) => [i + 1, i + 1, w.welcome.session]));
  assert.deepEqual(lm.values, { n: 50, tag: 't50', level: 0.5, bang: null });
  // a session on node 2 with a room of its own drops its connection (not a
  // goodbye), the writer goes on, and it resumes on node 3
  const p = await open(cl.nodes[1].url);
  const room = await p.create('room', { hue: 7 });
  const pm = await p.attach('mixer', wm.state, {});
  await p.setOn(room.state, room.instance, { hue: 8 });
  await p.waitFor(() => p.log.some(({ msg }) => msg[0] === T.UPDATE && msg[1] === wm.state && msg[2] === 50) || pm.seq === 50 || undefined, { what: 'seq 50' });
  p.ws.close(4000, 'network gone');
  await p.closed;
  for (let k = 51; k <= 60; k++) await w.setOn(wm.state, wm.instance, { n: k });
  const q = await RawClient.connect(cl.nodes[2].url);
  const welcome = await q.hello({ version: 1, token: p.welcome.token, seqs: { [wm.state]: 50, [room.state]: 1 } });
  assert.equal(welcome.resumed, true);
  assert.equal(welcome.session, p.welcome.session, 'the same session, on another node');
  const ups = [];
  await q.waitFor(() => {
    for (const m of q.pushes.splice(0)) if (m[0] === T.UPDATE) ups.push(m);
    return ups.length >= 10 || undefined;
  }, { what: 'the 10 updates it missed' });
  await sleep(300);
  for (const m of q.pushes.splice(0)) if (m[0] === T.UPDATE || m[0] === T.SNAPSHOT) ups.push(m);
  assert.deepEqual(ups.map((m) => [m[0], m[1], m[2], m[4].n]), Array.from({ length: 10 }, (_, i) => [T.UPDATE, wm.state, 51 + i, 51 + i]),
    'exactly the updates it missed, in order; nothing of its room, which did not change');
  // its instances came with it: it writes its room and the mixer from node 3
  q.sets = new Map();
  const r1 = await q.call(T.SET, room.instance, { hue: 9 });
  assert.equal(r1.seq, 2);
  const r2 = await q.call(T.SET, pm.instance, { n: 61 });
  assert.equal(r2.seq, 61);
  const seen = await w.nextPush((m) => m[0] === T.UPDATE && m[2] === 61, { what: 'the writer sees it' });
  assert.equal(seen[4].n, 61);
  for (const c of [w, late, q]) c.ws.close();
  await cl.stop();
});

test('a set refused on one node is refused everywhere, the same way, and nothing is applied', { skip, timeout: 120000 }, async (t) => {
  // the server's rights as they are: the audience may not set a
  // server-owned state, and writes only what it created
  const cl = await startCluster({ nodes: 3, schemas: SCHEMAS, serverOpts: { secure: true } });
  t.after(() => cl.destroy());
  const owner = await open(cl.nodes[0].url);
  const room = await owner.create('room', { hue: 1 });
  const cases = [
    ['mixer', null, { n: 1 }, E.FORBIDDEN],
    ['room', room.state, { hue: 'blue' }, E.BAD_VALUE],
    ['room', room.state, { nope: 1 }, E.UNKNOWN_PARAM],
    ['room', room.state, { label: 'x'.repeat(40) }, E.BAD_VALUE],
    ['room', room.state, { hue: 2 }, E.FORBIDDEN], // not its own room
  ];
  const errors = [];
  for (let i = 0; i < 3; i++) {
    const c = await open(cl.nodes[i].url);
    const mixer = await c.attach('mixer', null, {});
    const r = await c.attach('room', room.state, {});
    const got = [];
    for (const [cls, , updates, code] of cases) {
      const inst = cls === 'mixer' ? mixer.instance : r.instance;
      got.push(await c.fail(code, T.SET, inst, updates));
    }
    errors.push(got.map((e) => [e.code, e.message]));
    c.ws.close();
  }
  assert.deepEqual(errors[1], errors[0], 'node 2 refuses as node 1 does');
  assert.deepEqual(errors[2], errors[0], 'node 3 refuses as node 1 does');
  // nothing applied anywhere: every node still has seq 0 and the first values
  for (let i = 0; i < 3; i++) {
    const c = await open(cl.nodes[i].url);
    const m = await c.attach('mixer', null, {});
    const r = await c.attach('room', room.state, {});
    assert.deepEqual([m.seq, r.seq, r.values.hue], [0, 0, 1], `node ${i + 1}: nothing applied`);
    c.ws.close();
  }
  owner.ws.close();
  await cl.stop();
});

test('kill -9 of a node under load: its clients resume on the others with exactly what they missed; 0 acknowledged lost', { skip, timeout: 180000 }, async (t) => {
  const cl = await startCluster({ nodes: 3, schemas: SCHEMAS, args: ['--resume-window', '120', '--history', '100000', '--max-rate', '0'] });
  t.after(() => cl.destroy());
  // node 1: it made the server's mixer at start, so it writes it and the
  // others forward their sets to it; its death moves the mixer too
  const victim = 0;
  const survivors = [1, 2];
  // writers on each node, and "phones" on the victim: each owns a room,
  // writes it, and listens to the mixer
  const writers = [];
  for (let i = 0; i < 3; i++) writers.push(await open(cl.nodes[i].url));
  const phones = [];
  for (let i = 0; i < 4; i++) {
    const p = await open(cl.nodes[victim].url);
    p.room = await p.create('room', { hue: i });
    p.mixer = await p.attach('mixer', null, {});
    phones.push(p);
  }
  const mixerId = phones[0].mixer.state;
  const acked = new Map(); // state -> Map(seq -> value)
  const ack = (st, seq, v) => {
    if (!acked.has(st)) acked.set(st, new Map());
    assert.ok(!acked.get(st).has(seq), `state ${st}: seq ${seq} acknowledged twice`);
    acked.get(st).set(seq, v);
  };
  let stop = false;
  let value = 0;
  const ackTimes = [];
  const writerLoop = async (c, inst, st, key) => {
    while (!stop) {
      const v = ++value;
      try {
        const r = await c.setOn(st, inst, { [key]: v });
        ack(st, r.seq, v);
        ackTimes.push(Date.now());
      } catch (e) {
        if (c.closeInfo) return; // its node died: unacknowledged, may be lost
        throw e; // refused: never for a valid set
      }
    }
  };
  const loops = [];
  for (const c of writers) {
    const m = await c.attach('mixer', null, {});
    loops.push(writerLoop(c, m.instance, m.state, 'n'));
  }
  for (const p of phones) loops.push(writerLoop(p, p.room.instance, p.room.state, 'hue'));
  await sleep(1500);
  const killedAt = Date.now();
  await cl.kill9(victim);
  await Promise.race([Promise.all(phones.map((p) => p.closed)), sleep(5000)]);
  // each phone resumes on a surviving node with the last seq it saw of
  // each state; the writers of the survivors never stopped
  const resumed = [];
  for (const [i, p] of phones.entries()) {
    const tl = timeline(p, p.sets);
    const lastMixer = (tl.get(mixerId) ?? []).at(-1) ?? p.mixer.seq;
    const lastRoom = (tl.get(p.room.state) ?? []).at(-1) ?? p.room.seq;
    const url = cl.nodes[survivors[i % 2]].url;
    const q = await RawClient.connect(url);
    const w = await q.hello({ version: 1, token: p.welcome.token, seqs: { [mixerId]: lastMixer, [p.room.state]: lastRoom } });
    assert.equal(w.resumed, true, `phone ${i} resumes on another node`);
    assert.equal(w.session, p.welcome.session);
    remembering(q);
    resumed.push({ q, p, lastMixer, lastRoom });
    loops.push(writerLoop(q, p.room.instance, p.room.state, 'hue'));
  }
  await sleep(2500);
  stop = true;
  await Promise.all(loops);
  const stall = Math.max(...ackTimes.filter((t) => t > killedAt).map((t, i, a) => (i ? t - a[i - 1] : t - killedAt)));
  console.log(`# acknowledged: ${[...acked.values()].reduce((n, m) => n + m.size, 0)}; longest wait for an acknowledgement after the kill: ${stall} ms`);
  // every acknowledged update is in the history read from each survivor
  for (const i of survivors) {
    const c = await open(cl.nodes[i].url);
    for (const [st, m] of acked) {
      const a = await c.attach(st === mixerId ? 'mixer' : 'room', st, { since: 0 });
      const key = st === mixerId ? 'n' : 'hue';
      const bySeq = new Map(a.history.map((e) => [e.seq, e.changes[key]]));
      let missing = 0;
      for (const [seq, v] of m) if (bySeq.get(seq) !== v) missing++;
      assert.equal(missing, 0, `node ${i + 1}, state ${st}: ${missing} acknowledged updates missing`);
      assertContiguous(a.history.map((e) => e.seq), 1, a.seq, `node ${i + 1}, state ${st}: history`);
    }
    c.ws.close();
  }
  // each phone saw the mixer exactly once per seq: before the kill on the
  // victim, then its catch-up and what followed on the survivor
  for (const [i, { q, p, lastMixer }] of resumed.entries()) {
    await sleep(200);
    const before = (timeline(p, p.sets).get(mixerId) ?? []);
    const after = (timeline(q, q.sets).get(mixerId) ?? []);
    const final = Math.max(...acked.get(mixerId).keys());
    await q.waitFor(() => ((timeline(q, q.sets).get(mixerId) ?? []).at(-1) ?? 0) >= final || undefined, { timeout: 10000, what: `phone ${i} catches up` });
    const all = [...before, ...timeline(q, q.sets).get(mixerId)];
    assert.equal(before.at(-1) ?? p.mixer.seq, lastMixer);
    assertContiguous(all, p.mixer.seq + 1, all.at(-1), `phone ${i}: the mixer across the kill (${before.length} before, ${after.length} after)`);
  }
  for (const { q } of resumed) q.ws.close();
  for (const c of writers) c.ws.close();
  await cl.stop();
});
