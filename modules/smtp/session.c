/*
 * modules/smtp/session.c — the SMTP session state machine.
 *
 * One struct smtp_session per connection, kept in the connection's slot.
 * Lines are commands (parsed by command.c), DATA lines (data.c) or SASL
 * answers (auth.c) depending on the state.  Whenever a step waits (a
 * hook run, a spool write, the store) input is paused, so pipelined
 * commands are handled strictly in order and replies stay ordered.
 * Replies a hook asked to delay go out from a timer.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp.h"

/* How long a test_localparts `timeout…` recipient waits for its answer. */
#define SMTP_TEST_TIMEOUT_MS 30000

static struct smtp_session *
smtp_session(struct ts_conn *conn)
{
	return ts_conn_data(conn, ts_conn_protocol_ctx(conn));
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = ts_xvasprintf(fmt, ap);
	va_end(ap);
	ts_conn_printf(s->conn, "%s\r\n", text);
	free(text);
}

/* Id of a new transaction, for logs and Received. */
static char *
smtp_queue_id(const struct smtp_session *s)
{
	return ts_xasprintf("%" PRIx64 "x%" PRIx64, ts_conn_id(s->conn),
			    s->serial);
}

/* --- replies after the wait a hook asked for ---------------------------- */

static void
smtp_send_delayed(struct smtp_session *s)
{
	char *reply = s->delayed_reply;
	bool close_after = s->delayed_close;
	s->delayed_reply = NULL;
	s->delayed_close = false;
	if (reply != NULL)
		ts_conn_printf(s->conn, "%s\r\n", reply);
	free(reply);
	if (close_after) {
		ts_conn_close(s->conn, "refused");
		return;
	}
	if (s->state == SMTP_S_BUSY)
		s->state = SMTP_S_CMD;
	ts_conn_resume(s->conn);
}

static void
smtp_timer_fired(struct ts_timer *timer, void *arg)
{
	(void)timer;
	smtp_send_delayed(arg);
}

/*
 * End an asynchronous step: send `reply` (taken; NULL sends nothing)
 * after delay_ms, then either close or go back to reading commands.
 */
void
smtp_finish(struct smtp_session *s, uint64_t delay_ms, char *reply,
	    bool close_after)
{
	free(s->delayed_reply);
	s->delayed_reply = reply;
	s->delayed_close = close_after;
	if (delay_ms == 0) {
		smtp_send_delayed(s);
		return;
	}
	s->state = SMTP_S_BUSY;
	ts_conn_pause(s->conn);
	if (s->timer == NULL)
		s->timer = ts_timer_new(s->ctx, smtp_timer_fired, s);
	ts_timer_start(s->timer, delay_ms, 0);
}

/* --- hooks --------------------------------------------------------------- */

static void
smtp_hook_done(const struct ts_hook_result *res, void *arg)
{
	struct smtp_session *s = arg;
	s->hook_waiting = false;
	s->run = NULL;
	s->hook_cb(s, res);
}

/*
 * Run a hook point for this session with input paused; cb gets the
 * merged result (possibly before this returns).
 */
void
smtp_run_hook(struct smtp_session *s, enum ts_hook_point point, const char *arg,
	      void (*cb)(struct smtp_session *s,
			 const struct ts_hook_result *res))
{
	struct ts_hook_args args = { .conn = s->conn, .arg = arg };
	/* Points after MAIL see the transaction (ts_hook_call_txn). */
	if (point != TS_HOOK_SMTP_HELO && point != TS_HOOK_AUTH)
		args.subject = s->txn;
	s->state = SMTP_S_BUSY;
	ts_conn_pause(s->conn);
	s->hook_cb = cb;
	s->hook_waiting = true;
	struct ts_hook_run *run =
		ts_hook_run(s->ctx, point, &args, smtp_hook_done, s);
	if (s->hook_waiting)
		s->run = run;
}

/* A code within [lo, hi] or the default. */
static int
smtp_code_in(int code, int lo, int hi, int def)
{
	return code >= lo && code <= hi ? code : def;
}

/*
 * The reply for a refusing hook result ("550 5.7.1 text"), or NULL when
 * the verdict lets the command go on.
 */
