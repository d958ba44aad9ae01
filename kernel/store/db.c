/*
 * kernel/store/db.c — an account's database: paths, open (schema, default
 * mailboxes, crash sweep), modseq and id counters, the per-connection
 * bookkeeping (dirty directories, files to remove after the commit,
 * change records) and the counts invariant check.
 *
 * Mailbox and message operations are in mailbox.c and message.c; the
 * asynchronous API and the job queue in store.c.  Everything here blocks.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel/store/core.h"

/* Default mailboxes of a new account (store-private.h). */
static const struct {
	const char *name, *special_use;
} db_default_mailboxes[] = {
	{ "Inbox", NULL },	  { "Sent", "\\Sent" },
	{ "Drafts", "\\Drafts" }, { "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },	  { "Archive", "\\Archive" },
	{ "Rejects", NULL },
};

/* --- small SQL helpers ---------------------------------------------------- */

int
ts__store_sql_error(sqlite3 *db, const char *what, char **error_r)
{
	if (error_r != NULL && *error_r == NULL)
		*error_r = ts_xasprintf("%s: %s", what, sqlite3_errmsg(db));
	return TS_E_IO;
}

int
ts__store_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (error_r != NULL && *error_r == NULL)
			*error_r = ts_xasprintf("%s: %s", sql,
						msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return TS_E_IO;
	}
	return 0;
}


/* Step a statement that returns no row (or ignores it) and finalize it. */
static int
db_run(sqlite3 *db, sqlite3_stmt *st, char **error_r)
{
	int rc = sqlite3_step(st);
	int ret = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = ts__store_sql_error(db, sqlite3_sql(st), error_r);
	ts__store_finalize(st);
	return ret;
}

/* --- paths ---------------------------------------------------------------- */

char *
ts__store_account_dir(const char *data_dir, const char *account)
{
	return ts_xasprintf("%s/accounts/%s", data_dir, account);
}

char *
ts__store_message_path(const char *data_dir, const char *account,
		       int64_t message_id)
{
	return ts_xasprintf("%s/accounts/%s/msg/%" PRIx64 "/%" PRId64, data_dir,
			    account, (uint64_t)message_id / 4096, message_id);
}

int
ts__store_mkdir_p(const char *path)
{
	char *p = ts_xstrdup(path);
	int ret = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return ret;
}

/*
 * Flush the whole file system holding `path` — data and metadata of every
 * file, including hardlinked messages whose fsync was deferred — and wait
 * for it (Linux's syncfs waits, and reports writeback errors since 5.8).
 * One call serves a whole group of deliveries.  0 or -errno.
 */
static int
db_syncfs_at(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = syncfs(fd) != 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* fsync a directory; 0 or -errno. */
static int
db_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = fsync(fd) != 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* --- counters ------------------------------------------------------------- */

/* Increment a numeric meta value and return the new one. */
static int
db_meta_increment(sqlite3 *db, const char *key, int64_t floor, int64_t *value_r,
		  char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"INSERT INTO meta (key, value) VALUES (?1, ?2 + 1) "
		"ON CONFLICT (key) DO UPDATE SET value = "
		"max(CAST(value AS INTEGER), ?2) + 1 RETURNING value",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, floor);
	int ret = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		*value_r = sqlite3_column_int64(st, 0);
	else
		ret = ts__store_sql_error(db, key, error_r);
	ts__store_finalize(st);
	return ret;
}

int
ts__store_next_modseq(sqlite3 *db, uint64_t *modseq_r)
{
	int64_t v = 0;
	int ret = db_meta_increment(db, "modseq", 0, &v, NULL);
	*modseq_r = (uint64_t)v;
	return ret;
}

/* The largest message id ever handed out and committed (or in this
 * transaction): meta "last_message_id", or the largest row id. */
static int
db_last_message_id(sqlite3 *db, int64_t *id_r, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta"
		" WHERE key = 'last_message_id'), 0),"
		" coalesce((SELECT max(id) FROM messages), 0))",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	int ret = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	else
		ret = ts__store_sql_error(db, "last message id", error_r);
	ts__store_finalize(st);
	return ret;
}

