// Security finding 5c: lws accepted an h2c upgrade (HTTP/2 in clear text,
// answered "101 Switching Protocols") and requests with conflicting
// duplicate Content-Length headers (the bytes after the first length were
// then read as a second request: request smuggling behind a proxy). tutti
// serves GET and HEAD of files and a WebSocket: everything else is refused,
// and the connection closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from '../integration/lib/harness.mjs';
import { rawHttp } from './lib/raw-http.mjs';

const h = useServer({ webFiles: { 'index.html': '<p>index-page</p>\n' } });

function only(r, status, what) {
  assert.equal(r.responses.length, 1, `${what}: expected exactly one response, got ${r.responses.length}:\n${r.raw}`);
  assert.equal(r.responses[0].status, status, `${what}: ${r.raw}`);
  assert.ok(r.closed, `${what}: the connection should be closed after a refused request`);
  assert.doesNotMatch(r.raw, /index-page/, `${what}: the file was served`);
}

test('Upgrade: h2c is refused with 400, never 101', async () => {
  const r = await rawHttp(h.server.port,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
  assert.doesNotMatch(r.raw, /^HTTP\/1\.[01] 101/, 'switched to h2c');
  only(r, 400, 'h2c upgrade');
});

test('HTTP/2 prior knowledge (the PRI preface) is not spoken', async () => {
  const r = await rawHttp(h.server.port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.doesNotMatch(r.raw, /^HTTP\/[12](\.\d)? 2\d\d/, r.raw);
});

test('two Content-Length headers that disagree: 400, and the rest is not read as a request', async () => {
  const r = await rawHttp(h.server.port,
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n');
  only(r, 400, 'duplicate Content-Length');
});

test('a list in Content-Length ("5, 7") is refused with 400', async () => {
  const r = await rawHttp(h.server.port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 7\r\n\r\nhelloab');
  only(r, 400, 'Content-Length list');
});

test('a body on GET (Content-Length or chunked) is refused with 400', async () => {
  only(await rawHttp(h.server.port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'), 400, 'GET with a body');
  only(await rawHttp(h.server.port, 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), 400, 'chunked GET');
});

test('methods other than GET and HEAD get 405 with Allow', async () => {
  for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const r = await rawHttp(h.server.port, `${m} / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`);
    only(r, 405, m);
    assert.equal(r.responses[0].headers.allow, 'GET, HEAD', `${m}: Allow header`);
  }
});

test('plain GET, HEAD, Content-Length: 0 and keep-alive still work', async () => {
  const get = await rawHttp(h.server.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(get.responses[0]?.status, 200, get.raw);
  assert.match(get.responses[0].body, /index-page/);
  const head = await rawHttp(h.server.port, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(head.responses[0]?.status, 200, head.raw);
  const r = await rawHttp(h.server.port,
    'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.deepEqual(r.responses.map((x) => [x.status, x.body]), [[200, 'ok\n'], [200, 'ok\n']], r.raw);
});
