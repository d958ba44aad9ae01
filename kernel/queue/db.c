/*
 * kernel/queue/db.c — the outbound queue's index and message files.
 *
 * One SQLite database (WAL, synchronous=FULL) with a row per queued
 * message and a row per recipient, and one file per message under
 * queue/msg/.  Everything here blocks: it runs on the work pool through
 * jobs.c, or on the loop before the server starts serving.  Scheduling
 * decisions (when to retry, when to give up) are queue.c's; this file
 * only stores them.
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
#include <unistd.h>

#include "kernel/queue/queue-private.h"

static const char ts_queue_schema[] =
	/* AUTOINCREMENT: a queue id is never reused, logs stay unambiguous */
	"CREATE TABLE IF NOT EXISTS messages ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" created_ms INTEGER NOT NULL,"
	" sender TEXT NOT NULL,"
	" sender_localpart TEXT NOT NULL,"
	" sender_domain TEXT NOT NULL,"
	" account TEXT,"
	" message_id TEXT,"
	" envid TEXT,"
	" ret INTEGER NOT NULL DEFAULT 0,"
	" body INTEGER NOT NULL DEFAULT 0,"
	" smtputf8 INTEGER NOT NULL DEFAULT 0,"
	" requiretls INTEGER NOT NULL DEFAULT 0,"
	" requiretls_override INTEGER NOT NULL DEFAULT -1,"
	" tls_optional INTEGER NOT NULL DEFAULT 0,"
	" size INTEGER NOT NULL,"
	" prefix BLOB NOT NULL,"
	" hold INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS recipients ("
	" id INTEGER PRIMARY KEY,"
	" msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	" address TEXT NOT NULL,"
	" localpart TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" notify INTEGER NOT NULL DEFAULT 0,"
	" orcpt_type TEXT,"
	" orcpt TEXT,"
	" status INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_ms INTEGER NOT NULL,"
	" last_code INTEGER,"
	" last_enhanced TEXT,"
	" last_text TEXT,"
	" last_remote TEXT,"
	" delay_notified INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS recipients_msg ON recipients(msg_id);"
	/*
	 * What the receiving side of each recipient domain offered at the
	 * last attempt, per sending account: the basis for warning a
	 * sender before REQUIRETLS mail gets stuck.
	 */
	"CREATE TABLE IF NOT EXISTS recipient_domain_tls ("
	" account TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" host TEXT,"
	" starttls INTEGER NOT NULL,"
	" requiretls INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY (account, domain));";

char *
ts__queue_msg_path(const char *data_dir, int64_t msg_id)
{
	return ts_xasprintf("%s/queue/msg/%" PRId64, data_dir, msg_id);
}

/* mkdir -p for the two directories we own. */
static int
ts_queue_mkdirs(const char *data_dir, char **error_r)
{
	const char *subs[] = { "queue", "queue/msg" };
	for (size_t i = 0; i < 2; i++) {
		char *p = ts_xasprintf("%s/%s", data_dir, subs[i]);
		int rc = mkdir(p, 0700) != 0 && errno != EEXIST ? -errno : 0;
		if (rc != 0) {
			*error_r = ts_xasprintf("cannot create %s: %s", p,
						strerror(-rc));
			free(p);
			return TS_E_IO;
		}
		free(p);
	}
	return 0;
}

/*
 * Files in queue/msg without a row: a crash between linking a file and
 * committing its row leaves one behind.  Nothing refers to them.
 */
static void
ts_queue_sweep(sqlite3 *db, const char *data_dir)
{
	char *dir = ts_xasprintf("%s/queue/msg", data_dir);
	DIR *d = opendir(dir);
	sqlite3_stmt *st = NULL;
	if (d == NULL ||
	    sqlite3_prepare_v2(db, "SELECT 1 FROM messages WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		if (d != NULL)
			closedir(d);
		free(dir);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long long id = strtoll(e->d_name, &end, 10);
		if (e->d_name[0] == '.' || *end != '\0')
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_DONE) {
			char *p = ts_xasprintf("%s/%s", dir, e->d_name);
			(void)unlink(p); /* best effort; retried next start */
			free(p);
		}
	}
	sqlite3_finalize(st);
	closedir(d);
	free(dir);
}

