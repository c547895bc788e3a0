/* SPDX-License-Identifier: MIT */
/* tutti.c: the `tutti` command-line tool, built on libtutti-client, for
 * shell scripts, debugging and cues: watch, get, set (optionally at a sync
 * time), ls, history, describe, time. JSON in and out: one JSON document
 * per line on stdout, human messages on stderr, and an exit code a script
 * can test (see usage()). */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "schema.h"
#include "tutti_client.h"

enum { EX_OK = 0, EX_REFUSED = 1, EX_USAGE = 2, EX_CONN = 3 };

static const char *const usage_main =
	"usage: tutti [--url URL] [--timeout S] [--insecure] [--ca FILE] COMMAND [ARGS]\n"
	"\n"
	"Talk to a tutti server from a shell. Output is JSON, one document per line.\n"
	"\n"
	"commands:\n"
	"  watch CLASS[:ID]              print every update as a JSON line (with seq and sync time)\n"
	"  get CLASS[:ID] [PARAM...]     print the current values\n"
	"  set CLASS[:ID] KEY=VALUE...   set values (validated locally, then by the server)\n"
	"  ls [CLASS]                    list the classes that have states, and their states\n"
	"  history CLASS[:ID]            print the state's events, oldest first\n"
	"  describe CLASS                print the class's expanded description\n"
	"  time                          print the sync clock's report\n"
	"\n"
	"CLASS alone means the oldest state of the class (the server's own state of\n"
	"a schemas/ class); CLASS:ID a given state. `tutti COMMAND --help` says more.\n"
	"\n"
	"options:\n"
	"  --url URL      server (default $TUTTI_URL, else ws://127.0.0.1:8000/); wss:// for TLS\n"
	"  --timeout S    give up connecting or waiting for a reply after S seconds (10)\n"
	"  --insecure     wss: accept a self-signed certificate\n"
	"  --ca FILE      wss: verify the server with this CA bundle (PEM)\n"
	"\n"
	"exit status: 0 done; 1 refused (the server or local validation said no: the\n"
	"message names the code, e.g. BAD_VALUE); 2 usage error; 3 cannot connect,\n"
	"connection lost or timeout.\n";

static struct {
	const char *url;
	double timeout;
	bool insecure;
	const char *ca;
	char last_error[512];
	tt_client *c;
	bool watching;   /* watch: say when the connection drops and comes back */
	bool clock_watch; /* time --watch: a report after every series */
	volatile sig_atomic_t stop;
} G = {.timeout = 10};

static void on_sig(int sig)
{
	(void)sig;
	G.stop = 1;
}

static void on_log(tt_client *c, const char *line, void *user)
{
	(void)c;
	(void)user;
	snprintf(G.last_error, sizeof(G.last_error), "%s", line);
	if (getenv("TUTTI_VERBOSE"))
		fprintf(stderr, "tutti: %s\n", line);
}

static void print_json(const tt_value *v)
{
	char *s = tt_json_dump(v);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	fflush(stdout);
}

/* ---- building JSON lines: a map in an arena --------------------------- */

typedef struct obj {
	tt_arena *a;
	tt_value v;
	uint32_t cap;
} obj;

static obj obj_new(tt_arena *a, uint32_t cap)
{
	obj o = {.a = a, .cap = cap};
	o.v.type = TT_MAP;
	o.v.v.pairs = tt_arena_alloc(a, sizeof(tt_pair) * cap);
	return o;
}

static void obj_put(obj *o, const char *key, tt_value val)
{
	if (o->v.len < o->cap) {
		o->v.v.pairs[o->v.len].key = tt_str(key);
		o->v.v.pairs[o->v.len++].val = val;
	}
}

static tt_value uval(uint64_t u)
{
	tt_value v = tt_int(0);
	if (u <= INT64_MAX) {
		v.v.i = (int64_t)u;
	} else {
		v.type = TT_UINT;
		v.v.u = u;
	}
	return v;
}

/* ---- errors ---------------------------------------------------------------- */

static int fail_code(int code)
{
	return code == TT_DISCONNECTED || code == TT_TIMEOUT || code == TT_CLOSED ? EX_CONN
	       : code == TT_USAGE ? EX_USAGE : EX_REFUSED;
}

/* Report a failed request or local check; returns the exit status. */
static int report(const char *what, int code, const char *msg)
{
	if ((code == TT_TIMEOUT || code == TT_DISCONNECTED || code == TT_CLOSED) &&
	    tt_client_status(G.c) != TT_STATUS_OPEN) {
		if (G.last_error[0])
			fprintf(stderr, "tutti: %s: %s\n", what, G.last_error);
		else
			fprintf(stderr, "tutti: %s: cannot reach %s\n", what, G.url);
		return EX_CONN;
	}
	fprintf(stderr, "tutti: %s: %s: %s\n", what, tt_client_code_name(code), msg);
	return fail_code(code);
}

