/* SPDX-License-Identifier: MIT */
/* config.h: command-line configuration of tutti-server. */
#ifndef TT_CONFIG_H
#define TT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tt_value;

#define TT_MAX_ORIGINS 16
/* Nodes on one engine: --node-id 1 to TT_NODES_MAX. */
#define TT_NODES_MAX 63

typedef struct tt_config {
	const char *host;        /* --host, default 127.0.0.1 */
	int port;                /* --port, default 8000 */
	const char *schemas;     /* --schemas DIR, default "schemas" */
	const char *web;         /* --web DIR, default "web" */
	const char *db;          /* --db PATH, default "tutti.db"; ":memory:" */
	bool sync_full;          /* --sync full: survive power loss too */
	const char *engine;      /* --engine URL: another store of record than
				  * SQLite (nats://HOST:PORT[,HOST:PORT...][/NAME]);
				  * NULL: --db */
	uint32_t node_id;        /* --node-id N (1..63): this node among those
				  * sharing the engine, default 1 */
	uint32_t replicas;       /* --replicas N: copies the engine keeps (1 or 3..5;
				  * set when the stream is created), default 1 */
	size_t max_message;      /* --max-message BYTES, default 1 MiB */
	size_t max_queue;        /* --max-queue BYTES per client, default 4 MiB */
	uint32_t history;        /* --history N events per state, default 1000 */
	double resume_window;    /* --resume-window SECONDS, default 60 */
	double keepalive;        /* --keepalive SECONDS: ping a silent client, drop at 2.5x */
	uint32_t max_states;     /* --max-states per session, default 1000 */
	uint32_t max_instances;  /* --max-instances per session, default 1000 */
	uint32_t max_classes;    /* --max-classes in all, default 1000 */
	uint32_t max_rate;       /* --max-rate messages/s per client, 0 = off, default 10000 */
	bool open;               /* --open: the default role is trusted like the others */
	bool metrics_public;     /* --metrics-public: /metrics without the admin token */
	const char *allow_origin[TT_MAX_ORIGINS]; /* --allow-origin, repeatable; "*": any */
	uint32_t n_allow_origin;
	uint32_t max_value_bytes;   /* --max-value-bytes: string/any values, default 64 KiB */
	uint32_t max_state_bytes;   /* --max-state-bytes: a state's values, default 1 MiB */
	uint32_t history_bytes;     /* --history-bytes per state, default 1 MiB */
	uint32_t max_description;   /* --max-description bytes of a class, default 64 KiB */
	uint32_t max_sessions;      /* --max-sessions in all, default 10000 */
	uint32_t max_total_states;  /* --max-total-states in all, default 100000 */
	uint32_t max_conns_per_addr;/* --max-conns-per-addr, 0 = off, default 64 */
	uint32_t max_new_sessions_per_addr; /* --max-new-sessions-per-addr per minute, default 60 */
	uint32_t max_connections;   /* --max-connections, 0 = from the open-file limit */
	double max_schedule_ahead;  /* --max-schedule-ahead seconds, default 86400 */
	uint32_t max_schedules;     /* --max-schedules pending per session, default 100 */
	const char *reset_params[TT_MAX_ORIGINS]; /* --reset-param CLASS.PARAM, repeatable */
	uint32_t n_reset_params;
	double hook_timeout;        /* --hook-timeout seconds, default 2 */
	uint64_t max_memory;        /* --max-memory: values, histories, schedules, default 1 GiB */
	const char *delete_class;/* --delete-class NAME: operator deletes a class */
	const char *config;      /* --config FILE (or a piece folder's tutti.json); NULL: none */
	const struct tt_value *roles; /* the config file's "roles" (roles.json's shape); NULL: none */
	const char *init;        /* --init DIR: make a piece folder there, then exit */
	bool https;              /* --https: a local authority's certificate (cert.c) */
	const char *tls_cert;    /* --tls-cert PEM, with --tls-key: HTTPS with your own */
	const char *tls_key;
	const char *tls_dir;     /* --tls-dir: where --https keeps its files (default ./tls) */
	int qr;                  /* the QR code in the banner: 1 (--qr), -1 (--no-qr), 0: on a terminal */
	int verbose;             /* 1 (-v): debug lines; -1 (-q): warnings and errors only */
} tt_config;

/* Fill cfg from argv: the defaults, then a piece folder's (the one operand:
 * its schemas/, web/, tutti.db, tls/ and tutti.json), then the config file
 * (--config, or the piece's tutti.json: keys are the long option names,
 * paths relative to the file), then the command line, which wins. Returns 0
 * to run, 1 when --help was printed (exit 0), -1 on a usage error (message
 * printed; exit 2). The strings live until tt_config_free or the next
 * parse. */
int tt_config_parse(tt_config *cfg, int argc, char **argv);
void tt_config_free(void);

#endif
