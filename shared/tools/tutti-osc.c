/* SPDX-License-Identifier: MIT */
/* tutti-osc.c: the OSC bridge. It maps params of tutti states to OSC
 * addresses (/demo/volume 0.8), both ways: every update goes out as an OSC
 * message to each destination, and OSC messages that come in become sets
 * (validated by the server; errors go back as /tutti/error and to the log).
 * A scheduled set goes out at once as a bundle timetagged with the moment
 * of `at` on this machine's clock (for SuperCollider), or, to destinations
 * that ignore timetags (Max's udpreceive, Pd's oscparse), as a plain
 * message that the bridge sends itself at that moment. liblo does all the
 * OSC; this file is its only user.
 *
 * Threads: the tutti client runs on its own thread and owns every table
 * here (bridged states, addresses) and every send; the main thread only
 * receives OSC and posts each message to the client thread. */
#include <getopt.h>
#include <lo/lo.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "schema.h"
#include "tutti_client.h"

#define MAX_DEST 16

static const char *const usage =
	"usage: tutti-osc [--url URL] [--listen PORT] [--send HOST:PORT]... [--bundle HOST:PORT]...\n"
	"                 [--config FILE] [--no-echo] [--insecure] [-v] [--help]\n"
	"\n"
	"Bridge tutti states and OSC. Every update of a bridged param is sent to each\n"
	"destination as /CLASS/PARAM VALUE; every OSC message received on PORT with such\n"
	"an address becomes a set (refused sets come back as /tutti/error ADDRESS CODE\n"
	"MESSAGE, and are logged). By default every param of the oldest state of every\n"
	"class is bridged; a config file chooses classes, params, states and addresses.\n"
	"\n"
	"  --url URL         tutti server (default $TUTTI_URL, else ws://127.0.0.1:8000/)\n"
	"  --listen PORT     UDP port for incoming OSC (default 9000; 0: none)\n"
	"  --send HOST:PORT  destination; a scheduled set is sent as a plain message at\n"
	"                    its time by the bridge (Pd, Max)\n"
	"  --bundle HOST:PORT destination; a scheduled set is sent at once as a bundle\n"
	"                    timetagged with its time (SuperCollider)\n"
	"  --config FILE     JSON config (see shared/tools/README.md)\n"
	"  --no-echo         do not send back the updates of sets that came in over OSC\n"
	"  -v                log every message in and out\n"
	"\n"
	"Values: floats go out as OSC f, integers as i (h beyond 32 bits), booleans as\n"
	"i 1/0, strings as s, null as N, an `any` array as its items. Coming in, a\n"
	"boolean param takes any number (0 is false) or no argument (true: a bang).\n";

typedef struct rule {
	char *cls;          /* NULL: every class */
	bool all_states;    /* every state, else the oldest */
	char **params;      /* NULL: every param */
	uint32_t n_params;
	char *address;      /* template: {class} {id} {param} */
	bool in, out;
} rule;

typedef struct dest {
	lo_address addr;
	char name[300];
	bool bundle;
} dest;

/* One bridged instance; its addresses are entries of B.routes. */
typedef struct bridged {
	tt_state *s;
	const rule *r;
	uint64_t id;
	char cls[TT_MAX_NAME + 1];
	struct bridged *next;
} bridged;

typedef struct route {
	char *address;
	bridged *b;
	const char *param; /* the class's own name (valid while b lives) */
} route;

/* Schedules already sent as bundles, so their plain copy at `at` does not
 * go to bundle destinations again. */
typedef struct sent_sched {
	uint64_t state, id;
	double forget; /* local time */
} sent_sched;

/* A state known from the notices, for "oldest state" rules. */
typedef struct known {
	char cls[TT_MAX_NAME + 1];
	uint64_t id;
} known;

static struct {
	const char *url;
	char *url_owned;    /* from the config file */
	bool rules_owned;
	int listen;
	bool echo, verbose, insecure;
	rule *rules;
	uint32_t n_rules;
	dest dest[MAX_DEST];
	uint32_t n_dest;
	tt_client *c;
	bridged *bridged;
	route *routes;
	size_t n_routes, cap_routes;
	sent_sched *sent;
	size_t n_sent, cap_sent;
	known *known;
	size_t n_known, cap_known;
	volatile sig_atomic_t stop;
} B = {.listen = 9000, .echo = true};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tutti-osc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void on_sig(int sig)
{
	(void)sig;
	B.stop = 1;
}

