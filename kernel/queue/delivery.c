/*
 * kernel/queue/delivery.c — one delivery attempt, as a transport sees it.
 *
 * A delivery is born when a due entry's message and pending recipients
 * are loaded (queue.c); it picks its transport (the `direct` service for
 * now: routes come with the transports module), hands itself over, and
 * collects the transport's per-recipient results.  At the end it decides
 * each recipient's fate — delivered, failed for good, or retried after
 * an exponentially growing wait, failed once it is older than
 * give_up_after — records that durably, writes the DSNs the sender asked
 * for (failures, one delay notice) and delivers them to the sender's
 * local account.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/queue/queue-private.h"

/* --- accessors (tessera/queue.h) ------------------------------------------ */

const char *
ts_delivery_id(const struct ts_delivery *d)
{
	return d->id;
}

const char *
ts_delivery_domain(const struct ts_delivery *d)
{
	return d->entry->domain;
}

unsigned
ts_delivery_attempt(const struct ts_delivery *d)
{
	return d->entry->attempts + 1;
}

const struct ts_txn_mail *
ts_delivery_mail(const struct ts_delivery *d)
{
	return &d->mail;
}

const char *
ts_delivery_account(const struct ts_delivery *d)
{
	return d->load.account;
}

size_t
ts_delivery_rcpt_count(const struct ts_delivery *d)
{
	return d->load.rcpt_count;
}

const struct ts_txn_rcpt *
ts_delivery_rcpt(const struct ts_delivery *d, size_t i)
{
	return i < d->load.rcpt_count ? &d->load.rcpts[i] : NULL;
}

bool
ts_delivery_requiretls(const struct ts_delivery *d)
{
	if (d->load.requiretls_override >= 0)
		return d->load.requiretls_override == 1;
	return d->load.requiretls;
}

bool
ts_delivery_tls_optional(const struct ts_delivery *d)
{
	if (d->load.requiretls_override == 0)
		return true;
	return d->load.tls_optional;
}

uint64_t
ts_delivery_size(const struct ts_delivery *d)
{
	return d->load.size;
}

int
ts_delivery_open(const struct ts_delivery *d, int *fd_r, char **prefix_r,
		 size_t *prefix_len_r)
{
	/* The prefix came with the load; only the file is read here. */
	char *path = ts__queue_msg_path(d->queue->data_dir, d->load.msg_id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return TS_E_IO;
	*fd_r = fd;
	*prefix_r = ts_xmalloc(d->load.prefix_len + 1);
	memcpy(*prefix_r, d->load.prefix, d->load.prefix_len + 1);
	*prefix_len_r = d->load.prefix_len;
	return 0;
}

void
ts_delivery_note_tls(struct ts_delivery *d, const char *host, bool starttls,
		     bool requiretls)
{
	/* Recorded with the attempt's results (recipient_domain_tls). */
	ts_log(&d->queue->kernel->kctx, TS_LOG_INFO,
	       "queue id=%s domain=%s host=%s starttls=%s requiretls=%s",
	       d->id, d->entry->domain, host != NULL ? host : "-",
	       starttls ? "yes" : "no", requiretls ? "yes" : "no");
	d->tls_noted = true;
	d->tls_starttls = starttls;
	d->tls_requiretls = requiretls;
	free(d->tls_host);
	d->tls_host = host != NULL ? ts_xstrdup(host) : NULL;
}

void
ts_delivery_set_data(struct ts_delivery *d, void *data)
{
	d->data = data;
}

void *
ts_delivery_data(const struct ts_delivery *d)
{
	return d->data;
}

static char *
ts_delivery_dup(const char *s)
{
	return s != NULL ? ts_xstrdup(s) : NULL;
}

void
ts_delivery_rcpt_result(struct ts_delivery *d, size_t i, int code,
			const char *enhanced, const char *text,
			const char *remote)
{
	if (i >= d->load.rcpt_count || d->outcomes[i].set)
		return;
	struct ts__qoutcome *o = &d->outcomes[i];
	o->set = true;
	/* A code outside 200-599 is a transport bug: treat as temporary. */
	o->code = code >= 200 && code <= 599 ? code : 451;
	o->enhanced = ts_delivery_dup(enhanced);
	o->text = ts_delivery_dup(text != NULL ? text : "");
	o->remote = ts_delivery_dup(remote);
}

/* --- lifecycle -------------------------------------------------------------- */

void
ts__delivery_free(struct ts_delivery *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; d->outcomes != NULL && i < d->load.rcpt_count;
	     i++) {
		free(d->outcomes[i].enhanced);
		free(d->outcomes[i].text);
		free(d->outcomes[i].remote);
	}
	free(d->outcomes);
	ts_hook_run_cancel(&d->route_run);
	ts__delivery_policy_end(d);
	ts__queue_load_clear(&d->load);
	free(d->instance);
	free(d->tls_host);
	free(d->id);
	free(d);
}

