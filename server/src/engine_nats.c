/* SPDX-License-Identifier: MIT */
/* engine_nats.c: NATS JetStream as the store of record (--engine
 * nats://...), the only file that includes nats.h. One stream holds the
 * piece: a subject per state (values and the events of a turn), and one
 * record subject (its last message counts) per session, class, meta key and
 * node; each keeps its last --history messages. No rollup or purge is ever
 * used: after one, nats-server 2.9.10's consumers skip messages of other
 * subjects not yet delivered (measured: 15 to 26 of 130 per node with
 * rollups on the records, none without). Every append carries the subject's
 * expected last sequence (a fence: a second writer of a subject is refused,
 * never forked) and a message id (a retry after a lost acknowledgement is
 * recognised, not stored twice). Acknowledgements come on libnats' threads
 * and are handed to the loop (engine.h); a batch is durable once every
 * message it needs is acknowledged. At start the stream is read from its
 * first message to rebuild the rows; then the same consumer follows it. */
#define _DEFAULT_SOURCE /* pthread_cond_timedwait with CLOCK_MONOTONIC */
#include "engine.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "codec.h"
#include "idmap.h"
#include "log.h"
#include "secret.h"

/* An append not acknowledged within this many ms is sent again (the same
 * message id: stored once). Short: a JetStream leader election stalls
 * writes for seconds, and the first acknowledgement after it ends the
 * stall (a longer wait only adds to it). */
#define PUB_WAIT_MS 1000
/* Unacknowledged appends older than this make the storage "failing":
 * changes are refused (STORAGE) until the engine answers again. */
#define FAILING_AFTER 2.0
/* Bytes of messages waiting for JetStream past which requests that would
 * add more are refused (tt_db_backlog_full). */
#define BACKLOG_MAX (64u << 20)
/* How long the start may take to read the stream before giving up. */
#define RESTORE_TIMEOUT 120.0

/* ---- handover: libnats threads -> the loop ------------------------------- */

enum ho_kind { HO_MSG, HO_ACK, HO_RPC };

typedef struct ho_item {
	enum ho_kind kind;
	natsMsg *msg;         /* HO_MSG, HO_RPC: owned */
	uint64_t pubid;       /* HO_ACK */
	uint64_t seq;
	bool dup;
	natsStatus err;
	int errcode;          /* jsErrCode */
	char errtext[120];
	struct ho_item *next;
} ho_item;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ho_item *head, *tail;
	bool closed;          /* closing: callbacks free what they get */
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, false};

static void item_free(ho_item *it);

static void q_push(ho_item *it)
{
	pthread_mutex_lock(&Q.mu);
	if (Q.closed) {
		/* the loop no longer reads the queue: freed here, on libnats's
		 * thread, while the library still runs (nats_close_all) */
		pthread_mutex_unlock(&Q.mu);
		item_free(it);
		return;
	}
	if (Q.tail)
		Q.tail->next = it;
	else
		Q.head = it;
	Q.tail = it;
	pthread_cond_signal(&Q.cv);
	pthread_mutex_unlock(&Q.mu);
	tt_engine_wake();
}

/* Everything queued, in order (the caller frees each item); closing:
 * nothing is queued after it. */
static ho_item *q_take_all(bool closing)
{
	pthread_mutex_lock(&Q.mu);
	ho_item *all = Q.head;
	Q.head = Q.tail = NULL;
	Q.closed = closing;
	pthread_mutex_unlock(&Q.mu);
	return all;
}

/* Wait until something is queued or the deadline (mono seconds) passes. */
static void q_wait(double deadline)
{
	pthread_mutex_lock(&Q.mu);
	while (!Q.head) {
		double left = deadline - tt_clock_mono();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double d = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + TT_MIN(left, 0.25);
		ts.tv_sec = (time_t)d;
		ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&Q.cv, &Q.mu, &ts);
	}
	pthread_mutex_unlock(&Q.mu);
}

static void item_free(ho_item *it)
{
	if (it->msg)
		natsMsg_Destroy(it->msg);
	free(it);
}

/* Publishes never acknowledged (the server went away, or a stop that did
 * not wait for them) are handed back by the library: freed here, or they
 * leak at every such stop. */
static void drop_pending(jsCtx *js, bool published)
{
	natsMsgList pending;
	/* libnats 3.4 dereferences its pending map without checking it was
	 * ever made: only a context that published asynchronously has one */
	if (js && published && js_PublishAsyncGetPendingList(&pending, js) == NATS_OK)
		natsMsgList_Destroy(&pending);
}

/* ---- the sink: where another node's messages go (engine.h) ------------- */

static const tt_engine_sink *SINK;

void tt_engine_set_sink(const tt_engine_sink *sink)
{
	SINK = sink;
}

#define SINK_CALL(fn, ...) \
	do { \
		if (SINK) \
			SINK->fn(__VA_ARGS__); \
	} while (0)
#define SINK_CALL0(fn) \
	do { \
		if (SINK) \
			SINK->fn(); \
	} while (0)

/* ---- subjects and what the engine keeps of them ------------------------- */

enum sj_kind { K_STATE, K_SESSION, K_CLASS, K_META, K_NODE, K_COUNT };
static const char sj_letter[K_COUNT] = {'s', 'x', 'c', 'm', 'n'};

typedef struct pubmsg pubmsg;

/* One subject of the stream: a state's history, or a record. */
typedef struct subj {
	enum sj_kind kind;
	uint64_t id;         /* state, session or node */
	char *key;           /* class name, meta key (owned, NUL-terminated) */
	char *subject;       /* owned */
	uint64_t seq;        /* stream seq of its last message (0: none) */
	uint64_t first;      /* stream seq of its first message seen (creation order) */
	uint32_t writer;     /* node that wrote its last message */
	pubmsg *inflight;    /* sent, not acknowledged */
	bool dirty;          /* to publish (after inflight) */
	uint64_t dirty_batch;/* the first batch that waits for it */
	struct subj *dirty_next;
	struct subj *next;   /* all subjects of its kind, first seen first */
} subj;

struct pubmsg {
	uint64_t pubid;
	subj *sj;
	uint64_t batch;      /* the batch counting it (0: none) */
	uint64_t expect;     /* expected last subject seq */
	tt_buf body;
	double sent;         /* tt_clock_mono() of the last send */
	double first_sent;
	double retry_at;     /* > 0: send again then */
	pubmsg *next;        /* all in flight */
};

typedef struct sched_row {
	uint64_t id;
	double at;
	uint64_t origin;
	tt_buf changes;
} sched_row;

typedef struct pev {        /* an event to publish: its changes are in est.events */
	uint64_t seq, origin, rid, sched;
	double time;
	size_t off, len;
	uint32_t node;
} pev;

typedef struct stag {       /* a schedule made by a forwarded request, or cancelled */
	uint64_t id, rid, by;
	uint32_t node;
} stag;

typedef struct est {        /* a state */
	subj sj;
	char *cls;
	uint64_t owner, seq;
	double time;
	tt_buf vals, init;
	bool has_init, has_vals;
	tt_buf events;       /* the changes of the events to publish, back to back */
	pev *ev;             /* the events to publish */
	uint32_t n_events, cap_events;
	stag *tags;          /* schedule tags to publish */
	uint32_t n_tags;
	uint64_t ev_last;    /* seq of the last event taken or read back */
	tt_buf hist;         /* at start: every event read back (same items) */
	uint32_t n_hist;
	tt_idmap scheds;     /* id -> sched_row */
	char *deleted;       /* the reason, once deleted */
	tt_buf held;         /* other nodes' messages read while this node's own
			      * writes were unsettled: [seq u64][writer u32][len
			      * u32][body] each, applied after them */
} est;

typedef struct inst_row {
	uint64_t id, state;
	tt_buf filter;
} inst_row;

typedef struct ese {        /* a session */
	subj sj;
	char digest[2 * TT_DIGEST_LEN + 1];
	char *role;
	double gone;         /* wall time it lost its connection; 0 connected */
	bool ended;
	bool kicked;         /* ended by the operator */
	uint32_t node;       /* the node holding it */
	tt_idmap inst;       /* id -> inst_row */
	char **observes;     /* class names; "" for every class */
	uint32_t n_observes;
} ese;

typedef struct erec {       /* a class or meta record */
	subj sj;
	tt_buf data;         /* class: description; meta text: value */
	double value;        /* meta number */
	bool text, deleted;
} erec;

typedef struct enode {      /* a node's record */
	subj sj;
	double hb;           /* wall time of its last heartbeat */
	double hb_mono;      /* when this process saw it (liveness) */
	uint64_t inc;        /* its incarnation */
	uint64_t ids[4];     /* next state, instance, session, schedule */
	bool stopped;
	char host[64];       /* where it runs, and its process id: a node */
	uint32_t pid;        /* restarted on the same machine knows its old self */
} enode;

#define MAX_NODES 64
enum { ID_STATE, ID_INSTANCE, ID_SESSION, ID_SCHED };
static const char *const id_keys[4] = {"next_state", "next_instance", "next_session",
				       "next_sched"};

static struct {
	bool published_async; /* N.js has published asynchronously (drop_pending) */
	const tt_config *cfg;
	natsConnection *nc;
	natsOptions *opts;
	jsCtx *js;
	natsSubscription *sub, *rpc;
	char stream[80];
	char rpc_prefix[80]; /* "tutti_rpc.<name>": core NATS, not in the stream */
	char prefix[80];     /* "tutti.<name>" */
	char url[256];
	int64_t replicas;    /* the stream's, as the server has it */
	uint32_t node;
	uint64_t inc;        /* incarnation: this process's start (microseconds) */
	uint64_t next_pubid;
	bool opened;         /* restored: messages now apply live */
	uint64_t restore_to; /* stream seq the start reads up to */
	uint64_t read_upto;  /* the last stream seq read */
	double epoch;        /* wall time of the piece's sync clock 0 */

	tt_idmap states, sessions, instances, inflight;
	subj *first[K_COUNT], *last[K_COUNT];
	erec *classes, *metas; /* through sj.next */
	enode nodes[MAX_NODES];
	subj *dirty, *dirty_last;
	pubmsg *flying;      /* in flight, list */
	uint32_t n_flying;
	size_t backlog;      /* body bytes in flight or to publish */

	/* batches waiting for acknowledgements, oldest first */
	struct { uint64_t batch; uint32_t left; } *bq;
	uint32_t bq_head, bq_len, bq_cap;
	uint64_t last_batch; /* the last batch taken */
	uint64_t durable;    /* every batch <= this is durable */

	double heartbeat_due;
	bool ids_dirty;
	char failing[160];
	uint64_t fenced;     /* the first batch with a refused message (poll) */

	tt_decoder *dec;
	tt_arena arena;
	tt_buf tmp;
} N;

