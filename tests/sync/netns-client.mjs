// netns-client.mjs: helper of 02-jitter-netns.test.mjs, run inside the
// client's network namespace: drives web/sync.js against URL (argv[2]) for
// SECONDS (argv[3]) after the first series with the fake drifting clock, and
// prints {first, samples, report, bracket} as one JSON line.

import { fakeClock, runAndSample, JITTER_OPTIONS } from './live.mjs';

const [url, seconds] = process.argv.slice(2);
const clock = fakeClock({ offset: 12345.678, drift: 100e-6 });
const out = await runAndSample(url, clock, JITTER_OPTIONS, { seconds: Number(seconds) });
process.stdout.write(JSON.stringify({ ...out, bracket: out.bracket.toJSON() }) + '\n');
process.exit(0);
