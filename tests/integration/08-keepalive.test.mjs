// Keepalive (server/src/ws.c keepalive()): the server pings a client that
// has been silent for --keepalive seconds and drops one still silent after
// 2.5x that (a phone that left the Wi-Fi sends no FIN). A client that
// answers pings stays, however long it says nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { encode } from '@msgpack/msgpack';
import { startServer } from '../lib/server.mjs';

function connect(url, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'tutti.v1', opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const closed = (ws) => new Promise((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));

test('a client that answers no ping is dropped after 2.5x --keepalive; one that answers stays', { timeout: 30000 }, async () => {
  const srv = await startServer({ args: ['--keepalive', '1'] });
  try {
    const deaf = await connect(srv.url, { autoPong: false });
    const healthy = await connect(srv.url);
    let pings = 0;
    healthy.on('ping', () => { pings++; });
    // both say hello, then nothing more
    deaf.send(encode([1, 1, { version: 1 }]));
    healthy.send(encode([1, 1, { version: 1 }]));
    const t0 = Date.now();
    const deafClosed = closed(deaf);
    let healthyClosed = false;
    healthy.once('close', () => { healthyClosed = true; });

    const { at } = await deafClosed;
    const after = (at - t0) / 1000;
    assert.ok(after >= 2.0, `dropped after ${after} s: not before 2.5 x 1 s of silence (1 s tick)`);
    assert.ok(after <= 6.0, `dropped after ${after} s: within a few ticks of 2.5 s`);

    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(healthyClosed, false, 'the client answering pings is still connected');
    assert.ok(pings >= 2, `the silent but healthy client was pinged (${pings} pings)`);
    healthy.close();
    await closed(healthy);
  } finally {
    await srv.stop();
  }
});
