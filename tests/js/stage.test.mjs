// stage.js's reporting, in Node with a stand-in window and navigator: the
// cases a test browser cannot be put in (a phone's http:// page, a browser
// without the Screen Wake Lock API, iOS's motion permission prompt). That
// each helper says why it cannot work, never nothing. The real browser
// cases (a secure 127.0.0.1, an insecure LAN-like name) are in
// tests/browser/template.test.mjs.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { keepAwake, releaseAwake, requestMotion, isSecure, notice, presence } from '../../web/stage.js';
import { startServer, connect, waitFor } from './helpers.mjs';
import { ROOT } from '../lib/server.mjs';
import { join } from 'node:path';

const saved = {};
const GLOBALS = ['window', 'navigator', 'document', 'location'];
let warnings = [];
const warn = console.warn;

/** Stand-ins for the browser globals stage.js reads. */
function browser({ secure = true, wakeLock, motion, docListeners } = {}) {
  const listeners = new Map();
  const win = {
    isSecureContext: secure,
    DeviceMotionEvent: motion,
    addEventListener: (t, f) => { listeners.set(t, [...(listeners.get(t) || []), f]); },
    removeEventListener: (t, f) => { listeners.set(t, (listeners.get(t) || []).filter((x) => x !== f)); },
    fire: (t, e) => { for (const f of listeners.get(t) || []) f(e); },
  };
  const set = (name, value) => Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  set('window', win);
  set('navigator', wakeLock === undefined ? {} : { wakeLock });
  set('location', { protocol: 'http:', host: '192.168.1.20:8000' });
  if (docListeners) {
    set('document', {
      visibilityState: 'visible',
      addEventListener: (t, f) => { docListeners.set(t, f); },
      removeEventListener: (t) => { docListeners.delete(t); },
    });
  }
  return win;
}

beforeEach(() => {
  for (const g of GLOBALS) saved[g] = Object.getOwnPropertyDescriptor(globalThis, g);
  warnings = [];
  console.warn = (...a) => warnings.push(a.join(' '));
});
afterEach(async () => {
  await releaseAwake();
  console.warn = warn;
  for (const g of GLOBALS) {
    if (saved[g]) Object.defineProperty(globalThis, g, saved[g]); else delete globalThis[g];
  }
});

/** A Screen Wake Lock stand-in: request() resolves a sentinel or rejects with `refuse`. */
function fakeWakeLock({ refuse } = {}) {
  const wl = { requests: 0, sentinels: [] };
  wl.request = async (type) => {
    assert.equal(type, 'screen');
    wl.requests++;
    if (refuse) throw Object.assign(new Error(refuse), { name: 'NotAllowedError' });
    const s = { released: false, release: async () => { s.released = true; } };
    wl.sentinels.push(s);
    return s;
  };
  return wl;
}

test('http:// on a phone (not a secure context): keepAwake and requestMotion say so', async () => {
  const wl = fakeWakeLock();
  browser({ secure: false, wakeLock: wl, motion: function DeviceMotionEvent() {} });
  assert.equal(isSecure(), false);
  const s = await keepAwake();
  assert.equal(s.ok, false);
  assert.equal(s.reason, 'insecure-context');
  assert.match(s.message, /screen may turn off/i);
  assert.match(s.detail, /secure context/);
  assert.match(s.detail, /http:\/\/192\.168\.1\.20:8000/, 'names the page\'s origin');
  assert.match(s.detail, /HTTPS/);
  assert.equal(wl.requests, 0, 'not even tried where browsers hide the API');
  // no document here: the notice goes to the console, with the developer's detail
  assert.ok(warnings.some((w) => /screen may turn off/i.test(w) && /secure context/.test(w)), warnings.join('\n'));
  assert.equal(await keepAwake(), s, 'asked again: the same answer');

  const m = await requestMotion({ notice: false });
  assert.equal(m.ok, false);
  assert.equal(m.reason, 'insecure-context');
  assert.match(m.message, /motion sensors are off/i);
});

test('a browser without the API: unsupported; one that refuses: refused, with its reason', async () => {
  browser({ secure: true });
  const s = await keepAwake({ notice: false });
  assert.deepEqual([s.ok, s.reason], [false, 'unsupported']);
  assert.match(s.detail, /navigator\.wakeLock is missing/);
  assert.equal(warnings.length, 0, 'notice: false: nothing shown');
  await releaseAwake();

  browser({ secure: true, wakeLock: fakeWakeLock({ refuse: 'battery saver is on' }) });
  const r = await keepAwake({ notice: false });
  assert.deepEqual([r.ok, r.reason], [false, 'refused']);
  assert.match(r.message, /NotAllowedError/);
  assert.match(r.detail, /battery saver is on/);

  browser({ secure: true, motion: undefined });
  const m = await requestMotion({ notice: false });
  assert.deepEqual([m.ok, m.reason], [false, 'unsupported']);
});

