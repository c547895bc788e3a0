// The database holds every state and the session tokens that resume a
// session: a new file (and its -wal) is created readable by its owner only
// (0600), whatever the umask; an existing file keeps the mode its owner gave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Site } from '../persistence/lib/persist.mjs';

const modeOf = (p) => fs.statSync(p).mode & 0o777;

test('a new database file and its -wal are 0600', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t);
  await site.start();
  const c = await site.client();
  await c.define('k', { n: { type: 'integer', default: 0 } });
  await c.create('k', {});
  assert.equal(modeOf(site.db).toString(8), '600');
  assert.equal(modeOf(`${site.db}-wal`).toString(8), '600');
  assert.ok(!fs.existsSync(`${site.db}-shm`), 'no -shm (exclusive locking keeps the WAL index in memory)');
  await site.stop();
});

test('an existing database file keeps its mode', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t);
  await site.start();
  await site.stop();
  fs.chmodSync(site.db, 0o640);
  await site.start();
  const c = await site.client();
  await c.define('k', { n: { type: 'integer', default: 0 } });
  assert.equal(modeOf(site.db).toString(8), '640');
  await site.stop();
});
