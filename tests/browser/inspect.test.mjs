// The inspector page (/inspect) in headless Chromium at laptop size, against
// the real server with the repo's schemas: phones (tutti.js clients in this
// process) appear and disappear, values move when a phone sets them, the
// clock-sync plot counts the phones' reports, and every operator action
// (end a session, delete a state, cancel a scheduled set, delete a class)
// asks first and does nothing when the operator cancels. Screenshots go to
// build/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { startServer } from '../lib/server.mjs';
import { Client } from '../../web/tutti.js';
import { CHROMIUM, ARTIFACTS, T } from './lib/demo.mjs';

let srv, context, page, userDataDir, inspectorUrl;
const pageErrors = [];
const phones = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function phone(opts = {}) {
  const c = new Client({ url: srv.url, WebSocket, sync: { rampPingPeriod: 0.01 }, ...opts });
  await c.connect();
  phones.push(c);
  return c;
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TUTTI_CHROMIUM)`);
  srv = await startServer({ secure: true, resumeWindow: 30 });
  const m = /^the inspector: (http\S+)$/m.exec(srv.stdout());
  assert.ok(m, `the banner prints the inspector's URL:\n${srv.stdout()}`);
  inspectorUrl = m[1];
  assert.match(inspectorUrl, /\/inspect#role=admin&token=[0-9a-f]{32}$/);
  userDataDir = mkdtempSync(join(tmpdir(), 'tutti-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    viewport: { width: 1440, height: 900 },
    timeout: 30000,
  });
  context.setDefaultTimeout(T);
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(inspectorUrl);
  await page.waitForFunction(() => window.inspector && window.inspector.ready, null, { timeout: T });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  for (const p of phones) p.close();
  try { await context?.close(); } finally {
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await srv?.stop();
  }
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

const row = (id) => page.locator(`#sessions tr[data-session="${id}"]`);

test('the page is live and shows the room', async () => {
  await page.locator('#status[data-status="open"]').waitFor();
  await page.locator('.class[data-class="demo"]').waitFor();
  assert.match(await page.locator('.class[data-class="demo"] .params').textContent(), /volume float \[0, 1\]/);
  assert.equal((await page.locator('#tile-phones .value').textContent()).trim(), '0', 'the inspector is no phone');
});

test('a phone appears, and disappears when it leaves', async () => {
  const p = await phone();
  await row(p.session).waitFor();
  assert.match(await row(p.session).textContent(), /audience.*127\.0\.0\.1.*live/);
  await page.waitForFunction(() => document.querySelector('#tile-phones .value').textContent === '1');
  p.close();
  await row(p.session).waitFor({ state: 'detached' });
});

test('values move when a phone sets them; the timeline and the clock-sync plot follow', async () => {
  const p = await phone();
  const demo = await p.stateManager.attach('demo');
  const values = page.locator(`[data-values="${demo.id}"]`);
  await demo.set({ volume: 0.25 });
  await page.waitForFunction((id) => /volume=0\.25/.test(document.querySelector(`[data-values="${id}"]`)?.textContent), demo.id);
  await demo.set({ volume: 0.75, mode: 'square' });
  await page.waitForFunction((id) => /volume=0\.75.*mode="square"/.test(document.querySelector(`[data-values="${id}"]`).textContent), demo.id);
  assert.match(await values.textContent(), /frequency=/);
  // the state in detail: values and a timeline with the updates
  await page.locator(`tr[data-state="${demo.id}"]`).click();
  await page.locator('#detail:not([hidden])').waitFor();
  const before = await page.locator('#detail-timeline circle').count();
  for (let i = 1; i <= 5; i++) { await demo.set({ volume: i / 10 }); await sleep(120); }
  await page.waitForFunction((n) => document.querySelectorAll('#detail-timeline circle').length >= n + 5, before);
  assert.match(await page.locator('#detail-values').textContent(), /volume\s*0\.5/);
  // the phone's clock: its report shows in its row and in the plot
  await page.waitForFunction((id) => /ms/.test(document.querySelector(`#sessions tr[data-session="${id}"] td:nth-child(6)`)?.textContent || ''), p.session);
  await page.waitForFunction(() => document.querySelectorAll('#plot-sync polygon').length > 0);
  await page.waitForFunction(() => document.querySelector('#tile-sync .value').textContent !== '–');
  await page.waitForFunction(() => Number(document.querySelector('#tile-updates .value').textContent) > 0 ||
    document.querySelectorAll('#plot-updates polygon').length > 0);
  await page.screenshot({ path: join(ARTIFACTS, 'inspect-room.png') });
});

test('ending a session asks first: Cancel keeps the phone, Confirm closes it with 4005 for good', async () => {
  const p = await phone();
  const closes = [];
  p.on('close', ({ code }) => closes.push(code));
  await row(p.session).waitFor();
  await row(p.session).locator('[data-action="kick"]').click();
  await page.locator('#confirm[open]').waitFor();
  assert.match(await page.locator('#confirm-title').textContent(), new RegExp(`End session ${p.session}`));
  await page.screenshot({ path: join(ARTIFACTS, 'inspect-confirm.png') });
  await page.locator('#confirm-cancel').click();
  await page.locator('#confirm[open]').waitFor({ state: 'detached' });
  await sleep(1500);
  assert.equal(p.status, 'open', 'cancelled: nothing happened');
  assert.deepEqual(closes, []);
  await row(p.session).locator('[data-action="kick"]').click();
  await page.locator('#confirm-ok').click();
  await row(p.session).waitFor({ state: 'detached' });
  const deadline = Date.now() + T;
  while (p.status !== 'closed' && Date.now() < deadline) await sleep(50);
  assert.equal(p.status, 'closed', 'the kicked client does not reconnect');
  assert.deepEqual(closes, [4005]);
});

test('a scheduled set is cancelled, a state deleted and a class deleted, each after a confirmation', async () => {
  const p = await phone();
  const mine = await p.stateManager.create('presence', { label: 'seat 12' });
  const cancelled = [];
  p.on('cancelled', (c) => cancelled.push(c.schedId));
  const r = await mine.set({ hue: 200 }, { at: p.getSyncTime() + 120 });
  const schedId = r.schedId;
  const stateRow = page.locator(`tr[data-state="${mine.id}"]`);
  await stateRow.waitFor();
  await stateRow.click();
  await page.waitForFunction((id) => document.querySelector('#detail')?.dataset.state === String(id), mine.id);
  const sched = page.locator(`#detail-schedules [data-action="cancel"][data-sched="${schedId}"]`);
  await sched.waitFor();
  assert.ok(await page.locator('#detail-timeline path').count() >= 1, 'the pending set is on the timeline');
  await sched.click();
  await page.locator('#confirm-cancel').click();
  await sleep(500);
  assert.deepEqual(cancelled, [], 'cancelled the dialog: the set is still pending');
  await sched.click();
  await page.locator('#confirm-ok').click();
  const t0 = Date.now();
  while (!cancelled.includes(schedId) && Date.now() - t0 < T) await sleep(50);
  assert.deepEqual(cancelled, [schedId]);
  await sched.waitFor({ state: 'detached' });

  // delete the state: the owner is told
  const gone = new Promise((res) => mine.onDelete(res));
  await page.locator('#detail-delete').click();
  await page.locator('#confirm-cancel').click();
  await sleep(500);
  assert.equal(await stateRow.count(), 1, 'cancelled: the state is still there');
  await page.locator('#detail-delete').click();
  await page.locator('#confirm-ok').click();
  assert.equal(await gone, 'deleted');
  await stateRow.waitFor({ state: 'detached' });

  // delete the class: its states go for everybody
  const other = await p.stateManager.create('presence', {});
  const otherGone = new Promise((res) => other.onDelete(res));
  await page.locator(`tr[data-state="${other.id}"]`).waitFor();
  const del = page.locator('.class[data-class="presence"] [data-action="delete-class"]');
  await del.click();
  assert.match(await page.locator('#confirm-text').textContent(), /1 state is deleted/);
  await page.locator('#confirm-cancel').click();
  await sleep(500);
  assert.equal(await page.locator('.class[data-class="presence"]').count(), 1);
  await del.click();
  await page.locator('#confirm-ok').click();
  assert.equal(await otherGone, 'class deleted');
  await page.locator('.class[data-class="presence"]').waitFor({ state: 'detached' });
  await page.screenshot({ path: join(ARTIFACTS, 'inspect-after-actions.png'), fullPage: true });
});

test('without an admin token the page says how to open it, and shows nothing of the room', async () => {
  const bare = await context.newPage();
  bare.on('pageerror', (err) => pageErrors.push(`bare: ${err.message}`));
  await bare.goto(new URL('/inspect', srv.httpUrl).href);
  await bare.locator('#notice:not([hidden])').waitFor();
  assert.match(await bare.locator('#notice').textContent(), /inspect#role=admin&token=/);
  assert.equal(await bare.locator('#main').isHidden(), true);
  const conductor = /role conductor: (http\S+)/.exec(srv.stdout())[1].replace('/conductor.html', '/inspect');
  await bare.goto(conductor);
  await bare.reload();
  await bare.locator('#notice:not([hidden])').waitFor();
  assert.match(await bare.locator('#notice').textContent(), /not an admin role/);
  await bare.close();
});