char *
smtp_refusal(const struct ts_hook_result *res)
{
	if (res->verdict == TS_VERDICT_REJECT) {
		int code = smtp_code_in(res->code, 500, 599, 550);
		const char *enh =
			res->enhanced != NULL && res->enhanced[0] == '5'
				? res->enhanced
				: "5.7.1";
		return ts_xasprintf("%d %s %s", code, enh,
				    res->text != NULL ? res->text
						      : "rejected by policy");
	}
	if (res->verdict == TS_VERDICT_TEMPFAIL) {
		int code = smtp_code_in(res->code, 400, 499, 451);
		const char *enh =
			res->enhanced != NULL && res->enhanced[0] == '4'
				? res->enhanced
				: "4.7.1";
		return ts_xasprintf("%d %s %s", code, enh,
				    res->text != NULL ? res->text
						      : "try again later");
	}
	return NULL;
}

/* Keep the headers a hook run added, for the message's prefix. */
void
smtp_keep_headers(struct smtp_session *s, const struct ts_hook_result *res)
{
	for (size_t i = 0; i < res->header_count && s->txn != NULL; i++)
		ts_txn_add_header(s->txn, res->headers[i]);
}

/* Recipients accepted so far (not the one whose hooks are running). */
size_t
smtp_rcpt_count(const struct smtp_session *s)
{
	if (s->txn == NULL)
		return 0;
	return ts_txn_rcpt_count(s->txn) - (s->rcpt_pending ? 1 : 0);
}

/* --- transaction --------------------------------------------------------- */

void
smtp_transaction_reset(struct smtp_session *s)
{
	ts_txn_free(&s->txn);
	smtp_path_clear(&s->from);
	free(s->from_text);
	s->from_text = NULL;
	s->body = SMTP_BODY_UNSET;
	s->smtputf8 = false;
	s->requiretls = false;
	free(s->mail_mailbox);
	s->mail_mailbox = NULL;
	s->rcpt_pending = false;
	smtp_spool_discard(&s->spool);
	s->data_bytes = 0;
	s->data_flags = 0;
	s->bdat_last = false;
	s->bdat_discard = false;
	s->bdat_prev_cr = false;
	smtp_header_reset(s);
}

/* Forget everything said before (RFC 3207 after STARTTLS). */
static void
smtp_session_reset(struct smtp_session *s)
{
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	smtp_auth_reset(s);
	free(s->account);
	s->account = NULL;
}

static void
smtp_session_free(void *data)
{
	struct smtp_session *s = data;
	smtp_session_reset(s);
	ts_txn_free(&s->side_txn);
	ts_timer_free(&s->timer);
	free(s->delayed_reply);
	free(s);
}

/* --- errors -------------------------------------------------------------- */

/* Count a bad command; true when the session was closed for too many. */
static bool
smtp_error(struct smtp_session *s)
{
	s->errors++;
	if (s->errors < smtp_settings(s->ctx)->max_errors)
		return false;
	smtp_reply(s, "421 4.7.0 %s too many errors, closing",
		   smtp_settings(s->ctx)->hostname);
	ts_conn_close(s->conn, "too many errors");
	return true;
}

/* --- commands ------------------------------------------------------------ */

static bool
smtp_tls_active(const struct smtp_session *s)
{
	struct ts_tls_info tls;
	return ts_conn_tls_info(s->conn, &tls) == 0;
}

static unsigned
smtp_extensions(const struct smtp_session *s)
{
	unsigned ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
		       SMTP_EXT_BINARYMIME | SMTP_EXT_DSN;
	if (smtp_auth_offered(s))
		ext |= SMTP_EXT_AUTH;
	/* RFC 8689 2: REQUIRETLS is offered only on a TLS session. */
	if (smtp_tls_active(s))
		ext |= SMTP_EXT_REQUIRETLS;
	return ext;
}

static bool
smtp_must_auth(const struct smtp_session *s)
{
	return s->mode != SMTP_MODE_SMTP && s->account == NULL;
}

