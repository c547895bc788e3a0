// tutti.js: the JavaScript client of tutti (ES module, browser and Node 20).
//
// The wire protocol is shared/PROTOCOL.md (msgpack over a WebSocket, subprotocol
// "tutti.v1"). The API mirrors the state manager of soundworks v5
// (client.stateManager.defineClass/create/attach/observe/getCollection, and
// SharedState set/get/onUpdate/detach/delete), plus tutti's own: history on
// attach, session resume after a dropped connection, and getSyncTime().
//
//   import { Client } from './tutti.js';
//   const client = new Client({ url: 'ws://127.0.0.1:8000/' });
//   await client.connect();
//   const demo = await client.stateManager.attach('demo');
//   demo.onUpdate((newValues, oldValues, ctx) => console.log(newValues, ctx.seq, ctx.time));
//   await demo.set({ volume: 0.8 });
//
// In Node, pass a WebSocket implementation: new Client({ url, WebSocket }) with
// `import WebSocket from 'ws'`.

import { Encoder, Decoder, ExtData } from '@msgpack/msgpack';
import { SyncEstimator, callAt } from './sync.js';

export const PROTOCOL = 'tutti.v1';
export const VERSION = 1;

/** Message types (PROTOCOL.md §2). */
export const MSG = Object.freeze({
  HELLO: 1, DEFINE: 2, CREATE: 3, ATTACH: 4, DETACH: 5, DELETE: 6, SET: 7,
  OBSERVE: 8, UNOBSERVE: 9, HISTORY: 10, DESCRIBE: 11, PING: 12, CANCEL: 13,
  HOOK: 14, UNHOOK: 15, HOOK_REPLY: 16, DELETE_CLASS: 17, SYNC_REPORT: 18, INSPECT: 19, KICK: 20,
  RESULT: 64, ERROR: 65, UPDATE: 66, DELETED: 67, NOTICE: 68, PONG: 69, SNAPSHOT: 70, SCHEDULED: 71, CANCELLED: 72,
  HOOK_CALL: 73, CLASS_CHANGED: 74, ROOM: 75,
});

/**
 * Error codes: the server's (PROTOCOL.md §11, positive) and the client's own
 * (negative: they never come from the server).
 */
export const ErrorCode = Object.freeze({
  BAD_MESSAGE: 1, UNKNOWN_TYPE: 2, NOT_READY: 3, BAD_VERSION: 4, BAD_REQUEST: 5,
  UNKNOWN_CLASS: 10, CLASS_EXISTS: 11, BAD_DESCRIPTION: 12,
  UNKNOWN_STATE: 20, UNKNOWN_INSTANCE: 21, NOT_OWNER: 22, UNKNOWN_SCHEDULE: 23, UNKNOWN_SESSION: 24,
  UNKNOWN_PARAM: 30, BAD_VALUE: 31, NOT_NULLABLE: 32, REQUIRED: 33, LOCAL_PARAM: 34,
  FILTERED: 35, BAD_FILTER: 36,
  LIMIT: 40, RATE_LIMIT: 41, FORBIDDEN: 42, UNAUTHORIZED: 43, ABORTED: 44, HOOK_FAILED: 45, INTERNAL: 60, STORAGE: 61,
  // client side only
  DISCONNECTED: -1, TIMEOUT: -2, DETACHED: -3, CLOSED: -4,
});
/** WebSocket close codes the server uses (PROTOCOL.md §12). */
export const CloseCode = Object.freeze({
  GOING_AWAY: 1001, TOO_BIG: 1009, RESYNC: 1012, SLOW_CONSUMER: 4001, PROTOCOL_ERRORS: 4002, UNAUTHORIZED: 4003, TAKEN_OVER: 4004,
  KICKED: 4005,
});
const CODE_NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** An error from the server (ERROR message) or from the client's own checks. */
export class TuttiError extends Error {
  /**
   * @param {number} code numeric code (ErrorCode)
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'TuttiError';
    /** numeric code, the server's when the error came from the server */
    this.code = code;
    /** symbolic name of the code, e.g. 'UNKNOWN_PARAM' */
    this.codeName = CODE_NAMES[code] || `CODE_${code}`;
  }
}

// ---------------------------------------------------------------------------
// msgpack: exact integers. Ints encoded in 8 bytes are read as bigint by the
// library (useBigInt64); we turn them back into plain numbers when they are
// safe, so ids/seq/ordinary values are numbers and only integers beyond
// ±2^53 are bigints (never a silent loss of precision).

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

class TuttiDecoder extends Decoder {
  readU64AsBigInt() {
    const v = super.readU64AsBigInt();
    return v <= MAX_SAFE_BIG ? Number(v) : v;
  }
  readI64AsBigInt() {
    const v = super.readI64AsBigInt();
    return v <= MAX_SAFE_BIG && v >= MIN_SAFE_BIG ? Number(v) : v;
  }
}

class TuttiEncoder extends Encoder {
  doEncode(object, depth) {
    if (typeof object === 'bigint') {
      if (object <= MAX_SAFE_BIG && object >= MIN_SAFE_BIG) this.encodeNumber(Number(object));
      else if (object > U64_MAX || object < I64_MIN) throw new RangeError(`integer out of 64-bit range: ${object}`);
      else this.encodeBigInt64(object);
    } else if (Object.is(object, -0)) {
      // the library writes every safe integer as an int, -0 too: the server
      // would store 0 while this client keeps -0
      this.encodeNumberAsFloat(object);
    } else if (object instanceof Map) {
      // a Map keeps its key types: used for HELLO `seqs` (int -> int)
      const size = object.size;
      this.ensureBufferSizeToWrite(5);
      if (size < 16) this.writeU8(0x80 + size);
      else if (size < 0x10000) { this.writeU8(0xde); this.writeU16(size); }
      else { this.writeU8(0xdf); this.writeU32(size); }
      for (const [k, v] of object) { this.doEncode(k, depth + 1); this.doEncode(v, depth + 1); }
    } else {
      super.doEncode(object, depth);
    }
  }
}

const encoder = new TuttiEncoder({ ignoreUndefined: false });
const decoder = new TuttiDecoder({ useBigInt64: true });

// Guard against a library update that renames the methods overridden above:
// then walk decoded values and fix the integers ourselves.
let needIntFix = false;
try {
  const small = decoder.decode(new Uint8Array([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]));
  needIntFix = small !== 5;
} catch { needIntFix = true; }

function fixInts(v) {
  if (typeof v === 'bigint') return v <= MAX_SAFE_BIG && v >= MIN_SAFE_BIG ? Number(v) : v;
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) v[i] = fixInts(v[i]); return v; }
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) { for (const k in v) v[k] = fixInts(v[k]); }
  return v;
}

/** Encode one value (exposed for tests and tools). */
export function encode(value) { return encoder.encode(value); }
/** Decode every msgpack value of a buffer (exposed for tests and tools). */
export function decodeAll(bytes) {
  const out = [];
  for (const v of decoder.decodeMulti(bytes)) out.push(needIntFix ? fixInts(v) : v);
  return out;
}

// ---------------------------------------------------------------------------
// values: description expansion, validation, coercion, equality, copies

const TYPES = new Set(['boolean', 'string', 'integer', 'float', 'enum', 'any']);
const I64_MAX = (1n << 63n) - 1n;
const ANY_MAX_DEPTH = 16;

/** Fill a param description with its defaults, as the server's DESCRIBE does. */
export function expandParam(d) {
  const p = Object.assign({}, d);
  if (p.nullable === undefined) p.nullable = false;
  if (p.event === undefined) p.event = false;
  if (p.required === undefined) p.required = false;
  if (p.filterChange === undefined) p.filterChange = true;
  if (p.immediate === undefined) p.immediate = false;
  if (p.acknowledge === undefined) p.acknowledge = true;
  if (p.local === undefined) p.local = false;
  if (p.metas === undefined) p.metas = {};
  if (p.event) { p.nullable = true; p.default = null; }
  if (p.required) p.default = null;
  if (p.default === undefined) p.default = null;
  if (p.type === 'integer' || p.type === 'float') {
    // unbounded ends are -Infinity / +Infinity, as in soundworks (JSON, and
    // descriptions written for older servers, spell them null)
    if (p.min === undefined || p.min === null) p.min = -Infinity;
    if (p.max === undefined || p.max === null) p.max = Infinity;
  }
  return p;
}

function expandDescription(desc) {
  const out = {};
  for (const name of Object.keys(desc || {})) out[name] = expandParam(desc[name]);
  return out;
}

function isPlainObject(v) {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Deep equality as the server computes it (map key order ignored, strict types). */
export function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (ArrayBuffer.isView(a)) {
    if (!ArrayBuffer.isView(b) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (ArrayBuffer.isView(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
  return true;
}

function clone(v) {
  if (v === null || typeof v !== 'object') return v;
  return structuredClone(v);
}

// The server sends strings as UTF-8 and refuses any that is not: a JS string
// with a lone surrogate has no UTF-8 form (the encoder would write bytes
// that no decoder accepts).
const wellFormed = typeof String.prototype.isWellFormed === 'function'
  ? (s) => s.isWellFormed()
  : (s) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(s);

// What the server refuses in an `any` value, or null: nesting deeper than
// ANY_MAX_DEPTH as it counts it (a scalar 0, [] 1, [[1]] 2; bytes, msgpack
// extensions and dates are scalars), or a string or key that is not UTF-8.
function anyProblem(v, depth = 0) {
  if (typeof v === 'string') return wellFormed(v) ? null : 'a string with a lone surrogate';
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ExtData || v instanceof Date) return null;
  if (depth >= ANY_MAX_DEPTH) return `nested deeper than ${ANY_MAX_DEPTH}`;
  const isArray = Array.isArray(v);
  // an own "__proto__" key (JSON.parse makes one) would reach every other
  // client as a map their decoder refuses: the server refuses it too
  if (!isArray && Object.prototype.hasOwnProperty.call(v, '__proto__')) return 'a key "__proto__"';
  for (const k in v) {
    if (!isArray && !wellFormed(k)) return 'a key with a lone surrogate';
    const why = anyProblem(v[k], depth + 1);
    if (why) return why;
  }
  return null;
}

function describeValue(v) {
  try {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') return String(v);
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : (s.length > 60 ? s.slice(0, 57) + '...' : s);
  } catch { return String(v); }
}

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) { n += 4; i++; } // a surrogate pair (well-formed here)
    else n += 3;
  }
  return n;
}

/** {role, token} from a page's URL fragment (`#role=conductor&token=...`): the
 * fragment never leaves the browser, so the token reaches no server log. */
export function roleFromLocation(loc = typeof location !== 'undefined' ? location : null) {
  if (!loc || !loc.hash || loc.hash.length < 2) return {};
  const q = new URLSearchParams(loc.hash.slice(1));
  const out = {};
  if (q.get('role')) out.role = q.get('role');
  if (q.get('token')) out.token = q.get('token');
  return out;
}

/**
 * Validate and coerce one value for a param (PROTOCOL.md §7).
 * @returns the coerced value; throws a TuttiError otherwise.
 */
