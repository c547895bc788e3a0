/* SPDX-License-Identifier: MIT */
/* db.h: persistence in SQLite, the store of record. db.c is the only file
 * that includes sqlite3.h and holds all the SQL; it knows no model type:
 * it takes plain rows (ids, numbers and msgpack bytes) and hands plain rows
 * back at start.
 *
 * Writing: during a loop turn the model puts rows (tt_db_put_*, tt_db_del_*);
 * they are appended to an in-memory log without touching SQLite, and
 * tt_db_commit writes the whole log in one transaction (group commit). The
 * turn's replies leave only after that commit, so an acknowledged update
 * survives kill -9 (WAL, synchronous NORMAL) or a power loss (--sync full).
 *
 * Reading: tt_db_open restores through a loader the model provides, table
 * by table in an order where every row finds what it refers to (meta,
 * classes, states, events, sessions, instances, tombstones, schedules,
 * observes). Single-threaded. */
#ifndef TT_DB_H
#define TT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef struct tt_db_state_row {
	uint64_t id;
	const char *cls;
	size_t cls_len;
	uint64_t owner;    /* session id, 0 = the server */
	uint64_t seq;
	double time;
	const void *vals;  /* msgpack map of every param's value */
	size_t vals_len;
	const void *init;  /* msgpack map of the values given at creation; NULL
			    * (len 0) when read from a row stored before them */
	size_t init_len;
} tt_db_state_row;

typedef struct tt_db_event_row {
	uint64_t state, seq;
	double time;
	uint64_t origin;
	const void *changes; /* msgpack map */
	size_t len;
} tt_db_event_row;

typedef struct tt_db_sched_row {
	uint64_t id, state;
	double at;
	uint64_t origin;
	const void *changes; /* msgpack map */
	size_t len;
} tt_db_sched_row;

/* What tt_db_open hands back, row by row. Pointers are valid during the
 * call only. A callback that returns a negative code (with err filled)
 * stops the restore, and tt_db_open fails with that error. */
typedef struct tt_db_loader {
	void (*meta)(const char *key, double value);
	void (*meta_text)(const char *key, const char *value, size_t len);
	int (*klass)(const char *name, size_t len, const void *desc, size_t desc_len,
		     tt_error *err);
	int (*state)(const tt_db_state_row *r, tt_error *err);
	void (*event)(const tt_db_event_row *r);
	/* gone: the connection was lost at gone_at (sync time); otherwise it
	 * was connected when the server stopped */
	/* role: the role's name (NULL in rows from before roles were kept) */
	void (*session)(uint64_t id, const char *token, size_t len, bool gone, double gone_at,
			const char *role, size_t role_len);
	/* filter: msgpack array of param names, or len 0 for none */
	int (*instance)(uint64_t id, uint64_t session, uint64_t state, const void *filter,
			size_t len, tt_error *err);
	void (*tombstone)(uint64_t state, const char *reason);
	void (*schedule)(const tt_db_sched_row *r);
	/* cls NULL: observing every class */
	void (*observe)(uint64_t session, const char *cls, size_t len);
} tt_db_loader;

/* Open (or create, mode 0600) the database at path (":memory:" keeps
 * nothing) and restore it through ld. sync_full: also survive a power
 * loss. A file that fails SQLite's integrity check is refused (the log
 * says how to salvage it), and so is a read that stops on an error: a
 * database is never half restored. Rows put while the loader runs are
 * dropped: they are what was just read. Returns 0, or -TT_INTERNAL (or the
 * loader's code) with err saying what is wrong; the file is never
 * overwritten, and nothing stays open on failure. path NULL: no SQLite at
 * all, the rows are encoded and dropped at each commit (the handler fuzzer
 * runs most inputs so: opening SQLite was most of an execution). */
int tt_db_open(const char *path, bool sync_full, const tt_db_loader *ld, tt_error *err);
/* The same with the engine of cfg->engine (`--engine URL`, engine.h)
 * instead of SQLite. */
struct tt_config;
int tt_db_open_engine(const struct tt_config *cfg, const tt_db_loader *ld, tt_error *err);
/* Close without writing anything. Accepts a database never opened. */
void tt_db_close(void);

/* Rows of the current turn, written at the next commit. Each copies what
 * it is given. Before the database is open (or after it failed to) they are
 * ignored. */
