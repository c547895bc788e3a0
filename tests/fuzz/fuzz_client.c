/* SPDX-License-Identifier: MIT */
/* fuzz_client.c: what libtutti-client decodes from the network. A client
 * without a network (tt_client_new_detached) is given a session, has
 * requests in flight (two attaches, an observe, a create, a describe), and
 * the input arrives as one WebSocket message from the server: replies to
 * those requests (descriptions, values, histories, schedules), pushes,
 * garbage. Then its instances are used (get, set, a scheduled set,
 * history), time jumps ahead (schedules fire, requests time out), the
 * connection drops, a new session replaces the old one (session lost) and
 * the same bytes arrive again. Nothing may crash, leak or trip a sanitizer,
 * and the callbacks must see well-formed values. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "client_int.h"
#include "codec.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STATES 8
static tt_state *states[MAX_STATES];
static int n_states;

static void check_tree(const tt_value *v, int depth)
{
	tt_assert(depth <= TT_CODEC_MAX_DEPTH + 1);
	if (v->type == TT_ARRAY)
		for (uint32_t i = 0; i < v->len; i++)
			check_tree(&v->v.items[i], depth + 1);
	if (v->type == TT_MAP)
		for (uint32_t i = 0; i < v->len; i++) {
			check_tree(&v->v.pairs[i].key, depth + 1);
			check_tree(&v->v.pairs[i].val, depth + 1);
		}
}

static void on_reply(tt_client *c, const tt_reply *r, void *user)
{
	(void)c;
	(void)user;
	tt_assert(r->message != NULL && r->result != NULL);
	check_tree(r->result, 0);
	if (r->code == 0 && r->state && n_states < MAX_STATES)
		states[n_states++] = r->state;
}

static void on_update(tt_state *s, const tt_value *changes, const tt_value *old,
		      const tt_update_info *info, void *user)
{
	(void)user;
	(void)info;
	tt_assert(changes->type == TT_MAP && old->type == TT_MAP && changes->len == old->len);
	/* every value handed out matches its param's type */
	for (uint32_t i = 0; i < changes->len; i++) {
		const tt_pair *kv = &changes->v.pairs[i];
		tt_assert(kv->key.type == TT_STR);
		char name[TT_MAX_NAME + 1];
		memcpy(name, kv->key.v.s, kv->key.len);
		name[kv->key.len] = '\0';
		const tt_param *p = tt_state_param(s, name);
		tt_assert(p != NULL);
		const tt_value *v = &kv->val;
		if (v->type == TT_NIL)
			tt_assert(p->nullable);
		else if (p->type == TT_PT_FLOAT)
			tt_assert(v->type == TT_FLOAT && !isnan(v->v.f));
		else if (p->type == TT_PT_INTEGER)
			tt_assert(v->type == TT_INT);
		else if (p->type == TT_PT_BOOLEAN)
			tt_assert(v->type == TT_BOOL);
		else if (p->type == TT_PT_STRING)
			tt_assert(v->type == TT_STR && tt_utf8_ok(v->v.s, v->len));
		check_tree(v, 0);
	}
}

static void on_scheduled(tt_state *s, uint64_t id, double at, const tt_value *changes, void *user)
{
	(void)s;
	(void)id;
	(void)user;
	tt_assert(isfinite(at) && changes->type == TT_MAP);
}

static void on_detach(tt_state *s, const char *reason, void *user)
{
	(void)user;
	tt_assert(reason && strlen(reason) < 64);
	for (int i = 0; i < n_states; i++)
		if (states[i] == s)
			states[i] = states[--n_states];
}

static void on_notice(tt_client *c, const char *kind, const char *cls, uint64_t id, uint64_t owner,
		      void *user)
{
	(void)c;
	(void)id;
	(void)owner;
	(void)user;
	tt_assert(!strcmp(kind, "create") || !strcmp(kind, "delete"));
	tt_assert(strlen(cls) >= 1 && strlen(cls) <= TT_MAX_NAME);
}

/* The server's welcome to the HELLO just sent (its reqId is the last one). */
static void welcome(tt_client *c)
{
	tt_buf b;
	tt_buf_init(&b, 0);
	tt_enc_array(&b, 3);
	tt_enc_uint(&b, TT_MSG_RESULT);
	tt_enc_uint(&b, c->next_req);
	tt_enc_map(&b, 5);
	tt_enc_str(&b, "session");
	tt_enc_uint(&b, 7);
	tt_enc_str(&b, "token");
	tt_enc_str(&b, "fuzz-token");
	tt_enc_str(&b, "time");
	tt_enc_float(&b, 100.0);
	tt_enc_str(&b, "resumed");
	tt_enc_bool(&b, false);
	tt_enc_str(&b, "maxMessage");
	tt_enc_uint(&b, 1u << 20);
	tt_core_on_message(c, tt_buf_data(&b), b.len);
	tt_buf_free(&b);
}

static void session(tt_client *c, const uint8_t *data, size_t size)
{
	tt_core_on_open(c);
	welcome(c);
	/* requests in flight: ids follow the HELLO's (the seeds answer them) */
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.on_update = on_update;
	ao.on_scheduled = on_scheduled;
	ao.on_detach = on_detach;
	static const char *const filter[] = {"volume", "bang"};
	tt_client_attach(c, "demo", 0, &ao, on_reply, NULL, NULL);
	ao.filter = filter;
	ao.n_filter = 2;
	ao.history = 5;
	tt_client_attach(c, "demo", 1, &ao, on_reply, NULL, NULL);
	tt_client_observe(c, NULL, on_notice, NULL, on_reply, NULL, NULL);
	tt_client_create(c, "demo", NULL, &ao, on_reply, NULL, NULL);
	tt_client_describe(c, "demo", on_reply, NULL, NULL);
	tt_core_on_message(c, data, size);
	tt_core_reap(c);

	/* use what the replies gave */
	for (int i = 0; i < n_states; i++) {
		tt_state *s = states[i];
		for (uint32_t k = 0; k < tt_state_param_count(s); k++) {
			const char *name = tt_state_param_name(s, k);
			tt_assert(name && tt_state_get(s, name));
		}
		tt_state_set_float(s, "volume", 0.5, NULL);
		tt_pair kv = {.key = tt_str("bang"), .val = tt_bool(true)};
		tt_value up = {.type = TT_MAP, .len = 1};
		up.v.pairs = &kv;
		tt_state_set(s, &up, 150.0, on_reply, NULL, NULL);
		tt_state_history(s, 3, 0, on_reply, NULL, NULL);
	}
	/* the same bytes again: replies to the requests just made, pushes */
	tt_core_on_message(c, data, size);
	double now = tt_clock_now();
	tt_core_timers(c, now + 1e6); /* every schedule is due, every request late */
	tt_core_timers(c, now + 2e6);
	tt_core_reap(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_client_opts o;
	tt_client *c;
	tt_client_opts_init(&o);
	o.url = "ws://fuzz.invalid/";
	o.max_message = 1u << 20;
	tt_assert(tt_client_new_detached(&o, &c, NULL) == 0);
	n_states = 0;
	session(c, data, size);
	tt_core_on_closed(c, 1006, "fuzz");
	/* a new session: the old one is lost, its instances detached */
	session(c, data, size);
	tt_client_free(c);
	tt_assert(n_states == 0); /* every instance was told it is gone */
	return 0;
}
