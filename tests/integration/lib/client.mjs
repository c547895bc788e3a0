// A raw protocol client for the integration tests: WebSocket + msgpack, no
// library logic. It records everything the server sends, in arrival order.

import WebSocket from 'ws';
import { decodeMulti } from '@msgpack/msgpack';
import assert from 'node:assert/strict';
import { encode, encodeMany } from './mp.mjs';

export const T = {
  HELLO: 1, DEFINE: 2, CREATE: 3, ATTACH: 4, DETACH: 5, DELETE: 6, SET: 7,
  OBSERVE: 8, UNOBSERVE: 9, HISTORY: 10, DESCRIBE: 11, PING: 12,
  RESULT: 64, ERROR: 65, UPDATE: 66, DELETED: 67, NOTICE: 68, PONG: 69, SNAPSHOT: 70,
};

export const E = {
  BAD_MESSAGE: 1, UNKNOWN_TYPE: 2, NOT_READY: 3, BAD_VERSION: 4, BAD_REQUEST: 5,
  UNKNOWN_CLASS: 10, CLASS_EXISTS: 11, BAD_DESCRIPTION: 12,
  UNKNOWN_STATE: 20, UNKNOWN_INSTANCE: 21, NOT_OWNER: 22,
  UNKNOWN_PARAM: 30, BAD_VALUE: 31, NOT_NULLABLE: 32, REQUIRED: 33, LOCAL_PARAM: 34, FILTERED: 35, BAD_FILTER: 36,
  LIMIT: 40, RATE_LIMIT: 41, INTERNAL: 60, STORAGE: 61,
};
export const ERROR_NAMES = Object.fromEntries(Object.entries(E).map(([k, v]) => [v, k]));

export const DEFAULT_TIMEOUT = Number(process.env.TUTTI_IT_TIMEOUT ?? 5000);

const REPLY_TYPES = new Set([T.RESULT, T.ERROR]);

export class ProtocolError extends Error {
  constructor(reply, what) {
    super(`${what}: ERROR ${ERROR_NAMES[reply[2]] ?? reply[2]} (${reply[2]}): ${reply[3]}`);
    this.code = reply[2];
    this.serverMessage = reply[3];
    this.reply = reply;
  }
}

