// stage.js: what a piece's page needs around the client on a phone (ES
// module, browser only, no build step): the "tap to join" overlay, audio
// unlock, a screen that stays on, motion sensors, a count of the phones in
// the room and a status line. Every helper that depends on the browser
// REPORTS when it cannot work (http:// on a phone, an API missing, a refusal)
// instead of doing nothing: it resolves a Status and, unless told not to,
// shows a notice on the page.
//
//   import { connect, join, presence, bind } from '/tutti/stage.js';
//   const joined = join();                                    // overlay now; resolves on the tap
//   const client = await connect({ status: document.getElementById('status') });
//   const phones = await presence(client, 'presence');        // I am here; how many are we
//   phones.bindCount(document.getElementById('count'));
//   const { audio, wakeLock } = await joined;                 // AudioContext, Status

import { Client, ErrorCode } from './tutti.js';

/**
 * What a helper could do. ok: it works; else `reason` says why not
 * ('insecure-context' | 'unsupported' | 'refused' | 'no-sensor'), `message`
 * is for the person holding the phone and `detail` for the developer.
 * @typedef {{ok: boolean, reason: string|null, message: string, detail: string}} Status
 */

// Read at call time, not import time: the helpers run in a page, and the
// tests give them a fake window and navigator.
const env = () => ({
  win: globalThis.window ?? globalThis,
  nav: globalThis.navigator,
  doc: globalThis.document,
});

/** The page is a secure context (https://, or http://localhost), where browsers give the sensor and power APIs. */
export function isSecure() {
  const { win } = env();
  // a runtime that does not say (an old browser) is taken at its word: the APIs' presence decides
  return win.isSecureContext !== false;
}

function pageOrigin() {
  const loc = globalThis.location;
  return loc ? `${loc.protocol}//${loc.host}` : 'this page';
}

const ok = (message = '') => ({ ok: true, reason: null, message, detail: '' });
const fail = (reason, message, detail) => ({ ok: false, reason, message, detail });

/** The Status of an API that browsers only give to secure contexts, when this one is not. */
function insecure(what, consequence) {
  return fail('insecure-context', consequence,
    `${what} needs a secure context (https://, or http://localhost) and ${pageOrigin()} is not one: ` +
    'serve the piece over HTTPS (tutti-server --https; tutti\'s README, "On stage")');
}

// -- notices -------------------------------------------------------------------

const STYLE = `
.tutti-join{position:fixed;inset:0;z-index:1000;display:flex;align-items:center;justify-content:center;
  background:rgba(8,9,12,.94);color:#fff;text-align:center;font:16px/1.4 system-ui,sans-serif;padding:24px}
.tutti-join[hidden]{display:none}
.tutti-join h1{margin:0 0 8px;font-size:28px}
.tutti-join button{margin-top:20px;font:inherit;font-size:20px;padding:16px 32px;border:0;border-radius:999px;
  background:#ffb347;color:#111;cursor:pointer}
.tutti-notices{position:fixed;left:8px;right:8px;bottom:8px;z-index:1001;display:flex;flex-direction:column;gap:6px;
  pointer-events:none}
.tutti-notice{pointer-events:auto;display:flex;gap:8px;align-items:flex-start;background:#3a2a00;color:#ffe9b3;
  border:1px solid #a67c00;border-radius:8px;padding:8px 10px;font:14px/1.35 system-ui,sans-serif}
.tutti-notice button{margin-left:auto;background:none;border:0;color:inherit;font-size:18px;line-height:1;cursor:pointer}
`;

function injectStyle(doc) {
  if (doc.getElementById('tutti-stage-style')) return;
  const style = doc.createElement('style');
  style.id = 'tutti-stage-style';
  style.textContent = STYLE;
  doc.head.append(style);
}

/**
 * Show a notice at the bottom of the page (the person holding the phone
 * should know: "the screen may lock"), closable with ×. Also written to the
 * console with the developer's detail. The same message twice shows once.
 * Returns the element, or null without a document.
 */
