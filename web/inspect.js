// inspect.js: the operator's inspector page (/inspect). It is an ordinary
// tutti client of an admin role (the role and token come from the URL's
// fragment, as the server prints it at start): the room's figures come
// from INSPECT and its ROOM pushes (PROTOCOL.md §8b), the live values from
// attaching to the states, the history from the attach, and the actions
// are the protocol's own requests (KICK, DELETE, DELETE_CLASS, CANCEL),
// each behind a confirmation. Plots are plain SVG.
import { Client, ErrorCode, CloseCode } from '/tutti/tutti.js';

/** States attached for their live values: past this, a state shows its figures only. */
const MAX_LIVE = 200;
/** Events of a state's history fetched at attach (the rest come live). */
const HISTORY = 60;
/** Events kept per state for the timeline. */
const KEEP_EVENTS = 200;
/** Seconds the plots cover at most (the server keeps as many), and at least. */
const WINDOW = 600;
const MIN_SPAN = 60;

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const ui = {
  client: null,
  room: null,
  samples: [],                  // the last WINDOW seconds of samples, oldest first
  states: new Map(),            // stateId -> { className, owner, shared | null, events: [] }
  classes: new Map(),           // className -> { description | null, asked }
  schedules: new Map(),         // stateId -> Map(schedId -> { at, changes })
  selected: null,               // stateId shown in the detail panel
  dirty: false,
};
window.inspector = { ready: false, ui };

// ---- formatting ------------------------------------------------------------

function bytes(n) {
  if (!(n >= 0)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
const ms = (s) => (s === null || s === undefined ? '–' : s < 0.01 ? `${(s * 1000).toFixed(2)} ms` : `${(s * 1000).toFixed(1)} ms`);
const rate = (r) => (r >= 100 ? Math.round(r).toString() : r >= 10 ? r.toFixed(0) : r.toFixed(1));
function duration(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
function short(v, n = 60) {
  let t;
  try { t = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x)); } catch { t = String(v); }
  if (t === undefined) t = 'null';
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}
/** A clock error's quality class: within 1, 2, 5, 10 ms, or worse. */
function quality(err) {
  if (err === null || err === undefined) return 'q-none';
  return err <= 0.001 ? 'q-good' : err <= 0.002 ? 'q-ok' : err <= 0.005 ? 'q-meh' : 'q-bad';
}

// ---- confirmation ------------------------------------------------------------

/** Ask before an action; resolves true only on Confirm. */
function confirmAction(title, text, ok = 'Confirm') {
  const d = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = ok;
  d.returnValue = 'cancel';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    $('#confirm-cancel').focus();
  });
}

/** Run an action, telling the operator when the server refused it. */
async function act(what, fn) {
  try {
    await fn();
  } catch (err) {
    await confirmAction(`Could not ${what}`, `${err.codeName || 'error'}: ${err.message}`, 'OK');
  }
}

// ---- the room ------------------------------------------------------------------

function setTile(id, value, sub = '', level = '') {
  const t = document.getElementById(id);
  t.querySelector('.value').textContent = value;
  t.querySelector('.sub').textContent = sub;
  t.className = `tile ${level}`;
}

function renderTiles(room) {
  const s = room.sample;
  const phones = room.sample.connections;
  setTile('tile-phones', String(phones), room.resuming ? `${room.resuming} resuming · ${room.connections} sockets` : `${room.connections} sockets`,
    room.resuming ? 'warn' : '');
  const within2 = s.within[1];
  const missing = s.connections - s.reporting;
  setTile('tile-sync', s.reporting ? `${within2} / ${s.reporting}` : '–',
    `${s.within[0]} within 1 ms${missing > 0 ? ` · ${missing} not reporting` : ''}`,
    !s.reporting ? '' : within2 === s.reporting ? 'good' : within2 >= s.reporting * 0.8 ? 'warn' : 'bad');
  setTile('tile-updates', rate(s.updates), `${room.scheduled} scheduled`);
  setTile('tile-messages', `${rate(s.messagesIn)} · ${rate(s.messagesOut)}`, `in · out, ${bytes(s.bytesOut)}/s out`);
  setTile('tile-queue', bytes(room.queueBytes), 'waiting for slow phones', room.queueBytes > 1 << 20 ? 'warn' : '');
  setTile('tile-states', String(room.states), `${room.classes} classes`);
  setTile('tile-storage', room.storage ? 'failing' : bytes(room.databaseBytes), room.storage || 'writes work', room.storage ? 'bad' : '');
  $('#meta').textContent = `up ${duration(room.uptime)} · sync time ${room.time.toFixed(1)} s · ${room.inspectors} inspector${room.inspectors === 1 ? '' : 's'}`;
}

