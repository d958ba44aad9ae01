/*
 * modules/transports/attempt.c — one attempt: one connection to one host,
 * driven by the pure SMTP client (client.c).  It connects (directly or
 * through a SOCKS5 proxy), moves the server's lines into the client and the
 * client's output onto the connection, starts TLS when the client asks
 * (verified as the TLS policy says), runs the per-command timers, and hands
 * the per-recipient results to the session.  An attempt outlives its
 * session when it must (QUIT going out; kept for reuse: reuse.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "direct.h"

/* --- attempts ------------------------------------------------------------ */

void
tr_attempt_unref(struct tr_attempt *a)
{
	if (--a->refs > 0)
		return;
	ts_timer_free(&a->timer);
	tr_client_free(&a->client);
	ts_sasl_client_free(&a->sasl);
	free(a->sasl_mech);
	tr_message_unref(&a->msg);
	tr_addrs_free(&a->addrs, a->addr_count);
	free(a->helo_name);
	free(a->host);
	free(a->remote);
	free(a->tls_required_by);
	free(a);
}

/*
 * Cut the attempt loose from its session: it finishes its QUIT (or is
 * closed at once when it was not done) and frees itself.
 */
void
tr_attempt_detach(struct tr_attempt *a)
{
	if (a->s != NULL && a->s->att == a)
		a->s->att = NULL;
	a->s = NULL;
	if (a->conn == NULL)
		return;
	if (a->client != NULL && tr_client_idle(a->client)) {
		tr_attempt_park(a);
		return;
	}
	if (a->client == NULL || !tr_client_done(a->client)) {
		ts_conn_close(a->conn, "cancelled");
	} else if (!ts_conn_closing(a->conn)) {
		ts_timer_start(a->timer, TR_QUIT_WAIT_MS, 0);
	}
}

/* The attempt's client is done: take its results. */
void
tr_attempt_end(struct tr_attempt *a)
{
	struct tr_session *s = a->s;
	a->ended = true;
	if (s == NULL)
		return;
	struct tr_client *c = a->client;
	/* What the recipient domain's own servers offer (not a relay's). */
	if (tr_client_saw_ehlo(c) && !s->relay)
		ts_delivery_note_tls(s->d, a->host, tr_client_saw_starttls(c),
				     tr_client_saw_requiretls(c));
	if (tr_client_host_failed(c) && a->reused) {
		/*
		 * A kept connection that turned out dead (closed, RSET
		 * refused) is no fault of the host: connect anew.
		 */
		ts_log(s->ctx, TS_LOG_INFO,
		       "kept connection failed, connecting anew id=%s host=%s",
		       ts_delivery_id(s->d), a->host);
		tr_attempt_detach(a);
		s->fresh_only = true;
		tr_attempt_start(s, a->host, a->literal, a->addrs,
				 a->addr_count, a->no_tls);
		return;
	}
	if (tr_client_host_failed(c) && a->tls_failed && !a->no_tls &&
	    !s->requiretls && a->tls_required_by == NULL &&
	    (!s->relay || s->relay_tls == TR_TLS_OPPORTUNISTIC)) {
		/*
		 * Opportunistic TLS that fails must not stop the mail (RFC
		 * 7435): once more, without STARTTLS — unless a TLS policy
		 * (DANE, MTA-STS: the outbound_tls_policy hook) or
		 * REQUIRETLS asks for TLS.
		 */
		ts_log(s->ctx, TS_LOG_INFO,
		       "tls failed, retrying without it id=%s host=%s",
		       ts_delivery_id(s->d), a->host);
		tr_attempt_detach(a);
		tr_attempt_start(s, a->host, a->literal, a->addrs,
				 a->addr_count, true);
		return;
	}
	if (tr_client_host_failed(c)) {
		const struct tr_result *r = tr_client_result(c, 0);
		/* Name the host: as `remote` when it answered, else in the
		 * text (our own reasons, connection failures). */
		char *text = r->remote ? ts_xstrdup(r->text)
				       : ts_xasprintf("%s: %s",
						      a->remote ? a->remote
								: a->host,
						      r->text);
		ts_log(s->ctx, TS_LOG_INFO,
		       "host failed id=%s host=%s code=%d text=\"%s\"",
		       ts_delivery_id(s->d), a->host, r->code, r->text);
		tr_session_note_failure(s, r->code, r->enhanced, text,
					r->remote ? a->remote : NULL);
		free(text);
		tr_attempt_detach(a);
		tr_session_next_host(s);
		return;
	}
	for (size_t i = 0; i < s->rcpt_count; i++) {
		const struct tr_result *r = tr_client_result(c, i);
		ts_delivery_rcpt_result(s->d, i, r->code, r->enhanced, r->text,
					r->remote ? a->remote : NULL);
	}
	const struct tr_result *r0 = tr_client_result(c, 0);
	tr_session_finish(s, r0->code, r0->enhanced, r0->text,
			  r0->remote ? a->remote : NULL);
}

