/* SPDX-License-Identifier: MIT */
/* cluster.c: several nodes on one engine: who writes a state, requests
 * forwarded to it and answered in order, other nodes' messages applied to
 * this node's copy and told to its clients, sessions that move between
 * nodes, what a node that stops beating leaves behind. */
#include "cluster.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "db.h"
#include "engine.h"
#include "fanout.h"
#include "hooks.h"
#include "log.h"
#include "protocol.h"
#include "resume.h"
#include "roles.h"
#include "secret.h"
#include "session.h"
#include "wire.h"

/* A forwarded request not acknowledged by its node in this many seconds
 * fails (the node beats but does not answer); an accepted one whose change
 * never shows up fails after the longer one. */
#define FWD_TIMEOUT 10.0
#define FWD_ACCEPTED_TIMEOUT 30.0
/* A forwarded request is passed on at most this many times (ownership
 * moving meanwhile). */
#define MAX_HOPS 3

enum fwd_kind { F_SET, F_DELETE, F_CANCEL };
enum fwd_wait { W_ANSWER, W_INPLACE, W_SEQ };

/* A request this node forwarded, until its client is answered. */
typedef struct fwd {
	enum fwd_kind kind;
	enum fwd_wait wait;
	uint64_t session, rid, state, instance, sched;
	uint32_t node;       /* where it went */
	uint64_t after;      /* its node died: read this far before sending again */
	uint64_t seq;        /* W_SEQ: the state's seq the answer is for */
	double sent;
	tt_buf req;          /* the request, to send again */
	tt_buf answer;       /* W_SEQ: the reply to give then */
	struct fwd *next;
} fwd;

/* Something that waits for this node to read the stream up to pos. */
typedef struct deferred {
	uint64_t pos;
	tt_client *c;        /* a welcome: the client, its request, token, seqs */
	uint64_t rid, session;
	char token[TT_TOKEN_HEX_LEN + 1];
	tt_buf data;         /* welcome: the seqs map (msgpack, or empty); request: it */
	struct deferred *next;
} deferred;

/* Another node's session, standing for it in requests it forwarded. */
typedef struct proxy {
	tt_client c;
	tt_buf captured;
	uint32_t node;       /* the node to answer */
	struct proxy *next;
} proxy;

/* A HOOK of this node's client, answered once every live node has the hook:
 * a CREATE sent to another node after the RESULT meets it there. */
typedef struct hook_wait {
	tt_client *c;
	uint64_t rid, id;
	uint64_t nodes;      /* bit n: node n has not said it has it yet */
	double until;        /* answered then all the same (a node that hangs) */
	struct hook_wait *next;
} hook_wait;

/* How long a HOOK waits for the other nodes at most. */
#define HOOK_WAIT_S 2.0

/* A walk over the hooks: of a client that went, or told to a node. */
typedef struct hook_walk {
	const tt_client *c;
	uint32_t to;
} hook_walk;

static void on_hook_msg(const tt_value *m, const tt_value *k);
static void hook_gone(uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind,
		      const tt_client *c, void *arg);

static struct {
	const tt_cluster_runner *run; /* the request layer (cluster.h) */
	bool on;
	uint32_t me;
	tt_buf out;
	tt_decoder *dec;
	tt_arena arena;
	tt_changes cs;
	fwd *fwds;
	deferred *welcomes, *requests, *retries;
	deferred *hookadds;  /* another node's hooks on classes not read here yet */
	hook_wait *hook_waits;
	bool retrying;       /* handling a retried request or hook: no second deferral */
	proxy *proxies;
	double hook_timeout; /* --hook-timeout */
	bool alive[TT_NODES_MAX + 1];
	tt_client *relay[TT_NODES_MAX + 1]; /* hooks of node n, called through it */
	tt_buf relayed[TT_NODES_MAX + 1];   /* their captured HOOK_CALLs */
	double started;
} C;

/* ---- who writes what ------------------------------------------------------ */

static uint32_t node_of(const tt_session *s)
{
	return s->node ? s->node : C.me;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Rendezvous hashing: the live node with the highest hash of (id, node);
 * when a node stops, only its own states move. */
static uint32_t hashed_owner(uint64_t id)
{
	uint32_t best = 0;
	uint64_t bh = 0;
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++) {
		if (!tt_engine_alive(n))
			continue;
		uint64_t h = mix(id * 0x9e3779b97f4a7c15ULL + n);
		if (!best || h > bh)
			best = n, bh = h;
	}
	return best ? best : C.me;
}

uint32_t tt_cluster_owner(const tt_state *st)
{
	if (!C.on)
		return 0;
	uint32_t w = tt_engine_writer(st->id);
	if (w && tt_engine_alive(w))
		return w;
	if (st->owner) {
		const tt_session *s = tt_session_by_id(st->owner);
		if (s && tt_engine_alive(node_of(s)))
			return node_of(s);
	}
	return hashed_owner(st->id);
}

/* Once its owner session ended: the writer while it beats, else the hash. */
static uint32_t owner_without_session(const tt_state *st)
{
	uint32_t w = tt_engine_writer(st->id);
	return w && tt_engine_alive(w) ? w : hashed_owner(st->id);
}

bool tt_cluster_ends_here(const tt_state *st)
{
	return !C.on || owner_without_session(st) == C.me;
}

bool tt_cluster_elsewhere(const tt_state *st)
{
	return C.on && tt_cluster_owner(st) != C.me;
}

bool tt_cluster_remote(const tt_session *s)
{
	return C.on && node_of(s) != C.me;
}

uint32_t tt_cluster_node(const tt_session *s)
{
	return C.on ? node_of(s) : 0;
}

uint32_t tt_cluster_me(void)
{
	return C.on ? C.me : 0;
}

/* s is gone since wall time `wall` (0: connected on its node): the resume
 * window counts on the monotonic clock (resume.c), from as long ago. */
static void mark_gone(tt_session *s, double wall)
{
	s->gone_at = wall;
	double away = wall > 0 ? tt_clock_wall() - wall : 0;
	s->gone_mono = tt_clock_mono() - (away > 0 ? away : 0);
}

/* The node that ends the sessions of dead nodes: the lowest live one. */
static bool sweeper(void)
{
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++)
		if (tt_engine_alive(n))
			return n == C.me;
	return true;
}

bool tt_cluster_may_end(const tt_session *s)
{
	if (!tt_cluster_remote(s))
		return true;
	return !tt_engine_alive(node_of(s)) && sweeper();
}

uint32_t tt_cluster_requester(const tt_client *c)
{
	for (proxy *p = C.proxies; p; p = p->next)
		if (&p->c == c)
			return p->node;
	return 0;
}

/* ---- messages between nodes ----------------------------------------------- */

static void key(tt_buf *b, const char *k, uint64_t v)
{
	tt_enc_str(b, k);
	tt_enc_uint(b, v);
}

static void send_to(uint32_t node, const tt_buf *b)
{
	tt_engine_send(node, tt_buf_data(b), b->len);
}

/* The answer of request rid of session s to node `node`: an error (code),
 * or what to wait for. raw: a reply to give when this node's copy of the
 * state has reached seq (W_SEQ). */
static void answer(uint32_t node, uint64_t s, uint64_t rid, int code, const char *msg,
		   enum fwd_wait wait, uint64_t seq, const void *raw, size_t raw_len)
{
	tt_buf_clear(&C.out);
	tt_enc_map(&C.out, raw_len ? 8 : 7);
	tt_enc_str(&C.out, "k");
	tt_enc_str(&C.out, "re");
	key(&C.out, "s", s);
	key(&C.out, "r", rid);
	key(&C.out, "code", (uint64_t)code);
	tt_enc_str(&C.out, "m");
	tt_enc_str(&C.out, msg ? msg : "");
	key(&C.out, "w", wait);
	key(&C.out, "q", seq);
	if (raw_len) {
		tt_value bin = {.type = TT_BIN, .len = (uint32_t)raw_len};
		bin.v.s = raw;
		tt_enc_str(&C.out, "x");
		tt_enc_value(&C.out, &bin);
	}
	send_to(node, &C.out);
}