export function coerce(className, name, p, value) {
  const where = `class "${className}", param "${name}"`;
  if (value === null || value === undefined) {
    if (p.nullable || p.event) return null;
    throw new TuttiError(ErrorCode.NOT_NULLABLE, `${where}: null is not allowed (param is not nullable)`);
  }
  const bad = (why) => new TuttiError(ErrorCode.BAD_VALUE, `${where}: invalid value ${describeValue(value)} for type ${p.type}${why ? ` (${why})` : ''}`);
  switch (p.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw bad();
      return value;
    case 'string':
      if (typeof value !== 'string') throw bad();
      if (!wellFormed(value)) throw bad('a lone surrogate: not UTF-8');
      if (p.maxBytes && utf8Length(value) > p.maxBytes) throw bad(`longer than maxBytes ${p.maxBytes}`);
      return value;
    case 'integer': {
      let v = value;
      if (typeof v === 'number') {
        if (!Number.isInteger(v)) throw bad('not an integer');
        if (v >= 2 ** 63 || v < -(2 ** 63)) v = BigInt(v); // exact: an integral double
        else if (v === 0) v = 0; // -0 is an int 0 to the server
      } else if (typeof v !== 'bigint') throw bad();
      // bounded as the server parses it: -Infinity (or no min) and +Infinity (or no max) are no bound
      const hasMin = p.min !== null && p.min !== undefined && p.min !== -Infinity;
      const hasMax = p.max !== null && p.max !== undefined && p.max !== Infinity;
      if (typeof v === 'bigint') {
        // beyond int64 (a uint64, a huge float): clipped to the bound on its
        // side when there is one, as the server does, else refused
        if (v > I64_MAX) { if (!hasMax) throw bad('out of int64 range'); v = p.max; }
        else if (v < I64_MIN) { if (!hasMin) throw bad('out of int64 range'); v = p.min; }
        else if (v <= MAX_SAFE_BIG && v >= MIN_SAFE_BIG) v = Number(v);
      }
      if (hasMin && v < p.min) v = p.min;
      if (hasMax && v > p.max) v = p.max;
      return v;
    }
    case 'float': {
      let v = value;
      if (typeof v === 'bigint') v = Number(v);
      if (typeof v !== 'number') throw bad();
      if (Number.isNaN(v)) throw bad('NaN');
      if (p.min !== null && p.min !== undefined && v < p.min) v = p.min;
      if (p.max !== null && p.max !== undefined && v > p.max) v = p.max;
      return v;
    }
    case 'enum': {
      const list = p.list || [];
      for (const item of list) if (deepEqual(item, value)) return item;
      throw bad(`not one of ${describeValue(list)}`);
    }
    case 'any': {
      if (typeof value === 'function' || typeof value === 'symbol') throw bad();
      const why = anyProblem(value);
      if (why) throw bad(why);
      if (p.maxBytes && encode(value).byteLength > p.maxBytes) throw bad(`larger than maxBytes ${p.maxBytes}`);
      return value;
    }
    default:
      throw bad(`unknown type ${p.type}`);
  }
}

function validateDescriptionLocally(className, description) {
  if (typeof className !== 'string' || className.length === 0) throw new TypeError('class name must be a non-empty string');
  if (!isPlainObject(description)) throw new TypeError(`description of class "${className}" must be a plain object`);
  for (const [name, d] of Object.entries(description)) {
    if (!isPlainObject(d)) throw new TuttiError(ErrorCode.BAD_DESCRIPTION, `class "${className}", param "${name}": description must be an object`);
    if (!TYPES.has(d.type)) throw new TuttiError(ErrorCode.BAD_DESCRIPTION, `class "${className}", param "${name}": unknown type ${describeValue(d.type)}`);
  }
}

// Infinity is a JS habit for unbounded min/max; on the wire that is nil.
function descriptionForWire(description) {
  const out = {};
  for (const [name, d] of Object.entries(description)) {
    const p = Object.assign({}, d);
    if (p.min === -Infinity) p.min = null;
    if (p.max === Infinity) p.max = null;
    out[name] = p;
  }
  return out;
}

// ---------------------------------------------------------------------------
// small event emitter

class Emitter {
  constructor() { this._listeners = new Map(); }
  /** Add a listener; returns a function that removes it. */
  on(event, cb) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(cb);
    return () => this.off(event, cb);
  }
  off(event, cb) { const s = this._listeners.get(event); if (s) s.delete(cb); }
  once(event, cb) { const off = this.on(event, (...a) => { off(); cb(...a); }); return off; }
  emit(event, ...args) {
    const s = this._listeners.get(event);
    if (!s) return;
    for (const cb of [...s]) {
      try { cb(...args); } catch (err) { reportError(err); }
    }
  }
}

function reportError(err) {
  // a listener threw: keep going, but let the developer see it
  if (typeof console !== 'undefined') console.error('[tutti] listener error:', err);
}

function now() { return performance.now() / 1000; }

// soundworks' node id of a state's creator: -1 for the server
function nodeId(ownerSession) { return ownerSession === 0 ? -1 : ownerSession; }

// ---------------------------------------------------------------------------
// Client

/**
 * One connection to a tutti server (one session).
 *
 * Events (client.on(name, cb) returns an unsubscribe function):
 * - 'status' (status): 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'
 * - 'open' (welcome): a session is established (first connection, resume or new session)
 * - 'resumed' (welcome): the connection came back and the session was resumed
 * - 'sessionlost' (welcome): the connection came back but the old session was gone;
 *   the old instances have been detached (onDetach/onDelete fired): attach again
 * - 'close' ({code, reason}): the WebSocket closed
 * - 'sync' ({offset, travel}): a better clock offset estimate
 * - 'scheduled' ({stateId, schedId, at, changes, lead}): a scheduled set (PROTOCOL.md §6a)
 *   became known (ours accepted, another client's pushed, or pending at attach); `lead` is the
 *   sync time left until `at` (negative: late). Plan its sound now: see planAt()
 * - 'room' (room): the server's figures, once a second while inspect() is on (admin roles)
 */
