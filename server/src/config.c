/* SPDX-License-Identifier: MIT */
/* config.c: parse the command line. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "schema.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: tutti-server [OPTIONS] [PIECE]\n"
"       tutti-server --init PIECE\n"
"Shared-state sync server for distributed music: serves the web pages and\n"
"the WebSocket protocol tutti.v1 on one port.\n"
"\n"
"PIECE is a piece folder (tutti-server --init makes one): its schemas/,\n"
"web/, tutti.db and tls/ are used, and its tutti.json settings (keys are\n"
"the long option names: {\"host\": \"0.0.0.0\", \"port\": 8000}, plus\n"
"\"roles\" in the shape of roles.json). Options on the command line win.\n"
"\n"
"  --init DIR           make a piece folder from the template, then exit\n"
"  --config FILE        settings from FILE (JSON, as a piece's tutti.json)\n"
"  --host ADDR          address to listen on (default 127.0.0.1; use 0.0.0.0\n"
"                       to let phones on the venue's Wi-Fi connect)\n"
"  --port N             TCP port (default 8000)\n"
"  --schemas DIR        class schemas loaded at start (default ./schemas)\n"
"  --web DIR            files served over HTTP (default ./web)\n"
"  --db PATH            SQLite database, the store of record (default\n"
"                       ./tutti.db); ':memory:' keeps nothing across restarts\n"
"  --sync MODE          'normal' (default: acknowledged updates survive a\n"
"                       crash of the server) or 'full' (also a power loss)\n"
"  --engine URL         keep the states in NATS JetStream instead of --db:\n"
"                       nats://HOST:PORT[,HOST:PORT...][/NAME]; several\n"
"                       tutti-servers on the same URL and NAME serve the\n"
"                       same piece (README: Several nodes)\n"
"  --node-id N          this node's number among those of one --engine,\n"
"                       1 to 63, each its own (default 1)\n"
"  --replicas N         copies JetStream keeps of each message when tutti\n"
"                       creates the stream: 1 (default), or 3 to survive the\n"
"                       loss of a nats-server of a cluster\n"
"  --history N          events kept per state (default 1000)\n"
"  --resume-window S    seconds a disconnected client may resume its session\n"
"                       before its states are deleted (default 60)\n"
"  --keepalive S        ping a client silent for S seconds, drop it after\n"
"                       2.5 x S (default 10: phones on Wi-Fi vanish silently)\n"
"  --max-message BYTES  largest WebSocket message accepted (default 1048576)\n"
"  --max-queue BYTES    outgoing bytes queued per client before it is closed\n"
"                       as a slow consumer (default 4194304)\n"
"  --max-states N       states one session may own (default 1000)\n"
"  --max-instances N    attachments one session may hold (default 1000)\n"
"  --max-classes N      classes in all (default 1000)\n"
"  --max-rate N         messages per second per client, 0 = unlimited\n"
"                       (default 10000)\n"
"\n"
"Security (README: Security; roles come from roles.json in --schemas):\n"
"  --open               trust every client: anyone may create, attach, set\n"
"                       and define, whatever the schema files say (a laptop\n"
"                       ensemble on its own network; never for an audience)\n"
"  --allow-origin O     accept WebSockets from pages of origin O too (e.g.\n"
"                       https://piece.example.org); repeatable; '*' accepts\n"
"                       any (default: only pages this server served)\n"
"  --max-value-bytes B  largest string or any value (default 65536)\n"
"  --max-state-bytes B  all the values of one state (default 1048576)\n"
"  --history-bytes B    history kept per state, in bytes (default 1048576)\n"
"  --max-description B  largest class description (default 65536)\n"
"  --max-sessions N     sessions in all, waiting ones included (default 10000)\n"
"  --max-total-states N states in all (default 100000)\n"
"  --max-conns-per-addr N  connections from one address, 0 = no limit\n"
"                       (default 64; raise it when phones come through NAT)\n"
"  --max-new-sessions-per-addr N  new sessions per minute from one address,\n"
"                       0 = no limit (default 60)\n"
"  --max-connections N  connections in all (default: the open-file limit\n"
"                       less a reserve for the database and files)\n"
"  --max-schedule-ahead S  how far ahead a set may be scheduled (default 86400)\n"
"  --max-schedules N    pending scheduled sets per session (default 100)\n"
"  --hook-timeout S     how long a hook may take to answer before its request\n"
"                       fails with HOOK_FAILED (default 2)\n"
"  --max-memory B       bytes of values, histories and pending schedules in\n"
"                       all; past it, writes that need more are refused\n"
"                       (default 1073741824)\n"
"  --delete-class NAME  delete a class and all its states from the database,\n"
"                       then exit\n"
"  --reset-param C.P    when a schema file changed param P of class C so that\n"
"                       stored values no longer fit it, reset them to the\n"
"                       default instead of refusing to start (repeatable)\n"
"  --https              serve HTTPS (and WSS) with a certificate from a local\n"
"                       authority made once in --tls-dir (phones need HTTPS\n"
"                       for wake lock, motion sensors, microphone); plain\n"
"                       HTTP on the same port is redirected\n"
"  --tls-cert PEM, --tls-key PEM\n"
"                       serve HTTPS with your own certificate and key\n"
"  --tls-dir DIR        where --https keeps its authority and certificate\n"
"                       (default ./tls)\n"
"  --metrics-public     serve /metrics (Prometheus) without an admin role's\n"
"                       token (default: Authorization: Bearer TOKEN or\n"
"                       ?token=TOKEN; the inspector is at /inspect)\n"
"  -v, --verbose        also log debug lines (each connection, libwebsockets'\n"
"                       notices)\n"
"  -q, --quiet          log only warnings and errors\n"
"  --qr, --no-qr        print the QR code of the phones' URL at start, or not\n"
"                       (default: when stdout is a terminal)\n"
"  -h, --help           this help\n");
}

static int num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "tutti-server: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* Every option; a config file's keys are the same long names. */
static const struct option opts[] = {
	{"host", required_argument, 0, 'H'},
	{"port", required_argument, 0, 'p'},
	{"schemas", required_argument, 0, 's'},
	{"web", required_argument, 0, 'w'},
	{"db", required_argument, 0, 'd'},
	{"sync", required_argument, 0, 'S'},
	{"engine", required_argument, 0, 1024},
	{"node-id", required_argument, 0, 1025},
	{"replicas", required_argument, 0, 1026},
	{"history", required_argument, 0, 'y'},
	{"resume-window", required_argument, 0, 'r'},
	{"keepalive", required_argument, 0, 'k'},
	{"max-message", required_argument, 0, 'm'},
	{"max-queue", required_argument, 0, 1015},
	{"max-states", required_argument, 0, 't'},
	{"max-instances", required_argument, 0, 'i'},
	{"max-classes", required_argument, 0, 'c'},
	{"max-rate", required_argument, 0, 'R'},
	{"delete-class", required_argument, 0, 'D'},
	{"open", no_argument, 0, 'O'},
	{"allow-origin", required_argument, 0, 'a'},
	{"max-value-bytes", required_argument, 0, 1001},
	{"max-state-bytes", required_argument, 0, 1002},
	{"history-bytes", required_argument, 0, 1003},
	{"max-description", required_argument, 0, 1004},
	{"max-sessions", required_argument, 0, 1005},
	{"max-total-states", required_argument, 0, 1006},
	{"max-conns-per-addr", required_argument, 0, 1007},
	{"max-new-sessions-per-addr", required_argument, 0, 1008},
	{"max-connections", required_argument, 0, 1009},
	{"max-schedule-ahead", required_argument, 0, 1010},
	{"max-schedules", required_argument, 0, 1011},
	{"max-memory", required_argument, 0, 1012},
	{"hook-timeout", required_argument, 0, 1013},
	{"reset-param", required_argument, 0, 1014},
	{"verbose", no_argument, 0, 'v'},
	{"quiet", no_argument, 0, 'q'},
	{"qr", no_argument, 0, 1016},
	{"no-qr", no_argument, 0, 1017},
	{"config", required_argument, 0, 1018},
	{"init", required_argument, 0, 1019},
	{"https", no_argument, 0, 1020},
	{"tls-cert", required_argument, 0, 1021},
	{"tls-key", required_argument, 0, 1022},
	{"tls-dir", required_argument, 0, 1023},
	{"metrics-public", no_argument, 0, 1027},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0}};

