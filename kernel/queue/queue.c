/*
 * kernel/queue/queue.c — the outbound queue at run time.
 *
 * It keeps the schedule in memory (one entry per queued message and
 * recipient domain, loaded from the index at start), adds messages
 * (ts_queue_add), and starts a delivery for each due entry up to
 * [queue] max_deliveries at once; a timer wakes it for the next due
 * entry.  What a delivery does and how its results are recorded is in
 * delivery.c; the index and files in db.c; the [queue] keys are here.
 */
#include "config.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/queue/queue-private.h"

const struct ts_cfg_key ts__queue_keys[] = {
	{ .name = "retry_first",
	  .type = TS_CFG_DURATION,
	  .default_value = "450s",
	  .doc = "wait before the first retry of a temporary failure; each "
		 "further retry waits twice as long (up to retry_max)" },
	{ .name = "retry_max",
	  .type = TS_CFG_DURATION,
	  .default_value = "4h",
	  .doc = "longest wait between two attempts" },
	{ .name = "give_up_after",
	  .type = TS_CFG_DURATION,
	  .default_value = "5d",
	  .doc = "age at which a message still failing temporarily fails "
		 "for good (failure DSN)" },
	{ .name = "delay_notice_after",
	  .type = TS_CFG_DURATION,
	  .default_value = "4h",
	  .doc = "age at which the sender gets one delay DSN for recipients "
		 "still not delivered (0: never)" },
	{ .name = "max_deliveries",
	  .type = TS_CFG_INT,
	  .default_value = "50",
	  .min = 1,
	  .max = 10000,
	  .doc = "deliveries under way at once" },
	{ .name = NULL },
};

void
ts__queue_settings_read(const struct ts_cfg *cfg,
			struct ts__queue_settings *set)
{
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "queue", NULL);
	/* Without a [queue] section the keys' defaults apply. */
	static const struct ts__queue_settings defaults = {
		.retry_first_ms = 450000,
		.retry_max_ms = 4 * 3600 * 1000ULL,
		.give_up_ms = 5 * 24 * 3600 * 1000ULL,
		.delay_notice_ms = 4 * 3600 * 1000ULL,
		.max_deliveries = 50,
	};
	*set = defaults;
	if (s == NULL)
		return;
	set->retry_first_ms = ts_cfg_duration_ms(s, "retry_first");
	set->retry_max_ms = ts_cfg_duration_ms(s, "retry_max");
	set->give_up_ms = ts_cfg_duration_ms(s, "give_up_after");
	set->delay_notice_ms = ts_cfg_duration_ms(s, "delay_notice_after");
	set->max_deliveries = (unsigned)ts_cfg_int(s, "max_deliveries");
	if (set->retry_first_ms == 0)
		set->retry_first_ms = 1;
}

int64_t
ts__queue_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the schedule ----------------------------------------------------------- */

static void ts_queue_schedule(struct ts__queue *q);

static void
ts_queue_timer_fired(struct ts_timer *timer, void *arg)
{
	(void)timer;
	ts_queue_schedule(arg);
}

struct ts_queue_start {
	struct ts__queue *q;
	struct ts__qentry *e;
	struct ts__qload load;
};

static int
ts_queue_load_job(struct ts__qjob_env *env, void *arg)
{
	struct ts_queue_start *st = arg;
	return ts__queue_db_load(env->db, st->e->msg_id, st->e->domain,
				 &st->load);
}

static void
ts_queue_load_done(int status, void *arg)
{
	struct ts_queue_start *st = arg;
	struct ts__queue *q = st->q;
	struct ts__qentry *e = st->e;
	if (status != 0 || st->load.rcpt_count == 0 || q->stopping) {
		if (status != 0 && status != TS_E_NOTFOUND)
			ts_log(&q->kernel->kctx, TS_LOG_ERROR,
			       "queue: cannot load message id=%" PRId64
			       " domain=%s: %s",
			       e->msg_id, e->domain, ts_strerror(status));
		ts__queue_load_clear(&st->load);
		free(st);
		/* Nothing (left) to send there, or an index error. */
		ts__queue_entry_done(q, e, status == 0 ||
					   status == TS_E_NOTFOUND);
		return;
	}
	ts__delivery_new(q, e, &st->load); /* takes the load */
	free(st);
}