static void hex(char *out, const char *s, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[(unsigned char)s[i] >> 4];
		out[2 * i + 1] = d[(unsigned char)s[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool unhex(const char *h, size_t n, char *out)
{
	if (n % 2)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = h[2 * i + (size_t)k];
			int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (x < 0)
				return false;
			v = v * 16 + x;
		}
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return true;
}

static void subj_init(subj *sj, enum sj_kind kind, uint64_t id, const char *key, size_t len)
{
	char name[600];
	sj->kind = kind;
	sj->id = id;
	if (key) {
		sj->key = tt_strndup(key, len);
		char h[2 * 256 + 1];
		hex(h, key, TT_MIN(len, (size_t)256));
		snprintf(name, sizeof(name), "%s.%c.%s", N.prefix, sj_letter[kind], h);
	} else {
		snprintf(name, sizeof(name), "%s.%c.%llu", N.prefix, sj_letter[kind],
			 (unsigned long long)id);
	}
	sj->subject = tt_strndup(name, strlen(name));
	if (N.last[kind])
		N.last[kind]->next = sj;
	else
		N.first[kind] = sj;
	N.last[kind] = sj;
}

static est *state_get(uint64_t id, bool make)
{
	est *st = tt_idmap_get(&N.states, id);
	if (st || !make)
		return st;
	st = tt_calloc(1, sizeof(*st));
	subj_init(&st->sj, K_STATE, id, NULL, 0);
	tt_buf_init(&st->vals, 0);
	tt_buf_init(&st->init, 0);
	tt_buf_init(&st->events, 0);
	tt_buf_init(&st->hist, 0);
	tt_buf_init(&st->held, 0);
	tt_idmap_init(&st->scheds);
	tt_idmap_put(&N.states, id, st);
	return st;
}

static ese *session_get(uint64_t id, bool make)
{
	ese *se = tt_idmap_get(&N.sessions, id);
	if (se || !make)
		return se;
	se = tt_calloc(1, sizeof(*se));
	subj_init(&se->sj, K_SESSION, id, NULL, 0);
	tt_idmap_init(&se->inst);
	tt_idmap_put(&N.sessions, id, se);
	return se;
}

static erec *rec_get(enum sj_kind kind, const char *key, size_t len, bool make)
{
	for (subj *sj = N.first[kind]; sj; sj = sj->next)
		if (strlen(sj->key) == len && !memcmp(sj->key, key, len))
			return (erec *)sj;
	if (!make)
		return NULL;
	erec *r = tt_calloc(1, sizeof(*r));
	tt_buf_init(&r->data, 0);
	subj_init(&r->sj, kind, 0, key, len);
	return r;
}

static void sched_row_free(sched_row *r)
{
	tt_buf_free(&r->changes);
	free(r);
}

static void idmap_free_vals(tt_idmap *m, void (*fr)(void *))
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && m->keys[i] != UINT64_MAX)
			fr(m->vals[i]);
	tt_idmap_free(m);
}

static void free_sched(void *p) { sched_row_free(p); }

static void free_inst(void *p)
{
	inst_row *r = p;
	tt_buf_free(&r->filter);
	free(r);
}

static void observes_clear(ese *se)
{
	for (uint32_t i = 0; i < se->n_observes; i++)
		free(se->observes[i]);
	TT_FREE(se->observes);
	se->n_observes = 0;
}

/* ---- batches ----------------------------------------------------------- */

/* The batch counting a message that becomes due at batch b. */
static void batch_add(uint64_t b)
{
	if (!b)
		return;
	if (N.bq_len && N.bq[(N.bq_head + N.bq_len - 1) % N.bq_cap].batch >= b) {
		/* a later message of an older batch: counted on the newest entry,
		 * which cannot be released before the older ones anyway */
		N.bq[(N.bq_head + N.bq_len - 1) % N.bq_cap].left++;
		return;
	}
	if (N.bq_len == N.bq_cap) {
		uint32_t cap = N.bq_cap ? 2 * N.bq_cap : 64;
		__typeof__(N.bq) q = tt_malloc(sizeof(*q) * cap);
		for (uint32_t i = 0; i < N.bq_len; i++)
			q[i] = N.bq[(N.bq_head + i) % N.bq_cap];
		free(N.bq);
		N.bq = q;
		N.bq_head = 0;
		N.bq_cap = cap;
	}
	N.bq[(N.bq_head + N.bq_len++) % N.bq_cap].batch = b;
	N.bq[(N.bq_head + N.bq_len - 1) % N.bq_cap].left = 1;
}

static void batch_done(uint64_t b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < N.bq_len; i++) {
		uint32_t k = (N.bq_head + i) % N.bq_cap;
		if (N.bq[k].batch >= b) {
			tt_assert(N.bq[k].left > 0);
			N.bq[k].left--;
			return;
		}
	}
	tt_assert_fail("acknowledged message of no batch", __FILE__, __LINE__);
}

/* Drop the acknowledged prefix; the last batch of it is durable. */
static bool batches_settle(void)
{
	bool any = false;
	while (N.bq_len && !N.bq[N.bq_head].left) {
		N.durable = N.bq[N.bq_head].batch;
		N.bq_head = (N.bq_head + 1) % N.bq_cap;
		N.bq_len--;
		any = true;
	}
	return any;
}

/* ---- building messages ------------------------------------------------- */

static void enc_bin(tt_buf *b, const void *p, size_t n)
{
	tt_value v = {.type = TT_BIN, .len = (uint32_t)n};
	v.v.s = p;
	tt_enc_value(b, &v);
}

static void enc_key(tt_buf *b, const char *k)
{
	tt_enc_str(b, k);
}

static int cmp_sched(const void *a, const void *b)
{
	const sched_row *x = *(sched_row *const *)a, *y = *(sched_row *const *)b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The schedules of st, by (at, id) (an array the caller frees). */
static sched_row **scheds_sorted(est *st, uint32_t *n)
{
	*n = 0;
	sched_row **v = st->scheds.len ? tt_malloc(sizeof(*v) * st->scheds.len) : NULL;
	for (size_t i = 0; i < st->scheds.cap; i++)
		if (st->scheds.keys[i] && st->scheds.keys[i] != UINT64_MAX)
			v[(*n)++] = st->scheds.vals[i];
	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_sched);
	return v;
}

/* A state's message: its values now (the last message of the subject is a
 * snapshot), the events since its previous message, its pending schedules,
 * or its deletion. */
static void build_state(est *st, tt_buf *b)
{
	uint32_t n = 6 + (st->has_init ? 1 : 0) + (st->n_events ? 1 : 0) + (st->n_tags ? 1 : 0) +
		     (st->scheds.len ? 1 : 0) + (st->deleted ? 1 : 0);
	tt_enc_map(b, n);
	enc_key(b, "c");
	tt_enc_str(b, st->cls ? st->cls : "");
	enc_key(b, "o");
	tt_enc_uint(b, st->owner);
	enc_key(b, "q");
	tt_enc_uint(b, st->seq);
	enc_key(b, "t");
	tt_enc_float(b, st->time);
	enc_key(b, "n");
	tt_enc_uint(b, N.node);
	enc_key(b, "v");
	enc_bin(b, tt_buf_data(&st->vals), st->vals.len);
	if (st->has_init) {
		enc_key(b, "i");
		enc_bin(b, tt_buf_data(&st->init), st->init.len);
	}
	if (st->n_events) {
		enc_key(b, "e");
		tt_enc_array(b, st->n_events);
		for (uint32_t i = 0; i < st->n_events; i++) {
			const pev *e = &st->ev[i];
			bool tagged = e->rid || e->sched;
			tt_enc_array(b, tagged ? 7 : 4);
			tt_enc_uint(b, e->seq);
			tt_enc_float(b, e->time);
			tt_enc_uint(b, e->origin);
			enc_bin(b, tt_buf_data(&st->events) + e->off, e->len);
			if (tagged) {
				tt_enc_uint(b, e->rid);
				tt_enc_uint(b, e->node);
				tt_enc_uint(b, e->sched);
			}
		}
		tt_buf_clear(&st->events);
		st->n_events = 0;
	}
	if (st->n_tags) {
		enc_key(b, "g");
		tt_enc_array(b, st->n_tags);
		for (uint32_t i = 0; i < st->n_tags; i++) {
			tt_enc_array(b, 4);
			tt_enc_uint(b, st->tags[i].id);
			tt_enc_uint(b, st->tags[i].rid);
			tt_enc_uint(b, st->tags[i].node);
			tt_enc_uint(b, st->tags[i].by);
		}
		st->n_tags = 0;
	}
	if (st->scheds.len) {
		uint32_t k;
		sched_row **v = scheds_sorted(st, &k);
		enc_key(b, "s");
		tt_enc_array(b, k);
		for (uint32_t i = 0; i < k; i++) {
			tt_enc_array(b, 4);
			tt_enc_uint(b, v[i]->id);
			tt_enc_float(b, v[i]->at);
			tt_enc_uint(b, v[i]->origin);
			enc_bin(b, tt_buf_data(&v[i]->changes), v[i]->changes.len);
		}
		free(v);
	}
	if (st->deleted) {
		enc_key(b, "d");
		tt_enc_str(b, st->deleted);
	}
}

static void build_session(ese *se, tt_buf *b)
{
	if (se->ended) {
		tt_enc_map(b, se->kicked ? 2 : 1);
		enc_key(b, "x");
		tt_enc_bool(b, true);
		if (se->kicked) {
			enc_key(b, "k");
			tt_enc_bool(b, true);
		}
		return;
	}
	tt_enc_map(b, 6);
	enc_key(b, "d");
	tt_enc_str(b, se->digest);
	enc_key(b, "r");
	tt_enc_str(b, se->role ? se->role : "");
	enc_key(b, "n");
	tt_enc_uint(b, se->node);
	enc_key(b, "g");
	tt_enc_float(b, se->gone);
	enc_key(b, "i");
	tt_enc_array(b, (uint32_t)se->inst.len);
	for (size_t i = 0; i < se->inst.cap; i++) {
		if (!se->inst.keys[i] || se->inst.keys[i] == UINT64_MAX)
			continue;
		inst_row *r = se->inst.vals[i];
		tt_enc_array(b, 3);
		tt_enc_uint(b, r->id);
		tt_enc_uint(b, r->state);
		enc_bin(b, tt_buf_data(&r->filter), r->filter.len);
	}
	enc_key(b, "o");
	tt_enc_array(b, se->n_observes);
	for (uint32_t i = 0; i < se->n_observes; i++) {
		if (se->observes[i][0])
			tt_enc_str(b, se->observes[i]);
		else
			tt_enc_nil(b);
	}
}

static void build_record(erec *r, tt_buf *b)
{
	tt_enc_map(b, 2);
	enc_key(b, "k");
	tt_enc_str(b, r->sj.key);
	if (r->deleted) {
		enc_key(b, "x");
		tt_enc_bool(b, true);
	} else if (r->sj.kind == K_CLASS) {
		enc_key(b, "d");
		enc_bin(b, tt_buf_data(&r->data), r->data.len);
	} else if (r->text) {
		enc_key(b, "s");
		tt_enc_strn(b, (const char *)tt_buf_data(&r->data), r->data.len);
	} else {
		enc_key(b, "v");
		tt_enc_float(b, r->value);
	}
}

