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
 * Run an estimator for `seconds` after its first series, sampling its sync
 * time every `everyMs`. Returns {first, samples, report, bracket} with
 * samples [{m, s, status}] (CLOCK_MONOTONIC, estimate, status then).
 */
export async function runAndSample(url, clock, options, { seconds, everyMs = 50 } = {}) {
  const drv = await driveEstimator(url, clock, options);
  try {
    const first = await drv.est.start();
    const m1 = mono();
    const samples = [{ m: m1, s: drv.est.getSyncTime(clock.localOf(m1)), status: first.status }];
    const end = m1 + seconds;
    while (mono() < end) {
      await sleep(everyMs);
      const m = mono();
      samples.push({ m, s: drv.est.getSyncTime(clock.localOf(m)), status: drv.est.getReport().status });
    }
    return { first, samples, report: drv.est.getReport(), bracket: drv.bracket };
  } finally {
    drv.close();
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

/**
 * Timings for the jitter tests: series of 20 pings (more chances of a fast
 * trip each way when the machine is busy), training 15 s, then the drift over
 * everything seen (a 25 s window gave drift estimates off by up to 100 ppm on
 * a loaded machine, hence errors growing to 1.5 ms before the next series).
 * The first series also has 20 pings: with 10, one run in ~100 starts 2.5 ms
 * off (simulated with 20 ms ± 5 ms uniform delays) and the slewing at 160 ppm
 * takes 15 s to absorb it, which alone can push a 38 s run's p95 to ~1.9 ms.
 */
export const JITTER_OPTIONS = {
  seriesLength: 20, startupSeriesLength: 20, pingPeriod: 0.05, seriesDelayMin: 0.5, seriesDelayMax: 1,
  trainingDuration: 15, window: 60,
};