// ---- plots (SVG) -----------------------------------------------------------------

// Drawn in the SVG's own pixels (its viewBox follows its size), so text
// is never stretched; the time axis covers the samples there are, from a
// minute up to ten.
const H = 170, PAD_L = 34, PAD_B = 16, PAD_T = 8, PAD_R = 6;
let W = 600, SPAN = WINDOW;

function frame(svg, samples) {
  W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const have = samples.length ? samples[samples.length - 1].t - samples[0].t : 0;
  SPAN = Math.min(WINDOW, Math.max(MIN_SPAN, have));
}

function ago(s) {
  return s >= 60 ? `−${Math.round(s / 60)} min` : `−${Math.round(s)} s`;
}

function axes(maxY) {
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const y = PAD_T + ((H - PAD_T - PAD_B) * i) / 4;
    const v = maxY * (1 - i / 4);
    parts.push(`<line class="gridline" x1="${PAD_L}" x2="${W - PAD_R}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text x="${PAD_L - 5}" y="${y + 3}" text-anchor="end">${v >= 10 || v === 0 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)}</text>`);
  }
  for (const f of [1, 0.5, 0]) {
    const x = PAD_L + (W - PAD_L - PAD_R) * (1 - f);
    parts.push(`<text x="${x}" y="${H - 3}" text-anchor="${f === 0 ? 'end' : f === 1 ? 'start' : 'middle'}">${f ? ago(SPAN * f) : 'now'}</text>`);
  }
  return parts.join('');
}

const xOf = (t, tEnd) => PAD_L + (W - PAD_L - PAD_R) * (1 - (tEnd - t) / SPAN);
const yOf = (v, maxY) => PAD_T + (H - PAD_T - PAD_B) * (1 - v / maxY);

/** A filled band between two series (lower and upper values per sample). */
function band(samples, tEnd, maxY, lo, hi, color) {
  if (samples.length === 0) return '';
  const top = samples.map((s) => `${xOf(s.t, tEnd).toFixed(1)},${yOf(hi(s), maxY).toFixed(1)}`);
  const bottom = samples.slice().reverse().map((s) => `${xOf(s.t, tEnd).toFixed(1)},${yOf(lo(s), maxY).toFixed(1)}`);
  return `<polygon fill="${color}" points="${top.join(' ')} ${bottom.join(' ')}"/>`;
}

const BANDS = [
  { key: 'b1', label: '≤ 1 ms', color: 'var(--ok)', lo: () => 0, hi: (s) => s.within[0] },
  { key: 'b2', label: '≤ 2 ms', color: 'var(--ok-2)', lo: (s) => s.within[0], hi: (s) => s.within[1] },
  { key: 'b5', label: '≤ 5 ms', color: 'var(--warn)', lo: (s) => s.within[1], hi: (s) => s.within[2] },
  { key: 'b10', label: '≤ 10 ms', color: 'var(--warn-2)', lo: (s) => s.within[2], hi: (s) => s.within[3] },
  { key: 'bx', label: '> 10 ms', color: 'var(--bad)', lo: (s) => s.within[3], hi: (s) => s.reporting },
  { key: 'bn', label: 'no report', color: 'var(--none)', lo: (s) => s.reporting, hi: (s) => Math.max(s.reporting, s.connections) },
];

