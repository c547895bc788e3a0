// Finding: caps were per session only. More connections made 100k states in
// 14 s and 140k sessions in 40 s; DEFINE was capped by count only (99
// classes of 1 MB took 289 MiB), once the class cap was reached legitimate
// DEFINEs failed forever, and a name defined first squatted the real app's
// class. Now: connections and new sessions per address, sessions and states
// in all, the size of a description, DEFINE by rights, classes defined per
// session (PROTOCOL.md §13). Clients come from several loopback addresses
// (127.0.0.2, 127.0.0.3...): for the server, so many phones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withServer, phone, asRole, printedToken, sleep, RawClient, T, E, VERSION } from './lib/hostile.mjs';

const PRESENCE = { class: 'presence', description: { hue: { type: 'integer', default: 30 } } };

test('--max-conns-per-addr: one address gets no more connections; another address still gets in; a closed one frees a place', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-conns-per-addr', '5'] }, async (srv, cs) => {
    for (let i = 0; i < 5; i++) await phone(srv, { from: '127.0.0.2', hello: null, clients: cs });
    await assert.rejects(phone(srv, { from: '127.0.0.2', hello: null, clients: cs }), 'a sixth connection from 127.0.0.2');
    assert.match(srv.stderr(), /refused a connection from \S*127\.0\.0\.2: too many connections from this address \(--max-conns-per-addr\)/);
    const other = await phone(srv, { from: '127.0.0.3', clients: cs });
    await other.create('presence', {});
    // the five are still served
    for (const c of cs.slice(0, 5)) await c.ping();
    await cs[0].close();
    let again = null;
    for (let i = 0; i < 50 && !again; i++) {
      again = await phone(srv, { from: '127.0.0.2', clients: cs }).catch(() => null);
      if (!again) await sleep(50);
    }
    assert.ok(again, 'a place freed by a close is given again');
  });
});

test('--max-new-sessions-per-addr: past it a HELLO gets LIMIT (and the connection stays); resumes and other addresses still go', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-new-sessions-per-addr', '5'] }, async (srv, cs) => {
    const tokens = [];
    for (let i = 0; i < 5; i++) {
      const c = await phone(srv, { from: '127.0.0.4', clients: cs });
      tokens.push(c.welcome.token);
      await c.terminate(); // lost, not a goodbye: the session may resume
    }
    const sixth = await phone(srv, { from: '127.0.0.4', hello: null, clients: cs });
    const e = await sixth.fail(E.LIMIT, T.HELLO, { version: VERSION });
    assert.match(e.message, /too many new sessions from \S*127\.0\.0\.4 \(--max-new-sessions-per-addr 5 a minute\)/);
    await sixth.ping(); // a refused HELLO is no reason to close
    await sixth.fail(E.NOT_READY, T.CREATE, 'presence', {});
    const resumed = await sixth.hello({ version: VERSION, token: tokens[0] });
    assert.equal(resumed.resumed, true, 'a resume is not a new session');
    const elsewhere = await phone(srv, { from: '127.0.0.5', clients: cs });
    assert.equal(elsewhere.welcome.resumed, false);
  });
});

test('--max-sessions: sessions in all, those waiting to resume included; past it a new session gets LIMIT, a resume still goes', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-sessions', '3'] }, async (srv, cs) => {
    const a = await phone(srv, { from: '127.0.0.2', clients: cs });
    await phone(srv, { from: '127.0.0.3', clients: cs });
    await phone(srv, { from: '127.0.0.4', clients: cs });
    const late = await phone(srv, { from: '127.0.0.5', hello: null, clients: cs });
    let e = await late.fail(E.LIMIT, T.HELLO, { version: VERSION });
    assert.match(e.message, /too many sessions \(--max-sessions 3\)/);
    await a.terminate(); // lost: its session waits for a resume (60 s), still counted
    e = await late.fail(E.LIMIT, T.HELLO, { version: VERSION });
    const back = await phone(srv, { from: '127.0.0.2', hello: { version: VERSION, token: a.welcome.token }, clients: cs });
    assert.equal(back.welcome.resumed, true);
  });
});

