// Clock-sync accuracy under jitter without kernel help (issue 7): the same
// check as 02-jitter-netns (20 ms ± 5 ms uniform each way, client clock
// offset by 12345.678 s and 100 ppm fast, error <= 2 ms p95), with the delay
// made by a TCP proxy in this process instead of tc netem, so it runs on any
// machine (02 skips where sch_netem or namespaces are missing). The proxy
// delays each chunk by its own draw but never reorders a byte stream (TCP
// would not either); Node's millisecond timers add up to ~1 ms more jitter
// each way. The server's true clock is bracketed by a probe that bypasses
// the proxy (live.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from '../lib/server.mjs';
import { fakeClock, runAndSample, probe, analyze, quantile, JITTER_OPTIONS } from './live.mjs';
import { prng } from './sim.mjs';

/** A TCP proxy to 127.0.0.1:port delaying each direction by delay() seconds per chunk. */
function delayProxy(port, delay) {
  const socks = new Set();
  const server = net.createServer((a) => {
    const b = net.connect(port, '127.0.0.1');
    for (const s of [a, b]) { s.setNoDelay(true); socks.add(s); s.on('error', () => {}); s.on('close', () => { socks.delete(s); a.destroy(); b.destroy(); }); }
    const pipe = (from, to) => {
      let last = 0;
      from.on('data', (chunk) => {
        const at = Math.max(last, performance.now() + delay() * 1000);
        last = at;
        setTimeout(() => { if (!to.destroyed) to.write(chunk); }, at - performance.now());
      });
    };
    pipe(a, b);
    pipe(b, a);
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({
    url: `ws://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  })));
}

test('jitter: userspace proxy 20 ms ± 5 ms each way: error <= 2 ms p95', { timeout: 90000 }, async (t) => {
  const srv = await startServer({});
  let proxy = null;
  t.after(async () => { if (proxy) await proxy.close(); await srv.stop(); });
  const r = prng(2026);
  proxy = await delayProxy(srv.port, () => 0.020 + (r() - 0.5) * 0.010);
  const clock = fakeClock({ offset: 12345.678, drift: 100e-6 });

  // the probe runs alongside, straight to the server
  let stop = false;
  const probing = (async () => {
    let b = null;
    while (!stop) { const p = await probe(srv.url, { n: 10, gapMs: 20 }); b = b ? b.merge(p) : p; }
    return b;
  })();
  const out = await runAndSample(proxy.url, clock, JITTER_OPTIONS, { seconds: 38 });
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
