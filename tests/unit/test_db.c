/* SPDX-License-Identifier: MIT */
/* test_db.c: unit tests of the persistence layer (server/src/db.c) on a
 * real SQLite file: rows put during a turn come back through the loader
 * after a commit and a reopen, deletions cascade as documented, nothing
 * is written before the commit, rows put while restoring are dropped, a
 * loader error stops the open, and a file that is not a tutti database is
 * refused and left as it was. Storage faults for real: a commit past a
 * file size limit (RLIMIT_FSIZE) fails and keeps its rows until a retry
 * works, a file deleted while open is written back, a damaged page is
 * refused at open, and a new file is created 0600. */
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "tt_test.h"

static char g_dir[64], g_path[96];

/* What the loader saw, one line per row. */
static char g_seen[8192];
static int g_fail_class; /* the klass callback fails */
static int g_put_while_loading;

static void seen(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void seen(const char *fmt, ...)
{
	size_t n = strlen(g_seen);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_seen + n, sizeof(g_seen) - n, fmt, ap);
	va_end(ap);
	n = strlen(g_seen);
	if (n + 1 < sizeof(g_seen))
		strcat(g_seen, "\n");
}

static void ld_meta(const char *key, double v)
{
	seen("meta %s %g", key, v);
	if (g_put_while_loading)
		tt_db_put_meta("written_while_loading", 1);
}

static int ld_class(const char *name, size_t len, const void *desc, size_t dlen, tt_error *err)
{
	if (g_fail_class)
		return tt_fail(err, TT_BAD_DESCRIPTION, "class %.*s refused", (int)len, name);
	seen("class %.*s %.*s", (int)len, name, (int)dlen, (const char *)desc);
	return 0;
}

static int ld_state(const tt_db_state_row *r, tt_error *err)
{
	(void)err;
	seen("state %llu %.*s owner=%llu seq=%llu time=%g vals=%.*s init=%.*s", (unsigned long long)r->id,
	     (int)r->cls_len, r->cls, (unsigned long long)r->owner, (unsigned long long)r->seq,
	     r->time, (int)(r->vals_len < 16 ? r->vals_len : 16), (const char *)r->vals,
	     r->init ? (int)r->init_len : 6, r->init ? (const char *)r->init : "(null)");
	return 0;
}

static void ld_event(const tt_db_event_row *r)
{
	seen("event %llu seq=%llu origin=%llu %.*s", (unsigned long long)r->state,
	     (unsigned long long)r->seq, (unsigned long long)r->origin, (int)r->len,
	     (const char *)r->changes);
}

static void ld_session(uint64_t id, const char *token, size_t len, bool gone, double gone_at,
		       const char *role, size_t role_len)
{
	seen("session %llu %.*s gone=%d at=%g role=%.*s", (unsigned long long)id, (int)len, token,
	     gone, gone ? gone_at : 0, role ? (int)role_len : 4, role ? role : "NULL");
}

static int ld_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
		       size_t len, tt_error *err)
{
	(void)err;
	seen("instance %llu session=%llu state=%llu filter=%.*s", (unsigned long long)id,
	     (unsigned long long)session, (unsigned long long)state, (int)len,
	     len ? (const char *)filter : "");
	return 0;
}

static void ld_tombstone(uint64_t state, const char *reason)
{
	seen("tombstone %llu %s", (unsigned long long)state, reason);
}

static void ld_schedule(const tt_db_sched_row *r)
{
	seen("schedule %llu state=%llu at=%g", (unsigned long long)r->id,
	     (unsigned long long)r->state, r->at);
}

static void ld_observe(uint64_t session, const char *cls, size_t len)
{
	seen("observe %llu %.*s", (unsigned long long)session, cls ? (int)len : 1, cls ? cls : "*");
}

static void ld_meta_text(const char *key, const char *v, size_t len)
{
	seen("meta %s %.*s", key, (int)len, v);
}

