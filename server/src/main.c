/* SPDX-License-Identifier: MIT */
/* main.c: tutti-server's entry point: configuration, start-up order, signals,
 * clean stop. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "ops.h"
#include "schemas.h"
#include "server.h"
#include "turn.h"
#include "ws.h"

static void on_signal(int sig)
{
	(void)sig;
	tt_ws_stop();
}

int main(int argc, char **argv)
{
	tt_config cfg;
	int rc = tt_config_parse(&cfg, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (cfg.verbose)
		tt_log_level = TT_LOG_DEBUG;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* past a file size limit (ulimit -f), a write fails with EFBIG and the
	 * database says so, rather than the signal killing the server */
	signal(SIGXFSZ, SIG_IGN);

	tt_error err;
	int status = 1;
	if (tt_server_open(&cfg, &err) < 0) {
		fprintf(stderr, "tutti-server: database %s: %s\n", cfg.db, err.msg);
		return 1;
	}
	if (cfg.delete_class) {
		if (tt_ops_delete_class(cfg.delete_class, &err) < 0) {
			fprintf(stderr, "tutti-server: %s\n", err.msg);
			goto out;
		}
		if (tt_turn_commit() < 0)
			goto out;
		fprintf(stderr, "tutti-server: class \"%s\" deleted\n", cfg.delete_class);
		status = 0;
		goto out;
	}
	if (tt_schemas_load(cfg.schemas, &err) < 0) {
		fprintf(stderr, "tutti-server: refusing to start: bad schema: %s\n", err.msg);
		goto out;
	}
	/* a database that cannot be written (disk full) is not a reason not
	 * to serve what it holds: the commit is retried once a second */
	tt_turn_commit();
	status = tt_ws_run(&cfg) < 0 ? 1 : 0;
out:
	tt_server_close();
	return status;
}
