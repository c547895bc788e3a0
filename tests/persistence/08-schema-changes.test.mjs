// Editing a schema file is the normal loop while composing: a change that
// can keep the values is applied at the next start (or on SIGHUP, while the
// server runs), one that cannot is refused with the flag that proceeds, and
// typos are refused with a did-you-mean. Real restarts on a real file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Site, within } from './lib/persist.mjs';
import { runServerToExit, tail } from '../lib/server.mjs';
import { T } from '../lib/client.mjs';

const V1 = {
  level: { type: 'integer', default: 1, min: 0, max: 10 },
  label: { type: 'string', default: 'a' },
  gain: { type: 'float', default: 1, min: 0, max: 10 },
  hit: { type: 'boolean', event: true },
};

function schemaFile(site) { return join(site.schemasDir, readdirSync(site.schemasDir)[0]); }
function write(site, description, extra = {}) {
  writeFileSync(schemaFile(site), JSON.stringify({ class: 'piece', server: true, description, ...extra }));
}
const startArgs = (site, extra = []) => ['--host', '127.0.0.1', '--port', '0', '--db', site.db, '--schemas', site.schemasDir,
  '--web', site.schemasDir, '--open', ...extra];

test('a param added, removed, or given new bounds: the values are kept, clipped, and one event tells the clients', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [{ class: 'piece', server: true, description: V1 }] });
  await site.start({ args: ['--open'] });
  let c = await site.client();
  let att = await c.attach('piece', null, {});
  await c.set(att.instance, { level: 7, label: 'kept', gain: 8 });
  await c.set(att.instance, { label: 'again', hit: true });
  await c.close();
  await site.stop();

  // level stays, label goes, gain's max drops to 5, color comes
  write(site, { level: V1.level, gain: { type: 'float', default: 1, min: 0, max: 5 }, hit: V1.hit, color: { type: 'string', default: 'red' } });
  await site.start({ args: ['--open'] });
  const log = site.srv.stderr();
  assert.match(log, /param "color" added/);
  assert.match(log, /param "label" removed/);
  assert.match(log, /state \d+: param "gain" changed to fit/);
  c = await site.client();
  att = await c.attach('piece', null, { history: 10 });
  assert.deepEqual(att.values, { level: 7, gain: 5, hit: null, color: 'red' });
  assert.equal(att.seq, 3, 'the change is one event (seq 2 -> 3)');
  const last = att.history.at(-1);
  assert.equal(last.origin, 0, 'the server made it');
  assert.deepEqual(last.changes, { gain: 5, color: 'red' });
  for (const e of att.history) assert.ok(!('label' in e.changes), `no event mentions the removed param: ${JSON.stringify(e)}`);
  assert.equal(att.description.gain.max, 5);
  assert.ok(!('label' in att.description));
  await c.close();
  await site.stop();

  // the same file again: nothing changes (no event)
  await site.start({ args: ['--open'] });
  c = await site.client();
  assert.equal((await c.attach('piece', null, {})).seq, 3);
  await c.close();
  await site.stop();
});

test('a change that would lose values is refused with the exact flag; --reset-param proceeds', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [{ class: 'piece', server: true, description: V1 }] });
  await site.start({ args: ['--open'] });
  const c = await site.client();
  const att = await c.attach('piece', null, {});
  await c.set(att.instance, { level: 7, label: 'words' });
  await c.close();
  await site.stop();
  // label becomes an integer: "words" cannot follow
  write(site, { ...V1, label: { type: 'integer', default: 0 } });
  const r = await runServerToExit(startArgs(site), { timeout: 15000 });
  assert.notEqual(r.code, 0, `started:\n${tail(r.stderr)}`);
  assert.match(r.stderr, /param "label": state \d+ holds "words"/);
  assert.match(r.stderr, /--reset-param piece\.label/);
  await site.start({ args: ['--open', '--reset-param', 'piece.label'] });
  assert.match(site.srv.stderr(), /param "label" reset to its default/);
  const d = await site.client();
  const a2 = await d.attach('piece', null, {});
  assert.equal(a2.values.label, 0);
  assert.equal(a2.values.level, 7);
  await d.close();
  await site.stop();
});

