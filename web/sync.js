// sync.js: clock-sync estimator of tutti (ES module, browser and Node, no
// dependencies). It estimates the server's sync clock (PROTOCOL.md §10) from
// PING/PONG exchanges, following IRCAM's sync algorithm (@ircam/sync 2.x, WAC
// 2016): series of pings, keep the fastest trips, offset from the best, drift
// by linear regression over a long window, and monotonic smoothing so that
// the sync time never steps backwards. callAt() fires a function at a sync
// time, never before. shared/sync.c is the same estimator in C for native
// clients (tt_sync_due for firing); keep the two in step (tests/sync/04-parity).
//
// Standalone use (any transport):
//
//   import { SyncEstimator } from './sync.js';
//   const sync = new SyncEstimator({
//     getTime: () => audioContext.currentTime,          // local clock, seconds
//     sendPing: (pingId, clientTime) => ws.send(encode([12, pingId, clientTime])),
//   });
//   // for every PONG [69, pingId, clientTime, serverRecv, serverSend]:
//   sync.onPong(pingId, clientTime, serverRecv, serverSend);
//   await sync.start();            // resolves after the first series (status 'training')
//   sync.getSyncTime();            // server sync time now; sync.getLocalTime(at) for audio
//
// Adoption by tutti.js (Client), the few lines it needs:
//
//   import { SyncEstimator } from './sync.js';
//   // constructor, once this.options is set:
//   this.sync = new SyncEstimator({
//     ...(options.sync || {}),                          // optional timing overrides
//     getTime: options.getTime || now,                  // e.g. () => audioContext.currentTime
//     sendPing: (id, t) => { if (this._ws && this._ws.readyState === 1) this._enqueue([MSG.PING, id, t]); },
//   });
//   // _onWelcome(welcome): this.sync.hint(welcome.time); this.sync.start();
//   //                      (hint is ignored after the first pong, start while running)
//   // close():             this.sync.stop();
//   // _onPong([, id, clientTime, recv, send]) { this.sync.onPong(id, clientTime, recv, send); ... }
//   getSyncTime(localTime) { return this.sync.getSyncTime(localTime); }
//   getLocalTime(syncTime) { return this.sync.getLocalTime(syncTime); }
//
// Before the first pong, getSyncTime() is the local time itself; during the
// first series (status 'startup') it is a provisional estimate from the pongs
// so far, which may step either way as better pongs come; monotonicity holds
// from the end of the first series (the first 'training' report) on. Until
// the first pong, sync.hint(welcome.time) gives a rough estimate from the
// HELLO result. So tutti.js needs no quick estimate (syncOffset, _syncReady)
// of its own. Types: web/sync.d.ts.
//
// The estimator's ping ids start at 2^30 (option pingIdBase), and a PONG is
// accepted only when both its id and its echoed clientTime match the ping in
// flight, so the client's own heartbeat PINGs can keep their ids and all PONGs
// can be fed here: the ones the estimator did not send are ignored. Keep the
// estimator running across reconnections (pings lost while the socket is down
// time out; the report then says connection 'offline').
//
// Deliberate differences from @ircam/sync, each for accuracy or robustness:
// - The offset of a series comes from the fastest trip in *each direction*
//   (the causality bracket [max(serverSend - clientRecv), min(serverRecv -
//   clientSend)] over the series, midpoint), which is the best-round-trip
//   estimate when one ping is fastest both ways and is about twice as precise
//   under symmetric jitter: with 10 pings and one-way delays of 20 ms ± 5 ms
//   (uniform, as tc netem draws them), the p95 error of one series goes from
//   2.5 ms (best round trip) to 1.24 ms (simulated). When the bracket is empty
//   (a clock stepped during the series) the best round trip's offset is used.
// - The regression is computed on centred values (IRCAM sums t² and t·T, which
//   loses the drift to cancellation when the local clock reads 1e6 s).
// - Long-term entries expire by age (`window` seconds of local time) rather
//   than by a count derived from the mean pause.
// - A backward correction is always slewed (never a step back); a forward
//   correction larger than `stepForward` seconds is applied at once, so a
//   client that was far behind does not stay late for minutes.
// - During the first series, each pong gives a provisional estimate (applied
//   at once, no smoothing), and the first series may be longer
//   (`startupSeriesLength`).
// - The drift is estimated from the second series on, not after a training
//   phase of minutes (IRCAM's 120 s): phones join a piece in its first
//   minutes, and a 100 ppm clock drifts 1 ms in 10 s. Two series close in
//   time say little about the drift, so the regression is a ridge regression:
//   the drift is shrunk towards 0 by a prior (`driftScale`, the expected
//   |drift| of a clock, 100 ppm) against the noise of the series, which each
//   series measures from the spacing of its fastest trips; as the window
//   grows the data win (report.driftUncertainty is the standard error). A
//   regression whose unshrunk drift is beyond `maxDrift` by more than six
//   standard errors means a clock stepped: back to 'training' (one series).
// - A start-up ramp: the pause after a series is `rampRatio` (0.1) times the
//   time since start(), so series come back to back at first and thin out
//   as the estimate firms up; the ramp's series ping every `rampPingPeriod`
//   (50 ms). Once that pause reaches `seriesDelayMin` (at ~100 s), IRCAM's
//   10-20 s pauses and 250 ms between pings. A reset starts the ramp again.
//   Load per phone: ~3 pings/s on average over the first 100 s (up to 20/s
//   in the first seconds on a fast network), then ~0.6 pings/s (10 per
//   12.5-22.5 s): 500 phones in steady state send the server ~300 PINGs/s.
// - Corrections are slewed at 1 ms/s (`slewRate`; IRCAM: 160 ppm): faster
//   than the largest drift allowed (500 ppm), or a drifting clock would be
//   corrected more slowly than it drifts; the sync clock's rate then stays
//   within 0.1% of the local clock's, and never goes backwards.
//
// Measured (tests/sync/README.md): on loopback, 4 clients at ±100 ppm, error
// p95 0.11-0.12 ms from 5 s after connecting (IRCAM's timings: 2.2 ms);
// through 20 ms ± 5 ms each way, p95 0.40-0.54 ms from 10 s after connecting.
//
// Local clock: an AudioContext's currentTime advances by render quanta (128
// frames, ~2.7-2.9 ms), which adds up to about half a quantum of noise per
// series; the regression averages it out in 'sync'. When the bracket of a
// series is empty (possible with such a coarse clock on a fast network), the
// best round trip is used, as IRCAM does.

