// The operator on a piece served by two nodes (PROTOCOL.md §8b, §14): the
// inspector of one node lists the phones held by the other with their node,
// as connected while they are (not as "resuming since 1970"), and resuming
// with the right time once their connection went; KICK from one node ends a
// session whose phone is connected to the other: 4005 there, its states
// deleted for everybody, its token void on every node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/cluster.mjs';
import { natsAvailable } from '../lib/nats.mjs';
import { RawClient, T, E } from '../lib/client.mjs';

const skip = natsAvailable() ? false : 'nats-server is not installed (make deps-test installs it)';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DESC = { v: { type: 'integer', default: 0 } };

async function cluster(t) {
  const cl = await startCluster({ nodes: 2, schemas: [{ class: 'knob', description: DESC }],
    serverOpts: { secure: true, resumeWindow: 60 } });
  t.after(() => cl.destroy());
  const m = /the inspector: http\S+\/inspect#role=admin&token=([0-9a-f]+)/.exec(cl.nodes[0].stdout());
  assert.ok(m, `node 1's banner names the inspector's URL with the admin token:\n${cl.nodes[0].stdout()}`);
  const admin = () => RawClient.open(cl.nodes[0].url, { version: 1, role: 'admin', roleToken: m[1] });
  return { cl, admin };
}

/** The room of node 1 once pred(row of session id) holds. */
async function rowOf(a, id, pred, what) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const room = await a.call(T.INSPECT, {});
    const row = room.sessionRows.find((s) => s.id === id);
    if (row && pred(row)) return { room, row };
    if (Date.now() > deadline) assert.fail(`${what}: ${JSON.stringify(row)}`);
    await sleep(100);
  }
}

test('the inspector of one node shows the phones of the other with their node, connected, then resuming since they went', { skip, timeout: 60000 }, async (t) => {
  const { cl, admin } = await cluster(t);
  const a = await admin();
  const phone = await RawClient.open(cl.nodes[1].url);
  const id = phone.welcome.session;
  await phone.call(T.CREATE, 'knob', {});
  const { room, row } = await rowOf(a, id, (r) => r.owned === 1, 'the phone of node 2 is listed');
  assert.equal(room.node, 1, 'the room says which node it comes from');
  assert.equal(room.sessionRows.find((s) => s.role === 'admin').node, 1);
  assert.equal(row.node, 2);
  assert.equal(row.connected, true, 'a phone connected to node 2 is connected');
  assert.equal(row.goneFor, null);
  assert.equal(room.resuming, 0, 'nobody is resuming');
  // its connection goes: node 1 sees it resuming, gone for seconds
  phone.ws.terminate();
  const gone = await rowOf(a, id, (r) => !r.connected, 'the phone is resuming');
  assert.equal(gone.row.node, 2);
  assert.ok(gone.row.goneFor >= 0 && gone.row.goneFor < 30, `gone for seconds, not years: ${gone.row.goneFor}`);
  assert.equal(gone.room.resuming, 1);
  a.ws.close();
  await cl.stop();
});

test('KICK on one node ends a session whose phone is connected to the other: 4005, states deleted everywhere, token void', { skip, timeout: 60000 }, async (t) => {
  const { cl, admin } = await cluster(t);
  const a = await admin();
  const phone = await RawClient.open(cl.nodes[1].url);
  const watcher = await RawClient.open(cl.nodes[0].url);
  const id = phone.welcome.session;
  const st = await phone.call(T.CREATE, 'knob', {});
  const deadline = Date.now() + 10000;
  for (;;) { // node 1 may not have read the new state yet
    const r = await watcher.call(T.ATTACH, 'knob', st.state, {}).catch((e) => e);
    if (!(r instanceof Error)) break;
    if (Date.now() > deadline) throw r;
    await sleep(50);
  }
  await rowOf(a, id, (r) => r.connected, 'the phone of node 2 is listed');
  assert.equal(await a.call(T.KICK, id), null);
  const closed = await phone.closed;
  assert.equal(closed.code, 4005, `closed with ${closed.code} ${closed.reason}`);
  assert.match(closed.reason, /operator/);
  const del = await watcher.nextDeleted(st.state);
  assert.equal(del[2], 'owner left');
  await a.fail(E.UNKNOWN_SESSION, T.KICK, id);
  for (const node of cl.nodes) {
    const back = await RawClient.open(node.url, { version: 1, token: phone.welcome.token });
    assert.equal(back.welcome.resumed, false, `the token does not resume on ${node.url}`);
    back.ws.close();
  }
  assert.match(cl.nodes[1].stderr(), new RegExp(`session ${id} .*ended by the operator on another node`));
  a.ws.close();
  watcher.ws.close();
  await cl.stop();
});
