// On a cluster of nats-servers (three, routes on loopback, started by the
// test), a tutti node first checks that two appends expecting the same last
// sequence cannot both be accepted, since that check is all that keeps two
// nodes from forking a state's history. nats-server before 2.9.21 fails it
// in a cluster (nats-server#4320), Debian 12's 2.9.10 among them: the node
// must refuse to start and name the version needed. On a fixed server it
// starts and says the check held. One nats-server alone needs no check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsAvailable, natsVersion, startNatsCluster, startNats } from '../lib/nats.mjs';
import { runServerToExit, startServer, assertNoSanitizer } from '../lib/server.mjs';

const skip = natsAvailable() ? false : 'nats-server is not installed (make deps-test installs it)';

/** a < b for "x.y.z" versions */
function older(a, b) {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

test('a node on a nats cluster refuses to run when the cluster lets two appends with the same expected sequence through', { skip, timeout: 120000 }, async (t) => {
  const cl = await startNatsCluster(3);
  t.after(() => cl.stop());
  const version = natsVersion();
  const args = ['--host', '127.0.0.1', '--port', '0', '--engine', `${cl.url}/piece`, '--node-id', '1', '--replicas', '3'];
  if (version && older(version, '2.9.21')) {
    const r = await runServerToExit(args, { timeout: 60000 });
    assert.equal(r.timedOut, false, `the node must not start on nats-server ${version}:\n${r.stderr}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /accepted two appends that expected the same last sequence/);
    assert.match(r.stderr, /nats-server 2\.9\.21 or later/);
    assertNoSanitizer(r.stderr);
    assert.doesNotMatch(r.stderr, /listening on/, 'refused before serving anything');
  } else {
    const srv = await startServer({ args });
    t.after(() => srv.stop());
    assert.match(srv.stderr(), /compare-and-set holds/);
  }
});

test('one nats-server (no cluster): no check, the node starts at once', { skip, timeout: 60000 }, async (t) => {
  const nats = await startNats();
  t.after(() => nats.stop());
  const srv = await startServer({ args: ['--engine', `${nats.url}/piece`, '--node-id', '1'] });
  assert.doesNotMatch(srv.stderr(), /compare-and-set/);
  await srv.stop();
});
