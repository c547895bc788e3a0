// The schema version lives in PRAGMA user_version, with a migration path.
// A database written by an earlier tutti-server must open with a newer one:
// same user_version means same tables, and a new layout gets a new version
// and a migration. Here: a database in the layout of the first persistent
// server (commit 69dc985: meta, classes, states, events, sessions,
// instances, observes at user_version 1) is made from a current one by
// removing what was added later, then opened by the current server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Site, sha256 } from './lib/persist.mjs';

const sql = (db, q) => execFileSync('sqlite3', [db, q]).toString().trim();

test('a database from the first persistent schema (69dc985, user_version 1) opens and keeps its content', {
  timeout: 30000,
}, async (t) => {
  const site = await Site.create(t, { history: 100 });
  await site.start();
  const c = await site.client();
  await c.define('room', { n: { type: 'integer', default: 0 } });
  const r = await c.create('room', {});
  for (let i = 1; i <= 5; i++) await c.set(r.instance, { n: i });
  await site.stop(); // with the client still there: its session and state are kept
  // back to the 69dc985 layout: only the tables and meta keys it had
  const have = sql(site.db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").split('\n');
  const first = ['classes', 'events', 'instances', 'meta', 'observes', 'sessions', 'states'];
  const later = have.filter((n) => !first.includes(n));
  sql(site.db, `${later.map((n) => `DROP TABLE ${n};`).join(' ')} DELETE FROM meta WHERE key NOT IN ('clock', 'next_state', 'next_instance', 'next_session'); PRAGMA user_version = 1; PRAGMA journal_mode = DELETE;`);
  // and the columns added later (schema version 2: sessions.gone_at; 3: states.init; 4: sessions.role)
  const cols = sql(site.db, "SELECT name FROM pragma_table_info('sessions')").split('\n');
  if (cols.includes('gone_at')) sql(site.db, 'ALTER TABLE sessions DROP COLUMN gone_at;');
  if (cols.includes('role')) sql(site.db, 'ALTER TABLE sessions DROP COLUMN role;');
  const stateCols = sql(site.db, "SELECT name FROM pragma_table_info('states')").split('\n');
  if (stateCols.includes('init')) sql(site.db, 'ALTER TABLE states DROP COLUMN init;');
  t.diagnostic(`tables added after 69dc985: ${later.join(', ') || 'none'}`);
  const before = sha256(site.db);
  try {
    await site.start();
  } catch (err) {
    assert.equal(sha256(site.db), before, `a refused start must leave the old database untouched (start failed with: ${err.message.slice(0, 400)})`);
    throw err;
  }
  const d = await site.client();
  const att = await d.attach('room', r.state, { history: 10 });
  assert.equal(att.seq, 5);
  assert.equal(att.values.n, 5);
  assert.deepEqual(att.history.map((e) => e.changes.n), [1, 2, 3, 4, 5]);
  const fresh = await d.create('room', {});
  assert.ok(fresh.state > r.state);
  await d.close();
  await site.stop();
  assert.ok(Number(sql(site.db, 'PRAGMA user_version')) >= 1);
});

test('the current schema: user_version is set and a restart does not migrate again (content unchanged)', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t);
  await site.start();
  const c = await site.client();
  await c.define('room', { n: { type: 'integer', default: 0 } });
  await c.close();
  await site.stop();
  const v = Number(sql(site.db, 'PRAGMA user_version'));
  assert.ok(v >= 1, `user_version ${v}`);
  const schema = sql(site.db, 'SELECT sql FROM sqlite_master ORDER BY name');
  await site.start();
  await site.stop();
  assert.equal(Number(sql(site.db, 'PRAGMA user_version')), v);
  assert.equal(sql(site.db, 'SELECT sql FROM sqlite_master ORDER BY name'), schema, 'the tables are the same after a second start');
});
