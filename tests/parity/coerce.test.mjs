// The server (shared/schema.c, tt_param_coerce) and the JS client
// (web/tutti.js, coerce) must give every value the same verdict: the client
// checks a set() locally before sending it, so a value it accepts and the
// server refuses (or the other way round) is a bug on one side.
//
// A deterministic set of cases (every type, bounds at the int64 and float
// edges, fractional bounds, nullable and event params, enum lists of mixed
// types, integral floats, fractions, NaN, ±Infinity, -0, float32, integers
// beyond 2^53 and beyond int64, `any` trees with key orders, depth limits,
// bytes that are not UTF-8) is written as msgpack, run through the C code by
// coerce_replay (built beside the server) and through tutti.js as a client
// would see it: the class description is the one the server expands (what
// ATTACH gives the client), the value is the bytes decoded by tutti.js, or
// for values only JavaScript can make (lone surrogates, -0, numbers past
// 2^53) the JS value itself, the server getting what tutti.js encodes.
//
// Both must refuse with the same code, or accept with the same value. Values
// compare exactly (-0 is not 0, NaN equals NaN, an integer is the same as a
// number or a bigint), except map key order: the server sorts map keys, the
// client keeps them as given, and both compare values without order. Where
// they may differ (what a JS value cannot hold) is listed in JS_CANNOT_SEE,
// each with the reason, and checked to differ exactly as described; known
// server bugs are listed in SERVER_BUGS and run as todo tests.
// TUTTI_PARITY_SEED=N draws other random classes; TUTTI_PARITY_DUMP=FILE
// writes every disagreement there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { coerce, expandParam, decodeAll, encode as tuttiEncode, TuttiError, ErrorCode } from '../../web/tutti.js';
import { encode, F64, F32, RawMap, Raw } from '../lib/mp.mjs';

const BUILD = process.env.TUTTI_BUILD || (process.env.TUTTI_SERVER ? dirname(process.env.TUTTI_SERVER) : '');
const REPLAY = BUILD ? join(BUILD, 'coerce_replay') : '';

// -- values ------------------------------------------------------------------

const ext = (type, bytes) => new Raw([0xd4 + [1, 2, 4, 8, 16].indexOf(bytes.length), type & 0xff, ...bytes]);
const str8 = (bytes) => new Raw([0xd9, bytes.length, ...bytes]); // a msgpack str of raw bytes
const I63 = 1n << 63n;

// Values only the wire can carry as they are; `tag` marks the ones JS cannot see.
const WIRE_VALUES = [
  null, true, false,
  0, 1, -1, 3, 5, 9, 10, 11, -5, -6, 100, 101, 127, 128, -32, -33, 255, 256, 65535, 65536,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1),
  2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 60n, 2n ** 60n + 1n, -(2n ** 62n), I63 - 1n, -I63,
  I63, I63 + 1n, 2n ** 64n - 1n,
  new F64(0), new F64(-0), new F64(1), new F64(3), new F64(5), new F64(10), new F64(-5), new F64(0.5), new F64(-0.5),
  new F64(1.5), new F64(5.5), new F64(9.5), new F64(0.1), new F64(1e-300), new F64(5e-324), new F64(-5e-324),
  new F64(2 ** 53), new F64(2 ** 53 + 2), new F64(2 ** 60), new F64(2 ** 62), new F64(2 ** 63), new F64(-(2 ** 63)),
  new F64(2 ** 64), new F64(-(2 ** 64)), new F64(1e20), new F64(1e300), new F64(-1e300), new F64(1.7976931348623157e308),
  new F64(NaN), new F64(Infinity), new F64(-Infinity),
  new F32(0), new F32(-0), new F32(1.5), new F32(0.1), new F32(3), new F32(16777217), new F32(3e38),
  new F32(NaN), new F32(Infinity), new F32(-Infinity),
  '', 'a', 'b', 'x', '1', 'sine', 'é', '😀', 'a\u0000b', 'x'.repeat(300),
  new Uint8Array([]), new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]), ext(1, [2]), ext(-1, [0, 0, 0, 0]),
  [], [1], [1, 'a', null], [[1]], [new F64(NaN), new F64(-0)], [{ b: 1, a: 2 }],
  {}, { a: 1 }, { b: 1, a: 2 }, { z: { y: [1, { d: 1, c: 2 }], x: null }, a: [] }, { '': 0, é: 1, e: 2, E: 3 },
  nest(15), nest(16), nest(17), nest(24), nestMap(16), nestMap(17), [nest(15)], { k: nest(15) },
  nest(15, ext(1, [2])), nest(16, ext(1, [2])), nest(15, new Uint8Array([1])), nest(16, new Uint8Array([1])),
  { tag: 'dupkey', v: new RawMap([['a', 1], ['a', 2]]) },
  { tag: 'dupkey', v: { x: new RawMap([['b', 1], ['a', 1], ['b', 1]]) } },
  { tag: 'nonstrkey', v: new RawMap([[1, 'a']]) },
  { tag: 'nonstrkey', v: [new RawMap([['a', 1], [new F64(1.5), 2]])] },
  { tag: 'badutf8', v: str8([0xff]) },
  { tag: 'badutf8', v: str8([0xc0, 0x80]) },            // overlong NUL
  { tag: 'badutf8', v: str8([0xed, 0xa0, 0x80]) },      // a surrogate
  { tag: 'badutf8', v: str8([0xf4, 0x90, 0x80, 0x80]) }, // past U+10FFFF
  { tag: 'badutf8', v: str8([0x61, 0xc3]) },            // truncated
  { tag: 'badutf8', v: [str8([0xff])] },
  { tag: 'badutf8', v: new RawMap([[str8([0xff]), 1]]) },
  { tag: 'proto', v: new RawMap([['__proto__', 1]]) },
  { tag: 'proto', v: [{ a: new RawMap([['b', 2], ['__proto__', { x: 1 }]]) }] },
];

