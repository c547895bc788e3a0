// web/sync.js without a network: SyncEstimator driven by a discrete-event
// simulation (sim.mjs) with a client clock offset by 12345.678 s and 100 ppm
// fast, jittery one-way delays from a seeded PRNG, and fake timers, so the
// whole cycle (startup, the ramp of fast series, drift from the second
// series, steady pauses over a 900 s window) runs in milliseconds and the
// same way every time. The C estimator has the same checks in test_sync.c.
// Also callAt(), which fires at a sync time and never before, against timers
// that wake early.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncEstimator, seriesEstimate, regression, callAt } from '../../web/sync.js';
import { simulate, prng } from './sim.mjs';

const TRUE_RATIO = 1 / (1 + 100e-6);

function jitter(seed, base = 0.0004, mean = 0.0002) {
  const r = prng(seed);
  return () => {
    let d = base - mean * Math.log(1 - r());
    if (r() < 0.05) d += 0.005 * r(); // now and then a slow trip
    return d;
  };
}

test('first series: offset within 0.5 ms, status training, report fields', async () => {
  const sim = simulate({ up: jitter(1), down: jitter(2) });
  sim.runUntil(1000); // the server has been up a while; the estimator not started yet
  assert.equal(sim.est.getReport().status, 'new');
  const started = sim.est.start();
  let first = null;
  started.then((r) => { first = r; });
  const reports = [];
  const off = sim.est.onReport((r) => reports.push(r));
  while (sim.est.getReport().series === 0) sim.runUntil(sim.tau + 0.01);
  await Promise.resolve();
  assert.ok(first, 'start() resolved after the first series');
  assert.equal(first.status, 'training');
  assert.equal(first.connection, 'online');
  assert.equal(first.frequencyRatio, 1);
  assert.ok(Math.abs(sim.error()) <= 0.5e-3, `error ${sim.error()}`);
  assert.ok(Math.abs(first.timeOffset - (-12345.678 - 1000 * 100e-6)) < 0.5e-3);
  assert.ok(first.travelDurationMin <= first.travelDuration && first.travelDuration <= first.travelDurationMax);
  assert.deepEqual(first.roundTrip, { min: first.travelDurationMin, mean: first.travelDuration, max: first.travelDurationMax });
  assert.ok(reports.length >= 1);
  off();
  const n = reports.length;
  sim.runUntil(sim.tau + 60);
  assert.equal(reports.length, n, 'no report after unsubscribing');
  // the inverse
  const lt = sim.local();
  assert.ok(Math.abs(sim.est.getLocalTime(sim.est.getSyncTime(lt)) - lt) < 1e-9);
  assert.equal(sim.est.getLocalTime(), lt);
});

test('drift from the second series: status sync, error within 0.1 ms from 5 s on; within 2 ppm after the window', () => {
  const sim = simulate({ up: jitter(3), down: jitter(4) });
  const statuses = [];
  sim.est.onReport((r) => { if (statuses.at(-1) !== r.status) statuses.push(r.status); });
  sim.est.start();
  let worst = 0;
  sim.runUntil(5);
  assert.deepEqual(statuses, ['startup', 'training', 'sync'], 'training after the first series, sync from the second');
  sim.runUntil(120, 0.05, () => { worst = Math.max(worst, Math.abs(sim.error())); });
  const r1 = sim.est.getReport();
  assert.ok(worst < 0.1e-3, `worst error from 5 s to 120 s ${worst}`);
  assert.ok(Math.abs(r1.frequencyRatio - TRUE_RATIO) < 5e-6, `ratio after 120 s ${r1.frequencyRatio}`);
  assert.ok(r1.driftUncertainty > 0 && r1.driftUncertainty < 5e-6, `uncertainty ${r1.driftUncertainty}`);
  sim.runUntil(1000);
  const r = sim.est.getReport();
  assert.equal(r.status, 'sync');
  assert.ok(Math.abs(r.frequencyRatio - TRUE_RATIO) < 2e-6, `ratio ${r.frequencyRatio}`);
  assert.ok(r.longTermEntries >= 40 && r.longTermEntries <= 120, `${r.longTermEntries} entries`);
  worst = 0;
  sim.runUntil(1500, 0.1, () => { worst = Math.max(worst, Math.abs(sim.error())); });
  assert.ok(worst < 0.2e-3, `worst error in sync ${worst}`);
});