static const tt_db_loader loader = {
	.meta = ld_meta, .meta_text = ld_meta_text, .klass = ld_class, .state = ld_state,
	.event = ld_event, .session = ld_session, .instance = ld_instance,
	.tombstone = ld_tombstone, .schedule = ld_schedule, .observe = ld_observe};

static void reopen(void)
{
	tt_db_close();
	g_seen[0] = '\0';
	tt_error err;
	if (tt_db_open(g_path, false, &loader, &err) < 0)
		fail_msg("reopen: %s", err.msg);
}

static int setup(void **state)
{
	(void)state;
	tt_log_level = TT_LOG_ERROR;
	snprintf(g_dir, sizeof(g_dir), "/tmp/tt_test_db.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(g_path, sizeof(g_path), "%s/t.db", g_dir);
	g_fail_class = g_put_while_loading = 0;
	reopen();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tt_db_close();
	char p[128];
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", g_path, sfx[i]);
		unlink(p);
	}
	rmdir(g_dir);
	return 0;
}

static void put_world(void)
{
	tt_db_put_meta("next_state", 3);
	tt_db_put_meta_text("role_token:conductor", "abc");
	tt_db_put_class("k", 1, "DESC", 4);
	tt_db_state_row s1 = {1, "k", 1, 7, 2, 1.5, "V1", 2, "I1", 2};
	tt_db_state_row s2 = {2, "k", 1, 0, 0, 2.5, "V2", 2, NULL, 0};
	tt_db_put_state(&s1);
	tt_db_put_state(&s2);
	for (uint64_t seq = 1; seq <= 3; seq++) {
		tt_db_event_row e = {1, seq, 1.0 * (double)seq, 7, "CH", 2};
		tt_db_put_event(&e);
	}
	tt_db_event_row e2 = {2, 1, 9, 0, "C2", 2};
	tt_db_put_event(&e2);
	tt_db_put_session(7, "0123456789abcdef0123456789abcdef", 32, "audience");
	tt_db_put_session(8, "fedcba9876543210fedcba9876543210", 32, "conductor");
	tt_db_session_gone(8, 42.5);
	tt_db_put_instance(10, 7, 1, NULL, 0);
	tt_db_put_instance(11, 8, 1, "F", 1);
	tt_db_put_instance(12, 8, 2, NULL, 0);
	tt_db_put_observe(7, "k", 1, true);
	tt_db_put_observe(8, NULL, 0, true);
	tt_db_sched_row sc = {5, 1, 99, 7, "S", 1};
	tt_db_sched_row sc2 = {6, 2, 98, 0, "S", 1};
	tt_db_put_schedule(&sc);
	tt_db_put_schedule(&sc2);
}

static void test_round_trip(void **state)
{
	(void)state;
	put_world();
	/* nothing reaches the file before the commit */
	reopen();
	assert_string_equal(g_seen, "");
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_string_equal(g_seen,
		"meta next_state 3\n"
		"meta role_token:conductor abc\n"
		"class k DESC\n"
		"state 1 k owner=7 seq=2 time=1.5 vals=V1 init=I1\n"
		"state 2 k owner=0 seq=0 time=2.5 vals=V2 init=(null)\n"
		"event 1 seq=1 origin=7 CH\n"
		"event 1 seq=2 origin=7 CH\n"
		"event 1 seq=3 origin=7 CH\n"
		"event 2 seq=1 origin=0 C2\n"
		"session 7 0123456789abcdef0123456789abcdef gone=0 at=0 role=audience\n"
		"session 8 fedcba9876543210fedcba9876543210 gone=1 at=42.5 role=conductor\n"
		"instance 10 session=7 state=1 filter=\n"
		"instance 11 session=8 state=1 filter=F\n"
		"instance 12 session=8 state=2 filter=\n"
		"schedule 6 state=2 at=98\n"
		"schedule 5 state=1 at=99\n"
		"observe 7 k\n"
		"observe 8 *\n");
}