/**
 * @typedef {'new'|'startup'|'training'|'sync'} SyncStatus
 *
 * @typedef {object} SyncReport
 * @property {SyncStatus} status 'startup' during the first series, 'training'
 *   (offset only) after it (and after a reset), 'sync' (offset and drift) from the second series
 *   (or once `trainingDuration` has passed)
 * @property {number} statusDuration seconds (local clock) since the status changed
 * @property {number} timeOffset server minus local time of the last series, seconds
 * @property {number} frequencyRatio d(sync time)/d(local time) in use (1 while training)
 * @property {number} drift frequencyRatio - 1 (e.g. -1e-4: the local clock runs 100 ppm fast)
 * @property {number} driftUncertainty standard error of `drift` (`driftScale` while training)
 * @property {'online'|'offline'} connection 'offline' after a ping timed out, until a pong
 * @property {number} connectionDuration seconds since the connection status changed
 * @property {number} connectionTimeout current pong timeout, seconds
 * @property {number} travelDuration mean round trip of the last series, seconds (server time excluded)
 * @property {number} travelDurationMin fastest round trip of the last series
 * @property {number} travelDurationMax slowest round trip of the last series
 * @property {{min:number, mean:number, max:number}} roundTrip the same three, grouped
 * @property {number} series series completed since start()
 * @property {number} longTermEntries series in the regression window
 * @property {number|null} offsetError the estimator's own estimate of |sync time - server time|
 *   now, seconds (one standard error: the noise of the series behind the offset, the drift's
 *   uncertainty times the time since, and the correction still being slewed); null before
 *   the first pong
 *
 * @typedef {object} SyncOptions
 * @property {() => number} [getTime] local clock in seconds, monotonic (default performance.now()/1000;
 *   in a browser, the AudioContext's currentTime, once the context is running)
 * @property {(pingId:number, clientTime:number) => void} sendPing sends PING [12, pingId, clientTime]
 * @property {(report:SyncReport) => void} [onReport] same as calling onReport(cb)
 * @property {number} [seriesLength=10] pongs per series
 * @property {number} [startupSeriesLength=seriesLength] pongs in the first series: more gives a
 *   better first estimate under heavy jitter (its error is only slewed away afterwards)
 * @property {number} [pingPeriod=0.25] seconds between a pong and the next ping of a series
 * @property {number} [seriesDelayMin=10] pause between series after the ramp, seconds, drawn in [min, max]
 * @property {number} [seriesDelayMax=20]
 * @property {number} [rampRatio=0.1] start-up ramp: the pause after a series is this times the
 *   time since start(), until it reaches seriesDelayMin; 0: no ramp
 * @property {number} [rampPingPeriod=0.05] seconds between a pong and the next ping in the ramp
 * @property {number} [pingTimeout=1] initial pong timeout, seconds; doubles on each timeout,
 *   shrinks x0.75 on each pong, never below this value
 * @property {number} [pingTimeoutMax=30]
 * @property {number} [trainingDuration=0] seconds of offset-only estimation before the drift
 *   (0: from the second series)
 * @property {number} [window=900] seconds of series kept for the drift regression
 * @property {number} [maxDrift=500e-6] |frequencyRatio - 1| at most; a regression far beyond it
 *   means a clock stepped: back to training
 * @property {number} [driftScale=100e-6] expected |drift| of a clock: the prior that shrinks the drift
 *   of a short window (Infinity: plain least squares; 0: offset only)
 * @property {number} [slewRate=1000e-6] how fast a correction is spread (s per s), above maxDrift;
 *   0 = apply at once (sync time may then step backwards)
 * @property {number} [stepForward=0.1] a forward correction larger than this is applied at once
 * @property {number} [pingIdBase=2**30] first ping id
 * @property {() => number} [random=Math.random] for the pause between series
 * @property {(fn:()=>void, ms:number) => any} [setTimeout] timer functions (tests inject fakes)
 * @property {(handle:any) => void} [clearTimeout]
 */