test('typos in a schema file are refused with a did-you-mean, and defaults outside [min, max]', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [{ class: 'piece', server: true, description: V1 }] });
  const cases = [
    [{ description: V1, sever: true }, /unknown key "sever": did you mean "server"\?/],
    [{ description: { ...V1, level: { type: 'integer', default: 1, mni: 0 } } }, /unknown option 'mni': did you mean 'min'\?/],
    [{ description: { ...V1, level: { type: 'integer', default: 5, max: 1 } } }, /default 5 is outside \[min, max\]/],
    [{ description: { ...V1, level: { type: 'integer', default: 1, step: 1 } } }, /unknown option 'step'.*metas/],
  ];
  for (const [body, re] of cases) {
    writeFileSync(schemaFile(site), JSON.stringify({ class: 'piece', server: true, ...body }));
    const r = await runServerToExit(startArgs(site), { timeout: 15000 });
    assert.notEqual(r.code, 0, `started with ${JSON.stringify(body)}`);
    assert.match(r.stderr, re);
    assert.ok(r.stderr.includes(schemaFile(site)), 'names the file');
  }
});

test('SIGHUP reloads the schema files: connected clients get the new description and the values', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [{ class: 'piece', server: true, description: V1 }] });
  await site.start({ args: ['--open'] });
  const a = await site.client();
  const b = await site.client();
  const att = await a.attach('piece', null, {});
  const bt = await b.attach('piece', null, {});
  await a.set(att.instance, { level: 4 });
  await b.nextUpdate(bt.state);
  write(site, { ...V1, tempo: { type: 'float', default: 120 } });
  site.srv.proc.kill('SIGHUP');
  const changed = await b.nextPush((m) => m[0] === T.CLASS_CHANGED, { timeout: 10000, what: 'CLASS_CHANGED' });
  assert.equal(changed[1], 'piece');
  assert.equal(changed[2].tempo.default, 120);
  const u = await b.nextUpdate(bt.state, { timeout: 10000 });
  assert.deepEqual(u[4], { tempo: 120 });
  // a broken file on reload: logged, the class keeps its description, the server runs on
  writeFileSync(schemaFile(site), '{"class": "piece", "description": {"level": {"type": "integr"}}');
  site.srv.proc.kill('SIGHUP');
  await within((async () => { while (!/reload: .*piece|reload: .*JSON|reload:/.test(site.srv.stderr())) await new Promise((r) => setTimeout(r, 50)); })(), 10000, 'the reload error in the log');
  site.assertAlive();
  assert.equal((await a.set(att.instance, { tempo: 90 })).changes.tempo, 90);
  await a.close(); await b.close();
  await site.stop();
});

test('a client connected across a restart that changed its class resumes: CLASS_CHANGED first, then the update', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [{ class: 'piece', server: true, description: V1 }] });
  await site.start({ args: ['--open'] });
  const a = await site.client();
  const att = await a.attach('piece', null, {});
  await a.set(att.instance, { level: 3 });
  const token = a.welcome.token;
  await site.stop();
  write(site, { ...V1, pan: { type: 'float', default: 0 } });
  await site.start({ args: ['--open'] });
  const c = await site.connect();
  const w = await c.hello({ version: 1, token, seqs: { [att.state]: 1 } });
  assert.equal(w.resumed, true);
  const first = await c.nextPush(() => true);
  assert.equal(first[0], T.CLASS_CHANGED, `the first push is the new description: ${JSON.stringify(first)}`);
  const u = await c.nextUpdate(att.state);
  assert.deepEqual(u[4], { pan: 0 });
  await c.close();
  await site.stop();
});