test('--max-total-states: states in all, whoever made them; a delete frees a place', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-total-states', '5'] }, async (srv, cs) => {
    const a = await phone(srv, { from: '127.0.0.2', clients: cs });
    const b = await phone(srv, { from: '127.0.0.3', clients: cs });
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await a.create('presence', {}));
    await b.create('presence', {});
    await b.create('presence', {});
    const e = await b.fail(E.LIMIT, T.CREATE, 'presence', {});
    assert.match(e.message, /too many states \(--max-total-states 5\)/);
    assert.equal((await b.observe('presence')).states.length, 5);
    await a.delete(mine[0].instance);
    await b.create('presence', {});
  });
});

/** A description of about `bytes` bytes: one param whose metas carry a long note. */
function descOf(bytes) {
  return { x: { type: 'integer', default: 0, metas: { note: 'n'.repeat(bytes) } } };
}

test('--max-description: a DEFINE whose description is too large gets BAD_DESCRIPTION and defines nothing', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-description', '2048'] }, async (srv, cs) => {
    const admin = await asRole(srv, 'admin', printedToken(srv, 'admin'), { clients: cs });
    const e = await admin.fail(E.BAD_DESCRIPTION, T.DEFINE, 'big', descOf(3000));
    assert.match(e.message, /"big".*more than --max-description 2048/);
    await admin.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'big');
    assert.deepEqual(await admin.define('big', descOf(1000)), { defined: true });
  });
});

test('the audience cannot fill the class table (DEFINE is FORBIDDEN), so the app\'s own DEFINEs still go', async () => {
  await withServer({ schemas: [PRESENCE], args: ['--max-classes', '3'] }, async (srv, cs) => {
    const phones = [];
    for (const from of ['127.0.0.2', '127.0.0.3']) phones.push(await phone(srv, { from, clients: cs }));
    for (let i = 0; i < 4; i++) {
      const e = await phones[i % 2].fail(E.FORBIDDEN, T.DEFINE, `squat${i}`, descOf(10));
      assert.match(e.message, /may not define/);
    }
    const app = await asRole(srv, 'admin', printedToken(srv, 'admin'), { clients: cs });
    assert.deepEqual(await app.define('scene', { x: { type: 'integer', default: 0 } }), { defined: true });
    assert.deepEqual(await app.define('mixer', { x: { type: 'integer', default: 0 } }), { defined: true });
    const e = await app.fail(E.LIMIT, T.DEFINE, 'fourth', { x: { type: 'integer', default: 0 } });
    assert.match(e.message, /--max-classes 3/);
  });
});

test('classes defined over the wire per session: 100, then LIMIT for new names; identical re-DEFINEs and other sessions still go', async () => {
  await withServer({ schemas: [PRESENCE] }, async (srv, cs) => {
    const token = printedToken(srv, 'admin');
    const a = await asRole(srv, 'admin', token, { clients: cs });
    const DESC = { x: { type: 'integer', default: 0 } };
    a.sendMany(Array.from({ length: 100 }, (_, i) => [T.DEFINE, 1000 + i, `k${i}`, DESC]));
    for (let i = 0; i < 100; i++) assert.deepEqual((await a.waitReply(1000 + i))[2], { defined: true });
    const e = await a.fail(E.LIMIT, T.DEFINE, 'k100', DESC);
    assert.match(e.message, /defined 100 classes already/);
    assert.deepEqual(await a.define('k5', DESC), { defined: false }, 'an identical DEFINE is a no-op, not a new class');
    const b = await asRole(srv, 'admin', token, { from: '127.0.0.2', clients: cs });
    assert.deepEqual(await b.define('k100', DESC), { defined: true });
    const c = await RawClient.open(srv.url);
    cs.push(c);
    await c.fail(E.FORBIDDEN, T.DEFINE, 'k101', DESC);
  });
});
