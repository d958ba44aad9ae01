/*
 * modules/smtp/deliver.c — a received message into the local store.
 *
 * Once the spool file is complete: for an authenticated submission the
 * From: check, the Date: and Message-ID: it lacks and the submit_message
 * hooks; then the smtp_data hooks (refuse, redirect to a mailbox, add
 * headers), then deliver_local for each recipient (its mailbox), then
 * one ts_store_deliver for every distinct account and mailbox with our
 * header lines (Return-Path, the hooks' headers, Received) as the prefix.
 * The client hears 250 only after the store reported the message durable
 * everywhere; then the `delivered` hooks run.  The spool file is removed
 * once the store is done with it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "smtp.h"

struct smtp_delivery {
	struct smtp_session *s; /* NULL when the session went away */
	struct smtp_spool *spool; /* kept until every step is done */
	char *id;
	uint64_t delay_ms;
	unsigned pending; /* store and queue steps not yet done */
	int status; /* the first step's failure, or 0 */
	size_t local_targets, queued_rcpts;
	int64_t queue_id;
};

void
smtp_delivery_detach(struct smtp_session *s)
{
	if (s->delivery != NULL)
		s->delivery->s = NULL;
	s->delivery = NULL;
}

static void
smtp_delivery_free(struct smtp_delivery *d)
{
	smtp_spool_discard(&d->spool);
	free(d->id);
	free(d);
}

/* Now as an RFC 5322 date-time: local time with a numeric zone. */
static void
smtp_date_now(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/*
 * The header lines we put in front of the message, CRLF-terminated:
 * with Return-Path for local delivery, without it for the queue (the
 * final delivery adds its own).
 */
static char *
smtp_prefix(struct smtp_session *s, const char *id, bool return_path)
{
	struct smtp_settings *set = smtp_settings(s->ctx);
	char date[64];
	smtp_date_now(date, sizeof(date));

	struct ts_tls_info tls;
	bool tls_up = ts_conn_tls_info(s->conn, &tls) == 0;
	const char *with =
		s->esmtp ? (tls_up ? (s->account ? "ESMTPSA" : "ESMTPS")
				   : (s->account ? "ESMTPA" : "ESMTP"))
			 : "SMTP";
	/* RFC 8689: note that the sender required TLS all the way. */
	char *tls_text =
		tls_up ? ts_xasprintf("\r\n\t(using %s with cipher %s%s)",
				      tls.version, tls.cipher,
				      s->requiretls ? "; requiretls" : "")
		       : ts_xstrdup("");
	const struct ts_txn *txn = s->txn;
	char *for_text =
		ts_txn_rcpt_count(txn) == 1
			? ts_xasprintf("\r\n\tfor <%s>",
				       ts_txn_rcpt(txn, 0)->address)
			: ts_xstrdup("");
	/*
	 * Inbound mail gets one Authentication-Results from the results
	 * the checks attached (RFC 8601); submitted mail was
	 * authenticated by the client's login, not by checks.
	 */
	char *ar = s->mode == SMTP_MODE_SMTP
			   ? ts_txn_auth_results_header(txn, set->hostname)
			   : NULL;
	size_t hlen = ar != NULL ? strlen(ar) + 2 : 0;
	for (size_t i = 0; i < ts_txn_header_count(txn); i++)
		hlen += strlen(ts_txn_header(txn, i)) + 2;
	char *hdrs = ts_xmalloc(hlen + 1);
	size_t off = 0;
	for (size_t i = 0; i <= ts_txn_header_count(txn); i++) {
		const char *h = i < ts_txn_header_count(txn)
					? ts_txn_header(txn, i)
					: ar;
		if (h == NULL)
			continue;
		size_t n = strlen(h);
		memcpy(hdrs + off, h, n);
		memcpy(hdrs + off + n, "\r\n", 2);
		off += n + 2;
	}
	hdrs[off] = '\0';
	char *rp = return_path ? ts_xasprintf("Return-Path: %s\r\n",
					      s->from_text)
			       : ts_xstrdup("");
	char *prefix = ts_xasprintf("%s"
				    "%s"
				    "Received: from %s ([%s])\r\n"
				    "\tby %s (tessera) with %s id %s%s%s;\r\n"
				    "\t%s\r\n",
				    rp, hdrs, s->helo,
				    ts_conn_remote_ip(s->conn), set->hostname,
				    with, id, tls_text, for_text, date);
	free(rp);
	free(ar);
	free(hdrs);
	free(tls_text);
	free(for_text);
	return prefix;
}

static void
smtp_delivered_done(const struct ts_hook_result *res, void *arg)
{
	(void)res;
	struct smtp_session *s = arg;
	s->side_run = NULL;
	ts_txn_free(&s->side_txn);
}

/*
 * One step (the store, the queue) is done; the last one answers the
 * client: 250 only when every local target has the message durably and
 * the remote recipients are durably queued.
 */
static void
smtp_deliver_step_done(struct smtp_delivery *d, int status)
{
	if (status != 0 && d->status == 0)
		d->status = status;
	if (--d->pending > 0)
		return;
	status = d->status;
	struct smtp_session *s = d->s;
	if (s == NULL) {
		smtp_delivery_free(d);
		return;
	}
	s->delivery = NULL;
	char *reply;
	if (status == 0) {
		ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
			    "message accepted id=%s from=%s targets=%zu "
			    "queued=%zu",
			    d->id, s->from_text, d->local_targets,
			    d->queued_rcpts);
		reply = ts_xasprintf("250 2.0.0 OK id=%s", d->id);
		if (d->queued_rcpts > 0)
			smtp_limits_record(s->ctx, s->txn);
	} else {
		ts_conn_log(s->conn, s->ctx, TS_LOG_ERROR,
			    "delivery failed id=%s error=\"%s\"", d->id,
			    ts_strerror(status));
		reply = ts_xstrdup("451 4.3.0 delivery failed, try again "
				   "later");
	}
	uint64_t delay = d->delay_ms;
	char *id = ts_xstrdup(d->id);
	smtp_delivery_free(d);
	/*
	 * The delivered hooks report on this transaction while the
	 * session goes on with the next one: they get it to themselves.
	 */
	struct ts_txn *txn = s->txn;
	s->txn = NULL;
	smtp_transaction_reset(s);
	if (status == 0) {
		ts_hook_run_cancel(&s->side_run);
		ts_txn_free(&s->side_txn);
		s->side_txn = txn;
		txn = NULL;
		struct ts_hook_args args = { .conn = s->conn,
					     .subject = s->side_txn,
					     .arg = id };
		/* NULL when the hooks already finished, as done() knows. */
		s->side_run = ts_hook_run(s->ctx, TS_HOOK_DELIVERED, &args,
					  smtp_delivered_done, s);
	}
	ts_txn_free(&txn);
	free(id);
	smtp_finish(s, delay, reply, false);
}

