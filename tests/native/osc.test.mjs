// SPDX-License-Identifier: MIT
// tutti-osc with liblo's own programs: oscdump receives what the bridge
// sends (plain messages, and timetagged bundles for scheduled sets), oscsend
// sends sets in; refused sets come back as /tutti/error. And a config file
// choosing params, addresses and directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { start, run, tutti, freeUdpPort, startBridge, oscdumpLines, bin } from './lib.mjs';

const oscsend = (port, ...args) => run('/usr/bin/oscsend', ['127.0.0.1', String(port), ...args]);

test('tutti-osc with oscdump and oscsend: updates out, sets in, errors back, scheduled sets as bundles or on time', { timeout: 120000 }, async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const [inPort, plainPort, bundlePort] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
  const plain = start('/usr/bin/oscdump', ['-L', String(plainPort)]);
  const bundled = start('/usr/bin/oscdump', ['-L', String(bundlePort)]);
  t.after(() => plain.stop());
  t.after(() => bundled.stop());
  await new Promise((r) => setTimeout(r, 300));
  const bridge = await startBridge(srv.url, ['--listen', String(inPort), '--send', `127.0.0.1:${plainPort}`, '--bundle', `127.0.0.1:${bundlePort}`]);
  t.after(() => bridge.stop('SIGINT'));

  // on attach, the current values go out (a late destination learns them)
  await plain.waitLine(/ \/demo\/volume f 0\.5/);
  await plain.waitLine(/ \/demo\/mode s "sine"/);

  // an update goes out to both
  let r = await tutti(srv.url, ['set', 'demo', 'volume=0.75', 'playing=true']);
  assert.equal(r.code, 0, r.stderr);
  await plain.waitLine(/ \/demo\/volume f 0\.75/);
  await plain.waitLine(/ \/demo\/playing i 1/);
  await bundled.waitLine(/ \/demo\/volume f 0\.75/);

  // OSC in becomes a set (validated, clipped by the server)
  await oscsend(inPort, '/demo/volume', 'f', '0.25');
  await plain.waitLine(/ \/demo\/volume f 0\.25/);
  r = await tutti(srv.url, ['get', 'demo', 'volume', '--raw']);
  assert.equal(r.stdout.trim(), '0.25');
  await oscsend(inPort, '/demo/frequency', 'i', '9000');
  await plain.waitLine(/ \/demo\/frequency f 2000/);
  await oscsend(inPort, '/demo/bang'); // no argument: a bang
  await plain.waitLine(/ \/demo\/bang i 1/);

  // refused: /tutti/error ADDRESS CODE MESSAGE to the destinations, and the log
  await oscsend(inPort, '/demo/volume', 's', 'loud');
  const err = await plain.waitLine(/\/tutti\/error sss "\/demo\/volume" "BAD_VALUE"/);
  assert.match(err, /loud/);
  await bridge.waitLine(/\/demo\/volume: BAD_VALUE/, { stderr: true });
  await oscsend(inPort, '/demo/nothing', 'f', '1');
  await plain.waitLine(/\/tutti\/error sss "\/demo\/nothing" "UNKNOWN_PARAM"/);

  // a scheduled set: the bundle destination gets it at once with the timetag
  // of `at` (oscdump, a liblo server, holds a bundle until its timetag: it
  // prints it at `at`); the plain one gets a plain message at `at`
  const before = Date.now() / 1000;
  r = await tutti(srv.url, ['set', 'demo', 'mode=noise', '--at', '+1.5']);
  assert.equal(r.code, 0, r.stderr);
  const returned = Date.now() / 1000;
  const bl = await bundled.waitLine(/ \/demo\/mode s "noise"/);
  const bundleArrived = Date.now() / 1000;
  const [b] = oscdumpLines({ lines: () => [bl] });
  assert.ok(bundleArrived >= before + 1.3 && bundleArrived < returned + 3, `oscdump printed the bundle ${(bundleArrived - before).toFixed(3)} s after the set, expected at its timetag (~1.5 s)`);
  assert.ok(b.wall > before + 1.3 && b.wall < returned + 1.6, `timetag ${b.wall - before} s after the set, expected ~1.5`);
  await plain.waitLine(/ \/demo\/mode s "noise"/, { timeout: 5000 });
  const plainArrived = Date.now() / 1000;
  assert.ok(plainArrived >= before + 1.3, `the plain message came ${(plainArrived - before).toFixed(3)} s after the set, before its time`);
  assert.ok(plainArrived < returned + 3, 'the plain message came at its time');
  // and it went to the bundle destination once only
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(bundled.lines().filter((l) => /"noise"/.test(l)).length, 1);

  // a timetagged bundle coming in becomes a scheduled set (tutti watch sees it announced)
  const watch = start(bin('tutti'), ['--url', srv.url, 'watch', 'demo']);
  t.after(() => watch.stop('SIGINT'));
  await new Promise((res) => setTimeout(res, 800));
  const py = `import socket,struct,time
t=time.time()+1.0; s=int(t)+2208988800; f=int((t-int(t))*2**32)
m=b'/demo/message\\x00\\x00\\x00,s\\x00\\x00later\\x00\\x00\\x00'
b=b'#bundle\\x00'+struct.pack('>II',s,f)+struct.pack('>I',len(m))+m
socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b,('127.0.0.1',${inPort}))`;
  const sent = await run('/usr/bin/python3', ['-c', py]);
  assert.equal(sent.code, 0, sent.stderr);
  const notice = await watch.until(() => watch.json().find((l) => l.source === 'schedule' && l.changes.message === 'later'), { what: 'schedule from a bundle' });
  const fired = await watch.until(() => watch.json().find((l) => l.source !== 'schedule' && l.changes && l.changes.message === 'later'), { what: 'the bundle applied' });
  assert.equal(fired.time, notice.at);
});

