// SPDX-License-Identifier: MIT
// The installed package: `cmake --install` puts libtutti-client.a, its
// headers, tutti-client.pc and the tools under a prefix; the example of
// shared/client/ builds with pkg-config alone (C, and the header from C++)
// and runs against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, ROOT } from '../lib/server.mjs';
import { BUILD, run } from './lib.mjs';

test('cmake --install, pkg-config, the example built from the installed files', { timeout: 180000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tutti-install-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = join(dir, 'prefix');
  let r = await run('cmake', ['--install', BUILD, '--prefix', prefix]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['include/tutti/tutti_client.h', 'include/tutti/value.h', 'bin/tutti', 'bin/tutti-osc']) {
    assert.ok(existsSync(join(prefix, f)), `${f} installed`);
  }
  const libdir = existsSync(join(prefix, 'lib', 'libtutti-client.a')) ? 'lib' : 'lib/x86_64-linux-gnu';
  const pcPath = join(prefix, libdir, 'pkgconfig');
  // the .pc file names the prefix it was configured with: point it at ours
  const pc = join(pcPath, 'tutti-client.pc');
  writeFileSync(pc, readFileSync(pc, 'utf8').replace(/^prefix=.*$/m, `prefix=${prefix}`));
  const env = { PKG_CONFIG_PATH: pcPath };
  r = await run('pkg-config', ['--cflags', '--libs', 'tutti-client'], { env });
  assert.equal(r.code, 0, r.stderr);
  const flags = r.stdout.trim().split(/\s+/);
  // a sanitizer build's archive needs the sanitizer runtimes at link time
  const cache = readFileSync(join(BUILD, 'CMakeCache.txt'), 'utf8');
  const san = [];
  if (/^TT_ASAN:BOOL=ON/m.test(cache)) san.push('-fsanitize=address');
  if (/^TT_UBSAN:BOOL=ON/m.test(cache)) san.push('-fsanitize=undefined');
  const exe = join(dir, 'example');
  r = await run('cc', ['-std=c11', '-Wall', '-Werror', ...san, join(ROOT, 'shared', 'client', 'example.c'), '-o', exe, ...flags]);
  assert.equal(r.code, 0, r.stderr);
  const cxx = join(dir, 'x.cc');
  writeFileSync(cxx, '#include <tutti_client.h>\nint main() { tt_client_opts o; tt_client_opts_init(&o); return tt_clock_now() > 0 ? 0 : 1; }\n');
  r = await run('c++', ['-std=c++17', ...san, cxx, '-o', join(dir, 'xx'), ...flags]);
  assert.equal(r.code, 0, r.stderr);
  r = await run(join(dir, 'xx'));
  assert.equal(r.code, 0, r.stderr);

  const srv = await startServer();
  t.after(() => srv.stop());
  r = await run(exe, [srv.url, 'demo', 'volume', '0.8', '1'], { timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /demo\.volume = 0\.8.* \(seq 1, sync time [0-9.]+\)/);
});