export class Client extends Emitter {
  /**
   * @param {object} [options]
   * @param {string} [options.url] ws:// URL; in a browser defaults to the page's host
   * @param {Function} [options.WebSocket] WebSocket implementation (Node: the `ws` package)
   * @param {boolean|object} [options.reconnect=true] reconnect and resume when the connection
   *   drops; or `{ maxAttempts, backoffMin, backoffMax }`
   * @param {number} [options.maxReconnectAttempts=Infinity] connection attempts in a row after
   *   which the client gives up and closes (status 'closed', event 'giveup'): a script whose
   *   server went away for good can end
   * @param {number} [options.backoffMin=250] ms, first reconnection delay
   * @param {number} [options.backoffMax=8000] ms, longest reconnection delay
   * @param {number} [options.connectTimeout=10000] ms; connect() rejects (TIMEOUT) when no session
   *   is up by then, so a script whose server is not running fails instead of hanging (0: wait
   *   forever). The client then closes, unless keepTrying
   * @param {boolean} [options.keepTrying=false] after connectTimeout on the first connection, keep
   *   trying in the background ('open' fires when the server comes; connect() again waits for it):
   *   what a page on a phone wants while the server restarts
   * @param {number} [options.requestTimeout=30000] ms; a request without reply rejects (TIMEOUT)
   * @param {number} [options.pingInterval=5000] ms between PINGs (clock sync and liveness)
   * @param {number} [options.heartbeatTimeout=15000] ms without any message before the
   *   connection is deemed dead and reopened (0: never)
   * @param {boolean} [options.validate=true] validate values locally before sending
   * @param {() => number} [options.getTime] the local clock of getSyncTime/getLocalTime, seconds
   *   (default performance.now()/1000; e.g. an AudioContext's currentTime once it runs)
   * @param {object} [options.sync] options of the clock estimator (web/sync.js SyncOptions), or
   *   false for the quick estimate only (fastest of the recent PINGs)
   * @param {string} [options.role] the role to take (PROTOCOL.md §3a); in a browser, default: the
   *   page's URL fragment `#role=...` (roleFromLocation), else the server's default role
   * @param {string} [options.token] that role's token; in a browser, default: `#...&token=...`
   * @param {boolean} [options.syncReports=true] tell the server how well this client's clock is
   *   synchronised (SYNC_REPORT, at most once a second, after each series of pings), for the
   *   operator's inspector and /metrics
   */
  constructor(options = {}) {
    super();
    if (options.role === undefined && options.token === undefined) options = Object.assign({}, roleFromLocation(), options);
    let url = options.url;
    if (!url && typeof location !== 'undefined') {
      url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
    }
    if (!url) throw new TypeError('tutti Client: options.url is required outside a browser');
    this.url = url;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError('tutti Client: no WebSocket implementation (pass options.WebSocket)');
    this.options = Object.assign({
      reconnect: true, maxReconnectAttempts: Infinity, backoffMin: 250, backoffMax: 8000, connectTimeout: 10000, keepTrying: false,
      requestTimeout: 30000, pingInterval: 5000, heartbeatTimeout: 15000, validate: true, syncReports: true,
    }, options);
    if (isPlainObject(this.options.reconnect)) {
      // reconnect: { maxAttempts, backoffMin, backoffMax }
      const r = this.options.reconnect;
      if (r.maxAttempts !== undefined) this.options.maxReconnectAttempts = r.maxAttempts;
      if (r.backoffMin !== undefined) this.options.backoffMin = r.backoffMin;
      if (r.backoffMax !== undefined) this.options.backoffMax = r.backoffMax;
      this.options.reconnect = true;
    }
    const maxAttempts = this.options.maxReconnectAttempts;
    if (!(maxAttempts >= 0)) throw new TypeError('tutti Client: maxReconnectAttempts must be a number >= 0 (Infinity: no bound)');
    /** @type {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
    this.status = 'idle';
    /** session id (0 until connected) */
    this.session = 0;
    /** resume token of the session */
    this.token = null;
    /** the role the server gave this session (from the welcome) */
    this.role = null;
    /** the last welcome (HELLO result) */
    this.welcome = null;
    this.maxMessage = Infinity;
    this.stateManager = new StateManager(this);

    this._ws = null;
    this._reqId = 0;
    this._pending = new Map(); // reqId -> {resolve, reject, timer, onResult}
    this._out = [];
    this._outBytes = 0;
    this._flushScheduled = false;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._burstTimers = [];
    this._heartbeatTimer = null;
    this._lastRecv = 0;
    this._pingSentAt = null; // time of the oldest PING not followed by any message
    this._pingId = 0;
    this._syncSamples = [];
    /** estimated offset: syncTime = localTime + offset (seconds) */
    this.syncOffset = 0;
    this.syncTravel = Infinity;
    this._connectWaiters = [];
    this._closedByUser = false;
    this._everOpened = false;
    // The clock: a quick estimate (fastest of the recent PINGs, from the first
    // PONG on) until the estimator of sync.js (series, drift, monotonic
    // smoothing) has finished its first series; then the estimator.
    this._clock = typeof options.getTime === 'function' ? options.getTime : now;
    this._syncReady = false;
    this.sync = options.sync === false ? null : new SyncEstimator({
      ...(options.sync || {}),
      getTime: this._clock,
      sendPing: (id, t) => { if (this._ws && this._ws.readyState === 1 && this.status === 'open') this._enqueue([MSG.PING, id, t]); },
    });
    if (this.sync) {
      this.sync.onReport((report) => {
        if (report.status === 'training' || report.status === 'sync') this._syncReady = true;
        this._reportSync(report);
        this.emit('syncreport', report);
      });
    }
    this._syncReportAt = -Infinity;
    this._syncReportTimer = null;
    /** the INSPECT options while inspect() is on (sent again on each new connection) */
    this._inspecting = null;
    this._onWake = () => this._wake();
    if (typeof window !== 'undefined' && window.addEventListener) {
      window.addEventListener('online', this._onWake);
      if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this._onWake);
    }
    /** counters, handy for tests and the demo: frames and messages sent and received */
    this.stats = { framesOut: 0, messagesOut: 0, requestsOut: 0, framesIn: 0, messagesIn: 0 };
  }

  /**
   * This client's node id, as soundworks names it (tutti's session id:
   * the `ownerSession` of the states it creates); null before the first
   * connection.
   */
  get id() { return this.session || null; }

  /** soundworks' name: connect (the session is established when it resolves). */
  async init() { await this.connect(); }

  /** soundworks' name: connect; resolves once the session is established. */
  async start() { await this.connect(); }

  /**
   * soundworks' name: close, and resolve once the WebSocket is closed (at
   * most `timeout` ms). No timer of the client is left running after it.
   */
  async stop({ timeout = 2000 } = {}) {
    const ws = this._ws;
    this.close();
    if (!ws || ws.readyState === 3) return;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, timeout);
      ws.onclose = () => { clearTimeout(t); resolve(); };
    });
  }

  /** Connect and say HELLO. Resolves with the welcome when the session is established. */
  connect() {
    if (this.status === 'open') return Promise.resolve(this.welcome);
    if (this.status === 'closed') return Promise.reject(new TuttiError(ErrorCode.CLOSED, 'client closed'));
    const p = new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      if (this.options.connectTimeout > 0) {
        w.timer = setTimeout(() => {
          this._connectWaiters = this._connectWaiters.filter((x) => x !== w);
          reject(new TuttiError(ErrorCode.TIMEOUT, `could not connect to ${this.url} within ${this.options.connectTimeout} ms`));
          if (!this._everOpened && !this.options.keepTrying) this.close();
        }, this.options.connectTimeout);
      }
      this._connectWaiters.push(w);
    });
    if (this.status === 'idle') this._open();
    return p;
  }

  /**
   * Close for good (no reconnection): a goodbye, the server ends the session at once
   * (the states this client created are deleted, their other users get onDetach).
   * Pending requests reject with CLOSED; no timer of the client is left running
   * (scheduled sets not yet applied are dropped), so a Node process can end.
   */
  close() {
    this._shutdown(new TuttiError(ErrorCode.CLOSED, 'client closed'));
  }

  _shutdown(err) {
    if (this.status === 'closed') return;
    this._closedByUser = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._wakeTimer);
    clearTimeout(this._syncReportTimer);
    if (this.sync) this.sync.stop();
    for (const rec of this.stateManager._records.values()) this.stateManager._dropSchedules(rec); // no listener after close
    if (typeof window !== 'undefined' && window.removeEventListener) {
      window.removeEventListener('online', this._onWake);
      if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this._onWake);
    }
    this._stopTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detachSocket(ws);
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this._rejectPending(new TuttiError(ErrorCode.CLOSED, 'client closed'));
    for (const w of this._connectWaiters) { clearTimeout(w.timer); w.reject(err); }
    this._connectWaiters = [];
    this.stateManager._closed();
    this._setStatus('closed');
  }

  // A phone woke up or got its network back: check the connection at once
  // (a short PING deadline) or retry now instead of waiting for the backoff.
  _wake() {
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    if (this.status === 'open') {
      this._sendPing();
      clearTimeout(this._wakeTimer);
      this._wakeTimer = setTimeout(() => this._checkHeartbeat(Math.min(3000, this.options.heartbeatTimeout || 3000)), 3100);
    } else if (this.status === 'reconnecting' || this.status === 'connecting') {
      if (this._reconnectTimer && !this._ws) { clearTimeout(this._reconnectTimer); this._attempt = 0; this._open(); }
    }
  }

  /**
   * Drop the connection without closing the session, as a network failure
   * would (the client reconnects and resumes). For tests and demos.
   */
  dropConnection() {
    if (this._ws) this._onSocketGone(this._ws, 4999, 'dropped by client');
  }

  /** The local clock in seconds (options.getTime, default performance.now()), or the local time of a sync time. */
  getLocalTime(syncTime) {
    if (syncTime === undefined) return this._clock();
    if (this._syncReady) return this.sync.getLocalTime(syncTime);
    return syncTime - this.syncOffset;
  }

  /** The server's sync clock, in seconds, now or at a given local time. */
  getSyncTime(localTime) {
    const t = localTime === undefined ? this._clock() : localTime;
    if (this._syncReady) return this.sync.getSyncTime(t);
    return t + this.syncOffset;
  }

  /** The clock estimator's report (status 'startup' | 'training' | 'sync', offset, drift, round trips), or null. */
  getSyncReport() { return this.sync ? this.sync.getReport() : null; }

  /**
   * Can a sound still be heard at sync time `at`? Ask when a scheduled set
   * arrives (the 'scheduled' event), before planning its sound: a sound
   * scheduled now is heard `outputLatency` later (audioOutputLatency() of
   * the AudioContext: 40-100 ms on many Android phones, 150+ ms over
   * Bluetooth), plus `margin` for this thread to hand it to the audio thread.
   *
   * @param {number} at sync time (seconds)
   * @param {object} [o]
   * @param {number} [o.outputLatency=0] seconds from scheduling a sound to hearing it
   * @param {number} [o.margin=0.005] seconds for the main thread to reach the audio thread
   * @returns {{at:number, localTime:number, lead:number, slack:number, onTime:boolean}}
   *   localTime: `at` on the local clock (getLocalTime(at)), to convert to the audio clock;
   *   lead: seconds from now until `at`; slack: lead - outputLatency - margin;
   *   onTime: slack >= 0 (else the sound can only be late by -slack, or skipped)
   */
  planAt(at, { outputLatency = 0, margin = 0.005 } = {}) {
    if (typeof at !== 'number' || !Number.isFinite(at)) throw new TypeError('planAt(at): at must be a finite sync time in seconds');
    if (!(outputLatency >= 0) || !(margin >= 0)) throw new RangeError('planAt: outputLatency and margin must be >= 0 seconds');
    const now = this._clock();
    const localTime = this.getLocalTime(at);
    const lead = localTime - now;
    const slack = lead - outputLatency - margin;
    return { at, localTime, lead, slack, onTime: slack >= 0 };
  }

  // -- the operator's view (PROTOCOL.md §8b; admin roles) ----------------

  /**
   * Inspect the server: resolves with the room now (counts, rates, every
   * session's and state's figures, and `history`, the samples of the last
   * ten minutes), then emits 'room' once a second until stopInspecting().
   * Kept across reconnections. Admin roles only (FORBIDDEN otherwise).
   * @param {{sessions?: number, states?: number}} [opts] rows at most (default 1000 each, up to 10000)
   */
  inspect(opts = {}) {
    if (!isPlainObject(opts)) throw new TypeError('inspect(opts): opts must be an object');
    const wire = {};
    for (const k of ['sessions', 'states']) if (opts[k] !== undefined) wire[k] = opts[k];
    this._inspecting = wire; // before the result: a ROOM may follow it in the same frame
    return this._sendInspect(wire).catch((err) => {
      if (this._inspecting === wire) this._inspecting = null;
      throw err;
    });
  }

  _sendInspect(wire) {
    return this._request([MSG.INSPECT, 0, wire], { onResult: (room) => { this.emit('room', room); return room; } });
  }

  /** Stop the 'room' pushes of inspect(). */
  async stopInspecting() {
    if (!this._inspecting) return;
    this._inspecting = null;
    if (this.status === 'open') await this._request([MSG.INSPECT, 0, null]);
  }

  /**
   * End a session now, as an operator (admin roles): its connection is
   * closed with 4005 (its client does not reconnect by itself) and the
   * states it created are deleted. Rejects UNKNOWN_SESSION, FORBIDDEN.
   * @param {number} sessionId
   */
  async kick(sessionId) {
    if (!Number.isInteger(sessionId) || sessionId < 0) throw new TypeError('kick(sessionId): a session id');
    await this._request([MSG.KICK, 0, sessionId]);
  }

  // Tell the server how well the clock is synchronised: after each series
  // of pings, at most once a second (a late one waits for its second), so
  // a phone costs the server a few numbers now and then.
  _reportSync(report) {
    if (!this.options.syncReports || !report || report.offsetError === null || report.offsetError === undefined) return;
    if (!['startup', 'training', 'sync'].includes(report.status)) return;
    const wait = this._syncReportAt + 1 - now();
    if (wait > 0) {
      if (!this._syncReportTimer) {
        this._syncReportTimer = setTimeout(() => { this._syncReportTimer = null; if (this.sync) this._reportSync(this.sync.getReport()); }, wait * 1000);
      }
      return;
    }
    if (!this._ws || this._ws.readyState !== 1 || this.status !== 'open') return;
    const clip = (v, lo, hi) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : hi);
    this._syncReportAt = now();
    this._enqueue([MSG.SYNC_REPORT, report.status, clip(report.offsetError, 0, 3600), clip(report.drift, -1, 1), clip(report.travelDuration, 0, 3600)]);
  }

  // -- connection --------------------------------------------------------

  _setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.emit('status', s);
  }

  _open() {
    this._setStatus(this._everOpened ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.url, [PROTOCOL]);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    ws.onopen = () => this._onSocketOpen(ws);
    ws.onmessage = (ev) => this._onSocketMessage(ws, ev.data);
    ws.onclose = (ev) => this._onSocketGone(ws, ev.code, ev.reason);
    ws.onerror = () => { /* a close follows */ };
  }

  _detachSocket(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
  }

  _onSocketOpen(ws) {
    if (ws !== this._ws) return;
    this._lastRecv = now();
    this._pingSentAt = null;
    const opts = { version: VERSION };
    if (this.options.role) opts.role = this.options.role;
    if (this.options.token) opts.roleToken = this.options.token;
    if (this.token) {
      opts.token = this.token;
      const seqs = new Map();
      for (const [id, rec] of this.stateManager._records) seqs.set(id, rec.seq);
      opts.seqs = seqs;
    }
    this._syncSamples = [];
    this._sendPing();
    const wasToken = this.token;
    // the welcome is handled as soon as it is read, before the pushes that follow it in the frame
    this._request([MSG.HELLO, null, opts], { allowBeforeHello: true, onResult: (welcome) => { this._onWelcome(welcome, wasToken); return welcome; } }).then(() => {}, (err) => {
      if (ws !== this._ws) return; // the connection dropped meanwhile: already handled
      if (err.code > 0) {
        // HELLO refused (BAD_VERSION...): retrying would not help
        for (const w of this._connectWaiters) { clearTimeout(w.timer); w.reject(err); }
        this._connectWaiters = [];
        this.close();
      } else {
        // no answer (TIMEOUT): start over on a new connection
        this._onSocketGone(ws, 4000, err.message);
      }
    });
  }

  _onWelcome(welcome, hadToken) {
    this.welcome = welcome;
    this.maxMessage = welcome.maxMessage || Infinity;
    const oldSession = this.session;
    this.session = welcome.session;
    this.token = welcome.token;
    this.role = welcome.role ?? null;
    this._attempt = 0;
    // first estimate of the clock offset, replaced by the PONGs
    if (!Number.isFinite(this.syncTravel) && typeof welcome.time === 'number') {
      this.syncOffset = welcome.time - this._clock();
    }
    this._setStatus('open');
    this._startTimers();
    if (this.sync) this.sync.start(); // keeps running across reconnections (no-op when running)
    const first = !this._everOpened;
    this._everOpened = true;
    if (!first) {
      if (welcome.resumed) {
        this.emit('resumed', welcome);
      } else {
        this.stateManager._sessionLost(oldSession);
        this.emit('sessionlost', welcome);
      }
    } else if (hadToken && !welcome.resumed) {
      this.stateManager._sessionLost(oldSession);
    }
    this.emit('open', welcome);
    this.stateManager._registerHooks();
    this._syncReportAt = -Infinity;
    if (this.sync) this._reportSync(this.sync.getReport());
    if (this._inspecting) this._sendInspect(this._inspecting).catch(() => {});
    for (const w of this._connectWaiters) { clearTimeout(w.timer); w.resolve(welcome); }
    this._connectWaiters = [];
  }

  _onSocketGone(ws, code, reason) {
    if (ws !== this._ws) return;
    this._detachSocket(ws);
    try {
      // a dead connection (heartbeat) need not wait for a closing handshake: `ws` can terminate;
      // otherwise close with 4000: not a goodbye, the server keeps the session for the resume
      // (1000, 1001 or no code would end it)
      if (code === 4000 && typeof ws.terminate === 'function') ws.terminate(); else ws.close(4000, 'reconnecting');
    } catch { /* ignore */ }
    this._ws = null;
    this._stopTimers();
    this._out = []; this._outBytes = 0;
    this._rejectPending(new TuttiError(ErrorCode.DISCONNECTED, `connection lost (${code}${reason ? ` ${reason}` : ''})`));
    this.stateManager._connectionLost();
    this.emit('close', { code, reason });
    if (this._closedByUser) return;
    // refused (4003), another connection resumed this session (4004), or the
    // operator ended it (4005): coming back would be refused again, take the
    // session back and forth, or undo what the operator did
    if (!this.options.reconnect || code === CloseCode.UNAUTHORIZED || code === CloseCode.TAKEN_OVER || code === CloseCode.KICKED) {
      // before any session, say why connect() failed (close() would say "client closed")
      if (!this._everOpened) this._shutdown(new TuttiError(ErrorCode.DISCONNECTED, `could not connect to ${this.url} (${code}${reason ? ` ${reason}` : ''})`));
      else this.close();
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._closedByUser) return;
    if (this._attempt >= this.options.maxReconnectAttempts) {
      // the server is gone for good, as far as this script is concerned
      const n = this._attempt;
      this._shutdown(new TuttiError(ErrorCode.DISCONNECTED, `could not connect to ${this.url} (${n} attempt${n === 1 ? '' : 's'}, maxReconnectAttempts)`));
      this.emit('giveup', { attempts: n });
      return;
    }
    this._setStatus(this._everOpened ? 'reconnecting' : 'connecting');
    const { backoffMin, backoffMax } = this.options;
    const base = Math.min(backoffMax, backoffMin * 2 ** this._attempt);
    const delay = base / 2 + Math.random() * base / 2; // exponential backoff, jitter
    this._attempt++;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => { this._reconnectTimer = null; this._open(); }, delay);
  }

  _startTimers() {
    this._stopTimers();
    // a burst of pings for a first estimate, then one every pingInterval
    for (let i = 1; i <= 4; i++) this._burstTimers.push(setTimeout(() => this._sendPing(), i * 80));
    if (this.options.pingInterval > 0) this._pingTimer = setInterval(() => this._sendPing(), this.options.pingInterval);
    if (this.options.heartbeatTimeout > 0) {
      // dead when a PING has had no answer (nor any other message) for heartbeatTimeout;
      // measured from the PING, so throttled timers in a background tab do not count as silence
      this._heartbeatTimer = setInterval(() => this._checkHeartbeat(), Math.max(100, this.options.heartbeatTimeout / 4));
    }
  }

  _checkHeartbeat(timeout = this.options.heartbeatTimeout) {
    if (!this._ws || this._pingSentAt === null) return;
    if (now() - this._pingSentAt > timeout / 1000) this._onSocketGone(this._ws, 4000, 'heartbeat timeout');
  }

  _stopTimers() {
    clearInterval(this._pingTimer); this._pingTimer = null;
    clearInterval(this._heartbeatTimer); this._heartbeatTimer = null;
    for (const t of this._burstTimers) clearTimeout(t);
    this._burstTimers = [];
  }

  _rejectPending(err) {
    const pending = this._pending;
    this._pending = new Map();
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(err); }
  }

  // -- sending ----------------------------------------------------------------

  _sendPing() {
    if (!this._ws || this._ws.readyState !== 1) return;
    this._pingId = (this._pingId + 1) % 0x100000000;
    if (this._pingSentAt === null) this._pingSentAt = now();
    this._enqueue([MSG.PING, this._pingId, this._clock()]);
  }

  /**
   * Send a request; resolves with the RESULT, rejects with a TuttiError.
   * `msg[1]` is replaced by a fresh reqId. `onResult(result)` runs synchronously
   * when the reply is read (before later messages of the same frame).
   */
  _request(msg, { onResult, allowBeforeHello = false } = {}) {
    if (!this._ws || this._ws.readyState !== 1 || (!allowBeforeHello && this.status !== 'open')) {
      const err = this.status === 'closed'
        ? new TuttiError(ErrorCode.CLOSED, 'client closed')
        : new TuttiError(ErrorCode.DISCONNECTED, `not connected (status: ${this.status})`);
      return Promise.reject(err);
    }
    this._reqId = this._reqId >= 0xffffffff ? 1 : this._reqId + 1;
    const reqId = this._reqId;
    msg[1] = reqId;
    let bytes;
    try {
      bytes = encoder.encode(msg);
    } catch (err) {
      return Promise.reject(new TuttiError(ErrorCode.BAD_VALUE, `cannot encode message: ${err.message}`));
    }
    if (bytes.byteLength > this.maxMessage) {
      return Promise.reject(new TuttiError(ErrorCode.LIMIT, `message of ${bytes.byteLength} bytes is larger than the server's limit (${this.maxMessage})`));
    }
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, onResult, timer: null };
      if (this.options.requestTimeout > 0) {
        p.timer = setTimeout(() => {
          this._pending.delete(reqId);
          reject(new TuttiError(ErrorCode.TIMEOUT, `no reply to request ${reqId} (type ${msg[0]}) within ${this.options.requestTimeout} ms`));
        }, this.options.requestTimeout);
      }
      this._pending.set(reqId, p);
      this.stats.requestsOut++;
      this._enqueueBytes(bytes);
    });
  }

  _enqueue(msg) { this._enqueueBytes(encoder.encode(msg)); }

  // Messages issued in one microtask go out in one WebSocket message.
  _enqueueBytes(bytes) {
    this._out.push(bytes);
    this._outBytes += bytes.byteLength;
    if (!this._flushScheduled) {
      this._flushScheduled = true;
      queueMicrotask(() => this._flush());
    }
  }

  _flush() {
    this._flushScheduled = false;
    const ws = this._ws;
    const chunks = this._out;
    this._out = []; this._outBytes = 0;
    if (!ws || ws.readyState !== 1 || chunks.length === 0) return;
    // concatenate, never past the server's max message size
    let i = 0;
    while (i < chunks.length) {
      let size = 0, j = i;
      while (j < chunks.length && (j === i || size + chunks[j].byteLength <= this.maxMessage)) { size += chunks[j].byteLength; j++; }
      let frame;
      if (j - i === 1) frame = chunks[i];
      else {
        frame = new Uint8Array(size);
        let off = 0;
        for (let k = i; k < j; k++) { frame.set(chunks[k], off); off += chunks[k].byteLength; }
      }
      try { ws.send(frame); } catch { /* close follows */ }
      this.stats.framesOut++;
      this.stats.messagesOut += j - i;
      i = j;
    }
  }

  // -- receiving ------------------------------------------------------------

  _onSocketMessage(ws, data) {
    if (ws !== this._ws) return;
    this._lastRecv = now();
    this._pingSentAt = null;
    if (typeof data === 'string') return; // the protocol is binary only
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else if (Array.isArray(data)) bytes = concatBytes(data); // ws fragments
    else return;
    this.stats.framesIn++;
    let msgs;
    try {
      msgs = decodeAll(bytes);
    } catch (err) {
      if (typeof console !== 'undefined') console.error('[tutti] undecodable message from server:', err);
      return;
    }
    for (const m of msgs) {
      this.stats.messagesIn++;
      try { this._dispatch(m); } catch (err) { reportError(err); }
      if (ws !== this._ws) return; // a handler closed the socket
    }
  }

  _dispatch(m) {
    if (!Array.isArray(m)) return;
    switch (m[0]) {
      case MSG.RESULT: {
        const p = this._pending.get(m[1]);
        if (!p) return;
        this._pending.delete(m[1]);
        clearTimeout(p.timer);
        let value = m[2];
        if (p.onResult) {
          try { value = p.onResult(m[2]); } catch (err) { p.reject(err); return; }
        }
        p.resolve(value);
        return;
      }
      case MSG.ERROR: {
        const p = this._pending.get(m[1]);
        const err = new TuttiError(m[2], m[3]);
        if (!p) {
          if (typeof console !== 'undefined') console.warn(`[tutti] server error: ${err.codeName} ${err.message}`);
          return;
        }
        this._pending.delete(m[1]);
        clearTimeout(p.timer);
        p.reject(err);
        return;
      }
      case MSG.UPDATE:
        if (m.length > 5 && m[5] !== null && m[5] !== undefined) this.stateManager._onScheduledUpdate(m[1], m[2], m[3], m[4] || {}, m[5]);
        else this.stateManager._onUpdate(m[1], m[2], m[3], m[4] || {}, 'update');
        return;
      case MSG.SCHEDULED: this.stateManager._schedule(m[1], m[2], m[3], m[4] || {}); return;
      case MSG.CANCELLED: this.stateManager._cancelled(m[1], m[2]); return;
      case MSG.CLASS_CHANGED: this.stateManager._classChanged(m[1], m[2] || {}); return;
      case MSG.SNAPSHOT: this.stateManager._onSnapshot(m[1], m[2], m[3], m[4] || {}); return;
      case MSG.DELETED: this.stateManager._onDeleted(m[1], m[2]); return;
      case MSG.NOTICE: this.stateManager._onNotice(m[1], m[2], m[3], m[4]); return;
      case MSG.PONG: this._onPong(m); return;
      case MSG.HOOK_CALL: this.stateManager._onHookCall(m); return;
      case MSG.ROOM: if (this._inspecting && m[1] && typeof m[1] === 'object') this.emit('room', m[1]); return;
      default: return;
    }
  }

  _onPong([, pingId, clientTime, recv, send]) {
    const t = this._clock();
    if (typeof clientTime !== 'number' || typeof recv !== 'number' || typeof send !== 'number') return;
    if (this.sync) this.sync.onPong(pingId, clientTime, recv, send);
    const travel = (t - clientTime) - (send - recv);
    const offset = (recv + send) / 2 - (clientTime + t) / 2;
    this._syncSamples.push({ travel, offset });
    if (this._syncSamples.length > 10) this._syncSamples.shift();
    let best = this._syncSamples[0];
    for (const s of this._syncSamples) if (s.travel < best.travel) best = s;
    this.syncOffset = best.offset;
    this.syncTravel = best.travel;
    this.emit('sync', { offset: best.offset, travel: best.travel });
  }
}