void tt_db_put_meta(const char *key, double value);
void tt_db_put_meta_text(const char *key, const char *value);
void tt_db_put_class(const char *name, size_t len, const void *desc, size_t desc_len);
void tt_db_del_class(const char *name, size_t len);
void tt_db_put_state(const tt_db_state_row *r);
/* How many tombstones of deleted states are kept, the newest: a resume
 * needs those of its window, and an installation deleting a state a second
 * for a month must not grow without end. The store keeps as many. */
#define TT_TOMBSTONES_KEPT 100000u
/* Deletes the state with its events, instances and schedules, and keeps a
 * tombstone with the reason (the oldest beyond TT_TOMBSTONES_KEPT go, a
 * batch at a time). */
void tt_db_del_state(uint64_t id, const char *reason);
void tt_db_put_event(const tt_db_event_row *r);
/* Forget the events of state with seq <= upto. */
void tt_db_trim_events(uint64_t state, uint64_t upto);
void tt_db_put_session(uint64_t id, const char *token, size_t len, const char *role);
void tt_db_session_gone(uint64_t id, double gone_at);
/* Deletes the session with its instances and observes; kicked: the
 * operator ended it (an engine of several nodes tells the node holding its
 * connection, which closes it with 4005). */
void tt_db_del_session(uint64_t id, bool kicked);
void tt_db_put_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
			size_t len);
void tt_db_del_instance(uint64_t id);
void tt_db_put_observe(uint64_t session, const char *cls, size_t len, bool on);
void tt_db_put_schedule(const tt_db_sched_row *r);
void tt_db_del_schedule(uint64_t id);
/* Several nodes on one engine (cluster.c): what the other nodes must know
 * of an event or a schedule of state to tell their own clients. The event
 * seq answers request rid that node `node` forwarded (0: none), or applies
 * schedule sched (0: none); schedule sched was made by such a request, or
 * cancelled by session `by` (0: not cancelled). SQLite keeps none of it. */
void tt_db_tag_event(uint64_t state, uint64_t seq, uint64_t rid, uint32_t node, uint64_t sched);
void tt_db_tag_sched(uint64_t state, uint64_t sched, uint64_t rid, uint32_t node, uint64_t by);

/* Write every row not written yet in one transaction. 0, or -TT_STORAGE:
 * the transaction was rolled back, the rows are kept for the next commit
 * (which writes them again with whatever came since), and the database is
 * failing (tt_db_failing) until a commit succeeds. When the file was found
 * deleted or moved away (tt_db_check), it is first written back at its
 * path from the open connection, and the connection moves to the copy. */
int tt_db_commit(void);
/* The end of a loop turn: write every row not written yet, as the rows of
 * batch (the replies it released once durable, client.h). 0: durable now
 * (SQLite: tt_db_commit); TT_DB_PENDING: an engine writes it and tells when
 * (tt_db_poll); -TT_STORAGE as tt_db_commit. */
#define TT_DB_PENDING 1
int tt_db_commit_async(uint64_t batch);
/* On the loop, after each wait: what the engine's threads brought. True
 * when something happened; *durable: the last batch durable now with all
 * before it (0: none newly); *fenced: the first batch with a change the
 * engine refused (another writer came first, engine.h; 0: none). Always
 * false with SQLite. */
bool tt_db_poll(uint64_t *durable, uint64_t *fenced);
/* While on, rows put are dropped (what another node stored, applied here:
 * cluster.c). */
void tt_db_mute(bool on);
/* Batches committed to the engine and not durable yet. */
bool tt_db_pending(void);
/* The store of record acknowledges later (an engine): its commits do not
 * fail, it retries what it could not write itself. */
bool tt_db_async(void);

/* Once a second: has the file been deleted, renamed or replaced since it
 * was opened? SQLite keeps writing to the old file without a word; from
 * then on the database is failing until a commit writes it back. */
void tt_db_check(void);
/* Why writes fail (a short text for clients and /healthz, without the
 * path), or NULL while they work. The log says it with the path, once. */
const char *tt_db_failing(void);
/* Failing, and the rows waiting for the storage are past their memory
 * budget: requests that would add more must be refused too. */
bool tt_db_backlog_full(void);
/* Bytes of the database file and its write-ahead log now (0 for
 * ":memory:" or no database). */
uint64_t tt_db_size(void);

#endif