const DEFAULTS = {
  seriesLength: 10,
  pingPeriod: 0.25,
  seriesDelayMin: 10,
  seriesDelayMax: 20,
  rampRatio: 0.1,
  rampPingPeriod: 0.05,
  pingTimeout: 1,
  pingTimeoutMax: 30,
  trainingDuration: 0,
  window: 900,
  maxDrift: 500e-6,
  driftScale: 100e-6,
  slewRate: 1000e-6,
  stepForward: 0.1,
  pingIdBase: 2 ** 30,
  maxLongTermEntries: 256,
};

/**
 * Floor of the noise of one series' offset, seconds: what the spacing of
 * the fastest trips cannot see (timer and event-loop noise on both ends).
 * Same constant in shared/sync.c.
 */
export const NOISE_FLOOR = 20e-6;

const defaultTime = () => globalThis.performance.now() / 1000;

/**
 * Offset and reference point of one series. `entries` are [clientSend,
 * clientRecv, serverRecv, serverSend]; `ratio` is the frequency ratio in use,
 * so that offsets are taken as T - ratio·t. `noise` is the variance of the
 * offset's error, from the spacing of the fastest trips each way (see
 * seriesNoise). Exported for tests.
 * @returns {{t:number, T:number, noise:number, travelMin:number, travelMean:number, travelMax:number}}
 */
