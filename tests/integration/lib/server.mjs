// Fixture: start the real tutti-server on a free port with its own temporary
// schemas/web directories and an in-memory database; stop it with SIGTERM and
// check that it exited 0 with no sanitizer report on stderr.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import assert from 'node:assert/strict';

export const SANITIZER_PATTERNS = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:', 'ThreadSanitizer', 'MemorySanitizer'];

export function serverBinary() {
  const candidates = [];
  if (process.env.TUTTI_SERVER) candidates.push(process.env.TUTTI_SERVER);
  else {
    candidates.push('/tmp/build-it/tutti-server');
    const root = process.env.TUTTI_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
    candidates.push(path.join(root, 'build', 'tutti-server'));
    candidates.push(path.join(root, 'build', 'server', 'tutti-server'));
  }
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`tutti-server binary not found (set TUTTI_SERVER); tried: ${candidates.join(', ')}`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tmpDir(prefix = 'tutti-it-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** HTTP GET with a bounded timeout. Resolves {status, headers, body(Buffer)}. */
export function httpGet(url, { timeout = 5000, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

function delay(ms) { return new Promise((r) => setTimeout(r, ms)); }

/**
 * Run the binary with the given args to completion (for --help, bad config...).
 * Resolves {code, signal, stdout, stderr}; kills it after `timeout` ms.
 */
export function runServerToExit(args, { timeout = 10000, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn(serverBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeout);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setTimeout(() => resolve({ code, signal, stdout, stderr, timedOut }), 20);
    });
  });
}

/**
 * Write a schemas directory. `schemas` is an array of
 * `{class, server, description}` objects (written as <class>.json) or of
 * `{file, content}` raw files.
 */
export function writeSchemas(dir, schemas = []) {
  fs.mkdirSync(dir, { recursive: true });
  schemas.forEach((s, i) => {
    if (s.file) fs.writeFileSync(path.join(dir, s.file), s.content);
    else fs.writeFileSync(path.join(dir, `${String(i).padStart(2, '0')}-${s.class}.json`), JSON.stringify(s, null, 2));
  });
  return dir;
}

export const DEFAULT_WEB_FILES = {
  'index.html': '<!doctype html><title>tutti test</title><p>tutti integration test page</p>\n',
  'hello.mjs': 'export const hello = "tutti";\n',
};

/**
 * Start the server. Options:
 *   schemas: array (see writeSchemas) or schemasDir: existing dir
 *   webFiles: {relPath: content} or webDir: existing dir
 *   resumeWindow (default 0), history, maxMessage, extraArgs, env
 */
export async function startServer(opts = {}) {
  const bin = serverBinary();
  const base = tmpDir();
  const schemasDir = opts.schemasDir ?? writeSchemas(path.join(base, 'schemas'), opts.schemas ?? []);
  let webDir = opts.webDir;
  if (!webDir) {
    webDir = path.join(base, 'web');
    fs.mkdirSync(webDir, { recursive: true });
    for (const [rel, content] of Object.entries(opts.webFiles ?? DEFAULT_WEB_FILES)) {
      fs.mkdirSync(path.dirname(path.join(webDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(webDir, rel), content);
    }
  }
  let lastErr;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = ['--host', '127.0.0.1', '--port', String(port), '--schemas', schemasDir, '--web', webDir,
      '--db', opts.db ?? ':memory:', '--resume-window', String(opts.resumeWindow ?? 0)];
    if (opts.history !== undefined) args.push('--history', String(opts.history));
    if (opts.maxMessage !== undefined) args.push('--max-message', String(opts.maxMessage));
    if (opts.extraArgs) args.push(...opts.extraArgs);
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
    let stderr = '', stdout = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => { stdout += d; });
    let exited = null;
    const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
    const deadline = Date.now() + (opts.startTimeout ?? 15000);
    let ready = false;
    while (Date.now() < deadline && !exited) {
      try {
        const r = await httpGet(`http://127.0.0.1:${port}/healthz`, { timeout: 1000 });
        if (r.status === 200) { ready = true; break; }
      } catch { /* not yet */ }
      await delay(50);
    }
    if (ready && !ownsListeningPort(child.pid, port)) {
      // another process answered /healthz on this port (a port clash with a
      // concurrently started server): ours must not be used
      ready = false;
      stderr += `\n[fixture] port ${port} is not ours, retrying\n`;
    }
    if (ready) {
      const srv = {
        port, args, base, schemasDir, webDir, child,
        url: `ws://127.0.0.1:${port}/`,
        httpUrl: `http://127.0.0.1:${port}`,
        stderr: () => stderr,
        stdout: () => stdout,
        exited: () => exited,
        /** SIGTERM, wait (bounded), return {code, signal, stderr, timedOut}. */
        async stop(timeout = 10000) {
          if (!exited) child.kill('SIGTERM');
          let timedOut = false;
          let timer;
          const r = await Promise.race([exitPromise, new Promise((res) => { timer = setTimeout(() => res(null), timeout); })]);
          clearTimeout(timer);
          if (!r) { timedOut = true; child.kill('SIGKILL'); await exitPromise; }
          await delay(20);
          return { ...exited, stderr, timedOut };
        },
        async kill9() { if (!exited) child.kill('SIGKILL'); await exitPromise; return exited; },
        /** Stop and assert: exit 0 on SIGTERM, no sanitizer output. */
        async stopAndCheck(timeout = 10000) {
          const wasExited = exited;
          const r = await this.stop(timeout);
          assertCleanStderr(r.stderr);
          assert.equal(wasExited, null, `server died during the test: ${JSON.stringify(wasExited)}\n${tail(r.stderr)}`);
          assert.equal(r.timedOut, false, `server did not exit within ${timeout} ms of SIGTERM\n${tail(r.stderr)}`);
          assert.equal(r.signal, null, `server killed by ${r.signal}\n${tail(r.stderr)}`);
          assert.equal(r.code, 0, `server exit code ${r.code} after SIGTERM\n${tail(r.stderr)}`);
          return r;
        },
      };
      return srv;
    }
    if (!exited) { child.kill('SIGKILL'); await exitPromise; }
    await delay(20);
    lastErr = new Error(`tutti-server did not become ready on port ${port} (exit ${JSON.stringify(exited)})\nargs: ${args.join(' ')}\nstderr:\n${tail(stderr)}`);
    if (!/in use|EADDRINUSE|bind|not ours/i.test(stderr)) break; // retry only port clashes
  }
  throw lastErr;
}

/**
 * Linux: true when process `pid` holds the socket listening on `port`
 * (/proc/net/tcp* inode matched against /proc/PID/fd). True when /proc is
 * not available (the check is then skipped).
 */
export function ownsListeningPort(pid, port) {
  let inodes;
  try {
    inodes = new Set();
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 10) continue;
        if (cols[1].endsWith(`:${hex}`) && cols[3] === '0A') inodes.add(cols[9]);
      }
    }
    if (inodes.size === 0) return !fs.existsSync('/proc/net/tcp');
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let link = '';
      try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return true;
    }
    return false;
  } catch {
    return true;
  }
}

export function tail(s, n = 4000) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

export function assertCleanStderr(stderr) {
  for (const p of SANITIZER_PATTERNS) {
    assert.ok(!stderr.includes(p), `server stderr contains "${p}":\n${tail(stderr, 8000)}`);
  }
}