int
ts__queue_db_open(const char *data_dir, sqlite3 **db_r, char **error_r)
{
	*db_r = NULL;
	if (ts_queue_mkdirs(data_dir, error_r) != 0)
		return TS_E_IO;
	char *path = ts_xasprintf("%s/queue/index.db", data_dir);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 10000);
		rc = sqlite3_exec(db,
				  "PRAGMA journal_mode=WAL;"
				  " PRAGMA synchronous=FULL;"
				  " PRAGMA foreign_keys=ON;",
				  NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, ts_queue_schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*error_r = ts_xasprintf("%s: %s", path,
					db != NULL ? sqlite3_errmsg(db)
						   : "cannot open");
		sqlite3_close(db);
		free(path);
		return TS_E_IO;
	}
	free(path);
	ts_queue_sweep(db, data_dir);
	*db_r = db;
	return 0;
}

void
ts__queue_db_close(sqlite3 **db)
{
	if (*db != NULL)
		sqlite3_close(*db);
	*db = NULL;
}

static char *
ts_queue_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t != NULL ? ts_xstrdup((const char *)t) : NULL;
}

int
ts__queue_db_entries(sqlite3 *db, struct ts__qentry **entries_r,
		     size_t *count_r)
{
	*entries_r = NULL;
	*count_r = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT r.msg_id, r.domain, MAX(r.attempts), MIN(r.next_ms),"
		    " m.created_ms, m.hold FROM recipients r"
		    " JOIN messages m ON m.id = r.msg_id"
		    " WHERE r.status = 0 GROUP BY r.msg_id, r.domain"
		    " ORDER BY r.msg_id",
		    -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	struct ts__qentry *v = NULL;
	size_t n = 0, size = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == size) {
			size = size != 0 ? 2 * size : 64;
			v = ts_xrealloc(v, size * sizeof(*v));
		}
		v[n] = (struct ts__qentry){
			.msg_id = sqlite3_column_int64(st, 0),
			.domain = ts_queue_col(st, 1),
			.attempts = (unsigned)sqlite3_column_int(st, 2),
			.next_ms = sqlite3_column_int64(st, 3),
			.created_ms = sqlite3_column_int64(st, 4),
			.hold = sqlite3_column_int(st, 5) != 0,
		};
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		ts__queue_entries_free(v, n);
		return TS_E_IO;
	}
	*entries_r = v;
	*count_r = n;
	return 0;
}

void
ts__queue_entries_free(struct ts__qentry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(entries[i].domain);
	free(entries);
}

/* Link src to dst (same file system) or copy it; dst must not exist. */
static int
ts_queue_place_file(const char *src, const char *dst, char **error_r)
{
	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM) {
		*error_r = ts_xasprintf("link %s to %s: %s", src, dst,
					strerror(errno));
		return TS_E_IO;
	}
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1
			 : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				0600);
	int rc = in < 0 || out < 0 ? TS_E_IO : 0;
	char buf[65536];
	ssize_t got;
	while (rc == 0 && (got = read(in, buf, sizeof(buf))) != 0) {
		if (got < 0 || write(out, buf, (size_t)got) != got)
			rc = TS_E_IO;
	}
	if (rc != 0)
		*error_r = ts_xasprintf("copy %s to %s: %s", src, dst,
					strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0) {
		*error_r = ts_xasprintf("copy %s to %s: %s", src, dst,
					strerror(errno));
		rc = TS_E_IO;
	}
	if (rc != 0)
		(void)unlink(dst);
	return rc;
}

