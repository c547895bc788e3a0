// Command line and process lifecycle. --help, bad schema files
// refuse to start with a clear message, SIGTERM exits 0 (closing clients 1001).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runServerToExit, startServer, tmpDir, writeSchemas, assertNoSanitizer, tail } from '../lib/server.mjs';
import { RawClient, T } from '../lib/client.mjs';
import { orTimeout } from './lib/harness.mjs';

test('--help exits 0 and lists every documented flag', async () => {
  const r = await runServerToExit(['--help']);
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  const out = r.stdout + r.stderr;
  for (const flag of ['--host', '--port', '--schemas', '--web', '--db', '--resume-window', '--history', '--max-message', '--help']) {
    assert.ok(out.includes(flag), `--help output lacks ${flag}:\n${out}`);
  }
  assertNoSanitizer(r.stderr);
});

test('an unknown flag makes the server exit non-zero with a message', async () => {
  const r = await runServerToExit(['--no-such-flag-xyz']);
  assert.equal(r.timedOut, false, 'server kept running with an unknown flag');
  assert.notEqual(r.code, 0);
  assert.ok((r.stdout + r.stderr).includes('--no-such-flag-xyz'), `message should name the flag:\n${r.stdout}${r.stderr}`);
});

async function runWithSchemaFile(file, content) {
  const base = tmpDir();
  const schemas = writeSchemas(path.join(base, 'schemas'), [{ file, content }]);
  const web = path.join(base, 'web');
  fs.mkdirSync(web);
  return runServerToExit(['--host', '127.0.0.1', '--port', '0', '--schemas', schemas, '--web', web, '--db', ':memory:'], { timeout: 10000 });
}

function assertRefused(r, file, extra = []) {
  assert.equal(r.timedOut, false, `server started despite the bad schema ${file}:\n${tail(r.stderr)}`);
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.equal(r.signal, null, `server crashed (${r.signal}):\n${tail(r.stderr)}`);
  const out = r.stdout + r.stderr;
  assert.ok(out.includes(file), `message names the file ${file}:\n${out}`);
  for (const x of extra) assert.ok(out.includes(x), `message names ${x}:\n${out}`);
  assertNoSanitizer(r.stderr);
}

test('a schema file that is not valid JSON makes the server refuse to start, naming the file', async () => {
  const r = await runWithSchemaFile('broken.json', '{"class": "broken", "description": {');
  assertRefused(r, 'broken.json');
});

test('a schema file with an unknown param type makes the server refuse to start, naming the file and the param', async () => {
  const r = await runWithSchemaFile('badtype.json', JSON.stringify({ class: 'badtype', server: false, description: { weird: { type: 'complex', default: 0 } } }));
  assertRefused(r, 'badtype.json', ['weird']);
});

test('a schema file whose default does not match its type makes the server refuse to start', async () => {
  const r = await runWithSchemaFile('baddefault.json', JSON.stringify({ class: 'baddefault', description: { n: { type: 'integer', default: 'seven' } } }));
  assertRefused(r, 'baddefault.json', ['n']);
});

test('a schema file without a class name makes the server refuse to start', async () => {
  const r = await runWithSchemaFile('noclass.json', JSON.stringify({ description: { x: { type: 'integer', default: 0 } } }));
  assertRefused(r, 'noclass.json');
});

test('two schema files defining one class differently make the server refuse to start, naming the class', async () => {
  const base = tmpDir();
  const schemas = writeSchemas(path.join(base, 'schemas'), [
    { file: 'a.json', content: JSON.stringify({ class: 'twice', description: { x: { type: 'integer', default: 0 } } }) },
    { file: 'b.json', content: JSON.stringify({ class: 'twice', description: { x: { type: 'integer', default: 1 } } }) },
  ]);
  const web = path.join(base, 'web');
  fs.mkdirSync(web);
  const r = await runServerToExit(['--host', '127.0.0.1', '--port', '0', '--schemas', schemas, '--web', web, '--db', ':memory:']);
  assert.equal(r.timedOut, false, 'server started despite conflicting schemas');
  assert.notEqual(r.code, 0);
  assert.ok((r.stdout + r.stderr).includes('twice'), `message names the class:\n${r.stderr}`);
});

test('files of the schemas directory that are not *.json are ignored', async (t) => {
  const srv = await startServer({ resumeWindow: 0, schemas: [
    { file: 'README.md', content: '# not a schema {' },
    { file: 'notes.txt', content: 'nothing here' },
    { class: 'onlyone', server: true, description: { x: { type: 'integer', default: 0 } } },
  ] });
  try {
    const c = await RawClient.open(srv.url);
    const att = await c.call(T.ATTACH, 'onlyone', null, {});
    assert.equal(att.owner, 0);
    await c.close();
  } finally {
    await srv.stop();
  }
});

test('SIGTERM makes the server exit 0 with a client connected', async () => {
  const srv = await startServer({ resumeWindow: 0, schemas: [{ class: 'lifecycle0', server: true, description: { x: { type: 'integer', default: 0 } } }] });
  const c = await RawClient.open(srv.url);
  const st = await c.call(T.ATTACH, 'lifecycle0', null, {});
  await c.call(T.SET, st.instance, { x: 2 });
  await srv.stop();
  c.terminate();
});

test('SIGTERM closes connected clients with close code 1001', async () => {
  const srv = await startServer({ resumeWindow: 0, schemas: [{ class: 'lifecycle', server: true, description: { x: { type: 'integer', default: 0 } } }] });
  let c;
  try {
    c = await RawClient.open(srv.url);
    const st = await c.call(T.ATTACH, 'lifecycle', null, {});
    await c.call(T.SET, st.instance, { x: 2 });
  } finally {
    await srv.stop(); // exit 0 within 10 s, no sanitizer report
  }
  const info = await orTimeout(c.closed, 3000);
  assert.notEqual(info, 'timeout');
  assert.equal(info.code, 1001, 'clients are told the server is going away');
});

test('SIGTERM with no client ever connected exits 0', async () => {
  const srv = await startServer({ schemas: [], resumeWindow: 0 });
  await srv.stop();
});