/* ---- this node asks another ------------------------------------------------- */

static fwd *fwd_find(uint64_t session, uint64_t rid)
{
	for (fwd *f = C.fwds; f; f = f->next)
		if (f->session == session && f->rid == rid)
			return f;
	return NULL;
}

static void fwd_free(fwd *f)
{
	fwd **pp = &C.fwds;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	tt_buf_free(&f->req);
	tt_buf_free(&f->answer);
	free(f);
}

/* The client of session id here, or NULL. */
static tt_client *client_of(uint64_t session)
{
	tt_session *s = tt_session_by_id(session);
	return s && s->client && !s->client->capture ? s->client : NULL;
}

static void fail_fwd(fwd *f, int code, const char *why)
{
	tt_client *c = client_of(f->session);
	if (c) {
		tt_wire_error(&C.out, f->rid, code, why);
		tt_client_reply(c, &C.out);
	}
	fwd_free(f);
}

/* Build and send a request on state st for c (kind, and the fields of it). */
static int forward(tt_client *c, uint64_t rid, tt_instance *in, enum fwd_kind kind,
		   const tt_value *updates, const tt_value *opts, uint64_t sched, tt_error *err)
{
	tt_state *st = in->state;
	uint32_t node = tt_cluster_owner(st);
	if (fwd_find(c->session->id, rid))
		return tt_fail(err, TT_BAD_REQUEST, "request id %llu is still waiting for its answer",
			       (unsigned long long)rid);
	fwd *f = tt_calloc(1, sizeof(*f));
	f->kind = kind;
	f->session = c->session->id;
	f->rid = rid;
	f->state = st->id;
	f->instance = in->id;
	f->sched = sched;
	f->node = node;
	f->sent = tt_clock_mono();
	tt_buf_init(&f->req, 0);
	tt_buf_init(&f->answer, 0);
	tt_buf *b = &f->req;
	static const char *const kinds[] = {"set", "del", "cancel"};
	uint32_t n = 8 + (updates ? 1 : 0) + (opts ? 1 : 0);
	tt_enc_map(b, n);
	tt_enc_str(b, "k");
	tt_enc_str(b, kinds[kind]);
	key(b, "from", C.me);
	key(b, "h", 0);
	key(b, "s", f->session);
	key(b, "r", rid);
	key(b, "st", st->id);
	key(b, "sc", sched);
	tt_enc_str(b, "f");
	if (in->filtered) {
		const tt_class *cls = st->ce->cls;
		uint32_t k = 0;
		for (uint32_t i = 0; i < cls->n_params; i++)
			k += tt_mask_has(&in->mask, i);
		tt_enc_array(b, k);
		for (uint32_t i = 0; i < cls->n_params; i++)
			if (tt_mask_has(&in->mask, i))
				tt_enc_strn(b, cls->params[i].name, cls->params[i].name_len);
	} else {
		tt_enc_nil(b);
	}
	if (updates) {
		tt_enc_str(b, "u");
		tt_enc_value(b, updates);
	}
	if (opts) {
		tt_enc_str(b, "o");
		tt_enc_value(b, opts);
	}
	f->next = C.fwds;
	C.fwds = f;
	send_to(node, b);
	return 0;
}

int tt_cluster_set(tt_client *c, uint64_t rid, tt_instance *in, tt_value *updates,
		   const tt_value *opts, tt_error *err)
{
	return forward(c, rid, in, F_SET, updates, opts && opts->type != TT_NIL ? opts : NULL, 0, err);
}

int tt_cluster_delete(tt_client *c, uint64_t rid, tt_instance *in, tt_error *err)
{
	return forward(c, rid, in, F_DELETE, NULL, NULL, 0, err);
}

int tt_cluster_cancel(tt_client *c, uint64_t rid, tt_instance *in, uint64_t sched,
		      tt_error *err)
{
	return forward(c, rid, in, F_CANCEL, NULL, NULL, sched, err);
}

void tt_cluster_deleting(const tt_state *st, const tt_client *c, uint64_t rid)
{
	uint32_t node = c ? tt_cluster_requester(c) : 0;
	if (node)
		tt_db_tag_sched(st->id, 0, rid, node, c->session ? c->session->id : 0);
}

/* The answer to a request of this node arrived (an "re" message). */
static void on_answer(const tt_value *m)
{
	fwd *f = fwd_find(tt_as_u64(tt_map_get(m, "s")), tt_as_u64(tt_map_get(m, "r")));
	if (!f)
		return; /* answered already (its change came first), or given up */
	int code = (int)tt_as_u64(tt_map_get(m, "code"));
	if (code) {
		const tt_value *msg = tt_map_get(m, "m");
		char why[512];
		snprintf(why, sizeof(why), "%.*s", msg && msg->type == TT_STR ? (int)TT_MIN(msg->len, 500u) : 0,
			 msg && msg->type == TT_STR ? msg->v.s : "");
		fail_fwd(f, code, why);
		return;
	}
	f->wait = (enum fwd_wait)tt_as_u64(tt_map_get(m, "w"));
	f->sent = tt_clock_mono();
	if (f->wait != W_SEQ)
		return; /* its change comes with the stream, and is answered there */
	const tt_value *x = tt_map_get(m, "x");
	f->seq = tt_as_u64(tt_map_get(m, "q"));
	tt_buf_clear(&f->answer);
	if (x && x->type == TT_BIN)
		tt_buf_append(&f->answer, x->v.s, x->len);
	tt_state *st = tt_store_state(f->state);
	if (!st || st->seq >= f->seq) {
		tt_client *c = client_of(f->session);
		if (c && f->answer.len)
			tt_client_reply(c, &f->answer);
		fwd_free(f);
	}
}

/* Answers that waited for this node's copy of st to reach a seq. */
static void answers_due(const tt_state *st, uint64_t id)
{
	for (fwd *f = C.fwds, *next; f; f = next) {
		next = f->next;
		if (f->state != id || f->wait != W_SEQ || (st && st->seq < f->seq))
			continue;
		tt_client *c = client_of(f->session);
		if (c && f->answer.len)
			tt_client_reply(c, &f->answer);
		fwd_free(f);
	}
}

/* ---- another node asks this one ------------------------------------------- */

static proxy *proxy_for(tt_session *s, uint32_t node)
{
	for (proxy *p = C.proxies; p; p = p->next)
		if (p->c.session == s) {
			p->node = node;
			return p;
		}
	proxy *p = tt_calloc(1, sizeof(*p));
	tt_buf_init(&p->captured, 0);
	tt_buf_init(&p->c.rx, 0);
	tt_buf_init(&p->c.held, 0);
	p->c.capture = &p->captured;
	p->c.session = s;
	snprintf(p->c.addr_text, sizeof(p->c.addr_text), "node %u", node);
	p->node = node;
	p->next = C.proxies;
	C.proxies = p;
	/* hooks answer a request of s through s->client: this stand-in */
	s->client = &p->c;
	return p;
}

static void proxy_drop(tt_session *s)
{
	for (proxy **pp = &C.proxies; *pp; pp = &(*pp)->next) {
		proxy *p = *pp;
		if (p->c.session != s)
			continue;
		*pp = p->next;
		if (s->client == &p->c)
			s->client = NULL;
		tt_buf_free(&p->captured);
		tt_buf_free(&p->c.rx);
		tt_buf_free(&p->c.held);
		free(p);
		return;
	}
}

/* The replies captured for another node's client: back to it, with what
 * its node must wait for to give them in order. */