static void
ts_queue_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int
ts__queue_db_add(sqlite3 *db, const char *data_dir, const struct ts__qnew *m,
		 int64_t *id_r, char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT INTO messages (created_ms, sender, sender_localpart,"
		    " sender_domain, account, message_id, envid, ret, body,"
		    " smtputf8, requiretls, tls_optional, size, prefix)"
		    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		    -1, &st, NULL) != SQLITE_OK)
		goto db_error;
	sqlite3_bind_int64(st, 1, m->now_ms);
	ts_queue_bind_text(st, 2, m->mail.address);
	ts_queue_bind_text(st, 3, m->mail.localpart);
	ts_queue_bind_text(st, 4, m->mail.domain);
	ts_queue_bind_text(st, 5, m->account);
	ts_queue_bind_text(st, 6, m->message_id);
	ts_queue_bind_text(st, 7, m->mail.envid);
	sqlite3_bind_int(st, 8, (int)m->mail.ret);
	sqlite3_bind_int(st, 9, (int)m->mail.body);
	sqlite3_bind_int(st, 10, m->mail.smtputf8);
	sqlite3_bind_int(st, 11, m->mail.requiretls);
	sqlite3_bind_int(st, 12, m->tls_optional);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)m->size);
	sqlite3_bind_blob(st, 14, m->prefix != NULL ? m->prefix : "",
			  (int)m->prefix_len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto db_error;
	int64_t id = sqlite3_last_insert_rowid(db);

	if (sqlite3_prepare_v2(db,
			       "INSERT INTO recipients (msg_id, address,"
			       " localpart, domain, notify, orcpt_type, orcpt,"
			       " next_ms) VALUES (?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto db_error;
	for (size_t i = 0; i < m->rcpt_count; i++) {
		const struct ts_txn_rcpt *r = m->rcpts[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		ts_queue_bind_text(st, 2, r->address);
		ts_queue_bind_text(st, 3, r->localpart);
		ts_queue_bind_text(st, 4, r->domain);
		sqlite3_bind_int(st, 5, (int)r->notify);
		ts_queue_bind_text(st, 6, r->orcpt_type);
		ts_queue_bind_text(st, 7, r->orcpt);
		sqlite3_bind_int64(st, 8, m->now_ms);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			goto db_error;
		}
	}
	sqlite3_finalize(st);

	char *path = ts__queue_msg_path(data_dir, id);
	(void)unlink(path); /* an orphan the sweep has not reached */
	rc = ts_queue_place_file(m->spool_path, path, error_r);
	free(path);
	if (rc != 0)
		return rc;
	*id_r = id;
	return 0;

db_error:
	*error_r = ts_xasprintf("queue index: %s", sqlite3_errmsg(db));
	return TS_E_IO;
}

void
ts__queue_load_clear(struct ts__qload *l)
{
	free(l->sender);
	free(l->localpart);
	free(l->domain_of_sender);
	free(l->envid);
	free(l->account);
	free(l->message_id);
	free(l->prefix);
	for (size_t i = 0; i < l->rcpt_count; i++) {
		struct ts_txn_rcpt *r = &l->rcpts[i];
		free((char *)r->address);
		free((char *)r->localpart);
		free((char *)r->domain);
		free((char *)r->orcpt_type);
		free((char *)r->orcpt);
	}
	free(l->rcpts);
	free(l->rcpt_ids);
	free(l->delay_notified);
	memset(l, 0, sizeof(*l));
}

int
ts__queue_db_load(sqlite3 *db, int64_t msg_id, const char *domain,
		  struct ts__qload *l)
{
	memset(l, 0, sizeof(*l));
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT sender, sender_localpart, sender_domain, envid,"
		    " account, message_id, ret, body, smtputf8, requiretls,"
		    " tls_optional, requiretls_override, size, created_ms,"
		    " prefix"
		    " FROM messages WHERE id = ?",
		    -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? TS_E_NOTFOUND : TS_E_IO;
	}
	l->msg_id = msg_id;
	l->sender = ts_queue_col(st, 0);
	l->localpart = ts_queue_col(st, 1);
	l->domain_of_sender = ts_queue_col(st, 2);
	l->envid = ts_queue_col(st, 3);
	l->account = ts_queue_col(st, 4);
	l->message_id = ts_queue_col(st, 5);
	l->ret = sqlite3_column_int(st, 6);
	l->body = sqlite3_column_int(st, 7);
	l->smtputf8 = sqlite3_column_int(st, 8) != 0;
	l->requiretls = sqlite3_column_int(st, 9) != 0;
	l->tls_optional = sqlite3_column_int(st, 10) != 0;
	l->requiretls_override = sqlite3_column_int(st, 11);
	l->size = (uint64_t)sqlite3_column_int64(st, 12);
	l->created_ms = sqlite3_column_int64(st, 13);
	l->prefix_len = (size_t)sqlite3_column_bytes(st, 14);
	l->prefix = ts_xmalloc(l->prefix_len + 1);
	if (l->prefix_len > 0)
		memcpy(l->prefix, sqlite3_column_blob(st, 14), l->prefix_len);
	l->prefix[l->prefix_len] = '\0';
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(db,
			       "SELECT id, address, localpart, domain, notify,"
			       " orcpt_type, orcpt, delay_notified"
			       " FROM recipients"
			       " WHERE msg_id = ? AND domain = ? AND status = 0"
			       " ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		ts__queue_load_clear(l);
		return TS_E_IO;
	}
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t n = l->rcpt_count;
		l->rcpts = ts_xrealloc(l->rcpts, (n + 1) * sizeof(*l->rcpts));
		l->rcpt_ids =
			ts_xrealloc(l->rcpt_ids, (n + 1) * sizeof(*l->rcpt_ids));
		l->rcpt_ids[n] = sqlite3_column_int64(st, 0);
		l->delay_notified = ts_xrealloc(
			l->delay_notified, (n + 1) * sizeof(*l->delay_notified));
		l->delay_notified[n] = sqlite3_column_int(st, 7) != 0;
		l->rcpts[n] = (struct ts_txn_rcpt){
			.address = ts_queue_col(st, 1),
			.localpart = ts_queue_col(st, 2),
			.domain = ts_queue_col(st, 3),
			.notify = (unsigned)sqlite3_column_int(st, 4),
			.orcpt_type = ts_queue_col(st, 5),
			.orcpt = ts_queue_col(st, 6),
		};
		l->rcpt_count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		ts__queue_load_clear(l);
		return TS_E_IO;
	}
	return 0;
}