test('a secure page: the lock is granted, and taken again when the page comes back', async () => {
  const docListeners = new Map();
  const wl = fakeWakeLock();
  browser({ secure: true, wakeLock: wl, docListeners });
  const s = await keepAwake();
  assert.deepEqual([s.ok, s.reason], [true, null]);
  assert.equal(wl.requests, 1);
  // the browser releases the lock when the phone is put away; back in view, it is asked again
  wl.sentinels[0].released = true;
  docListeners.get('visibilitychange')();
  await new Promise((r) => setImmediate(r));
  assert.equal(wl.requests, 2);
  docListeners.get('visibilitychange')(); // still held: not asked again
  assert.equal(wl.requests, 2);
  await releaseAwake();
  assert.equal(wl.sentinels[1].released, true, 'releaseAwake releases the lock');
  assert.equal(docListeners.has('visibilitychange'), false);
});

test('refused at first, granted when the page comes back: keepAwake() then answers ok', async () => {
  const docListeners = new Map();
  const wl = fakeWakeLock({ refuse: 'the page is hidden' });
  browser({ secure: true, wakeLock: wl, docListeners });
  assert.equal((await keepAwake({ notice: false })).reason, 'refused');
  delete wl.request; // a new stand-in that grants
  Object.assign(wl, fakeWakeLock());
  docListeners.get('visibilitychange')();
  await new Promise((r) => setImmediate(r));
  const s = await keepAwake();
  assert.deepEqual([s.ok, s.reason], [true, null]);
});

test('iOS motion permission: granted, denied, and a probe that gets no reading', async () => {
  let answer = 'granted';
  const DME = function DeviceMotionEvent() {};
  DME.requestPermission = async () => answer;
  const win = browser({ secure: true, motion: DME });
  assert.deepEqual(await requestMotion({ notice: false }), { ok: true, reason: null, message: 'motion sensors on', detail: '' });
  answer = 'denied';
  const d = await requestMotion({ notice: false });
  assert.deepEqual([d.ok, d.reason], [false, 'refused']);
  assert.match(d.detail, /answered "denied"/);
  DME.requestPermission = async () => { throw new Error('requires a user gesture'); };
  const g = await requestMotion({ notice: false });
  assert.deepEqual([g.ok, g.reason], [false, 'refused']);
  assert.match(g.detail, /call it from a tap/);

  // a laptop: the API, no sensor (empty readings only)
  delete DME.requestPermission;
  const probing = requestMotion({ notice: false, probe: 100 });
  win.fire('devicemotion', { acceleration: { x: null }, accelerationIncludingGravity: { x: null } });
  const n = await probing;
  assert.deepEqual([n.ok, n.reason], [false, 'no-sensor']);
  // a phone: a reading within the probe
  const probing2 = requestMotion({ notice: false, probe: 5000 });
  win.fire('devicemotion', { accelerationIncludingGravity: { x: 0.1, y: 9.8, z: 0 } });
  assert.equal((await probing2).ok, true);
});

test('notice() without a page: the console, once per call, and null', () => {
  browser({ secure: true });
  assert.equal(notice('hello', { detail: 'why' }), null);
  assert.deepEqual(warnings, ['[tutti] hello (why)']);
});

test('presence() of a class the server lacks says which schema file to add', async () => {
  const srv = await startServer({ schemasDir: join(ROOT, 'web', 'template', 'schemas'), webDir: join(ROOT, 'web', 'template', 'web') });
  const client = await connect(srv);
  try {
    await assert.rejects(presence(client, 'audience'), (e) => /add schemas\/audience\.json/.test(e.message) && e.codeName === 'UNKNOWN_CLASS');
    const a = await presence(client, 'presence', { values: { hue: 12 } });
    const counts = [];
    a.onChange((n) => counts.push(n));
    assert.equal(a.count, 1);
    assert.equal(a.me.get('hue'), 12);
    const other = await connect(srv);
    const b = await presence(other, 'presence');
    await waitFor(() => a.count === 2, { what: 'the second phone to be counted' });
    assert.equal(b.count, 2, 'each phone counts both');
    other.close(); // a goodbye: its presence state goes at once
    await waitFor(() => a.count === 1, { what: 'the phone that left to be uncounted' });
    assert.deepEqual(counts, [1, 2, 1]);
  } finally {
    client.close();
    await srv.stop();
  }
});