/* Wait for a request queued with tt_wait_done; 0 or the exit status. */
static int wait_for(tt_wait *w, const char *what)
{
	/* a little longer than the library's own request timeout, whose
	 * error names the cause (connection refused, certificate...) */
	int rc = tt_client_wait(G.c, w, G.timeout + 1);
	if (rc == 0)
		return 0;
	if (rc == -TT_TIMEOUT)
		return report(what, TT_TIMEOUT, "no reply in time");
	return report(what, w->code ? w->code : -rc, w->message);
}

/* ---- CLASS[:ID] ------------------------------------------------------------ */

typedef struct target {
	char cls[TT_MAX_NAME + 1];
	uint64_t id;
} target;

static int parse_target(const char *arg, target *t)
{
	const char *colon = strrchr(arg, ':');
	size_t n = strlen(arg);
	t->id = 0;
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		t->id = strtoull(colon + 1, NULL, 10);
		n = (size_t)(colon - arg);
	}
	if (n < 1 || n > TT_MAX_NAME) {
		fprintf(stderr, "tutti: \"%s\": expected CLASS or CLASS:ID\n", arg);
		return -1;
	}
	memcpy(t->cls, arg, n);
	t->cls[n] = '\0';
	return 0;
}

static const char *target_name(const target *t, char *buf, size_t cap)
{
	if (t->id)
		snprintf(buf, cap, "%s:%llu", t->cls, (unsigned long long)t->id);
	else
		snprintf(buf, cap, "%s", t->cls);
	return buf;
}

/* ---- connecting ------------------------------------------------------------ */

static void watch_status(tt_client *c, tt_status st, void *user);
static void watch_open(tt_client *c, bool resumed, void *user);
static void time_on_clock(tt_client *c, void *user);

static int connect_client(void)
{
	tt_client_opts o;
	tt_error err;
	tt_client_opts_init(&o);
	o.url = G.url;
	o.insecure = G.insecure;
	o.ca_file = G.ca;
	o.request_timeout = G.timeout;
	o.on_log = on_log;
	o.on_status = watch_status;
	o.on_open = watch_open;
	o.on_clock = time_on_clock;
	if (tt_client_new(&o, &G.c, &err) < 0 || tt_client_connect(G.c, &err) < 0) {
		fprintf(stderr, "tutti: %s\n", err.msg);
		return EX_USAGE;
	}
	return 0;
}

/* The command's CLASS[:ID] (the last argument when exact) and the
 * connection; 0 or the exit status. */
static int open_target(int argc, char **argv, const char *help, bool exact, target *t)
{
	if (optind >= argc || (exact && optind != argc - 1) || parse_target(argv[optind], t) < 0) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	return connect_client();
}

/* Attach (opts may carry callbacks); *out the instance. */
static int attach(const target *t, tt_attach_opts *ao, tt_wait *w, tt_state **out)
{
	char name[160], what[200];
	tt_error err;
	snprintf(what, sizeof(what), "attach %s", target_name(t, name, sizeof(name)));
	if (tt_client_attach(G.c, t->cls, t->id, ao, tt_wait_done, w, &err) < 0)
		return report(what, err.code, err.msg);
	int rc = wait_for(w, what);
	if (rc)
		return rc;
	*out = w->state;
	return 0;
}

/* ---- values from the command line ---------------------------------------- */

static bool parse_num(const char *s, double *out)
{
	char *end;
	if (!*s)
		return false;
	*out = strtod(s, &end);
	return *end == '\0';
}

/* Text for param p as the class wants it: a string param takes the text as
 * it is, numbers and booleans are read as such, an enum matches its list,
 * `any` is JSON (or the text as a string when it is not JSON). KEY:=JSON
 * bypasses all this. */
