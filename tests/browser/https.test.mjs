// On stage over HTTPS (README "On stage with phones"): the server runs with
// --https --host 0.0.0.0, makes its local authority and a certificate for
// the machine's addresses, and Chromium, trusting that authority as a phone
// that installed it does, opens the URL printed for phones (a LAN address,
// where plain http would not be a secure context). The page is a secure
// context, the WebSocket is wss://, and the demo works as over http: pages
// see each other, a slider moves on every page, the conductor's page with
// its printed URL. Plain http on the same port is redirected to https, and
// the authority's certificate is served for phones to install.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet } from '../lib/server.mjs';
import { demoPages, T } from './lib/demo.mjs';

const fx = demoPages({ https: true });
before(fx.start);
after(fx.stop);

let pages = [];

test('the phones\' URL over https: a secure context, wss://, the pages see each other', async () => {
  assert.match(fx.base, /^https:\/\//);
  pages = [await fx.openPage('/'), await fx.openPage('/')];
  for (const p of pages) {
    await p.locator('#status[data-status="open"]').waitFor({ timeout: T });
    assert.equal(await p.evaluate(() => window.isSecureContext), true, 'a secure context');
    assert.equal(await p.evaluate(() => location.protocol), 'https:');
    assert.match(await p.evaluate(() => window.tutti.client.options.url ?? window.tutti.client.url), /^wss:\/\//);
    // what needs a secure context is there (keepAwake uses it)
    assert.equal(await p.evaluate(() => 'wakeLock' in navigator), true, 'navigator.wakeLock exists');
  }
  for (const p of pages) await p.waitForFunction(() => document.querySelectorAll('#phones .phone').length === 2, null, { timeout: T });
});

test('the demo works as over http: a value set on one page reaches the other; the conductor opens with its printed URL', async () => {
  await pages[0].locator('#mode button[data-value="square"]').click();
  await pages[1].locator('#mode button[data-value="square"][aria-pressed="true"]').waitFor({ timeout: T });
  assert.match(fx.roleUrl('conductor'), /^https:\/\/.*#role=conductor&token=/);
  const conductor = await fx.openPage('/conductor.html');
  await conductor.locator('#play').click();
  for (const p of pages) await p.locator('#now-card.playing').waitFor({ timeout: T });
  await conductor.locator('#play').click();
  await conductor.close();
});

test('plain http on the same port is redirected to https; the authority is served for phones to install', async () => {
  const port = new URL(fx.base).port;
  const plain = await httpGet(`http://127.0.0.1:${port}/`);
  assert.equal(plain.status, 301);
  assert.match(plain.headers.location, /^https:\/\//);
  const ca = readFileSync(join(fx.tlsDir, 'ca.pem'));
  const served = await httpGet(`https://127.0.0.1:${port}/tutti/ca.pem`, { ca });
  assert.equal(served.status, 200, 'served over a connection that trusts only the local authority');
  assert.equal(served.headers['content-type'], 'application/x-x509-ca-cert');
  assert.deepEqual(served.body, ca);
  // the QR page to project names the phones' URL
  const qr = await httpGet(`https://127.0.0.1:${port}/tutti/qr`, { ca });
  assert.equal(qr.status, 200);
  assert.ok(qr.body.toString().includes(fx.base), `the QR page names ${fx.base}`);
  assert.match(qr.body.toString(), /<svg[^>]*viewBox/);
  for (const p of pages) await p.close();
});

test('the projected QR code scans to the phones\' URL (zbarimg reads a screenshot of /tutti/qr)', async () => {
  const page = await fx.context.newPage();
  await page.goto(new URL('/tutti/qr', fx.base).href);
  assert.equal(await page.locator('#url').textContent(), fx.base);
  const png = join(fx.tlsDir, 'qr.png');
  await page.locator('svg').screenshot({ path: png });
  const read = execFileSync('zbarimg', ['--raw', '-q', png]).toString().trim();
  assert.equal(read, fx.base, 'the code a phone scans is the URL printed for phones');
  await page.close();
});
