// Firing scheduled sets together: five loopback clients, web/tutti.js with
// the default clock settings and fake local clocks offset by seconds to days
// and drifting by ±100 ppm. From 5 s after connecting, one of them schedules
// a set 0.3 s ahead (set(values, { at })), ten times in turn. Every
// update listener reads CLOCK_MONOTONIC first thing (and its client's sync
// time), so the real firing instants compare directly, and against the
// server's true clock (bracketed as in live.mjs). tutti.js fires through
// callAt: it re-checks the clock when a timer wakes early, waits out the
// last milliseconds without a timer, and holds a server UPDATE that arrives
// before `at` on its own clock.
//
// 1. The five clients in this process. Goals: no listener before `at` on
//    its own clock, and firing spread <= 1 ms, asserted in at least 8 of
//    the 10 rounds: a round in which the OS preempts this process between
//    two listeners (a busy 2-core machine: ms) is the machine's doing, not
//    the clocks'; the instants at which the five clocks read `at` are within
//    1 ms in every round.
// 2. The five clients in five processes (fire-client.mjs), as phones are:
//    no listener before `at` on its own clock, and the instants at which
//    the five clocks read `at` (firing instant minus how late each fired on
//    its own clock) within 1 ms. The actual firing spread there also
//    includes how fast the OS wakes five processes at once on a shared
//    2-core machine (ms under a load average of 3): it is reported, with
//    the load, not asserted.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { startServer } from '../lib/server.mjs';
import { fakeClock, probe, mono, sleep, quantile, fmtMs } from './live.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLOCKS = [
  { offset: 1.5, drift: 100e-6 },
  { offset: 12345.678, drift: -100e-6 },
  { offset: 86400 * 2 + 0.25, drift: 100e-6 },
  { offset: -3600, drift: -100e-6 },
  { offset: 600.125, drift: 50e-6 },
];
const ROUNDS = 10, LEAD = 0.3, FROM = 5;
const SCHEMAS = { metro: { class: 'metro', server: true, description: { tick: { type: 'integer', default: -1 } } } };

let srv;
before(async () => { srv = await startServer({ schemas: SCHEMAS }); });
after(async () => { await srv.stop(); });

/** One client in this process, with the interface of a fire-client.mjs child. */
async function localClient({ offset, drift }) {
  const clock = fakeClock({ offset, drift });
  const client = new Client({ url: srv.url, WebSocket, getTime: clock.getTime, connectTimeout: 10000, requestTimeout: 10000 });
  await client.connect();
  const connectedAt = mono();
  const state = await client.stateManager.attach('metro');
  const lines = [{ kind: 'ready', connectedAt }];
  state.onUpdate((n, o, ctx) => {
    const m = mono();
    const sync = client.getSyncTime();
    if ('tick' in n) lines.push({ kind: 'fired', tick: n.tick, at: ctx.time, m, sync, source: ctx.source });
  });
  client.on('scheduled', ({ at, changes, lead }) => lines.push({ kind: 'scheduled', tick: changes.tick, at, lead, m: mono() }));
  return {
    lines,
    send: async (cmd) => {
      if (cmd.cmd === 'set') await state.set({ tick: cmd.tick }, { at: client.getSyncTime() + cmd.lead });
      else if (cmd.cmd === 'report') lines.push({ kind: 'report', report: client.getSyncReport() });
      else if (cmd.cmd === 'quit') client.close();
    },
    next: (pred) => waitLine(lines, pred),
  };
}

async function waitLine(lines, pred, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const found = lines.find(pred);
    if (found) return found;
    if (Date.now() > end) throw new Error('no answer from a client');
    await sleep(5);
  }
}