/* ---- config ---------------------------------------------------------------- */

static char *dup_str(const tt_value *v)
{
	return tt_strndup(v->v.s, v->len);
}

static int parse_rule(const tt_value *m, rule *r, char *err, size_t cap)
{
	const tt_value *v;
	memset(r, 0, sizeof(*r));
	r->in = r->out = true;
	if (m->type != TT_MAP) {
		snprintf(err, cap, "each entry of \"map\" must be an object");
		return -1;
	}
	for (uint32_t i = 0; i < m->len; i++) {
		const tt_value *k = &m->v.pairs[i].key;
		if (!tt_str_eq(k, "class") && !tt_str_eq(k, "states") && !tt_str_eq(k, "params") &&
		    !tt_str_eq(k, "address") && !tt_str_eq(k, "in") && !tt_str_eq(k, "out")) {
			snprintf(err, cap, "unknown key \"%.*s\" in a \"map\" entry (class, states, params, address, in, out)",
				 (int)TT_MIN(k->len, 64u), k->v.s);
			return -1;
		}
	}
	if (!(v = tt_map_get(m, "class")) || v->type != TT_STR || !v->len) {
		snprintf(err, cap, "a \"map\" entry needs \"class\": a class name or \"*\"");
		return -1;
	}
	r->cls = tt_str_eq(v, "*") ? NULL : dup_str(v);
	if ((v = tt_map_get(m, "states"))) {
		if (tt_str_eq(v, "all"))
			r->all_states = true;
		else if (!tt_str_eq(v, "oldest")) {
			snprintf(err, cap, "\"states\" is \"oldest\" (default) or \"all\"");
			return -1;
		}
	}
	if ((v = tt_map_get(m, "params"))) {
		if (v->type != TT_ARRAY) {
			snprintf(err, cap, "\"params\" must be an array of param names");
			return -1;
		}
		r->params = tt_calloc(v->len ? v->len : 1, sizeof(char *));
		for (uint32_t i = 0; i < v->len; i++) {
			if (v->v.items[i].type != TT_STR) {
				snprintf(err, cap, "\"params\" must be an array of param names");
				return -1;
			}
			r->params[r->n_params++] = dup_str(&v->v.items[i]);
		}
	}
	const char *dflt = r->all_states ? "/{class}/{id}/{param}" : "/{class}/{param}";
	if ((v = tt_map_get(m, "address"))) {
		if (v->type != TT_STR || v->len < 2 || v->v.s[0] != '/') {
			snprintf(err, cap, "\"address\" must be an OSC address template starting with /");
			return -1;
		}
		r->address = dup_str(v);
	} else {
		r->address = tt_strndup(dflt, strlen(dflt));
	}
	if (!strstr(r->address, "{param}") && r->n_params != 1) {
		snprintf(err, cap, "address \"%s\" needs {param} (or \"params\" with one name)", r->address);
		return -1;
	}
	if (r->all_states && !strstr(r->address, "{id}")) {
		snprintf(err, cap, "address \"%s\" needs {id} with \"states\": \"all\"", r->address);
		return -1;
	}
	if (!r->cls && !strstr(r->address, "{class}")) {
		snprintf(err, cap, "address \"%s\" needs {class} with \"class\": \"*\"", r->address);
		return -1;
	}
	for (const char *p = "in"; p; p = strcmp(p, "in") ? NULL : "out") {
		if ((v = tt_map_get(m, p))) {
			if (v->type != TT_BOOL) {
				snprintf(err, cap, "\"%s\" must be true or false", p);
				return -1;
			}
			*(strcmp(p, "in") ? &r->out : &r->in) = v->v.b;
		}
	}
	return 0;
}

