// sync.js: clock-sync estimator of tutti (ES module, browser and Node, no
// dependencies). It estimates the server's sync clock (PROTOCOL.md §10) from
// PING/PONG exchanges, following IRCAM's sync algorithm (@ircam/sync 2.x, WAC
// 2016; see the reference doc §6): series of pings, keep the fastest trips,
// offset from the best, drift by linear regression over a long window once a
// training phase is over, and monotonic smoothing so that the sync time never
// steps backwards. shared/sync.c is the same estimator in C for native clients;
// keep the two in step.
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
//   (`startupSeriesLength`): its error is otherwise only slewed away, at
//   160 ppm, i.e. 6 s per millisecond.
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
 *   (offset only) until `trainingDuration` has passed, then 'sync' (offset and drift)
 * @property {number} statusDuration seconds (local clock) since the status changed
 * @property {number} timeOffset server minus local time of the last series, seconds
 * @property {number} frequencyRatio d(sync time)/d(local time) in use (1 while training)
 * @property {number} drift frequencyRatio - 1 (e.g. -1e-4: the local clock runs 100 ppm fast)
 * @property {'online'|'offline'} connection 'offline' after a ping timed out, until a pong
 * @property {number} connectionDuration seconds since the connection status changed
 * @property {number} connectionTimeout current pong timeout, seconds
 * @property {number} travelDuration mean round trip of the last series, seconds (server time excluded)
 * @property {number} travelDurationMin fastest round trip of the last series
 * @property {number} travelDurationMax slowest round trip of the last series
 * @property {{min:number, mean:number, max:number}} roundTrip the same three, grouped
 * @property {number} series series completed since start()
 * @property {number} longTermEntries series in the regression window
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
 * @property {number} [seriesDelayMin=10] pause between series, seconds, drawn in [min, max]
 * @property {number} [seriesDelayMax=20]
 * @property {number} [pingTimeout=1] initial pong timeout, seconds; doubles on each timeout,
 *   shrinks x0.75 on each pong, never below this value
 * @property {number} [pingTimeoutMax=30]
 * @property {number} [trainingDuration=120] seconds of offset-only estimation before the drift
 * @property {number} [window=900] seconds of series kept for the drift regression
 * @property {number} [maxDrift=500e-6] |frequencyRatio - 1| accepted; beyond, back to training
 * @property {number} [slewRate=160e-6] how fast a correction is spread (s per s); 0 = apply at once
 *   (sync time may then step backwards)
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
  pingTimeout: 1,
  pingTimeoutMax: 30,
  trainingDuration: 120,
  window: 900,
  maxDrift: 500e-6,
  slewRate: 160e-6,
  stepForward: 0.1,
  pingIdBase: 2 ** 30,
  maxLongTermEntries: 256,
};

const defaultTime = () => globalThis.performance.now() / 1000;

/**
 * Offset and reference point of one series. `entries` are [clientSend,
 * clientRecv, serverRecv, serverSend]; `ratio` is the frequency ratio in use,
 * so that offsets are taken as T - ratio·t. Exported for tests.
 * @returns {{t:number, T:number, travelMin:number, travelMean:number, travelMax:number}}
 */
export function seriesEstimate(entries, ratio = 1) {
  let hi = Infinity, lo = -Infinity, tSum = 0;
  let best = null, travelMin = Infinity, travelMax = -Infinity, travelSum = 0;
  for (const [cs, cr, sr, ss] of entries) {
    const travel = (cr - cs) * ratio - (ss - sr);
    travelSum += travel;
    if (travel > travelMax) travelMax = travel;
    if (travel < travelMin) { travelMin = travel; best = [cs, cr, sr, ss]; }
    hi = Math.min(hi, sr - ratio * cs);
    lo = Math.max(lo, ss - ratio * cr);
    tSum += (cs + cr) / 2;
  }
  const t = tSum / entries.length;
  let offset;
  if (lo <= hi) {
    offset = (lo + hi) / 2;
  } else {
    const [cs, cr, sr, ss] = best;
    offset = (sr + ss) / 2 - ratio * (cs + cr) / 2;
  }
  return { t, T: offset + ratio * t, travelMin, travelMean: travelSum / entries.length, travelMax };
}

