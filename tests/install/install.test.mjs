// Installing tutti (README "Install"): `cmake --install` puts the server,
// the web client it serves at /tutti/, the piece template and a systemd
// unit under a prefix; the installed server finds its client there (not in
// the source tree), makes a piece with --init and serves it. And a build
// of the server alone needs neither the test library (cmocka) nor liblo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, runServerToExit, tmpDir, httpGet, ROOT } from '../lib/server.mjs';

const BUILD = process.env.TUTTI_BUILD || join(ROOT, 'build');

test('cmake --install: the installed server serves its own client and makes a piece from the installed template', { timeout: 120000 }, async () => {
  const prefix = tmpDir('tutti-prefix-');
  execFileSync('cmake', ['--install', BUILD, '--prefix', prefix], { stdio: 'pipe' });
  const server = join(prefix, 'bin', 'tutti-server');
  const share = join(prefix, 'share', 'tutti', 'web');
  for (const f of ['tutti.js', 'sync.js', 'tutti.d.ts', 'template/tutti.json', 'node_modules/@msgpack/msgpack/dist.esm/index.mjs']) {
    assert.ok(existsSync(join(share, f)), `installed: share/tutti/web/${f}`);
  }
  const unit = readFileSync(join(prefix, 'lib', 'systemd', 'system', 'tutti.service'), 'utf8');
  assert.ok(unit.includes(`ExecStart=${server} `), 'the unit runs the installed binary');
  try {
    const v = execFileSync('systemd-analyze', ['verify', join(prefix, 'lib', 'systemd', 'system', 'tutti.service')], { stdio: 'pipe' }).toString();
    assert.doesNotMatch(v, /error/i);
  } catch (err) {
    // systemd-analyze needs a running systemd for some checks: only a
    // complaint about the unit itself fails the test
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    assert.doesNotMatch(out, /tutti\.service:\d+:/, `systemd-analyze verify: ${out}`);
  }

  const piece = join(tmpDir('tutti-pieces-'), 'mypiece');
  const init = await runServerToExit(['--init', piece], { env: {}, timeout: 10000, server });
  assert.equal(init.code, 0, init.stderr);
  assert.ok(existsSync(join(piece, 'tutti.json')) && existsSync(join(piece, 'schemas')) && existsSync(join(piece, 'web', 'index.html')));
  const again = await runServerToExit(['--init', piece], { timeout: 10000, server });
  assert.notEqual(again.code, 0, 'a second --init on the same folder refuses');
  assert.match(again.stderr, /not empty: nothing was written/);

  const srv = await startServer({ rawArgs: [piece, '--port', '0', '--host', '127.0.0.1', '--no-qr'], server, secure: true });
  try {
    const js = await httpGet(new URL('/tutti/tutti.js', srv.httpUrl).href);
    assert.equal(js.status, 200);
    assert.deepEqual(js.body, readFileSync(join(share, 'tutti.js')), 'the installed client');
    const mp = await httpGet(new URL('/tutti/msgpack/index.mjs', srv.httpUrl).href);
    assert.equal(mp.status, 200);
    const page = await httpGet(srv.httpUrl);
    assert.equal(page.status, 200);
    assert.deepEqual(page.body, readFileSync(join(piece, 'web', 'index.html')), "the piece's page");
    assert.ok(existsSync(join(piece, 'tutti.db')), "the piece's database is in its folder");
  } finally {
    await srv.stop();
  }
});

test('a build of the server alone (-DBUILD_TESTING=OFF -DTT_TOOLS=OFF) needs no cmocka and no liblo', { timeout: 600000 }, () => {
  // a pkg-config search path with every .pc file but cmocka's and liblo's
  const pc = tmpDir('tutti-pc-');
  for (const dir of ['/usr/lib/x86_64-linux-gnu/pkgconfig', '/usr/lib/pkgconfig', '/usr/share/pkgconfig']) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.pc') || /^(cmocka|liblo)\.pc$/.test(f) || existsSync(join(pc, f))) continue;
      symlinkSync(join(dir, f), join(pc, f));
    }
  }
  const build = tmpDir('tutti-server-only-');
  mkdirSync(build, { recursive: true });
  const env = { ...process.env, PKG_CONFIG_LIBDIR: pc, PKG_CONFIG_PATH: '' };
  execFileSync('cmake', ['-S', ROOT, '-B', build, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF', '-DTT_TOOLS=OFF'], { env, stdio: 'pipe' });
  execFileSync('cmake', ['--build', build, '-j2', '--target', 'tutti-server'], { env, stdio: 'pipe' });
  const help = execFileSync(join(build, 'tutti-server'), ['--help']).toString();
  assert.match(help, /Usage: tutti-server/);
});