static void build_node(enode *nd, tt_buf *b)
{
	tt_enc_map(b, 6);
	enc_key(b, "host");
	tt_enc_str(b, nd->host);
	enc_key(b, "pid");
	tt_enc_uint(b, nd->pid);
	enc_key(b, "hb");
	tt_enc_float(b, nd->hb);
	enc_key(b, "inc");
	tt_enc_uint(b, nd->inc);
	enc_key(b, "ids");
	tt_enc_array(b, 4);
	for (int i = 0; i < 4; i++)
		tt_enc_uint(b, nd->ids[i]);
	enc_key(b, "stop");
	tt_enc_bool(b, nd->stopped);
}

/* ---- publishing ------------------------------------------------------- */

static void set_failing(const char *reason, const char *what)
{
	if (!strcmp(N.failing, reason))
		return;
	snprintf(N.failing, sizeof(N.failing), "%s", reason);
	tt_engine_failing(reason, what);
}

static void send_msg(pubmsg *pm)
{
	char id[80], expect[24];
	natsMsg *m = NULL;
	snprintf(id, sizeof(id), "%u.%llu.%llu", N.node, (unsigned long long)N.inc,
		 (unsigned long long)pm->pubid);
	snprintf(expect, sizeof(expect), "%llu", (unsigned long long)pm->expect);
	natsStatus s = natsMsg_Create(&m, pm->sj->subject, NULL, (const char *)tt_buf_data(&pm->body),
				      (int)pm->body.len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", expect);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = PUB_WAIT_MS;
	if (s == NATS_OK) {
		s = js_PublishMsgAsync(N.js, &m, &po);
		N.published_async = true;
	}
	natsMsg_Destroy(m);
	pm->sent = tt_clock_mono();
	pm->retry_at = 0;
	if (s == NATS_MAX_PAYLOAD) {
		/* it will never fit (the nats-server's max_payload): not sent
		 * again, but refused as a fenced message is (handle_ack), or the
		 * subject would wait for it for ever and the node with it */
		ho_item *it = tt_calloc(1, sizeof(*it));
		it->kind = HO_ACK;
		it->pubid = pm->pubid;
		it->err = s;
		snprintf(it->errtext, sizeof(it->errtext), "%zu bytes, over the nats-server's "
			 "max_payload of %lld", pm->body.len,
			 (long long)natsConnection_GetMaxPayload(N.nc));
		q_push(it);
		return;
	}
	if (s != NATS_OK) {
		/* not even queued (the connection is closed, its buffer full):
		 * the tick sends it again */
		pm->retry_at = pm->sent + 1;
		char what[200];
		snprintf(what, sizeof(what), "cannot send to JetStream: %s", natsStatus_GetText(s));
		set_failing("the engine (NATS JetStream) cannot be reached", what);
	}
}

/* Build and send sj's message (nothing of it is in flight). */
static void publish(subj *sj)
{
	pubmsg *pm = tt_calloc(1, sizeof(*pm));
	pm->pubid = ++N.next_pubid;
	pm->sj = sj;
	pm->batch = sj->dirty_batch;
	pm->expect = sj->seq;
	tt_buf_init(&pm->body, 0);
	switch (sj->kind) {
	case K_STATE: {
		est *st = (est *)sj;
		build_state(st, &pm->body);
		break;
	}
	case K_SESSION:
		build_session((ese *)sj, &pm->body);
		break;
	case K_CLASS:
	case K_META:
		build_record((erec *)sj, &pm->body);
		break;
	case K_NODE:
		build_node((enode *)sj, &pm->body);
		break;
	case K_COUNT:
		break;
	}
	sj->dirty = false;
	sj->inflight = pm;
	pm->next = N.flying;
	N.flying = pm;
	N.n_flying++;
	N.backlog += pm->body.len;
	tt_idmap_put(&N.inflight, pm->pubid, pm);
	pm->first_sent = tt_clock_mono();
	send_msg(pm);
}

/* sj has something new for batch b (0: counted in no batch). */
static void mark(subj *sj, uint64_t b)
{
	if (sj->dirty)
		return;
	sj->dirty = true;
	sj->dirty_batch = b;
	batch_add(b);
	sj->dirty_next = NULL;
	if (N.dirty_last)
		N.dirty_last->dirty_next = sj;
	else
		N.dirty = sj;
	N.dirty_last = sj;
}

/* Send every dirty subject that has nothing in flight. */
static void flush_dirty(void)
{
	subj **pp = &N.dirty;
	N.dirty_last = NULL;
	while (*pp) {
		subj *sj = *pp;
		if (sj->inflight) {
			N.dirty_last = sj;
			pp = &sj->dirty_next;
			continue;
		}
		*pp = sj->dirty_next;
		sj->dirty_next = NULL;
		publish(sj);
	}
}

static void flying_remove(pubmsg *pm)
{
	pubmsg **pp = &N.flying;
	while (*pp != pm)
		pp = &(*pp)->next;
	*pp = pm->next;
	N.n_flying--;
	N.backlog -= pm->body.len;
	tt_idmap_del(&N.inflight, pm->pubid);
	pm->sj->inflight = NULL;
	tt_buf_free(&pm->body);
	free(pm);
}

/* ---- commit: the op log into subjects ------------------------------------ */

static void event_item(tt_buf *b, const tt_db_event_row *ev)
{
	tt_enc_array(b, 4);
	tt_enc_uint(b, ev->seq);
	tt_enc_float(b, ev->time);
	tt_enc_uint(b, ev->origin);
	enc_bin(b, ev->changes, ev->len);
}

static void copy_into(tt_buf *b, const void *p, size_t n)
{
	tt_buf_clear(b);
	tt_buf_append(b, p, n);
}

static void take_op(const tt_op *op, uint64_t b)
{
	switch (op->kind) {
	case TT_OP_META:
	case TT_OP_META_TEXT: {
		for (int i = 0; i < 4; i++)
			if (op->kind == TT_OP_META && op->key_len == strlen(id_keys[i]) &&
			    !memcmp(op->key, id_keys[i], op->key_len)) {
				N.nodes[N.node].ids[i] = (uint64_t)op->value;
				N.ids_dirty = true;
				return;
			}
		/* the sync clock of a piece on an engine is its epoch's (wall
		 * time), the same on every node: no lease to keep */
		if (op->kind == TT_OP_META && (!strncmp(op->key, "clock", op->key_len) ||
					       !strncmp(op->key, "alive", op->key_len)))
			return;
		erec *r = rec_get(K_META, op->key, op->key_len, true);
		r->text = op->kind == TT_OP_META_TEXT;
		r->value = op->value;
		if (r->text)
			copy_into(&r->data, op->bytes, op->len);
		mark(&r->sj, b);
		return;
	}
	case TT_OP_CLASS_PUT:
	case TT_OP_CLASS_DEL: {
		erec *r = rec_get(K_CLASS, op->key, op->key_len, true);
		r->deleted = op->kind == TT_OP_CLASS_DEL;
		if (!r->deleted)
			copy_into(&r->data, op->bytes, op->len);
		mark(&r->sj, b);
		return;
	}
	case TT_OP_STATE_PUT: {
		est *st = state_get(op->id, true);
		if (st->deleted)
			return;
		if (!st->cls || strlen(st->cls) != op->st.cls_len || memcmp(st->cls, op->st.cls, op->st.cls_len)) {
			free(st->cls);
			st->cls = tt_strndup(op->st.cls, op->st.cls_len);
		}
		st->owner = op->st.owner;
		st->seq = op->st.seq;
		if (st->seq > st->ev_last)
			st->ev_last = st->seq;
		st->time = op->st.time;
		copy_into(&st->vals, op->st.vals, op->st.vals_len);
		st->has_vals = true;
		st->has_init = op->st.init != NULL;
		copy_into(&st->init, op->st.init, op->st.init_len);
		st->sj.writer = N.node;
		mark(&st->sj, b);
		return;
	}
	case TT_OP_EVENT: {
		est *st = state_get(op->id, true);
		/* an event rewritten (a class migration strips a removed param
		 * from the history): the stream keeps what it has; the restore
		 * drops keys the class no longer has */
		if (st->deleted || op->ev.seq <= st->ev_last)
			return;
		if (st->n_events == st->cap_events) {
			st->cap_events = st->cap_events ? 2 * st->cap_events : 8;
			st->ev = tt_realloc(st->ev, sizeof(*st->ev) * st->cap_events);
		}
		pev *e = &st->ev[st->n_events++];
		memset(e, 0, sizeof(*e));
		e->seq = op->ev.seq;
		e->time = op->ev.time;
		e->origin = op->ev.origin;
		e->off = st->events.len;
		e->len = op->ev.len;
		tt_buf_append(&st->events, op->ev.changes, op->ev.len);
		st->ev_last = op->ev.seq;
		st->sj.writer = N.node;
		mark(&st->sj, b);
		return;
	}
	case TT_OP_STATE_DEL: {
		est *st = state_get(op->id, true);
		free(st->deleted);
		st->deleted = tt_strndup(op->key, op->key_len);
		tt_buf_clear(&st->events);
		st->n_events = st->n_tags = 0;
		st->sj.writer = N.node;
		idmap_free_vals(&st->scheds, free_sched);
		tt_idmap_init(&st->scheds);
		mark(&st->sj, b);
		return;
	}
	case TT_OP_EVENT_TRIM:
		return; /* the stream keeps --history messages per state */
	case TT_OP_TAG_EVENT: {
		est *st = state_get(op->state, false);
		for (uint32_t i = 0; st && i < st->n_events; i++)
			if (st->ev[i].seq == op->id) {
				st->ev[i].rid = op->rid;
				st->ev[i].node = op->node;
				st->ev[i].sched = op->sched;
			}
		return;
	}
	case TT_OP_TAG_SCHED: {
		est *st = state_get(op->state, false);
		if (!st)
			return;
		st->tags = tt_realloc(st->tags, sizeof(*st->tags) * (st->n_tags + 1));
		st->tags[st->n_tags++] = (stag){op->id, op->rid, op->sched, op->node};
		mark(&st->sj, b);
		return;
	}
	case TT_OP_SCHED_PUT: {
		est *st = state_get(op->sc.state, true);
		sched_row *r = tt_idmap_get(&st->scheds, op->id);
		if (!r) {
			r = tt_calloc(1, sizeof(*r));
			tt_buf_init(&r->changes, 0);
			tt_idmap_put(&st->scheds, op->id, r);
		}
		r->id = op->id;
		r->at = op->sc.at;
		r->origin = op->sc.origin;
		copy_into(&r->changes, op->sc.changes, op->sc.len);
		mark(&st->sj, b);
		return;
	}
	case TT_OP_SCHED_DEL:
		/* the row names the schedule only: find its state */
		for (subj *sj = N.first[K_STATE]; sj; sj = sj->next) {
			est *st = (est *)sj;
			sched_row *r = tt_idmap_get(&st->scheds, op->id);
			if (r) {
				tt_idmap_del(&st->scheds, op->id);
				sched_row_free(r);
				mark(sj, b);
				break;
			}
		}
		return;
	case TT_OP_SESSION_PUT: {
		ese *se = session_get(op->id, true);
		snprintf(se->digest, sizeof(se->digest), "%.*s", (int)op->key_len, op->key);
		free(se->role);
		se->role = tt_strndup(op->bytes, op->len);
		se->gone = 0;
		se->ended = se->kicked = false;
		se->node = N.node;
		mark(&se->sj, b);
		return;
	}
	case TT_OP_SESSION_GONE: {
		ese *se = session_get(op->id, true);
		se->gone = op->value;
		mark(&se->sj, b);
		return;
	}
	case TT_OP_SESSION_DEL: {
		ese *se = session_get(op->id, true);
		se->ended = true;
		se->kicked = op->value != 0;
		for (size_t i = 0; i < se->inst.cap; i++)
			if (se->inst.keys[i] && se->inst.keys[i] != UINT64_MAX)
				tt_idmap_del(&N.instances, se->inst.keys[i]);
		idmap_free_vals(&se->inst, free_inst);
		tt_idmap_init(&se->inst);
		observes_clear(se);
		mark(&se->sj, b);
		return;
	}
	case TT_OP_INSTANCE_PUT: {
		ese *se = session_get(op->session, true);
		inst_row *r = tt_idmap_get(&se->inst, op->id);
		if (!r) {
			r = tt_calloc(1, sizeof(*r));
			tt_buf_init(&r->filter, 0);
			tt_idmap_put(&se->inst, op->id, r);
			tt_idmap_put(&N.instances, op->id, se);
		}
		r->id = op->id;
		r->state = op->state;
		copy_into(&r->filter, op->bytes, op->len);
		mark(&se->sj, b);
		return;
	}
	case TT_OP_INSTANCE_DEL: {
		ese *se = tt_idmap_get(&N.instances, op->id);
		if (!se)
			return;
		inst_row *r = tt_idmap_get(&se->inst, op->id);
		tt_idmap_del(&se->inst, op->id);
		tt_idmap_del(&N.instances, op->id);
		if (r)
			free_inst(r);
		mark(&se->sj, b);
		return;
	}
	case TT_OP_OBSERVE_PUT:
	case TT_OP_OBSERVE_DEL: {
		ese *se = session_get(op->session, true);
		const char *c = op->key ? op->key : "";
		size_t len = op->key ? op->key_len : 0;
		uint32_t i = 0;
		while (i < se->n_observes && !(strlen(se->observes[i]) == len &&
					       !memcmp(se->observes[i], c, len)))
			i++;
		if (op->kind == TT_OP_OBSERVE_PUT && i == se->n_observes) {
			se->observes = tt_realloc(se->observes, sizeof(char *) * (se->n_observes + 1));
			se->observes[se->n_observes++] = tt_strndup(c, len);
		} else if (op->kind == TT_OP_OBSERVE_DEL && i < se->n_observes) {
			free(se->observes[i]);
			se->observes[i] = se->observes[--se->n_observes];
		}
		mark(&se->sj, b);
		return;
	}
	}
}

static int nats_commit(const unsigned char *ops, size_t len, uint64_t batch)
{
	if (!batch)
		batch = N.last_batch ? N.last_batch : 1;
	if (batch > N.last_batch)
		N.last_batch = batch;
	const unsigned char *p = ops, *end = ops + len;
	tt_op op;
	while (tt_engine_op_next(&p, end, &op))
		take_op(&op, batch);
	if (N.ids_dirty) {
		N.ids_dirty = false;
		mark(&N.nodes[N.node].sj, batch);
	}
	flush_dirty();
	if (!N.bq_len)
		return 0; /* nothing waits: durable now, as every batch before */
	/* a batch with nothing of its own is durable with those before it */
	batch_add(batch);
	batch_done(batch);
	return TT_DB_PENDING;
}

/* ---- acknowledgements -------------------------------------------------- */

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js, (void)closure;
	ho_item *it = tt_calloc(1, sizeof(*it));
	it->kind = HO_ACK;
	const char *id = NULL;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) {
		const char *dot = strrchr(id, '.');
		it->pubid = strtoull(dot ? dot + 1 : id, NULL, 10);
	}
	if (pa) {
		it->seq = pa->Sequence;
		it->dup = pa->Duplicate;
	} else if (pae) {
		it->err = pae->Err != NATS_OK ? pae->Err : NATS_ERR;
		it->errcode = (int)pae->ErrCode;
		snprintf(it->errtext, sizeof(it->errtext), "%s",
			 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
	}
	natsMsg_Destroy(msg);
	q_push(it);
}