/* (Re)arm the timer for what the client waits for now. */
void
tr_attempt_arm(struct tr_attempt *a)
{
	const struct tr_settings *set = tr_settings(a->ctx);
	uint64_t ms = tr_client_timeout_kind(a->client) == TR_TIMEOUT_FINAL
			      ? set->data_timeout_ms
			      : set->command_timeout_ms;
	if (a->ended)
		ms = TR_QUIT_WAIT_MS;
	ts_timer_start(a->timer, ms, 0);
}

/* Send what the client produced and do what it wants next. */
void
tr_attempt_pump(struct tr_attempt *a, enum tr_want w)
{
	size_t len;
	const char *out = tr_client_output(a->client, &len);
	if (len > 0 && a->conn != NULL && !ts_conn_closing(a->conn)) {
		if (ts_log_enabled(a->ctx, TS_LOG_TRACE) && w != TR_WANT_BODY)
			ts_conn_log(a->conn, a->ctx, TS_LOG_TRACE,
				    "smtp client sends \"%.*s\"",
				    (int)(len > 200 ? 200 : len), out);
		if (ts_conn_write(a->conn, out, len) != 0)
			tr_client_fail(a->client, 451, "4.4.2",
				       "cannot send to the server "
				       "(connection closing or output budget "
				       "exceeded)",
				       true);
	}
	tr_client_output_clear(a->client);
	if (tr_client_done(a->client) && !a->ended) {
		tr_attempt_end(a);
		/* a->s may be gone now; a itself lives on its refs */
	}
	if (a->conn == NULL)
		return;
	switch (w) {
	case TR_WANT_STARTTLS: {
		struct tr_session *s = a->s;
		const struct tr_settings *set = tr_settings(a->ctx);
		/* Opportunistic: encrypt, check nothing, send SNI.  The
		 * domain's TLS policy may ask for PKIX or DANE (a->verify);
		 * REQUIRETLS (RFC 8689 4.2.1): PKIX against the MX host
		 * name, or DANE where the policy has TLSA records. */
		struct ts_tls_client_opts opts = {
			.verify = a->verify,
			.ca_file = set->tls_ca_file,
		};
		if (s != NULL && s->requiretls &&
		    opts.verify == TS_TLS_VERIFY_NONE)
			opts.verify = TS_TLS_VERIFY_PKIX;
		if (opts.verify == TS_TLS_VERIFY_DANE && a->dane != NULL) {
			opts.tlsa = a->dane->tlsa;
			opts.tlsa_count = a->dane->tlsa_count;
		}
		/* A relay with tls_verify: PKIX against its host name. */
		if (s != NULL && s->relay && s->tls_verify &&
		    s->relay_tls != TR_TLS_OPPORTUNISTIC)
			opts.verify = TS_TLS_VERIFY_PKIX;
		if (s != NULL && s->relay && s->tls_ca_file != NULL)
			opts.ca_file = s->tls_ca_file;
		/* No SNI for an address literal (RFC 6066 3), but PKIX
		 * still needs the address to check. */
		if (!a->literal || opts.verify == TS_TLS_VERIFY_PKIX)
			opts.server_name = a->host;
		if (ts_conn_starttls_client(a->conn, &opts) != 0) {
			a->tls_failed = true;
			tr_client_fail(a->client, 451, "4.7.5",
				       "cannot start TLS", true);
			if (!a->ended)
				tr_attempt_end(a);
			if (a->conn != NULL)
				ts_conn_close(a->conn, "starttls failed");
			return;
		}
		a->handshaking = true;
		break;
	}
	case TR_WANT_BODY:
		tr_attempt_read(a);
		break;
	case TR_WANT_CLOSE:
		ts_conn_close(a->conn, "done");
		return;
	case TR_WANT_IDLE:
		/* parked (or quitting) by tr_attempt_detach already */
		return;
	case TR_WANT_REPLY:
		break;
	}
	tr_attempt_arm(a);
}

