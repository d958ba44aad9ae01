/*
 * kernel/store/store.c — the asynchronous store: the registry of open
 * account stores (k->stores), one job queue per account with group
 * commit, the public mailbox and message functions of tessera/store.h,
 * and change subscriptions.
 *
 * Threading.  SQLite runs only on the work pool, and only one job per
 * account runs at a time.  Requests (ts_store_*, deliveries) are queued
 * on the account's store; when no job runs, the next job takes *every*
 * queued request and runs them, in order, in ONE write transaction —
 * each inside its own savepoint, so a failing request undoes only itself
 * — followed by one fsync pass over the touched directories and one
 * COMMIT.  Back on the loop, subscribers get the transaction's changes,
 * then each request's callback runs, in queue order.  Requests queued
 * while a job runs wait for the next job: under load, deliveries arriving
 * together share one commit without weakening durability (nothing is
 * reported before its commit).
 *
 * Stores stay open (one SQLite connection each, plus a read connection
 * for ts_store_message_read) until kernel teardown; references only keep
 * API users honest.  Delivery is in deliver.c; the synchronous core in
 * db.c, mailbox.c and message.c.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/store/core.h"

enum store_op_kind {
	STORE_OP_OPEN,
	STORE_OP_MAILBOXES,
	STORE_OP_CREATE,
	STORE_OP_RENAME,
	STORE_OP_DELETE,
	STORE_OP_MESSAGES,
	STORE_OP_FLAGS,
	STORE_OP_MOVE,
	STORE_OP_COPY,
	STORE_OP_EXPUNGE,
	STORE_OP_CUSTOM,
};

/* One queued request: its inputs, its results, its callback. */
struct store_op {
	enum store_op_kind kind;
	struct store_op *next;
	char *name, *name2, *special_use;
	uint32_t *uids;
	size_t count;
	uint32_t uid_first, uid_last;
	struct ts_flag_change change; /* keyword strings owned */
	ts__store_job_fn run; /* STORE_OP_CUSTOM */
	void *run_arg;

	int status;
	char *error;
	struct ts_mailbox_info *boxes;
	struct ts_message_info *messages;
	size_t result_count;

	union {
		ts_store_open_fn open;
		ts_mailbox_list_fn mailboxes;
		ts_message_list_fn messages;
		ts_store_done_fn done;
	} fn;
	void *arg;
};

struct ts_store_sub {
	struct ts_store *store;
	ts_store_change_fn fn;
	void *arg;
	struct ts_store_sub *next;
	bool dead; /* unsubscribed while notifying: freed afterwards */
};

struct ts_store {
	struct ts_kernel *kernel;
	char *account;
	char *data_dir;
	unsigned refs; /* API references; the registry keeps the store */
	struct ts_store *next; /* registry list */

	sqlite3 *db; /* used only by the running job */
	struct ts__stmt_cache cache; /* db's statements (stmt-cache.c) */
	struct store_op *queue, **queue_tail;
	bool busy;
	bool reporting; /* in store_job_done: requests queued wait */
	/* The running job's requests and, after it, its changes. */
	struct store_op *batch;
	struct ts_store_change *changes;
	size_t change_count;
	uint64_t commits;

	struct ts_store_sub *subs;
	unsigned notifying;

	/* ts_store_message_read runs on any pool thread. */
	uv_mutex_t read_lock;
	sqlite3 *read_db;
};

struct ts__stores {
	struct ts_store *list;
};

static void store_job_start(struct ts_store *s);

/* --- registry ------------------------------------------------------------- */

/* Whether the configuration lists the account. */
static bool
store_account_known(struct ts_ctx *ctx, const char *account)
{
	const char *name;
	for (size_t i = 0; (name = ts_account_name(ctx, i)) != NULL; i++)
		if (strcmp(name, account) == 0)
			return true;
	return false;
}

