// DEFINE (validation of descriptions, defaults validated and clipped,
// identical re-define is a no-op, different is CLASS_EXISTS) and DESCRIBE
// (expanded descriptions with every option default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, T, E, uniqueClass, defineFresh, assertNames } from './lib/harness.mjs';

const h = useServer();

const COMMON_DEFAULTS = {
  nullable: false, event: false, required: false, filterChange: true,
  immediate: false, acknowledge: true, local: false, metas: {},
};

test('DEFINE of a new class answers {defined: true}', async (t) => {
  const c = await h.client(t);
  const r = await c.define(uniqueClass('def'), { x: { type: 'integer', default: 0 } });
  assert.deepEqual(r, { defined: true });
});

test('DESCRIBE of an integer param expands every option, with min/max -Infinity/+Infinity when unbounded', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: 3 } });
  const d = await c.describe(cls);
  assert.deepEqual(d, { x: { type: 'integer', default: 3, ...COMMON_DEFAULTS, min: -Infinity, max: Infinity } });
});

test('DESCRIBE of a float param keeps its bounds and the author\'s own data under metas (step, unit)', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { g: { type: 'float', default: 0.5, min: 0, max: 1, metas: { step: 0.01, unit: 'dB' } } });
  const d = await c.describe(cls);
  assert.deepEqual(d, { g: { type: 'float', default: 0.5, ...COMMON_DEFAULTS, min: 0, max: 1, metas: { step: 0.01, unit: 'dB' } } });
});

test('DEFINE refuses an option it does not know, with a did-you-mean, and a default outside [min, max]', async (t) => {
  const c = await h.client(t);
  let e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `typo_${Date.now()}`, { x: { type: 'integer', default: 0, mni: 0 } });
  assert.match(e.message, /unknown option 'mni': did you mean 'min'\?/);
  e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `unk_${Date.now()}`, { x: { type: 'float', default: 0, step: 0.1 } });
  assert.match(e.message, /unknown option 'step'.*metas/);
  e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `min_${Date.now()}`, { x: { type: 'string', default: '', min: 0 } });
  assert.match(e.message, /'min' does not apply to a string param/);
  e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `def_${Date.now()}`, { x: { type: 'integer', default: 5, max: 1 } });
  assert.match(e.message, /default 5 is outside \[min, max\]/);
});

test('DESCRIBE of boolean, string, enum and any params fills every common option default', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, {
    b: { type: 'boolean', default: true },
    s: { type: 'string', default: 'x' },
    e: { type: 'enum', list: ['a', 'b'], default: 'b' },
    y: { type: 'any', default: { k: [1] } },
  });
  const d = await c.describe(cls);
  assert.deepEqual(Object.keys(d).sort(), ['b', 'e', 's', 'y']);
  const expect = {
    b: { type: 'boolean', default: true },
    s: { type: 'string', default: 'x' },
    e: { type: 'enum', default: 'b', list: ['a', 'b'] },
    y: { type: 'any', default: { k: [1] } },
  };
  for (const [p, exp] of Object.entries(expect)) {
    for (const [k, v] of Object.entries({ ...COMMON_DEFAULTS, ...exp })) {
      assert.ok(k in d[p], `${p}.${k} present in the expanded description`);
      assert.deepEqual(d[p][k], v, `${p}.${k}`);
    }
  }
});

test('DESCRIBE keeps declared options and metas', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, {
    x: { type: 'integer', default: 1, immediate: true, acknowledge: false, filterChange: false, nullable: true, metas: { shown: 'yes' } },
  });
  const d = await c.describe(cls);
  assert.deepEqual(d.x, { type: 'integer', default: 1, nullable: true, event: false, required: false, filterChange: false, immediate: true, acknowledge: false, local: false, metas: { shown: 'yes' }, min: -Infinity, max: Infinity });
});

test('DESCRIBE of an event param forces nullable true and default nil', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { bang: { type: 'boolean', event: true } });
  const d = await c.describe(cls);
  assert.equal(d.bang.event, true);
  assert.equal(d.bang.nullable, true);
  assert.ok('default' in d.bang);
  assert.equal(d.bang.default, null);
});

