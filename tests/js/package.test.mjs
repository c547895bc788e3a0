// The client as a Node script uses it: a script folder whose package.json
// depends on `file:<repo>/web`, installed with npm (offline: a file:
// dependency is a link), imports 'tutti-client' by name, connects to the
// real server serving the piece template's schemas and sets a value. And
// connect() to a port where nothing listens fails within the default
// timeout instead of hanging, in a script that then ends by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, lstatSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Client, ErrorCode } from '../../web/tutti.js';
import { startServer, tmpDir, ROOT } from '../lib/server.mjs';
import { deadTcpPort } from '../native/lib.mjs';
import { waitFor } from './helpers.mjs';

const WEB = join(ROOT, 'web');
const TEMPLATE = join(WEB, 'template');
let srv, dir;

/** Run `node script args...` in the script folder; resolves {code, stdout, stderr, ms}. */
function runScript(script, args = [], { timeout = 60000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [script, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

before(async () => {
  // the template's schemas, with the security defaults a piece runs with:
  // the audience may set 'intensity' because piece.json's rights say so
  srv = await startServer({ schemasDir: join(TEMPLATE, 'schemas'), webDir: join(TEMPLATE, 'web'), secure: true });
  dir = tmpDir('tutti-script-');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({
    name: 'a-piece-script', private: true, type: 'module',
    dependencies: { 'tutti-client': `file:${WEB}` },
  }, null, 2));
  // --offline: a file: dependency is a link, nothing to download (web/'s own
  // dependencies are installed by `make npm`)
  const npm = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, encoding: 'utf8', timeout: 120000 });
  assert.equal(npm.status, 0, `npm install failed:\n${npm.stdout}\n${npm.stderr}`);
});

after(async () => { await srv?.stop(); });

test('npm installs the package under its name, as a link to web/', () => {
  const link = join(dir, 'node_modules', 'tutti-client');
  assert.ok(lstatSync(link).isSymbolicLink() || lstatSync(link).isDirectory());
  assert.equal(realpathSync(link), realpathSync(WEB));
  const pkg = JSON.parse(readFileSync(join(link, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'tutti-client');
  assert.ok(pkg.dependencies.ws, 'ws is a dependency (Node 20 has no WebSocket)');
  // every file `exports` and `files` name is there
  for (const target of Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e)))) {
    assert.ok(lstatSync(join(WEB, target)).isFile(), `exports names ${target}`);
  }
  for (const f of pkg.files) assert.ok(lstatSync(join(WEB, f)).isFile(), `files names ${f}`);
});

test('a script imports tutti-client by name, connects and sets a value', async () => {
  writeFileSync(join(dir, 'set.mjs'), `
    import { Client, ErrorCode } from 'tutti-client';
    import { SyncEstimator } from 'tutti-client/sync';
    const client = new Client({ url: process.argv[2] });   // no WebSocket given: 'ws', from the package
    await client.connect();
    const piece = await client.stateManager.attach('piece');
    await piece.set({ intensity: Number(process.argv[3]) });
    // the audience may not start the piece (schemas/piece.json rights)
    const refused = await piece.set({ playing: true }).then(() => null, (e) => e.codeName);
    console.log(JSON.stringify({ intensity: piece.get('intensity'), refused, session: client.session,
      sync: typeof SyncEstimator, forbidden: ErrorCode.FORBIDDEN }));
    client.close();
  `);
  const watcher = new Client({ url: srv.url, WebSocket });
  await watcher.connect();
  try {
    const piece = await watcher.stateManager.attach('piece');
    const seen = [];
    piece.onUpdate((n) => { if ('intensity' in n) seen.push(n.intensity); });
    const r = await runScript('set.mjs', [srv.url, '0.25']);
    assert.equal(r.code, 0, `the script failed (it must also end by itself):\n${r.stderr}`);
    const out = JSON.parse(r.stdout.trim());
    assert.equal(out.intensity, 0.25);
    assert.equal(out.refused, 'FORBIDDEN');
    assert.equal(out.sync, 'function');
    assert.ok(out.session > 0);
    await waitFor(() => seen.includes(0.25), { what: 'the script\'s set to reach another client' });
    assert.equal(piece.get('intensity'), 0.25);
  } finally { watcher.close(); }
});

test('connect() to a port where nothing listens rejects within the default timeout, and the script ends', async () => {
  const port = await deadTcpPort();
  writeFileSync(join(dir, 'dead.mjs'), `
    import { Client } from 'tutti-client';
    const client = new Client({ url: 'ws://127.0.0.1:${port}/' });   // default connectTimeout
    const t0 = Date.now();
    try { await client.connect(); console.log('connected?'); } catch (e) {
      console.log(JSON.stringify({ code: e.codeName, message: e.message, ms: Date.now() - t0, status: client.status }));
    }
  `);
  const r = await runScript('dead.mjs', [], { timeout: 60000 });
  assert.equal(r.signal, null, `the script hung (killed after 60 s):\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.equal(out.code, 'TIMEOUT');
  assert.match(out.message, new RegExp(`could not connect to ws://127\\.0\\.0\\.1:${port}/ within 10000 ms`));
  assert.equal(out.status, 'closed');
  // the default is 10 s: not before it (it kept retrying), and not forever
  assert.ok(out.ms >= 9900, `rejected after ${out.ms} ms`);
});

test('keepTrying: connect() rejects at connectTimeout, the client goes on and opens when a server comes', async () => {
  const port = await deadTcpPort();
  const c = new Client({ url: `ws://127.0.0.1:${port}/`, WebSocket, connectTimeout: 300, keepTrying: true, backoffMin: 50, backoffMax: 200 });
  let srv2;
  try {
    await assert.rejects(c.connect(), (e) => e.code === ErrorCode.TIMEOUT);
    assert.equal(c.status, 'connecting', 'still trying');
    let opened = false;
    c.on('open', () => { opened = true; });
    srv2 = await startServer({ port, schemasDir: join(TEMPLATE, 'schemas'), webDir: join(TEMPLATE, 'web') });
    await waitFor(() => opened, { timeout: 10000, what: 'the client to open once the server is up' });
    const welcome = await c.connect(); // open: resolves at once
    assert.ok(welcome.session > 0);
  } finally {
    c.close();
    await srv2?.stop();
  }
});

test('reconnect: false: the first failed attempt rejects at once, saying why', async () => {
  const port = await deadTcpPort();
  const c = new Client({ url: `ws://127.0.0.1:${port}/`, WebSocket, reconnect: false });
  await assert.rejects(c.connect(), (e) => e.code === ErrorCode.DISCONNECTED && /could not connect to ws:\/\/127\.0\.0\.1/.test(e.message));
  assert.equal(c.status, 'closed');
});
