/* SPDX-License-Identifier: MIT */
/* config.h: command-line configuration of tutti-server. */
#ifndef TT_CONFIG_H
#define TT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tt_config {
	const char *host;        /* --host, default 127.0.0.1 */
	int port;                /* --port, default 8000 */
	const char *schemas;     /* --schemas DIR, default "schemas" */
	const char *web;         /* --web DIR, default "web" */
	const char *db;          /* --db PATH, default "tutti.db"; ":memory:" */
	bool sync_full;          /* --sync full: survive power loss too */
	size_t max_message;      /* --max-message BYTES, default 1 MiB */
	size_t max_queue;        /* --max-queue BYTES per client, default 4 MiB */
	uint32_t history;        /* --history N events per state, default 1000 */
	double resume_window;    /* --resume-window SECONDS, default 60 */
	double keepalive;        /* --keepalive SECONDS: ping a silent client, drop at 2.5x */
	uint32_t max_states;     /* --max-states per session, default 10000 */
	uint32_t max_instances;  /* --max-instances per session, default 10000 */
	uint32_t max_classes;    /* --max-classes in all, default 1000 */
	uint32_t max_rate;       /* --max-rate messages/s per client, 0 = off, default 10000 */
	const char *delete_class;/* --delete-class NAME: operator deletes a class */
	int verbose;             /* -v: debug log */
} tt_config;

/* Fill cfg from argv. Returns 0 to run, 1 when --help was printed (exit 0),
 * -1 on a usage error (message printed; exit 2). */
int tt_config_parse(tt_config *cfg, int argc, char **argv);

#endif
