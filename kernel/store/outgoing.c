/*
 * kernel/store/outgoing.c — an account's sending history, for the
 * outgoing limits of the submission service (modules/smtp/limits.c):
 * how many messages it sent in the last 24 hours, which recipient
 * addresses it has ever sent to, and how many of those were new in the
 * last 24 hours.
 *
 * Kept in the account's own database, in two tables created on first
 * use (so stores made before them need no migration):
 *   outgoing_messages(sent)               one row per message, pruned
 *                                         after 24 hours;
 *   outgoing_recipients(address, first)   one row per address ever sent
 *                                         to (lower-cased), with when.
 * Each request is a custom job on the account's store queue
 * (ts__store_queue), like sync-ops.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/store/core.h"

#define OUTGOING_DAY 86400

struct outgoing_op {
	char **addresses; /* lower-cased, duplicates removed */
	size_t count;
	int64_t now;
	bool record;
	struct ts_store_outgoing result;
	ts_store_outgoing_fn query_fn;
	ts_store_done_fn done_fn;
	void *arg;
};

static void
outgoing_op_free(struct outgoing_op *op)
{
	for (size_t i = 0; i < op->count; i++)
		free(op->addresses[i]);
	free(op->addresses);
	free(op);
}

static struct outgoing_op *
outgoing_op_new(const char *const *addresses, size_t count, int64_t now,
		void *arg)
{
	struct outgoing_op *op = ts_xcalloc(1, sizeof(*op));
	op->addresses = ts_xcalloc(count ? count : 1, sizeof(*op->addresses));
	for (size_t i = 0; i < count; i++) {
		char *a = ts_xstrdup(addresses[i]);
		for (char *p = a; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		bool dup = false;
		for (size_t k = 0; k < op->count && !dup; k++)
			dup = strcmp(op->addresses[k], a) == 0;
		if (dup)
			free(a);
		else
			op->addresses[op->count++] = a;
	}
	op->now = now;
	op->arg = arg;
	return op;
}

static int
outgoing_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *e = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK) {
		*error_r = ts_xstrdup(e != NULL ? e : "sqlite error");
		sqlite3_free(e);
		return TS_E_IO;
	}
	return 0;
}

/* One integer from a query with up to one bound int64 and one text. */
static int
outgoing_count(sqlite3 *db, const char *sql, int64_t num, const char *text,
	       int64_t *value_r, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(db, sql, error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, num);
	if (text != NULL)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*value_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	ts__store_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = ts_xstrdup(sqlite3_errmsg(db));
		return TS_E_IO;
	}
	return 0;
}

static int
outgoing_run(sqlite3 *db, const char *data_dir, const char *account, void *arg,
	     char **error_r)
{
	(void)data_dir;
	(void)account;
	struct outgoing_op *op = arg;
	int64_t since = op->now - OUTGOING_DAY;
	int64_t v;
	int rc = outgoing_exec(
		db,
		"CREATE TABLE IF NOT EXISTS outgoing_messages "
		"(sent INTEGER NOT NULL);"
		"CREATE INDEX IF NOT EXISTS outgoing_messages_sent "
		"ON outgoing_messages(sent);"
		"CREATE TABLE IF NOT EXISTS outgoing_recipients "
		"(address TEXT PRIMARY KEY, first INTEGER NOT "
		"NULL);"
		"CREATE INDEX IF NOT EXISTS outgoing_recipients_first "
		"ON outgoing_recipients(first);",
		error_r);
	if (rc != 0)
		return rc;
	if (op->record) {
		sqlite3_stmt *st = ts__store_prepare(
			db,
			"INSERT OR IGNORE INTO outgoing_recipients "
			"(address, first) VALUES (?, ?)",
			error_r);
		if (st == NULL)
			return TS_E_IO;
		for (size_t i = 0; i < op->count && rc == 0; i++) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, op->addresses[i], -1,
					  SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, op->now);
			if (sqlite3_step(st) != SQLITE_DONE) {
				*error_r = ts_xstrdup(sqlite3_errmsg(db));
				rc = TS_E_IO;
			}
		}
		ts__store_finalize(st);
		if (rc != 0)
			return rc;
		if ((rc = outgoing_count(db,
					 "DELETE FROM outgoing_messages WHERE "
					 "sent <= ?",
					 since, NULL, &v, error_r)) != 0 ||
		    (rc = outgoing_count(db,
					 "INSERT INTO outgoing_messages (sent) "
					 "VALUES (?)",
					 op->now, NULL, &v, error_r)) != 0)
			return rc;
		return 0;
	}
	if ((rc = outgoing_count(db,
				 "SELECT count(*) FROM outgoing_messages "
				 "WHERE sent > ?",
				 since, NULL, &v, error_r)) != 0)
		return rc;
	op->result.messages = (uint64_t)v;
	if ((rc = outgoing_count(db,
				 "SELECT count(*) FROM outgoing_recipients "
				 "WHERE first > ?",
				 since, NULL, &v, error_r)) != 0)
		return rc;
	op->result.new_recipients = (uint64_t)v;
	for (size_t i = 0; i < op->count; i++) {
		if ((rc = outgoing_count(db,
					 "SELECT count(*) FROM "
					 "outgoing_recipients WHERE ? >= 0 "
					 "AND address = ?",
					 0, op->addresses[i], &v, error_r)) !=
		    0)
			return rc;
		if (v == 0)
			op->result.unknown++;
		if (v == 0 && i == 0)
			op->result.first_unknown = true;
	}
	return 0;
}

static void
outgoing_done(int status, const char *error, void *arg)
{
	struct outgoing_op *op = arg;
	if (op->query_fn != NULL)
		op->query_fn(status, error, &op->result, op->arg);
	else if (op->done_fn != NULL)
		op->done_fn(status, error, op->arg);
	outgoing_op_free(op);
}

static int
outgoing_queue(struct ts_ctx *ctx, const char *account, struct outgoing_op *op)
{
	struct ts_store *store;
	int rc = ts__store_get(ctx, account, &store);
	if (rc != 0) {
		outgoing_op_free(op);
		return rc;
	}
	ts__store_queue(store, outgoing_run, outgoing_done, op);
	ts_store_unref(&store);
	return 0;
}

int
ts_store_outgoing_query(struct ts_ctx *ctx, const char *account,
			const char *const *addresses, size_t count, int64_t now,
			ts_store_outgoing_fn fn, void *arg)
{
	if (ctx == NULL || account == NULL || fn == NULL ||
	    (addresses == NULL && count > 0))
		return TS_E_INVAL;
	struct outgoing_op *op = outgoing_op_new(addresses, count, now, arg);
	op->query_fn = fn;
	return outgoing_queue(ctx, account, op);
}

int
ts_store_outgoing_record(struct ts_ctx *ctx, const char *account,
			 const char *const *addresses, size_t count,
			 int64_t now, ts_store_done_fn fn, void *arg)
{
	if (ctx == NULL || account == NULL || (addresses == NULL && count > 0))
		return TS_E_INVAL;
	struct outgoing_op *op = outgoing_op_new(addresses, count, now, arg);
	op->record = true;
	op->done_fn = fn;
	return outgoing_queue(ctx, account, op);
}
