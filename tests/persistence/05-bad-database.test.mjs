// Bad database: a corrupt or unwritable database file gives a clear
// error at start (non-zero exit, a message naming the database on stderr),
// never a crash (no sanitizer report, no signal), and never overwrites the
// file (same bytes before and after).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync, readdirSync, existsSync, statSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Site, runServerToExit, sha256, tmpDir, assertNoSanitizer, tail, SANITIZER, ROOT } from './lib/persist.mjs';

const MAX_MS = 6000; // "quickly": a refusal needs no more than SQLite's 2 s busy timeout

function dirFor(t) {
  const d = tmpDir('tutti-baddb-');
  t.after(() => rmSync(d, { recursive: true, force: true }));
  mkdirSync(join(d, 'schemas'));
  return d;
}

function args(dir, db, extra = []) {
  return ['--host', '127.0.0.1', '--port', '0', '--schemas', join(dir, 'schemas'), '--web', join(ROOT, 'web'), '--db', db, ...extra];
}

/** The server must refuse to start: exit code != 0, no signal, fast, a clear message naming the db. */
async function assertRefused(dir, db, { mention = [], extra = [] } = {}) {
  const r = await runServerToExit(args(dir, db, extra), { timeout: MAX_MS + 1000 });
  const ctx = `stderr:\n${tail(r.stderr)}`;
  assert.equal(r.timedOut, false, `the server did not exit (it should refuse the database ${db}); ${ctx}`);
  assert.equal(r.signal, null, `the server died of signal ${r.signal} (a crash); ${ctx}`);
  assert.notEqual(r.code, 0, `exit code 0 for a bad database; ${ctx}`);
  assert.ok(r.code > 0 && r.code < 128, `exit code ${r.code} looks like a crash; ${ctx}`);
  assert.ok(r.ms < MAX_MS, `took ${r.ms} ms to refuse`);
  assertNoSanitizer(r.stderr);
  assert.ok(!/abort|assert|core dumped|Segmentation/i.test(r.stderr), `looks like a crash: ${ctx}`);
  assert.ok(r.stderr.includes(db), `the message should name the database ${db}; ${ctx}`);
  for (const m of mention) assert.match(r.stderr, m, `the message should say why; ${ctx}`);
  assert.ok(!/listening on/.test(r.stderr), `it should not start serving; ${ctx}`);
  return r;
}

/** Files in dir other than the given names (e.g. -wal/-shm/-journal left behind). */
function leftovers(dir, keep) {
  return readdirSync(dir).filter((f) => !keep.includes(f));
}

test('a file of random bytes: refused, file unchanged', { timeout: 30000 }, async (t) => {
  const dir = dirFor(t);
  for (const size of [4096, 100, 70000]) {
    const db = join(dir, `random-${size}.db`);
    writeFileSync(db, randomBytes(size));
    const before = sha256(db);
    await assertRefused(dir, db, { mention: [/not a (tutti )?database|corrupt|malformed|encrypted/i] });
    assert.equal(sha256(db), before, `random-${size}.db was modified`);
    assert.deepEqual(leftovers(dir, ['schemas', ...readdirSync(dir).filter((f) => /^random-\d+\.db$/.test(f))]), [], 'no -wal/-shm/-journal left beside the file');
  }
});

test('a text file (someone\'s notes) passed as --db: refused, unchanged', { timeout: 30000 }, async (t) => {
  const dir = dirFor(t);
  const db = join(dir, 'notes.txt');
  writeFileSync(db, 'Set list\n1. intro\n2. drone\n'.repeat(200));
  const before = sha256(db);
  await assertRefused(dir, db);
  assert.equal(sha256(db), before);
});

const FOREIGN = {
  'plain': "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me'), ('and me');",
  'wal-mode': "PRAGMA journal_mode=WAL; CREATE TABLE notes(x); INSERT INTO notes VALUES ('wal');",
  'user_version 1 (tutti\'s schema version)': "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me'); PRAGMA user_version = 1;",
  'user_version 1 and a table named states': "CREATE TABLE states(a, b); INSERT INTO states VALUES (1, 2); PRAGMA user_version = 1;",
  'user_version 99 (newer)': "CREATE TABLE notes(x); PRAGMA user_version = 99;",
};

for (const [name, sql] of Object.entries(FOREIGN)) {
  test(`an SQLite database of another application (${name}): refused, file unchanged`, { timeout: 30000 }, async (t) => {
    const dir = dirFor(t);
    const db = join(dir, 'other-app.db');
    execFileSync('sqlite3', [db, sql], { stdio: 'pipe' });
    const before = sha256(db);
    const dump = execFileSync('sqlite3', [db, '.dump']).toString();
    const r = await assertRefused(dir, db);
    assert.match(r.stderr, /not a tutti database|newer/i, 'says it is not a tutti database (or too new)');
    assert.equal(sha256(db), before, `the file was modified\n${r.stderr}`);
    assert.equal(execFileSync('sqlite3', [db, '.dump']).toString(), dump, 'its content changed');
    assert.deepEqual(leftovers(dir, ['schemas', 'other-app.db']), [], 'no -wal/-shm left beside it');
    if (/99/.test(name)) assert.match(r.stderr, /newer/i, 'says the schema version is too new');
  });
}