int
ts__store_next_message_id(sqlite3 *db, int64_t *id_r, char **error_r)
{
	int64_t last;
	if (db_last_message_id(db, &last, error_r) != 0)
		return TS_E_IO;
	return db_meta_increment(db, "last_message_id", last, id_r, error_r);
}

/* The next UIDVALIDITY: the time, or one more than the last if larger. */
int
ts__store_next_uidvalidity(sqlite3 *db, uint32_t *uidvalidity_r, char **error_r)
{
	int64_t v;
	int64_t now = (int64_t)time(NULL) & 0xffffffff;
	if (db_meta_increment(db, "uidvalidity", now - 1, &v, error_r) != 0)
		return TS_E_IO;
	*uidvalidity_r = (uint32_t)v;
	return 0;
}

/* --- bookkeeping in temp tables ------------------------------------------- */

int
ts__store_dirty_dir(sqlite3 *db, const char *path, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "INSERT OR IGNORE INTO temp.dirty_dirs VALUES (?)",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	return db_run(db, st, error_r);
}

int
ts__store_unlink_later(sqlite3 *db, int64_t message_id, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "INSERT OR IGNORE INTO temp.unlinks VALUES (?)", error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, message_id);
	return db_run(db, st, error_r);
}

int
ts__store_sync_dirs(sqlite3 *db, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT path FROM temp.dirty_dirs ORDER BY path", error_r);
	if (st == NULL)
		return TS_E_IO;
	int ret = 0, rc;
	bool whole_fs = false;
	/* Deepest first would not matter: every directory on the list is
	 * synced before the commit, and their parents are on it too when
	 * they were created. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *path = (const char *)sqlite3_column_text(st, 0);
		if (*path == '\0') {
			/* Sorted first: files whose flush was deferred. */
			whole_fs = true;
			continue;
		}
		int err = whole_fs ? db_syncfs_at(path) : db_fsync_dir(path);
		if (whole_fs && err == 0) {
			/* One syncfs covers every file and directory. */
			rc = SQLITE_DONE;
			break;
		}
		if (err != 0) {
			if (error_r != NULL && *error_r == NULL)
				*error_r = ts_xasprintf("fsync %s: %s", path,
							strerror(-err));
			ret = TS_E_IO;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = ts__store_sql_error(db, "dirty dirs", error_r);
	ts__store_finalize(st);
	if (ret == 0)
		ret = ts__store_exec(db, "DELETE FROM temp.dirty_dirs",
				     error_r);
	return ret;
}

void
ts__store_after_commit(sqlite3 *db, const char *data_dir, const char *account)
{
	sqlite3_stmt *st =
		ts__store_prepare(db, "SELECT id FROM temp.unlinks", NULL);
	if (st == NULL)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		char *path = ts__store_message_path(
			data_dir, account, sqlite3_column_int64(st, 0));
		/* A file already gone is what we wanted anyway. */
		(void)unlink(path);
		free(path);
	}
	ts__store_finalize(st);
	(void)ts__store_exec(db, "DELETE FROM temp.unlinks", NULL);
}

int
ts__store_track_changes(sqlite3 *db)
{
	return ts__store_exec(
		db,
		"CREATE TEMP TABLE IF NOT EXISTS changes ("
		" seq INTEGER PRIMARY KEY, kind INTEGER, modseq INTEGER,"
		" mailbox TEXT, old_name TEXT, special_use TEXT,"
		" uid INTEGER, flags INTEGER, keywords TEXT)",
		NULL);
}

/* Whether this connection records changes. */
static bool
db_tracking(sqlite3 *db)
{
	return sqlite3_table_column_metadata(db, "temp", "changes", "seq", NULL,
					     NULL, NULL, NULL,
					     NULL) == SQLITE_OK;
}

int
ts__store_record(sqlite3 *db, const struct ts_store_change *c, char **error_r)
{
	if (!db_tracking(db))
		return 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"INSERT INTO temp.changes (kind, modseq, mailbox, old_name,"
		" special_use, uid, flags, keywords)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int(st, 1, (int)c->kind);
	sqlite3_bind_int64(st, 2, (int64_t)c->modseq);
	sqlite3_bind_text(st, 3, c->mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->old_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->special_use, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, c->uid);
	sqlite3_bind_int64(st, 7, c->flags);
	sqlite3_bind_text(st, 8, c->keywords, -1, SQLITE_STATIC);
	return db_run(db, st, error_r);
}

