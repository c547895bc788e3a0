// Shared code of the demo pages: the demo class's controls, the bang, the
// beat. What any piece's page needs (joining, wake lock, presence, status
// line, binding controls) lives in stage.js, used here.
import { Client, audioOutputLatency } from './tutti.js';
import { connect, presence as joinPresence, keepAwake, unlockAudio, coalescer } from './stage.js';

export { keepAwake, coalescer };

/**
 * Connect, attach the server-owned `demo` state and wire the status pill.
 * Exposes everything on window.tutti for tests and the curious.
 */
export async function start({ statusEl, onReady, presence = true } = {}) {
  const client = new Client({ keepTrying: true }); // same host as the page; a phone waits for a restarting server
  const app = { client, demo: null, presence: null, phones: null, bangs: 0, ready: false, sound: new Sound(), statusLog: [] };
  window.tutti = app;
  client.on('status', (s) => app.statusLog.push(s));
  // a new session means our states are gone: stage.js reloads the page, the simplest honest recovery
  client.on('sessionlost', () => { app.ready = false; });
  await connect({ client, status: statusEl });
  app.demo = await client.stateManager.attach('demo', { history: 50 });
  // the presence class comes from schemas/presence.json: the audience may
  // not define classes (roles.json); the conductor only counts
  const room = await joinPresence(client, 'presence', { join: presence, values: { hue: Math.floor(Math.random() * 360) } });
  app.presence = room.me;
  app.phones = room.collection;
  if (onReady) await onReady(app);
  app.ready = true;
  return app;
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

/**
 * Start time (sync clock) of the current `playing` run: the server time of
 * the last event that set `playing` to true, searched in `events` (default:
 * the attach history). null when not playing or not found there.
 */
export function playingSince(demo, events = demo.history) {
  if (!demo.get('playing') || !events) return null;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if ('playing' in e.changes) return e.changes.playing ? e.time : null;
  }
  return null;
}

/** What the page played or would have played (tests read it; audio cannot be heard there). */
export function recordPlayed(entry) {
  const log = (window.tuttiPlayed ||= []);
  log.push(entry);
  if (log.length > 1000) log.splice(0, log.length - 1000);
}

/** Bind a range input to a float param (two-way); returns nothing. */
export function bindSlider(input, output, state, name, format) {
  const p = state.getDescription(name);
  const set = coalescer(state);
  let dragging = false;
  // an unbounded end is ±Infinity: a slider needs finite ones
  const min = Number.isFinite(p.min) ? p.min : 0, max = Number.isFinite(p.max) ? p.max : 1;
  const paint = (v) => {
    input.style.setProperty('--fill', `${((v - min) / (max - min)) * 100}%`);
    if (output) output.textContent = format ? format(v) : v;
  };
  input.min = min; input.max = max; input.step = p.metas?.step ?? p.step ?? 'any';
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
    if (this.ctx) { unlockAudio(this.ctx); return; }
    this.ctx = unlockAudio();
    if (!this.ctx) return;
    this.master = this.ctx.createGain();
    this.master.gain.value = 0.8;
    this.master.connect(this.ctx.destination);
    const len = Math.floor(this.ctx.sampleRate * 0.5);
    this.noise = this.ctx.createBuffer(1, len, this.ctx.sampleRate);
    const d = this.noise.getChannelData(0);
    for (let i = 0; i < len; i++) d[i] = Math.random() * 2 - 1;
  }

  get ready() { return !!this.ctx && this.ctx.state === 'running' && this.enabled; }

  /**
   * Seconds from scheduling a sound to hearing it: what the browser reports
   * (tutti.js audioOutputLatency), else ASSUMED_LATENCY. {value, reported}.
   */
  latency() {
    const reported = audioOutputLatency(this.ctx);
    return reported === null ? { value: ASSUMED_LATENCY, reported: false } : { value: reported, reported: true };
  }

  /**
   * AudioContext time at which a sound must be scheduled to be *heard* at a
   * local time (seconds, the performance.now() clock of the tutti client).
   *
   * Why not run the clock estimator on audioContext.currentTime? The page
   * connects (and syncs) before the tap that may create the AudioContext,
   * currentTime stands still while the context is suspended, and it advances
   * in render quanta (~3 ms). So the estimator keeps performance.now() and we
   * convert here: getOutputTimestamp() pairs the context time being output by
   * the speaker with the performance.now() of that moment, which includes the
   * output latency (large and device dependent on phones). Without it, fall
   * back to currentTime minus the reported latencies.
   */
  audioTime(localTime) {
    const ts = this.ctx.getOutputTimestamp ? this.ctx.getOutputTimestamp() : null;
    if (ts && ts.performanceTime > 0 && ts.contextTime > 0) return ts.contextTime + (localTime * 1000 - ts.performanceTime) / 1000;
    const latency = (this.ctx.outputLatency || 0) + (this.ctx.baseLatency || 0);
    return this.ctx.currentTime + (localTime - performance.now() / 1000) - latency;
  }

  /** A short note at a local time (now if omitted or past). */
  blip({ at, freq = 660, type = 'sine', gain = 0.5, dur = 0.18 } = {}) {
    if (!this.ready) return null;
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
    return t; // the AudioContext time it was scheduled at
  }
}

