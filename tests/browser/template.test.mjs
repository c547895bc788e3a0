// The piece template as a composer gets it: `tutti-server --init DIR`, then
// `tutti-server DIR` with the folder's own settings (tutti.json; the test
// only moves it to 127.0.0.1 and a free port) and security defaults. Pages
// in headless Chromium: audience phones join with a tap, the slider moves
// the state for everyone, the count of phones follows the open pages, the
// conductor (with the link the server printed) starts the piece. And what
// a phone sees over plain http:// from the laptop's address (not a secure
// context): the page says the screen may lock, instead of nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { startServer, runServerToExit, tmpDir } from '../lib/server.mjs';
import { ARTIFACTS } from './lib/demo.mjs';

const CHROMIUM = process.env.TUTTI_CHROMIUM || '/usr/bin/chromium';
const T = 20000;
// a name that is not localhost, for the phone's view: Chromium resolves it to
// 127.0.0.1, but http://piece.test is no more a secure context than
// http://192.168.1.20 is on a phone
const LAN_NAME = 'piece.test';

let dir, srv, browser, context, userDataDir, watcher;
const pageErrors = [];
let pages = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TUTTI_CHROMIUM)`);
  dir = join(tmpDir('tutti-piece-'), 'my-piece');
  const init = await runServerToExit(['--init', dir]);
  assert.equal(init.code, 0, `tutti-server --init failed:\n${init.stderr}`);
  for (const f of ['README.md', 'tutti.json', 'schemas/piece.json', 'schemas/presence.json', 'schemas/roles.json', 'web/index.html', 'web/conductor.html']) {
    assert.ok(existsSync(join(dir, f)), `the template has ${f}`);
  }
  assert.equal(JSON.parse(readFileSync(join(dir, 'tutti.json'), 'utf8')).host, '0.0.0.0', 'a piece listens for phones');
  // as served on stage, but on loopback and a free port (the command line wins over tutti.json)
  srv = await startServer({ rawArgs: [dir, '--host', '127.0.0.1', '--port', '0'] });
  userDataDir = mkdtempSync(join(tmpdir(), 'tutti-chromium-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      `--host-resolver-rules=MAP ${LAN_NAME} 127.0.0.1`],
    timeout: 30000,
  });
  context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  context.setDefaultTimeout(T);
  watcher = new Client({ url: srv.url, WebSocket });
  await watcher.connect();
});

after(async () => {
  watcher?.close();
  try { await browser?.close(); } finally {
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await srv?.stop();
  }
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});

/** The link the server printed for a role (its token in the fragment). */
function roleUrl(role) {
  const out = srv.stdout() + srv.stderr();
  const m = new RegExp(`role ${role}[^:]*: (http\\S+)`).exec(out);
  assert.ok(m, `the server printed no URL for role ${role}:\n${out}`);
  return m[1];
}

async function open(url) {
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${url}: ${err.message}`));
  await page.goto(url);
  return page;
}

/** An audience page, joined with a tap as a person would. */
async function phone(url = srv.httpUrl) {
  const page = await open(url);
  await page.locator('.tutti-join-button').click(); // the overlay is there before the connection is
  await page.waitForFunction(() => window.piece && window.piece.joined, null, { timeout: T });
  return page;
}

const count = (page, n) => page.locator(`#count[data-count="${n}"]`).waitFor({ timeout: T });