static void conflict(pubmsg *pm, const char *text);
static void unstored(pubmsg *pm);
static void read_state(est *st, const tt_value *m, bool keep_events);

/* Other nodes' messages of st held while its own were in flight: stored
 * after them (a message before them would have fenced them), so they apply
 * now, in order. */
static void replay_held(est *st)
{
	if (!st->held.len)
		return;
	tt_buf held = st->held;
	tt_buf_init(&st->held, 0);
	const unsigned char *p = tt_buf_data(&held), *end = p + held.len;
	while (p < end) {
		uint64_t seq;
		uint32_t writer, len;
		memcpy(&seq, p, sizeof(seq));
		memcpy(&writer, p + 8, sizeof(writer));
		memcpy(&len, p + 12, sizeof(len));
		const unsigned char *body = p + 16;
		p = body + len;
		if (seq <= st->sj.seq)
			continue;
		tt_value m;
		size_t off = 0;
		tt_arena_reset(&N.arena);
		if (tt_decode(N.dec, body, len, &off, &N.arena, &m, NULL) < 0)
			continue;
		read_state(st, &m, false);
		st->sj.seq = seq;
		st->sj.writer = writer;
		SINK_CALL(state, st->sj.id, &m);
	}
	tt_buf_free(&held);
}

static void handle_ack(const ho_item *it)
{
	pubmsg *pm = tt_idmap_get(&N.inflight, it->pubid);
	if (!pm)
		return; /* an acknowledgement of a message sent again, already settled */
	subj *sj = pm->sj;
	if (it->err == NATS_OK) {
		if (it->seq > sj->seq)
			sj->seq = it->seq;
		if (!sj->first)
			sj->first = it->seq;
		sj->writer = N.node;
		batch_done(pm->batch);
		flying_remove(pm);
		if (sj->kind == K_STATE && !sj->dirty)
			replay_held((est *)sj);
		return;
	}
	if (it->errcode == JSStreamWrongLastSequenceErr) {
		conflict(pm, it->errtext);
		return;
	}
	if (it->err == NATS_MAX_PAYLOAD) {
		/* e.g. values of tens of KB set faster than JetStream acknowledges:
		 * the events of a state wait for its message in flight, and one
		 * message takes them all */
		tt_log_error("engine: %s: one message of what this node wrote is too large (%s); "
			     "not stored: the clients waiting for it resume (raise max_payload in "
			     "the nats-server's configuration)", sj->subject, it->errtext);
		unstored(pm);
		return;
	}
	char what[240];
	snprintf(what, sizeof(what), "JetStream did not store a message (%s); sending it again",
		 it->errtext);
	if (it->err == NATS_TIMEOUT) {
		if (tt_clock_mono() - pm->first_sent > FAILING_AFTER)
			set_failing("the engine (NATS JetStream) does not acknowledge writes", what);
		send_msg(pm);
	} else {
		set_failing("the engine (NATS JetStream) refuses writes", what);
		pm->retry_at = tt_clock_mono() + 1;
	}
}

/* After a fence: where the subject really is (its last message, read from
 * the stream's leader), so that the next append does not hit it again. */
static void tt_engine_refresh(subj *sj)
{
	natsMsg *m = NULL;
	jsErrCode je = 0;
	if (js_GetLastMsg(&m, N.js, N.stream, sj->subject, NULL, &je) == NATS_OK && m) {
		uint64_t seq = natsMsg_GetSequence(m);
		if (seq > sj->seq)
			sj->seq = seq;
		natsMsg_Destroy(m);
	}
}

/* Another writer appended to a subject this node writes: the fence held
 * (nothing forked), but this node's copy is behind and what it appended on
 * top of it is refused. The message is dropped; its batch counts it done,
 * and the clients that wait for that batch are told the server cannot
 * acknowledge it (tt_engine_fenced). */
static void conflict(pubmsg *pm, const char *text)
{
	tt_log_error("engine: %s: another writer appended first (%s); what this node wrote on "
		     "top of its older copy is not stored", pm->sj->subject, text);
	unstored(pm);
}

/* pm cannot be stored: dropped, its batch counted done and fenced (the
 * clients waiting for it resume and learn what is stored), and the
 * subject read again from the stream. */
static void unstored(pubmsg *pm)
{
	subj *sj = pm->sj;
	uint64_t b = pm->batch ? pm->batch : N.last_batch;
	batch_done(pm->batch);
	flying_remove(pm);
	if (!N.fenced || b < N.fenced)
		N.fenced = b;
	if (sj->kind == K_STATE)
		tt_engine_reread(sj->id); /* where it is now: what came first */
	else
		tt_engine_refresh(sj);
	if (sj->kind == K_SESSION)
		SINK_CALL(session_fenced, sj->id);
}

/* ---- reading the stream ------------------------------------------------- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc, (void)sub, (void)closure;
	ho_item *it = tt_calloc(1, sizeof(*it));
	it->kind = HO_MSG;
	it->msg = msg;
	q_push(it);
}

/* A message of another node (cluster.c): not in the stream, at most once. */
static void on_rpc(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc, (void)sub, (void)closure;
	ho_item *it = tt_calloc(1, sizeof(*it));
	it->kind = HO_RPC;
	it->msg = msg;
	q_push(it);
}

/* The subject's kind and key: "<prefix>.<letter>.<id or hex>". */
static bool parse_subject(const char *s, enum sj_kind *kind, uint64_t *id, char *key, size_t *klen)
{
	size_t pl = strlen(N.prefix);
	if (strncmp(s, N.prefix, pl) || s[pl] != '.' || !s[pl + 1] || s[pl + 2] != '.')
		return false;
	const char *rest = s + pl + 3;
	for (int k = 0; k < K_COUNT; k++) {
		if (s[pl + 1] != sj_letter[k])
			continue;
		*kind = (enum sj_kind)k;
		if (k == K_CLASS || k == K_META) {
			size_t n = strlen(rest);
			if (n > 512 || !unhex(rest, n, key))
				return false;
			*klen = n / 2;
		} else {
			char *end;
			*id = strtoull(rest, &end, 10);
			if (*end || !*id)
				return false;
		}
		return true;
	}
	return false;
}

/* A state's message read back: the snapshot replaces what was known; its
 * events add to the history kept for the start. */