function renderPlots() {
  const samples = ui.samples;
  const tEnd = samples.length ? samples[samples.length - 1].t : 0;
  const shown = samples.filter((s) => tEnd - s.t <= WINDOW);
  const maxPhones = niceCeil(Math.max(1, ...shown.map((s) => Math.max(s.connections, s.reporting))));
  const sync = $('#plot-sync');
  frame(sync, shown);
  sync.innerHTML = axes(maxPhones) + BANDS.map((b) => band(shown, tEnd, maxPhones, b.lo, b.hi, b.color)).join('');
  const last = shown[shown.length - 1];
  $('#sync-legend').innerHTML = BANDS.map((b) => {
    const n = last ? Math.max(0, b.hi(last) - b.lo(last)) : 0;
    return `<span data-band="${b.key}"><i class="sw ${b.key}"></i>${b.label} <b>${n}</b></span>`;
  }).join('');
  const maxRate = Math.max(1, ...shown.map((s) => Math.max(s.updates, s.messagesIn)));
  const nice = niceCeil(maxRate);
  const upd = $('#plot-updates');
  frame(upd, shown);
  const line = shown.map((s) => `${xOf(s.t, tEnd).toFixed(1)},${yOf(s.messagesIn, nice).toFixed(1)}`).join(' ');
  upd.innerHTML = axes(nice) +
    band(shown, tEnd, nice, () => 0, (s) => s.updates, 'var(--accent)') +
    (shown.length ? `<polyline fill="none" stroke="#6aa7ff" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${line}"/>` : '');
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ---- sessions ---------------------------------------------------------------------

function renderSessions(room) {
  const rows = room.sessionRows.slice().sort((a, b) => (b.connected - a.connected) || a.id - b.id);
  const me = ui.client.session;
  $('#sessions-count').textContent = `${room.sessions}${room.sessionsListed < room.sessions ? ` (first ${room.sessionsListed} listed)` : ''}`;
  $('#sessions tbody').innerHTML = rows.map((s) => {
    const sy = s.sync;
    // several nodes: a session held by another node is listed with it (its
    // connection's figures are that node's)
    const there = s.node && s.node !== room.node ? ` · node ${s.node}` : '';
    const status = s.connected ? `<span class="pill live">live${there}</span>` : `<span class="pill resuming">resuming ${duration(s.goneFor)}${there}</span>`;
    const clock = s.inspecting ? '<td class="q-none">inspector</td><td></td><td></td>'
      : sy ? `<td class="num">${ms(sy.roundTrip)}</td><td class="num ${quality(sy.error)}" title="${esc(sy.status)}, ${sy.age.toFixed(0)} s ago">${ms(sy.error)}</td><td class="num">${Math.round(sy.drift * 1e6) || 0} ppm</td>`
        : '<td class="num q-none">–</td><td class="num q-none">no report</td><td></td>';
    const end = s.id === me ? '' : `<button class="btn small danger" type="button" data-action="kick" data-session="${s.id}">End</button>`;
    return `<tr data-session="${s.id}" class="${s.connected ? '' : 'gone'} ${s.id === me ? 'me' : ''}">` +
      `<td class="num">${s.id}</td><td>${esc(s.role)}</td><td class="mono">${esc(s.address ?? '–')}</td><td>${status}</td>${clock}` +
      `<td class="num">${bytes(s.queueBytes)}</td><td class="num">${rate(s.messagesIn)} · ${rate(s.messagesOut)}</td>` +
      `<td class="num">${s.owned}</td><td>${end}</td></tr>`;
  }).join('');
}

// ---- classes and states -------------------------------------------------------------

function describeParams(desc) {
  if (!desc) return '<span class="empty">…</span>';
  return Object.entries(desc).map(([k, p]) => {
    let t = p.type;
    if (p.type === 'enum') t = `enum(${(p.list || []).map((x) => short(x, 12)).join('|')})`;
    else if ((p.type === 'integer' || p.type === 'float') && (Number.isFinite(p.min) || Number.isFinite(p.max))) t += ` [${Number.isFinite(p.min) ? p.min : '−∞'}, ${Number.isFinite(p.max) ? p.max : '∞'}]`;
    const flags = [p.event && 'event', p.required && 'required', p.nullable && !p.event && 'nullable'].filter(Boolean);
    return `<span><b>${esc(k)}</b> ${esc(t)}${flags.length ? ` <small>${flags.join(', ')}</small>` : ''}</span>`;
  }).join('');
}

function askDescription(name) {
  let c = ui.classes.get(name);
  if (!c) ui.classes.set(name, c = { description: null, asked: false });
  if (!c.asked && ui.client.status === 'open') {
    c.asked = true;
    ui.client.stateManager.getClassDescription(name).then((d) => { c.description = d; schedule(); }, () => { c.asked = false; });
  }
  return c;
}

function stateValues(entry) {
  if (!entry || !entry.shared) return '<span class="empty">not attached</span>';
  const v = entry.shared.getValuesUnsafe();
  const desc = entry.shared.getDescription();
  return Object.entries(v).filter(([k]) => !desc[k]?.event).map(([k, x]) => `${esc(k)}=${esc(short(x, 24))}`).join(' ');
}

function renderClasses() {
  const room = ui.room;
  if (!room) return;
  const byClass = new Map();
  for (const r of room.stateRows) {
    if (!byClass.has(r[1])) byClass.set(r[1], []);
    byClass.get(r[1]).push(r);
  }
  $('#states-count').textContent = `${room.states} states${room.statesListed < room.states ? ` (first ${room.statesListed} listed)` : ''} · ${room.classes} classes`;
  const html = room.classRows.map(([name, n]) => {
    const c = askDescription(name);
    const rows = (byClass.get(name) || []).map(([id, , owner, roomSeq, subs, sched]) => {
      let seq = roomSeq;
      const e = ui.states.get(id);
      const others = subs - (e && e.shared ? 1 : 0);
      if (e && e.shared) seq = Math.max(seq, e.shared.seq); // live: ahead of the last ROOM
      // a changed value lights up for a moment (once per update, not per render)
      const flash = e && e.flashSeq === seq && !e.flashed ? ' flash' : '';
      if (flash) e.flashed = true;
      return `<tr data-state="${id}" data-action="select" class="${ui.selected === id ? 'selected' : ''}">` +
        `<td class="num">#${id}</td><td class="num" title="owner session">${owner === 0 ? 'server' : `s${owner}`}</td>` +
        `<td class="num" title="seq">${seq}</td><td class="num" title="other subscribers">${others} sub</td>` +
        `<td class="num" title="pending scheduled sets">${sched ? `${sched} pending` : ''}</td>` +
        `<td class="values${flash}" data-values="${id}">${stateValues(e)}</td></tr>`;
    }).join('');
    return `<div class="class" data-class="${esc(name)}"><div class="class-head"><span class="name">${esc(name)}</span>` +
      `<small>${n} state${n === 1 ? '' : 's'}</small>` +
      `<button class="btn small danger" type="button" data-action="delete-class" data-class="${esc(name)}">Delete class</button></div>` +
      `<div class="params">${describeParams(c.description)}</div>` +
      (rows ? `<table class="grid states"><tbody>${rows}</tbody></table>` : '<div class="empty">no state</div>') + '</div>';
  }).join('');
  $('#classes').innerHTML = html || '<div class="empty">no class defined</div>';
}

// live values: attach to each state (up to MAX_LIVE), with its recent history
async function onState(className, stateId, nodeId) {
  if (ui.states.has(stateId)) return;
  const entry = { className, owner: nodeId, shared: null, events: [], flashSeq: -1, flashed: true, complete: true };
  ui.states.set(stateId, entry);
  askDescription(className);
  const live = [...ui.states.values()].filter((e) => e.shared).length;
  if (live >= MAX_LIVE) return;
  try {
    const shared = await ui.client.stateManager.attach(className, stateId, { history: HISTORY });
    if (ui.states.get(stateId) !== entry) { shared.detach().catch(() => {}); return; }
    entry.shared = shared;
    entry.complete = shared.historyComplete !== false;
    entry.events = (shared.history || []).map((e) => ({ seq: e.seq, time: e.time, changes: e.changes, origin: e.origin }));
    shared.onUpdate((changes, old, ctx) => {
      if (ctx.source === 'initial') return;
      entry.events.push({ seq: ctx.seq, time: ctx.time, changes, origin: null });
      if (entry.events.length > KEEP_EVENTS) entry.events.splice(0, entry.events.length - KEEP_EVENTS);
      if (ctx.schedId !== undefined) ui.schedules.get(stateId)?.delete(ctx.schedId);
      entry.flashSeq = ctx.seq;
      entry.flashed = false;
      schedule();
    });
    shared.onDetach(() => { if (ui.states.get(stateId) === entry) entry.shared = null; schedule(); });
  } catch {
    // deleted meanwhile, or refused: shown without values
  }
  schedule();
}

function onStateGone(className, stateId) {
  ui.states.delete(stateId);
  ui.schedules.delete(stateId);
  if (ui.selected === stateId) ui.selected = null;
  schedule();
}

// ---- one state in detail: values, pending schedules, timeline ------------------------

function renderDetail() {
  const panel = $('#detail');
  const id = ui.selected;
  const entry = id === null ? null : ui.states.get(id);
  const row = ui.room?.stateRows.find((r) => r[0] === id);
  if (!entry || !row) { panel.hidden = true; return; }
  panel.hidden = false;
  panel.dataset.state = String(id);
  $('#detail-title').innerHTML = `${esc(entry.className)} <small>state #${id} · owner ${row[2] === 0 ? 'the server' : `session ${row[2]}`} · seq ${entry.shared ? Math.max(entry.shared.seq, row[3]) : row[3]}</small>`;
  const values = entry.shared ? entry.shared.getValuesUnsafe() : {};
  $('#detail-values tbody').innerHTML = Object.keys(values).length
    ? Object.entries(values).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="mono">${esc(short(v, 80))}</td></tr>`).join('')
    : '<tr><td class="empty">not attached</td></tr>';
  const scheds = [...(ui.schedules.get(id) || new Map()).entries()].sort((a, b) => a[1].at - b[1].at);
  const now = ui.client.getSyncTime();
  $('#detail-schedules').innerHTML = scheds.length ? scheds.map(([sid, s]) =>
    `<div class="sched" data-sched="${sid}"><span class="mono">#${sid} at ${s.at.toFixed(2)} (in ${Math.max(0, s.at - now).toFixed(1)} s): ${esc(short(s.changes, 50))}</span>` +
    `<button class="btn small danger" type="button" data-action="cancel" data-sched="${sid}">Cancel</button></div>`).join('')
    : '<div class="empty">none</div>';
  renderTimeline(entry, scheds, now);
}