int
ts__store_get(struct ts_ctx *ctx, const char *account,
	      struct ts_store **store_r)
{
	struct ts_kernel *k = ctx->kernel;
	*store_r = NULL;
	if (account == NULL || !store_account_known(ctx, account))
		return TS_E_NOTFOUND;
	if (k->stores == NULL)
		k->stores = ts_xcalloc(1, sizeof(*k->stores));
	for (struct ts_store *s = k->stores->list; s != NULL; s = s->next) {
		if (strcmp(s->account, account) == 0) {
			s->refs++;
			*store_r = s;
			return 0;
		}
	}
	const struct ts_cfg_sect *core =
		k->cfg != NULL ? ts_cfg_find(k->cfg, "core", NULL) : NULL;
	const char *data_dir =
		core != NULL ? ts_cfg_str(core, "data_dir") : NULL;
	if (data_dir == NULL || *data_dir == '\0')
		return TS_E_INVAL;
	struct ts_store *s = ts_xcalloc(1, sizeof(*s));
	s->kernel = k;
	s->account = ts_xstrdup(account);
	s->data_dir = ts_xstrdup(data_dir);
	s->refs = 1;
	s->queue_tail = &s->queue;
	uv_mutex_init(&s->read_lock);
	s->next = k->stores->list;
	k->stores->list = s;
	*store_r = s;
	return 0;
}

uint64_t
ts__store_commit_count(const struct ts_store *store)
{
	return store->commits;
}

const char *
ts_store_account(const struct ts_store *store)
{
	return store->account;
}

void
ts_store_unref(struct ts_store **store)
{
	if (*store == NULL)
		return;
	if ((*store)->refs > 0)
		(*store)->refs--;
	*store = NULL;
}

static void
store_op_free(struct store_op *op)
{
	free(op->name);
	free(op->name2);
	free(op->special_use);
	free(op->uids);
	free((char *)op->change.add_keywords);
	free((char *)op->change.remove_keywords);
	free(op->error);
	ts__store_mailbox_list_free(op->boxes, op->kind == STORE_OP_MAILBOXES
						       ? op->result_count
						       : 0);
	ts__store_message_list_free(op->messages, op->kind == STORE_OP_MESSAGES
							  ? op->result_count
							  : 0);
	free(op);
}

void
ts__stores_free(struct ts_kernel *k)
{
	if (k->stores == NULL)
		return;
	struct ts_store *s = k->stores->list;
	while (s != NULL) {
		struct ts_store *next = s->next;
		/* Nothing runs any more: queued requests are dropped. */
		struct store_op *op = s->queue;
		while (op != NULL) {
			struct store_op *op_next = op->next;
			store_op_free(op);
			op = op_next;
		}
		struct ts_store_sub *sub = s->subs;
		while (sub != NULL) {
			struct ts_store_sub *sub_next = sub->next;
			free(sub);
			sub = sub_next;
		}
		ts__store_db_close(&s->db);
		ts__store_db_close(&s->read_db);
		uv_mutex_destroy(&s->read_lock);
		free(s->account);
		free(s->data_dir);
		free(s);
		s = next;
	}
	free(k->stores);
	k->stores = NULL;
}

/* --- the job (pool thread) ------------------------------------------------ */

static bool
store_op_writes(const struct store_op *op)
{
	return op->kind != STORE_OP_OPEN && op->kind != STORE_OP_MAILBOXES &&
	       op->kind != STORE_OP_MESSAGES;
}

/* Mailbox id by name, with the user-facing error. */
static int
store_mailbox(sqlite3 *db, const char *name, int64_t *id_r, char **error_r)
{
	int ret = ts__store_mailbox_id(db, name, id_r);
	if (ret == TS_E_NOTFOUND)
		*error_r = ts_xstrdup("no such mailbox");
	return ret;
}