function concatBytes(list) {
  let n = 0;
  for (const b of list) n += b.byteLength;
  const out = new Uint8Array(n);
  let off = 0;
  for (const b of list) { out.set(b, off); off += b.byteLength; }
  return out;
}

// ---------------------------------------------------------------------------
// StateManager

/** client.stateManager: classes, states, observe and collections. */
export class StateManager {
  constructor(client) {
    this.client = client;
    /** stateId -> { seq, time, instances: Set<SharedState> } */
    this._records = new Map();
    /** local observers */
    this._observers = new Set();
    /** server-side observations: key ('' for all, else class name) -> count */
    this._observed = new Map();
    /** hooks this client registered (PROTOCOL.md §8a), in registration order */
    this._hooks = new Set();
    /** the server's hook id -> its entry, for this connection */
    this._hookById = new Map();
    // several nodes: a node that has a new hook may call it before this
    // client has the HOOK's RESULT; such calls wait for it here
    this._hooksInFlight = 0;
    this._earlyCalls = [];
  }

  /**
   * Define a class (soundworks: server side only; tutti: any client may).
   * Resolves with true when the class is new, false when an identical class
   * existed. Rejects (CLASS_EXISTS) when a different class has that name.
   */
  async defineClass(className, description) {
    validateDescriptionLocally(className, description);
    const r = await this.client._request([MSG.DEFINE, 0, className, descriptionForWire(description)]);
    return !!(r && r.defined);
  }

