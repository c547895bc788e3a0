// Helpers of the storage-fault tests: a disk that fills up for real, the
// server's /healthz, and waiting on the server's log.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep, tail } from '../../persistence/lib/persist.mjs';

/** GET /healthz: {status, text}. */
export async function healthz(srv) {
  const r = await fetch(new URL('/healthz', srv.httpUrl), { signal: AbortSignal.timeout(3000) });
  return { status: r.status, text: await r.text() };
}

/** Poll `fn` (async, truthy = done) every 50 ms for up to `ms`; returns its value. */
export async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    if ((last = await fn())) return last;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/** Wait until the server's stderr matches `re`. */
export function logMatches(srv, re, ms = 5000) {
  return until(() => re.test(srv.stderr()), ms, `server log ${re}:\n${tail(srv.stderr())}`);
}

/**
 * Ways to make writes fail for real. Each: {name, prepare(dir) -> {skip?},
 * fill(srv), free(srv), cleanup()}. The database lives in `dir`.
 *
 * - tmpfs: a 4 MiB tmpfs mounted on dir, filled with a file until ENOSPC
 *   (SQLITE_FULL), freed by deleting it: a real full disk. Needs the right
 *   to mount (root outside a container); skipped otherwise.
 * - fsize: RLIMIT_FSIZE of the running server lowered with prlimit(1) just
 *   above what its files hold, so the next growing write fails with EFBIG
 *   (SQLITE_IOERR), freed by raising it again. Works anywhere, including
 *   containers where mounting is not allowed.
 */
export const DISKS = [
  {
    name: 'tmpfs filled up (ENOSPC)',
    prepare(dir) {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
      } catch (err) {
        return { skip: `cannot mount a tmpfs here: ${String(err.stderr || err.message).trim()}` };
      }
      this.dir = dir;
      return {};
    },
    fill() {
      const fd = fs.openSync(path.join(this.dir, 'filler'), 'w');
      const chunk = Buffer.alloc(64 * 1024, 1);
      try { for (;;) fs.writeSync(fd, chunk); } catch (err) { if (err.code !== 'ENOSPC') throw err; }
      // the last partial block too
      try { for (;;) fs.writeSync(fd, chunk, 0, 512); } catch (err) { if (err.code !== 'ENOSPC') throw err; }
      fs.closeSync(fd);
    },
    free() { fs.unlinkSync(path.join(this.dir, 'filler')); },
    cleanup() {
      try { execFileSync('umount', ['-l', this.dir], { stdio: 'pipe' }); } catch { /* not mounted */ }
    },
  },
  {
    name: 'file size limit (EFBIG)',
    prepare() { return {}; },
    fill(srv, dir) {
      let size = 0;
      for (const f of fs.readdirSync(dir)) if (f.startsWith('tutti.db')) size = Math.max(size, fs.statSync(path.join(dir, f)).size);
      execFileSync('prlimit', ['--pid', String(srv.proc.pid), `--fsize=${size + 8192}:unlimited`]);
    },
    free(srv) { execFileSync('prlimit', ['--pid', String(srv.proc.pid), '--fsize=unlimited:unlimited']); },
    cleanup() {},
  },
];
