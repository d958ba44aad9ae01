/*
 * modules/spf/hook.c — SPF checks of one MAIL command.
 *
 * At smtp_mail, for clients that did not log in: check the HELO identity
 * (when check_helo and HELO is a name; RFC 7208 2.3), then MAIL FROM
 * (2.4; the null sender is postmaster@HELO, which is the HELO check once
 * more, so its result is reused).  Each result is attached to the
 * transaction (method spf, smtp.helo / smtp.mailfrom, the DNSSEC status
 * as comment); the MAIL FROM one also becomes a Received-SPF header (9.1)
 * and meets the policy knobs.  The checks run one after the other on the
 * kernel resolver; the hook is suspended meanwhile, bounded by `timeout`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tessera/common.h>
#include <tessera/conn.h>
#include <tessera/dns.h>
#include <tessera/log.h>
#include <tessera/txn.h>
#include <tessera/work.h>

#include "spf.h"
#include "spf-hook.h"

enum spf_stage {
	SPF_STAGE_HELO,
	SPF_STAGE_MAIL,
	SPF_STAGE_DONE,
};

struct spf_check {
	struct ts_ctx *ctx;
	struct spf_settings set; /* a copy: reload may free the original */
	struct ts_hook_call *call; /* while the hook function runs */
	ts_hook_token token; /* once suspended */
	struct ts_timer *timer;
	char *ip, *helo, *sender;
	enum spf_stage stage;
	bool check_helo, running, advancing;
	struct spf_eval *ev[2]; /* per stage; freed with the check */
	enum spf_result result; /* of the MAIL FROM identity */
	enum spf_result helo_result; /* of the HELO identity, if checked */
	bool helo_checked;
	char *explanation;
};

/*
 * The kernel resolver reads names in presentation format: a backslash,
 * a space or a control or 8-bit octet (macros can put them in a name)
 * goes as \DDD.
 */
static void *
spf_kernel_lookup(void *ctx, const char *name, enum ts_dns_type type,
		  ts_dns_fn fn, void *arg)
{
	size_t n = strlen(name), o = 0;
	char *text = ts_xmalloc(4 * n + 1);
	void *q;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '\\' || ch <= 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(text + o, 5, "\\%03u", ch);
		else
			text[o++] = (char)ch;
	}
	text[o] = '\0';
	q = ts_dns_lookup(ctx, text, type, fn, arg);
	free(text);
	return q;
}

static void
spf_kernel_cancel(void *ctx, void *query)
{
	struct ts_dns_query *q = query;

	(void)ctx;
	ts_dns_cancel(&q);
}

static void
spf_check_free(struct spf_check *c)
{
	spf_eval_free(&c->ev[0]);
	spf_eval_free(&c->ev[1]);
	ts_timer_free(&c->timer);
	free(c->set.hostname);
	free(c->ip);
	free(c->helo);
	free(c->sender);
	free(c->explanation);
	free(c);
}

/* The call this check belongs to, or NULL when it went away. */
static struct ts_hook_call *
spf_check_call(struct spf_check *c)
{
	return c->call != NULL ? c->call : ts_hook_lookup(c->ctx, c->token);
}

/* Append s as an RFC 5322 quoted-string, dropping control characters. */
static char *
spf_quoted(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *q = ts_xmalloc(2 * n + 3);

	q[o++] = '"';
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			continue;
		if (*s == '"' || *s == '\\')
			q[o++] = '\\';
		q[o++] = *s;
	}
	q[o++] = '"';
	q[o] = '\0';
	return q;
}