static void read_state(est *st, const tt_value *m, bool keep_events)
{
	const tt_value *d = tt_map_get(m, "d");
	const void *p;
	size_t n;
	if (d && d->type == TT_STR) {
		free(st->deleted);
		st->deleted = tt_strndup(d->v.s, d->len);
		tt_buf_clear(&st->hist);
		st->n_hist = 0;
	}
	const tt_value *c = tt_map_get(m, "c");
	if (c && c->type == TT_STR && c->len) {
		free(st->cls);
		st->cls = tt_strndup(c->v.s, c->len);
	}
	st->owner = tt_as_u64(tt_map_get(m, "o"));
	st->seq = tt_as_u64(tt_map_get(m, "q"));
	st->ev_last = st->seq;
	st->time = tt_as_f64(tt_map_get(m, "t"));
	if (tt_as_bytes(tt_map_get(m, "v"), &p, &n)) {
		copy_into(&st->vals, p, n);
		st->has_vals = true;
	}
	st->has_init = tt_as_bytes(tt_map_get(m, "i"), &p, &n);
	copy_into(&st->init, st->has_init ? p : "", st->has_init ? n : 0);
	const tt_value *e = tt_map_get(m, "e");
	if (keep_events && e && e->type == TT_ARRAY)
		for (uint32_t i = 0; i < e->len; i++) {
			const tt_value *ev = &e->v.items[i];
			if (ev->type != TT_ARRAY || ev->len < 4 || !tt_as_bytes(&ev->v.items[3], &p, &n))
				continue;
			tt_db_event_row row = {st->sj.id, tt_as_u64(&ev->v.items[0]),
					       tt_as_f64(&ev->v.items[1]), tt_as_u64(&ev->v.items[2]), p, n};
			event_item(&st->hist, &row);
			st->n_hist++;
		}
	/* the pending schedules: the message's list is all of them */
	idmap_free_vals(&st->scheds, free_sched);
	tt_idmap_init(&st->scheds);
	const tt_value *s = tt_map_get(m, "s");
	if (s && s->type == TT_ARRAY)
		for (uint32_t i = 0; i < s->len; i++) {
			const tt_value *sc = &s->v.items[i];
			if (sc->type != TT_ARRAY || sc->len < 4 || !tt_as_bytes(&sc->v.items[3], &p, &n))
				continue;
			sched_row *r = tt_calloc(1, sizeof(*r));
			tt_buf_init(&r->changes, 0);
			r->id = tt_as_u64(&sc->v.items[0]);
			r->at = tt_as_f64(&sc->v.items[1]);
			r->origin = tt_as_u64(&sc->v.items[2]);
			copy_into(&r->changes, p, n);
			sched_row *old = tt_idmap_get(&st->scheds, r->id);
			if (old) {
				tt_idmap_del(&st->scheds, r->id);
				sched_row_free(old);
			}
			tt_idmap_put(&st->scheds, r->id, r);
		}
}

static void read_session(ese *se, const tt_value *m)
{
	const void *p;
	size_t n;
	for (size_t i = 0; i < se->inst.cap; i++)
		if (se->inst.keys[i] && se->inst.keys[i] != UINT64_MAX)
			tt_idmap_del(&N.instances, se->inst.keys[i]);
	idmap_free_vals(&se->inst, free_inst);
	tt_idmap_init(&se->inst);
	observes_clear(se);
	const tt_value *x = tt_map_get(m, "x");
	se->ended = x && x->type == TT_BOOL && x->v.b;
	const tt_value *k = tt_map_get(m, "k");
	se->kicked = se->ended && k && k->type == TT_BOOL && k->v.b;
	if (se->ended)
		return;
	const tt_value *d = tt_map_get(m, "d"), *r = tt_map_get(m, "r");
	if (d && d->type == TT_STR)
		snprintf(se->digest, sizeof(se->digest), "%.*s", (int)d->len, d->v.s);
	free(se->role);
	se->role = r && r->type == TT_STR ? tt_strndup(r->v.s, r->len) : NULL;
	se->node = (uint32_t)tt_as_u64(tt_map_get(m, "n"));
	se->gone = tt_as_f64(tt_map_get(m, "g"));
	const tt_value *in = tt_map_get(m, "i");
	if (in && in->type == TT_ARRAY)
		for (uint32_t i = 0; i < in->len; i++) {
			const tt_value *a = &in->v.items[i];
			if (a->type != TT_ARRAY || a->len < 3 || !tt_as_bytes(&a->v.items[2], &p, &n))
				continue;
			inst_row *row = tt_calloc(1, sizeof(*row));
			tt_buf_init(&row->filter, 0);
			row->id = tt_as_u64(&a->v.items[0]);
			row->state = tt_as_u64(&a->v.items[1]);
			copy_into(&row->filter, p, n);
			if (!row->id || tt_idmap_get(&se->inst, row->id)) {
				free_inst(row);
				continue;
			}
			tt_idmap_put(&se->inst, row->id, row);
			tt_idmap_put(&N.instances, row->id, se);
		}
	const tt_value *o = tt_map_get(m, "o");
	if (o && o->type == TT_ARRAY)
		for (uint32_t i = 0; i < o->len; i++) {
			const tt_value *c = &o->v.items[i];
			if (c->type != TT_STR && c->type != TT_NIL)
				continue;
			se->observes = tt_realloc(se->observes, sizeof(char *) * (se->n_observes + 1));
			se->observes[se->n_observes++] = c->type == TT_STR ? tt_strndup(c->v.s, c->len)
									  : tt_strndup("", 0);
		}
}

static void read_record(erec *r, const tt_value *m)
{
	const void *p;
	size_t n;
	const tt_value *x = tt_map_get(m, "x"), *s = tt_map_get(m, "s"), *v = tt_map_get(m, "v");
	r->deleted = x && x->type == TT_BOOL && x->v.b;
	if (r->deleted)
		return;
	if (tt_as_bytes(tt_map_get(m, "d"), &p, &n)) {
		copy_into(&r->data, p, n);
	} else if (s && s->type == TT_STR) {
		r->text = true;
		copy_into(&r->data, s->v.s, s->len);
	} else if (v) {
		r->text = false;
		r->value = tt_as_f64(v);
	}
}

static void read_node(enode *nd, const tt_value *m)
{
	nd->hb = tt_as_f64(tt_map_get(m, "hb"));
	/* read while running: it beat just now; read at start: as old as its
	 * wall time says */
	nd->hb_mono = tt_clock_mono() - (N.opened ? 0 : TT_MAX(tt_clock_wall() - nd->hb, 0.0));
	nd->inc = tt_as_u64(tt_map_get(m, "inc"));
	const tt_value *ids = tt_map_get(m, "ids");
	for (uint32_t i = 0; ids && ids->type == TT_ARRAY && i < ids->len && i < 4; i++)
		nd->ids[i] = tt_as_u64(&ids->v.items[i]);
	const tt_value *st = tt_map_get(m, "stop");
	nd->stopped = st && st->type == TT_BOOL && st->v.b;
	const tt_value *h = tt_map_get(m, "host");
	snprintf(nd->host, sizeof(nd->host), "%.*s", h && h->type == TT_STR ? (int)h->len : 0,
		 h && h->type == TT_STR ? h->v.s : "");
	nd->pid = (uint32_t)tt_as_u64(tt_map_get(m, "pid"));
}

/* One message of the stream, at start (restore) or while running. */
static void handle_msg(natsMsg *msg)
{
	jsMsgMetaData *meta = NULL;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK || !meta)
		return;
	uint64_t seq = meta->Sequence.Stream;
	jsMsgMetaData_Destroy(meta);
	if (seq > N.read_upto)
		N.read_upto = seq;
	enum sj_kind kind;
	uint64_t id = 0;
	char key[260];
	size_t klen = 0;
	if (!parse_subject(natsMsg_GetSubject(msg), &kind, &id, key, &klen))
		return;
	uint32_t writer = 0;
	const char *mid = NULL;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &mid) == NATS_OK && mid)
		writer = (uint32_t)strtoul(mid, NULL, 10);
	/* own messages while running: the model has them already */
	bool own = N.opened && writer == N.node;
	subj *sj = NULL;
	tt_arena_reset(&N.arena);
	tt_value m = {0};
	size_t off = 0;
	const char *data = natsMsg_GetData(msg);
	int dlen = natsMsg_GetDataLength(msg);
	if (dlen > 0 && tt_decode(N.dec, data, (size_t)dlen, &off, &N.arena, &m, NULL) < 0) {
		tt_log_warn("engine: %s: unreadable message at %llu, skipped", natsMsg_GetSubject(msg),
			    (unsigned long long)seq);
		return;
	}
	switch (kind) {
	case K_STATE: {
		est *st = state_get(id, true);
		sj = &st->sj;
		if (!N.opened) {
			read_state(st, &m, true);
			break;
		}
		if (own)
			break; /* the model has it */
		/* another node's, while this node's own writes of it are not
		 * settled: they will be fenced (that message came first), and the
		 * fence reads the state again; its position stays this node's
		 * until then, so nothing is written over it meanwhile */
		if (st->sj.inflight || st->sj.dirty) {
			uint32_t len = (uint32_t)dlen;
			tt_buf_append(&st->held, &seq, sizeof(seq));
			tt_buf_append(&st->held, &writer, sizeof(writer));
			tt_buf_append(&st->held, &len, sizeof(len));
			tt_buf_append(&st->held, data, len);
			return;
		}
		read_state(st, &m, false);
		if (seq > sj->seq)
			sj->seq = seq;
		if (!sj->first)
			sj->first = seq;
		sj->writer = writer;
		SINK_CALL(state, id, &m);
		return;
	}
	case K_SESSION: {
		ese *se = session_get(id, true);
		sj = &se->sj;
		if (own)
			break;
		read_session(se, &m);
		if (N.opened)
			SINK_CALL(session, id, se->ended, se->kicked, se->digest, se->role, se->node,
				  se->gone);
		break;
	}
	case K_CLASS:
	case K_META: {
		erec *r = rec_get(kind, key, klen, true);
		sj = &r->sj;
		if (own)
			break;
		read_record(r, &m);
		if (N.opened && kind == K_CLASS)
			SINK_CALL(klass, r->sj.key, r->deleted, tt_buf_data(&r->data), r->data.len);
		break;
	}
	case K_NODE:
		if (id >= MAX_NODES)
			return;
		sj = &N.nodes[id].sj;
		if (!own)
			read_node(&N.nodes[id], &m);
		break;
	case K_COUNT:
		return;
	}
	if (sj) {
		if (seq > sj->seq)
			sj->seq = seq;
		if (!sj->first)
			sj->first = seq;
		sj->writer = writer;
	}
}

/* ---- start: the stream, the rows back --------------------------------- */

static int nerr(tt_error *err, const char *what, natsStatus s, jsErrCode je)
{
	const char *last = nats_GetLastError(NULL);
	return tt_fail(err, TT_INTERNAL, "%s: %s%s%s (jetstream error %d)", what, natsStatus_GetText(s),
		       last && *last ? ": " : "", last && *last ? last : "", (int)je);
}

/* nats://h:p,h:p/NAME -> servers (each "nats://h:p") and the piece's name. */
static int parse_url(const char *url, char ***servers, int *n, char *name, size_t cap,
		     tt_error *err)
{
	const char *p = url + 7;
	const char *slash = strchr(p, '/');
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);
	snprintf(name, cap, "%s", slash && slash[1] ? slash + 1 : "piece");
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return tt_fail(err, TT_INTERNAL, "the piece's NAME in nats://HOST:PORT/NAME is "
				       "letters, digits, '_' and '-' (not \"%s\")", name);
	if (strlen(name) > 32)
		return tt_fail(err, TT_INTERNAL, "the piece's NAME is at most 32 characters");
	*n = 0;
	*servers = NULL;
	while (hl) {
		const char *comma = memchr(p, ',', hl);
		size_t l = comma ? (size_t)(comma - p) : hl;
		if (l) {
			if (l > 200)
				return tt_fail(err, TT_INTERNAL, "server address too long");
			char one[220];
			if (!strncmp(p, "nats://", 7))
				snprintf(one, sizeof(one), "%.*s", (int)l, p);
			else
				snprintf(one, sizeof(one), "nats://%.*s", (int)l, p);
			*servers = tt_realloc(*servers, sizeof(char *) * (size_t)(*n + 1));
			(*servers)[(*n)++] = tt_strndup(one, strlen(one));
		}
		if (!comma)
			break;
		hl -= l + 1;
		p = comma + 1;
	}
	if (!*n)
		return tt_fail(err, TT_INTERNAL, "no server in %s", url);
	return 0;
}

