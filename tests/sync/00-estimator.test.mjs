// web/sync.js without a network: SyncEstimator driven by a discrete-event
// simulation (sim.mjs) with a client clock offset by 12345.678 s and 100 ppm
// fast, jittery one-way delays from a seeded PRNG, and fake timers, so the
// whole IRCAM cycle (startup, training, sync over a 900 s window) runs in
// milliseconds and the same way every time. The C estimator has the same
// checks in test_sync.c.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncEstimator, seriesEstimate, regression } from '../../web/sync.js';
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

test('drift after the long window: ratio within 2 ppm, error in sync under 0.2 ms', () => {
  const sim = simulate({ up: jitter(3), down: jitter(4) });
  sim.est.start();
  sim.runUntil(119);
  assert.equal(sim.est.getReport().status, 'training');
  sim.runUntil(1000);
  const r = sim.est.getReport();
  assert.equal(r.status, 'sync');
  assert.ok(Math.abs(r.frequencyRatio - TRUE_RATIO) < 2e-6, `ratio ${r.frequencyRatio}`);
  let worst = 0;
  sim.runUntil(1500, 0.1, () => { worst = Math.max(worst, Math.abs(sim.error())); });
  assert.ok(worst < 0.2e-3, `worst error in sync ${worst}`);
});

test('never steps backwards across a -20 ms correction of the server clock; converges after', () => {
  const sim = simulate({ up: jitter(5), down: jitter(6) });
  sim.est.start();
  let last = -Infinity, back = 0, checks = 0, worstInv = 0;
  const check = () => {
    if (sim.est.getReport().status === 'startup') return;
    const lt = sim.local();
    const s = sim.est.getSyncTime(lt);
    if (s < last) back++;
    last = s;
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
  assert.ok(mid > 0.001, `slewed, not stepped (error 100 s after: ${mid})`);
  assert.ok(Math.abs(sim.error()) < 0.5e-3, `error at the end ${sim.error()}`);
  assert.equal(sim.est.getReport().status, 'sync');
  assert.ok(worstInv < 1e-8, `inverse off by ${worstInv}`);
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
  assert.ok(pongs > 19 * 0.25, 'twenty pings in the first series');
  assert.ok(Math.abs(sim.error()) <= 0.5e-3);
  assert.throws(() => new SyncEstimator({ sendPing: () => {}, startupSeriesLength: 0 }), RangeError);
});