test('tutti-osc config: chosen params, address template, out only; bad configs are refused clearly', { timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tutti-osc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const srv = await startServer();
  t.after(() => srv.stop());
  const [inPort, outPort] = [await freeUdpPort(), await freeUdpPort()];
  const dump = start('/usr/bin/oscdump', ['-L', String(outPort)]);
  t.after(() => dump.stop());
  const cfg = join(dir, 'bridge.json');
  writeFileSync(cfg, JSON.stringify({
    url: srv.url, listen: inPort,
    send: [{ to: `127.0.0.1:${outPort}` }],
    map: [{ class: 'demo', params: ['volume', 'mode'], address: '/synth/{param}', in: false }],
  }));
  await new Promise((r) => setTimeout(r, 300));
  const bridge = await startBridge(srv.url, ['--config', cfg]);
  t.after(() => bridge.stop('SIGINT'));
  await dump.waitLine(/ \/synth\/volume f 0\.5/);
  await tutti(srv.url, ['set', 'demo', 'volume=0.6', 'frequency=880']);
  await dump.waitLine(/ \/synth\/volume f 0\.6/);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!dump.lines().some((l) => /frequency/.test(l)), 'frequency is not bridged');
  await oscsend(inPort, '/synth/volume', 'f', '0.1');
  await dump.waitLine(/\/tutti\/error sss "\/synth\/volume" "LOCAL_PARAM" "this address is bridged out only"/);

  for (const [body, re] of [
    ['{"map": [{"class": "demo", "states": "all", "address": "/x/{param}"}]}', /needs \{id\}/],
    ['{"map": [{"klass": "demo"}]}', /unknown key "klass"/],
    ['{"listen": "nine"}', /mistyped key "listen"/],
    ['{not json', /bridge.json:1/],
  ]) {
    writeFileSync(cfg, body);
    const r = await run(bin('tutti-osc'), ['--config', cfg]);
    assert.equal(r.code, 2, body);
    assert.match(r.stderr, re);
  }
  const h = await run(bin('tutti-osc'), ['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /usage: tutti-osc/);
});
