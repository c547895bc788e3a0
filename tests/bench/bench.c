/* SPDX-License-Identifier: MIT */
/* bench.c: tutti-bench, the load generator that measures the server
 * (performance is measured here, never by timed tests).
 *
 * It starts the server it measures (or measures one at --url), opens all its
 * clients in this one process, and prints one JSON line per scenario.
 *
 * Why a hand-written WebSocket client on epoll rather than libwebsockets'
 * client API: the clients must stay cheaper than the server they load, on one
 * core, with up to 10,000 sockets. Debian's lws 4.1.6 services its sockets
 * with poll() (Debian builds the libuv/libev loops as optional plugins),
 * so every wake-up scans every fd, O(N) per turn at 10,000 connections; and
 * it costs a callback plus its own rx buffering per message (a naive lws
 * server measured here delivered ~190-225k messages per CPU-second). This
 * client does one epoll_wait per batch of ready sockets, one recv() per ready
 * socket into a shared buffer, and parses frames in place (server frames are
 * unmasked; several msgpack messages may share one frame). Measured on this
 * machine (2026-11-22, 500 subscribers, closed-loop writer, client on CPU 1):
 * a minimal lws 4.1.6 client that only counts UPDATEs (no decoding) spent
 * 4.3 us of CPU per update; this client, decoding every UPDATE, checking seq
 * and recording latency, 2.9 us (and its writer on top). The bench_cpu_util
 * field of each JSON line shows the clients' core never saturates first.
 *
 * Decoding: UPDATEs [66, stateId, seq, time, {seq, t, ...}] go through a tiny
 * parser for that one shape (--decode-bench times it against tt_decode: 60 ns
 * against 320 ns per UPDATE on this machine); everything else (RESULTs,
 * ERRORs) through the project's tt_decode. Requests are encoded with the
 * project's tt_enc_*. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "codec.h"
#include "protocol.h"
#include "value.h"

#define CLASS_NAME "tutti-bench"
#define RID_SET0 1000 /* set reqIds start here (1..999: setup requests) */
/* The hooked scenario's hook client takes this role: roles.json in the
 * started server's schemas directory gives it "hooks": true and a token of
 * its own (with --url: --hook-role and --hook-token). */
#define HOOK_ROLE "bench-hooks"

/* ---- small utilities -------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool g_quiet;

__attribute__((format(printf, 1, 2))) static void info(const char *fmt, ...)
{
	if (g_quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("tutti-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void warnx_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tutti-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		warnx_("out of memory");
		abort();
	}
	return q;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p) {
		warnx_("out of memory");
		abort();
	}
	return p;
}

/* ---- latency histogram: log-linear, 1/64 relative precision, in ns ----- */

#define H_BUCKETS (128 + 58 * 64)

typedef struct hist {
	uint64_t n, max;
	uint64_t b[H_BUCKETS];
} hist;

static unsigned h_index(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 6;
	unsigned idx = 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
	return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

static double h_value(unsigned idx) /* bucket middle, ns */
{
	if (idx < 128)
		return idx;
	unsigned shift = (idx - 128) / 64 + 1;
	uint64_t mant = (idx - 128) % 64 + 64;
	return (double)(mant << shift) + (double)((uint64_t)1 << shift) / 2;
}

static void h_add(hist *h, double seconds)
{
	uint64_t ns = seconds > 0 ? (uint64_t)(seconds * 1e9) : 0;
	h->b[h_index(ns)]++;
	h->n++;
	if (ns > h->max)
		h->max = ns;
}

static double h_pct_ms(const hist *h, double p)
{
	if (!h->n)
		return -1;
	uint64_t want = (uint64_t)ceil(p * (double)h->n);
	if (want < 1)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want) {
			double v = h_value(i);
			if (v > (double)h->max)
				v = (double)h->max;
			return v / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---- a tiny msgpack reader: the fast path for UPDATEs ------------------ */

typedef struct mpr {
	const uint8_t *p, *e;
} mpr;

static uint64_t be_n(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static bool mp_need(const mpr *r, size_t n)
{
	return (size_t)(r->e - r->p) >= n;
}

static bool mp_uint(mpr *r, uint64_t *v)
{
	if (!mp_need(r, 1))
		return false;
	uint8_t b = r->p[0];
	int n;
	if (b <= 0x7f) {
		*v = b;
		r->p++;
		return true;
	}
	switch (b) {
	case 0xcc: case 0xd0: n = 1; break;
	case 0xcd: case 0xd1: n = 2; break;
	case 0xce: case 0xd2: n = 4; break;
	case 0xcf: case 0xd3: n = 8; break;
	default: return false;
	}
	if (!mp_need(r, (size_t)n + 1))
		return false;
	uint64_t x = be_n(r->p + 1, n);
	if (b >= 0xd0 && (x >> (n * 8 - 1)) & 1)
		return false; /* negative */
	*v = x;
	r->p += n + 1;
	return true;
}

static bool mp_num(mpr *r, double *v)
{
	if (!mp_need(r, 1))
		return false;
	uint8_t b = r->p[0];
	if (b == 0xcb) {
		if (!mp_need(r, 9))
			return false;
		uint64_t x = be_n(r->p + 1, 8);
		memcpy(v, &x, 8);
		r->p += 9;
		return true;
	}
	if (b == 0xca) {
		if (!mp_need(r, 5))
			return false;
		uint32_t x = (uint32_t)be_n(r->p + 1, 4);
		float f;
		memcpy(&f, &x, 4);
		*v = f;
		r->p += 5;
		return true;
	}
	uint64_t u;
	if (!mp_uint(r, &u))
		return false;
	*v = (double)u;
	return true;
}

static bool mp_hdr(mpr *r, uint8_t fix_lo, uint8_t fix_hi, uint8_t b16, uint8_t b32, uint8_t b8,
		   uint32_t *n)
{
	if (!mp_need(r, 1))
		return false;
	uint8_t b = r->p[0];
	int w;
	if (b >= fix_lo && b <= fix_hi) {
		*n = b - fix_lo;
		r->p++;
		return true;
	}
	if (b8 && b == b8)
		w = 1;
	else if (b == b16)
		w = 2;
	else if (b == b32)
		w = 4;
	else
		return false;
	if (!mp_need(r, (size_t)w + 1))
		return false;
	*n = (uint32_t)be_n(r->p + 1, w);
	r->p += w + 1;
	return true;
}

static bool mp_array(mpr *r, uint32_t *n) { return mp_hdr(r, 0x90, 0x9f, 0xdc, 0xdd, 0, n); }
static bool mp_map(mpr *r, uint32_t *n) { return mp_hdr(r, 0x80, 0x8f, 0xde, 0xdf, 0, n); }

static bool mp_str(mpr *r, const uint8_t **s, uint32_t *n)
{
	if (!mp_hdr(r, 0xa0, 0xbf, 0xda, 0xdb, 0xd9, n) || !mp_need(r, *n))
		return false;
	*s = r->p;
	r->p += *n;
	return true;
}

/* Skip one value of any type. */
static bool mp_skip(mpr *r, int depth)
{
	if (!mp_need(r, 1) || depth > 64)
		return false;
	uint8_t b = r->p[0];
	uint64_t skip = 0, items = 0;
	int hdr;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
		hdr = 1;
	} else if (b >= 0xa0 && b <= 0xbf) {
		hdr = 1, skip = b - 0xa0u;
	} else if (b >= 0x90 && b <= 0x9f) {
		hdr = 1, items = b - 0x90u;
	} else if (b >= 0x80 && b <= 0x8f) {
		hdr = 1, items = 2u * (b - 0x80u);
	} else {
		switch (b) {
		case 0xcc: case 0xd0: hdr = 2; break;
		case 0xcd: case 0xd1: hdr = 3; break;
		case 0xce: case 0xd2: case 0xca: hdr = 5; break;
		case 0xcf: case 0xd3: case 0xcb: hdr = 9; break;
		case 0xd4: hdr = 3; break;
		case 0xd5: hdr = 4; break;
		case 0xd6: hdr = 6; break;
		case 0xd7: hdr = 10; break;
		case 0xd8: hdr = 18; break;
		case 0xc4: case 0xd9: hdr = 2; break;
		case 0xc5: case 0xda: hdr = 3; break;
		case 0xc6: case 0xdb: hdr = 5; break;
		case 0xc7: hdr = 3; break;
		case 0xc8: hdr = 4; break;
		case 0xc9: hdr = 6; break;
		case 0xdc: hdr = 3; break;
		case 0xdd: hdr = 5; break;
		case 0xde: hdr = 3; break;
		case 0xdf: hdr = 5; break;
		default: return false;
		}
		if (!mp_need(r, (size_t)hdr))
			return false;
		switch (b) {
		case 0xc4: case 0xd9: skip = r->p[1]; break;
		case 0xc5: case 0xda: skip = be_n(r->p + 1, 2); break;
		case 0xc6: case 0xdb: skip = be_n(r->p + 1, 4); break;
		case 0xc7: skip = (uint64_t)r->p[1] + 1; break;
		case 0xc8: skip = be_n(r->p + 1, 2) + 1; break;
		case 0xc9: skip = be_n(r->p + 1, 4) + 1; break;
		case 0xdc: items = be_n(r->p + 1, 2); break;
		case 0xdd: items = be_n(r->p + 1, 4); break;
		case 0xde: items = 2 * be_n(r->p + 1, 2); break;
		case 0xdf: items = 2 * be_n(r->p + 1, 4); break;
		default: break;
		}
	}
	if (!mp_need(r, (size_t)hdr + skip))
		return false;
	r->p += (size_t)hdr + skip;
	for (uint64_t i = 0; i < items; i++)
		if (!mp_skip(r, depth + 1))
			return false;
	return true;
}

typedef struct upd {
	uint64_t state, seq, pseq;
	double time, t;
	bool has_pseq, has_t;
} upd;

/* [66, stateId, seq, time, changes] with changes' seq and t picked out.
 * Returns the bytes used, 0 when the input is not that shape. */
static size_t parse_update(const uint8_t *p, size_t n, upd *u)
{
	mpr r = {p, p + n};
	uint32_t len, m;
	uint64_t type;
	if (!mp_array(&r, &len) || len != 5 || !mp_uint(&r, &type) || type != TT_MSG_UPDATE ||
	    !mp_uint(&r, &u->state) || !mp_uint(&r, &u->seq) || !mp_num(&r, &u->time) ||
	    !mp_map(&r, &m))
		return 0;
	u->has_pseq = u->has_t = false;
	for (uint32_t i = 0; i < m; i++) {
		const uint8_t *k;
		uint32_t kl;
		if (!mp_str(&r, &k, &kl))
			return 0;
		if (kl == 3 && memcmp(k, "seq", 3) == 0) {
			if (!mp_uint(&r, &u->pseq))
				return 0;
			u->has_pseq = true;
		} else if (kl == 1 && k[0] == 't') {
			if (!mp_num(&r, &u->t))
				return 0;
			u->has_t = true;
		} else if (!mp_skip(&r, 1)) {
			return 0;
		}
	}
	return (size_t)(r.p - p);
}

/* ---- options ---------------------------------------------------------- */

#define MAX_LIST 16

static struct {
	const char *server;  /* binary to start, NULL with --url */
	const char *url;
	const char *db;
	pid_t ext_pid;       /* --pid: a running server's pid, for RSS/CPU */
	uint32_t subs[MAX_LIST], n_subs;
	uint32_t conns[MAX_LIST], n_conns;
	double rates[MAX_LIST];
	uint32_t n_rates;
	double duration, warmup;
	uint32_t history, joins, payload, inflight;
	size_t max_queue;
	bool no_pin, decode_bench;
	double p99_bound_ms; /* open_loop keeps up only with p99 at most this */
	const char *server_args[16]; /* --server-arg, appended to the server's arguments */
	uint32_t n_server_args;
	const char *hook_role, *hook_token; /* the hooked scenario's hook client */
	char hook_token_buf[40];
} O;

/* Does the server know per-address limits (a build from before them does
 * not, and refuses the flags that lift them)? Asked once, from --help. */
static bool server_has_limits(void)
{
	static int known = -1;
	if (known < 0) {
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "'%s' --help 2>/dev/null", O.server);
		FILE *p = popen(cmd, "r");
		char line[512];
		known = 0;
		while (p && fgets(line, sizeof(line), p))
			if (strstr(line, "--max-conns-per-addr"))
				known = 1;
		if (p)
			pclose(p);
	}
	return known == 1;
}

/* ---- the server under test -------------------------------------------- */

static struct {
	pid_t pid;          /* the server we started, or --pid, or 0 */
	bool spawned;
	char host[256];
	int port;
	char path[512];     /* request path */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* --url a,b,c: several nodes of one piece; the writer and the hook
	 * client use the first, subscribers go round robin, a late joiner
	 * uses the last (one that did not write) */
	struct sockaddr_storage addrs[8];
	socklen_t addrlens[8];
	uint32_t n_addrs, next_addr;
	char tmpdir[64];    /* empty schemas/web dir for a spawned server */
	char log[128];      /* its stderr */
	bool pinned;
	const char *pinning;
} SV;

static long proc_status_kb(pid_t pid, const char *key)
{
	if (pid <= 0)
		return -1;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* utime + stime of a process in seconds, -1 when unknown. */
static double proc_cpu_s(pid_t pid)
{
	if (pid <= 0)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* fields after comm: state(3) ppid ... utime is field 14, stime 15 */
	unsigned long ut = 0, st = 0;
	int field = 2;
	char *save = NULL;
	for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14)
			ut = strtoul(tok, NULL, 10);
		else if (field == 15) {
			st = strtoul(tok, NULL, 10);
			break;
		}
	}
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* The port a server started with --port 0 logged ("listening on
 * http://HOST:PORT ..."), read from its log past byte `from` (the log is
 * appended to by every server of the run); 0 while it is not there yet.
 * Asking the kernel for a port and reading it back leaves no window in which
 * another process could take the port, as probing a free one first would. */
static int logged_port(off_t from)
{
	FILE *f = fopen(SV.log, "r");
	char line[512];
	int port = 0;
	if (!f)
		return 0;
	if (fseeko(f, from, SEEK_SET) == 0) {
		while (!port && fgets(line, sizeof(line), f)) {
			const char *l = strstr(line, "listening on http://");
			const char *sp = l ? strchr(l + 20, ' ') : NULL;
			const char *colon = sp ? memrchr(l + 20, ':', (size_t)(sp - (l + 20))) : NULL;
			if (colon)
				port = atoi(colon + 1);
		}
	}
	fclose(f);
	return port;
}

static bool resolve(void)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", SV.port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(SV.host, port, &hints, &res) != 0)
		return false;
	memcpy(&SV.addr, res->ai_addr, res->ai_addrlen);
	SV.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

static bool parse_one_url(const char *url);

/* A comma-separated list of ws:// URLs (several nodes of one piece). */
static bool parse_url(const char *list)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s", list);
	SV.n_addrs = 0;
	for (char *save = NULL, *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		if (SV.n_addrs == sizeof(SV.addrs) / sizeof(*SV.addrs)) {
			warnx_("--url: at most %zu URLs", sizeof(SV.addrs) / sizeof(*SV.addrs));
			return false;
		}
		if (!parse_one_url(u))
			return false;
		SV.addrs[SV.n_addrs] = SV.addr;
		SV.addrlens[SV.n_addrs++] = SV.addrlen;
	}
	if (!SV.n_addrs)
		return false;
	SV.addr = SV.addrs[0];
	SV.addrlen = SV.addrlens[0];
	return true;
}