static void send_captured(proxy *p)
{
	size_t off = 0, len = p->captured.len;
	const unsigned char *data = tt_buf_data(&p->captured);
	while (off < len) {
		size_t start = off;
		tt_value m;
		tt_arena_reset(&C.arena);
		if (tt_decode(C.dec, data, len, &off, &C.arena, &m, NULL) < 0)
			break;
		if (m.type != TT_ARRAY || m.len < 3)
			continue;
		uint64_t type = tt_as_u64(&m.v.items[0]), rid = tt_as_u64(&m.v.items[1]);
		uint64_t s = p->c.session ? p->c.session->id : 0;
		if (type == TT_MSG_ERROR) {
			const tt_value *msg = m.len > 3 ? &m.v.items[3] : NULL;
			char why[512];
			snprintf(why, sizeof(why), "%.*s", msg && msg->type == TT_STR ? (int)TT_MIN(msg->len, 500u) : 0,
				 msg && msg->type == TT_STR ? msg->v.s : "");
			answer(p->node, s, rid, (int)tt_as_u64(&m.v.items[2]), why, W_ANSWER, 0, NULL, 0);
			continue;
		}
		const tt_value *r = &m.v.items[2];
		const tt_value *changes = tt_map_get(r, "changes");
		if (r->type == TT_MAP && tt_map_get(r, "seq") && (!changes || changes->type != TT_MAP ||
							     changes->len == 0))
			/* a set that changed nothing: no message tells the other node
			 * when; it answers once its copy is where this one was */
			answer(p->node, s, rid, 0, NULL, W_SEQ, tt_as_u64(tt_map_get(r, "seq")), data + start,
			       off - start);
		else
			/* the change comes with the stream and is answered there */
			answer(p->node, s, rid, 0, NULL, W_INPLACE, 0, NULL, 0);
	}
	tt_buf_clear(&p->captured);
}

void tt_cluster_flush(void)
{
	for (proxy *p = C.proxies; p; p = p->next)
		if (p->captured.len)
			send_captured(p);
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++) {
		if (!C.relay[n] || !C.relayed[n].len)
			continue;
		tt_buf_clear(&C.out);
		tt_enc_map(&C.out, 3);
		tt_enc_str(&C.out, "k");
		tt_enc_str(&C.out, "hookcall");
		key(&C.out, "from", C.me);
		tt_value bin = {.type = TT_BIN, .len = (uint32_t)C.relayed[n].len};
		bin.v.s = (const char *)tt_buf_data(&C.relayed[n]);
		tt_enc_str(&C.out, "x");
		tt_enc_value(&C.out, &bin);
		send_to(n, &C.out);
		tt_buf_clear(&C.relayed[n]);
	}
}

static void defer_request(const void *data, size_t len);

/* A request forwarded to this node. */
static void on_request(const void *data, size_t len, const tt_value *m)
{
	const tt_value *k = tt_map_get(m, "k");
	uint32_t from = (uint32_t)tt_as_u64(tt_map_get(m, "from"));
	uint64_t sid = tt_as_u64(tt_map_get(m, "s")), rid = tt_as_u64(tt_map_get(m, "r"));
	uint32_t hops = (uint32_t)tt_as_u64(tt_map_get(m, "h"));
	tt_state *st = tt_store_state(tt_as_u64(tt_map_get(m, "st")));
	tt_error err;
	if (!from || from > TT_NODES_MAX)
		return;
	if (!st) {
		const char *why = tt_store_tombstone(tt_as_u64(tt_map_get(m, "st")));
		if (why)
			answer(from, sid, rid, TT_UNKNOWN_STATE, "the state was deleted meanwhile",
			       W_ANSWER, 0, NULL, 0);
		else
			defer_request(data, len); /* created on a node this one has not read yet */
		return;
	}
	uint32_t owner = tt_cluster_owner(st);
	if (owner != C.me) {
		if (hops >= MAX_HOPS) {
			answer(from, sid, rid, TT_STORAGE, "the state is moving between nodes; nothing "
			       "was applied; retry", W_ANSWER, 0, NULL, 0);
			return;
		}
		/* it moved on: pass it along (the count of hops is the first key) */
		tt_buf b;
		tt_buf_init(&b, 0);
		tt_buf_append(&b, data, len);
		tt_value hv;
		size_t off = 0;
		tt_arena_reset(&C.arena);
		tt_decode(C.dec, data, len, &off, &C.arena, &hv, NULL);
		tt_buf_clear(&b);
		tt_enc_map(&b, hv.len);
		for (uint32_t i = 0; i < hv.len; i++) {
			tt_enc_value(&b, &hv.v.pairs[i].key);
			if (tt_str_eq(&hv.v.pairs[i].key, "h"))
				tt_enc_uint(&b, hops + 1);
			else
				tt_enc_value(&b, &hv.v.pairs[i].val);
		}
		send_to(owner, &b);
		tt_buf_free(&b);
		return;
	}
	tt_session *s = tt_session_by_id(sid);
	if (!s) {
		defer_request(data, len); /* its record is on its way */
		return;
	}
	proxy *p = proxy_for(s, from);
	p->c.closing = false;
	int rc;
	if (tt_str_eq(k, "set")) {
		tt_mask mask;
		const tt_value *f = tt_map_get(m, "f");
		bool filtered = f && f->type == TT_ARRAY;
		if (filtered && tt_store_filter(st->ce->cls, f, &mask, &err) < 0)
			filtered = false;
		tt_value *u = (tt_value *)tt_map_get(m, "u");
		tt_value none = {.type = TT_MAP};
		rc = C.run->forwarded_set(&p->c, rid, st, filtered ? &mask : NULL, u ? u : &none,
					  tt_map_get(m, "o"), &err);
	} else if (tt_str_eq(k, "del")) {
		rc = C.run->forwarded_delete(&p->c, rid, st, &err);
	} else if (tt_str_eq(k, "cancel")) {
		rc = C.run->forwarded_cancel(&p->c, rid, st, tt_as_u64(tt_map_get(m, "sc")), &err);
	} else {
		return;
	}
	if (rc < 0)
		answer(from, sid, rid, err.code, err.msg, W_ANSWER, 0, NULL, 0);
	send_captured(p);
}

static void sink_rpc(const void *data, size_t len)
{
	if (!C.on) /* stopping: the engine reads on while this is gone */
		return;
	tt_value m;
	size_t off = 0;
	tt_arena_reset(&C.arena);
	if (tt_decode(C.dec, data, len, &off, &C.arena, &m, NULL) < 0 || m.type != TT_MAP)
		return;
	const tt_value *k = tt_map_get(&m, "k");
	if (tt_str_eq(k, "re"))
		on_answer(&m);
	else if (k && k->type == TT_STR && k->len > 4 && !memcmp(k->v.s, "hook", 4))
		on_hook_msg(&m, k);
	else
		on_request(data, len, &m);
}

/* ---- waiting for this node to read further -------------------------------- */

static deferred *defer_new(deferred **list)
{
	deferred *d = tt_calloc(1, sizeof(*d));
	tt_buf_init(&d->data, 0);
	d->pos = tt_engine_position();
	d->next = *list;
	*list = d;
	return d;
}

static void defer_free(deferred **list, deferred *d)
{
	while (*list != d)
		list = &(*list)->next;
	*list = d->next;
	tt_buf_free(&d->data);
	free(d);
}

static void defer_request(const void *data, size_t len)
{
	deferred *d = defer_new(&C.requests);
	tt_buf_append(&d->data, data, len);
	/* one that waited already and still finds nothing: it cannot be done */
	tt_value m;
	size_t off = 0;
	tt_arena_reset(&C.arena);
	if (d->pos <= tt_engine_read() &&
	    tt_decode(C.dec, data, len, &off, &C.arena, &m, NULL) == 0) {
		tt_log_debug("cluster: request of session %llu on state %llu from node %llu: "
			     "unknown here (read %llu, stream at %llu)",
			     (unsigned long long)tt_as_u64(tt_map_get(&m, "s")), (unsigned long long)tt_as_u64(tt_map_get(&m, "st")),
			     (unsigned long long)tt_as_u64(tt_map_get(&m, "from")), (unsigned long long)tt_engine_read(),
			     (unsigned long long)d->pos);
		answer((uint32_t)tt_as_u64(tt_map_get(&m, "from")), tt_as_u64(tt_map_get(&m, "s")), tt_as_u64(tt_map_get(&m, "r")),
		       TT_UNKNOWN_STATE, "no such state or session on the node that writes it",
		       W_ANSWER, 0, NULL, 0);
		defer_free(&C.requests, d);
	}
}

