// Planning a sound for a scheduled set (web/tutti.js): the 'scheduled' event
// says how far ahead it arrived (lead), client.planAt(at, {outputLatency})
// whether a sound scheduled now is still heard at `at`, and
// audioOutputLatency(ctx) reads an AudioContext's latency where the browser
// reports it. Against the real server for the first two; AudioContext does
// not exist in Node, so audioOutputLatency is fed objects with the fields a
// browser's AudioContext has (the demo's browser test, tests/browser/
// 03-musical-time, checks it on Chromium's real one: 42 ms reported there).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, audioOutputLatency } from '../../web/tutti.js';
import { startServer } from '../lib/server.mjs';
import { sleep } from './live.mjs';

const SCHEMAS = { metro: { class: 'metro', server: true, description: { tick: { type: 'integer', default: -1 } } } };

test('the scheduled event carries its lead; planAt says on time or not, with the output latency', { timeout: 30000 }, async (t) => {
  const srv = await startServer({ schemas: SCHEMAS });
  const client = new Client({ url: srv.url, WebSocket, connectTimeout: 10000 });
  t.after(async () => { client.close(); await srv.stop(); });
  await client.connect();
  for (let i = 0; i < 500 && !['training', 'sync'].includes(client.getSyncReport().status); i++) await sleep(10);
  const state = await client.stateManager.attach('metro');
  const notices = [];
  client.on('scheduled', (e) => notices.push({ ...e, plan: client.planAt(e.at, { outputLatency: 0.1 }) }));
  const at = client.getSyncTime() + 0.3;
  await state.set({ tick: 1 }, { at });
  assert.equal(notices.length, 1);
  const [n] = notices;
  assert.equal(n.at, at);
  assert.ok(n.lead > 0.2 && n.lead <= 0.3, `lead ${n.lead}`);
  // planned at the notice: heard at `at` with 100 ms of latency and 5 ms of margin
  assert.equal(n.plan.onTime, true);
  assert.ok(Math.abs(n.plan.slack - (n.plan.lead - 0.1 - 0.005)) < 1e-12);
  assert.ok(Math.abs(n.plan.localTime - client.getLocalTime(at)) < 1e-9);
  assert.ok(Math.abs(n.plan.lead - n.lead) < 0.01, 'lead in local seconds ~ lead in sync seconds');

  const now = client.getSyncTime();
  const soon = client.planAt(now + 0.05, { outputLatency: 0.1 });
  assert.equal(soon.onTime, false, '50 ms ahead with 100 ms of latency: late');
  assert.ok(soon.slack < -0.05 && soon.slack > -0.06, `slack ${soon.slack}`);
  const noLatency = client.planAt(now + 0.05);
  assert.equal(noLatency.onTime, true, 'without latency, 50 ms is enough');
  assert.equal(client.planAt(now - 1).onTime, false, 'past');
  assert.throws(() => client.planAt('soon'), TypeError);
  assert.throws(() => client.planAt(NaN), TypeError);
  assert.throws(() => client.planAt(now, { outputLatency: -1 }), RangeError);
});

test('audioOutputLatency: reported outputLatency + baseLatency, else from getOutputTimestamp, else null', () => {
  assert.equal(audioOutputLatency(null), null);
  assert.equal(audioOutputLatency({ state: 'suspended', currentTime: 0, outputLatency: 0.05 }), null, 'not running');
  assert.ok(Math.abs(audioOutputLatency({ state: 'running', currentTime: 3, outputLatency: 0.032, baseLatency: 0.01 }) - 0.042) < 1e-12);
  assert.equal(audioOutputLatency({ state: 'running', currentTime: 3, outputLatency: 0.05 }), 0.05, 'no baseLatency');
  // no outputLatency: what the speaker plays now (contextTime at performanceTime, advanced to now) vs currentTime
  const perfNow = performance.now();
  const ctx = {
    state: 'running', currentTime: 10.2, baseLatency: 0.01,
    getOutputTimestamp: () => ({ contextTime: 10.1, performanceTime: perfNow - 20 }), // 10.12 played now
  };
  const l = audioOutputLatency(ctx);
  assert.ok(l > 0.075 && l < 0.081, `latency ${l}`);
  // nothing usable
  assert.equal(audioOutputLatency({ state: 'running', currentTime: 1, outputLatency: 0 }), null);
  assert.equal(audioOutputLatency({ state: 'running', currentTime: 1, getOutputTimestamp: () => ({ contextTime: 0, performanceTime: 0 }) }), null);
  assert.equal(audioOutputLatency({ state: 'running', currentTime: 1, getOutputTimestamp: () => ({ contextTime: 5, performanceTime: perfNow }) }), null, 'negative');
});
