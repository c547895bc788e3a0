/* SPDX-License-Identifier: MIT */
/* files.h: where the server's own files are (the web client, served at
 * /tutti/ whatever --web is, and the piece template), and making a piece
 * folder from the template (--init). */
#ifndef TT_FILES_H
#define TT_FILES_H

#include "common.h"

/* The folder of the web client (tutti.js, sync.js, stage.js, the msgpack
 * module under node_modules/, template/): next to an installed binary
 * (../share/tutti/web), else the source tree's web/ it was built from.
 * NULL when neither exists. */
const char *tt_files_web(void);

/* Copy the template (tt_files_web()/template) to dir, which must not exist
 * or be empty. Returns 0 or -TT_INTERNAL with err saying why. */
int tt_files_init_piece(const char *dir, tt_error *err);

#endif