char *
ts__store_column_dup(sqlite3_stmt *st, int col, const char *if_null)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (t == NULL)
		return if_null != NULL ? ts_xstrdup(if_null) : NULL;
	return ts_xstrdup((const char *)t);
}

int
ts__store_take_changes(sqlite3 *db, struct ts_store_change **changes_r,
		       size_t *count_r)
{
	*changes_r = NULL;
	*count_r = 0;
	if (!db_tracking(db))
		return 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT kind, modseq, mailbox, old_name, special_use, uid,"
		" flags, keywords FROM temp.changes ORDER BY seq",
		NULL);
	if (st == NULL)
		return TS_E_IO;
	struct ts_store_change *v = NULL;
	size_t n = 0, alloc = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc != 0 ? alloc * 2 : 16;
			v = ts_xrealloc(v, alloc * sizeof(*v));
		}
		v[n++] = (struct ts_store_change){
			.kind = (enum ts_store_change_kind)sqlite3_column_int(
				st, 0),
			.modseq = (uint64_t)sqlite3_column_int64(st, 1),
			.mailbox = ts__store_column_dup(st, 2, NULL),
			.old_name = ts__store_column_dup(st, 3, NULL),
			.special_use = ts__store_column_dup(st, 4, NULL),
			.uid = (uint32_t)sqlite3_column_int64(st, 5),
			.flags = (uint32_t)sqlite3_column_int64(st, 6),
			.keywords = ts__store_column_dup(st, 7, NULL),
		};
	}
	ts__store_finalize(st);
	if (rc != SQLITE_DONE ||
	    ts__store_exec(db, "DELETE FROM temp.changes", NULL) != 0) {
		ts__store_changes_free(v, n);
		return TS_E_IO;
	}
	*changes_r = v;
	*count_r = n;
	return 0;
}

void
ts__store_changes_free(struct ts_store_change *changes, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)changes[i].mailbox);
		free((char *)changes[i].old_name);
		free((char *)changes[i].special_use);
		free((char *)changes[i].keywords);
	}
	free(changes);
}

/* --- open ----------------------------------------------------------------- */

/* Create the schema and the default mailboxes (inside a transaction). */
static int
db_create(sqlite3 *db, char **error_r)
{
	if (ts__store_exec(db, TS__STORE_SCHEMA, error_r) != 0)
		return TS_E_IO;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"INSERT INTO meta (key, value) VALUES ('schema_version', ?),"
		" ('modseq', '0'), ('last_message_id', '0')",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int(st, 1, TS__STORE_SCHEMA_VERSION);
	if (db_run(db, st, error_r) != 0)
		return TS_E_IO;
	for (size_t i = 0;
	     i < sizeof(db_default_mailboxes) / sizeof(db_default_mailboxes[0]);
	     i++) {
		int64_t id;
		if (ts__store_mailbox_create(
			    db, db_default_mailboxes[i].name,
			    db_default_mailboxes[i].special_use, &id,
			    error_r) != 0)
			return TS_E_IO;
	}
	return 0;
}

/*
 * Remove message files a crashed transaction left behind: ids above the
 * last committed one, which live in the newest msg/ directories.  Runs
 * under the write lock, so no other process is writing files.
 */