export function seriesEstimate(entries, ratio = 1) {
  let hi = Infinity, hi2 = Infinity, lo = -Infinity, lo2 = -Infinity, tSum = 0;
  let best = null, travelMin = Infinity, travelMax = -Infinity, travelSum = 0;
  for (const [cs, cr, sr, ss] of entries) {
    const travel = (cr - cs) * ratio - (ss - sr);
    travelSum += travel;
    if (travel > travelMax) travelMax = travel;
    if (travel < travelMin) { travelMin = travel; best = [cs, cr, sr, ss]; }
    const up = sr - ratio * cs, down = ss - ratio * cr;
    if (up < hi) { hi2 = hi; hi = up; } else if (up < hi2) hi2 = up;
    if (down > lo) { lo2 = lo; lo = down; } else if (down > lo2) lo2 = down;
    tSum += (cs + cr) / 2;
  }
  const t = tSum / entries.length;
  let offset, noise;
  if (lo <= hi) {
    offset = (lo + hi) / 2;
    noise = seriesNoise(entries.length, hi - lo, hi2 - hi, lo - lo2);
  } else {
    const [cs, cr, sr, ss] = best;
    offset = (sr + ss) / 2 - ratio * (cs + cr) / 2;
    noise = seriesNoise(1, travelMin, 0, 0);
  }
  return { t, T: offset + ratio * t, noise, travelMin, travelMean: travelSum / entries.length, travelMax };
}

/**
 * Variance of a series' offset error. The offset is the midpoint of the
 * fastest trip each way, so its error is half the difference of their
 * excess delays; the gap between the fastest and the second fastest trip of
 * a direction has the scale of that excess (for uniform or exponential
 * delays, the same mean), hence (gapUp² + gapDown²) / 8. With one trip (or
 * an empty bracket), the error is uniform within half the round trip.
 */
function seriesNoise(n, width, gapUp, gapDown) {
  const v = n >= 2 ? (gapUp * gapUp + gapDown * gapDown) / 8 : (width * width) / 12;
  return v + NOISE_FLOOR * NOISE_FLOOR;
}

/**
 * Least squares T = T0 + R (t - t0) on centred values, the drift R - 1
 * shrunk towards 0 by the prior `driftScale` (ridge regression: the expected
 * |drift| of a clock, against the noise of the points, `noise` their mean
 * variance). Two points close in time say little about the drift: it is then
 * mostly not applied; as the window grows the data win. `rawDrift` is the
 * unshrunk slope - 1, `uncertainty` the standard error of the drift used.
 * @param {Array<{t:number, T:number, noise?:number}>} points
 * @param {number} [driftScale=Infinity] Infinity: plain least squares
 * @returns {{t0:number, T0:number, R:number, rawDrift:number, rawUncertainty:number, uncertainty:number}|null}
 *   null when t does not vary
 */
export function regression(points, driftScale = Infinity) {
  const n = points.length;
  if (n < 2) return null;
  let mt = 0, mT = 0, noise = 0;
  for (const p of points) { mt += p.t; mT += p.T; noise += p.noise ?? 0; }
  mt /= n; mT /= n; noise /= n;
  let v = 0, c = 0;
  // the slope of the offset (T - t) on t: the drift, free of the large mean offset
  for (const p of points) { const dt = p.t - mt; v += dt * dt; c += dt * ((p.T - mT) - dt); }
  if (!(v > 0)) return null;
  const lambda = driftScale === Infinity || !(noise > 0) ? 0 : noise / (driftScale * driftScale);
  const drift = driftScale === 0 ? 0 : c / (v + lambda);
  return {
    t0: mt, T0: mT, R: 1 + drift,
    rawDrift: c / v, rawUncertainty: Math.sqrt(noise / v), uncertainty: Math.sqrt(noise / (v + lambda)),
  };
}

// -- firing at a sync time ----------------------------------------------------

/** A blocking sleep wakes ~0.05-0.1 ms late: sleep until this much before, then poll the clock. */
const POLL = 0.0001;

/** A synchronous sleep of about `seconds` where the thread may block (Node, workers), else null. */
const blockingSleep = (() => {
  try {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(cell, 0, 0, 0); // throws on a browser's main thread
    return (seconds) => { Atomics.wait(cell, 0, 0, seconds * 1000); };
  } catch {
    return null;
  }
})();

