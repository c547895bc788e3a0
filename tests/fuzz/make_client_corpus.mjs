// SPDX-License-Identifier: MIT
// Writes the seed corpus of tests/fuzz/corpus/client/ (fuzz_client.c): what
// a server sends to a client that has sent HELLO (reqId 1), two ATTACHes
// (2, 3), an OBSERVE (4), a CREATE (5) and a DESCRIBE (6). Committed; run
// again only to change the seeds:  node tests/fuzz/make_client_corpus.mjs
import { encode } from '../node_modules/@msgpack/msgpack/dist.esm/index.mjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const demo = JSON.parse(readFileSync(join(here, '..', '..', 'schemas', 'demo.json'), 'utf8'));
const dir = join(here, 'corpus', 'client');
mkdirSync(dir, { recursive: true });
const mp = (...values) => Buffer.concat(values.map((v) => Buffer.from(encode(v))));
const put = (name, bytes) => writeFileSync(join(dir, name), bytes);

const values = { volume: 0.5, frequency: 440, playing: false, bang: null, mode: 'sine', message: '' };
const attach = (req, extra = {}) => [64, req, {
  instance: req * 10, state: 1, class: 'demo', owner: 0, seq: 3, time: 12.5,
  values, description: demo.description, filter: null, ...extra,
}];
const events = [{ seq: 2, time: 10, changes: { volume: 0.25 }, origin: 4 }, { seq: 3, time: 12.5, changes: { bang: true }, origin: 0 }];

put('attach_then_pushes', mp(
  attach(2),
  [66, 1, 4, 13.0, { volume: 0.75, mode: 'noise' }],
  [71, 1, 9, 150.0, { bang: true, frequency: 880 }],
  [66, 1, 5, 150.0, { bang: true, frequency: 880 }, 9],
  [70, 1, 9, 20.0, { ...values, volume: 0.1 }],
  [68, 'create', 'demo', 2, 5],
  [69, 1073741824, 1.0, 100.0, 100.001],
  [67, 1, 'deleted'],
));
put('attach_filter_history', mp(
  attach(2),
  attach(3, { filter: ['volume', 'bang'], history: events, historyComplete: false, scheduled: [[11, 160.0, { volume: 0.9 }]] }),
  [66, 1, 4, 13.0, { volume: 0.2, frequency: 100 }],
));
put('observe_create_describe', mp(
  [65, 2, 10, 'unknown class "demo"'],
  [65, 3, 20, 'no state 1'],
  [64, 4, { states: [['demo', 1, 0], ['other', 2, 3]] }],
  [64, 5, { instance: 50, state: 7, class: 'demo', owner: 7, seq: 0, time: 1, values, description: demo.description }],
  [64, 6, demo.description],
  [68, 'delete', 'other', 2, 3],
));
put('set_replies', mp(
  attach(2),
  [64, 7, { seq: 4, time: 13, changes: { volume: 0.5 } }],
  [64, 8, { scheduled: 12, at: 150, changes: { bang: true } }],
  [64, 9, { events, complete: true }],
  [65, 0, 1, 'bad message'],
));
put('bad_values', mp(
  attach(2, { values: { volume: 'loud', frequency: NaN, mode: 'nope', message: 7, extra: 1 } }),
  [66, 1, 4, 13.0, { volume: [1, 2], playing: 'yes', bang: 3 }],
  [66, 1, 4, 13.0, null],
  [71, 1, 1, NaN, { bang: true }],
  [69, 1073741824, 'x', null],
));
put('bad_description', mp(attach(2, { description: { volume: { type: 'floaty' } } }), attach(3, { class: '' })));
put('truncated', mp(attach(2)).subarray(0, 40));
put('not_arrays', mp(1, 'x', {}, [], [64], [64, 'two'], [999, 1]));
