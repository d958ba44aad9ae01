/*
 * modules/smtp/auth.c — SMTP AUTH (RFC 4954) on top of tessera/sasl.h.
 *
 * AUTH is offered only on the submission listeners, and only under TLS
 * unless allow_plaintext_auth says otherwise.  This file frames the
 * exchange: 334 challenges in base64, the client's base64 answers fed to
 * ts_sasl_step, "*" to cancel, SCRAM's server-final message sent as a
 * last 334 whose empty answer precedes 235.  Every attempt, good or bad,
 * runs the `auth` hook (arg: the mechanism), which may still refuse a
 * successful one.  Failures are uniform: 535 5.7.8 whatever went wrong.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "smtp.h"

bool
smtp_auth_offered(const struct smtp_session *s)
{
	if (s->mode == SMTP_MODE_SMTP)
		return false;
	return ts_conn_tls_active(s->conn) ||
	       smtp_settings(s->ctx)->allow_plaintext_auth;
}

/* Channel-binding data of the TLS session; false when there is none. */
static bool
smtp_auth_cb(const struct smtp_session *s, const char **type_r, uint8_t *buf,
	     size_t *len_r)
{
	return ts_conn_tls_best_channel_binding(s->conn, type_r, buf, len_r) ==
	       0;
}

const char *
smtp_auth_mechanisms(const struct smtp_session *s)
{
	uint8_t buf[128];
	size_t len = sizeof(buf);
	const char *type;
	bool cb = smtp_auth_cb(s, &type, buf, &len);
	return ts_sasl_mechanisms(ts_conn_tls_active(s->conn), cb,
				  smtp_settings(s->ctx)->allow_plaintext_auth);
}

void
smtp_auth_reset(struct smtp_session *s)
{
	ts_sasl_free(&s->sasl);
	free(s->sasl_mech);
	s->sasl_mech = NULL;
	s->sasl_final = false;
	free(s->sasl_account);
	s->sasl_account = NULL;
}

/* The auth hook has seen the attempt: answer the client. */
static void
smtp_auth_hook_done(struct smtp_session *s, const struct ts_hook_result *res)
{
	char *reply = NULL;
	if (s->sasl_status == TS_SASL_OK) {
		reply = smtp_refusal(res);
		if (reply == NULL) {
			s->account = s->sasl_account;
			s->sasl_account = NULL;
			ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
				    "authenticated account=%s mechanism=%s",
				    s->account, s->sasl_mech);
			reply = ts_xstrdup("235 2.7.0 authentication "
					   "successful");
		}
	} else if (s->sasl_status == TS_SASL_TEMPFAIL) {
		reply = ts_xstrdup("454 4.7.0 temporary authentication "
				   "failure");
	} else if (s->sasl_status == TS_SASL_ERROR) {
		reply = ts_xstrdup("501 5.5.2 malformed authentication "
				   "exchange");
	} else {
		reply = ts_xstrdup("535 5.7.8 authentication credentials "
				   "invalid");
	}
	smtp_auth_reset(s);
	smtp_finish(s, res->delay_ms, reply, false);
}

/* The exchange is over with `status`: let the auth hook see it. */
static void
smtp_auth_end(struct smtp_session *s, enum ts_sasl_status status)
{
	s->sasl_status = status;
	if (status != TS_SASL_OK)
		ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
			    "authentication failed mechanism=%s user=%s "
			    "reason=\"%s\"",
			    s->sasl_mech,
			    s->sasl != NULL && ts_sasl_username(s->sasl)
				    ? ts_sasl_username(s->sasl)
				    : "-",
			    s->sasl != NULL && ts_sasl_error(s->sasl)
				    ? ts_sasl_error(s->sasl)
				    : "-");
	ts_sasl_free(&s->sasl);
	smtp_run_hook(s, TS_HOOK_AUTH, s->sasl_mech, smtp_auth_hook_done);
}

static void
smtp_auth_step_done(struct ts_sasl *sasl, enum ts_sasl_status status,
		    const uint8_t *challenge, size_t len, void *arg)
{
	struct smtp_session *s = arg;
	if (status == TS_SASL_CONTINUE || (status == TS_SASL_OK && len > 0)) {
		char *b64 = ts_base64_encode(challenge, len);
		smtp_reply(s, "334 %s", b64);
		free(b64);
		if (status == TS_SASL_OK) {
			s->sasl_final = true;
			free(s->sasl_account);
			s->sasl_account = ts_xstrdup(ts_sasl_account(sasl));
		}
		s->state = SMTP_S_AUTH;
		ts_conn_resume(s->conn);
		return;
	}
	if (status == TS_SASL_OK) {
		free(s->sasl_account);
		s->sasl_account = ts_xstrdup(ts_sasl_account(sasl));
	}
	smtp_auth_end(s, status);
}

void
smtp_auth_command(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->mode == SMTP_MODE_SMTP) {
		smtp_reply(s, "502 5.5.1 AUTH not available here");
		return;
	}
	if (!smtp_auth_offered(s)) {
		smtp_reply(s, "530 5.7.0 must issue a STARTTLS command first");
		return;
	}
	if (s->helo == NULL || !s->esmtp) {
		smtp_reply(s, "503 5.5.1 say EHLO first");
		return;
	}
	if (s->account != NULL) {
		smtp_reply(s, "503 5.5.1 already authenticated");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, "503 5.5.1 AUTH not allowed in a transaction");
		return;
	}
	uint8_t cb[128];
	size_t cb_len = sizeof(cb);
	const char *cb_type = NULL;
	bool have_cb = smtp_auth_cb(s, &cb_type, cb, &cb_len);
	struct smtp_settings *set = smtp_settings(s->ctx);
	struct ts_sasl_opts opts = {
		.mechanism = cmd->auth_mechanism,
		.tls_active = ts_conn_tls_active(s->conn),
		.allow_plaintext = set->allow_plaintext_auth,
		.cb_type = have_cb ? cb_type : NULL,
		.cb_data = have_cb ? cb : NULL,
		.cb_len = have_cb ? cb_len : 0,
		.hostname = set->hostname,
	};
	smtp_auth_reset(s);
	s->sasl = ts_sasl_new(s->ctx, &opts, smtp_auth_step_done, s);
	if (s->sasl == NULL) {
		smtp_reply(s, "504 5.5.4 mechanism not available");
		return;
	}
	s->sasl_mech = ts_xstrdup(ts_sasl_mechanism(s->sasl));
	s->state = SMTP_S_BUSY;
	ts_conn_pause(s->conn);
	if (ts_sasl_step(
		    s->sasl, cmd->auth_has_initial ? cmd->auth_initial : NULL,
		    cmd->auth_has_initial ? cmd->auth_initial_len : 0) != 0)
		smtp_auth_end(s, TS_SASL_ERROR);
}

void
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_auth_reset(s);
		s->state = SMTP_S_CMD;
		smtp_reply(s, "501 5.0.0 authentication cancelled");
		return;
	}
	if (s->sasl_final) {
		s->sasl_final = false;
		smtp_auth_end(s, len == 0 ? TS_SASL_OK : TS_SASL_ERROR);
		return;
	}
	uint8_t *data;
	size_t dlen;
	if (ts_base64_decode(line, &data, &dlen) != 0) {
		smtp_auth_end(s, TS_SASL_ERROR);
		return;
	}
	s->state = SMTP_S_BUSY;
	ts_conn_pause(s->conn);
	int rc = ts_sasl_step(s->sasl, data, dlen);
	free(data);
	if (rc != 0)
		smtp_auth_end(s, TS_SASL_ERROR);
}
