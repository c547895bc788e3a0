/* SPDX-License-Identifier: MIT */
/* server.c: module start-up and shutdown order. */
#include "server.h"

#include "session.h"

#include "client.h"
#include "clock.h"
#include "cluster.h"
#include "db.h"
#include "engine.h"
#include "fanout.h"
#include "handler.h"
#include "hooks.h"
#include "inspect.h"
#include "metrics.h"
#include "ops.h"
#include "restore.h"
#include "resume.h"
#include "rights.h"
#include "roles.h"
#include "store.h"
#include "turn.h"
#include "wire.h"

int tt_server_open(const tt_config *cfg, tt_error *err)
{
	tt_clock_start(0); /* the database's clock, when it has one, moves it on */
	/* nodes of one engine hand out ids of their own (node k: k mod 64) */
	tt_ids_scheme(cfg->engine ? TT_NODES_MAX + 1 : 1, cfg->engine ? cfg->node_id : 0);
	tt_metrics_init();
	tt_inspect_init();
	tt_client_init(cfg->max_queue);
	tt_store_init(cfg);
	tt_ops_init(cfg);
	tt_resume_init(cfg);
	tt_handler_init(cfg);
	tt_hooks_init(cfg);
	tt_turn_init();
	/* several nodes: what the engine reads goes to the cluster */
	tt_engine_set_sink(cfg->engine ? &tt_cluster_sink : NULL);
	int rc = cfg->engine ? tt_db_open_engine(cfg, &tt_restore_loader, err)
			     : tt_db_open(cfg->db, cfg->sync_full, &tt_restore_loader, err);
	if (rc < 0) {
		tt_server_close();
		return rc;
	}
	/* after the database: generated role tokens come back from it */
	tt_rights_init(cfg->open);
	if ((rc = tt_roles_load(cfg->schemas, cfg->roles, cfg->config, err)) < 0) {
		tt_server_close();
		return rc;
	}
	/* a token generated now is kept for the next start (its URL stays) */
	for (uint32_t i = 0; i < tt_roles_count(); i++) {
		const tt_role *r = tt_roles_get(i);
		char key[sizeof(TT_ROLES_META_PREFIX) + TT_ROLE_NAME_MAX];
		snprintf(key, sizeof(key), TT_ROLES_META_PREFIX "%s", r->name);
		if (r->fresh)
			tt_db_put_meta_text(key, r->token);
	}
	/* after the roles: each restored session gets its role back */
	tt_restore_done();
	/* several nodes: what is whose */
	static const tt_cluster_runner run = {
		.forwarded_set = tt_ops_forwarded_set,
		.forwarded_delete = tt_ops_forwarded_delete,
		.forwarded_cancel = tt_ops_forwarded_cancel,
		.set = tt_op_set,
		.del = tt_op_delete,
		.cancel = tt_op_cancel,
		.welcome = tt_ops_welcome,
		.message = tt_handler_message,
	};
	tt_cluster_start(cfg, &run);
	return 0;
}

void tt_server_close(void)
{
	tt_restore_abandon();
	tt_cluster_destroy();
	tt_roles_free();
	tt_hooks_destroy();
	tt_inspect_destroy();
	tt_handler_destroy();
	tt_resume_destroy();
	tt_ops_destroy();
	tt_store_destroy();
	tt_db_close();
	tt_fanout_cleanup();
	tt_wire_cleanup();
	tt_msg_pool_free();
}
