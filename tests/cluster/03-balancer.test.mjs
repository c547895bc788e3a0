// Three tutti nodes behind one URL, as the README shows it: Debian's
// haproxy in TCP mode (round robin, /healthz checks) in front of three
// nodes on one nats-server, every process real and on loopback. The JS
// client (web/tutti.js) knows one URL; its connections spread over the
// nodes, every client sees every update in order, and when a node is
// killed (-9) its clients reconnect through the balancer to the others and
// resume their sessions with what they missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { startCluster } from '../lib/cluster.mjs';
import { natsAvailable } from '../lib/nats.mjs';
import { tmpDir, httpGet } from '../lib/server.mjs';

const haproxyOk = (() => { try { return spawnSync('haproxy', ['-v'], { timeout: 5000 }).status === 0; } catch { return false; } })();
const skip = !natsAvailable() ? 'nats-server is not installed (make deps-test installs it)'
  : !haproxyOk ? 'haproxy is not installed (make deps-test installs it)' : false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const MIXER = { n: { type: 'integer', default: 0 } };
const SCHEMAS = [{ class: 'mixer', server: true, description: MIXER }];

function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/** The configuration the README shows, for these nodes. */
function haproxyConfig(port, nodes) {
  return [
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 1h',
    '  timeout server 1h',
    '  retries 2',
    '  option redispatch',
    'frontend tutti',
    `  bind 127.0.0.1:${port}`,
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    ...nodes.map((p, i) => `  server node${i + 1} 127.0.0.1:${p} check inter 500 fall 2 rise 2`),
    '',
  ].join('\n');
}

async function startHaproxy(nodes) {
  const port = await freePort();
  const dir = tmpDir('tutti-haproxy-');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(port, nodes));
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const deadline = Date.now() + 20000;
  for (;;) {
    try { if ((await httpGet(`http://127.0.0.1:${port}/healthz`, { timeout: 2000 })).status === 200) break; } catch { /* not yet */ }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not start:\n${log}`);
    await sleep(100);
  }
  return { port, url: `ws://127.0.0.1:${port}/`, log: () => log,
    stop() { proc.kill('SIGKILL'); return new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r))); } };
}

async function waitFor(pred, what, timeout = 30000) {
  const deadline = Date.now() + timeout;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('three nodes behind haproxy: clients spread, see every update in order, and resume through it when a node dies', { skip, timeout: 180000 }, async (t) => {
  const cl = await startCluster({ nodes: 3, schemas: SCHEMAS, args: ['--resume-window', '60'] });
  t.after(() => cl.destroy());
  const lb = await startHaproxy(cl.nodes.map((n) => n.port));
  t.after(() => lb.stop());
  const clients = [];
  t.after(() => { for (const c of clients) c.close(); });
  // the node of a session: ids of node k are k modulo 64
  const nodeOf = (c) => c.session % 64;
  for (let i = 0; i < 9; i++) {
    const c = new Client({ url: lb.url, WebSocket, connectTimeout: 10000, requestTimeout: 20000, backoffMin: 50, backoffMax: 300 });
    await c.connect();
    c.resumes = 0;
    c.on('resumed', () => { c.resumes++; });
    c.mixer = await c.stateManager.attach('mixer');
    c.seen = [];
    c.mixer.onUpdate((v, old, ctx) => { if (v.n !== undefined) c.seen.push([ctx.seq, v.n]); });
    clients.push(c);
  }
  const used = new Set(clients.map(nodeOf));
  assert.equal(used.size, 3, `round robin spreads the clients over the 3 nodes (got nodes ${[...used]})`);
  // every client writes in turn
  let n = 0;
  for (let r = 0; r < 3; r++) for (const c of clients) await c.mixer.set({ n: ++n });
  await waitFor(() => clients.every((c) => c.mixer.get('n') === n), 'every client has the last value');
  const ordered = (c) => c.seen.every(([seq], i) => i === 0 || seq === c.seen[i - 1][0] + 1);
  for (const c of clients) assert.ok(ordered(c), `client ${c.session}: updates in seq order without gap: ${JSON.stringify(c.seen)}`);

  // kill -9 the node of the first client: its clients come back through
  // the balancer on the others, with the same session
  const victim = nodeOf(clients[0]);
  const orphans = clients.filter((c) => nodeOf(c) === victim).map((c) => ({ c, session: c.session }));
  await cl.kill9(victim - 1);
  const survivors = clients.filter((c) => nodeOf(c) !== victim);
  // the others write on meanwhile (the state may have been written by the
  // dead node: it moves to a live one)
  for (let r = 0; r < 2; r++) for (const c of survivors) await c.mixer.set({ n: ++n });
  await waitFor(() => orphans.every(({ c }) => c.resumes >= 1 && c.status === 'open'), 'the dead node\'s clients resume');
  for (const { c, session } of orphans) assert.equal(c.session, session, 'same session after the resume');
  await waitFor(() => clients.every((c) => c.mixer.get('n') === n), 'every client has the last value after the kill');
  for (const c of clients) await c.mixer.set({ n: ++n });
  await waitFor(() => clients.every((c) => c.mixer.get('n') === n), 'every client has the last value of the last round');
  for (const c of clients) assert.ok(ordered(c), `client ${c.session}: updates in seq order without gap across the kill: ${JSON.stringify(c.seen)}`);
});