static void defaults(tt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = "127.0.0.1";
	cfg->port = 8000;
	cfg->schemas = "schemas";
	cfg->web = "web";
	cfg->db = "tutti.db";
	cfg->tls_dir = "tls";
	cfg->max_message = 1 << 20;
	cfg->max_queue = 4 << 20;
	cfg->history = 1000;
	cfg->resume_window = 60;
	cfg->keepalive = 10;
	cfg->max_states = 1000;
	cfg->max_instances = 1000;
	cfg->max_classes = 1000;
	cfg->max_rate = 10000; /* far above a person or a 1 kHz sensor, far below a flood */
	cfg->max_value_bytes = 64 << 10;
	cfg->max_state_bytes = 1 << 20;
	cfg->history_bytes = 1 << 20;
	cfg->max_description = 64 << 10;
	cfg->max_sessions = 10000;
	cfg->max_total_states = 100000;
	cfg->max_conns_per_addr = 64;
	cfg->max_new_sessions_per_addr = 60;
	cfg->max_schedule_ahead = 86400;
	cfg->max_schedules = 100;
	cfg->max_memory = (uint64_t)1 << 30;
	cfg->hook_timeout = 2;
	cfg->node_id = 1;
	cfg->replicas = 1;
}

/* Apply the options of argv (argv[0] is skipped), later ones winning. */
static int apply(tt_config *cfg, int argc, char **argv)
{
	optind = 1;
	int c;
	double v;
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		const char *name = "";
		for (const struct option *o = opts; o->name; o++)
			if (o->val == c)
				name = o->name;
		switch (c) {
		case 'H': cfg->host = optarg; break;
		case 's': cfg->schemas = optarg; break;
		case 'w': cfg->web = optarg; break;
		case 'd': cfg->db = optarg; break;
		case 'D': cfg->delete_class = optarg; break;
		case 'S':
			if (strcmp(optarg, "full") && strcmp(optarg, "normal")) {
				fprintf(stderr, "tutti-server: --sync: 'normal' or 'full', not '%s'\n", optarg);
				return -1;
			}
			cfg->sync_full = strcmp(optarg, "full") == 0;
			break;
		case 'p':
			if (num(name, optarg, 0, 65535, &v)) return -1;
			cfg->port = (int)v;
			break;
		case 'y':
			if (num(name, optarg, 1, 10000000, &v)) return -1;
			cfg->history = (uint32_t)v;
			break;
		case 'r':
			if (num(name, optarg, 0, 7 * 86400, &v)) return -1;
			cfg->resume_window = v;
			break;
		case 'k':
			if (num(name, optarg, 0.5, 3600, &v)) return -1;
			cfg->keepalive = v;
			break;
		case 'm':
			if (num(name, optarg, 1024, 256.0 * 1024 * 1024, &v)) return -1;
			cfg->max_message = (size_t)v;
			break;
		case 1015:
			if (num(name, optarg, 4096, 1024.0 * 1024 * 1024, &v)) return -1;
			cfg->max_queue = (size_t)v;
			break;
		case 't':
			if (num(name, optarg, 1, 10000000, &v)) return -1;
			cfg->max_states = (uint32_t)v;
			break;
		case 'i':
			if (num(name, optarg, 1, 10000000, &v)) return -1;
			cfg->max_instances = (uint32_t)v;
			break;
		case 'c':
			if (num(name, optarg, 1, 1000000, &v)) return -1;
			cfg->max_classes = (uint32_t)v;
			break;
		case 'R':
			if (num(name, optarg, 0, 100000000, &v)) return -1;
			cfg->max_rate = (uint32_t)v;
			break;
		case 'O': cfg->open = true; break;
		case 'a':
			if (cfg->n_allow_origin == TT_MAX_ORIGINS) {
				fprintf(stderr, "tutti-server: at most %d --allow-origin\n", TT_MAX_ORIGINS);
				return -1;
			}
			cfg->allow_origin[cfg->n_allow_origin++] = optarg;
			break;
		case 1001: if (num(name, optarg, 16, 256.0 * 1024 * 1024, &v)) return -1;
			cfg->max_value_bytes = (uint32_t)v; break;
		case 1002: if (num(name, optarg, 16, 1024.0 * 1024 * 1024, &v)) return -1;
			cfg->max_state_bytes = (uint32_t)v; break;
		case 1003: if (num(name, optarg, 1024, 1024.0 * 1024 * 1024, &v)) return -1;
			cfg->history_bytes = (uint32_t)v; break;
		case 1004: if (num(name, optarg, 1024, 256.0 * 1024 * 1024, &v)) return -1;
			cfg->max_description = (uint32_t)v; break;
		case 1005: if (num(name, optarg, 1, 10000000, &v)) return -1;
			cfg->max_sessions = (uint32_t)v; break;
		case 1006: if (num(name, optarg, 1, 100000000, &v)) return -1;
			cfg->max_total_states = (uint32_t)v; break;
		case 1007: if (num(name, optarg, 0, 10000000, &v)) return -1;
			cfg->max_conns_per_addr = (uint32_t)v; break;
		case 1008: if (num(name, optarg, 0, 10000000, &v)) return -1;
			cfg->max_new_sessions_per_addr = (uint32_t)v; break;
		case 1009: if (num(name, optarg, 0, 10000000, &v)) return -1;
			cfg->max_connections = (uint32_t)v; break;
		case 1010: if (num(name, optarg, 1, 1e9, &v)) return -1;
			cfg->max_schedule_ahead = v; break;
		case 1011: if (num(name, optarg, 1, 10000000, &v)) return -1;
			cfg->max_schedules = (uint32_t)v; break;
		case 1012: if (num(name, optarg, 1 << 20, 1e15, &v)) return -1;
			cfg->max_memory = (uint64_t)v; break;
		case 1013: if (num(name, optarg, 0.01, 3600, &v)) return -1;
			cfg->hook_timeout = v; break;
		case 1014:
			if (cfg->n_reset_params == TT_MAX_ORIGINS || !strchr(optarg, '.')) {
				fprintf(stderr, "tutti-server: --reset-param CLASS.PARAM (at most %d)\n",
					TT_MAX_ORIGINS);
				return -1;
			}
			cfg->reset_params[cfg->n_reset_params++] = optarg;
			break;
		case 'v': cfg->verbose = 1; break;
		case 'q': cfg->verbose = -1; break;
		case 1016: cfg->qr = 1; break;
		case 1017: cfg->qr = -1; break;
		case 1018: break; /* read before (tt_config_parse) */
		case 1019: cfg->init = optarg; break;
		case 1020: cfg->https = true; break;
		case 1021: cfg->tls_cert = optarg; break;
		case 1022: cfg->tls_key = optarg; break;
		case 1023: cfg->tls_dir = optarg; break;
		case 1024:
			if (strncmp(optarg, "nats://", 7) != 0) {
				fprintf(stderr, "tutti-server: --engine: nats://HOST:PORT is the engine "
						"known (not '%s'); without --engine, --db is SQLite\n", optarg);
				return -1;
			}
			cfg->engine = optarg;
			break;
		case 1025: if (num(name, optarg, 1, 63, &v)) return -1;
			cfg->node_id = (uint32_t)v; break;
		case 1026: if (num(name, optarg, 1, 5, &v)) return -1;
			cfg->replicas = (uint32_t)v; break;
		case 1027: cfg->metrics_public = true; break;
		case 'h': usage(stdout); return 1;
		default:
			fprintf(stderr, "Try 'tutti-server --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tutti-server: unexpected argument '%s'\nTry 'tutti-server --help'.\n",
			argv[optind]);
		return -1;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "tutti-server: --tls-cert and --tls-key go together\n");
		return -1;
	}
	if (cfg->tls_cert && cfg->https) {
		fprintf(stderr, "tutti-server: --https makes its own certificate; with --tls-cert "
				"and --tls-key, leave --https out\n");
		return -1;
	}
	return 0;
}