function renderTimeline(entry, scheds, now) {
  const svg = $('#detail-timeline');
  const TW = Math.max(300, Math.round(svg.getBoundingClientRect().width) || 640), TH = 150, L = 90, R = 10, T = 10, B = 18;
  svg.setAttribute('viewBox', `0 0 ${TW} ${TH}`);
  const events = entry.events;
  const desc = entry.shared ? entry.shared.getDescription() : {};
  const params = Object.keys(desc).slice(0, 6);
  const t0 = Math.min(events.length ? events[0].time : now - 60, now - 10);
  const t1 = Math.max(now, ...scheds.map(([, s]) => s.at));
  const span = Math.max(1e-3, t1 - t0);
  const x = (t) => L + ((TW - L - R) * (t - t0)) / span;
  const lane = (i) => T + ((TH - T - B) * (i + 0.5)) / Math.max(1, params.length);
  const parts = [];
  params.forEach((p, i) => {
    parts.push(`<line class="gridline" x1="${L}" x2="${TW - R}" y1="${lane(i)}" y2="${lane(i)}"/>`);
    parts.push(`<text x="${L - 6}" y="${lane(i) + 3}" text-anchor="end">${esc(p.length > 13 ? `${p.slice(0, 12)}…` : p)}</text>`);
  });
  parts.push(`<line x1="${x(now)}" x2="${x(now)}" y1="${T - 4}" y2="${TH - B}" stroke="var(--accent)" stroke-dasharray="3 3" vector-effect="non-scaling-stroke"/>`);
  parts.push(`<text x="${x(now)}" y="${TH - 5}" text-anchor="middle">now</text>`);
  parts.push(`<text x="${L}" y="${TH - 5}">${(now - t0).toFixed(0)} s ago</text>`);
  for (const e of events) {
    params.forEach((p, i) => {
      if (!Object.prototype.hasOwnProperty.call(e.changes, p)) return;
      parts.push(`<circle cx="${x(e.time).toFixed(1)}" cy="${lane(i)}" r="3.5" fill="var(--ok)"><title>seq ${e.seq}, ${p} = ${esc(short(e.changes[p], 60))}</title></circle>`);
    });
  }
  for (const [sid, s] of scheds) {
    params.forEach((p, i) => {
      if (!Object.prototype.hasOwnProperty.call(s.changes, p)) return;
      const cx = x(s.at), cy = lane(i);
      parts.push(`<path d="M${cx} ${cy - 5} L${cx + 5} ${cy} L${cx} ${cy + 5} L${cx - 5} ${cy} Z" fill="none" stroke="var(--warn)" stroke-width="1.5"><title>scheduled #${sid}: ${p} = ${esc(short(s.changes[p], 60))}</title></path>`);
    });
  }
  svg.innerHTML = parts.join('');
  $('#detail-history-note').textContent = `${events.length} event${events.length === 1 ? '' : 's'}${entry.complete ? '' : ' (older ones left the history)'}`;
  $('#detail-events').innerHTML = events.slice(-12).reverse().map((e) =>
    `<li value="${e.seq}"><span class="t">${e.time.toFixed(2)}</span> ${esc(short(e.changes, 90))}</li>`).join('');
}

