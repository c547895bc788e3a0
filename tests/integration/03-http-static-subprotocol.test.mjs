// The HTTP side of the port: /healthz, static files of --web, and the
// WebSocket upgrade that must offer the tutti.v1 subprotocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { useServer, RawClient } from './lib/harness.mjs';
import { httpGet } from '../lib/server.mjs';

const h = useServer({
  webFiles: {
    'index.html': '<!doctype html><title>tutti test</title><p>integration-index</p>\n',
    'hello.mjs': 'export const hello = "tutti-static-mjs";\n',
    'sub/data.json': '{"ok":true}\n',
    'style.css': 'body{color:red}\n',
  },
});

test('GET /healthz answers 200', async () => {
  const r = await httpGet(`${h.httpUrl}healthz`);
  assert.equal(r.status, 200);
});

test('a .mjs file of --web is served with its bytes and a JavaScript content type', async () => {
  const r = await httpGet(`${h.httpUrl}hello.mjs`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'export const hello = "tutti-static-mjs";\n');
  assert.match(r.headers['content-type'] ?? '', /^(text|application)\/javascript\b/);
});

test('GET / serves index.html as text/html', async () => {
  const r = await httpGet(`${h.httpUrl}`);
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /integration-index/);
  assert.match(r.headers['content-type'] ?? '', /^text\/html\b/);
});

test('a file in a subdirectory is served, with a JSON content type for .json and text/css for .css', async () => {
  const r = await httpGet(`${h.httpUrl}sub/data.json`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), '{"ok":true}\n');
  assert.match(r.headers['content-type'] ?? '', /^application\/json\b/);
  const c = await httpGet(`${h.httpUrl}style.css`);
  assert.equal(c.status, 200);
  assert.match(c.headers['content-type'] ?? '', /^text\/css\b/);
});

test('a missing file answers 404', async () => {
  const r = await httpGet(`${h.httpUrl}no-such-file.js`);
  assert.equal(r.status, 404);
});

test('a path escaping --web with .. is not served', async () => {
  // raw request so that the client does not normalise the path
  const body = await new Promise((resolve, reject) => {
    const s = net.connect(h.server.port, '127.0.0.1', () => {
      s.write('GET /../../../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error('timeout')); });
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('close', () => resolve(data));
    s.on('error', (e) => (data ? resolve(data) : reject(e)));
  });
  assert.ok(!/root:.*:0:0:/.test(body), 'served /etc/passwd');
});

test('a query string does not prevent serving the file (cache busting: /hello.mjs?v=2)', async () => {
  const r = await httpGet(`${h.httpUrl}hello.mjs?v=2`);
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /tutti-static-mjs/);
});

test('a percent-encoded .. path escaping --web is not served', async () => {
  const body = await new Promise((resolve, reject) => {
    const s = net.connect(h.server.port, '127.0.0.1', () => {
      s.write('GET /%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error('timeout')); });
    s.on('data', (d) => { data += d; });
    s.on('close', () => resolve(data));
    s.on('error', (e) => (data ? resolve(data) : reject(e)));
  });
  assert.ok(!/root:.*:0:0:/.test(body), 'served /etc/passwd');
});

test('a WebSocket upgrade without a subprotocol is refused', async () => {
  await assert.rejects(RawClient.connect(h.url, { protocols: null, timeout: 5000 }));
});

test('a WebSocket upgrade offering only another subprotocol is refused', async () => {
  await assert.rejects(RawClient.connect(h.url, { protocols: ['tutti.v2', 'chat'], timeout: 5000 }));
});

test('a WebSocket upgrade offering tutti.v1 is accepted with tutti.v1 selected, on any path', async (t) => {
  const c = await RawClient.connect(h.url.replace(/\/$/, '/some/path'), { protocols: ['other', 'tutti.v1'] });
  t.after(() => c.close());
  assert.equal(c.ws.protocol, 'tutti.v1');
  const w = await c.hello({ version: 1 });
  assert.ok(w.session > 0);
});
