// Clock-sync accuracy on loopback against the real server: a raw
// WebSocket client drives web/sync.js with a fake local clock offset by
// 12345.678 s and running 100 ppm fast. After the first series the estimate
// must be within 0.5 ms of the true server time, where "true" is measured by
// causality against CLOCK_MONOTONIC (see live.mjs), not by the estimator's
// own symmetry assumption. The run then goes on through training into sync
// (short timings) and checks the drift and that sync time never steps back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { fakeClock, driveEstimator, probe, mono, quantile, fmtMs, sleep } from './live.mjs';

const FAST = {
  seriesLength: 10, pingPeriod: 0.05, seriesDelayMin: 0.2, seriesDelayMax: 0.3,
  trainingDuration: 3, window: 8,
};

test('loopback: offset within 0.5 ms after the first series, drift found, never backwards', async (t) => {
  const srv = await startServer({});
  let drv = null;
  t.after(async () => { if (drv) drv.close(); await srv.stop(); });
  const clock = fakeClock({ offset: 12345.678, drift: 100e-6 });
  drv = await driveEstimator(srv.url, clock, FAST);
  const { est } = drv;

  const t0 = mono();
  const first = await est.start();
  // the estimate right after the first series, evaluated later against the final bracket
  const m1 = mono();
  const est1 = est.getSyncTime(clock.localOf(m1));
  assert.equal(first.status, 'training');
  assert.equal(first.series, 1);
  t.diagnostic(`first series after ${((m1 - t0) * 1e3).toFixed(0)} ms, round trips ${fmtMs(first.travelDurationMin)}..${fmtMs(first.travelDurationMax)}`);

  // run into 'sync', sampling every 20 ms: monotonic, and the error
  const samples = [];
  let last = -Infinity, back = 0;
  const stopAt = m1 + 11;
  while (mono() < stopAt) {
    const m = mono();
    const s = est.getSyncTime(clock.localOf(m));
    if (s < last) back++;
    last = s;
    samples.push({ m, s, status: est.getReport().status });
    await sleep(20);
  }
  const report = est.getReport();
  drv.close();

  // tighten the bracket of the server clock with a dedicated probe
  const b = drv.bracket.merge(await probe(srv.url, { n: 300, gapMs: 3 }));
  t.diagnostic(`true server clock bracketed to ${(b.width * 1e6).toFixed(1)} µs by ${b.n} pongs`);
  assert.ok(b.width < 0.4e-3, `the causality bracket is too wide to judge 0.5 ms (${fmtMs(b.width)}): machine overloaded?`);

  const e1 = b.error(est1, m1);
  t.diagnostic(`after the first series: error ${fmtMs(e1.center)} (worst case over the bracket ${fmtMs(e1.worst)})`);
  assert.ok(e1.worst <= 0.5e-3, `offset error after the first series ${fmtMs(e1.worst)} > 0.5 ms`);

  const errs = samples.map(({ m, s }) => b.error(s, m).worst);
  const syncErrs = samples.filter((x) => x.status === 'sync').map(({ m, s }) => b.error(s, m).worst);
  t.diagnostic(`whole run: p50 ${fmtMs(quantile(errs, 0.5))}, p95 ${fmtMs(quantile(errs, 0.95))}, max ${fmtMs(Math.max(...errs))}; ` +
    `status ${report.status} after ${report.series} series, drift ${(report.drift * 1e6).toFixed(2)} ppm (true ${((1 / 1.0001 - 1) * 1e6).toFixed(2)})`);
  assert.equal(back, 0, 'sync time stepped backwards');
  assert.equal(report.status, 'sync');
  assert.ok(syncErrs.length > 50);
  assert.ok(quantile(errs, 0.95) <= 0.5e-3, `p95 error over the run ${fmtMs(quantile(errs, 0.95))} > 0.5 ms`);
  // the drift: -99.99 ppm; the window is only 8 s here, so allow some noise
  assert.ok(Math.abs(report.drift - (1 / 1.0001 - 1)) < 30e-6, `drift ${report.drift * 1e6} ppm, expected about -100`);
  // the inverse
  const lt = clock.localOf(mono());
  assert.ok(Math.abs(est.getLocalTime(est.getSyncTime(lt)) - lt) < 1e-9);
});