export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.nextReqId = 1;
    this.log = [];           // every message received, in order: {msg, at, frame}
    this.replies = [];       // RESULT/ERROR messages not yet consumed
    this.pushes = [];        // pushes (66..70) not yet consumed
    this.textFrames = [];    // text frames received (the server must never send one)
    this.decodeErrors = [];
    this.frames = 0;
    this.waiters = new Set();
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this._wake();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (err) => { this.lastError = err; });
    ws.on('message', (data, isBinary) => {
      const frame = this.frames++;
      if (!isBinary) { this.textFrames.push(data.toString()); return; }
      try {
        for (const msg of decodeMulti(data)) {
          const entry = { msg, at: Date.now(), frame };
          this.log.push(entry);
          if (Array.isArray(msg) && REPLY_TYPES.has(msg[0])) this.replies.push(msg);
          else this.pushes.push(msg);
        }
      } catch (err) {
        this.decodeErrors.push(err);
      }
      this._wake();
    });
  }

  static connect(url, { protocols = ['tutti.v1'], timeout = DEFAULT_TIMEOUT, wsOptions = {} } = {}) {
    return new Promise((resolve, reject) => {
      const ws = protocols === null ? new WebSocket(url, wsOptions) : new WebSocket(url, protocols, wsOptions);
      ws.binaryType = 'nodebuffer';
      const client = new RawClient(ws);
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`connect ${url}: timeout`)); }, timeout);
      ws.once('open', () => { clearTimeout(timer); resolve(client); });
      ws.once('error', (err) => { clearTimeout(timer); reject(err); });
      ws.once('unexpected-response', (req, res) => {
        clearTimeout(timer);
        const e = new Error(`connect ${url}: unexpected HTTP ${res.statusCode}`);
        e.statusCode = res.statusCode;
        res.resume();
        ws.terminate();
        reject(e);
      });
    });
  }

  /** Connect and HELLO; resolves the client, with `welcome` set. */
  static async open(url, helloOpts = { version: 1 }) {
    const c = await RawClient.connect(url);
    c.welcome = await c.hello(helloOpts);
    return c;
  }

  _wake() { for (const w of [...this.waiters]) w(); }

  /** Wait until `check()` returns a non-undefined value; bounded. */
  waitFor(check, { timeout = DEFAULT_TIMEOUT, what = 'condition' } = {}) {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        let v;
        try { v = check(); } catch (err) { cleanup(); reject(err); return true; }
        if (v !== undefined) { cleanup(); resolve(v); return true; }
        if (this.closeInfo) {
          cleanup();
          reject(new Error(`waiting for ${what}: connection closed (${this.closeInfo.code} ${this.closeInfo.reason})`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`waiting for ${what}: timeout after ${timeout} ms; unconsumed pushes: ${short(this.pushes)}; replies: ${short(this.replies)}`)); }, timeout);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(attempt); };
      if (!attempt()) this.waiters.add(attempt);
    });
  }

  send(msg) { this.ws.send(encode(msg), { binary: true }); }
  sendMany(msgs) { this.ws.send(encodeMany(msgs), { binary: true }); }
  sendRaw(bytes, { binary = true } = {}) { this.ws.send(bytes, { binary }); }

  /** Send a request and resolve its reply message (RESULT or ERROR), as an array. */
  async request(type, ...fields) {
    const reqId = this.nextReqId++;
    this.send([type, reqId, ...fields]);
    return this.waitReply(reqId, { what: `reply to request type ${type} reqId ${reqId}` });
  }

  waitReply(reqId, { timeout = DEFAULT_TIMEOUT, what = `reply ${reqId}` } = {}) {
    return this.waitFor(() => {
      const i = this.replies.findIndex((m) => m[1] === reqId);
      if (i < 0) return undefined;
      return this.replies.splice(i, 1)[0];
    }, { timeout, what });
  }

  /** Number of replies ever received for a reqId (checks "exactly one reply"). */
  replyCount(reqId) {
    return this.log.filter((e) => Array.isArray(e.msg) && REPLY_TYPES.has(e.msg[0]) && e.msg[1] === reqId).length;
  }

  /** Request expected to succeed: resolves the result, throws ProtocolError otherwise. */
  async call(type, ...fields) {
    const reply = await this.request(type, ...fields);
    if (reply[0] === T.ERROR) throw new ProtocolError(reply, `request type ${type}`);
    assert.equal(reply[0], T.RESULT, `unexpected reply ${JSON.stringify(reply)}`);
    return reply[2];
  }

  /** Request expected to fail with `code`: resolves {code, message, reqId}. */
  async fail(code, type, ...fields) {
    const reply = await this.request(type, ...fields);
    assert.equal(reply[0], T.ERROR, `expected ERROR ${ERROR_NAMES[code]} for request type ${type} ${short(fields)}, got ${short(reply)}`);
    assert.equal(reply[2], code, `expected error ${ERROR_NAMES[code]} (${code}), got ${ERROR_NAMES[reply[2]] ?? reply[2]} (${reply[2]}): ${reply[3]}`);
    assert.equal(typeof reply[3], 'string', 'error message is a string');
    return { reqId: reply[1], code: reply[2], message: reply[3] };
  }

  hello(opts = { version: 1 }) { return this.call(T.HELLO, opts); }
  define(cls, description) { return this.call(T.DEFINE, cls, description); }
  describe(cls) { return this.call(T.DESCRIBE, cls); }
  create(cls, init = {}) { return this.call(T.CREATE, cls, init); }
  attach(cls, stateId = null, opts = {}) { return this.call(T.ATTACH, cls, stateId, opts); }
  detach(instance) { return this.call(T.DETACH, instance); }
  delete(instance) { return this.call(T.DELETE, instance); }
  set(instance, updates) { return this.call(T.SET, instance, updates); }
  observe(cls = null) { return this.call(T.OBSERVE, cls); }
  unobserve(cls = null) { return this.call(T.UNOBSERVE, cls); }

  /** Wait for (and consume) the first push matching `pred`. */
  nextPush(pred = () => true, { timeout = DEFAULT_TIMEOUT, what = 'push' } = {}) {
    return this.waitFor(() => {
      const i = this.pushes.findIndex(pred);
      if (i < 0) return undefined;
      return this.pushes.splice(i, 1)[0];
    }, { timeout, what });
  }

  nextUpdate(stateId, opts = {}) {
    return this.nextPush((m) => m[0] === T.UPDATE && m[1] === stateId, { what: `UPDATE of state ${stateId}`, ...opts });
  }

  nextDeleted(stateId, opts = {}) {
    return this.nextPush((m) => m[0] === T.DELETED && m[1] === stateId, { what: `DELETED of state ${stateId}`, ...opts });
  }

  nextNotice(pred = () => true, opts = {}) {
    return this.nextPush((m) => m[0] === T.NOTICE && pred(m), { what: 'NOTICE', ...opts });
  }

  /** Assert that no push (matching pred) arrives within `ms`. Consumes nothing. */
  async expectNoPush(ms = 300, pred = () => true, what = 'push') {
    const start = this.log.length;
    await new Promise((r) => setTimeout(r, ms));
    const got = this.pushes.filter(pred);
    assert.deepEqual(got, [], `expected no ${what} within ${ms} ms, got ${short(got)} (log grew by ${this.log.length - start})`);
  }

  /** Assert that nothing at all (reply or push) arrives within `ms`. */
  async expectSilence(ms = 300) {
    const start = this.log.length;
    await new Promise((r) => setTimeout(r, ms));
    const got = this.log.slice(start).map((e) => e.msg);
    assert.deepEqual(got, [], `expected no message within ${ms} ms, got ${short(got)}`);
  }

  /** Round-trip a PING: proves the connection is served (and flushes ordering). */
  async ping(timeout = DEFAULT_TIMEOUT) {
    const id = 900000 + this.nextReqId++;
    this.send([T.PING, id, 1.5]);
    return this.nextPush((m) => m[0] === T.PONG && m[1] === id, { timeout, what: `PONG ${id}` });
  }

  close() {
    if (this.closeInfo) return this.closed;
    try { this.ws.close(1000); } catch { /* ignore */ }
    const t = setTimeout(() => this.ws.terminate(), 2000);
    return this.closed.finally(() => clearTimeout(t));
  }

  terminate() { this.ws.terminate(); return this.closed; }

  /**
   * The server must never send text frames or undecodable binary, every
   * message must be an array with an integer type, and no request may get
   * two replies.
   */
  assertWellFormed() {
    assert.deepEqual(this.textFrames, [], 'server sent text frames');
    assert.deepEqual(this.decodeErrors.map(String), [], 'server sent undecodable msgpack');
    const bad = this.log.filter((e) => !Array.isArray(e.msg) || !Number.isInteger(e.msg[0]));
    assert.deepEqual(bad.map((e) => e.msg), [], 'server sent messages that are not [type, ...] arrays');
    const counts = new Map();
    for (const e of this.log) {
      if (REPLY_TYPES.has(e.msg[0]) && e.msg[1] !== 0) counts.set(e.msg[1], (counts.get(e.msg[1]) ?? 0) + 1);
    }
    const dup = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(dup, [], 'requests that got more than one reply: [reqId, count]');
  }
}

export function short(v, n = 600) {
  let s;
  try { s = JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x)); } catch { s = String(v); }
  return s && s.length > n ? s.slice(0, n) + '...' : s;
}