static int ensure_stream(tt_error *err)
{
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	natsStatus s = js_GetStreamInfo(&si, N.js, N.stream, NULL, &je);
	char subjects[5][100];
	const char *subs[5];
	for (int k = 0; k < K_COUNT; k++) {
		snprintf(subjects[k], sizeof(subjects[k]), "%s.%c.*", N.prefix, sj_letter[k]);
		subs[k] = subjects[k];
	}
	if (s == NATS_NOT_FOUND || je == JSStreamNotFoundErr) {
		jsStreamConfig sc;
		jsStreamConfig_Init(&sc);
		sc.Name = N.stream;
		sc.Subjects = subs;
		sc.SubjectsLen = K_COUNT;
		sc.Storage = js_FileStorage;
		sc.Retention = js_LimitsPolicy;
		sc.Discard = js_DiscardOld;
		sc.MaxMsgsPerSubject = N.cfg->history;
		sc.Replicas = N.cfg->replicas;
		sc.AllowDirect = true;
		sc.Duplicates = (int64_t)120 * 1000000000; /* retries recognised for 2 min */
		je = 0;
		s = js_AddStream(&si, N.js, &sc, NULL, &je);
		if (s != NATS_OK)
			return nerr(err, "cannot create the stream", s, je);
		tt_log_info("engine: created stream %s (subjects %s.>, %u replica%s, --history %u "
			    "messages per state)", N.stream, N.prefix, N.cfg->replicas,
			    N.cfg->replicas > 1 ? "s" : "", N.cfg->history);
	} else if (s != NATS_OK) {
		return nerr(err, "cannot read the stream's information (is JetStream enabled: "
			    "nats-server -js?)", s, je);
	} else if (si->Config->MaxMsgsPerSubject != (int64_t)N.cfg->history) {
		jsStreamConfig sc = *si->Config;
		sc.MaxMsgsPerSubject = N.cfg->history;
		jsStreamInfo *si2 = NULL;
		je = 0;
		if (js_UpdateStream(&si2, N.js, &sc, NULL, &je) == NATS_OK)
			tt_log_info("engine: stream %s now keeps %u messages per state (--history)",
				    N.stream, N.cfg->history);
		else
			tt_log_warn("engine: stream %s keeps %lld messages per state; --history %u "
				    "could not be applied to it", N.stream,
				    (long long)si->Config->MaxMsgsPerSubject, N.cfg->history);
		jsStreamInfo_Destroy(si2);
	}
	N.restore_to = si->State.LastSeq;
	N.replicas = si->Config ? si->Config->Replicas : 1;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* Handle everything the threads queued, in order. */
static bool drain(void)
{
	ho_item *it = q_take_all(false);
	bool any = it != NULL;
	while (it) {
		ho_item *next = it->next;
		if (it->kind == HO_ACK)
			handle_ack(it);
		else if (it->kind == HO_MSG)
			handle_msg(it->msg);
		else if (it->kind == HO_RPC && N.opened)
			SINK_CALL(rpc, natsMsg_GetData(it->msg), (size_t)natsMsg_GetDataLength(it->msg));
		item_free(it);
		it = next;
	}
	if (any && N.opened)
		SINK_CALL0(progress);
	return any;
}

/* Read every message up to restore_to (the stream's last at start). */
static int read_stream(tt_error *err)
{
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverAll;
	jsErrCode je = 0;
	char filter[100];
	snprintf(filter, sizeof(filter), "%s.>", N.prefix);
	natsStatus s = js_Subscribe(&N.sub, N.js, filter, on_msg, NULL, NULL, &so, &je);
	if (s != NATS_OK)
		return nerr(err, "cannot follow the stream", s, je);
	natsSubscription_SetPendingLimits(N.sub, -1, -1);
	double deadline = tt_clock_mono() + RESTORE_TIMEOUT;
	while (N.read_upto < N.restore_to) {
		if (tt_clock_mono() > deadline)
			return tt_fail(err, TT_INTERNAL, "reading the stream took more than %g s "
				       "(%llu of %llu messages)", RESTORE_TIMEOUT,
				       (unsigned long long)N.read_upto, (unsigned long long)N.restore_to);
		q_wait(deadline);
		drain();
	}
	return 0;
}

static int cmp_first(const void *a, const void *b)
{
	const subj *x = *(subj *const *)a, *y = *(subj *const *)b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Subjects of kind in the order they were first written. */
static subj **by_first(enum sj_kind kind, uint32_t *n)
{
	*n = 0;
	for (subj *sj = N.first[kind]; sj; sj = sj->next)
		(*n)++;
	subj **v = *n ? tt_malloc(sizeof(*v) * *n) : NULL;
	uint32_t i = 0;
	for (subj *sj = N.first[kind]; sj; sj = sj->next)
		v[i++] = sj;
	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_first);
	return v;
}

/* The rows back into the model, in the loader's order (db.h). */
static int load_rows(const tt_db_loader *ld, tt_error *err)
{
	int rc = 0;
	enode *me = &N.nodes[N.node];
	ld->meta("clock", tt_clock_wall() - N.epoch);
	if (me->hb > 0)
		ld->meta("alive", me->hb);
	/* ids: this node's own, and past every id any node handed out */
	for (int i = 0; i < 4; i++)
		if (me->ids[i])
			ld->meta(id_keys[i], (double)me->ids[i]);
	for (subj *sj = N.first[K_META]; sj; sj = sj->next) {
		erec *r = (erec *)sj;
		if (r->deleted || !strcmp(sj->key, "epoch"))
			continue;
		if (r->text)
			ld->meta_text(sj->key, (const char *)tt_buf_data(&r->data), r->data.len);
		else
			ld->meta(sj->key, r->value);
	}
	uint32_t n;
	subj **v = by_first(K_CLASS, &n);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		erec *r = (erec *)v[i];
		if (!r->deleted)
			rc = ld->klass(r->sj.key, strlen(r->sj.key), tt_buf_data(&r->data), r->data.len, err);
	}
	free(v);
	if (rc < 0)
		return rc;
	v = by_first(K_STATE, &n);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		est *st = (est *)v[i];
		if (st->deleted || !st->has_vals || !st->cls)
			continue;
		tt_db_state_row row = {st->sj.id, st->cls, strlen(st->cls), st->owner, st->seq,
				       st->time, tt_buf_data(&st->vals), st->vals.len,
				       st->has_init ? tt_buf_data(&st->init) : NULL, st->init.len};
		if ((rc = ld->state(&row, err)) < 0)
			break;
		/* the events, oldest first (the history keeps what it may) */
		const unsigned char *p = tt_buf_data(&st->hist);
		size_t off = 0;
		for (uint32_t k = 0; k < st->n_hist; k++) {
			tt_value ev;
			tt_arena_reset(&N.arena);
			if (tt_decode(N.dec, p, st->hist.len, &off, &N.arena, &ev, NULL) < 0)
				break;
			const void *ch;
			size_t chn;
			if (ev.type != TT_ARRAY || ev.len < 4 || !tt_as_bytes(&ev.v.items[3], &ch, &chn))
				continue;
			uint64_t seq = tt_as_u64(&ev.v.items[0]);
			if (seq > st->seq)
				continue;
			tt_db_event_row er = {st->sj.id, seq, tt_as_f64(&ev.v.items[1]),
					      tt_as_u64(&ev.v.items[2]), ch, chn};
			ld->event(&er);
		}
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	uint32_t ns;
	subj **sv = by_first(K_SESSION, &ns);
	for (uint32_t i = 0; i < ns; i++) {
		ese *se = (ese *)sv[i];
		if (se->ended || !se->digest[0])
			continue;
		ld->session(se->sj.id, se->digest, strlen(se->digest), se->gone > 0, se->gone,
			    se->role, se->role ? strlen(se->role) : 0);
	}
	/* the instances and observes of this node's sessions; another node's
	 * stay in its record until a client resumes here (cluster.c) */
	for (uint32_t i = 0; i < ns && rc == 0; i++) {
		ese *se = (ese *)sv[i];
		if (se->ended || !se->digest[0] || (se->node && se->node != N.node))
			continue;
		for (size_t k = 0; k < se->inst.cap && rc == 0; k++) {
			if (!se->inst.keys[k] || se->inst.keys[k] == UINT64_MAX)
				continue;
			inst_row *r = se->inst.vals[k];
			rc = ld->instance(r->id, se->sj.id, r->state, tt_buf_data(&r->filter),
					  r->filter.len, err);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		est *st = (est *)v[i];
		if (st->deleted)
			ld->tombstone(st->sj.id, st->deleted);
	}
	for (uint32_t i = 0; i < n; i++) {
		est *st = (est *)v[i];
		if (st->deleted)
			continue;
		uint32_t k;
		sched_row **sc = scheds_sorted(st, &k);
		for (uint32_t j = 0; j < k; j++) {
			tt_db_sched_row r = {sc[j]->id, st->sj.id, sc[j]->at, sc[j]->origin,
					     tt_buf_data(&sc[j]->changes), sc[j]->changes.len};
			ld->schedule(&r);
		}
		free(sc);
	}
	for (uint32_t i = 0; i < ns; i++) {
		ese *se = (ese *)sv[i];
		if (se->ended || !se->digest[0] || (se->node && se->node != N.node))
			continue;
		for (uint32_t k = 0; k < se->n_observes; k++)
			ld->observe(se->sj.id, se->observes[k][0] ? se->observes[k] : NULL,
				    strlen(se->observes[k]));
	}
	free(sv);
	free(v);
	/* the history read back is the model's now */
	for (subj *sj = N.first[K_STATE]; sj; sj = sj->next) {
		est *st = (est *)sj;
		tt_buf_free(&st->hist);
		tt_buf_init(&st->hist, 0);
		st->n_hist = 0;
	}
	return rc;
}

/* Publish one record now and wait for its acknowledgement (start-up). */
static int publish_wait(subj *sj, tt_error *err)
{
	mark(sj, 0);
	flush_dirty();
	double deadline = tt_clock_mono() + 10;
	while (sj->inflight && tt_clock_mono() < deadline) {
		q_wait(deadline);
		drain();
		for (pubmsg *pm = N.flying; pm; pm = pm->next)
			if (pm->retry_at > 0 && tt_clock_mono() >= pm->retry_at)
				send_msg(pm);
	}
	if (sj->inflight)
		return tt_fail(err, TT_INTERNAL, "JetStream did not acknowledge %s within 10 s",
			       sj->subject);
	return 0;
}

/* The piece's sync clock starts at its first start, the same for every
 * node (wall time since then: nodes on several machines need synchronised
 * clocks, as NTP keeps them). */
static int ensure_epoch(tt_error *err)
{
	erec *r = rec_get(K_META, "epoch", 5, true);
	if (r->sj.seq && !r->text) {
		N.epoch = r->value;
		return 0;
	}
	r->text = false;
	r->value = tt_clock_wall();
	int rc = publish_wait(&r->sj, err);
	if (rc < 0)
		return rc;
	if (r->sj.writer != N.node) /* another node started it meanwhile */
		return tt_fail(err, TT_INTERNAL, "another node is starting the piece at the same time; "
			       "start again");
	N.epoch = r->value;
	return 0;
}

/* A node of the same number alive elsewhere would write the same ids. */
static int check_node(tt_error *err)
{
	enode *me = &N.nodes[N.node];
	double age = tt_clock_wall() - me->hb;
	char host[64] = "";
	gethostname(host, sizeof(host) - 1);
	/* this machine's process of that number has died (killed, crashed):
	 * no need to wait for its heartbeat to stop */
	bool dead_here = !strcmp(host, me->host) && me->pid &&
			 kill((pid_t)me->pid, 0) < 0 && errno == ESRCH;
	if (me->sj.seq && !me->stopped && age < 3 && !dead_here) {
		/* alive, or just killed: a live one beats again within a second */
		uint64_t seen = me->sj.seq;
		double deadline = tt_clock_mono() + 3 - TT_MAX(age, 0.0) + 0.5;
		while (tt_clock_mono() < deadline && me->sj.seq == seen) {
			q_wait(deadline);
			drain();
		}
		if (me->sj.seq != seen)
			return tt_fail(err, TT_INTERNAL, "node %u is running already (another "
				       "tutti-server with --node-id %u on this engine); give each node "
				       "its own --node-id", N.node, N.node);
	}
	return 0;
}

/* ---- the compare-and-set check of a cluster --------------------------- */

/* Two nodes that both think they write a state are kept apart by the
 * expected last subject sequence alone. nats-server before 2.9.21 checks
 * it, in a cluster, before the append is agreed on, not when it is
 * applied: two appends in flight with the same expected sequence are then
 * both accepted and a state's history forks (nats-server#4320; Debian 12
 * ships 2.9.10). A single server is not affected. So a node on a cluster
 * races pairs of such appends on a scratch stream replicated like tutti's,
 * and refuses to run when both of a pair are accepted. */
#define CAS_ROUNDS 40

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int acked, refused;
	uint64_t last;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void on_probe_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js, (void)pae, (void)closure;
	pthread_mutex_lock(&P.mu);
	if (pa) {
		P.acked++;
		if (pa->Sequence > P.last)
			P.last = pa->Sequence;
	} else {
		P.refused++;
	}
	pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
	natsMsg_Destroy(msg);
}

