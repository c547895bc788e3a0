// Clock-sync accuracy on loopback against the real server, with the default
// settings a phone gets: four raw WebSocket clients drive web/sync.js, each
// with a fake local clock offset by seconds to days and drifting by ±100 ppm
// (performance.now() scaled and shifted, see live.mjs). Their error is
// measured against the server's true clock, located by causality against
// CLOCK_MONOTONIC (live.mjs), not by the estimator's own symmetry
// assumption. Goal: |error| p95 <= 0.25 ms from 5 s after connecting (drift
// included: by then a 100 ppm clock has drifted 0.5 ms), two clients at +100
// and -100 ppm read at the same instant agree, and sync time never steps
// back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { fakeClock, runClients, probe, quantile, fmtMs, analyze } from './live.mjs';

const CLOCKS = [
  { offset: 3.25, drift: 100e-6 },
  { offset: 12345.678, drift: -100e-6 },
  { offset: 86400 * 3 + 0.5, drift: 100e-6 },
  { offset: -7200, drift: -100e-6 },
];
const FROM = 5;     // seconds after connecting
const UNTIL = 20;

test('loopback, 4 clients at ±100 ppm, defaults: |error| p95 <= 0.25 ms from 5 s after connecting', { timeout: 90000 }, async (t) => {
  const srv = await startServer({});
  t.after(() => srv.stop());
  const { runs, bracket } = await runClients(srv.url, CLOCKS.map((c) => fakeClock(c)), { from: FROM, until: UNTIL });
  // the server's clock, from every pong seen and a dedicated probe
  const b = bracket.merge(await probe(srv.url, { n: 600, gapMs: 2 }));
  t.diagnostic(`server clock bracketed to ${(b.width * 1e6).toFixed(1)} µs by ${b.n} pongs`);
  // the errors below are the worst case over the bracket (up to half its width more than the truth)
  assert.ok(b.width < 0.25e-3, `the causality bracket is too wide to judge 0.25 ms (${fmtMs(b.width)}): machine overloaded?`);

  const all = [];
  for (const [i, { samples, back, report: r }] of runs.entries()) {
    const a = analyze(samples, b);
    all.push(...a.errs);
    const trueDrift = 1 / (1 + CLOCKS[i].drift) - 1;
    t.diagnostic(`client ${i} (${CLOCKS[i].drift > 0 ? '+' : ''}${CLOCKS[i].drift * 1e6} ppm): ${a.summary}; ${r.series} series, ` +
      `drift ${(r.drift * 1e6).toFixed(1)} ± ${(r.driftUncertainty * 1e6).toFixed(1)} ppm (true ${(trueDrift * 1e6).toFixed(1)})`);
    assert.equal(back, 0, `client ${i}: sync time stepped backwards`);
    assert.equal(r.status, 'sync');
    assert.ok(Math.abs(r.drift - trueDrift) < 20e-6, `client ${i}: drift ${r.drift * 1e6} ppm`);
  }
  // clients 0 (+100 ppm) and 1 (-100 ppm), read at the same instants
  const apart = runs[0].samples.map(({ s }, k) => Math.abs(s - runs[1].samples[k].s));
  t.diagnostic(`all: p95 ${fmtMs(quantile(all, 0.95))} over ${all.length} samples from ${FROM} s to ${UNTIL} s; ` +
    `clients at +100 and -100 ppm read together: p95 ${fmtMs(quantile(apart, 0.95))} apart, max ${fmtMs(Math.max(...apart))}`);
  assert.equal(runs[0].samples.length, runs[1].samples.length);
  assert.ok(quantile(all, 0.95) <= 0.25e-3, `p95 error ${fmtMs(quantile(all, 0.95))} > 0.25 ms`);
  assert.ok(quantile(apart, 0.95) <= 0.25e-3, 'two clients read together disagree');
});
