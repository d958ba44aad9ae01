/*
 * kernel/store/sync-ops.c — store requests that a synchronising client
 * (IMAP UIDPLUS, CONDSTORE, QRESYNC, subscriptions) needs beyond the
 * basic ones of store.c: copy and move that report the new UIDs, a
 * conditional flag change (UNCHANGEDSINCE), the tombstones expunged after
 * a modseq, and setting a mailbox's subscription.
 *
 * Each is queued as a custom job on the account's store (ts__store_queue),
 * so it runs in the same serialised, group-committed transactions as
 * every other request, and its callback runs after the commit, after the
 * subscribers heard of its changes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/store/core.h"

/* One request of this file: inputs, results, callback. */
struct sync_op {
	char *from, *to;
	uint32_t *uids;
	size_t count;
	bool move;
	bool subscribe;
	uint64_t modseq;
	struct ts_flag_change change;
	/* results */
	uint32_t *new_uids;
	uint32_t uidvalidity;
	uint32_t *list;
	size_t list_count;
	union {
		ts_store_uids_fn uids;
		ts_store_flags_fn flags;
		ts_store_uid_list_fn list;
		ts_store_done_fn done;
	} fn;
	void *arg;
};

static void
sync_op_free(struct sync_op *op)
{
	free(op->from);
	free(op->to);
	free(op->uids);
	free((char *)op->change.add_keywords);
	free((char *)op->change.remove_keywords);
	free(op->new_uids);
	free(op->list);
	free(op);
}

static struct sync_op *
sync_op_new(const char *from, const uint32_t *uids, size_t count, void *arg)
{
	struct sync_op *op = ts_xcalloc(1, sizeof(*op));
	op->from = from != NULL ? ts_xstrdup(from) : NULL;
	op->uids = ts_xmalloc((count != 0 ? count : 1) * sizeof(*uids));
	if (count != 0)
		memcpy(op->uids, uids, count * sizeof(*uids));
	op->count = count;
	op->arg = arg;
	return op;
}

static int
sync_mailbox(sqlite3 *db, const char *name, int64_t *id_r, char **error_r)
{
	int ret = ts__store_mailbox_id(db, name, id_r);
	if (ret == TS_E_NOTFOUND)
		*error_r = ts_xstrdup("no such mailbox");
	return ret;
}

/* Append a UID to the op's result list. */
static void
sync_list_add(struct sync_op *op, uint32_t uid)
{
	op->list =
		ts_xrealloc(op->list, (op->list_count + 1) * sizeof(*op->list));
	op->list[op->list_count++] = uid;
}

/* --- copy / move with the new UIDs ---------------------------------------- */

static int
sync_copy_run(sqlite3 *db, const char *data_dir, const char *account, void *arg,
	      char **error_r)
{
	struct sync_op *op = arg;
	int64_t a, b;
	int ret;
	if ((ret = sync_mailbox(db, op->from, &a, error_r)) != 0 ||
	    (ret = sync_mailbox(db, op->to, &b, error_r)) != 0)
		return ret;
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT uidvalidity FROM mailboxes WHERE id = ?", error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, b);
	if (sqlite3_step(st) == SQLITE_ROW)
		op->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
	ts__store_finalize(st);
	op->new_uids = ts_xcalloc(op->count != 0 ? op->count : 1,
				  sizeof(*op->new_uids));
	if (op->move)
		return ts__store_move(db, a, op->uids, op->count, b,
				      op->new_uids, error_r);
	return ts__store_copy(db, data_dir, account, a, op->uids, op->count, b,
			      op->new_uids, error_r);
}

static void
sync_copy_done(int status, const char *error, void *arg)
{
	struct sync_op *op = arg;
	/* Only the pairs that were copied, in request order. */
	size_t n = 0;
	for (size_t i = 0; status == 0 && i < op->count; i++) {
		if (op->new_uids[i] == 0)
			continue;
		op->uids[n] = op->uids[i];
		op->new_uids[n] = op->new_uids[i];
		n++;
	}
	op->fn.uids(status, error, op->uidvalidity, op->uids, op->new_uids, n,
		    op->arg);
	sync_op_free(op);
}

int
ts_store_copy_uids(struct ts_store *store, const char *from,
		   const uint32_t *uids, size_t count, const char *to,
		   bool move, ts_store_uids_fn fn, void *arg)
{
	if (store == NULL || from == NULL || to == NULL || fn == NULL ||
	    (uids == NULL && count != 0))
		return TS_E_INVAL;
	struct sync_op *op = sync_op_new(from, uids, count, arg);
	op->to = ts_xstrdup(to);
	op->move = move;
	op->fn.uids = fn;
	ts__store_queue(store, sync_copy_run, sync_copy_done, op);
	return 0;
}

/* --- conditional flag change ---------------------------------------------- */

