// SPDX-License-Identifier: MIT
// tutti-osc with Pure Data (Debian's puredata, headless): pd/bridge.pd
// prints every OSC message it receives ([netreceive -u -b] -> [oscparse])
// and sends sets with [oscformat] -> [netsend -u -b]. Pd ignores timetags,
// so its destination is a plain one: a scheduled set must reach Pd at its
// time, not before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, ROOT } from '../lib/server.mjs';
import { start, tutti, freeUdpPort, startBridge, haveProgram } from './lib.mjs';

const PD = '/usr/bin/pd';

test('Pure Data plays along: updates in Pd, sets from Pd, errors back, a scheduled set on time', { timeout: 120000, skip: !haveProgram('pd') && 'puredata is not installed (make test installs it)' }, async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const [bridgePort, pdPort] = [await freeUdpPort(), await freeUdpPort()];
  const bridge = await startBridge(srv.url, ['--listen', String(bridgePort), '--send', `127.0.0.1:${pdPort}`]);
  t.after(() => bridge.stop('SIGINT'));
  const pd = start(PD, ['-nogui', '-nosound', '-nomidi', '-noprefs', '-stderr',
    '-open', join(ROOT, 'tests', 'native', 'pd', 'bridge.pd'),
    '-send', `port ${pdPort}`, '-send', `dest ${bridgePort}`,
    '-send', 'vol 0.25', '-send', 'bng bang', '-send', 'badmode symbol bogus']);
  t.after(() => pd.stop('SIGKILL'));
  const got = (re) => pd.waitLine(re, { stderr: true, timeout: 15000 });

  // Pd's sets reach the server (and come back to Pd as the server's value)
  await got(/^got: demo volume 0\.25$/);
  await got(/^got: demo bang 1$/);
  let r = await tutti(srv.url, ['get', 'demo', 'volume', '--raw']);
  assert.equal(r.stdout.trim(), '0.25');
  r = await tutti(srv.url, ['history', 'demo', '--last', '1']);
  assert.deepEqual(r.json()[0].changes, { bang: true });
  // Pd's refused set comes back to Pd
  await got(/^got: tutti error \/demo\/mode BAD_VALUE .*bogus/);

  // another client's update reaches Pd
  r = await tutti(srv.url, ['set', 'demo', 'frequency=880', 'mode=square']);
  assert.equal(r.code, 0, r.stderr);
  await got(/^got: demo frequency 880$/);
  await got(/^got: demo mode square$/);

  // a scheduled set reaches Pd at its time
  const before = Date.now() / 1000;
  r = await tutti(srv.url, ['set', 'demo', 'message=go', '--at', '+1.5']);
  assert.equal(r.code, 0, r.stderr);
  const returned = Date.now() / 1000;
  await got(/^got: demo message go$/);
  const arrived = Date.now() / 1000;
  // `at` is 1.5 s after the command started: between `before` and `returned`
  assert.ok(arrived - returned >= 1.5 - (returned - before) - 0.05, `Pd got the scheduled set ${(arrived - before).toFixed(3)} s after the command started, before its time (1.5 s)`);
  assert.ok(arrived - before < 3.5, `Pd got the scheduled set late: ${(arrived - before).toFixed(3)} s`);
});