/* RFC 7208 9.1: the comment part of Received-SPF. */
static char *
spf_header_comment(const struct spf_check *c, const struct spf_outcome *o)
{
	const char *who = c->set.hostname;

	switch (o->result) {
	case SPF_PASS:
		return ts_xasprintf("%s: domain of %s designates %s as "
				    "permitted sender",
				    who, o->sender, c->ip);
	case SPF_FAIL:
		return ts_xasprintf("%s: domain of %s does not designate %s "
				    "as permitted sender",
				    who, o->sender, c->ip);
	case SPF_SOFTFAIL:
		return ts_xasprintf("%s: domain of transitioning %s does not "
				    "designate %s as permitted sender",
				    who, o->sender, c->ip);
	case SPF_NEUTRAL:
		return ts_xasprintf("%s: %s is neither permitted nor denied "
				    "by domain of %s",
				    who, c->ip, o->sender);
	case SPF_NONE:
		return ts_xasprintf("%s: domain of %s does not designate "
				    "permitted sender hosts",
				    who, o->sender);
	case SPF_TEMPERROR:
		return ts_xasprintf("%s: error in processing during lookup "
				    "of %s",
				    who, o->sender);
	default:
		return ts_xasprintf("%s: permanent error in processing "
				    "domain of %s",
				    who, o->sender);
	}
}

static void
spf_received_spf(struct spf_check *c, struct ts_hook_call *call,
		 const struct spf_outcome *o, bool helo_identity)
{
	char *comment = spf_header_comment(c, o), *from = spf_quoted(o->sender),
	     *helo = spf_quoted(c->helo != NULL ? c->helo : ""),
	     *mech = o->mechanism != NULL ? spf_quoted(o->mechanism) : NULL,
	     *problem = o->problem != NULL ? spf_quoted(o->problem) : NULL;
	char *value;

	/* comments may not hold unbalanced parentheses: neutralize them */
	for (char *p = comment; *p != '\0'; p++)
		if (*p == '(' || *p == ')' || *p == '\\' ||
		    (unsigned char)*p < 0x20)
			*p = '?';
	value = ts_xasprintf(
		"%s (%s)\r\n\tclient-ip=%s; envelope-from=%s; "
		"helo=%s;\r\n\treceiver=%s; identity=%s%s%s%s%s",
		spf_result_name(o->result), comment, c->ip, from, helo,
		c->set.hostname, helo_identity ? "helo" : "mailfrom",
		mech != NULL ? "; mechanism=" : "", mech != NULL ? mech : "",
		problem != NULL ? "; problem=" : "",
		problem != NULL ? problem : "");
	ts_hook_add_header(call, "Received-SPF", value);
	free(value);
	free(comment);
	free(from);
	free(helo);
	free(mech);
	free(problem);
}

/* Attach one identity's result (RFC 8601 2.7.2: smtp.helo/smtp.mailfrom). */
static void
spf_attach(struct spf_check *c, struct ts_hook_call *call,
	   const struct spf_outcome *o, bool helo_identity)
{
	struct ts_txn *txn = ts_hook_call_txn(call);
	struct ts_auth_result r = {
		.method = "spf",
		.result = spf_result_name(o->result),
		.reason = o->problem,
		/* the DNSSEC status of the answers; none when none came */
		.comment = o->lookups == 0 ? NULL
			   : o->any_bogus  ? "DNSSEC bogus"
			   : o->all_secure ? "DNSSEC secure"
					   : "DNSSEC insecure",
		.prop_count = 1,
	};

	r.props[0].name = helo_identity ? "smtp.helo" : "smtp.mailfrom";
	r.props[0].value = helo_identity ? c->helo : o->sender;
	if (txn != NULL && ts_txn_add_auth_result(txn, &r) != 0)
		ts_log(c->ctx, TS_LOG_WARN,
		       "spf: result not attached identity=%s",
		       r.props[0].value);
	ts_log(c->ctx, TS_LOG_INFO, "spf %s=%s result=%s%s%s",
	       helo_identity ? "helo" : "mailfrom", r.props[0].value, r.result,
	       o->problem != NULL ? " problem=" : "",
	       o->problem != NULL ? o->problem : "");
}

static void spf_advance(struct spf_check *c);