static void
ts_queue_start_entry(struct ts__queue *q, struct ts__qentry *e)
{
	e->busy = true;
	ts__qsched_update(&q->sched, e);
	q->in_flight++;
	struct ts_queue_start *st = ts_xcalloc(1, sizeof(*st));
	st->q = q;
	st->e = e;
	ts__qjobs_add(q->jobs, ts_queue_load_job, ts_queue_load_done, st,
		      false);
}

/* Start what is due; arm the timer for the next. */
static void
ts_queue_schedule(struct ts__queue *q)
{
	if (q->stopping)
		return;
	int64_t now = ts__queue_now_ms();
	struct ts__qentry *e;
	while (q->in_flight < q->set.max_deliveries &&
	       (e = ts__qsched_next(&q->sched)) != NULL && e->next_ms <= now)
		ts_queue_start_entry(q, e);
	if (q->timer == NULL)
		return;
	e = ts__qsched_next(&q->sched);
	if (e == NULL || q->in_flight >= q->set.max_deliveries) {
		/* Finishing deliveries call us again. */
		ts_timer_stop(q->timer);
		return;
	}
	int64_t wait = e->next_ms - now;
	ts_timer_start(q->timer, wait > 0 ? (uint64_t)wait : 1, 0);
}

void
ts__queue_reschedule(struct ts__queue *q)
{
	ts_queue_schedule(q);
}

bool
ts__queue_drop_entry(struct ts__queue *q, struct ts__qentry *e)
{
	if (e->busy) {
		struct ts_delivery **p = &q->deliveries;
		while (*p != NULL && (*p)->entry != e)
			p = &(*p)->next;
		if (*p == NULL)
			return false; /* its bookkeeping will find it gone */
		struct ts_delivery *d = *p;
		*p = d->next;
		d->next = NULL;
		if (d->started && d->transport->cancel != NULL)
			d->transport->cancel(d->transport_ctx, d);
		ts__delivery_free(d);
		q->in_flight--;
	}
	ts__qsched_remove(&q->sched, e);
	return true;
}

void
ts__queue_entry_done(struct ts__queue *q, struct ts__qentry *e, bool gone)
{
	q->in_flight--;
	e->busy = false;
	if (gone)
		ts__qsched_remove(&q->sched, e);
	else
		ts__qsched_update(&q->sched, e);
	ts_queue_schedule(q);
}

/* --- adding ----------------------------------------------------------------- */

struct ts_queue_add_req {
	struct ts__queue *q;
	struct ts__qnew m;
	/* owned copies behind m's pointers */
	struct ts_txn_rcpt **rcpts;
	char *prefix, *spool_path, *account, *message_id;
	struct ts_txn_mail mail_copy;
	int64_t id;
	char *error;
	ts_queue_add_fn fn;
	void *arg;
};

static int
ts_queue_add_job(struct ts__qjob_env *env, void *arg)
{
	struct ts_queue_add_req *r = arg;
	return ts__queue_db_add(env->db, env->data_dir, &r->m, &r->id,
				&r->error);
}

static void
ts_queue_add_req_free(struct ts_queue_add_req *r)
{
	for (size_t i = 0; i < r->m.rcpt_count; i++) {
		free((char *)r->rcpts[i]->address);
		free((char *)r->rcpts[i]->localpart);
		free((char *)r->rcpts[i]->domain);
		free((char *)r->rcpts[i]->orcpt_type);
		free((char *)r->rcpts[i]->orcpt);
		free(r->rcpts[i]);
	}
	free(r->rcpts);
	free((char *)r->mail_copy.address);
	free((char *)r->mail_copy.localpart);
	free((char *)r->mail_copy.domain);
	free((char *)r->mail_copy.envid);
	free(r->prefix);
	free(r->spool_path);
	free(r->account);
	free(r->message_id);
	free(r->error);
	free(r);
}

