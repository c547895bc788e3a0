// Shared by the browser tests of the demo: the real server on the repo's
// schemas/ and web/, one headless Chromium with a phone-sized viewport, and
// pages opened and joined as a person would. Every page error fails the run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, ROOT } from '../../lib/server.mjs';

export const CHROMIUM = process.env.TUTTI_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'build', 'artifacts');
export const T = 20000; // bound for every wait (generous: CI machines can be loaded)

/**
 * A fixture: `before(fx.start)`, `after(fx.stop)`, `await fx.openPage('/')`.
 * https: the server runs as on stage, `--https --host 0.0.0.0`, the pages
 * open the URL it prints for phones (a LAN address), and Chromium trusts
 * the server's local authority as a phone that installed it does (its
 * certificate in the browser's NSS store, in a HOME of its own).
 */
export function demoPages({ https = false } = {}) {
  const fx = { srv: null, context: null, userDataDir: null, pageErrors: [], base: null, tlsDir: null };
  fx.start = async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TUTTI_CHROMIUM)`);
    // the repo's schemas/ (demo.json, roles.json) and web/, with the security
    // defaults a real audience piece runs with
    const env = { ...process.env };
    if (https) {
      fx.tlsDir = mkdtempSync(join(tmpdir(), 'tutti-tls-'));
      fx.srv = await startServer({ resumeWindow: 0, secure: true, args: ['--host', '0.0.0.0', '--https', '--tls-dir', fx.tlsDir] });
      const m = /^ {2}(https:\/\/\S+\/)$/m.exec(fx.srv.stdout());
      assert.ok(m, `no phone URL in the banner:\n${fx.srv.stdout()}`);
      fx.base = m[1];
      env.HOME = fx.home = mkdtempSync(join(tmpdir(), 'tutti-home-'));
      const db = `sql:${join(env.HOME, '.pki', 'nssdb')}`;
      mkdirSync(join(env.HOME, '.pki', 'nssdb'), { recursive: true });
      execFileSync('certutil', ['-d', db, '-N', '--empty-password']);
      execFileSync('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', 'tutti local authority', '-i', join(fx.tlsDir, 'ca.pem')]);
    } else {
      fx.srv = await startServer({ resumeWindow: 0, secure: true });
      fx.base = fx.srv.httpUrl;
    }
    fx.userDataDir = mkdtempSync(join(tmpdir(), 'tutti-chromium-'));
    fx.context = await chromium.launchPersistentContext(fx.userDataDir, {
      executablePath: CHROMIUM,
      env,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      timeout: 30000,
    });
    fx.context.setDefaultTimeout(T);
  };
  fx.stop = async () => {
    try { await fx.context?.close(); } finally {
      if (fx.userDataDir) rmSync(fx.userDataDir, { recursive: true, force: true });
      for (const d of [fx.tlsDir, fx.home]) if (d) rmSync(d, { recursive: true, force: true });
      await fx.srv?.stop();
    }
    assert.deepEqual(fx.pageErrors, [], 'no uncaught errors in the pages');
  };
  /** The URL the server printed at start for a role (its token in the fragment). */
  fx.roleUrl = (role) => {
    const m = new RegExp(`role ${role}[^:]*: (http\\S+)`).exec(fx.srv.stdout());
    assert.ok(m, `the server printed no URL for role ${role}:\n${fx.srv.stdout()}`);
    return m[1];
  };
  /** Open a demo page, tap "join" when it asks (audio unlock). The conductor
   * page opens with the conductor's URL, token included, as printed. */
  fx.openPage = async (path = '/') => {
    const page = await fx.context.newPage();
    page.on('pageerror', (err) => fx.pageErrors.push(`${path}: ${err.message}`));
    await page.goto(path === '/conductor.html' ? fx.roleUrl('conductor') : new URL(path, fx.base).href);
    await page.waitForFunction(() => window.tutti && window.tutti.ready, null, { timeout: T });
    const join = page.locator('#join-btn');
    if (await join.count()) await join.click();
    return page;
  };
  return fx;
}