export function notice(message, { detail = '', id } = {}) {
  if (detail) console.warn(`[tutti] ${message} (${detail})`);
  const { doc } = env();
  if (!doc || !doc.body) return null;
  injectStyle(doc);
  let box = doc.querySelector('.tutti-notices');
  if (!box) {
    box = doc.createElement('div');
    box.className = 'tutti-notices';
    box.setAttribute('role', 'status');
    doc.body.append(box);
  }
  const key = id || message;
  for (const el of box.children) if (el.dataset.key === key) return el;
  const el = doc.createElement('div');
  el.className = 'tutti-notice';
  el.dataset.key = key;
  if (id) el.dataset.reason = id;
  const text = doc.createElement('span');
  text.textContent = message; // may come from a browser's error: never innerHTML
  const close = doc.createElement('button');
  close.type = 'button';
  close.setAttribute('aria-label', 'dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => el.remove());
  el.append(text, close);
  box.append(el);
  return el;
}

function report(status, show, what) {
  if (!status.ok && show) notice(status.message, { detail: status.detail, id: `${what}-${status.reason}` });
  return status;
}

// -- audio ---------------------------------------------------------------------

/**
 * Create (or resume) an AudioContext. Call it inside a tap: browsers start
 * audio only from a user gesture. Returns the context, or null where the
 * browser has no Web Audio.
 */
export function unlockAudio(context = null, { latencyHint = 'interactive' } = {}) {
  const { win } = env();
  if (!context) {
    const AC = win.AudioContext || win.webkitAudioContext;
    if (!AC) return null;
    context = new AC({ latencyHint });
  }
  // resume() rejects only on a closed context: nothing to unlock then
  if (context.state !== 'running' && context.resume) context.resume().catch(() => {});
  return context;
}

// -- screen wake lock ------------------------------------------------------------

let awake = null; // the one keepAwake() of the page: {status: Promise<Status>, sentinel, release}

/**
 * Keep the screen on for the whole piece (a locked phone stops playing).
 * The lock is taken again each time the page becomes visible (browsers
 * release it when the phone is put away). Resolves a Status, ok when the
 * lock was granted; otherwise why not: 'insecure-context' (http:// on a
 * phone: the API is missing there), 'unsupported' (an older browser), or
 * 'refused' (battery saver, a hidden page...). A failure shows a notice
 * unless `notice: false`. Calling it again returns the first result.
 * @returns {Promise<Status>}
 */
export function keepAwake({ notice: show = true } = {}) {
  if (awake) return awake.status;
  const { nav, doc } = env();
  const LOCK = 'The screen may turn off during the piece: ';
  if (!isSecure()) {
    awake = { status: Promise.resolve(report(insecure('The screen wake lock', `${LOCK}set your phone's auto-lock to "never", or touch the screen now and then.`), show, 'wakelock')) };
    return awake.status;
  }
  if (!nav || !nav.wakeLock || typeof nav.wakeLock.request !== 'function') {
    awake = { status: Promise.resolve(report(fail('unsupported', `${LOCK}this browser cannot keep it on. Set auto-lock to "never", or touch it now and then.`,
      'navigator.wakeLock is missing (Screen Wake Lock API: Chrome 84+, Safari 16.4+, Firefox 126+)'), show, 'wakelock')) };
    return awake.status;
  }
  const state = { sentinel: null, status: null, released: false };
  const request = () => nav.wakeLock.request('screen').then((s) => { state.sentinel = s; return ok('the screen stays on'); },
    (err) => fail('refused', `${LOCK}the browser refused to keep it on (${err && err.name ? err.name : 'refused'}).`,
      `navigator.wakeLock.request('screen') rejected: ${err && err.message ? err.message : err}`));
  const onVisible = () => {
    if (state.released || !doc || doc.visibilityState !== 'visible') return;
    if (state.sentinel && !state.sentinel.released) return;
    request().then((s) => {
      if (!s.ok) return;
      // refused at first (the page was hidden, a battery saver...), granted now: say so
      state.status = Promise.resolve(s);
      doc.querySelector?.('.tutti-notice[data-reason="wakelock-refused"]')?.remove();
    });
  };
  if (doc) doc.addEventListener('visibilitychange', onVisible);
  state.release = () => {
    state.released = true;
    if (doc) doc.removeEventListener('visibilitychange', onVisible);
    awake = null;
    return state.sentinel ? state.sentinel.release() : Promise.resolve();
  };
  state.status = request().then((s) => report(s, show, 'wakelock'));
  awake = state;
  return state.status;
}

/** Let the screen lock again (undoes keepAwake). */
export function releaseAwake() {
  const a = awake;
  awake = null;
  return a && a.release ? a.release() : Promise.resolve();
}

// -- motion sensors ----------------------------------------------------------------

/**
 * Ask for the motion sensors (DeviceMotionEvent). Call it inside a tap: iOS
 * asks the person (DeviceMotionEvent.requestPermission) and only from a
 * gesture. Resolves a Status: ok, or 'insecure-context' (http:// on a phone:
 * browsers hide the sensors there), 'unsupported', 'refused', and with
 * `probe` (ms) 'no-sensor' when no reading came within that time (a laptop
 * has the API but no sensor). A failure shows a notice unless `notice: false`.
 * Then listen: window.addEventListener('devicemotion', (e) => e.acceleration...).
 * @returns {Promise<Status>}
 */
export async function requestMotion({ notice: show = true, probe = 0 } = {}) {
  const { win } = env();
  const NO = 'Motion sensors are off on this phone: ';
  const DME = win.DeviceMotionEvent;
  if (!isSecure()) return report(insecure('DeviceMotionEvent', `${NO}the page is not secure (http://). Moving the phone will do nothing.`), show, 'motion');
  if (typeof DME !== 'function') {
    return report(fail('unsupported', `${NO}this browser gives no motion sensors.`, 'DeviceMotionEvent is missing'), show, 'motion');
  }
  if (typeof DME.requestPermission === 'function') {
    let answer;
    try {
      answer = await DME.requestPermission(); // must be called in the tap: no await before it in the caller
    } catch (err) {
      return report(fail('refused', `${NO}access was not granted.`, `DeviceMotionEvent.requestPermission() rejected: ${err && err.message ? err.message : err} (call it from a tap)`), show, 'motion');
    }
    if (answer !== 'granted') {
      return report(fail('refused', `${NO}access was refused. Reload the page to be asked again.`, `DeviceMotionEvent.requestPermission() answered "${answer}"`), show, 'motion');
    }
  }
  if (probe > 0) {
    const got = await new Promise((resolve) => {
      const t = setTimeout(() => { win.removeEventListener('devicemotion', on); resolve(false); }, probe);
      function on(e) {
        const a = e.accelerationIncludingGravity || e.acceleration;
        if (!a || a.x === null || a.x === undefined) return; // browsers send empty readings without a sensor
        clearTimeout(t);
        win.removeEventListener('devicemotion', on);
        resolve(true);
      }
      win.addEventListener('devicemotion', on);
    });
    if (!got) return report(fail('no-sensor', `${NO}this device sends no readings.`, `no devicemotion reading within ${probe} ms`), show, 'motion');
  }
  return ok('motion sensors on');
}

// -- tap to join -------------------------------------------------------------------

/**
 * The "tap to join" overlay: browsers play sound, keep the screen on and
 * (iOS) give the motion sensors only after a tap. Shows the overlay at once
 * (pass `overlay` and `button` to use the page's own, else one is made) and
 * resolves after the tap with what it unlocked:
 * { audio: AudioContext|null, wakeLock: Status|null, motion: Status|null }.
 *
 * @param {object} [o]
 * @param {string} [o.title] heading of the overlay made here (default: the page's title)
 * @param {string} [o.text] one line under it
 * @param {string} [o.label='Tap to join'] the button's text
 * @param {HTMLElement} [o.overlay] the page's overlay (hidden after the tap)
 * @param {HTMLElement} [o.button] the page's button
 * @param {boolean|AudioContext} [o.audio=true] create (or resume this) AudioContext in the tap
 * @param {boolean} [o.wakeLock=true] keepAwake()
 * @param {boolean} [o.motion=false] requestMotion()
 * @param {boolean} [o.notices=true] show a notice for what cannot work
 * @param {() => void} [o.onTap] runs inside the tap, before the rest (unlock your own audio here)
 */
export function join({ title, text = 'Turn your sound on, then tap.', label = 'Tap to join', overlay, button,
  audio = true, wakeLock = true, motion = false, notices = true, onTap } = {}) {
  const { doc } = env();
  if (!overlay) {
    injectStyle(doc);
    overlay = doc.createElement('div');
    overlay.className = 'tutti-join';
    const box = doc.createElement('div');
    const h = doc.createElement('h1');
    h.textContent = title ?? doc.title ?? '';
    const p = doc.createElement('p');
    p.textContent = text;
    button = doc.createElement('button');
    button.type = 'button';
    button.className = 'tutti-join-button';
    button.textContent = label;
    box.append(h, p, button);
    overlay.append(box);
    doc.body.append(overlay);
  }
  button = button || overlay;
  overlay.hidden = false;
  return new Promise((resolve) => {
    const tap = () => {
      button.removeEventListener('click', tap);
      // everything that needs the gesture is started here, synchronously
      if (onTap) onTap();
      const ctx = audio ? unlockAudio(audio === true ? null : audio) : null;
      const wake = wakeLock ? keepAwake({ notice: notices }) : null;
      const moving = motion ? requestMotion({ notice: notices }) : null;
      overlay.hidden = true;
      Promise.all([wake, moving]).then(([w, m]) => resolve({ audio: ctx, wakeLock: w, motion: m }));
    };
    button.addEventListener('click', tap);
  });
}

// -- connection and status line -------------------------------------------------------

/** What the status line says for each client status. */
export const STATUS_TEXT = {
  idle: 'offline', connecting: 'connecting…', open: 'live', reconnecting: 'reconnecting…', closed: 'offline',
  unreachable: 'server unreachable, retrying…',
};

/**
 * Show the client's connection status in an element: its `data-status`
 * attribute (style it in CSS) and its text (in its `.text` child when it
 * has one). Returns { show(status), off() }; show('unreachable') is what
 * connect() uses when the server does not answer.
 */
export function statusLine(client, el, { texts = STATUS_TEXT } = {}) {
  const show = (s) => {
    if (!el) return;
    el.dataset.status = s;
    (el.querySelector('.text') || el).textContent = texts[s] ?? s;
  };
  const off = client.on('status', show);
  show(client.status);
  return { show, off };
}

/**
 * Connect a page to the server it came from. The phone keeps trying while
 * the server is away (a restart, Wi-Fi coming back): after `connectTimeout`
 * the status line says the server is unreachable (and the console why),
 * and the promise resolves when it answers. A page whose session could not
 * be resumed (it was away longer than the server's resume window) reloads
 * itself: its states are gone, a fresh start is the honest recovery.
 *
 * @param {object} [o] Client options (url, role, token...), plus:
 * @param {HTMLElement} [o.status] element for statusLine()
 * @param {Client} [o.client] a client made by the page (else one is made here)
 * @param {boolean} [o.reloadOnSessionLost=true]
 * @returns {Promise<Client>} once the session is up
 */
export async function connect({ status, client, reloadOnSessionLost = true, ...options } = {}) {
  client = client || new Client({ keepTrying: true, ...options });
  const line = status ? statusLine(client, status) : null;
  if (reloadOnSessionLost) client.on('sessionlost', () => globalThis.location.reload());
  for (;;) {
    try {
      await client.connect();
      return client;
    } catch (err) {
      if (err.code !== ErrorCode.TIMEOUT || client.status === 'closed') throw err;
      if (line) line.show('unreachable');
      console.warn(`[tutti] ${err.message}; still trying`);
    }
  }
}

// -- presence: who is in the room -------------------------------------------------------

/**
 * The phones in the room, counted by the states of a class: each phone
 * creates one (`join`, the default), the server deletes it when the phone
 * leaves (a closed tab at once; a lost connection after the resume window),
 * and everyone keeps the collection of all of them. The class must be in the
 * server's schema files (the audience may not define classes), e.g.
 * schemas/presence.json: {"class": "presence", "description": {...}}.
 *
 * @param {Client} client connected
 * @param {string} [className='presence']
 * @param {object} [o]
 * @param {boolean} [o.join=true] create this phone's state (false: only count, e.g. a conductor)
 * @param {object} [o.values] its initial values
 * @returns {Promise<{me, collection, count: number, onChange(cb): Function, bindCount(el, words?): Function}>}
 *   me: this phone's SharedState (null without join); onChange(cb(count)) runs now and on every arrival or departure
 */
export async function presence(client, className = 'presence', { join: joinIn = true, values = {} } = {}) {
  const sm = client.stateManager;
  let me = null, collection;
  try {
    if (joinIn) me = await sm.create(className, values);
    collection = await sm.getCollection(className);
  } catch (err) {
    if (err.code === ErrorCode.UNKNOWN_CLASS) {
      err.message = `presence: the server has no class "${className}": add schemas/${className}.json ` +
        `({"class": "${className}", "description": {}}) and restart it (${err.message})`;
    }
    throw err;
  }
  const p = {
    me,
    collection,
    get count() { return collection.size; },
    onChange(cb) { return collection.onChange(() => cb(collection.size), true); },
    /** Write "N phones" into an element; words: [one, many]. Returns the unsubscribe function. */
    bindCount(el, [one, many] = ['phone', 'phones']) {
      return p.onChange((n) => { el.textContent = `${n} ${n === 1 ? one : many}`; el.dataset.count = String(n); });
    },
  };
  return p;
}

// -- controls ---------------------------------------------------------------------------

/**
 * Set one param at most once in flight: while a set is on its way, only the
 * latest value waits (a slider sends at 60 Hz, a phone on venue Wi-Fi cannot).
 * Returns set(name, value).
 */
export function coalescer(state) {
  const inflight = new Map();
  return (name, value) => {
    if (inflight.has(name)) { inflight.get(name).next = { value }; return; }
    const slot = { next: null };
    inflight.set(name, slot);
    const send = (v) => state.set({ [name]: v }).catch((e) => console.warn(e.message)).finally(() => {
      if (slot.next) { const n = slot.next; slot.next = null; send(n.value); } else inflight.delete(name);
    });
    send(value);
  };
}

/**
 * Bind a form control to a param, both ways: moving it sets the param, an
 * update from anyone moves it. <input type="range|number"> for integer and
 * float (min, max, step from the description, step from metas.step),
 * <input type="checkbox"> for boolean, <select> for enum (options filled in),
 * other inputs for string (set on change). Returns the unsubscribe function.
 */
export function bind(input, state, name) {
  const p = state.getDescription(name);
  if (!p) throw new Error(`bind: class "${state.className}" has no param "${name}"`);
  const set = coalescer(state);
  const kind = input.type === 'checkbox' ? 'checkbox' : input.tagName === 'SELECT' ? 'select' : (input.type === 'range' || input.type === 'number') ? 'number' : 'text';
  let busy = false; // a finger on the slider: do not move it under the finger
  if (kind === 'number') {
    if (Number.isFinite(p.min)) input.min = p.min;
    if (Number.isFinite(p.max)) input.max = p.max;
    input.step = p.metas?.step ?? (p.type === 'integer' ? 1 : 'any');
    input.addEventListener('pointerdown', () => { busy = true; });
    const up = () => { busy = false; paint(state.get(name)); };
    input.addEventListener('pointerup', up);
    input.addEventListener('pointercancel', up);
  } else if (kind === 'select' && p.type === 'enum') {
    const doc = input.ownerDocument;
    input.replaceChildren(...p.list.map((item, i) => {
      const o = doc.createElement('option');
      o.value = String(i); o.textContent = String(item);
      return o;
    }));
  }
  const paint = (v) => {
    if (busy) return;
    if (kind === 'checkbox') input.checked = !!v;
    else if (kind === 'select' && p.type === 'enum') input.value = String(p.list.indexOf(v));
    else input.value = v ?? '';
  };
  const read = () => {
    if (kind === 'checkbox') return input.checked;
    if (kind === 'select' && p.type === 'enum') return p.list[Number(input.value)];
    if (kind === 'number') return Number(input.value);
    return input.value;
  };
  input.addEventListener(kind === 'text' ? 'change' : 'input', () => set(name, read()));
  paint(state.get(name));
  return state.onUpdate((n) => { if (name in n) paint(n[name]); });
}