// -- the shared bang ----------------------------------------------------------

/**
 * How far ahead (seconds of sync time) a bang is scheduled. Every phone must
 * learn of it before `at` by more than its audio output latency (a sound
 * scheduled now is heard that much later): the tap's set goes up to the
 * server and the schedule comes down to each phone (two one-way trips on the
 * venue's Wi-Fi: 5-50 ms each, spikes of 100+ ms), and Android phones have
 * 40-100 ms of output latency, Bluetooth speakers 150-300 ms. 0.3 s covers
 * two 50 ms trips plus 190 ms of latency; a phone that learns of a bang too
 * late to play it on time plays it up to BANG_LATE late, else skips it. The
 * price: the tapper hears the bang 0.3 s after the tap.
 */
export const BANG_LEAD = 0.3;
/** A bang that could only be heard more than this late is skipped (an echo is not tutti). */
export const BANG_LATE = 0.05;
/** Output latency assumed where the browser reports none (older Safari): a phone's speaker. */
export const ASSUMED_LATENCY = 0.1;

/**
 * Send a bang that sounds on every phone at the same instant: a scheduled
 * set (PROTOCOL.md §6a) at BANG_LEAD seconds from now on the sync clock.
 */
export function sendBang(app) {
  const at = app.client.getSyncTime() + BANG_LEAD;
  return app.demo.set({ bang: true }, { at }).catch((err) => console.warn(err.message));
}

/**
 * Play every bang at its sync time `at`.
 *
 * The client tells us a schedule as soon as it knows it (client event
 * 'scheduled': our own set accepted, or another phone's pushed by the server,
 * ~BANG_LEAD before `at`): that is when the sound is planned. client.planAt()
 * says whether it can still be heard at `at` given this phone's output
 * latency (Sound.latency); Sound.audioTime maps `at` (on the local clock)
 * onto the audio clock, output latency included, so every phone sounds
 * together whatever its network delay and its latency. The update listener
 * fires at `at` itself (context.source 'scheduled'): it only counts and
 * flashes, and plans the sound for bangs we did not hear of in advance (we
 * attached after the set, or a bang sent without `at`).
 *
 * Late schedules: a bang that can only be heard up to BANG_LATE late plays
 * at once; later than that it is skipped (a bang heard 100 ms after the
 * others is an echo, not tutti). A bang sent without `at` (an older page)
 * has no common time to meet: it plays at once. Each plan is recorded on
 * window.tuttiPlayed and app.lastBang: {at, lead, latency, slack, onTime,
 * skipped, ...}.
 *
 * @param {object} app from start()
 * @param {object} opts
 * @param {(localTime:number, ctx:object) => number|null} opts.play schedule the sound to be heard at a local time; returns the AudioContext time or null
 * @param {(ctx:object) => void} [opts.onBang] at the bang's time (counter, flash)
 * @param {(entry:object) => void} [opts.onPlan] after each plan (e.g. show whether it was on time)
 */
export function bindBang(app, { play, onBang, onPlan }) {
  const { client } = app;
  const planned = new Set(); // schedIds planned already
  const plan = (at, schedId, how) => {
    if (schedId !== undefined) {
      if (planned.has(schedId)) return;
      planned.add(schedId);
      if (planned.size > 200) planned.delete(planned.values().next().value);
    }
    const latency = app.sound.ready ? app.sound.latency() : { value: 0, reported: false };
    const p = client.planAt(at, { outputLatency: latency.value });
    const entry = {
      kind: 'bang', at, schedId: schedId ?? null, how, plannedAt: client.getLocalTime(), localPlannedTime: p.localTime,
      lead: p.lead, latency: latency.value, latencyReported: latency.reported, slack: p.slack, onTime: p.onTime,
      skipped: false, audioTime: null,
    };
    // heard -slack late at best: past BANG_LATE it would be an echo
    if (schedId !== undefined && -p.slack > BANG_LATE) entry.skipped = true;
    else entry.audioTime = play(p.localTime, { at, schedId }) ?? null; // Sound clamps a past time to now
    app.lastBang = entry;
    recordPlayed(entry);
    if (onPlan) onPlan(entry);
  };
  client.on('scheduled', ({ stateId, schedId, at, changes }) => {
    if (app.demo && stateId === app.demo.id && changes.bang) plan(at, schedId, 'ahead');
  });
  app.demo.onUpdate((n, o, ctx) => {
    if (!('bang' in n)) return;
    app.bangs++;
    if (onBang) onBang(ctx);
    plan(ctx.time, ctx.schedId, ctx.schedId === undefined ? 'unscheduled' : 'at-time');
  });
}