test('a tutti database corrupted after the header: refused, never a crash, unchanged', { timeout: 60000 }, async (t) => {
  // make a real tutti database with content, then damage it
  const site = await Site.create(t, { history: 100 });
  await site.start();
  const c = await site.client();
  await c.define('room', { n: { type: 'integer', default: 0 }, s: { type: 'string', default: '' } });
  for (let i = 0; i < 20; i++) {
    const r = await c.create('room', { s: 'x'.repeat(500) });
    for (let k = 1; k <= 10; k++) await c.set(r.instance, { n: k });
  }
  await c.close();
  await site.stop();
  const good = readFileSync(site.db);
  assert.ok(good.length > 8192, 'the database has several pages');
  const dir = dirFor(t);
  const damage = {
    // every page after the 100-byte header overwritten: the schema itself is garbage
    'all-pages.db': (b) => { randomBytes(b.length - 100).copy(b, 100); },
    // the first page's b-tree (sqlite_master) garbled, the rest intact
    'schema-page.db': (b) => { randomBytes(Math.min(4096, b.length) - 100).copy(b, 100); },
    // truncated in the middle of a page
    'truncated.db': (b) => b.subarray(0, Math.floor(b.length / 2) + 123),
    // a wrong page size in the header
    'bad-header.db': (b) => { b.writeUInt16BE(1000, 16); },
  };
  for (const [name, fn] of Object.entries(damage)) {
    const bytes = Buffer.from(good);
    const out = fn(bytes) ?? bytes;
    const db = join(dir, name);
    writeFileSync(db, out);
    const before = sha256(db);
    await assertRefused(dir, db);
    assert.equal(sha256(db), before, `${name}: the damaged file was modified`);
  }
});

test('a directory as --db: refused with a clear message', { timeout: 30000 }, async (t) => {
  const dir = dirFor(t);
  const db = join(dir, 'iam-a-dir');
  mkdirSync(db);
  writeFileSync(join(db, 'precious.txt'), 'do not touch');
  await assertRefused(dir, db, { mention: [/regular file|directory|cannot open|unable to open/i] });
  assert.deepEqual(readdirSync(db), ['precious.txt'], 'nothing created inside the directory');
  assert.equal(readFileSync(join(db, 'precious.txt'), 'utf8'), 'do not touch');
});

test('a path inside a directory that does not exist: refused with a clear message, nothing created', { timeout: 30000 }, async (t) => {
  const dir = dirFor(t);
  const db = join(dir, 'no', 'such', 'dir', 'tutti.db');
  await assertRefused(dir, db, { mention: [/cannot open|unable to open|no such/i] });
  assert.equal(existsSync(join(dir, 'no')), false, 'no directory created');
});

test('a path whose parent is a regular file: refused', { timeout: 30000 }, async (t) => {
  const dir = dirFor(t);
  writeFileSync(join(dir, 'afile'), 'x');
  const db = join(dir, 'afile', 'tutti.db');
  await assertRefused(dir, db);
  assert.equal(readFileSync(join(dir, 'afile'), 'utf8'), 'x');
});

/** chattr +i makes a path immutable even for root (the tests run as root, so chmod would not stop it). */
function immutable(path) {
  try { execFileSync('chattr', ['+i', path], { stdio: 'pipe' }); } catch (err) { return { skip: String(err.stderr || err.message).trim() }; }
  return { undo: () => { try { execFileSync('chattr', ['-i', path], { stdio: 'pipe' }); } catch { /* gone */ } } };
}

/** A real tutti database with a class and a state, server stopped cleanly. */
async function goodDatabase(t) {
  const site = await Site.create(t);
  await site.start();
  const c = await site.client();
  await c.define('room', { n: { type: 'integer', default: 0 } });
  await c.create('room', { n: 5 });
  await c.close();
  await site.stop();
  return site;
}

test('an unwritable database file (immutable, so even root cannot write it): a clear error at start, unchanged', {
  timeout: 30000,
}, async (t) => {
  const site = await goodDatabase(t);
  const imm = immutable(site.db);
  if (imm.skip) { t.skip(`chattr +i not possible here: ${imm.skip}`); return; }
  t.after(imm.undo); // registered after the site's cleanup, so:
  try {
    const before = sha256(site.db);
    await assertRefused(site.dir, site.db, { mention: [/read-?only|writ|permission|cannot/i] });
    assert.equal(sha256(site.db), before);
  } finally { imm.undo(); }
});

