// Security finding 4c: with the database file deleted while the server ran,
// acknowledgements went on (SQLite writes into the unlinked file) and the
// restart came up empty. Now the server notices within a second, says so
// loudly (the log, names the file), writes the database back at its path
// from the open connection and goes on: a restart after that comes up with
// every acknowledged update. A file put at the path meanwhile is never
// written over: changes are refused (STORAGE, /healthz 503) until it is
// moved away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Site, T, E, sleep, sha256 } from '../persistence/lib/persist.mjs';
import { healthz, until, logMatches } from './lib/storage.mjs';

const DESC = { n: { type: 'integer', default: 0 } };

function removeDatabase(site) {
  for (const f of fs.readdirSync(site.dir)) if (f.startsWith('tutti.db')) fs.unlinkSync(path.join(site.dir, f));
}

for (const how of ['rm tutti.db*', 'rm tutti.db (the -wal stays)', 'mv tutti.db elsewhere']) {
  test(`the database file deleted while running (${how}): detected, said, written back; a restart has every acknowledged update`, { timeout: 60000 }, async (t) => {
    const site = await Site.create(t, { resumeWindow: 60 });
    const srv = await site.start();
    const w = await site.client();
    await w.define('k', DESC);
    const s = await w.create('k', {});
    for (let n = 1; n <= 3; n++) await w.set(s.instance, { n });

    if (how.startsWith('rm tutti.db*')) removeDatabase(site);
    else if (how.startsWith('rm')) fs.unlinkSync(site.db);
    else fs.renameSync(site.db, path.join(site.dir, 'moved-away.db'));
    // acknowledged right after the deletion, before anyone could notice
    for (let n = 4; n <= 6; n++) assert.equal((await w.set(s.instance, { n })).seq, n);

    await logMatches(srv, /deleted, renamed or replaced while the server runs/, 5000);
    await logMatches(srv, /written back from the open database/, 5000);
    assert.ok(srv.stderr().includes(site.db), 'the log names the file');
    assert.ok(fs.existsSync(site.db), 'the file is back at its path');
    await until(async () => (await healthz(srv)).status === 200, 3000, 'healthz 200 after the write-back');
    assert.equal((await w.set(s.instance, { n: 7 })).seq, 7);

    const token = w.welcome.token;
    await site.kill9();
    await site.start();
    const back = await site.client({ version: 1, token });
    assert.equal(back.welcome.resumed, true);
    const a = await back.attach('k', s.state, {});
    assert.equal(a.seq, 7, 'every acknowledged update is in the file');
    assert.equal(a.values.n, 7);
    await site.stop();
  });
}

test('another file put at the database path is never written over; changes wait until it is moved away', { timeout: 60000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 60 });
  const srv = await site.start();
  const w = await site.client();
  await w.define('k', DESC);
  const s = await w.create('k', {});
  await w.set(s.instance, { n: 1 });
  const other = path.join(site.dir, 'someone-elses.db');
  fs.writeFileSync(other, 'a file someone else cares about\n');
  removeDatabase(site);
  fs.renameSync(other, site.db);
  const before = sha256(site.db);

  await until(async () => (await healthz(srv)).status === 503, 5000, 'healthz 503');
  assert.match((await healthz(srv)).text, /^storage failing: .*deleted or moved away/);
  await logMatches(srv, /another file is at its path now/, 3000);
  const r = await w.fail(E.STORAGE, T.SET, s.instance, { n: 2 });
  assert.match(r.message, /nothing was applied/);
  const c = await site.client(); // still served
  assert.equal((await c.attach('k', s.state, {})).values.n, 1);
  await sleep(1500);
  assert.equal(sha256(site.db), before, 'the file at the path was written over');

  fs.renameSync(site.db, other);
  await until(async () => (await healthz(srv)).status === 200, 5000, 'healthz 200 once the path is free');
  assert.equal((await w.set(s.instance, { n: 3 })).seq, 2);
  assert.equal(fs.readFileSync(other, 'utf8'), 'a file someone else cares about\n');
  await site.kill9();
  await site.start();
  const b = await site.client();
  assert.equal((await b.attach('k', s.state, {})).values.n, 3);
  await site.stop();
});