test('the start-up ramp: series back to back, pauses growing with age, then IRCAM pauses', () => {
  const trace = [];
  const sim = simulate({ up: jitter(11), down: jitter(12), trace });
  sim.est.start();
  sim.runUntil(400);
  const pings = trace.filter((e) => e[0] === 'ping').map((e) => (e[1] - 12345.678) / (1 + 100e-6));
  const count = (a, b) => pings.filter((x) => x >= a && x < b).length;
  // the first 10 s: series of 10 pings 50 ms apart, with short pauses
  assert.ok(count(0, 10) >= 80, `${count(0, 10)} pings in the first 10 s`);
  // gaps within a fast series: the ping period of the ramp (plus the round trip)
  const gaps = pings.slice(1, 10).map((x, i) => x - pings[i]);
  assert.ok(gaps.every((g) => g > 0.05 && g < 0.06), `gaps ${gaps}`);
  // pauses grow with age: 0.1 x the time since start until they reach 10 s (at ~100 s)
  const pauses = [];
  for (let i = 1; i < pings.length; i++) if (pings[i] - pings[i - 1] > 0.3) pauses.push([pings[i - 1], pings[i] - pings[i - 1]]);
  for (const [at, p] of pauses) {
    if (at < 90) assert.ok(Math.abs(p - 0.1 * at) < 0.1 * at * 0.05 + 0.01, `pause ${p} after ${at} s`);
    if (at > 120) assert.ok(p >= 10 && p <= 20.1, `steady pause ${p} after ${at} s`);
  }
  // steady state: 10 pings 0.25 s apart per 12.5-22.5 s, i.e. ~0.6 pings/s
  const steady = count(200, 400) / 200;
  assert.ok(steady > 0.4 && steady < 0.85, `${steady} pings/s in steady state`);
  const ramp = count(0, 100) / 100;
  assert.ok(ramp > 2 && ramp < 6, `${ramp} pings/s during the ramp`);
});

test('goals in simulation: ±100 ppm, p95 <= 0.25 ms from 5 s on loopback delays, <= 1 ms from 10 s through 20 ms ± 5 ms', () => {
  const q95 = (xs) => [...xs].sort((a, b) => a - b)[Math.ceil(0.95 * xs.length) - 1];
  for (const [name, delay, from, bound] of [
    ['loopback', (r) => () => 0.00005 - 0.00003 * Math.log(1 - r()) + (r() < 0.03 ? 0.003 * r() : 0), 5, 0.25e-3],
    ['20 ms ± 5 ms', (r) => () => 0.015 + 0.010 * r() + 0.001 * r(), 10, 1e-3],
  ]) {
    const errs = [];
    for (let seed = 1; seed <= 8; seed++) {
      for (const drift of [100e-6, -100e-6]) {
        const r = prng(seed * 7 + (drift > 0 ? 1 : 2));
        const sim = simulate({ up: delay(r), down: delay(r), drift, offset: 86400 * seed });
        sim.est.start();
        sim.runUntil(60, 0.05, (tau) => { if (tau >= from) errs.push(Math.abs(sim.error())); });
      }
    }
    assert.ok(q95(errs) <= bound, `${name}: p95 ${q95(errs)}`);
  }
});

