// sim.mjs: a discrete-event simulation of a client and the server's sync
// clock, to drive the SyncEstimator of web/sync.js without a network or real
// timers. Virtual true time `tau` is the server's clock; the client's local
// clock reads `offset + tau * (1 + drift)` (plus `step` after a clock step).
// One-way delays come from a seeded PRNG, so each run is reproducible.

import { SyncEstimator } from '../../web/sync.js';

/** xorshift32 in [0, 1): deterministic runs. */
export function prng(seed = 1) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * @param {object} o
 * @param {number} [o.offset=12345.678] client minus server, seconds
 * @param {number} [o.drift=100e-6] client clock rate minus 1
 * @param {() => number} o.up one-way delay client -> server, seconds
 * @param {() => number} o.down one-way delay server -> client, seconds
 * @param {number} [o.proc=20e-6] server time between receipt and reply
 * @param {object} [o.options] SyncEstimator options
 * @param {number} [o.lossEvery=0] drop every n-th ping (0: none)
 * @param {Array} [o.trace] receives ['ping', local] and ['pong', id, clientTime,
 *   serverRecv, serverSend, local] as they happen (for sync_replay)
 */
export function simulate(o) {
  const offset = o.offset ?? 12345.678, drift = o.drift ?? 100e-6, proc = o.proc ?? 20e-6;
  let tau = 0;               // true (server) time
  let serverStep = 0;        // added to the server's clock from some time on
  const queue = [];          // {at, seq, fn}
  let seq = 0;
  const schedule = (at, fn) => {
    const ev = { at, seq: seq++, fn, cancelled: false };
    queue.push(ev);
    return ev;
  };
  const local = () => offset + tau * (1 + drift);
  const server = () => tau + serverStep;
  let nPing = 0;
  const est = new SyncEstimator({
    ...o.options,
    getTime: local,
    random: prng(7),
    setTimeout: (fn, ms) => schedule(tau + ms / 1000 / (1 + drift), fn),
    clearTimeout: (ev) => { if (ev) ev.cancelled = true; },
    sendPing: (id, clientTime) => {
      if (o.trace) o.trace.push(['ping', clientTime, id]);
      nPing++;
      if (o.lossEvery && nPing % o.lossEvery === 0) return;
      schedule(tau + o.up(), () => {
        const recv = server();
        schedule(tau + proc, () => {
          const send = server();
          schedule(tau + o.down(), () => {
            if (o.trace) o.trace.push(['pong', id, clientTime, recv, send, local()]);
            const ok = est.onPong(id, clientTime, recv, send);
            if (o.trace) o.trace[o.trace.length - 1].push(ok);
          });
        });
      });
    },
  });
  /** Run events until true time `until`; `each(tau)` is called every `step` of true time. */
  function runUntil(until, step = 0, each = null) {
    let nextEach = step > 0 ? tau : Infinity;
    for (;;) {
      queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      while (queue.length && queue[0].cancelled) queue.shift();
      const ev = queue[0];
      const nextEv = ev ? ev.at : Infinity;
      const next = Math.min(nextEv, nextEach, until);
      if (next === until && until < nextEv && until < nextEach) { tau = until; return; }
      if (nextEach <= nextEv && nextEach <= until) {
        tau = nextEach; nextEach += step;
        each(tau);
        continue;
      }
      if (nextEv > until) { tau = until; return; }
      queue.shift();
      tau = ev.at;
      ev.fn();
    }
  }
  return {
    est, local, server,
    get tau() { return tau; },
    stepServer(s) { serverStep += s; },
    runUntil,
    /** Estimated minus true server time now. */
    error() { return est.getSyncTime(local()) - server(); },
  };
}
