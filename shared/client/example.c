/* SPDX-License-Identifier: MIT */
/* example.c: the smallest libtutti-client app. It attaches to the oldest
 * state of a class (the server's own `demo` by default), prints every
 * change with its seq and sync time, sets one param, and stops after
 * `count` updates. Build it against the installed library:
 *   cc example.c $(pkg-config --cflags --libs tutti-client) -o example
 *   ./example ws://127.0.0.1:8000/ demo volume 0.8 [count] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tutti_client.h>

static int updates;

static void on_update(tt_state *s, const tt_value *changes, const tt_value *old,
		      const tt_update_info *info, void *user)
{
	(void)old;
	(void)user;
	for (uint32_t i = 0; i < changes->len; i++) {
		char v[64];
		tt_value_repr(&changes->v.pairs[i].val, v, sizeof(v));
		printf("%s.%.*s = %s (seq %llu, sync time %.3f)\n", tt_state_class(s),
		       (int)changes->v.pairs[i].key.len, changes->v.pairs[i].key.v.s, v,
		       (unsigned long long)info->seq, info->time);
	}
	fflush(stdout);
	updates++;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: example URL CLASS PARAM FLOAT [COUNT]\n");
		return 2;
	}
	int count = argc > 5 ? atoi(argv[5]) : 1;
	tt_client_opts o;
	tt_client *c;
	tt_error err;
	tt_client_opts_init(&o);
	o.url = argv[1];
	if (tt_client_new(&o, &c, &err) < 0 || tt_client_connect(c, &err) < 0) {
		fprintf(stderr, "example: %s\n", err.msg);
		return 2;
	}
	/* attach, and wait for the reply (tools may block; apps use the callback) */
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.on_update = on_update;
	tt_wait w;
	tt_wait_init(&w);
	if (tt_client_attach(c, argv[2], 0, &ao, tt_wait_done, &w, &err) < 0 ||
	    tt_client_wait(c, &w, 10) < 0) {
		fprintf(stderr, "example: attach %s: %s\n", argv[2], w.done ? w.message : err.msg);
		return 1;
	}
	tt_state *s = w.state;
	tt_wait_free(&w);
	if (tt_state_set_float(s, argv[3], strtod(argv[4], NULL), &err) < 0) {
		fprintf(stderr, "example: set: %s %s\n", tt_client_code_name(err.code), err.msg);
		return 1;
	}
	/* the app's own loop: here, only the client's */
	while (updates < count)
		tt_client_service(c, 100);
	printf("sync time now: %.3f\n", tt_clock_sync_time(tt_client_clock(c), tt_clock_now()));
	tt_client_free(c);
	return 0;
}
