// delay-proxy.mjs: helper of 03-jitter-proxy.test.mjs, run as its own process
// (so its timers do not queue behind the estimator's work, nor the reverse).
// A TCP proxy from an ephemeral port on 127.0.0.1 to 127.0.0.1:PORT (argv[2])
// that delays each chunk, in each direction, by 20 ms ± 5 ms (uniform, seeded
// by argv[3]) without ever reordering a byte stream, as TCP over netem would
// deliver it. Prints {"port"}; exits when stdin closes.

import net from 'node:net';
import { prng } from './sim.mjs';

const target = Number(process.argv[2]);
const r = prng(Number(process.argv[3] || 1));
const delay = () => 0.020 + (r() - 0.5) * 0.010;

const server = net.createServer((a) => {
  const b = net.connect(target, '127.0.0.1');
  for (const s of [a, b]) {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on('close', () => { a.destroy(); b.destroy(); });
  }
  const pipe = (from, to) => {
    let last = 0;
    from.on('data', (chunk) => {
      const at = Math.max(last, performance.now() + delay() * 1000);
      last = at;
      setTimeout(() => { if (!to.destroyed) to.write(chunk); }, at - performance.now());
    });
  };
  pipe(a, b);
  pipe(b, a);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
