// netns-server.mjs: helper of 02-jitter-netns.test.mjs, run inside the
// server's network namespace. Starts the real server on 0.0.0.0 (the shared
// fixture, which checks it stops cleanly), prints {"port"} and then probes it
// on this namespace's loopback (no netem there) until stdin says "stop",
// to bracket the server clock against CLOCK_MONOTONIC (see live.mjs); prints
// {"bracket", "ok"} and exits.

import { startServer } from '../lib/server.mjs';
import { Bracket, openSocket, probe } from './live.mjs';

const srv = await startServer({ args: ['--host', '0.0.0.0'] });
process.stdout.write(JSON.stringify({ port: srv.port }) + '\n');
let stop = false;
process.stdin.on('data', (d) => { if (String(d).includes('stop')) stop = true; });
process.stdin.on('end', () => { stop = true; });
const bracket = new Bracket();
const ws = await openSocket(srv.url);
while (!stop) bracket.merge(await probe(srv.url, { n: 10, gapMs: 20, ws }));
ws.close();
let result = { ok: true };
try {
  await srv.stop();
} catch (err) {
  result = { ok: false, error: err.message };
}
process.stdout.write(JSON.stringify({ bracket: bracket.toJSON(), ...result }) + '\n');
process.exit(0);
