// SPDX-License-Identifier: MIT
// A native client tells the server how well its clock follows, as the JS
// client does: the operator's inspector shows a `tutti watch` (a laptop
// with Max or Pd behind the bridge) with its sync status and error, not a
// blank line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { RawClient, T } from '../lib/client.mjs';
import { bin, start, sleep, checkClean } from './lib.mjs';

test('tutti watch sends SYNC_REPORTs: the inspector shows its clock status, error and round trip', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ secure: true, schemas: [{ class: 'knob', server: true, description: { v: { type: 'integer', default: 0 } } }] });
  t.after(() => srv.stop());
  const m = /inspect#role=admin&token=([0-9a-f]+)/.exec(srv.stdout());
  assert.ok(m, srv.stdout());
  const admin = await RawClient.open(srv.url, { version: 1, role: 'admin', roleToken: m[1] });
  t.after(() => { if (!admin.closeInfo) admin.ws.close(1000); });
  const watch = start(bin('tutti'), ['--url', srv.url, 'watch', 'knob']);
  t.after(() => watch.stop('SIGINT'));
  let row;
  for (let i = 0; i < 150 && !row; i++) {
    const room = await admin.call(T.INSPECT, { sessions: 50 });
    // the first pong reports 'startup' (no round trip yet); the end of the
    // first series 'training', with its round trip
    row = room.sessionRows.find((s) => s.role !== 'admin' && s.sync && s.sync.status !== 'startup');
    if (!row) await sleep(100);
  }
  assert.ok(row, 'no SYNC_REPORT from tutti watch within 15 s');
  assert.ok(['training', 'sync'].includes(row.sync.status), JSON.stringify(row.sync));
  // on loopback: a fraction of a millisecond, not a placeholder
  assert.ok(row.sync.error >= 0 && row.sync.error < 0.005, JSON.stringify(row.sync));
  assert.ok(row.sync.roundTrip > 0 && row.sync.roundTrip < 0.1, JSON.stringify(row.sync));
  assert.equal(row.connected, true);
  await watch.stop('SIGINT');
  checkClean(watch, 'tutti watch');
});