static int
sync_flags_run(sqlite3 *db, const char *data_dir, const char *account,
	       void *arg, char **error_r)
{
	(void)data_dir;
	(void)account;
	struct sync_op *op = arg;
	int64_t box;
	int ret = sync_mailbox(db, op->from, &box, error_r);
	if (ret != 0)
		return ret;
	uint32_t *apply =
		ts_xmalloc((op->count != 0 ? op->count : 1) * sizeof(*apply));
	size_t n = 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT modseq FROM messages WHERE mailbox_id = ? AND uid = ?",
		error_r);
	if (st == NULL) {
		free(apply);
		return TS_E_IO;
	}
	for (size_t i = 0; i < op->count; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, box);
		sqlite3_bind_int64(st, 2, op->uids[i]);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue; /* gone: nothing to change, not "modified" */
		uint64_t modseq = (uint64_t)sqlite3_column_int64(st, 0);
		if (op->modseq != 0 && modseq > op->modseq)
			sync_list_add(op, op->uids[i]);
		else
			apply[n++] = op->uids[i];
	}
	ts__store_finalize(st);
	ret = ts__store_set_flags(db, box, apply, n, &op->change, error_r);
	free(apply);
	return ret;
}

static void
sync_flags_done(int status, const char *error, void *arg)
{
	struct sync_op *op = arg;
	op->fn.flags(status, error, op->list, status == 0 ? op->list_count : 0,
		     op->arg);
	sync_op_free(op);
}

int
ts_store_set_flags_since(struct ts_store *store, const char *mailbox,
			 const uint32_t *uids, size_t count,
			 const struct ts_flag_change *change,
			 uint64_t unchanged_since, ts_store_flags_fn fn,
			 void *arg)
{
	if (store == NULL || mailbox == NULL || change == NULL || fn == NULL ||
	    (uids == NULL && count != 0))
		return TS_E_INVAL;
	struct sync_op *op = sync_op_new(mailbox, uids, count, arg);
	op->modseq = unchanged_since;
	op->change.add = change->add;
	op->change.remove = change->remove;
	op->change.add_keywords = change->add_keywords != NULL
					  ? ts_xstrdup(change->add_keywords)
					  : NULL;
	op->change.remove_keywords =
		change->remove_keywords != NULL
			? ts_xstrdup(change->remove_keywords)
			: NULL;
	op->fn.flags = fn;
	ts__store_queue(store, sync_flags_run, sync_flags_done, op);
	return 0;
}

/* --- tombstones ------------------------------------------------------------
 */

static int
sync_vanished_run(sqlite3 *db, const char *data_dir, const char *account,
		  void *arg, char **error_r)
{
	(void)data_dir;
	(void)account;
	struct sync_op *op = arg;
	int64_t box;
	int ret = sync_mailbox(db, op->from, &box, error_r);
	if (ret != 0)
		return ret;
	/* A UID moved back in is not vanished: it is still a message. */
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?"
		" AND uid NOT IN (SELECT uid FROM messages"
		" WHERE mailbox_id = ?) ORDER BY uid",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, box);
	sqlite3_bind_int64(st, 2, (int64_t)op->modseq);
	sqlite3_bind_int64(st, 3, box);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		sync_list_add(op, (uint32_t)sqlite3_column_int64(st, 0));
	ts__store_finalize(st);
	return rc == SQLITE_DONE ? 0
				 : ts__store_sql_error(db, "vanished", error_r);
}

static void
sync_list_done(int status, const char *error, void *arg)
{
	struct sync_op *op = arg;
	(void)error;
	op->fn.list(status, op->list, status == 0 ? op->list_count : 0,
		    op->arg);
	sync_op_free(op);
}

int
ts_store_vanished(struct ts_store *store, const char *mailbox,
		  uint64_t since_modseq, ts_store_uid_list_fn fn, void *arg)
{
	if (store == NULL || mailbox == NULL || fn == NULL)
		return TS_E_INVAL;
	struct sync_op *op = sync_op_new(mailbox, NULL, 0, arg);
	op->modseq = since_modseq;
	op->fn.list = fn;
	ts__store_queue(store, sync_vanished_run, sync_list_done, op);
	return 0;
}

/* --- subscriptions ---------------------------------------------------------
 */

static int
sync_subscribe_run(sqlite3 *db, const char *data_dir, const char *account,
		   void *arg, char **error_r)
{
	(void)data_dir;
	(void)account;
	struct sync_op *op = arg;
	int64_t box;
	int ret = sync_mailbox(db, op->from, &box, error_r);
	if (ret != 0)
		return ret;
	sqlite3_stmt *st = ts__store_prepare(
		db, "UPDATE mailboxes SET subscribed = ? WHERE id = ?",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int(st, 1, op->subscribe ? 1 : 0);
	sqlite3_bind_int64(st, 2, box);
	ret = sqlite3_step(st) == SQLITE_DONE
		      ? 0
		      : ts__store_sql_error(db, "subscribe", error_r);
	ts__store_finalize(st);
	return ret;
}

static void
sync_done_done(int status, const char *error, void *arg)
{
	struct sync_op *op = arg;
	if (op->fn.done != NULL)
		op->fn.done(status, error, op->arg);
	sync_op_free(op);
}

int
ts_store_mailbox_subscribe(struct ts_store *store, const char *name,
			   bool subscribe, ts_store_done_fn fn, void *arg)
{
	if (store == NULL || name == NULL)
		return TS_E_INVAL;
	struct sync_op *op = sync_op_new(name, NULL, 0, arg);
	op->subscribe = subscribe;
	op->fn.done = fn;
	ts__store_queue(store, sync_subscribe_run, sync_done_done, op);
	return 0;
}