  /** The expanded description of a class (every option filled in). */
  async getClassDescription(className) {
    if (typeof className !== 'string') throw new TypeError('className must be a string');
    return this.client._request([MSG.DESCRIBE, 0, className]);
  }

  /** Create a state owned by this client. */
  async create(className, initValues = {}) {
    if (typeof className !== 'string') throw new TypeError('className must be a string');
    if (!isPlainObject(initValues)) throw new TypeError('initValues must be a plain object');
    return this.client._request([MSG.CREATE, 0, className, initValues], {
      onResult: (r) => this._addInstance(r, true, {}),
    });
  }

  /**
   * Attach to a state:
   *   attach(className), attach(className, stateId), attach(className, filter),
   *   attach(className, options), attach(className, stateId | null, filter | options | null)
   * options: { filter: [param...], history: N (last N events), since: seq }.
   * With a history option, state.history holds the events and
   * state.historyComplete tells whether all of them were still kept.
   */
  async attach(className, stateId = null, filterOrOptions = null) {
    if (typeof className !== 'string') throw new TypeError('className must be a string');
    if (Array.isArray(stateId) || isPlainObject(stateId)) { filterOrOptions = stateId; stateId = null; }
    if (stateId !== null && stateId !== undefined && !Number.isInteger(stateId)) throw new TypeError('stateId must be an integer or null');
    let opts = {};
    if (Array.isArray(filterOrOptions)) opts = { filter: filterOrOptions };
    else if (isPlainObject(filterOrOptions)) opts = filterOrOptions;
    else if (filterOrOptions !== null && filterOrOptions !== undefined) throw new TypeError('filter must be an array of param names or an options object');
    const wire = {};
    if (opts.filter !== undefined && opts.filter !== null) {
      if (!Array.isArray(opts.filter) || opts.filter.some((k) => typeof k !== 'string')) throw new TypeError('filter must be an array of param names');
      wire.filter = opts.filter;
    }
    if (opts.history !== undefined) wire.history = opts.history;
    if (opts.since !== undefined) wire.since = opts.since;
    return this.client._request([MSG.ATTACH, 0, className, stateId ?? null, wire], {
      onResult: (r) => this._addInstance(r, false, opts),
    });
  }

  /**
   * Observe the states of a class (or of every class):
   *   observe(callback), observe(className, callback), observe(className, callback, options)
   * callback(className, stateId, nodeId) runs for every existing state
   * (the promise resolves after these calls resolved) and then for every new one;
   * nodeId is the creator's client id (its session), -1 for a server-owned state,
   * as in soundworks.
   * options: { excludeLocal: false, onDelete(className, stateId, nodeId) }.
   * Resolves with an async `unobserve()` function.
   */
  async observe(...args) {
    let className = null, callback, options = {};
    if (typeof args[0] === 'function') { callback = args[0]; options = args[1] || {}; } else { [className, callback, options = {}] = args; }
    if (className !== null && typeof className !== 'string') throw new TypeError('className must be a string or null');
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    const observer = { className, callback, options, seen: new Set(), active: true, queue: Promise.resolve() };
    const key = className ?? '';
    const list = await this.client._request([MSG.OBSERVE, 0, className], {
      onResult: (r) => {
        // registered synchronously: a NOTICE in the same frame as the RESULT is not lost
        this._observed.set(key, (this._observed.get(key) || 0) + 1);
        this._observers.add(observer);
        for (const [, id] of (r && r.states) || []) observer.seen.add(id);
        return r;
      },
    });
    const states = (list && list.states) || [];
    // called for every existing state at once (so a collection's attaches go out
    // in one WebSocket message), then awaited all, as in soundworks
    const calls = [];
    for (const [cn, id, owner] of states) {
      if (!this._observerWants(observer, cn, owner)) continue;
      try { calls.push(Promise.resolve(callback(cn, id, nodeId(owner))).catch(reportError)); } catch (err) { reportError(err); }
    }
    await Promise.all(calls);
    const unobserve = async () => {
      if (!observer.active) return;
      observer.active = false;
      this._observers.delete(observer);
      const n = (this._observed.get(key) || 1) - 1;
      if (n > 0) { this._observed.set(key, n); return; }
      this._observed.delete(key);
      if (this.client.status === 'open') {
        try { await this.client._request([MSG.UNOBSERVE, 0, className]); } catch { /* connection gone: nothing to undo */ }
      }
    };
    return unobserve;
  }

  _observerWants(o, className, owner) {
    if (o.className !== null && o.className !== className) return false;
    if (o.options.excludeLocal && owner === this.client.session) return false;
    return true;
  }

  /**
   * A live collection of every state of a class (attached with `filter`).
   * options: { excludeLocal: false }.
   */
  async getCollection(className, filter = null, options = {}) {
    if (isPlainObject(filter)) { options = filter; filter = null; }
    const coll = new SharedStateCollection(this, className, filter, options);
    await coll._init();
    return coll;
  }

  // -- server-side logic: hooks (PROTOCOL.md §8a) ------------------------------
  // A hook runs in this client: the server sends each create, set or delete
  // of the class (HOOK_CALL) and waits for the answer (within its
  // --hook-timeout). Needs a role with the right (admin, or "hooks": true).

  /**
   * Run fn(initValues, info) before each state of the class is created.
   * Its result, as in soundworks: undefined goes on unchanged, null aborts
   * (create() rejects ABORTED), an object replaces the init values; a throw
   * aborts with its message. May be async. Returns the function that
   * unregisters it; its `.ready` promise settles when the server accepted
   * (or refused) the hook.
   */
  registerCreateHook(className, fn) { return this._registerHook('create', 'registerCreateHook', className, fn); }

  /**
   * Run fn(updates, currentValues, info) before each set of a state of the
   * class (scheduled sets when they are made). undefined: go on unchanged;
   * null: abort (set() rejects ABORTED); an object: go on with it instead
   * (keys changed, removed or added); a throw aborts with its message.
   */
  registerUpdateHook(className, fn) { return this._registerHook('update', 'registerUpdateHook', className, fn); }

  /**
   * Run fn(finalValues, info) when a state of the class is deleted. It
   * cannot prevent it; an explicit delete() waits for it.
   */
  registerDeleteHook(className, fn) { return this._registerHook('delete', 'registerDeleteHook', className, fn); }

  /**
   * Delete a class on the running server (admin role): its states are
   * deleted (attached clients get onDetach, owners onDelete), its hooks and
   * observes go. A schema file that declares it brings it back at restart.
   */
  async deleteClass(className) {
    if (typeof className !== 'string') throw new TypeError('className must be a string');
    await this.client._request([MSG.DELETE_CLASS, 0, className]);
  }

  /**
   * Delete a state through an instance attached to it, for a client that
   * does not own it but may delete it: an admin (the operator), or a role
   * the class's "delete" right names. (state.delete() is the owner's, as in
   * soundworks.) Everybody attached gets onDetach; the instance is gone.
   * @param {SharedState} state
   */
  async deleteState(state) {
    if (!(state instanceof SharedState)) throw new TypeError('deleteState(state): an attached SharedState');
    if (state._detached) throw new TuttiError(ErrorCode.DETACHED, `SharedState (${state.className}, ${state.id}) is detached`);
    await this.client._request([MSG.DELETE, 0, state.instanceId]);
    const rec = this._records.get(state.id);
    this._records.delete(state.id);
    if (rec) this._dropSchedules(rec);
    const instances = rec ? [...rec.instances] : [state];
    await Promise.all(instances.map((inst) => inst._gone('deleted')));
  }

  _registerHook(kind, op, className, fn) {
    if (typeof className !== 'string') throw new TypeError(`Cannot execute '${op}' on StateManager: argument 1 must be a class name`);
    if (typeof fn !== 'function') throw new TypeError(`Cannot execute '${op}' on StateManager: argument 2 must be a function`);
    const entry = { kind, className, fn, id: null, active: true, settled: false };
    entry.ready = new Promise((resolve, reject) => { entry.resolve = resolve; entry.reject = reject; });
    entry.ready.catch(() => {}); // told on the console below; awaiting .ready still throws
    this._hooks.add(entry);
    if (this.client.status === 'open') this._sendHook(entry);
    const unregister = () => {
      if (!entry.active) return;
      entry.active = false;
      this._hooks.delete(entry);
      if (entry.id === null) return;
      this._hookById.delete(entry.id);
      if (this.client.status === 'open') this.client._request([MSG.UNHOOK, 0, entry.id]).catch(() => { /* gone with the connection */ });
    };
    unregister.ready = entry.ready;
    return unregister;
  }

  _sendHook(entry) {
    this._hooksInFlight++;
    let counted = true;
    const landed = () => {
      if (!counted) return;
      counted = false;
      this._hooksInFlight--;
      this._flushEarlyCalls();
    };
    this.client._request([MSG.HOOK, 0, entry.className, entry.kind], {
      onResult: (r) => {
        const id = r && r.hook;
        if (!entry.active) {
          if (this.client.status === 'open') this.client._request([MSG.UNHOOK, 0, id]).catch(() => {});
        } else {
          entry.id = id;
          this._hookById.set(id, entry);
        }
        landed();
        return id;
      },
    }).finally(landed).then(() => {
      if (!entry.settled) { entry.settled = true; entry.resolve(); }
    }, (err) => {
      if (err.code < 0) return; // the connection went: registered again on the next
      // refused (FORBIDDEN, UNKNOWN_CLASS): the hook will never run
      entry.active = false;
      this._hooks.delete(entry);
      if (typeof console !== 'undefined') console.error(`[tutti] ${entry.kind} hook on class "${entry.className}" refused: ${err.message}`);
      if (!entry.settled) { entry.settled = true; entry.reject(err); }
    });
  }

  // A new connection (first, resumed or not): hooks belong to a connection
  // on the server, so every one is registered on it.
  _registerHooks() {
    for (const entry of this._hooks) if (entry.active && entry.id === null) this._sendHook(entry);
  }

  _connectionLost() {
    for (const entry of this._hooks) entry.id = null;
    this._hookById.clear();
    this._earlyCalls = []; // calls of the connection that went
  }

  // closed for good: no timer left, no hook
  _closed() {
    for (const rec of this._records.values()) this._dropSchedules(rec);
    for (const entry of this._hooks) if (!entry.settled) { entry.settled = true; entry.reject(new TuttiError(ErrorCode.CLOSED, 'client closed')); }
    this._hooks.clear();
    this._hookById.clear();
  }

  _onHookCall(m) {
    if (!this._hookById.has(m[2]) && this._hooksInFlight > 0) this._earlyCalls.push(m);
    else this._runHookCall(m);
  }

  // the early calls of hooks now known, or all once no HOOK is in flight
  _flushEarlyCalls() {
    const calls = this._earlyCalls;
    this._earlyCalls = [];
    for (const m of calls) this._onHookCall(m);
  }

