/* SPDX-License-Identifier: MIT */
/* server.h: the start-up order of the server's modules, in one place for
 * tutti-server (main.c) and for the tests that run the server in-process. */
#ifndef TT_SERVER_H
#define TT_SERVER_H

#include "common.h"
#include "config.h"

/* Initialise every module with cfg (borrowed: it must outlive the server),
 * open the database of cfg->db and restore it. Loads no schema file.
 * Returns 0, or -code with err saying what is wrong (everything is then
 * closed again). */
int tt_server_open(const tt_config *cfg, tt_error *err);
/* Free every module, writing nothing. Safe after a failed open. */
void tt_server_close(void);

#endif
