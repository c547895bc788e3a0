// SPDX-License-Identifier: MIT
// The `tutti` command-line tool against the real server: JSON out, JSON in,
// exit codes, --help of every command, scheduled sets with --at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { bin, run, start, tutti, deadTcpPort } from './lib.mjs';

const SCHEMAS = {
  demo: {
    class: 'demo', server: true,
    description: {
      volume: { type: 'float', default: 0.5, min: 0, max: 1 },
      count: { type: 'integer', default: 0 },
      on: { type: 'boolean', default: false },
      bang: { type: 'boolean', event: true },
      mode: { type: 'enum', list: ['sine', 'square'], default: 'sine' },
      name: { type: 'string', default: '' },
      data: { type: 'any', default: null, nullable: true },
    },
  },
  // a class no state of which exists yet: `tutti ls` lists it all the same
  cue: { class: 'cue', description: { n: { type: 'integer', default: 0 } } },
};

test('tutti: get, set, ls, describe, history, time; JSON in and out; exit codes', { timeout: 120000 }, async (t) => {
  const srv = await startServer({ schemas: SCHEMAS });
  t.after(() => srv.stop());
  const url = srv.url;

  let r = await tutti(url, ['ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json(), [{ class: 'cue', states: [] }, { class: 'demo', states: [{ id: 1, owner: 0 }] }]);

  r = await tutti(url, ['get', 'demo']);
  assert.equal(r.code, 0, r.stderr);
  const [g] = r.json();
  assert.equal(g.class, 'demo');
  assert.equal(g.state, 1);
  assert.deepEqual(g.values, { volume: 0.5, count: 0, on: false, bang: null, mode: 'sine', name: '', data: null });

  // values are read the way each param wants them
  r = await tutti(url, ['set', 'demo', 'volume=0.8', 'count=3', 'on=true', 'mode=square', 'name=hello world', 'data:=[1,{"a":2}]']);
  assert.equal(r.code, 0, r.stderr);
  const [s] = r.json();
  assert.equal(s.seq, 1);
  assert.ok(typeof s.time === 'number');
  assert.deepEqual(s.changes, { volume: 0.8, count: 3, on: true, mode: 'square', name: 'hello world', data: [1, { a: 2 }] });
  r = await tutti(url, ['get', 'demo:1', 'volume', 'name', '--raw']);
  assert.equal(r.stdout, '0.8\nhello world\n');

  // JSON in: --json and stdin; a string param given a JSON string
  r = await tutti(url, ['set', 'demo', '--json', '{"volume": 0.25, "name": "x"}']);
  assert.equal(r.code, 0, r.stderr);
  r = await tutti(url, ['set', 'demo', '--json', '-'], { input: '{"count": 7}' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json()[0].changes, { count: 7 });
  r = await tutti(url, ['set', 'demo', 'name:="true"']);
  assert.deepEqual(r.json()[0].changes, { name: 'true' });

  // clipped by the class
  r = await tutti(url, ['set', 'demo', 'volume=7']);
  assert.deepEqual(r.json()[0].changes, { volume: 1.0 });

  // refused: exit 1, a message naming the code, param and value; nothing applied (atomic)
  r = await tutti(url, ['set', 'demo', 'count=2', 'volume=loud']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /BAD_VALUE.*volume.*loud/);
  r = await tutti(url, ['set', 'demo', 'nope=1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_PARAM.*nope/);
  r = await tutti(url, ['set', 'demo', 'count=1.5']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /BAD_VALUE/);
  r = await tutti(url, ['get', 'demo', 'count', '--raw']);
  assert.equal(r.stdout, '7\n', 'refused sets changed nothing');
  r = await tutti(url, ['get', 'nosuchclass']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_CLASS/);
  r = await tutti(url, ['get', 'demo:99']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_STATE/);

  // usage: exit 2
  for (const args of [['set', 'demo'], ['set', 'demo', 'novalue'], ['frobnicate'], ['get'], ['set', 'demo', 'x=1', '--at', 'soon']]) {
    r = await tutti(url, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }

  // describe, history
  r = await tutti(url, ['describe', 'demo']);
  assert.equal(r.json()[0].volume.max, 1.0);
  r = await tutti(url, ['history', 'demo', '--last', '2']);
  assert.equal(r.code, 0, r.stderr);
  const ev = r.json();
  assert.equal(ev.length, 2);
  assert.deepEqual(ev.map((e) => e.source), ['history', 'history']);
  assert.ok(ev[0].seq < ev[1].seq && ev[1].changes.name === 'true' || ev[1].changes.volume === 1.0);

  // the clock report
  r = await tutti(url, ['time']);
  assert.equal(r.code, 0, r.stderr);
  const [tm] = r.json();
  assert.ok(['training', 'sync'].includes(tm.status), tm.status);
  assert.ok(tm.roundTrip.min >= 0 && tm.roundTrip.min < 0.5 && tm.series >= 1);
  assert.ok(tm.syncTime > 0);
});

test('tutti watch: history first, every update with seq and sync time, a scheduled set at its time', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ schemas: SCHEMAS });
  t.after(() => srv.stop());
  const url = srv.url;
  await tutti(url, ['set', 'demo', 'count=1']);
  await tutti(url, ['set', 'demo', 'count=2']);
  const watch = start(bin('tutti'), ['--url', url, 'watch', 'demo', '--history', '5', '--count', '2']);
  t.after(() => watch.stop('SIGINT'));
  await watch.until(() => watch.json().length >= 2, { what: 'history lines' });
  const [h1, h2] = watch.json();
  assert.deepEqual([h1.source, h1.seq, h1.changes], ['history', 1, { count: 1 }]);
  assert.deepEqual([h2.source, h2.seq, h2.changes], ['history', 2, { count: 2 }]);
  await tutti(url, ['set', 'demo', 'volume=0.3']);
  const u = await watch.until(() => watch.json().find((l) => l.source === 'update'), { what: 'update line' });
  assert.deepEqual([u.seq, u.changes], [3, { volume: 0.3 }]);
  assert.ok(u.time > h2.time);
  // a scheduled set: announced at once, applied at `at` (by the watcher's clock or the server's UPDATE)
  const s = await tutti(url, ['set', 'demo', 'bang=true', '--at', '+0.6']);
  assert.equal(s.code, 0, s.stderr);
  const [reply] = s.json();
  assert.ok(reply.scheduled >= 1 && reply.at > u.time, JSON.stringify(reply));
  const notice = await watch.until(() => watch.json().find((l) => l.source === 'schedule'), { what: 'schedule line' });
  assert.equal(notice.at, reply.at);
  const fired = await watch.until(() => watch.json().find((l) => l.changes && l.changes.bang === true && l.source !== 'schedule'), { what: 'bang line' });
  assert.equal(fired.time, reply.at);
  assert.equal(fired.schedule, reply.scheduled);
  const { code } = await watch.done;
  assert.equal(code, 0, watch.stderr);
});

test('tutti: --help everywhere, a server that is not there exits 3', { timeout: 60000 }, async () => {
  for (const cmd of [[], ['watch'], ['get'], ['set'], ['ls'], ['history'], ['describe'], ['time']]) {
    const r = await run(bin('tutti'), [...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd} --help`);
    assert.match(r.stdout, /usage: tutti/);
  }
  const port = await deadTcpPort();
  const r = await run(bin('tutti'), ['--url', `ws://127.0.0.1:${port}/`, '--timeout', '1', 'get', 'demo']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /cannot connect/);
  const r2 = await run(bin('tutti'), ['--url', 'http://x/', 'get', 'demo']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /ws:\/\//);
});
