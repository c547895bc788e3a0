/* SPDX-License-Identifier: MIT */
/* db.c: SQLite, the store of record. All SQL of tutti is in this file, and
 * it knows no model type: rows in (an op log of the turn, written by one
 * transaction at commit, kept and retried when the write fails), rows out
 * (a loader at start, after an integrity check). With `--engine` the op log
 * goes to that engine instead (engine.h), and SQLite is not opened. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"

/* Rows kept while the storage fails, past which requests that would add
 * more are refused too (tt_db_backlog_full): the op log is memory. */
#define BACKLOG_MAX (16u << 20)

#define SCHEMA_VERSION 4

/* the op log's row kinds are engine.h's tt_op_kind */
#define OP_META TT_OP_META
#define OP_CLASS_PUT TT_OP_CLASS_PUT
#define OP_CLASS_DEL TT_OP_CLASS_DEL
#define OP_STATE_PUT TT_OP_STATE_PUT
#define OP_STATE_DEL TT_OP_STATE_DEL
#define OP_EVENT TT_OP_EVENT
#define OP_EVENT_TRIM TT_OP_EVENT_TRIM
#define OP_SESSION_PUT TT_OP_SESSION_PUT
#define OP_SESSION_GONE TT_OP_SESSION_GONE
#define OP_SESSION_DEL TT_OP_SESSION_DEL
#define OP_INSTANCE_PUT TT_OP_INSTANCE_PUT
#define OP_INSTANCE_DEL TT_OP_INSTANCE_DEL
#define OP_OBSERVE_PUT TT_OP_OBSERVE_PUT
#define OP_OBSERVE_DEL TT_OP_OBSERVE_DEL
#define OP_SCHED_PUT TT_OP_SCHED_PUT
#define OP_SCHED_DEL TT_OP_SCHED_DEL
#define OP_META_TEXT TT_OP_META_TEXT

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_CLASS_PUT, ST_CLASS_DEL, ST_STATE_PUT,
	ST_STATE_DEL, ST_STATE_EVENTS_DEL, ST_STATE_INSTANCES_DEL, ST_EVENT_PUT, ST_EVENT_TRIM,
	ST_SESSION_PUT, ST_SESSION_DEL, ST_SESSION_INSTANCES_DEL, ST_SESSION_OBSERVES_DEL,
	ST_INSTANCE_PUT, ST_INSTANCE_DEL, ST_OBSERVE_PUT, ST_OBSERVE_DEL, ST_META_PUT,
	ST_TOMBSTONE_PUT, ST_TOMBSTONE_TRIM, ST_SCHED_PUT, ST_SCHED_DEL, ST_STATE_SCHED_DEL, ST_SESSION_GONE, ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CLASS_PUT] = "INSERT OR REPLACE INTO classes(name, description) VALUES (?1, ?2)",
	[ST_CLASS_DEL] = "DELETE FROM classes WHERE name = ?1",
	[ST_STATE_PUT] = "INSERT OR REPLACE INTO states(id, class, owner, seq, time, vals, init) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_STATE_DEL] = "DELETE FROM states WHERE id = ?1",
	[ST_STATE_EVENTS_DEL] = "DELETE FROM events WHERE state = ?1",
	[ST_STATE_INSTANCES_DEL] = "DELETE FROM instances WHERE state = ?1",
	[ST_EVENT_PUT] = "INSERT OR REPLACE INTO events(state, seq, time, origin, changes) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_EVENT_TRIM] = "DELETE FROM events WHERE state = ?1 AND seq <= ?2",
	[ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(id, token, gone_at, role) VALUES (?1, ?2, NULL, ?3)",
	[ST_SESSION_GONE] = "UPDATE sessions SET gone_at = ?2 WHERE id = ?1",
	[ST_SESSION_DEL] = "DELETE FROM sessions WHERE id = ?1",
	[ST_SESSION_INSTANCES_DEL] = "DELETE FROM instances WHERE session = ?1",
	[ST_SESSION_OBSERVES_DEL] = "DELETE FROM observes WHERE session = ?1",
	[ST_INSTANCE_PUT] = "INSERT OR REPLACE INTO instances(id, session, state, filter) "
			    "VALUES (?1, ?2, ?3, ?4)",
	[ST_INSTANCE_DEL] = "DELETE FROM instances WHERE id = ?1",
	[ST_OBSERVE_PUT] = "INSERT OR IGNORE INTO observes(session, class) VALUES (?1, ?2)",
	[ST_OBSERVE_DEL] = "DELETE FROM observes WHERE session = ?1 AND class IS ?2",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[ST_TOMBSTONE_PUT] = "INSERT OR REPLACE INTO tombstones(state, reason) VALUES (?1, ?2)",
	[ST_TOMBSTONE_TRIM] = "DELETE FROM tombstones WHERE state <= (SELECT state FROM tombstones "
			      "ORDER BY state DESC LIMIT 1 OFFSET ?1)",
	[ST_SCHED_PUT] = "INSERT OR REPLACE INTO scheduled(id, state, at, origin, changes) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_SCHED_DEL] = "DELETE FROM scheduled WHERE id = ?1",
	[ST_STATE_SCHED_DEL] = "DELETE FROM scheduled WHERE state = ?1",
};

/* Migrations: MIGRATIONS[v] takes a database at user_version v to v + 1.
 * TABLES[v] lists the tables a database at version v + 1 must have, checked
 * before anything is written to a file (never touch a foreign database). */