  async _runHookCall([, callId, hookId, kind, className, stateId, values, current]) {
    const entry = this._hookById.get(hookId);
    const ws = this.client._ws;
    let reply = true; // a hook unregistered meanwhile: go on unchanged
    if (entry) {
      const info = { className, stateId: stateId || null, kind };
      try {
        const r = await (kind === 'update' ? entry.fn(values || {}, current || {}, info) : entry.fn(values || {}, info));
        if (r === undefined) reply = true;
        else if (r === null) reply = null;
        else if (isPlainObject(r)) reply = r;
        else reply = `the ${kind} hook returned ${describeValue(r)} (it may return an object, null to abort, or nothing)`;
      } catch (err) {
        reply = (err && err.message) || String(err) || `the ${kind} hook threw`;
      }
    }
    if (!callId || ws !== this.client._ws || !ws) return; // a delete told (no answer waited for), or the connection went
    let bytes;
    try { bytes = encode([MSG.HOOK_REPLY, callId, reply]); } catch (err) {
      bytes = encode([MSG.HOOK_REPLY, callId, `the ${kind} hook's result cannot be sent: ${err.message}`]);
    }
    if (bytes.byteLength > this.client.maxMessage) {
      bytes = encode([MSG.HOOK_REPLY, callId, `the ${kind} hook's result is larger than the server's message limit`]);
    }
    this.client._enqueueBytes(bytes);
  }

  // -- internals ---------------------------------------------------------------

  _addInstance(r, isOwner, opts) {
    const state = new SharedState(this, r, isOwner);
    if (opts && (opts.history !== undefined || opts.since !== undefined)) {
      state.history = r.history || [];
      state.historyComplete = r.historyComplete !== false;
    }
    let rec = this._records.get(r.state);
    if (!rec) { rec = { seq: r.seq, time: r.time, instances: new Set(), pending: new Map() }; this._records.set(r.state, rec); }
    if (r.seq >= rec.seq) { rec.seq = r.seq; rec.time = r.time; }
    rec.instances.add(state);
    for (const [schedId, at, changes] of r.scheduled || []) this._schedule(r.state, schedId, at, changes || {});
    return state;
  }

  // -- scheduled sets (PROTOCOL.md §6a) -------------------------------------
  // A schedule is applied locally at `at` on our estimate of the sync clock;
  // the server's UPDATE carrying its schedId then only brings the seq.

  _schedule(stateId, schedId, at, changes) {
    const rec = this._records.get(stateId);
    if (!rec) return;
    let entry = rec.pending.get(schedId);
    if (entry) { Object.assign(entry.changes, changes); return; }
    entry = { schedId, at, changes: Object.assign({}, changes), applied: false, cancel: null, update: null };
    rec.pending.set(schedId, entry);
    // at `at` on this client's clock, never before: timers wake early (Node
    // and browsers count whole milliseconds), callAt checks the clock on
    // wake-up and waits out the rest
    entry.cancel = callAt(at, () => this._applySchedule(stateId, entry), { syncTime: () => this.client.getSyncTime() });
    // advance notice: listeners only fire at `at`, too late to schedule audio
    // for `at` (audio output has latency); a page plans it now (planAt)
    this.client.emit('scheduled', { stateId, schedId, at, changes: Object.assign({}, changes), lead: at - this.client.getSyncTime() });
  }

  _applySchedule(stateId, entry) {
    const rec = this._records.get(stateId);
    if (!rec || entry.applied) return;
    entry.applied = true;
    if (entry.update) {
      // the server's UPDATE came first: its values, seq and time, now at `at`
      rec.pending.delete(entry.schedId);
      const { seq, time, changes } = entry.update;
      this._onUpdate(stateId, seq, time, changes, 'update', entry.schedId);
      return;
    }
    const ctx = { seq: rec.seq, time: entry.at, source: 'scheduled', schedId: entry.schedId };
    ctx.seq = this._scheduledSeq(rec, entry.changes); // the seq it gets, not the last one
    for (const inst of [...rec.instances]) inst._applyRemote(entry.changes, ctx, null, true);
    // if nothing changed at `at` the server sends no UPDATE: forget the entry after a while
    const forget = setTimeout(() => rec.pending.delete(entry.schedId), 60000);
    if (typeof forget === 'object' && forget.unref) forget.unref(); // Node: bookkeeping keeps no process alive
    entry.cancel = () => clearTimeout(forget);
  }

  // The seq a schedule applied here at `at` gets from the server, which
  // sends it only after `at`: one more than the last seq known here,
  // counting the schedules applied here whose UPDATE is still on its way
  // (an update that reached the server just before `at` and us not yet
  // would make it one more: the UPDATE then corrects state.seq).
  _scheduledSeq(rec, changes) {
    const seq = Math.max(rec.seq, rec.scheduledSeq || 0) + 1;
    const changesSomething = [...rec.instances].some((inst) => Object.keys(changes).some((k) => {
      const p = inst._description[k];
      return p && (!inst.filter || inst.filter.includes(k)) && (p.event || p.filterChange === false || !deepEqual(inst._values[k], changes[k]));
    }));
    if (changesSomething) rec.scheduledSeq = seq; // the server does not count a schedule that changes nothing
    return seq;
  }

  _onScheduledUpdate(stateId, seq, time, changes, schedId) {
    const rec = this._records.get(stateId);
    if (!rec) return;
    const entry = rec.pending.get(schedId);
    if (entry && !entry.applied && this.client.getSyncTime() < entry.at) {
      // the server applied it at `at` on its clock, and our estimate of that
      // clock is a little behind (less than the one-way delay): hold the
      // UPDATE until `at` on our clock, so listeners never fire early
      entry.update = { seq, time, changes };
      return;
    }
    if (entry) { entry.cancel(); rec.pending.delete(schedId); }
    if (!entry || !entry.applied) { this._onUpdate(stateId, seq, time, changes, 'update', schedId); return; }
    // applied already: take seq and the authoritative values, no listener
    if (seq <= rec.seq) return;
    rec.seq = seq; rec.time = time;
    for (const inst of [...rec.instances]) inst._takeSilently(changes, seq, time);
  }

  /** A class has a new description (PROTOCOL.md §4a): every state of it here takes it; the
   * values of params it no longer has go; new params' values come with the UPDATE after. */
  _classChanged(className, description) {
    for (const rec of this._records.values()) {
      for (const inst of rec.instances) {
        if (inst.className !== className) continue;
        inst._description = expandDescription(description);
        for (const k of Object.keys(inst._values)) if (!(k in inst._description)) delete inst._values[k];
        for (const k of inst._visibleParams()) if (!(k in inst._values)) inst._values[k] = inst._description[k].default ?? null;
      }
    }
    this.client.emit('classchanged', { className, description });
  }

  _cancelled(stateId, schedId) {
    const rec = this._records.get(stateId);
    const entry = rec && rec.pending.get(schedId);
    if (!entry) return;
    if (entry.cancel) entry.cancel(); // its timer: a cancelled set must not fire here at `at`
    rec.pending.delete(schedId);
    if (!entry.applied) this.client.emit('cancelled', { stateId, schedId });
  }

  _dropSchedules(rec) {
    for (const e of rec.pending.values()) if (e.cancel) e.cancel();
    rec.pending.clear();
  }

  _removeInstance(state) {
    const rec = this._records.get(state.id);
    if (!rec) return;
    rec.instances.delete(state);
    if (rec.instances.size === 0) { this._records.delete(state.id); this._dropSchedules(rec); }
  }

  _onUpdate(stateId, seq, time, changes, source, schedId) {
    const rec = this._records.get(stateId);
    if (!rec) return;
    if (seq <= rec.seq && source !== 'set') return; // already seen (resume replay)
    rec.seq = Math.max(rec.seq, seq); rec.time = time;
    const ctx = { seq, time, source };
    if (schedId !== undefined) ctx.schedId = schedId;
    for (const inst of [...rec.instances]) inst._applyRemote(changes, ctx);
  }

  _onSnapshot(stateId, seq, time, values) {
    const rec = this._records.get(stateId);
    if (!rec) return;
    rec.seq = seq; rec.time = time;
    const ctx = { seq, time, source: 'snapshot' };
    for (const inst of [...rec.instances]) inst._applySnapshot(values, ctx);
  }

  _onDeleted(stateId, reason) {
    const rec = this._records.get(stateId);
    if (!rec) return;
    this._records.delete(stateId);
    this._dropSchedules(rec);
    for (const inst of [...rec.instances]) inst._gone(reason || 'deleted');
  }

  _onNotice(kind, className, stateId, owner) {
    for (const o of [...this._observers]) {
      if (!o.active || !this._observerWants(o, className, owner)) continue;
      if (kind === 'create') {
        if (o.seen.has(stateId)) continue;
        o.seen.add(stateId);
        // run the callbacks of one observer one after the other
        o.queue = o.queue.then(() => o.active && o.callback(className, stateId, nodeId(owner))).catch(reportError);
      } else if (kind === 'delete') {
        o.seen.delete(stateId);
        if (o.options.onDelete) {
          o.queue = o.queue.then(() => o.active && o.options.onDelete(className, stateId, nodeId(owner))).catch(reportError);
        }
      }
    }
  }

  // The connection came back with a new session: every instance is gone on the
  // server. Fire detach/delete on them; observers are re-established (their
  // callbacks then run for the states that exist now).
  _sessionLost() {
    const records = [...this._records.values()];
    this._records.clear();
    for (const rec of records) this._dropSchedules(rec);
    for (const rec of records) for (const inst of [...rec.instances]) inst._gone('session lost');
    const keys = [...this._observed.keys()];
    for (const o of this._observers) o.seen.clear();
    for (const key of keys) {
      const className = key === '' ? null : key;
      this.client._request([MSG.OBSERVE, 0, className]).then((list) => {
        for (const [cn, id, owner] of (list && list.states) || []) this._onNotice('create', cn, id, owner);
      }, () => { /* dropped again: the next session will retry */ });
    }
  }
}

// ---------------------------------------------------------------------------
// SharedState

/**
 * One attachment (instance) to a shared state.
 *
 * Listeners of onUpdate get (newValues, oldValues, context) where context is
 * { seq, time, source }: `seq` the state's sequence number after the update,
 * `time` the server's sync time at which it was applied (seconds; compare with
 * client.getSyncTime()), and `source` one of
 *   'update' (pushed by the server: another client's set),
 *   'set' (the reply to this client's own set),
 *   'immediate' / 'local' (applied synchronously inside set(), before the server),
 *   'snapshot' (resume after missed updates left the history),
 *   'initial' (onUpdate(cb, true)).
 */
export class SharedState {
  constructor(manager, r, isOwner) {
    this._manager = manager;
    this._client = manager.client;
    /** state id (never reused by the server) */
    this.id = r.state;
    /** instance id of this attachment */
    this.instanceId = r.instance;
    this.className = r.class;
    /** true for the instance returned by create() */
    this.isOwner = isOwner;
    /** session id of the owner (0: the server) */
    this.ownerSession = r.owner;
    /** attach filter (null: every param) */
    this.filter = r.filter ?? null;
    /** sequence number of the last update seen */
    this.seq = r.seq;
    /** server time of the last update seen (or of the attach) */
    this.time = r.time;
    /** with attach({history}) or attach({since}): the events, oldest first */
    this.history = null;
    this.historyComplete = null;
    this._description = expandDescription(r.description || {});
    this._values = Object.assign({}, r.values || {});
    for (const name of this._visibleParams()) if (!(name in this._values)) this._values[name] = this._description[name].default ?? null;
    // the values the state was created with (the server keeps them); as in
    // soundworks, a `required` param's default is its init value, and each
    // param's description carries its `initValue`
    this._initValues = {};
    for (const name of this._visibleParams()) {
      const p = this._description[name];
      const v = r.initValues && name in r.initValues ? r.initValues[name] : (p.default ?? null);
      this._initValues[name] = v;
      if (p.required) p.default = v;
      p.initValue = v;
    }
    this._updateListeners = new Set();
    this._detachListeners = new Set();
    this._deleteListeners = new Set();
    this._detached = false;
  }