/* Run one request inside the job's transaction. */
static int
store_op_run(struct ts_store *s, struct store_op *op)
{
	sqlite3 *db = s->db;
	int64_t a, b;
	int ret;
	switch (op->kind) {
	case STORE_OP_OPEN:
		return 0;
	case STORE_OP_MAILBOXES:
		return ts__store_mailbox_list(db, &op->boxes,
					      &op->result_count);
	case STORE_OP_CREATE:
		return ts__store_mailbox_create(db, op->name, op->special_use,
						&a, &op->error);
	case STORE_OP_RENAME:
		return ts__store_mailbox_rename(db, op->name, op->name2,
						&op->error);
	case STORE_OP_DELETE:
		return ts__store_mailbox_delete(db, op->name, &op->error);
	case STORE_OP_MESSAGES:
		if ((ret = store_mailbox(db, op->name, &a, &op->error)) != 0)
			return ret;
		return ts__store_message_list(db, a, op->uid_first,
					      op->uid_last, &op->messages,
					      &op->result_count);
	case STORE_OP_FLAGS:
		if ((ret = store_mailbox(db, op->name, &a, &op->error)) != 0)
			return ret;
		return ts__store_set_flags(db, a, op->uids, op->count,
					   &op->change, &op->error);
	case STORE_OP_MOVE:
	case STORE_OP_COPY:
		if ((ret = store_mailbox(db, op->name, &a, &op->error)) != 0 ||
		    (ret = store_mailbox(db, op->name2, &b, &op->error)) != 0)
			return ret;
		if (op->kind == STORE_OP_MOVE)
			return ts__store_move(db, a, op->uids, op->count, b,
					      NULL, &op->error);
		return ts__store_copy(db, s->data_dir, s->account, a, op->uids,
				      op->count, b, NULL, &op->error);
	case STORE_OP_EXPUNGE:
		if ((ret = store_mailbox(db, op->name, &a, &op->error)) != 0)
			return ret;
		return ts__store_expunge(db, a, op->uids, op->count,
					 &op->error);
	case STORE_OP_CUSTOM:
		return op->run(db, s->data_dir, s->account, op->run_arg,
			       &op->error);
	}
	return TS_E_INVAL;
}

/* Fail every request of the batch that has not failed yet. */
static void
store_batch_fail(struct ts_store *s, int status, const char *error)
{
	for (struct store_op *op = s->batch; op != NULL; op = op->next) {
		if (op->status != 0)
			continue;
		op->status = status;
		free(op->error);
		op->error = error != NULL ? ts_xstrdup(error) : NULL;
		/* Results read inside a transaction that did not commit
		 * are not to be trusted. */
		if (op->kind == STORE_OP_MAILBOXES)
			ts__store_mailbox_list_free(op->boxes,
						    op->result_count);
		if (op->kind == STORE_OP_MESSAGES)
			ts__store_message_list_free(op->messages,
						    op->result_count);
		op->boxes = NULL;
		op->messages = NULL;
		op->result_count = 0;
	}
}

static void
store_job_body(struct ts_store *s)
{
	char *error = NULL;
	if (s->db == NULL) {
		if (ts__store_db_open(s->data_dir, s->account, &s->db,
				      &error) != 0 ||
		    ts__store_track_changes(s->db) != 0) {
			ts__store_db_close(&s->db);
			ts__store_cache_forget(&s->cache);
			store_batch_fail(s, TS_E_IO,
					 error != NULL ? error
						       : "cannot open store");
			free(error);
			return;
		}
	}
	ts__store_cache_enter(&s->cache, s->db);
	if (ts__store_exec(s->db, "BEGIN IMMEDIATE", &error) != 0) {
		store_batch_fail(s, TS_E_IO, error);
		free(error);
		return;
	}
	bool writes = false;
	for (struct store_op *op = s->batch; op != NULL; op = op->next) {
		if (ts__store_exec(s->db, "SAVEPOINT op", &op->error) != 0) {
			op->status = TS_E_IO;
			continue;
		}
		op->status = store_op_run(s, op);
		if (op->status != 0)
			(void)ts__store_exec(s->db, "ROLLBACK TO op", NULL);
		else if (store_op_writes(op))
			writes = true;
		(void)ts__store_exec(s->db, "RELEASE op", NULL);
	}
	if (ts__store_sync_dirs(s->db, &error) != 0 ||
	    ts__store_take_changes(s->db, &s->changes, &s->change_count) != 0 ||
	    ts__store_exec(s->db, "COMMIT", &error) != 0) {
		(void)ts__store_exec(s->db, "ROLLBACK", NULL);
		ts__store_changes_free(s->changes, s->change_count);
		s->changes = NULL;
		s->change_count = 0;
		store_batch_fail(s, TS_E_IO,
				 error != NULL ? error : "commit failed");
		free(error);
		return;
	}
	ts__store_after_commit(s->db, s->data_dir, s->account);
	if (writes)
		s->commits++;
}

static void
store_job_run(void *arg)
{
	struct ts_store *s = arg;
	store_job_body(s);
	/* The cache is this job's only while it runs on this thread. */
	ts__store_cache_leave();
}

