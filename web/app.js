// Shared code of the demo pages: connection, status pill, presence, audio.
import { Client } from './tutti.js';

/** The class each phone creates to say "I am here" (defined by the client). */
export const PRESENCE = {
  hue: { type: 'integer', default: 30, min: 0, max: 359 },
  label: { type: 'string', default: '' },
};

const STATUS_TEXT = { idle: 'offline', connecting: 'connecting…', open: 'live', reconnecting: 'reconnecting…', closed: 'offline' };

/**
 * Connect, attach the server-owned `demo` state and wire the status pill.
 * Exposes everything on window.tutti for tests and the curious.
 */
export async function start({ statusEl, onReady, presence = true } = {}) {
  const client = new Client(); // same host as the page
  const app = { client, demo: null, presence: null, phones: null, bangs: 0, ready: false, sound: new Sound(), statusLog: [] };
  window.tutti = app;
  const showStatus = (s) => {
    if (!statusEl) return;
    statusEl.dataset.status = s;
    statusEl.querySelector('.text').textContent = STATUS_TEXT[s] || s;
  };
  client.on('status', (s) => { app.statusLog.push(s); showStatus(s); });
  showStatus(client.status);
  const setup = async () => {
    app.demo = await client.stateManager.attach('demo', { history: 50 });
    await client.stateManager.defineClass('presence', PRESENCE);
    if (presence) app.presence = await client.stateManager.create('presence', { hue: Math.floor(Math.random() * 360) });
    app.phones = await client.stateManager.getCollection('presence');
    if (onReady) await onReady(app);
    app.ready = true;
  };
  // a new session means our states are gone: the simplest honest recovery for a page is a reload
  client.on('sessionlost', () => { app.ready = false; location.reload(); });
  await client.connect();
  await setup();
  return app;
}

/** Keep the screen on during the piece (where the browser allows it); call from a tap. */
export function keepAwake() {
  if (!navigator.wakeLock) return;
  const ask = () => navigator.wakeLock.request('screen').catch(() => {});
  ask();
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') ask(); });
}

/** Render the collection of phones as coloured dots (own one outlined). */
export function bindPhones(app, dotsEl, countEl) {
  const paint = () => {
    const states = app.phones ? [...app.phones].sort((a, b) => a.id - b.id) : [];
    dotsEl.replaceChildren(...states.map((s) => {
      const d = document.createElement('span');
      d.className = 'phone' + (app.presence && s.id === app.presence.id ? ' me' : '');
      d.style.background = `hsl(${s.get('hue')} 80% 60%)`;
      d.title = `phone ${s.id}`;
      return d;
    }));
    if (countEl) countEl.textContent = `${states.length} ${states.length === 1 ? 'phone' : 'phones'}`;
  };
  app.phones.onChange(paint, true);
}

/** Start time (sync clock) of the current `playing` run, from the attach history. */
export function playingSince(demo) {
  if (!demo.get('playing') || !demo.history) return null;
  for (let i = demo.history.length - 1; i >= 0; i--) {
    const e = demo.history[i];
    if ('playing' in e.changes) return e.changes.playing ? e.time : null;
  }
  return null;
}

/**
 * Set one param at most once in flight: while a set is on its way, only the
 * latest value waits (sliders send at 60 Hz, a phone on venue Wi-Fi cannot).
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

/** Bind a range input to a float param (two-way); returns nothing. */
export function bindSlider(input, output, state, name, format) {
  const p = state.getDescription(name);
  const set = coalescer(state);
  let dragging = false;
  const paint = (v) => {
    const min = p.min ?? 0, max = p.max ?? 1;
    input.style.setProperty('--fill', `${((v - min) / (max - min)) * 100}%`);
    if (output) output.textContent = format ? format(v) : v;
  };
  input.min = p.min ?? 0; input.max = p.max ?? 1; input.step = p.step ?? 'any';
  input.value = state.get(name); paint(state.get(name));
  input.addEventListener('pointerdown', () => { dragging = true; });
  const up = () => { dragging = false; input.value = state.get(name); paint(state.get(name)); };
  input.addEventListener('pointerup', up);
  input.addEventListener('pointercancel', up);
  input.addEventListener('input', () => { const v = Number(input.value); paint(v); set(name, v); });
  state.onUpdate((n) => {
    if (!(name in n)) return;
    if (!dragging) input.value = n[name];
    if (!dragging) paint(n[name]);
  });
}

