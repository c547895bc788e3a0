// Finding: --history counted events only. 1000 SETs of 1 MiB left 1 GiB of
// history; HISTORY {last: 1000} built a 1 GB reply, froze every client for
// 7-42 s and peaked at 3 GB RSS. Now the history is bounded in bytes too
// (--history-bytes), every value in bytes (a param's maxBytes,
// --max-value-bytes), a state's values (--max-state-bytes) and all of it
// together (--max-memory) (PROTOCOL.md §9, §13).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpDir } from '../lib/server.mjs';
import { withServer, phone, memory, pingWatch, bigString, MiB, T, E } from './lib/hostile.mjs';

test('many sets of values near the bound: the server\'s memory stays bounded, HISTORY replies stay within --history-bytes, pings answer meanwhile', async (t) => {
  // maxBytes raises this param's bound above --max-value-bytes: a quarter
  // of a MiB a value, as a sampler sharing recordings would
  const SZ = 250000, N = 240;
  const TAPE = { class: 'tape', description: { s: { type: 'string', default: '', maxBytes: 262144 } } };
  // a file database, as a real piece runs: SQLite's cache is bounded, the
  // events it keeps are on disk
  await withServer({ schemas: [TAPE], db: join(tmpDir('tutti-sec-db-'), 'tutti.db') }, async (srv, cs) => {
    const w = await phone(srv, { clients: cs });
    const other = await phone(srv, { clients: cs });
    const st = await w.create('tape', {});
    let base = null;
    const histories = [];
    const watch = pingWatch(other, 50);
    let inflight = [];
    for (let i = 1; i <= N; i++) {
      inflight.push(w.set(st.instance, { s: bigString(SZ, i) }));
      if (inflight.length >= 4) await inflight.shift();
      if (i === 12 || i % 60 === 0) {
        await Promise.all(inflight);
        inflight = [];
        if (!base) base = memory(srv.proc.pid).rss; // warmed up: allocator, SQLite cache
        if (i % 60) continue;
        const h = await w.call(T.HISTORY, st.instance, { last: 1000 });
        histories.push({ at: i, events: h.events.map((e) => e.seq), bytes: h.events.reduce((n, e) => n + e.changes.s.length, 0), complete: h.complete });
      }
    }
    await Promise.all(inflight);
    const pings = watch.stop();
    const peak = memory(srv.proc.pid).hwm;

    for (const h of histories) {
      assert.ok(h.bytes <= MiB, `HISTORY {last: 1000} after ${h.at} sets held ${h.bytes} bytes of values (--history-bytes is 1 MiB)`);
      assert.ok(h.events.length >= 2, 'the history keeps what fits');
      assert.equal(h.events.at(-1), h.at, 'the newest event is there');
      assert.deepEqual(h.events, h.events.map((_, k) => h.at - h.events.length + 1 + k), 'the most recent events, in seq order');
      assert.equal(h.complete, false, 'the reply says events are missing');
    }
    const grew = peak - base;
    t.diagnostic(`RSS peak ${(grew / MiB).toFixed(1)} MiB above the level after 12 sets; another client's PINGs: ${pings.n}, the slowest ${pings.max} ms`);
    assert.ok(grew < 24 * MiB, `the server's RSS peaked ${(grew / MiB).toFixed(1)} MiB above its level after 12 sets; ` +
      `${N} sets of ${SZ} bytes (${(N * SZ / MiB).toFixed(0)} MiB) must not stay in memory`);
    assert.ok(pings.n > 0 && pings.max < 5000, `another client's PING took up to ${pings.max} ms (${pings.n} pings)`);
  });
});