/** Arrays nested n deep (depth as the server counts it: [] is 1). */
function nest(n, leaf = 1) { let v = leaf; for (let i = 0; i < n; i++) v = [v]; return v; }
function nestMap(n) { let v = 1; for (let i = 0; i < n; i++) v = { k: v }; return v; }

// Values made in JavaScript: the client coerces them as they are and sends
// what tutti.js encodes of them.
const JS_VALUES = [
  -0, 2 ** 53, 2 ** 53 + 2, 2 ** 63, -(2 ** 63), 2 ** 64, 1e20, -1e20, 0.1 + 0.2, Number.MIN_VALUE,
  9007199254740993n, I63 - 1n, -I63, I63, 2n ** 64n - 1n,
  '\ud800', 'a\udc00b', '\udbff\udfff', '\ud83d', 'ok \ud83d\ude00',
  { b: 1, a: -0 }, [2 ** 63], { k: '\ud800' }, new Uint8Array([9]),
];

// -- classes -------------------------------------------------------------------

const FIXED = {
  b: { type: 'boolean', default: false },
  bn: { type: 'boolean', default: null, nullable: true },
  s: { type: 'string', default: '' },
  sn: { type: 'string', default: null, nullable: true },
  i: { type: 'integer', default: 0 },
  i010: { type: 'integer', default: 0, min: 0, max: 10 },
  imin: { type: 'integer', default: 0, min: -5 },
  imax: { type: 'integer', default: 0, max: 100 },
  ifrac: { type: 'integer', default: 1, min: new F64(0.5), max: new F64(9.5) },
  i64: { type: 'integer', default: 0, min: -I63, max: I63 - 1n },
  ihuge: { type: 'integer', default: 0, min: new F64(-1e300), max: new F64(1e300) },
  iumax: { type: 'integer', default: 0, max: 2n ** 64n - 1n },
  iinf: { type: 'integer', default: 0, min: new F64(-Infinity), max: new F64(Infinity) },
  ieq: { type: 'integer', default: 3, min: 3, max: 3 },
  inull: { type: 'integer', default: null, nullable: true },
  iev: { type: 'integer', event: true },
  ireq: { type: 'integer', required: true },
  f: { type: 'float', default: 0 },
  f01: { type: 'float', default: 0.5, min: 0, max: 1 },
  fint: { type: 'float', default: 0, min: -3, max: 10 },
  fmin: { type: 'float', default: 0, min: -1.5 },
  fmax: { type: 'float', default: 0, max: 1e10 },
  finf: { type: 'float', default: 0, min: new F64(-Infinity), max: new F64(Infinity) },
  fpinf: { type: 'float', default: new F64(Infinity), min: new F64(Infinity) },
  fzero: { type: 'float', default: 0, min: new F64(-0), max: new F64(0) },
  fbig: { type: 'float', default: 0, min: -I63, max: 2n ** 64n - 1n },
  fnull: { type: 'float', default: null, nullable: true },
  fev: { type: 'float', event: true },
  e: { type: 'enum', list: ['a', 'b', 1], default: 'a' },
  emix: { type: 'enum', list: [1, new F64(1.5), '1', true, 'x', new F64(-0), new F32(0.1)], default: 1 },
  ebig: { type: 'enum', list: [2n ** 60n + 1n, new F64(2 ** 53), -(2n ** 62n), 2n ** 64n - 1n, new F64(1e20)], default: 2n ** 60n + 1n },
  ebin: { type: 'enum', list: [new Uint8Array([1, 2]), 'ab', ext(1, [2])], default: 'ab' },
  enil: { type: 'enum', list: [null, 'x'], default: 'x' },
  enull: { type: 'enum', list: ['x', 'y'], default: null, nullable: true },
  a: { type: 'any', default: null, nullable: true },
  an: { type: 'any', default: {} },
  aev: { type: 'any', event: true },
};

