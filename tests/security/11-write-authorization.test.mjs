// Finding: no write authorization. Any client could ATTACH and SET any
// state, and the demo's conductor controls worked from any phone in the
// audience. Now a client has a role (HELLO role + roleToken), classes carry
// rights (PROTOCOL.md §3a), and a denied request gets FORBIDDEN with nothing
// applied and nothing sent to anyone else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client } from '../../web/tutti.js';
import { join } from 'node:path';
import { tmpDir } from '../lib/server.mjs';
import { secureServer, withServer, schemasDir, printedToken, phone, asRole, closedWithin, serverNow, sleep, T, E, VERSION } from './lib/hostile.mjs';

const CONDUCTOR = 'conductor-secret-0001';
const MAKER = 'maker-secret-000000001';
const ROLES = {
  default: 'audience',
  roles: { audience: {}, conductor: { token: CONDUCTOR }, maker: { token: MAKER, define: true } },
};
const PRESENCE = { class: 'presence', description: { hue: { type: 'integer', default: 30, min: 0, max: 359 }, label: { type: 'string', default: '' } } };
const PIECE = { class: 'piece', server: true, description: { tempo: { type: 'float', default: 60 }, text: { type: 'string', default: 'welcome' } } };

test('the demo: an audience phone sets what the piece gives it (volume, bang) and nothing else; the conductor sets the rest', async () => {
  // the repo's schemas/: demo.json with its rights, roles.json
  await withServer({}, async (srv, cs) => {
    const a = await phone(srv, { clients: cs });
    const b = await phone(srv, { clients: cs });
    assert.equal(a.welcome.role, 'audience', 'a phone without a role token is the audience');
    const ia = await a.attach('demo');
    const ib = await b.attach('demo');
    const before = ia.values;

    for (const [updates, param] of [[{ playing: true }, 'playing'], [{ message: 'pwned' }, 'message'],
      [{ volume: 0.9, message: 'pwned' }, 'message']]) {
      const e = await a.fail(E.FORBIDDEN, T.SET, ia.instance, updates);
      assert.match(e.message, /audience/);
      assert.match(e.message, new RegExp(`"${param}"`));
      assert.match(e.message, /demo/);
    }
    // scheduled, the same rights: refused at once, nothing scheduled
    await a.fail(E.FORBIDDEN, T.SET, ia.instance, { playing: true }, { at: (await serverNow(a)) + 5 });
    await a.fail(E.NOT_OWNER, T.DELETE, ia.instance);
    await b.expectNoPush(300, () => true, 'push to another phone after refused sets');

    // what the rights give the audience
    const ok = await a.set(ia.instance, { volume: 0.8 });
    assert.deepEqual(ok.changes, { volume: 0.8 });
    assert.deepEqual((await b.nextUpdate(ib.state))[4], { volume: 0.8 });
    await a.set(ia.instance, { bang: true });
    assert.deepEqual((await b.nextUpdate(ib.state))[4], { bang: true });

    // the conductor, with the token the server printed
    const c = await asRole(srv, 'conductor', printedToken(srv, 'conductor'), { clients: cs });
    assert.equal(c.welcome.role, 'conductor');
    const ic = await c.attach('demo');
    await c.set(ic.instance, { playing: true, message: 'hello' });
    assert.deepEqual((await b.nextUpdate(ib.state))[4], { playing: true, message: 'hello' });

    const after = (await b.attach('demo')).values;
    assert.deepEqual(after, { ...before, volume: 0.8, playing: true, message: 'hello', bang: null });
  });
});