static int add_dest(const char *spec, bool bundle)
{
	if (B.n_dest == MAX_DEST) {
		logf_("at most %d destinations", MAX_DEST);
		return -1;
	}
	const char *colon = strrchr(spec, ':');
	char host[256];
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		logf_("destination \"%s\": expected HOST:PORT", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	dest *d = &B.dest[B.n_dest];
	d->addr = lo_address_new(host, colon + 1);
	if (!d->addr) {
		logf_("destination \"%s\": bad address", spec);
		return -1;
	}
	snprintf(d->name, sizeof(d->name), "%s", spec);
	d->bundle = bundle;
	B.n_dest++;
	return 0;
}

static void free_config(void)
{
	if (B.rules_owned) {
		for (uint32_t i = 0; i < B.n_rules; i++) {
			rule *r = &B.rules[i];
			free(r->cls);
			for (uint32_t j = 0; j < r->n_params; j++)
				free(r->params[j]);
			free(r->params);
			free(r->address);
		}
		free(B.rules);
		B.rules_owned = false;
	}
	B.rules = NULL;
	B.n_rules = 0;
	for (uint32_t d = 0; d < B.n_dest; d++)
		lo_address_free(B.dest[d].addr);
	B.n_dest = 0;
	free(B.url_owned);
	B.url_owned = NULL;
}

static int load_config(const char *path)
{
	tt_arena a;
	tt_value root;
	tt_error err;
	char msg[300];
	int rc = -1;
	tt_arena_init(&a, 0);
	if (tt_json_load_file(path, &a, &root, &err) < 0) {
		logf_("config: %s", err.msg);
		goto out;
	}
	if (root.type != TT_MAP) {
		logf_("config %s: must be a JSON object", path);
		goto out;
	}
	for (uint32_t i = 0; i < root.len; i++) {
		const tt_value *k = &root.v.pairs[i].key, *v = &root.v.pairs[i].val;
		if (tt_str_eq(k, "url") && v->type == TT_STR) {
			free(B.url_owned);
			B.url_owned = dup_str(v);
		} else if (tt_str_eq(k, "listen") && v->type == TT_INT && v->v.i >= 0 && v->v.i <= 65535) {
			B.listen = (int)v->v.i;
		} else if (tt_str_eq(k, "echo") && v->type == TT_BOOL) {
			B.echo = v->v.b;
		} else if (tt_str_eq(k, "send") && v->type == TT_ARRAY) {
			for (uint32_t j = 0; j < v->len; j++) {
				const tt_value *d = &v->v.items[j], *to = tt_map_get(d, "to"), *bu = tt_map_get(d, "bundle");
				char spec[300];
				if (!to || to->type != TT_STR || (bu && bu->type != TT_BOOL)) {
					logf_("config %s: each \"send\" entry is {\"to\": \"HOST:PORT\", \"bundle\": false}", path);
					goto out;
				}
				snprintf(spec, sizeof(spec), "%.*s", (int)TT_MIN(to->len, 290u), to->v.s);
				if (add_dest(spec, bu && bu->v.b) < 0)
					goto out;
			}
		} else if (tt_str_eq(k, "map") && v->type == TT_ARRAY) {
			if (B.rules_owned) {
				logf_("config %s: \"map\" given twice", path);
				goto out;
			}
			B.rules = tt_calloc(v->len ? v->len : 1, sizeof(rule));
			B.rules_owned = true;
			for (uint32_t j = 0; j < v->len; j++) {
				if (parse_rule(&v->v.items[j], &B.rules[j], msg, sizeof(msg)) < 0) {
					B.n_rules = j + 1;
					logf_("config %s: %s", path, msg);
					goto out;
				}
			}
			B.n_rules = v->len;
		} else {
			logf_("config %s: unknown or mistyped key \"%.*s\" (url: string, listen: port, echo: boolean, send: array, map: array)",
			      path, (int)TT_MIN(k->len, 64u), k->v.s);
			goto out;
		}
	}
	rc = 0;
out:
	tt_arena_destroy(&a);
	return rc;
}

/* ---- addresses ------------------------------------------------------------- */

static char *expand(const rule *r, const char *cls, uint64_t id, const char *param)
{
	char out[1024];
	size_t n = 0;
	for (const char *p = r->address; *p && n < sizeof(out) - 1;) {
		const char *sub = NULL;
		char num[24];
		if (!strncmp(p, "{class}", 7)) {
			sub = cls;
			p += 7;
		} else if (!strncmp(p, "{param}", 7)) {
			sub = param;
			p += 7;
		} else if (!strncmp(p, "{id}", 4)) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)id);
			sub = num;
			p += 4;
		}
		if (sub) {
			size_t k = TT_MIN(strlen(sub), sizeof(out) - 1 - n);
			memcpy(out + n, sub, k);
			n += k;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return tt_strndup(out, n);
}

static bool rule_has_param(const rule *r, const char *param)
{
	if (!r->params)
		return true;
	for (uint32_t i = 0; i < r->n_params; i++)
		if (!strcmp(r->params[i], param))
			return true;
	return false;
}

