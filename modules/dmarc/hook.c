/*
 * modules/dmarc/hook.c — DMARC for each message received on port 25.
 *
 * At smtp_data, after spf and dkim attached their results (this hook has
 * a later priority than dkim's parallel check, and the module requires
 * both): the message header is read from the spool file on the work pool
 * for its From domains; back on the loop the SPF result of MAIL FROM (or
 * HELO for the null sender) and the passing DKIM d= domains are taken from
 * the transaction, and the evaluation (eval.c) runs on the kernel
 * resolver, bounded by `timeout`.  The result is attached as a "dmarc"
 * Authentication-Results entry (header.from, polrec.p, polrec.domain,
 * policy.dmarc = what we did) and the verdict follows the policy and the
 * settings: 550 5.7.1, delivery to the Junk mailbox (noted on the
 * transaction and applied at deliver_local), 451 for a temperror when
 * asked, or nothing.  Clients that logged in (submission) are not
 * evaluated.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tessera/common.h>
#include <tessera/dns.h>
#include <tessera/log.h>
#include <tessera/txn.h>
#include <tessera/work.h>

#include "dmarc.h"
#include "dmarc-hook.h"

#define DMARC_HEADER_MAX (1024 * 1024)
#define DMARC_CHUNK (64 * 1024)

struct dmarc_check {
	struct ts_ctx *ctx;
	struct dmarc_settings set; /* a copy: reload may free the original */
	ts_hook_token token;
	struct ts_timer *timer;
	char *path;
	char io_error[128];
	bool in_work, cancelled;
	struct dmarc_from from;
	char *spf_domain;
	bool spf_temperror, dkim_temperror;
	char **dkim;
	size_t dkim_count;
	struct dmarc_eval *ev;
};

static void *
dmarc_kernel_lookup(void *ctx, const char *name, enum ts_dns_type type,
		    ts_dns_fn fn, void *arg)
{
	return ts_dns_lookup(ctx, name, type, fn, arg);
}

static void
dmarc_kernel_cancel(void *ctx, void *query)
{
	struct ts_dns_query *q = query;

	(void)ctx;
	ts_dns_cancel(&q);
}

static void
dmarc_check_free(struct dmarc_check *c)
{
	dmarc_eval_free(&c->ev);
	ts_timer_free(&c->timer);
	dmarc_from_clear(&c->from);
	for (size_t i = 0; i < c->dkim_count; i++)
		free(c->dkim[i]);
	free(c->dkim);
	free(c->spf_domain);
	free(c->set.quarantine_mailbox);
	free(c->path);
	free(c);
}

/* The domain part of an address ("user@d" or a bare domain). */
static const char *
dmarc_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : address;
}

static const char *
dmarc_prop(const struct ts_auth_result *r, const char *name)
{
	for (size_t i = 0; i < r->prop_count; i++)
		if (strcmp(r->props[i].name, name) == 0)
			return r->props[i].value;
	return NULL;
}

/*
 * What SPF and DKIM attached: the MAIL FROM identity's SPF result (RFC
 * 9989 "SPF-Authenticated Identifiers"; for the null sender RFC 7208 2.4 makes
 * it the HELO one) and the d= of every passing DKIM signature.
 */
