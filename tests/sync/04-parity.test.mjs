// The C estimator (shared/sync.c) and the JS one (web/sync.js) must agree:
// the same simulated run (drifting client clock, jitter, lost pings, a server
// clock correction) is driven through the JS SyncEstimator, its pings and
// pongs recorded, and the trace replayed through the C estimator by
// tests/sync/sync_replay (built beside the server); every ping id, pong
// verdict, sync time, inverse, wait before a sync time (timeUntil /
// tt_sync_due) and report must match to 1e-9 s. The run goes through the
// start-up ramp (fast series), the drift from the second series on, the
// steady pauses, and a reset after a clock step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { simulate, prng } from './sim.mjs';

const BUILD = process.env.TUTTI_BUILD || (process.env.TUTTI_SERVER ? dirname(process.env.TUTTI_SERVER) : '');
const REPLAY = BUILD ? join(BUILD, 'sync_replay') : '';

const OPTIONS = {
  seriesLength: 10, startupSeriesLength: 15, pingPeriod: 0.25, seriesDelayMin: 12, seriesDelayMax: 12,
  rampRatio: 0.1, rampPingPeriod: 0.05, pingTimeout: 1, pingTimeoutMax: 30, trainingDuration: 0, window: 300,
  maxDrift: 500e-6, driftScale: 100e-6, slewRate: 1000e-6, stepForward: 0.1,
};

test('C and JS estimators agree on the same trace', (t) => {
  if (!REPLAY || !existsSync(REPLAY)) return t.skip(`sync_replay not built (looked in '${BUILD}'; set TUTTI_BUILD)`);
  const r = prng(99);
  const delay = () => 0.0004 - 0.0002 * Math.log(1 - r()) + (r() < 0.05 ? 0.005 * r() : 0);
  const trace = [];
  const sim = simulate({ up: delay, down: delay, lossEvery: 7, trace, options: OPTIONS });
  const samples = [];
  const sample = () => {
    const lt = sim.local();
    const T = sim.est.getSyncTime(lt);
    const rep = sim.est.getReport();
    trace.push(['time', lt, T, sim.est.getLocalTime(T)]);
    trace.push(['report', lt, rep]);
    // a sync time a little ahead (the wait) and one just passed (due)
    for (const at of [T + 0.3, T - 1e-7]) trace.push(['due', at, lt, sim.est.timeUntil(at, lt)]);
    samples.push(lt);
  };
  sim.est.start();
  sim.runUntil(600, 0.37, sample);
  sim.stepServer(-0.01);
  sim.runUntil(800, 0.37, sample);
  sim.stepServer(3); // a clock step: the implausible drift resets to training and the ramp
  sim.runUntil(1000, 0.37, sample);

  const o = OPTIONS;
  const lines = [`opt ${o.seriesLength} ${o.startupSeriesLength} ${o.pingPeriod} ${o.seriesDelayMin} ${o.seriesDelayMax} ` +
    `${o.rampRatio} ${o.rampPingPeriod} ${o.pingTimeout} ${o.pingTimeoutMax} ${o.trainingDuration} ${o.window} ` +
    `${o.maxDrift} ${o.driftScale} ${o.slewRate} ${o.stepForward}`];
  const f = (x) => x.toPrecision(17);
  for (const e of trace) {
    if (e[0] === 'ping') lines.push(`ping ${f(e[1])}`);
    else if (e[0] === 'pong') lines.push(`pong ${e[1]} ${f(e[2])} ${f(e[3])} ${f(e[4])} ${f(e[5])}`);
    else if (e[0] === 'time') lines.push(`time ${f(e[1])}`);
    else if (e[0] === 'due') lines.push(`due ${f(e[1])} ${f(e[2])}`);
    else lines.push(`report ${f(e[1])}`);
  }
  const res = spawnSync(REPLAY, [], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(res.status, 0, res.stderr);
  const out = res.stdout.trim().split('\n');
  assert.equal(out.length, trace.length);
  let worst = 0, statuses = new Set(), waits = 0, resets = 0, lastStatus = null, errors = 0;
  for (let i = 0; i < trace.length; i++) {
    const e = trace[i], w = out[i].split(' ');
    const where = `#${i} ${JSON.stringify(e)} vs '${out[i]}'`;
    if (e[0] === 'ping') {
      assert.deepEqual([w[0], Number(w[1]), Number(w[2])], ['ping', 0, e[2]], where);
    } else if (e[0] === 'pong') {
      assert.equal(Number(w[1]) === 0, e[6], where);
    } else if (e[0] === 'time') {
      const d = Math.max(Math.abs(Number(w[1]) - e[2]), Math.abs(Number(w[2]) - e[3]));
      worst = Math.max(worst, d);
      assert.ok(d < 1e-9, `${where}: off by ${d}`);
    } else if (e[0] === 'due') {
      assert.equal(Number(w[1]) === 1, e[3] === 0, where);
      assert.ok(Math.abs(Number(w[2]) - e[3]) < 1e-9, `${where}: wait`);
      if (e[3] > 0) waits++;
    } else {
      const rep = e[2];
      statuses.add(rep.status);
      if (lastStatus === 'sync' && rep.status === 'training') resets++;
      lastStatus = rep.status;
      assert.equal(w[1], rep.status, where);
      assert.equal(Number(w[2]), rep.series, where);
      assert.ok(Math.abs(Number(w[3]) - rep.frequencyRatio) < 1e-12, where);
      assert.ok(Math.abs(Number(w[4]) - rep.timeOffset) < 1e-9, where);
      assert.ok(Math.abs(Number(w[5]) - rep.driftUncertainty) < 1e-12, where);
      if (rep.offsetError === null) assert.equal(w[6], 'nan', where);
      else assert.ok(Math.abs(Number(w[6]) - rep.offsetError) < 1e-9, `${where}: offset error`);
      if (rep.offsetError !== null) errors++;
    }
  }
  assert.deepEqual([...statuses].sort(), ['startup', 'sync', 'training']);
  assert.ok(waits > 1000, 'waits compared');
  assert.ok(errors > 1000, 'offset errors compared');
  assert.equal(resets, 1, 'the clock step went through the reset');
  t.diagnostic(`${trace.length} events, ${samples.length} samples, C and JS differ by at most ${worst.toExponential(2)} s`);
});
