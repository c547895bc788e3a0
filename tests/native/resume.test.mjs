// SPDX-License-Identifier: MIT
// Resume after a crash: the server is killed with kill -9 and restarted on
// the same port and database; the C client (native_client_test resume) and
// `tutti watch` reconnect, resume their session (same session, instances,
// owned state) and get the update made after the restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, ROOT } from '../lib/server.mjs';
import { bin, start, tutti } from './lib.mjs';

test('kill -9 of the server: the C client and tutti watch resume and see the next update', { timeout: 120000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tutti-native-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'tutti.db');
  const schemasDir = join(ROOT, 'schemas');
  let srv = await startServer({ db, schemasDir, resumeWindow: 60 });
  const client = start(bin('native_client_test'), [srv.url, 'resume']);
  const watch = start(bin('tutti'), ['--url', srv.url, 'watch', 'demo']);
  try {
    const ready = await client.waitLine(/^READY session=\d+/, { timeout: 20000 });
    const session = /session=(\d+)/.exec(ready)[1];
    // the watcher is attached once it prints an update: set until it does
    // (a set made before it attached is not an update it sees)
    for (let i = 1; ; i++) {
      const v = 0.1 + i / 1000;
      await tutti(srv.url, ['set', 'demo', `volume=${v}`]);
      try {
        await watch.until(() => watch.json().find((u) => u.changes && u.changes.volume === v), { what: 'watch attached', timeout: 1000 });
        break;
      } catch (err) {
        if (i >= 20) throw err;
      }
    }
    await srv.kill9();
    srv = await startServer({ db, schemasDir, resumeWindow: 60, port: srv.port });
    const set = await tutti(srv.url, ['set', 'demo', 'volume=0.42']);
    assert.equal(set.code, 0, set.stderr);
    const line = await client.waitLine(/^RESUMED /, { timeout: 60000 });
    assert.match(line, new RegExp(`session=${session} `), 'the same session');
    assert.match(line, /"volume":0\.42/);
    const { code } = await client.done;
    assert.equal(code, 0, client.stderr.slice(-4000));
    // the watcher printed the update made after the restart, as a JSON line
    const upd = await watch.until(() => watch.json().find((u) => u.changes && u.changes.volume === 0.42), { timeout: 30000, what: 'watch line' });
    assert.equal(upd.class, 'demo');
    assert.ok(upd.seq >= 1 && typeof upd.time === 'number');
    await watch.waitLine(/session resumed/, { stderr: true, timeout: 5000 });
  } finally {
    await watch.stop('SIGINT');
    await client.stop();
    await srv.stop();
  }
});
