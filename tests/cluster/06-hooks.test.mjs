// Hooks on a piece served by three nodes (PROTOCOL.md §14): once a piece's
// start() has resolved (its HOOK requests answered), a CREATE sent to any
// other node meets the hook, also for a class the piece defined a moment
// before (another node may not have read that class yet when the hook is
// announced to it). Before, the HOOK was answered at once: a create on
// another node could miss the hook, and a node that had not read the class
// yet dropped the hook for good.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from '../lib/cluster.mjs';
import { natsAvailable } from '../lib/nats.mjs';
import { Client } from '../../web/tutti.js';
import { Server } from '../../web/server.js';

const skip = natsAvailable() ? false : 'nats-server is not installed (make deps-test installs it)';

test('a create on any node meets a hook registered on another, for a class defined just before', { skip, timeout: 120000 }, async (t) => {
  const cl = await startCluster({ nodes: 3, schemas: [], serverOpts: { secure: true, resumeWindow: 0 } });
  const opened = [];
  t.after(async () => { for (const c of opened) c.close(); await cl.destroy(); });
  const m = /role admin \(admin\): \S*#role=admin&token=([0-9a-f]+)/.exec(cl.nodes[0].stdout());
  assert.ok(m, `node 1 prints the admin token:\n${cl.nodes[0].stdout()}`);
  const phones = [];
  for (const node of cl.nodes.slice(1)) {
    const c = new Client({ url: node.url, WebSocket, requestTimeout: 10000 });
    await c.connect();
    opened.push(c);
    phones.push(c);
  }
  for (let round = 0; round < 15; round++) {
    const cls = `seat${round}`;
    const piece = new Server({ url: cl.nodes[0].url, role: 'admin', token: m[1], WebSocket, requestTimeout: 10000 });
    opened.push(piece.client);
    piece.stateManager.defineClass(cls, { name: { type: 'string', default: '' }, group: { type: 'string', default: 'none' } });
    piece.stateManager.registerCreateHook(cls, (init) => ({ ...init, group: `hooked-${round}` }));
    await piece.start();
    // at once, on the two other nodes
    const made = await Promise.all(phones.map((p) => p.stateManager.create(cls, { name: 'x' })));
    for (const [i, s] of made.entries()) assert.equal(s.get('group'), `hooked-${round}`, `round ${round}: the create on node ${i + 2} met the hook`);
    await Promise.all(made.map((s) => s.delete()));
    piece.client.close();
  }
  await cl.stop();
});