// -- a seeded generator for more ---------------------------------------------

function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

function generator(seed) {
  const r = prng(seed);
  const int = (n) => Math.floor(r() * n);
  const pick = (a) => a[int(a.length)];
  const EDGES = [0n, 1n, 127n, 128n, 255n, 256n, 32767n, 32768n, 65535n, 65536n, 2n ** 31n, 2n ** 32n, 2n ** 53n,
    2n ** 62n, I63 - 1n];
  const bits64 = () => { const b = Buffer.alloc(8); for (let i = 0; i < 8; i++) b[i] = int(256); return b.readDoubleBE(0); };
  const bits32 = () => { const b = Buffer.alloc(4); for (let i = 0; i < 4; i++) b[i] = int(256); return b.readFloatBE(0); };
  const bigToWire = (n) => (n >= -(2n ** 53n) && n <= 2n ** 53n ? Number(n) : n);
  const STRS = ['', 'a', 'b', 'A', '1', '1.0', 'true', 'null', 'é', 'e\u0301', '😀', ' a', 'a ', 'NaN'];
  const g = {
    integerish() {
      const e = pick(EDGES) + BigInt(int(5) - 2);
      const v = r() < 0.5 ? -e : e;
      if (v < -I63) return -I63;
      return v > I63 - 1n ? v : bigToWire(v);
    },
    scalar() {
      switch (int(14)) {
        case 0: return int(41) - 20;
        case 1: case 2: return g.integerish();
        case 3: return I63 + BigInt(int(1000)) * (r() < 0.5 ? 1n : 2n ** 50n);
        case 4: { const v = g.integerish(); return new F64(Number(v)); }
        case 5: return new F64((int(2001) - 1000) / pick([2, 4, 10, 3]));
        case 6: return new F64(bits64());
        case 7: return new F32(bits32());
        case 8: return new F64(pick([0, -0, Infinity, -Infinity, NaN, 1e300, -1e300, 2 ** 63, -(2 ** 63), 2 ** 64]));
        case 9: case 10: return pick(STRS);
        case 11: return r() < 0.5;
        case 12: return null;
        default: return new Uint8Array([int(3), int(3)].slice(0, int(3)));
      }
    },
    /** A random `any` value: trees up to depth `max`, maps with shuffled key orders. */
    tree(max) {
      if (max <= 0 || r() < 0.3) return g.scalar();
      const n = int(4);
      if (r() < 0.5) return Array.from({ length: n }, () => g.tree(max - 1));
      const keys = [...new Set(Array.from({ length: n }, () => pick(['a', 'b', 'c', 'aa', 'B', '', 'é', '10', '9'])))];
      return Object.fromEntries(keys.map((k) => [k, g.tree(max - 1)]));
    },
    bound() {
      switch (int(8)) {
        case 0: case 1: return undefined;
        case 2: return int(41) - 20;
        case 3: return new F64((int(81) - 40) / 4);
        case 4: return g.integerish();
        case 5: return new F64(pick([1e300, -1e300, 2 ** 63, -(2 ** 63), 2 ** 62]));
        case 6: return null;
        default: return new F64(Infinity * (r() < 0.5 ? 1 : -1));
      }
    },
    /** A param description the server accepts (min <= max, a valid default). */
    param() {
      const kind = pick(['integer', 'integer', 'float', 'float', 'enum', 'enum', 'enum', 'any', 'string', 'boolean']);
      const p = { type: kind };
      if (r() < 0.2) p.nullable = true;
      if (kind === 'integer' || kind === 'float') {
        let lo = g.bound(), hi = g.bound();
        const num = (x) => (x instanceof F64 ? x.v : x === null || x === undefined ? null : Number(x));
        if (num(lo) !== null && num(hi) !== null && num(lo) > num(hi)) [lo, hi] = [hi, lo];
        if (lo !== undefined) p.min = lo;
        if (hi !== undefined) p.max = hi;
        p.default = 0; // clipped by the server; a refused class is skipped
      } else if (kind === 'enum') {
        p.list = Array.from({ length: 1 + int(6) }, () => g.scalar()).filter((v) => !(v instanceof F64 && Number.isNaN(v.v)) && !(v instanceof F32 && Number.isNaN(v.v)));
        if (!p.list.length) p.list = ['a'];
        p.default = p.list[0] === null ? (p.nullable = true, null) : p.list[0];
      } else if (kind === 'any') {
        p.default = null; p.nullable = true;
      } else {
        p.default = kind === 'string' ? '' : false;
      }
      return p;
    },
    /** Values for a param: random ones, and for an enum its items in other encodings. */
    values(p, n) {
      const out = Array.from({ length: n }, () => (p.type === 'any' ? g.tree(int(19)) : g.scalar()));
      for (const it of p.list || []) {
        out.push(it);
        const x = it instanceof F64 || it instanceof F32 ? it.v : it;
        if (typeof x === 'number') out.push(new F64(x), new F32(x), Number.isSafeInteger(x) ? x : new F64(x), String(x));
        if (typeof x === 'bigint') out.push(new F64(Number(x)), x + 1n, x - 1n, String(x));
        if (typeof x === 'number' && Number.isSafeInteger(x)) out.push(BigInt(x) + 1n, x + 1, x - 1);
      }
      // msgpack has no integer outside [-2^63, 2^64)
      return out.filter((v) => typeof v !== 'bigint' || (v >= -I63 && v < 2n ** 64n));
    },
  };
  return g;
}