/**
 * Call fn() once the sync clock reads `at` or later: never before, and late
 * by as little as the machine allows. Timers wake early (Node and browsers,
 * by up to ~1.5 ms: they count whole milliseconds) as well as late, so the
 * timer is armed `early` seconds ahead, the clock is read again on every
 * wake-up (re-armed when still early, which also follows corrections of the
 * sync estimate), and the last stretch is waited out without a timer: a
 * blocking sleep where the thread may block (Node: it leaves the CPU to
 * others meanwhile, which matters when several clients share a machine)
 * until 0.1 ms before, then polling the clock.
 * The first check always runs from a timer, so fn() never runs inside
 * callAt().
 *
 * @param {number} at sync time (seconds)
 * @param {() => void} fn
 * @param {object} o
 * @param {() => number} o.syncTime the sync clock now, e.g. () => estimator.getSyncTime()
 * @param {number} [o.early] seconds before `at` at which the timer wakes: 5 ms where the thread
 *   may block (Node: timers wake up to ~2 ms late on a busy machine, the sleep costs no CPU), else
 *   2 ms (a browser's main thread polls the clock for that long)
 * @param {(fn:()=>void, ms:number) => any} [o.setTimeout]
 * @param {(handle:any) => void} [o.clearTimeout]
 * @param {((seconds:number) => void)|null} [o.sleep] synchronous sleep (default: Atomics.wait where allowed, else none)
 * @param {() => number} [o.realTime] seconds, bounds the wait without a timer (default performance.now()/1000)
 * @returns {() => void} cancel (fn will not run)
 */
export function callAt(at, fn, o) {
  const syncTime = o.syncTime;
  const st = o.setTimeout || ((f, ms) => globalThis.setTimeout(f, ms));
  const ct = o.clearTimeout || ((h) => globalThis.clearTimeout(h));
  const sleep = o.sleep === undefined ? blockingSleep : o.sleep;
  const early = o.early ?? (sleep ? 0.005 : 0.002);
  const realTime = o.realTime || defaultTime;
  let handle = null, done = false;
  const arm = (seconds) => { handle = st(step, Math.max(0, seconds * 1000)); };
  function step() {
    handle = null;
    if (done) return;
    let left = at - syncTime();
    if (left > early) { arm(left - early); return; }
    // the last stretch without a timer, bounded in real time (a clock that
    // stands still, e.g. a suspended AudioContext, goes back to timers)
    const giveUp = realTime() + early + 0.001;
    while (left > 0) {
      if (realTime() > giveUp) { arm(0.001); return; }
      if (sleep && left > POLL) sleep(left - POLL);
      left = at - syncTime();
    }
    done = true;
    fn();
  }
  arm(at - syncTime() - early);
  return () => {
    done = true;
    if (handle !== null) ct(handle);
    handle = null;
  };
}

