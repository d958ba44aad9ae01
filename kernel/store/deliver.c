/*
 * kernel/store/deliver.c — ts_store_deliver: one spool file to one or
 * more (account, mailbox) targets.
 *
 * Steps: (1) on a pool thread, check the spool file; (2) per account,
 * queue a request on the account's store (store.c), whose job hardlinks
 * the spool file into the account (copy, fsynced, when it cannot link,
 * e.g. across file systems), inserts the rows, and shares one syncfs —
 * making every linked file and directory durable at once — and one
 * COMMIT with every other request of that job (group commit for files
 * and index alike); (3) when every account has reported, call back once.
 *
 * Several accounts have several databases, so there is no transaction
 * spanning them: if one account fails, the delivery reports failure, but
 * accounts that already committed keep their copy.  A retry may then
 * deliver twice to those accounts, which SMTP's at-least-once semantics
 * allow; it never loses mail.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/store/core.h"

struct deliver;

/* The targets of one delivery that live in one account. */
struct deliver_part {
	struct deliver *d;
	struct ts_store *store;
	size_t *indexes; /* into d->targets */
	size_t count;
};

struct deliver {
	struct ts_ctx *ctx;
	char *spool_path;
	char *prefix;
	size_t prefix_len;
	struct ts_delivery_target *targets; /* strings owned */
	size_t count;
	uint32_t *uids;
	struct deliver_part *parts;
	size_t part_count, pending;
	int status;
	ts_deliver_fn fn;
	void *arg;
};

static void
deliver_free(struct deliver *d)
{
	for (size_t i = 0; i < d->count; i++) {
		free((char *)d->targets[i].account);
		free((char *)d->targets[i].mailbox);
		free((char *)d->targets[i].keywords);
	}
	for (size_t i = 0; i < d->part_count; i++) {
		ts_store_unref(&d->parts[i].store);
		free(d->parts[i].indexes);
	}
	free(d->parts);
	free(d->targets);
	free(d->uids);
	free(d->prefix);
	free(d->spool_path);
	free(d);
}

static void
deliver_finish(struct deliver *d)
{
	d->fn(d->status, d->status == 0 ? d->uids : NULL,
	      d->status == 0 ? d->count : 0, d->arg);
	deliver_free(d);
}

