// One server per test file: started in before(), stopped in after() with the
// exit-0 / no-sanitizer check. Clients opened through `h.client(t)` are closed
// at the end of their test.
//
// Integration tests start from an empty class table (`schemas: []`) and a
// resume window of 0 (a closed connection's session and instances go at
// once, so counts of instances and presence are exact); a test that needs
// anything else passes it.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../lib/server.mjs';
import { RawClient, T, E, ERROR_NAMES, short } from '../../lib/client.mjs';

export { T, E, ERROR_NAMES, short, RawClient };

/**
 * `setup(h)` (optional) runs once right after the server started, inside the
 * same before() hook (two top-level before hooks may overlap).
 */
export function useServer(opts = {}, setup = null) {
  const h = {
    server: null,
    opts,
    get url() { return h.server.url; },
    get httpUrl() { return h.server.httpUrl; },
    /** Connected and HELLOed client, closed when test `t` ends. */
    async client(t, helloOpts = { version: 1 }) {
      const c = await RawClient.open(h.server.url, helloOpts);
      if (t) t.after(async () => { c.assertWellFormed(); await c.close(); });
      return c;
    },
    /** Connected client without HELLO. */
    async rawClient(t, connectOpts) {
      const c = await RawClient.connect(h.server.url, connectOpts);
      if (t) t.after(() => c.close());
      return c;
    },
    /** n HELLOed clients. */
    async clients(t, n) {
      const out = [];
      for (let i = 0; i < n; i++) out.push(await h.client(t));
      return out;
    },
  };
  before(async () => {
    h.server = await startServer({ schemas: [], resumeWindow: 0, ...opts });
    if (setup) await setup(h);
  }, { timeout: 30000 });
  after(async () => { if (h.server) await h.server.stop(); }, { timeout: 30000 });
  return h;
}

let classCounter = 0;
/** A class name unique within the file run. */
export function uniqueClass(prefix = 'c') {
  classCounter += 1;
  return `${prefix}${classCounter}_${process.pid}`;
}

/** Define a fresh class with `description` on client `c`; returns its name. */
export async function defineFresh(c, description, prefix = 'c') {
  const name = uniqueClass(prefix);
  const r = await c.define(name, description);
  assert.deepEqual(r, { defined: true });
  return name;
}

/** Assert an error message names the class, the param and (optionally) the value. */
export function assertNames(message, { cls, param, value } = {}) {
  if (cls !== undefined) assert.ok(message.includes(cls), `error message should name class "${cls}": ${JSON.stringify(message)}`);
  if (param !== undefined) assert.ok(message.includes(param), `error message should name param "${param}": ${JSON.stringify(message)}`);
  if (value !== undefined) assert.ok(message.includes(String(value)), `error message should name value ${JSON.stringify(String(value))}: ${JSON.stringify(message)}`);
}

export function delay(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Resolve `p`, or the string 'timeout' after `ms` (the timer is cleared either way). */
export async function orTimeout(p, ms) {
  let timer;
  try {
    return await Promise.race([p, new Promise((r) => { timer = setTimeout(() => r('timeout'), ms); })]);
  } finally { clearTimeout(timer); }
}