static int value_for(const tt_param *p, const char *text, bool json, tt_arena *a, tt_value *out,
		     tt_error *err)
{
	double d;
	if (json)
		return tt_json_parse_value(text, a, out, err);
	switch (p->type) {
	case TT_PT_STRING:
		*out = tt_str(text);
		return 0;
	case TT_PT_BOOLEAN:
		if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "on") ||
		    !strcasecmp(text, "yes")) {
			*out = tt_bool(true);
			return 0;
		}
		if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "off") ||
		    !strcasecmp(text, "no")) {
			*out = tt_bool(false);
			return 0;
		}
		break;
	case TT_PT_INTEGER:
	case TT_PT_FLOAT:
		if (!strcmp(text, "null")) {
			*out = tt_nil();
			return 0;
		}
		if (parse_num(text, &d)) {
			/* integers keep their exact value; the class's coercion
			 * then clips, or refuses a fraction */
			char *end;
			long long i = strtoll(text, &end, 10);
			*out = *end == '\0' ? tt_int(i) : tt_float(d);
			return 0;
		}
		break;
	case TT_PT_ENUM:
		for (uint32_t i = 0; i < p->list.len; i++) {
			const tt_value *it = &p->list.v.items[i];
			double x;
			if ((it->type == TT_STR && tt_str_eq(it, text)) ||
			    (tt_as_double(it, &x) && parse_num(text, &d) && x == d)) {
				*out = *it;
				return 0;
			}
		}
		*out = tt_str(text);
		return 0;
	case TT_PT_ANY:
		if (tt_json_parse_value(text, a, out, NULL) < 0)
			*out = tt_str(text);
		return 0;
	}
	return tt_fail(err, TT_BAD_VALUE, "param \"%s\": \"%s\" is not a %s", p->name, text,
		       p->type == TT_PT_BOOLEAN ? "boolean (true/false)" : "number");
}

/* ---- watch -------------------------------------------------------------- */

static const char *source_name(tt_source s)
{
	switch (s) {
	case TT_SRC_UPDATE: return "update";
	case TT_SRC_SET: return "set";
	case TT_SRC_LOCAL: return "local";
	case TT_SRC_SNAPSHOT: return "snapshot";
	case TT_SRC_SCHEDULED: return "scheduled";
	}
	return "?";
}

static struct {
	long count, seen;
	bool gone;
	char reason[64];
} W;

static void watch_update(tt_state *s, const tt_value *changes, const tt_value *old,
			 const tt_update_info *info, void *user)
{
	(void)old;
	(void)user;
	tt_arena a;
	tt_arena_init(&a, 0);
	obj o = obj_new(&a, 8);
	obj_put(&o, "class", tt_str(tt_state_class(s)));
	obj_put(&o, "state", uval(info->state_id));
	obj_put(&o, "seq", uval(info->seq ? info->seq : tt_state_seq(s)));
	obj_put(&o, "time", tt_float(info->time));
	obj_put(&o, "source", tt_str(source_name(info->source)));
	if (info->sched_id)
		obj_put(&o, "schedule", uval(info->sched_id));
	obj_put(&o, "changes", *changes);
	print_json(&o.v);
	tt_arena_destroy(&a);
	W.seen++;
}

static void watch_scheduled(tt_state *s, uint64_t id, double at, const tt_value *changes, void *user)
{
	(void)user;
	tt_arena a;
	tt_arena_init(&a, 0);
	obj o = obj_new(&a, 6);
	obj_put(&o, "class", tt_str(tt_state_class(s)));
	obj_put(&o, "state", uval(tt_state_id(s)));
	obj_put(&o, "source", tt_str("schedule"));
	obj_put(&o, "schedule", uval(id));
	obj_put(&o, "at", tt_float(at));
	obj_put(&o, "changes", *changes);
	print_json(&o.v);
	tt_arena_destroy(&a);
}

static void watch_detach(tt_state *s, const char *reason, void *user)
{
	(void)s;
	(void)user;
	W.gone = true;
	snprintf(W.reason, sizeof(W.reason), "%s", reason);
}

static void watch_status(tt_client *c, tt_status st, void *user)
{
	(void)c;
	(void)user;
	if (G.watching && st == TT_STATUS_RECONNECTING)
		fprintf(stderr, "tutti: connection lost (%s); reconnecting\n", G.last_error);
}

static void watch_open(tt_client *c, bool resumed, void *user)
{
	(void)c;
	(void)user;
	if (G.watching && resumed)
		fprintf(stderr, "tutti: reconnected, session resumed\n");
}

/* An event of a history as a JSON line. */
static void print_event(tt_arena *a, const char *cls, uint64_t state, const tt_value *e)
{
	obj o = obj_new(a, 7);
	const tt_value *v;
	obj_put(&o, "class", tt_str(cls));
	obj_put(&o, "state", uval(state));
	if ((v = tt_map_get(e, "seq")))
		obj_put(&o, "seq", *v);
	if ((v = tt_map_get(e, "time")))
		obj_put(&o, "time", *v);
	obj_put(&o, "source", tt_str("history"));
	if ((v = tt_map_get(e, "origin")))
		obj_put(&o, "origin", *v);
	if ((v = tt_map_get(e, "changes")))
		obj_put(&o, "changes", *v);
	print_json(&o.v);
}

