// Clock-sync accuracy under jitter without kernel help: the same
// check as 02-jitter-netns (20 ms ± 5 ms uniform each way, client clock
// offset by 12345.678 s and 100 ppm fast, error <= 2 ms p95), with the delay
// made by a TCP proxy process (delay-proxy.mjs) instead of tc netem, so it
// runs on any machine (02 skips where sch_netem or namespaces are missing).
// Node's millisecond timers add up to ~1 ms more jitter each way. The
// server's true clock is bracketed by a probe that bypasses the proxy
// (live.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../lib/server.mjs';
import { fakeClock, runAndSample, probe, analyze, quantile, JITTER_OPTIONS } from './live.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

test('jitter: userspace proxy 20 ms ± 5 ms each way: error <= 2 ms p95', { timeout: 90000 }, async (t) => {
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
  const clock = fakeClock({ offset: 12345.678, drift: 100e-6 });

  // the probe runs alongside, straight to the server
  let stop = false;
  const probing = (async () => {
    let b = null;
    while (!stop) { const p = await probe(srv.url, { n: 10, gapMs: 20 }); b = b ? b.merge(p) : p; }
    return b;
  })();
  const out = await runAndSample(proxyUrl, clock, JITTER_OPTIONS, { seconds: 38 });
  stop = true;
  const bracket = (await probing).merge(out.bracket);

  const a = analyze(out.samples, bracket);
  const rep = out.report;
  t.diagnostic(`proxy 20ms±5ms: ${a.summary}; round trips ${(rep.travelDurationMin * 1e3).toFixed(1)}..` +
    `${(rep.travelDurationMax * 1e3).toFixed(1)} ms; status ${rep.status}, drift ${(rep.drift * 1e6).toFixed(1)} ppm after ${rep.series} series`);
  assert.ok(rep.travelDurationMin > 0.025, 'the proxy delay was not in effect');
  assert.ok(bracket.width < 0.5e-3, `server clock bracket too wide (${bracket.width * 1e3} ms)`);
  assert.equal(a.back, 0, 'sync time stepped backwards');
  assert.equal(rep.status, 'sync');
  assert.ok(quantile(a.errs, 0.95) <= 2e-3, `p95 error ${quantile(a.errs, 0.95) * 1e3} ms > 2 ms`);
});