static void
ts_queue_add_done(int status, void *arg)
{
	struct ts_queue_add_req *r = arg;
	struct ts__queue *q = r->q;
	if (status != 0) {
		ts_log(&q->kernel->kctx, TS_LOG_ERROR,
		       "queue: cannot queue message from=<%s>: %s",
		       r->m.mail.address,
		       r->error != NULL ? r->error : ts_strerror(status));
	} else {
		ts_log(&q->kernel->kctx, TS_LOG_INFO,
		       "queued id=%" PRId64 " from=<%s> rcpts=%zu size=%" PRIu64,
		       r->id, r->m.mail.address, r->m.rcpt_count, r->m.size);
		for (size_t i = 0; i < r->m.rcpt_count; i++) {
			struct ts__qentry e = {
				.msg_id = r->id,
				.domain = (char *)r->rcpts[i]->domain,
				.next_ms = r->m.now_ms,
				.created_ms = r->m.now_ms,
			};
			(void)ts__qsched_add(&q->sched, &e);
		}
		ts_queue_schedule(q);
	}
	r->fn(status, status == 0 ? r->id : 0, r->arg);
	ts_queue_add_req_free(r);
}

static char *
ts_queue_dup(const char *s)
{
	return s != NULL ? ts_xstrdup(s) : NULL;
}

