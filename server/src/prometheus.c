/* SPDX-License-Identifier: MIT */
/* prometheus.c: /metrics in the Prometheus text format (version 0.0.4):
 * the counters of metrics.c, and the gauges read from the model and the
 * process when asked. Names in snake_case with their base unit (seconds,
 * bytes), counters ending in _total, one HELP and TYPE line per family,
 * label values escaped. `promtool check metrics` reads it clean
 * (tests/integration/25-metrics). */
#include "prometheus.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "common.h"
#include "db.h"
#include "inspect.h"
#include "metrics.h"
#include "protocol.h"
#include "roles.h"
#include "sched.h"
#include "session.h"
#include "store.h"

/* ---- the text format ---------------------------------------------------- */

static void putf(tt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(tt_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		tt_buf_append(b, line, TT_MIN((size_t)n, sizeof(line) - 1));
}

static void family(tt_buf *b, const char *name, const char *type, const char *help)
{
	putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(tt_buf *b, const char *name, double v)
{
	putf(b, "%s %.17g\n", name, v);
}

/* A label value as the format wants it: \\, \" and \n escaped. Role names
 * are plain already; this keeps the output valid whatever comes. */
static void label_value(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void histogram(tt_buf *b, const char *name, const char *help, const tt_histogram *h)
{
	family(b, name, "histogram", help);
	uint64_t cum = 0;
	for (uint32_t i = 0; i < h->n; i++) {
		cum += h->counts[i];
		putf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
	}
	putf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	putf(b, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static const char *const type_names[TT_METRICS_TYPES] = {
	[0] = "unknown", [TT_MSG_HELLO] = "HELLO", [TT_MSG_DEFINE] = "DEFINE",
	[TT_MSG_CREATE] = "CREATE", [TT_MSG_ATTACH] = "ATTACH", [TT_MSG_DETACH] = "DETACH",
	[TT_MSG_DELETE] = "DELETE", [TT_MSG_SET] = "SET", [TT_MSG_OBSERVE] = "OBSERVE",
	[TT_MSG_UNOBSERVE] = "UNOBSERVE", [TT_MSG_HISTORY] = "HISTORY",
	[TT_MSG_DESCRIBE] = "DESCRIBE", [TT_MSG_PING] = "PING", [TT_MSG_CANCEL] = "CANCEL",
	[TT_MSG_HOOK] = "HOOK", [TT_MSG_UNHOOK] = "UNHOOK", [TT_MSG_HOOK_REPLY] = "HOOK_REPLY",
	[TT_MSG_DELETE_CLASS] = "DELETE_CLASS", [TT_MSG_SYNC_REPORT] = "SYNC_REPORT",
	[TT_MSG_INSPECT] = "INSPECT", [TT_MSG_KICK] = "KICK",
};

/* Resident and virtual size of this process, from /proc (bytes; 0 when
 * unreadable). */
static void memory(double *rss, double *vsz)
{
	unsigned long long pages = 0, res = 0;
	*rss = *vsz = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return;
	if (fscanf(f, "%llu %llu", &pages, &res) == 2) {
		long page = sysconf(_SC_PAGESIZE);
		*vsz = (double)pages * (double)page;
		*rss = (double)res * (double)page;
	}
	fclose(f);
}

static void sessions(tt_buf *b)
{
	uint32_t n = tt_roles_count();
	uint32_t connected[TT_MAX_ROLES] = {0}, resuming[TT_MAX_ROLES] = {0};
	for (tt_session *s = tt_session_first(); s; s = s->next)
		if (s->role < n)
			(s->client ? connected : resuming)[s->role]++;
	family(b, "tutti_sessions", "gauge",
	       "Sessions by role: connected, or waiting for their client to resume.");
	for (uint32_t i = 0; i < n; i++) {
		char role[2 * TT_ROLE_NAME_MAX + 2];
		label_value(role, sizeof(role), tt_roles_get(i)->name);
		putf(b, "tutti_sessions{role=\"%s\",status=\"connected\"} %u\n", role, connected[i]);
		putf(b, "tutti_sessions{role=\"%s\",status=\"resuming\"} %u\n", role, resuming[i]);
	}
}

static void refused(tt_buf *b)
{
	family(b, "tutti_requests_refused_total", "counter",
	       "Requests answered with an ERROR, by message type and error code.");
	for (uint32_t t = 0; t < TT_METRICS_TYPES; t++)
		for (int k = 1; k < TT_METRICS_CODES; k++)
			if (tt_metrics.refused[t][k])
				putf(b, "tutti_requests_refused_total{type=\"%s\",code=\"%s\"} %llu\n",
				     type_names[t] ? type_names[t] : "unknown", tt_code_name(k),
				     (unsigned long long)tt_metrics.refused[t][k]);
}

static void counter(tt_buf *b, const char *name, const char *help, uint64_t v)
{
	family(b, name, "counter", help);
	sample(b, name, (double)v);
}

static void gauge(tt_buf *b, const char *name, const char *help, double v)
{
	family(b, name, "gauge", help);
	sample(b, name, v);
}

void tt_prometheus_render(tt_buf *b)
{
	const struct tt_metrics *m = &tt_metrics;
	uint32_t conns = 0, inspectors = 0;
	uint64_t queued = 0;
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		conns++;
		inspectors += c->stats.inspecting;
		queued += tt_client_queued_bytes(c);
	}
	uint32_t classes = 0;
	for (tt_class_entry *ce = tt_store_first_class(); ce; ce = ce->next)
		classes++;

	gauge(b, "tutti_connections", "WebSocket connections open.", conns);
	counter(b, "tutti_connections_opened_total", "WebSocket connections opened since start.",
		m->conns_opened);
	sessions(b);
	counter(b, "tutti_sessions_started_total", "New sessions (HELLO without a valid token).",
		m->sessions_new);
	counter(b, "tutti_sessions_resumed_total", "Sessions resumed by their client after a "
		"lost connection or a restart.", m->sessions_resumed);
	family(b, "tutti_sessions_ended_total", "counter",
	       "Sessions ended: by their client's goodbye, lost (not back within the resume "
	       "window), or kicked by an operator.");
	putf(b, "tutti_sessions_ended_total{reason=\"goodbye\"} %llu\n",
	     (unsigned long long)m->ended_goodbye);
	putf(b, "tutti_sessions_ended_total{reason=\"lost\"} %llu\n",
	     (unsigned long long)m->ended_expired);
	putf(b, "tutti_sessions_ended_total{reason=\"kicked\"} %llu\n",
	     (unsigned long long)m->ended_kicked);
	counter(b, "tutti_messages_received_total", "Protocol messages received.", m->msgs_in);
	counter(b, "tutti_received_bytes_total", "WebSocket payload bytes received.", m->bytes_in);
	counter(b, "tutti_messages_sent_total", "Protocol messages written to clients.",
		m->msgs_out);
	counter(b, "tutti_sent_bytes_total", "WebSocket payload bytes written to clients.",
		m->bytes_out);
	counter(b, "tutti_sets_applied_total",
		"SET requests applied (a scheduled one when it falls due).", m->sets_applied);
	counter(b, "tutti_updates_total", "Updates that changed a state (each raises its seq).",
		m->updates);
	refused(b);
	counter(b, "tutti_slow_consumers_closed_total",
		"Connections closed because more than --max-queue bytes of pushes waited for them.",
		m->slow_consumers);
	gauge(b, "tutti_queued_bytes", "Bytes waiting in the clients' outgoing queues.",
	      (double)queued);
	histogram(b, "tutti_commit_duration_seconds",
		  "Time of one database commit (one transaction per loop turn).",
		  &m->commit_seconds);
	histogram(b, "tutti_commit_rows", "Rows written by one database commit.", &m->commit_rows);
	histogram(b, "tutti_clock_round_trip_seconds",
		  "Clock-sync round trips, as the clients report them (the mean of a series of "
		  "pings).", &m->clock_rtt);
	counter(b, "tutti_sync_reports_total", "Clock-sync reports received from clients.",
		m->sync_reports);
	uint32_t reporting, within[TT_INSPECT_WITHIN];
	tt_inspect_sync_counts(&reporting, within);
	gauge(b, "tutti_clock_reporting_clients",
	      "Connected clients with a recent clock-sync report.", reporting);
	family(b, "tutti_clock_synced_clients", "gauge",
	       "Connected clients whose clock-sync error estimate is within the bound.");
	for (int i = 0; i < TT_INSPECT_WITHIN; i++)
		putf(b, "tutti_clock_synced_clients{within_seconds=\"%g\"} %u\n",
		     tt_inspect_within_ms[i] / 1000.0, within[i]);
	gauge(b, "tutti_scheduled_sets", "Scheduled sets pending.", tt_sched_count());
	gauge(b, "tutti_states", "States.", tt_store_state_count());
	gauge(b, "tutti_classes", "Classes.", classes);
	gauge(b, "tutti_inspectors", "Connections with an operator's INSPECT subscription.",
	      inspectors);
	gauge(b, "tutti_database_size_bytes", "Size of the database file and its write-ahead log.",
	      (double)tt_db_size());
	gauge(b, "tutti_storage_failing", "1 while the database cannot be written, else 0.",
	      tt_db_failing() ? 1 : 0);

	double rss, vsz;
	memory(&rss, &vsz);
	gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", rss);
	gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", vsz);
	struct rusage ru;
	double cpu = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	family(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
	sample(b, "process_cpu_seconds_total", cpu);
	gauge(b, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
	      tt_metrics.started);
}
