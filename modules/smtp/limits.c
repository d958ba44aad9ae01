/*
 * modules/smtp/limits.c — outgoing limits per account: how many
 * messages an authenticated account may send per 24 hours
 * (max_messages_per_day) and to how many addresses it never sent to
 * before (max_new_recipients_per_day), so that a stolen password cannot
 * turn the server into a spam cannon.
 *
 * Two hooks of this module at its own points: smtp_mail refuses a new
 * message once the day's count is reached; smtp_rcpt refuses a remote
 * recipient the account never sent to once the day's first-time
 * recipients are used up (counting the transaction's earlier new ones).
 * The history lives in the account's store (ts_store_outgoing_*,
 * kernel/store/outgoing.c); deliver.c records each accepted message that
 * has remote recipients (smtp_limits_record).  The refusals are
 * temporary (451 4.7.1) and name the key to raise.  Sessions without an
 * authenticated account (inbound MX traffic) and local recipients are
 * not limited.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp.h"

/* One pending check; the hook token finds the call again, if alive. */
struct smtp_limit_check {
	struct ts_ctx *ctx;
	ts_hook_token token;
	bool rcpt; /* smtp_rcpt (else smtp_mail) */
	char *account;
};

static void
smtp_limit_check_free(struct smtp_limit_check *c)
{
	free(c->account);
	free(c);
}

static void
smtp_limit_answer(int status, const char *error,
		  const struct ts_store_outgoing *out, void *arg)
{
	struct smtp_limit_check *c = arg;
	struct ts_hook_call *call = ts_hook_lookup(c->ctx, c->token);
	if (call == NULL) { /* the client left, or the hook timed out */
		smtp_limit_check_free(c);
		return;
	}
	const struct smtp_settings *set = smtp_settings(c->ctx);
	int rc = TS_HOOK_CONTINUE;
	if (status != 0) {
		ts_log(c->ctx, TS_LOG_WARN,
		       "outgoing limits unavailable account=%s error=\"%s\"",
		       c->account, error != NULL ? error : ts_strerror(status));
		rc = ts_hook_tempfail(call, 451, "4.3.0",
				      "cannot check the sending limits, try "
				      "again later");
	} else if (!c->rcpt && set->max_messages_per_day > 0 &&
		   out->messages >= set->max_messages_per_day) {
		ts_log(c->ctx, TS_LOG_INFO,
		       "outgoing limit reached account=%s messages=%llu",
		       c->account, (unsigned long long)out->messages);
		rc = ts_hook_tempfail(
			call, 451, "4.7.1",
			"daily limit of %u messages reached for this "
			"account (raise [module smtp] max_messages_per_day)",
			set->max_messages_per_day);
	} else if (c->rcpt && out->first_unknown &&
		   out->new_recipients + out->unknown >
			   set->max_new_recipients_per_day) {
		ts_log(c->ctx, TS_LOG_INFO,
		       "outgoing limit reached account=%s "
		       "new_recipients=%llu",
		       c->account, (unsigned long long)out->new_recipients);
		rc = ts_hook_tempfail(
			call, 451, "4.7.1",
			"daily limit of %u first-time recipients reached for "
			"this account (raise [module smtp] "
			"max_new_recipients_per_day)",
			set->max_new_recipients_per_day);
	}
	ts_hook_resume(c->ctx, c->token, rc);
	smtp_limit_check_free(c);
}

/*
 * At smtp_mail, the day's messages; at smtp_rcpt, for a remote
 * recipient, whether it is new and how many of the transaction's remote
 * recipients so far are new (they will be recorded together with the
 * message), next to the day's first-time recipients.
 */
static int
smtp_limit_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct smtp_settings *set = smtp_settings(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	bool rcpt = ts_hook_call_point(call) == TS_HOOK_SMTP_RCPT;
	const char *account = txn != NULL ? ts_txn_account(txn) : NULL;
	if (account == NULL)
		return TS_HOOK_CONTINUE;
	if ((rcpt && set->max_new_recipients_per_day == 0) ||
	    (!rcpt && set->max_messages_per_day == 0))
		return TS_HOOK_CONTINUE;
	size_t n = ts_txn_rcpt_count(txn);
	const char **addrs = NULL;
	size_t count = 0;
	if (rcpt) {
		const struct ts_txn_rcpt *last =
			n > 0 ? ts_txn_rcpt(txn, n - 1) : NULL;
		if (last == NULL || last->account != NULL)
			return TS_HOOK_CONTINUE; /* local: not limited */
		/* This one first, then the earlier remote ones. */
		addrs = ts_xcalloc(n, sizeof(*addrs));
		addrs[count++] = last->address;
		for (size_t i = 0; i + 1 < n; i++) {
			const struct ts_txn_rcpt *r = ts_txn_rcpt(txn, i);
			if (r->account == NULL)
				addrs[count++] = r->address;
		}
	}
	struct smtp_limit_check *c = ts_xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->rcpt = rcpt;
	c->account = ts_xstrdup(account);
	int rc = ts_store_outgoing_query(ctx, account, addrs, count,
					 (int64_t)time(NULL), smtp_limit_answer,
					 c);
	free(addrs);
	if (rc != 0) {
		smtp_limit_check_free(c);
		return TS_HOOK_CONTINUE; /* no store for it: nothing to count */
	}
	c->token = ts_hook_suspend(call, NULL, NULL);
	return TS_HOOK_PENDING;
}

int
smtp_limits_init(struct ts_ctx *ctx)
{
	int rc = ts_hook_add(ctx, TS_HOOK_SMTP_MAIL, smtp_limit_hook, -50, 0);
	if (rc == 0)
		rc = ts_hook_add(ctx, TS_HOOK_SMTP_RCPT, smtp_limit_hook, -50,
				 0);
	return rc;
}

static void
smtp_limits_recorded(int status, const char *error, void *arg)
{
	struct ts_ctx *ctx = arg;
	if (status != 0)
		ts_log(ctx, TS_LOG_WARN,
		       "cannot record outgoing history error=\"%s\"",
		       error != NULL ? error : ts_strerror(status));
}

void
smtp_limits_record(struct ts_ctx *ctx, const struct ts_txn *txn)
{
	const char *account = ts_txn_account(txn);
	if (account == NULL)
		return;
	size_t n = ts_txn_rcpt_count(txn), count = 0;
	const char **addrs = ts_xcalloc(n ? n : 1, sizeof(*addrs));
	for (size_t i = 0; i < n; i++) {
		const struct ts_txn_rcpt *r = ts_txn_rcpt(txn, i);
		if (r->account == NULL)
			addrs[count++] = r->address;
	}
	if (count > 0)
		(void)ts_store_outgoing_record(ctx, account, addrs, count,
					       (int64_t)time(NULL),
					       smtp_limits_recorded, ctx);
	free(addrs);
}
