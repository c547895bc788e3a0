// Finding: session takeover. Presenting a session's resume token took the
// session over and left the old socket open without a session, and the
// database held the tokens themselves. Now the connection that held the
// session is closed with 4004 (PROTOCOL.md §3), the session lives on in the
// new connection, and the server keeps only SHA-256 digests of tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { tmpDir } from '../lib/server.mjs';
import { secureServer, withServer, schemasDir, asRole, phone, closeAll, closedWithin, sleep, T, VERSION } from './lib/hostile.mjs';

const PRESENCE = { class: 'presence', description: { hue: { type: 'integer', default: 30, min: 0, max: 359 } } };

test('a resume while the session is held: the old connection is closed with 4004 and the session lives on in the new one', async () => {
  // resume window 0: a session whose connection closes ends at once, so the
  // old connection's close must not end the session it lost
  await withServer({ schemas: [PRESENCE], resumeWindow: 0 }, async (srv, cs) => {
    const a = await phone(srv, { clients: cs });
    const mine = await a.create('presence', {});
    const w = await phone(srv, { clients: cs });
    await w.attach('presence', mine.state);

    const b = await phone(srv, { hello: { version: VERSION, token: a.welcome.token, seqs: { [mine.state]: 0 } }, clients: cs });
    assert.equal(b.welcome.resumed, true);
    assert.equal(b.welcome.session, a.welcome.session);
    const closed = await closedWithin(a);
    assert.equal(closed.code, 4004, 'the connection that held the session is told');
    assert.match(closed.reason, /taken over/);

    // the new connection holds the session: its instance, its state
    await b.set(mine.instance, { hue: 99 });
    assert.deepEqual((await w.nextUpdate(mine.state))[4], { hue: 99 });
    await w.expectNoPush(500, (m) => m[0] === T.DELETED, 'DELETED (the old connection\'s close ended the session)');
    assert.match(srv.stderr(), new RegExp(`session ${a.welcome.session} \\([^)]*\\): taken over`));

    await b.close(); // now the session ends (window 0): its state goes
    assert.equal((await w.nextDeleted(mine.state))[2], 'owner left');
    for (const x of [b, w]) x.assertWellFormed();
  });
});

test('the JS client whose session is taken over stops (4004): it does not take the session back', async () => {
  const srv = await secureServer({ schemas: [PRESENCE] });
  const cs = [];
  const js = new Client({ url: srv.url, WebSocket, connectTimeout: 10000, backoffMin: 50, backoffMax: 200 });
  try {
    await js.connect();
    const closes = [];
    js.on('close', (e) => closes.push(e.code));
    const b = await phone(srv, { hello: { version: VERSION, token: js.token }, clients: cs });
    assert.equal(b.welcome.resumed, true);
    for (let i = 0; i < 100 && js.status !== 'closed'; i++) await sleep(20);
    assert.deepEqual(closes, [4004]);
    assert.equal(js.status, 'closed');
    await sleep(1000); // a client that came back would now take it from b
    assert.equal(b.closeInfo, null, 'the new connection keeps the session');
    await b.ping();
  } finally {
    js.close();
    await closeAll(cs);
    await srv.stop();
  }
});

test('a connection still sending when its session is taken over gets its 4004, not a reset (1006)', async () => {
  // closing a socket whose receive queue holds unread bytes makes the kernel
  // send a reset, and the client loses the close frame it had not read yet:
  // a JS client would take 1006 for a lost network and come back
  await withServer({ schemas: [PRESENCE], resumeWindow: 30 }, async (srv, cs) => {
    const codes = [];
    for (let round = 0; round < 10; round++) {
      const a = await phone(srv, { clients: cs });
      let flooding = true;
      const flood = setInterval(() => {
        for (let i = 0; flooding && i < 50; i++) try { a.send([T.PING, 1, 0.5]); } catch { flooding = false; }
      }, 1);
      const b = await phone(srv, { hello: { version: VERSION, token: a.welcome.token }, clients: cs });
      const closed = await closedWithin(a);
      flooding = false;
      clearInterval(flood);
      codes.push(closed.code);
      b.ws.close(1000);
      await b.closed;
    }
    assert.deepEqual(codes, new Array(10).fill(4004));
  });
});