test('DESCRIBE of a required param has default nil', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { name: { type: 'string', required: true } });
  const d = await c.describe(cls);
  assert.equal(d.name.required, true);
  assert.equal(d.name.default, null);
});

test('the CREATE and ATTACH results carry the expanded description', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: 3 } });
  const d = await c.describe(cls);
  const st = await c.create(cls, {});
  assert.deepEqual(st.description, d);
  const c2 = await h.client(t);
  const att = await c2.attach(cls, st.state, {});
  assert.deepEqual(att.description, d);
});

test('DESCRIBE of an unknown class is UNKNOWN_CLASS', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, 'describe-missing-class');
  assert.ok(e.message.includes('describe-missing-class'));
});

test('a default that does not validate is refused with BAD_DESCRIPTION (integer default 0.5) naming the param', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { ratio: { type: 'integer', default: 0.5 } });
  assertNames(e.message, { param: 'ratio' });
});

test('a default of the wrong type is refused with BAD_DESCRIPTION (string default for boolean)', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { on: { type: 'boolean', default: 'yes' } });
});

test('an enum default not in its list is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { m: { type: 'enum', list: ['a', 'b'], default: 'c' } });
});

test('an integer default above max is refused at definition (a mistake, not something to clip)', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `c12_${Date.now()}`, { x: { type: 'integer', default: 20, min: 0, max: 10 } });
  assert.match(e.message, /param "x": default 20 is outside \[min, max\] = \[0, 10\]/);
});

test('a float default below min is refused at definition', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, `c13_${Date.now()}`, { g: { type: 'float', default: -1, min: 0, max: 1 } });
  assert.match(e.message, /param "g": default -1 is outside \[min, max\] = \[0, 1\]/);
});

test('an integral float default for an integer is accepted (3.0 -> 3)', async (t) => {
  const c = await h.client(t);
  const { F64 } = await import('../lib/mp.mjs');
  const cls = await defineFresh(c, { x: { type: 'integer', default: new F64(3.0) } });
  assert.equal((await c.describe(cls)).x.default, 3);
});

test('a nil default on a param that is not nullable is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { nilx: { type: 'integer', default: null } });
  assertNames(e.message, { param: 'nilx' });
});

test('a nil default on a nullable param is accepted', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: null, nullable: true } });
  const st = await c.create(cls, {});
  assert.equal(st.values.x, null);
});

test('min greater than max is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: { type: 'integer', default: 0, min: 10, max: 0 } });
});

test('a min that is not a number is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: { type: 'float', default: 0, min: 'low' } });
});

test('metas that is not a map is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: { type: 'boolean', default: false, metas: 5 } });
});

test('an unknown type is refused with BAD_DESCRIPTION naming the param', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { weird: { type: 'complex', default: 0 } });
  assertNames(e.message, { param: 'weird' });
});

test('a param without a type is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: { default: 0 } });
});

test('a param without a default (not event, not required) is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  const e = await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { nodefault: { type: 'integer' } });
  assertNames(e.message, { param: 'nodefault' });
});

test('an enum without a list is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { m: { type: 'enum', default: 'a' } });
});

test('a param description that is not a map is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: 'integer' });
});

test('an option of the wrong type (nullable: "yes") is refused with BAD_DESCRIPTION', async (t) => {
  const c = await h.client(t);
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, uniqueClass('bad'), { x: { type: 'integer', default: 0, nullable: 'yes' } });
});

test('a refused DEFINE leaves the class undefined', async (t) => {
  const c = await h.client(t);
  const name = uniqueClass('bad');
  await c.fail(E.BAD_DESCRIPTION, T.DEFINE, name, { x: { type: 'nope', default: 0 } });
  await c.fail(E.UNKNOWN_CLASS, T.DESCRIBE, name);
});