  /** True once detached or deleted. */
  get detached() { return this._detached; }

  _visibleParams() {
    const all = Object.keys(this._description);
    return this.filter ? all.filter((k) => this.filter.includes(k)) : all;
  }

  _checkParam(op, name) {
    if (!Object.prototype.hasOwnProperty.call(this._description, name)) {
      throw new ReferenceError(`Cannot execute '${op}' on SharedState (${this.className}): param "${name}" is not defined`);
    }
    if (this.filter && !this.filter.includes(name)) {
      throw new TuttiError(ErrorCode.FILTERED, `Cannot execute '${op}' on SharedState (${this.className}): param "${name}" is not in the attach filter`);
    }
  }

  /** Value of a param (a deep copy for `any`). */
  get(name) {
    this._checkParam('get', name);
    const v = this._values[name];
    return this._description[name].type === 'any' ? clone(v) : v;
  }

  /** Value of a param, by reference (do not mutate). */
  getUnsafe(name) {
    this._checkParam('getUnsafe', name);
    return this._values[name];
  }

  /** Every visible value (deep copies); event params are null outside listeners. */
  getValues() {
    const out = {};
    for (const k of this._visibleParams()) out[k] = clone(this._values[k]);
    return out;
  }

  /** Every visible value, by reference. */
  getValuesUnsafe() {
    const out = {};
    for (const k of this._visibleParams()) out[k] = this._values[k];
    return out;
  }

  /** The expanded class description, or one param's. */
  getDescription(name) {
    if (name === undefined) return clone(this._description);
    if (!Object.prototype.hasOwnProperty.call(this._description, name)) {
      throw new ReferenceError(`Cannot execute 'getDescription' on SharedState (${this.className}): param "${name}" is not defined`);
    }
    return clone(this._description[name]);
  }

  /** The default value of every param (a `required` param's: the value given at creation). */
  getDefaults() {
    const out = {};
    for (const [k, p] of Object.entries(this._description)) out[k] = clone(p.default ?? null);
    return out;
  }

  /** The values the state was created with: those given to create(), the defaults for the rest. */
  getInitValues() {
    const out = {};
    for (const k of this._visibleParams()) out[k] = clone(this._initValues[k]);
    return out;
  }

  /**
   * Set values: set({ name: value, ... }) or set(name, value).
   * set(updates, { at }) schedules the set at sync time `at` (PROTOCOL.md
   * §6a): it resolves once the server accepted it, and listeners fire at
   * `at` (context.source 'scheduled') on every client, this one included.
   * Resolves (after the server applied it) with the keys the server reported
   * as changed, plus the requested keys that did not change (their current
   * value) and the local/immediate ones. Rejects with a TuttiError carrying
   * the server's `code` and message when the server refuses the set (nothing
   * was applied), or at once when local validation fails.
   */
  async set(updates, value) {
    let at = null;
    if (typeof updates === 'string') updates = { [updates]: value };
    else if (value !== undefined) {
      if (isPlainObject(value) && Object.keys(value).length === 1 && typeof value.at === 'number' && Number.isFinite(value.at)) {
        at = value.at; // tutti: a scheduled set (PROTOCOL.md §6a)
      } else {
        throw new TypeError(`Cannot execute 'set' on SharedState (${this.className}): the second argument of set(updates, options) may only be { at: syncTime } (the soundworks context argument does not exist); use an event param`);
      }
    }
    if (!isPlainObject(updates)) throw new TypeError(`Cannot execute 'set' on SharedState (${this.className}): 'updates' should be an object`);
    if (this._detached) throw new TuttiError(ErrorCode.DETACHED, `Cannot execute 'set' on SharedState (${this.className}, ${this.id}): instance is detached`);

    const validate = this._client.options.validate;
    const wire = {};
    const localNew = {}, localOld = {};
    const immediateKeys = new Set(); // applied here already (immediate or acknowledge:false)
    const unackKeys = new Set(); // acknowledge: false
    let hasLocal = false, hasAcked = false;
    const reverts = {};
    const coerced = {};
    for (const name of Object.keys(updates)) {
      const p = this._description[name];
      if (validate || (p && p.local)) {
        if (!p) throw new TuttiError(ErrorCode.UNKNOWN_PARAM, `class "${this.className}": "${name}" is not a param`);
        if (this.filter && !this.filter.includes(name)) throw new TuttiError(ErrorCode.FILTERED, `class "${this.className}", param "${name}" is not in the attach filter`);
        coerced[name] = coerce(this.className, name, p, updates[name]);
      } else {
        coerced[name] = updates[name] === undefined ? null : updates[name];
      }
    }
    for (const name of Object.keys(coerced)) {
      const p = this._description[name] || {};
      const v = coerced[name];
      if (p.local) {
        hasLocal = true;
        const changed = !deepEqual(this._values[name], v);
        if (changed || p.filterChange === false || p.event) { localOld[name] = this._values[name]; localNew[name] = v; }
        this._values[name] = v;
        continue;
      }
      wire[name] = v;
      if (at !== null) {
        hasAcked = true; // scheduled: everything (immediate and acknowledge:false too) happens at `at`
      } else if (p.immediate || p.acknowledge === false) {
        immediateKeys.add(name);
        if (p.acknowledge === false) unackKeys.add(name);
        else hasAcked = true;
        const changed = !deepEqual(this._values[name], v);
        if (changed || p.filterChange === false || p.event) { localOld[name] = this._values[name]; localNew[name] = v; }
        reverts[name] = { old: this._values[name], now: v };
        this._values[name] = v;
      } else {
        hasAcked = true;
      }
    }
    // immediate, local and acknowledge:false keys: listeners run synchronously, once
    if (Object.keys(localNew).length > 0) {
      this._fire(localNew, localOld, { seq: this.seq, time: this.time, source: hasLocal && immediateKeys.size === 0 ? 'local' : 'immediate' });
    }
    // as in soundworks, local and acknowledge:false keys are in the result
    // with their value now, changed or not (the server never echoes them)
    const result = {};
    for (const name of Object.keys(coerced)) {
      const p = this._description[name] || {};
      if (p.local || (at === null && p.acknowledge === false)) result[name] = this._values[name];
    }
    if (Object.keys(wire).length === 0) return result; // local keys only

    const msg = at === null ? [MSG.SET, 0, this.instanceId, wire] : [MSG.SET, 0, this.instanceId, wire, { at }];
    const sent = this._client._request(msg, {
      onResult: (r) => {
        if (r && r.scheduled !== undefined && r.scheduled !== null) {
          // accepted for later: applied here at `at`, like on every other
          // client, with the changes as the server validated them (coerced,
          // and as its hooks made them)
          const changes = isPlainObject(r.changes) ? r.changes : wire;
          this._manager._schedule(this.id, r.scheduled, r.at ?? at, changes);
          // the id to cancel it with, out of the way of the values
          return Object.defineProperty(Object.assign(result, changes), 'schedId', { value: r.scheduled, enumerable: false });
        }
        const changes = (r && r.changes) || {};
        const before = {};
        for (const k of immediateKeys) before[k] = this._values[k];
        const waits = this._manager._applySetResult(this, r.seq, r.time, changes, immediateKeys, unackKeys);
        // soundworks' result: the changes the server applied (hooks' added
        // keys included; an immediate key only where the server's value
        // differs from the one applied here), or, when nothing changed, the
        // requested values as coerced; then the local keys
        const out = {};
        const applied = Object.keys(changes).filter((k) => !unackKeys.has(k));
        if (applied.length > 0) {
          for (const k of applied) {
            const p = this._description[k] || {};
            if (immediateKeys.has(k) && (p.event || deepEqual(before[k], changes[k]))) continue;
            out[k] = changes[k];
          }
        } else {
          for (const k of Object.keys(wire)) if (!immediateKeys.has(k)) out[k] = wire[k];
        }
        Object.assign(out, result);
        // and after the requester's own listeners resolved, async ones too
        return waits.length ? Promise.all(waits).then(() => out) : out;
      },
    });
    if (!hasAcked) {
      // only acknowledge:false keys: resolve once sent, errors are only logged
      sent.catch((err) => { if (typeof console !== 'undefined') console.warn('[tutti] unacknowledged set failed:', err.message); });
      return result;
    }
    try {
      return await sent;
    } catch (err) {
      // the server refused the set: undo what immediate applied locally
      const newV = {}, oldV = {};
      for (const [k, { old, now: v }] of Object.entries(reverts)) {
        if (!this._detached && deepEqual(this._values[k], v) && !deepEqual(old, v)) {
          newV[k] = old; oldV[k] = v; this._values[k] = old;
        }
      }
      if (Object.keys(newV).length) this._fire(newV, oldV, { seq: this.seq, time: this.time, source: 'revert' });
      throw err;
    }
  }

  /**
   * Listen to updates: cb(newValues, oldValues, context). With
   * executeListener, cb runs at once with the current values (events left
   * out), {} and context.source 'initial'. Returns an unsubscribe function.
   */
  onUpdate(callback, executeListener = false) {
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    this._updateListeners.add(callback);
    if (executeListener) {
      const values = {};
      for (const k of this._visibleParams()) if (!this._description[k].event) values[k] = clone(this._values[k]);
      try { callback(values, {}, { seq: this.seq, time: this.time, source: 'initial' }); } catch (err) { reportError(err); }
    }
    return () => this._updateListeners.delete(callback);
  }

  /** cb(reason) when this instance is detached, or its state deleted. Returns an unsubscribe function. */
  onDetach(callback) {
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    this._detachListeners.add(callback);
    return () => this._detachListeners.delete(callback);
  }

  /** Owner only: cb(reason) when the state is deleted. Returns an unsubscribe function. */
  onDelete(callback) {
    if (!this.isOwner) {
      throw new Error(`Cannot execute 'onDelete' on SharedState (${this.className}): this instance is attached and not owned; use 'onDetach' instead`);
    }
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    this._deleteListeners.add(callback);
    return () => this._deleteListeners.delete(callback);
  }

  /** Detach this instance (the owner's detach deletes the state, as in soundworks). */
  async detach() {
    if (this.isOwner) return this.delete();
    if (this._detached) throw new TuttiError(ErrorCode.DETACHED, `SharedState (${this.className}, ${this.id}) already detached`);
    this._detached = true;
    this._updateListeners.clear();
    this._manager._removeInstance(this);
    try {
      await this._client._request([MSG.DETACH, 0, this.instanceId]);
    } catch (err) {
      // the instance is gone locally either way; the server dropped it if the connection went
      if (err.code !== ErrorCode.DISCONNECTED && err.code !== ErrorCode.CLOSED && err.code !== ErrorCode.UNKNOWN_INSTANCE) throw err;
    } finally {
      await this._runCallbacks(this._detachListeners, 'detached');
    }
    return this;
  }