test("default rights: the audience writes only what it created; others' states and server-owned ones are FORBIDDEN", async () => {
  // no roles.json: the built-in roles (audience, and a generated admin)
  await withServer({ schemas: [PRESENCE, PIECE] }, async (srv, cs) => {
    const owner = await phone(srv, { clients: cs });
    const other = await phone(srv, { clients: cs });
    const mine = await owner.create('presence', { hue: 10 });
    const theirs = await other.attach('presence', mine.state);

    const e = await other.fail(E.FORBIDDEN, T.SET, theirs.instance, { hue: 200 });
    assert.match(e.message, /"audience".*"hue".*"presence"/);
    await other.fail(E.NOT_OWNER, T.DELETE, theirs.instance);
    await owner.expectNoPush(300, () => true, 'push to the owner after a refused set');
    assert.equal((await other.attach('presence', mine.state)).values.hue, 10, 'nothing applied');

    await owner.set(mine.instance, { hue: 20 });
    assert.deepEqual((await other.nextUpdate(mine.state))[4], { hue: 20 });

    // a state of the server: no rights in its schema file, so only roles with a token set it
    const p = await other.attach('piece');
    await other.fail(E.FORBIDDEN, T.SET, p.instance, { text: 'pwned' });
    await other.fail(E.FORBIDDEN, T.SET, p.instance, { tempo: 200 }, { at: (await serverNow(other)) + 5 });
    await other.fail(E.NOT_OWNER, T.DELETE, p.instance);

    // the admin role (added, with a generated token, when roles.json names none) may do all of it
    const admin = await asRole(srv, 'admin', printedToken(srv, 'admin'), { clients: cs });
    assert.equal(admin.welcome.role, 'admin');
    const ap = await admin.attach('piece');
    await admin.set(ap.instance, { text: 'tonight' });
    assert.deepEqual((await other.nextUpdate(p.state))[4], { text: 'tonight' });
    const ao = await admin.attach('presence', mine.state);
    await admin.set(ao.instance, { hue: 300 });
    assert.deepEqual((await owner.nextUpdate(mine.state))[4], { hue: 300 });
  });
});

test('rights per class and per param: "owner", role lists and "*", for create, set and delete', async () => {
  const SOLO = {
    class: 'solo',
    rights: { set: ['owner', 'conductor'], delete: ['owner', 'conductor'], params: { note: { set: ['conductor'] }, cheer: { set: ['*'] } } },
    description: { note: { type: 'integer', default: 60 }, level: { type: 'float', default: 0.5 }, cheer: { type: 'integer', event: true } },
  };
  const CUE = { class: 'cue', rights: { create: ['conductor'] }, description: { n: { type: 'integer', default: 0 } } };
  await withServer({ schemas: [SOLO, CUE], roles: ROLES }, async (srv, cs) => {
    const owner = await phone(srv, { clients: cs });
    const other = await phone(srv, { clients: cs });
    const cond = await asRole(srv, 'conductor', CONDUCTOR, { clients: cs });
    const s = await owner.create('solo', {});
    const io = await other.attach('solo', s.state);
    const ic = await cond.attach('solo', s.state);

    await owner.set(s.instance, { level: 0.7 }); // set lists "owner"
    let e = await owner.fail(E.FORBIDDEN, T.SET, s.instance, { note: 72 }); // the param's own list has no "owner"
    assert.match(e.message, /"note"/);
    e = await other.fail(E.FORBIDDEN, T.SET, io.instance, { level: 0.1 });
    assert.match(e.message, /"level"/);
    await other.fail(E.FORBIDDEN, T.SET, io.instance, { cheer: 1, level: 0.1 }); // all or nothing
    assert.deepEqual(owner.pushes, [], 'refused sets sent nothing');
    await other.set(io.instance, { cheer: 1 }); // "*"
    assert.deepEqual((await owner.nextUpdate(s.state))[4], { cheer: 1 });
    await cond.set(ic.instance, { note: 72, level: 0.2 });
    assert.deepEqual((await owner.nextUpdate(s.state))[4], { note: 72, level: 0.2 });
    assert.equal((await other.attach('solo', s.state)).values.note, 72);

    e = await other.fail(E.FORBIDDEN, T.DELETE, io.instance);
    assert.match(e.message, /delete/);
    await cond.delete(ic.instance); // delete lists conductor
    assert.equal((await owner.nextDeleted(s.state))[2], 'deleted');

    e = await owner.fail(E.FORBIDDEN, T.CREATE, 'cue', {});
    assert.match(e.message, /"audience".*create.*"cue"/);
    assert.equal((await other.observe('cue')).states.length, 0, 'the refused CREATE made no state');
    await cond.create('cue', {});
  });
});

