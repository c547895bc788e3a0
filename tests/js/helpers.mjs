// Helpers for the JS client tests (not a test file itself).
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';

export { startServer, serverAvailable } from '../lib/server.mjs';

/** A connected Client (Node, `ws`), closed by the caller (or by `closeAll`). */
export async function connect(srv, options = {}) {
  const client = new Client({ url: srv.url, WebSocket, connectTimeout: 10000, requestTimeout: 10000, ...options });
  await client.connect();
  return client;
}

/** Resolve when `predicate()` is true (polled), reject after `timeout` ms. */
export async function waitFor(predicate, { timeout = 8000, interval = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Reject if `promise` does not settle within `ms`. */
export function within(promise, ms, what = 'promise') {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} did not settle within ${ms} ms`)), ms); }),
  ]);
}

/** A schema set for tests: { fileName: {class, server, description} }. */
export const TEST_SCHEMAS = {
  demo: {
    class: 'demo',
    server: true,
    description: {
      volume: { type: 'float', default: 0.5, min: 0, max: 1 },
      frequency: { type: 'float', default: 440, min: 50, max: 2000 },
      playing: { type: 'boolean', default: false },
      bang: { type: 'boolean', event: true },
      mode: { type: 'enum', list: ['sine', 'square', 'noise'], default: 'sine' },
      message: { type: 'string', default: '' },
    },
  },
};

/** The description used by most tests (defined by a client). */
export const THING = {
  bool: { type: 'boolean', default: false },
  int: { type: 'integer', default: 0, min: 0, max: 10 },
  big: { type: 'integer', default: 0 },
  float: { type: 'float', default: 0.5, min: 0, max: 1 },
  str: { type: 'string', default: 'a' },
  choice: { type: 'enum', list: ['a', 'b', 1], default: 'a' },
  any: { type: 'any', default: { x: [1, 2] }, nullable: true },
  ev: { type: 'integer', event: true },
  always: { type: 'integer', default: 0, filterChange: false },
  imm: { type: 'integer', default: 0, immediate: true },
  loc: { type: 'string', default: 'here', local: true },
  unack: { type: 'float', default: 0, acknowledge: false },
  req: { type: 'string', required: true },
};
