// GET /metrics: the Prometheus text format, checked by Prometheus' own
// `promtool check metrics` (Debian's prometheus package; make test installs
// it), protected by an admin role's token (Bearer or ?token=) unless
// --metrics-public (a flag, and a key of the config file), and counters
// that move with what clients do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, httpGet, tmpDir, writeSchemas } from '../lib/server.mjs';
import { RawClient, T, E } from '../lib/client.mjs';

const PROMTOOL = process.env.TUTTI_PROMTOOL || '/usr/bin/promtool';
const DESC = { v: { type: 'integer', default: 0, min: 0, max: 10 } };
let srv, token;

before(async () => {
  srv = await startServer({ secure: true, schemas: [{ class: 'knob', description: DESC }] });
  token = /the inspector: \S+#role=admin&token=([0-9a-f]+)/.exec(srv.stdout())[1];
});
after(() => srv.stop());

const metricsUrl = (s = srv) => new URL('/metrics', s.httpUrl).href;
const scrape = async (s = srv, t = token) => {
  const r = await httpGet(metricsUrl(s), { headers: { authorization: `Bearer ${t}` } });
  assert.equal(r.status, 200, r.body.toString());
  return r.body.toString();
};
/** The value of one sample line `name{labels} value` (labels as written), or undefined. */
const value = (text, series) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

function promtool(text) {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.ok(!r.error, `${PROMTOOL} cannot run (${r.error?.message}): apt-get install prometheus (make test does)`);
  return r;
}

test('without the admin token: 401 with a WWW-Authenticate challenge and a message saying how', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${token}` }]) {
    const r = await httpGet(metricsUrl(), { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.match(r.headers['www-authenticate'], /^Bearer/);
    assert.match(r.body.toString(), /Authorization: Bearer TOKEN.*--metrics-public/s);
    assert.doesNotMatch(r.body.toString(), /tutti_/);
  }
  const audienceWrongToken = await httpGet(`${metricsUrl()}?token=${'0'.repeat(32)}`);
  assert.equal(audienceWrongToken.status, 401);
  // the conductor's token is no admin's
  const conductor = /role conductor[^:]*: \S+token=([0-9a-f]+)/.exec(srv.stdout());
  if (conductor) assert.equal((await httpGet(`${metricsUrl()}?token=${conductor[1]}`)).status, 401);
});

test('with the token as a Bearer header or ?token=: the text format, which promtool finds clean', async () => {
  const r = await httpGet(metricsUrl(), { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const q = await httpGet(`${metricsUrl()}?token=${token}`);
  assert.equal(q.status, 200);
  const text = r.body.toString();
  const check = promtool(text);
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}\n--- the output ---\n${text}`);
  assert.equal(check.stdout + check.stderr, '', 'no lint remark');
  for (const family of ['tutti_connections', 'tutti_connections_opened_total', 'tutti_sessions', 'tutti_sessions_resumed_total',
    'tutti_sessions_ended_total', 'tutti_messages_received_total', 'tutti_received_bytes_total', 'tutti_messages_sent_total',
    'tutti_sent_bytes_total', 'tutti_sets_applied_total', 'tutti_requests_refused_total', 'tutti_slow_consumers_closed_total',
    'tutti_queued_bytes', 'tutti_commit_duration_seconds', 'tutti_commit_rows', 'tutti_clock_round_trip_seconds',
    'tutti_scheduled_sets', 'tutti_database_size_bytes', 'process_resident_memory_bytes']) {
    assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), `family ${family}`);
  }
  assert.ok(value(text, 'process_resident_memory_bytes') > 1e6);
  // HEAD: the headers only
  const head = await new Promise((res, rej) => {
    import('node:http').then(({ request }) => {
      const req = request(metricsUrl(), { method: 'HEAD', headers: { authorization: `Bearer ${token}` } }, (resp) => {
        let n = 0; resp.on('data', (d) => { n += d.length; }); resp.on('end', () => res({ status: resp.statusCode, n }));
      });
      req.on('error', rej); req.end();
    });
  });
  assert.deepEqual(head, { status: 200, n: 0 });
});