int
ts_queue_add(struct ts_ctx *ctx, const struct ts_txn *txn, const char *prefix,
	     ts_queue_add_fn fn, void *arg)
{
	struct ts__queue *q = ctx->kernel->queue;
	if (q == NULL || q->stopping)
		return TS_E_STATE;
	const struct ts_txn_mail *mail = ts_txn_mail(txn);
	if (mail == NULL || ts_txn_message_path(txn) == NULL || fn == NULL)
		return TS_E_INVAL;
	struct ts_queue_add_req *r = ts_xcalloc(1, sizeof(*r));
	r->q = q;
	r->fn = fn;
	r->arg = arg;
	for (size_t i = 0; i < ts_txn_rcpt_count(txn); i++) {
		const struct ts_txn_rcpt *src = ts_txn_rcpt(txn, i);
		if (src->account != NULL)
			continue;
		struct ts_txn_rcpt *c = ts_xcalloc(1, sizeof(*c));
		c->address = ts_xstrdup(src->address);
		c->localpart = ts_xstrdup(src->localpart);
		/* Domains compare case-insensitively: keep one spelling. */
		char *domain = ts_xstrdup(src->domain);
		for (char *p = domain; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		c->domain = domain;
		c->notify = src->notify;
		c->orcpt_type = ts_queue_dup(src->orcpt_type);
		c->orcpt = ts_queue_dup(src->orcpt);
		r->rcpts = ts_xrealloc(r->rcpts, (r->m.rcpt_count + 1) *
							 sizeof(*r->rcpts));
		r->rcpts[r->m.rcpt_count++] = c;
	}
	if (r->m.rcpt_count == 0) {
		ts_queue_add_req_free(r);
		return TS_E_INVAL;
	}
	r->mail_copy = *mail;
	r->mail_copy.address = ts_xstrdup(mail->address);
	r->mail_copy.localpart = ts_xstrdup(mail->localpart);
	r->mail_copy.domain = ts_xstrdup(mail->domain);
	r->mail_copy.envid = ts_queue_dup(mail->envid);
	r->prefix = ts_xstrdup(prefix != NULL ? prefix : "");
	r->spool_path = ts_xstrdup(ts_txn_message_path(txn));
	r->account = ts_queue_dup(ts_txn_account(txn));
	r->m = (struct ts__qnew){
		.mail = r->mail_copy,
		.account = r->account,
		.message_id = NULL,
		.prefix = r->prefix,
		.prefix_len = strlen(r->prefix),
		.spool_path = r->spool_path,
		.size = strlen(r->prefix) + ts_txn_message_size(txn),
		.rcpts = (const struct ts_txn_rcpt *const *)r->rcpts,
		.rcpt_count = r->m.rcpt_count,
		.now_ms = ts__queue_now_ms(),
	};
	ts__qjobs_add(q->jobs, ts_queue_add_job, ts_queue_add_done, r, true);
	return 0;
}

/* --- start and stop --------------------------------------------------------- */

/*
 * DSN files left by a crash between recording a failure and delivering
 * its report: deliver them now (start-up, before serving; reading a
 * directory blocks only here).
 */
static void
ts_queue_resend_dsns(struct ts__queue *q)
{
	char *dir = ts_xasprintf("%s/queue", q->data_dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char *account = ts__dsn_file_account(e->d_name);
		if (account == NULL)
			continue;
		ts_log(&q->kernel->kctx, TS_LOG_INFO,
		       "queue: delivering DSN left from before file=%s "
		       "account=%s",
		       e->d_name, account);
		ts__dsn_deliver(q, ts_xasprintf("%s/%s", dir, e->d_name),
				account);
		free(account);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

int
ts__queue_start(struct ts_kernel *k, char **error_r)
{
	const struct ts_cfg_sect *core = ts_cfg_find(k->cfg, "core", NULL);
	const char *data_dir = ts_cfg_str(core, "data_dir");
	sqlite3 *db;
	if (ts__queue_db_open(data_dir, &db, error_r) != 0)
		return TS_E_IO;
	struct ts__qentry *entries;
	size_t count;
	if (ts__queue_db_entries(db, &entries, &count) != 0) {
		*error_r = ts_xasprintf("queue index %s/queue/index.db: %s",
					data_dir, sqlite3_errmsg(db));
		ts__queue_db_close(&db);
		return TS_E_IO;
	}
	struct ts__queue *q = ts_xcalloc(1, sizeof(*q));
	q->kernel = k;
	q->data_dir = ts_xstrdup(data_dir);
	const char *host = ts_cfg_str(core, "hostname");
	q->hostname = ts_xstrdup(host != NULL && host[0] != '\0' ? host
								: "localhost");
	ts__queue_settings_read(k->cfg, &q->set);
	q->jobs = ts__qjobs_new(k, db, data_dir);
	for (size_t i = 0; i < count; i++)
		(void)ts__qsched_add(&q->sched, &entries[i]);
	ts__queue_entries_free(entries, count);
	q->timer = ts_timer_new(&k->kctx, ts_queue_timer_fired, q);
	k->queue = q;
	if (q->sched.count > 0)
		ts_log(&k->kctx, TS_LOG_INFO, "queue loaded entries=%zu",
		       q->sched.count);
	ts_queue_resend_dsns(q);
	ts_queue_schedule(q);
	return 0;
}

void
ts__queue_reload(struct ts_kernel *k)
{
	if (k->queue == NULL)
		return;
	ts__queue_settings_read(k->cfg, &k->queue->set);
	ts_queue_schedule(k->queue);
}

void
ts__queue_stop(struct ts_kernel *k)
{
	struct ts__queue *q = k->queue;
	if (q == NULL || q->stopping)
		return;
	q->stopping = true;
	ts_timer_free(&q->timer);
	/* Cancelled deliveries stay queued; the next start retries them. */
	while (q->deliveries != NULL) {
		struct ts_delivery *d = q->deliveries;
		q->deliveries = d->next;
		if (d->started && d->transport->cancel != NULL)
			d->transport->cancel(d->transport_ctx, d);
		d->next = NULL;
		ts__delivery_free(d);
	}
}

void
ts__queue_free(struct ts_kernel *k)
{
	struct ts__queue *q = k->queue;
	if (q == NULL)
		return;
	ts__queue_stop(k);
	k->queue = NULL;
	ts__qsched_free(&q->sched);
	ts__qjobs_free(&q->jobs);
	free(q->data_dir);
	free(q->hostname);
	free(q);
}