/**
 * Least squares T = T0 + R (t - t0) on centred values.
 * @returns {{t0:number, T0:number, R:number}|null} null when t does not vary
 */
export function regression(points) {
  const n = points.length;
  if (n < 2) return null;
  let mt = 0, mT = 0;
  for (const p of points) { mt += p.t; mT += p.T; }
  mt /= n; mT /= n;
  let v = 0, c = 0;
  for (const p of points) { const dt = p.t - mt; v += dt * dt; c += dt * (p.T - mT); }
  if (!(v > 0)) return null;
  return { t0: mt, T0: mT, R: c / v };
}

export class SyncEstimator {
  /** @param {SyncOptions} options */
  constructor(options = {}) {
    const o = { ...DEFAULTS, ...options };
    if (options.startupSeriesLength === undefined) o.startupSeriesLength = o.seriesLength;
    if (typeof o.sendPing !== 'function') throw new TypeError('SyncEstimator: sendPing(pingId, clientTime) is required');
    for (const k of ['seriesLength', 'pingPeriod', 'seriesDelayMin', 'seriesDelayMax', 'pingTimeout', 'pingTimeoutMax',
      'trainingDuration', 'window', 'maxDrift', 'slewRate', 'stepForward']) {
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
    this._longTerm = [];   // {t, T, travel}
    this._timeout = o.pingTimeout;

    this._status = 'new';
    const t = this._getTime();
    this._statusSince = t;
    this._online = false;
    this._connectionSince = t;
    this._seriesCount = 0;
    this._timeOffset = 0;
    this._travel = { min: 0, mean: 0, max: 0 };
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
      connection: this._online ? 'online' : 'offline',
      connectionDuration: t - this._connectionSince,
      connectionTimeout: this._timeout,
      travelDuration: this._travel.mean,
      travelDurationMin: this._travel.min,
      travelDurationMax: this._travel.max,
      roundTrip: { ...this._travel },
      series: this._seriesCount,
      longTermEntries: this._longTerm.length,
    };
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
    if (this._status === 'new') this._setStatus('startup', this._getTime());
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
      const { seriesDelayMin: lo, seriesDelayMax: hi } = this.options;
      this._arm(lo + (hi - lo) * this._random(), () => this._ping());
    } else {
      if (this._status === 'startup') {
        // provisional, from the pongs so far; applied at once
        const p = seriesEstimate(this._series, 1);
        this._setEstimate(p.t, p.T, 1, now, false);
      }
      this._arm(this.options.pingPeriod, () => this._ping());
    }
    if (changed) this._emit();
    return true;
  }

  _endSeries(now) {
    const o = this.options;
    const s = seriesEstimate(this._series, this._R);
    this._series = [];
    this._seriesCount++;
    this._timeOffset = s.T - s.t;
    this._travel = { min: s.travelMin, mean: s.travelMean, max: s.travelMax };
    this._longTerm.push({ t: s.t, T: s.T, travel: s.travelMin });
    while (this._longTerm.length > o.maxLongTermEntries || (this._longTerm.length > 1 && this._longTerm[0].t < now - o.window)) {
      this._longTerm.shift();
    }
    const first = this._status === 'startup'; // replaces the provisional estimate at once
    if (first) this._setStatus('training', now);
    if (this._status === 'training' && now - this._statusSince < o.trainingDuration) {
      // offset only: the frequency ratio stays 1
      this._setEstimate(s.t, s.T, 1, now, !first);
      return;
    }
    const reg = regression(this._longTerm);
    if (reg && Math.abs(reg.R - 1) <= o.maxDrift) {
      this._setStatus('sync', now);
      this._setEstimate(reg.t0, reg.T0, reg.R, now);
    } else {
      // implausible drift (a clock stepped, a suspended device): start again
      this._longTerm = [this._longTerm[this._longTerm.length - 1]];
      this._setStatus('training', now);
      this._statusSince = now;
      this._setEstimate(s.t, s.T, 1, now, !first);
    }
  }
}