bool tt_cluster_defer_welcome(tt_client *c, uint64_t rid, const char *token,
			      const tt_value *seqs)
{
	if (!C.on)
		return false;
	deferred *d = defer_new(&C.welcomes);
	if (d->pos <= tt_engine_read()) {
		defer_free(&C.welcomes, d);
		return false;
	}
	d->c = c;
	d->rid = rid;
	d->session = c->session->id;
	snprintf(d->token, sizeof(d->token), "%s", token);
	if (seqs)
		tt_enc_value(&d->data, seqs);
	return true;
}

tt_client *tt_cluster_welcome_waiting(const tt_session *s)
{
	for (deferred *d = C.welcomes; d; d = d->next) {
		if (d->session == s->id) {
			tt_client *c = d->c;
			defer_free(&C.welcomes, d);
			return c;
		}
	}
	return NULL;
}

void tt_cluster_client_gone(const tt_client *c)
{
	if (C.on) {
		hook_walk w = {c, 0};
		tt_hooks_each(hook_gone, &w);
	}
	for (deferred *d = C.welcomes, *next; d; d = next) {
		next = d->next;
		if (d->c == c)
			defer_free(&C.welcomes, d);
	}
	for (deferred *d = C.retries, *next; d; d = next) {
		next = d->next;
		if (d->c == c)
			defer_free(&C.retries, d);
	}
	for (hook_wait **pp = &C.hook_waits; *pp;) {
		hook_wait *w = *pp;
		if (w->c == c) { /* nobody to answer */
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

bool tt_cluster_retry_later(tt_client *c, const void *msg, size_t len)
{
	if (!C.on || C.retrying)
		return false;
	deferred *d = defer_new(&C.retries);
	if (d->pos <= tt_engine_read()) { /* read that far already: it is unknown */
		defer_free(&C.retries, d);
		return false;
	}
	d->c = c;
	tt_buf_append(&d->data, msg, len);
	return true;
}

/* A deferred message of list that this node has now read far enough for:
 * out of the list, its bytes in *data (the caller frees them), decoded
 * into *m (C.arena). False when none is due. */
static bool next_due(deferred **list, uint64_t read, tt_buf *data, tt_value *m)
{
	for (deferred *d = *list; d;) {
		if (d->pos > read) {
			d = d->next;
			continue;
		}
		*data = d->data;
		tt_buf_init(&d->data, 0);
		defer_free(list, d);
		size_t off = 0;
		tt_arena_reset(&C.arena);
		if (tt_decode(C.dec, tt_buf_data(data), data->len, &off, &C.arena, m, NULL) == 0)
			return true;
		tt_buf_free(data);
		d = *list;
	}
	return false;
}

static void sink_progress(void)
{
	uint64_t read = tt_engine_read();
	for (deferred *d = C.welcomes, *next; d; d = next) {
		next = d->next;
		if (d->pos > read)
			continue;
		tt_session *s = tt_session_by_id(d->session);
		tt_client *c = d->c;
		/* still its session, not taken over meanwhile (ops.c) */
		if (s && c->session == s && !s->client) {
			s->client = c;
			tt_value seqs = {.type = TT_NIL};
			size_t off = 0;
			tt_arena_reset(&C.arena);
			if (d->data.len)
				tt_decode(C.dec, tt_buf_data(&d->data), d->data.len, &off, &C.arena, &seqs, NULL);
			C.run->welcome(c, d->rid, d->token, true, &seqs);
		}
		defer_free(&C.welcomes, d);
	}
	for (deferred *d = C.retries, *next; d; d = next) {
		next = d->next;
		if (d->pos > read)
			continue;
		tt_client *c = d->c;
		tt_buf data = d->data;
		tt_buf_init(&d->data, 0);
		defer_free(&C.retries, d);
		C.retrying = true;
		C.run->message(c, tt_buf_data(&data), data.len);
		C.retrying = false;
		tt_buf_free(&data);
	}
	tt_buf data;
	tt_value m;
	while (next_due(&C.hookadds, read, &data, &m)) {
		C.retrying = true; /* the last chance: unknown still, it is not added */
		on_hook_msg(&m, tt_map_get(&m, "k"));
		C.retrying = false;
		tt_buf_free(&data);
	}
	/* the last chance: a second deferral answers that it cannot */
	while (next_due(&C.requests, read, &data, &m)) {
		on_request(tt_buf_data(&data), data.len, &m);
		tt_buf_free(&data);
	}
}

/* ---- another node's messages ---------------------------------------------- */

/* A stored msgpack blob (values, init) as a tree, in C.arena. */
static bool tree_of(const tt_value *bin, tt_value *out)
{
	const void *p;
	size_t n, off = 0;
	return tt_as_bytes(bin, &p, &n) && tt_decode(C.dec, p, n, &off, &C.arena, out, NULL) == 0;
}

/* The role a record names (the default one when unknown). */
static uint32_t role_named(const char *name)
{
	int r = name ? tt_roles_find(name, strlen(name)) : -1;
	return r >= 0 ? (uint32_t)r : tt_roles_default();
}

/* The schedule tags of a message: which request made a schedule, or who
 * cancelled it, or deleted the state (id 0). */
typedef struct tag {
	uint64_t id, rid, by;
	uint32_t node;
} tag;

static uint32_t tags_of(const tt_value *m, tag *out, uint32_t cap)
{
	const tt_value *g = tt_map_get(m, "g");
	uint32_t n = 0;
	for (uint32_t i = 0; g && g->type == TT_ARRAY && i < g->len && n < cap; i++) {
		const tt_value *t = &g->v.items[i];
		if (t->type != TT_ARRAY || t->len < 4)
			continue;
		out[n++] = (tag){tt_as_u64(&t->v.items[0]), tt_as_u64(&t->v.items[1]), tt_as_u64(&t->v.items[3]),
				 (uint32_t)tt_as_u64(&t->v.items[2])};
	}
	return n;
}

static const tag *tag_for(const tag *t, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	return NULL;
}

/* The instance view of a forwarded request's client on st (NULL: all). */
static const tt_mask *view_for(const tt_state *st, uint64_t instance, const tt_session *s)
{
	const tt_instance *in = tt_store_instance(instance);
	return in && in->state == st && in->session == s ? tt_sub_view(&st->subs[in->sub]) : NULL;
}

/* A forwarded request of this node answered in place; its session (a
 * client here) or NULL. */
static tt_session *answered_here(uint64_t rid, uint32_t node, uint64_t session, fwd **out)
{
	*out = NULL;
	if (!rid || node != C.me)
		return NULL;
	fwd *f = fwd_find(session, rid);
	if (!f)
		return NULL;
	*out = f;
	tt_session *s = tt_session_by_id(session);
	return s && s->client && !s->client->capture ? s : NULL;
}

static void park(tt_state *st, bool parked)
{
	for (tt_sched *sc = st->scheds.first; sc; sc = sc->next)
		tt_sched_park(sc, parked);
}

static void add_scheds(tt_state *st, const tt_value *list, const tag *tags, uint32_t n_tags,
		       bool tell)
{
	for (uint32_t i = 0; list && list->type == TT_ARRAY && i < list->len; i++) {
		const tt_value *a = &list->v.items[i];
		const void *p;
		size_t n;
		if (a->type != TT_ARRAY || a->len < 4 || !tt_as_bytes(&a->v.items[3], &p, &n))
			continue;
		uint64_t id = tt_as_u64(&a->v.items[0]);
		bool known = false;
		for (tt_sched *sc = st->scheds.first; sc && !known; sc = sc->next)
			known = sc->id == id;
		if (known)
			continue;
		uint64_t origin = tt_as_u64(&a->v.items[2]);
		const tt_session *o = tt_session_by_id(origin);
		tt_store_restore_schedule(id, st, tt_as_f64(&a->v.items[1]), origin,
					  o && o->role != tt_roles_default(), p, n);
		tt_sched *sc = st->scheds.last;
		while (sc && sc->id != id)
			sc = sc->prev;
		if (!sc)
			continue;
		tt_sched_park(sc, true); /* its node fires it */
		if (!tell)
			continue;
		const tag *t = tag_for(tags, n_tags, id);
		fwd *f = NULL;
		tt_session *s = t ? answered_here(t->rid, t->node, origin, &f) : NULL;
		if (s) {
			tt_wire_set_scheduled(&C.out, t->rid, sc, view_for(st, f->instance, s));
			tt_client_reply(s->client, &C.out);
		}
		if (f)
			fwd_free(f);
		tt_fanout_scheduled(sc, s);
	}
}

/* A DELETE or CANCEL another node carried out, tagged t (may be NULL): its
 * requester, when it waits on this node, gets its RESULT (nil) here.
 * Returns the session that asked (NULL: unknown, or the server). */
static tt_session *answer_nil(const tag *t)
{
	if (!t)
		return NULL;
	fwd *f = NULL;
	tt_session *s = answered_here(t->rid, t->node, t->by, &f);
	if (s) {
		tt_wire_result_nil(&C.out, t->rid);
		tt_client_reply(s->client, &C.out);
	}
	if (f)
		fwd_free(f);
	return tt_session_by_id(t->by);
}

/* Schedules gone from the list: applied (an event of the message names
 * them) or cancelled (told). */
static void drop_scheds(tt_state *st, const tt_value *list, const tt_value *events,
			const tag *tags, uint32_t n_tags)
{
	for (tt_sched *sc = st->scheds.first, *next; sc; sc = next) {
		next = sc->next;
		bool kept = false;
		for (uint32_t i = 0; list && list->type == TT_ARRAY && i < list->len && !kept; i++)
			kept = list->v.items[i].type == TT_ARRAY && list->v.items[i].len &&
			       tt_as_u64(&list->v.items[i].v.items[0]) == sc->id;
		if (kept)
			continue;
		bool fired = false;
		for (uint32_t i = 0; events && events->type == TT_ARRAY && i < events->len; i++) {
			const tt_value *e = &events->v.items[i];
			fired |= e->type == TT_ARRAY && e->len >= 7 && tt_as_u64(&e->v.items[6]) == sc->id;
		}
		if (!fired)
			tt_fanout_cancelled(sc, answer_nil(tag_for(tags, n_tags, sc->id)));
		tt_store_remote_sched_gone(sc);
	}
}

/* st deleted by its node: told here (the deleter of a forwarded request gets
 * its RESULT in place), gone here. */
static void remote_delete(tt_state *st, const char *reason, const tag *tags, uint32_t n_tags)
{
	tt_session *by = answer_nil(tag_for(tags, n_tags, 0));
	const char *r = tt_store_reason(reason);
	uint64_t id = st->id;
	tt_fanout_deleted(st, r, by, false);
	tt_db_mute(true);
	tt_store_remote_delete(st, r);
	tt_db_mute(false);
	answers_due(NULL, id);
}

static void sink_state(uint64_t id, const tt_value *m)
{
	if (!C.on)
		return;
	tag tags[64];
	uint32_t n_tags = tags_of(m, tags, 64);
	tt_state *st = tt_store_state(id);
	const tt_value *d = tt_map_get(m, "d");
	tt_db_mute(true);
	if (d && d->type == TT_STR) {
		char reason[32];
		snprintf(reason, sizeof(reason), "%.*s", (int)TT_MIN(d->len, 31u), d->v.s);
		if (st) {
			tt_db_mute(false);
			remote_delete(st, reason, tags, n_tags);
		} else {
			tt_store_restore_tombstone(id, reason);
		}
		tt_db_mute(false);
		return;
	}
	const tt_value *cv = tt_map_get(m, "c"), *events = tt_map_get(m, "e");
	tt_class_entry *ce = cv && cv->type == TT_STR ? tt_store_class(cv->v.s, cv->len) : NULL;
	if (!ce) {
		tt_db_mute(false);
		TT_LOG_LIMITED(TT_LOG_WARN, "cluster: state %llu of class \"%.*s\", unknown here; skipped",
			       (unsigned long long)id, cv && cv->type == TT_STR ? (int)cv->len : 0,
			       cv && cv->type == TT_STR ? cv->v.s : "");
		return;
	}
	uint64_t seq = tt_as_u64(tt_map_get(m, "q"));
	double time = tt_as_f64(tt_map_get(m, "t"));
	if (!st) {
		tt_value vals, init;
		tt_arena_reset(&C.arena);
		bool has_init = tree_of(tt_map_get(m, "i"), &init);
		if (!tree_of(tt_map_get(m, "v"), &vals))
			vals = (tt_value){.type = TT_MAP};
		st = tt_store_remote_state(id, ce, tt_as_u64(tt_map_get(m, "o")), seq, time, &vals,
					   has_init ? &init : NULL);
		if (!st) {
			tt_db_mute(false);
			return;
		}
		for (uint32_t i = 0; events && events->type == TT_ARRAY && i < events->len; i++) {
			const tt_value *e = &events->v.items[i];
			const void *p;
			size_t n;
			if (e->type == TT_ARRAY && e->len >= 4 && tt_as_bytes(&e->v.items[3], &p, &n) &&
			    tt_as_u64(&e->v.items[0]) <= seq)
				tt_store_restore_event(st, tt_as_u64(&e->v.items[0]), tt_as_f64(&e->v.items[1]),
						       tt_as_u64(&e->v.items[2]), p, n);
		}
		add_scheds(st, tt_map_get(m, "s"), tags, n_tags, false);
		tt_db_mute(false);
		tt_fanout_created(st);
		return;
	}
	bool applied = false;
	for (uint32_t i = 0; events && events->type == TT_ARRAY && i < events->len; i++) {
		const tt_value *e = &events->v.items[i];
		const void *p;
		size_t n;
		if (e->type != TT_ARRAY || e->len < 4 || !tt_as_bytes(&e->v.items[3], &p, &n))
			continue;
		uint64_t eseq = tt_as_u64(&e->v.items[0]);
		if (eseq <= st->seq)
			continue;
		if (eseq != st->seq + 1) {
			tt_db_mute(false);
			tt_log_warn("cluster: state %llu: event %llu after %llu; reading it again",
				    (unsigned long long)id, (unsigned long long)eseq,
				    (unsigned long long)st->seq);
			tt_engine_reread(id);
			return;
		}
		uint64_t origin = tt_as_u64(&e->v.items[2]);
		uint64_t rid = e->len >= 7 ? tt_as_u64(&e->v.items[4]) : 0;
		uint32_t rnode = e->len >= 7 ? (uint32_t)tt_as_u64(&e->v.items[5]) : 0;
		uint64_t sched = e->len >= 7 ? tt_as_u64(&e->v.items[6]) : 0;
		tt_store_remote_event(st, eseq, tt_as_f64(&e->v.items[1]), origin, p, n, &C.cs);
		applied = true;
		fwd *f = NULL;
		tt_session *s = answered_here(rid, rnode, origin, &f);
		if (s) {
			/* the writer's RESULT in place of its UPDATE: in order with
			 * every other update it receives */
			tt_wire_set_done(&C.out, rid, st, &C.cs, view_for(st, f->instance, s));
			tt_client_reply(s->client, &C.out);
		}
		if (f)
			fwd_free(f);
		tt_fanout_update(st, &C.cs, s, sched);
	}
	if (!applied && seq > st->seq) {
		/* no event to apply (its history was trimmed): its values */
		tt_value vals;
		tt_arena_reset(&C.arena);
		if (tree_of(tt_map_get(m, "v"), &vals)) {
			tt_store_remote_values(st, seq, time, &vals);
			for (uint32_t i = 0; i < st->n_subs; i++) {
				tt_client *to = st->subs[i].session->client;
				if (to && !to->capture) {
					tt_wire_snapshot(&C.out, st, tt_sub_view(&st->subs[i]));
					tt_client_send_copy(to, &C.out);
				}
			}
		}
	}
	drop_scheds(st, tt_map_get(m, "s"), events, tags, n_tags);
	add_scheds(st, tt_map_get(m, "s"), tags, n_tags, true);
	tt_db_mute(false);
	answers_due(st, id);
}

static void sink_reset(uint64_t id, const tt_value *m, const void *hist, size_t len, uint32_t n)
{
	tt_state *st = tt_store_state(id);
	if (!C.on || !st)
		return;
	/* its subscribers here saw this node's copy: they resume (what is
	 * stored comes back to them exactly) */
	for (uint32_t i = 0; i < st->n_subs; i++) {
		tt_client *c = st->subs[i].session->client;
		if (c && !c->capture)
			tt_client_close(c, TT_CLOSE_RESYNC);
	}
	const tt_value *d = tt_map_get(m, "d");
	if (d && d->type == TT_STR) {
		char reason[32];
		snprintf(reason, sizeof(reason), "%.*s", (int)TT_MIN(d->len, 31u), d->v.s);
		remote_delete(st, reason, NULL, 0);
		return;
	}
	tt_db_mute(true);
	tt_value vals;
	tt_arena_reset(&C.arena);
	if (tree_of(tt_map_get(m, "v"), &vals))
		tt_store_remote_values(st, tt_as_u64(tt_map_get(m, "q")), tt_as_f64(tt_map_get(m, "t")), &vals);
	tt_store_remote_history(st);
	size_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		tt_value e;
		tt_decoder *dec = tt_decoder_new();
		tt_arena a;
		tt_arena_init(&a, 0);
		const void *p;
		size_t pn;
		if (tt_decode(dec, hist, len, &off, &a, &e, NULL) == 0 && e.type == TT_ARRAY &&
		    e.len >= 4 && tt_as_bytes(&e.v.items[3], &p, &pn) && tt_as_u64(&e.v.items[0]) <= st->seq)
			tt_store_restore_event(st, tt_as_u64(&e.v.items[0]), tt_as_f64(&e.v.items[1]),
					       tt_as_u64(&e.v.items[2]), p, pn);
		tt_arena_destroy(&a);
		tt_decoder_free(dec);
	}
	while (st->scheds.first)
		tt_store_remote_sched_gone(st->scheds.first);
	add_scheds(st, tt_map_get(m, "s"), NULL, 0, false);
	park(st, tt_cluster_elsewhere(st));
	tt_db_mute(false);
	answers_due(st, id);
}

/* s ended: the states it owned that this node writes go (with their
 * messages); the others are deleted by their writers. */
static void end_remote(tt_session *s)
{
	tt_state *st = s->owned;
	while (st) {
		tt_state *next = st->onext;
		if (tt_cluster_ends_here(st)) {
			tt_fanout_deleted(st, "owner left", NULL, true);
			tt_store_state_delete(st, "owner left");
		}
		st = next;
	}
	proxy_drop(s);
	tt_db_mute(true);
	tt_store_session_forget(s);
	tt_db_mute(false);
}

static void sink_session(uint64_t id, bool ended, bool kicked, const char *digest,
			 const char *role, uint32_t node, double gone)
{
	if (!C.on)
		return;
	tt_session *s = tt_session_by_id(id);
	if (ended) {
		if (!s)
			return;
		if (s->client && !s->client->capture) {
			/* the operator ended it on another node: 4005, as there;
			 * else another node ended it while this one held it */
			if (kicked)
				tt_log_info("%s: ended by the operator on another node",
					    tt_session_name(s));
			s->client->session = NULL;
			tt_client_close(s->client, kicked ? TT_CLOSE_KICKED : TT_CLOSE_TAKEN_OVER);
			s->client = NULL;
		}
		end_remote(s);
		return;
	}
	if (!s) {
		unsigned char d[TT_DIGEST_LEN];
		if (!digest || !tt_secret_unhex(digest, strlen(digest), d))
			return;
		/* gone_at 0: connected on its node (node_died starts its window) */
		s = tt_session_restore(id, d, gone > 0 ? gone : 0);
		if (!s)
			return;
		s->role = role_named(role);
		s->node = node;
		tt_store_adopt(s);
		return;
	}
	if (node != C.me && node_of(s) == C.me) {
		/* another node claimed it (its client resumed there) */
		if (s->client && !s->client->capture) {
			tt_log_info("%s: resumed on node %u: this connection is closed", tt_session_name(s),
				    node);
			s->client->session = NULL;
			tt_client_close(s->client, TT_CLOSE_TAKEN_OVER);
			s->client = NULL;
		}
		tt_db_mute(true);
		tt_store_session_release(s);
		tt_db_mute(false);
	}
	s->node = node;
	s->role = role_named(role);
	if (!s->client)
		mark_gone(s, gone);
}

static void sink_fenced(uint64_t id)
{
	(void)id; /* the other node's record follows in the stream (tt_cluster_session) */
}

static void sink_class(const char *name, bool deleted, const void *desc, size_t len)
{
	if (!C.on)
		return;
	tt_class_entry *ce = tt_store_class(name, strlen(name));
	if (deleted) {
		if (!ce)
			return;
		while (ce->first) {
			tt_state *st = ce->first;
			if (owner_without_session(st) == C.me || tt_cluster_owner(st) == C.me) {
				tt_fanout_deleted(st, "class deleted", NULL, true);
				tt_store_state_delete(st, "class deleted");
			} else {
				tt_fanout_deleted(st, "class deleted", NULL, false);
				tt_db_mute(true);
				tt_store_remote_delete(st, "class deleted");
				tt_db_mute(false);
			}
		}
		tt_hooks_class_gone(ce);
		tt_db_mute(true);
		tt_store_class_delete(ce);
		tt_db_mute(false);
		return;
	}
	tt_value d;
	size_t off = 0;
	tt_arena_reset(&C.arena);
	if (tt_decode(C.dec, desc, len, &off, &C.arena, &d, NULL) < 0)
		return;
	tt_error err;
	bool created;
	tt_db_mute(true);
	int rc = tt_store_define(name, strlen(name), &d, false, &created, &err);
	tt_db_mute(false);
	if (rc < 0)
		tt_log_error("cluster: class \"%s\" from another node: %s (every node must load the "
			     "same schema files)", name, err.msg);
}

/* ---- hooks on other nodes ------------------------------------------------ */

/* The hooks of node n are called through a captured client: its HOOK_CALLs
 * go to n at the end of the turn, n gives them to the hook's client, and
 * the HOOK_REPLY comes back here (the call id names the node, ids are per
 * node). */
static tt_client *relay_for(uint32_t n)
{
	if (!C.relay[n]) {
		tt_client *c = tt_calloc(1, sizeof(*c));
		tt_buf_init(&C.relayed[n], 0);
		tt_buf_init(&c->rx, 0);
		tt_buf_init(&c->held, 0);
		c->capture = &C.relayed[n];
		snprintf(c->addr_text, sizeof(c->addr_text), "hooks of node %u", n);
		C.relay[n] = c;
	}
	return C.relay[n];
}

static void relay_free(uint32_t n)
{
	tt_client *c = C.relay[n];
	if (!c)
		return;
	tt_hooks_client_gone(c);
	tt_buf_free(&C.relayed[n]);
	tt_buf_free(&c->rx);
	tt_buf_free(&c->held);
	free(c);
	C.relay[n] = NULL;
}

/* Start a hook message of kind k with n fields (k and from included) in C.out. */
static void hook_head(const char *k, uint32_t n)
{
	tt_buf_clear(&C.out);
	tt_enc_map(&C.out, n);
	tt_enc_str(&C.out, "k");
	tt_enc_str(&C.out, k);
	key(&C.out, "from", C.me);
}

static void send_hook(uint32_t to, uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind)
{
	hook_head("hookadd", 5);
	key(&C.out, "id", id);
	tt_enc_str(&C.out, "c");
	tt_enc_strn(&C.out, ce->cls->name, ce->cls->name_len);
	key(&C.out, "kind", kind);
	send_to(to, &C.out);
}

static void broadcast(const tt_buf *b)
{
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++)
		if (n != C.me && tt_engine_alive(n))
			send_to(n, b);
}

bool tt_cluster_hook_added(tt_client *c, uint64_t rid, uint64_t id, const tt_class_entry *ce,
			   enum tt_hook_kind kind)
{
	if (!C.on)
		return false;
	uint64_t nodes = 0;
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++) {
		if (n != C.me && tt_engine_alive(n)) {
			send_hook(n, id, ce, kind);
			nodes |= 1ull << n;
		}
	}
	if (!nodes)
		return false;
	hook_wait *w = tt_calloc(1, sizeof(*w));
	w->c = c;
	w->rid = rid;
	w->id = id;
	w->nodes = nodes;
	w->until = tt_clock_mono() + HOOK_WAIT_S;
	w->next = C.hook_waits;
	C.hook_waits = w;
	return true;
}

