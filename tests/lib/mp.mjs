// A small msgpack *encoder* for the tests. It gives full control over the
// bytes sent to the server: floats with an integral value (F64), float32
// (F32), maps with duplicate or non-string keys (RawMap), raw bytes (Raw).
// Incoming messages are decoded with @msgpack/msgpack (decodeMulti).

export class F64 {
  constructor(v) { this.v = v; }
}

/** A float32 (the value is rounded to float32 when written). */
export class F32 {
  constructor(v) { this.v = v; }
}

export class RawMap {
  /** @param {Array<[any, any]>} pairs written in this order, duplicates kept */
  constructor(pairs) { this.pairs = pairs; }
}

export class Raw {
  constructor(bytes) { this.bytes = Buffer.from(bytes); }
}

function encodeInt(n, out) {
  if (typeof n === 'bigint') {
    const b = Buffer.alloc(9);
    if (n >= 0n) { b[0] = 0xcf; b.writeBigUInt64BE(n, 1); } else { b[0] = 0xd3; b.writeBigInt64BE(n, 1); }
    out.push(b);
    return;
  }
  if (n >= 0) {
    if (n < 128) out.push(Buffer.from([n]));
    else if (n < 0x100) out.push(Buffer.from([0xcc, n]));
    else if (n < 0x10000) { const b = Buffer.alloc(3); b[0] = 0xcd; b.writeUInt16BE(n, 1); out.push(b); }
    else if (n < 0x100000000) { const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(n, 1); out.push(b); }
    else { const b = Buffer.alloc(9); b[0] = 0xcf; b.writeBigUInt64BE(BigInt(n), 1); out.push(b); }
  } else {
    if (n >= -32) out.push(Buffer.from([n & 0xff]));
    else if (n >= -128) { const b = Buffer.alloc(2); b[0] = 0xd0; b.writeInt8(n, 1); out.push(b); }
    else if (n >= -32768) { const b = Buffer.alloc(3); b[0] = 0xd1; b.writeInt16BE(n, 1); out.push(b); }
    else if (n >= -2147483648) { const b = Buffer.alloc(5); b[0] = 0xd2; b.writeInt32BE(n, 1); out.push(b); }
    else { const b = Buffer.alloc(9); b[0] = 0xd3; b.writeBigInt64BE(BigInt(n), 1); out.push(b); }
  }
}

function encodeFloat(v, out) {
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(v, 1);
  out.push(b);
}

function encodeLen(len, fix, fixMax, c8, c16, c32, out) {
  if (fix !== null && len <= fixMax) out.push(Buffer.from([fix | len]));
  else if (c8 !== null && len < 0x100) out.push(Buffer.from([c8, len]));
  else if (len < 0x10000) { const b = Buffer.alloc(3); b[0] = c16; b.writeUInt16BE(len, 1); out.push(b); }
  else { const b = Buffer.alloc(5); b[0] = c32; b.writeUInt32BE(len, 1); out.push(b); }
}

function enc(v, out) {
  if (v === null || v === undefined) out.push(Buffer.from([0xc0]));
  else if (v === true) out.push(Buffer.from([0xc3]));
  else if (v === false) out.push(Buffer.from([0xc2]));
  else if (typeof v === 'bigint') encodeInt(v, out);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) encodeInt(v, out);
    else encodeFloat(v, out);
  } else if (v instanceof F64) encodeFloat(v.v, out);
  else if (v instanceof F32) { const b = Buffer.alloc(5); b[0] = 0xca; b.writeFloatBE(v.v, 1); out.push(b); }
  else if (v instanceof Raw) out.push(v.bytes);
  else if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    encodeLen(s.length, 0xa0, 31, 0xd9, 0xda, 0xdb, out);
    out.push(s);
  } else if (v instanceof Uint8Array) {
    encodeLen(v.length, null, -1, 0xc4, 0xc5, 0xc6, out);
    out.push(Buffer.from(v));
  } else if (Array.isArray(v)) {
    encodeLen(v.length, 0x90, 15, null, 0xdc, 0xdd, out);
    for (const x of v) enc(x, out);
  } else if (v instanceof RawMap || v instanceof Map || typeof v === 'object') {
    const pairs = v instanceof RawMap ? v.pairs : v instanceof Map ? [...v.entries()] : Object.entries(v);
    encodeLen(pairs.length, 0x80, 15, null, 0xde, 0xdf, out);
    for (const [k, x] of pairs) { enc(k, out); enc(x, out); }
  } else {
    throw new TypeError(`mp.encode: cannot encode ${typeof v}`);
  }
}

/** Encode one value to a Buffer. */
export function encode(v) {
  const out = [];
  enc(v, out);
  return Buffer.concat(out);
}

/** Encode several values back to back (one WebSocket message, many protocol messages). */
export function encodeMany(values) {
  return Buffer.concat(values.map(encode));
}