static const char *const MIGRATIONS[SCHEMA_VERSION] = {
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE classes (name TEXT PRIMARY KEY, description BLOB NOT NULL);"
	"CREATE TABLE states (id INTEGER PRIMARY KEY, class TEXT NOT NULL, owner INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL, time REAL NOT NULL, vals BLOB NOT NULL);"
	"CREATE TABLE events (state INTEGER NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,"
	"  origin INTEGER NOT NULL, changes BLOB NOT NULL, PRIMARY KEY (state, seq)) WITHOUT ROWID;"
	"CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT NOT NULL);"
	"CREATE TABLE instances (id INTEGER PRIMARY KEY, session INTEGER NOT NULL,"
	"  state INTEGER NOT NULL, filter BLOB);"
	"CREATE INDEX instances_session ON instances(session);"
	"CREATE INDEX instances_state ON instances(state);"
	"CREATE TABLE observes (session INTEGER NOT NULL, class TEXT, UNIQUE (session, class));",
	/* 2: why states went away (for resuming clients), scheduled sets, and
	 * when a session's connection was lost (its resume window) */
	"CREATE TABLE tombstones (state INTEGER PRIMARY KEY, reason TEXT NOT NULL);"
	"CREATE TABLE scheduled (id INTEGER PRIMARY KEY, state INTEGER NOT NULL, at REAL NOT NULL,"
	"  origin INTEGER NOT NULL, changes BLOB NOT NULL);"
	"ALTER TABLE sessions ADD COLUMN gone_at REAL;",
	/* 3: each state's values given at creation (getInitValues, and the
	 * default a `required` param reports); NULL in rows from before */
	"ALTER TABLE states ADD COLUMN init BLOB;",
	/* 4: the role a session was made in: it resumes in that role only,
	 * also after a restart; NULL in rows from before (the default role) */
	"ALTER TABLE sessions ADD COLUMN role TEXT;",
};
static const int N_TABLES[SCHEMA_VERSION] = {7, 9, 9, 9};
static const char *const TABLES =
	"'meta','classes','states','events','sessions','instances','observes',"
	"'tombstones','scheduled'";

static struct {
	const tt_engine *engine;  /* --engine: the op log goes there, no SQLite */
	sqlite3 *db;              /* NULL: persistence off (--db :memory: is still SQLite) */
	sqlite3_stmt *st[ST_COUNT];
	tt_buf ops;               /* op log: rows not committed yet */
	bool opened;              /* fully open and restored: rows are kept */
	bool muted;               /* rows dropped: another node's, applied here */
	bool mem;                 /* ":memory:": no file to watch */
	bool sync_full;
	char *path;               /* owned: the file, for messages and writing it back */
	mode_t mode;              /* the file's permissions, for a copy written back */
	bool moved;               /* the file was deleted or replaced while open */
	char failing[160];        /* why writes fail, said to clients; "" when they work */
	char said[512];           /* the last failure logged, so that it is said once */
	double fail_since;        /* tt_clock_mono() when writes started failing */
	uint64_t tombstones_put;  /* states deleted: every TOMBSTONE_TRIM_EVERY, a trim */
} D;

/* ---- op log: rows of the turn ------------------------------------------ */

static void put_u8(unsigned char v) { tt_buf_append(&D.ops, &v, 1); }
static void put_u64(uint64_t v) { tt_buf_append(&D.ops, &v, sizeof(v)); }
static void put_f64(double v) { tt_buf_append(&D.ops, &v, sizeof(v)); }
static void put_bytes(const void *p, size_t n)
{
	tt_assert(n <= INT32_MAX);
	uint32_t len = (uint32_t)n;
	tt_buf_append(&D.ops, &len, sizeof(len));
	tt_buf_append(&D.ops, p, n);
}

/* A row is logged only on an open database: rows put while restoring are
 * what was just read. */
static bool logging(void)
{
	return D.opened && !D.muted;
}

/* ---- reading the op log back (SQLite here, other engines: engine.h) ---- */

typedef struct reader {
	const unsigned char *p, *end;
} reader;

static unsigned char get_u8(reader *r)
{
	return *r->p++;
}

static uint64_t get_u64(reader *r)
{
	uint64_t v;
	memcpy(&v, r->p, sizeof(v));
	r->p += sizeof(v);
	return v;
}

static double get_f64(reader *r)
{
	double v;
	memcpy(&v, r->p, sizeof(v));
	r->p += sizeof(v);
	return v;
}

static const void *get_bytes(reader *r, size_t *len)
{
	uint32_t n;
	memcpy(&n, r->p, sizeof(n));
	r->p += sizeof(n);
	const void *p = r->p;
	r->p += n;
	*len = n;
	return p;
}

static const char *get_text(reader *r, size_t *len)
{
	return get_bytes(r, len);
}

bool tt_engine_op_next(const unsigned char **pp, const unsigned char *end, tt_op *op)
{
	reader rd = {*pp, end}, *r = &rd;
	if (r->p >= r->end)
		return false;
	memset(op, 0, sizeof(*op));
	op->kind = (tt_op_kind)*r->p++;
	switch (op->kind) {
	case OP_META_TEXT:
		op->key = get_text(r, &op->key_len);
		op->bytes = get_bytes(r, &op->len);
		break;
	case OP_META:
		op->key = get_text(r, &op->key_len);
		op->value = get_f64(r);
		break;
	case OP_CLASS_PUT:
		op->key = get_text(r, &op->key_len);
		op->bytes = get_bytes(r, &op->len);
		break;
	case OP_CLASS_DEL:
		op->key = get_text(r, &op->key_len);
		break;
	case OP_STATE_PUT:
		op->id = op->st.id = get_u64(r);
		op->st.cls = get_text(r, &op->st.cls_len);
		op->st.owner = get_u64(r);
		op->st.seq = get_u64(r);
		op->st.time = get_f64(r);
		op->st.vals = get_bytes(r, &op->st.vals_len);
		op->st.init = get_bytes(r, &op->st.init_len);
		if (!op->st.init_len)
			op->st.init = NULL;
		break;
	case OP_STATE_DEL:
		op->id = get_u64(r);
		op->key = get_text(r, &op->key_len);
		break;
	case OP_EVENT:
		op->id = op->ev.state = get_u64(r);
		op->ev.seq = get_u64(r);
		op->ev.time = get_f64(r);
		op->ev.origin = get_u64(r);
		op->ev.changes = get_bytes(r, &op->ev.len);
		break;
	case OP_EVENT_TRIM:
		op->state = get_u64(r);
		op->id = get_u64(r);
		break;
	case OP_SESSION_PUT:
		op->id = get_u64(r);
		op->key = get_text(r, &op->key_len);
		op->bytes = get_bytes(r, &op->len);
		break;
	case OP_SESSION_GONE:
		op->id = get_u64(r);
		op->value = get_f64(r);
		break;
	case OP_SESSION_DEL:
		op->id = get_u64(r);
		op->value = get_u8(r);
		break;
	case OP_INSTANCE_DEL:
	case OP_SCHED_DEL:
		op->id = get_u64(r);
		break;
	case OP_INSTANCE_PUT:
		op->id = get_u64(r);
		op->session = get_u64(r);
		op->state = get_u64(r);
		op->bytes = get_bytes(r, &op->len);
		break;
	case OP_OBSERVE_PUT:
	case OP_OBSERVE_DEL:
		op->id = op->session = get_u64(r);
		if (*r->p++)
			op->key = get_text(r, &op->key_len);
		break;
	case TT_OP_TAG_EVENT:
	case TT_OP_TAG_SCHED:
		op->state = get_u64(r);
		op->id = get_u64(r);
		op->rid = get_u64(r);
		op->node = (uint32_t)get_u64(r);
		op->sched = get_u64(r);
		break;
	case OP_SCHED_PUT:
		op->id = op->sc.id = get_u64(r);
		op->sc.state = get_u64(r);
		op->sc.at = get_f64(r);
		op->sc.origin = get_u64(r);
		op->sc.changes = get_bytes(r, &op->sc.len);
		break;
	default:
		tt_assert_fail("unknown op in the op log", __FILE__, __LINE__);
	}
	*pp = r->p;
	return true;
}