static void
dmarc_collect(struct dmarc_check *c, struct ts_txn *txn)
{
	const struct ts_txn_mail *mail = ts_txn_mail(txn);
	bool null_sender = mail == NULL || mail->address == NULL ||
			   mail->address[0] == '\0';
	const char *spf_result = NULL, *spf_identity = NULL;

	for (size_t i = 0; i < ts_txn_auth_result_count(txn); i++) {
		const struct ts_auth_result *r = ts_txn_auth_result(txn, i);
		const char *v;

		if (strcmp(r->method, "spf") == 0) {
			v = dmarc_prop(r, null_sender ? "smtp.helo"
						      : "smtp.mailfrom");
			if (v != NULL) {
				spf_result = r->result;
				spf_identity = v;
			}
		} else if (strcmp(r->method, "dkim") == 0) {
			char buf[DMARC_NAME_MAX];

			if (strcmp(r->result, "temperror") == 0)
				c->dkim_temperror = true;
			v = dmarc_prop(r, "header.d");
			if (strcmp(r->result, "pass") != 0 || v == NULL ||
			    dmarc_domain_normalize(v, buf) == NULL)
				continue;
			c->dkim = ts_xrealloc(c->dkim, (c->dkim_count + 1) *
							       sizeof(char *));
			c->dkim[c->dkim_count++] = ts_xstrdup(buf);
		}
	}
	if (spf_result != NULL && strcmp(spf_result, "temperror") == 0)
		c->spf_temperror = true;
	if (spf_result != NULL && strcmp(spf_result, "pass") == 0) {
		char buf[DMARC_NAME_MAX];

		if (dmarc_domain_normalize(dmarc_address_domain(spf_identity),
					   buf) != NULL)
			c->spf_domain = ts_xstrdup(buf);
	}
}

/* Attach the result for Authentication-Results. */
static void
dmarc_attach(struct dmarc_check *c, struct ts_txn *txn,
	     const struct dmarc_outcome *o, const char *action)
{
	struct ts_auth_result r = {
		.method = "dmarc",
		.result = dmarc_result_name(o->result),
		.reason = o->result != DMARC_PASS ? o->reason : NULL,
	};
	const char *dnssec = o->answers == 0	? NULL
			     : o->dnssec_bogus	? "DNSSEC bogus"
			     : o->dnssec_secure ? "DNSSEC secure"
						: "DNSSEC insecure";
	char *comment = NULL;

	/* the record's policies, and the DNSSEC status of the lookups */
	if (o->rec != NULL &&
	    (o->result == DMARC_PASS || o->result == DMARC_FAIL)) {
		comment = ts_xasprintf(
			"p=%s sp=%s%s%s%s%s%s", dmarc_policy_name(o->rec->p),
			dmarc_policy_name(o->rec->sp_set ? o->rec->sp
							 : o->rec->p),
			o->rec->np_set ? " np=" : "",
			o->rec->np_set ? dmarc_policy_name(o->rec->np) : "",
			o->testing ? " testing" : "",
			dnssec != NULL ? "; " : "",
			dnssec != NULL ? dnssec : "");
		r.comment = comment;
	} else {
		r.comment = dnssec;
	}
	if (o->domain != NULL)
		r.props[r.prop_count++] =
			(struct ts_auth_prop){ "header.from", o->domain };
	if (o->rec != NULL && o->policy_domain != NULL &&
	    (o->result == DMARC_PASS || o->result == DMARC_FAIL)) {
		r.props[r.prop_count++] =
			(struct ts_auth_prop){ "polrec.p",
					       dmarc_policy_name(o->rec->p) };
		r.props[r.prop_count++] =
			(struct ts_auth_prop){ "polrec.domain",
					       o->policy_domain };
		r.props[r.prop_count++] =
			(struct ts_auth_prop){ "policy.dmarc", action };
	}
	if (ts_txn_add_auth_result(txn, &r) != 0)
		ts_log(c->ctx, TS_LOG_WARN, "dmarc: result not attached");
	free(comment);
}

/* What to do with the message, by the outcome and the settings. */
static enum dmarc_action
dmarc_action_for(const struct dmarc_check *c, const struct dmarc_outcome *o)
{
	if (o->result == DMARC_TEMPERROR)
		return c->set.temperror_action;
	if (o->result != DMARC_FAIL)
		return DMARC_ACTION_IGNORE;
	if (o->disposition == DMARC_POLICY_REJECT)
		return c->set.reject_action;
	if (o->disposition == DMARC_POLICY_QUARANTINE)
		return c->set.quarantine_action;
	return DMARC_ACTION_IGNORE;
}