/* The HOOK's RESULT goes (every node has it, or the wait is over). */
static void hook_answer(hook_wait **pp)
{
	hook_wait *w = *pp;
	*pp = w->next;
	tt_buf_clear(&C.out);
	tt_wire_hooked(&C.out, w->rid, w->id);
	tt_client_reply(w->c, &C.out);
	free(w);
}

/* Node n has hook id (n 0: only the nodes that died and the clock). */
static void hooks_waited(uint32_t n, uint64_t id)
{
	double now = tt_clock_mono();
	for (hook_wait **pp = &C.hook_waits; *pp;) {
		hook_wait *w = *pp;
		if (n && w->id == id)
			w->nodes &= ~(1ull << n);
		for (uint32_t k = 1; k <= TT_NODES_MAX; k++)
			if ((w->nodes & (1ull << k)) && !tt_engine_alive(k))
				w->nodes &= ~(1ull << k);
		if (w->nodes && now >= w->until)
			tt_log_warn("cluster: hook %llu: not confirmed by every node within %g s; "
				    "answered all the same", (unsigned long long)w->id, HOOK_WAIT_S);
		if (!w->nodes || now >= w->until)
			hook_answer(pp);
		else
			pp = &w->next;
	}
}

/* Tell node `to` that this node has its hook id. */
static void hook_confirm(uint32_t to, uint64_t id)
{
	hook_head("hookok", 3);
	key(&C.out, "id", id);
	send_to(to, &C.out);
}