/* --- back on the loop ----------------------------------------------------- */

static void
store_notify(struct ts_store *s, const struct ts_store_change *changes,
	     size_t count)
{
	if (count == 0)
		return;
	s->notifying++;
	for (struct ts_store_sub *sub = s->subs; sub != NULL; sub = sub->next)
		if (!sub->dead)
			sub->fn(changes, count, sub->arg);
	s->notifying--;
	if (s->notifying > 0)
		return;
	for (struct ts_store_sub **p = &s->subs; *p != NULL;) {
		struct ts_store_sub *sub = *p;
		if (sub->dead) {
			*p = sub->next;
			free(sub);
		} else {
			p = &sub->next;
		}
	}
}

/* Run one request's callback. */
static void
store_op_report(struct ts_store *s, struct store_op *op)
{
	switch (op->kind) {
	case STORE_OP_OPEN:
		if (op->status != 0) {
			s->refs--; /* taken when the open was queued */
			op->fn.open(NULL, op->status, op->arg);
		} else {
			op->fn.open(s, 0, op->arg);
		}
		break;
	case STORE_OP_MAILBOXES:
		op->fn.mailboxes(op->status, op->boxes, op->result_count,
				 op->arg);
		break;
	case STORE_OP_MESSAGES:
		op->fn.messages(op->status, op->messages, op->result_count,
				op->arg);
		break;
	default:
		if (op->fn.done != NULL)
			op->fn.done(op->status,
				    op->status != 0 ? op->error : NULL,
				    op->arg);
		break;
	}
}

static void
store_job_done(void *arg, int status)
{
	struct ts_store *s = arg;
	if (status != 0)
		store_batch_fail(s, status, "shutting down");
	struct store_op *batch = s->batch;
	struct ts_store_change *changes = s->changes;
	size_t change_count = s->change_count;
	s->batch = NULL;
	s->changes = NULL;
	s->change_count = 0;
	s->busy = false;

	/* Subscribers first: an IMAP session must send its untagged
	 * responses before the tagged reply its callback writes. */
	s->reporting = true;
	store_notify(s, changes, change_count);
	ts__store_changes_free(changes, change_count);
	while (batch != NULL) {
		struct store_op *next = batch->next;
		store_op_report(s, batch);
		store_op_free(batch);
		batch = next;
	}
	/* Requests the callbacks queued go together into the next job. */
	s->reporting = false;
	if (s->queue != NULL && !s->busy)
		store_job_start(s);
}

/* Take every queued request into one job. */
static void
store_job_start(struct ts_store *s)
{
	s->batch = s->queue;
	s->queue = NULL;
	s->queue_tail = &s->queue;
	s->busy = true;
	int rc = ts_work_submit(&s->kernel->kctx, store_job_run, store_job_done,
				s);
	if (rc != 0)
		store_job_done(s, rc);
}

static void
store_enqueue(struct ts_store *s, struct store_op *op)
{
	*s->queue_tail = op;
	s->queue_tail = &op->next;
	if (!s->busy && !s->reporting)
		store_job_start(s);
}

void
ts__store_queue(struct ts_store *store, ts__store_job_fn run,
		ts_store_done_fn done, void *arg)
{
	struct store_op *op = ts_xcalloc(1, sizeof(*op));
	op->kind = STORE_OP_CUSTOM;
	op->run = run;
	op->run_arg = arg;
	op->fn.done = done;
	op->arg = arg;
	store_enqueue(store, op);
}

/* --- the public API ------------------------------------------------------- */

/* Report an unknown account through the callback, off the caller's
 * stack, as the header promises. */
struct store_open_fail {
	ts_store_open_fn fn;
	void *arg;
	int status;
};

static void
store_nothing(void *arg)
{
	(void)arg;
}

static void
store_open_fail_done(void *arg, int status)
{
	struct store_open_fail *f = arg;
	(void)status;
	f->fn(NULL, f->status, f->arg);
	free(f);
}

