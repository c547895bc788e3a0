// Class deletion by the operator (`tutti-server --db FILE
// --delete-class NAME`, run while the server is stopped): the class and its
// states are gone after a restart, other classes are kept, and a client that
// resumes its session is told DELETED with reason "class deleted".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startServer, runServerToExit, tmpDir, assertNoSanitizer } from '../lib/server.mjs';
import { RawClient, T, E } from '../lib/client.mjs';

const DESC = { v: { type: 'integer', default: 0 } };

async function scenario(t) {
  const base = tmpDir('tutti-it-delclass-');
  const db = path.join(base, 'tutti.db');
  const schemasDir = path.join(base, 'schemas');
  const webDir = path.join(base, 'web');
  fs.mkdirSync(schemasDir);
  fs.mkdirSync(webDir);
  const opts = { db, schemasDir, webDir, resumeWindow: 600 };
  const srv = await startServer(opts);
  let a, b;
  try {
    a = await RawClient.open(srv.url);
    b = await RawClient.open(srv.url);
    await a.call(T.DEFINE, 'gone', DESC);
    await a.call(T.DEFINE, 'kept', DESC);
    const g = await a.call(T.CREATE, 'gone', {});
    const k = await a.call(T.CREATE, 'kept', {});
    const bg = await b.call(T.ATTACH, 'gone', g.state, {});
    const bk = await b.call(T.ATTACH, 'kept', k.state, {});
    const r = await a.call(T.SET, g.instance, { v: 5 });
    await b.nextUpdate(g.state);
    await a.call(T.SET, k.instance, { v: 6 });
    await b.nextUpdate(k.state);
    return { srv, opts, a, b, g, k, bg, bk, seqG: r.seq, base };
  } catch (err) {
    await srv.stop({ allowFail: true });
    throw err;
  }
}

test('--delete-class on a stopped server\'s database removes the class and its states, and keeps the others', async (t) => {
  const s = await scenario(t);
  s.a.terminate();
  s.b.terminate();
  await s.srv.stop();
  const del = await runServerToExit(['--db', s.opts.db, '--schemas', s.opts.schemasDir, '--web', s.opts.webDir, '--delete-class', 'gone']);
  assert.equal(del.timedOut, false);
  assert.equal(del.code, 0, `exit ${del.code}\n${del.stdout}${del.stderr}`);
  assert.ok((del.stdout + del.stderr).includes('gone'), 'the message names the class');
  assertNoSanitizer(del.stderr);

  const srv2 = await startServer(s.opts);
  try {
    const c = await RawClient.open(srv2.url);
    await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'gone');
    await c.fail(E.UNKNOWN_CLASS, T.ATTACH, 'gone', s.g.state, {});
    const obs = await c.call(T.OBSERVE, null);
    assert.ok(!obs.states.some((e) => e[0] === 'gone' || e[1] === s.g.state), `no state of the deleted class: ${JSON.stringify(obs.states)}`);
    const kept = await c.call(T.ATTACH, 'kept', s.k.state, {});
    assert.equal(kept.values.v, 6);
    // the class name is free again
    assert.deepEqual(await c.call(T.DEFINE, 'gone', { w: { type: 'string', default: '' } }), { defined: true });
    await c.close();
  } finally {
    await srv2.stop();
  }
});

test('a client resuming after --delete-class gets DELETED with reason "class deleted" and keeps its other attachments', async (t) => {
  const s = await scenario(t);
  const token = s.b.welcome.token;
  const session = s.b.welcome.session;
  s.a.terminate();
  s.b.terminate();
  await s.srv.stop();
  const del = await runServerToExit(['--db', s.opts.db, '--schemas', s.opts.schemasDir, '--web', s.opts.webDir, '--delete-class', 'gone']);
  assert.equal(del.code, 0, `${del.stdout}${del.stderr}`);

  const srv2 = await startServer(s.opts);
  try {
    const b2 = await RawClient.connect(srv2.url);
    const seqs = { [s.g.state]: s.seqG, [s.k.state]: 1 };
    const w = await b2.call(T.HELLO, { version: 1, token, seqs });
    assert.equal(w.resumed, true, 'the session resumes across the restart');
    assert.equal(w.session, session);
    assert.deepEqual(await b2.nextDeleted(s.g.state), [T.DELETED, s.g.state, 'class deleted']);
    await b2.fail(E.UNKNOWN_INSTANCE, T.SET, s.bg.instance, { v: 1 });
    const r = await b2.call(T.SET, s.bk.instance, { v: 7 });
    assert.deepEqual(r.changes, { v: 7 });
    await b2.close();
  } finally {
    await srv2.stop();
  }
});

test('--delete-class of an unknown class exits non-zero naming it', async () => {
  const base = tmpDir('tutti-it-delclass-');
  const r = await runServerToExit(['--db', path.join(base, 'x.db'), '--delete-class', 'never-was']);
  assert.equal(r.timedOut, false);
  assert.notEqual(r.code, 0);
  assert.ok((r.stdout + r.stderr).includes('never-was'));
  assertNoSanitizer(r.stderr);
});