static const rule *rule_for(const char *cls)
{
	for (uint32_t i = 0; i < B.n_rules; i++)
		if (!B.rules[i].cls || !strcmp(B.rules[i].cls, cls))
			return &B.rules[i];
	return NULL;
}

static const route *route_of(const char *address)
{
	for (size_t i = 0; i < B.n_routes; i++)
		if (!strcmp(B.routes[i].address, address))
			return &B.routes[i];
	return NULL;
}

static const route *route_to(const bridged *b, const char *param)
{
	for (size_t i = 0; i < B.n_routes; i++)
		if (B.routes[i].b == b && !strcmp(B.routes[i].param, param))
			return &B.routes[i];
	return NULL;
}

/* ---- out: updates to OSC ----------------------------------------------------- */

/* Append a value as OSC arguments: an `any` array gives its items. */
static void add_arg(lo_message m, const tt_value *v, int depth)
{
	if (v->type == TT_ARRAY && depth == 0) {
		for (uint32_t i = 0; i < v->len; i++)
			add_arg(m, &v->v.items[i], 1);
		return;
	}
	switch (v->type) {
	case TT_NIL: lo_message_add_nil(m); break;
	case TT_BOOL: lo_message_add_int32(m, v->v.b ? 1 : 0); break;
	case TT_INT:
		if (v->v.i >= INT32_MIN && v->v.i <= INT32_MAX)
			lo_message_add_int32(m, (int32_t)v->v.i);
		else
			lo_message_add_int64(m, v->v.i);
		break;
	case TT_UINT: lo_message_add_float(m, (float)v->v.u); break;
	case TT_FLOAT: lo_message_add_float(m, (float)v->v.f); break;
	case TT_STR: {
		char *s = tt_strndup(v->v.s, v->len);
		lo_message_add_string(m, s);
		free(s);
		break;
	}
	default: { /* maps, nested arrays: as JSON text */
		char *s = tt_json_dump(v);
		lo_message_add_string(m, s ? s : "null");
		free(s);
		break;
	}
	}
}

static void log_msg(const char *dir, const char *where, const char *address, lo_message m)
{
	if (!B.verbose)
		return;
	char types[64];
	snprintf(types, sizeof(types), "%s", lo_message_get_types(m));
	logf_("%s %s %s ,%s", dir, where, address, types);
}

/* Local monotonic time -> OSC timetag (wall clock, NTP epoch). */
static lo_timetag timetag_at(double local)
{
	lo_timetag now;
	lo_timetag_now(&now);
	double t = (double)now.sec + (double)now.frac / 4294967296.0 + (local - tt_clock_now());
	lo_timetag tt;
	tt.sec = (uint32_t)floor(t);
	tt.frac = (uint32_t)((t - floor(t)) * 4294967296.0);
	return tt;
}

static bool sent_as_bundle(uint64_t state, uint64_t id)
{
	for (size_t i = 0; i < B.n_sent; i++)
		if (B.sent[i].state == state && B.sent[i].id == id)
			return true;
	return false;
}

static void remember_bundle(uint64_t state, uint64_t id, double forget)
{
	double now = tt_clock_now();
	size_t k = 0;
	for (size_t i = 0; i < B.n_sent; i++)
		if (B.sent[i].forget > now)
			B.sent[k++] = B.sent[i];
	B.n_sent = k;
	if (B.n_sent == B.cap_sent) {
		B.cap_sent = B.cap_sent ? B.cap_sent * 2 : 16;
		B.sent = tt_realloc(B.sent, B.cap_sent * sizeof(*B.sent));
	}
	B.sent[B.n_sent++] = (sent_sched){state, id, forget};
}

/* Send changes of b: to plain destinations, and to bundle ones unless
 * skip_bundles; bundle_at (local time, or NAN) makes it one timetagged
 * bundle per bundle destination. */