test('a class name over 128 bytes is refused', async (t) => {
  const c = await h.client(t);
  const reply = await c.request(T.DEFINE, 'n'.repeat(129), { x: { type: 'integer', default: 0 } });
  assert.equal(reply[0], T.ERROR, `got ${JSON.stringify(reply).slice(0, 200)}`);
});

test('a class name of exactly 128 bytes is accepted', async (t) => {
  const c = await h.client(t);
  const name = ('m' + uniqueClass('n')).padEnd(128, 'x');
  assert.deepEqual(await c.define(name, { x: { type: 'integer', default: 0 } }), { defined: true });
});

test('class name length is counted in UTF-8 bytes: 42 x "音" (126 bytes) is accepted, 43 (129 bytes) refused', async (t) => {
  const c = await h.client(t);
  const ok = '音'.repeat(42);
  const r = await c.request(T.DEFINE, ok, { x: { type: 'integer', default: 0 } });
  assert.equal(r[0], T.RESULT, JSON.stringify(r));
  assert.equal((await c.describe(ok)).x.type, 'integer');
  const reply = await c.request(T.DEFINE, '音'.repeat(43), { x: { type: 'integer', default: 0 } });
  assert.equal(reply[0], T.ERROR);
});

test('an empty class name is refused', async (t) => {
  const c = await h.client(t);
  const reply = await c.request(T.DEFINE, '', { x: { type: 'integer', default: 0 } });
  assert.equal(reply[0], T.ERROR);
});

test('a param name over 128 bytes is refused', async (t) => {
  const c = await h.client(t);
  const d = {};
  d['p'.repeat(129)] = { type: 'integer', default: 0 };
  const reply = await c.request(T.DEFINE, uniqueClass('bad'), d);
  assert.equal(reply[0], T.ERROR);
});

test('a class with 257 params is refused, one with 256 is accepted', async (t) => {
  const c = await h.client(t);
  const d = {};
  for (let i = 0; i < 257; i++) d[`p${i}`] = { type: 'integer', default: 0 };
  const reply = await c.request(T.DEFINE, uniqueClass('big'), d);
  assert.equal(reply[0], T.ERROR);
  assert.ok([E.BAD_DESCRIPTION, E.LIMIT].includes(reply[2]), `code ${reply[2]}`);
  delete d.p256;
  assert.deepEqual(await c.define(uniqueClass('big'), d), { defined: true });
});

test('an identical re-DEFINE is a no-op answered {defined: false}', async (t) => {
  const c = await h.client(t);
  const desc = { x: { type: 'integer', default: 1, min: 0, max: 5 }, s: { type: 'string', default: '' } };
  const cls = await defineFresh(c, desc);
  const c2 = await h.client(t);
  assert.deepEqual(await c2.define(cls, desc), { defined: false });
  assert.deepEqual(await c.define(cls, desc), { defined: false });
});

test('a re-DEFINE that only spells out defaults (nullable: false, min: nil) is identical', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: 0 } });
  assert.deepEqual(await c.define(cls, { x: { type: 'integer', default: 0, nullable: false, min: null, filterChange: true, metas: {} } }), { defined: false });
});

test('a re-DEFINE with params in another key order is identical', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { a: { type: 'integer', default: 0 }, b: { type: 'string', default: '' } });
  assert.deepEqual(await c.define(cls, { b: { default: '', type: 'string' }, a: { default: 0, type: 'integer' } }), { defined: false });
});

test('a different description under a taken name is CLASS_EXISTS and the class is unchanged', async (t) => {
  const c = await h.client(t);
  const cls = await defineFresh(c, { x: { type: 'integer', default: 0 } });
  const before = await c.describe(cls);
  const e = await c.fail(E.CLASS_EXISTS, T.DEFINE, cls, { x: { type: 'integer', default: 1 } });
  assert.ok(e.message.includes(cls));
  await c.fail(E.CLASS_EXISTS, T.DEFINE, cls, { x: { type: 'integer', default: 0 }, y: { type: 'integer', default: 0 } });
  assert.deepEqual(await c.describe(cls), before);
});