// -- cases -------------------------------------------------------------------

function buildCases(seed = Number(process.env.TUTTI_PARITY_SEED ?? 20260)) {
  const classes = []; // {name, description, cases: [{param, wire, js?, tag?}]}
  const fixed = { name: 'fixed', description: FIXED, cases: [] };
  for (const param of Object.keys(FIXED)) {
    for (const v of WIRE_VALUES) {
      const tagged = v !== null && typeof v === 'object' && 'tag' in v && 'v' in v;
      fixed.cases.push(tagged ? { param, wire: v.v, tag: v.tag } : { param, wire: v });
    }
    for (const js of JS_VALUES) fixed.cases.push({ param, js, wire: new Raw(tuttiEncode(js)) });
    const proto = JSON.parse('{"a": 1, "__proto__": {"b": 2}}'); // an own key "__proto__"
    fixed.cases.push({ param, js: proto, wire: new Raw(tuttiEncode(proto)), tag: 'proto' });
  }
  classes.push(fixed);
  const g = generator(seed);
  for (let k = 0; k < 12; k++) {
    const description = {};
    for (let i = 0; i < 24; i++) description[`p${i}`] = g.param();
    const c = { name: `random${k}`, description, cases: [] };
    for (const [param, p] of Object.entries(description)) for (const v of g.values(p, 40)) c.cases.push({ param, wire: v });
    classes.push(c);
  }
  return classes;
}

// -- running both sides --------------------------------------------------------

function frame(value) {
  const body = encode(value);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return [head, body];
}

