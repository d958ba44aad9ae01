/*
 * modules/iprev/iprev.c — the iprev module: descriptor, settings, and the
 * smtp_mail hook that runs the check (eval.c) for inbound clients.
 *
 * The check belongs to the connection, not the message: its outcome is
 * kept on the connection (ts_conn_set_data) and attached to every
 * transaction of it as an Authentication-Results entry ("iprev=pass
 * (mail.example.org; DNSSEC insecure) policy.iprev=192.0.2.1", RFC 8601
 * 2.7.3 and 3).  The hook is PARALLEL, so its two DNS round trips
 * overlap SPF's at the same point.  Clients that logged in are not
 * checked.  What a failure does is the admin's choice (fail_action,
 * temperror_action); by default nothing: the junk filter weighs it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tessera/common.h>
#include <tessera/config.h>
#include <tessera/conn.h>
#include <tessera/dns.h>
#include <tessera/hook.h>
#include <tessera/log.h>
#include <tessera/module.h>
#include <tessera/work.h>
#include <tessera/txn.h>

#include "iprev.h"

enum iprev_action {
	IPREV_ACTION_IGNORE,
	IPREV_ACTION_TEMPFAIL,
	IPREV_ACTION_REJECT,
};

struct iprev_settings {
	enum iprev_action fail_action, temperror_action;
	unsigned max_names;
	uint64_t timeout_ms;
};

static const struct ts_cfg_key iprev_keys[] = {
	{ .name = "fail_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|reject|tempfail",
	  .doc = "what iprev fail or permerror (no PTR, or no name that "
		 "leads back) does: ignore, reject (550 5.7.25) or tempfail "
		 "(450 4.7.25)" },
	{ .name = "temperror_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|tempfail",
	  .doc = "what an iprev temperror (DNS failure) does: ignore or "
		 "tempfail (451 4.4.3)" },
	{ .name = "max_names",
	  .type = TS_CFG_INT,
	  .default_value = "10",
	  .min = 1,
	  .max = 50,
	  .doc = "PTR names whose addresses are looked up per client" },
	{ .name = "timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "20s",
	  .doc = "longest time for the check; then it is a temperror" },
	{ .name = NULL },
};

/* The outcome kept on the connection. */
struct iprev_known {
	enum iprev_result result;
	char *ip, *name, *comment;
};

/* A check in flight for one hook call. */
struct iprev_check {
	struct ts_ctx *ctx;
	struct iprev_settings set; /* a copy: reload may free the original */
	ts_hook_token token;
	struct ts_timer *timer;
	struct ts_conn *conn;
	char *ip;
	struct iprev_eval *ev;
};

static enum iprev_action
iprev_action_parse(const char *s)
{
	if (strcmp(s, "reject") == 0)
		return IPREV_ACTION_REJECT;
	if (strcmp(s, "tempfail") == 0)
		return IPREV_ACTION_TEMPFAIL;
	return IPREV_ACTION_IGNORE;
}

static void
iprev_known_free(void *data)
{
	struct iprev_known *k = data;
	if (k == NULL)
		return;
	free(k->ip);
	free(k->name);
	free(k->comment);
	free(k);
}

static void
iprev_check_free(struct iprev_check *c)
{
	iprev_eval_free(&c->ev);
	ts_timer_free(&c->timer);
	free(c->ip);
	free(c);
}

/* Keep the outcome on the connection (replacing nothing: one per conn). */
static struct iprev_known *
iprev_remember(struct iprev_check *c, const struct iprev_outcome *o)
{
	struct iprev_known *k = ts_xcalloc(1, sizeof(*k));
	const char *dnssec = o->lookups == 0 ? NULL
			     : o->any_bogus  ? "DNSSEC bogus"
			     : o->all_secure ? "DNSSEC secure"
					     : "DNSSEC insecure";
	k->result = o->result;
	k->ip = ts_xstrdup(c->ip);
	k->name = o->name != NULL ? ts_xstrdup(o->name) : NULL;
	/* RFC 8601 2.7.3: the name goes in a comment, not a property */
	if (k->name != NULL && dnssec != NULL)
		k->comment = ts_xasprintf("%s; %s", k->name, dnssec);
	else if (k->name != NULL || dnssec != NULL)
		k->comment = ts_xstrdup(k->name != NULL ? k->name : dnssec);
	ts_log(c->ctx, TS_LOG_INFO, "iprev ip=%s result=%s name=%s%s%s",
	       c->ip, iprev_result_name(o->result),
	       o->name != NULL ? o->name : "-",
	       o->problem != NULL ? " problem=" : "",
	       o->problem != NULL ? o->problem : "");
	if (c->conn != NULL)
		ts_conn_set_data(c->conn, c->ctx, k, iprev_known_free);
	return k;
}