test('DEFINE over the wire is FORBIDDEN for the audience, so it cannot squat the name of the app\'s class; the admin may define', async () => {
  // built-in roles
  await withServer({ schemas: [PRESENCE] }, async (srv, cs) => {
    const aud = await phone(srv, { clients: cs });
    const e = await aud.fail(E.FORBIDDEN, T.DEFINE, 'scene', { junk: { type: 'string', default: 'squat' } });
    assert.match(e.message, /"audience" may not define/);
    await aud.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'scene');
    const admin = await asRole(srv, 'admin', printedToken(srv, 'admin'), { clients: cs });
    assert.deepEqual(await admin.define('scene', { x: { type: 'integer', default: 0 } }), { defined: true });
    assert.deepEqual(Object.keys(await aud.describe('scene')), ['x'], "the app's description, not the squatter's");
  });
});

test('DEFINE needs "define": true in roles.json: a role with a token but without it gets FORBIDDEN', async () => {
  await withServer({ schemas: [PRESENCE], roles: ROLES }, async (srv, cs) => {
    const DESC = { x: { type: 'integer', default: 0 } };
    const cond = await asRole(srv, 'conductor', CONDUCTOR, { clients: cs });
    const e = await cond.fail(E.FORBIDDEN, T.DEFINE, 'scene', DESC);
    assert.match(e.message, /"conductor" may not define/);
    const maker = await asRole(srv, 'maker', MAKER, { clients: cs });
    assert.deepEqual(await maker.define('scene', DESC), { defined: true });
    // another role's token does not open this one
    const c = await phone(srv, { hello: null, clients: cs });
    await c.fail(E.UNAUTHORIZED, T.HELLO, { version: VERSION, role: 'maker', roleToken: CONDUCTOR });
    assert.equal((await closedWithin(c)).code, 4003);
    for (const x of [cond, maker]) x.assertWellFormed();
  });
});

test('OBSERVE of every class lists, and notifies, only the classes the role may attach', async () => {
  const BACKSTAGE = { class: 'backstage', server: true, rights: { attach: ['conductor'] }, description: { cue: { type: 'integer', default: 0 } } };
  await withServer({ schemas: [PRESENCE, BACKSTAGE], roles: ROLES }, async (srv, cs) => {
    const aud = await phone(srv, { clients: cs });
    const cond = await asRole(srv, 'conductor', CONDUCTOR, { clients: cs });
    const p = await aud.create('presence', {});
    const all = await aud.observe(null);
    assert.deepEqual(all.states.map((s) => s[0]), ['presence'], 'the audience does not see backstage');
    assert.deepEqual((await cond.observe(null)).states.map((s) => s[0]).sort(), ['backstage', 'presence']);
    await aud.fail(E.FORBIDDEN, T.ATTACH, 'backstage', null, {});
    await aud.fail(E.FORBIDDEN, T.DESCRIBE, 'backstage');
    await aud.fail(E.FORBIDDEN, T.OBSERVE, 'backstage');

    // a new backstage state: a notice to the conductor only
    const b2 = await cond.create('backstage', {});
    assert.deepEqual(await cond.nextNotice(), [T.NOTICE, 'create', 'backstage', b2.state, cond.welcome.session]);
    const p2 = await cond.create('presence', {});
    assert.deepEqual(await aud.nextNotice(), [T.NOTICE, 'create', 'presence', p2.state, cond.welcome.session],
      'the first notice the audience gets is of presence');
    assert.equal(p.class, 'presence');
  });
});

test('--open restores the laptop ensemble: the default role sets any state and defines classes, whatever the schema files\' rights say; deleting stays the owner\'s', async () => {
  const LOCKED = { class: 'locked', server: true, rights: { set: ['conductor'] }, description: { v: { type: 'integer', default: 0 } } };
  await withServer({ schemas: [PRESENCE, PIECE, LOCKED], roles: ROLES, args: ['--open'] }, async (srv, cs) => {
    const a = await phone(srv, { clients: cs });
    const b = await phone(srv, { clients: cs });
    const p = await a.attach('piece');
    await a.set(p.instance, { text: 'anyone' });
    const mine = await b.create('presence', {});
    const theirs = await a.attach('presence', mine.state);
    await a.set(theirs.instance, { hue: 99 });
    assert.deepEqual((await b.nextUpdate(mine.state))[4], { hue: 99 });
    assert.deepEqual(await a.define('jam', { x: { type: 'integer', default: 0 } }), { defined: true });
    const l = await a.attach('locked');
    await a.set(l.instance, { v: 1 });
    await a.fail(E.NOT_OWNER, T.DELETE, theirs.instance);
    assert.match(srv.stderr(), /--open/, 'the server warns about --open');
  });
});

