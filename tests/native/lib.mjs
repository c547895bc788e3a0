// SPDX-License-Identifier: MIT
// Helpers of the native tests: run the C binaries of the build (tutti,
// tutti-osc, native_client_test) and real OSC programs, read their output
// line by line, and fail on a sanitizer report or an unexpected exit.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from '../lib/server.mjs';

export const BUILD = resolve(process.env.TUTTI_BUILD || join(ROOT, 'build'));
export const bin = (name) => join(BUILD, name);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const SANITIZER = /AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer/;

export const haveProgram = (p) => ['/usr/bin', '/usr/local/bin', '/bin'].some((d) => existsSync(join(d, p)));

/** A free UDP port on 127.0.0.1. */
/** A TCP port nothing listens on (bound and closed again): for tests of a
 * connection that must fail, nothing else. */
export function deadTcpPort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

export function freeUdpPort() {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    s.on('error', rej);
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/**
 * Start a program; collects stdout/stderr; lines() and waitLine(re) read stdout (and
 * stderr with {stderr: true}). exit() resolves {code, signal, stdout, stderr}.
 */
export function start(cmd, args = [], opts = {}) {
  const proc = spawn(cmd, args, {
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ASAN_OPTIONS: 'detect_leaks=1', ...process.env, ...(opts.env || {}) },
    cwd: opts.cwd,
  });
  const p = { proc, stdout: '', stderr: '', exited: null };
  const waiters = new Set();
  const wake = () => { for (const w of [...waiters]) w(); };
  proc.stdout.on('data', (d) => { p.stdout += d; wake(); });
  proc.stderr.on('data', (d) => { p.stderr += d; if (opts.echo) process.stderr.write(d); wake(); });
  p.done = new Promise((res) => proc.on('exit', (code, signal) => { p.exited = { code, signal }; wake(); res(p.exited); }));
  if (opts.input !== undefined) { proc.stdin.end(opts.input); }
  p.lines = () => p.stdout.split('\n').filter((l) => l.length);
  p.json = () => p.lines().map((l) => JSON.parse(l));
  /** Wait until fn() returns a truthy value (checked on every output and exit). */
  p.until = (fn, { timeout = 15000, what = 'output' } = {}) => new Promise((res, rej) => {
    const check = () => {
      let v;
      try { v = fn(); } catch (e) { v = undefined; }
      if (v) { cleanup(); res(v); return; }
      if (p.exited) { cleanup(); rej(new Error(`${cmd} exited (${JSON.stringify(p.exited)}) before ${what}\nstdout:\n${p.stdout}\nstderr:\n${p.stderr.slice(-4000)}`)); }
    };
    const timer = setTimeout(() => { cleanup(); rej(new Error(`timed out waiting for ${what}\nstdout:\n${p.stdout.slice(-4000)}\nstderr:\n${p.stderr.slice(-4000)}`)); }, timeout);
    const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
    waiters.add(check);
    check();
  });
  p.waitLine = (re, opts2 = {}) => p.until(() => {
    const src = opts2.stderr ? p.stderr : p.stdout;
    return src.split('\n').find((l) => re.test(l));
  }, { what: String(re), ...opts2 });
  /** Stop with a signal and check no sanitizer report. */
  p.stop = async (signal = 'SIGTERM') => {
    if (!p.exited) proc.kill(signal);
    const t = setTimeout(() => { if (!p.exited) proc.kill('SIGKILL'); }, 10000);
    await p.done;
    clearTimeout(t);
    checkClean(p, cmd);
    return p.exited;
  };
  return p;
}

export function checkClean(p, what) {
  if (SANITIZER.test(p.stderr)) throw new Error(`${what} reported a sanitizer error:\n${p.stderr.slice(-8000)}`);
}

/** Run to completion: {code, stdout, stderr, json()}; throws on a sanitizer report. */
export async function run(cmd, args = [], opts = {}) {
  const p = start(cmd, args, opts);
  const t = setTimeout(() => p.proc.kill('SIGKILL'), opts.timeout ?? 60000);
  const { code, signal } = await p.done;
  clearTimeout(t);
  checkClean(p, `${cmd} ${args.join(' ')}`);
  return { code, signal, stdout: p.stdout, stderr: p.stderr, lines: p.lines(), json: p.json };
}

/** The `tutti` tool against url. */
export const tutti = (url, args, opts = {}) => run(bin('tutti'), ['--url', url, ...args], opts);

/** Start tutti-osc; resolves once it bridges `wait` (default demo:1). */
export async function startBridge(url, args, { wait = /bridging demo:1/ } = {}) {
  const b = start(bin('tutti-osc'), ['--url', url, ...args]);
  await b.waitLine(wait, { stderr: true, timeout: 20000 });
  return b;
}

/** oscdump lines parsed: {wall (timetag as Unix seconds, null for "immediate"), address, types, args, at (Date.now()/1000 on receipt)} */
export function oscdumpLines(p) {
  return p.lines().map((l) => {
    const m = /^([0-9a-f]+)\.([0-9a-f]+) (\S+) ?(\S*) ?(.*)$/.exec(l);
    if (!m) return null;
    const sec = parseInt(m[1], 16), frac = parseInt(m[2], 16);
    return { wall: sec === 0 && frac <= 1 ? null : sec - 2208988800 + frac / 2 ** 32, address: m[3], types: m[4], args: m[5], line: l };
  }).filter(Boolean);
}

/** Wait for the first line matching re, and note when it arrived (Unix seconds). */
export async function arrival(p, re, opts = {}) {
  const line = await p.waitLine(re, opts);
  return { line, t: Date.now() / 1000 };
}