test('value bytes: a string or any over its maxBytes or --max-value-bytes is BAD_VALUE; a state\'s values over --max-state-bytes is LIMIT; nothing applied', async () => {
  const CARD = {
    class: 'card',
    description: {
      s1: { type: 'string', default: '' }, s2: { type: 'string', default: '' }, s3: { type: 'string', default: '' },
      t: { type: 'string', default: '', maxBytes: 100 },
      a: { type: 'any', default: null, nullable: true, maxBytes: 200 },
      u: { type: 'any', default: null, nullable: true },
    },
  };
  await withServer({ schemas: [CARD], args: ['--max-value-bytes', '1000', '--max-state-bytes', '3000', '--history-bytes', '4096'] }, async (srv, cs) => {
    const o = await phone(srv, { clients: cs });
    const w = await phone(srv, { clients: cs });
    let e = await o.fail(E.BAD_VALUE, T.CREATE, 'card', { s1: 'x'.repeat(1001) });
    assert.match(e.message, /"s1".*1001 bytes.*--max-value-bytes 1000/);
    assert.equal((await w.observe('card')).states.length, 0, 'the refused CREATE made no state');
    const c = await o.create('card', {});
    await w.attach('card', c.state);
    const bad = [
      [{ s1: 'x'.repeat(1001) }, /--max-value-bytes 1000/],
      [{ s1: 'é'.repeat(501) }, /1002 bytes/], // 501 characters, 1002 bytes of UTF-8
      [{ t: 'x'.repeat(101) }, /its maxBytes 100/],
      [{ a: { k: 'x'.repeat(300) } }, /its maxBytes 200/],
      [{ u: ['x'.repeat(600), 'y'.repeat(600)] }, /--max-value-bytes 1000/],
      [{ s2: 'ok', t: 'x'.repeat(101) }, /its maxBytes 100/], // all or nothing
    ];
    for (const [u, why] of bad) {
      e = await o.fail(E.BAD_VALUE, T.SET, c.instance, u);
      assert.match(e.message, why);
    }
    await o.set(c.instance, { s1: 'x'.repeat(1000), t: 'x'.repeat(100), a: { k: 'x'.repeat(100) } });
    await o.set(c.instance, { s2: 'y'.repeat(1000) });
    // s1 + s2 + t + a take about 2200 bytes: 1000 more pass --max-state-bytes 3000
    e = await o.fail(E.LIMIT, T.SET, c.instance, { s3: 'z'.repeat(1000) });
    assert.match(e.message, /--max-state-bytes 3000/);
    // what one key frees counts in the same set
    await o.set(c.instance, { s1: '', s3: 'z'.repeat(1000) });

    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await w.nextUpdate(c.state))[4]);
    assert.deepEqual(seen.map((u) => Object.keys(u).sort()), [['a', 's1', 't'], ['s2'], ['s1', 's3']], 'the watcher saw the accepted sets only');
    await w.expectNoPush(200, (m) => m[0] === T.UPDATE, 'UPDATE');
    const v = (await w.attach('card', c.state)).values;
    assert.deepEqual([v.s1, v.s2.length, v.s3.length, v.t.length, v.u], ['', 1000, 1000, 100, null]);

    const d = await o.describe('card');
    assert.equal(d.t.maxBytes, 100);
    assert.equal('maxBytes' in d.s1, false, 'maxBytes appears only when given');
    for (const ch of 'pqr') await o.set(c.instance, { s2: ch.repeat(1000) }); // past --history-bytes 4096
    const h = await o.call(T.HISTORY, c.instance, { last: 100 });
    const bytes = h.events.reduce((n, ev) => n + JSON.stringify(ev.changes).length, 0);
    assert.equal(h.complete, false);
    assert.ok(bytes < 4096 + 1200, `the history kept ${bytes} bytes with --history-bytes 4096`);
  });
});

test('--max-memory: once values and histories take the budget, writes that need more get LIMIT; small ones pass; deleting frees it', async () => {
  const BANK = { class: 'bank', description: { s: { type: 'string', default: '' }, n: { type: 'integer', default: 0 } } };
  await withServer({ schemas: [BANK], args: ['--max-memory', String(MiB)] }, async (srv, cs) => {
    const a = await phone(srv, { clients: cs });
    const b = await phone(srv, { clients: cs });
    const sa = await a.create('bank', {});
    const sb = await b.create('bank', {});
    let refused = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await a.request(T.SET, sa.instance, { s: bigString(60000, i) });
      if (r[0] === T.ERROR) refused = { i, code: r[2], message: r[3] };
    }
    assert.ok(refused, 'sets of 60 kB never reached a 1 MiB budget');
    assert.equal(refused.code, E.LIMIT);
    assert.match(refused.message, /--max-memory/);
    assert.ok(refused.i >= 5, `refused after ${refused.i} sets only`);
    // the budget is the server's: another phone's big write waits too, its small one goes
    const e = await b.fail(E.LIMIT, T.SET, sb.instance, { s: bigString(60000, 'b') });
    assert.match(e.message, /--max-memory/);
    await b.set(sb.instance, { n: 7 });
    await a.delete(sa.instance);
    await b.set(sb.instance, { s: bigString(60000, 'b') });
  });
});