static bool parse_one_url(const char *url)
{
	const char *p = url;
	if (strncmp(p, "ws://", 5) != 0) {
		warnx_("--url: only ws://HOST:PORT/PATH is supported");
		return false;
	}
	p += 5;
	const char *slash = strchr(p, '/');
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);
	char hostport[200];
	if (hl >= sizeof(hostport))
		return false;
	memcpy(hostport, p, hl);
	hostport[hl] = 0;
	snprintf(SV.path, sizeof(SV.path), "%s", slash ? slash : "/");
	char *colon = strrchr(hostport, ':');
	SV.port = 80;
	if (colon) {
		*colon = 0;
		SV.port = atoi(colon + 1);
	}
	snprintf(SV.host, sizeof(SV.host), "%s", hostport);
	return resolve();
}

static int ncpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static bool pin_to(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) == 0;
}

static bool port_open(void)
{
	int fd = socket(SV.addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&SV.addr, SV.addrlen) == 0;
	close(fd);
	return ok;
}

static void server_stop(void);

static bool server_start(uint32_t history, size_t max_queue)
{
	if (!SV.spawned)
		return true;
	struct stat log_st;
	off_t log_from = stat(SV.log, &log_st) == 0 ? log_st.st_size : 0;
	char histv[16], mq[32];
	SV.port = 0;
	snprintf(histv, sizeof(histv), "%u", history < 1000 ? 1000 : history);
	snprintf(mq, sizeof(mq), "%zu", max_queue);
	const char *argv[64];
	int a = 0;
	argv[a++] = O.server;
	argv[a++] = "--host";
	argv[a++] = "127.0.0.1";
	argv[a++] = "--port";
	argv[a++] = "0";
	argv[a++] = "--db";
	argv[a++] = O.db ? O.db : ":memory:";
	argv[a++] = "--max-rate";
	argv[a++] = "0";
	argv[a++] = "--schemas";
	argv[a++] = SV.tmpdir;
	argv[a++] = "--web";
	argv[a++] = SV.tmpdir;
	argv[a++] = "--history";
	argv[a++] = histv;
	if (max_queue) {
		argv[a++] = "--max-queue";
		argv[a++] = mq;
	}
	if (server_has_limits()) {
		/* every bench client comes from 127.0.0.1, thousands of them, and
		 * the bench defines its class over the wire */
		static const char *const lift[] = {"--open", "--max-conns-per-addr", "0",
			"--max-new-sessions-per-addr", "0", "--max-sessions", "10000000",
			"--max-instances", "10000000", "--max-states", "10000000"};
		for (size_t i = 0; i < sizeof(lift) / sizeof(*lift); i++)
			argv[a++] = lift[i];
	}
	for (uint32_t i = 0; i < O.n_server_args; i++)
		argv[a++] = O.server_args[i];
	argv[a] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		if (SV.pinned)
			pin_to(0, 0);
		int log = open(SV.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		if (log >= 0)
			dup2(log, 2);
		signal(SIGPIPE, SIG_DFL);
		execv(O.server, (char *const *)argv);
		_exit(127);
	}
	SV.pid = pid;
	double t0 = now_s();
	while (now_s() - t0 < 10) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			warnx_("server %s exited at start (see %s)", O.server, SV.log);
			SV.pid = 0;
			return false;
		}
		if (!SV.port && (SV.port = logged_port(log_from)) > 0 && !resolve()) {
			warnx_("cannot resolve %s:%d", SV.host, SV.port);
			server_stop();
			return false;
		}
		if (SV.port && port_open())
			return true;
		usleep(5000);
	}
	warnx_("server did not listen within 10 s (port %d; see %s)", SV.port, SV.log);
	server_stop();
	return false;
}

static bool g_server_died;

/* False (and says why) when the server we started has gone. */
static bool server_alive(void)
{
	if (!SV.spawned || SV.pid <= 0)
		return true;
	int st;
	if (waitpid(SV.pid, &st, WNOHANG) != SV.pid)
		return true;
	if (WIFSIGNALED(st))
		warnx_("the server died of signal %d (log: %s)", WTERMSIG(st), SV.log);
	else
		warnx_("the server exited with status %d (log: %s)", WEXITSTATUS(st), SV.log);
	SV.pid = 0;
	g_server_died = true;
	return false;
}

static void server_stop(void)
{
	if (!SV.spawned || SV.pid <= 0)
		return;
	kill(SV.pid, SIGTERM);
	double t0 = now_s();
	int st;
	while (now_s() - t0 < 5) {
		if (waitpid(SV.pid, &st, WNOHANG) == SV.pid) {
			SV.pid = 0;
			return;
		}
		usleep(5000);
	}
	kill(SV.pid, SIGKILL);
	waitpid(SV.pid, &st, 0);
	SV.pid = 0;
}

/* ---- connections ------------------------------------------------------ */

enum { C_NEW, C_CONNECTING, C_UPGRADING, C_OPEN, C_CLOSED };
enum { R_WRITER, R_SUB, R_JOIN, R_SLOW, R_HOOK };

typedef struct conn {
	int fd;
	uint8_t state, role;
	bool out_armed, paused, in_frag, counted_open;
	int close_code;         /* -1: open; 0: dropped without a close frame */
	uint8_t *rx;            /* bytes not yet parsed */
	uint32_t rx_len, rx_cap;
	uint8_t *tx;            /* bytes not yet sent */
	uint32_t tx_len, tx_cap, tx_off;
	uint8_t *fm;            /* a fragmented message being reassembled */
	uint32_t fm_len, fm_cap;
	uint64_t instance;
	uint64_t last_seq;      /* last seq seen (attach result, then updates) */
	uint64_t got;           /* updates received */
	double t_start, t_open, t_hello, t_attach;
	uint32_t attach_bytes;
	bool hello_ok, attached, join_values_ok, join_history_ok;
} conn;

static struct {
	int epfd;
	conn **c;
	uint32_t n, cap;
	uint32_t next_start;    /* index of the next C_NEW to start */
	uint32_t inflight;      /* connecting or upgrading */
	uint32_t opened, attached, failed, closed;
	uint8_t *rb;            /* shared read buffer */
	size_t rb_cap;
	tt_decoder *dec;
	tt_arena arena;
	tt_buf enc;
	uint32_t mask_state;
	char *payload;
	/* scenario state */
	conn *writer;
	conn *hook;             /* hooked: the hook client */
	bool hook_ready;
	uint64_t hook_calls;
	double set_sent;        /* closed loop: when the set in flight was sent */
	hist rtt;               /* closed loop: set -> its RESULT */
	uint64_t state_id, instance;
	bool writer_ready;
	bool closed_loop, writing;
	uint64_t next_seq;      /* seq of the next set */
	uint64_t last_acked;
	uint64_t acks, acks_win;
	double ol_t0, ol_rate;  /* open loop pacing */
	uint64_t ol_first_seq;
	double w0, w1;          /* measurement window */
	hist lat;
	uint64_t delivered_total, delivered_win, delivered_win_sets_by_w1, delivered_win_sets_late;
	uint64_t frames_total; /* WebSocket frames the subscribers received */
	uint64_t gaps, ooo, errors, bad_updates;
	uint64_t win_first_seq, win_last_seq; /* sets written in the window */
	double drain_until;
} B;

static uint32_t xorshift(void)
{
	uint32_t x = B.mask_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return B.mask_state = x;
}