/* --- the connection's callbacks ------------------------------------------ */

/* The SOCKS5 handshake failed: this host failed (our own reason). */
static void
tr_attempt_socks_fail(struct tr_attempt *a, const char *why)
{
	if (a->s != NULL)
		ts_log(a->ctx, TS_LOG_INFO, "socks failed id=%s host=%s %s",
		       ts_delivery_id(a->s->d), a->host, why);
	tr_client_fail(a->client, 451, "4.4.1", why, false);
	if (a->conn != NULL)
		ts_conn_close(a->conn, "socks failed");
}

/* The proxy's answers, read with ts_conn_read_bytes. */
static void
tr_conn_data(struct ts_conn *conn, const char *data, size_t len, bool last)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (a->socks_len + len > sizeof(a->socks_buf)) {
		tr_attempt_socks_fail(a, "malformed SOCKS5 reply");
		return;
	}
	memcpy(a->socks_buf + a->socks_len, data, len);
	a->socks_len += len;
	if (!last || a->ended || a->s == NULL)
		return;
	const char *why = NULL;
	size_t n = a->socks_len;
	a->socks_len = 0;
	switch (a->socks) {
	case TR_SOCKS_METHOD: {
		uint8_t req[TR_SOCKS5_REQUEST_MAX];
		size_t rlen;
		if (tr_socks5_method_reply(a->socks_buf, n, &why) != 0)
			break;
		if (tr_socks5_connect_request(a->addrs[0], a->s->port, req,
					      &rlen) != 0) {
			why = "SOCKS5: not a numeric address";
			break;
		}
		if (ts_conn_write(conn, req, rlen) != 0 ||
		    ts_conn_read_bytes(conn, TR_SOCKS5_REPLY_HEAD) != 0) {
			why = "cannot talk to the SOCKS5 proxy";
			break;
		}
		a->socks = TR_SOCKS_HEAD;
		return;
	}
	case TR_SOCKS_HEAD: {
		size_t rest;
		if (tr_socks5_reply(a->socks_buf, n, &rest, &why) != 0)
			break;
		if (ts_conn_read_bytes(conn, rest) != 0) {
			why = "cannot talk to the SOCKS5 proxy";
			break;
		}
		a->socks = TR_SOCKS_REST;
		return;
	}
	case TR_SOCKS_REST:
		/* Connected through the proxy: the greeting comes next. */
		a->socks = TR_SOCKS_DONE;
		ts_conn_log(conn, a->ctx, TS_LOG_INFO,
			    "connected through socks5 id=%s host=%s addr=%s",
			    ts_delivery_id(a->s->d), a->host, a->addrs[0]);
		tr_attempt_arm(a);
		return;
	default:
		why = "unexpected bytes from the SOCKS5 proxy";
		break;
	}
	tr_attempt_socks_fail(a, why);
}

static void
tr_conn_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	(void)res;
	struct tr_attempt *a = ts_conn_arg(conn);
	free(a->remote);
	if (a->socks != TR_SOCKS_NONE) {
		a->remote = ts_xasprintf("%s [%s] via socks5 %s", a->host,
					 a->addrs[0], ts_conn_remote_ip(conn));
		uint8_t g[3];
		size_t n = tr_socks5_greeting(g);
		if (ts_conn_write(conn, g, n) != 0 ||
		    ts_conn_read_bytes(conn, 2) != 0) {
			tr_attempt_socks_fail(a, "cannot talk to the SOCKS5 "
						 "proxy");
			return;
		}
		tr_attempt_arm(a);
		return;
	}
	a->remote = ts_xasprintf("%s [%s]", a->host, ts_conn_remote_ip(conn));
	if (a->s != NULL)
		ts_conn_log(conn, a->ctx, TS_LOG_INFO,
			    "connected id=%s host=%s", ts_delivery_id(a->s->d),
			    a->host);
	if (a->s != NULL && a->s->implicit_tls) {
		/* submissions (RFC 8314): TLS before the greeting. */
		struct tr_session *s = a->s;
		struct ts_tls_client_opts opts = {
			.verify = s->tls_verify ? TS_TLS_VERIFY_PKIX
						: TS_TLS_VERIFY_NONE,
			.ca_file = s->tls_ca_file != NULL
					   ? s->tls_ca_file
					   : tr_settings(a->ctx)->tls_ca_file,
			.server_name =
				a->literal && !s->tls_verify ? NULL : a->host,
		};
		if (ts_conn_starttls_client(conn, &opts) != 0) {
			tr_client_fail(a->client, 451, "4.7.5",
				       "cannot start TLS", false);
			ts_conn_close(conn, "tls failed");
			return;
		}
		a->handshaking = true;
	}
	tr_attempt_arm(a);
}

