/*
 * modules/imap/auth.c — LOGIN and AUTHENTICATE (RFC 3501 6.2, RFC 9051
 * 6.2.2, SASL-IR RFC 4959) on top of tessera/sasl.h.
 *
 * Before TLS both are refused (and LOGINDISABLED advertised) unless
 * allow_plaintext_auth says otherwise.  LOGIN runs as a PLAIN exchange so
 * that both commands take the same path: every attempt, good or bad, runs
 * the `auth` hook (arg: the mechanism), which may still refuse a
 * successful one.  A successful login opens the account's store, counts
 * the connection against max_connections_per_user and moves to the
 * authenticated state.  Failures are uniform: NO [AUTHENTICATIONFAILED].
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imap.h"

bool
imap_login_allowed(const struct imap_session *s)
{
	return ts_conn_tls_active(s->conn) ||
	       imap_settings(s->ctx)->allow_plaintext_auth;
}

/* Channel-binding data of the TLS session; false when there is none. */
static bool
imap_auth_cb(const struct imap_session *s, const char **type_r, uint8_t *buf,
	     size_t *len_r)
{
	return ts_conn_tls_best_channel_binding(s->conn, type_r, buf, len_r) ==
	       0;
}

const char *
imap_auth_mechanisms(const struct imap_session *s)
{
	uint8_t buf[128];
	size_t len = sizeof(buf);
	const char *type;
	bool cb = imap_auth_cb(s, &type, buf, &len);
	return ts_sasl_mechanisms(ts_conn_tls_active(s->conn), cb,
				  imap_settings(s->ctx)->allow_plaintext_auth);
}

void
imap_auth_reset(struct imap_session *s)
{
	ts_sasl_free(&s->sasl);
	free(s->sasl_mech);
	s->sasl_mech = NULL;
	s->sasl_final = false;
	free(s->sasl_account);
	s->sasl_account = NULL;
}

static void
imap_auth_store_opened(struct ts_store *store, int status, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s)) {
		ts_store_unref(&store);
		return;
	}
	if (status != 0) {
		imap_auth_reset(s);
		imap_done(s, "NO [UNAVAILABLE] mailbox store not available");
		return;
	}
	if (!imap_user_add(s, s->sasl_account)) {
		ts_store_unref(&store);
		imap_auth_reset(s);
		imap_done(s, "NO [LIMIT] too many connections for this user");
		return;
	}
	s->store = store;
	s->account = s->sasl_account;
	s->sasl_account = NULL;
	s->state = IMAP_AUTHENTICATED;
	ts_conn_log(s->conn, s->ctx, TS_LOG_INFO,
		    "authenticated account=%s mechanism=%s", s->account,
		    s->sasl_mech);
	imap_auth_reset(s);
	char *caps = imap_capabilities(s);
	imap_done(s, "OK [CAPABILITY %s] logged in", caps);
	free(caps);
}

/* The auth hook has seen the attempt: answer the client. */
static void
imap_auth_hook_done(const struct ts_hook_result *res, void *arg)
{
	struct imap_session *s = arg;
	s->run = NULL;
	s->hook_waiting = false;
	if (s->sasl_status == TS_SASL_OK) {
		if (res->verdict == TS_VERDICT_REJECT ||
		    res->verdict == TS_VERDICT_TEMPFAIL) {
			imap_auth_reset(s);
			imap_done(s, "NO [%s] %s",
				  res->verdict == TS_VERDICT_REJECT
					  ? "AUTHENTICATIONFAILED"
					  : "UNAVAILABLE",
				  res->text != NULL ? res->text
						    : "refused by policy");
			return;
		}
		imap_store_ref(s);
		if (ts_store_open(s->ctx, s->sasl_account,
				  imap_auth_store_opened, s) != 0) {
			imap_store_unref(s);
			imap_auth_reset(s);
			imap_done(s, "NO [UNAVAILABLE] mailbox store not "
				     "available");
		}
		return;
	}
	imap_auth_reset(s);
	if (s->sasl_status == TS_SASL_TEMPFAIL)
		imap_done(s, "NO [UNAVAILABLE] temporary authentication "
			     "failure");
	else if (s->sasl_status == TS_SASL_ERROR)
		imap_done(s, "BAD malformed authentication exchange");
	else
		imap_done(s, "NO [AUTHENTICATIONFAILED] authentication "
			     "failed");
}

/* The exchange is over with `status`: let the auth hook see it. */
static void
imap_auth_end(struct imap_session *s, enum ts_sasl_status status)
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
	imap_busy(s);
	struct ts_hook_args args = { .conn = s->conn, .arg = s->sasl_mech };
	s->run = NULL;
	s->hook_waiting = true;
	struct ts_hook_run *run = ts_hook_run(s->ctx, TS_HOOK_AUTH, &args,
					      imap_auth_hook_done, s);
	/* The run may have finished (and the session moved on) already. */
	if (s->hook_waiting)
		s->run = run;
}

