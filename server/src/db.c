/* SPDX-License-Identifier: MIT */
/* db.c: SQLite, the store of record. All SQL of tutti is in this file.
 *
 * During a loop turn the store reports changes (events, deletions,
 * sessions, instances...) which are appended to an in-memory op log without
 * touching SQLite; tt_db_commit then writes the log and the dirty states'
 * values in one transaction. Replies of the turn leave only after that
 * commit, so an acknowledged update survives kill -9 (WAL, synchronous
 * NORMAL) or a power loss (--sync full). */
#include "db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "codec.h"
#include "log.h"
#include "store.h"

#define SCHEMA_VERSION 2

/* The sync clock is persisted this far ahead of now (refreshed at half of
 * it, twice a second when idle), so that after a crash it restarts past
 * every time it ever sent (PROTOCOL.md §10); a clean stop stores it exactly. */
#define CLOCK_LEASE 1.0

enum op_kind {
	OP_CLASS_PUT = 1, OP_CLASS_DEL, OP_STATE_DEL, OP_EVENT, OP_SESSION_PUT,
	OP_SESSION_DEL, OP_INSTANCE_PUT, OP_INSTANCE_DEL, OP_OBSERVE_PUT, OP_OBSERVE_DEL,
	OP_SCHED_PUT, OP_SCHED_DEL, OP_SESSION_GONE
};

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_CLASS_PUT, ST_CLASS_DEL, ST_STATE_PUT,
	ST_STATE_DEL, ST_STATE_EVENTS_DEL, ST_STATE_INSTANCES_DEL, ST_EVENT_PUT, ST_EVENT_TRIM,
	ST_SESSION_PUT, ST_SESSION_DEL, ST_SESSION_INSTANCES_DEL, ST_SESSION_OBSERVES_DEL,
	ST_INSTANCE_PUT, ST_INSTANCE_DEL, ST_OBSERVE_PUT, ST_OBSERVE_DEL, ST_META_PUT,
	ST_TOMBSTONE_PUT, ST_SCHED_PUT, ST_SCHED_DEL, ST_STATE_SCHED_DEL, ST_SESSION_GONE, ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CLASS_PUT] = "INSERT OR REPLACE INTO classes(name, description) VALUES (?1, ?2)",
	[ST_CLASS_DEL] = "DELETE FROM classes WHERE name = ?1",
	[ST_STATE_PUT] = "INSERT OR REPLACE INTO states(id, class, owner, seq, time, vals) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_STATE_DEL] = "DELETE FROM states WHERE id = ?1",
	[ST_STATE_EVENTS_DEL] = "DELETE FROM events WHERE state = ?1",
	[ST_STATE_INSTANCES_DEL] = "DELETE FROM instances WHERE state = ?1",
	[ST_EVENT_PUT] = "INSERT OR REPLACE INTO events(state, seq, time, origin, changes) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_EVENT_TRIM] = "DELETE FROM events WHERE state = ?1 AND seq <= ?2",
	[ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(id, token, gone_at) VALUES (?1, ?2, NULL)",
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
};
static const int N_TABLES[SCHEMA_VERSION] = {7, 9};
static const char *const TABLES =
	"'meta','classes','states','events','sessions','instances','observes',"
	"'tombstones','scheduled'";

static struct {
	sqlite3 *db;              /* NULL: persistence off (--db :memory: is still SQLite) */
	sqlite3_stmt *st[ST_COUNT];
	const tt_config *cfg;
	tt_buf ops;               /* op log of the current turn */
	tt_buf scratch;
	uint64_t meta_state, meta_instance, meta_session, meta_sched; /* last written */
	double clock_lease;       /* the sync time persisted as the clock's floor */
	bool opened;              /* fully open and restored: safe to write */
} D;

/* ---- op log ----------------------------------------------------------- */

static void put_u8(unsigned char v) { tt_buf_append(&D.ops, &v, 1); }
static void put_u64(uint64_t v) { tt_buf_append(&D.ops, &v, sizeof(v)); }
static void put_f64(double v) { tt_buf_append(&D.ops, &v, sizeof(v)); }
static void put_bytes(const void *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	tt_buf_append(&D.ops, &len, sizeof(len));
	tt_buf_append(&D.ops, p, n);
}

typedef struct reader {
	const unsigned char *p, *end;
} reader;

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

static const void *get_bytes(reader *r, int *len)
{
	uint32_t n;
	memcpy(&n, r->p, sizeof(n));
	r->p += sizeof(n);
	const void *p = r->p;
	r->p += n;
	*len = (int)n;
	return p;
}

