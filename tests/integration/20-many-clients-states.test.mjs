// Many clients and many states at once (100 clients, 1000 states):
// every client sees each state's updates in seq order with no gap, and states
// are isolated from each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, defineFresh, RawClient } from './lib/harness.mjs';

const h = useServer({ resumeWindow: 0, args: ['--max-instances', '10000'] }); // one client attaches every state

const CLIENTS = Number(process.env.TUTTI_IT_CLIENTS ?? 100);
const STATES_PER_CLIENT = 10;          // 1000 states
const PEERS_PER_STATE = 2;             // each state also attached by 2 other clients:
                                       // the first with filter ['v'], the second unfiltered
const SETS_PER_STATE = 4;              // by its owner and its peers, concurrently

test(`${CLIENTS} clients, ${CLIENTS * STATES_PER_CLIENT} states, filtered and unfiltered peers: per-state seq order with no gap, values isolated per state, filters kept`, { timeout: 180000 }, async (t) => {
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(RawClient.open(h.url));
  const cs = await Promise.all(clients);
  t.after(async () => { await Promise.all(cs.map((c) => c.close())); });
  const cls = await defineFresh(cs[0], { v: { type: 'integer', default: -1 }, tag: { type: 'string', default: '' } });

  // every client creates its states (pipelined per client, concurrently across clients)
  const owned = await Promise.all(cs.map(async (c) => {
    const r = [];
    for (let k = 0; k < STATES_PER_CLIENT; k++) r.push(c.create(cls, { tag: `s${k}` }));
    return Promise.all(r);
  }));
  const all = owned.flat();
  assert.equal(all.length, CLIENTS * STATES_PER_CLIENT);
  assert.equal(new Set(all.map((s) => s.state)).size, all.length, 'state ids are distinct');

  // peers attach: state k of client i is attached by clients i+1 .. i+PEERS
  const instances = new Map(); // `${clientIdx}:${stateId}` -> instance id
  owned.forEach((list, i) => list.forEach((s) => instances.set(`${i}:${s.state}`, s.instance)));
  const watchers = new Map(); // stateId -> [clientIdx...] (including the owner)
  const filtered = new Set(); // `${clientIdx}:${stateId}` attached with filter ['v']
  await Promise.all(cs.map(async (c, j) => {
    const reqs = [];
    for (let p = 1; p <= PEERS_PER_STATE; p++) {
      const i = (j - p + CLIENTS) % CLIENTS;
      const opts = p === 1 ? { filter: ['v'] } : {};
      for (const s of owned[i]) reqs.push(c.attach(cls, s.state, opts).then((a) => { instances.set(`${j}:${s.state}`, a.instance); if (p === 1) filtered.add(`${j}:${s.state}`); }));
    }
    await Promise.all(reqs);
  }));
  owned.forEach((list, i) => list.forEach((s) => {
    const w = [i];
    for (let p = 1; p <= PEERS_PER_STATE; p++) w.push((i + p) % CLIENTS);
    watchers.set(s.state, w);
  }));
  const logStart = cs.map((c) => c.log.length);

  // concurrent sets: each watcher of each state writes SETS_PER_STATE / watchers values
  const writes = [];
  const expectedPerState = new Map();
  for (const [stateId, w] of watchers) {
    let n = 0;
    for (let r = 0; r < SETS_PER_STATE; r++) {
      const ci = w[r % w.length];
      // value encodes the state id, so a leak between states is visible
      writes.push({ ci, stateId, value: stateId * 1000 + r });
      n++;
    }
    expectedPerState.set(stateId, n);
  }
  // each client sends its writes pipelined, all clients at once
  const byClient = new Map();
  for (const wr of writes) {
    if (!byClient.has(wr.ci)) byClient.set(wr.ci, []);
    byClient.get(wr.ci).push(wr);
  }
  const results = new Map(); // reqKey -> result
  await Promise.all([...byClient.entries()].map(async ([ci, list]) => {
    const c = cs[ci];
    const ps = list.map((wr) => c.set(instances.get(`${ci}:${wr.stateId}`), filtered.has(`${ci}:${wr.stateId}`) ? { v: wr.value } : { v: wr.value, tag: `t${wr.value}` }).then((r) => {
      results.set(`${ci}:${wr.value}`, r);
    }));
    await Promise.all(ps);
  }));

  // every set was applied (each value is new), so each state ends at seq SETS_PER_STATE
  for (const wr of writes) {
    const r = results.get(`${wr.ci}:${wr.value}`);
    assert.deepEqual(r.changes, filtered.has(`${wr.ci}:${wr.stateId}`) ? { v: wr.value } : { v: wr.value, tag: `t${wr.value}` });
  }

  // each watcher must see, per state, seqs 1..N exactly once in order, through
  // its UPDATEs and its own RESULTs, in arrival order
  const deadline = Date.now() + 60000;
  for (let ci = 0; ci < CLIENTS; ci++) {
    const c = cs[ci];
    const myStates = [...watchers.entries()].filter(([, w]) => w.includes(ci)).map(([s]) => s);
    const expectTotal = myStates.reduce((acc, s) => acc + expectedPerState.get(s), 0);
    const count = () => c.log.slice(logStart[ci]).filter((e) => (e.msg[0] === T.UPDATE) || (e.msg[0] === T.RESULT && e.msg[2] && e.msg[2].changes && 'v' in e.msg[2].changes)).length;
    await c.waitFor(() => (count() >= expectTotal ? true : undefined), { timeout: Math.max(1000, deadline - Date.now()), what: `client ${ci}: ${expectTotal} updates+results` });
  }
  // results have no state id: map each RESULT back through its value
  for (let ci = 0; ci < CLIENTS; ci++) {
    const c = cs[ci];
    const perState = new Map();
    for (const e of c.log.slice(logStart[ci])) {
      const m = e.msg;
      let stateId, seq, v;
      if (m[0] === T.UPDATE) {
        [, stateId, seq] = m;
        v = m[4].v;
        if (filtered.has(`${ci}:${stateId}`)) assert.deepEqual(Object.keys(m[4]), ['v'], `client ${ci}: a filtered UPDATE carries only v`);
        else if ('tag' in m[4]) assert.equal(m[4].tag, `t${m[4].v}`, `client ${ci}: tag and v of one set travel together`);
        assert.ok(watchers.get(stateId).includes(ci), `client ${ci} got an UPDATE for state ${stateId} it is not attached to`);
      } else if (m[0] === T.RESULT && m[2] && m[2].changes && 'v' in m[2].changes) {
        v = m[2].changes.v;
        stateId = Math.floor(v / 1000);
        seq = m[2].seq;
      } else continue;
      assert.equal(Math.floor(v / 1000), stateId, `client ${ci}: state ${stateId} got the value ${v} of another state`);
      if (!perState.has(stateId)) perState.set(stateId, []);
      perState.get(stateId).push(seq);
    }
    for (const [stateId, w] of watchers) {
      if (!w.includes(ci)) continue;
      const n = expectedPerState.get(stateId);
      assert.deepEqual(perState.get(stateId), Array.from({ length: n }, (_, k) => k + 1), `client ${ci}, state ${stateId}: seqs in order, no gap, no duplicate`);
    }
  }

  // the value of seq N of each state, from the RESULTs
  const lastValue = new Map();
  for (const wr of writes) {
    const r = results.get(`${wr.ci}:${wr.value}`);
    if (r.seq === expectedPerState.get(wr.stateId)) lastValue.set(wr.stateId, wr.value);
  }
  assert.equal(lastValue.size, watchers.size, 'each state has exactly one set at its last seq');

  // a fresh attach sees every state at seq N with the value of seq N
  const fresh = cs[0];
  const checks = [];
  for (const [stateId] of watchers) checks.push(fresh.attach(cls, stateId, {}).then((a) => [stateId, a]));
  for (const [stateId, a] of await Promise.all(checks)) {
    assert.equal(a.seq, expectedPerState.get(stateId));
    assert.equal(a.values.v, lastValue.get(stateId));
  }
  for (const c of cs) c.assertWellFormed();
});