void tt_cluster_hook_removed(uint64_t id)
{
	if (!C.on)
		return;
	tt_buf_clear(&C.out);
	tt_enc_map(&C.out, 2);
	tt_enc_str(&C.out, "k");
	tt_enc_str(&C.out, "hookdel");
	key(&C.out, "id", id);
	broadcast(&C.out);
}

static void hook_gone(uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind,
		      const tt_client *c, void *arg)
{
	(void)ce, (void)kind;
	if (c == ((hook_walk *)arg)->c)
		tt_cluster_hook_removed(id);
}

static void hook_tell(uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind,
		      const tt_client *c, void *arg)
{
	if (!c->capture)
		send_hook(((hook_walk *)arg)->to, id, ce, kind);
}

bool tt_cluster_hook_reply(uint64_t call, const tt_value *result)
{
	uint32_t n = (uint32_t)(call % (TT_NODES_MAX + 1));
	if (!C.on || !call || n == C.me)
		return false;
	hook_head("hookre", 4);
	key(&C.out, "call", call);
	tt_enc_str(&C.out, "v");
	tt_enc_value(&C.out, result);
	send_to(n, &C.out);
	return true;
}

static void on_hook_msg(const tt_value *m, const tt_value *k)
{
	uint32_t from = (uint32_t)tt_as_u64(tt_map_get(m, "from"));
	if (tt_str_eq(k, "hookdel")) {
		tt_hooks_remove_remote(tt_as_u64(tt_map_get(m, "id")));
		return;
	}
	if (!from || from > TT_NODES_MAX || from == C.me)
		return;
	if (tt_str_eq(k, "hookadd")) {
		const tt_value *c = tt_map_get(m, "c");
		tt_class_entry *ce = c && c->type == TT_STR ? tt_store_class(c->v.s, c->len) : NULL;
		uint64_t kind = tt_as_u64(tt_map_get(m, "kind"));
		uint64_t id = tt_as_u64(tt_map_get(m, "id"));
		if (!ce && !C.retrying) {
			/* a class defined on that node just now: once this node has
			 * read as far as the stream is now */
			deferred *d = defer_new(&C.hookadds);
			tt_enc_value(&d->data, m);
			if (d->pos > tt_engine_read())
				return;
			defer_free(&C.hookadds, d);
		}
		if (ce && kind < TT_HOOK_N)
			tt_hooks_add_remote(relay_for(from), id, ce, (enum tt_hook_kind)kind);
		hook_confirm(from, id);
	} else if (tt_str_eq(k, "hookok")) {
		hooks_waited(from, tt_as_u64(tt_map_get(m, "id")));
	} else if (tt_str_eq(k, "hooks?")) {
		hook_walk w = {NULL, from};
		tt_hooks_each(hook_tell, &w);
	} else if (tt_str_eq(k, "hookre")) {
		const tt_value *v = tt_map_get(m, "v");
		tt_value nil = tt_nil();
		if (C.relay[from])
			tt_hooks_reply(C.relay[from], tt_as_u64(tt_map_get(m, "call")), v ? v : &nil);
	} else if (tt_str_eq(k, "hookcall")) {
		/* HOOK_CALLs for this node's hook clients */
		const tt_value *x = tt_map_get(m, "x");
		if (!x || x->type != TT_BIN)
			return;
		size_t off = 0;
		tt_buf one;
		tt_buf_init(&one, 0);
		tt_decoder *dec = tt_decoder_new();
		tt_arena a;
		tt_arena_init(&a, 0);
		while (off < x->len) {
			size_t start = off;
			tt_value call;
			tt_arena_reset(&a);
			if (tt_decode(dec, x->v.s, x->len, &off, &a, &call, NULL) < 0)
				break;
			if (call.type != TT_ARRAY || call.len < 3)
				continue;
			tt_client *hc = tt_hooks_client_of(tt_as_u64(&call.v.items[2]));
			if (!hc || hc->capture)
				continue;
			tt_buf_clear(&one);
			tt_buf_append(&one, x->v.s + start, off - start);
			tt_client_reply(hc, &one);
		}
		tt_arena_destroy(&a);
		tt_decoder_free(dec);
		tt_buf_free(&one);
	}
}