static void
smtp_helo_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	if (refusal != NULL) {
		free(s->helo);
		s->helo = NULL;
		smtp_finish(s, res->delay_ms, refusal, false);
		return;
	}
	struct smtp_settings *set = smtp_settings(s->ctx);
	if (!s->esmtp) {
		smtp_finish(s, res->delay_ms,
			    ts_xasprintf("250 %s", set->hostname), false);
		return;
	}
	char *r = ts_xasprintf("250-%s Hello %s\r\n"
			       "250-PIPELINING\r\n"
			       "250-SIZE %" PRIu64 "\r\n"
			       "250-8BITMIME\r\n"
			       "250-SMTPUTF8\r\n"
			       "250-ENHANCEDSTATUSCODES\r\n"
			       "250-CHUNKING\r\n"
			       "250-BINARYMIME\r\n"
			       "250-DSN",
			       set->hostname, s->helo, set->max_size);
	if (smtp_tls_active(s)) {
		char *t = ts_xasprintf("%s\r\n250-REQUIRETLS", r);
		free(r);
		r = t;
	}
	if (ts_conn_tls_offered(s->conn)) {
		char *t = ts_xasprintf("%s\r\n250-STARTTLS", r);
		free(r);
		r = t;
	}
	if (smtp_auth_offered(s) && s->account == NULL) {
		char *t = ts_xasprintf("%s\r\n250-AUTH %s", r,
				       smtp_auth_mechanisms(s));
		free(r);
		r = t;
	}
	char *t = ts_xasprintf("%s\r\n250 HELP", r);
	free(r);
	smtp_finish(s, res->delay_ms, t, false);
}

static void
smtp_cmd_helo(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = ts_xstrdup(cmd->domain);
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	smtp_run_hook(s, TS_HOOK_SMTP_HELO, s->helo, smtp_helo_done);
}

static void
smtp_mail_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	if (refusal != NULL) {
		smtp_transaction_reset(s);
		smtp_finish(s, res->delay_ms, refusal, false);
		return;
	}
	if (res->verdict == TS_VERDICT_MAILBOX && res->mailbox != NULL)
		s->mail_mailbox = ts_xstrdup(res->mailbox);
	smtp_keep_headers(s, res);
	smtp_finish(s, res->delay_ms, ts_xstrdup("250 2.1.0 OK"), false);
}

/* "<a@b>" without its brackets, as the transaction keeps paths. */
static char *
smtp_path_bare(const struct smtp_path *p)
{
	char *text = smtp_path_format(p);
	size_t n = strlen(text);
	char *bare = ts_xstrndup(text + 1, n >= 2 ? n - 2 : 0);
	free(text);
	return bare;
}

/* A new transaction for the MAIL command just accepted for checking. */
static void
smtp_txn_begin(struct smtp_session *s, const struct smtp_mail_params *mp)
{
	s->serial++;
	char *id = smtp_queue_id(s);
	s->txn = ts_txn_new(s->conn, id);
	free(id);
	ts_txn_set_helo(s->txn, s->helo);
	ts_txn_set_account(s->txn, s->account);
	char *address = smtp_path_bare(&s->from);
	static const enum ts_txn_body bodies[] = {
		[SMTP_BODY_UNSET] = TS_BODY_UNSET,
		[SMTP_BODY_7BIT] = TS_BODY_7BIT,
		[SMTP_BODY_8BITMIME] = TS_BODY_8BITMIME,
		[SMTP_BODY_BINARYMIME] = TS_BODY_BINARYMIME,
	};
	static const enum ts_dsn_ret rets[] = {
		[SMTP_RET_UNSET] = TS_DSN_RET_UNSET,
		[SMTP_RET_FULL] = TS_DSN_RET_FULL,
		[SMTP_RET_HDRS] = TS_DSN_RET_HDRS,
	};
	struct ts_txn_mail mail = {
		.address = address,
		.localpart = s->from.localpart_unquoted,
		.domain = s->from.domain,
		.smtputf8 = mp->smtputf8,
		.requiretls = mp->requiretls,
		.body = bodies[mp->body],
		.ret = rets[mp->ret],
		.envid = mp->envid,
	};
	ts_txn_set_mail(s->txn, &mail);
	free(address);
}

