// Types of web/sync.js: the clock-sync estimator (IRCAM's algorithm; see the
// comment at the top of sync.js). All times are seconds.

export type SyncStatus = 'new' | 'startup' | 'training' | 'sync';

export interface SyncReport {
  /** 'startup' during the first series, 'training' (offset only) after it or a reset, 'sync' (offset and drift) from the second series */
  status: SyncStatus;
  /** local seconds since the status changed */
  statusDuration: number;
  /** server minus local time of the last series */
  timeOffset: number;
  /** d(sync time)/d(local time) in use (1 while training) */
  frequencyRatio: number;
  /** frequencyRatio - 1 (e.g. -1e-4: the local clock runs 100 ppm fast) */
  drift: number;
  /** standard error of drift (driftScale while training) */
  driftUncertainty: number;
  /** 'offline' after a ping timed out, until the next pong */
  connection: 'online' | 'offline';
  connectionDuration: number;
  /** current pong timeout */
  connectionTimeout: number;
  /** mean round trip of the last series (server time excluded) */
  travelDuration: number;
  travelDurationMin: number;
  travelDurationMax: number;
  roundTrip: { min: number; mean: number; max: number };
  /** series completed since start() */
  series: number;
  /** series in the drift regression window */
  longTermEntries: number;
  /** the estimator's estimate of |sync time - server time| now, seconds (one standard error: series noise,
   * drift uncertainty since the estimate's reference point, correction still slewing); null before the first pong */
  offsetError: number | null;
}

export interface SyncOptions {
  /** local clock, seconds, monotonic (default performance.now()/1000; in a browser, an AudioContext's currentTime) */
  getTime?: () => number;
  /** send PING [12, pingId, clientTime] */
  sendPing: (pingId: number, clientTime: number) => void;
  onReport?: (report: SyncReport) => void;
  /** pongs per series (10) */
  seriesLength?: number;
  /** pongs in the first series (default seriesLength) */
  startupSeriesLength?: number;
  /** between a pong and the next ping of a series (0.25) */
  pingPeriod?: number;
  /** pause between series after the ramp, drawn in [min, max] (10, 20) */
  seriesDelayMin?: number;
  seriesDelayMax?: number;
  /** start-up ramp (0.1): the pause after a series is this times the time since start(), until seriesDelayMin; 0: none */
  rampRatio?: number;
  /** between a pong and the next ping during the ramp (0.05) */
  rampPingPeriod?: number;
  /** initial pong timeout (1); x2 per timeout, x0.75 per pong */
  pingTimeout?: number;
  pingTimeoutMax?: number;
  /** offset only for this long (0: drift from the second series) */
  trainingDuration?: number;
  /** series kept for the drift regression (900) */
  window?: number;
  /** |frequencyRatio - 1| at most (500e-6); a regression far beyond means a clock stepped: back to training */
  maxDrift?: number;
  /** expected |drift| (100e-6): shrinks the drift of a short window; Infinity: none, 0: offset only */
  driftScale?: number;
  /** corrections spread at this rate, s per s (1000e-6); 0: at once (may step backwards) */
  slewRate?: number;
  /** forward corrections larger than this are applied at once (0.1) */
  stepForward?: number;
  /** first ping id (2**30) */
  pingIdBase?: number;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export class SyncEstimator {
  constructor(options: SyncOptions);
  readonly options: Required<Omit<SyncOptions, 'getTime' | 'onReport' | 'random' | 'setTimeout' | 'clearTimeout'>> & SyncOptions;
  /** a rough estimate before any pong (e.g. the HELLO result's time, read on arrival); replaced by the first pong */
  hint(serverTime: number, localTime?: number): void;
  /** the local clock now */
  now(): number;
  /** server sync time at a local time (default now); the local time itself before the first series ends */
  getSyncTime(localTime?: number): number;
  /** local time at which the sync clock reads syncTime; no argument: local time now */
  getLocalTime(syncTime?: number): number;
  getReport(): SyncReport;
  /** called after each series and on status/connection changes; returns unsubscribe */
  onReport(cb: (report: SyncReport) => void): () => void;
  /** start pinging; resolves with the first 'training' or 'sync' report */
  start(): Promise<SyncReport>;
  /** stop pinging (estimates are kept) */
  stop(): void;
  /** feed a PONG; true when it answered the ping in flight */
  onPong(pingId: number, clientTime: number, serverRecv: number, serverSend: number): boolean;
  /** local seconds until the sync clock reads syncTime (from localTime, default now): 0 once due, else > 0 */
  timeUntil(syncTime: number, localTime?: number): number;
}

export interface CallAtOptions {
  /** the sync clock now, e.g. () => client.getSyncTime() */
  syncTime: () => number;
  /** seconds before `at` at which the timer wakes (0.002); the rest is waited out without a timer */
  early?: number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  /** synchronous sleep (default: Atomics.wait where the thread may block, else none: the clock is polled) */
  sleep?: ((seconds: number) => void) | null;
  /** seconds, bounds the wait without a timer (default performance.now()/1000) */
  realTime?: () => number;
}

/** Call fn() once the sync clock reads `at` or later, never before (timers that wake early are re-armed); returns cancel. */
export function callAt(at: number, fn: () => void, options: CallAtOptions): () => void;

/** Floor of a series' offset noise, seconds. */
export const NOISE_FLOOR: number;

/** Offset, reference point and noise (variance) of one series of [clientSend, clientRecv, serverRecv, serverSend] (exported for tests). */
export function seriesEstimate(entries: Array<[number, number, number, number]>, ratio?: number):
  { t: number; T: number; noise: number; travelMin: number; travelMean: number; travelMax: number };

/** Centred least squares T = T0 + R (t - t0), the drift shrunk by the prior driftScale (default Infinity: none); null when t does not vary (exported for tests). */
export function regression(points: Array<{ t: number; T: number; noise?: number }>, driftScale?: number):
  { t0: number; T0: number; R: number; rawDrift: number; rawUncertainty: number; uncertainty: number } | null;
