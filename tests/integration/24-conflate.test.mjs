// Conflation (PROTOCOL.md §6b): a param declared `conflate: true` lets a
// newer UPDATE replace an unsent older one in a slow client's queue, so a
// phone that cannot keep up gets the latest value instead of a backlog.
// Other params, events and the history keep every update.
//
// The slow reader stops reading its socket (kernel buffers fill, then the
// server's queue holds the rest) while a writer sets large values; then it
// reads again. Nothing here depends on timing: the volume alone (far more
// than a loopback socket buffers) makes the queue hold updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass } from './lib/harness.mjs';

const h = useServer({ history: 10000, args: ['--max-queue', String(512 << 20), '--history-bytes', String(64 << 20)] });

const SETS = 300;
const BIG = 60000; // bytes per wave value: SETS x BIG is far past socket buffers
const wave = (i) => `${i}:`.padEnd(BIG, 'x');

test('conflate: a schema option, shown in DESCRIBE only when true, refused with event, did-you-mean on typos', async (t) => {
  const c = await h.client(t);
  const cls = uniqueClass('cf');
  await c.define(cls, { a: { type: 'float', default: 0, conflate: true }, b: { type: 'float', default: 0, conflate: false } });
  const d = await c.describe(cls);
  assert.equal(d.a.conflate, true);
  assert.equal('conflate' in d.b, false, 'conflate: false is the default and keeps the class identity');
  const bad = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('cf'), { e: { type: 'integer', event: true, conflate: true } });
  assert.match(bad.message, /'conflate' and 'event' exclude each other/);
  const typo = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('cf'), { e: { type: 'float', default: 0, conflat: true } });
  assert.match(typo.message, /did you mean 'conflate'/);
  const notBool = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('cf'), { e: { type: 'float', default: 0, conflate: 1 } });
  assert.match(notBool.message, /'conflate' must be a boolean/);
});

test('a slow reader gets the latest value of a conflating param and every update of the others', { timeout: 60000 }, async (t) => {
  const writer = await h.client(t);
  const reader = await h.client(t);
  const cls = uniqueClass('cf');
  await writer.define(cls, {
    wave: { type: 'string', default: '', conflate: true },
    level: { type: 'float', default: 0, conflate: true },
    count: { type: 'integer', default: 0 },
    hit: { type: 'integer', event: true },
  });
  const st = await writer.create(cls, {});
  const att = await reader.attach(cls, st.state, {});
  reader.ws._socket.pause(); // the slow phone: reads nothing for now

  // every 10th set is a count, every 25th a hit; the rest move the slider
  // (wave), and one set moves wave and level together
  const pending = [];
  let counts = 0, hits = 0;
  for (let i = 1; i <= SETS; i++) {
    let upd;
    if (i % 25 === 0) upd = { hit: i };
    else if (i % 10 === 0) upd = { count: ++counts };
    else if (i === 155) upd = { wave: wave(i), level: i };
    else upd = { wave: wave(i) };
    if (upd.hit !== undefined) hits++;
    pending.push(writer.request(T.SET, st.instance, upd));
  }
  const results = await Promise.all(pending);
  for (const r of results) assert.equal(r[0], T.RESULT, `set refused: ${JSON.stringify(r).slice(0, 200)}`);
  const lastSeq = results[results.length - 1][2].seq;
  assert.equal(lastSeq - results[0][2].seq, SETS - 1, 'every set made an event');

  reader.ws._socket.resume();
  await reader.waitFor(() => reader.pushes.some((m) => m[0] === T.UPDATE && m[2] === lastSeq) || undefined, { timeout: 30000, what: 'the slow reader\'s last update' });
  const ups = reader.pushes.filter((m) => m[0] === T.UPDATE && m[1] === st.state);
  for (let k = 1; k < ups.length; k++) assert.ok(ups[k][2] > ups[k - 1][2], `seq order: ${ups[k - 1][2]} then ${ups[k][2]}`);
  const got = (key) => ups.filter((m) => key in m[4]).map((m) => m[4][key]);
  assert.deepEqual(got('count'), Array.from({ length: counts }, (_, k) => k + 1), 'every update of a non-conflating param');
  assert.equal(got('hit').length, hits, 'every event');
  const waves = got('wave');
  assert.equal(waves[waves.length - 1], wave(SETS - 1), 'the latest wave value');
  assert.ok(waves.length < SETS - counts - hits, `conflated: ${waves.length} wave updates for ${SETS - counts - hits} sets`);
  // the set that moved wave and level together is superseded by later wave
  // sets only for wave: its level change cannot be dropped
  assert.deepEqual(got('level'), [155], 'an update changing a param the newer ones do not is kept');
  const skipped = [];
  for (let k = 1; k < ups.length; k++) for (let s = ups[k - 1][2] + 1; s < ups[k][2]; s++) skipped.push(s);
  assert.ok(skipped.length > 0, 'seq jumped over conflated updates');

  // the history keeps every event, the conflated ones too
  const hist = await reader.call(T.HISTORY, att.instance, { since: results[0][2].seq - 1 });
  const seqs = hist.events.map((e) => e.seq);
  assert.deepEqual(seqs, Array.from({ length: SETS }, (_, k) => results[0][2].seq + k), 'history: every seq');
  for (const s of skipped) {
    const ev = hist.events.find((e) => e.seq === s);
    assert.deepEqual(Object.keys(ev.changes), ['wave'], `a skipped seq (${s}) only moved a conflating param`);
  }
  reader.assertWellFormed();
});