static void ep_mod(conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};
	epoll_ctl(B.epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_events(conn *c)
{
	uint32_t ev = c->paused ? 0 : EPOLLIN;
	if (c->out_armed || c->state == C_CONNECTING)
		ev |= EPOLLOUT;
	ep_mod(c, ev);
}

static void conn_closed(conn *c, int code)
{
	if (c->state == C_CLOSED)
		return;
	if (c->state == C_CONNECTING || c->state == C_UPGRADING) {
		B.inflight--;
		B.failed++;
	}
	c->state = C_CLOSED;
	c->close_code = code;
	epoll_ctl(B.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	B.closed++;
}

static conn *conn_new(uint8_t role)
{
	conn *c = xcalloc(1, sizeof(*c));
	c->fd = -1;
	c->role = role;
	c->close_code = -1;
	if (B.n == B.cap) {
		B.cap = B.cap ? B.cap * 2 : 1024;
		B.c = xrealloc(B.c, sizeof(conn *) * B.cap);
	}
	B.c[B.n++] = c;
	return c;
}

static void conn_free_all(void)
{
	for (uint32_t i = 0; i < B.n; i++) {
		conn *c = B.c[i];
		if (c->fd >= 0) {
			/* reset, so no TIME_WAIT eats the ephemeral ports */
			struct linger lg = {1, 0};
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			epoll_ctl(B.epfd, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
		}
		free(c->rx);
		free(c->tx);
		free(c->fm);
		free(c);
	}
	B.n = B.next_start = B.inflight = B.opened = B.attached = B.failed = B.closed = 0;
	B.writer = B.hook = NULL;
}

static void flush(conn *c)
{
	while (c->tx_off < c->tx_len) {
		ssize_t n = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->tx_off += (uint32_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_armed) {
				c->out_armed = true;
				conn_events(c);
			}
			return;
		} else {
			conn_closed(c, 0);
			return;
		}
	}
	c->tx_off = c->tx_len = 0;
	if (c->out_armed) {
		c->out_armed = false;
		conn_events(c);
	}
}

static void tx_reserve(conn *c, size_t n)
{
	if (c->tx_len + n > c->tx_cap) {
		size_t cap = c->tx_cap ? c->tx_cap : 512;
		while (cap < c->tx_len + n)
			cap *= 2;
		c->tx = xrealloc(c->tx, cap);
		c->tx_cap = (uint32_t)cap;
	}
}

/* Queue one masked binary frame (the caller flushes). */
static void ws_frame(conn *c, uint8_t opcode, const void *data, size_t len)
{
	tx_reserve(c, len + 14);
	uint8_t *h = c->tx + c->tx_len;
	size_t hl;
	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[1] = (uint8_t)(0x80 | len);
		hl = 2;
	} else if (len < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	uint32_t mask = xorshift();
	memcpy(h + hl, &mask, 4);
	const uint8_t *mk = h + hl;
	hl += 4;
	const uint8_t *d = data;
	uint8_t *p = h + hl;
	for (size_t i = 0; i < len; i++)
		p[i] = d[i] ^ mk[i & 3];
	c->tx_len += (uint32_t)(hl + len);
}

static void ws_send_enc(conn *c)
{
	ws_frame(c, 0x2, tt_buf_data(&B.enc), B.enc.len);
}

/* ---- requests --------------------------------------------------------- */

static void enc_hello(uint64_t rid)
{
	tt_enc_array(&B.enc, 3);
	tt_enc_uint(&B.enc, TT_MSG_HELLO);
	tt_enc_uint(&B.enc, rid);
	tt_enc_map(&B.enc, 1);
	tt_enc_str(&B.enc, "version");
	tt_enc_uint(&B.enc, TT_PROTOCOL_VERSION);
}

static void enc_param(const char *name, const char *type, bool str_default)
{
	tt_enc_str(&B.enc, name);
	tt_enc_map(&B.enc, 2);
	tt_enc_str(&B.enc, "type");
	tt_enc_str(&B.enc, type);
	tt_enc_str(&B.enc, "default");
	if (str_default)
		tt_enc_str(&B.enc, "");
	else
		tt_enc_uint(&B.enc, 0);
}

static void enc_attach(uint64_t rid, uint32_t history)
{
	tt_enc_array(&B.enc, 5);
	tt_enc_uint(&B.enc, TT_MSG_ATTACH);
	tt_enc_uint(&B.enc, rid);
	tt_enc_str(&B.enc, CLASS_NAME);
	tt_enc_uint(&B.enc, B.state_id);
	if (history) {
		tt_enc_map(&B.enc, 1);
		tt_enc_str(&B.enc, "history");
		tt_enc_uint(&B.enc, history);
	} else {
		tt_enc_map(&B.enc, 0);
	}
}

static void on_open(conn *c)
{
	tt_buf_clear(&B.enc);
	if (c->role == R_HOOK) {
		/* HELLO in the hook role, then HOOK update on the class */
		tt_enc_array(&B.enc, 3);
		tt_enc_uint(&B.enc, TT_MSG_HELLO);
		tt_enc_uint(&B.enc, 1);
		tt_enc_map(&B.enc, 3);
		tt_enc_str(&B.enc, "version");
		tt_enc_uint(&B.enc, TT_PROTOCOL_VERSION);
		tt_enc_str(&B.enc, "role");
		tt_enc_str(&B.enc, O.hook_role);
		tt_enc_str(&B.enc, "roleToken");
		tt_enc_str(&B.enc, O.hook_token ? O.hook_token : "");
		tt_enc_array(&B.enc, 4);
		tt_enc_uint(&B.enc, TT_MSG_HOOK);
		tt_enc_uint(&B.enc, 2);
		tt_enc_str(&B.enc, CLASS_NAME);
		tt_enc_str(&B.enc, "update");
		ws_send_enc(c);
		flush(c);
		return;
	}
	enc_hello(1);
	if (c->role == R_WRITER) {
		/* DEFINE: {seq: integer, t: float, payload: string} */
		tt_enc_array(&B.enc, 4);
		tt_enc_uint(&B.enc, TT_MSG_DEFINE);
		tt_enc_uint(&B.enc, 2);
		tt_enc_str(&B.enc, CLASS_NAME);
		tt_enc_map(&B.enc, 3);
		enc_param("seq", "integer", false);
		enc_param("t", "float", false);
		enc_param("payload", "string", true);
		tt_enc_array(&B.enc, 4);
		tt_enc_uint(&B.enc, TT_MSG_CREATE);
		tt_enc_uint(&B.enc, 3);
		tt_enc_str(&B.enc, CLASS_NAME);
		tt_enc_map(&B.enc, 0);
	} else {
		enc_attach(2, c->role == R_JOIN ? O.history : 0);
	}
	/* the requests go back to back in one frame: replies come in order */
	ws_send_enc(c);
	flush(c);
}

static void send_set(uint64_t seq, double t)
{
	conn *w = B.writer;
	B.set_sent = now_s();
	tt_buf_clear(&B.enc);
	tt_enc_array(&B.enc, 4);
	tt_enc_uint(&B.enc, TT_MSG_SET);
	tt_enc_uint(&B.enc, RID_SET0 + seq);
	tt_enc_uint(&B.enc, B.instance);
	tt_enc_map(&B.enc, O.payload ? 3 : 2);
	tt_enc_str(&B.enc, "seq");
	tt_enc_uint(&B.enc, seq);
	tt_enc_str(&B.enc, "t");
	tt_enc_float(&B.enc, t);
	if (O.payload) {
		/* a changing prefix, or filterChange would drop unchanged payloads */
		char num[24];
		int n = snprintf(num, sizeof(num), "%llu:", (unsigned long long)seq);
		memcpy(B.payload, num, (size_t)n < O.payload ? (size_t)n : O.payload);
		tt_enc_str(&B.enc, "payload");
		tt_enc_strn(&B.enc, B.payload, O.payload);
	}
	ws_send_enc(w);
}

/* ---- incoming --------------------------------------------------------- */

static const tt_value *mget(const tt_value *m, const char *k)
{
	return m && m->type == TT_MAP ? tt_map_get(m, k) : NULL;
}

static bool as_u(const tt_value *v, uint64_t *out)
{
	if (!v || v->type != TT_INT || v->v.i < 0)
		return false;
	*out = (uint64_t)v->v.i;
	return true;
}

static void on_update(conn *c, const upd *u, double t)
{
	c->got++;
	B.delivered_total++;
	uint64_t seq = u->has_pseq ? u->pseq : u->seq;
	if (u->has_pseq && u->pseq != u->seq)
		B.bad_updates++; /* the writer's seq and the state's seq agree on a fresh state */
	if (seq == c->last_seq + 1) {
		c->last_seq = seq;
	} else if (seq > c->last_seq) {
		B.gaps += seq - c->last_seq - 1;
		c->last_seq = seq;
	} else {
		B.ooo++;
	}
	if (t >= B.w0 && t < B.w1)
		B.delivered_win++;
	if (u->has_t && u->t >= B.w0 && u->t < B.w1) {
		h_add(&B.lat, t - u->t);
		if (t < B.w1)
			B.delivered_win_sets_by_w1++;
		else
			B.delivered_win_sets_late++;
	}
}

static void check_join(conn *c, const tt_value *res)
{
	uint64_t seq = 0, vseq = 0;
	const tt_value *vals = mget(res, "values");
	double vt = 0, want_t = 0;
	(void)want_t;
	c->join_values_ok = as_u(mget(res, "seq"), &seq) && seq == B.last_acked &&
			    as_u(mget(vals, "seq"), &vseq) && vseq == B.last_acked &&
			    mget(vals, "t") && tt_as_double(mget(vals, "t"), &vt) && vt > 0;
	const tt_value *h = mget(res, "history");
	const tt_value *complete = mget(res, "historyComplete");
	bool ok = h && h->type == TT_ARRAY && complete && complete->type == TT_BOOL &&
		  complete->v.b;
	uint64_t want = O.history < B.last_acked ? O.history : B.last_acked;
	if (ok && h->len != want)
		ok = false;
	for (uint32_t i = 0; ok && i < h->len; i++) {
		uint64_t es = 0, cs = 0;
		const tt_value *e = &h->v.items[i];
		if (!as_u(mget(e, "seq"), &es) || es != B.last_acked - want + 1 + i ||
		    !as_u(mget(mget(e, "changes"), "seq"), &cs) || cs != es)
			ok = false;
	}
	c->join_history_ok = ok;
}

static void on_result(conn *c, uint64_t rid, const tt_value *res, double t, size_t bytes)
{
	if (c->role == R_WRITER) {
		if (rid == 1) {
			c->hello_ok = true;
		} else if (rid == 3) {
			if (!as_u(mget(res, "state"), &B.state_id) ||
			    !as_u(mget(res, "instance"), &B.instance)) {
				warnx_("CREATE result without state/instance");
				B.errors++;
				return;
			}
			B.writer_ready = true;
		} else if (rid >= RID_SET0) {
			uint64_t seq = rid - RID_SET0;
			B.acks++;
			if (t >= B.w0 && t < B.w1) {
				B.acks_win++;
				if (B.closed_loop)
					h_add(&B.rtt, t - B.set_sent);
			}
			if (seq > B.last_acked)
				B.last_acked = seq;
			if (B.closed_loop && B.writing) {
				send_set(B.next_seq++, now_s());
				flush(c);
			}
		}
		return;
	}
	if (c->role == R_HOOK) {
		if (rid == 1)
			c->hello_ok = true;
		else if (rid == 2)
			B.hook_ready = true;
		return;
	}
	if (rid == 1) {
		c->hello_ok = true;
		c->t_hello = t;
	} else if (rid == 2) {
		uint64_t seq = 0;
		if (!as_u(mget(res, "seq"), &seq) || !as_u(mget(res, "instance"), &c->instance)) {
			warnx_("ATTACH result without seq/instance");
			B.errors++;
			return;
		}
		c->last_seq = seq;
		c->attached = true;
		c->t_attach = t;
		c->attach_bytes = (uint32_t)bytes;
		B.attached++;
		if (c->role == R_JOIN)
			check_join(c, res);
	}
}

static void on_message(conn *c, const uint8_t *p, size_t len, double t)
{
	size_t off = 0;
	while (off < len) {
		if (len - off > 2 && p[off] == 0x95 && p[off + 1] == TT_MSG_UPDATE) {
			upd u;
			size_t used = parse_update(p + off, len - off, &u);
			if (used) {
				on_update(c, &u, t);
				off += used;
				continue;
			}
		}
		tt_value v;
		size_t start = off;
		if (tt_decode(B.dec, p, len, &off, &B.arena, &v, NULL) < 0) {
			warnx_("undecodable message from the server");
			B.errors++;
			return;
		}
		uint64_t type = 0, rid = 0;
		if (v.type != TT_ARRAY || v.len < 2 || !as_u(&v.v.items[0], &type)) {
			B.errors++;
		} else if (type == TT_MSG_RESULT && v.len == 3 && as_u(&v.v.items[1], &rid)) {
			on_result(c, rid, &v.v.items[2], t, off - start);
		} else if (type == TT_MSG_ERROR) {
			const tt_value *m = v.len >= 4 ? &v.v.items[3] : NULL;
			warnx_("server ERROR: %.*s", m && m->type == TT_STR ? (int)m->len : 0,
			       m && m->type == TT_STR ? m->v.s : "");
			B.errors++;
		} else if (type == TT_MSG_UPDATE) {
			B.bad_updates++; /* not the shape the fast path reads */
		} else if (type == TT_MSG_HOOK_CALL && c->role == R_HOOK && v.len == 8 &&
			   as_u(&v.v.items[1], &rid)) {
			/* a hook that lets every set through unchanged: the cost
			 * measured is the round trip, not a piece's logic */
			B.hook_calls++;
			tt_buf_clear(&B.enc);
			tt_enc_array(&B.enc, 3);
			tt_enc_uint(&B.enc, TT_MSG_HOOK_REPLY);
			tt_enc_uint(&B.enc, rid);
			tt_enc_bool(&B.enc, true);
			ws_send_enc(c);
			flush(c);
		}
		tt_arena_reset(&B.arena);
	}
}

static void on_frame(conn *c, uint8_t b0, const uint8_t *p, size_t len, double t)
{
	uint8_t op = b0 & 0x0f;
	bool fin = b0 & 0x80;
	switch (op) {
	case 0x0: /* continuation */
	case 0x1: /* text: not expected, collected like binary */
	case 0x2:
		if (op != 0 && fin && !c->in_frag) {
			on_message(c, p, len, t);
			return;
		}
		if (op != 0)
			c->fm_len = 0;
		if (c->fm_len + len > c->fm_cap) {
			size_t cap = c->fm_cap ? c->fm_cap : 4096;
			while (cap < c->fm_len + len)
				cap *= 2;
			c->fm = xrealloc(c->fm, cap);
			c->fm_cap = (uint32_t)cap;
		}
		memcpy(c->fm + c->fm_len, p, len);
		c->fm_len += (uint32_t)len;
		c->in_frag = !fin;
		if (fin)
			on_message(c, c->fm, c->fm_len, t);
		return;
	case 0x8: { /* close */
		int code = len >= 2 ? (p[0] << 8) | p[1] : 1005;
		uint8_t echo[2] = {(uint8_t)(code >> 8), (uint8_t)code};
		ws_frame(c, 0x8, echo, 2);
		flush(c);
		if (c->state != C_CLOSED)
			conn_closed(c, code);
		return;
	}
	case 0x9: /* ping */
		ws_frame(c, 0xA, p, len);
		flush(c);
		return;
	default:
		return;
	}
}

/* Frames in p[0..n): returns the bytes consumed (whole frames only). */
static size_t parse_frames(conn *c, uint8_t *p, size_t n, double t)
{
	size_t off = 0;
	while (n - off >= 2 && c->state == C_OPEN) {
		uint8_t *h = p + off;
		uint64_t len = h[1] & 0x7f;
		size_t hl = 2;
		if (len == 126) {
			if (n - off < 4)
				break;
			len = be_n(h + 2, 2);
			hl = 4;
		} else if (len == 127) {
			if (n - off < 10)
				break;
			len = be_n(h + 2, 8);
			hl = 10;
		}
		bool masked = h[1] & 0x80;
		if (masked)
			hl += 4;
		if (n - off < hl + len)
			break;
		uint8_t *pl = h + hl;
		if (masked)
			for (uint64_t i = 0; i < len; i++)
				pl[i] ^= h[hl - 4 + (i & 3)];
		if (c->role == R_SUB)
			B.frames_total++;
		on_frame(c, h[0], pl, (size_t)len, t);
		off += hl + (size_t)len;
	}
	return off;
}

static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 sample */
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static size_t parse_upgrade(conn *c, const uint8_t *p, size_t n, double t)
{
	const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hl = (size_t)(end - p) + 4;
	bool ok = n >= 12 && memcmp(p, "HTTP/1.1 101", 12) == 0 &&
		  memmem(p, hl, ws_accept, sizeof(ws_accept) - 1) &&
		  memmem(p, hl, TT_PROTOCOL_NAME, strlen(TT_PROTOCOL_NAME));
	if (!ok) {
		warnx_("upgrade refused: %.*s", (int)(memchr(p, '\r', hl) ? (const uint8_t *)memchr(p, '\r', hl) - p : 0), p);
		B.errors++;
		conn_closed(c, 0);
		return hl;
	}
	c->state = C_OPEN;
	c->t_open = t;
	B.inflight--;
	B.opened++;
	on_open(c);
	return hl;
}

static void on_readable(conn *c)
{
	for (int iter = 0; iter < 8 && c->state != C_CLOSED && !c->paused; iter++) {
		size_t have = c->rx_len;
		if (B.rb_cap < have + 65536) {
			B.rb_cap = have + (256 << 10);
			B.rb = xrealloc(B.rb, B.rb_cap);
		}
		if (have)
			memcpy(B.rb, c->rx, have);
		size_t room = B.rb_cap - have;
		ssize_t n = recv(c->fd, B.rb + have, room, 0);
		if (n == 0) {
			conn_closed(c, 0);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_closed(c, 0);
			return;
		}
		double t = now_s();
		size_t total = have + (size_t)n, used = 0;
		if (c->state == C_UPGRADING)
			used = parse_upgrade(c, B.rb, total, t);
		if (c->state == C_OPEN)
			used += parse_frames(c, B.rb + used, total - used, t);
		if (c->state == C_CLOSED)
			return;
		c->rx_len = (uint32_t)(total - used);
		if (c->rx_len) {
			if (c->rx_len > c->rx_cap) {
				c->rx_cap = c->rx_len < 4096 ? 4096 : c->rx_len * 2;
				c->rx = xrealloc(c->rx, c->rx_cap);
			}
			memcpy(c->rx, B.rb + used, c->rx_len);
		}
		if ((size_t)n < room)
			return;
	}
}

static void start_connect(conn *c, int rcvbuf)
{
	const struct sockaddr_storage *addr = &SV.addr;
	socklen_t addrlen = SV.addrlen;
	if (SV.n_addrs > 1 && c->role != R_WRITER && c->role != R_HOOK) {
		uint32_t i = c->role == R_JOIN ? SV.n_addrs - 1 : SV.next_addr++ % SV.n_addrs;
		addr = &SV.addrs[i];
		addrlen = SV.addrlens[i];
	}
	c->t_start = now_s();
	c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		warnx_("socket: %s", strerror(errno));
		c->state = C_CLOSED;
		B.failed++;
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	c->state = C_CONNECTING;
	B.inflight++;
	struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	epoll_ctl(B.epfd, EPOLL_CTL_ADD, c->fd, &e);
	if (connect(c->fd, (const struct sockaddr *)addr, addrlen) < 0 && errno != EINPROGRESS) {
		warnx_("connect: %s", strerror(errno));
		conn_closed(c, 0);
	}
}

static void on_connected(conn *c)
{
	int err = 0;
	socklen_t l = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err) {
		warnx_("connect: %s", strerror(err));
		conn_closed(c, 0);
		return;
	}
	char req[768];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			 SV.path, SV.host, SV.port, ws_key, TT_PROTOCOL_NAME);
	c->state = C_UPGRADING;
	tx_reserve(c, (size_t)n);
	memcpy(c->tx + c->tx_len, req, (size_t)n);
	c->tx_len += (uint32_t)n;
	conn_events(c);
	flush(c);
}