static void
ts_delivery_unlist(struct ts_delivery *d)
{
	for (struct ts_delivery **p = &d->queue->deliveries; *p != NULL;
	     p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			d->next = NULL;
			return;
		}
	}
}

static void ts_delivery_routed(const struct ts_hook_result *res, void *arg);

void
ts__delivery_new(struct ts__queue *q, struct ts__qentry *e,
		 struct ts__qload *load)
{
	struct ts_delivery *d = ts_xcalloc(1, sizeof(*d));
	d->queue = q;
	d->entry = e;
	d->load = *load;
	memset(load, 0, sizeof(*load));
	d->id = ts_xasprintf("%" PRId64, e->msg_id);
	d->mail = (struct ts_txn_mail){
		.address = d->load.sender,
		.localpart = d->load.localpart,
		.domain = d->load.domain_of_sender,
		.smtputf8 = d->load.smtputf8,
		.requiretls = d->load.requiretls,
		.body = (enum ts_txn_body)d->load.body,
		.ret = (enum ts_dsn_ret)d->load.ret,
		.envid = d->load.envid,
	};
	d->outcomes = ts_xcalloc(d->load.rcpt_count, sizeof(*d->outcomes));
	d->next = q->deliveries;
	q->deliveries = d;
	/* The queue_route hooks pick the transport (routes); else direct. */
	struct ts_hook_args args = { .subject = d, .arg = e->domain };
	struct ts_hook_run *run =
		ts_hook_run(&q->kernel->kctx, TS_HOOK_QUEUE_ROUTE, &args,
			    ts_delivery_routed, d);
	if (run != NULL)
		d->route_run = run;
}

/* The route is known: hand the delivery to its transport. */
static void
ts_delivery_routed(const struct ts_hook_result *res, void *arg)
{
	struct ts_delivery *d = arg;
	struct ts__queue *q = d->queue;
	d->route_run = NULL;
	if (res->verdict == TS_VERDICT_REJECT ||
	    res->verdict == TS_VERDICT_TEMPFAIL) {
		bool perm = res->verdict == TS_VERDICT_REJECT;
		ts_delivery_finish(d, perm ? 550 : 451,
				   res->enhanced != NULL ? res->enhanced
				   : perm		 ? "5.7.1"
							 : "4.7.1",
				   res->text != NULL ? res->text
						     : "refused by a queue_route "
						       "hook",
				   NULL);
		return;
	}
	const char *service = "direct", *instance = "direct";
	if (res->verdict == TS_VERDICT_ROUTE && res->route_service != NULL) {
		service = res->route_service;
		instance = res->route_instance != NULL ? res->route_instance
						       : service;
	}
	d->instance = ts_xstrdup(instance);
	d->transport = ts_service_find(&q->kernel->kctx, "transport", service,
				       sizeof(struct ts_transport),
				       &d->transport_ctx);
	ts_log(&q->kernel->kctx, TS_LOG_INFO,
	       "queue delivery id=%s domain=%s attempt=%u rcpts=%zu "
	       "transport=%s instance=%s",
	       d->id, d->entry->domain, d->entry->attempts + 1,
	       d->load.rcpt_count, service, instance);
	if (d->transport == NULL || d->transport->start == NULL) {
		char *text = ts_xasprintf("no transport service '%s' (is the "
					  "transports module enabled?)",
					  service);
		ts_delivery_finish(d, 451, "4.3.5", text, NULL);
		free(text);
		return;
	}
	d->started = true;
	d->transport->start(d->transport_ctx, d->instance, d);
}

