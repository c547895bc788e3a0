// SPDX-License-Identifier: MIT
// tutti-osc with SuperCollider's sclang (Debian's supercollider-language,
// headless: Qt offscreen): a bundle destination. A scheduled set must reach
// sclang ahead of time in a bundle whose timetag is the moment of `at`, so
// SuperCollider schedules it exactly; a bundle from sclang becomes a
// scheduled set on the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, ROOT } from '../lib/server.mjs';
import { start, tutti, freeUdpPort, startBridge, haveProgram, bin } from './lib.mjs';

test('SuperCollider plays along: timetagged bundles out, a bundle in becomes a scheduled set', { timeout: 180000, skip: !haveProgram('sclang') && 'supercollider-language is not installed (make test installs it)' }, async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const [bridgePort, scPort] = [await freeUdpPort(), await freeUdpPort()];
  const bridge = await startBridge(srv.url, ['--listen', String(bridgePort), '--bundle', `127.0.0.1:${scPort}`]);
  t.after(() => bridge.stop('SIGINT'));
  const sc = start('/usr/bin/sclang', [join(ROOT, 'tests', 'native', 'sc', 'bridge.scd'), String(scPort), String(bridgePort)], {
    // headless: no display, and Qt WebEngine refuses to run as root with its sandbox
    env: { QT_QPA_PLATFORM: 'offscreen', QTWEBENGINE_DISABLE_SANDBOX: '1' },
    cwd: '/tmp',
  });
  t.after(() => sc.stop('SIGKILL'));
  await sc.waitLine(/^READY/, { timeout: 90000 });

  // a plain update
  let r = await tutti(srv.url, ['set', 'demo', 'volume=0.5', 'mode=noise']);
  await sc.waitLine(/^recv \/demo\/mode noise /);

  // a scheduled set: in a bundle, ahead of time, timetagged with `at`
  r = await tutti(srv.url, ['set', 'demo', 'bang=true', '--at', '+1.0']);
  assert.equal(r.code, 0, r.stderr);
  const line = await sc.waitLine(/^recv \/demo\/bang 1 ahead /, { timeout: 10000 });
  const ahead = Number(/ahead (-?[0-9.e-]+)/.exec(line)[1]);
  assert.ok(ahead > 0.5 && ahead < 1.05, `the bundle's timetag was ${ahead} s ahead of its arrival, expected ~1 s (the set's --at +1.0)`);

  // sclang sends a bundle 1 s ahead: a scheduled set, seen by tutti watch
  const watch = start(bin('tutti'), ['--url', srv.url, 'watch', 'demo']);
  t.after(() => watch.stop('SIGINT'));
  await new Promise((res) => setTimeout(res, 1000));
  await tutti(srv.url, ['set', 'demo', 'message=sc-go']);
  await sc.waitLine(/^sent bundle/);
  const notice = await watch.until(() => watch.json().find((l) => l.source === 'schedule' && l.changes.frequency === 660), { what: 'scheduled set from sclang' });
  const applied = await watch.until(() => watch.json().find((l) => l.source !== 'schedule' && l.changes && l.changes.frequency === 660), { what: 'applied' });
  assert.equal(applied.time, notice.at);
  // and it came back to sclang as a bundle for that same moment
  const back = await sc.waitLine(/^recv \/demo\/frequency 660\.0 ahead /);
  assert.ok(Number(/ahead (-?[0-9.e-]+)/.exec(back)[1]) > 0.5, back);
});