/**
 * The C verdicts, one per record: for a class {code, value: expandedDescription
 * | message}, for a case {code, value | message}; {code, undecodable} when
 * tutti.js cannot decode what the server would send.
 */
function runC(classes) {
  const parts = [];
  for (const c of classes) {
    parts.push(...frame([0, c.name, c.description]));
    for (const k of c.cases) parts.push(...frame([1, k.param, k.wire]));
  }
  const res = spawnSync(REPLAY, [], { input: Buffer.concat(parts), maxBuffer: 1 << 30 });
  assert.equal(res.status, 0, `coerce_replay failed: ${res.stderr}`);
  const out = [], buf = res.stdout;
  for (let at = 0; at < buf.length;) {
    const n = buf.readUInt32BE(at);
    const rec = buf.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    try {
      const [code, value] = decodeAll(rec)[0];
      out.push({ code, value });
    } catch (err) {
      out.push({ code: rec[1], undecodable: err.message }); // rec: 0x92, code (a fixint), ...
    }
  }
  return out;
}

function jsVerdict(className, p, c) {
  let value;
  if ('js' in c) value = c.js;
  else {
    try { value = decodeAll(encode(c.wire))[0]; } catch (err) { return { undecodable: err.message }; }
  }
  try {
    return { input: value, ok: true, value: coerce(className, c.param, p, value) };
  } catch (err) {
    if (!(err instanceof TuttiError)) throw err;
    return { input: value, code: err.code, message: err.message };
  }
}

const isNum = (x) => typeof x === 'number' || typeof x === 'bigint';

/** Same value as the clients see it (see the top of the file). */
function same(a, b) {
  if (isNum(a) && isNum(b)) {
    if (typeof a === typeof b) return typeof a === 'number' ? Object.is(a, b) : a === b;
    const n = typeof a === 'number' ? a : b, big = typeof a === 'bigint' ? a : b;
    return Number.isInteger(n) && BigInt(n) === big;
  }
  if (typeof a !== typeof b) return false;
  if (a === null || b === null || typeof a !== 'object') return a === b;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) return ArrayBuffer.isView(a) && ArrayBuffer.isView(b) && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same(a[k], b[k]));
}


const show = (v) => {
  const s = JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'number' && !Number.isFinite(x) ? String(x)
    : Object.is(x, -0) ? '-0' : x instanceof Uint8Array ? `bin:${Buffer.from(x).toString('hex')}`
      : x instanceof F64 ? `f64:${Object.is(x.v, -0) ? '-0' : x.v}` : x instanceof F32 ? `f32:${Object.is(x.v, -0) ? '-0' : x.v}`
        : x instanceof Raw ? `raw:${x.bytes.toString('hex')}` : x instanceof RawMap ? { rawmap: x.pairs } : x));
  return s && s.length > 160 ? s.slice(0, 157) + '...' : s;
};
const showCase = (c) => `${c.param} <- ${'js' in c ? `js ${show(c.js)}` : show(c.wire)}`;

// Where the two may differ, and why. Each entry is checked: C refuses with
// BAD_VALUE and the JS client accepts (it cannot see the problem), so a
// change on either side shows up here.
const JS_CANNOT_SEE = {
  dupkey: 'a map with a duplicate key: decoded into a JS object, the last value wins; the server sees both and refuses',
  nonstrkey: 'a map with a non-string key: a JS object has only string keys (the decoder turns 1 into "1"); the server refuses',
  badutf8: 'a str that is not UTF-8: the JS decoder replaces the bad bytes; the server checks the bytes and refuses',
};

const bigInt = (x) => (typeof x === 'bigint' ? x >= 2n ** 53n || x <= -(2n ** 53n) : typeof x === 'number' && Math.abs(x) >= 2 ** 53);

// Disagreements that are server bugs, reported; each runs below as a todo
// test that passes once the server is fixed. (Fixed, and now plain
// agreements: enum integers beyond 2^53 compared as doubles; a "__proto__"
// map key accepted though a JS client cannot decode it.)
const SERVER_BUGS = [];

function describeParam(p) {
  return `${p.type}${p.min != null ? ` min ${show(p.min)}` : ''}${p.max != null ? ` max ${show(p.max)}` : ''}${p.list ? ` list ${show(p.list)}` : ''}`;
}

