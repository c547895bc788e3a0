// The protocol's numbers have one source of truth, the C headers
// (shared/protocol.h: message types, close codes, name and version;
// shared/common.h: error codes). The JS client (web/tutti.js and its types
// tutti.d.ts), the tests' raw client (tests/lib/client.mjs, which imports
// tutti.js) and the spec's tables (shared/PROTOCOL.md) must say the same:
// every name and every number, nothing more and nothing less.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MSG, ErrorCode, CloseCode, PROTOCOL, VERSION } from '../../web/tutti.js';
import { T, E, CloseCode as ClientCloseCode } from '../lib/client.mjs';
import { ROOT } from '../lib/server.mjs';

const read = (rel) => readFileSync(join(ROOT, rel), 'utf8');
const PROTOCOL_H = read('shared/protocol.h');
const COMMON_H = read('shared/common.h');

/** {NAME: number} of a C enum, prefix stripped; every item must have an explicit value. */
function cEnum(src, name, prefix) {
  const m = new RegExp(`enum ${name}\\s*\\{([^}]*)\\}`).exec(src);
  assert.ok(m, `enum ${name} not found`);
  const body = m[1].replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const out = {};
  for (const item of body.split(',').map((s) => s.trim()).filter(Boolean)) {
    const e = /^(\w+)\s*=\s*(\d+)$/.exec(item);
    assert.ok(e, `enum ${name}: item "${item}" has no explicit value (the test could not read it)`);
    assert.ok(e[1].startsWith(prefix), `enum ${name}: ${e[1]} lacks the prefix ${prefix}`);
    out[e[1].slice(prefix.length)] = Number(e[2]);
  }
  return out;
}

function cDefine(src, name) {
  const m = new RegExp(`#define ${name}\\s+(.+)`).exec(src);
  assert.ok(m, `#define ${name} not found`);
  return JSON.parse(m[1].trim());
}

/** {NAME: number} of a `export declare const X: Readonly<{ A: 1; ... }>` in tutti.d.ts. */
function dtsConst(src, name) {
  const m = new RegExp(`export declare const ${name}: Readonly<\\{([^}]*)\\}>`).exec(src);
  assert.ok(m, `${name} not found in tutti.d.ts`);
  return Object.fromEntries([...m[1].matchAll(/(\w+):\s*(-?\d+)/g)].map((x) => [x[1], Number(x[2])]));
}

/** The rows `| number | NAME | ...` (or `| number | ...`) of the table under a PROTOCOL.md heading. */
function mdTable(md, heading) {
  const start = md.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `PROTOCOL.md: heading "${heading}" not found`);
  const end = md.indexOf('\n## ', start + 1);
  const section = md.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| (\d+) \| ([^|]*)\|/gm)].map((r) => [Number(r[1]), r[2].trim()]);
}

const C_MSG = cEnum(PROTOCOL_H, 'tt_msg_type', 'TT_MSG_');
const C_CLOSE = cEnum(PROTOCOL_H, 'tt_close_code', 'TT_CLOSE_');
const C_CODE = cEnum(COMMON_H, 'tt_code', 'TT_');
delete C_CODE.OK; // 0: success, never on the wire
const serverCodes = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v > 0));

test('the C headers are readable and plausible', () => {
  assert.ok(Object.keys(C_MSG).length >= 20, `message types: ${JSON.stringify(C_MSG)}`);
  assert.ok(Object.keys(C_CODE).length >= 20, `error codes: ${JSON.stringify(C_CODE)}`);
  assert.ok(Object.keys(C_CLOSE).length >= 4, `close codes: ${JSON.stringify(C_CLOSE)}`);
  for (const t of [C_MSG, C_CODE, C_CLOSE]) {
    assert.equal(new Set(Object.values(t)).size, Object.keys(t).length, `duplicate numbers: ${JSON.stringify(t)}`);
  }
});

test('web/tutti.js: message types, error codes, close codes, protocol name and version are the C ones', () => {
  assert.deepEqual({ ...MSG }, C_MSG);
  assert.deepEqual(serverCodes(ErrorCode), C_CODE);
  assert.deepEqual({ ...CloseCode }, C_CLOSE);
  assert.equal(PROTOCOL, cDefine(PROTOCOL_H, 'TT_PROTOCOL_NAME'));
  assert.equal(VERSION, cDefine(PROTOCOL_H, 'TT_PROTOCOL_VERSION'));
  // the client's own codes are negative, so they can never meet a server code
  for (const [k, v] of Object.entries(ErrorCode)) if (!(k in C_CODE)) assert.ok(v < 0, `client-only code ${k} = ${v} must be negative`);
});

test('web/tutti.d.ts declares the same numbers', () => {
  const dts = read('web/tutti.d.ts');
  assert.deepEqual(dtsConst(dts, 'MSG'), C_MSG);
  assert.deepEqual(dtsConst(dts, 'ErrorCode'), { ...ErrorCode });
  assert.deepEqual(dtsConst(dts, 'CloseCode'), C_CLOSE);
  assert.match(dts, new RegExp(`export declare const PROTOCOL: '${cDefine(PROTOCOL_H, 'TT_PROTOCOL_NAME')}';`));
  assert.match(dts, new RegExp(`export declare const VERSION: ${cDefine(PROTOCOL_H, 'TT_PROTOCOL_VERSION')};`));
});

test('the tests\' raw client uses the same numbers', () => {
  assert.deepEqual({ ...T }, C_MSG);
  assert.deepEqual({ ...E }, C_CODE);
  assert.deepEqual({ ...ClientCloseCode }, C_CLOSE);
});

test('tt_code_name (shared/common.c) names every code by its enum name', () => {
  const src = read('shared/common.c');
  const names = Object.fromEntries([...src.matchAll(/case TT_(\w+): return "(\w+)";/g)].map((m) => [m[1], m[2]]));
  delete names.OK;
  assert.deepEqual(Object.keys(names).sort(), Object.keys(C_CODE).sort(), 'every code has a name, no name lacks a code');
  for (const [k, v] of Object.entries(names)) assert.equal(v, k);
});

test('shared/PROTOCOL.md: the tables of message types, error codes and close codes, the name and the version', () => {
  const md = read('shared/PROTOCOL.md');
  const byNumber = (o) => Object.entries(o).map(([k, v]) => [v, k]).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(mdTable(md, '2. Message types'), byNumber(C_MSG));
  assert.deepEqual(mdTable(md, '11. Error codes'), byNumber(C_CODE));
  assert.deepEqual(mdTable(md, '12. Close codes').map((r) => r[0]), Object.values(C_CLOSE).sort((a, b) => a - b));
  const name = cDefine(PROTOCOL_H, 'TT_PROTOCOL_NAME'), version = cDefine(PROTOCOL_H, 'TT_PROTOCOL_VERSION');
  assert.match(md.split('\n')[0], new RegExp(`version ${version}$`), 'the title names the version');
  assert.ok(md.includes(`subprotocol **\`${name}\`**`), `§1 names the subprotocol ${name}`);
  assert.ok(md.includes(`protocol version, must be \`${version}\``), `§3 names the version ${version}`);
});