// ---- rendering on the next frame ------------------------------------------------------

function schedule() {
  if (ui.dirty) return;
  ui.dirty = true;
  requestAnimationFrame(() => {
    ui.dirty = false;
    if (!ui.room) return;
    renderClasses();
    renderDetail();
  });
}

function onRoom(room) {
  ui.room = room;
  if (room.history) ui.samples = room.history.slice();
  else ui.samples.push(room.sample);
  while (ui.samples.length && ui.samples[ui.samples.length - 1].t - ui.samples[0].t > WINDOW) ui.samples.shift();
  renderTiles(room);
  renderPlots();
  renderSessions(room);
  schedule();
}

// ---- actions -----------------------------------------------------------------------------

async function onClick(ev) {
  const b = ev.target.closest('[data-action]');
  if (!b) return;
  const client = ui.client;
  switch (b.dataset.action) {
    case 'kick': {
      const id = Number(b.dataset.session);
      const s = ui.room?.sessionRows.find((r) => r.id === id);
      const owned = s ? s.owned : 0;
      if (await confirmAction(`End session ${id}?`,
        `${s ? `${s.role}${s.address ? `, ${s.address}` : ''}` : ''}: its connection closes and it does not come back by itself` +
        `${owned ? `; the ${owned} state${owned === 1 ? '' : 's'} it created ${owned === 1 ? 'is' : 'are'} deleted` : ''}.`, 'End session')) {
        await act(`end session ${id}`, () => client.kick(id));
      }
      return;
    }
    case 'delete-class': {
      const name = b.dataset.class;
      const n = ui.room?.classRows.find((c) => c[0] === name)?.[1] ?? 0;
      if (await confirmAction(`Delete class "${name}"?`,
        `Its ${n} state${n === 1 ? '' : 's'} ${n === 1 ? 'is' : 'are'} deleted for everybody, with their history. A schema file that declares the class brings it back at the next start.`, 'Delete class')) {
        await act(`delete class ${name}`, () => client.stateManager.deleteClass(name));
      }
      return;
    }
    case 'select': {
      const id = Number(b.dataset.state);
      ui.selected = ui.selected === id ? null : id;
      schedule();
      return;
    }
    case 'cancel': {
      const id = ui.selected, sid = Number(b.dataset.sched);
      const entry = ui.states.get(id);
      if (!entry?.shared) return;
      if (await confirmAction(`Cancel scheduled set #${sid}?`, `It will not be applied to state #${id}, on the server or on any phone.`, 'Cancel the set')) {
        await act(`cancel set ${sid}`, async () => { await entry.shared.cancel(sid); ui.schedules.get(id)?.delete(sid); schedule(); });
      }
      return;
    }
    default:
  }
}