/* In an account's job (pool thread): add the message for its targets. */
static int
deliver_run(sqlite3 *db, const char *data_dir, const char *account, void *arg,
	    char **error_r)
{
	struct deliver_part *part = arg;
	struct deliver *d = part->d;
	for (size_t i = 0; i < part->count; i++) {
		const struct ts_delivery_target *t =
			&d->targets[part->indexes[i]];
		struct ts__store_new_message msg = {
			.mailbox = t->mailbox,
			.prefix = d->prefix,
			.prefix_len = d->prefix_len,
			.flags = t->flags,
			.keywords = t->keywords,
			.received = t->received,
			.from_reject = t->from_reject,
			.link_from = d->spool_path,
			.defer_sync = true,
		};
		int64_t id;
		int rc = ts__store_add_message(db, data_dir, account, &msg,
					       &d->uids[part->indexes[i]], &id,
					       error_r);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Loop: one account has committed (or failed). */
static void
deliver_part_done(int status, const char *error, void *arg)
{
	struct deliver_part *part = arg;
	struct deliver *d = part->d;
	if (status != 0) {
		ts_log(d->ctx, TS_LOG_ERROR,
		       "delivery failed account=%s error=%s",
		       ts_store_account(part->store),
		       error != NULL ? error : ts_strerror(status));
		if (d->status == 0)
			d->status = status;
	}
	if (--d->pending == 0)
		deliver_finish(d);
}

/*
 * Pool: check the spool file is there.  Its content is made durable
 * later, together with every other message of the account's job, by one
 * syncfs before the commit (defer_sync), not by an fsync of its own.
 */
static void
deliver_prepare(void *arg)
{
	struct deliver *d = arg;
	int fd = open(d->spool_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		d->status = errno == ENOENT ? TS_E_NOTFOUND : TS_E_IO;
		return;
	}
	close(fd);
}

/* Loop: queue one request per account. */
static void
deliver_prepared(void *arg, int status)
{
	struct deliver *d = arg;
	if (status != 0 && d->status == 0)
		d->status = status;
	if (d->status != 0) {
		ts_log(d->ctx, TS_LOG_ERROR,
		       "delivery failed spool=%s error=%s", d->spool_path,
		       ts_strerror(d->status));
		deliver_finish(d);
		return;
	}
	d->parts = ts_xcalloc(d->count, sizeof(*d->parts));
	for (size_t i = 0; i < d->count; i++) {
		struct deliver_part *part = NULL;
		for (size_t j = 0; j < d->part_count; j++)
			if (strcmp(ts_store_account(d->parts[j].store),
				   d->targets[i].account) == 0)
				part = &d->parts[j];
		if (part == NULL) {
			struct ts_store *s;
			int rc = ts__store_get(d->ctx, d->targets[i].account,
					       &s);
			if (rc != 0) {
				/* The configuration changed under us. */
				d->status = rc;
				deliver_finish(d);
				return;
			}
			part = &d->parts[d->part_count++];
			part->d = d;
			part->store = s;
			part->indexes = ts_xcalloc(d->count, sizeof(size_t));
		}
		part->indexes[part->count++] = i;
	}
	/* Count first: a part may finish only on a later loop turn, but
	 * keep the invariant obvious. */
	d->pending = d->part_count;
	for (size_t j = 0; j < d->part_count; j++)
		ts__store_queue(d->parts[j].store, deliver_run,
				deliver_part_done, &d->parts[j]);
}

int
ts_store_deliver(struct ts_ctx *ctx, const char *spool_path, const char *prefix,
		 const struct ts_delivery_target *targets, size_t count,
		 ts_deliver_fn fn, void *arg)
{
	if (ctx == NULL || spool_path == NULL || targets == NULL ||
	    count == 0 || fn == NULL)
		return TS_E_INVAL;
	for (size_t i = 0; i < count; i++) {
		const char *name;
		bool known = false;
		if (targets[i].account == NULL)
			return TS_E_INVAL;
		for (size_t j = 0; (name = ts_account_name(ctx, j)) != NULL;
		     j++)
			if (strcmp(name, targets[i].account) == 0)
				known = true;
		if (!known)
			return TS_E_NOTFOUND;
		const char *mailbox = targets[i].mailbox != NULL
					      ? targets[i].mailbox
					      : "Inbox";
		if (ts__store_mailbox_name_problem(mailbox) != NULL)
			return TS_E_INVAL;
	}
	struct deliver *d = ts_xcalloc(1, sizeof(*d));
	d->ctx = ctx;
	d->spool_path = ts_xstrdup(spool_path);
	d->prefix = ts_xstrdup(prefix != NULL ? prefix : "");
	d->prefix_len = strlen(d->prefix);
	d->count = count;
	d->targets = ts_xcalloc(count, sizeof(*d->targets));
	d->uids = ts_xcalloc(count, sizeof(*d->uids));
	for (size_t i = 0; i < count; i++) {
		d->targets[i] = targets[i];
		d->targets[i].account = ts_xstrdup(targets[i].account);
		d->targets[i].mailbox = ts_xstrdup(targets[i].mailbox != NULL
							   ? targets[i].mailbox
							   : "Inbox");
		d->targets[i].keywords =
			targets[i].keywords != NULL
				? ts_xstrdup(targets[i].keywords)
				: NULL;
	}
	d->fn = fn;
	d->arg = arg;
	int rc = ts_work_submit(ctx, deliver_prepare, deliver_prepared, d);
	if (rc != 0) {
		deliver_free(d);
		return rc;
	}
	return 0;
}