test('the counters move: connections by role, sets applied and refused by code, round trips, scheduled sets, kicks', async () => {
  const before = await scrape();
  const a = await RawClient.open(srv.url);
  const b = await RawClient.open(srv.url);
  try {
    const st = await a.call(T.CREATE, 'knob', {});
    const bi = await b.call(T.ATTACH, 'knob', st.state, {});
    for (let i = 1; i <= 4; i++) await a.call(T.SET, st.instance, { v: i });
    await a.fail(E.BAD_VALUE, T.SET, st.instance, { v: 'x' });
    await a.fail(E.UNKNOWN_PARAM, T.SET, st.instance, { w: 1 });
    await b.fail(E.FORBIDDEN, T.SET, bi.instance, { v: 1 });
    await a.call(T.SET, st.instance, { v: 9 }, { at: a.welcome.time + 3600 });
    a.send([T.SYNC_REPORT, 'sync', 0.0003, 0, 0.004]);
    await b.nextUpdate(st.state);
    // a report has no reply: a request after it on the same connection is
    // answered once the server has read the report too
    await a.call(T.HISTORY, st.instance, { last: 1 });
    const text = await scrape();
    const d = (series) => (value(text, series) ?? 0) - (value(before, series) ?? 0);
    assert.equal(value(text, 'tutti_sessions{role="audience",status="connected"}'), 2);
    assert.equal(value(text, 'tutti_connections'), 2);
    assert.equal(d('tutti_connections_opened_total'), 2);
    assert.equal(d('tutti_sessions_started_total'), 2);
    assert.equal(d('tutti_sets_applied_total'), 4);
    assert.equal(d('tutti_updates_total'), 4);
    assert.equal(d('tutti_requests_refused_total{type="SET",code="BAD_VALUE"}'), 1);
    assert.equal(d('tutti_requests_refused_total{type="SET",code="UNKNOWN_PARAM"}'), 1);
    assert.equal(d('tutti_requests_refused_total{type="SET",code="FORBIDDEN"}'), 1);
    assert.equal(value(text, 'tutti_scheduled_sets'), 1);
    assert.ok(d('tutti_messages_received_total') >= 10);
    assert.ok(d('tutti_messages_sent_total') >= 10);
    assert.ok(d('tutti_received_bytes_total') > 100);
    assert.equal(d('tutti_clock_round_trip_seconds_count'), 1);
    assert.equal(d('tutti_clock_round_trip_seconds_bucket{le="0.005"}'), 1);
    assert.equal(d('tutti_clock_round_trip_seconds_bucket{le="0.002"}'), 0);
    assert.equal(value(text, 'tutti_clock_synced_clients{within_seconds="0.001"}'), 1);
    assert.ok(value(text, 'tutti_commit_duration_seconds_count') > 0, 'commits are timed');
    assert.equal(promtool(text).status, 0);
    // a goodbye and a kick end sessions
    const opWelcome = await RawClient.open(srv.url, { version: 1, role: 'admin', roleToken: token });
    await opWelcome.call(T.KICK, a.welcome.session);
    await a.closed;
    b.ws.close(1000);
    await b.closed;
    opWelcome.ws.close(1000);
    await opWelcome.closed;
    await new Promise((r) => setTimeout(r, 200));
    const after = await scrape();
    const da = (series) => (value(after, series) ?? 0) - (value(before, series) ?? 0);
    assert.equal(da('tutti_sessions_ended_total{reason="kicked"}'), 1);
    assert.equal(da('tutti_sessions_ended_total{reason="goodbye"}'), 2);
    assert.equal(value(after, 'tutti_scheduled_sets'), 0, 'the kicked session\'s state went, with its schedule');
  } finally {
    for (const c of [a, b]) if (!c.closeInfo) c.ws.close(1000);
  }
});

test('--metrics-public, on the command line or as "metrics-public" in the config file: no token needed', async () => {
  const open = await startServer({ args: ['--metrics-public'] });
  try {
    const r = await httpGet(metricsUrl(open));
    assert.equal(r.status, 200);
    assert.equal(promtool(r.body.toString()).status, 0);
  } finally { await open.stop(); }
  const dir = tmpDir('tutti-metrics-config-');
  writeSchemas(join(dir, 'schemas'), []);
  writeFileSync(join(dir, 'tutti.json'), JSON.stringify({ 'metrics-public': true, port: 0, host: '127.0.0.1', db: ':memory:' }));
  const fromFile = await startServer({ rawArgs: [dir] });
  try {
    assert.equal((await httpGet(metricsUrl(fromFile))).status, 200);
  } finally { await fromFile.stop(); }
  const bad = dir + '/bad.json';
  writeFileSync(bad, JSON.stringify({ 'metrics-publik': true }));
  const { runServerToExit } = await import('../lib/server.mjs');
  const r = await runServerToExit(['--config', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /did you mean "metrics-public"/);
});
