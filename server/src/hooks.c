/* SPDX-License-Identifier: MIT */
/* hooks.c: the hook registry, the jobs' chains and per-state queues, and
 * their deadlines. Hooks are few (a piece's logic, one or two hook
 * clients): they live in one list in registration order. */
#include "hooks.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "idmap.h"
#include "log.h"
#include "session.h"
#include "wire.h"

typedef struct hook {
	uint64_t id;
	tt_client *client;  /* borrowed: its connection */
	tt_class_entry *ce; /* borrowed */
	enum tt_hook_kind kind;
	struct hook *next;  /* registration order */
} hook;

static struct {
	const tt_config *cfg;
	hook *hooks, *last;
	uint32_t n_hooks;
	uint64_t next_hook, next_call;
	tt_idmap calls;     /* call id -> job waiting on it */
	tt_idmap queues;    /* state id -> first job of the state's queue */
	tt_buf out, cur;
	tt_decoder *dec;
	tt_arena arena;
} K;

static const char *const KIND_NAMES[TT_HOOK_N] = {"create", "update", "delete"};

void tt_hooks_init(const tt_config *cfg)
{
	memset(&K, 0, sizeof(K));
	K.cfg = cfg;
	/* several nodes: ids of their own (a reply names the node of its call) */
	K.next_hook = K.next_call = tt_ids_after(0);
	tt_idmap_init(&K.calls);
	tt_idmap_init(&K.queues);
	tt_buf_init(&K.out, 0);
	tt_buf_init(&K.cur, 0);
	K.dec = tt_decoder_new();
	tt_arena_init(&K.arena, 0);
}

static void job_free(tt_hook_job *job)
{
	tt_buf_free(&job->values);
	free(job);
}

static void queue_free(tt_hook_job *j)
{
	while (j) {
		tt_hook_job *next = j->next;
		job_free(j);
		j = next;
	}
}

void tt_hooks_destroy(void)
{
	while (K.hooks) {
		hook *h = K.hooks;
		K.hooks = h->next;
		free(h);
	}
	/* queued jobs are reachable from their state's queue; create jobs in
	 * flight only from the calls */
	for (size_t i = 0; i < K.queues.cap; i++)
		if (K.queues.keys[i] && K.queues.keys[i] != UINT64_MAX)
			queue_free(K.queues.vals[i]);
	for (size_t i = 0; i < K.calls.cap; i++)
		if (K.calls.keys[i] && K.calls.keys[i] != UINT64_MAX) {
			tt_hook_job *j = K.calls.vals[i];
			if (!j->state)
				job_free(j);
		}
	tt_idmap_free(&K.calls);
	tt_idmap_free(&K.queues);
	tt_buf_free(&K.out);
	tt_buf_free(&K.cur);
	tt_decoder_free(K.dec);
	K.dec = NULL;
	tt_arena_destroy(&K.arena);
}

bool tt_hooks_has(const tt_class_entry *ce, enum tt_hook_kind kind)
{
	if (!K.n_hooks)
		return false;
	for (const hook *h = K.hooks; h; h = h->next)
		if (h->ce == ce && h->kind == kind)
			return true;
	return false;
}

static void unlink_hook(hook **pp);

static void add_hook(uint64_t id, tt_client *c, tt_class_entry *ce, enum tt_hook_kind kind)
{
	hook *h = tt_calloc(1, sizeof(*h));
	h->id = id;
	h->client = c;
	h->ce = ce;
	h->kind = kind;
	if (K.last)
		K.last->next = h;
	else
		K.hooks = h;
	K.last = h;
	K.n_hooks++;
}

void tt_hooks_add_remote(tt_client *relay, uint64_t id, tt_class_entry *ce,
			 enum tt_hook_kind kind)
{
	if (!tt_hooks_client_of(id))
		add_hook(id, relay, ce, kind);
}

static bool waits_on_hook(const tt_hook_job *j, const void *id)
{
	return j->hook == *(const uint64_t *)id;
}

static void fail_calls(bool (*match)(const tt_hook_job *, const void *), const void *arg,
		       const char *why);

bool tt_hooks_remove_remote(uint64_t id)
{
	for (hook **pp = &K.hooks; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id && (*pp)->client->capture) {
			unlink_hook(pp);
			if (K.calls.len)
				fail_calls(waits_on_hook, &id, "the hook client went away");
			return true;
		}
	return false;
}

tt_client *tt_hooks_client_of(uint64_t id)
{
	for (hook *h = K.hooks; h; h = h->next)
		if (h->id == id)
			return h->client;
	return NULL;
}