static void
smtp_cmd_mail(struct smtp_session *s, struct smtp_command *cmd)
{
	if (s->helo == NULL) {
		smtp_reply(s, "503 5.5.1 say EHLO first");
		smtp_error(s);
		return;
	}
	if (smtp_must_auth(s)) {
		smtp_reply(s, "530 5.7.0 authentication required");
		smtp_error(s);
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, "503 5.5.1 nested MAIL command");
		smtp_error(s);
		return;
	}
	if (s->account != NULL && smtp_settings(s->ctx)->accept_all == NULL) {
		/*
		 * Only the account's own addresses as sender (a development
		 * server with accept_all takes any).
		 */
		struct ts_address_match m;
		char *addr = ts_xasprintf("%s@%s", cmd->path.localpart_unquoted,
					  cmd->path.domain);
		int rc = (cmd->path.flags & SMTP_PATH_NULL)
				 ? TS_E_NOTFOUND
				 : ts_address_lookup(s->ctx, addr, &m);
		free(addr);
		if (rc != 0 || strcmp(m.account, s->account) != 0 ||
		    m.kind == TS_ADDRESS_CATCHALL) {
			smtp_reply(s, "550 5.7.1 sender address not owned by "
				      "the authenticated account");
			return;
		}
	}
	s->from = cmd->path;
	memset(&cmd->path, 0, sizeof(cmd->path));
	s->from_text = smtp_path_format(&s->from);
	s->body = cmd->mail.body;
	s->smtputf8 = cmd->mail.smtputf8;
	s->requiretls = cmd->mail.requiretls;
	smtp_txn_begin(s, &cmd->mail);
	smtp_run_hook(s, TS_HOOK_SMTP_MAIL, s->from_text, smtp_mail_done);
}

static void
smtp_rcpt_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *refusal = smtp_refusal(res);
	s->rcpt_pending = false;
	if (refusal != NULL) {
		ts_txn_drop_last_rcpt(s->txn);
		smtp_finish(s, res->delay_ms, refusal, false);
		return;
	}
	if (res->verdict == TS_VERDICT_MAILBOX && res->mailbox != NULL)
		ts_txn_set_rcpt_mailbox(s->txn, ts_txn_rcpt_count(s->txn) - 1,
					res->mailbox);
	smtp_keep_headers(s, res);
	smtp_finish(s, res->delay_ms, ts_xstrdup("250 2.1.5 OK"), false);
}

/*
 * test_localparts: a recipient whose localpart starts with temperror,
 * permerror or timeout gets its error (timeout: a 451 after 30 s, with
 * the session paused meanwhile).  True when it was answered so.
 */
static bool
smtp_rcpt_test(struct smtp_session *s, const char *localpart)
{
	if (strncasecmp(localpart, "temperror", 9) == 0)
		smtp_reply(s, "451 4.0.0 temporary error (test address)");
	else if (strncasecmp(localpart, "permerror", 9) == 0)
		smtp_reply(s, "550 5.0.0 permanent error (test address)");
	else if (strncasecmp(localpart, "timeout", 7) == 0)
		smtp_finish(s, SMTP_TEST_TIMEOUT_MS,
			    ts_xstrdup("451 4.4.2 timeout (test address): "
				       "answered after 30 s"),
			    false);
	else
		return false;
	return true;
}

/* Whether `name` is a configured account. */
static bool
smtp_account_known(const struct ts_ctx *ctx, const char *name)
{
	const char *a;
	for (size_t i = 0; (a = ts_account_name(ctx, i)) != NULL; i++)
		if (strcmp(a, name) == 0)
			return true;
	return false;
}

/*
 * Take recipient p (with its DSN parameters) for the account and
 * mailbox of m; run the hook, which sees it as the transaction's last.
 */
static void
smtp_rcpt_add(struct smtp_session *s, const struct smtp_command *cmd,
	      const struct ts_address_match *m)
{
	const struct smtp_path *p = &cmd->path;
	char *address = smtp_path_bare(p);
	struct ts_txn_rcpt r = {
		.address = address,
		.localpart = p->localpart_unquoted,
		.domain = p->domain,
		.notify = cmd->rcpt.notify,
		.orcpt_type = cmd->rcpt.orcpt_type,
		.orcpt = cmd->rcpt.orcpt,
		.account = m->account,
		.mailbox = m->account == NULL	   ? NULL
			   : s->mail_mailbox != NULL ? s->mail_mailbox
			   : m->mailbox != NULL	     ? m->mailbox
						     : "Inbox",
	};
	ts_txn_add_rcpt(s->txn, &r);
	free(address);
	s->rcpt_pending = true;
	char *path = smtp_path_format(p);
	smtp_run_hook(s, TS_HOOK_SMTP_RCPT, path, smtp_rcpt_done);
	free(path);
}