void tt_db_class_defined(const tt_class *cls)
{
	if (!D.db)
		return;
	put_u8(OP_CLASS_PUT);
	put_bytes(cls->name, cls->name_len);
	put_bytes(tt_buf_data(&cls->desc), cls->desc.len);
}

void tt_db_class_deleted(const tt_class *cls)
{
	if (!D.db)
		return;
	put_u8(OP_CLASS_DEL);
	put_bytes(cls->name, cls->name_len);
}

void tt_db_state_deleted(const tt_state *st, const char *reason)
{
	if (!D.db)
		return;
	put_u8(OP_STATE_DEL);
	put_u64(st->id);
	put_bytes(reason, strlen(reason));
}

void tt_db_event(const tt_state *st, const tt_event *e)
{
	if (!D.db)
		return;
	put_u8(OP_EVENT);
	put_u64(st->id);
	put_u64(e->seq);
	put_f64(e->time);
	put_u64(e->origin);
	put_bytes(tt_buf_data(&e->changes), e->changes.len);
}

void tt_db_session_started(const tt_session *s)
{
	if (!D.db)
		return;
	put_u8(OP_SESSION_PUT);
	put_u64(s->id);
	put_bytes(s->token, 32);
}

void tt_db_session_gone(const tt_session *s)
{
	if (!D.db)
		return;
	put_u8(OP_SESSION_GONE);
	put_u64(s->id);
	put_f64(s->gone_at);
}

void tt_db_session_ended(const tt_session *s)
{
	if (!D.db)
		return;
	put_u8(OP_SESSION_DEL);
	put_u64(s->id);
}

void tt_db_instance_put(const tt_instance *in)
{
	if (!D.db)
		return;
	put_u8(OP_INSTANCE_PUT);
	put_u64(in->id);
	put_u64(in->session->id);
	put_u64(in->state->id);
	tt_buf_clear(&D.scratch);
	if (in->filtered) {
		const tt_class *cls = in->state->ce->cls;
		uint32_t n = 0;
		for (uint32_t i = 0; i < cls->n_params; i++)
			n += tt_mask_has(&in->mask, i);
		tt_enc_array(&D.scratch, n);
		for (uint32_t i = 0; i < cls->n_params; i++)
			if (tt_mask_has(&in->mask, i))
				tt_enc_strn(&D.scratch, cls->params[i].name, cls->params[i].name_len);
	}
	put_bytes(tt_buf_data(&D.scratch), D.scratch.len);
}

void tt_db_instance_del(const tt_instance *in)
{
	if (!D.db)
		return;
	put_u8(OP_INSTANCE_DEL);
	put_u64(in->id);
}

void tt_db_schedule(uint64_t id, uint64_t state, double at, uint64_t origin, const void *changes,
		    size_t len, bool put)
{
	if (!D.db)
		return;
	put_u8(put ? OP_SCHED_PUT : OP_SCHED_DEL);
	put_u64(id);
	if (!put)
		return;
	put_u64(state);
	put_f64(at);
	put_u64(origin);
	put_bytes(changes, len);
}

void tt_db_observe(const tt_session *s, const tt_class *cls, bool on)
{
	if (!D.db)
		return;
	put_u8(on ? OP_OBSERVE_PUT : OP_OBSERVE_DEL);
	put_u64(s->id);
	put_u8(cls != NULL);
	if (cls)
		put_bytes(cls->name, cls->name_len);
}

/* ---- commit ----------------------------------------------------------- */

static int step(enum stmt_id id)
{
	sqlite3_stmt *s = D.st[id];
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		tt_log_error("database: %s: %s", stmt_sql[id], sqlite3_errmsg(D.db));
		return -1;
	}
	return 0;
}

