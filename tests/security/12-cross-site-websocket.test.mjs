// Finding: cross-site WebSocket hijacking. The server checked no Origin, so a
// page of another site, opened on a phone of the audience, could open a
// WebSocket to the piece and set the demo's volume and message. Reproduced
// here as it happens: Chromium opens a page served by a second HTTP server
// (another port is another origin) whose script uses the real tutti client
// against the server; the upgrade must get HTTP 403 and change nothing. The
// same page served by tutti itself works, and --allow-origin lets the other
// origin in. Then raw upgrades with chosen Origin headers, from Node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { ROOT, tmpDir } from '../lib/server.mjs';
import { secureServer, withServer, phone, RawClient, VERSION } from './lib/hostile.mjs';

const PRESENCE = { class: 'presence', description: { hue: { type: 'integer', default: 30 } } };
const CHROMIUM = process.env.TUTTI_CHROMIUM || '/usr/bin/chromium';
const T = 20000;
// a host name of more than 255 bytes (four labels of 60 and ".test"): what a
// site with a long name sends as its Origin; Chromium resolves it to
// 127.0.0.1 through --host-resolver-rules
const LONG_HOST = ['a', 'b', 'c', 'd'].map((x) => x.repeat(60)).join('.') + '.test';

// The hostile page: the real tutti client, from the page's own origin, opens
// the server given in ?ws= and tries to turn the volume up and to write the
// message. It reports on window.attack.
const ATTACK_HTML = `<!doctype html>
<meta charset="utf-8"><title>Win two tickets!</title>
<script type="importmap">{ "imports": { "@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs" } }</script>
<script type="module">
import { Client } from '/tutti.js';
const out = window.attack = { done: false, opened: false, results: [], error: null, closes: [] };
const client = new Client({ url: new URLSearchParams(location.search).get('ws'), reconnect: false, connectTimeout: 8000 });
client.on('close', (e) => out.closes.push(e.code));
try {
  await client.connect();
  out.opened = true;
  const demo = await client.stateManager.attach('demo');
  for (const u of [{ volume: 0.99 }, { message: 'pwned by another site' }]) {
    try { await demo.set(u); out.results.push('ok'); } catch (e) { out.results.push(e.code); }
  }
} catch (e) { out.error = e.code ?? String(e); }
client.close();
out.done = true;
</script>
<p>Tap to win!</p>`;

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/** The other site: a plain static server of web/ (for the client) and the hostile page. */
function otherSite() {
  const web = join(ROOT, 'web');
  const srv = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/attack.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(ATTACK_HTML);
      return;
    }
    const file = normalize(join(web, path));
    if (!file.startsWith(web) || !existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

let site, sitePort, siteOrigin, browser, webDir;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TUTTI_CHROMIUM)`);
  site = await otherSite();
  sitePort = site.address().port;
  siteOrigin = `http://127.0.0.1:${sitePort}`;
  // tutti's own web directory, with the same hostile page in it
  webDir = tmpDir('tutti-sec-web-');
  cpSync(join(ROOT, 'web'), webDir, { recursive: true });
  writeFileSync(join(webDir, 'attack.html'), ATTACK_HTML);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP *.test 127.0.0.1`],
    timeout: 30000,
  });
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (site ? site.close(r) : r()));
});

/** Open pageUrl in a fresh context; resolves {attack, socketErrors}. */
async function runAttack(pageUrl) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const pageErrors = [];
    const socketErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('websocket', (ws) => ws.on('socketerror', (e) => socketErrors.push(String(e))));
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.attack && window.attack.done, null, { timeout: T });
    const attack = await page.evaluate(() => window.attack);
    assert.deepEqual(pageErrors, [], 'the page ran without errors');
    return { attack, socketErrors };
  } finally {
    await context.close();
  }
}

/** The demo's values as a fresh phone sees them. */
async function demoValues(srv) {
  const c = await phone(srv);
  try { return (await c.attach('demo')).values; } finally { await c.close(); }
}

test('Chromium: a page of another origin is refused at the upgrade (HTTP 403) and changes nothing; the same page served by tutti works', async () => {
  const srv = await secureServer({ webDir, resumeWindow: 0 }); // the repo's schemas/: the demo and its rights
  try {
    const ws = `ws://127.0.0.1:${srv.port}/`;
    const before = await demoValues(srv);
    const hostile = await runAttack(`${siteOrigin}/attack.html?ws=${encodeURIComponent(ws)}`);
    assert.equal(hostile.attack.opened, false, `the other site's page got a session: ${JSON.stringify(hostile.attack)}`);
    assert.deepEqual(hostile.attack.results, []);
    assert.ok(hostile.socketErrors.some((e) => /403/.test(e)), `the upgrade was answered 403: ${JSON.stringify(hostile.socketErrors)}`);
    assert.match(srv.stderr(), new RegExp(`origin ${siteOrigin} is not this server's`), 'the server logs the refusal');
    assert.deepEqual(await demoValues(srv), before, 'the demo did not change');

    // the very same page, served by tutti: its own origin, so it is let in
    // (and the audience's rights still hold: the message is the conductor's)
    const own = await runAttack(`${srv.httpUrl}attack.html?ws=${encodeURIComponent(ws)}`);
    assert.equal(own.attack.opened, true, JSON.stringify(own));
    assert.deepEqual(own.attack.results, ['ok', 42], 'volume set, message FORBIDDEN');
    const now = await demoValues(srv);
    assert.equal(now.volume, 0.99);
    assert.equal(now.message, before.message);
  } finally {
    await srv.stop();
  }
});

