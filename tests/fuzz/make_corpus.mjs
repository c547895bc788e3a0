// SPDX-License-Identifier: MIT
// Writes the seed corpora of tests/fuzz/corpus/{codec,schema,handler}/ from
// the protocol examples of shared/PROTOCOL.md and schemas/demo.json. The
// files are committed; run again only to change the seeds:
//   node tests/fuzz/make_corpus.mjs
// Handler seeds follow the input layout described in fuzz_handler.c.
import { encode } from '../node_modules/@msgpack/msgpack/dist.esm/index.mjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const demo = JSON.parse(readFileSync(join(root, 'schemas', 'demo.json'), 'utf8'));

const cat = (parts) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const mp = (...values) => cat(values.map((v) => encode(v)));

function put(target, name, bytes) {
  const dir = join(here, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), bytes);
}

// ---- codec: protocol messages, alone and back to back --------------------
const messages = {
  hello: [1, 1, { version: 1 }],
  hello_resume: [1, 2, { version: 1, token: '0123456789abcdef0123456789abcdef', seqs: { 1: 4 } }],
  define: [2, 3, 'synth', { freq: { type: 'float', default: 440, min: 20, max: 20000 } }],
  create: [3, 4, 'demo', { volume: 0.25, message: 'hi' }],
  attach: [4, 5, 'demo', null, { filter: ['volume', 'bang'], history: 10 }],
  detach: [5, 6, 1],
  delete: [6, 7, 1],
  set: [7, 8, 1, { volume: 0.75, bang: true }],
  set_at: [7, 9, 1, { mode: 'noise' }, { at: 12.5 }],
  observe: [8, 10, null],
  unobserve: [9, 11, 'demo'],
  history: [10, 12, 1, { since: 3 }],
  describe: [11, 13, 'demo'],
  ping: [12, 14, 1.25],
  result: [64, 8, { seq: 3, time: 1.5, changes: { volume: 0.75 } }],
  error: [65, 0, 1, 'a message must be an array [type, ...]'],
  update: [66, 1, 3, 1.5, { volume: 0.75 }],
  deleted: [67, 1, 'owner left'],
  notice: [68, 'create', 'demo', 2, 5],
  pong: [69, 14, 1.25, 10.5, 10.5],
  snapshot: [70, 1, 3, 1.5, { volume: 0.75, playing: false }],
  scheduled: [71, 1, 1, 12.5, { mode: 'noise' }],
};
for (const [name, m] of Object.entries(messages)) put('codec', name, mp(m));
put('codec', 'batch', mp(...Object.values(messages)));
put('codec', 'scalars', cat([
  mp(null, true, false, 0, -1, 127, 128, -33, 65536, 2 ** 32, -(2 ** 40), 0.5, -0.0, Infinity, NaN, '', 'é'),
  [0xca, 0x3f, 0xc0, 0x00, 0x00],                         // float32 1.5
  [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // uint64 max
  [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],                      // int64 min
  [0xc4, 0x02, 0x00, 0xff],                               // bin8
  [0xd4, 0x01, 0x2a], [0xc7, 0x03, 0x05, 0x61, 0x62, 0x63], // ext
  [0xdc, 0x00, 0x01, 0xc0], [0xde, 0x00, 0x01, 0xa1, 0x6b, 0x01], // array16, map16
]));
put('codec', 'nested', mp({ a: [[[[{ b: { c: [1, { d: null }] } }]]]], z: { y: {}, x: [] } }));
put('codec', 'dupkeys', Buffer.from([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]));
put('codec', 'huge_claim', Buffer.from([0xdd, 0x00, 0xff, 0xff, 0xff]));
put('codec', 'bad_c1', Buffer.from([0x92, 0x01, 0xc1]));

// ---- schema: a description, then candidate values ------------------------
put('schema', 'demo', mp(demo.description, 0.5, 3, 2500, -1, 'sine', 'saw', true, null, { a: 1 }, [1, 2],
  Infinity, -Infinity, NaN, 2 ** 53));
put('schema', 'every_type', mp({
  b: { type: 'boolean', default: true, immediate: true },
  s: { type: 'string', default: '', nullable: true, metas: { label: 'S' } },
  i: { type: 'integer', default: 5, min: 0, max: 10, step: 1 },
  i2: { type: 'integer', default: 1.0, min: -1.5, max: 1e30 },
  f: { type: 'float', default: 0, min: -1, max: 1, filterChange: false },
  e: { type: 'enum', list: [1, '1', true, 2.5, null], default: 1 },
  a: { type: 'any', default: { z: 1, a: [1, { y: 2, x: 3 }] } },
  ev: { type: 'any', event: true },
  r: { type: 'string', required: true },
  l: { type: 'boolean', default: false, local: true, acknowledge: false },
}, 1, 1.0, 1.5, '1', true, false, null, 'x', { b: 1, a: 2 }, [[[[]]]], 12, -12, 1e300));
put('schema', 'bad_type', mp({ p: { type: 'int', default: 0 } }, 1));
put('schema', 'bad_minmax', mp({ p: { type: 'integer', default: 0, min: 5, max: 1 } }));
put('schema', 'bad_default', mp({ p: { type: 'enum', list: ['a'], default: 'b' } }));
put('schema', 'event_default', mp({ p: { type: 'boolean', event: true, default: false } }));

// ---- handler: chunks of [ctl, len_hi, len_lo, payload] -------------------
const TURN = 4, RECONNECT = 8, TICK = 16, TEXT = 32;
function chunk(client, ctl, ...msgs) {
  const payload = mp(...msgs);
  return cat([[client | ctl, payload.length >> 8, payload.length & 255], payload]);
}
function raw(client, ctl, bytes) {
  const payload = Buffer.from(bytes);
  return cat([[client | ctl, payload.length >> 8, payload.length & 255], payload]);
}
// byte 0: flags, byte 1: 0, or 1 to allow the persistence round trip; every
// handler seed is written both ways (NAME and NAME_persist). The harness
// runs the round trip when the input's FNV-1a hash is 0 mod 4 as well: the
// _persist seeds get 0-2 trailing bytes (too short for a chunk: ignored)
// that make it so.
const input = (flags, ...chunks) => cat([[flags, 0], ...chunks]);
function fnv1a(bytes) {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}
export function persisting(bytes) {
  const p = Buffer.from(bytes);
  p[1] = 1;
  for (let tail = 0; tail < 65536; tail++) {
    const t = tail === 0 ? [] : tail < 257 ? [tail - 1] : [(tail - 257) >> 8, (tail - 257) & 255];
    const q = cat([p, t]);
    if ((fnv1a(q) & 3) === 0) return q;
  }
  throw new Error('no tail makes the hash 0 mod 4');
}
function putHandler(name, bytes) {
  put('handler', name, bytes);
  put('handler', name + '_persist', persisting(bytes));
}

// two clients on the demo's server-owned state (state 1)
putHandler('demo', input(0x01,
  chunk(0, TURN, [4, 1, 'demo', null, {}], [7, 2, 1, { volume: 0.7 }], [7, 3, 1, { bang: true }],
    [10, 4, 1, { last: 5 }]),
  chunk(1, TURN, [8, 1, null], [4, 2, 'demo', 1, { filter: ['volume', 'mode'], history: 3 }],
    [7, 3, 2, { mode: 'square' }], [7, 4, 2, { volume: 2 }], [7, 5, 2, { playing: true }]),
  chunk(0, TURN, [11, 5, 'demo'], [12, 9, 1.5], [7, 6, 1, { volume: 0.7 }], [5, 7, 1], [7, 8, 1, { volume: 0 }]),
));
// the all-types class: create, sets of every kind, attach, delete
putHandler('all_types', input(0x01,
  chunk(0, TURN, [3, 1, 'all', { r: 'req', i: 50, a: { b: 1, a: [1, 2] } }],
    [7, 2, 1, { i: 3.0, n: null, f: 1, s: 'y', e: '1', a: [1, { x: 1 }], ev: { k: 1 } }],
    [7, 3, 1, { l: true }], [7, 4, 1, { zz: 1 }], [7, 5, 1, { i: 1.5 }], [7, 6, 1, { f: 1 }]),
  chunk(1, TURN, [4, 1, 'all', 2, { since: 0 }], [7, 2, 2, { i: -100, e: true }], [6, 3, 2], [6, 4, 1]),
  chunk(0, TURN, [3, 7, 'all', { r: null }], [3, 8, 'all', {}], [10, 9, 1, { last: 1 }], [6, 10, 1]),
));
// DEFINE and DESCRIBE
putHandler('define', input(0x00,
  chunk(0, TURN, [2, 1, 'cls', { x: { type: 'integer', default: 0 } }],
    [2, 2, 'cls', { x: { default: 0, type: 'integer', nullable: false } }],
    [2, 3, 'cls', { x: { type: 'float', default: 0 } }], [2, 4, 'bad', { x: { type: 'nope' } }],
    [3, 5, 'cls', null], [11, 6, 'cls'], [11, 7, 'nope'], [4, 8, 'cls', null, null], [8, 9, 'cls']),
));
// garbage, unknown types, text frames, a second HELLO
putHandler('garbage', input(0x00,
  raw(0, 0, [0x92, 0x01]),
  raw(0, 0, [0xc1]),
  raw(0, TEXT, [0x61, 0x62]),
  chunk(0, 0, [99, 1], ['x'], [], 5, [12], [1, 0, { version: 1 }], [7, -1, 1, {}], [3, 2 ** 33, 'demo', {}]),
  chunk(0, TURN, [7, 1, 99, {}], [5, 2, 'x'], [10, 3, 1, 5], [4, 4, 'demo', 'x', {}], [4, 5, 'demo', 99, {}]),
));
// sessions: reconnect and resume, with and without missed updates
putHandler('resume', input(0x03,
  chunk(0, TURN, [4, 1, 'demo', null, {}], [7, 2, 1, { volume: 0.1 }]),
  chunk(1, TURN, [4, 1, 'demo', null, {}], [7, 2, 2, { volume: 0.2 }], [7, 3, 2, { volume: 0.3 }]),
  chunk(0, TURN | RECONNECT | 0x40, [7, 3, 1, { volume: 0.4 }]),
  chunk(2, TURN, [3, 1, 'all', { r: 'x' }], [8, 2, 'all']),
  chunk(2, TURN | RECONNECT | TICK, [12, 3, 0]),
  chunk(3, TURN, [8, 1, null], [4, 2, 'all', null, {}]),
));
putHandler('resume_window_0', input(0x09,
  chunk(0, TURN, [3, 1, 'all', { r: 'x' }], [4, 2, 'demo', null, {}]),
  chunk(1, TURN, [8, 1, null], [4, 2, 'all', 2, {}]),
  chunk(0, TURN | RECONNECT | TICK, [7, 3, 1, { i: 1 }]),
  chunk(1, TURN, [7, 3, 1, { i: 1 }]),
));
// scheduled sets (PROTOCOL.md §6a): far future, past, then an attach
putHandler('scheduled', input(0x01,
  chunk(0, TURN, [4, 1, 'demo', null, {}], [7, 2, 1, { volume: 0.1 }, { at: 1e9 }],
    [7, 3, 1, { volume: 0.2 }, { at: 0 }], [7, 4, 1, { mode: 'noise' }, { at: 0.001 }], [7, 5, 1, {}, { at: 'x' }]),
  chunk(1, TURN | TICK, [4, 1, 'demo', null, { filter: ['mode'] }], [4, 2, 'demo', null, {}]),
  chunk(0, TURN | TICK, [3, 6, 'all', { r: 'x' }], [7, 7, 2, { i: 2 }, { at: 1e9 }], [6, 8, 2]),
));
// before HELLO, bad versions
putHandler('not_ready', input(0x04,
  chunk(0, TURN, [4, 1, 'demo', null, {}], [1, 2, { version: 2 }], [1, 3, 'x'], [1, 4, {}], [12, 5, 2],
    [1, 6, { version: 1 }], [4, 7, 'demo', null, {}]),
));
// small limits: queues, history, rate, states
putHandler('limits', input(0xf1,
  chunk(0, 0, [3, 1, 'all', { r: 'a' }], [3, 2, 'all', { r: 'b' }], [3, 3, 'all', { r: 'c' }],
    [3, 4, 'all', { r: 'd' }], [2, 5, 'x1', {}], [2, 6, 'x2', {}]),
  chunk(1, TURN, [4, 1, 'all', 2, {}], [4, 2, 'all', 2, {}], [4, 3, 'all', 2, {}], [4, 4, 'all', 2, {}]),
  chunk(0, TURN, ...Array.from({ length: 12 }, (_, k) => [7, 10 + k, 1, { i: k % 5, s: 'x'.repeat(200 * k) }])),
  chunk(1, TURN, [10, 9, 1, { since: 0 }], [10, 10, 1, { last: 100 }]),
));
console.log('corpus written under', join(here, 'corpus'));