static int exec_op(reader *r)
{
	int n;
	const void *p;
	unsigned char kind = *r->p++;
	switch (kind) {
	case OP_CLASS_PUT:
		p = get_bytes(r, &n);
		sqlite3_bind_text(D.st[ST_CLASS_PUT], 1, p, n, SQLITE_STATIC);
		p = get_bytes(r, &n);
		sqlite3_bind_blob(D.st[ST_CLASS_PUT], 2, p, n, SQLITE_STATIC);
		return step(ST_CLASS_PUT);
	case OP_CLASS_DEL:
		p = get_bytes(r, &n);
		sqlite3_bind_text(D.st[ST_CLASS_DEL], 1, p, n, SQLITE_STATIC);
		return step(ST_CLASS_DEL);
	case OP_STATE_DEL: {
		sqlite3_int64 id = (sqlite3_int64)get_u64(r);
		sqlite3_bind_int64(D.st[ST_STATE_DEL], 1, id);
		sqlite3_bind_int64(D.st[ST_STATE_EVENTS_DEL], 1, id);
		sqlite3_bind_int64(D.st[ST_STATE_INSTANCES_DEL], 1, id);
		sqlite3_bind_int64(D.st[ST_TOMBSTONE_PUT], 1, id);
		sqlite3_bind_int64(D.st[ST_STATE_SCHED_DEL], 1, id);
		p = get_bytes(r, &n);
		sqlite3_bind_text(D.st[ST_TOMBSTONE_PUT], 2, p, n, SQLITE_STATIC);
		return step(ST_STATE_DEL) || step(ST_STATE_EVENTS_DEL) ||
		       step(ST_STATE_INSTANCES_DEL) || step(ST_TOMBSTONE_PUT) ||
		       step(ST_STATE_SCHED_DEL) ? -1 : 0;
	}
	case OP_EVENT: {
		sqlite3_stmt *s = D.st[ST_EVENT_PUT];
		sqlite3_bind_int64(s, 1, (sqlite3_int64)get_u64(r));
		sqlite3_bind_int64(s, 2, (sqlite3_int64)get_u64(r));
		sqlite3_bind_double(s, 3, get_f64(r));
		sqlite3_bind_int64(s, 4, (sqlite3_int64)get_u64(r));
		p = get_bytes(r, &n);
		sqlite3_bind_blob(s, 5, p, n, SQLITE_STATIC);
		return step(ST_EVENT_PUT);
	}
	case OP_SESSION_PUT:
		sqlite3_bind_int64(D.st[ST_SESSION_PUT], 1, (sqlite3_int64)get_u64(r));
		p = get_bytes(r, &n);
		sqlite3_bind_text(D.st[ST_SESSION_PUT], 2, p, n, SQLITE_STATIC);
		return step(ST_SESSION_PUT);
	case OP_SESSION_DEL: {
		sqlite3_int64 id = (sqlite3_int64)get_u64(r);
		sqlite3_bind_int64(D.st[ST_SESSION_DEL], 1, id);
		sqlite3_bind_int64(D.st[ST_SESSION_INSTANCES_DEL], 1, id);
		sqlite3_bind_int64(D.st[ST_SESSION_OBSERVES_DEL], 1, id);
		return step(ST_SESSION_DEL) || step(ST_SESSION_INSTANCES_DEL) ||
		       step(ST_SESSION_OBSERVES_DEL) ? -1 : 0;
	}
	case OP_INSTANCE_PUT: {
		sqlite3_stmt *s = D.st[ST_INSTANCE_PUT];
		sqlite3_bind_int64(s, 1, (sqlite3_int64)get_u64(r));
		sqlite3_bind_int64(s, 2, (sqlite3_int64)get_u64(r));
		sqlite3_bind_int64(s, 3, (sqlite3_int64)get_u64(r));
		p = get_bytes(r, &n);
		if (n)
			sqlite3_bind_blob(s, 4, p, n, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 4);
		return step(ST_INSTANCE_PUT);
	}
	case OP_INSTANCE_DEL:
		sqlite3_bind_int64(D.st[ST_INSTANCE_DEL], 1, (sqlite3_int64)get_u64(r));
		return step(ST_INSTANCE_DEL);
	case OP_OBSERVE_PUT:
	case OP_OBSERVE_DEL: {
		enum stmt_id id = kind == OP_OBSERVE_PUT ? ST_OBSERVE_PUT : ST_OBSERVE_DEL;
		sqlite3_bind_int64(D.st[id], 1, (sqlite3_int64)get_u64(r));
		if (*r->p++) {
			p = get_bytes(r, &n);
			sqlite3_bind_text(D.st[id], 2, p, n, SQLITE_STATIC);
		} else {
			sqlite3_bind_null(D.st[id], 2);
		}
		return step(id);
	}
	case OP_SCHED_PUT: {
		sqlite3_stmt *s = D.st[ST_SCHED_PUT];
		sqlite3_bind_int64(s, 1, (sqlite3_int64)get_u64(r));
		sqlite3_bind_int64(s, 2, (sqlite3_int64)get_u64(r));
		sqlite3_bind_double(s, 3, get_f64(r));
		sqlite3_bind_int64(s, 4, (sqlite3_int64)get_u64(r));
		p = get_bytes(r, &n);
		sqlite3_bind_blob(s, 5, p, n, SQLITE_STATIC);
		return step(ST_SCHED_PUT);
	}
	case OP_SESSION_GONE:
		sqlite3_bind_int64(D.st[ST_SESSION_GONE], 1, (sqlite3_int64)get_u64(r));
		sqlite3_bind_double(D.st[ST_SESSION_GONE], 2, get_f64(r));
		return step(ST_SESSION_GONE);
	case OP_SCHED_DEL:
		sqlite3_bind_int64(D.st[ST_SCHED_DEL], 1, (sqlite3_int64)get_u64(r));
		return step(ST_SCHED_DEL);
	default:
		tt_assert_fail("unknown op in the op log", __FILE__, __LINE__);
	}
}

