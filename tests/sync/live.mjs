// live.mjs: helpers for the clock-sync tests that run against the real
// server: a fake local clock, a raw WebSocket client that drives web/sync.js,
// and the measurement of the *true* estimation error.
//
// How the true error is measured. The server's sync clock is
// tt_clock_now() = base + (CLOCK_MONOTONIC - mono0) (server/src/clock.c), so
// it differs from CLOCK_MONOTONIC by an unknown constant C = base - mono0.
// Node's process.hrtime.bigint() is CLOCK_MONOTONIC too (libuv's uv_hrtime),
// the same clock for every process of this machine, network namespaces
// included. Each PING/PONG gives, by causality alone (no symmetry assumed):
//   serverRecv happened after we sent:  serverRecv - C >= monoSend
//   serverSend happened before we read: serverSend - C <= monoRecv
// hence C in [max(serverSend - monoRecv), min(serverRecv - monoSend)], taken
// over every pong we have (the estimator's and those of a separate probe
// connection that pings the server on loopback, a few µs each way). The true
// server time at CLOCK_MONOTONIC m is then m + C, and an estimate's error is
// known to within that bracket: tests assert the worst case over it, and
// report its width.
//
// The fake local clock is performance.now()/1000 * (1 + drift) + offset with
// performance.now() written as CLOCK_MONOTONIC minus its origin, so that
// every local time maps exactly back to CLOCK_MONOTONIC.

import WebSocket from 'ws';
import { encode, decode } from '@msgpack/msgpack';
import { SyncEstimator } from '../../web/sync.js';

export const PING = 12, PONG = 69;

/** CLOCK_MONOTONIC in seconds. */
export const mono = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * performance.now()/1000 * (1 + drift) + offset, exactly invertible.
 * @returns {{getTime:() => number, localOf:(m:number) => number, monoOf:(t:number) => number}}
 */
export function fakeClock({ offset = 12345.678, drift = 100e-6 } = {}) {
  const origin = mono() - performance.now() / 1000; // performance.now()'s zero, within µs
  const localOf = (m) => (m - origin) * (1 + drift) + offset;
  return {
    offset, drift, origin,
    localOf,
    monoOf: (t) => (t - offset) / (1 + drift) + origin,
    getTime: () => localOf(mono()),
  };
}

/** Bracket of C = server clock - CLOCK_MONOTONIC from causality. */
export class Bracket {
  constructor() { this.lo = -Infinity; this.hi = Infinity; this.n = 0; }
  add(monoSend, monoRecv, serverRecv, serverSend) {
    this.lo = Math.max(this.lo, serverSend - monoRecv);
    this.hi = Math.min(this.hi, serverRecv - monoSend);
    this.n++;
  }
  merge(b) { this.lo = Math.max(this.lo, b.lo); this.hi = Math.min(this.hi, b.hi); this.n += b.n; return this; }
  get width() { return this.hi - this.lo; }
  /** Error of estimate `est` of the server time at CLOCK_MONOTONIC m: {worst, center}. */
  error(est, m) {
    const a = est - (m + this.hi), b = est - (m + this.lo);
    return { worst: Math.max(Math.abs(a), Math.abs(b)), center: (a + b) / 2 };
  }
  toJSON() { return { lo: this.lo, hi: this.hi, n: this.n }; }
  static from({ lo, hi, n }) { const b = new Bracket(); b.lo = lo; b.hi = hi; b.n = n; return b; }
}

/** Open a tutti.v1 WebSocket; resolves when open. */
export function openSocket(url) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, ['tutti.v1']);
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

/**
 * Drive a SyncEstimator over a raw WebSocket: PING [12, id, t], PONG fed to
 * onPong. Every pong also tightens `bracket` (CLOCK_MONOTONIC read just
 * before the send and first thing on receipt).
 */
export async function driveEstimator(url, clock, options = {}) {
  const ws = await openSocket(url);
  const bracket = new Bracket();
  const sent = new Map(); // id -> monoSend
  const est = new SyncEstimator({
    ...options,
    getTime: clock.getTime,
    sendPing: (id, t) => {
      sent.set(id, mono());
      ws.send(encode([PING, id, t]));
    },
  });
  ws.on('message', (data) => {
    const monoRecv = mono();
    const m = decode(data);
    if (!Array.isArray(m) || m[0] !== PONG) return;
    const [, id, clientTime, sr, ss] = m;
    const ms = sent.get(id);
    if (ms !== undefined) { sent.delete(id); bracket.add(ms, monoRecv, sr, ss); }
    est.onPong(id, clientTime, sr, ss);
  });
  return {
    ws, est, bracket,
    close() { est.stop(); ws.close(); },
  };
}

