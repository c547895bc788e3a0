// The operator's log (README "Logs"): one line per event on stderr, with
// local time to the millisecond, the level, and the client named by session
// id, role and address: new sessions, resumes, goodbyes, lost connections,
// sessions ended by the resume window, refused requests, slow consumers.
// Lines a client can cause are rate-limited, with a count of the suppressed
// ones; -v adds debug lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { RawClient, T, E } from '../lib/client.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const STAMP = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}`;
const line = (level, rest) => new RegExp(`^${STAMP} ${level.padEnd(5)} ${rest}$`, 'm');

async function waitLog(srv, re, what, timeout = 5000) {
  const t0 = Date.now();
  while (!re.test(srv.stderr())) {
    if (Date.now() - t0 > timeout) assert.fail(`no log line for ${what} (${re}) in:\n${srv.stderr().slice(-3000)}`);
    await sleep(20);
  }
}

test('sessions, goodbyes, lost connections, resumes, refusals and the window are logged with time, session, role and address', async () => {
  const srv = await startServer({ schemas: [], resumeWindow: 1 });
  try {
    const a = await RawClient.open(srv.url);
    const wa = a.welcome;
    await waitLog(srv, line('info', `session ${wa.session} \\(audience, 127\\.0\\.0\\.1\\): new session`), 'a new session');
    await a.define('room', { n: { type: 'integer', default: 0, min: 0, max: 10 } });
    const x = await a.create('room', {});
    await a.fail(E.BAD_VALUE, T.SET, x.instance, { n: 'loud' });
    await waitLog(srv, line('info', `session ${wa.session} \\(audience, 127\\.0\\.0\\.1\\): refused: BAD_VALUE .*`), 'a refused SET');

    const b = await RawClient.open(srv.url);
    const wb = b.welcome;
    await b.terminate();
    await waitLog(srv, line('info', `session ${wb.session} \\(audience, 127\\.0\\.0\\.1\\): connection lost; may resume within 1 s`), 'a lost connection');
    const b2 = await RawClient.open(srv.url, { version: 1, token: wb.token, seqs: {} });
    await waitLog(srv, line('info', `session ${wb.session} \\(audience, 127\\.0\\.0\\.1\\): resumed`), 'a resume');
    await b2.terminate();
    await waitLog(srv, line('info', `session ${wb.session} \\(audience\\): ended, not back within the resume window`), 'the end of the window');

    a.ws.close(1000);
    await waitLog(srv, line('info', `session ${wa.session} \\(audience, 127\\.0\\.0\\.1\\): left \\(closed with 1000\\); the states it created are deleted`), 'a goodbye');
    // nothing names a client by pointer any more
    assert.doesNotMatch(srv.stderr(), /0x[0-9a-f]{6,}/);
    // before HELLO, only -v says anything
    const c = await RawClient.connect(srv.url);
    await c.close();
    await sleep(200);
    assert.doesNotMatch(srv.stderr(), /WebSocket opened/);
  } finally {
    await srv.stop();
  }
});

test('a client flooding refused requests: a burst of lines, then one line counting the suppressed ones', { timeout: 30000 }, async () => {
  const srv = await startServer({ schemas: [] });
  try {
    const a = await RawClient.open(srv.url);
    const replies = await Promise.all(Array.from({ length: 300 }, () => a.request(T.SET, 999999, { n: 1 })));
    assert.ok(replies.every((r) => r[0] === T.ERROR));
    await sleep(300);
    const refused = srv.stderr().match(/refused: /g).length;
    assert.ok(refused <= 30, `${refused} lines for 300 refusals: not rate-limited`);
    // quiet for 5 s: the count comes
    await waitLog(srv, /info  \(\d+ more lines like "%s: refused: %s %s" suppressed\)/, 'the count of suppressed lines', 9000);
    const n = Number(/\((\d+) more lines like/.exec(srv.stderr())[1]);
    assert.equal(refused + n, 300, `${refused} printed + ${n} suppressed`);
    await a.close();
  } finally {
    await srv.stop();
  }
});

test('-v adds debug lines: each WebSocket, and libwebsockets\' notices in the same format', async () => {
  const srv = await startServer({ schemas: [], args: ['-v'] });
  try {
    const c = await RawClient.connect(srv.url);
    await waitLog(srv, line('debug', '127\\.0\\.0\\.1: WebSocket opened'), 'the debug line of a connection');
    await c.close();
    await waitLog(srv, line('debug', '127\\.0\\.0\\.1: connection closed before HELLO'), 'a close before HELLO');
    for (const l of srv.stderr().split('\n').filter((s) => s && !/^(==|\s)/.test(s))) {
      assert.match(l, new RegExp(`^${STAMP} (error|warn |info |debug) `), `a line without the log format: ${l}`);
    }
  } finally {
    await srv.stop();
  }
});

test('-q: warnings and errors only; the start banner (stdout) still says where the server is', async () => {
  const srv = await startServer({ schemas: [], args: ['-q', '--no-qr'] });
  try {
    const a = await RawClient.open(srv.url);
    await a.fail(E.UNKNOWN_INSTANCE, T.SET, 12345, { n: 1 });
    a.ws.close(1000);
    await a.closed;
    await sleep(200);
    assert.doesNotMatch(srv.stderr(), / info  | debug /, 'no info or debug line with -q');
    assert.match(srv.stdout(), new RegExp(`^  http://127\\.0\\.0\\.1:${srv.port}/$`, 'm'));
    assert.doesNotMatch(srv.stdout(), /\u2588/, '--no-qr: no QR code');
  } finally {
    await srv.stop();
  }
});