static void
imap_auth_step_done(struct ts_sasl *sasl, enum ts_sasl_status status,
		    const uint8_t *challenge, size_t len, void *arg)
{
	struct imap_session *s = arg;
	if (status == TS_SASL_OK || status == TS_SASL_CONTINUE) {
		free(s->sasl_account);
		s->sasl_account = status == TS_SASL_OK
					  ? ts_xstrdup(ts_sasl_account(sasl))
					  : NULL;
	}
	if (!s->sasl_is_login &&
	    (status == TS_SASL_CONTINUE || (status == TS_SASL_OK && len > 0))) {
		char *b64 = ts_base64_encode(challenge, len);
		imap_send(s, "+ %s", b64);
		free(b64);
		if (status == TS_SASL_OK)
			s->sasl_final = true;
		s->input = IMAP_IN_AUTH;
		ts_conn_resume(s->conn);
		return;
	}
	if (s->sasl_is_login && status == TS_SASL_CONTINUE)
		status = TS_SASL_ERROR;
	imap_auth_end(s, status);
}

/* Start an exchange; false (after answering) when it cannot start. */
static bool
imap_auth_start(struct imap_session *s, const char *mechanism)
{
	if (!imap_login_allowed(s)) {
		imap_done(s, "NO [PRIVACYREQUIRED] use STARTTLS first");
		return false;
	}
	uint8_t cb[128];
	size_t cb_len = sizeof(cb);
	const char *cb_type = NULL;
	bool have_cb = imap_auth_cb(s, &cb_type, cb, &cb_len);
	struct imap_settings *set = imap_settings(s->ctx);
	struct ts_sasl_opts opts = {
		.mechanism = mechanism,
		.tls_active = ts_conn_tls_active(s->conn),
		.allow_plaintext = set->allow_plaintext_auth,
		.cb_type = have_cb ? cb_type : NULL,
		.cb_data = have_cb ? cb : NULL,
		.cb_len = have_cb ? cb_len : 0,
		.hostname = set->hostname,
	};
	imap_auth_reset(s);
	s->sasl = ts_sasl_new(s->ctx, &opts, imap_auth_step_done, s);
	if (s->sasl == NULL) {
		imap_done(s, "NO [CANNOT] mechanism not available");
		return false;
	}
	s->sasl_mech = ts_xstrdup(ts_sasl_mechanism(s->sasl));
	imap_busy(s);
	return true;
}

void
imap_cmd_login(struct imap_session *s)
{
	s->sasl_is_login = true;
	if (!imap_auth_start(s, "PLAIN"))
		return;
	size_t ul = strlen(s->cmd.user), pl = strlen(s->cmd.password);
	uint8_t *msg = ts_xmalloc(ul + pl + 2);
	msg[0] = '\0';
	memcpy(msg + 1, s->cmd.user, ul);
	msg[ul + 1] = '\0';
	memcpy(msg + ul + 2, s->cmd.password, pl);
	int rc = ts_sasl_step(s->sasl, msg, ul + pl + 2);
	memset(msg, 0, ul + pl + 2);
	free(msg);
	if (rc != 0)
		imap_auth_end(s, TS_SASL_ERROR);
}

void
imap_cmd_authenticate(struct imap_session *s)
{
	s->sasl_is_login = false;
	if (!imap_auth_start(s, s->cmd.mechanism))
		return;
	uint8_t *data = NULL;
	size_t len = 0;
	if (s->cmd.has_initial &&
	    ts_base64_decode(s->cmd.initial, &data, &len) != 0) {
		imap_auth_end(s, TS_SASL_ERROR);
		return;
	}
	int rc = ts_sasl_step(s->sasl, data, len);
	free(data);
	if (rc != 0)
		imap_auth_end(s, TS_SASL_ERROR);
}

void
imap_auth_line(struct imap_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		imap_auth_reset(s);
		imap_done(s, "BAD authentication cancelled");
		return;
	}
	if (s->sasl_final) {
		s->sasl_final = false;
		imap_auth_end(s, len == 0 ? TS_SASL_OK : TS_SASL_ERROR);
		return;
	}
	uint8_t *data;
	size_t dlen;
	if (memchr(line, '\0', len) != NULL ||
	    ts_base64_decode(line, &data, &dlen) != 0) {
		imap_auth_end(s, TS_SASL_ERROR);
		return;
	}
	imap_busy(s);
	int rc = ts_sasl_step(s->sasl, data, dlen);
	free(data);
	if (rc != 0)
		imap_auth_end(s, TS_SASL_ERROR);
}