/* Start queued connections while fewer than --inflight are handshaking. */
static void start_pending(void)
{
	while (B.next_start < B.n && B.inflight < O.inflight) {
		conn *c = B.c[B.next_start++];
		if (c->state == C_NEW)
			start_connect(c, c->role == R_SLOW ? 4096 : 0);
	}
}

/* ---- the loop --------------------------------------------------------- */

static void tick(void);

static void service(conn *c, uint32_t events)
{
	if (c->state == C_CLOSED)
		return;
	if (c->state == C_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(c);
		return;
	}
	if (events & EPOLLOUT)
		flush(c);
	if (c->state != C_CLOSED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		on_readable(c);
}

/* One epoll round. The writer stands for a client of its own: it must not
 * wait behind a thousand subscribers' reads in this one process, or the
 * closed loop would measure the bench's serialisation rather than the
 * server. So its events go first, and while a batch of subscriber events is
 * being worked through, its socket is polled every 32 events (one recv
 * that mostly says EAGAIN) and open-loop sets are sent on time. */
static void pump(double timeout)
{
	struct epoll_event ev[1024];
	if (timeout < 0)
		timeout = 0;
	struct timespec ts = {(time_t)timeout, (long)((timeout - floor(timeout)) * 1e9)};
	/* epoll_pwait2 (Linux 5.11) for sub-millisecond open-loop pacing;
	 * epoll_wait where it is missing (older kernels, valgrind 3.19) */
	static bool no_pwait2;
	int n = -1;
	if (!no_pwait2) {
		n = epoll_pwait2(B.epfd, ev, 1024, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			no_pwait2 = true;
	}
	if (no_pwait2)
		n = epoll_wait(B.epfd, ev, 1024, (int)ceil(timeout * 1000));
	/* the hook client, like the writer, is on the set's path */
	conn *w = B.writer, *hk = B.hook;
	for (int i = 0; i < n; i++)
		if (ev[i].data.ptr == w || (hk && ev[i].data.ptr == hk))
			service(ev[i].data.ptr, ev[i].events);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == w || (hk && ev[i].data.ptr == hk))
			continue;
		service(ev[i].data.ptr, ev[i].events);
		if ((i & 31) == 31 && w && B.writing) {
			if (hk && hk->state == C_OPEN)
				on_readable(hk);
			if (B.closed_loop && w->state == C_OPEN)
				on_readable(w);
			else
				tick();
		}
	}
	tick();
}

/* Open-loop pacing and connection starts. */
static void tick(void)
{
	start_pending();
	if (B.writing && !B.closed_loop && B.writer_ready) {
		double now = now_s();
		/* set i is due at ol_t0 + i / rate */
		uint64_t due = (uint64_t)((now - B.ol_t0) * B.ol_rate) + 1;
		uint64_t sent = B.next_seq - B.ol_first_seq;
		uint32_t batch = 0;
		while (sent < due && batch < 4096) {
			/* t is the scheduled time: a late send counts as latency */
			send_set(B.next_seq, B.ol_t0 + (double)sent / B.ol_rate);
			B.next_seq++;
			sent++;
			batch++;
		}
		if (batch)
			flush(B.writer);
	}
}

static double next_timeout(double deadline)
{
	double now = now_s(), t = deadline - now;
	if (B.writing && !B.closed_loop) {
		double next = B.ol_t0 + (double)(B.next_seq - B.ol_first_seq) / B.ol_rate - now;
		if (next < t)
			t = next;
	}
	if (B.next_start < B.n && B.inflight < O.inflight)
		t = 0;
	return t > 0.05 ? 0.05 : t;
}

typedef bool (*pred_fn)(void);

/* Run the loop until pred() holds or the deadline passes. */
static bool run_until(pred_fn pred, double deadline)
{
	while (!(pred && pred())) {
		if (now_s() >= deadline)
			return pred == NULL;
		pump(next_timeout(deadline));
	}
	return true;
}

static uint32_t g_want;
static bool p_writer_ready(void) { return B.writer_ready || (B.writer && B.writer->state == C_CLOSED); }
static bool p_attached(void) { return B.attached + B.failed >= g_want; }
static uint64_t g_target_seq;
static bool p_all_got(void)
{
	for (uint32_t i = 0; i < B.n; i++) {
		conn *c = B.c[i];
		if (c->role == R_SUB && c->state == C_OPEN && c->attached && c->last_seq < g_target_seq)
			return false;
	}
	return true;
}
static bool p_acked(void) { return B.last_acked >= g_target_seq || !B.writer || B.writer->state == C_CLOSED; }

/* ---- JSON ------------------------------------------------------------- */

static char J[4096];
static size_t JL;
static bool g_all_ok = true;