/** A fire-client.mjs child process speaking JSON lines. */
function childClient({ offset, drift }) {
  const proc = spawn(process.execPath, [join(HERE, 'fire-client.mjs'), srv.url, String(offset), String(drift)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(JSON.parse(l)));
  return {
    proc, lines,
    send: (o) => { proc.stdin.write(JSON.stringify(o) + '\n'); },
    next: (pred) => waitLine(lines, pred),
  };
}

/** Connect, wait FROM s, run the rounds; returns {rounds, reports, bracket}. */
async function run(clients) {
  const ready = await Promise.all(clients.map((k) => k.next((m) => m.kind === 'ready')));
  const t0 = Math.max(...ready.map((r) => r.connectedAt));
  while (mono() < t0 + FROM) await sleep(50);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    await clients[r % clients.length].send({ cmd: 'set', tick: r, lead: LEAD });
    const fired = await Promise.all(clients.map((k) => k.next((m) => m.kind === 'fired' && m.tick === r)));
    const notices = await Promise.all(clients.map((k) => k.next((m) => m.kind === 'scheduled' && m.tick === r)));
    rounds.push({ fired, notices });
    await sleep(300 + Math.random() * 400);
  }
  for (const k of clients) await k.send({ cmd: 'report' });
  const reports = (await Promise.all(clients.map((k) => k.next((m) => m.kind === 'report')))).map((m) => m.report);
  for (const k of clients) await k.send({ cmd: 'quit' });
  return { rounds, reports, bracket: await probe(srv.url, { n: 300, gapMs: 3 }) };
}

/** Spreads (actual, and of the instants each clock read `at`), lateness on the own clocks and the true one. */
function analyse(t, { rounds, reports, bracket: b }) {
  const spreads = [], targets = [], early = [], trueLate = [], leads = [];
  for (const [r, { fired, notices }] of rounds.entries()) {
    const at = fired[0].at;
    for (const f of fired) assert.equal(f.at, at, 'one `at` everywhere');
    const ms = fired.map((f) => f.m);
    // the real instant at which each client's clock read `at`: it fired (sync - at) late on it
    const reads = fired.map((f) => f.m - (f.sync - at));
    spreads.push(Math.max(...ms) - Math.min(...ms));
    targets.push(Math.max(...reads) - Math.min(...reads));
    for (const f of fired) {
      early.push(f.sync - at);
      trueLate.push(-b.error(at, f.m).center); // true server time at the firing, minus `at`
    }
    leads.push(...notices.map((n) => n.lead));
    t.diagnostic(`round ${r}: spread ${fmtMs(spreads[r])}, clocks read \`at\` within ${fmtMs(targets[r])}; ` +
      `fired at own sync - at ${fired.map((f) => ((f.sync - at) * 1e3).toFixed(3)).join('/')} ms (${fired.map((f) => f.source).join('/')})`);
  }
  t.diagnostic(`server clock bracketed to ${(b.width * 1e6).toFixed(1)} µs; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ` +
    `clients ${reports.map((r) => `${r.status} ${(r.drift * 1e6).toFixed(0)} ppm`).join(', ')}`);
  t.diagnostic(`firing spread p50 ${fmtMs(quantile(spreads, 0.5))}, max ${fmtMs(Math.max(...spreads))}; clocks read \`at\` within ` +
    `p50 ${fmtMs(quantile(targets, 0.5))}, max ${fmtMs(Math.max(...targets))}; own clock at firing - at: min ${fmtMs(Math.min(...early))}, ` +
    `p50 ${fmtMs(quantile(early, 0.5))}, max ${fmtMs(Math.max(...early))}; true server time at firing - at: ` +
    `min ${fmtMs(Math.min(...trueLate))}, max ${fmtMs(Math.max(...trueLate))} (± ${fmtMs(b.width / 2)}); ` +
    `schedules known ${fmtMs(Math.min(...leads))}..${fmtMs(Math.max(...leads))} ahead`);
  // the bracket only places the firings on the true clock (reported); the goals do not need it
  assert.ok(b.width < 0.5e-3, `server clock bracket too wide (${fmtMs(b.width)})`);
  assert.ok(Math.min(...early) >= 0, `a listener fired before \`at\` on its own clock (${fmtMs(Math.min(...early))})`);
  return { spreads, targets };
}