async function deleteSelected() {
  const id = ui.selected;
  const entry = ui.states.get(id);
  if (!entry) return;
  if (!entry.shared) {
    await confirmAction('Not attached', `State #${id} is not attached here (more than ${MAX_LIVE} states): it cannot be deleted from this page.`, 'OK');
    return;
  }
  if (await confirmAction(`Delete state #${id}?`, `The ${entry.className} state is deleted for everybody attached to it, with its history and pending scheduled sets.`, 'Delete state')) {
    await act(`delete state ${id}`, async () => { await ui.client.stateManager.deleteState(entry.shared); onStateGone(entry.className, id); });
  }
}

// ---- start ---------------------------------------------------------------------------------

function notice(html) {
  const n = $('#notice');
  n.innerHTML = html;
  n.hidden = false;
}

function setStatus(status) {
  const s = $('#status');
  s.dataset.status = status;
  s.querySelector('.text').textContent = { open: 'live', connecting: 'connecting', reconnecting: 'reconnecting', closed: 'offline', idle: 'idle' }[status] || status;
}

async function main() {
  const frag = new URLSearchParams(location.hash.slice(1));
  if (!frag.get('token')) {
    notice('<b>The inspector is the operator\'s.</b> Open it with the URL the server printed at start, which carries an admin role\'s token: ' +
      `<code>${esc(location.origin)}/inspect#role=admin&amp;token=…</code> (the line <code>the inspector:</code> of its banner).`);
    setStatus('closed');
    return;
  }
  // the inspector's own clock does not matter: it reports nothing
  const client = new Client({ syncReports: false });
  ui.client = client;
  window.inspector.client = client;
  client.on('status', setStatus);
  client.on('room', onRoom);
  client.on('close', ({ code }) => {
    if (code === CloseCode.UNAUTHORIZED) notice('<b>Refused:</b> the role or token in this URL is wrong (the server prints the right one at start).');
  });
  client.on('scheduled', ({ stateId, schedId, at, changes }) => {
    if (!ui.schedules.has(stateId)) ui.schedules.set(stateId, new Map());
    ui.schedules.get(stateId).set(schedId, { at, changes });
    schedule();
  });
  client.on('cancelled', ({ stateId, schedId }) => { ui.schedules.get(stateId)?.delete(schedId); schedule(); });
  setStatus('connecting');
  try {
    await client.connect();
    await client.inspect({ sessions: 1000, states: 1000 });
  } catch (err) {
    const why = err.code === ErrorCode.FORBIDDEN ? `the role "${esc(client.role)}" is not an admin role`
      : err.code === ErrorCode.UNAUTHORIZED ? 'the role or token in this URL is wrong' : esc(err.message);
    notice(`<b>The inspector cannot start:</b> ${why}.`);
    client.close();
    return;
  }
  $('#main').hidden = false;
  document.addEventListener('click', onClick);
  $('#detail-close').addEventListener('click', () => { ui.selected = null; schedule(); });
  $('#detail-delete').addEventListener('click', deleteSelected);
  // scheduled sets that fell due leave the list; the timeline's "now" moves
  setInterval(() => {
    const now = client.getSyncTime();
    for (const m of ui.schedules.values()) for (const [sid, s] of m) if (s.at < now - 1) m.delete(sid);
    if (ui.selected !== null) schedule();
  }, 1000);
  await client.stateManager.observe(onState, { onDelete: onStateGone });
  window.inspector.ready = true;
}

main();