/* ---- claims, liveness ------------------------------------------------------ */

/* The loader of a claimed session's record: its instances and observes. */
static int claim_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
			  size_t len, tt_error *err)
{
	(void)err;
	tt_session *s = tt_session_by_id(session);
	tt_state *st = tt_store_state(state);
	if (!s || !st)
		return 0;
	tt_mask mask;
	bool filtered = false;
	if (len) {
		tt_value f;
		size_t off = 0;
		tt_arena_reset(&C.arena);
		filtered = tt_decode(C.dec, filter, len, &off, &C.arena, &f, NULL) == 0 &&
			   f.type == TT_ARRAY && tt_store_filter(st->ce->cls, &f, &mask, NULL) == 0;
	}
	tt_store_restore_instance(id, s, st, filtered ? &mask : NULL);
	return 0;
}

static void claim_observe(uint64_t session, const char *cls, size_t len)
{
	tt_session *s = tt_session_by_id(session);
	tt_class_entry *ce = cls ? tt_store_class(cls, len) : NULL;
	if (s && (!cls || ce))
		tt_store_observe(s, ce, true);
}

int tt_cluster_claim(tt_session *s, tt_error *err)
{
	static const tt_db_loader ld = {.instance = claim_instance, .observe = claim_observe};
	proxy_drop(s);
	tt_db_mute(true);
	tt_store_session_release(s);
	bool ok = tt_engine_session_rows(s->id, &ld, err);
	tt_db_mute(false);
	if (!ok)
		return tt_fail(err, TT_INTERNAL, "session %llu has no record in the engine",
			       (unsigned long long)s->id);
	s->node = C.me;
	return 0;
}