test('a database in a directory where nothing can be created (no -wal/-shm possible): a clear error at start, unchanged', { timeout: 30000 }, async (t) => {
  const site = await goodDatabase(t);
  const imm = immutable(site.dir);
  if (imm.skip) { t.skip(`chattr +i not possible here: ${imm.skip}`); return; }
  t.after(imm.undo); // registered after the site's cleanup, so:
  try {
    const before = sha256(site.db);
    await assertRefused(site.dir, site.db);
    assert.equal(sha256(site.db), before);
  } finally { imm.undo(); }
});

test('a database in use by a running tutti-server: a second server on it refuses to start, the first keeps working', {
  timeout: 30000,
}, async (t) => {
  const site = await Site.create(t);
  await site.start();
  const a = await site.client();
  await a.define('room', { n: { type: 'integer', default: 0 } });
  const r = await a.create('room', { n: 1 });
  const res = await runServerToExit(args(site.dir, site.db, ['--port', '0', '--resume-window', '60']), { timeout: MAX_MS + 1000 });
  assert.equal(res.timedOut, false, `the second server started on a database in use:\n${tail(res.stderr)}`);
  assert.notEqual(res.code, 0);
  assert.equal(res.signal, null);
  assert.ok(res.stderr.includes(site.db), `names the database:\n${res.stderr}`);
  assertNoSanitizer(res.stderr);
  // the first server was not disturbed
  assert.equal((await a.set(r.instance, { n: 2 })).seq, 1);
  const b = await site.client();
  assert.ok(b.welcome.session > a.welcome.session);
  await site.stop();
});

test('a schema file changed so that stored values no longer fit: a clear refusal naming the file, class, param and the flag that proceeds, the database untouched', { timeout: 30000 }, async (t) => {
  const schema = (desc) => ({ class: 'mixer', server: true, description: desc });
  const site = await Site.create(t, { schemas: [schema({ volume: { type: 'float', default: 0.5 } })] });
  await site.start();
  const c = await site.client();
  const m = await c.attach('mixer', null, {});
  await c.set(m.instance, { volume: 0.9 });
  await c.close();
  await site.stop();
  const file = join(site.schemasDir, readdirSync(site.schemasDir)[0]);
  // a compatible change (a param added) is applied (08-schema-changes); this
  // one cannot keep 0.9: the volume becomes a string
  writeFileSync(file, JSON.stringify(schema({ volume: { type: 'string', default: 'loud' }, pan: { type: 'float', default: 0 } })));
  const before = sha256(site.db);
  const r = await runServerToExit(args(site.dir, site.db, ['--schemas', site.schemasDir]), { timeout: MAX_MS + 1000 });
  assert.equal(r.timedOut, false, `started with a schema that contradicts the database:\n${tail(r.stderr)}`);
  assert.notEqual(r.code, 0);
  assert.equal(r.signal, null);
  assertNoSanitizer(r.stderr);
  assert.ok(r.stderr.includes(file) && r.stderr.includes('mixer'), `names the schema file and the class:\n${r.stderr}`);
  assert.ok(r.stderr.includes('"volume"') && r.stderr.includes('0.9') && r.stderr.includes('--reset-param mixer.volume'),
    `names the param, the value and the flag that proceeds:\n${r.stderr}`);
  assert.equal(sha256(site.db), before, 'the database is untouched');
});

test('a refused start does not disturb a good database: the same file starts afterwards', { timeout: 30000 }, async (t) => {
  // sanity for the refusals above: the checks are about the content, not the path
  const site = await Site.create(t);
  await site.start();
  const c = await site.client();
  await c.define('room', { n: { type: 'integer', default: 0 } });
  const r = await c.create('room', { n: 5 });
  await site.stop(); // with the client still there: its session and state are kept
  const before = sha256(site.db);
  // a second server on the same (good) file with a bad option refuses without touching it
  const bad = await runServerToExit(args(site.dir, site.db, ['--history', 'lots']), { timeout: 10000 });
  assert.notEqual(bad.code, 0);
  assert.equal(bad.signal, null);
  assert.equal(sha256(site.db), before);
  await site.start();
  const d = await site.client();
  assert.equal((await d.attach('room', r.state, {})).values.n, 5);
  await site.stop();
  assert.ok(statSync(site.db).size > 0);
});

test('the sanitizer pattern is the one the suite checks', () => {
  assert.ok(SANITIZER.test('==1==ERROR: AddressSanitizer: heap-use-after-free'));
  assert.ok(SANITIZER.test('x.c:3:4: runtime error: signed integer overflow'));
});