test('never steps backwards across a -20 ms correction of the server clock; corrections slewed at 1 ms/s; converges after', () => {
  const sim = simulate({ up: jitter(5), down: jitter(6) });
  sim.est.start();
  let last = -Infinity, lastLt = 0, back = 0, checks = 0, worstInv = 0, worstRate = 0;
  const check = () => {
    if (sim.est.getReport().status === 'startup') return;
    const lt = sim.local();
    const s = sim.est.getSyncTime(lt);
    if (s < last) back++;
    // the sync clock's rate against the local clock: R ± slewRate at most
    if (checks > 0) worstRate = Math.max(worstRate, Math.abs((s - last) / (lt - lastLt) - sim.est.getReport().frequencyRatio));
    last = s; lastLt = lt;
    checks++;
    worstInv = Math.max(worstInv, Math.abs(sim.est.getLocalTime(s) - lt));
  };
  sim.runUntil(1000, 0.01, check);
  assert.ok(Math.abs(sim.error()) < 0.2e-3);
  sim.stepServer(-0.020);
  sim.runUntil(1100, 0.01, check);
  const mid = sim.error();
  sim.runUntil(3000, 0.01, check);
  assert.equal(back, 0);
  assert.ok(checks > 290000);
  // the regression over the 900 s window absorbs a step slowly (IRCAM's behaviour)
  assert.ok(mid > 0.001, `error 100 s after: ${mid}`);
  assert.ok(Math.abs(sim.error()) < 0.5e-3, `error at the end ${sim.error()}`);
  assert.equal(sim.est.getReport().status, 'sync');
  assert.ok(worstInv < 1e-8, `inverse off by ${worstInv}`);
  // faster than the largest drift allowed (500 ppm), slow enough to stay a clock (rate > 0)
  assert.ok(worstRate > 100e-6 && worstRate <= 1000e-6 + 1e-9, `largest rate change ${worstRate}`);
});

test('a local clock that stood still (a device asleep, a suspended AudioContext): back to training, fast series again, converged within seconds', () => {
  let jump = 0;
  const sim = simulate({ up: jitter(13), down: jitter(14) });
  const local0 = sim.local;
  // the estimator reads the local clock through getTime: it loses 5 s at 300 s
  sim.est._getTime = () => local0() + jump;
  const statuses = [];
  sim.est.onReport((r) => { if (statuses.at(-1) !== r.status) statuses.push(r.status); });
  sim.est.start();
  sim.runUntil(300);
  assert.equal(sim.est.getReport().status, 'sync');
  jump = -5;
  sim.runUntil(340);
  assert.deepEqual(statuses.slice(-2), ['training', 'sync'], 'reset to training, then sync');
  const err = sim.est.getSyncTime(local0() + jump) - sim.server();
  assert.ok(Math.abs(err) < 0.2e-3, `error 40 s after the jump ${err}`);
});

test('timeouts: offline, timeout doubles, back online on a pong', () => {
  const sim = simulate({ up: jitter(7), down: jitter(8), lossEvery: 5 });
  const conn = [];
  sim.est.onReport((r) => { if (conn[conn.length - 1] !== r.connection) conn.push(r.connection); });
  sim.est.start();
  sim.runUntil(600);
  const r = sim.est.getReport();
  assert.ok(r.series >= 25, `${r.series} series`);
  assert.ok(conn.includes('offline') && conn.includes('online'));
  assert.ok(Math.abs(sim.error()) < 0.5e-3);
});

test('pongs that do not answer the ping in flight are ignored', () => {
  const sent = [];
  let now = 50;
  const est = new SyncEstimator({ getTime: () => now, sendPing: (id, t) => sent.push([id, t]), setTimeout: () => 1, clearTimeout: () => {} });
  assert.equal(est.onPong(1, 50, 1, 1), false, 'before start');
  est.start();
  assert.equal(sent.length, 1);
  const [id, t] = sent[0];
  assert.equal(id, 2 ** 30);
  now = 50.001;
  assert.equal(est.onPong(id + 1, t, 1, 1), false, 'unknown id (e.g. a heartbeat ping of the client)');
  assert.equal(est.onPong(id, t - 1, 1, 1), false, 'clientTime not the one sent');
  assert.equal(est.onPong(id, t, 2, 1), false, 'serverSend < serverRecv');
  assert.equal(est.onPong(id, t, NaN, 1), false);
  assert.equal(est.onPong(id, t, 1, 1.0001), true);
  assert.equal(est.onPong(id, t, 1, 1.0001), false, 'twice');
  est.stop();
});

test('options are checked', () => {
  const sendPing = () => {};
  assert.throws(() => new SyncEstimator({}), TypeError);
  assert.throws(() => new SyncEstimator({ sendPing, seriesLength: 0 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, seriesDelayMin: 3, seriesDelayMax: 2 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, pingTimeout: 0 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, slewRate: 0.5 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, window: -1 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, rampRatio: -0.1 }), RangeError);
  assert.throws(() => new SyncEstimator({ sendPing, driftScale: NaN }), RangeError);
  assert.ok(new SyncEstimator({ sendPing, driftScale: Infinity }));
  const e = new SyncEstimator({ sendPing, getTime: () => 3 });
  assert.equal(e.getSyncTime(), 3, 'identity before the first pong');
  assert.equal(e.getLocalTime(7), 7);
  e.hint(100, 2.5); // e.g. the HELLO result's time
  assert.equal(e.getSyncTime(), 100.5);
  assert.equal(e.getLocalTime(100.5), 3);
});

