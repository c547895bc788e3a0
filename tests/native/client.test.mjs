// SPDX-License-Identifier: MIT
// libtutti-client against the real server (tests/native/client_test.c):
// every request kind, pushes, local validation, the clock, scheduled sets,
// threads; and a server that is not there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { bin, run, deadTcpPort } from './lib.mjs';

test('the C client library: requests, updates, validation, clock, schedules, threads', { timeout: 120000 }, async () => {
  const srv = await startServer();
  try {
    const r = await run(bin('native_client_test'), [srv.url, 'api'], { timeout: 90000 });
    assert.equal(r.code, 0, `native_client_test api failed:\n${r.stdout}\n${r.stderr.slice(-6000)}`);
    assert.match(r.stdout, /api: all checks passed/);
  } finally {
    await srv.stop();
  }
});

test('the C client library: no server, requests time out and the log says why', { timeout: 60000 }, async () => {
  const port = await deadTcpPort();
  const r = await run(bin('native_client_test'), [`ws://127.0.0.1:${port}/`, 'down']);
  assert.equal(r.code, 0, `native_client_test down failed:\n${r.stdout}\n${r.stderr.slice(-4000)}`);
});