static void
smtp_cmd_rcpt(struct smtp_session *s, struct smtp_command *cmd)
{
	struct smtp_settings *set = smtp_settings(s->ctx);
	if (s->txn == NULL) {
		smtp_reply(s, "503 5.5.1 need MAIL before RCPT");
		smtp_error(s);
		return;
	}
	if (smtp_rcpt_count(s) >= set->max_recipients) {
		smtp_reply(s, "452 4.5.3 too many recipients");
		return;
	}
	const struct smtp_path *p = &cmd->path;
	if (p->flags & SMTP_PATH_RELAY_TRICKS) {
		smtp_reply(s, "550 5.7.1 relaying denied");
		return;
	}
	if (set->test_localparts && smtp_rcpt_test(s, p->localpart_unquoted))
		return;
	struct ts_address_match m = { .account = set->accept_all };
	if (set->accept_all != NULL) {
		if (!smtp_account_known(s->ctx, set->accept_all)) {
			smtp_reply(s,
				   "451 4.3.0 accept_all account %s is not "
				   "configured",
				   set->accept_all);
			return;
		}
		smtp_rcpt_add(s, cmd, &m);
		return;
	}
	char *addr;
	if (p->flags & SMTP_PATH_POSTMASTER)
		addr = ts_xasprintf("postmaster@%s", set->hostname);
	else if (ts_domain_is_local(s->ctx, p->domain) ||
		 strcasecmp(p->domain, set->hostname) == 0)
		addr = ts_xasprintf("%s@%s", p->localpart_unquoted, p->domain);
	else if (s->account != NULL) {
		/* Authenticated: a remote recipient, for the queue. */
		struct ts_address_match remote = { 0 };
		smtp_rcpt_add(s, cmd, &remote);
		return;
	} else {
		smtp_reply(s, "550 5.7.1 relaying denied");
		return;
	}
	int rc = ts_address_lookup(s->ctx, addr, &m);
	free(addr);
	if (rc == TS_E_INVAL) {
		smtp_reply(s, "553 5.1.3 bad recipient address syntax");
		return;
	}
	if (rc != 0) {
		smtp_reply(s, "550 5.1.1 no such user here");
		return;
	}
	smtp_rcpt_add(s, cmd, &m);
}

static void
smtp_cmd_data(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	if (s->txn == NULL) {
		smtp_reply(s, "503 5.5.1 need MAIL command");
		smtp_error(s);
		return;
	}
	if (s->body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 3: binary content cannot be dot-stuffed. */
		smtp_reply(s, "503 5.5.1 BODY=BINARYMIME requires BDAT");
		return;
	}
	if (smtp_rcpt_count(s) == 0) {
		smtp_reply(s, "554 5.5.1 no valid recipients");
		return;
	}
	if (s->spool != NULL) {
		smtp_reply(s, "503 5.5.1 DATA after BDAT");
		smtp_error(s);
		return;
	}
	smtp_reply(s, "354 end data with <CR><LF>.<CR><LF>");
	smtp_data_begin(s);
}

static void
smtp_cmd_bdat(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_bdat_begin(s, cmd->bdat_size, cmd->bdat_last);
}

static void
smtp_cmd_starttls(struct smtp_session *s)
{
	if (!ts_conn_tls_offered(s->conn)) {
		smtp_reply(s, "502 5.5.1 STARTTLS not available");
		smtp_error(s);
		return;
	}
	smtp_reply(s, "220 2.0.0 ready to start TLS");
	if (ts_conn_starttls(s->conn) != 0)
		ts_conn_close(s->conn, "starttls failed");
}