static int split_filter(char *list, const char **names, uint32_t cap, uint32_t *n)
{
	*n = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (*n == cap) {
			fprintf(stderr, "tutti: --filter: at most %u params\n", cap);
			return -1;
		}
		names[(*n)++] = tok;
	}
	return 0;
}

static int cmd_watch(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti watch CLASS[:ID] [--history N | --since SEQ] [--filter P,Q]\n"
		"                   [--count N] [--duration S]\n"
		"Attach to the state and print every update as a JSON line:\n"
		"  {\"class\",\"state\",\"seq\",\"time\",\"source\",\"changes\"}\n"
		"`time` is the server's sync time of the update; `source` is \"update\",\n"
		"\"snapshot\" (caught up after a reconnection) or \"scheduled\" (a scheduled\n"
		"set reaching its time); a scheduled set is also announced when it becomes\n"
		"known (source \"schedule\", with \"at\"). With --history N (the last N events)\n"
		"or --since SEQ the past events come first (source \"history\"). Reconnects\n"
		"and resumes by itself. Ends after --count updates, --duration seconds,\n"
		"Ctrl-C (status 0), or when the state is deleted (status 1).\n";
	static const struct option lo[] = {
		{"history", required_argument, 0, 'H'}, {"since", required_argument, 0, 'S'},
		{"filter", required_argument, 0, 'f'}, {"count", required_argument, 0, 'n'},
		{"duration", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	const char *names[TT_MAX_PARAMS];
	double duration = -1;
	int ch;
	W.count = -1;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': ao.history = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'S': ao.since_set = true; ao.since = strtoull(optarg, NULL, 10); break;
		case 'f':
			if (split_filter(optarg, names, TT_MAX_PARAMS, &ao.n_filter) < 0)
				return EX_USAGE;
			ao.filter = names;
			break;
		case 'n': W.count = strtol(optarg, NULL, 10); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'h': fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	target t;
	int rc = open_target(argc, argv, help, true, &t);
	if (rc)
		return rc;
	ao.on_update = watch_update;
	ao.on_scheduled = watch_scheduled;
	ao.on_detach = watch_detach;
	tt_wait w;
	tt_wait_init(&w);
	tt_state *s;
	if ((rc = attach(&t, &ao, &w, &s)) != 0)
		goto out;
	const tt_value *hist = tt_map_get(&w.result, "history");
	if (hist && hist->type == TT_ARRAY) {
		tt_arena a;
		tt_arena_init(&a, 0);
		for (uint32_t i = 0; i < hist->len; i++)
			print_event(&a, tt_state_class(s), tt_state_id(s), &hist->v.items[i]);
		tt_arena_destroy(&a);
		const tt_value *complete = tt_map_get(&w.result, "historyComplete");
		if (complete && complete->type == TT_BOOL && !complete->v.b)
			fprintf(stderr, "tutti: part of the history asked for is no longer kept\n");
	}
	/* the reconnection messages go to stderr from here on */
	G.watching = true;
	double end = duration >= 0 ? tt_clock_now() + duration : INFINITY;
	while (!G.stop && !W.gone && (W.count < 0 || W.seen < W.count) && tt_clock_now() < end) {
		double left = end - tt_clock_now();
		tt_client_service(G.c, left < 0.2 ? (int)(left * 1000) + 1 : 200);
	}
	if (W.gone) {
		fprintf(stderr, "tutti: watch %s: the state is gone (%s)\n", argv[optind], W.reason);
		rc = EX_REFUSED;
	}
out:
	tt_wait_free(&w);
	return rc;
}

/* ---- get ------------------------------------------------------------------- */

static int cmd_get(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti get CLASS[:ID] [PARAM...] [--raw]\n"
		"Print {\"class\",\"state\",\"seq\",\"time\",\"values\"} (every param, or the ones named).\n"
		"--raw prints only the values of the named params, one per line (strings\n"
		"without quotes), for shell scripts: vol=$(tutti get demo volume --raw)\n";
	static const struct option lo[] = {
		{"raw", no_argument, 0, 'r'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	bool raw = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "rh", lo, NULL)) != -1) {
		switch (ch) {
		case 'r': raw = true; break;
		case 'h': fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	target t;
	if (raw && optind + 1 >= argc) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	int rc = open_target(argc, argv, help, false, &t);
	if (rc)
		return rc;
	tt_wait w;
	tt_wait_init(&w);
	tt_state *s;
	tt_arena a;
	tt_arena_init(&a, 0);
	if ((rc = attach(&t, NULL, &w, &s)) != 0)
		goto out;
	uint32_t n = optind + 1 < argc ? (uint32_t)(argc - optind - 1) : tt_state_param_count(s);
	obj vals = obj_new(&a, n ? n : 1);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = optind + 1 < argc ? argv[optind + 1 + (int)i] : tt_state_param_name(s, i);
		const tt_value *v = tt_state_get(s, name);
		if (!v) {
			fprintf(stderr, "tutti: get: class \"%s\" has no param \"%s\"\n", t.cls, name);
			rc = EX_REFUSED;
			goto out;
		}
		if (raw) {
			if (v->type == TT_STR)
				printf("%.*s\n", (int)v->len, v->v.s);
			else
				print_json(v);
			continue;
		}
		obj_put(&vals, name, *v);
	}
	if (!raw) {
		obj o = obj_new(&a, 5);
		obj_put(&o, "class", tt_str(tt_state_class(s)));
		obj_put(&o, "state", uval(tt_state_id(s)));
		obj_put(&o, "seq", uval(tt_state_seq(s)));
		obj_put(&o, "time", tt_float(tt_state_time(s)));
		obj_put(&o, "values", vals.v);
		print_json(&o.v);
	}
out:
	fflush(stdout);
	tt_arena_destroy(&a);
	tt_wait_free(&w);
	return rc;
}

/* ---- set -------------------------------------------------------------------- */

/* Wait for a clock estimate: the first pong (a few ms: good to a half
 * round trip, enough for a cue from a shell), or with full the end of the
 * first series of pings (~2.5 s, what `tutti time` reports on). */
static int wait_clock(double timeout, bool full)
{
	const tt_clock *k = tt_client_clock(G.c);
	double end = tt_clock_now() + timeout;
	for (;;) {
		tt_clock_report r;
		tt_client_clock_report(G.c, &r);
		if (tt_clock_ready(k) || (!full && r.online))
			return 0;
		if (tt_clock_now() > end)
			return -1;
		tt_client_service(G.c, 20);
	}
}

static int cmd_set(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti set CLASS[:ID] KEY=VALUE... [--at T | --at +S] [--json OBJECT]\n"
		"Set params, all or none: each value is read the way its param wants it\n"
		"(volume=0.8, name=hello world, on=true); KEY:=JSON gives a JSON value\n"
		"(name:='\"true\"', list:='[1,2]', x:=null); --json '{\"volume\":0.8}' or\n"
		"--json - (stdin) gives them all as one JSON object. Values are validated\n"
		"locally with the class, then by the server; a refused set changes nothing.\n"
		"--at T schedules the set at sync time T; --at +S at S seconds after the\n"
		"command started, on the sync clock (e.g. --at +0.5): every client applies\n"
		"it at that moment.\n"
		"Prints the server's reply: {\"seq\",\"time\",\"changes\"} or, scheduled,\n"
		"{\"scheduled\",\"at\",\"changes\"}.\n";
	static const struct option lo[] = {
		{"at", required_argument, 0, 'a'}, {"json", required_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *at_arg = NULL, *json_arg = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'a': at_arg = optarg; break;
		case 'j': json_arg = optarg; break;
		case 'h': fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	target t;
	if (optind + 1 >= argc && !json_arg) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	double started = tt_clock_now();
	bool relative = at_arg && at_arg[0] == '+';
	double at = NAN;
	if (at_arg && (!parse_num(at_arg + relative, &at) || !isfinite(at) || at < 0)) {
		fprintf(stderr, "tutti: set: --at wants a sync time or +SECONDS, not \"%s\"\n", at_arg);
		return EX_USAGE;
	}
	int rc = open_target(argc, argv, help, false, &t);
	if (rc)
		return rc;
	tt_wait w, ws;
	tt_wait_init(&w);
	tt_wait_init(&ws);
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_error err;
	tt_state *s;
	char *stdin_text = NULL;
	if ((rc = attach(&t, NULL, &w, &s)) != 0)
		goto out;

	tt_value updates = {.type = TT_MAP};
	if (json_arg) {
		const char *text = json_arg;
		if (!strcmp(json_arg, "-")) {
			size_t cap = 0, len = 0;
			int c;
			while ((c = getchar()) != EOF) {
				if (len + 2 > cap) {
					cap = cap ? cap * 2 : 4096;
					if (cap > (64u << 20)) {
						fprintf(stderr, "tutti: set: --json -: more than 64 MiB on stdin\n");
						rc = EX_USAGE;
						goto out;
					}
					stdin_text = tt_realloc(stdin_text, cap);
				}
				stdin_text[len++] = (char)c;
			}
			if (!stdin_text)
				stdin_text = tt_strndup("", 0);
			stdin_text[len] = '\0';
			text = stdin_text;
		}
		if (tt_json_parse_value(text, &a, &updates, &err) < 0 || updates.type != TT_MAP) {
			fprintf(stderr, "tutti: set: --json wants a JSON object {\"param\": value}%s%s\n",
				updates.type == TT_MAP ? ": " : "", updates.type == TT_MAP ? err.msg : "");
			rc = EX_USAGE;
			goto out;
		}
	}
	uint32_t n_kv = (uint32_t)(argc - optind - 1);
	tt_pair *pairs = tt_arena_alloc(&a, sizeof(tt_pair) * (updates.len + n_kv + 1));
	if (updates.len)
		memcpy(pairs, updates.v.pairs, sizeof(tt_pair) * updates.len);
	updates.v.pairs = pairs;
	for (int i = optind + 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i]) {
			fprintf(stderr, "tutti: set: \"%s\": expected KEY=VALUE or KEY:=JSON\n", argv[i]);
			rc = EX_USAGE;
			goto out;
		}
		bool json = eq > argv[i] + 1 && eq[-1] == ':';
		size_t kn = (size_t)(eq - argv[i]) - json;
		char *key = tt_arena_alloc(&a, kn + 1);
		memcpy(key, argv[i], kn);
		key[kn] = '\0';
		const tt_param *p = tt_state_param(s, key);
		tt_value v;
		if (!p) {
			/* let the library word the error (unknown or filtered) */
			v = tt_nil();
		} else if (value_for(p, eq + 1, json, &a, &v, &err) < 0) {
			rc = report("set", err.code, err.msg);
			goto out;
		}
		pairs[updates.len].key = tt_str(key);
		pairs[updates.len++].val = v;
	}
	if (at_arg && relative) {
		if (wait_clock(G.timeout, false) < 0) {
			rc = report("set", TT_TIMEOUT, "no clock estimate in time for --at +S");
			goto out;
		}
		/* +S counts from when the command started, not from now */
		at += tt_clock_sync_time(tt_client_clock(G.c), started);
	}
	if (tt_state_set(s, &updates, at_arg ? at : NAN, tt_wait_done, &ws, &err) < 0) {
		rc = report("set", err.code, err.msg);
		goto out;
	}
	if ((rc = wait_for(&ws, "set")) != 0)
		goto out;
	obj o = obj_new(&a, 8);
	obj_put(&o, "class", tt_str(tt_state_class(s)));
	obj_put(&o, "state", uval(tt_state_id(s)));
	for (uint32_t i = 0; ws.result.type == TT_MAP && i < ws.result.len; i++) {
		const tt_pair *kv = &ws.result.v.pairs[i];
		if (kv->key.type == TT_STR && kv->key.len < 32) {
			char *k = tt_arena_alloc(&a, kv->key.len + 1u);
			memcpy(k, kv->key.v.s, kv->key.len);
			k[kv->key.len] = '\0';
			obj_put(&o, k, kv->val);
		}
	}
	print_json(&o.v);
out:
	free(stdin_text);
	tt_arena_destroy(&a);
	tt_wait_free(&w);
	tt_wait_free(&ws);
	return rc;
}

/* ---- ls ---------------------------------------------------------------------- */

typedef struct ls_entry {
	char cls[TT_MAX_NAME + 1];
	uint64_t id, owner;
} ls_entry;

static struct {
	ls_entry *e;
	size_t n, cap;
} L;

static void ls_notice(tt_client *c, const char *kind, const char *cls, uint64_t id, uint64_t owner,
		      void *user)
{
	(void)c;
	(void)user;
	if (strcmp(kind, "create") != 0)
		return;
	if (L.n == L.cap) {
		L.cap = L.cap ? L.cap * 2 : 64;
		L.e = tt_realloc(L.e, L.cap * sizeof(*L.e));
	}
	snprintf(L.e[L.n].cls, sizeof(L.e[L.n].cls), "%s", cls);
	L.e[L.n].id = id;
	L.e[L.n++].owner = owner;
}

static int cmd_ls(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti ls [CLASS]\n"
		"Print one JSON line per class that has states: {\"class\",\"states\":[{\"id\",\"owner\"}]}\n"
		"(owner 0 is the server itself), oldest state first. The protocol lists\n"
		"states, so a class defined without any state is not shown; `tutti describe\n"
		"CLASS` tells whether a class exists.\n";
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(help, stdout);
		return EX_OK;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	int rc = connect_client();
	if (rc)
		return rc;
	tt_wait w;
	tt_error err;
	tt_wait_init(&w);
	if (tt_client_observe(G.c, argc == 2 ? argv[1] : NULL, ls_notice, NULL, tt_wait_done, &w, &err) < 0) {
		rc = report("ls", err.code, err.msg);
		goto out;
	}
	if ((rc = wait_for(&w, "ls")) != 0)
		goto out;
	/* group by class, keeping the server's order (oldest first); every
	 * class the server lists comes first, in its order, a class without a
	 * state too */
	tt_arena a;
	tt_arena_init(&a, 0);
	bool *done = tt_calloc(L.n ? L.n : 1, sizeof(bool));
	const tt_value *classes = w.result.type == TT_MAP ? tt_map_get(&w.result, "classes") : NULL;
	for (uint32_t i = 0; classes && classes->type == TT_ARRAY && i < classes->len; i++) {
		const tt_value *cn = &classes->v.items[i];
		if (cn->type != TT_STR)
			continue;
		bool any = false;
		for (size_t j = 0; j < L.n; j++)
			any |= strlen(L.e[j].cls) == cn->len && !memcmp(L.e[j].cls, cn->v.s, cn->len);
		if (any)
			continue; /* listed below with its states */
		obj o = obj_new(&a, 2);
		obj_put(&o, "class", *cn);
		obj_put(&o, "states", (tt_value){.type = TT_ARRAY, .len = 0});
		print_json(&o.v);
	}
	for (size_t i = 0; i < L.n; i++) {
		if (done[i])
			continue;
		size_t k = 0;
		for (size_t j = i; j < L.n; j++)
			k += !strcmp(L.e[j].cls, L.e[i].cls);
		tt_value states = {.type = TT_ARRAY, .len = (uint32_t)k};
		states.v.items = tt_arena_alloc(&a, sizeof(tt_value) * k);
		k = 0;
		for (size_t j = i; j < L.n; j++) {
			if (strcmp(L.e[j].cls, L.e[i].cls) != 0)
				continue;
			done[j] = true;
			obj s = obj_new(&a, 2);
			obj_put(&s, "id", uval(L.e[j].id));
			obj_put(&s, "owner", uval(L.e[j].owner));
			states.v.items[k++] = s.v;
		}
		obj o = obj_new(&a, 2);
		obj_put(&o, "class", tt_str(L.e[i].cls));
		obj_put(&o, "states", states);
		print_json(&o.v);
	}
	free(done);
	tt_arena_destroy(&a);
out:
	free(L.e);
	tt_wait_free(&w);
	return rc;
}

/* ---- history ------------------------------------------------------------------ */

static int cmd_history(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti history CLASS[:ID] [--last N | --since SEQ]\n"
		"Print the state's events, oldest first, one JSON line each:\n"
		"  {\"class\",\"state\",\"seq\",\"time\",\"source\":\"history\",\"origin\",\"changes\"}\n"
		"(origin: the session that made the change, 0 the server). Default: every\n"
		"event the server still keeps (--since 0). A warning on stderr says when\n"
		"part of the range asked for has left the server's history.\n";
	static const struct option lo[] = {
		{"last", required_argument, 0, 'l'}, {"since", required_argument, 0, 's'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	uint32_t last = 0;
	uint64_t since = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'l': last = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': since = strtoull(optarg, NULL, 10); break;
		case 'h': fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	target t;
	int rc = open_target(argc, argv, help, true, &t);
	if (rc)
		return rc;
	tt_wait w, wh;
	tt_wait_init(&w);
	tt_wait_init(&wh);
	tt_error err;
	tt_state *s;
	if ((rc = attach(&t, NULL, &w, &s)) != 0)
		goto out;
	if (tt_state_history(s, last, since, tt_wait_done, &wh, &err) < 0) {
		rc = report("history", err.code, err.msg);
		goto out;
	}
	if ((rc = wait_for(&wh, "history")) != 0)
		goto out;
	const tt_value *events = tt_map_get(&wh.result, "events");
	tt_arena a;
	tt_arena_init(&a, 0);
	for (uint32_t i = 0; events && events->type == TT_ARRAY && i < events->len; i++)
		print_event(&a, tt_state_class(s), tt_state_id(s), &events->v.items[i]);
	tt_arena_destroy(&a);
	const tt_value *complete = tt_map_get(&wh.result, "complete");
	if (complete && complete->type == TT_BOOL && !complete->v.b)
		fprintf(stderr, "tutti: history: part of the range is no longer kept by the server\n");
out:
	tt_wait_free(&w);
	tt_wait_free(&wh);
	return rc;
}

/* ---- describe ------------------------------------------------------------------- */

static int cmd_describe(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti describe CLASS\n"
		"Print the class's expanded description (every option with its default).\n";
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(help, stdout);
		return EX_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(help, stderr);
		return EX_USAGE;
	}
	int rc = connect_client();
	if (rc)
		return rc;
	tt_wait w;
	tt_error err;
	tt_wait_init(&w);
	if (tt_client_describe(G.c, argv[1], tt_wait_done, &w, &err) < 0)
		rc = report("describe", err.code, err.msg);
	else if ((rc = wait_for(&w, "describe")) == 0)
		print_json(&w.result);
	tt_wait_free(&w);
	return rc;
}

/* ---- time ----------------------------------------------------------------------- */

static void print_report(void)
{
	tt_clock_report r;
	tt_client_clock_report(G.c, &r);
	tt_arena a;
	tt_arena_init(&a, 0);
	obj rt = obj_new(&a, 3);
	obj_put(&rt, "min", tt_float(r.round_trip_min));
	obj_put(&rt, "mean", tt_float(r.round_trip_mean));
	obj_put(&rt, "max", tt_float(r.round_trip_max));
	obj o = obj_new(&a, 9);
	obj_put(&o, "status", tt_str(r.status));
	obj_put(&o, "syncTime", tt_float(r.sync_time));
	obj_put(&o, "localTime", tt_float(r.local_time));
	obj_put(&o, "offset", tt_float(r.offset));
	obj_put(&o, "drift", tt_float(r.drift));
	obj_put(&o, "roundTrip", rt.v);
	obj_put(&o, "online", tt_bool(r.online));
	obj_put(&o, "series", tt_int(r.series));
	print_json(&o.v);
	tt_arena_destroy(&a);
}

static void time_on_clock(tt_client *c, void *user)
{
	(void)c;
	(void)user;
	if (G.clock_watch)
		print_report();
}

static int cmd_time(int argc, char **argv)
{
	static const char *const help =
		"usage: tutti time [--watch]\n"
		"Estimate the server's sync clock (a series of pings, about 2.5 s) and print\n"
		"the report: {\"status\",\"syncTime\",\"localTime\",\"offset\",\"drift\",\n"
		"\"roundTrip\":{\"min\",\"mean\",\"max\"},\"online\",\"series\"}, times in seconds;\n"
		"localTime is this machine's monotonic clock. --watch prints a report after\n"
		"every series (every 10 to 20 s) until Ctrl-C.\n";
	bool watch = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(help, stdout);
			return EX_OK;
		}
		if (!strcmp(argv[i], "--watch")) {
			watch = true;
		} else {
			fputs(help, stderr);
			return EX_USAGE;
		}
	}
	int rc = connect_client();
	if (rc)
		return rc;
	if (wait_clock(G.timeout, true) < 0)
		return report("time", TT_TIMEOUT, "no clock estimate in time");
	print_report();
	if (watch) {
		G.clock_watch = true;
		while (!G.stop)
			tt_client_service(G.c, 200);
	}
	return EX_OK;
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"url", required_argument, 0, 'u'}, {"timeout", required_argument, 0, 't'},
		{"insecure", no_argument, 0, 'k'}, {"ca", required_argument, 0, 'c'},
		{"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{"watch", cmd_watch}, {"get", cmd_get}, {"set", cmd_set}, {"ls", cmd_ls},
		{"history", cmd_history}, {"describe", cmd_describe}, {"time", cmd_time}};
	G.url = getenv("TUTTI_URL");
	if (!G.url || !*G.url)
		G.url = "ws://127.0.0.1:8000/";
	int ch;
	while ((ch = getopt_long(argc, argv, "+hu:t:kV", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': G.url = optarg; break;
		case 't':
			G.timeout = strtod(optarg, NULL);
			if (!(G.timeout > 0)) {
				fprintf(stderr, "tutti: --timeout wants a number of seconds > 0\n");
				return EX_USAGE;
			}
			break;
		case 'k': G.insecure = true; break;
		case 'c': G.ca = optarg; break;
		case 'V': puts("tutti 0.1.0 (protocol tutti.v1)"); return EX_OK;
		case 'h': fputs(usage_main, stdout); return EX_OK;
		default: fputs(usage_main, stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_main, stderr);
		return EX_USAGE;
	}
	const char *name = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 0; /* each command parses its own options (0: glibc starts afresh) */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		if (strcmp(name, cmds[i].name) != 0)
			continue;
		int rc = cmds[i].fn(sub_argc, sub_argv);
		tt_client_free(G.c);
		return rc;
	}
	fprintf(stderr, "tutti: unknown command \"%s\" (tutti --help lists them)\n", name);
	return EX_USAGE;
}