/* ---- the argument list: piece folder, config file, command line ---------- */

static char *strdup_(const char *s)
{
	return tt_strndup(s, strlen(s));
}

/* Strings made here live as long as the configuration. */
void tt_config_free(void);

static struct {
	char **args;
	int n, cap;
	tt_arena arena; /* the config file's tree: cfg->roles points into it */
	bool arena_live;
	char *config_path;
} A;

static void push(const char *s)
{
	if (A.n + 1 >= A.cap) {
		A.cap = A.cap ? 2 * A.cap : 64;
		A.args = tt_realloc(A.args, (size_t)A.cap * sizeof(*A.args));
	}
	A.args[A.n++] = strdup_(s);
	A.args[A.n] = NULL;
}

/* dir/rel, or rel when it is absolute or dir is empty. */
static void push_path(const char *dir, const char *rel)
{
	if (!dir || !*dir || rel[0] == '/') {
		push(rel);
		return;
	}
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = tt_malloc(n);
	snprintf(p, n, "%s/%s", dir, rel);
	push(p);
	free(p);
}

static const struct option *find_opt(const char *name, size_t n)
{
	for (const struct option *o = opts; o->name; o++)
		if (strlen(o->name) == n && !memcmp(o->name, name, n))
			return o;
	return NULL;
}