static void jraw(const char *k, const char *v)
{
	JL += (size_t)snprintf(J + JL, sizeof(J) - JL, "%s\"%s\":%s", JL > 1 ? "," : "", k, v);
}
static void jbegin(const char *scenario)
{
	JL = (size_t)snprintf(J, sizeof(J), "{");
	char v[64];
	snprintf(v, sizeof(v), "\"%s\"", scenario);
	jraw("scenario", v);
}
static void jstr(const char *k, const char *s)
{
	char v[512];
	snprintf(v, sizeof(v), "\"%s\"", s);
	jraw(k, v);
}
static void jint(const char *k, long long x)
{
	char v[32];
	snprintf(v, sizeof(v), "%lld", x);
	jraw(k, v);
}
static void jnum(const char *k, double x, int prec)
{
	char v[64];
	if (isnan(x) || isinf(x) || x < -0.5 * 1e300)
		snprintf(v, sizeof(v), "null");
	else
		snprintf(v, sizeof(v), "%.*f", prec, x);
	jraw(k, v);
}
static void jbool(const char *k, bool b) { jraw(k, b ? "true" : "false"); }
static void jend(bool ok)
{
	if (g_server_died)
		return; /* main runs the scenario again */
	jbool("ok", ok);
	if (!ok)
		g_all_ok = false;
	JL += (size_t)snprintf(J + JL, sizeof(J) - JL, "}");
	puts(J);
	fflush(stdout);
}

static void jcommon(void)
{
	jstr("server", SV.spawned ? "spawned" : "url");
	if (SV.n_addrs > 1)
		jint("nodes", SV.n_addrs);
	jstr("pinning", SV.pinning);
}

static void jlatency(const hist *h)
{
	jnum("latency_p50_ms", h_pct_ms(h, 0.50), 3);
	jnum("latency_p90_ms", h_pct_ms(h, 0.90), 3);
	jnum("latency_p99_ms", h_pct_ms(h, 0.99), 3);
	jnum("latency_max_ms", h->n ? (double)h->max / 1e6 : -1, 3);
	jint("latency_samples", (long long)h->n);
}

/* ---- scenarios -------------------------------------------------------- */

static void reset_stats(void)
{
	conn_free_all();
	memset(&B.lat, 0, sizeof(B.lat));
	memset(&B.rtt, 0, sizeof(B.rtt));
	B.hook = NULL;
	B.hook_ready = false;
	B.hook_calls = 0;
	B.writer_ready = B.writing = B.closed_loop = false;
	B.state_id = B.instance = 0;
	B.next_seq = 1;
	B.last_acked = 0;
	B.acks = B.acks_win = 0;
	B.w0 = B.w1 = 1e300;
	B.delivered_total = B.delivered_win = B.delivered_win_sets_by_w1 = B.delivered_win_sets_late = 0;
	B.frames_total = 0;
	B.gaps = B.ooo = B.errors = B.bad_updates = 0;
}

/* Server, writer, state; K attached subscribers. */
static bool setup(uint32_t subs, uint32_t history, size_t max_queue, uint32_t slow)
{
	reset_stats();
	if (!server_start(history, max_queue))
		return false;
	B.writer = conn_new(R_WRITER);
	start_pending();
	if (!run_until(p_writer_ready, now_s() + 10) || !B.writer_ready) {
		warnx_("the writer could not create its state");
		server_alive();
		return false;
	}
	for (uint32_t i = 0; i < subs; i++)
		conn_new(R_SUB);
	for (uint32_t i = 0; i < slow; i++)
		conn_new(R_SLOW);
	g_want = subs + slow;
	if (!run_until(p_attached, now_s() + 30) || B.failed) {
		warnx_("only %u of %u subscribers attached (%u failed)", B.attached, g_want, B.failed);
		server_alive();
		return false;
	}
	return true;
}

static void teardown(void)
{
	server_alive();
	conn_free_all();
	server_stop();
}

static uint32_t open_subs(void)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < B.n; i++)
		if (B.c[i]->role == R_SUB && B.c[i]->state == C_OPEN)
			n++;
	return n;
}

static uint64_t missing_at_end(uint64_t final_seq)
{
	uint64_t m = 0;
	for (uint32_t i = 0; i < B.n; i++) {
		conn *c = B.c[i];
		if (c->role == R_SUB && c->last_seq < final_seq)
			m += final_seq - c->last_seq;
	}
	return m;
}

static bool scenario_fanout(uint32_t K)
{
	info("fanout: %u subscribers, %.0f s + %.0f s warm-up", K, O.duration, O.warmup);
	if (!setup(K, 0, 0, 0)) {
		teardown();
		return false;
	}
	double t0 = now_s();
	B.w0 = t0 + O.warmup;
	B.w1 = B.w0 + O.duration;
	B.closed_loop = B.writing = true;
	send_set(B.next_seq++, now_s());
	flush(B.writer);
	run_until(NULL, B.w0);
	double cpu0 = proc_cpu_s(SV.pid), me0 = self_cpu_s(), tw0 = now_s();
	run_until(NULL, B.w1);
	double cpu1 = proc_cpu_s(SV.pid), me1 = self_cpu_s(), tw1 = now_s();
	B.writing = false;
	g_target_seq = B.next_seq - 1; /* the set in flight */
	run_until(p_acked, now_s() + 5);
	double td0 = now_s();
	bool drained = run_until(p_all_got, now_s() + 10);
	double drain_s = now_s() - td0;
	uint64_t missing = missing_at_end(g_target_seq);
	double wall = tw1 - tw0;
	double cpu = cpu1 - cpu0;
	long hwm = proc_status_kb(SV.pid, "VmHWM");

	jbegin("fanout");
	jint("subs", K);
	jnum("duration_s", O.duration, 1);
	jint("payload_bytes", O.payload);
	jnum("writer_sets_per_s", (double)B.acks_win / wall, 0);
	jnum("delivered_per_s", (double)B.delivered_win / wall, 0);
	jlatency(&B.lat);
	jint("gaps", (long long)B.gaps);
	jint("out_of_order", (long long)B.ooo);
	jint("undelivered_at_end", (long long)missing);
	jbool("drained", drained);
	jnum("drain_s", drain_s, 3);
	jint("server_peak_rss_kb", hwm);
	jnum("server_cpu_util", cpu >= 0 && cpu0 >= 0 ? cpu / wall : NAN, 3);
	jnum("server_cpu_us_per_delivery",
	     cpu0 >= 0 && B.delivered_win ? cpu * 1e6 / (double)B.delivered_win : NAN, 3);
	jnum("bench_cpu_util", (me1 - me0) / wall, 3);
	jnum("bench_cpu_us_per_delivery",
	     B.delivered_win ? (me1 - me0) * 1e6 / (double)B.delivered_win : NAN, 3);
	jint("errors", (long long)(B.errors + B.bad_updates));
	jcommon();
	bool ok = B.gaps == 0 && B.ooo == 0 && missing == 0 && drained && B.errors == 0 &&
		  B.bad_updates == 0 && open_subs() == K && B.acks_win > 0;
	ok &= server_alive();
	jend(ok);
	teardown();
	return ok;
}

/* The floor of a fan-out on this machine (equal_load): a process on the
 * server's CPU that only writes one 40-byte WebSocket frame to each of K
 * loopback TCP sockets per round, R rounds a second, while this process
 * reads them on its CPU as it reads the server. Its CPU per write is what
 * one delivery costs the kernel; the server's CPU per delivery at the same
 * K and rate is compared with it (cpu_vs_floor). */
static double g_floor_us = -1;

#define FLOOR_FRAME 40

static void floor_writer(int lfd, uint32_t K, double R, int go, int res)
{
	if (SV.pinned)
		pin_to(0, 0);
	int *fds = xrealloc(NULL, sizeof(int) * K);
	int one = 1;
	for (uint32_t i = 0; i < K; i++) {
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			_exit(1);
		/* as lws has its sockets: no Nagle */
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	char c;
	if (read(go, &c, 1) != 1)
		_exit(1);
	/* a binary frame of 38 payload bytes, the size of a small UPDATE */
	unsigned char frame[FLOOR_FRAME];
	memset(frame, 'x', sizeof(frame));
	frame[0] = 0x82;
	frame[1] = FLOOR_FRAME - 2;
	double t0 = now_s(), w0 = t0 + O.warmup, w1 = w0 + O.duration, cpu0 = -1, tw0 = 0;
	uint64_t writes = 0;
	/* rounds on schedule, or back to back when they cost more than 1/R
	 * (the window is wall-clock time: the CPU per write stays right) */
	for (uint64_t r = 0;; r++) {
		double wait = t0 + (double)r / R - now_s(), now = now_s();
		if (now >= w1)
			break;
		if (wait > 0)
			usleep((useconds_t)(wait * 1e6));
		if (cpu0 < 0 && now >= w0) {
			cpu0 = self_cpu_s();
			tw0 = now_s();
		}
		for (uint32_t i = 0; i < K; i++)
			if (write(fds[i], frame, sizeof(frame)) == (ssize_t)sizeof(frame) && cpu0 >= 0)
				writes++;
	}
	double out[3] = {self_cpu_s() - cpu0, (double)writes, now_s() - tw0};
	if (write(res, out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(1);
	_exit(0);
}

static bool scenario_write_floor(uint32_t K, double R)
{
	info("write_floor: %u sockets, %.0f rounds/s of one %d-byte write each, %.0f s + %.0f s warm-up",
	     K, R, FLOOR_FRAME, O.duration, O.warmup);
	g_floor_us = -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), go[2], res[2];
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0 || pipe(go) != 0 || pipe(res) != 0) {
		warnx_("write_floor: %s", strerror(errno));
		return false;
	}
	pid_t pid = fork();
	if (pid == 0)
		floor_writer(lfd, K, R, go[0], res[1]);
	close(lfd);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int *fds = xrealloc(NULL, sizeof(int) * K);
	uint32_t n = 0;
	for (; n < K; n++) {
		fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[n] < 0 || connect(fds[n], (struct sockaddr *)&a, sizeof(a)) != 0)
			break;
		fcntl(fds[n], F_SETFL, O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = n};
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[n], &ev);
	}
	bool ok = n == K && write(go[1], "g", 1) == 1;
	struct epoll_event rev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, res[0], &rev);
	double out[3] = {0, 0, 0};
	uint64_t bytes = 0;
	unsigned char buf[65536];
	bool done = !ok;
	double me0 = self_cpu_s(), deadline = now_s() + O.warmup + O.duration + 30;
	while (!done && now_s() < deadline) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			if (evs[i].data.u32 == UINT32_MAX) {
				done = read(res[0], out, sizeof(out)) == (ssize_t)sizeof(out);
				continue;
			}
			ssize_t r;
			while ((r = read(fds[evs[i].data.u32], buf, sizeof(buf))) > 0)
				bytes += (uint64_t)r;
		}
	}
	double me = self_cpu_s() - me0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (uint32_t i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	close(ep);
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
	ok = ok && done && out[1] > 0;
	if (ok)
		g_floor_us = out[0] * 1e6 / out[1];
	jbegin("write_floor");
	jint("subs", K);
	jnum("rate", R, 0);
	jnum("duration_s", O.duration, 1);
	jint("frame_bytes", FLOOR_FRAME);
	jint("writes", (long long)out[1]);
	jnum("cpu_us_per_write", ok ? g_floor_us : NAN, 3);
	jnum("writes_per_s", ok && out[2] > 0 ? out[1] / out[2] : NAN, 0);
	jnum("writer_cpu_util", ok && out[2] > 0 ? out[0] / out[2] : NAN, 3);
	jnum("reader_cpu_util", me / (O.warmup + O.duration), 3);
	jint("bytes_read", (long long)bytes);
	jstr("pinning", SV.pinning);
	jend(ok);
	return ok;
}