test('a wrong or missing role token, or an unknown role: ERROR UNAUTHORIZED, then the connection is closed with 4003', async () => {
  // the built-in roles: audience (default) and admin, whose token is generated
  await withServer({ schemas: [PRESENCE] }, async (srv, cs) => {
    const cases = [
      [{ role: 'admin' }, /needs its token/],
      [{ role: 'admin', roleToken: 'guess-guess-guess' }, /wrong token/],
      [{ role: 'admin', roleToken: 'x'.repeat(100000) }, /wrong token/],
      [{ role: 'root', roleToken: 'guess-guess-guess' }, /no role "root"/],
      [{ role: 7 }, /role must be a string/],
    ];
    for (const [opts, why] of cases) {
      const c = await phone(srv, { hello: null, clients: cs });
      const e = await c.fail(E.UNAUTHORIZED, T.HELLO, { version: VERSION, ...opts });
      assert.match(e.message, why);
      const closed = await closedWithin(c);
      assert.equal(closed.code, 4003, `close code after HELLO ${JSON.stringify(opts).slice(0, 80)}`);
      assert.match(closed.reason, /unauthorized/);
      assert.equal(c.log.length, 1, 'nothing but the ERROR was sent');
    }
    const token = printedToken(srv, 'admin');
    const almost = await phone(srv, { hello: null, clients: cs });
    await almost.fail(E.UNAUTHORIZED, T.HELLO, { version: VERSION, role: 'admin', roleToken: token.slice(0, -1) });
    assert.equal((await closedWithin(almost)).code, 4003);
    // the default role may be named, without a token; the right token works
    const aud = await phone(srv, { hello: { version: VERSION, role: 'audience' }, clients: cs });
    assert.equal(aud.welcome.role, 'audience');
    const admin = await asRole(srv, 'admin', token, { clients: cs });
    assert.equal(admin.welcome.role, 'admin');

    // the JS client: refused once, it gives up (reconnecting would be refused again)
    const refusedBefore = (srv.stderr().match(/refused: UNAUTHORIZED .*wrong token/g) || []).length;
    const js = new Client({ url: srv.url, WebSocket, role: 'admin', token: 'not-the-token', connectTimeout: 10000 });
    await assert.rejects(js.connect(), (err) => err.code === E.UNAUTHORIZED);
    await sleep(1500);
    assert.equal(js.status, 'closed');
    assert.equal((srv.stderr().match(/refused: UNAUTHORIZED .*wrong token/g) || []).length, refusedBefore + 1, 'one attempt, no retries');
  });
});

test('a generated role token is kept in the database: the same token is printed, and accepted, after a restart', async () => {
  const roles = { default: 'audience', roles: { audience: {}, conductor: { page: 'conductor.html' } } };
  const dir = schemasDir([PRESENCE], roles);
  const db = join(tmpDir('tutti-sec-db-'), 'tutti.db');
  let srv = await secureServer({ schemasDir: dir, db });
  const first = { conductor: printedToken(srv, 'conductor'), admin: printedToken(srv, 'admin') };
  assert.match(first.conductor, /^[0-9a-f]{32,}$/);
  assert.notEqual(first.conductor, first.admin);
  let c = await asRole(srv, 'conductor', first.conductor);
  await c.close();
  await srv.stop();

  srv = await secureServer({ schemasDir: dir, db });
  try {
    assert.equal(printedToken(srv, 'conductor'), first.conductor, 'the same conductor token after the restart');
    assert.equal(printedToken(srv, 'admin'), first.admin, 'the same admin token after the restart');
    c = await asRole(srv, 'conductor', first.conductor);
    assert.equal(c.welcome.role, 'conductor');
    await c.close();
    const a = await asRole(srv, 'admin', first.admin);
    assert.equal(a.welcome.role, 'admin');
    await a.close();
  } finally {
    await srv.stop();
  }
  // another database: another token (generated, not a constant)
  srv = await secureServer({ schemasDir: dir, db: join(tmpDir('tutti-sec-db-'), 'tutti.db') });
  try {
    assert.notEqual(printedToken(srv, 'conductor'), first.conductor);
  } finally {
    await srv.stop();
  }
});
