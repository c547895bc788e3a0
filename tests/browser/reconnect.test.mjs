// Pages that lose their connection: resume within the window, a new session
// after it (the page reloads itself), and a server restart (kill -9) on a
// database file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync as exists, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../lib/server.mjs';

const CHROMIUM = process.env.TUTTI_CHROMIUM || '/usr/bin/chromium';
const T = 20000;

let browser, tmp;
const servers = [];
const pageErrors = [];

before(async () => {
  if (!exists(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TUTTI_CHROMIUM)`);
  tmp = mkdtempSync(join(tmpdir(), 'tutti-browser-'));
  browser = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 390, height: 844 },
    timeout: 30000,
  });
  browser.setDefaultTimeout(T);
});

after(async () => {
  try { await browser?.close(); } finally {
    for (const s of servers) await s.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});

async function server(opts) { const s = await startServer(opts); servers.push(s); return s; }

async function openPage(srv, path = '/') {
  const page = await browser.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${path}: ${err.message}`));
  await page.goto(new URL(path, srv.httpUrl).href);
  await page.waitForFunction(() => window.tutti && window.tutti.ready, null, { timeout: T });
  await page.locator('#join-btn').click();
  return page;
}

const phones = (page, n) => page.waitForFunction((k) => document.querySelectorAll('#phones .phone').length === k, n, { timeout: T });

test('a page whose connection drops resumes: same session, same presence, missed values', async () => {
  const srv = await server({ resumeWindow: 30 });
  const a = await openPage(srv);
  const b = await openPage(srv);
  await phones(a, 2);
  const before = await a.evaluate(() => ({ session: window.tutti.client.session, presence: window.tutti.presence.id }));
  await a.evaluate(() => { window.tutti.client.options.backoffMin = 500; window.tutti.client.dropConnection(); });
  await a.locator('#status[data-status="reconnecting"]').waitFor({ timeout: T });
  assert.equal(await a.locator('#status .text').textContent(), 'reconnecting…');
  // (an audience page sets what the demo's rights let the audience set)
  await b.evaluate(() => window.tutti.demo.set({ volume: 0.33, frequency: 321 }));
  await a.locator('#status[data-status="open"]').waitFor({ timeout: T });
  await a.waitForFunction(() => window.tutti.demo.get('frequency') === 321, null, { timeout: T });
  assert.equal(Number(await a.locator('#volume').inputValue()), 0.33);
  const after = await a.evaluate(() => ({ session: window.tutti.client.session, presence: window.tutti.presence.id, resumed: window.tutti.client.welcome.resumed }));
  assert.deepEqual(after, { ...before, resumed: true });
  await phones(b, 2);
  // still two-way
  await a.evaluate(() => window.tutti.demo.set({ volume: 0.66 }));
  await b.waitForFunction(() => Number(document.querySelector('#volume').value) === 0.66, null, { timeout: T });
  await a.close(); await b.close();
});

test('a page that comes back after the resume window starts over (new session, reload)', async () => {
  const srv = await server({ resumeWindow: 0 });
  const a = await openPage(srv);
  const b = await openPage(srv);
  await phones(b, 2);
  const oldPresence = await a.evaluate(() => window.tutti.presence.id);
  await a.evaluate(() => { window.tutti.client.options.backoffMin = 800; window.tutti.client.dropConnection(); });
  await phones(b, 1); // its presence went with its session
  // the page reloads itself on 'sessionlost' and joins again
  await a.waitForFunction((old) => window.tutti && window.tutti.ready && window.tutti.presence && window.tutti.presence.id !== old, oldPresence, { timeout: T });
  await phones(b, 2);
  await a.close(); await b.close();
});

test('the server is killed (-9) and restarted on its database: pages resume', async () => {
  const db = join(tmp, 'tutti.db');
  const srv = await server({ resumeWindow: 30, db });
  const a = await openPage(srv);
  const b = await openPage(srv);
  await phones(a, 2);
  await a.evaluate(() => window.tutti.demo.set({ frequency: 777 }));
  await b.waitForFunction(() => window.tutti.demo.get('frequency') === 777, null, { timeout: T });
  const sessions = await Promise.all([a, b].map((p) => p.evaluate(() => window.tutti.client.session)));
  await srv.kill9();
  await a.locator('#status[data-status="reconnecting"]').waitFor({ timeout: T });
  const srv2 = await server({ resumeWindow: 30, db, port: srv.port, schemasDir: srv.schemasDir });
  for (const p of [a, b]) await p.locator('#status[data-status="open"]').waitFor({ timeout: T });
  assert.equal(await a.evaluate(() => window.tutti.demo.get('frequency')), 777, 'the value survived kill -9');
  const resumed = await Promise.all([a, b].map((p) => p.evaluate(() => [window.tutti.client.session, window.tutti.client.welcome.resumed])));
  assert.deepEqual(resumed, sessions.map((s) => [s, true]), 'both pages resumed their sessions');
  await phones(a, 2);
  await b.evaluate(() => window.tutti.demo.set({ frequency: 888 }));
  await a.waitForFunction(() => window.tutti.demo.get('frequency') === 888, null, { timeout: T });
  assert.ok(srv2);
  await a.close(); await b.close();
});