struct ts_delivery *
ts_hook_call_delivery(const struct ts_hook_call *call)
{
	switch (ts_hook_call_point(call)) {
	case TS_HOOK_QUEUE_ROUTE:
	case TS_HOOK_OUTBOUND_TLS_POLICY:
	case TS_HOOK_OUTBOUND_RESULT:
		return ts_hook_call_subject(call);
	default:
		return NULL;
	}
}

/* What the record job needs; freed after its done callback. */
struct ts_delivery_record {
	struct ts_delivery *d;
	char *dsn_account; /* who gets the DSNs, or NULL */
	struct ts__qresult *results;
	size_t count;
	struct ts__dsn_rcpt *failed, *delayed;
	size_t failed_count, delayed_count;
	int64_t retry_until_ms;
	char *dsn_failed_path, *dsn_delayed_path;
	bool dsn_error; /* a DSN could not be written */
	bool gone;
};

/* Wait before retry number `attempts` (1 = the first retry). */
static uint64_t
ts_delivery_backoff(const struct ts__queue_settings *set, unsigned attempts)
{
	uint64_t wait = set->retry_first_ms;
	for (unsigned i = 1; i < attempts && wait < set->retry_max_ms; i++)
		wait *= 2;
	return wait < set->retry_max_ms ? wait : set->retry_max_ms;
}

static int
ts_delivery_record_job(struct ts__qjob_env *env, void *arg)
{
	struct ts_delivery_record *r = arg;
	struct ts_delivery *d = r->d;
	/*
	 * DSNs first: they quote the message, whose row the recording may
	 * delete (and whose file goes after the commit).  A DSN that
	 * cannot be written is logged; the results stand.
	 */
	if (r->failed_count > 0 && r->dsn_account != NULL &&
	    ts__dsn_write(env->data_dir, d->queue->hostname, env->db,
			  &d->load, r->failed, r->failed_count, 0,
			  r->dsn_account, &r->dsn_failed_path) != 0)
		r->dsn_error = true;
	if (r->delayed_count > 0 && r->dsn_account != NULL &&
	    ts__dsn_write(env->data_dir, d->queue->hostname, env->db,
			  &d->load, r->delayed, r->delayed_count,
			  r->retry_until_ms, r->dsn_account,
			  &r->dsn_delayed_path) != 0)
		r->dsn_error = true;
	int rc = ts__queue_db_record(env->db, env->data_dir, d->load.msg_id,
				     r->results, r->count, &r->gone);
	if (rc == 0 && d->tls_noted && d->load.account != NULL)
		rc = ts__queue_db_note_tls(env->db, d->load.account,
					   d->entry->domain, d->tls_host,
					   d->tls_starttls, d->tls_requiretls,
					   ts__queue_now_ms());
	if (rc != 0) {
		/* Not recorded: the reports would be about nothing. */
		char **paths[] = { &r->dsn_failed_path, &r->dsn_delayed_path };
		for (size_t i = 0; i < 2; i++) {
			if (*paths[i] != NULL)
				(void)unlink(*paths[i]);
			free(*paths[i]);
			*paths[i] = NULL;
		}
	}
	if (rc == 0 && r->gone)
		ts__qjob_unlink_later(env, ts__queue_msg_path(env->data_dir,
							      d->load.msg_id));
	return rc;
}

/* The account that receives DSNs about d, or NULL. */
static const char *
ts_delivery_dsn_account(struct ts_delivery *d)
{
	if (d->load.sender == NULL || d->load.sender[0] == '\0')
		return NULL; /* the null sender gets no DSN (RFC 5321 4.5.5) */
	struct ts_address_match m;
	if (ts_address_lookup(&d->queue->kernel->kctx, d->load.sender, &m) ==
	    0)
		return m.account;
	return d->load.account;
}

struct ts_dsn_delivery {
	struct ts__queue *q;
	char *path;
	char *account;
};

static void
ts_dsn_unlink_work(void *arg)
{
	struct ts_dsn_delivery *dd = arg;
	(void)unlink(dd->path);
}