test('series estimate: fastest trip each way; falls back to the best round trip', () => {
  // true offset 100; pings with asymmetric excess delays: up fast on #0, down fast on #1
  const mk = (cs, up, down) => [cs, cs + up + 0.0001 + down, cs + 100 + up, cs + 100 + up + 0.0001];
  const s = seriesEstimate([mk(0, 0.001, 0.009), mk(1, 0.009, 0.001), mk(2, 0.005, 0.005)]);
  assert.ok(Math.abs(s.T - s.t - 100) < 1e-9, `bracket midpoint ${s.T - s.t}`);
  // best round trip alone (#2) would also be right here; a lopsided one is not:
  const s2 = seriesEstimate([mk(0, 0.001, 0.003), mk(1, 0.003, 0.001)]);
  assert.ok(Math.abs(s2.T - s2.t - 100) < 1e-9);
  // an empty bracket (a clock stepped inside the series): best round trip
  const bad = [[0, 0.002, 100.001, 100.001], [1, 1.002, 101.5, 101.5]];
  const s3 = seriesEstimate(bad);
  assert.ok(Math.abs(s3.T - s3.t - 100) < 0.01);
  const reg = regression([{ t: 1e6, T: 5 }, { t: 1e6 + 10, T: 5 + 10 * 0.9999 }, { t: 1e6 + 20, T: 5 + 20 * 0.9999 }]);
  assert.ok(Math.abs(reg.R - 0.9999) < 1e-12, 'centred regression keeps the drift at large t');
});

test('startup: provisional estimates within the round trip, then the first series at once; longer first series', () => {
  const sim = simulate({ up: jitter(9), down: jitter(10), options: { startupSeriesLength: 20 } });
  sim.est.start();
  let pongs = 0, worst = 0;
  const seen = new Set();
  for (;;) {
    sim.runUntil(sim.tau + 0.01);
    if (sim.est.getReport().series > 0) break;
    if (sim.est.getSyncTime() !== sim.local()) { // a pong came: provisional estimate
      worst = Math.max(worst, Math.abs(sim.error()));
      seen.add(sim.est.getReport().status);
    }
    pongs = sim.tau;
  }
  assert.deepEqual([...seen], ['startup']);
  assert.equal(sim.est.getReport().status, 'training');
  assert.ok(worst < 0.010, `provisional error ${worst}`);
  assert.ok(pongs > 19 * 0.05, 'twenty pings in the first series (50 ms apart: the ramp)');
  assert.ok(Math.abs(sim.error()) <= 0.5e-3);
  assert.throws(() => new SyncEstimator({ sendPing: () => {}, startupSeriesLength: 0 }), RangeError);
});

test('regression: the drift of a short window is shrunk by the prior, the data win as the window grows', () => {
  // offsets drifting by 100 ppm, with ±50 µs of noise (each point says so)
  const r = prng(21);
  const noise = (50e-6) ** 2 / 3;
  const pts = (n, span, amp = 1e-4) => Array.from({ length: n }, (_, i) => {
    const t = 1e6 + (i * span) / (n - 1);
    return { t, T: 5 + t * (1 + 100e-6) + (r() - 0.5) * amp, noise };
  });
  // two exact points 0.5 s apart: the drift is shrunk by v / (v + noise / driftScale²)
  const two = regression(pts(2, 0.5, 0), 100e-6);
  const v = 2 * 0.25 ** 2, shrink = v / (v + noise / 1e-8);
  assert.ok(Math.abs(two.rawDrift - 100e-6) < 1e-9);
  assert.ok(Math.abs(two.R - 1 - 100e-6 * shrink) < 1e-9 && shrink < 0.7, `drift ${two.R - 1}, shrink ${shrink}`);
  assert.ok(two.uncertainty < two.rawUncertainty);
  const many = regression(pts(30, 60), 100e-6);
  assert.ok(Math.abs(many.R - 1 - 100e-6) < 3e-6, `30 points over 60 s: drift ${many.R - 1}`);
  assert.ok(Math.abs(many.rawDrift - (many.R - 1)) < 0.1e-6, 'the prior no longer matters');
  const five = pts(5, 10);
  assert.equal(regression(five, 0).R, 1, 'driftScale 0: no drift');
  assert.ok(Math.abs(regression(five, Infinity).R - 1 - regression(five).rawDrift) < 1e-15, 'driftScale Infinity: plain least squares');
});

