// The demo pages in headless Chromium, several pages at once against the
// real server: shared sliders, the bang, presence (a page closing), reload,
// the conductor; and a phone-sized screenshot in build/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { demoPages, ARTIFACTS, T } from './lib/demo.mjs';

const fx = demoPages();
before(fx.start);
after(fx.stop);
const openPage = fx.openPage;

const phonesText = (page) => page.locator('#phone-count').textContent();

// drag a range input's thumb to a fraction of its width, as a finger would
async function drag(page, selector, fraction) {
  const box = await page.locator(selector).boundingBox();
  const y = box.y + box.height / 2;
  const value = await page.locator(selector).inputValue();
  const min = Number(await page.locator(selector).getAttribute('min'));
  const max = Number(await page.locator(selector).getAttribute('max'));
  const startX = box.x + 17 + (box.width - 34) * ((Number(value) - min) / (max - min));
  await page.mouse.move(startX, y);
  await page.mouse.down();
  const endX = box.x + 17 + (box.width - 34) * fraction;
  for (let i = 1; i <= 8; i++) await page.mouse.move(startX + ((endX - startX) * i) / 8, y);
  await page.mouse.up();
}

let pages = [];

test('three pages connect and show each other', async () => {
  pages = [await openPage('/'), await openPage('/'), await openPage('/')];
  for (const p of pages) {
    await p.locator('#status[data-status="open"]').waitFor({ timeout: T });
    assert.equal((await p.locator('#status .text').textContent()).trim(), 'live');
  }
  for (const p of pages) await p.waitForFunction(() => document.querySelectorAll('#phones .phone').length === 3, null, { timeout: T });
  assert.equal(await phonesText(pages[0]), '3 phones');
  assert.equal(await pages[0].locator('#phones .phone.me').count(), 1);
});

test('moving a slider on one page moves it on the others', async () => {
  await drag(pages[0], '#volume', 0.9);
  const v0 = Number(await pages[0].locator('#volume').inputValue());
  assert.ok(v0 > 0.8, `dragged to ${v0}`);
  for (const p of pages.slice(1)) {
    await p.waitForFunction((v) => Math.abs(Number(document.querySelector('#volume').value) - v) < 1e-9, v0, { timeout: T });
    assert.equal(await p.locator('#volume-out').textContent(), `${Math.round(v0 * 100)}%`);
  }
  // and the other way round, on another param, through the page's state API
  await drag(pages[2], '#frequency', 0.1);
  const f = await pages[2].evaluate(() => window.tutti.demo.get('frequency'));
  for (const p of pages.slice(0, 2)) {
    await p.waitForFunction((v) => Number(document.querySelector('#frequency').value) === v, f, { timeout: T });
  }
  // enum buttons
  await pages[1].locator('#mode button[data-value="square"]').click();
  for (const p of pages) await p.locator('#mode button[data-value="square"][aria-pressed="true"]').waitFor({ timeout: T });
});

test('a bang on one page reaches every page', async () => {
  const before = await Promise.all(pages.map((p) => p.evaluate(() => window.tutti.bangs)));
  await pages[1].locator('#bang').dispatchEvent('pointerdown');
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction((n) => window.tutti.bangs === n, before[i] + 1, { timeout: T });
    assert.equal(Number(await p.locator('#bang-count').textContent()), before[i] + 1);
  }
  // three quick taps on two pages: every page counts all of them
  await pages[0].locator('#bang').dispatchEvent('pointerdown');
  await pages[2].locator('#bang').dispatchEvent('pointerdown');
  await pages[2].locator('#bang').dispatchEvent('pointerdown');
  for (const [i, p] of pages.entries()) await p.waitForFunction((n) => window.tutti.bangs === n, before[i] + 4, { timeout: T });
  // the full-screen bang page takes part too
  const bangPage = await openPage('/bang.html');
  const b0 = await pages[0].evaluate(() => window.tutti.bangs);
  await bangPage.locator('#bang').dispatchEvent('pointerdown');
  await pages[0].waitForFunction((n) => window.tutti.bangs === n, b0 + 1, { timeout: T });
  await bangPage.waitForFunction(() => window.tutti.bangs === 1, null, { timeout: T });
  await bangPage.close();
  for (const p of pages) await p.waitForFunction(() => document.querySelectorAll('#phones .phone').length === 3, null, { timeout: T });
});

test('a page that owns a state closes: its state disappears from the others', async () => {
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.tutti.presence.id)));
  await pages[2].close();
  pages.pop();
  for (const p of pages) {
    await p.waitForFunction(() => document.querySelectorAll('#phones .phone').length === 2, null, { timeout: T });
    const left = await p.evaluate(() => [...window.tutti.phones].map((s) => s.id));
    assert.ok(!left.includes(ids[2]), 'the closed page\'s presence state is gone');
  }
  assert.equal(await phonesText(pages[0]), '2 phones');
});

test('a page reloads and attaches again, with the current values', async () => {
  const v = await pages[1].evaluate(() => window.tutti.demo.get('volume'));
  const oldId = await pages[0].evaluate(() => window.tutti.presence.id);
  await pages[0].reload();
  await pages[0].waitForFunction(() => window.tutti && window.tutti.ready, null, { timeout: T });
  const newId = await pages[0].evaluate(() => window.tutti.presence.id);
  assert.notEqual(newId, oldId);
  assert.equal(Number(await pages[0].locator('#volume').inputValue()), v);
  for (const p of pages) await p.waitForFunction(() => document.querySelectorAll('#phones .phone').length === 2, null, { timeout: T });
  await drag(pages[0], '#volume', 0.3);
  const v2 = await pages[0].evaluate(() => window.tutti.demo.get('volume'));
  await pages[1].waitForFunction((x) => window.tutti.demo.get('volume') === x, v2, { timeout: T });
});

test('the conductor starts and stops the audience; a late joiner knows since when', async () => {
  const conductor = await openPage('/conductor.html');
  await conductor.locator('#play').click();
  for (const p of pages) await p.locator('#now-card.playing').waitFor({ timeout: T });
  assert.match(await pages[0].locator('#now').textContent(), /^Playing/);
  await conductor.locator('#msg').fill('lights down');
  await conductor.locator('#msg-form button[type=submit]').click();
  for (const p of pages) await p.waitForFunction(() => document.querySelector('#message').textContent === 'lights down', null, { timeout: T });
  // a late joiner finds the start time in the attach history
  const late = await openPage('/');
  await late.waitForFunction(() => /^Playing \d\d:\d\d$/.test(document.querySelector('#now').textContent), null, { timeout: T });
  // the beat grid: the late joiner found the same start time (history) as the pages that saw it live
  const since = await Promise.all([...pages, late, conductor].map((p) => p.evaluate(() => window.tutti.beat.since)));
  assert.equal(typeof since[0], 'number');
  assert.ok(since.every((x) => x === since[0]), `same start time everywhere: ${since}`);
  if (!existsSync(ARTIFACTS)) mkdirSync(ARTIFACTS, { recursive: true });
  await late.waitForTimeout(300);
  await late.screenshot({ path: join(ARTIFACTS, 'demo.png') });
  await conductor.screenshot({ path: join(ARTIFACTS, 'conductor.png'), fullPage: true });
  await conductor.locator('#play').click();
  for (const p of [...pages, late]) await p.waitForFunction(() => !document.querySelector('#now-card').classList.contains('playing'), null, { timeout: T });
  assert.ok(existsSync(join(ARTIFACTS, 'demo.png')));
  await late.close();
  await conductor.close();
});