static const char *
dmarc_action_name(enum dmarc_action a)
{
	switch (a) {
	case DMARC_ACTION_REJECT:
		return "reject";
	case DMARC_ACTION_QUARANTINE:
		return "quarantine";
	case DMARC_ACTION_TEMPFAIL:
		return "tempfail";
	default:
		return "none";
	}
}

static int
dmarc_verdict(struct dmarc_check *c, struct ts_hook_call *call,
	      struct ts_txn *txn, const struct dmarc_outcome *o,
	      enum dmarc_action a)
{
	switch (a) {
	case DMARC_ACTION_REJECT:
		ts_hook_reason(call, "dmarc-reject");
		/* RFC 9989 "Rejecting Messages": say DMARC in the reply */
		return ts_hook_reject(call, 550, "5.7.1",
				      "Email rejected per DMARC policy for %s",
				      o->domain);
	case DMARC_ACTION_QUARANTINE:
		ts_hook_reason(call, "dmarc-quarantine");
		ts_txn_set_data(txn, c->ctx,
				ts_xstrdup(c->set.quarantine_mailbox), free);
		return TS_HOOK_CONTINUE;
	case DMARC_ACTION_TEMPFAIL:
		ts_hook_reason(call, "dmarc-temperror");
		return ts_hook_tempfail(call, 451, "4.7.1",
					"DMARC policy of %s could not be "
					"checked, try again later",
					o->domain != NULL ? o->domain : "?");
	default:
		return TS_HOOK_CONTINUE;
	}
}

static void
dmarc_eval_done(const struct dmarc_outcome *o, void *arg)
{
	struct dmarc_check *c = arg;
	struct ts_ctx *ctx = c->ctx;
	ts_hook_token token = c->token;
	struct ts_hook_call *call = ts_hook_lookup(ctx, token);
	struct ts_txn *txn = call != NULL ? ts_hook_call_txn(call) : NULL;
	enum dmarc_action a = dmarc_action_for(c, o);
	int rc = TS_HOOK_CONTINUE;

	ts_log(ctx, TS_LOG_INFO,
	       "dmarc result=%s from=%s policy=%s disposition=%s action=%s "
	       "spf_aligned=%s dkim_aligned=%s queries=%u%s%s",
	       dmarc_result_name(o->result),
	       o->domain != NULL ? o->domain : "-",
	       o->result == DMARC_FAIL ? dmarc_policy_name(o->policy) : "-",
	       o->result == DMARC_FAIL ? dmarc_policy_name(o->disposition)
				       : "-",
	       dmarc_action_name(a), o->spf_aligned ? "yes" : "no",
	       o->dkim_aligned ? "yes" : "no", o->queries,
	       o->reason != NULL ? " reason=" : "",
	       o->reason != NULL ? o->reason : "");
	if (txn != NULL) {
		dmarc_attach(c, txn, o, dmarc_action_name(a));
		rc = dmarc_verdict(c, call, txn, o, a);
	}
	/* the evaluation calls us last: freeing it here is safe */
	dmarc_check_free(c);
	ts_hook_resume(ctx, token, rc);
}

/* `timeout` passed: the evaluation is a temperror. */
static void
dmarc_timeout(struct ts_timer *timer, void *arg)
{
	struct dmarc_check *c = arg;
	struct dmarc_outcome o = {
		.result = DMARC_TEMPERROR,
		.domain = c->from.count > 0 ? c->from.domains[0] : NULL,
		.reason = "DMARC evaluation timed out",
	};

	(void)timer;
	dmarc_eval_free(&c->ev); /* cancels its lookup */
	dmarc_eval_done(&o, c);
}

static void
dmarc_cancel(void *arg)
{
	struct dmarc_check *c = arg;

	c->cancelled = true;
	if (!c->in_work)
		dmarc_check_free(c);
}

