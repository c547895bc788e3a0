// Schema files. `"server": true` classes get one state created and
// owned by the server (session 0); `"server": false` classes are only defined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E } from './lib/harness.mjs';

const MIXER = {
  volume: { type: 'float', default: 0.5, min: 0, max: 1, metas: { step: 0.01 } },
  playing: { type: 'boolean', default: false },
  bang: { type: 'boolean', event: true },
  mode: { type: 'enum', list: ['sine', 'square'], default: 'sine' },
};
const PLAYER = { name: { type: 'string', required: true }, x: { type: 'float', default: 0 } };

const h = useServer({
  resumeWindow: 0,
  schemas: [
    { class: 'mixer', server: true, description: MIXER },
    { class: 'player', server: false, description: PLAYER },
    { class: 'noflag', description: { n: { type: 'integer', default: 0 } } },
  ],
});

test('a server:true schema class has one state owned by session 0 at start', async (t) => {
  const c = await h.client(t);
  const att = await c.attach('mixer', null, {});
  assert.equal(att.owner, 0);
  assert.equal(att.class, 'mixer');
  assert.deepEqual(att.values, { volume: 0.5, playing: false, bang: null, mode: 'sine' });
  const obs = await c.observe('mixer');
  assert.deepEqual(obs.states, [['mixer', att.state, 0]]);
});

test('the schema description is expanded and keeps the author\'s data under metas (step)', async (t) => {
  const c = await h.client(t);
  const d = await c.describe('mixer');
  assert.equal(d.volume.metas.step, 0.01);
  assert.equal(d.volume.min, 0);
  assert.equal(d.volume.filterChange, true);
  assert.equal(d.bang.nullable, true);
});

test('clients can set a server-owned state and the others get the UPDATE', async (t) => {
  const a = await h.client(t);
  const b = await h.client(t);
  const ia = await a.attach('mixer', null, {});
  const ib = await b.attach('mixer', null, {});
  const r = await a.set(ia.instance, { playing: !ia.values.playing });
  assert.equal(r.seq, ia.seq + 1);
  const u = await b.nextUpdate(ib.state);
  assert.deepEqual(u[4], { playing: !ia.values.playing });
});

test('a client cannot delete a server-owned state (NOT_OWNER)', async (t) => {
  const a = await h.client(t);
  const ia = await a.attach('mixer', null, {});
  await a.fail(E.NOT_OWNER, T.DELETE, ia.instance);
  const b = await h.client(t);
  assert.equal((await b.attach('mixer', null, {})).state, ia.state);
});

test('a server-owned state survives the disconnect of every attached client', async (t) => {
  const a = await h.client(t);
  const ia = await a.attach('mixer', null, {});
  await a.set(ia.instance, { volume: 0.125 });
  await a.close();
  const b = await h.client(t);
  const ib = await b.attach('mixer', null, {});
  assert.equal(ib.state, ia.state);
  assert.equal(ib.values.volume, 0.125);
});

test('the server-owned state validates sets like any other (enum, clipping)', async (t) => {
  const a = await h.client(t);
  const ia = await a.attach('mixer', null, {});
  await a.fail(E.BAD_VALUE, T.SET, ia.instance, { mode: 'triangle' });
  const r = await a.set(ia.instance, { volume: 3 });
  assert.ok(r.changes.volume === undefined || r.changes.volume === 1);
  const b = await h.client(t);
  assert.equal((await b.attach('mixer', null, {})).values.volume, 1);
});

test('a server:false schema class is defined but has no state', async (t) => {
  const c = await h.client(t);
  const d = await c.describe('player');
  assert.equal(d.name.required, true);
  await c.fail(E.UNKNOWN_STATE, T.ATTACH, 'player', null, {});
  const obs = await c.observe('player');
  assert.deepEqual(obs.states, []);
});

test('a schema file without the server flag only defines the class', async (t) => {
  const c = await h.client(t);
  assert.equal((await c.describe('noflag')).n.type, 'integer');
  await c.fail(E.UNKNOWN_STATE, T.ATTACH, 'noflag', null, {});
});

test('clients can create states of a schema class', async (t) => {
  const c = await h.client(t);
  const st = await c.create('player', { name: 'p1' });
  assert.equal(st.owner, c.welcome.session);
  assert.deepEqual(st.values, { name: 'p1', x: 0 });
});

test('DEFINE of a schema class with the same description is {defined: false}', async (t) => {
  const c = await h.client(t);
  assert.deepEqual(await c.define('player', PLAYER), { defined: false });
  assert.deepEqual(await c.define('mixer', MIXER), { defined: false });
});

test('DEFINE of a schema class with a different description is CLASS_EXISTS', async (t) => {
  const c = await h.client(t);
  await c.fail(E.CLASS_EXISTS, T.DEFINE, 'mixer', { volume: { type: 'float', default: 0 } });
});

test('OBSERVE all lists the server-owned state with ownerSession 0', async (t) => {
  const c = await h.client(t);
  const obs = await c.observe(null);
  const mixers = obs.states.filter((e) => e[0] === 'mixer');
  assert.equal(mixers.length, 1);
  assert.equal(mixers[0][2], 0);
});