static int meta_put(const char *key, double v)
{
	sqlite3_bind_text(D.st[ST_META_PUT], 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(D.st[ST_META_PUT], 2, v);
	return step(ST_META_PUT);
}

int tt_db_commit(tt_state *dirty)
{
	double now = tt_clock_now();
	bool lease_due = now + CLOCK_LEASE / 2 > D.clock_lease;
	if (!D.db || (!dirty && !D.ops.len && !lease_due))
		return 0;
	if (step(ST_BEGIN))
		goto fail;
	reader r = {tt_buf_data(&D.ops), tt_buf_data(&D.ops) + D.ops.len};
	while (r.p < r.end)
		if (exec_op(&r))
			goto rollback;
	for (tt_state *st = dirty; st; st = st->dirty_next) {
		sqlite3_stmt *s = D.st[ST_STATE_PUT];
		tt_buf_clear(&D.scratch);
		tt_store_encode_values(&D.scratch, st);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)st->id);
		sqlite3_bind_text(s, 2, st->ce->cls->name, (int)st->ce->cls->name_len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)st->owner);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)st->seq);
		sqlite3_bind_double(s, 5, st->time);
		sqlite3_bind_blob(s, 6, tt_buf_data(&D.scratch), (int)D.scratch.len, SQLITE_STATIC);
		if (step(ST_STATE_PUT))
			goto rollback;
		/* trim the history in steps of 64 events, not on every update */
		uint32_t keep = D.cfg->history;
		if (st->seq > keep && st->seq - keep >= st->db_trimmed + 64) {
			sqlite3_bind_int64(D.st[ST_EVENT_TRIM], 1, (sqlite3_int64)st->id);
			sqlite3_bind_int64(D.st[ST_EVENT_TRIM], 2, (sqlite3_int64)(st->seq - keep));
			if (step(ST_EVENT_TRIM))
				goto rollback;
			st->db_trimmed = st->seq - keep;
		}
	}
	uint64_t ns, ni;
	tt_store_next_ids(&ns, &ni);
	if ((ns != D.meta_state && meta_put("next_state", (double)ns)) ||
	    (ni != D.meta_instance && meta_put("next_instance", (double)ni)) ||
	    (tt_session_next_id != D.meta_session && meta_put("next_session", (double)tt_session_next_id)) ||
	    (tt_store_next_sched_id() != D.meta_sched && meta_put("next_sched", (double)tt_store_next_sched_id())) ||
	    (lease_due && meta_put("clock", now + CLOCK_LEASE)))
		goto rollback;
	if (step(ST_COMMIT))
		goto rollback;
	D.meta_state = ns;
	D.meta_instance = ni;
	D.meta_session = tt_session_next_id;
	D.meta_sched = tt_store_next_sched_id();
	if (lease_due)
		D.clock_lease = now + CLOCK_LEASE;
	tt_buf_clear(&D.ops);
	return 0;
rollback:
	step(ST_ROLLBACK);