/** Segmented buttons bound to an enum param. */
export function bindSegments(container, state, name) {
  const list = state.getDescription(name).list;
  container.replaceChildren(...list.map((item) => {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = item; b.dataset.value = item;
    b.addEventListener('click', () => state.set({ [name]: item }).catch((e) => console.warn(e.message)));
    return b;
  }));
  const paint = (v) => { for (const b of container.children) b.setAttribute('aria-pressed', String(b.dataset.value === String(v))); };
  paint(state.get(name));
  state.onUpdate((n) => { if (name in n) paint(n[name]); });
}

export function formatDuration(s) {
  s = Math.max(0, Math.floor(s));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** A tiny Web Audio engine: blips and a pulse locked to the server's clock. */
export class Sound {
  constructor() { this.ctx = null; this.master = null; this.noise = null; this.enabled = true; }

  /** Must run inside a user gesture (a tap), as browsers require. */
  unlock() {
    if (this.ctx) { this.ctx.resume(); return; }
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    this.ctx = new AC({ latencyHint: 'interactive' });
    this.master = this.ctx.createGain();
    this.master.gain.value = 0.8;
    this.master.connect(this.ctx.destination);
    const len = Math.floor(this.ctx.sampleRate * 0.5);
    this.noise = this.ctx.createBuffer(1, len, this.ctx.sampleRate);
    const d = this.noise.getChannelData(0);
    for (let i = 0; i < len; i++) d[i] = Math.random() * 2 - 1;
    this.ctx.resume();
  }

  get ready() { return !!this.ctx && this.ctx.state === 'running' && this.enabled; }

  /** AudioContext time of a local time (seconds, performance.now() clock). */
  audioTime(localTime) { return this.ctx.currentTime + (localTime - performance.now() / 1000); }

  /** A short note at a local time (now if omitted or past). */
  blip({ at, freq = 660, type = 'sine', gain = 0.5, dur = 0.18 } = {}) {
    if (!this.ready) return;
    const t = Math.max(this.ctx.currentTime + 0.005, at === undefined ? 0 : this.audioTime(at));
    const env = this.ctx.createGain();
    env.gain.setValueAtTime(0.0001, t);
    env.gain.exponentialRampToValueAtTime(Math.max(0.0002, gain), t + 0.005);
    env.gain.exponentialRampToValueAtTime(0.0001, t + dur);
    env.connect(this.master);
    let src;
    if (type === 'noise') {
      src = this.ctx.createBufferSource(); src.buffer = this.noise;
    } else {
      src = this.ctx.createOscillator(); src.type = type; src.frequency.value = freq;
    }
    src.connect(env);
    src.start(t); src.stop(t + dur + 0.02);
  }
}

/**
 * While `demo.playing`, schedule a pulse on beats of the server's clock
 * (beat k at since + k * period), so every phone pulses together, late
 * joiners included. Returns a stop function.
 */
export function pulse(app, { period = 0.5, lookahead = 0.25, onBeat } = {}) {
  let since = null;
  let next = null;
  const { client } = app;
  const refresh = () => { since = playingSince(app.demo); next = null; };
  app.demo.onUpdate((n, o, ctx) => {
    if ('playing' in n) {
      since = n.playing ? ctx.time : null;
      next = null;
    }
  });
  refresh();
  const timer = setInterval(() => {
    if (!app.demo || app.demo.detached) return;
    if (!app.demo.get('playing') || since === null) return;
    const nowSync = client.getSyncTime();
    if (next === null) next = Math.max(0, Math.ceil((nowSync - since) / period));
    while (since + next * period < nowSync + lookahead) {
      const beatSync = since + next * period;
      if (beatSync >= nowSync - 0.02) {
        const at = client.getLocalTime(beatSync);
        if (app.sound.ready) {
          app.sound.blip({
            at,
            freq: app.demo.get('frequency'),
            type: app.demo.get('mode'),
            gain: 0.05 + 0.6 * app.demo.get('volume'),
            dur: 0.12,
          });
        }
        if (onBeat) {
          const k = next;
          setTimeout(() => onBeat(k), Math.max(0, (at - performance.now() / 1000) * 1000));
        }
      }
      next++;
    }
  }, 50);
  return { stop: () => clearInterval(timer), refresh, get since() { return since; } };
}