static bool is_path_opt(const char *name)
{
	static const char *const paths[] = {"schemas", "web", "db", "tls-cert", "tls-key", "tls-dir"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		if (!strcmp(name, paths[i]))
			return true;
	return false;
}

/* One key of the config file as options: a string or number is the value,
 * true is the flag itself (false: left out), an array repeats the option. */
static int push_key(const char *path, const char *dir, const struct option *o, const tt_value *v)
{
	char flag[64], num[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	if (o->has_arg == no_argument) {
		if (v->type != TT_BOOL) {
			fprintf(stderr, "tutti-server: %s: \"%s\" is true or false\n", path, o->name);
			return -1;
		}
		if (v->v.b)
			push(flag);
		return 0;
	}
	if (v->type == TT_ARRAY) {
		for (uint32_t i = 0; i < v->len; i++)
			if (v->v.items[i].type == TT_ARRAY || push_key(path, dir, o, &v->v.items[i]) < 0)
				return -1;
		return 0;
	}
	double d;
	if (v->type == TT_STR) {
		char *s = tt_strndup(v->v.s, v->len);
		push(flag);
		if (is_path_opt(o->name))
			push_path(dir, s);
		else
			push(s);
		free(s);
	} else if (tt_as_double(v, &d)) {
		snprintf(num, sizeof(num), "%.17g", d);
		push(flag);
		push(num);
	} else {
		fprintf(stderr, "tutti-server: %s: \"%s\" takes a string or a number\n", path, o->name);
		return -1;
	}
	return 0;
}

static int load_config(tt_config *cfg, const char *path)
{
	tt_error err;
	tt_arena_init(&A.arena, 0);
	A.arena_live = true;
	tt_value root;
	if (tt_json_load_file(path, &A.arena, &root, &err) < 0) {
		fprintf(stderr, "tutti-server: %s\n", err.msg);
		return -1;
	}
	if (root.type != TT_MAP) {
		fprintf(stderr, "tutti-server: %s: expected an object of settings, "
				"{\"host\": \"0.0.0.0\", \"port\": 8000, ...}\n", path);
		return -1;
	}
	/* paths in the file are relative to the file's folder */
	char *dir = strdup_(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	/* the names a misspelt key may have meant */
	const char *names[sizeof(opts) / sizeof(*opts) + 1];
	size_t n_names = 0;
	for (const struct option *o = opts; o->name; o++)
		names[n_names++] = o->name;
	names[n_names++] = "roles";
	int rc = 0;
	for (uint32_t i = 0; i < root.len && rc == 0; i++) {
		const tt_value *k = &root.v.pairs[i].key, *v = &root.v.pairs[i].val;
		if (k->type != TT_STR)
			continue;
		if (tt_str_eq(k, "roles")) {
			cfg->roles = v;
			continue;
		}
		const struct option *o = find_opt(k->v.s, k->len);
		/* what only makes sense on a command line */
		bool cli_only = o && (!strcmp(o->name, "config") || !strcmp(o->name, "init") ||
				      !strcmp(o->name, "help") || !strcmp(o->name, "delete-class"));
		if (!o || cli_only) {
			const char *near = tt_nearest(k->v.s, k->len, names, n_names);
			fprintf(stderr, "tutti-server: %s: unknown setting \"%.*s\"%s%s%s\n", path,
				(int)TT_MIN(k->len, 64u), k->v.s, near ? " (did you mean \"" : "",
				near ? near : "", near ? "\"?)" : cli_only ? " (command line only)" : "");
			rc = -1;
			break;
		}
		rc = push_key(path, dir, o, v);
	}
	free(dir);
	return rc;
}

int tt_config_parse(tt_config *cfg, int argc, char **argv)
{
	tt_config_free(); /* an earlier parse's strings */
	defaults(cfg);
	/* first look: --config, --help and a piece folder; unknown options are
	 * reported here */
	const char *config = NULL;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			fprintf(stderr, "Try 'tutti-server --help'.\n");
			return -1;
		}
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 1018)
			config = optarg;
	}
	/* getopt moved the operands last: argv[optind..] */
	int n_opts = optind;
	const char *piece = NULL;
	if (argc - optind > 1) {
		fprintf(stderr, "tutti-server: one piece folder at most, not '%s' and '%s'\n",
			argv[optind], argv[optind + 1]);
		return -1;
	}
	if (optind < argc) {
		struct stat sb;
		piece = argv[optind];
		if (stat(piece, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "tutti-server: '%s' is not a folder (a piece folder, as "
					"tutti-server --init makes)\nTry 'tutti-server --help'.\n", piece);
			return -1;
		}
	}
	push(argv[0]);
	if (piece) {
		/* a piece folder: its schemas, pages, database and certificates */
		push("--schemas");
		push_path(piece, "schemas");
		push("--web");
		push_path(piece, "web");
		push("--db");
		push_path(piece, "tutti.db");
		push("--tls-dir");
		push_path(piece, "tls");
		char path[4096];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/tutti.json", piece);
		if (!config && stat(path, &sb) == 0)
			config = A.config_path = strdup_(path);
	}
	if (config && load_config(cfg, config) < 0)
		return -1;
	cfg->config = config;
	/* the command line last: it wins */
	for (int i = 1; i < n_opts; i++)
		push(argv[i]);
	return apply(cfg, A.n, A.args);
}

void tt_config_free(void)
{
	for (int i = 0; i < A.n; i++)
		free(A.args[i]);
	free(A.args);
	free(A.config_path);
	if (A.arena_live)
		tt_arena_destroy(&A.arena);
	memset(&A, 0, sizeof(A));
}