static void send_changes(bridged *b, const tt_value *changes, bool skip_bundles, bool skip_plain,
			 double bundle_at)
{
	for (uint32_t d = 0; d < B.n_dest; d++) {
		dest *ds = &B.dest[d];
		if ((ds->bundle && skip_bundles) || (!ds->bundle && skip_plain))
			continue;
		lo_bundle bu = NULL;
		if (ds->bundle && !isnan(bundle_at))
			bu = lo_bundle_new(timetag_at(bundle_at));
		for (uint32_t i = 0; i < changes->len; i++) {
			const tt_pair *kv = &changes->v.pairs[i];
			char param[TT_MAX_NAME + 1];
			snprintf(param, sizeof(param), "%.*s", (int)TT_MIN(kv->key.len, (uint32_t)TT_MAX_NAME), kv->key.v.s);
			const route *r = route_to(b, param);
			if (!r)
				continue;
			lo_message m = lo_message_new();
			add_arg(m, &kv->val, 0);
			log_msg(bu ? "bundle ->" : "->", ds->name, r->address, m);
			if (bu) {
				lo_bundle_add_message(bu, r->address, m);
			} else {
				if (lo_send_message(ds->addr, r->address, m) < 0)
					logf_("send to %s: %s", ds->name, lo_address_errstr(ds->addr));
				lo_message_free(m);
			}
		}
		if (bu) {
			if (lo_send_bundle(ds->addr, bu) < 0)
				logf_("send to %s: %s", ds->name, lo_address_errstr(ds->addr));
			lo_bundle_free_recursive(bu);
		}
	}
}

static void on_update(tt_state *s, const tt_value *changes, const tt_value *old,
		      const tt_update_info *info, void *user)
{
	(void)s;
	(void)old;
	bridged *b = user;
	if (!b->r->out)
		return;
	/* the reply to our own set: sent too (every destination sees the
	 * server's value, clipped), unless --no-echo */
	if (info->source == TT_SRC_SET && !B.echo)
		return;
	bool bundled = info->sched_id && sent_as_bundle(info->state_id, info->sched_id);
	send_changes(b, changes, bundled, false, NAN);
}

static void on_scheduled(tt_state *s, uint64_t id, double at, const tt_value *changes, void *user)
{
	(void)s;
	bridged *b = user;
	if (!b->r->out)
		return;
	double local = tt_clock_local_time(tt_client_clock(B.c), at);
	remember_bundle(b->id, id, local + 120);
	/* plain destinations get it at `at`, from on_update */
	send_changes(b, changes, false, true, local);
}

static void send_error(const char *address, int code, const char *message)
{
	logf_("%s: %s: %s", address, tt_client_code_name(code), message);
	for (uint32_t d = 0; d < B.n_dest; d++) {
		lo_message m = lo_message_new();
		lo_message_add_string(m, address);
		lo_message_add_string(m, tt_client_code_name(code));
		lo_message_add_string(m, message);
		lo_send_message(B.dest[d].addr, "/tutti/error", m);
		lo_message_free(m);
	}
}

/* ---- bridging states ---------------------------------------------------------- */

static void attach_state(const char *cls, uint64_t id);

static void drop_routes(bridged *b)
{
	size_t k = 0;
	for (size_t i = 0; i < B.n_routes; i++) {
		if (B.routes[i].b == b)
			free(B.routes[i].address);
		else
			B.routes[k++] = B.routes[i];
	}
	B.n_routes = k;
}

static void forget_known(const char *cls, uint64_t id)
{
	size_t k = 0;
	for (size_t i = 0; i < B.n_known; i++)
		if (B.known[i].id != id || strcmp(B.known[i].cls, cls) != 0)
			B.known[k++] = B.known[i];
	B.n_known = k;
}