/* Whether the engine is a cluster: several servers in the URL, or the
 * connected one tells clients of peers. */
static bool in_cluster(int n_servers)
{
	char **urls = NULL;
	int n = 0;
	if (n_servers > 1)
		return true;
	if (natsConnection_GetDiscoveredServers(N.nc, &urls, &n) != NATS_OK)
		return false;
	for (int i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
	return n > 0;
}

/* One round: two appends expecting `expect`; how many were accepted
 * (-1: no answer in time), the last accepted sequence in *last. */
static int cas_round(jsCtx *js, const char *subject, uint64_t expect, uint64_t *last)
{
	pthread_mutex_lock(&P.mu);
	P.acked = P.refused = 0;
	pthread_mutex_unlock(&P.mu);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.ExpectLastSubjectSeq = expect;
	int sent = 0;
	for (int i = 0; i < 2; i++)
		sent += js_PublishAsync(js, subject, "probe", 5, &po) == NATS_OK;
	double deadline = tt_clock_mono() + 5;
	pthread_mutex_lock(&P.mu);
	while (P.acked + P.refused < sent && tt_clock_mono() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&P.cv, &P.mu, &ts);
	}
	int acked = P.acked, answered = P.acked + P.refused;
	*last = P.last;
	pthread_mutex_unlock(&P.mu);
	return sent == 2 && answered == 2 ? acked : -1;
}

static int check_cas(int n_servers, tt_error *err)
{
	if (N.replicas <= 1 && !in_cluster(n_servers))
		return 0;
	char name[120], subject[120];
	snprintf(name, sizeof(name), "%s_probe_%u", N.stream, N.node);
	snprintf(subject, sizeof(subject), "tutti_probe.%s.%u", N.stream, N.node);
	const char *subs[1] = {subject};
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_probe_ack;
	jo.Wait = 5000;
	jsErrCode je = 0;
	natsStatus s = natsConnection_JetStream(&js, N.nc, &jo);
	if (s != NATS_OK)
		return nerr(err, "cannot use JetStream", s, 0);
	js_DeleteStream(js, name, NULL, &je); /* a probe left by a crash */
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subs;
	sc.SubjectsLen = 1;
	sc.Storage = js_MemoryStorage;
	sc.Replicas = N.replicas > 1 ? N.replicas : 1;
	jsStreamInfo *si = NULL;
	je = 0;
	if ((s = js_AddStream(&si, js, &sc, NULL, &je)) != NATS_OK) {
		jsCtx_Destroy(js);
		return nerr(err, "cannot create the compare-and-set check's stream", s, je);
	}
	jsStreamInfo_Destroy(si);
	int forks = 0, rounds = 0;
	jsPubAck *pa = NULL;
	je = 0;
	uint64_t last = 0;
	if ((s = js_Publish(&pa, js, subject, "probe", 5, NULL, &je)) == NATS_OK && pa)
		last = pa->Sequence;
	jsPubAck_Destroy(pa);
	bool published = false;
	for (; s == NATS_OK && rounds < CAS_ROUNDS; rounds++) {
		published = true;
		int acked = cas_round(js, subject, last, &last);
		if (acked < 0) {
			s = NATS_TIMEOUT;
			break;
		}
		forks += acked == 2;
		if (forks)
			break;
	}
	je = 0;
	js_DeleteStream(js, name, NULL, &je);
	drop_pending(js, published);
	jsCtx_Destroy(js);
	if (s != NATS_OK)
		return nerr(err, "the compare-and-set check of the NATS cluster got no answer", s, 0);
	if (forks)
		return tt_fail(err, TT_INTERNAL,
			     "this NATS cluster accepted two appends that expected the same last "
			     "sequence (round %d of %d): two tutti nodes could fork a state's history. "
			     "A clustered JetStream needs nats-server 2.9.21 or later (Debian 12 ships "
			     "2.9.10: nats-server#4320); or run one nats-server without a cluster",
			     rounds + 1, CAS_ROUNDS);
	tt_log_info("engine: NATS cluster: compare-and-set holds (%d racing pairs, %lld replica%s)",
		    rounds, (long long)sc.Replicas, sc.Replicas > 1 ? "s" : "");
	return 0;
}

static void nats_close_all(void);