// When more than 2 rounds miss the spread (the machine busy with other
// work: preemptions of this process are ms long), a second set of rounds
// with new clients decides; the clocks must read `at` within 1 ms in both.
test('in one process: a set scheduled 0.3 s ahead on 5 clients (±100 ppm) fires within 1 ms, none before `at`', { timeout: 180000 }, async (t) => {
  let within = 0, worst = 0;
  for (let attempt = 1; attempt <= 2 && within < ROUNDS - 2; attempt++) {
    const clients = [];
    for (const c of CLOCKS) clients.push(await localClient(c));
    const { spreads, targets } = analyse(t, await run(clients));
    assert.ok(Math.max(...targets) <= 1e-3, `the clocks read \`at\` ${fmtMs(Math.max(...targets))} apart`);
    within = spreads.filter((x) => x <= 1e-3).length;
    worst = Math.max(...spreads);
    t.diagnostic(`attempt ${attempt}: firing spread <= 1 ms in ${within} rounds of ${ROUNDS}`);
  }
  assert.ok(within >= ROUNDS - 2, `firing spread <= 1 ms in ${within} rounds of ${ROUNDS} (max ${fmtMs(worst)}), twice`);
});

test('in 5 processes: none before `at`, the clocks read `at` within 1 ms (actual spread reported with the load)', { timeout: 90000 }, async (t) => {
  const clients = CLOCKS.map((c) => childClient(c));
  t.after(() => { for (const k of clients) if (k.proc.exitCode === null) k.proc.kill('SIGKILL'); });
  const { targets } = analyse(t, await run(clients));
  assert.ok(Math.max(...targets) <= 1e-3, `the clocks read \`at\` ${fmtMs(Math.max(...targets))} apart`);
});

test('a server UPDATE that arrives before `at` on this client\'s clock is held until then', { timeout: 30000 }, async (t) => {
  // a client whose clock is 20 ms behind the server's (the quick estimate, shifted; no estimator,
  // no heartbeat to correct it): the server applies the set at `at` on its clock and its UPDATE
  // arrives ~20 ms before `at` here
  const late = new Client({ url: srv.url, WebSocket, sync: false, pingInterval: 3600000, connectTimeout: 10000 });
  const other = new Client({ url: srv.url, WebSocket, connectTimeout: 10000 });
  t.after(() => { late.close(); other.close(); });
  await Promise.all([late.connect(), other.connect()]);
  await sleep(600); // the burst of PINGs after connecting is over
  assert.ok(Number.isFinite(late.syncTravel), 'a first clock estimate');
  late._onPong = () => {}; // no later PONG corrects the shift
  late.syncOffset -= 0.020;
  const deadline = Date.now() + 5000;
  const [sl, so] = await Promise.all([late.stateManager.attach('metro'), other.stateManager.attach('metro')]);
  let fired = null;
  sl.onUpdate((n, o, ctx) => { if (n.tick === 1000) fired = { sync: late.getSyncTime(), ctx }; });
  const at = other.getSyncTime() + 0.3;
  await so.set({ tick: 1000 }, { at });
  while (!fired && Date.now() < deadline + 5000) await sleep(5);
  assert.ok(fired, 'fired');
  t.diagnostic(`fired at own sync - at ${fmtMs(fired.sync - at)} (source ${fired.ctx.source})`);
  assert.ok(fired.sync >= at, `fired ${fmtMs(at - fired.sync)} before \`at\` on its own clock`);
  assert.equal(fired.ctx.source, 'update', 'the server\'s UPDATE (held), not the local timer');
  assert.ok(fired.sync - at < 0.01, 'fired at `at`, not much later');
  assert.equal(sl.get('tick'), 1000);
});
