/* SPDX-License-Identifier: MIT */
/* main.c: tutti-server's entry point: configuration, start-up order, signals,
 * clean stop. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "files.h"
#include "log.h"
#include "ops.h"
#include "schemas.h"
#include "server.h"
#include "turn.h"
#include "ws.h"

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		tt_ws_reload();
	else
		tt_ws_stop();
}

int main(int argc, char **argv)
{
	tt_config cfg;
	int rc = tt_config_parse(&cfg, argc, argv);
	if (rc) {
		tt_config_free();
		return rc > 0 ? 0 : 2;
	}
	if (cfg.init) {
		tt_error e;
		rc = tt_files_init_piece(cfg.init, &e);
		if (rc < 0)
			fprintf(stderr, "tutti-server: --init: %s\n", e.msg);
		else
			printf("made the piece folder %s: start it with\n  tutti-server %s\n"
			       "then edit %s/schemas/ and %s/web/ (see %s/README.md)\n",
			       cfg.init, cfg.init, cfg.init, cfg.init, cfg.init);
		tt_config_free();
		return rc < 0 ? 1 : 0;
	}
	if (cfg.verbose)
		tt_log_level = cfg.verbose > 0 ? TT_LOG_DEBUG : TT_LOG_WARN;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* past a file size limit (ulimit -f), a write fails with EFBIG and the
	 * database says so, rather than the signal killing the server */
	signal(SIGXFSZ, SIG_IGN);

	/* as many connections as the system lets one process have */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	tt_error err;
	int status = 1;
	if (tt_server_open(&cfg, &err) < 0) {
		fprintf(stderr, "tutti-server: %s: %s\n",
			err.code != TT_INTERNAL ? "roles" : cfg.engine ? cfg.engine : cfg.db, err.msg);
		tt_config_free();
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
	tt_schemas_allow_reset(cfg.reset_params, cfg.n_reset_params);
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
	tt_config_free();
	return status;
}
