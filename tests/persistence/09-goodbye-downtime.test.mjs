// A clean goodbye and downtime (PROTOCOL.md §5, §9): a client that closes
// its connection with 1000, 1001 or no code ends its session at once (owned
// states deleted, attached clients get DELETED "owner left", the token no
// longer resumes); a lost connection keeps the session for the resume
// window, and that window counts wall-clock time, the server's downtime
// included (after a clean stop and after kill -9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Site, T, E, sleep, resume } from './lib/persist.mjs';

const ROOM = { n: { type: 'integer', default: 0 } };

for (const [how, bye] of [
  ['close(1000)', (ws) => ws.close(1000, 'bye')],
  ['close(1001), a page going away', (ws) => ws.close(1001)],
  ['close() without a code', (ws) => ws.close()],
]) {
  test(`a goodbye with ${how} ends the session at once, well within a 60 s window`, { timeout: 30000 }, async (t) => {
    const site = await Site.create(t, { resumeWindow: 60 });
    await site.start();
    const O = await site.client();
    await O.define('room', ROOM);
    const x = await O.create('room', {});
    const B = await site.client();
    await B.attach('room', x.state, {});
    const obs = await site.client();
    await obs.observe('room');
    const t0 = Date.now();
    bye(O.ws);
    const del = await B.nextDeleted(x.state, { timeout: 3000 });
    assert.deepEqual(del, [T.DELETED, x.state, 'owner left']);
    assert.ok(Date.now() - t0 < 3000);
    await obs.nextNotice((m) => m[1] === 'delete' && m[3] === x.state, { what: 'delete notice' });
    const late = await resume(site, O, { [x.state]: 0 });
    assert.equal(late.welcome.resumed, false, 'a session that said goodbye does not resume');
    await B.fail(E.UNKNOWN_STATE, T.ATTACH, 'room', x.state, {});
    await site.stop();
  });
}

test('a lost connection (no close frame) keeps the session for the window', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 60 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  const B = await site.client();
  await B.attach('room', x.state, {});
  await O.terminate();
  await B.expectNoPush(1000, (m) => m[0] === T.DELETED, 'DELETED after a lost connection');
  const O2 = await resume(site, O, { [x.state]: 0 });
  assert.equal(O2.welcome.resumed, true);
  await site.stop();
});

for (const stop of ['stop', 'kill9']) {
  test(`downtime counts toward the window (${stop} with the owner connected, down longer than the window)`, { timeout: 30000 }, async (t) => {
    const site = await Site.create(t, { resumeWindow: 2 });
    await site.start();
    const O = await site.client();
    await O.define('room', ROOM);
    const x = await O.create('room', {});
    await O.set(x.instance, { n: 1 });
    if (stop === 'stop') await site.stop(); else await site.kill9();
    await sleep(3000);
    await site.start();
    // the sweep runs within a second of the start
    await sleep(1200);
    const late = await resume(site, O, { [x.state]: 1 });
    assert.equal(late.welcome.resumed, false, 'the window ran out while the server was down');
    const other = await site.client();
    await other.fail(E.UNKNOWN_STATE, T.ATTACH, 'room', x.state, {});
    await site.stop();
  });
}

test('downtime shorter than the window: the session resumes after the restart', { timeout: 30000 }, async (t) => {
  const site = await Site.create(t, { resumeWindow: 20 });
  await site.start();
  const O = await site.client();
  await O.define('room', ROOM);
  const x = await O.create('room', {});
  await site.kill9();
  await sleep(500);
  await site.start();
  const O2 = await resume(site, O, { [x.state]: 0 });
  assert.equal(O2.welcome.resumed, true);
  await site.stop();
});