static void
tr_conn_line(struct ts_conn *conn, const char *line, size_t len)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (ts_log_enabled(a->ctx, TS_LOG_TRACE))
		ts_conn_log(conn, a->ctx, TS_LOG_TRACE,
			    "smtp client got \"%.*s\"",
			    (int)(len > 200 ? 200 : len), line);
	if (a->parked) {
		/* e.g. 421 idle timeout: the kept connection is done */
		tr_attempt_release_slot(a);
		ts_conn_close(conn, "server spoke while idle");
		return;
	}
	tr_attempt_pump(a, tr_client_line(a->client, line, len));
}

static void
tr_conn_line_too_long(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	tr_attempt_pump(a, tr_client_line_too_long(a->client));
}

static void
tr_conn_tls_ready(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->handshaking = false;
	if (a->s != NULL && a->s->implicit_tls) {
		tr_attempt_arm(a); /* now the greeting */
		return;
	}
	tr_attempt_pump(a, tr_client_tls_ready(a->client));
}


static void
tr_conn_drained(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (!a->ended)
		tr_attempt_arm(a); /* progress: the data block timer */
	tr_attempt_read(a);
}

static void
tr_conn_close(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->conn = NULL;
	ts_timer_stop(a->timer);
	/* Before the session learns of it: a delivery waiting for a
	 * slot may take this one (it connects anew). */
	tr_attempt_release_slot(a);
	if (!a->ended && !tr_client_done(a->client)) {
		const char *why = ts_conn_error(conn);
		char *t =
			ts_xasprintf("connection to %s closed: %s",
				     a->remote ? a->remote : a->host,
				     why != NULL      ? why
				     : a->handshaking ? "closed during the "
							"TLS handshake"
						      : "closed by the server");
		/* A TLS failure is about this host: try the next one (or
		 * this one without TLS). */
		a->tls_failed = a->handshaking ||
				(why != NULL && strncmp(why, "tls", 3) == 0);
		tr_client_fail(a->client, 451,
			       a->tls_failed ? "4.7.5" : "4.4.2", t, true);
		free(t);
	}
	if (!a->ended)
		tr_attempt_end(a);
	tr_attempt_unref(a);
}

static void
tr_conn_connect_failed(struct ts_conn *conn, const char *error)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->conn = NULL;
	ts_timer_stop(a->timer);
	/* Before the session learns of it: a delivery waiting for a
	 * slot may take this one (it connects anew). */
	tr_attempt_release_slot(a);
	if (!a->ended) {
		/* error names the addresses; tr_attempt_end adds the host */
		tr_client_fail(a->client, 451, "4.4.1", error, false);
		tr_attempt_end(a);
	}
	tr_attempt_unref(a);
}

static const struct ts_protocol tr_smtp_client_protocol = {
	.open = tr_conn_open,
	.line = tr_conn_line,
	.data = tr_conn_data,
	.line_too_long = tr_conn_line_too_long,
	.close = tr_conn_close,
	.tls_ready = tr_conn_tls_ready,
	.drained = tr_conn_drained,
	.connect_failed = tr_conn_connect_failed,
};

static void
tr_attempt_timeout(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct tr_attempt *a = arg;
	if (a->conn == NULL)
		return;
	if (a->parked) {
		/* idle_timeout: nobody came for the kept connection */
		if (a->dest != NULL)
			tr_dest_unpark(a->dest, a);
		a->parked = false;
		tr_attempt_pump(a, tr_client_quit(a->client));
		return;
	}
	if (a->ended) {
		ts_conn_close(a->conn, "quit timeout");
		return;
	}
	tr_client_timeout(a->client);
	tr_attempt_pump(a, TR_WANT_CLOSE);
}