static void
ts_dsn_unlink_done(void *arg, int status)
{
	(void)status;
	struct ts_dsn_delivery *dd = arg;
	free(dd->path);
	free(dd->account);
	free(dd);
}

static void
ts_dsn_stored(int status, const uint32_t *uids, size_t count, void *arg)
{
	(void)uids;
	(void)count;
	struct ts_dsn_delivery *dd = arg;
	struct ts_ctx *kctx = &dd->q->kernel->kctx;
	if (status == 0)
		ts_log(kctx, TS_LOG_INFO, "queue dsn delivered account=%s",
		       dd->account);
	else
		ts_log(kctx, TS_LOG_ERROR,
		       "queue dsn not delivered account=%s: %s", dd->account,
		       ts_strerror(status));
	if (ts_work_submit(kctx, ts_dsn_unlink_work, ts_dsn_unlink_done,
			   dd) != 0)
		ts_dsn_unlink_done(dd, 0);
}

void
ts__dsn_deliver(struct ts__queue *q, char *path, const char *account)
{
	struct ts_dsn_delivery *dd = ts_xcalloc(1, sizeof(*dd));
	dd->q = q;
	dd->path = path;
	dd->account = ts_xstrdup(account);
	struct ts_delivery_target t = { .account = dd->account,
					.mailbox = "Inbox" };
	int rc = ts_store_deliver(&q->kernel->kctx, path, NULL, &t, 1,
				  ts_dsn_stored, dd);
	if (rc != 0)
		ts_dsn_stored(rc, NULL, 0, dd);
}

static void
ts_delivery_record_done(int status, void *arg)
{
	struct ts_delivery_record *r = arg;
	struct ts_delivery *d = r->d;
	struct ts__queue *q = d->queue;
	struct ts__qentry *e = d->entry;
	struct ts_ctx *kctx = &q->kernel->kctx;
	bool gone = false;
	if (status == TS_E_STATE) {
		/* Stopping: nothing recorded, the attempt is made again. */
	} else if (status != 0) {
		/* Not recorded: the recipients stay as they were. */
		ts_log(kctx, TS_LOG_ERROR,
		       "queue id=%s: cannot record results: %s", d->id,
		       ts_strerror(status));
		e->next_ms = ts__queue_now_ms() +
			     (int64_t)ts_delivery_backoff(&q->set, 1);
	} else {
		int64_t next = INT64_MAX;
		for (size_t i = 0; i < r->count; i++)
			if (r->results[i].status == TS__QRCPT_QUEUED &&
			    r->results[i].next_ms < next)
				next = r->results[i].next_ms;
		e->attempts++;
		e->next_ms = next;
		gone = next == INT64_MAX;
		if (r->dsn_error)
			ts_log(kctx, TS_LOG_ERROR,
			       "queue id=%s: cannot write a DSN for <%s>",
			       d->id, d->load.sender);
		if (r->dsn_account == NULL &&
		    r->failed_count + r->delayed_count > 0)
			ts_log(kctx, TS_LOG_WARN,
			       "queue id=%s: no DSN: sender <%s> has no local "
			       "account",
			       d->id, d->load.sender);
		if (r->dsn_failed_path != NULL)
			ts__dsn_deliver(q, r->dsn_failed_path, r->dsn_account);
		if (r->dsn_delayed_path != NULL)
			ts__dsn_deliver(q, r->dsn_delayed_path,
					r->dsn_account);
		r->dsn_failed_path = r->dsn_delayed_path = NULL;
	}
	for (size_t i = 0; i < r->count; i++) {
		free(r->results[i].enhanced);
		free(r->results[i].text);
		free(r->results[i].remote);
	}
	free(r->dsn_failed_path);
	free(r->dsn_delayed_path);
	free(r->dsn_account);
	free(r->results);
	free(r->failed);
	free(r->delayed);
	free(r);
	ts__delivery_free(d);
	ts__queue_entry_done(q, e, gone);
}