/** sessions.token of every row, and the raw bytes of the database files. */
function dbTokens(db) {
  return execFileSync('sqlite3', [db, 'SELECT id, token FROM sessions ORDER BY id']).toString().trim().split('\n')
    .filter(Boolean).map((l) => { const [id, token] = l.split('|'); return { id: Number(id), token }; });
}
function dbBytes(db) {
  return ['', '-wal'].map((x) => db + x).filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
}

test('resume tokens are kept as digests: the database never holds a token a client received; an old plain token is digested at start', async () => {
  const db = join(tmpDir('tutti-sec-db-'), 'tutti.db');
  const schemas = [PRESENCE];
  let srv = await secureServer({ schemas, db });
  const tokens = [];
  let a;
  try {
    const cs = [];
    a = await phone(srv, { clients: cs });
    const b = await phone(srv, { clients: cs });
    await a.create('presence', {});
    tokens.push(a.welcome.token, b.welcome.token);
    await a.ping(); // a turn has passed: the sessions are committed
    await sleep(200);
    for (const t of tokens) assert.ok(!dbBytes(db).includes(t), 'a token in the database files while the server runs');
    // connections lost, not closed: a goodbye would end the sessions
    await Promise.all(cs.splice(0).map((c) => c.terminate()));
  } finally {
    await srv.stop();
  }
  const rows = dbTokens(db);
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(!tokens.includes(r.token), `sessions.token of session ${r.id} is a token a client received`);
    assert.match(r.token, /^[0-9a-f]{64}$/, 'a SHA-256 digest, in hex');
  }
  for (const t of tokens) assert.ok(!dbBytes(db).includes(t), 'a token in the database files after the stop');

  // a database written before digests holds the token itself: the server
  // digests it at start, and the token still resumes its session
  const plain = 'feedfacefeedfacefeedfacefeedface'.slice(0, a.welcome.token.length);
  execFileSync('sqlite3', [db, `UPDATE sessions SET token = '${plain}' WHERE id = ${a.welcome.session}`]);
  srv = await secureServer({ schemas, db });
  try {
    const again = await phone(srv, { hello: { version: VERSION, token: plain } });
    assert.equal(again.welcome.resumed, true);
    assert.equal(again.welcome.session, a.welcome.session);
    await again.terminate(); // lost, not a goodbye: the session stays stored
  } finally {
    await srv.stop();
  }
  const after = dbTokens(db).find((r) => r.id === a.welcome.session);
  assert.ok(after, 'the session is still stored');
  assert.notEqual(after.token, plain, 'the plain token was replaced by its digest');
  assert.match(after.token, /^[0-9a-f]{64}$/);
});

test('a session resumes in the role it was made in, also after a restart; its token in another role is a new session', async () => {
  const roles = { default: 'audience', roles: { audience: {}, conductor: { token: 'conductor-secret-0001' } } };
  const dir = schemasDir([PRESENCE], roles);
  const db = join(tmpDir('tutti-sec-db-'), 'tutti.db');
  let srv = await secureServer({ schemasDir: dir, db });
  let cond, aud;
  try {
    cond = await asRole(srv, 'conductor', 'conductor-secret-0001');
    await cond.create('presence', {});
    aud = await phone(srv, {});
    await cond.ping();
  } finally {
    await srv.stop(); // with both connected: their sessions wait for a resume
    cond?.terminate();
    aud?.terminate();
  }
  srv = await secureServer({ schemasDir: dir, db });
  try {
    const back = await phone(srv, { hello: { version: VERSION, role: 'conductor', roleToken: 'conductor-secret-0001', token: cond.welcome.token } });
    assert.equal(back.welcome.resumed, true, 'the conductor resumes after the restart');
    assert.equal(back.welcome.role, 'conductor');
    assert.equal(back.welcome.session, cond.welcome.session);
    // an audience token presented with the conductor's credentials: a new session, not the phone's
    const other = await phone(srv, { hello: { version: VERSION, role: 'conductor', roleToken: 'conductor-secret-0001', token: aud.welcome.token } });
    assert.equal(other.welcome.resumed, false);
    assert.notEqual(other.welcome.session, aud.welcome.session);
    const phoneBack = await phone(srv, { hello: { version: VERSION, token: aud.welcome.token } });
    assert.equal(phoneBack.welcome.resumed, true, 'the phone resumes as the audience');
    assert.equal(phoneBack.welcome.role, 'audience');
    for (const c of [back, other, phoneBack]) c.terminate();
  } finally {
    await srv.stop();
  }
});