test('Chromium: an Origin longer than 255 bytes (a site with a long host name) is refused too', async () => {
  const srv = await secureServer({ webDir, resumeWindow: 0 });
  try {
    const ws = `ws://127.0.0.1:${srv.port}/`;
    const before = await demoValues(srv);
    const origin = `http://${LONG_HOST}:${sitePort}`;
    assert.ok(origin.length > 256);
    const hostile = await runAttack(`${origin}/attack.html?ws=${encodeURIComponent(ws)}`);
    assert.equal(hostile.attack.opened, false, `the long-named site's page got a session: ${JSON.stringify(hostile.attack)}`);
    assert.ok(hostile.socketErrors.some((e) => /403/.test(e)), `the upgrade was answered 403: ${JSON.stringify(hostile.socketErrors)}`);
    assert.deepEqual(await demoValues(srv), before, 'the demo did not change');
  } finally {
    await srv.stop();
  }
});

test('Chromium: --allow-origin lets the named other origin in', async () => {
  const srv = await secureServer({ webDir, resumeWindow: 0, args: ['--allow-origin', siteOrigin] });
  try {
    const ws = `ws://127.0.0.1:${srv.port}/`;
    const allowed = await runAttack(`${siteOrigin}/attack.html?ws=${encodeURIComponent(ws)}`);
    assert.equal(allowed.attack.opened, true, JSON.stringify(allowed));
    assert.deepEqual(allowed.attack.results, ['ok', 42]);
    assert.equal((await demoValues(srv)).volume, 0.99);
  } finally {
    await srv.stop();
  }
});

/**
 * A raw upgrade offering tutti.v1 with the given Origin header (none when
 * null). Resolves {open: true} (then closed) or {status, body}.
 */
function upgrade(srv, origin) {
  return new Promise((resolve, reject) => {
    const headers = origin === null ? {} : { Origin: origin };
    const ws = new WebSocket(srv.url, ['tutti.v1'], { headers });
    ws.once('open', () => { ws.close(); resolve({ open: true }); });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { ws.terminate(); resolve({ status: res.statusCode, body }); });
    });
    ws.once('error', (err) => { if (ws.readyState !== WebSocket.CLOSED) reject(err); });
  });
}

test('raw upgrades: no Origin (native clients) and the server\'s own origin pass; any other origin, and look-alikes, get 403', async () => {
  await withServer({ resumeWindow: 0, schemas: [PRESENCE] }, async (srv, cs) => {
    const own = `http://127.0.0.1:${srv.port}`;
    assert.deepEqual(await upgrade(srv, null), { open: true });
    assert.deepEqual(await upgrade(srv, own), { open: true });
    assert.deepEqual(await upgrade(srv, own.toUpperCase()), { open: true }, 'scheme and host compare without case');
    for (const origin of ['http://evil.example', `http://evil.example:${srv.port}`, 'null', `http://localhost:${srv.port}`,
      `http://127.0.0.1:${srv.port + 1}`, `http://127.0.0.1:${srv.port}.evil.example`, `http://127.0.0.1`,
      `ftp://127.0.0.1:${srv.port}`, `http://${LONG_HOST}:${srv.port}`, `${own}/${'x'.repeat(300)}`]) {
      const r = await upgrade(srv, origin);
      assert.equal(r.status, 403, `Origin ${origin.slice(0, 60)}... (${origin.length} bytes): ${JSON.stringify(r).slice(0, 200)}`);
      assert.match(r.body, /origin/i, 'the 403 says why');
    }
    // a client of the server's own origin gets a session and works
    const c = await phone(srv, { headers: { Origin: own }, clients: cs });
    await c.create('presence', {});
  });
});

test('raw upgrades with --allow-origin: the listed origins pass, others still get 403; "*" lets any in', async () => {
  let srv = await secureServer({ resumeWindow: 0, schemas: [PRESENCE], args: ['--allow-origin', 'https://piece.example.org', '--allow-origin', siteOrigin] });
  try {
    assert.deepEqual(await upgrade(srv, 'https://piece.example.org'), { open: true });
    assert.deepEqual(await upgrade(srv, siteOrigin), { open: true });
    assert.equal((await upgrade(srv, 'http://piece.example.org')).status, 403, 'another scheme is another origin');
    assert.equal((await upgrade(srv, 'https://evil.example')).status, 403);
  } finally {
    await srv.stop();
  }
  srv = await secureServer({ resumeWindow: 0, schemas: [PRESENCE], args: ['--allow-origin', '*'] });
  try {
    assert.deepEqual(await upgrade(srv, 'https://evil.example'), { open: true });
    const c = await RawClient.connect(srv.url, { wsOptions: { headers: { Origin: 'https://evil.example' } } });
    await c.hello({ version: VERSION });
    await c.close();
  } finally {
    await srv.stop();
  }
});
