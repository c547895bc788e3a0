// The event loop (server/src/ws.c: lws on a libev epoll loop of the
// server's own): the end of a loop turn runs with no other traffic to wake
// the loop, signals stop and reload it while it is busy, and a stop under
// load is clean (exit 0, every client told 1001, no sanitizer report).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tmpDir, writeSchemas } from '../lib/server.mjs';
import { RawClient, T } from '../lib/client.mjs';

const slider = { class: 'slider', description: { x: { type: 'float', default: 0 }, n: { type: 'integer', default: 0 } } };

test('a lone client is answered and its subscriber updated with nothing else on the wire', { timeout: 60000 }, async () => {
  // One request at a time from a single client: each answer needs the end
  // of the loop turn (commit, release, write) to run by itself. With a
  // turn that waited for unrelated traffic or a timer that was never armed
  // (about 0.5 s each), 300 round trips would take minutes, not the test's
  // timeout.
  const srv = await startServer({ schemas: [slider] });
  try {
    const a = await RawClient.open(srv.url);
    const b = await RawClient.open(srv.url);
    const st = await a.create('slider');
    await b.attach('slider', st.state);
    for (let i = 1; i <= 300; i++) {
      const r = await a.set(st.instance, { n: i });
      assert.equal(r.changes.n, i);
      if (i % 50 === 0) {
        await b.waitFor(() => b.pushes.find((m) => m[0] === T.UPDATE && m[2] === r.seq), { what: `update ${r.seq}` });
        b.pushes.length = 0;
      }
    }
    await a.ping();
    await a.close();
    await b.close();
  } finally {
    await srv.stop();
  }
});

test('SIGHUP under load reloads the schemas; SIGTERM under load stops cleanly', { timeout: 60000 }, async () => {
  const dir = writeSchemas(tmpDir('tutti-loop-'), [slider]);
  const srv = await startServer({ schemasDir: dir });
  const subs = [];
  let writing = true;
  try {
    const w = await RawClient.open(srv.url);
    const st = await w.create('slider');
    for (let i = 0; i < 20; i++) {
      const s = await RawClient.open(srv.url);
      await s.attach('slider', st.state);
      subs.push(s);
    }
    // the writer keeps 16 sets in flight for the rest of the test
    let sent = 0, answered = 0;
    const pump = (async () => {
      const inflight = new Set();
      while (writing && !w.closeInfo) {
        while (inflight.size < 16 && writing) {
          const p = w.request(T.SET, st.instance, { x: Math.random(), n: ++sent }).then(() => { answered++; inflight.delete(p); }, () => inflight.delete(p));
          inflight.add(p);
        }
        await Promise.race([...inflight, w.closed]);
        for (const s of subs) s.pushes.length = 0;
      }
    })();
    await w.waitFor(() => (answered > 200 ? true : undefined), { timeout: 20000, what: '200 sets answered' });

    // a class added to the schema folder appears on SIGHUP, while sets flow
    writeFileSync(join(dir, '99-late.json'), JSON.stringify({ class: 'late', description: { y: { type: 'integer', default: 7 } } }));
    srv.proc.kill('SIGHUP');
    const probe = await RawClient.open(srv.url);
    let desc;
    for (let i = 0; i < 200 && !desc; i++) {
      const r = await probe.request(T.DESCRIBE, 'late');
      if (r[0] === T.RESULT) desc = r[2];
      else await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(desc?.y?.default, 7, 'the reloaded class is served');
    const before = answered;
    await w.waitFor(() => (answered > before + 100 ? true : undefined), { timeout: 20000, what: 'sets still answered after the reload' });

    // SIGTERM while the writer still writes: exit 0 (stop() checks the
    // code and the sanitizer), every subscriber told "going away"
    const closes = subs.map((s) => s.closed);
    const res = await srv.stop({ timeout: 10000 });
    writing = false;
    assert.equal(res.timedOut, false, 'stopped without SIGKILL');
    for (const c of await Promise.all(closes)) assert.equal(c.code, 1001, `close ${c.code} ${c.reason}`);
    await pump.catch(() => {});
  } finally {
    writing = false;
    await srv.stop({ allowFail: true });
  }
});

test('SIGINT stops the server like SIGTERM', { timeout: 30000 }, async () => {
  const srv = await startServer({ schemas: [slider] });
  const c = await RawClient.open(srv.url);
  await c.create('slider');
  srv.proc.kill('SIGINT');
  const info = await c.closed;
  assert.equal(info.code, 1001);
  const res = await srv.stop({ timeout: 10000 });
  assert.equal(res.code, 0);
});