void tt_db_put_meta(const char *key, double value)
{
	if (!logging())
		return;
	put_u8(OP_META);
	put_bytes(key, strlen(key));
	put_f64(value);
}

void tt_db_put_meta_text(const char *key, const char *value)
{
	if (!logging())
		return;
	put_u8(OP_META_TEXT);
	put_bytes(key, strlen(key));
	put_bytes(value, strlen(value));
}

void tt_db_put_class(const char *name, size_t len, const void *desc, size_t desc_len)
{
	if (!logging())
		return;
	put_u8(OP_CLASS_PUT);
	put_bytes(name, len);
	put_bytes(desc, desc_len);
}

void tt_db_del_class(const char *name, size_t len)
{
	if (!logging())
		return;
	put_u8(OP_CLASS_DEL);
	put_bytes(name, len);
}

void tt_db_put_state(const tt_db_state_row *r)
{
	if (!logging())
		return;
	put_u8(OP_STATE_PUT);
	put_u64(r->id);
	put_bytes(r->cls, r->cls_len);
	put_u64(r->owner);
	put_u64(r->seq);
	put_f64(r->time);
	put_bytes(r->vals, r->vals_len);
	put_bytes(r->init, r->init_len);
}

void tt_db_del_state(uint64_t id, const char *reason)
{
	if (!logging())
		return;
	put_u8(OP_STATE_DEL);
	put_u64(id);
	put_bytes(reason, strlen(reason));
}

void tt_db_put_event(const tt_db_event_row *r)
{
	if (!logging())
		return;
	put_u8(OP_EVENT);
	put_u64(r->state);
	put_u64(r->seq);
	put_f64(r->time);
	put_u64(r->origin);
	put_bytes(r->changes, r->len);
}

void tt_db_trim_events(uint64_t state, uint64_t upto)
{
	if (!logging())
		return;
	put_u8(OP_EVENT_TRIM);
	put_u64(state);
	put_u64(upto);
}

void tt_db_put_session(uint64_t id, const char *token, size_t len, const char *role)
{
	if (!logging())
		return;
	put_u8(OP_SESSION_PUT);
	put_u64(id);
	put_bytes(token, len);
	put_bytes(role, strlen(role));
}

void tt_db_session_gone(uint64_t id, double gone_at)
{
	if (!logging())
		return;
	put_u8(OP_SESSION_GONE);
	put_u64(id);
	put_f64(gone_at);
}

void tt_db_del_session(uint64_t id, bool kicked)
{
	if (!logging())
		return;
	put_u8(OP_SESSION_DEL);
	put_u64(id);
	put_u8(kicked);
}

void tt_db_put_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
			size_t len)
{
	if (!logging())
		return;
	put_u8(OP_INSTANCE_PUT);
	put_u64(id);
	put_u64(session);
	put_u64(state);
	put_bytes(filter, len);
}

void tt_db_del_instance(uint64_t id)
{
	if (!logging())
		return;
	put_u8(OP_INSTANCE_DEL);
	put_u64(id);
}

void tt_db_put_observe(uint64_t session, const char *cls, size_t len, bool on)
{
	if (!logging())
		return;
	put_u8(on ? OP_OBSERVE_PUT : OP_OBSERVE_DEL);
	put_u64(session);
	put_u8(cls != NULL);
	if (cls)
		put_bytes(cls, len);
}

void tt_db_put_schedule(const tt_db_sched_row *r)
{
	if (!logging())
		return;
	put_u8(OP_SCHED_PUT);
	put_u64(r->id);
	put_u64(r->state);
	put_f64(r->at);
	put_u64(r->origin);
	put_bytes(r->changes, r->len);
}

void tt_db_del_schedule(uint64_t id)
{
	if (!logging())
		return;
	put_u8(OP_SCHED_DEL);
	put_u64(id);
}

static void put_tag(unsigned char kind, uint64_t state, uint64_t id, uint64_t rid, uint32_t node,
		    uint64_t other)
{
	if (!logging() || !D.engine)
		return; /* SQLite keeps none of it */
	put_u8(kind);
	put_u64(state);
	put_u64(id);
	put_u64(rid);
	put_u64(node);
	put_u64(other);
}

void tt_db_tag_event(uint64_t state, uint64_t seq, uint64_t rid, uint32_t node, uint64_t sched)
{
	put_tag(TT_OP_TAG_EVENT, state, seq, rid, node, sched);
}