int
ts__queue_db_open_message(sqlite3 *db, const char *data_dir, int64_t msg_id,
			  int *fd_r, char **prefix_r, size_t *prefix_len_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT prefix FROM messages WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, msg_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return TS_E_NOTFOUND;
	}
	size_t n = (size_t)sqlite3_column_bytes(st, 0);
	char *prefix = ts_xmalloc(n + 1);
	if (n > 0)
		memcpy(prefix, sqlite3_column_blob(st, 0), n);
	prefix[n] = '\0';
	sqlite3_finalize(st);
	char *path = ts__queue_msg_path(data_dir, msg_id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		free(prefix);
		return TS_E_IO;
	}
	*fd_r = fd;
	*prefix_r = prefix;
	*prefix_len_r = n;
	return 0;
}

int
ts__queue_db_record(sqlite3 *db, const char *data_dir, int64_t msg_id,
		    const struct ts__qresult *results, size_t count,
		    bool *done_r)
{
	*done_r = false;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "UPDATE recipients SET status = ?,"
			       " attempts = attempts + 1, next_ms = ?,"
			       " last_code = ?, last_enhanced = ?,"
			       " last_text = ?, last_remote = ?,"
			       " delay_notified = delay_notified OR ?"
			       " WHERE id = ? AND msg_id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	for (size_t i = 0; i < count; i++) {
		const struct ts__qresult *r = &results[i];
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, (int)r->status);
		sqlite3_bind_int64(st, 2, r->next_ms);
		sqlite3_bind_int(st, 3, r->code);
		ts_queue_bind_text(st, 4, r->enhanced);
		ts_queue_bind_text(st, 5, r->text);
		ts_queue_bind_text(st, 6, r->remote);
		sqlite3_bind_int(st, 7, r->delay_notice);
		sqlite3_bind_int64(st, 8, r->rcpt_id);
		sqlite3_bind_int64(st, 9, msg_id);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return TS_E_IO;
		}
	}
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(db,
			       "SELECT COUNT(*) FROM recipients"
			       " WHERE msg_id = ? AND status = 0",
			       -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	int64_t left = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (left < 0)
		return TS_E_IO;
	if (left > 0)
		return 0;
	if (sqlite3_prepare_v2(db, "DELETE FROM messages WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, msg_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return TS_E_IO;
	/*
	 * The caller removes the file only after the commit: a crash in
	 * between leaves an orphan for the start-up sweep, never a row
	 * without its message.
	 */
	(void)data_dir;
	*done_r = true;
	return 0;
}

int
ts__queue_db_note_tls(sqlite3 *db, const char *account, const char *domain,
		      const char *host, bool starttls, bool requiretls,
		      int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT INTO recipient_domain_tls (account, domain, host,"
		    " starttls, requiretls, updated_ms) VALUES (?,?,?,?,?,?)"
		    " ON CONFLICT (account, domain) DO UPDATE SET"
		    " host = excluded.host, starttls = excluded.starttls,"
		    " requiretls = excluded.requiretls,"
		    " updated_ms = excluded.updated_ms",
		    -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	ts_queue_bind_text(st, 1, account);
	ts_queue_bind_text(st, 2, domain);
	ts_queue_bind_text(st, 3, host);
	sqlite3_bind_int(st, 4, starttls);
	sqlite3_bind_int(st, 5, requiretls);
	sqlite3_bind_int64(st, 6, now_ms);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : TS_E_IO;
}