static void
smtp_deliver_stored(int status, const uint32_t *uids, size_t count, void *arg)
{
	(void)uids;
	(void)count;
	smtp_deliver_step_done(arg, status);
}

static void
smtp_deliver_queued(int status, int64_t id, void *arg)
{
	struct smtp_delivery *d = arg;
	d->queue_id = id;
	smtp_deliver_step_done(d, status);
}

/*
 * Every hook has spoken: store the message for local recipients and
 * queue it for remote ones (authenticated submission only), at once.
 */
static void
smtp_deliver_store(struct smtp_session *s, uint64_t delay_ms)
{
	size_t count = ts_txn_rcpt_count(s->txn);
	struct ts_delivery_target *t = ts_xcalloc(count, sizeof(*t));
	size_t n = 0, remote = 0;
	for (size_t i = 0; i < count; i++) {
		const struct ts_txn_rcpt *r = ts_txn_rcpt(s->txn, i);
		if (r->account == NULL) {
			remote++;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(t[j].account, r->account) == 0 &&
			      strcmp(t[j].mailbox, r->mailbox) == 0;
		if (dup)
			continue;
		t[n].account = r->account;
		t[n].mailbox = r->mailbox;
		n++;
	}
	struct smtp_delivery *d = ts_xcalloc(1, sizeof(*d));
	d->s = s;
	d->spool = s->spool;
	s->spool = NULL;
	d->id = ts_xstrdup(ts_txn_id(s->txn));
	d->delay_ms = delay_ms;
	d->local_targets = n;
	d->queued_rcpts = remote;
	s->delivery = d;
	/* One extra count so that no step can finish the delivery early. */
	d->pending = 1 + (n > 0) + (remote > 0);
	if (n > 0) {
		char *prefix = smtp_prefix(s, d->id, true);
		int rc = ts_store_deliver(s->ctx, smtp_spool_path(d->spool),
					  prefix, t, n, smtp_deliver_stored, d);
		free(prefix);
		if (rc != 0)
			smtp_deliver_step_done(d, rc);
	}
	if (remote > 0) {
		char *prefix = smtp_prefix(s, d->id, false);
		int rc = ts_queue_add(s->ctx, s->txn, prefix,
				      smtp_deliver_queued, d);
		free(prefix);
		if (rc != 0)
			smtp_deliver_step_done(d, rc);
	}
	free(t);
	smtp_deliver_step_done(d, 0);
}

static void smtp_deliver_next_local(struct smtp_session *s);

static void
smtp_deliver_local_done(struct smtp_session *s,
			const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	if (refusal != NULL) {
		smtp_transaction_reset(s);
		smtp_finish(s, res->delay_ms, refusal, false);
		return;
	}
	if (res->verdict == TS_VERDICT_MAILBOX && res->mailbox != NULL)
		ts_txn_set_rcpt_mailbox(s->txn, s->deliver_index, res->mailbox);
	smtp_keep_headers(s, res);
	s->deliver_delay += res->delay_ms;
	s->deliver_index++;
	smtp_deliver_next_local(s);
}

static void
smtp_deliver_next_local(struct smtp_session *s)
{
	/* deliver_local is about local recipients only. */
	while (s->deliver_index < ts_txn_rcpt_count(s->txn) &&
	       ts_txn_rcpt(s->txn, s->deliver_index)->account == NULL)
		s->deliver_index++;
	if (s->deliver_index < ts_txn_rcpt_count(s->txn)) {
		char *path = ts_xasprintf(
			"<%s>", ts_txn_rcpt(s->txn, s->deliver_index)->address);
		smtp_run_hook(s, TS_HOOK_DELIVER_LOCAL, path,
			      smtp_deliver_local_done);
		free(path);
		return;
	}
	smtp_deliver_store(s, s->deliver_delay);
}

static void
smtp_deliver_data_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	if (refusal != NULL) {
		ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
			    "message refused by smtp_data hook: %s", refusal);
		smtp_transaction_reset(s);
		smtp_finish(s, res->delay_ms, refusal, false);
		return;
	}
	if (res->verdict == TS_VERDICT_MAILBOX && res->mailbox != NULL)
		for (size_t i = 0; i < ts_txn_rcpt_count(s->txn); i++)
			if (ts_txn_rcpt(s->txn, i)->account != NULL)
				ts_txn_set_rcpt_mailbox(s->txn, i,
							res->mailbox);
	smtp_keep_headers(s, res);
	s->deliver_delay += res->delay_ms;
	s->deliver_index = 0;
	smtp_deliver_next_local(s);
}