void
ts_delivery_finish(struct ts_delivery *d, int code, const char *enhanced,
		   const char *text, const char *remote)
{
	/* Policy hooks still running must not call back into a transport
	 * that is done with d. */
	ts__delivery_policy_end(d);
	for (size_t i = 0; i < d->load.rcpt_count; i++)
		ts_delivery_rcpt_result(d, i, code, enhanced, text, remote);
	ts_delivery_unlist(d);
	struct ts__queue *q = d->queue;
	struct ts_ctx *kctx = &q->kernel->kctx;
	int64_t now = ts__queue_now_ms();
	bool expired = now - d->load.created_ms >= (int64_t)q->set.give_up_ms;
	bool notice_due = q->set.delay_notice_ms > 0 &&
			  now - d->load.created_ms >=
				  (int64_t)q->set.delay_notice_ms;

	struct ts_delivery_record *r = ts_xcalloc(1, sizeof(*r));
	r->d = d;
	r->count = d->load.rcpt_count;
	r->results = ts_xcalloc(r->count, sizeof(*r->results));
	r->failed = ts_xcalloc(r->count, sizeof(*r->failed));
	r->delayed = ts_xcalloc(r->count, sizeof(*r->delayed));
	r->retry_until_ms = d->load.created_ms + (int64_t)q->set.give_up_ms;
	const char *account = ts_delivery_dsn_account(d);
	r->dsn_account = account != NULL ? ts_xstrdup(account) : NULL;
	for (size_t i = 0; i < r->count; i++) {
		struct ts__qoutcome *o = &d->outcomes[i];
		const struct ts_txn_rcpt *rc = &d->load.rcpts[i];
		struct ts__qresult *res = &r->results[i];
		res->rcpt_id = d->load.rcpt_ids[i];
		res->code = o->code;
		res->enhanced = ts_delivery_dup(o->enhanced);
		res->text = ts_delivery_dup(o->text);
		res->remote = ts_delivery_dup(o->remote);
		/* RFC 3461 4.1: without NOTIFY, failures and delays. */
		unsigned notify = rc->notify != 0 ? rc->notify
						   : TS_DSN_NOTIFY_FAILURE |
							     TS_DSN_NOTIFY_DELAY;
		const char *fate;
		if (o->code < 400) {
			res->status = TS__QRCPT_DELIVERED;
			fate = "delivered";
		} else if (o->code >= 500 || expired) {
			res->status = TS__QRCPT_FAILED;
			fate = "failed";
			if (o->code < 500) {
				/* Out of time: the last temporary reason. */
				char *t = ts_xasprintf(
					"gave up after %" PRId64 " hours: %s",
					(now - d->load.created_ms) / 3600000,
					o->text);
				free(res->text);
				res->text = t;
				free(o->text);
				o->text = ts_xstrdup(t);
			}
			if (notify & TS_DSN_NOTIFY_FAILURE)
				r->failed[r->failed_count++] =
					(struct ts__dsn_rcpt){ .rcpt = rc,
							       .outcome = o,
							       .failed = true };
		} else {
			res->status = TS__QRCPT_QUEUED;
			res->next_ms = now + (int64_t)ts_delivery_backoff(
						     &q->set,
						     d->entry->attempts + 1);
			fate = "deferred";
			if (notice_due && !d->load.delay_notified[i] &&
			    (notify & TS_DSN_NOTIFY_DELAY)) {
				res->delay_notice = true;
				r->delayed[r->delayed_count++] =
					(struct ts__dsn_rcpt){ .rcpt = rc,
							       .outcome = o };
			}
		}
		ts_log(kctx, res->status == TS__QRCPT_FAILED ? TS_LOG_WARN
							     : TS_LOG_INFO,
		       "queue %s id=%s to=<%s> attempt=%u code=%d "
		       "status=%s remote=%s reply=\"%s\"",
		       fate, d->id, rc->address, d->entry->attempts + 1,
		       o->code, o->enhanced != NULL ? o->enhanced : "-",
		       o->remote != NULL ? o->remote : "-", o->text);
	}
	if (q->stopping) {
		/* Shutting down: record nothing; the attempt is redone. */
		ts_delivery_record_done(TS_E_STATE, r);
		return;
	}
	ts__qjobs_add(q->jobs, ts_delivery_record_job, ts_delivery_record_done,
		      r, r->failed_count + r->delayed_count > 0);
}