test('three phones join with a tap; each counts three; on 127.0.0.1 the screen is kept on', async () => {
  pages = [await phone(), await phone(), await phone()];
  for (const p of pages) {
    await count(p, 3);
    assert.equal(await p.locator('#count').textContent(), '3 phones');
    assert.equal(await p.locator('#status').getAttribute('data-status'), 'open');
    assert.equal(await p.locator('#status').textContent(), 'live');
    assert.equal(await p.locator('.tutti-join').isHidden(), true, 'the overlay went with the tap');
    const joined = await p.evaluate(() => ({ secure: window.isSecureContext, wake: window.piece.joined.wakeLock, audio: window.piece.joined.audio?.state }));
    assert.equal(joined.secure, true, 'http://127.0.0.1 is a secure context');
    assert.deepEqual([joined.wake.ok, joined.wake.reason], [true, null], JSON.stringify(joined.wake));
    assert.equal(joined.audio, 'running', 'the tap started the audio');
    assert.equal(await p.locator('.tutti-notice').count(), 0, 'nothing to warn about');
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await pages[0].screenshot({ path: join(ARTIFACTS, 'template.png') });
});

test('the slider moves the state for every phone and on the server', async () => {
  const piece = await watcher.stateManager.attach('piece');
  await pages[0].locator('#intensity').fill('0.8');
  for (const p of pages.slice(1)) await p.waitForFunction(() => document.querySelector('#intensity').value === '0.8', null, { timeout: T });
  const deadline = Date.now() + T;
  while (piece.get('intensity') !== 0.8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(piece.get('intensity'), 0.8, 'the server has it');
  // the range comes from the schema: min, max, metas.step
  assert.deepEqual(await pages[1].locator('#intensity').evaluate((el) => [el.min, el.max, el.step]), ['0', '1', '0.01']);
  // and the other way: a set from elsewhere moves the slider
  await piece.set({ intensity: 0.2 });
  for (const p of pages) await p.waitForFunction(() => document.querySelector('#intensity').value === '0.2', null, { timeout: T });
  // the audience may not start the piece (schemas/piece.json rights)
  const refused = await pages[2].evaluate(() => window.piece.piece.set({ playing: true }).then(() => null, (e) => e.codeName));
  assert.equal(refused, 'FORBIDDEN');
});

test('the conductor, with the printed link, counts the phones (not itself) and starts the piece', async () => {
  const conductor = await open(roleUrl('conductor'));
  await count(conductor, 3);
  assert.equal(await conductor.evaluate(() => window.piece.client.role), 'conductor');
  await conductor.locator('#play').click();
  for (const p of pages) await p.locator('body.playing').waitFor({ timeout: T });
  await conductor.locator('#play', { hasText: 'Stop' }).waitFor({ timeout: T });
  await conductor.locator('#section').selectOption({ label: 'storm' });
  for (const p of pages) await p.locator('#section', { hasText: 'storm' }).waitFor({ timeout: T });
  // the audience page opened without the token is the audience: the conductor page says so
  const impostor = await open(new URL('conductor.html', srv.httpUrl).href);
  await impostor.locator('.tutti-notice', { hasText: 'Not the conductor' }).waitFor({ timeout: T });
  await impostor.close();
  // a phone leaves: every page's count follows
  await pages[2].close();
  pages.pop();
  for (const p of [...pages, conductor]) await count(p, 2);
  assert.equal(await conductor.locator('#count').textContent(), '2 phones');
  await conductor.locator('#play').click();
  for (const p of pages) await p.waitForFunction(() => !document.body.classList.contains('playing'), null, { timeout: T });
  await conductor.close();
});

test('over http:// from a LAN address (not a secure context) the page says the screen may lock', async () => {
  const url = `http://${LAN_NAME}:${srv.port}/`;
  const p = await phone(url);
  const r = await p.evaluate(async () => {
    const stage = await import('/tutti/stage.js');
    return { secure: window.isSecureContext, wakeLockApi: 'wakeLock' in navigator, wake: window.piece.joined.wakeLock,
      motion: await stage.requestMotion({ notice: false }) };
  });
  assert.equal(r.secure, false);
  assert.equal(r.wakeLockApi, false, 'Chromium hides the API there, as phones do');
  assert.deepEqual([r.wake.ok, r.wake.reason], [false, 'insecure-context']);
  assert.match(r.wake.detail, new RegExp(`http://${LAN_NAME.replace('.', '\\.')}:${srv.port}`));
  assert.deepEqual([r.motion.ok, r.motion.reason], [false, 'insecure-context']);
  const note = p.locator('.tutti-notice[data-reason="wakelock-insecure-context"]');
  await note.waitFor({ state: 'visible', timeout: T });
  assert.match(await note.textContent(), /screen may turn off/i);
  await p.screenshot({ path: join(ARTIFACTS, 'template-http.png') });
  // the piece itself still works there: it is counted and moves the state
  for (const q of [...pages, p]) await count(q, 3);
  await note.locator('button').click();
  assert.equal(await note.count(), 0, 'the notice can be dismissed');
  await p.close();
  for (const q of pages) await count(q, 2);
});