static void test_deletes_cascade(void **state)
{
	(void)state;
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	/* a state takes its events, instances and schedules, leaves a
	 * tombstone; a session takes its instances and observes */
	tt_db_del_state(1, "owner left");
	tt_db_del_session(8, false);
	tt_db_trim_events(2, 1);
	tt_db_put_observe(7, "k", 1, false);
	tt_db_del_class("k", 1);
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_string_equal(g_seen,
		"meta next_state 3\n"
		"meta role_token:conductor abc\n"
		"state 2 k owner=0 seq=0 time=2.5 vals=V2 init=(null)\n"
		"session 7 0123456789abcdef0123456789abcdef gone=0 at=0 role=audience\n"
		"tombstone 1 owner left\n"
		"schedule 6 state=2 at=98\n");
	/* single deletes */
	tt_db_del_schedule(6);
	tt_db_put_instance(13, 7, 2, NULL, 0);
	tt_db_del_instance(13);
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_null(strstr(g_seen, "schedule"));
	assert_null(strstr(g_seen, "instance"));
}

static long count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = -1;
	assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_tombstones_bounded(void **state)
{
	(void)state;
	/* deleting state after state (an installation's visitors come and
	 * go): the table keeps about TT_TOMBSTONES_KEPT, the newest, while
	 * running and after a restart */
	uint64_t n = TT_TOMBSTONES_KEPT + 2500;
	for (uint64_t id = 1; id <= n; id++) {
		tt_db_del_state(id, "owner left");
		if (id % 20000 == 0)
			assert_int_equal(tt_db_commit(), 0);
	}
	assert_int_equal(tt_db_commit(), 0);
	tt_db_close(); /* the server holds the file exclusively while open */
	long rows = count_rows("SELECT count(*) FROM tombstones");
	assert_true(rows >= (long)TT_TOMBSTONES_KEPT && rows < (long)TT_TOMBSTONES_KEPT + 1000);
	assert_int_equal(count_rows("SELECT min(state) FROM tombstones"), (long)(n - (uint64_t)rows + 1));
	reopen();
	tt_db_close();
	assert_int_equal(count_rows("SELECT count(*) FROM tombstones"), (long)TT_TOMBSTONES_KEPT);
	assert_int_equal(count_rows("SELECT max(state) FROM tombstones"), (long)n);
	reopen();
}

static void test_loader_rules(void **state)
{
	(void)state;
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	/* rows put by the loader are what it just read: dropped */
	g_put_while_loading = 1;
	reopen();
	g_put_while_loading = 0;
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_null(strstr(g_seen, "written_while_loading"));
	/* a loader error stops the open with its code, and nothing stays open */
	tt_db_close();
	g_fail_class = 1;
	tt_error err;
	assert_int_equal(tt_db_open(g_path, false, &loader, &err), -TT_BAD_DESCRIPTION);
	assert_substr(err.msg, "class k refused");
	tt_db_put_meta("after_failure", 1); /* ignored: not open */
	assert_int_equal(tt_db_commit(), 0);
	g_fail_class = 0;
	reopen();
	assert_null(strstr(g_seen, "after_failure"));
}

static void test_foreign_files(void **state)
{
	(void)state;
	tt_db_close();
	/* not a database at all */
	FILE *f = fopen(g_path, "w");
	fputs("just some text, certainly not SQLite\n", f);
	fclose(f);
	tt_error err;
	assert_true(tt_db_open(g_path, false, &loader, &err) < 0);
	f = fopen(g_path, "r");
	char buf[64] = "";
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "just some text, certainly not SQLite\n");
	unlink(g_path);
	/* an SQLite file of someone else's */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES (1)",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(tt_db_open(g_path, false, &loader, &err), -TT_INTERNAL);
	assert_substr(err.msg, "not a tutti database");
	assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 1);
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* a directory */
	assert_int_equal(tt_db_open(g_dir, false, &loader, &err), -TT_INTERNAL);
	assert_substr(err.msg, "not a regular file");
	/* :memory: works and keeps nothing */
	assert_int_equal(tt_db_open(":memory:", false, &loader, &err), 0);
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	tt_db_close();
	unlink(g_path);
	reopen();
	assert_string_equal(g_seen, "");
}