test('timeUntil: 0 once due, else the local seconds left (never 0 while not due)', () => {
  const sim = simulate({ up: jitter(15), down: jitter(16) });
  sim.est.start();
  sim.runUntil(30);
  const lt = sim.local();
  const T = sim.est.getSyncTime(lt);
  assert.equal(sim.est.timeUntil(T, lt), 0);
  assert.equal(sim.est.timeUntil(T - 1, lt), 0);
  assert.ok(Math.abs(sim.est.timeUntil(T + 0.3, lt) - 0.3 / sim.est.getReport().frequencyRatio) < 1e-9);
  assert.ok(sim.est.timeUntil(T + 1e-12, lt) >= 1e-6);
  assert.equal(sim.est.timeUntil(NaN, lt), 0);
  assert.equal(sim.est.timeUntil(Infinity, lt), Infinity);
});

test('callAt: never before `at` with timers that wake up to 1.5 ms early, re-armed on wake-up; cancel', () => {
  // a fake clock and fake timers that fire early by up to 1.5 ms (as Node's and browsers' do)
  let now = 100, seq = 0;
  const r = prng(31);
  const timers = [];
  const setT = (fn, ms) => { const h = { at: now + Math.max(0, ms / 1000 - 0.0015 * r()), fn, seq: seq++ }; timers.push(h); return h; };
  const clearT = (h) => { const i = timers.indexOf(h); if (i >= 0) timers.splice(i, 1); };
  const run = () => {
    while (timers.length) {
      timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const h = timers.shift();
      now = Math.max(now, h.at);
      h.fn();
    }
  };
  const sleeps = [];
  const sleep = (sec) => { sleeps.push(sec); now += sec * (0.9 + 0.3 * r()); }; // wakes early or late
  let fired = [];
  for (let i = 0; i < 200; i++) {
    const at = now + 0.3 * r();
    // each reading of the clock takes 10 µs (polling advances time)
    callAt(at, () => fired.push(now - at), { syncTime: () => (now += 1e-5), setTimeout: setT, clearTimeout: clearT, sleep, realTime: () => now });
    run();
  }
  assert.equal(fired.length, 200);
  assert.ok(fired.every((late) => late >= 0), `fired before at: ${Math.min(...fired)}`);
  assert.ok(Math.max(...fired) < 0.001, `late by ${Math.max(...fired)}`);
  // with a sleep, the timer wakes 5 ms ahead and only that last stretch is slept
  assert.ok(sleeps.length > 0 && sleeps.every((x) => x <= 0.005 + 1e-12), `the last stretch only is slept: ${Math.max(...sleeps)}`);
  // without a sleep, the clock is polled; a clock that stands still goes back to timers
  fired = [];
  let frozen = true;
  const cancelFrozen = callAt(now + 0.01, () => fired.push('x'), {
    syncTime: () => (frozen ? 100 : (now += 1e-5)), setTimeout: setT, clearTimeout: clearT, sleep: null, realTime: () => performance.now() / 1000,
  });
  timers.sort((a, b) => a.at - b.at);
  now = timers[0].at;
  timers.shift().fn(); // wakes, polls a clock that stands still for ~3 ms of real time, re-arms
  assert.equal(fired.length, 0);
  assert.equal(timers.length, 1, 're-armed');
  frozen = false;
  now += 1;
  run();
  assert.deepEqual(fired, ['x']);
  cancelFrozen(); // after firing: harmless
  // cancel before the time
  const cancel = callAt(now + 0.1, () => fired.push('y'), { syncTime: () => (now += 1e-5), setTimeout: setT, clearTimeout: clearT, sleep, realTime: () => now });
  cancel();
  run();
  assert.deepEqual(fired, ['x']);
});