int
ts_store_open(struct ts_ctx *ctx, const char *account, ts_store_open_fn fn,
	      void *arg)
{
	if (ctx == NULL || fn == NULL)
		return TS_E_INVAL;
	struct ts_store *s;
	int rc = ts__store_get(ctx, account, &s);
	if (rc != 0) {
		struct store_open_fail *f = ts_xcalloc(1, sizeof(*f));
		*f = (struct store_open_fail){ fn, arg,
					       rc == TS_E_NOTFOUND ? rc
								   : TS_E_IO };
		rc = ts_work_submit(ctx, store_nothing, store_open_fail_done,
				    f);
		if (rc != 0)
			free(f);
		return rc;
	}
	struct store_op *op = ts_xcalloc(1, sizeof(*op));
	op->kind = STORE_OP_OPEN;
	op->fn.open = fn;
	op->arg = arg;
	store_enqueue(s, op);
	return 0;
}

static struct store_op *
store_op_new(enum store_op_kind kind, const char *name, const char *name2,
	     void *arg)
{
	struct store_op *op = ts_xcalloc(1, sizeof(*op));
	op->kind = kind;
	op->name = name != NULL ? ts_xstrdup(name) : NULL;
	op->name2 = name2 != NULL ? ts_xstrdup(name2) : NULL;
	op->arg = arg;
	return op;
}

static uint32_t *
store_uids_dup(const uint32_t *uids, size_t count)
{
	uint32_t *v = ts_xmalloc((count != 0 ? count : 1) * sizeof(*v));
	if (count != 0)
		memcpy(v, uids, count * sizeof(*v));
	return v;
}

