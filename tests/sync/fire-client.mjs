// fire-client.mjs: helper of 05-scheduled-firing.test.mjs, one client per
// process (as one phone per device: its own event loop and timers). A tutti
// Client (web/tutti.js, default clock settings) with a fake local clock
// (argv: URL OFFSET DRIFT, see live.mjs) attaches the server-owned `metro`
// state and reports on stdout, one JSON line each:
//   {kind:'ready', connectedAt}            CLOCK_MONOTONIC at connection
//   {kind:'scheduled', tick, at, lead, m}  the advance notice of a scheduled set
//   {kind:'fired', tick, at, m, sync, source}  the listener ran: m = CLOCK_MONOTONIC
//                                          read first thing, sync = this client's sync time then
//   {kind:'sent', tick, at}                after {"cmd":"set","tick","lead"} on stdin
//   {kind:'report', report}                after {"cmd":"report"}
// {"cmd":"quit"} closes the client and exits.

import WebSocket from 'ws';
import { createInterface } from 'node:readline';
import { Client } from '../../web/tutti.js';
import { fakeClock, mono } from './live.mjs';

const [url, offset, drift] = process.argv.slice(2);
const clock = fakeClock({ offset: Number(offset), drift: Number(drift) });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const client = new Client({ url, WebSocket, getTime: clock.getTime, connectTimeout: 10000, requestTimeout: 10000 });
await client.connect();
const connectedAt = mono();
const state = await client.stateManager.attach('metro');
state.onUpdate((n, o, ctx) => {
  const m = mono();
  const sync = client.getSyncTime();
  if ('tick' in n) out({ kind: 'fired', tick: n.tick, at: ctx.time, m, sync, source: ctx.source });
});
client.on('scheduled', ({ at, changes, lead }) => out({ kind: 'scheduled', tick: changes.tick, at, lead, m: mono() }));
out({ kind: 'ready', connectedAt });

createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'set') {
    const at = client.getSyncTime() + cmd.lead;
    await state.set({ tick: cmd.tick }, { at });
    out({ kind: 'sent', tick: cmd.tick, at });
  } else if (cmd.cmd === 'report') {
    out({ kind: 'report', report: client.getSyncReport() });
  } else if (cmd.cmd === 'quit') {
    client.close();
    process.exit(0);
  }
});
