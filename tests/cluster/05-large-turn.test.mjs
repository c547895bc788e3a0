// A turn whose message for one state is over the nats-server's max_payload
// (PROTOCOL.md §14). The writing node appends one message per dirty state
// per turn, and the events of a state wait for its message in flight, so
// values of tens of KB set faster than JetStream acknowledges can make one
// message too large. Such a message can never be stored: it is refused as
// a fenced one is (its clients are closed with 1012 and resume to what is
// stored), and the node goes on writing. Before, the node sent it again
// every second for ever and refused every change of every client with
// STORAGE. Here the nats-server's max_payload is 64 KiB, and 40 sets of
// 4 KB arrive in one frame (one turn).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/cluster.mjs';
import { natsAvailable, startNats } from '../lib/nats.mjs';
import { RawClient, T } from '../lib/client.mjs';

const skip = natsAvailable() ? false : 'nats-server is not installed (make deps-test installs it)';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DESC = { wave: { type: 'string', default: '' }, n: { type: 'integer', default: 0 } };
const pad = (i) => `${i}:`.padEnd(4000, 'x');

/** The state as node i's fresh client sees it once its seq is at least seq. */
async function view(url, id, seq) {
  const c = await RawClient.open(url);
  const deadline = Date.now() + 10000;
  try {
    for (;;) {
      const a = await c.attach('pad', id, {}).catch(() => null);
      if (a && a.seq >= seq) return a;
      if (Date.now() > deadline) assert.fail(`${url}: state ${id} at seq ${a?.seq}, not ${seq}`);
      await sleep(50);
    }
  } finally { c.ws.close(); }
}

test('a message over max_payload is refused like a fenced one; the node goes on writing', { skip, timeout: 90000 }, async (t) => {
  const nats = await startNats({ maxPayload: 64 * 1024 });
  const cl = await startCluster({ nodes: 2, nats, schemas: [{ class: 'pad', description: DESC }],
    args: ['--max-rate', '0', '--resume-window', '60'] });
  t.after(async () => { await cl.destroy(); await nats.kill9(); });
  const writer = await RawClient.open(cl.nodes[0].url);
  const st = await writer.create('pad', {});
  // what fits goes through as usual: 10 x 4 KB in one turn
  let rid = writer.nextReqId;
  writer.sendMany(Array.from({ length: 10 }, (_, i) => [T.SET, rid + i, st.instance, { wave: pad(i) }]));
  writer.nextReqId += 10;
  for (let i = 0; i < 10; i++) {
    const r = await writer.waitReply(rid + i);
    assert.equal(r[0], T.RESULT, `set ${i}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  const before = await view(cl.nodes[1].url, st.state, 10);
  assert.equal(before.values.wave, pad(9));

  // 40 x 4 KB in one turn: one message of ~160 KB
  rid = writer.nextReqId;
  writer.sendMany(Array.from({ length: 40 }, (_, i) => [T.SET, rid + i, st.instance, { wave: pad(100 + i), n: i }]));
  writer.nextReqId += 40;
  const closed = await writer.closed;
  assert.equal(closed.code, 1012, `the writer resumes to what is stored: ${closed.code} ${closed.reason}`);
  assert.equal(writer.replies.filter((m) => m[1] >= rid && m[0] === T.RESULT).length, 0, 'none of the refused sets was acknowledged');
  await sleep(200);
  assert.match(cl.nodes[0].stderr(), /too large \(\d+ bytes, over the nats-server's max_payload of 65536\)/);

  // the node writes again at once: no STORAGE error, on it or through the other node
  const again = await RawClient.open(cl.nodes[0].url, { version: 1, token: writer.welcome.token });
  assert.equal(again.welcome.resumed, true);
  const r1 = await again.call(T.SET, st.instance, { n: 1000 }); // instance ids outlive a resume
  assert.equal(r1.seq, 11, 'the refused sets are not stored: the next seq follows the last stored one');
  const other = await RawClient.open(cl.nodes[1].url);
  const a2 = await other.attach('pad', st.state, {});
  const r2 = await other.call(T.SET, a2.instance, { n: 1001 });
  assert.equal(r2.seq, 12);
  // both nodes agree, with the values before the refused turn
  for (const node of cl.nodes) {
    const v = await view(node.url, st.state, 12);
    assert.equal(v.seq, 12);
    assert.deepEqual(v.values, { wave: pad(9), n: 1001 }, `${node.url}`);
  }
  assert.doesNotMatch(cl.nodes[0].stderr(), /refused: STORAGE/);
  again.ws.close();
  other.ws.close();
  await cl.stop();
  await nats.stop();
});