/** One line about the last bang on this phone, for the page. */
export function describeBang(entry) {
  if (!entry) return '';
  const ms = (s) => `${Math.round(s * 1000)} ms`;
  const latency = `audio latency ${ms(entry.latency)}${entry.latencyReported ? '' : ' (assumed)'}`;
  if (entry.skipped) return `last bang skipped: it arrived ${ms(-entry.slack)} too late to play together · ${latency}`;
  if (entry.how === 'unscheduled') return `last bang played at once (sent without a time) · ${latency}`;
  if (entry.onTime) return `last bang on time, ${ms(entry.slack)} to spare · ${latency}`;
  return `last bang ${ms(-entry.slack)} late · ${latency}`;
}

// -- the beat, late joiners included ---------------------------------------

/**
 * While `demo.playing`, schedule a pulse on beats of the sync clock: beat k
 * at since + k * period, `since` being the server time of the event that set
 * `playing` (every event carries it). A phone that was there saw the event
 * live; one that joins later finds it in the attach history (or asks for a
 * longer history), computes its offset into the piece, getSyncTime() - since,
 * and starts at the next beat with the same index k as every other phone.
 * Recorded on window.tuttiPlayed as {kind: 'start', since, offset, source}
 * and {kind: 'beat', k, at, localPlannedTime}. Returns a handle
 * ({stop, refresh, since, offset}).
 */
export function pulse(app, { period = 0.5, lookahead = 0.25, onBeat } = {}) {
  let since = null;
  let source = null; // where since came from: 'live' | 'history' | 'history-fetch' | 'grid'
  let next = null;
  let offset = null;
  let fetching = false;
  const { client } = app;
  const findSince = (fresh = false) => {
    next = null;
    since = fresh ? null : playingSince(app.demo); // fresh: the attach history may predate a resume
    source = since === null ? null : 'history';
    if (since !== null || !app.demo.get('playing') || fetching) return;
    // playing, but the start left the short attach history (sliders make many events): ask for more
    fetching = true;
    app.demo.getHistory({ last: 1000 }).then((r) => {
      const events = Array.isArray(r) ? r : r && r.events;
      const t = playingSince(app.demo, events);
      // not there either: fall back to the sync clock's own grid (phones that
      // fall back agree with each other, not with the ones that know the start)
      if (since === null && app.demo.get('playing')) { since = t ?? 0; source = t === null ? 'grid' : 'history-fetch'; next = null; }
    }, (err) => console.warn(err.message)).finally(() => { fetching = false; });
  };
  app.demo.onUpdate((n, o, ctx) => {
    if (!('playing' in n)) return;
    if (ctx.source === 'snapshot') { findSince(true); return; } // caught up after a resume: time is not the start's
    since = n.playing ? ctx.time : null;
    source = n.playing ? 'live' : null;
    next = null;
  });
  findSince();
  const timer = setInterval(() => {
    if (!app.demo || app.demo.detached) return;
    if (!app.demo.get('playing') || since === null) return;
    const nowSync = client.getSyncTime();
    if (next === null) {
      // where we are in the piece: on a late joiner, seconds since the conductor pressed start
      offset = nowSync - since;
      next = Math.max(0, Math.ceil(offset / period));
      recordPlayed({ kind: 'start', since, offset, syncNow: nowSync, wallNow: Date.now(), firstBeat: next, source });
    }
    while (since + next * period < nowSync + lookahead) {
      const beatSync = since + next * period;
      if (beatSync >= nowSync - 0.02) {
        const at = client.getLocalTime(beatSync);
        const audioTime = app.sound.blip({
          at,
          freq: app.demo.get('frequency') * (next % 4 === 0 ? 1.5 : 1), // an accent every 4 beats: the phase shows
          type: app.demo.get('mode'),
          gain: 0.05 + 0.6 * app.demo.get('volume'),
          dur: 0.12,
        });
        recordPlayed({ kind: 'beat', k: next, at: beatSync, localPlannedTime: at, audioTime });
        if (onBeat) {
          const k = next;
          setTimeout(() => onBeat(k), Math.max(0, (at - client.getLocalTime()) * 1000));
        }
      }
      next++;
    }
  }, 50);
  return { stop: () => clearInterval(timer), refresh: () => findSince(true), get since() { return since; }, get offset() { return offset; }, get source() { return source; } };
}