/* One identity is done: attach, and for MAIL FROM keep it for policy. */
static void
spf_identity_done(struct spf_check *c, const struct spf_outcome *o)
{
	struct ts_hook_call *call = spf_check_call(c);
	bool helo_identity = c->stage == SPF_STAGE_HELO;
	bool last = !helo_identity || c->sender[0] == '\0';

	if (call != NULL) {
		spf_attach(c, call, o, helo_identity);
		if (last)
			spf_received_spf(c, call, o, helo_identity);
	}
	if (helo_identity) {
		c->helo_result = o->result;
		c->helo_checked = true;
	}
	if (last) {
		c->result = o->result;
		/* the explanation goes into the reply: one short line */
		if (o->explanation != NULL) {
			c->explanation = ts_xstrndup(o->explanation, 400);
			for (char *p = c->explanation; *p != '\0'; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
		}
	}
	/* the null sender's MAIL FROM check is the HELO check (2.4) */
	c->stage = last ? SPF_STAGE_DONE : c->stage + 1;
	c->running = false;
}

static void
spf_eval_done(const struct spf_outcome *o, void *arg)
{
	struct spf_check *c = arg;

	spf_identity_done(c, o);
	if (!c->advancing)
		spf_advance(c);
}

/* The verdict for the MAIL FROM result, by the policy knobs. */
static int
spf_verdict(struct spf_check *c, struct ts_hook_call *call)
{
	enum spf_action a = SPF_ACTION_IGNORE;

	if (c->result == SPF_FAIL)
		a = c->set.fail_action;
	else if (c->result == SPF_SOFTFAIL)
		a = c->set.softfail_action;
	else if (c->result == SPF_TEMPERROR)
		a = c->set.temperror_action;
	if (a == SPF_ACTION_IGNORE && c->helo_checked &&
	    c->helo_result == SPF_FAIL &&
	    c->set.helo_fail_action != SPF_ACTION_IGNORE) {
		/* 2.3: the HELO identity's own fail, checked on its own */
		ts_hook_reason(call, "spf-helo-fail");
		if (c->set.helo_fail_action == SPF_ACTION_REJECT)
			return ts_hook_reject(call, 550, "5.7.23",
					      "SPF validation of HELO %s "
					      "failed",
					      c->helo);
		return ts_hook_tempfail(call, 451, "4.7.23",
					"SPF validation of HELO %s failed, "
					"try again later",
					c->helo);
	}
	if (a == SPF_ACTION_IGNORE)
		return TS_HOOK_CONTINUE;
	ts_hook_reason(call, c->result == SPF_TEMPERROR ? "spf-temperror"
			     : c->result == SPF_FAIL	? "spf-fail"
							: "spf-softfail");
	/* RFC 7372: 5.7.23 SPF validation failed, 4.7.24 SPF error */
	if (a == SPF_ACTION_REJECT)
		return ts_hook_reject(
			call, 550, "5.7.23", "SPF validation failed%s%s",
			c->explanation != NULL ? ": " : "",
			c->explanation != NULL ? c->explanation : "");
	return ts_hook_tempfail(
		call, 451, c->result == SPF_TEMPERROR ? "4.7.24" : "4.7.23",
		"SPF validation %s, try again later",
		c->result == SPF_TEMPERROR ? "error" : "failed");
}

/* Everything is done: answer (when suspended) and go. */
static void
spf_complete(struct spf_check *c)
{
	struct ts_ctx *ctx = c->ctx;
	ts_hook_token token = c->token;
	struct ts_hook_call *call;
	int rc;

	if (c->call != NULL)
		return; /* still inside the hook function: it answers */
	call = ts_hook_lookup(ctx, token);
	rc = call != NULL ? spf_verdict(c, call) : TS_HOOK_CONTINUE;
	spf_check_free(c);
	ts_hook_resume(ctx, token, rc);
}

/* Start the next identity's check, until one waits for DNS or all done. */
static void
spf_advance(struct spf_check *c)
{
	static const struct spf_resolver resolver = {
		.lookup = spf_kernel_lookup,
		.cancel = spf_kernel_cancel,
	};

	c->advancing = true;
	while (!c->running && c->stage != SPF_STAGE_DONE) {
		bool helo = c->stage == SPF_STAGE_HELO;
		struct spf_request req = {
			.ip = c->ip,
			.sender = helo ? "" : c->sender,
			.helo = c->helo != NULL ? c->helo : "",
			.receiver = c->set.hostname,
			.max_dns_mechanisms = c->set.max_dns,
			.max_void_lookups = c->set.max_void,
			.now = time(NULL),
		};

		if (helo && !c->check_helo) {
			c->stage = SPF_STAGE_MAIL;
			continue;
		}
		/* resolver.ctx is the module's ctx, for ts_dns_lookup */
		struct spf_resolver r = resolver;

		r.ctx = c->ctx;
		c->running = true;
		c->ev[c->stage] = spf_eval_new(&r, &req, spf_eval_done, c);
		spf_eval_run(c->ev[c->stage]);
	}
	c->advancing = false;
	if (c->stage == SPF_STAGE_DONE)
		spf_complete(c);
}

/* `timeout` passed: what is unfinished is a temperror. */
static void
spf_timeout(struct ts_timer *timer, void *arg)
{
	struct spf_check *c = arg;
	struct spf_outcome o = {
		.result = SPF_TEMPERROR,
		.problem = "SPF check timed out",
	};

	char *postmaster =
		ts_xasprintf("postmaster@%s", c->helo != NULL ? c->helo : "");

	(void)timer;
	while (c->stage != SPF_STAGE_DONE) {
		if (c->stage == SPF_STAGE_HELO && !c->check_helo) {
			c->stage = SPF_STAGE_MAIL;
			continue;
		}
		spf_eval_free(&c->ev[c->stage]); /* cancels its lookup */
		o.sender = c->stage == SPF_STAGE_HELO || c->sender[0] == '\0'
				   ? postmaster
				   : c->sender;
		spf_identity_done(c, &o);
	}
	free(postmaster);
	spf_complete(c);
}

/* The client left or the kernel gave up on the hook. */
static void
spf_cancel(void *arg)
{
	struct spf_check *c = arg;

	ts_log(c->ctx, TS_LOG_DEBUG, "spf: check cancelled ip=%s", c->ip);
	spf_check_free(c);
}

int
spf_mail_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct spf_settings *set = ts_ctx_data(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	const struct ts_txn_mail *mail = txn != NULL ? ts_txn_mail(txn) : NULL;
	struct ts_conn *conn = txn != NULL ? ts_txn_conn(txn) : NULL;
	const char *ip = conn != NULL ? ts_conn_remote_ip(conn) : NULL;
	const char *helo = txn != NULL ? ts_txn_helo(txn) : NULL;
	struct spf_check *c;
	int rc;

	/* a logged-in client (submission) is not checked */
	if (mail == NULL || ip == NULL || ts_txn_account(txn) != NULL)
		return TS_HOOK_CONTINUE;
	c = ts_xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->set = *set;
	c->set.hostname = ts_xstrdup(set->hostname);
	c->ip = ts_xstrdup(ip);
	c->helo = helo != NULL ? ts_xstrdup(helo) : NULL;
	c->sender = ts_xstrdup(mail->address != NULL ? mail->address : "");
	/* 2.3: HELO is checked when it is a name, not an address literal */
	c->check_helo = helo != NULL && helo[0] != '[' &&
			(set->check_helo || c->sender[0] == '\0');
	if (c->sender[0] == '\0' && !c->check_helo) {
		/* null sender and no usable HELO: nothing to check */
		spf_check_free(c);
		return TS_HOOK_CONTINUE;
	}
	c->call = call;
	spf_advance(c);
	c->call = NULL;
	if (c->stage == SPF_STAGE_DONE) {
		rc = spf_verdict(c, call);
		spf_check_free(c);
		return rc;
	}
	ts_log(ctx, TS_LOG_DEBUG, "spf: waiting for DNS ip=%s", c->ip);
	c->token = ts_hook_suspend(call, spf_cancel, c);
	c->timer = ts_timer_new(ctx, spf_timeout, c);
	ts_timer_start(c->timer, c->set.timeout_ms, 0);
	return TS_HOOK_PENDING;
}
