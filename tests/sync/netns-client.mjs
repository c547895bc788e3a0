// netns-client.mjs: helper of 02-jitter-netns.test.mjs, run inside the
// client's network namespace: drives web/sync.js (default settings) against
// URL (argv[2]) for two fake drifting clocks (live.mjs JITTER_CLOCKS), samples
// from FROM to UNTIL seconds after connecting (argv[3], argv[4]), and prints
// {runs, bracket} as one JSON line.

import { fakeClock, runClients, JITTER_CLOCKS } from './live.mjs';

const [url, from, until] = process.argv.slice(2);
const out = await runClients(url, JITTER_CLOCKS.map((c) => fakeClock(c)), { from: Number(from), until: Number(until) });
process.stdout.write(JSON.stringify({ runs: out.runs, bracket: out.bracket.toJSON() }) + '\n');
process.exit(0);