int
ts_store_mailboxes(struct ts_store *store, ts_mailbox_list_fn fn, void *arg)
{
	if (store == NULL || fn == NULL)
		return TS_E_INVAL;
	struct store_op *op = store_op_new(STORE_OP_MAILBOXES, NULL, NULL, arg);
	op->fn.mailboxes = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_mailbox_create(struct ts_store *store, const char *name,
			const char *special_use, ts_store_done_fn fn, void *arg)
{
	if (store == NULL || name == NULL)
		return TS_E_INVAL;
	struct store_op *op = store_op_new(STORE_OP_CREATE, name, NULL, arg);
	op->special_use = special_use != NULL ? ts_xstrdup(special_use) : NULL;
	op->fn.done = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_mailbox_rename(struct ts_store *store, const char *from,
			const char *to, ts_store_done_fn fn, void *arg)
{
	if (store == NULL || from == NULL || to == NULL)
		return TS_E_INVAL;
	struct store_op *op = store_op_new(STORE_OP_RENAME, from, to, arg);
	op->fn.done = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_mailbox_delete(struct ts_store *store, const char *name,
			ts_store_done_fn fn, void *arg)
{
	if (store == NULL || name == NULL)
		return TS_E_INVAL;
	struct store_op *op = store_op_new(STORE_OP_DELETE, name, NULL, arg);
	op->fn.done = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_messages(struct ts_store *store, const char *mailbox,
		  uint32_t uid_first, uint32_t uid_last, ts_message_list_fn fn,
		  void *arg)
{
	if (store == NULL || mailbox == NULL || fn == NULL)
		return TS_E_INVAL;
	struct store_op *op =
		store_op_new(STORE_OP_MESSAGES, mailbox, NULL, arg);
	op->uid_first = uid_first;
	op->uid_last = uid_last;
	op->fn.messages = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_set_flags(struct ts_store *store, const char *mailbox,
		   const uint32_t *uids, size_t count,
		   const struct ts_flag_change *change, ts_store_done_fn fn,
		   void *arg)
{
	if (store == NULL || mailbox == NULL || change == NULL ||
	    (uids == NULL && count != 0))
		return TS_E_INVAL;
	struct store_op *op = store_op_new(STORE_OP_FLAGS, mailbox, NULL, arg);
	op->uids = store_uids_dup(uids, count);
	op->count = count;
	op->change.add = change->add;
	op->change.remove = change->remove;
	op->change.add_keywords = change->add_keywords != NULL
					  ? ts_xstrdup(change->add_keywords)
					  : NULL;
	op->change.remove_keywords =
		change->remove_keywords != NULL
			? ts_xstrdup(change->remove_keywords)
			: NULL;
	op->fn.done = fn;
	store_enqueue(store, op);
	return 0;
}

static int
store_uid_op(struct ts_store *store, enum store_op_kind kind, const char *from,
	     const uint32_t *uids, size_t count, const char *to,
	     ts_store_done_fn fn, void *arg)
{
	if (store == NULL || from == NULL || (uids == NULL && count != 0) ||
	    (kind != STORE_OP_EXPUNGE && to == NULL))
		return TS_E_INVAL;
	struct store_op *op = store_op_new(kind, from, to, arg);
	op->uids = store_uids_dup(uids, count);
	op->count = count;
	op->fn.done = fn;
	store_enqueue(store, op);
	return 0;
}

int
ts_store_move(struct ts_store *store, const char *from, const uint32_t *uids,
	      size_t count, const char *to, ts_store_done_fn fn, void *arg)
{
	return store_uid_op(store, STORE_OP_MOVE, from, uids, count, to, fn,
			    arg);
}

int
ts_store_copy(struct ts_store *store, const char *from, const uint32_t *uids,
	      size_t count, const char *to, ts_store_done_fn fn, void *arg)
{
	return store_uid_op(store, STORE_OP_COPY, from, uids, count, to, fn,
			    arg);
}

int
ts_store_expunge(struct ts_store *store, const char *mailbox,
		 const uint32_t *uids, size_t count, ts_store_done_fn fn,
		 void *arg)
{
	return store_uid_op(store, STORE_OP_EXPUNGE, mailbox, uids, count, NULL,
			    fn, arg);
}

/* --- reading a message (any pool thread) ---------------------------------- */

int
ts_store_message_read(struct ts_store *store, int64_t message_id, int *fd_r,
		      char **prefix_r, size_t *prefix_len_r)
{
	*fd_r = -1;
	*prefix_r = NULL;
	*prefix_len_r = 0;
	int ret = TS_E_NOTFOUND;
	uv_mutex_lock(&store->read_lock);
	if (store->read_db == NULL) {
		char *dir =
			ts__store_account_dir(store->data_dir, store->account);
		char *path = ts_xasprintf("%s/index.db", dir);
		if (sqlite3_open_v2(path, &store->read_db,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				    NULL) != SQLITE_OK)
			ts__store_db_close(&store->read_db);
		else
			sqlite3_busy_timeout(store->read_db, 10000);
		free(dir);
		free(path);
	}
	sqlite3_stmt *st =
		store->read_db == NULL
			? NULL
			: ts__store_prepare(store->read_db,
					    "SELECT prefix FROM messages"
					    " WHERE id = ?",
					    NULL);
	if (st == NULL)
		ret = TS_E_IO;
	else
		sqlite3_bind_int64(st, 1, message_id);
	if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		const void *blob = sqlite3_column_blob(st, 0);
		char *prefix = ts_xmalloc(len + 1);
		if (len > 0)
			memcpy(prefix, blob, len);
		prefix[len] = '\0';
		char *path = ts__store_message_path(store->data_dir,
						    store->account, message_id);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		if (fd < 0) {
			free(prefix);
		} else {
			*fd_r = fd;
			*prefix_r = prefix;
			*prefix_len_r = len;
			ret = 0;
		}
	}
	ts__store_finalize(st);
	uv_mutex_unlock(&store->read_lock);
	return ret;
}

/* --- subscriptions -------------------------------------------------------- */

struct ts_store_sub *
ts_store_subscribe(struct ts_store *store, ts_store_change_fn fn, void *arg)
{
	if (store == NULL || fn == NULL)
		return NULL;
	struct ts_store_sub *sub = ts_xcalloc(1, sizeof(*sub));
	sub->store = store;
	sub->fn = fn;
	sub->arg = arg;
	/* Appended: subscribers hear of changes in subscription order. */
	struct ts_store_sub **p = &store->subs;
	while (*p != NULL)
		p = &(*p)->next;
	*p = sub;
	return sub;
}

void
ts_store_unsubscribe(struct ts_store_sub **subp)
{
	struct ts_store_sub *sub = *subp;
	if (sub == NULL)
		return;
	*subp = NULL;
	struct ts_store *s = sub->store;
	if (s->notifying > 0) {
		sub->dead = true;
		return;
	}
	for (struct ts_store_sub **p = &s->subs; *p != NULL; p = &(*p)->next) {
		if (*p == sub) {
			*p = sub->next;
			break;
		}
	}
	free(sub);
}