static mode_t mode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		fail_msg("stat %s", path);
	return sb.st_mode & 0777;
}

static void test_new_file_is_private(void **state)
{
	(void)state;
	/* setup created the file: only its owner may read states and tokens,
	 * whatever the umask; the WAL takes the same mode */
	assert_int_equal(mode_of(g_path), 0600);
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	char wal[128];
	snprintf(wal, sizeof(wal), "%s-wal", g_path);
	assert_int_equal(mode_of(wal), 0600);
	/* an existing file keeps the mode its owner gave it */
	tt_db_close();
	assert_int_equal(chmod(g_path, 0640), 0);
	reopen();
	assert_int_equal(mode_of(g_path), 0640);
}

/* A file size limit makes the next write past it fail with EFBIG, as a
 * full disk makes it fail with ENOSPC: the same path through SQLite. */
static void limit_file_size(rlim_t n)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = n;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void test_failed_commit_keeps_rows(void **state)
{
	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	assert_null(tt_db_failing());
	static char big[256 * 1024];
	memset(big, 'b', sizeof(big));
	tt_db_state_row r = {3, "k", 1, 0, 1, 3.5, big, sizeof(big), NULL, 0};
	tt_db_put_state(&r);
	limit_file_size(64 * 1024);
	assert_int_equal(tt_db_commit(), -TT_STORAGE);
	assert_non_null(tt_db_failing());
	assert_false(tt_db_backlog_full()); /* 256 KiB waiting: within the budget */
	/* rows keep coming while it fails; a retry still fails */
	tt_db_put_session(9, "99999999999999999999999999999999", 32, "audience");
	assert_int_equal(tt_db_commit(), -TT_STORAGE);
	/* room again: one commit writes everything kept, in order */
	limit_file_size(RLIM_INFINITY);
	tt_db_del_state(2, "deleted");
	assert_int_equal(tt_db_commit(), 0);
	assert_null(tt_db_failing());
	reopen();
	assert_non_null(strstr(g_seen, "state 3 k owner=0 seq=1 time=3.5 vals=bbbb"));
	assert_non_null(strstr(g_seen, "session 9 9999"));
	assert_non_null(strstr(g_seen, "tombstone 2 deleted"));
	assert_null(strstr(g_seen, "state 2 "));
	assert_non_null(strstr(g_seen, "state 1 k owner=7"));
}

/* While writes fail, the rows waiting in memory have a budget: past it,
 * tt_db_backlog_full tells the handler to refuse what would add more. */
static void test_backlog_budget(void **state)
{
	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	static char big[256 * 1024];
	memset(big, 'q', sizeof(big));
	tt_db_state_row r = {4, "k", 1, 0, 1, 1.0, big, sizeof(big), NULL, 0};
	tt_db_put_state(&r);
	assert_false(tt_db_backlog_full()); /* not failing: no budget applies */
	limit_file_size(64 * 1024);
	assert_int_equal(tt_db_commit(), -TT_STORAGE);
	int n = 1;
	while (!tt_db_backlog_full() && n < 200) {
		tt_db_put_state(&r);
		n++;
	}
	assert_true(tt_db_backlog_full());
	assert_in_range(n, 60, 70); /* 16 MiB of 256 KiB rows */
	limit_file_size(RLIM_INFINITY);
	assert_int_equal(tt_db_commit(), 0);
	assert_false(tt_db_backlog_full());
	assert_null(tt_db_failing());
}