static void
smtp_deliver_data(struct smtp_session *s)
{
	smtp_run_hook(s, TS_HOOK_SMTP_DATA, smtp_spool_path(s->spool),
		      smtp_deliver_data_done);
}

/* --- submission ---------------------------------------------------------- */

/*
 * The next address of an RFC 5322 address list at *pp (a From: value),
 * advancing *pp past it: the part in `<>` when there is one, else the
 * element without comments and blanks; quoted strings are kept as
 * written, so the path parser decodes them.  Group names (`name:`) and
 * their `;` are skipped, and so are empty elements.  Returns NULL at the
 * end; the caller frees.
 */
static char *
smtp_from_next(const char **pp)
{
	const char *p = *pp;
	while (*p != '\0') {
		size_t cap = strlen(p) + 1;
		char *bare = ts_xmalloc(cap), *angle = ts_xmalloc(cap);
		size_t nb = 0, na = 0;
		bool quoted = false, in_angle = false, had_angle = false;
		int comment = 0;
		for (; *p != '\0'; p++) {
			char c = *p;
			char *out = in_angle ? angle : bare;
			size_t *n = in_angle ? &na : &nb;
			if (comment > 0) {
				if (c == '\\' && p[1] != '\0')
					p++;
				else if (c == '(')
					comment++;
				else if (c == ')')
					comment--;
				continue;
			}
			if (quoted) {
				out[(*n)++] = c;
				if (c == '\\' && p[1] != '\0')
					out[(*n)++] = *++p;
				else if (c == '"')
					quoted = false;
				continue;
			}
			if (c == '"') {
				quoted = true;
				out[(*n)++] = c;
			} else if (c == '(') {
				comment = 1;
			} else if (c == '<' && !in_angle) {
				in_angle = had_angle = true;
				na = 0;
			} else if (c == '>' && in_angle) {
				in_angle = false;
			} else if (!in_angle && (c == ',' || c == ';')) {
				p++;
				break;
			} else if (!in_angle && c == ':') {
				nb = 0; /* a group's display name */
			} else if (c != ' ' && c != '\t' && c != '\r' &&
				   c != '\n') {
				out[(*n)++] = c;
			}
		}
		char *addr = had_angle ? angle : bare;
		size_t len = had_angle ? na : nb;
		addr[len] = '\0';
		free(had_angle ? bare : angle);
		if (len > 0) {
			*pp = p;
			return addr;
		}
		free(addr);
	}
	*pp = p;
	return NULL;
}