fail:
	tt_buf_clear(&D.ops);
	return -TT_INTERNAL;
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
	int n;
	if (version == 0) {
		/* a fresh file must be empty: never write over someone's database */
		if (sqlite3_prepare_v2(D.db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL) != SQLITE_OK)
			return fail_db(err, "not a database (or corrupt)");
		n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
		sqlite3_finalize(s);
		if (n != 0)
			return tt_fail(err, TT_INTERNAL, "this SQLite file is not a tutti database");
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
			int rc = fail_db(err, "cannot create the tables");
			sqlite3_exec(D.db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

static int restore(tt_error *err)
{
	sqlite3_stmt *s = NULL;
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_decoder *dec = tt_decoder_new();
	int rc = 0;
	double clock = 0;
	uint64_t next_state = 1, next_instance = 1;

#define QUERY(sql) \
	do { \
		sqlite3_finalize(s); \
		if (sqlite3_prepare_v2(D.db, (sql), -1, &s, NULL) != SQLITE_OK) { \
			rc = fail_db(err, "cannot read"); \
			goto out; \
		} \
	} while (0)
#define DECODE(col, dst) \
	do { \
		size_t off_ = 0; \
		tt_arena_reset(&a); \
		if (tt_decode(dec, sqlite3_column_blob(s, (col)), (size_t)sqlite3_column_bytes(s, (col)), \
			      &off_, &a, (dst), err) < 0) { \
			rc = tt_fail(err, TT_INTERNAL, "corrupt row in the database"); \
			goto out; \
		} \
	} while (0)

	QUERY("SELECT key, value FROM meta");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		double v = sqlite3_column_double(s, 1);
		if (!strcmp(k, "clock")) clock = v;
		else if (!strcmp(k, "next_state")) next_state = (uint64_t)v;
		else if (!strcmp(k, "next_instance")) next_instance = (uint64_t)v;
		else if (!strcmp(k, "next_sched")) tt_store_set_next_sched_id((uint64_t)v);
		else if (!strcmp(k, "next_session") && (uint64_t)v > tt_session_next_id)
			tt_session_next_id = (uint64_t)v;
	}
	/* the clock continues past every time it sent, never backwards */
	tt_clock_start(clock);
	D.clock_lease = clock;
	tt_store_set_next_ids(next_state, next_instance);

	QUERY("SELECT name, description FROM classes ORDER BY rowid");
	while (sqlite3_step(s) == SQLITE_ROW) {
		tt_value desc;
		bool created;
		DECODE(1, &desc);
		const char *name = (const char *)sqlite3_column_text(s, 0);
		if ((rc = tt_store_define(name, (size_t)sqlite3_column_bytes(s, 0), &desc, &created, err)) < 0)
			goto out;
	}
	QUERY("SELECT id, class, owner, seq, time, vals FROM states ORDER BY id");
	while (sqlite3_step(s) == SQLITE_ROW) {
		tt_value vals;
		DECODE(5, &vals);
		if ((rc = tt_store_restore_state((uint64_t)sqlite3_column_int64(s, 0),
						 (const char *)sqlite3_column_text(s, 1),
						 (size_t)sqlite3_column_bytes(s, 1),
						 (uint64_t)sqlite3_column_int64(s, 2),
						 (uint64_t)sqlite3_column_int64(s, 3),
						 sqlite3_column_double(s, 4), &vals, err)) < 0)
			goto out;
	}
	QUERY("SELECT state, seq, time, origin, changes FROM events ORDER BY state, seq");
	while (sqlite3_step(s) == SQLITE_ROW)
		tt_store_restore_event((uint64_t)sqlite3_column_int64(s, 0),
				       (uint64_t)sqlite3_column_int64(s, 1), sqlite3_column_double(s, 2),
				       (uint64_t)sqlite3_column_int64(s, 3), sqlite3_column_blob(s, 4),
				       (size_t)sqlite3_column_bytes(s, 4));
	QUERY("SELECT id, token, gone_at FROM sessions ORDER BY id");
	while (sqlite3_step(s) == SQLITE_ROW)
		if (sqlite3_column_bytes(s, 1) == 32)
			/* connected when the server stopped: gone since the restart */
			tt_session_restore((uint64_t)sqlite3_column_int64(s, 0),
					   (const char *)sqlite3_column_text(s, 1),
					   sqlite3_column_type(s, 2) == SQLITE_NULL
						   ? tt_clock_now() : sqlite3_column_double(s, 2));
	QUERY("SELECT id, session, state, filter FROM instances ORDER BY id");
	while (sqlite3_step(s) == SQLITE_ROW) {
		tt_value filter = tt_nil();
		if (sqlite3_column_type(s, 3) == SQLITE_BLOB)
			DECODE(3, &filter);
		tt_store_restore_instance((uint64_t)sqlite3_column_int64(s, 0),
					  (uint64_t)sqlite3_column_int64(s, 1),
					  (uint64_t)sqlite3_column_int64(s, 2), &filter);
	}
	/* keep the last 100000 tombstones: enough for any resume window */
	sqlite3_exec(D.db, "DELETE FROM tombstones WHERE state < (SELECT state FROM tombstones "
			   "ORDER BY state DESC LIMIT 1 OFFSET 100000)", NULL, NULL, NULL);
	QUERY("SELECT state, reason FROM tombstones");
	while (sqlite3_step(s) == SQLITE_ROW)
		tt_store_restore_tombstone((uint64_t)sqlite3_column_int64(s, 0),
					   (const char *)sqlite3_column_text(s, 1));
	QUERY("SELECT id, state, at, origin, changes FROM scheduled ORDER BY at, id");
	while (sqlite3_step(s) == SQLITE_ROW)
		tt_store_restore_schedule((uint64_t)sqlite3_column_int64(s, 0),
					  (uint64_t)sqlite3_column_int64(s, 1), sqlite3_column_double(s, 2),
					  (uint64_t)sqlite3_column_int64(s, 3), sqlite3_column_blob(s, 4),
					  (size_t)sqlite3_column_bytes(s, 4));
	QUERY("SELECT session, class FROM observes");
	while (sqlite3_step(s) == SQLITE_ROW)
		tt_store_restore_observe((uint64_t)sqlite3_column_int64(s, 0),
					 (const char *)sqlite3_column_text(s, 1),
					 (size_t)sqlite3_column_bytes(s, 1));
	tt_store_restore_done();
out:
#undef QUERY
#undef DECODE
	sqlite3_finalize(s);
	tt_decoder_free(dec);
	tt_arena_destroy(&a);
	tt_buf_clear(&D.ops); /* restoring wrote nothing new */
	return rc;
}

int tt_db_open(const tt_config *cfg, tt_error *err)
{
	int rc;
	memset(&D, 0, sizeof(D));
	D.cfg = cfg;
	tt_buf_init(&D.ops, 0);
	tt_buf_init(&D.scratch, 0);
	bool mem = strcmp(cfg->db, ":memory:") == 0;
	if (!mem) {
		struct stat sb;
		if (stat(cfg->db, &sb) == 0 && !S_ISREG(sb.st_mode))
			return tt_fail(err, TT_INTERNAL, "not a regular file");
	}
	if (sqlite3_open_v2(cfg->db, &D.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		rc = fail_db(err, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(D.db, 1000);
	if (sqlite3_db_readonly(D.db, "main") == 1) {
		rc = tt_fail(err, TT_INTERNAL, "not writable");
		goto fail;
	}
	/* one server per database: the lock is taken below and held for good */
	if (!mem && sqlite3_exec(D.db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = fail_db(err, "cannot set the locking mode");
		goto fail;
	}
	if ((rc = migrate(err)) < 0)
		goto fail;
	if (!mem) {
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(D.db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
		    sqlite3_step(s) != SQLITE_ROW ||
		    strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
			sqlite3_finalize(s);
			rc = fail_db(err, "cannot switch to WAL mode (is the directory writable?)");
			goto fail;
		}
		sqlite3_finalize(s);
		if (sqlite3_exec(D.db, "BEGIN EXCLUSIVE; COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			rc = tt_fail(err, TT_INTERNAL, "locked: is another tutti-server using it?");
			goto fail;
		}
	}
	if (sqlite3_exec(D.db, cfg->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = fail_db(err, "cannot set synchronous");
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(D.db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &D.st[i], NULL) != SQLITE_OK) {
			rc = fail_db(err, "cannot prepare statements");
			goto fail;
		}
	}
	if ((rc = restore(err)) < 0)
		goto fail;
	tt_store_next_ids(&D.meta_state, &D.meta_instance);
	D.meta_session = tt_session_next_id;
	D.meta_sched = tt_store_next_sched_id();
	D.opened = true;
	return 0;
fail:
	tt_db_close();
	return rc;
}

void tt_db_save_clock(void)
{
	/* a clean stop: the clock resumes exactly where it stopped */
	if (D.opened && step(ST_BEGIN) == 0) {
		if (meta_put("clock", tt_clock_now()) == 0)
			step(ST_COMMIT);
		else
			step(ST_ROLLBACK);
	}
}

void tt_db_close(void)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(D.st[i]);
		D.st[i] = NULL;
	}
	if (D.db)
		sqlite3_close(D.db);
	D.db = NULL;
	D.opened = false;
	tt_buf_free(&D.ops);
	tt_buf_free(&D.scratch);
}