static void on_detach(tt_state *s, const char *reason, void *user)
{
	(void)s;
	bridged *b = user;
	logf_("%s:%llu no longer bridged (%s)", b->cls, (unsigned long long)b->id, reason);
	drop_routes(b);
	for (bridged **pp = &B.bridged; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	const rule *r = b->r;
	char cls[TT_MAX_NAME + 1];
	snprintf(cls, sizeof(cls), "%s", b->cls);
	bool next_oldest = !r->all_states && strcmp(reason, "session lost") && strcmp(reason, "closed");
	forget_known(cls, b->id);
	free(b);
	/* an "oldest state" rule moves on to the next oldest one */
	if (next_oldest)
		for (size_t i = 0; i < B.n_known; i++)
			if (!strcmp(B.known[i].cls, cls)) {
				attach_state(cls, B.known[i].id);
				break;
			}
}

static void on_attached(tt_client *c, const tt_reply *rep, void *user)
{
	(void)c;
	bridged *b = user;
	if (rep->code) {
		logf_("attach %s:%llu: %s: %s", b->cls, (unsigned long long)b->id,
		      tt_client_code_name(rep->code), rep->message);
		for (bridged **pp = &B.bridged; *pp; pp = &(*pp)->next)
			if (*pp == b) {
				*pp = b->next;
				break;
			}
		free(b);
		return;
	}
	b->s = rep->state;
	uint32_t n = tt_state_param_count(b->s);
	for (uint32_t i = 0; i < n; i++) {
		const char *param = tt_state_param_name(b->s, i);
		if (!rule_has_param(b->r, param))
			continue;
		char *address = expand(b->r, b->cls, b->id, param);
		if (route_of(address)) {
			logf_("%s:%llu param %s: address %s is taken by another state; not bridged",
			      b->cls, (unsigned long long)b->id, param, address);
			free(address);
			continue;
		}
		if (B.n_routes == B.cap_routes) {
			B.cap_routes = B.cap_routes ? B.cap_routes * 2 : 64;
			B.routes = tt_realloc(B.routes, B.cap_routes * sizeof(*B.routes));
		}
		B.routes[B.n_routes++] = (route){address, b, param};
	}
	logf_("bridging %s:%llu", b->cls, (unsigned long long)b->id);
	/* a destination that joins late learns the current values */
	if (b->r->out) {
		tt_arena a;
		tt_arena_init(&a, 0);
		tt_value m = {.type = TT_MAP};
		m.v.pairs = tt_arena_alloc(&a, sizeof(tt_pair) * (n ? n : 1));
		for (uint32_t i = 0; i < n; i++) {
			const char *param = tt_state_param_name(b->s, i);
			const tt_value *v = tt_state_get(b->s, param);
			const tt_param *p = tt_state_param(b->s, param);
			if (v && p && !p->event && rule_has_param(b->r, param)) {
				m.v.pairs[m.len].key = tt_str(param);
				m.v.pairs[m.len++].val = *v;
			}
		}
		send_changes(b, &m, false, false, NAN);
		tt_arena_destroy(&a);
	}
}

static void attach_state(const char *cls, uint64_t id)
{
	const rule *r = rule_for(cls);
	if (!r)
		return;
	for (bridged *b = B.bridged; b; b = b->next)
		if (!strcmp(b->cls, cls) && (b->id == id || !r->all_states))
			return; /* bridged already, or the class's oldest state is */
	bridged *b = tt_calloc(1, sizeof(*b));
	b->r = r;
	b->id = id;
	snprintf(b->cls, sizeof(b->cls), "%s", cls);
	b->next = B.bridged;
	B.bridged = b;
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.filter = (const char *const *)r->params;
	ao.n_filter = r->n_params;
	ao.on_update = on_update;
	ao.on_scheduled = on_scheduled;
	ao.on_detach = on_detach;
	ao.user = b;
	tt_error err;
	if (tt_client_attach(B.c, cls, id, &ao, on_attached, b, &err) < 0) {
		logf_("attach %s:%llu: %s", cls, (unsigned long long)id, err.msg);
		B.bridged = b->next;
		free(b);
	}
}

static void on_notice(tt_client *c, const char *kind, const char *cls, uint64_t id, uint64_t owner,
		      void *user)
{
	(void)c;
	(void)owner;
	(void)user;
	if (!strcmp(kind, "delete")) {
		forget_known(cls, id);
		return;
	}
	for (size_t i = 0; i < B.n_known; i++)
		if (B.known[i].id == id && !strcmp(B.known[i].cls, cls))
			goto attach;
	if (B.n_known == B.cap_known) {
		B.cap_known = B.cap_known ? B.cap_known * 2 : 64;
		B.known = tt_realloc(B.known, B.cap_known * sizeof(*B.known));
	}
	snprintf(B.known[B.n_known].cls, sizeof(B.known[B.n_known].cls), "%s", cls);
	B.known[B.n_known++].id = id;
attach:
	attach_state(cls, id);
}

/* ---- in: OSC to sets ------------------------------------------------------------ */

typedef struct in_msg {
	char *address;
	tt_value args;   /* array, in arena */
	double at_local; /* a future bundle timetag as local time, or NAN */
	tt_arena arena;
} in_msg;

typedef struct set_ctx {
	char address[256];
} set_ctx;

static void on_set_reply(tt_client *c, const tt_reply *rep, void *user)
{
	(void)c;
	set_ctx *x = user;
	if (rep->code)
		send_error(x->address, rep->code, rep->message);
	free(x);
}

/* The OSC arguments as a value for param p. */
static tt_value value_for(const tt_param *p, const tt_value *args)
{
	if (p->type == TT_PT_ANY) {
		if (args->len == 0)
			return tt_nil();
		return args->len == 1 ? args->v.items[0] : *args;
	}
	if (args->len == 0)
		return p->type == TT_PT_BOOLEAN ? tt_bool(true) : tt_nil(); /* a bang */
	tt_value v = args->v.items[0];
	double d;
	if (p->type == TT_PT_BOOLEAN && tt_as_double(&v, &d))
		return tt_bool(d != 0); /* Pd and Max have no booleans */
	if (p->type == TT_PT_INTEGER && v.type == TT_BOOL)
		return tt_int(v.v.b);
	return v;
}

static void handle_in(tt_client *c, void *user)
{
	(void)c;
	in_msg *m = user;
	const route *r = route_of(m->address);
	if (!r) {
		send_error(m->address, TT_UNKNOWN_PARAM, "no bridged param has this address");
		goto out;
	}
	if (!r->b->r->in) {
		send_error(m->address, TT_LOCAL_PARAM, "this address is bridged out only");
		goto out;
	}
	const tt_param *p = tt_state_param(r->b->s, r->param);
	if (!p)
		goto out;
	if (p->type != TT_PT_ANY && m->args.len > 1) {
		send_error(m->address, TT_BAD_VALUE, "one argument expected");
		goto out;
	}
	tt_pair kv = {.key = tt_str(r->param), .val = value_for(p, &m->args)};
	tt_value updates = {.type = TT_MAP, .len = 1};
	updates.v.pairs = &kv;
	double at = isnan(m->at_local) ? NAN : tt_clock_sync_time(tt_client_clock(B.c), m->at_local);
	set_ctx *x = tt_malloc(sizeof(*x));
	snprintf(x->address, sizeof(x->address), "%s", m->address);
	tt_error err;
	if (tt_state_set(r->b->s, &updates, at, on_set_reply, x, &err) < 0) {
		send_error(m->address, err.code, err.msg);
		free(x);
	}
out:
	free(m->address);
	tt_arena_destroy(&m->arena);
	free(m);
}

static int osc_handler(const char *path, const char *types, lo_arg **argv, int argc, lo_message msg,
		       void *user)
{
	(void)user;
	in_msg *m = tt_calloc(1, sizeof(*m));
	tt_arena_init(&m->arena, 1024);
	m->address = tt_strndup(path, strlen(path));
	m->args.type = TT_ARRAY;
	m->args.v.items = tt_arena_alloc(&m->arena, sizeof(tt_value) * (argc > 0 ? (size_t)argc : 1));
	for (int i = 0; i < argc; i++) {
		tt_value v = tt_nil();
		switch (types[i]) {
		case LO_INT32: v = tt_int(argv[i]->i); break;
		case LO_INT64: v = tt_int(argv[i]->h); break;
		case LO_FLOAT: v = tt_float(argv[i]->f); break;
		case LO_DOUBLE: v = tt_float(argv[i]->d); break;
		case LO_TRUE: v = tt_bool(true); break;
		case LO_FALSE: v = tt_bool(false); break;
		case LO_INFINITUM: v = tt_float(INFINITY); break;
		case LO_STRING:
		case LO_SYMBOL: {
			const char *s = &argv[i]->s;
			size_t n = strlen(s);
			v = tt_strn(tt_arena_dup(&m->arena, s, n), n);
			break;
		}
		case LO_CHAR: {
			char ch = (char)argv[i]->c;
			v = tt_strn(tt_arena_dup(&m->arena, &ch, 1), 1);
			break;
		}
		default: break; /* nil, blobs, MIDI, timetags: nil */
		}
		m->args.v.items[m->args.len++] = v;
	}
	/* a bundle timetagged in the future becomes a scheduled set */
	m->at_local = NAN;
	lo_timetag tt = lo_message_get_timestamp(msg);
	if (!(tt.sec == 0 && tt.frac <= 1)) {
		lo_timetag now;
		lo_timetag_now(&now);
		double ahead = lo_timetag_diff(tt, now);
		if (ahead > 0.001 && ahead < 86400)
			m->at_local = tt_clock_now() + ahead;
	}
	if (B.verbose)
		logf_("<- %s ,%s%s", path, types, isnan(m->at_local) ? "" : " (timetagged)");
	if (tt_client_post(B.c, handle_in, m) < 0) {
		free(m->address);
		tt_arena_destroy(&m->arena);
		free(m);
	}
	return 0;
}

static void lo_error(int num, const char *msg, const char *where)
{
	logf_("OSC error %d: %s%s%s", num, msg ? msg : "", where ? " at " : "", where ? where : "");
}

/* ---- main ------------------------------------------------------------------------ */

static void on_log(tt_client *c, const char *line, void *user)
{
	(void)c;
	(void)user;
	logf_("%s", line);
}

static void on_open(tt_client *c, bool resumed, void *user)
{
	(void)user;
	static bool observing;
	logf_("connected to %s (session %llu%s)", B.url, (unsigned long long)tt_client_session(c),
	      resumed ? ", resumed" : "");
	if (observing)
		return; /* the library renews the observe after a lost session */
	observing = true;
	tt_error err;
	if (tt_client_observe(c, NULL, on_notice, NULL, NULL, NULL, &err) < 0)
		logf_("observe: %s", err.msg);
}

static void start(tt_client *c, void *user)
{
	(void)user;
	tt_error err;
	if (tt_client_connect(c, &err) < 0)
		logf_("%s", err.msg);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"url", required_argument, 0, 'u'}, {"listen", required_argument, 0, 'l'},
		{"send", required_argument, 0, 's'}, {"bundle", required_argument, 0, 'b'},
		{"config", required_argument, 0, 'c'}, {"no-echo", no_argument, 0, 'E'},
		{"insecure", no_argument, 0, 'k'}, {"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *config = NULL;
	int ch, rc = 2;
	/* the config is read first so that options can add to it */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config"))
			config = argv[i + 1];
	B.url = NULL;
	if (config && load_config(config) < 0) {
		free_config();
		return 2;
	}
	while ((ch = getopt_long(argc, argv, "vhk", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': B.url = optarg; break;
		case 'l': {
			char *end;
			long p = strtol(optarg, &end, 10);
			if (*end || p < 0 || p > 65535) {
				logf_("--listen wants a UDP port (0: none)");
				return 2;
			}
			B.listen = (int)p;
			break;
		}
		case 's': if (add_dest(optarg, false) < 0) return 2; break;
		case 'b': if (add_dest(optarg, true) < 0) return 2; break;
		case 'c': break;
		case 'E': B.echo = false; break;
		case 'k': B.insecure = true; break;
		case 'v': B.verbose = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (!B.url)
		B.url = B.url_owned;
	if (!B.url)
		B.url = getenv("TUTTI_URL") && *getenv("TUTTI_URL") ? getenv("TUTTI_URL") : "ws://127.0.0.1:8000/";
	if (!B.n_rules) {
		static rule everything = {.address = "/{class}/{param}", .in = true, .out = true};
		B.rules = &everything;
		B.n_rules = 1;
	}
	if (!B.n_dest && !B.listen) {
		logf_("nothing to bridge: give --send/--bundle destinations and/or --listen");
		free_config();
		return 2;
	}

	lo_server srv = NULL;
	if (B.listen) {
		char port[8];
		snprintf(port, sizeof(port), "%d", B.listen);
		srv = lo_server_new(port, lo_error);
		if (!srv) {
			logf_("cannot listen on UDP port %d", B.listen);
			free_config();
			return 3;
		}
		/* bundles are handed over at once: a future timetag becomes a
		 * scheduled set on the server, not a wait here */
		lo_server_enable_queue(srv, 0, 1);
		lo_server_add_method(srv, NULL, NULL, osc_handler, NULL);
	}

	tt_client_opts o;
	tt_error err;
	tt_client_opts_init(&o);
	o.url = B.url;
	o.insecure = B.insecure;
	o.on_log = on_log;
	o.on_open = on_open;
	if (tt_client_new(&o, &B.c, &err) < 0) {
		logf_("%s", err.msg);
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tt_client_start(B.c, &err) < 0) {
		logf_("%s", err.msg);
		goto out;
	}
	tt_client_post(B.c, start, NULL);
	logf_("listening for OSC on UDP %d; %u destination(s)", B.listen, B.n_dest);
	while (!B.stop) {
		if (srv)
			lo_server_recv_noblock(srv, 100);
		else {
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	rc = 0;
out:
	tt_client_free(B.c); /* joins the client thread, then the tables are ours */
	while (B.bridged) {
		bridged *b = B.bridged;
		B.bridged = b->next;
		free(b);
	}
	for (size_t i = 0; i < B.n_routes; i++)
		free(B.routes[i].address);
	free(B.routes);
	free(B.sent);
	free(B.known);
	if (srv)
		lo_server_free(srv);
	free_config();
	return rc;
}
