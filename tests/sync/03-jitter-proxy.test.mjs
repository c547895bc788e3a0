// Clock-sync accuracy under jitter without kernel help: two clients (fake
// clocks offset by hours, drifting +100 and -100 ppm, default settings)
// reach the server through a TCP proxy process (delay-proxy.mjs) that delays
// every chunk by 20 ms ± 5 ms (uniform) each way, as 02-jitter-netns does
// with tc netem where the kernel has it. Node's millisecond timers add up to
// ~1 ms more jitter each way. Goal: |error| p95 <= 1 ms from 10 s after
// connecting (sampled up to 40 s). The server's true clock is bracketed by
// a probe that bypasses the proxy (live.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../lib/server.mjs';
import { fakeClock, runClients, probe, analyze, quantile, fmtMs, JITTER_CLOCKS } from './live.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

test('jitter: userspace proxy 20 ms ± 5 ms each way, defaults: |error| p95 <= 1 ms from 10 s after connecting', { timeout: 90000 }, async (t) => {
  const srv = await startServer({});
  const proxy = spawn(process.execPath, [join(HERE, 'delay-proxy.mjs'), String(srv.port), '2026'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(async () => {
    if (proxy.exitCode === null) { proxy.kill('SIGKILL'); await new Promise((r) => proxy.once('exit', r)); }
    await srv.stop();
  });
  const line = await new Promise((res) => {
    createInterface({ input: proxy.stdout }).once('line', res);
    proxy.once('exit', () => res(null));
  });
  assert.ok(line, 'the delay proxy did not start');
  const proxyUrl = `ws://127.0.0.1:${JSON.parse(line).port}/`;

  // the probe runs alongside, straight to the server
  let stop = false;
  const probing = (async () => {
    let b = null;
    while (!stop) { const p = await probe(srv.url, { n: 10, gapMs: 20 }); b = b ? b.merge(p) : p; }
    return b;
  })();
  const out = await runClients(proxyUrl, JITTER_CLOCKS.map((c) => fakeClock(c)), { from: 10, until: 40 });
  stop = true;
  const bracket = (await probing).merge(out.bracket);
  assert.ok(bracket.width < 0.5e-3, `server clock bracket too wide (${fmtMs(bracket.width)})`);

  const all = [];
  for (const [i, { samples, back, report: rep }] of out.runs.entries()) {
    const a = analyze(samples, bracket);
    all.push(...a.errs);
    t.diagnostic(`client ${i}, proxy 20ms±5ms: ${a.summary}; round trips ${(rep.travelDurationMin * 1e3).toFixed(1)}..` +
      `${(rep.travelDurationMax * 1e3).toFixed(1)} ms; status ${rep.status}, drift ${(rep.drift * 1e6).toFixed(1)} ± ` +
      `${(rep.driftUncertainty * 1e6).toFixed(1)} ppm after ${rep.series} series`);
    assert.ok(rep.travelDurationMin > 0.025, 'the proxy delay was not in effect');
    assert.equal(back, 0, 'sync time stepped backwards');
    assert.equal(rep.status, 'sync');
  }
  t.diagnostic(`both: p95 ${fmtMs(quantile(all, 0.95))} over ${all.length} samples from 10 s to 40 s`);
  assert.ok(quantile(all, 0.95) <= 1e-3, `p95 error ${fmtMs(quantile(all, 0.95))} > 1 ms`);
});