export class SyncEstimator {
  /** @param {SyncOptions} options */
  constructor(options = {}) {
    const o = { ...DEFAULTS, ...options };
    if (options.startupSeriesLength === undefined) o.startupSeriesLength = o.seriesLength;
    if (typeof o.sendPing !== 'function') throw new TypeError('SyncEstimator: sendPing(pingId, clientTime) is required');
    for (const k of ['seriesLength', 'pingPeriod', 'seriesDelayMin', 'seriesDelayMax', 'rampRatio', 'rampPingPeriod',
      'pingTimeout', 'pingTimeoutMax', 'trainingDuration', 'window', 'maxDrift', 'driftScale', 'slewRate', 'stepForward']) {
      if (typeof o[k] !== 'number' || !(o[k] >= 0)) throw new RangeError(`SyncEstimator: option ${k} must be a number >= 0`);
    }
    for (const k of ['seriesLength', 'startupSeriesLength']) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`SyncEstimator: ${k} must be an integer >= 1`);
    }
    if (o.seriesDelayMax < o.seriesDelayMin) throw new RangeError('SyncEstimator: seriesDelayMax < seriesDelayMin');
    if (!(o.pingTimeout > 0) || o.pingTimeoutMax < o.pingTimeout) throw new RangeError('SyncEstimator: need 0 < pingTimeout <= pingTimeoutMax');
    if (o.slewRate >= 0.5) throw new RangeError('SyncEstimator: slewRate must be < 0.5');
    this.options = o;
    this._getTime = o.getTime || defaultTime;
    this._sendPing = o.sendPing;
    this._random = o.random || Math.random;
    this._setTimeout = o.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = o.clearTimeout || ((h) => globalThis.clearTimeout(h));
    this._listeners = new Set();
    if (o.onReport) this._listeners.add(o.onReport);

    this._running = false;
    this._timer = null;
    this._pingId = o.pingIdBase - 1;
    this._inflight = null; // {id, clientTime}
    this._series = [];     // [clientSend, clientRecv, serverRecv, serverSend]
    this._longTerm = [];   // {t, T, noise}
    this._timeout = o.pingTimeout;
    // the start-up ramp (see _nextPause), from the first start()
    this._rampSince = 0;
    this._fast = o.rampRatio > 0; // this series pings every rampPingPeriod
    this._driftUncertainty = o.driftScale;

    this._status = 'new';
    const t = this._getTime();
    this._statusSince = t;
    this._online = false;
    this._connectionSince = t;
    this._seriesCount = 0;
    this._timeOffset = 0;
    this._travel = { min: 0, mean: 0, max: 0 };
    this._lastNoise = 0;
    this._startWaiters = [];

    // Mapping: estimate E(t) = T0 + R (t - t0); shown S(t) = E(t) + a
    // correction c0 spread from local time tu at slewRate (see _syncAt).
    this._have = false;
    this._R = 1; this._t0 = 0; this._T0 = 0;
    this._tu = 0; this._a = 0; this._c0 = 0;
  }

  // -- clock conversion ------------------------------------------------------

  /**
   * A rough estimate before any pong: the server's time `serverTime` was
   * current at local time `localTime` (default now), e.g. the `time` of the
   * HELLO result read on arrival (late by the one-way delay). Used, and
   * replaced at once, until the first series ends; ignored after that.
   */
  hint(serverTime, localTime = this._getTime()) {
    if (this._status !== 'new' && this._status !== 'startup') return;
    if (this._series.length > 0 || !Number.isFinite(serverTime) || !Number.isFinite(localTime)) return;
    this._setEstimate(localTime, serverTime, 1, localTime, false);
  }

  /** Local clock now (the injected getTime), seconds. */
  now() { return this._getTime(); }

  /**
   * The server's sync time at a local time (default: now). Before the first
   * pong, the local time itself; during the first series, a provisional
   * estimate. Non-decreasing in localTime from the end of the first series on.
   */
  getSyncTime(localTime = this._getTime()) { return this._syncAt(localTime); }

  /** The local time at which the sync clock reads syncTime; no argument: local time now. */
  getLocalTime(syncTime) {
    if (syncTime === undefined) return this._getTime();
    if (!this._have) return syncTime;
    const { _R: R, _tu: tu, _a: a, _c0: c0 } = this;
    if (c0 === 0) return this._t0 + (syncTime - this._T0) / R;
    if (syncTime <= a) return tu + (syncTime - a) / R;
    const k = this.options.slewRate, dur = Math.abs(c0) / k;
    const slope = R - Math.sign(c0) * k;
    if (syncTime < a + slope * dur) return tu + (syncTime - a) / slope;
    return this._t0 + (syncTime - this._T0) / R;
  }

  /**
   * Local seconds left until the sync clock reads `syncTime`, from local time
   * `localTime` (default now): 0 once it does (the event is due), else > 0
   * (at least 1 µs, so a caller never spins on 0 while it is not due). A NaN
   * syncTime is due at once. shared/sync.c: tt_sync_due.
   */
  timeUntil(syncTime, localTime = this._getTime()) {
    if (Number.isNaN(syncTime) || this._syncAt(localTime) >= syncTime) return 0;
    return Math.max(1e-6, this.getLocalTime(syncTime) - localTime);
  }

  _estimateAt(t) { return this._T0 + this._R * (t - this._t0); }

  _syncAt(t) {
    if (!this._have) return t;
    const c0 = this._c0;
    if (c0 === 0) return this._estimateAt(t);
    const d = t - this._tu;
    if (d <= 0) return this._a + this._R * d;
    const k = this.options.slewRate;
    if (d >= Math.abs(c0) / k) return this._estimateAt(t);
    return this._a + (this._R - Math.sign(c0) * k) * d;
  }

  /** Install a new estimate at local time now, keeping S continuous (monotonic smoothing). */
  _setEstimate(t0, T0, R, now, smooth = true) {
    const had = this._have && smooth;
    const before = had ? this._syncAt(now) : 0;
    this._have = true;
    this._t0 = t0; this._T0 = T0; this._R = R;
    const e = this._estimateAt(now);
    let c0 = had ? before - e : 0;
    const { stepForward } = this.options;
    const k = this.options.slewRate;
    if (!(k > 0) || (c0 < 0 && -c0 > stepForward)) c0 = 0;
    this._tu = now; this._c0 = c0; this._a = e + c0;
  }

  // -- reports ---------------------------------------------------------------

  /** @returns {SyncReport} */
  getReport() {
    const t = this._getTime();
    const R = this._R;
    return {
      status: this._status,
      statusDuration: t - this._statusSince,
      timeOffset: this._timeOffset,
      frequencyRatio: R,
      drift: R - 1,
      driftUncertainty: this._driftUncertainty,
      connection: this._online ? 'online' : 'offline',
      connectionDuration: t - this._connectionSince,
      connectionTimeout: this._timeout,
      travelDuration: this._travel.mean,
      travelDurationMin: this._travel.min,
      travelDurationMax: this._travel.max,
      roundTrip: { ...this._travel },
      series: this._seriesCount,
      longTermEntries: this._longTerm.length,
      offsetError: this._offsetError(t),
    };
  }

  /**
   * One standard error of the sync time at local time t: the offset's
   * (the last series' noise while training, the regression's intercept in
   * 'sync'), the drift's uncertainty carried from the estimate's reference
   * point to t, and the part of a correction not slewed in yet. What an
   * inspector shows as "within 1 ms".
   */
  _offsetError(t) {
    if (this._seriesCount === 0) {
      // the first series: the pongs so far
      return this._series.length ? Math.sqrt(seriesEstimate(this._series, 1).noise) : null;
    }
    let noise = this._lastNoise, n = 1;
    if (this._status === 'sync' && this._longTerm.length > 1) {
      noise = 0;
      for (const e of this._longTerm) noise += e.noise;
      n = this._longTerm.length;
      noise /= n;
    }
    const drift = this._driftUncertainty * (t - this._t0);
    return Math.sqrt(noise / n + drift * drift) + Math.abs(this._syncAt(t) - this._estimateAt(t));
  }

  /**
   * Call cb(report) after each series and on status or connection changes.
   * @returns {() => void} unsubscribe
   */
  onReport(cb) {
    this._listeners.add(cb);
    return () => { this._listeners.delete(cb); };
  }

  _emit() {
    const r = this.getReport();
    if (r.status === 'training' || r.status === 'sync') {
      const w = this._startWaiters; this._startWaiters = [];
      for (const f of w) f(r);
    }
    for (const cb of [...this._listeners]) {
      try { cb(r); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }

  _setStatus(s, now) {
    if (this._status === s) return false;
    this._status = s; this._statusSince = now;
    return true;
  }

  // -- ping loop ---------------------------------------------------------------

  /**
   * Start pinging (a series at once). Resolves with the first report whose
   * status is 'training' or 'sync' (after the first series).
   * @returns {Promise<SyncReport>}
   */
  start() {
    const p = new Promise((res) => {
      if (this._status === 'training' || this._status === 'sync') res(this.getReport());
      else this._startWaiters.push(res);
    });
    if (this._running) return p;
    this._running = true;
    if (this._status === 'new') { this._setStatus('startup', this._getTime()); this._rampSince = this._statusSince; }
    this._series = [];
    this._ping();
    return p;
  }

  /** Stop pinging; estimates are kept (getSyncTime keeps working). start() resumes. */
  stop() {
    this._running = false;
    this._inflight = null;
    if (this._timer !== null) this._clearTimeout(this._timer);
    this._timer = null;
  }

  _arm(seconds, fn) {
    if (this._timer !== null) this._clearTimeout(this._timer);
    this._timer = this._setTimeout(() => { this._timer = null; fn(); }, seconds * 1000);
  }

  _ping() {
    if (!this._running) return;
    this._pingId = this._pingId >= 0xffffffff ? this.options.pingIdBase : this._pingId + 1;
    const clientTime = this._getTime();
    this._inflight = { id: this._pingId, clientTime };
    this._arm(this._timeout, () => this._onTimeout());
    try {
      this._sendPing(this._pingId, clientTime);
    } catch {
      // a closed socket: the timeout handles it
    }
  }

  _onTimeout() {
    if (!this._running) return;
    this._inflight = null;
    this._timeout = Math.min(this.options.pingTimeoutMax, this._timeout * 2);
    const changed = this._online;
    if (this._online) { this._online = false; this._connectionSince = this._getTime(); }
    if (changed) this._emit();
    this._ping();
  }

  /**
   * Feed a PONG [69, pingId, clientTime, serverRecv, serverSend].
   * @returns {boolean} true when it answered the ping in flight (others are ignored)
   */
  onPong(pingId, clientTime, serverRecv, serverSend) {
    const now = this._getTime();
    const f = this._inflight;
    if (!this._running || !f || pingId !== f.id || clientTime !== f.clientTime) return false;
    if (!Number.isFinite(serverRecv) || !Number.isFinite(serverSend) || serverSend < serverRecv || now < clientTime) return false;
    this._inflight = null;
    this._series.push([clientTime, now, serverRecv, serverSend]);
    this._timeout = Math.max(this.options.pingTimeout, this._timeout * 0.75);
    let changed = false;
    if (!this._online) { this._online = true; this._connectionSince = now; changed = true; }
    if (this._series.length >= (this._status === 'startup' ? this.options.startupSeriesLength : this.options.seriesLength)) {
      this._endSeries(now);
      changed = true;
      this._arm(this._nextPause(now), () => this._ping());
    } else {
      if (this._status === 'startup') {
        // provisional, from the pongs so far; applied at once
        const p = seriesEstimate(this._series, 1);
        this._setEstimate(p.t, p.T, 1, now, false);
      }
      this._arm(this._fast ? this.options.rampPingPeriod : this.options.pingPeriod, () => this._ping());
    }
    if (changed) this._emit();
    return true;
  }

  /**
   * The pause after a series. During the start-up ramp it is rampRatio times
   * the time since start(), so the series come back to back at first and
   * thin out as the estimate firms up, each pinging every rampPingPeriod;
   * once that pause reaches seriesDelayMin, IRCAM's pauses, drawn in
   * [min, max], every pingPeriod.
   */
  _nextPause(now) {
    const o = this.options;
    const pause = (now - this._rampSince) * o.rampRatio;
    this._fast = o.rampRatio > 0 && pause < o.seriesDelayMin;
    if (this._fast) return pause;
    return o.seriesDelayMin + (o.seriesDelayMax - o.seriesDelayMin) * this._random();
  }

  _endSeries(now) {
    const o = this.options;
    const s = seriesEstimate(this._series, this._R);
    this._series = [];
    this._seriesCount++;
    this._timeOffset = s.T - s.t;
    this._travel = { min: s.travelMin, mean: s.travelMean, max: s.travelMax };
    this._lastNoise = s.noise;
    this._longTerm.push({ t: s.t, T: s.T, noise: s.noise });
    while (this._longTerm.length > o.maxLongTermEntries || (this._longTerm.length > 1 && this._longTerm[0].t < now - o.window)) {
      this._longTerm.shift();
    }
    const first = this._status === 'startup'; // replaces the provisional estimate at once
    if (first) this._setStatus('training', now);
    const training = this._status === 'training' && now - this._statusSince < o.trainingDuration;
    let reg = training ? null : regression(this._longTerm, o.driftScale);
    if (reg && Math.abs(reg.rawDrift) > o.maxDrift + 6 * reg.rawUncertainty) {
      // implausible drift (a clock stepped, a suspended device): start again,
      // pinging fast as at the start
      this._longTerm = [this._longTerm[this._longTerm.length - 1]];
      this._setStatus('training', now);
      this._statusSince = now;
      this._rampSince = now;
      reg = null;
    }
    if (reg) {
      this._setStatus('sync', now);
      const R = 1 + Math.max(-o.maxDrift, Math.min(o.maxDrift, reg.R - 1));
      this._driftUncertainty = reg.uncertainty;
      this._setEstimate(reg.t0, reg.T0, R, now);
    } else {
      // offset only: the frequency ratio is 1
      this._driftUncertainty = o.driftScale;
      this._setEstimate(s.t, s.T, 1, now, !first);
    }
  }
}
