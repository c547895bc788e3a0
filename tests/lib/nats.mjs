// NATS JetStream for the tests of several tutti nodes (--engine): starts the
// real nats-server (Debian's package) on loopback with a port of its own
// (-p -1: the server picks it and logs it), file storage in a temporary
// directory, and stops it (SIGTERM) or kills it (SIGKILL).
//
//   import { startNats, natsAvailable } from '../lib/nats.mjs';
//   const nats = await startNats();          // nats.url: nats://127.0.0.1:PORT
//   ... tutti-server --engine nats.url
//   await nats.stop();
//
// A cluster of n servers (routes between them on loopback, JetStream on
// each): startNatsCluster(3) resolves {servers: [...], url: 'nats://a,b,c'}.
//
// Env: TUTTI_NATS_SERVER (the nats-server binary; default: nats-server on PATH).

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpDir, tail } from './server.mjs';

export const NATS_SERVER = process.env.TUTTI_NATS_SERVER || 'nats-server';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True when nats-server can be run (tests skip themselves otherwise). */
export function natsAvailable() {
  try { return spawnSync(NATS_SERVER, ['--version'], { timeout: 5000 }).status === 0; } catch { return false; }
}

/** The version nats-server reports, e.g. "2.9.10". */
export function natsVersion() {
  const r = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const m = /v?(\d+\.\d+\.\d+)/.exec(r.stdout || '');
  return m ? m[1] : null;
}

const CLIENT_PORT = /Listening for client connections on [^\s]*:(\d+)/;
const READY = /Server is ready/;

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

function spawnNats(args, dir) {
  const proc = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const h = { proc, log: '', exited: null };
  proc.stdout.on('data', (d) => { h.log += d; });
  proc.stderr.on('data', (d) => { h.log += d; });
  h.exitP = new Promise((res) => proc.on('close', (code, signal) => { h.exited = { code, signal }; res(h.exited); }));
  return h;
}

async function waitReady(h, what, timeout = 15000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline && !h.exited) {
    if (READY.test(h.log) && CLIENT_PORT.test(h.log)) return Number(CLIENT_PORT.exec(h.log)[1]);
    await sleep(20);
  }
  if (!h.exited) h.proc.kill('SIGKILL');
  throw new Error(`${what} did not start (exit ${JSON.stringify(h.exited)}):\n${tail(h.log)}`);
}

function handle(h, dir, port, args) {
  let stopped = false;
  return {
    proc: h.proc, dir, port, args,
    url: `nats://127.0.0.1:${port}`,
    log: () => h.log,
    exited: () => h.exited,
    async stop() {
      if (stopped) return h.exited;
      stopped = true;
      if (!h.exited) h.proc.kill('SIGTERM');
      const t = setTimeout(() => { if (!h.exited) h.proc.kill('SIGKILL'); }, 10000);
      await h.exitP;
      clearTimeout(t);
      return h.exited;
    },
    async kill9() {
      stopped = true;
      if (!h.exited) h.proc.kill('SIGKILL');
      return h.exitP;
    },
  };
}

/**
 * One nats-server with JetStream (file storage in a fresh directory);
 * maxPayload: its max_payload in bytes (the server's default is 1 MiB).
 */
export async function startNats({ dir = tmpDir('tutti-nats-'), port = -1, maxPayload } = {}) {
  mkdirSync(dir, { recursive: true });
  const conf = [];
  if (maxPayload) {
    writeFileSync(join(dir, 'nats.conf'), `max_payload: ${maxPayload}\n`);
    conf.push('-c', join(dir, 'nats.conf'));
  }
  const args = [...conf, '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')];
  const h = spawnNats(args, dir);
  const p = await waitReady(h, 'nats-server');
  const n = handle(h, dir, p, args);
  /** Start it again on the same port and storage (after stop or kill9). */
  n.restart = async () => {
    const h2 = spawnNats([...conf, '-a', '127.0.0.1', '-p', String(p), '-js', '-sd', join(dir, 'js')], dir);
    await waitReady(h2, 'nats-server (restart)');
    return Object.assign(n, handle(h2, dir, p, args), { restart: n.restart });
  };
  return n;
}

/**
 * A cluster of n nats-servers on loopback, JetStream on each (a stream made
 * with --replicas 3 lives on three of them). Resolves {servers, url, stop()}.
 */
export async function startNatsCluster(n = 3) {
  const base = tmpDir('tutti-natscl-');
  const clientPorts = [], routePorts = [];
  for (let i = 0; i < n; i++) { clientPorts.push(await freePort()); routePorts.push(await freePort()); }
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const servers = [];
  const handles = [];
  for (let i = 0; i < n; i++) {
    const conf = join(base, `n${i}.conf`);
    writeFileSync(conf, [
      `server_name: n${i}`,
      `listen: 127.0.0.1:${clientPorts[i]}`,
      `jetstream { store_dir: "${join(base, `js${i}`)}" }`,
      `cluster { name: tutti-test, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.filter((_, k) => k !== i).join(', ')}] }`,
    ].join('\n'));
    handles.push(spawnNats(['-c', conf], base));
  }
  for (let i = 0; i < n; i++) {
    const p = await waitReady(handles[i], `nats-server n${i}`);
    servers.push(handle(handles[i], base, p, ['-c', join(base, `n${i}.conf`)]));
  }
  // JetStream in a cluster answers once a meta leader is elected
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && !servers.every((s) => /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/.test(s.log()) || servers.some((t) => /Self is new JetStream cluster metadata leader/.test(t.log())))) await sleep(50);
  return {
    servers,
    url: 'nats://' + servers.map((s) => `127.0.0.1:${s.port}`).join(','),
    async stop() { await Promise.all(servers.map((s) => s.stop())); },
  };
}