/* Connect to one host through its addresses. */
void
tr_attempt_start(struct tr_session *s, const char *host, bool literal,
		 char **addrs, size_t count, bool no_tls)
{
	const struct tr_settings *set = tr_settings(s->ctx);
	char *key = tr_dest_key_for(s, host, literal, no_tls);
	struct tr_dest *dest = tr_pool_dest(tr_module_pool(s->ctx), key);
	free(key);
	bool fresh = s->fresh_only;
	s->fresh_only = false;
	struct tr_attempt *kept = fresh ? NULL : tr_dest_take_parked(dest);
	if (kept != NULL) {
		tr_attempt_reuse(s, kept);
		return;
	}
	if (!tr_dest_take_slot(dest, set->max_per_host)) {
		/* max_connections_per_host: wait for a slot or a kept
		 * connection (the delivery's own timeouts still apply at
		 * the queue: a cancel takes it out of the line). */
		ts_log(s->ctx, TS_LOG_DEBUG,
		       "waiting for a connection slot id=%s host=%s open=%u",
		       ts_delivery_id(s->d), host, tr_dest_active(dest));
		s->pending.host = ts_xstrdup(host);
		s->pending.literal = literal;
		s->pending.no_tls = no_tls;
		s->pending.addrs = ts_xcalloc(count ? count : 1,
					      sizeof(*s->pending.addrs));
		for (size_t i = 0; i < count; i++)
			s->pending.addrs[i] = ts_xstrdup(addrs[i]);
		s->pending.count = count;
		s->waiter.wake = tr_session_wake;
		s->waiting = dest;
		tr_dest_wait(dest, &s->waiter);
		return;
	}
	struct tr_attempt *a = ts_xcalloc(1, sizeof(*a));
	a->s = s;
	a->ctx = s->ctx;
	a->refs = 1;
	a->dest = dest;
	a->txns = 1;
	a->helo_name = ts_xstrdup(set->helo_name);
	a->host = ts_xstrdup(host);
	a->literal = literal;
	a->no_tls = no_tls;
	a->addrs = ts_xcalloc(count, sizeof(*a->addrs));
	for (size_t i = 0; i < count; i++)
		a->addrs[i] = ts_xstrdup(addrs[i]);
	a->addr_count = count;
	a->timer = ts_timer_new(s->ctx, tr_attempt_timeout, a);
	tr_attempt_policy(a, s);
	struct tr_client_params p = {
		.helo_name = a->helo_name,
		.mail = ts_delivery_mail(s->d),
		.rcpts = s->rcpts,
		.rcpt_count = s->rcpt_count,
		.size = ts_delivery_size(s->d),
		.tls = s->requiretls		  ? TR_TLS_REQUIRETLS
		       : set->starttls && !no_tls ? TR_TLS_OPPORTUNISTIC
						  : TR_TLS_NEVER,
		.tls_active = s->implicit_tls,
		.keep_open = set->idle_timeout_ms > 0 && set->max_per_conn > 1,
	};
	if (s->relay && !s->requiretls)
		p.tls = no_tls ? TR_TLS_NEVER : s->relay_tls;
	if (a->tls_required_by != NULL && !s->requiretls) {
		p.tls = TR_TLS_REQUIRED;
		p.tls_required_by = a->tls_required_by;
	}
	if (s->username != NULL && s->password != NULL) {
		a->auth.begin = tr_auth_begin;
		a->auth.step = tr_auth_step;
		a->auth.success = tr_auth_success;
		a->auth.arg = a;
		p.auth = &a->auth;
	}
	a->client = tr_client_new(&p);
	s->att = a;
	struct ts_connect_opts opts = {
		.addresses = (const char *const *)addrs,
		.address_count = count,
		.port = s->port,
		.timeout_ms = set->connect_timeout_ms,
		/* the client judges overlong replies itself */
		.max_line = TR_REPLY_LINE_MAX + 2,
		/* our own timers fire first */
		.idle_timeout_ms =
			set->data_timeout_ms + set->command_timeout_ms + 60000,
		.name = host,
	};
	const char *proxy[1] = { s->socks_host };
	if (s->socks_host != NULL) {
		/* The proxy connects to the first address for us. */
		opts.addresses = proxy;
		opts.address_count = 1;
		opts.port = s->socks_port;
		a->socks = TR_SOCKS_METHOD;
	}
	a->conn = ts_conn_connect(s->ctx, &opts, &tr_smtp_client_protocol, a);
	if (a->conn == NULL) {
		tr_attempt_release_slot(a);
		char *t = ts_xasprintf("cannot connect to %s", host);
		tr_client_fail(a->client, 451, "4.4.1", t, false);
		free(t);
		a->refs++; /* tr_attempt_end may detach; keep a until here */
		tr_attempt_end(a);
		tr_attempt_unref(a);
		tr_attempt_unref(a);
	}
}

