// Finding: accept() failing with EMFILE. One address held 1017 sockets, the
// server ran out of descriptors, and lws retried the listening socket in a
// loop: 0.55 of a core, 7,700 log lines a second, and every new client kept
// out. Now connections are bounded per address (--max-conns-per-addr) and in
// all (--max-connections, by default the open-file limit less a reserve), so
// accept() always has a descriptor; a connection past a bound is closed at
// once and the refusals are logged at most once a second.
//
// The server runs under an open-file limit of 256 (util-linux prlimit; the
// server raises its soft limit to the hard one, so both are set), which
// makes its connection bound 192. Clients come from several loopback
// addresses (127.0.0.2...), each a phone for the per-address bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const NOFILE = 256;
// The fixture takes the binary from TUTTI_SERVER when it loads: point it at
// a wrapper that lowers the limit and execs the real server (same PID).
const root = resolve(process.env.TUTTI_ROOT || join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
const real = resolve(process.env.TUTTI_SERVER || join(root, 'build', 'tutti-server'));
const wrapDir = mkdtempSync(join(tmpdir(), 'tutti-sec-prlimit-'));
process.on('exit', () => rmSync(wrapDir, { recursive: true, force: true }));
const wrapper = join(wrapDir, 'tutti-server');
writeFileSync(wrapper, `#!/bin/sh\nexec prlimit --nofile=${NOFILE}:${NOFILE} -- '${real}' "$@"\n`);
chmodSync(wrapper, 0o755);
process.env.TUTTI_SERVER = wrapper;
const { secureServer, phone, closeAll, cpuSeconds, sleep, RawClient } = await import('./lib/hostile.mjs');

const PRESENCE = { class: 'presence', description: { hue: { type: 'integer', default: 30 } } };

/** Try n connections from address `from` at once: {open: [clients], refused: count}. */
async function flood(srv, from, n) {
  const r = await Promise.allSettled(Array.from({ length: n }, () =>
    RawClient.connect(srv.url, { timeout: 10000, wsOptions: { localAddress: from } })));
  return { open: r.filter((x) => x.status === 'fulfilled').map((x) => x.value), refused: r.filter((x) => x.status === 'rejected').length };
}

test('a full server refuses at once without spinning, logs refusals at most once a second, and lets clients in again once the hog lets go', { timeout: 120000 }, async (t) => {
  const srv = await secureServer({ schemas: [PRESENCE], resumeWindow: 0 });
  const held = [];
  try {
    assert.match(readFileSync(`/proc/${srv.proc.pid}/limits`, 'utf8'), new RegExp(`Max open files\\s+${NOFILE}\\s+${NOFILE}`),
      'the server runs under the lowered open-file limit');

    // one address takes what it can, a phone from another gets in, then
    // more addresses fill the server
    const one = await flood(srv, '127.0.0.2', 90);
    held.push(...one.open);
    const other = await phone(srv, { from: '127.0.0.3', clients: held });
    await other.create('presence', {});
    for (const from of ['127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']) held.push(...(await flood(srv, from, 64)).open);

    // while it is full, newcomers keep knocking: each is refused at once,
    // the server does not spin, its log does not flood
    const lines0 = srv.stderr().split('\n').length;
    const cpu0 = cpuSeconds(srv.proc.pid);
    const t0 = Date.now();
    let refused = 0, admitted = 0;
    while (Date.now() - t0 < 3000) {
      const r = await flood(srv, '127.0.0.8', 5);
      refused += r.refused;
      admitted += r.open.length;
      held.push(...r.open);
      await sleep(100);
    }
    const secs = (Date.now() - t0) / 1000;
    const cpu = (cpuSeconds(srv.proc.pid) - cpu0) / secs;
    const lines = srv.stderr().split('\n').length - lines0;
    t.diagnostic(`held ${held.length}, newcomers refused ${refused}, admitted ${admitted}; server CPU ${cpu.toFixed(3)} of a core, ${lines} log lines in ${secs.toFixed(1)} s`);
    assert.ok(cpu < 0.3, `the full server used ${cpu.toFixed(2)} of a core while ${refused} connections knocked in ${secs.toFixed(1)} s`);
    assert.ok(lines <= secs + 3, `${lines} log lines in ${secs.toFixed(1)} s of refusals`);
    assert.equal(one.open.length, 64, `127.0.0.2 holds ${one.open.length} connections (--max-conns-per-addr 64)`);
    assert.ok(held.length <= NOFILE - 64, `${held.length} connections held under an open-file limit of ${NOFILE}`);
    assert.ok(held.length >= NOFILE - 64 - 8, `only ${held.length} connections held: the server was not full`);
    assert.equal(admitted, 0, 'a full server admitted a newcomer');
    assert.ok(refused >= 50, `only ${refused} refused attempts`);
    assert.match(srv.stderr(), /refused a connection from \S+: the server is full \(--max-connections\) \(\d+ refused in the last second\)/);
    await other.ping(); // those inside are still served

    // the hog lets go: a newcomer gets in
    const hog = held.filter((x) => x !== other);
    held.length = 0;
    held.push(other);
    await closeAll(hog);
    let c = null;
    for (let i = 0; i < 100 && !c; i++) {
      c = await phone(srv, { from: '127.0.0.9' }).catch(() => null);
      if (!c) await sleep(50);
    }
    assert.ok(c, 'no client got in after the hog closed its connections');
    await c.create('presence', {});
    await c.close();
  } finally {
    await closeAll(held);
    await srv.stop();
  }
});