static bool scenario_open_loop(uint32_t K, double R)
{
	info("open_loop: %u subscribers, %.0f sets/s, %.0f s + %.0f s warm-up", K, R, O.duration,
	     O.warmup);
	if (!setup(K, 0, 0, 0)) {
		teardown();
		return false;
	}
	B.closed_loop = false;
	B.ol_rate = R;
	B.ol_t0 = now_s();
	B.ol_first_seq = B.next_seq;
	B.w0 = B.ol_t0 + O.warmup;
	B.w1 = B.w0 + O.duration;
	B.writing = true;
	run_until(NULL, B.w0);
	double cpu0 = proc_cpu_s(SV.pid), me0 = self_cpu_s(), tw0 = now_s();
	run_until(NULL, B.w1);
	double cpu1 = proc_cpu_s(SV.pid), me1 = self_cpu_s(), tw1 = now_s();
	B.writing = false;
	uint64_t last = B.next_seq - 1;
	/* sets stamped inside the window (t is the scheduled time) */
	uint64_t sets_win = 0;
	for (uint64_t s = B.ol_first_seq; s <= last; s++) {
		double ts = B.ol_t0 + (double)(s - B.ol_first_seq) / R;
		if (ts >= B.w0 && ts < B.w1)
			sets_win++;
	}
	uint64_t expected = sets_win * K;
	g_target_seq = last;
	double td0 = now_s();
	bool drained_1s = run_until(p_all_got, td0 + 1.0);
	/* then wait as long as deliveries keep coming (a rate the server
	 * cannot keep up with leaves a backlog), so the seq check is complete */
	bool drained = drained_1s;
	while (!drained) {
		uint64_t before = B.delivered_total;
		drained = run_until(p_all_got, now_s() + 3);
		if (!drained && (B.delivered_total == before || now_s() - td0 > 120))
			break;
	}
	double drain_s = now_s() - td0;
	uint64_t missing = missing_at_end(last);
	double wall = tw1 - tw0, cpu = cpu1 - cpu0;
	double within = expected ? (double)B.delivered_win_sets_by_w1 / (double)expected : 0;
	double achieved = (double)sets_win / O.duration;
	double p99 = h_pct_ms(&B.lat, 0.99);
	bool keeps_up = achieved >= 0.99 * R && within >= 0.95 && drained_1s &&
			B.delivered_win_sets_by_w1 + B.delivered_win_sets_late >= expected &&
			p99 >= 0 && p99 <= O.p99_bound_ms;

	jbegin("open_loop");
	jint("subs", K);
	jnum("rate", R, 0);
	jnum("duration_s", O.duration, 1);
	jint("payload_bytes", O.payload);
	jnum("writer_sets_per_s", achieved, 0);
	jnum("delivered_per_s", (double)B.delivered_win / wall, 0);
	jnum("delivered_within_window", within, 4);
	jbool("drained_within_1s", drained_1s);
	jnum("drain_s", drain_s, 3);
	jbool("keeps_up", keeps_up);
	jnum("p99_bound_ms", O.p99_bound_ms, 1);
	jnum("updates_per_frame", B.frames_total ? (double)B.delivered_total / (double)B.frames_total : NAN, 2);
	jlatency(&B.lat);
	jint("gaps", (long long)B.gaps);
	jint("out_of_order", (long long)B.ooo);
	jint("undelivered_at_end", (long long)missing);
	jint("server_peak_rss_kb", proc_status_kb(SV.pid, "VmHWM"));
	jnum("server_cpu_util", cpu0 >= 0 ? cpu / wall : NAN, 3);
	jnum("server_cpu_us_per_delivery",
	     cpu0 >= 0 && B.delivered_win ? cpu * 1e6 / (double)B.delivered_win : NAN, 3);
	jnum("bench_cpu_util", (me1 - me0) / wall, 3);
	if (g_floor_us > 0 && cpu0 >= 0 && B.delivered_win) {
		/* equal_load: the write floor measured just before, same K and rate */
		jnum("floor_cpu_us_per_write", g_floor_us, 3);
		jnum("cpu_vs_floor", cpu * 1e6 / (double)B.delivered_win / g_floor_us, 3);
		/* several updates in a frame cost one write: per frame, the
		 * server against a floor of one write per frame */
		if (B.frames_total)
			jnum("cpu_per_frame_vs_floor", cpu * 1e6 / (double)B.delivered_win *
				 ((double)B.delivered_total / (double)B.frames_total) / g_floor_us, 3);
	}
	jint("errors", (long long)(B.errors + B.bad_updates));
	jcommon();
	/* ok is correctness only; keeping up is a measurement */
	bool ok = B.gaps == 0 && B.ooo == 0 && missing == 0 && drained && B.errors == 0 &&
		  B.bad_updates == 0 && open_subs() == K;
	ok &= server_alive();
	jend(ok);
	teardown();
	return ok;
}

/* The cost of a hook (PROTOCOL.md §8a): the fanout scenario's closed loop,
 * first without a hook, then with one hook client on the class that answers
 * every HOOK_CALL at once, unchanged. Every set then goes writer -> server
 * -> hook client -> server -> writer and subscribers: set_rtt is the
 * writer's set -> RESULT (the hook's round trip included), latency the
 * subscribers' set -> UPDATE. The hooked line gives its ratios to the one
 * before. */
static struct {
	bool have;
	double sets_per_s, rtt_p50, rtt_p99, lat_p50, lat_p99;
} g_unhooked;

static bool p_hook_ready(void) { return B.hook_ready || (B.hook && B.hook->state == C_CLOSED); }

static double ratio(double a, double b) { return b > 0 && a >= 0 ? a / b : NAN; }

static bool scenario_hooked(uint32_t K, bool hooked)
{
	info("hooked: %s, %u subscribers, %.0f s + %.0f s warm-up", hooked ? "one hook" : "no hook",
	     K, O.duration, O.warmup);
	if (hooked && !O.hook_token) {
		warnx_("hooked: the hook client needs its role's token (--hook-token)");
		return false;
	}
	if (!setup(K, 0, 0, 0)) {
		teardown();
		return false;
	}
	if (hooked) {
		B.hook = conn_new(R_HOOK);
		start_pending();
		if (!run_until(p_hook_ready, now_s() + 10) || !B.hook_ready) {
			warnx_("the hook client could not register its hook (role %s)", O.hook_role);
			server_alive();
			teardown();
			return false;
		}
	}
	B.w0 = now_s() + O.warmup;
	B.w1 = B.w0 + O.duration;
	B.closed_loop = B.writing = true;
	send_set(B.next_seq++, now_s());
	flush(B.writer);
	run_until(NULL, B.w0);
	double cpu0 = proc_cpu_s(SV.pid), tw0 = now_s();
	run_until(NULL, B.w1);
	double cpu1 = proc_cpu_s(SV.pid), tw1 = now_s();
	B.writing = false;
	g_target_seq = B.next_seq - 1;
	run_until(p_acked, now_s() + 5);
	bool drained = run_until(p_all_got, now_s() + 10);
	uint64_t missing = missing_at_end(g_target_seq);
	double wall = tw1 - tw0, cpu = cpu1 - cpu0;
	double sps = (double)B.acks_win / wall;
	double rtt50 = h_pct_ms(&B.rtt, 0.50), rtt99 = h_pct_ms(&B.rtt, 0.99);
	double lat50 = h_pct_ms(&B.lat, 0.50), lat99 = h_pct_ms(&B.lat, 0.99);

	jbegin("hooked");
	jbool("hook", hooked);
	jint("subs", K);
	jnum("duration_s", O.duration, 1);
	jnum("writer_sets_per_s", sps, 0);
	jnum("set_rtt_p50_ms", rtt50, 3);
	jnum("set_rtt_p99_ms", rtt99, 3);
	jlatency(&B.lat);
	jint("hook_calls", (long long)B.hook_calls);
	if (hooked && g_unhooked.have) {
		jnum("sets_per_s_vs_unhooked", ratio(sps, g_unhooked.sets_per_s), 3);
		jnum("set_rtt_p50_vs_unhooked", ratio(rtt50, g_unhooked.rtt_p50), 3);
		jnum("set_rtt_p99_vs_unhooked", ratio(rtt99, g_unhooked.rtt_p99), 3);
		jnum("latency_p50_vs_unhooked", ratio(lat50, g_unhooked.lat_p50), 3);
	}
	jint("gaps", (long long)B.gaps);
	jint("out_of_order", (long long)B.ooo);
	jint("undelivered_at_end", (long long)missing);
	jbool("drained", drained);
	jnum("server_cpu_us_per_set", cpu0 >= 0 && B.acks_win ? cpu * 1e6 / (double)B.acks_win : NAN, 3);
	jint("errors", (long long)(B.errors + B.bad_updates));
	jcommon();
	/* every set answered once, through the hook once when there is one */
	bool ok = B.gaps == 0 && B.ooo == 0 && missing == 0 && drained && B.errors == 0 &&
		  B.bad_updates == 0 && open_subs() == K && B.acks_win > 0 &&
		  B.acks == g_target_seq && (!hooked || B.hook_calls == B.acks);
	ok &= server_alive();
	jend(ok);
	if (!hooked) {
		g_unhooked.have = true;
		g_unhooked.sets_per_s = sps;
		g_unhooked.rtt_p50 = rtt50;
		g_unhooked.rtt_p99 = rtt99;
		g_unhooked.lat_p50 = lat50;
		g_unhooked.lat_p99 = lat99;
	}
	teardown();
	return ok;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(double), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double vmax(const double *v, uint32_t n)
{
	double m = n ? v[0] : NAN;
	for (uint32_t i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static conn *g_join;
static bool p_joined(void) { return g_join->attached || g_join->state == C_CLOSED; }

static bool scenario_late_join(void)
{
	uint32_t H = O.history, NJ = O.joins ? O.joins : 1;
	info("late_join: %u events of history, %u joins", H, NJ);
	if (!setup(0, H, 0, 0)) {
		teardown();
		return false;
	}
	/* H awaited sets */
	B.closed_loop = false;
	B.w0 = B.w1 = 1e300;
	for (uint32_t i = 0; i < H; i++) {
		send_set(B.next_seq, now_s());
		flush(B.writer);
		g_target_seq = B.next_seq++;
		if (!run_until(p_acked, now_s() + 5))
			break;
	}
	bool wrote = B.last_acked == H;
	double *open_ms = xcalloc(NJ, sizeof(double)), *hello_ms = xcalloc(NJ, sizeof(double)),
	       *values_ms = xcalloc(NJ, sizeof(double));
	uint32_t n = 0, values_ok = 0, history_ok = 0;
	uint32_t bytes = 0;
	for (uint32_t j = 0; j < NJ && wrote; j++) {
		g_join = conn_new(R_JOIN);
		start_pending();
		if (!run_until(p_joined, now_s() + 10) || !g_join->attached) {
			warnx_("late join %u failed", j);
			break;
		}
		open_ms[n] = (g_join->t_open - g_join->t_start) * 1e3;
		hello_ms[n] = (g_join->t_hello - g_join->t_open) * 1e3;
		values_ms[n] = (g_join->t_attach - g_join->t_open) * 1e3;
		bytes = g_join->attach_bytes;
		values_ok += g_join->join_values_ok;
		history_ok += g_join->join_history_ok;
		n++;
		/* close it (reset) before the next one */
		struct linger lg = {1, 0};
		setsockopt(g_join->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		conn_closed(g_join, 0);
	}
	double vmx = vmax(values_ms, n);
	jbegin("late_join");
	jint("history", H);
	jint("joins", n);
	jnum("connect_ms_p50", median(open_ms, n), 3);
	jnum("hello_ms_p50", median(hello_ms, n), 3);
	/* HELLO and ATTACH {history} go in one frame at open; the ATTACH result
	 * carries the values and the history together */
	jnum("values_ms_p50", median(values_ms, n), 3);
	jnum("values_ms_max", vmx, 3);
	jnum("history_ms_p50", median(values_ms, n), 3);
	jnum("history_ms_max", vmx, 3);
	jint("attach_result_bytes", bytes);
	jbool("values_ok", n && values_ok == n);
	jbool("history_ok", n && history_ok == n);
	jint("server_peak_rss_kb", proc_status_kb(SV.pid, "VmHWM"));
	jint("errors", (long long)B.errors);
	jcommon();
	bool ok = wrote && n == NJ && values_ok == n && history_ok == n && B.errors == 0;
	jend(ok);
	free(open_ms);
	free(hello_ms);
	free(values_ms);
	teardown();
	return ok;
}

static bool scenario_connections(uint32_t N)
{
	info("connections: %u idle attached clients (%u handshakes in flight at most)", N,
	     O.inflight);
	if (!setup(0, 0, 0, 0)) {
		teardown();
		return false;
	}
	usleep(200000);
	long rss0 = proc_status_kb(SV.pid, "VmRSS");
	double t0 = now_s();
	for (uint32_t i = 0; i < N; i++)
		conn_new(R_SUB);
	g_want = N;
	run_until(p_attached, t0 + 120);
	double t_all = now_s() - t0;
	double t_open = 0;
	for (uint32_t i = 0; i < B.n; i++)
		if (B.c[i]->role == R_SUB && B.c[i]->t_open - t0 > t_open)
			t_open = B.c[i]->t_open - t0;
	uint32_t attached = B.attached;
	run_until(NULL, now_s() + 0.5);
	long rss1 = proc_status_kb(SV.pid, "VmRSS");
	/* held: one set must reach every one of them */
	double fcpu0 = proc_cpu_s(SV.pid);
	send_set(B.next_seq, now_s());
	flush(B.writer);
	g_target_seq = B.next_seq++;
	double tf0 = now_s();
	run_until(p_all_got, tf0 + 20);
	double fan_ms = (now_s() - tf0) * 1e3, fcpu = proc_cpu_s(SV.pid) - fcpu0;
	uint32_t held = 0;
	for (uint32_t i = 0; i < B.n; i++)
		if (B.c[i]->role == R_SUB && B.c[i]->state == C_OPEN && B.c[i]->last_seq >= g_target_seq)
			held++;
	jbegin("connections");
	jint("conns", N);
	jint("attached", attached);
	jint("held", held);
	jint("failed", B.failed);
	jnum("connect_all_s", t_all, 3);
	jnum("open_all_s", t_open, 3);
	jnum("connects_per_s", attached ? (double)attached / t_all : 0, 0);
	jint("server_rss_before_kb", rss0);
	jint("server_rss_after_kb", rss1);
	jnum("server_bytes_per_conn", rss0 >= 0 && N ? (double)(rss1 - rss0) * 1024 / N : NAN, 0);
	jint("server_peak_rss_kb", proc_status_kb(SV.pid, "VmHWM"));
	jnum("one_update_to_all_ms", fan_ms, 3);
	/* the server's share of it (its CPU time from the set to the last
	 * delivery; /proc counts in clock ticks, 10 ms) */
	jnum("one_update_server_cpu_ms", fcpu0 >= 0 ? fcpu * 1e3 : NAN, 0);
	jint("errors", (long long)(B.errors + B.bad_updates));
	jcommon();
	bool ok = attached == N && held == N && B.errors == 0 && B.gaps == 0;
	ok &= server_alive();
	jend(ok);
	teardown();
	return ok;
}

/* Bounded memory under a slow consumer (CTest bench/slow-consumer): one
 * subscriber with a tiny receive buffer stops reading; the writer keeps
 * setting payloads; the server must cut that client (4001, or a drop when
 * the close frame cannot get through its full socket), keep serving the
 * others without a gap, and keep its RSS flat. */
static bool scenario_slow_consumer(void)
{
	uint32_t K = O.n_subs ? O.subs[0] : 3;
	size_t mq = O.max_queue ? O.max_queue : 1 << 20;
	if (!O.payload)
		O.payload = 1024;
	B.payload = xrealloc(B.payload, O.payload);
	memset(B.payload, 'x', O.payload);
	info("slow_consumer: %u subscribers + 1 that stops reading, --max-queue %zu, %u-byte payloads, %.0f s",
	     K, mq, O.payload, O.duration);
	if (!setup(K, 0, mq, 1)) {
		teardown();
		return false;
	}
	conn *slow = NULL;
	for (uint32_t i = 0; i < B.n; i++)
		if (B.c[i]->role == R_SLOW)
			slow = B.c[i];
	slow->paused = true; /* stop reading */
	conn_events(slow);
	long rss0 = proc_status_kb(SV.pid, "VmRSS"), rss_max = rss0;
	B.w0 = now_s();
	B.w1 = B.w0 + O.duration;
	B.closed_loop = B.writing = true;
	send_set(B.next_seq++, now_s());
	flush(B.writer);
	/* enough bytes to fill the kernel's buffers on both sides (the server's
	 * send buffer grows to tcp_wmem's 4 MB) and then the queue, whatever
	 * the writer's speed on a busy machine: duration, volume, 60 s cap */
	double volume = (double)mq + 8.0 * 1024 * 1024;
	while ((now_s() < B.w1 || (double)B.acks * (O.payload + 40) < volume) &&
	       now_s() < B.w0 + 60) {
		run_until(NULL, now_s() + 0.05);
		long r = proc_status_kb(SV.pid, "VmRSS");
		if (r > rss_max)
			rss_max = r;
	}
	B.writing = false;
	g_target_seq = B.next_seq - 1;
	run_until(p_acked, now_s() + 5);
	bool drained = run_until(p_all_got, now_s() + 10);
	uint64_t missing = missing_at_end(g_target_seq);
	/* read again: what the server had sent, then the end of the connection */
	slow->paused = false;
	conn_events(slow);
	double tc = now_s();
	while (slow->state != C_CLOSED && now_s() - tc < 15)
		pump(0.05);
	bool cut = slow->state == C_CLOSED;
	long grow_kb = rss_max - rss0;
	bool logged = false;
	FILE *f = SV.spawned ? fopen(SV.log, "r") : NULL;
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "slow consumer"))
				logged = true;
		fclose(f);
	}
	jbegin("slow_consumer");
	jint("subs", K);
	jint("max_queue", (long long)mq);
	jint("payload_bytes", O.payload);
	jint("sets", (long long)g_target_seq);
	jbool("slow_client_closed", cut);
	jint("slow_close_code", slow->close_code); /* 0: dropped without a close frame */
	jint("slow_client_updates", (long long)slow->got);
	jbool("server_logged_slow_consumer", logged);
	jint("gaps", (long long)B.gaps);
	jint("out_of_order", (long long)B.ooo);
	jint("undelivered_at_end", (long long)missing);
	jint("server_rss_start_kb", rss0);
	jint("server_rss_max_kb", rss_max);
	jint("server_rss_growth_kb", grow_kb);
	jint("errors", (long long)(B.errors + B.bad_updates));
	jcommon();
	bool ok = cut && (slow->close_code == 0 || slow->close_code == TT_CLOSE_SLOW_CONSUMER) &&
		  slow->got < g_target_seq && drained && B.gaps == 0 && B.ooo == 0 && missing == 0 &&
		  grow_kb >= 0 && grow_kb < 64 * 1024 && B.errors == 0 && B.bad_updates == 0 &&
		  B.acks > 0;
	ok &= server_alive();
	jend(ok);
	teardown();
	return ok;
}

/* A server stopped from outside (on this shared machine, another test's
 * stale kill) is not a result: run the scenario again, twice at most. */
typedef bool (*scenario_fn)(uint32_t n, double x);
static bool sc_fanout(uint32_t n, double x) { (void)x; return scenario_fanout(n); }
static bool sc_open_loop(uint32_t n, double x) { return scenario_open_loop(n, x); }
static bool sc_late_join(uint32_t n, double x) { (void)n; (void)x; return scenario_late_join(); }
static bool sc_connections(uint32_t n, double x) { (void)x; return scenario_connections(n); }
static bool sc_slow(uint32_t n, double x) { (void)n; (void)x; return scenario_slow_consumer(); }
static bool sc_hooked(uint32_t n, double x) { return scenario_hooked(n, x > 0); }
static bool sc_floor(uint32_t n, double x) { return scenario_write_floor(n, x); }

static bool run(scenario_fn fn, uint32_t n, double x)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		g_server_died = false;
		bool ok = fn(n, x);
		if (!g_server_died)
			return ok;
		warnx_("the server stopped during the scenario (not by this bench): running it again");
	}
	g_all_ok = false;
	return false;
}