void tt_hooks_each(void (*fn)(uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind,
			      const tt_client *c, void *arg), void *arg)
{
	for (hook *h = K.hooks; h; h = h->next)
		fn(h->id, h->ce, h->kind, h->client, arg);
}

uint64_t tt_hooks_add(tt_client *c, tt_class_entry *ce, enum tt_hook_kind kind)
{
	uint64_t id = K.next_hook;
	K.next_hook = tt_ids_after(K.next_hook);
	add_hook(id, c, ce, kind);
	tt_log_info("%s: hooks %s of class \"%s\" (hook %llu)", c->addr_text, KIND_NAMES[kind],
		    ce->cls->name, (unsigned long long)id);
	return id;
}

static void unlink_hook(hook **pp)
{
	hook *h = *pp, *prev = NULL;
	for (hook *x = K.hooks; x != h; x = x->next)
		prev = x;
	*pp = h->next;
	if (K.last == h)
		K.last = prev;
	K.n_hooks--;
	free(h);
}

bool tt_hooks_remove(tt_client *c, uint64_t id)
{
	for (hook **pp = &K.hooks; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id && (*pp)->client == c) {
			unlink_hook(pp);
			return true;
		}
	return false;
}

/* The step-th hook of the job's class and kind, or NULL past the last. */
static hook *nth_hook(const tt_hook_job *job, uint32_t step)
{
	for (hook *h = K.hooks; h; h = h->next)
		if (h->ce == job->ce && h->kind == job->kind && step-- == 0)
			return h;
	return NULL;
}

tt_hook_job *tt_hooks_job_new(void)
{
	tt_hook_job *job = tt_calloc(1, sizeof(*job));
	tt_buf_init(&job->values, 0);
	job->at = -1;
	return job;
}

static void step(tt_hook_job *job);

/* End job with outcome: off its state's queue, the continuation (which may
 * delete the state, and so fail the jobs behind it), then the next job of
 * the state starts. */
static void finish(tt_hook_job *job, enum tt_hook_outcome outcome, const char *why)
{
	if (job->call) {
		tt_idmap_del(&K.calls, job->call);
		job->call = 0;
	}
	uint64_t state = job->state;
	if (state) {
		tt_idmap_del(&K.queues, state);
		if (job->next)
			tt_idmap_put(&K.queues, state, job->next);
		job->next = NULL;
	}
	tt_value v = tt_nil();
	if (outcome == TT_HOOK_DONE) {
		size_t off = 0;
		tt_arena_reset(&K.arena);
		if (tt_decode(K.dec, tt_buf_data(&job->values), job->values.len, &off, &K.arena, &v,
			      NULL) < 0 || v.type != TT_MAP) {
			outcome = TT_HOOK_FAIL;
			why = "a hook answered with something that is not a map";
		}
	}
	job->done(job, outcome, outcome == TT_HOOK_DONE ? &v : NULL, why);
	job_free(job);
	tt_hook_job *next = state ? tt_idmap_get(&K.queues, state) : NULL;
	if (next && !next->running) {
		next->running = true;
		step(next);
	}
}

/* Call the job's next hook, or end the chain. */
static void step(tt_hook_job *job)
{
	hook *h = nth_hook(job, job->step);
	if (!h) {
		finish(job, TT_HOOK_DONE, NULL);
		return;
	}
	job->step++;
	job->call = K.next_call;
	K.next_call = tt_ids_after(K.next_call);
	job->callee = h->client;
	job->hook = h->id;
	job->deadline = tt_clock_mono() + K.cfg->hook_timeout;
	tt_idmap_put(&K.calls, job->call, job);
	tt_buf_clear(&K.cur);
	const tt_state *st = job->state ? tt_store_state(job->state) : NULL;
	if (st && job->kind == TT_HOOK_UPDATE)
		tt_store_encode_values(&K.cur, st, NULL);
	else
		tt_enc_nil(&K.cur);
	tt_wire_hook_call(&K.out, job->call, h->id, KIND_NAMES[job->kind], job->ce->cls, job->state,
			  &job->values, &K.cur);
	tt_client_reply(h->client, &K.out);
}

void tt_hooks_submit(tt_hook_job *job, const void *values, size_t len)
{
	tt_buf_append(&job->values, values, len);
	tt_hook_job *head = job->state ? tt_idmap_get(&K.queues, job->state) : NULL;
	if (head) {
		while (head->next)
			head = head->next;
		head->next = job; /* its turn comes when the ones before end */
		return;
	}
	if (job->state)
		tt_idmap_put(&K.queues, job->state, job);
	job->running = true;
	step(job);
}