  /** Owner only: delete the state for everybody. */
  async delete() {
    if (!this.isOwner) throw new Error(`Cannot execute 'delete' on SharedState (${this.className}): this instance is attached and not owned; use 'detach' instead`);
    if (this._detached) throw new TuttiError(ErrorCode.DETACHED, `SharedState (${this.className}, ${this.id}) already deleted`);
    await this._client._request([MSG.DELETE, 0, this.instanceId]);
    const rec = this._manager._records.get(this.id);
    this._manager._records.delete(this.id);
    if (rec) this._manager._dropSchedules(rec);
    const instances = rec ? [...rec.instances] : [this];
    await Promise.all(instances.map((inst) => inst._gone('deleted')));
    return this;
  }

  /** The state's events: opts { last: N } or { since: seq }. Resolves { events, complete }. */
  async getHistory(opts = {}) {
    if (this._detached) throw new TuttiError(ErrorCode.DETACHED, `SharedState (${this.className}, ${this.id}) is detached`);
    return this._client._request([MSG.HISTORY, 0, this.instanceId, opts]);
  }

  /**
   * Cancel a pending scheduled set of this state (its writer, the state's
   * owner or an admin may): it will not be applied, here or anywhere.
   * @param {number} schedId the id a scheduled set() resolved with, or of the 'scheduled' event
   */
  async cancel(schedId) {
    if (this._detached) throw new TuttiError(ErrorCode.DETACHED, `SharedState (${this.className}, ${this.id}) is detached`);
    await this._client._request([MSG.CANCEL, 0, this.instanceId, schedId]);
    this._manager._cancelled(this.id, schedId);
  }

  // -- internals ----------------------------------------------------------

  // Call the update listeners; returns the promises of the async ones
  // (settled: a listener's error is reported, not thrown).
  _fire(newValues, oldValues, ctx) {
    const waits = [];
    for (const cb of [...this._updateListeners]) {
      try {
        const r = cb(newValues, oldValues, ctx);
        if (r && typeof r.then === 'function') waits.push(Promise.resolve(r).catch(reportError));
      } catch (err) { reportError(err); }
    }
    return waits;
  }

  // apply changes from the server; returns the promises of async listeners
  _applyRemote(changes, ctx, skip, diff = false) {
    if (this._detached) return [];
    this.seq = ctx.seq; this.time = ctx.time;
    const newV = {}, oldV = {};
    const events = [];
    for (const k of Object.keys(changes)) {
      const p = this._description[k];
      if (!p || (this.filter && !this.filter.includes(k))) continue;
      if (skip && skip(k, p, changes[k])) continue;
      if (diff && !p.event && p.filterChange !== false && deepEqual(this._values[k], changes[k])) continue;
      newV[k] = changes[k];
      oldV[k] = this._values[k];
      this._values[k] = changes[k];
      if (p.event) events.push(k);
    }
    if (Object.keys(newV).length === 0) return [];
    const waits = this._fire(newV, oldV, ctx);
    for (const k of events) this._values[k] = null; // events are volatile
    return waits;
  }

  _takeSilently(changes, seq, time) {
    if (this._detached) return;
    this.seq = seq; this.time = time;
    for (const k of Object.keys(changes)) {
      const p = this._description[k];
      if (!p || (this.filter && !this.filter.includes(k))) continue;
      this._values[k] = p.event ? null : changes[k];
    }
  }

  _applySnapshot(values, ctx) {
    if (this._detached) return;
    this.seq = ctx.seq; this.time = ctx.time;
    const newV = {}, oldV = {};
    for (const k of this._visibleParams()) {
      if (!(k in values)) continue;
      if (!deepEqual(this._values[k], values[k])) { newV[k] = values[k]; oldV[k] = this._values[k]; this._values[k] = values[k]; }
    }
    if (Object.keys(newV).length) this._fire(newV, oldV, ctx);
  }

  async _gone(reason) {
    if (this._detached) return;
    this._detached = true;
    this._updateListeners.clear();
    await this._runCallbacks(this._detachListeners, reason);
    if (this.isOwner) await this._runCallbacks(this._deleteListeners, reason);
  }

  async _runCallbacks(set, reason) {
    for (const cb of [...set]) {
      try { await cb(reason); } catch (err) { reportError(err); }
    }
  }
}

// Returns the promises of the requester's async listeners (set() waits for them).
StateManager.prototype._applySetResult = function (requester, seq, time, changes, immediateKeys, unackKeys) {
  const rec = this._records.get(requester.id);
  if (!rec) return [];
  let waits = [];
  if (seq > rec.seq) { rec.seq = seq; rec.time = time; }
  const ctx = { seq, time, source: 'set' };
  for (const inst of [...rec.instances]) {
    if (inst === requester) {
      waits = inst._applyRemote(changes, ctx, (k, p, v) => {
        if (unackKeys.has(k)) return true;
        if (immediateKeys.has(k)) {
          // immediate: fire again only if the server's value differs
          if (p.event || p.filterChange === false) return true;
          return deepEqual(inst._values[k], v);
        }
        return false;
      });
      inst.seq = Math.max(inst.seq, seq);
    } else {
      inst._applyRemote(changes, ctx);
    }
  }
  return waits;
};

// ---------------------------------------------------------------------------
// SharedStateCollection

/** A live list of every state of a class, as in soundworks. */
export class SharedStateCollection {
  constructor(manager, className, filter, options) {
    this._manager = manager;
    this.className = className;
    this._filter = filter;
    this._options = options || {};
    this._states = [];
    this._description = null;
    this._unobserve = null;
    this._listeners = { update: new Set(), attach: new Set(), detach: new Set(), change: new Set() };
    this._detached = false;
  }

  async _init() {
    this._description = await this._manager.getClassDescription(this.className);
    // a filter naming an unknown param fails here, as in soundworks, even
    // when the class has no state yet (the server would say so per attach)
    if (this._filter !== null && this._filter !== undefined) {
      if (!Array.isArray(this._filter) || this._filter.some((k) => typeof k !== 'string')) {
        throw new TypeError(`Cannot execute 'getCollection' on StateManager: filter must be an array of param names or null`);
      }
      const unknown = this._filter.filter((k) => !Object.prototype.hasOwnProperty.call(this._description, k));
      if (unknown.length) {
        throw new TuttiError(ErrorCode.BAD_FILTER, `class "${this.className}": filter names unknown param${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
      }
    }
    this._unobserve = await this._manager.observe(this.className, async (className, stateId) => {
      if (this._detached) return;
      let state;
      try {
        state = await this._manager.attach(className, stateId, this._filter);
      } catch (err) {
        if (err.code === ErrorCode.UNKNOWN_STATE || err.code === ErrorCode.DISCONNECTED) return; // gone meanwhile
        throw err;
      }
      if (this._detached) { state.detach().catch(() => {}); return; }
      this._add(state);
    }, { excludeLocal: !!this._options.excludeLocal });
  }

  _add(state) {
    this._states.push(state);
    state.onUpdate((newValues, oldValues, ctx) => {
      for (const cb of [...this._listeners.update]) {
        try { cb(state, newValues, oldValues, ctx); } catch (err) { reportError(err); }
      }
      this._emitChange();
    });
    state.onDetach(() => {
      const i = this._states.indexOf(state);
      if (i >= 0) this._states.splice(i, 1);
      for (const cb of [...this._listeners.detach]) {
        try { cb(state); } catch (err) { reportError(err); }
      }
      this._emitChange();
    });
    for (const cb of [...this._listeners.attach]) {
      try { cb(state); } catch (err) { reportError(err); }
    }
    this._emitChange();
  }

  _emitChange() {
    for (const cb of [...this._listeners.change]) {
      try { cb(); } catch (err) { reportError(err); }
    }
  }

  get size() { return this._states.length; }
  get length() { return this._states.length; }

  getDescription(name) {
    if (name === undefined) return clone(this._description);
    if (!this._description[name]) throw new ReferenceError(`param "${name}" is not defined in class "${this.className}"`);
    return clone(this._description[name]);
  }

  getDefaults() {
    const out = {};
    for (const [k, p] of Object.entries(this._description)) out[k] = clone(p.default ?? null);
    return out;
  }

  getValues() { return this._states.map((s) => s.getValues()); }
  getValuesUnsafe() { return this._states.map((s) => s.getValuesUnsafe()); }
  get(name) { return this._states.map((s) => s.get(name)); }
  getUnsafe(name) { return this._states.map((s) => s.getUnsafe(name)); }

  /** Set on every state; resolves with the array of results. */
  set(updates, value) { return Promise.all(this._states.map((s) => s.set(updates, value))); }

  onUpdate(cb, executeListener = false) {
    this._listeners.update.add(cb);
    if (executeListener) {
      for (const s of this._states) {
        const values = {};
        for (const [k, v] of Object.entries(s.getValues())) if (!s._description[k].event) values[k] = v;
        try { cb(s, values, {}, { seq: s.seq, time: s.time, source: 'initial' }); } catch (err) { reportError(err); }
      }
    }
    return () => this._listeners.update.delete(cb);
  }

  onAttach(cb, executeListener = false) {
    this._listeners.attach.add(cb);
    if (executeListener) for (const s of [...this._states]) { try { cb(s); } catch (err) { reportError(err); } }
    return () => this._listeners.attach.delete(cb);
  }

  onDetach(cb) {
    this._listeners.detach.add(cb);
    return () => this._listeners.detach.delete(cb);
  }

  onChange(cb, executeListener = false) {
    this._listeners.change.add(cb);
    if (executeListener) { try { cb(); } catch (err) { reportError(err); } }
    return () => this._listeners.change.delete(cb);
  }

  /** Stop observing and detach every state. */
  async detach() {
    if (this._detached) return;
    this._detached = true;
    if (this._unobserve) await this._unobserve();
    const states = [...this._states];
    await Promise.all(states.map((s) => (s.detached ? null : s.detach().catch(() => {}))));
    this._states = [];
  }

  [Symbol.iterator]() { return this._states[Symbol.iterator](); }
  forEach(fn) { this._states.forEach(fn); }
  map(fn) { return this._states.map(fn); }
  filter(fn) { return this._states.filter(fn); }
  find(fn) { return this._states.find(fn); }
  reduce(fn, init) { return this._states.reduce(fn, init); }
  sort(fn) { this._states.sort(fn); return this; }
}

/**
 * The audio output latency of a running AudioContext, in seconds, where the
 * browser reports it: the time from scheduling a sound at its currentTime to
 * the speaker playing it. outputLatency + baseLatency where outputLatency is
 * reported (Chrome, Firefox); else measured from getOutputTimestamp() (the
 * context time the speaker plays now, against currentTime); else null (an
 * older Safari, a suspended context): then assume one (phones: 0.1 s is a
 * fair guess; Bluetooth 0.2-0.3 s). Read it again now and then: it changes
 * when headphones or a Bluetooth speaker are connected.
 * @param {AudioContext} ctx
 * @returns {number|null}
 */
export function audioOutputLatency(ctx) {
  if (!ctx || ctx.state !== 'running') return null;
  const base = Number.isFinite(ctx.baseLatency) && ctx.baseLatency > 0 ? ctx.baseLatency : 0;
  if (Number.isFinite(ctx.outputLatency) && ctx.outputLatency > 0) return ctx.outputLatency + base;
  if (typeof ctx.getOutputTimestamp === 'function' && typeof performance !== 'undefined') {
    const ts = ctx.getOutputTimestamp();
    if (ts && ts.performanceTime > 0 && ts.contextTime > 0) {
      const playingNow = ts.contextTime + (performance.now() - ts.performanceTime) / 1000;
      const latency = ctx.currentTime - playingNow;
      if (latency > 0 && latency < 2) return latency;
    }
  }
  return null;
}

export default Client;