void tt_db_tag_sched(uint64_t state, uint64_t sched, uint64_t rid, uint32_t node, uint64_t by)
{
	put_tag(TT_OP_TAG_SCHED, state, sched, rid, node, by);
}

void tt_db_mute(bool on)
{
	D.muted = on;
}

/* ---- commit ----------------------------------------------------------- */

/* SQLITE_OK, or the statement's error code (its message stays readable in
 * sqlite3_errmsg until the next call on the connection). */
/* Tombstones over TT_TOMBSTONES_KEPT go a batch at a time: one indexed
 * DELETE per thousand deletions costs nothing a turn would notice. */
#define TOMBSTONE_TRIM_EVERY 1000

static int step(enum stmt_id id)
{
	sqlite3_stmt *s = D.st[id];
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void bind_text(enum stmt_id id, int col, const char *p, size_t n)
{
	sqlite3_bind_text(D.st[id], col, p, (int)n, SQLITE_STATIC);
}

static void bind_blob(enum stmt_id id, int col, const void *p, size_t n)
{
	if (n)
		sqlite3_bind_blob(D.st[id], col, p, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(D.st[id], col);
}

static void bind_u64(enum stmt_id id, int col, uint64_t v)
{
	sqlite3_bind_int64(D.st[id], col, (sqlite3_int64)v);
}

static void bind_f64(enum stmt_id id, int col, double v)
{
	sqlite3_bind_double(D.st[id], col, v);
}

static int exec_op(const tt_op *op)
{
	switch (op->kind) {
	case OP_META_TEXT:
		bind_text(ST_META_PUT, 1, op->key, op->key_len);
		bind_text(ST_META_PUT, 2, op->bytes, op->len);
		return step(ST_META_PUT);
	case OP_META:
		bind_text(ST_META_PUT, 1, op->key, op->key_len);
		bind_f64(ST_META_PUT, 2, op->value);
		return step(ST_META_PUT);
	case OP_CLASS_PUT:
		bind_text(ST_CLASS_PUT, 1, op->key, op->key_len);
		bind_blob(ST_CLASS_PUT, 2, op->bytes, op->len);
		return step(ST_CLASS_PUT);
	case OP_CLASS_DEL:
		bind_text(ST_CLASS_DEL, 1, op->key, op->key_len);
		return step(ST_CLASS_DEL);
	case OP_STATE_PUT:
		bind_u64(ST_STATE_PUT, 1, op->st.id);
		bind_text(ST_STATE_PUT, 2, op->st.cls, op->st.cls_len);
		bind_u64(ST_STATE_PUT, 3, op->st.owner);
		bind_u64(ST_STATE_PUT, 4, op->st.seq);
		bind_f64(ST_STATE_PUT, 5, op->st.time);
		bind_blob(ST_STATE_PUT, 6, op->st.vals, op->st.vals_len);
		bind_blob(ST_STATE_PUT, 7, op->st.init, op->st.init_len);
		return step(ST_STATE_PUT);
	case OP_STATE_DEL: {
		static const enum stmt_id by_state[] = {ST_STATE_DEL, ST_STATE_EVENTS_DEL,
			ST_STATE_INSTANCES_DEL, ST_STATE_SCHED_DEL, ST_TOMBSTONE_PUT};
		for (size_t i = 0; i < sizeof(by_state) / sizeof(*by_state); i++)
			bind_u64(by_state[i], 1, op->id);
		bind_text(ST_TOMBSTONE_PUT, 2, op->key, op->key_len);
		int rc = SQLITE_OK;
		for (size_t i = 0; i < sizeof(by_state) / sizeof(*by_state) && !rc; i++)
			rc = step(by_state[i]);
		if (!rc && ++D.tombstones_put % TOMBSTONE_TRIM_EVERY == 0) {
			sqlite3_bind_int64(D.st[ST_TOMBSTONE_TRIM], 1, TT_TOMBSTONES_KEPT);
			rc = step(ST_TOMBSTONE_TRIM);
		}
		return rc;
	}
	case OP_EVENT:
		bind_u64(ST_EVENT_PUT, 1, op->ev.state);
		bind_u64(ST_EVENT_PUT, 2, op->ev.seq);
		bind_f64(ST_EVENT_PUT, 3, op->ev.time);
		bind_u64(ST_EVENT_PUT, 4, op->ev.origin);
		bind_blob(ST_EVENT_PUT, 5, op->ev.changes, op->ev.len);
		return step(ST_EVENT_PUT);
	case OP_EVENT_TRIM:
		bind_u64(ST_EVENT_TRIM, 1, op->state);
		bind_u64(ST_EVENT_TRIM, 2, op->id);
		return step(ST_EVENT_TRIM);
	case OP_SESSION_PUT:
		bind_u64(ST_SESSION_PUT, 1, op->id);
		bind_text(ST_SESSION_PUT, 2, op->key, op->key_len);
		bind_text(ST_SESSION_PUT, 3, op->bytes, op->len);
		return step(ST_SESSION_PUT);
	case OP_SESSION_GONE:
		bind_u64(ST_SESSION_GONE, 1, op->id);
		bind_f64(ST_SESSION_GONE, 2, op->value);
		return step(ST_SESSION_GONE);
	case OP_SESSION_DEL: {
		static const enum stmt_id by_session[] = {ST_SESSION_DEL, ST_SESSION_INSTANCES_DEL,
			ST_SESSION_OBSERVES_DEL};
		int rc = SQLITE_OK;
		for (size_t i = 0; i < sizeof(by_session) / sizeof(*by_session) && !rc; i++) {
			bind_u64(by_session[i], 1, op->id);
			rc = step(by_session[i]);
		}
		return rc;
	}
	case OP_INSTANCE_PUT:
		bind_u64(ST_INSTANCE_PUT, 1, op->id);
		bind_u64(ST_INSTANCE_PUT, 2, op->session);
		bind_u64(ST_INSTANCE_PUT, 3, op->state);
		bind_blob(ST_INSTANCE_PUT, 4, op->bytes, op->len);
		return step(ST_INSTANCE_PUT);
	case OP_INSTANCE_DEL:
		bind_u64(ST_INSTANCE_DEL, 1, op->id);
		return step(ST_INSTANCE_DEL);
	case OP_OBSERVE_PUT:
	case OP_OBSERVE_DEL: {
		enum stmt_id id = op->kind == OP_OBSERVE_PUT ? ST_OBSERVE_PUT : ST_OBSERVE_DEL;
		bind_u64(id, 1, op->session);
		if (op->key)
			bind_text(id, 2, op->key, op->key_len);
		else
			sqlite3_bind_null(D.st[id], 2);
		return step(id);
	}
	case OP_SCHED_PUT:
		bind_u64(ST_SCHED_PUT, 1, op->sc.id);
		bind_u64(ST_SCHED_PUT, 2, op->sc.state);
		bind_f64(ST_SCHED_PUT, 3, op->sc.at);
		bind_u64(ST_SCHED_PUT, 4, op->sc.origin);
		bind_blob(ST_SCHED_PUT, 5, op->sc.changes, op->sc.len);
		return step(ST_SCHED_PUT);
	case OP_SCHED_DEL:
		bind_u64(ST_SCHED_DEL, 1, op->id);
		return step(ST_SCHED_DEL);
	case TT_OP_TAG_EVENT:
	case TT_OP_TAG_SCHED:
		return SQLITE_OK;
	}
	tt_assert_fail("unknown op in the op log", __FILE__, __LINE__);
}

/* ---- storage failures --------------------------------------------------- */

/* Writes fail: `reason` is kept for clients and /healthz (no path there);
 * the log says `what` with the path, once per distinct failure rather than
 * once per retry. */
static void set_failing(const char *reason, const char *what)
{
	if (!D.failing[0])
		D.fail_since = tt_clock_mono();
	snprintf(D.failing, sizeof(D.failing), "%s", reason);
	if (strcmp(what, D.said) == 0)
		return;
	snprintf(D.said, sizeof(D.said), "%s", what);
	tt_log_error("database %s: %s; changes are refused (STORAGE errors) and retried every "
		     "second, while reads, attaches and clock sync go on", D.path, what);
}

static void set_recovered(void)
{
	if (!D.failing[0])
		return;
	tt_log_warn("database %s: writing works again after %.0f s; every change held back is "
		    "committed", D.path, tt_clock_mono() - D.fail_since);
	D.failing[0] = D.said[0] = '\0';
}

const char *tt_db_failing(void)
{
	return D.failing[0] ? D.failing : NULL;
}

bool tt_db_backlog_full(void)
{
	if (D.engine)
		return D.failing[0] && D.engine->backlog_full();
	return D.failing[0] && D.ops.len > BACKLOG_MAX;
}

void tt_engine_failing(const char *reason, const char *what)
{
	if (reason)
		set_failing(reason, what);
	else
		set_recovered();
}

/* The network layer's waker, read by the engine's threads. */
static void (*g_wake)(void);

void tt_engine_set_waker(void (*wake)(void))
{
	__atomic_store_n(&g_wake, wake, __ATOMIC_RELEASE);
}

void tt_engine_wake(void)
{
	void (*wake)(void) = __atomic_load_n(&g_wake, __ATOMIC_ACQUIRE);
	if (wake)
		wake();
}

const tt_engine *tt_engine_for(const char *url)
{
	if (!strncmp(url, "nats://", 7))
		return &tt_engine_nats;
	return NULL;
}

bool tt_db_poll(uint64_t *durable, uint64_t *fenced)
{
	*durable = *fenced = 0;
	return D.engine && D.engine->poll(durable, fenced);
}

bool tt_db_async(void)
{
	return D.engine != NULL;
}

bool tt_db_pending(void)
{
	return D.engine && D.engine->pending();
}

uint64_t tt_db_size(void)
{
	if (!D.db || D.mem || !D.path)
		return 0;
	struct stat sb;
	uint64_t n = stat(D.path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", D.path);
	if (stat(wal, &sb) == 0)
		n += (uint64_t)sb.st_size;
	return n;
}

/* ---- commit ----------------------------------------------------------- */

/* The op log in one transaction: SQLITE_OK, or the error with the
 * transaction rolled back and the log left as it was, to be written again. */
static int write_log(char *why, size_t why_len, uint64_t *rows)
{
	int rc = step(ST_BEGIN);
	const unsigned char *p = tt_buf_data(&D.ops), *end = p + D.ops.len;
	tt_op op;
	*rows = 0;
	while (rc == SQLITE_OK && tt_engine_op_next(&p, end, &op)) {
		rc = exec_op(&op);
		(*rows)++;
	}
	if (rc == SQLITE_OK)
		rc = step(ST_COMMIT);
	if (rc == SQLITE_OK)
		return rc;
	snprintf(why, why_len, "%s", sqlite3_errstr(rc));
	/* an I/O error may have ended the transaction already */
	if (!sqlite3_get_autocommit(D.db))
		step(ST_ROLLBACK);
	return rc;
}

static int heal(void);

int tt_db_commit_async(uint64_t batch)
{
	if (!D.engine)
		return tt_db_commit();
	/* the engine takes (copies) the rows: the log starts afresh */
	int rc = D.engine->commit(tt_buf_data(&D.ops), D.ops.len, batch);
	tt_buf_clear(&D.ops);
	return rc;
}

int tt_db_commit(void)
{
	if (D.engine) {
		/* start-up, a clean stop, operator commands: written before going on */
		tt_db_commit_async(0);
		return D.engine->wait(10);
	}
	if (!D.db) {
		tt_buf_clear(&D.ops); /* no database: the rows were encoded for nothing */
		return 0;
	}
	if (D.moved && heal() < 0)
		return -TT_STORAGE;
	if (D.ops.len) {
		char why[160], what[200];
		uint64_t rows;
		double t0 = tt_clock_mono();
		if (write_log(why, sizeof(why), &rows) != SQLITE_OK) {
			snprintf(what, sizeof(what), "cannot commit: %s", why);
			set_failing(why, what);
			return -TT_STORAGE;
		}
		tt_metrics_observe(&tt_metrics.commit_seconds, tt_clock_mono() - t0);
		tt_metrics_observe(&tt_metrics.commit_rows, (double)rows);
		tt_buf_clear(&D.ops);
	}
	set_recovered();
	return 0;
}

/* ---- open and restore ------------------------------------------------- */

static int fail_db(tt_error *err, const char *what)
{
	return tt_fail(err, TT_INTERNAL, "%s: %s", what, D.db ? sqlite3_errmsg(D.db) : "cannot open");
}

static int count_tables(int *out)
{
	char sql[256];
	sqlite3_stmt *s;
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (%s)", TABLES);
	if (sqlite3_prepare_v2(D.db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	*out = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	return *out < 0 ? -1 : 0;
}

/* path between single quotes for a shell command line */
static void shell_quote(char *out, size_t n, const char *path)
{
	size_t o = 0;
	if (n < 3)
		return;
	out[o++] = '\'';
	for (const char *p = path; *p && o + 5 < n; p++) {
		if (*p == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *p;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
}

/* A damaged page (a disk error, a copy taken while the file was written)
 * breaks one table's B-tree: reading it then stops early without an error
 * a loop would notice, and the server would start with part of its states
 * and write over the rest. So the whole file is checked before anything is
 * read (about 0.4 s per 100 MB), and a damaged one is refused with the way
 * to salvage it. Debian 12's sqlite3 has no .recover (no sqlite_dbpage),
 * and its .dump ends a damaged database's dump with a ROLLBACK: hence sed. */
static int check_integrity(int version, tt_error *err)
{
	sqlite3_stmt *s = NULL;
	char first[200] = "";
	int problems = 0, rc = sqlite3_prepare_v2(D.db, "PRAGMA integrity_check(10)", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *line = (const char *)sqlite3_column_text(s, 0);
			if (line && strcmp(line, "ok") == 0)
				continue;
			if (line && strncmp(line, "*** in database ", 16) == 0 && strchr(line, '\n'))
				line = strchr(line, '\n') + 1;
			if (!problems++)
				snprintf(first, sizeof(first), "%s", line ? line : "?");
		}
	}
	if (rc != SQLITE_DONE && !problems) {
		if ((sqlite3_errcode(D.db) & 0xff) != SQLITE_CORRUPT &&
		    (sqlite3_errcode(D.db) & 0xff) != SQLITE_NOTADB) {
			sqlite3_finalize(s);
			return fail_db(err, "cannot check the database");
		}
		snprintf(first, sizeof(first), "%s", sqlite3_errmsg(D.db));
		problems = 1;
	}
	sqlite3_finalize(s);
	if (!problems)
		return 0;
	char q[PATH_MAX + 64], qr[PATH_MAX + 80], rec[PATH_MAX + 16];
	snprintf(rec, sizeof(rec), "%s.recovered", D.path);
	shell_quote(q, sizeof(q), D.path);
	shell_quote(qr, sizeof(qr), rec);
	tt_log_error("database %s is damaged (integrity_check: %s%s). It is not opened: restoring "
		     "the part that can be read and writing over the rest would lose data "
		     "without a word. The file is left as it is.", D.path, first,
		     problems > 1 ? ", and more" : "");
	tt_log_error("to salvage what can be read into a new file (needs the sqlite3 command: "
		     "apt install sqlite3):");
	tt_log_error("  sqlite3 %s .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 %s",
		     q, qr);
	tt_log_error("  sqlite3 %s 'PRAGMA user_version = %d'", qr, version);
	tt_log_error("then start tutti-server with --db %s (clients resume; states lost with the "
		     "damaged pages are gone)", qr);
	return tt_fail(err, TT_INTERNAL, "damaged (%s%s): refusing to start; how to salvage it is "
		       "logged above", first, problems > 1 ? ", and more" : "");
}

static int migrate(tt_error *err)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(D.db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return fail_db(err, "not a tutti database (or corrupt, or locked)");
	int step_rc = sqlite3_step(s);
	int version = step_rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (step_rc == SQLITE_BUSY)
		return tt_fail(err, TT_INTERNAL, "locked: is another tutti-server using it?");
	if (version < 0)
		return fail_db(err, "cannot read the schema version (not a database?)");
	if (version > SCHEMA_VERSION)
		return tt_fail(err, TT_INTERNAL,
			       "schema version %d is newer than this tutti-server knows (%d)",
			       version, SCHEMA_VERSION);
	int n, rc;
	if (version == 0) {
		/* a fresh file must be empty: never write over someone's database */
		if (sqlite3_prepare_v2(D.db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL) != SQLITE_OK)
			return fail_db(err, "not a database (or corrupt)");
		n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
		sqlite3_finalize(s);
		if (n != 0)
			return tt_fail(err, TT_INTERNAL, "this SQLite file is not a tutti database");
	} else if (!D.mem && (rc = check_integrity(version, err)) < 0) {
		return rc;
	} else if (count_tables(&n) < 0 || n != N_TABLES[version - 1]) {
		return tt_fail(err, TT_INTERNAL,
			       "this SQLite file is not a tutti database (tables missing for version %d)",
			       version);
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char sql[64];
		if (sqlite3_exec(D.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(D.db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK)
			goto bad;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(D.db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(D.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto bad;
		if (v > 0)
			tt_log_info("database migrated to schema version %d", v + 1);
		continue;
bad:
		{
			int brc = fail_db(err, "cannot create the tables");
			sqlite3_exec(D.db, "ROLLBACK", NULL, NULL, NULL);
			return brc;
		}
	}
	return 0;
}

static int restore(const tt_db_loader *ld, tt_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc = 0, src = SQLITE_DONE;

	/* A read that stops on an error (a damaged page, an I/O error) fails
	 * the open: a loop on SQLITE_ROW alone would take it for the end of
	 * the table and restore part of it. */
#define QUERY(sql) \
	do { \
		if (src != SQLITE_DONE) \
			goto read_failed; \
		sqlite3_finalize(s); \
		if (sqlite3_prepare_v2(D.db, (sql), -1, &s, NULL) != SQLITE_OK) { \
			rc = fail_db(err, "cannot read"); \
			goto out; \
		} \
	} while (0)
#define ROWS while ((src = sqlite3_step(s)) == SQLITE_ROW)
#define U64(col) ((uint64_t)sqlite3_column_int64(s, (col)))
#define TEXT(col) ((const char *)sqlite3_column_text(s, (col)))
#define BLOB(col) sqlite3_column_blob(s, (col))
#define LEN(col) ((size_t)sqlite3_column_bytes(s, (col)))

	QUERY("SELECT key, value FROM meta");
	ROWS
		if (sqlite3_column_type(s, 1) == SQLITE_TEXT)
			ld->meta_text(TEXT(0), TEXT(1), LEN(1));
		else
			ld->meta(TEXT(0), sqlite3_column_double(s, 1));
	QUERY("SELECT name, description FROM classes ORDER BY rowid");
	ROWS
		if ((rc = ld->klass(TEXT(0), LEN(0), BLOB(1), LEN(1), err)) < 0)
			goto out;
	QUERY("SELECT id, class, owner, seq, time, vals, init FROM states ORDER BY id");
	ROWS {
		bool has_init = sqlite3_column_type(s, 6) != SQLITE_NULL;
		tt_db_state_row row = {U64(0), TEXT(1), LEN(1), U64(2), U64(3),
				       sqlite3_column_double(s, 4), BLOB(5), LEN(5),
				       has_init ? BLOB(6) : NULL, has_init ? LEN(6) : 0};
		if ((rc = ld->state(&row, err)) < 0)
			goto out;
	}
	QUERY("SELECT state, seq, time, origin, changes FROM events ORDER BY state, seq");
	ROWS {
		tt_db_event_row row = {U64(0), U64(1), sqlite3_column_double(s, 2), U64(3), BLOB(4),
				       LEN(4)};
		ld->event(&row);
	}
	QUERY("SELECT id, token, gone_at, role FROM sessions ORDER BY id");
	ROWS
		ld->session(U64(0), TEXT(1), LEN(1), sqlite3_column_type(s, 2) != SQLITE_NULL,
			    sqlite3_column_double(s, 2), TEXT(3), LEN(3));
	QUERY("SELECT id, session, state, filter FROM instances ORDER BY id");
	ROWS
		if ((rc = ld->instance(U64(0), U64(1), U64(2), BLOB(3), LEN(3), err)) < 0)
			goto out;
	/* the newest TT_TOMBSTONES_KEPT (a run trims them a batch at a time) */
	sqlite3_bind_int64(D.st[ST_TOMBSTONE_TRIM], 1, TT_TOMBSTONES_KEPT);
	step(ST_TOMBSTONE_TRIM);
	QUERY("SELECT state, reason FROM tombstones");
	ROWS
		ld->tombstone(U64(0), TEXT(1));
	QUERY("SELECT id, state, at, origin, changes FROM scheduled ORDER BY at, id");
	ROWS {
		tt_db_sched_row row = {U64(0), U64(1), sqlite3_column_double(s, 2), U64(3), BLOB(4),
				       LEN(4)};
		ld->schedule(&row);
	}
	QUERY("SELECT session, class FROM observes");
	ROWS
		ld->observe(U64(0), TEXT(1), LEN(1));
	if (src == SQLITE_DONE)
		goto out;
read_failed:
	rc = tt_fail(err, TT_INTERNAL, "reading failed (%s): %s", sqlite3_sql(s),
		     sqlite3_errmsg(D.db));
out:
#undef QUERY
#undef ROWS
#undef U64
#undef TEXT
#undef BLOB
#undef LEN
	sqlite3_finalize(s);
	return rc;
}

/* Open path on a new connection in the mode tutti keeps: exclusive lock
 * (one server per database), busy timeout. */
static int connect_db(const char *path, sqlite3 **out)
{
	int rc = sqlite3_open_v2(path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(*out, 1000);
		if (sqlite3_db_readonly(*out, "main") == 1)
			rc = SQLITE_READONLY;
	}
	if (rc == SQLITE_OK && strcmp(path, ":memory:") != 0)
		rc = sqlite3_exec(*out, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL);
	return rc;
}

/* After the schema is known good: WAL, the lock taken for good, the
 * durability level, the statements. err says which step failed. */
static int configure_db(sqlite3 *db, sqlite3_stmt **st, bool mem, tt_error *err)
{
	if (!mem) {
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
		    sqlite3_step(s) != SQLITE_ROW ||
		    strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
			sqlite3_finalize(s);
			return tt_fail(err, TT_INTERNAL,
				       "cannot switch to WAL mode (is the directory writable?): %s",
				       sqlite3_errmsg(db));
		}
		sqlite3_finalize(s);
		if (sqlite3_exec(db, "BEGIN EXCLUSIVE; COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return tt_fail(err, TT_INTERNAL, "locked: is another tutti-server using it?");
	}
	if (sqlite3_exec(db, D.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK)
		return tt_fail(err, TT_INTERNAL, "cannot set synchronous: %s", sqlite3_errmsg(db));
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) != SQLITE_OK)
			return tt_fail(err, TT_INTERNAL, "cannot prepare statements: %s",
				       sqlite3_errmsg(db));
	return 0;
}

static void close_db(sqlite3 *db, sqlite3_stmt **st)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(st[i]);
		st[i] = NULL;
	}
	sqlite3_close(db);
}

int tt_db_open(const char *path, bool sync_full, const tt_db_loader *ld, tt_error *err)
{
	int rc;
	bool created = false;
	memset(&D, 0, sizeof(D));
	tt_buf_init(&D.ops, 0);
	if (!path) {
		(void)ld;
		D.opened = true;
		return 0;
	}
	D.mem = strcmp(path, ":memory:") == 0;
	D.sync_full = sync_full;
	D.path = tt_strndup(path, strlen(path));
	if (!D.mem) {
		struct stat sb;
		if (stat(path, &sb) == 0) {
			if (!S_ISREG(sb.st_mode)) {
				rc = tt_fail(err, TT_INTERNAL, "not a regular file");
				goto fail;
			}
			D.mode = sb.st_mode & 0777;
		} else {
			/* states and session tokens are for this user only (SQLite
			 * would create the file 0644 under the usual umask; its -wal
			 * and -shm take the mode of the file) */
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0) {
				rc = tt_fail(err, TT_INTERNAL, "cannot create the file: %s",
					     strerror(errno));
				goto fail;
			}
			close(fd);
			D.mode = 0600;
			created = true;
		}
	}
	if ((rc = connect_db(path, &D.db)) != SQLITE_OK) {
		rc = rc == SQLITE_READONLY ? tt_fail(err, TT_INTERNAL, "not writable")
		     : tt_fail(err, TT_INTERNAL, "cannot open: %s",
			       D.db ? sqlite3_errmsg(D.db) : sqlite3_errstr(rc));
		goto fail;
	}
	if ((rc = migrate(err)) < 0 || (rc = configure_db(D.db, D.st, D.mem, err)) < 0 ||
	    (rc = restore(ld, err)) < 0)
		goto fail;
	D.opened = true;
	return 0;
fail:
	tt_db_close();
	if (created)
		unlink(path);
	return rc;
}

/* ---- the file deleted or replaced while open -------------------------- */

void tt_db_check(void)
{
	if (D.engine) {
		D.engine->tick();
		return;
	}
	int moved = 0;
	if (!D.db || D.mem || D.moved ||
	    sqlite3_file_control(D.db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK || !moved)
		return;
	/* SQLite goes on writing to the unlinked file and says nothing: every
	 * commit from now on would be lost at the next start */
	D.moved = true;
	set_failing("the database file was deleted or moved away",
		    "the file was deleted, renamed or replaced while the server runs (a restart "
		    "would come up without the changes since); writing it back from the open "
		    "database");
}

static int heal_fail(const char *what, const char *why)
{
	char line[sizeof(D.said)];
	snprintf(line, sizeof(line), "the file was deleted, renamed or replaced while the server "
		 "runs; %s: %s", what, why);
	set_failing("the database file was deleted or moved away", line);
	return -1;
}

static void remove_beside(const char *suffix)
{
	char p[PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s%s", D.path, suffix);
	if (unlink(p) == 0)
		tt_log_warn("database %s: removed %s, left by the file that was deleted", D.path, p);
}

static void sync_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int fd = open(dir, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The open connection still holds every committed row (the unlinked file
 * and its WAL): copy it (VACUUM INTO a temporary name beside the path, made
 * with the file's permissions and synced), link the copy into place (link
 * never replaces a file someone put there meanwhile), and continue on it
 * with a new connection. The old file's -wal, if still at the path, would
 * be replayed over the copy: it goes first. */
static int heal(void)
{
	struct stat sb;
	if (stat(D.path, &sb) == 0)
		return heal_fail("another file is at its path now, and the server does not write "
				 "over it", "move that file away to let the server write its own back, "
				 "or stop the server");
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tutti-copy", D.path);
	unlink(tmp); /* from an attempt that failed */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, D.mode ? D.mode : 0600);
	if (fd < 0)
		return heal_fail("cannot create a copy", strerror(errno));
	close(fd);
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(D.db, "VACUUM INTO ?1", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, tmp, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		unlink(tmp);
		return heal_fail("cannot write a copy", sqlite3_errstr(rc));
	}
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return heal_fail("cannot sync the copy", strerror(e));
	}
	close(fd);
	remove_beside("-wal");
	remove_beside("-shm");
	if (link(tmp, D.path) < 0) {
		int e = errno;
		unlink(tmp);
		return heal_fail("cannot put the copy in place", strerror(e));
	}
	unlink(tmp);
	sync_dir(D.path);
	sqlite3 *db = NULL;
	sqlite3_stmt *st[ST_COUNT] = {0};
	tt_error err;
	if ((rc = connect_db(D.path, &db)) != SQLITE_OK || configure_db(db, st, false, &err) < 0) {
		if (rc != SQLITE_OK)
			snprintf(err.msg, sizeof(err.msg), "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		close_db(db, st);
		unlink(D.path); /* ours: the next attempt writes it again */
		return heal_fail("cannot open the copy", err.msg);
	}
	close_db(D.db, D.st);
	D.db = db;
	memcpy(D.st, st, sizeof(st));
	D.moved = false;
	tt_log_warn("database %s: written back from the open database; changes acknowledged "
		    "before are in it", D.path);
	return 0;
}

int tt_db_open_engine(const tt_config *cfg, const tt_db_loader *ld, tt_error *err)
{
	memset(&D, 0, sizeof(D));
	tt_buf_init(&D.ops, 0);
	const tt_engine *e = tt_engine_for(cfg->engine);
	if (!e)
		return tt_fail(err, TT_INTERNAL, "unknown engine (nats://HOST:PORT is the one known)");
	D.path = tt_strndup(cfg->engine, strlen(cfg->engine));
	int rc = e->open(cfg, ld, err);
	if (rc < 0) {
		tt_db_close();
		return rc;
	}
	D.engine = e;
	D.opened = true;
	return 0;
}

void tt_db_close(void)
{
	if (D.engine) {
		D.engine->close();
		D.engine = NULL;
	}
	if (D.db && D.ops.len && D.failing[0])
		tt_log_error("database %s: closing with %zu bytes of rows never written (%s): the "
			     "changes of the turn whose commit failed (never acknowledged) and the "
			     "sessions and attachments made since are lost; every acknowledged change "
			     "is in the file", D.path, D.ops.len, D.failing);
	close_db(D.db, D.st);
	D.db = NULL;
	D.opened = false;
	tt_buf_free(&D.ops);
	TT_FREE(D.path);
}