static int nats_open(const tt_config *cfg, const tt_db_loader *ld, tt_error *err)
{
	char **servers = NULL;
	int n_servers = 0, rc;
	char name[64];
	memset(&N, 0, sizeof(N));
	(void)q_take_all(false); /* empty since the last close: open for callbacks */
	N.cfg = cfg;
	N.node = cfg->node_id;
	N.inc = (uint64_t)(tt_clock_wall() * 1e6);
	tt_idmap_init(&N.states);
	tt_idmap_init(&N.sessions);
	tt_idmap_init(&N.instances);
	tt_idmap_init(&N.inflight);
	N.dec = tt_decoder_new();
	tt_arena_init(&N.arena, 0);
	tt_buf_init(&N.tmp, 0);
	for (uint32_t i = 0; i < MAX_NODES; i++) {
		N.nodes[i].sj.kind = K_NODE;
		N.nodes[i].sj.id = i;
	}
	if ((rc = parse_url(cfg->engine, &servers, &n_servers, name, sizeof(name), err)) < 0)
		goto fail;
	snprintf(N.stream, sizeof(N.stream), "tutti_%s", name);
	snprintf(N.rpc_prefix, sizeof(N.rpc_prefix), "tutti_rpc.%s", name);
	snprintf(N.prefix, sizeof(N.prefix), "tutti.%s", name);
	snprintf(N.url, sizeof(N.url), "%s", cfg->engine);
	for (uint32_t i = 0; i < MAX_NODES; i++) {
		char s[100];
		snprintf(s, sizeof(s), "%s.n.%u", N.prefix, i);
		N.nodes[i].sj.subject = tt_strndup(s, strlen(s));
	}
	natsStatus s = nats_Open(-1);
	if (s == NATS_OK)
		s = natsOptions_Create(&N.opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(N.opts, (const char **)servers, n_servers);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(N.opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(N.opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(N.opts, 2000);
	/* a turn's appends go out at once: libnats' flusher otherwise sleeps a
	 * millisecond before each flush, which every acknowledgement (and so
	 * every reply) would wait for */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(N.opts, true);
	if (s == NATS_OK) {
		char cname[64];
		snprintf(cname, sizeof(cname), "tutti-server node %u", N.node);
		s = natsOptions_SetName(N.opts, cname);
	}
	if (s == NATS_OK)
		s = natsConnection_Connect(&N.nc, N.opts);
	if (s != NATS_OK) {
		rc = nerr(err, "cannot connect to NATS", s, 0);
		goto fail;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 1 << 20;
	jo.PublishAsync.AckHandler = on_ack;
	jo.Wait = 5000;
	if ((s = natsConnection_JetStream(&N.js, N.nc, &jo)) != NATS_OK) {
		rc = nerr(err, "cannot use JetStream", s, 0);
		goto fail;
	}
	if ((rc = ensure_stream(err)) < 0 || (rc = check_cas(n_servers, err)) < 0 || (rc = read_stream(err)) < 0 ||
	    (rc = check_node(err)) < 0 || (rc = ensure_epoch(err)) < 0)
		goto fail;
	char rs[120];
	snprintf(rs, sizeof(rs), "%s.%u", N.rpc_prefix, N.node);
	if ((s = natsConnection_Subscribe(&N.rpc, N.nc, rs, on_rpc, NULL)) != NATS_OK) {
		rc = nerr(err, "cannot listen to the other nodes", s, 0);
		goto fail;
	}
	natsSubscription_SetPendingLimits(N.rpc, -1, -1);
	if ((rc = load_rows(ld, err)) < 0)
		goto fail;
	N.opened = true;
	/* alive from now on (the heartbeat also holds the node's number) */
	enode *me = &N.nodes[N.node];
	me->hb = tt_clock_wall();
	me->inc = N.inc;
	me->stopped = false;
	gethostname(me->host, sizeof(me->host) - 1);
	me->pid = (uint32_t)getpid();
	if ((rc = publish_wait(&me->sj, err)) < 0)
		goto fail;
	N.heartbeat_due = tt_clock_mono() + 1;
	tt_log_info("engine: NATS JetStream %s, stream %s, node %u (%llu messages read)", N.url,
		    N.stream, N.node, (unsigned long long)N.restore_to);
	for (int i = 0; i < n_servers; i++)
		free(servers[i]);
	free(servers);
	return 0;
fail:
	for (int i = 0; i < n_servers; i++)
		free(servers[i]);
	free(servers);
	nats_close_all();
	return rc;
}

/* ---- while running ------------------------------------------------------ */

static bool nats_poll(uint64_t *durable, uint64_t *fenced)
{
	bool any = drain();
	if (any)
		flush_dirty();
	if (N.fenced) {
		*fenced = N.fenced;
		N.fenced = 0;
	}
	if (batches_settle())
		*durable = N.durable;
	if (any && !N.n_flying && N.failing[0]) {
		N.failing[0] = '\0';
		tt_engine_failing(NULL, NULL);
	}
	return any || *durable || *fenced;
}

static bool nats_pending(void)
{
	return N.bq_len > 0;
}

static void nats_tick(void)
{
	double now = tt_clock_mono();
	for (pubmsg *pm = N.flying; pm; pm = pm->next) {
		if (pm->retry_at > 0 && now >= pm->retry_at)
			send_msg(pm);
		else if (now - pm->first_sent > FAILING_AFTER)
			set_failing("the engine (NATS JetStream) does not acknowledge writes",
				    "no acknowledgement from JetStream for 2 s; still sending");
	}
	SINK_CALL0(tick);
	if (now >= N.heartbeat_due) {
		N.heartbeat_due = now + 1;
		enode *me = &N.nodes[N.node];
		if (!me->sj.inflight) {
			me->hb = tt_clock_wall();
			mark(&me->sj, 0);
			flush_dirty();
		}
	}
}

static int nats_wait(double timeout)
{
	double deadline = tt_clock_mono() + timeout;
	uint64_t durable, fenced;
	while (N.bq_len && tt_clock_mono() < deadline) {
		q_wait(deadline);
		nats_poll(&durable, &fenced);
		nats_tick();
	}
	return N.bq_len ? -TT_STORAGE : 0;
}

static bool nats_backlog_full(void)
{
	return N.backlog > BACKLOG_MAX;
}

static void nats_close_all(void)
{
	if (N.rpc) {
		natsSubscription_Unsubscribe(N.rpc);
		natsSubscription_Destroy(N.rpc);
		N.rpc = NULL;
	}
	if (N.sub) {
		natsSubscription_Unsubscribe(N.sub);
		natsSubscription_Destroy(N.sub);
		N.sub = NULL;
	}
	drop_pending(N.js, N.published_async);
	if (N.nc) {
		natsConnection_Close(N.nc);
	}
	drop_pending(N.js, N.published_async); /* one sent while it closed */
	N.published_async = false;
	jsCtx_Destroy(N.js);
	N.js = NULL;
	natsConnection_Destroy(N.nc);
	N.nc = NULL;
	natsOptions_Destroy(N.opts);
	N.opts = NULL;
	/* a libnats thread may still be in a callback: what it queues from
	 * now on it frees itself (q_push), and the library's threads are gone
	 * before it is closed */
	ho_item *it = q_take_all(true);
	while (it) {
		ho_item *next = it->next;
		item_free(it);
		it = next;
	}
	nats_CloseAndWait(2000);
	while (N.flying)
		flying_remove(N.flying);
	for (int k = 0; k < K_COUNT; k++) {
		subj *sj = N.first[k];
		while (sj) {
			subj *next = sj->next;
			if (k == K_STATE) {
				est *st = (est *)sj;
				free(st->cls);
				tt_buf_free(&st->vals);
				tt_buf_free(&st->init);
				tt_buf_free(&st->events);
				free(st->ev);
				free(st->tags);
				tt_buf_free(&st->held);
				tt_buf_free(&st->hist);
				idmap_free_vals(&st->scheds, free_sched);
				free(st->deleted);
			} else if (k == K_SESSION) {
				ese *se = (ese *)sj;
				free(se->role);
				idmap_free_vals(&se->inst, free_inst);
				observes_clear(se);
			} else if (k == K_CLASS || k == K_META) {
				tt_buf_free(&((erec *)sj)->data);
			}
			free(sj->key);
			free(sj->subject);
			if (k != K_NODE)
				free(sj);
			sj = next;
		}
		N.first[k] = N.last[k] = NULL;
	}
	for (uint32_t i = 0; i < MAX_NODES; i++)
		TT_FREE(N.nodes[i].sj.subject);
	tt_idmap_free(&N.states);
	tt_idmap_free(&N.sessions);
	tt_idmap_free(&N.instances);
	tt_idmap_free(&N.inflight);
	free(N.bq);
	N.bq = NULL;
	tt_decoder_free(N.dec);
	N.dec = NULL;
	tt_arena_destroy(&N.arena);
	tt_buf_free(&N.tmp);
}

static void nats_close(void)
{
	if (N.opened && N.nc && !N.bq_len) {
		/* a clean stop: the node's number is free at once */
		enode *me = &N.nodes[N.node];
		if (!me->sj.inflight) {
			me->stopped = true;
			me->hb = tt_clock_wall();
			mark(&me->sj, 0);
			flush_dirty();
			double deadline = tt_clock_mono() + 2;
			uint64_t d, f;
			while (me->sj.inflight && tt_clock_mono() < deadline) {
				q_wait(deadline);
				nats_poll(&d, &f);
			}
		}
	}
	N.opened = false;
	nats_close_all();
}

/* ---- several nodes: what cluster.c asks --------------------------------- */

/* A node is taken for dead after this many seconds without a heartbeat
 * (they come every second). */
#define NODE_TIMEOUT 3.0

uint32_t tt_engine_node(void)
{
	return N.opened || N.nc ? N.node : 0;
}

bool tt_engine_alive(uint32_t n)
{
	if (n == N.node)
		return true;
	if (!n || n >= MAX_NODES)
		return false;
	const enode *nd = &N.nodes[n];
	return nd->sj.seq && !nd->stopped && tt_clock_mono() - nd->hb_mono < NODE_TIMEOUT;
}

uint32_t tt_engine_writer(uint64_t state)
{
	est *st = state_get(state, false);
	return st ? st->sj.writer : 0;
}

bool tt_engine_unsettled(uint64_t state)
{
	est *st = state_get(state, false);
	return st && (st->sj.inflight || st->sj.dirty);
}

void tt_engine_send(uint32_t n, const void *data, size_t len)
{
	char to[120];
	snprintf(to, sizeof(to), "%s.%u", N.rpc_prefix, n);
	if (N.nc)
		natsConnection_Publish(N.nc, to, data, (int)len);
}

uint64_t tt_engine_position(void)
{
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	uint64_t last = 0;
	if (js_GetStreamInfo(&si, N.js, N.stream, NULL, &je) == NATS_OK && si)
		last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return last;
}

uint64_t tt_engine_read(void)
{
	return N.read_upto;
}

uint32_t tt_engine_session_node(uint64_t id)
{
	ese *se = session_get(id, false);
	return se ? se->node : 0;
}

bool tt_engine_session_rows(uint64_t id, const tt_db_loader *ld, tt_error *err)
{
	ese *se = session_get(id, false);
	if (!se || se->ended)
		return false;
	for (size_t k = 0; k < se->inst.cap; k++) {
		if (!se->inst.keys[k] || se->inst.keys[k] == UINT64_MAX)
			continue;
		inst_row *r = se->inst.vals[k];
		ld->instance(r->id, id, r->state, tt_buf_data(&r->filter), r->filter.len, err);
	}
	for (uint32_t k = 0; k < se->n_observes; k++)
		ld->observe(id, se->observes[k][0] ? se->observes[k] : NULL, strlen(se->observes[k]));
	return true;
}

/* Take a subject out of the dirty list, its batch counted done. */
static void undirty(subj *sj)
{
	if (!sj->dirty)
		return;
	subj **pp = &N.dirty;
	N.dirty_last = NULL;
	for (subj *x = N.dirty; x; x = x->dirty_next)
		if (x != sj)
			N.dirty_last = x;
	while (*pp && *pp != sj)
		pp = &(*pp)->dirty_next;
	if (*pp)
		*pp = sj->dirty_next;
	sj->dirty = false;
	sj->dirty_next = NULL;
	batch_done(sj->dirty_batch);
	if (sj->dirty_batch && (!N.fenced || sj->dirty_batch < N.fenced))
		N.fenced = sj->dirty_batch;
}

void tt_engine_reread(uint64_t state)
{
	est *st = state_get(state, false);
	if (!st)
		return;
	/* what this node had not sent yet was built on the copy that is behind */
	st->n_events = st->n_tags = 0;
	tt_buf_clear(&st->held);
	tt_buf_clear(&st->events);
	undirty(&st->sj);
	/* every retained message of the state, in order: its history, and the
	 * last one's values and schedules */
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverAll;
	jsErrCode je = 0;
	natsMsg *last = NULL;
	if (js_GetLastMsg(&last, N.js, N.stream, st->sj.subject, NULL, &je) != NATS_OK || !last) {
		tt_log_error("engine: %s: cannot read it back (%s)", st->sj.subject,
			     nats_GetLastError(NULL));
		return;
	}
	uint64_t upto = natsMsg_GetSequence(last);
	natsMsg_Destroy(last);
	if (js_SubscribeSync(&sub, N.js, st->sj.subject, NULL, &so, &je) != NATS_OK) {
		tt_log_error("engine: %s: cannot read it back (%s)", st->sj.subject,
			     nats_GetLastError(NULL));
		return;
	}
	tt_buf_clear(&st->hist);
	st->n_hist = 0;
	tt_buf lastbody;
	tt_buf_init(&lastbody, 0);
	uint64_t got = 0;
	uint32_t writer = 0;
	while (got < upto) {
		natsMsg *m = NULL;
		if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK)
			break;
		jsMsgMetaData *meta = NULL;
		if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta) {
			got = meta->Sequence.Stream;
			jsMsgMetaData_Destroy(meta);
		}
		const char *mid = NULL;
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &mid) == NATS_OK && mid)
			writer = (uint32_t)strtoul(mid, NULL, 10);
		tt_value v;
		size_t off = 0;
		tt_arena_reset(&N.arena);
		if (tt_decode(N.dec, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &off,
			      &N.arena, &v, NULL) == 0) {
			read_state(st, &v, true);
			copy_into(&lastbody, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
		}
		natsMsg_Destroy(m);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	if (got >= upto) {
		st->sj.seq = upto;
		st->sj.writer = writer;
		tt_value v;
		size_t off = 0;
		tt_arena_reset(&N.arena);
		if (tt_decode(N.dec, tt_buf_data(&lastbody), lastbody.len, &off, &N.arena, &v, NULL) == 0)
			SINK_CALL(reset, state, &v, tt_buf_data(&st->hist), st->hist.len, st->n_hist);
	} else {
		tt_log_error("engine: %s: read back %llu of %llu", st->sj.subject,
			     (unsigned long long)got, (unsigned long long)upto);
	}
	tt_buf_free(&lastbody);
	tt_buf_free(&st->hist);
	tt_buf_init(&st->hist, 0);
	st->n_hist = 0;
}

const tt_engine tt_engine_nats = {
	.name = "nats",
	.open = nats_open,
	.commit = nats_commit,
	.poll = nats_poll,
	.pending = nats_pending,
	.wait = nats_wait,
	.tick = nats_tick,
	.backlog_full = nats_backlog_full,
	.close = nats_close,
};