/* On the work pool: read the header, find the From domains. */
static void
dmarc_read_work(void *arg)
{
	struct dmarc_check *c = arg;
	int fd = open(c->path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t len = 0;

	if (fd < 0) {
		snprintf(c->io_error, sizeof(c->io_error), "open: %s",
			 strerror(errno));
		return;
	}
	buf = ts_xmalloc(DMARC_CHUNK + 1);
	for (;;) {
		ssize_t n;

		if (len >= DMARC_HEADER_MAX)
			break; /* a huge header: its first MiB is enough */
		buf = ts_xrealloc(buf, len + DMARC_CHUNK + 1);
		n = read(fd, buf + len, DMARC_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(c->io_error, sizeof(c->io_error), "read: %s",
				 strerror(errno));
			break;
		}
		if (n == 0)
			break;
		/* stop once the empty line after the header is in */
		size_t from = len > 3 ? len - 3 : 0;

		len += (size_t)n;
		buf[len] = '\0';
		if (memmem(buf + from, len - from, "\n\r\n", 3) != NULL ||
		    memmem(buf + from, len - from, "\n\n", 2) != NULL)
			break;
	}
	close(fd);
	if (c->io_error[0] == '\0')
		dmarc_from_parse(buf, len, &c->from);
	free(buf);
}

static void
dmarc_read_done(void *arg, int status)
{
	static const struct dmarc_resolver resolver = {
		.lookup = dmarc_kernel_lookup,
		.cancel = dmarc_kernel_cancel,
	};
	struct dmarc_check *c = arg;
	struct dmarc_resolver r = resolver;
	struct dmarc_request req;

	c->in_work = false;
	if (c->cancelled) {
		dmarc_check_free(c);
		return;
	}
	if (status != 0 || c->io_error[0] != '\0') {
		struct ts_ctx *ctx = c->ctx;
		ts_hook_token token = c->token;

		ts_log(ctx, TS_LOG_WARN, "dmarc: %s: %s", c->path,
		       status != 0 ? "shutting down" : c->io_error);
		dmarc_check_free(c);
		ts_hook_resume(ctx, token, TS_HOOK_CONTINUE);
		return;
	}
	req = (struct dmarc_request){
		.from = &c->from,
		.spf_domain = c->spf_domain,
		.spf_temperror = c->spf_temperror,
		.dkim_domains = (const char *const *)c->dkim,
		.dkim_count = c->dkim_count,
		.dkim_temperror = c->dkim_temperror,
		.max_queries = c->set.max_queries,
	};
	r.ctx = c->ctx;
	c->timer = ts_timer_new(c->ctx, dmarc_timeout, c);
	ts_timer_start(c->timer, c->set.timeout_ms, 0);
	c->ev = dmarc_eval_new(&r, &req, dmarc_eval_done, c);
	/* may finish (and free c) at once */
	dmarc_eval_run(c->ev);
}

int
dmarc_data_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct dmarc_settings *set = ts_ctx_data(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	const char *path;
	struct dmarc_check *c;

	/* submitted mail (a logged-in account) is ours, not checked */
	if (txn == NULL || ts_txn_account(txn) != NULL)
		return TS_HOOK_CONTINUE;
	path = ts_txn_message_path(txn);
	if (path == NULL)
		path = ts_hook_call_arg(call);
	if (path == NULL)
		return TS_HOOK_CONTINUE;
	c = ts_xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->set = *set;
	c->set.quarantine_mailbox = ts_xstrdup(set->quarantine_mailbox);
	c->path = ts_xstrdup(path);
	dmarc_collect(c, txn);
	c->in_work = true;
	if (ts_work_submit(ctx, dmarc_read_work, dmarc_read_done, c) < 0) {
		dmarc_check_free(c);
		return TS_HOOK_CONTINUE;
	}
	c->token = ts_hook_suspend(call, dmarc_cancel, c);
	return TS_HOOK_PENDING;
}

int
dmarc_deliver_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	struct ts_txn *txn = ts_hook_call_txn(call);
	const char *mailbox = txn != NULL ? ts_txn_data(txn, ctx) : NULL;

	if (mailbox == NULL)
		return TS_HOOK_CONTINUE;
	return ts_hook_deliver_to(call, mailbox);
}
