// Shared test fixture: start the real tutti-server on a free port.
//
//   import { startServer } from '../lib/server.mjs';
//   const srv = await startServer({ schemas: { demo: {...} } });
//   ... srv.url (ws://127.0.0.1:PORT/), srv.httpUrl (http://127.0.0.1:PORT/)
//   await srv.stop();   // SIGTERM; throws if the exit is not 0 or stderr has sanitizer reports
//
// Env: TUTTI_SERVER (path of the tutti-server binary; default
// $TUTTI_ROOT/build/tutti-server), TUTTI_ROOT (repo root; default: two levels
// above this file).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(process.env.TUTTI_ROOT || join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
export const SERVER = resolve(process.env.TUTTI_SERVER || join(ROOT, 'build', 'tutti-server'));

const SANITIZER = /AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer|MemorySanitizer/;

/** True when the server binary exists (tests may skip themselves otherwise). */
export function serverAvailable() { return existsSync(SERVER); }

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function healthy(httpUrl, timeoutMs) {
  try {
    const r = await fetch(new URL('/healthz', httpUrl), { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer().catch(() => {});
    return r.status === 200;
  } catch { return false; }
}

/**
 * Start tutti-server.
 * @param {object} [opts]
 * @param {string} [opts.schemasDir] directory of schemas (default: $TUTTI_ROOT/schemas unless `schemas` is given)
 * @param {Object<string, object>} [opts.schemas] schema files to write into a fresh temp dir:
 *   { fileName: {class, server, description} } (".json" is appended when missing)
 * @param {string} [opts.webDir] default $TUTTI_ROOT/web
 * @param {string} [opts.db] default ':memory:'
 * @param {number} [opts.resumeWindow] seconds (--resume-window)
 * @param {number} [opts.history] (--history)
 * @param {number} [opts.maxMessage] bytes (--max-message)
 * @param {string[]} [opts.args] extra arguments
 * @param {object} [opts.env] extra environment
 * @param {number} [opts.startTimeout=10000] ms to wait for /healthz
 * @returns {Promise<{port:number, url:string, httpUrl:string, proc:import('node:child_process').ChildProcess,
 *   schemasDir:string, stop:(opts?:{timeout?:number, allowFail?:boolean})=>Promise<{code:number|null, signal:string|null, stderr:string}>,
 *   kill9:()=>Promise<void>, stderr:()=>string, stdout:()=>string}>}
 */
export async function startServer(opts = {}) {
  if (!existsSync(SERVER)) throw new Error(`tutti-server not found at ${SERVER} (set TUTTI_SERVER)`);
  let schemasDir = opts.schemasDir;
  let tmp = null;
  if (!schemasDir && opts.schemas) {
    tmp = mkdtempSync(join(tmpdir(), 'tutti-schemas-'));
    schemasDir = tmp;
    for (const [name, body] of Object.entries(opts.schemas)) {
      writeFileSync(join(tmp, name.endsWith('.json') ? name : `${name}.json`), typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    }
  }
  if (!schemasDir) schemasDir = join(ROOT, 'schemas');
  if (!existsSync(schemasDir)) mkdirSync(schemasDir, { recursive: true });
  const webDir = opts.webDir || join(ROOT, 'web');

  let lastErr = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Without opts.port the kernel picks the port (--port 0) and the server's
    // log line names it: no other process can take it between a probe and
    // the bind (a race seen as stray 1006/1001 closes on a busy machine).
    let port = opts.port || 0;
    const args = ['--host', '127.0.0.1', '--port', String(port), '--schemas', schemasDir, '--web', webDir, '--db', opts.db || ':memory:'];
    if (opts.resumeWindow !== undefined) args.push('--resume-window', String(opts.resumeWindow));
    if (opts.history !== undefined) args.push('--history', String(opts.history));
    if (opts.maxMessage !== undefined) args.push('--max-message', String(opts.maxMessage));
    if (opts.args) args.push(...opts.args);
    const proc = spawn(SERVER, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ASAN_OPTIONS: 'detect_leaks=1', ...process.env, ...(opts.env || {}) },
    });
    let stderr = '', stdout = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.stdout.on('data', (d) => { stdout += d; });
    let exited = null;
    const exitP = new Promise((res) => proc.on('exit', (code, signal) => { exited = { code, signal }; res(exited); }));
    proc.on('error', (err) => { stderr += `\nspawn error: ${err.message}`; });

    const deadline = Date.now() + (opts.startTimeout ?? 10000);
    let ok = false;
    while (Date.now() < deadline && !exited) {
      if (!port) {
        const m = /listening on http:\/\/[^\s]+:(\d+) /.exec(stderr);
        if (!m) { await sleep(20); continue; }
        port = Number(m[1]);
      }
      if (await healthy(`http://127.0.0.1:${port}/`, 500)) { ok = true; break; }
      await sleep(50);
    }
    const url = `ws://127.0.0.1:${port}/`;
    const httpUrl = `http://127.0.0.1:${port}/`;
    if (!ok) {
      if (!exited) { proc.kill('SIGKILL'); await exitP; }
      lastErr = new Error(`tutti-server did not become healthy on port ${port} (exit ${JSON.stringify(exited)}):\n${stderr.slice(-4000)}`);
      if (opts.port) break;
      continue; // port taken meanwhile? retry on another one
    }

    let stopped = false;
    const srv = {
      port, url, httpUrl, proc, schemasDir,
      stderr: () => stderr,
      stdout: () => stdout,
      /** SIGTERM, wait, check exit 0 and no sanitizer report. */
      async stop({ timeout = 10000, allowFail = false } = {}) {
        if (stopped) return { ...exited, stderr };
        stopped = true;
        if (!exited) proc.kill('SIGTERM');
        const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, timeout);
        const { code, signal } = await exitP;
        clearTimeout(t);
        if (tmp) rmSync(tmp, { recursive: true, force: true });
        if (!allowFail) {
          if (SANITIZER.test(stderr)) throw new Error(`tutti-server reported a sanitizer error:\n${stderr.slice(-8000)}`);
          if (code !== 0) throw new Error(`tutti-server exited with ${code === null ? `signal ${signal}` : `code ${code}`} on SIGTERM:\n${stderr.slice(-4000)}`);
        }
        return { code, signal, stderr };
      },
      /** SIGKILL (a crash); no exit check. */
      async kill9() {
        if (!exited) proc.kill('SIGKILL');
        await exitP;
        stopped = true; // the schemas dir is kept: a test may restart on it
      },
    };
    return srv;
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  throw lastErr;
}