/*
 * Whether every address of the From: value belongs to the session's
 * account (as for MAIL FROM, a catchall match does not count: the
 * account would own every address of the domain).  A value with no
 * address is not allowed either.
 */
static bool
smtp_from_allowed(struct smtp_session *s)
{
	if (s->hdr_from_long || s->hdr_from == NULL)
		return false;
	const char *p = s->hdr_from;
	unsigned count = 0;
	bool ok = true;
	char *addr;
	while (ok && (addr = smtp_from_next(&p)) != NULL) {
		count++;
		char *text = ts_xasprintf("<%s>", addr);
		struct smtp_path path = { 0 };
		const char *err;
		ok = smtp_path_parse(text, strlen(text),
				     SMTP_LENIENT | SMTP_UTF8, &path,
				     &err) == 0;
		if (ok) {
			char *a = ts_xasprintf("%s@%s",
					       path.localpart_unquoted,
					       path.domain);
			struct ts_address_match m;
			ok = ts_address_lookup(s->ctx, a, &m) == 0 &&
			     strcmp(m.account, s->account) == 0 &&
			     m.kind != TS_ADDRESS_CATCHALL;
			free(a);
		}
		smtp_path_clear(&path);
		free(text);
		free(addr);
	}
	return ok && count > 0;
}

/* Add header line `line` (no CRLF) to the prefix; takes it. */
static void
smtp_add_header(struct smtp_session *s, char *line)
{
	ts_txn_add_header(s->txn, line);
	free(line);
}

/* A Message-ID: field with 128 random bits and our hostname. */
static char *
smtp_message_id(const char *hostname)
{
	unsigned char r[16];
	/* GRND_NONBLOCK: this runs on the loop, which must never wait. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* No entropy yet: time, pid and a counter are still unique. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		static uint32_t counter;
		uint64_t v[2] = {
			(uint64_t)ts.tv_sec << 32 ^ (uint64_t)getpid(),
			(uint64_t)ts.tv_nsec << 32 ^ ++counter,
		};
		memcpy(r, v, sizeof(r));
	}
	char hex[2 * sizeof(r) + 1];
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	return ts_xasprintf("Message-ID: <%s@%s>", hex, hostname);
}

/* Refuse the submitted message with `reply` (taken); nothing is stored. */
static void
smtp_submit_refuse(struct smtp_session *s, uint64_t delay_ms, char *reply)
{
	ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
		    "submitted message refused: %s", reply);
	smtp_transaction_reset(s);
	smtp_finish(s, delay_ms, reply, false);
}

static void
smtp_submit_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	if (refusal != NULL) {
		smtp_submit_refuse(s, res->delay_ms, refusal);
		return;
	}
	smtp_keep_headers(s, res);
	s->deliver_delay += res->delay_ms;
	smtp_deliver_data(s);
}

/*
 * An authenticated submission: the From: check, then the Date: and
 * Message-ID: a client left out (before the submit_message hooks, which
 * may sign), then those hooks.
 */
static void
smtp_submit(struct smtp_session *s)
{
	struct smtp_settings *set = smtp_settings(s->ctx);
	if (s->hdr_from_count == 0) {
		smtp_submit_refuse(s, 0,
				   ts_xstrdup("550 5.6.0 message has no From "
					      "header"));
		return;
	}
	if (set->accept_all == NULL && !smtp_from_allowed(s)) {
		smtp_submit_refuse(s, 0,
				   ts_xstrdup("550 5.7.1 From address not "
					      "allowed for this account"));
		return;
	}
	if (!s->hdr_date) {
		char date[64];
		smtp_date_now(date, sizeof(date));
		smtp_add_header(s, ts_xasprintf("Date: %s", date));
	}
	if (!s->hdr_msgid)
		smtp_add_header(s, smtp_message_id(set->hostname));
	smtp_run_hook(s, TS_HOOK_SUBMIT_MESSAGE, smtp_spool_path(s->spool),
		      smtp_submit_done);
}

void
smtp_deliver_start(struct smtp_session *s)
{
	s->deliver_delay = 0;
	ts_txn_set_message(s->txn, smtp_spool_path(s->spool), s->data_bytes);
	if (s->hdr_track) {
		smtp_submit(s);
		return;
	}
	smtp_deliver_data(s);
}
