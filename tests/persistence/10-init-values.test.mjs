// Each state's init values (the values given at create, coerced: what
// getInitValues() and a `required` param's default report) are kept in the
// database (schema version 3: states.init) and come back after a restart or
// a crash. A database of version 2 (no such column; class descriptions
// stored with null for unbounded min/max) opens: its classes compare equal
// to the same schema files, and a `required` param's current value stands
// for its init value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { decode, encode } from '@msgpack/msgpack';
import { Site } from './lib/persist.mjs';

const sql = (db, q) => execFileSync('sqlite3', [db, q]).toString().trim();

test('init values survive a restart and a kill -9', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t);
  await site.start();
  const c = await site.client();
  await c.define('room', {
    name: { type: 'string', required: true },
    n: { type: 'integer', default: 0 },
    f: { type: 'float', default: 0.5, max: 1 },
    any: { type: 'any', default: null, nullable: true },
  });
  const r = await c.create('room', { name: 'a', f: 3, any: { b: [1, 2], a: 'x' } });
  const want = { name: 'a', n: 0, f: 1, any: { a: 'x', b: [1, 2] } };
  assert.deepEqual(r.initValues, want, 'coerced (f clipped), every param (n: its default)');
  await c.set(r.instance, { name: 'b', n: 5, any: null });
  const fresh = await c.attach('room', r.state, { filter: ['name', 'n'] });
  assert.deepEqual(fresh.initValues, { name: 'a', n: 0 }, 'seen through the filter');
  await site.kill9();
  await site.start();
  const d = await site.client();
  const att = await d.attach('room', r.state);
  assert.deepEqual(att.values, { name: 'b', n: 5, f: 1, any: null });
  assert.deepEqual(att.initValues, want, 'after kill -9');
  await d.close();
  await site.stop();
  await site.start();
  const e = await site.client();
  assert.deepEqual((await e.attach('room', r.state)).initValues, want, 'after a clean restart');
  await site.stop();
});

const ROOM = {
  class: 'room',
  description: {
    name: { type: 'string', required: true },
    n: { type: 'integer', default: 0 },
    t: { type: 'float', default: 120, min: 20, max: null },
  },
};

/** A description as servers stored it before ±Infinity: null for an unbounded end. */
function nullBounds(desc) {
  const out = {};
  for (const [k, p] of Object.entries(desc)) {
    out[k] = { ...p };
    if (out[k].min === -Infinity) out[k].min = null;
    if (out[k].max === Infinity) out[k].max = null;
  }
  return out;
}

test('a version 2 database (no init column, null bounds) opens with the same schema files; init values from then on', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { schemas: [ROOM] });
  await site.start();
  const c = await site.client();
  const r = await c.create('room', { name: 'x' });
  await c.set(r.instance, { name: 'y', n: 2 });
  const d0 = await c.describe('room');
  assert.equal(d0.n.min, -Infinity);
  assert.equal(d0.n.max, Infinity);
  assert.equal(d0.t.max, Infinity);
  await site.stop();
  // back to what a version 2 server wrote
  const stored = decode(Buffer.from(sql(site.db, "SELECT hex(description) FROM classes WHERE name = 'room'"), 'hex'));
  assert.equal(stored.n.min, -Infinity, 'stored expanded, as DESCRIBE sends it');
  const old = Buffer.from(encode(nullBounds(stored))).toString('hex');
  sql(site.db, `UPDATE classes SET description = X'${old}' WHERE name = 'room'; ALTER TABLE sessions DROP COLUMN role; ALTER TABLE states DROP COLUMN init; PRAGMA user_version = 2;`);
  assert.equal(decode(Buffer.from(sql(site.db, "SELECT hex(description) FROM classes WHERE name = 'room'"), 'hex')).n.min, null);
  // the schema file declares the same class: the stored one must compare equal, or the start fails (CLASS_EXISTS)
  await site.start();
  const e = await site.client();
  const att = await e.attach('room', r.state);
  assert.deepEqual(att.values, { name: 'y', n: 2, t: 120 });
  assert.deepEqual(att.initValues, { name: 'y', n: 0, t: 120 }, 'the required param\'s value stands for its init value; the others their default');
  const d = await e.describe('room');
  assert.deepEqual(d, d0, 'the same expanded description');
  // a new state keeps its own init values; the old one keeps its stand-in
  const s2 = await e.create('room', { name: 'z', n: 9 });
  await e.set(att.instance, { name: 'w' });
  await site.stop();
  assert.equal(Number(sql(site.db, 'PRAGMA user_version')), 4, 'migrated');
  assert.ok(sql(site.db, "SELECT name FROM pragma_table_info('states')").split('\n').includes('init'));
  await site.start();
  const f = await site.client();
  assert.deepEqual((await f.attach('room', s2.state)).initValues, { name: 'z', n: 9, t: 120 });
  assert.deepEqual((await f.attach('room', r.state)).initValues, { name: 'y', n: 0, t: 120 }, 'written at the first commit, kept since');
  await site.stop();
});