/* ---- decode micro-benchmark ------------------------------------------- */

static void decode_bench(void)
{
	tt_buf b;
	tt_buf_init(&b, 0);
	tt_enc_array(&b, 5);
	tt_enc_uint(&b, TT_MSG_UPDATE);
	tt_enc_uint(&b, 12);
	tt_enc_uint(&b, 123456);
	tt_enc_float(&b, 1234.5678);
	tt_enc_map(&b, 2);
	tt_enc_str(&b, "seq");
	tt_enc_uint(&b, 123456);
	tt_enc_str(&b, "t");
	tt_enc_float(&b, 1234.5678);
	const uint8_t *p = tt_buf_data(&b);
	size_t n = b.len;
	const int N = 2000000;
	double sum = 0;
	double t0 = now_s();
	for (int i = 0; i < N; i++) {
		upd u;
		if (!parse_update(p, n, &u))
			abort();
		sum += u.t;
	}
	double t1 = now_s();
	for (int i = 0; i < N; i++) {
		tt_value v;
		size_t off = 0;
		if (tt_decode(B.dec, p, n, &off, &B.arena, &v, NULL) < 0)
			abort();
		const tt_value *m = &v.v.items[4];
		double t;
		tt_as_double(tt_map_get(m, "t"), &t);
		sum += t;
		tt_arena_reset(&B.arena);
	}
	double t2 = now_s();
	printf("{\"scenario\":\"decode_bench\",\"update_bytes\":%zu,\"fast_parser_ns\":%.1f,"
	       "\"tt_decode_ns\":%.1f,\"checksum\":%.0f}\n",
	       n, (t1 - t0) * 1e9 / N, (t2 - t1) * 1e9 / N, sum);
	tt_buf_free(&b);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: tutti-bench [SCENARIO...] [OPTIONS]\n"
"Load generator for tutti-server. Prints one JSON line per scenario on\n"
"stdout; progress on stderr. Exit status 0 when every scenario's\n"
"correctness checks pass (speed is never asserted).\n"
"\n"
"Scenarios (default: all):\n"
"  fanout        K subscribers (--subs) on one state; one writer doing\n"
"                seq += 1; set({seq, t: now}) in a closed loop for D s after a\n"
"                1 s warm-up; sets/s, delivered/s, latency, gaps, server RSS/CPU\n"
"  open_loop     the writer sets at fixed rates (--rate, a sweep) without\n"
"                waiting for acks; delivered rate, latency, keeps up or not\n"
"                (rate reached, 95 %% delivered in the window, drained in 1 s,\n"
"                p99 <= --p99-bound)\n"
"  late_join     H awaited sets (--history), then new clients connect and\n"
"                attach with the whole history (--joins times); timings, checks\n"
"  connections   N idle attached clients (--conns); server RSS before/after,\n"
"                bytes per connection, time to connect all\n"
"  hooked        fanout's closed loop (K = the first --subs, default 100)\n"
"                without, then with a hook client answering every update\n"
"                hook at once: sets/s, set -> RESULT round trip, ratios\n"
"  equal_load    load that compares: one update per frame; for each rate\n"
"                (default 100,1000; K = the first --subs, default 1000)\n"
"                write_floor, then open_loop at that K and rate, whose line\n"
"                adds cpu_vs_floor (server CPU per delivery / the floor's)\n"
"  write_floor   the cost of a delivery to the kernel: a process on the\n"
"                server's CPU writes one 40-byte frame to each of K loopback\n"
"                sockets per round at the rate; CPU per write\n"
"  all           fanout K=100 and K=1000, open_loop, late_join, connections\n"
"                N=1000 and N=10000 (the lists apply unless --subs/--conns),\n"
"                hooked, equal_load (the lists apply unless --subs/--rate)\n"
"  slow_consumer a test, not part of all: a client stops reading; asserts it\n"
"                is cut, others see no gap, server RSS stays < start + 64 MB\n"
"\n"
"Options:\n"
"  --server PATH   server binary to start for each scenario (default: the\n"
"                  tutti-server next to this program, or $TUTTI_SERVER);\n"
"                  started with --db :memory: --max-rate 0 --port 0\n"
"  --url URL       measure a running server instead (ws://HOST:PORT/); a\n"
"                  comma-separated list: nodes of one piece (--engine): the\n"
"                  writer on the first, subscribers round robin, a late\n"
"                  joiner on the last\n"
"  --pid PID       with --url: that server's pid, to read its RSS and CPU\n"
"  --db PATH       database for the started server (default :memory:)\n"
"  --server-arg A  one more argument for the started server (repeatable),\n"
"                  e.g. --server-arg --sync --server-arg full\n"
"  --subs K[,K2]   fanout subscribers (default 100; all: 100,1000); open_loop\n"
"                  uses the first (default 100)\n"
"  --duration D    measured seconds per run (default 5)\n"
"  --warmup W      warm-up seconds before measuring (default 1)\n"
"  --rate R[,R2]   open_loop rates in sets/s (default 5000,10000,20000,40000)\n"
"  --p99-bound MS  open_loop keeps up only with latency p99 <= MS (default 20)\n"
"  --history H     late_join events (default 1000)\n"
"  --joins J       late_join repetitions (default 20)\n"
"  --conns N[,N2]  connections (default 1000; all: 1000,10000)\n"
"  --payload B     also set a B-byte string with every set (default 0)\n"
"  --inflight N    handshakes in flight at most (default 1000)\n"
"  --max-queue B   slow_consumer: the server's --max-queue (default 1048576)\n"
"  --hook-role R   hooked: the hook client's role (default " HOOK_ROLE ", which a\n"
"                  started server gets from a roles.json with a fresh token)\n"
"  --hook-token T  hooked: that role's token (needed with --url)\n"
"  --no-pin        do not pin (default with 2+ cores: server on CPU 0, the\n"
"                  bench on CPU 1, reported in the JSON as \"pinning\")\n"
"  --decode-bench  time the UPDATE fast parser against tt_decode, then exit\n"
"  -q, --quiet     no progress on stderr\n"
"  -h, --help      this help\n");
}