/* Attach the result to the call's transaction; return the verdict. */
static int
iprev_apply(struct ts_ctx *ctx, const struct iprev_settings *set,
	    struct ts_hook_call *call, const struct iprev_known *k)
{
	struct ts_txn *txn = ts_hook_call_txn(call);
	struct ts_auth_result r = {
		.method = "iprev",
		.result = iprev_result_name(k->result),
		.comment = k->comment,
		.prop_count = 1,
	};
	r.props[0].name = "policy.iprev";
	r.props[0].value = k->ip;
	if (txn != NULL && ts_txn_add_auth_result(txn, &r) != 0)
		ts_log(ctx, TS_LOG_WARN, "iprev: result not attached ip=%s",
		       k->ip);
	enum iprev_action a = IPREV_ACTION_IGNORE;
	if (k->result == IPREV_FAIL || k->result == IPREV_PERMERROR)
		a = set->fail_action;
	else if (k->result == IPREV_TEMPERROR)
		a = set->temperror_action;
	if (a == IPREV_ACTION_IGNORE)
		return TS_HOOK_CONTINUE;
	ts_hook_reason(call, k->result == IPREV_TEMPERROR ? "iprev-temperror"
							   : "iprev-fail");
	if (k->result == IPREV_TEMPERROR)
		return ts_hook_tempfail(call, 451, "4.4.3",
					"cannot verify the reverse DNS of %s, "
					"try again later",
					k->ip);
	/* RFC 7372: X.7.25 reverse DNS validation failed */
	if (a == IPREV_ACTION_REJECT)
		return ts_hook_reject(call, 550, "5.7.25",
				      "reverse DNS of %s does not match",
				      k->ip);
	return ts_hook_tempfail(call, 450, "4.7.25",
				"reverse DNS of %s does not match", k->ip);
}

static void
iprev_resume(struct iprev_check *c, const struct iprev_outcome *o)
{
	struct ts_ctx *ctx = c->ctx;
	ts_hook_token token = c->token;
	struct iprev_known *k = iprev_remember(c, o);
	struct ts_hook_call *call = ts_hook_lookup(ctx, token);
	int rc = call != NULL ? iprev_apply(ctx, &c->set, call, k)
			      : TS_HOOK_CONTINUE;
	if (c->conn == NULL)
		iprev_known_free(k);
	iprev_check_free(c);
	ts_hook_resume(ctx, token, rc);
}

static void
iprev_done(const struct iprev_outcome *o, void *arg)
{
	iprev_resume(arg, o);
}

static void
iprev_timeout(struct ts_timer *timer, void *arg)
{
	struct iprev_check *c = arg;
	struct iprev_outcome o = { .result = IPREV_TEMPERROR,
				   .problem = "timed out" };
	(void)timer;
	iprev_eval_free(&c->ev); /* cancels its lookups */
	iprev_resume(c, &o);
}

/* The client left or the kernel gave up on the hook. */
static void
iprev_cancel(void *arg)
{
	iprev_check_free(arg);
}

static void *
iprev_kernel_lookup(void *ctx, const char *name, enum ts_dns_type type,
		    ts_dns_fn fn, void *arg)
{
	return ts_dns_lookup(ctx, name, type, fn, arg);
}

static void *
iprev_kernel_lookup_ptr(void *ctx, const char *ip, ts_dns_fn fn, void *arg)
{
	return ts_dns_lookup_ptr(ctx, ip, fn, arg);
}

static void
iprev_kernel_cancel(void *ctx, void *query)
{
	struct ts_dns_query *q = query;
	(void)ctx;
	ts_dns_cancel(&q);
}

static int
iprev_mail_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct iprev_settings *set = ts_ctx_data(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	struct ts_conn *conn = txn != NULL ? ts_txn_conn(txn) : NULL;
	const char *ip = conn != NULL ? ts_conn_remote_ip(conn) : NULL;

	/* a logged-in client (submission) is not checked */
	if (ip == NULL || ts_txn_account(txn) != NULL)
		return TS_HOOK_CONTINUE;
	const struct iprev_known *known = ts_conn_data(conn, ctx);
	if (known != NULL) /* an earlier message of this connection */
		return iprev_apply(ctx, set, call, known);

	struct iprev_check *c = ts_xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->set = *set;
	c->conn = conn;
	c->ip = ts_xstrdup(ip);
	struct iprev_resolver r = {
		.ctx = ctx,
		.lookup = iprev_kernel_lookup,
		.lookup_ptr = iprev_kernel_lookup_ptr,
		.cancel = iprev_kernel_cancel,
	};
	c->ev = iprev_eval_new(&r, ip, set->max_names, iprev_done, c);
	if (iprev_eval_run(c->ev)) {
		struct iprev_known *k =
			iprev_remember(c, iprev_eval_outcome(c->ev));
		int rc = iprev_apply(ctx, set, call, k);
		iprev_check_free(c);
		return rc;
	}
	c->token = ts_hook_suspend(call, iprev_cancel, c);
	c->timer = ts_timer_new(ctx, iprev_timeout, c);
	ts_timer_start(c->timer, c->set.timeout_ms, 0);
	return TS_HOOK_PENDING;
}

static struct iprev_settings *
iprev_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct iprev_settings *set = ts_xcalloc(1, sizeof(*set));
	set->fail_action = iprev_action_parse(ts_cfg_str(s, "fail_action"));
	set->temperror_action =
		iprev_action_parse(ts_cfg_str(s, "temperror_action"));
	set->max_names = (unsigned)ts_cfg_int(s, "max_names");
	set->timeout_ms = ts_cfg_duration_ms(s, "timeout");
	return set;
}

static int
iprev_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, iprev_settings_new(cfg, ctx));
	return ts_hook_add(ctx, TS_HOOK_SMTP_MAIL, iprev_mail_hook, 0,
			   TS_HOOK_PARALLEL);
}

static int
iprev_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	/* checks in flight keep their own copy of the settings */
	free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, iprev_settings_new(cfg, ctx));
	return 0;
}

static void
iprev_shutdown(struct ts_ctx *ctx)
{
	free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(iprev) = {
	TS_MODULE_HEADER,
	.name = "iprev",
	.version = "0.1",
	.description = "iprev (RFC 8601): does the client's reverse DNS "
		       "lead back to it",
	.config_keys = iprev_keys,
	.init = iprev_init,
	.reload = iprev_reload,
	.shutdown = iprev_shutdown,
};