static void
smtp_command(struct smtp_session *s, const char *line, size_t len, bool nul)
{
	struct smtp_settings *set = smtp_settings(s->ctx);
	struct smtp_parse_opts opts = {
		/*
		 * Submission clients (EHLO comes before AUTH there) get the
		 * common deviations forgiven; port 25 and pedantic mode not.
		 */
		.flags = (s->mode != SMTP_MODE_SMTP && !set->pedantic
				  ? SMTP_LENIENT
				  : 0) |
			 (s->smtputf8 ? SMTP_UTF8 : 0),
		.extensions = smtp_extensions(s),
		.max_size = set->max_size,
	};
	struct smtp_command cmd;
	struct smtp_reply reply;
	if (nul) {
		smtp_reply(s, "500 5.5.2 NUL byte in command");
		smtp_error(s);
		return;
	}
	if (smtp_command_parse(line, len, &opts, &cmd, &reply) != 0) {
		smtp_reply(s, "%d %s %s", reply.code, reply.enhanced,
			   reply.text);
		smtp_command_clear(&cmd);
		/* A refused size or address is no protocol error. */
		if (reply.code == 500 || reply.code == 501 ||
		    reply.code == 502 || reply.code == 555)
			smtp_error(s);
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		smtp_cmd_helo(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		smtp_cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		smtp_cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		smtp_cmd_data(s, &cmd);
		break;
	case SMTP_VERB_BDAT:
		smtp_cmd_bdat(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		smtp_transaction_reset(s);
		smtp_reply(s, "250 2.0.0 OK");
		break;
	case SMTP_VERB_NOOP:
		smtp_reply(s, "250 2.0.0 OK");
		break;
	case SMTP_VERB_VRFY:
		smtp_reply(s, "252 2.5.0 cannot VRFY user, but will accept "
			      "message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
		smtp_reply(s, "502 5.5.1 EXPN not available");
		break;
	case SMTP_VERB_HELP:
		smtp_reply(s, "214 2.0.0 see RFC 5321");
		break;
	case SMTP_VERB_QUIT:
		smtp_reply(s, "221 2.0.0 %s closing connection", set->hostname);
		ts_conn_close(s->conn, "quit");
		break;
	case SMTP_VERB_STARTTLS:
		smtp_cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
		smtp_auth_command(s, &cmd);
		break;
	case SMTP_VERB_UNKNOWN:
		smtp_reply(s, "500 5.5.2 command not recognized");
		smtp_error(s);
		break;
	}
	smtp_command_clear(&cmd);
}

/* --- protocol callbacks -------------------------------------------------- */

static void
smtp_open(struct ts_conn *conn, const struct ts_hook_result *res,
	  enum smtp_mode mode)
{
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	struct smtp_session *s = ts_xcalloc(1, sizeof(*s));
	s->conn = conn;
	s->ctx = ctx;
	s->mode = mode;
	ts_conn_set_data(conn, ctx, s, smtp_session_free);
	struct smtp_settings *set = smtp_settings(ctx);
	if (res->verdict == TS_VERDICT_REJECT) {
		smtp_reply(s, "554 5.7.1 %s",
			   res->text != NULL ? res->text : "go away");
		ts_conn_close(conn, "refused at connect");
		return;
	}
	if (res->verdict == TS_VERDICT_TEMPFAIL) {
		smtp_reply(s, "421 4.7.0 %s %s", set->hostname,
			   res->text != NULL ? res->text : "try again later");
		ts_conn_close(conn, "tempfail at connect");
		return;
	}
	smtp_reply(s, "220 %s ESMTP tessera", set->hostname);
	ts_conn_first_line_filter(conn, smtp_command_prefix_possible);
}

static void
smtp_open_smtp(struct ts_conn *conn, const struct ts_hook_result *res)
{
	smtp_open(conn, res, SMTP_MODE_SMTP);
}

static void
smtp_open_submission(struct ts_conn *conn, const struct ts_hook_result *res)
{
	smtp_open(conn, res, SMTP_MODE_SUBMISSION);
}

static void
smtp_open_submissions(struct ts_conn *conn, const struct ts_hook_result *res)
{
	smtp_open(conn, res, SMTP_MODE_SUBMISSIONS);
}

static void
smtp_line(struct ts_conn *conn, const char *line, size_t len)
{
	struct smtp_session *s = smtp_session(conn);
	if (s == NULL || ts_conn_closing(conn))
		return;
	/*
	 * A NUL byte makes the rest of a line meaningless to us: note it
	 * and read only what comes before it.
	 */
	bool nul = memchr(line, '\0', len) != NULL;
	if (nul)
		len = strlen(line);
	switch (s->state) {
	case SMTP_S_DATA:
		if (nul)
			s->data_flags |= SMTP_DATA_NUL;
		/*
		 * Bare LFs (also around the final dot) refuse the message:
		 * servers that disagree about line ends are how SMTP
		 * smuggling works.
		 */
		bool bare = ts_conn_line_bare_lf(conn);
		bool prev_bare = s->data_prev_bare_lf;
		s->data_prev_bare_lf = bare;
		if (bare)
			s->data_flags |= SMTP_DATA_BARE_LF;
		/*
		 * Only <CRLF>.<CRLF> ends the data: a dot next to a bare LF
		 * is content (of a message refused at its real end), so what
		 * follows it cannot pose as a second transaction.
		 */
		if (len == 1 && line[0] == '.' && (bare || prev_bare))
			return;
		smtp_data_line(s, line, len);
		return;
	case SMTP_S_AUTH:
		smtp_auth_line(s, line, len);
		return;
	case SMTP_S_BUSY:
	case SMTP_S_BDAT:
		/* Input is paused or counted; nothing arrives here. */
		return;
	case SMTP_S_CMD:
		break;
	}
	if (!s->seen_command) {
		s->seen_command = true;
		if (nul || !smtp_command_looks_like_smtp(line, len)) {
			ts_conn_log(conn, s->ctx, TS_LOG_INFO,
				    "first command is not smtp, closing");
			ts_conn_close(conn, "not smtp");
			return;
		}
	}
	smtp_command(s, line, len, nul);
}

static void
smtp_data_cb(struct ts_conn *conn, const char *data, size_t len, bool last)
{
	struct smtp_session *s = smtp_session(conn);
	if (s != NULL)
		smtp_bdat_bytes(s, data, len, last);
}

static void
smtp_line_too_long(struct ts_conn *conn)
{
	struct smtp_session *s = smtp_session(conn);
	if (s == NULL)
		return;
	if (s->state == SMTP_S_DATA) {
		smtp_data_line_too_long(s);
		return;
	}
	if (s->state == SMTP_S_AUTH) {
		smtp_auth_reset(s);
		s->state = SMTP_S_CMD;
		smtp_reply(s,
			   "500 5.5.6 authentication exchange line too long");
		smtp_error(s);
		return;
	}
	if (!s->seen_command) {
		ts_conn_close(conn, "not smtp");
		return;
	}
	smtp_reply(s, "500 5.5.2 line too long");
	smtp_error(s);
}

static void
smtp_shutdown(struct ts_conn *conn)
{
	struct smtp_session *s = smtp_session(conn);
	ts_conn_printf(conn, "421 4.3.2 %s shutting down\r\n",
		       s != NULL ? smtp_settings(s->ctx)->hostname : "tessera");
	ts_conn_close(conn, "shutdown");
}

static void
smtp_close(struct ts_conn *conn)
{
	struct smtp_session *s = smtp_session(conn);
	if (s == NULL)
		return;
	ts_hook_run_cancel(&s->run);
	ts_hook_run_cancel(&s->side_run);
	ts_txn_free(&s->side_txn);
	if (s->timer != NULL)
		ts_timer_stop(s->timer);
	smtp_auth_reset(s);
	smtp_delivery_detach(s);
	smtp_transaction_reset(s);
}

static void
smtp_tls_ready(struct ts_conn *conn)
{
	struct smtp_session *s = smtp_session(conn);
	if (s == NULL)
		return;
	smtp_session_reset(s);
	s->state = SMTP_S_CMD;
}

#define SMTP_PROTOCOL(openfn)                                            \
	{                                                                \
		.open = openfn, .line = smtp_line, .data = smtp_data_cb, \
		.line_too_long = smtp_line_too_long,                     \
		.shutdown = smtp_shutdown, .close = smtp_close,          \
		.tls_ready = smtp_tls_ready,                             \
	}

const struct ts_protocol smtp_protocol_smtp = SMTP_PROTOCOL(smtp_open_smtp);
const struct ts_protocol smtp_protocol_submission =
	SMTP_PROTOCOL(smtp_open_submission);
const struct ts_protocol smtp_protocol_submissions =
	SMTP_PROTOCOL(smtp_open_submissions);
