// SPDX-License-Identifier: MIT
// wss:// from the native client: the server speaks plain ws, so a TLS
// proxy (Node's tls, a certificate made by openssl for 127.0.0.1) stands in
// front of it, as a reverse proxy would at a venue. tutti connects with the
// certificate as its CA, refuses an unknown certificate, and accepts it with
// --insecure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { run, tutti } from './lib.mjs';

test('wss://: verified with --ca, refused when unknown, accepted with --insecure', { timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tutti-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
  const r0 = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  assert.equal(r0.code, 0, r0.stderr);
  const srv = await startServer();
  t.after(() => srv.stop());
  const proxy = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (tls) => {
    const up = connect(srv.port, '127.0.0.1');
    tls.pipe(up).pipe(tls);
    tls.on('error', () => up.destroy());
    up.on('error', () => tls.destroy());
  });
  await new Promise((res) => proxy.listen(0, '127.0.0.1', res));
  t.after(() => proxy.close());
  const url = `wss://127.0.0.1:${proxy.address().port}/`;

  let r = await tutti(url, ['--ca', cert, 'get', 'demo', 'volume', '--raw']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '0.5');
  r = await tutti(url, ['--timeout', '2', 'get', 'demo']);
  assert.equal(r.code, 3, `an unknown certificate is refused: ${r.stderr}`);
  r = await tutti(url, ['--insecure', 'set', 'demo', 'volume=0.7']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json()[0].changes, { volume: 0.7 });
});