/**
 * Ping the server n times, gapMs apart, over a separate connection, and
 * return the causality bracket of C (see the top of this file).
 */
export async function probe(url, { n = 200, gapMs = 5, ws: given = null } = {}) {
  const ws = given || await openSocket(url);
  const bracket = new Bracket();
  for (let i = 0; i < n; i++) {
    await new Promise((res, rej) => {
      let monoSend = 0;
      const onMsg = (data) => {
        const monoRecv = mono();
        const m = decode(data);
        if (!Array.isArray(m) || m[0] !== PONG || m[1] !== 7_000_000 + i) return;
        ws.off('message', onMsg);
        ws.off('close', onClose);
        bracket.add(monoSend, monoRecv, m[3], m[4]);
        res();
      };
      const onClose = () => rej(new Error('probe socket closed'));
      ws.on('message', onMsg);
      ws.on('close', onClose);
      monoSend = mono();
      ws.send(encode([PING, 7_000_000 + i, 0]));
    });
    await new Promise((r) => setTimeout(r, gapMs));
  }
  if (!given) ws.close();
  return bracket;
}

/** Sample `fn()` every `ms` while `until()` is false. */
export async function sampleEvery(ms, until, fn) {
  while (!until()) {
    fn();
    await new Promise((r) => setTimeout(r, ms));
  }
}

/** q-quantile (0..1) of numbers (nearest rank). */
export function quantile(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export const fmtMs = (x) => `${(x * 1e3).toFixed(3)} ms`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Run one estimator per clock against `url` (default settings unless
 * `options`), started together right after connecting, and sample every
 * estimate every `everyMs` from `from` to `until` seconds after connecting,
 * all at the same instant. Returns {runs: [{samples, report, back}],
 * bracket} with samples [{m, s}] (CLOCK_MONOTONIC, estimate) and `back` the
 * steps backwards seen (from the end of the first series on, over the whole
 * run); bracket merges every pong's.
 */
export async function runClients(url, clocks, { options = {}, from = 0, until = 30, everyMs = 20 } = {}) {
  const drivers = [];
  try {
    for (const clock of clocks) drivers.push(await driveEstimator(url, clock, options));
    const t0 = mono();
    for (const d of drivers) d.est.start();
    const runs = drivers.map(() => ({ samples: [], back: 0, last: -Infinity }));
    while (mono() < t0 + until) {
      const m = mono();
      for (const [i, d] of drivers.entries()) {
        const s = d.est.getSyncTime(clocks[i].localOf(m));
        if (d.est.getReport().status === 'startup') continue;
        const r = runs[i];
        if (s < r.last) r.back++;
        r.last = s;
        if (m >= t0 + from) r.samples.push({ m, s });
      }
      await sleep(everyMs);
    }
    const bracket = new Bracket();
    for (const [i, d] of drivers.entries()) { runs[i].report = d.est.getReport(); bracket.merge(d.bracket); }
    return { runs: runs.map(({ samples, back, report }) => ({ samples, back, report })), bracket };
  } finally {
    for (const d of drivers) d.close();
  }
}

/** Errors of samples against a bracket: {errs (worst case each), centers, back (steps backwards)}. */
export function analyze(samples, bracket) {
  const errs = [], centers = [];
  let back = 0, last = -Infinity;
  for (const { m, s } of samples) {
    const e = bracket.error(s, m);
    errs.push(e.worst); centers.push(Math.abs(e.center));
    if (s < last) back++;
    last = s;
  }
  return {
    errs, centers, back,
    summary: `p50 ${fmtMs(quantile(errs, 0.5))}, p95 ${fmtMs(quantile(errs, 0.95))}, max ${fmtMs(Math.max(...errs))} ` +
      `(bracket centre: p95 ${fmtMs(quantile(centers, 0.95))}; bracket width ${(bracket.width * 1e6).toFixed(0)} µs, ${samples.length} samples)`,
  };
}

/** The clients of the jitter tests (02, 03): hours apart, drifting +100 and -100 ppm. */
export const JITTER_CLOCKS = [{ offset: 12345.678, drift: 100e-6 }, { offset: -3600.5, drift: -100e-6 }];
