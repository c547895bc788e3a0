// Security finding 5b: a class name containing NUL was accepted. Class and
// param names end up in logs, pages and error messages, so they must be
// printable: a NUL, any other C0 control, DEL or a C1 control is refused with
// a message that says so, over the wire (DEFINE) as in a schema file, and
// nothing is defined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, E, T } from '../integration/lib/harness.mjs';
import { runServerToExit, tmpDir, assertNoSanitizer as assertCleanStderr } from '../lib/server.mjs';

const h = useServer();
const DESC = { x: { type: 'integer', default: 0 } };
const BAD = ['a\u0000b', '\u0000', 'bell\u0007', 'two\nlines', '\u001b[2Jclear', 'del\u007f', 'c1\u0085'];

test('DEFINE of a class name with NUL or another control character: BAD_MESSAGE, nothing defined', async (t) => {
  const c = await h.client(t);
  for (const name of BAD) {
    const r = await c.fail(E.BAD_MESSAGE, T.DEFINE, name, DESC);
    assert.match(r.message, /control characters/, `the message should say why ${JSON.stringify(name)} is refused`);
    // not defined under the part before the NUL either (C would see that)
    const prefix = name.replace(/\u0000.*/, '');
    if (prefix !== name && prefix) await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, prefix);
  }
  // the connection is still served and printable names still work
  assert.deepEqual(await c.define('ok name é ♪', DESC), { defined: true });
});

test('DEFINE of a param name with a control character: BAD_DESCRIPTION naming the class', async (t) => {
  const c = await h.client(t);
  for (const p of ['a\u0000b', 'tab\there', 'esc\u001b']) {
    const r = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, 'pclass', { [p]: { type: 'integer', default: 0 } });
    assert.match(r.message, /pclass/);
    assert.match(r.message, /control characters/);
  }
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'pclass');
});

test('CREATE, ATTACH, DESCRIBE and OBSERVE with a NUL in the class name: refused, not truncated', async (t) => {
  const c = await h.client(t);
  await c.define('clean', DESC);
  for (const type of [T.DESCRIBE, T.OBSERVE]) await c.fail(E.BAD_MESSAGE, type, 'clean\u0000junk');
  await c.fail(E.BAD_MESSAGE, T.CREATE, 'clean\u0000junk', {});
  await c.fail(E.BAD_MESSAGE, T.ATTACH, 'clean\u0000junk', null, {});
});

for (const [what, name] of [['a NUL', 'demo\u0000evil'], ['an escape sequence', 'demo\u001b[31mred']]) {
  test(`a schema file whose class name has ${what}: the server refuses to start, naming the file`, async (t) => {
    const dir = tmpDir('tutti-sec-names-');
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const schemas = path.join(dir, 'schemas');
    fs.mkdirSync(schemas);
    fs.writeFileSync(path.join(schemas, 'bad.json'), JSON.stringify({ class: name, description: DESC }));
    const r = await runServerToExit(['--host', '127.0.0.1', '--port', '0', '--schemas', schemas, '--web', dir, '--db', ':memory:']);
    assertCleanStderr(r.stderr);
    assert.equal(r.timedOut, false, 'the server should refuse to start');
    assert.notEqual(r.code, 0);
    assert.equal(r.signal, null);
    assert.match(r.stderr, /bad\.json/);
    assert.doesNotMatch(r.stderr, /listening on/);
  });
}