void tt_hooks_reply(tt_client *c, uint64_t call, const tt_value *result)
{
	tt_hook_job *job = call ? tt_idmap_get(&K.calls, call) : NULL;
	if (!job || job->callee != c)
		return;
	tt_idmap_del(&K.calls, call);
	job->call = 0;
	if (result->type == TT_MAP) {
		tt_buf_clear(&job->values);
		tt_enc_value(&job->values, result);
	} else if (result->type == TT_NIL || result->type == TT_STR) {
		char why[160];
		if (result->type == TT_STR)
			snprintf(why, sizeof(why), "a hook aborted: %.*s",
				 (int)TT_MIN(result->len, 120u), result->v.s);
		else
			snprintf(why, sizeof(why), "a hook aborted");
		finish(job, TT_HOOK_ABORT, why);
		return;
	} else if (result->type != TT_BOOL || !result->v.b) {
		finish(job, TT_HOOK_FAIL, "a hook answered with something that is not a map, true or nil");
		return;
	}
	step(job);
}

void tt_hooks_notify_delete(const tt_state *st)
{
	if (!tt_hooks_has(st->ce, TT_HOOK_DELETE))
		return;
	tt_buf_clear(&K.cur);
	tt_store_encode_values(&K.cur, st, NULL);
	tt_buf none;
	tt_buf_init(&none, 0);
	tt_enc_nil(&none);
	for (hook *h = K.hooks; h; h = h->next)
		if (h->ce == st->ce && h->kind == TT_HOOK_DELETE) {
			/* call id 0: no answer is waited for */
			tt_wire_hook_call(&K.out, 0, h->id, "delete", st->ce->cls, st->id, &K.cur, &none);
			tt_client_reply(h->client, &K.out);
		}
	tt_buf_free(&none);
}

/* Every job waiting on a call that matches, collected first (finishing one
 * changes the maps). */
static void fail_calls(bool (*match)(const tt_hook_job *, const void *), const void *arg,
		       const char *why)
{
	tt_hook_job **hit = NULL;
	size_t n = 0;
	for (size_t i = 0; i < K.calls.cap; i++) {
		if (!K.calls.keys[i] || K.calls.keys[i] == UINT64_MAX)
			continue;
		tt_hook_job *j = K.calls.vals[i];
		if (match(j, arg)) {
			hit = tt_realloc(hit, sizeof(*hit) * (n + 1));
			hit[n++] = j;
		}
	}
	for (size_t i = 0; i < n; i++)
		finish(hit[i], TT_HOOK_FAIL, why);
	free(hit);
}

static bool late(const tt_hook_job *j, const void *arg)
{
	return j->deadline <= *(const double *)arg;
}

void tt_hooks_expire(double now)
{
	if (K.calls.len)
		fail_calls(late, &now, "a hook did not answer in time (--hook-timeout)");
}

double tt_hooks_next_deadline(void)
{
	double next = -1;
	for (size_t i = 0; K.calls.len && i < K.calls.cap; i++) {
		if (!K.calls.keys[i] || K.calls.keys[i] == UINT64_MAX)
			continue;
		const tt_hook_job *j = K.calls.vals[i];
		if (next < 0 || j->deadline < next)
			next = j->deadline;
	}
	return next;
}

static bool waits_on(const tt_hook_job *j, const void *c)
{
	return j->callee == c;
}

void tt_hooks_client_gone(tt_client *c)
{
	hook **pp = &K.hooks;
	while (*pp) {
		if ((*pp)->client == c)
			unlink_hook(pp);
		else
			pp = &(*pp)->next;
	}
	if (K.calls.len)
		fail_calls(waits_on, c, "the hook client went away");
}

static bool of_class(const tt_hook_job *j, const void *ce)
{
	return j->ce == ce;
}

void tt_hooks_class_gone(tt_class_entry *ce)
{
	hook **pp = &K.hooks;
	while (*pp) {
		if ((*pp)->ce == ce)
			unlink_hook(pp);
		else
			pp = &(*pp)->next;
	}
	if (K.calls.len)
		fail_calls(of_class, ce, "the class was deleted");
}

void tt_hooks_state_gone(uint64_t state)
{
	tt_hook_job *j = tt_idmap_get(&K.queues, state);
	if (!j)
		return;
	tt_idmap_del(&K.queues, state);
	while (j) {
		tt_hook_job *next = j->next;
		if (j->call) {
			tt_idmap_del(&K.calls, j->call);
			j->call = 0;
		}
		j->next = NULL;
		j->done(j, TT_HOOK_FAIL, NULL, "the state was deleted");
		job_free(j);
		j = next;
	}
}