/* A request this node forwarded to a node that died, and that it writes
 * itself now: done here, as if it had just arrived. */
static void run_here(fwd *f)
{
	tt_session *s = tt_session_by_id(f->session);
	tt_client *c = client_of(f->session);
	tt_value m;
	size_t off = 0;
	tt_error err;
	tt_arena_reset(&C.arena);
	if (!c || !s || tt_decode(C.dec, tt_buf_data(&f->req), f->req.len, &off, &C.arena, &m,
				 NULL) < 0) {
		fwd_free(f);
		return;
	}
	/* m points into the request: it outlives f */
	tt_buf req = f->req;
	tt_buf_init(&f->req, 0);
	uint64_t rid = f->rid, instance = f->instance, sched = f->sched;
	enum fwd_kind kind = f->kind;
	fwd_free(f);
	int rc;
	if (kind == F_SET) {
		tt_value *u = (tt_value *)tt_map_get(&m, "u");
		tt_value none = {.type = TT_MAP};
		rc = C.run->set(c, rid, instance, u ? u : &none, tt_map_get(&m, "o"), &err);
	} else if (kind == F_DELETE) {
		rc = C.run->del(c, rid, instance, &err);
	} else {
		rc = C.run->cancel(c, rid, instance, sched, &err);
	}
	if (rc < 0) {
		tt_wire_error(&C.out, rid, err.code, err.msg);
		tt_client_reply(c, &C.out);
	}
	tt_buf_free(&req);
}

static void node_died(uint32_t n)
{
	tt_log_warn("cluster: node %u stopped beating: the states it wrote move to the nodes "
		    "that write them now, its clients resume on any node", n);
	relay_free(n); /* its hooks went with it (their jobs fail) */
	uint64_t pos = tt_engine_position();
	/* requests that went to it: sent again once what it stored is read */
	for (fwd *f = C.fwds; f; f = f->next)
		if (f->node == n)
			f->after = pos ? pos : 1;
	/* its connected sessions: gone since about now (their window runs) */
	for (tt_session *s = tt_session_first(); s; s = s->next)
		if (node_of(s) == n && s->gone_at == 0)
			mark_gone(s, tt_clock_wall());
	/* the states this node writes now fire their schedules here */
	for (tt_state *st = tt_store_first_state(); st; st = st->next)
		if (st->scheds.first && tt_cluster_owner(st) == C.me)
			park(st, false);
}

static void sink_tick(void)
{
	if (!C.on)
		return;
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++) {
		bool alive = tt_engine_alive(n);
		if (C.alive[n] && !alive && n != C.me)
			node_died(n);
		else if (!C.alive[n] && alive && n != C.me && tt_clock_mono() - C.started > 2)
			tt_log_info("cluster: node %u beats", n);
		C.alive[n] = alive;
	}
	hooks_waited(0, 0); /* HOOKs waiting for a node that died or hangs */
	/* sessions of dead nodes read connected: their window starts now */
	for (tt_session *s = tt_session_first(); s; s = s->next)
		if (s->gone_at == 0 && tt_cluster_remote(s) && !tt_engine_alive(node_of(s)))
			mark_gone(s, tt_clock_wall());
	double now = tt_clock_mono();
	uint64_t read = tt_engine_read();
	for (fwd *f = C.fwds, *next; f; f = next) {
		next = f->next;
		if (f->after && read >= f->after) {
			/* its node died and what it stored is read: not done, so
			 * the state's writer now takes it */
			tt_state *st = tt_store_state(f->state);
			f->after = 0;
			if (!st) {
				fail_fwd(f, TT_UNKNOWN_STATE, "the state was deleted");
				continue;
			}
			f->node = tt_cluster_owner(st);
			f->sent = now;
			f->wait = W_ANSWER;
			if (f->node == C.me)
				run_here(f);
			else
				send_to(f->node, &f->req);
			continue;
		}
		/* an answer may wait for the hooks of the state's class */
		double limit = (f->wait == W_ANSWER ? FWD_TIMEOUT : FWD_ACCEPTED_TIMEOUT) +
			       C.hook_timeout;
		if (!f->after && now - f->sent > limit)
			fail_fwd(f, TT_STORAGE, "the node that writes the state did not answer in time; "
				 "the change may not be applied");
	}
}

void tt_cluster_start(const tt_config *cfg, const tt_cluster_runner *run)
{
	memset(&C, 0, sizeof(C));
	C.run = run;
	C.on = cfg->engine != NULL;
	tt_buf_init(&C.out, 0);
	C.dec = tt_decoder_new();
	tt_arena_init(&C.arena, 0);
	tt_changes_init(&C.cs);
	C.started = tt_clock_mono();
	C.hook_timeout = cfg->hook_timeout;
	if (!C.on)
		return;
	C.me = tt_engine_node();
	for (uint32_t n = 1; n <= TT_NODES_MAX; n++)
		C.alive[n] = tt_engine_alive(n);
	/* sessions of other nodes are theirs (their instances stay in their
	 * records); schedules of states written elsewhere wait */
	for (tt_session *s = tt_session_first(); s; s = s->next)
		s->node = tt_engine_session_node(s->id);
	for (tt_state *st = tt_store_first_state(); st; st = st->next)
		if (st->scheds.first && tt_cluster_elsewhere(st))
			park(st, true);
	/* the hooks the other nodes' clients registered */
	tt_buf_clear(&C.out);
	tt_enc_map(&C.out, 2);
	tt_enc_str(&C.out, "k");
	tt_enc_str(&C.out, "hooks?");
	key(&C.out, "from", C.me);
	broadcast(&C.out);
}

void tt_cluster_destroy(void)
{
	while (C.fwds)
		fwd_free(C.fwds);
	while (C.welcomes)
		defer_free(&C.welcomes, C.welcomes);
	while (C.requests)
		defer_free(&C.requests, C.requests);
	while (C.retries)
		defer_free(&C.retries, C.retries);
	while (C.hookadds)
		defer_free(&C.hookadds, C.hookadds);
	while (C.hook_waits) {
		hook_wait *w = C.hook_waits;
		C.hook_waits = w->next;
		free(w);
	}
	while (C.proxies)
		proxy_drop(C.proxies->c.session);
	for (uint32_t n = 0; n <= TT_NODES_MAX; n++)
		relay_free(n);
	tt_buf_free(&C.out);
	tt_decoder_free(C.dec);
	C.dec = NULL;
	tt_arena_destroy(&C.arena);
	tt_changes_free(&C.cs);
	C.on = false;
}

const tt_engine_sink tt_cluster_sink = {
	.state = sink_state,
	.session = sink_session,
	.klass = sink_class,
	.reset = sink_reset,
	.session_fenced = sink_fenced,
	.rpc = sink_rpc,
	.progress = sink_progress,
	.tick = sink_tick,
};
