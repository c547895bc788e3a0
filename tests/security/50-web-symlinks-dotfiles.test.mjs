// Security finding 5a: files of --web reached through a symlink that points
// outside it were served (/etc/passwd through a link), and so were dotfiles
// (.env, .git/). Both are refused with 404, while ordinary files, links that
// stay inside --web, directories' index.html, HEAD, ETag/304 and MIME types
// keep working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, httpGet } from '../lib/server.mjs';
import { rawHttp } from './lib/raw-http.mjs';

let srv, base;
const SECRET = 'secret-outside-web-7d1f';

before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'tutti-sec-web-'));
  const web = path.join(base, 'web');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(web, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(web, '.git'), { recursive: true });
  fs.mkdirSync(path.join(web, 'linkdir-index'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(web, 'index.html'), '<p>index</p>\n');
  fs.writeFileSync(path.join(web, 'app.mjs'), 'export const ok = 1;\n');
  fs.writeFileSync(path.join(web, 'sub', 'page.html'), '<p>sub page</p>\n');
  fs.writeFileSync(path.join(web, '.env'), `TOKEN=${SECRET}\n`);
  fs.writeFileSync(path.join(web, '.git', 'config'), `[remote] ${SECRET}\n`);
  fs.writeFileSync(path.join(web, 'sub', '.hidden.js'), `// ${SECRET}\n`);
  fs.symlinkSync('/etc/passwd', path.join(web, 'passwd'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(web, 'secret.txt'));
  fs.symlinkSync(outside, path.join(web, 'outdir'));
  fs.symlinkSync('../../outside/secret.txt', path.join(web, 'sub', 'rel.txt'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(web, 'linkdir-index', 'index.html'));
  // links that stay inside --web are fine
  fs.symlinkSync('../index.html', path.join(web, 'sub', 'home.html'));
  fs.symlinkSync(path.join(web, 'sub'), path.join(web, 'sub2'));
  srv = await startServer({ webDir: web });
});

after(async () => {
  if (srv) await srv.stop();
  fs.rmSync(base, { recursive: true, force: true });
});

async function refused(p) {
  const r = await httpGet(`${srv.httpUrl}${p}`);
  assert.equal(r.status, 404, `${p} should be refused with 404, got ${r.status}`);
  assert.ok(!r.body.toString().includes(SECRET) && !/root:.*:0:0:/.test(r.body.toString()), `${p} leaked its content`);
}

test('a symlink to /etc/passwd inside --web is not served', async () => {
  await refused('/passwd');
});

test('symlinks to a file or a directory outside --web (absolute or relative) are not served', async () => {
  for (const p of ['/secret.txt', '/outdir/secret.txt', '/sub/rel.txt', '/linkdir-index/', '/linkdir-index']) await refused(p);
});

test('dotfiles and files in dot directories are not served, also percent-encoded or through ..', async () => {
  for (const p of ['/.env', '/.git/config', '/sub/.hidden.js', '/%2eenv', '/sub/../.env', '/.git/']) await refused(p);
  const r = await rawHttp(srv.port, 'GET /sub/../.git/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok(!r.raw.includes(SECRET), 'leaked .git/config through a raw ..');
});

test('HEAD of a refused file is refused too', async () => {
  const r = await rawHttp(srv.port, 'HEAD /passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(r.responses[0]?.status, 404, r.raw);
});

test('ordinary files, links inside --web, index.html, MIME types and ETag/304 still work', async () => {
  const idx = await httpGet(`${srv.httpUrl}/`);
  assert.equal(idx.status, 200);
  assert.match(idx.body.toString(), /index/);
  assert.match(idx.headers['content-type'], /^text\/html/);
  const mjs = await httpGet(`${srv.httpUrl}/app.mjs?v=3`);
  assert.equal(mjs.status, 200);
  assert.match(mjs.headers['content-type'], /javascript/);
  assert.ok(mjs.headers.etag, 'an ETag is sent');
  const again = await httpGet(`${srv.httpUrl}/app.mjs`, { headers: { 'if-none-match': mjs.headers.etag } });
  assert.equal(again.status, 304);
  assert.equal((await httpGet(`${srv.httpUrl}/sub/page.html`)).status, 200);
  const home = await httpGet(`${srv.httpUrl}/sub/home.html`);
  assert.equal(home.status, 200);
  assert.match(home.body.toString(), /index/);
  assert.equal((await httpGet(`${srv.httpUrl}/sub2/page.html`)).status, 200);
  const head = await rawHttp(srv.port, 'HEAD /app.mjs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(head.responses[0]?.status, 200, head.raw);
  assert.equal((await httpGet(`${srv.httpUrl}/healthz`)).status, 200);
});

test('/tutti/ serves the client (its modules and styles), not the rest of its folder', async () => {
  for (const p of ['/tutti/tutti.js', '/tutti/sync.js', '/tutti/stage.js', '/tutti/inspect.css', '/tutti/msgpack/index.mjs']) {
    const r = await httpGet(`${srv.httpUrl}${p}`);
    assert.equal(r.status, 200, `${p}: ${r.status}`);
  }
  // the piece template, the package manifest, Node's ws module and the
  // client folder's own pages are not part of the client
  for (const p of ['/tutti/package.json', '/tutti/package-lock.json', '/tutti/node_modules/ws/package.json',
    '/tutti/template/tutti.json', '/tutti/template/web/index.html', '/tutti/index.html', '/tutti/',
    '/tutti/README.md', '/tutti/tutti.d.ts']) {
    const r = await httpGet(`${srv.httpUrl}${p}`);
    assert.equal(r.status, 404, `${p} should be 404, got ${r.status}`);
  }
});