static void test_deleted_file_written_back(void **state)
{
	(void)state;
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	tt_db_check();
	assert_null(tt_db_failing());
	/* an operator cleans up the folder while the server runs */
	char p[128];
	unlink(g_path);
	snprintf(p, sizeof(p), "%s-wal", g_path);
	unlink(p);
	/* committed into the deleted file, as SQLite does before anyone notices */
	tt_db_put_meta("before_check", 1);
	assert_int_equal(tt_db_commit(), 0);
	tt_db_check();
	assert_non_null(tt_db_failing());
	assert_substr(tt_db_failing(), "deleted");
	tt_db_put_meta("after_check", 2);
	/* the next commit writes the file back, then the rows */
	assert_int_equal(tt_db_commit(), 0);
	assert_null(tt_db_failing());
	assert_int_equal(mode_of(g_path), 0600);
	tt_db_check();
	assert_null(tt_db_failing());
	tt_db_put_meta("on_the_copy", 3);
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_non_null(strstr(g_seen, "state 1 k owner=7 seq=2"));
	assert_non_null(strstr(g_seen, "meta before_check 1"));
	assert_non_null(strstr(g_seen, "meta after_check 2"));
	assert_non_null(strstr(g_seen, "meta on_the_copy 3"));
}

static void test_replaced_file_not_overwritten(void **state)
{
	(void)state;
	put_world();
	assert_int_equal(tt_db_commit(), 0);
	char other[128];
	snprintf(other, sizeof(other), "%s/other", g_dir);
	FILE *f = fopen(other, "w");
	fputs("someone else's file\n", f);
	fclose(f);
	assert_int_equal(rename(other, g_path), 0);
	tt_db_check();
	assert_non_null(tt_db_failing());
	tt_db_put_meta("waiting", 1);
	assert_int_equal(tt_db_commit(), -TT_STORAGE);
	f = fopen(g_path, "r");
	char buf[64] = "";
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "someone else's file\n");
	/* moved away: the server writes its own back */
	assert_int_equal(unlink(g_path), 0);
	assert_int_equal(tt_db_commit(), 0);
	reopen();
	assert_non_null(strstr(g_seen, "meta waiting 1"));
	assert_non_null(strstr(g_seen, "session 8 fedcba"));
}

static void test_damaged_page_refused(void **state)
{
	(void)state;
	/* enough states for the table to span many pages */
	char vals[300];
	memset(vals, 'v', sizeof(vals));
	tt_db_put_class("k", 1, "DESC", 4);
	for (uint64_t id = 1; id <= 600; id++) {
		tt_db_state_row r = {id, "k", 1, 0, 1, 1.0, vals, sizeof(vals), NULL, 0};
		tt_db_put_state(&r);
	}
	assert_int_equal(tt_db_commit(), 0);
	tt_db_close(); /* checkpointed into the file */
	sqlite3 *db;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT pageno FROM dbstat WHERE name = 'states' AND "
					    "pagetype = 'leaf' ORDER BY pageno", -1, &s, NULL), SQLITE_OK);
	int pages[64], n = 0;
	while (sqlite3_step(s) == SQLITE_ROW && n < 64)
		pages[n++] = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_true(n > 10);
	/* one leaf in the middle zeroed, as a bad sector would */
	FILE *f = fopen(g_path, "r+b");
	static char zero[4096];
	assert_int_equal(fseek(f, (long)(pages[n / 2] - 1) * 4096, SEEK_SET), 0);
	assert_int_equal(fwrite(zero, 1, sizeof(zero), f), sizeof(zero));
	fclose(f);
	struct stat before, after;
	assert_int_equal(stat(g_path, &before), 0);
	g_seen[0] = '\0';
	tt_error err;
	assert_int_equal(tt_db_open(g_path, false, &loader, &err), -TT_INTERNAL);
	assert_substr(err.msg, "damaged");
	/* refused before anything was restored, and the file left as it was */
	assert_string_equal(g_seen, "");
	assert_int_equal(stat(g_path, &after), 0);
	assert_int_equal(before.st_size, after.st_size);
	assert_int_equal(before.st_mtime, after.st_mtime);
	/* teardown must not find it open */
	tt_db_close();
	unlink(g_path);
	reopen();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_deletes_cascade),
		T(test_tombstones_bounded),
		T(test_loader_rules),
		T(test_foreign_files),
		T(test_new_file_is_private),
		T(test_failed_commit_keeps_rows),
		T(test_backlog_budget),
		T(test_deleted_file_written_back),
		T(test_replaced_file_not_overwritten),
		T(test_damaged_page_refused),
	};
#undef T
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