static int
db_sweep(sqlite3 *db, const char *msg_dir, char **error_r)
{
	int64_t last;
	if (db_last_message_id(db, &last, error_r) != 0)
		return TS_E_IO;
	DIR *d = opendir(msg_dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : TS_E_IO;
	struct dirent *de;
	uint64_t newest = (uint64_t)last / 4096;
	while ((de = readdir(d)) != NULL) {
		char *end;
		if (de->d_name[0] == '.')
			continue;
		uint64_t hex = strtoull(de->d_name, &end, 16);
		if (*end != '\0' || hex < newest)
			continue;
		char *sub = ts_xasprintf("%s/%s", msg_dir, de->d_name);
		DIR *sd = opendir(sub);
		struct dirent *fe;
		while (sd != NULL && (fe = readdir(sd)) != NULL) {
			long long id = strtoll(fe->d_name, &end, 10);
			if (fe->d_name[0] == '.' || *end != '\0' || id <= last)
				continue;
			char *path = ts_xasprintf("%s/%s", sub, fe->d_name);
			(void)unlink(path);
			free(path);
		}
		if (sd != NULL)
			closedir(sd);
		free(sub);
	}
	closedir(d);
	return 0;
}

int
ts__store_db_open(const char *data_dir, const char *account, sqlite3 **db_r,
		  char **error_r)
{
	*db_r = NULL;
	char *dir = ts__store_account_dir(data_dir, account);
	char *msg_dir = ts_xasprintf("%s/msg", dir);
	char *tmp_dir = ts_xasprintf("%s/tmp", data_dir);
	char *path = ts_xasprintf("%s/index.db", dir);
	sqlite3 *db = NULL;
	int ret = TS_E_IO, err;

	if ((err = ts__store_mkdir_p(msg_dir)) != 0 ||
	    (err = ts__store_mkdir_p(tmp_dir)) != 0) {
		*error_r = ts_xasprintf("cannot create %s: %s", msg_dir,
					strerror(-err));
		goto out;
	}
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		*error_r = ts_xasprintf("cannot open %s: %s", path,
					db != NULL ? sqlite3_errmsg(db)
						   : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	char *e = NULL;
	if (ts__store_exec(db,
			   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			   " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
			   &e) != 0 ||
	    ts__store_exec(
		    db,
		    "CREATE TEMP TABLE dirty_dirs"
		    " (path TEXT PRIMARY KEY);"
		    "CREATE TEMP TABLE unlinks (id INTEGER PRIMARY KEY);",
		    &e) != 0 ||
	    ts__store_exec(db, "BEGIN IMMEDIATE", &e) != 0) {
		*error_r = ts_xasprintf("%s: %s", path, e);
		free(e);
		goto out;
	}
	/* A new database has no meta table; the write lock makes creating
	 * it race-free against a second process opening it too. */
	bool exists = sqlite3_table_column_metadata(db, "main", "meta", "key",
						    NULL, NULL, NULL, NULL,
						    NULL) == SQLITE_OK;
	if (!exists && db_create(db, &e) != 0) {
		*error_r =
			ts_xasprintf("%s: cannot create schema: %s", path, e);
		free(e);
		(void)ts__store_exec(db, "ROLLBACK", NULL);
		goto out;
	}
	if (db_sweep(db, msg_dir, &e) != 0 ||
	    ts__store_exec(db, "COMMIT", &e) != 0) {
		*error_r = ts_xasprintf("%s: %s", path,
					e != NULL ? e : "sweep failed");
		free(e);
		(void)ts__store_exec(db, "ROLLBACK", NULL);
		goto out;
	}
	if (!exists) {
		/* New directories must survive a crash like their files. */
		char *acc_dir = ts_xasprintf("%s/accounts", data_dir);
		(void)db_fsync_dir(msg_dir);
		(void)db_fsync_dir(dir);
		(void)db_fsync_dir(acc_dir);
		free(acc_dir);
	}
	*db_r = db;
	db = NULL;
	ret = 0;
out:
	if (db != NULL)
		sqlite3_close_v2(db);
	free(dir);
	free(msg_dir);
	free(tmp_dir);
	free(path);
	return ret;
}

void
ts__store_db_close(sqlite3 **db)
{
	if (*db == NULL)
		return;
	/* Cached statements (stmt-cache.c) end with their connection. */
	sqlite3_stmt *st;
	while ((st = sqlite3_next_stmt(*db, NULL)) != NULL)
		ts__store_finalize(st);
	sqlite3_close_v2(*db);
	*db = NULL;
}

/* --- invariant check ------------------------------------------------------ */

static void db_problem(char **problems, const char *fmt, ...) TS_PRINTF(2, 3);

static void
db_problem(char **problems, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = ts_xvasprintf(fmt, ap);
	va_end(ap);
	char *all = ts_xasprintf("%s%s\n", *problems != NULL ? *problems : "",
				 line);
	free(*problems);
	free(line);
	*problems = all;
}

/* A column as int64_t, which is what PRId64 formats. */
static int64_t
db_col(sqlite3_stmt *st, int col)
{
	return (int64_t)sqlite3_column_int64(st, col);
}

int
ts__store_check_counts(sqlite3 *db, char **problems_r)
{
	*problems_r = NULL;
	char *problems = NULL;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT b.id, b.name, b.total, b.unseen, b.unread, b.deleted,"
		" b.size, b.keywords, b.uidnext, b.highest_modseq,"
		" count(m.id),"
		" coalesce(sum((m.flags & 1) = 0), 0),"
		" coalesce(sum((m.flags & 1) = 0 AND (m.flags & 8) = 0), 0),"
		" coalesce(sum((m.flags & 8) != 0), 0),"
		" coalesce(sum(m.size), 0),"
		" coalesce(max(m.uid), 0), coalesce(max(m.modseq), 0)"
		" FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
		" GROUP BY b.id ORDER BY b.name",
		problems_r);
	if (st == NULL)
		return TS_E_IO;
	static const char *const names[] = { "total", "unseen", "unread",
					     "deleted", "size" };
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		for (int i = 0; i < 5; i++) {
			int64_t stored = db_col(st, 2 + i);
			int64_t counted = db_col(st, 10 + i);
			if (stored != counted)
				db_problem(&problems,
					   "mailbox %s: %s %" PRId64
					   ", counted %" PRId64,
					   name, names[i], stored, counted);
		}
		if (db_col(st, 15) >= db_col(st, 8))
			db_problem(&problems,
				   "mailbox %s: uidnext %" PRId64
				   " not above uid %" PRId64,
				   name, db_col(st, 8), db_col(st, 15));
		if (db_col(st, 16) > db_col(st, 9))
			db_problem(&problems,
				   "mailbox %s: highest_modseq %" PRId64
				   " below a message's %" PRId64,
				   name, db_col(st, 9), db_col(st, 16));
	}
	if (rc != SQLITE_DONE) {
		ts__store_finalize(st);
		free(problems);
		return ts__store_sql_error(db, "check counts", problems_r);
	}
	ts__store_finalize(st);

	/* Every message keyword is in its mailbox's keyword set. */
	st = ts__store_prepare(db,
			       "SELECT m.id, m.keywords, b.keywords, b.name"
			       " FROM messages m JOIN mailboxes b"
			       " ON b.id = m.mailbox_id WHERE m.keywords != ''",
			       problems_r);
	if (st == NULL) {
		free(problems);
		return TS_E_IO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kw = (const char *)sqlite3_column_text(st, 1);
		const char *set = (const char *)sqlite3_column_text(st, 2);
		char *missing = ts__store_keywords_minus(kw, set);
		if (*missing != '\0')
			db_problem(&problems,
				   "message %" PRId64
				   ": keywords '%s' not in mailbox %s's set",
				   db_col(st, 0), missing,
				   (const char *)sqlite3_column_text(st, 3));
		free(missing);
	}
	ts__store_finalize(st);

	/* The account's modseq is at least every message's. */
	st = ts__store_prepare(
		db,
		"SELECT (SELECT CAST(value AS INTEGER) FROM meta"
		" WHERE key = 'modseq'),"
		" (SELECT coalesce(max(modseq), 0) FROM messages),"
		" (SELECT coalesce(max(modseq), 0) FROM expunged)",
		problems_r);
	if (st == NULL) {
		free(problems);
		return TS_E_IO;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		int64_t meta = db_col(st, 0);
		for (int i = 1; i <= 2; i++)
			if (db_col(st, i) > meta)
				db_problem(&problems,
					   "meta modseq %" PRId64
					   " below %s modseq %" PRId64,
					   meta,
					   i == 1 ? "a message" : "a tombstone",
					   db_col(st, i));
	}
	ts__store_finalize(st);

	if (problems != NULL) {
		*problems_r = problems;
		return TS_E_INVAL;
	}
	return 0;
}