function compareAll() {
  const classes = buildCases();
  const out = runC(classes);
  const r = { n: 0, accepted: 0, refused: 0, refusedClasses: 0, records: out.length, expected: 0, mismatches: [],
    seen: Object.fromEntries(Object.keys(JS_CANNOT_SEE).map((k) => [k, 0])), bugs: SERVER_BUGS.map(() => []) };
  let i = 0;
  for (const c of classes) {
    r.expected += 1 + c.cases.length;
    const { code, value: desc } = out[i++];
    if (c.name === 'fixed') assert.equal(code, 0, `the fixed class must be accepted: ${desc}`);
    if (code !== 0) { r.refusedClasses++; i += c.cases.length; continue; } // a random class the server refuses
    const description = Object.fromEntries(Object.entries(desc).map(([k, d]) => [k, expandParam(d)]));
    for (const k of c.cases) {
      const C = out[i++];
      const p = description[k.param];
      const js = jsVerdict(c.name, p, k);
      r.n++;
      if (C.code === 0) r.accepted++; else r.refused++;
      const line = () => `${c.name}.${showCase(k)} (${describeParam(p)}): ` +
        `C ${C.undecodable ? `ok but undecodable (${C.undecodable})` : C.code === 0 ? `ok ${show(C.value)}` : `${C.code} ${C.value}`}; ` +
        `JS ${js.ok ? `ok ${show(js.value)}` : js.undecodable ? `cannot decode (${js.undecodable})` : `${js.code} ${js.message}`}`;
      if (k.tag in JS_CANNOT_SEE) {
        // both refuse it for another reason (a map for a boolean...), or the
        // difference is exactly the documented one
        const differs = C.code === ErrorCode.BAD_VALUE && js.ok === true;
        if (differs) r.seen[k.tag]++;
        else if (C.code === 0 || C.code !== js.code) r.mismatches.push(`${line()} [${k.tag}: ${JS_CANNOT_SEE[k.tag]}]`);
        continue;
      }
      let agree;
      if (C.undecodable) agree = false;
      else if (js.undecodable) agree = C.code !== 0; // refused, so no client ever gets it
      else if (C.code !== 0) agree = js.code === C.code;
      else agree = js.ok === true && same(js.value, C.value);
      if (agree) continue;
      const bug = SERVER_BUGS.findIndex((b) => b.applies(p, k, js));
      if (bug >= 0) r.bugs[bug].push(line());
      else r.mismatches.push(line());
    }
  }
  if (process.env.TUTTI_PARITY_DUMP) writeFileSync(process.env.TUTTI_PARITY_DUMP, [...r.mismatches, ...r.bugs.flat()].join('\n') + '\n');
  return r;
}

const built = REPLAY && existsSync(REPLAY);
const result = built ? compareAll() : null;
const skip = built ? false : `coerce_replay not built (looked in '${BUILD}'; set TUTTI_BUILD)`;

test('coerce_replay is built where CTest says', () => {
  if (process.env.TUTTI_BUILD) assert.ok(built, `coerce_replay not found in ${BUILD}`);
});

test('C and JS coerce every value the same way', { skip }, (t) => {
  const r = result;
  assert.equal(r.records, r.expected, 'one C verdict per record');
  t.diagnostic(`${r.n} cases: ${r.accepted} accepted, ${r.refused} refused by the server; ${r.refusedClasses} random classes refused`);
  assert.ok(r.n > 10000 && r.accepted > 3000 && r.refused > 3000, `a broad case set: ${r.n} cases, ${r.accepted} accepted, ${r.refused} refused`);
  for (const [tag, k] of Object.entries(r.seen)) assert.ok(k > 0, `the known difference "${tag}" never showed: update JS_CANNOT_SEE`);
  assert.deepEqual(r.mismatches.slice(0, 40), [], `${r.mismatches.length} disagreements (first 40 shown)`);
});

SERVER_BUGS.forEach((b, j) => {
  test(`server: ${b.what}`, { skip, todo: 'server bug, reported' }, () => {
    assert.deepEqual(result.bugs[j].slice(0, 20), [], `${result.bugs[j].length} cases (first 20 shown)`);
  });
});