static uint32_t parse_list_u(const char *s, uint32_t *out, uint32_t max)
{
	uint32_t n = 0;
	char *end;
	while (*s && n < max) {
		unsigned long v = strtoul(s, &end, 10);
		if (end == s)
			return 0;
		out[n++] = (uint32_t)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return 0;
	}
	return n;
}

static uint32_t parse_list_d(const char *s, double *out, uint32_t max)
{
	uint32_t n = 0;
	char *end;
	while (*s && n < max) {
		double v = strtod(s, &end);
		if (end == s || v <= 0)
			return 0;
		out[n++] = v;
		if (*end && *end != ',')
			return 0;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static void default_server(void)
{
	static char path[4096];
	const char *env = getenv("TUTTI_SERVER");
	if (env && *env) {
		O.server = env;
		return;
	}
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	if (n > 0) {
		path[n] = 0;
		char *slash = strrchr(path, '/');
		if (slash) {
			strcpy(slash + 1, "tutti-server");
			O.server = path;
			return;
		}
	}
	O.server = "tutti-server";
}

/* The started server's roles: the default one (the bench's clients, trusted
 * with --open) and the hook client's, with a token drawn now. */
static bool write_roles(void)
{
	unsigned char rnd[16];
	FILE *u = fopen("/dev/urandom", "rb");
	bool got = u && fread(rnd, 1, sizeof(rnd), u) == sizeof(rnd);
	if (u)
		fclose(u);
	if (!got) {
		warnx_("cannot read /dev/urandom for the hook role's token");
		return false;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(O.hook_token_buf + 2 * i, 3, "%02x", rnd[i]);
	O.hook_token = O.hook_token_buf;
	char path[96];
	snprintf(path, sizeof(path), "%s/roles.json", SV.tmpdir);
	FILE *f = fopen(path, "w");
	if (!f) {
		warnx_("%s: %s", path, strerror(errno));
		return false;
	}
	fprintf(f, "{\"default\": \"audience\", \"roles\": {\"audience\": {}, "
		   "\"%s\": {\"hooks\": true, \"token\": \"%s\"}}}\n", O.hook_role, O.hook_token);
	return fclose(f) == 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = 65536;
		struct rlimit up = {want, want};
		if (rl.rlim_max < want && setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_sig(int sig)
{
	(void)sig;
	if (SV.spawned && SV.pid > 0)
		kill(SV.pid, SIGTERM);
	_exit(130);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, 0, 'S'},  {"url", required_argument, 0, 'U'},
		{"pid", required_argument, 0, 'P'},     {"db", required_argument, 0, 'D'},
		{"subs", required_argument, 0, 'k'},    {"duration", required_argument, 0, 'd'},
		{"warmup", required_argument, 0, 'w'},  {"rate", required_argument, 0, 'r'},
		{"history", required_argument, 0, 'H'}, {"joins", required_argument, 0, 'j'},
		{"conns", required_argument, 0, 'n'},   {"payload", required_argument, 0, 'p'},
		{"inflight", required_argument, 0, 'i'}, {"max-queue", required_argument, 0, 'm'},
		{"no-pin", no_argument, 0, 'N'},        {"decode-bench", no_argument, 0, 'B'},
		{"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
		{"server-arg", required_argument, 0, 'A'}, {"p99-bound", required_argument, 0, 'b'},
		{"hook-role", required_argument, 0, 'R'}, {"hook-token", required_argument, 0, 'T'},
		{0, 0, 0, 0}};
	O.duration = 5;
	O.warmup = 1;
	O.p99_bound_ms = 20;
	O.history = 1000;
	O.joins = 20;
	O.inflight = 1000;
	int c;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'S': O.server = optarg; break;
		case 'U': O.url = optarg; break;
		case 'P': O.ext_pid = (pid_t)atoi(optarg); break;
		case 'D': O.db = optarg; break;
		case 'A':
			if (O.n_server_args == sizeof(O.server_args) / sizeof(*O.server_args))
				goto bad;
			O.server_args[O.n_server_args++] = optarg;
			break;
		case 'k':
			if (!(O.n_subs = parse_list_u(optarg, O.subs, MAX_LIST))) goto bad;
			break;
		case 'n':
			if (!(O.n_conns = parse_list_u(optarg, O.conns, MAX_LIST))) goto bad;
			break;
		case 'r':
			if (!(O.n_rates = parse_list_d(optarg, O.rates, MAX_LIST))) goto bad;
			break;
		case 'd': O.duration = atof(optarg); if (O.duration <= 0) goto bad; break;
		case 'b': O.p99_bound_ms = atof(optarg); if (O.p99_bound_ms <= 0) goto bad; break;
		case 'w': O.warmup = atof(optarg); if (O.warmup < 0) goto bad; break;
		case 'H': O.history = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'j': O.joins = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'p': O.payload = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': O.inflight = (uint32_t)strtoul(optarg, NULL, 10); if (!O.inflight) goto bad; break;
		case 'm': O.max_queue = strtoull(optarg, NULL, 10); break;
		case 'R': O.hook_role = optarg; break;
		case 'T': O.hook_token = optarg; break;
		case 'N': O.no_pin = true; break;
		case 'B': O.decode_bench = true; break;
		case 'q': g_quiet = true; break;
		case 'h': usage(stdout); return 0;
		default:
		bad:
			fprintf(stderr, "Try 'tutti-bench --help'.\n");
			return 2;
		}
	}
	bool want_fanout = false, want_open = false, want_late = false, want_conns = false,
	     want_slow = false, want_hooked = false, want_floor = false, want_equal = false,
	     all = false;
	if (optind == argc)
		all = true;
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "fanout")) want_fanout = true;
		else if (!strcmp(argv[i], "open_loop")) want_open = true;
		else if (!strcmp(argv[i], "late_join")) want_late = true;
		else if (!strcmp(argv[i], "connections")) want_conns = true;
		else if (!strcmp(argv[i], "slow_consumer")) want_slow = true;
		else if (!strcmp(argv[i], "hooked")) want_hooked = true;
		else if (!strcmp(argv[i], "write_floor")) want_floor = true;
		else if (!strcmp(argv[i], "equal_load")) want_equal = true;
		else if (!strcmp(argv[i], "all")) all = true;
		else {
			fprintf(stderr, "tutti-bench: unknown scenario '%s'\nTry 'tutti-bench --help'.\n",
				argv[i]);
			return 2;
		}
	}
	if (all)
		want_fanout = want_open = want_late = want_conns = want_hooked = want_equal = true;
	if (!O.hook_role)
		O.hook_role = HOOK_ROLE;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	raise_nofile();
	B.dec = tt_decoder_new();
	tt_arena_init(&B.arena, 0);
	tt_buf_init(&B.enc, 0);
	B.mask_state = (uint32_t)getpid() * 2654435761u | 1;
	B.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (O.decode_bench) {
		decode_bench();
		return 0;
	}
	if (!O.payload)
		B.payload = NULL;
	else {
		B.payload = xrealloc(NULL, O.payload);
		memset(B.payload, 'x', O.payload);
	}

	if (O.url) {
		SV.spawned = false;
		SV.pid = O.ext_pid;
		if (!parse_url(O.url))
			return 2;
	} else {
		SV.spawned = true;
		if (!O.server)
			default_server();
		if (access(O.server, X_OK) != 0) {
			warnx_("server binary %s: %s (use --server PATH or --url)", O.server,
			       strerror(errno));
			return 2;
		}
		snprintf(SV.host, sizeof(SV.host), "127.0.0.1");
		snprintf(SV.path, sizeof(SV.path), "/");
		snprintf(SV.tmpdir, sizeof(SV.tmpdir), "/tmp/tutti-bench-XXXXXX");
		if (!mkdtemp(SV.tmpdir)) {
			warnx_("mkdtemp: %s", strerror(errno));
			return 2;
		}
		snprintf(SV.log, sizeof(SV.log), "%s.server.log", SV.tmpdir);
		if (!O.hook_token && !write_roles())
			return 2;
	}
	SV.pinning = "none";
	if (!O.no_pin && ncpus() >= 2) {
		if (pin_to(0, 1)) {
			SV.pinned = SV.spawned;
			SV.pinning = SV.spawned ? "server=cpu0,bench=cpu1" : "bench=cpu1";
		}
	}
	info("server %s, pinning %s", SV.spawned ? O.server : O.url, SV.pinning);

	bool ok = true;
	if (want_fanout) {
		uint32_t def[2] = {100, 1000};
		const uint32_t *ks = O.n_subs ? O.subs : def;
		uint32_t nk = O.n_subs ? O.n_subs : (all ? 2 : 1);
		for (uint32_t i = 0; i < nk; i++)
			ok &= run(sc_fanout, ks[i], 0);
	}
	if (want_open) {
		double def[4] = {5000, 10000, 20000, 40000};
		const double *rs = O.n_rates ? O.rates : def;
		uint32_t nr = O.n_rates ? O.n_rates : 4;
		for (uint32_t i = 0; i < nr; i++)
			ok &= run(sc_open_loop, O.n_subs ? O.subs[0] : 100, rs[i]);
	}
	if (want_late)
		ok &= run(sc_late_join, 0, 0);
	if (want_conns) {
		uint32_t def[2] = {1000, 10000};
		const uint32_t *ns = O.n_conns ? O.conns : def;
		uint32_t nn = O.n_conns ? O.n_conns : (all ? 2 : 1);
		for (uint32_t i = 0; i < nn; i++)
			ok &= run(sc_connections, ns[i], 0);
	}
	if (want_slow)
		ok &= run(sc_slow, 0, 0);
	if (want_floor || want_equal) {
		/* equal load: one update per frame (K=1000 at 100 and 1000 sets/s),
		 * each rate right after the write floor at the same K and rate */
		double def[2] = {100, 1000};
		const double *rs = O.n_rates ? O.rates : def;
		uint32_t nr = O.n_rates ? O.n_rates : 2;
		uint32_t k = O.n_subs ? O.subs[0] : 1000;
		for (uint32_t i = 0; i < nr; i++) {
			ok &= run(sc_floor, k, rs[i]);
			if (want_equal)
				ok &= run(sc_open_loop, k, rs[i]);
			g_floor_us = -1;
		}
	}
	if (want_hooked) {
		uint32_t k = O.n_subs ? O.subs[0] : 100;
		ok &= run(sc_hooked, k, 0);
		ok &= run(sc_hooked, k, 1);
	}

	if (SV.spawned) {
		if (ok)
			unlink(SV.log);
		else
			warnx_("server log kept in %s", SV.log);
		char roles[96];
		snprintf(roles, sizeof(roles), "%s/roles.json", SV.tmpdir);
		unlink(roles);
		rmdir(SV.tmpdir);
	}
	tt_decoder_free(B.dec);
	tt_arena_destroy(&B.arena);
	tt_buf_free(&B.enc);
	free(B.payload);
	free(B.rb);
	free(B.c);
	return ok && g_all_ok ? 0 : 1;
}
