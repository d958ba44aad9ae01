/*
 * kernel/conn-tls.c — TLS underneath a connection.
 *
 * Glue between a struct ts_conn and a memory-buffered GnuTLS session
 * (tls.c): ciphertext read from the socket goes into the session, the
 * plaintext that comes out goes to the connection's line buffer, and
 * writes are encrypted on their way to the socket.  Server side covers
 * implicit TLS and STARTTLS; client side covers outbound STARTTLS with the
 * caller's verification mode.  What TLS *is* lives in tls.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/conn-private.h"

/* tls.c hands us ciphertext to put on the wire. */
static void
ts_conn_tls_send(void *arg, const void *data, size_t len)
{
	struct ts_conn *conn = arg;
	(void)ts__conn_raw_write(conn, data, len);
}

static void
ts_conn_tls_failed(struct ts_conn *conn, const char *what)
{
	const char *why = conn->tls != NULL ? ts__tls_error(conn->tls) : "";
	ts__conn_set_error(conn, "tls: %s%s%s", what, *why ? ": " : "", why);
	ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_INFO, "tls %s error=\"%s\"",
		    what, why);
	ts__conn_abort(conn, "tls failed");
}

/* The handshake finished: tell the protocol, then go on with input. */
static void
ts_conn_tls_established(struct ts_conn *conn)
{
	conn->tls_state = TS__CONN_TLS_UP;
	struct ts_tls_info info;
	if (ts__tls_info(conn->tls, &info) == 0)
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_DEBUG,
			    "tls established version=%s cipher=%s sni=%s "
			    "verified=%s",
			    info.version, info.cipher,
			    info.server_name != NULL ? info.server_name : "-",
			    info.verified ? "yes" : "no");
	if (!conn->opened) {
		/* Implicit TLS: the protocol starts now. */
		ts__conn_open_protocol(conn);
		return;
	}
	if (conn->proto->tls_ready != NULL)
		conn->proto->tls_ready(conn);
	if (!conn->closing)
		ts__conn_process(conn);
}

/* Drive the handshake; true while the connection is still usable. */
static bool
ts_conn_tls_progress(struct ts_conn *conn)
{
	if (conn->tls_state != TS__CONN_TLS_HANDSHAKE)
		return true;
	int rc = ts__tls_handshake(conn->tls);
	if (rc == TS__TLS_AGAIN)
		return true;
	if (rc != 0) {
		ts_conn_tls_failed(conn, "handshake failed");
		return false;
	}
	ts_conn_tls_established(conn);
	return !conn->closing;
}

void
ts__conn_tls_received(struct ts_conn *conn, const char *data, size_t len)
{
	ts__tls_input(conn->tls, data, len);
	if (!ts_conn_tls_progress(conn))
		return;
	if (conn->tls_state != TS__CONN_TLS_UP)
		return;
	char buf[16384];
	for (;;) {
		ssize_t n = ts__tls_read(conn->tls, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n == TS__TLS_EOF) {
			/* close_notify: like a TCP half-close. */
			conn->peer_eof = true;
			ts__conn_process(conn);
			if (!conn->closing)
				ts_conn_close(conn, "peer closed");
			return;
		}
		if (n < 0) {
			ts_conn_tls_failed(conn, "read failed");
			return;
		}
		ts__conn_received(conn, buf, (size_t)n);
		if (conn->closing)
			return;
	}
}

int
ts__conn_tls_write(struct ts_conn *conn, const void *data, size_t len)
{
	if (ts__tls_write(conn->tls, data, len) != 0) {
		ts_conn_tls_failed(conn, "write failed");
		return TS_E_IO;
	}
	return 0;
}

void
ts__conn_tls_finish(struct ts_conn *conn)
{
	if (conn->tls != NULL && conn->tls_state == TS__CONN_TLS_UP)
		ts__tls_bye(conn->tls);
}

/*
 * Whatever plaintext arrived before TLS started is dropped: bytes sent
 * after STARTTLS but before the handshake could be an attacker's
 * injection (the 2011 STARTTLS command-injection bugs).
 */
static void
ts_conn_tls_discard_plaintext(struct ts_conn *conn)
{
	if (conn->in_len > 0)
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_INFO,
			    "tls discarded plaintext bytes=%zu", conn->in_len);
	conn->in_len = 0;
	conn->bytes_wanted = 0;
	conn->discarding = false;
}

int
ts__conn_tls_start_server(struct ts_conn *conn)
{
	if (conn->limits.creds == NULL)
		return TS_E_INVAL;
	if (conn->tls != NULL)
		return TS_E_STATE;
	struct ts__tls_io io = { .send = ts_conn_tls_send, .arg = conn };
	char *error = NULL;
	conn->tls = ts__tls_server_new(conn->limits.creds,
				       conn->limits.tls_priority, &io, &error);
	if (conn->tls == NULL) {
		ts__conn_set_error(conn, "tls: %s", error);
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_ERROR,
			    "tls setup failed error=\"%s\"", error);
		free(error);
		return TS_E_IO;
	}
	ts_conn_tls_discard_plaintext(conn);
	conn->tls_state = TS__CONN_TLS_HANDSHAKE;
	ts__conn_update_reading(conn);
	return 0;
}

int
ts_conn_starttls(struct ts_conn *conn)
{
	if (conn->tls != NULL)
		return TS_E_STATE;
	if (conn->outbound || conn->limits.tls_mode == TS__TLS_NONE ||
	    conn->limits.creds == NULL)
		return TS_E_INVAL;
	return ts__conn_tls_start_server(conn);
}

int
ts_conn_starttls_client(struct ts_conn *conn,
			const struct ts_tls_client_opts *opts)
{
	if (conn->tls != NULL)
		return TS_E_STATE;
	struct ts__tls_io io = { .send = ts_conn_tls_send, .arg = conn };
	char *error = NULL;
	conn->tls = ts__tls_client_new(opts, conn->limits.tls_priority, &io,
				       &error);
	if (conn->tls == NULL) {
		ts__conn_set_error(conn, "tls: %s", error);
		free(error);
		return TS_E_IO;
	}
	ts_conn_tls_discard_plaintext(conn);
	conn->tls_state = TS__CONN_TLS_HANDSHAKE;
	/* The client speaks first: this sends the ClientHello. */
	ts_conn_tls_progress(conn);
	return 0;
}

bool
ts_conn_tls_offered(const struct ts_conn *conn)
{
	return !conn->outbound && conn->tls == NULL &&
	       conn->limits.tls_mode == TS__TLS_STARTTLS &&
	       conn->limits.creds != NULL;
}

bool
ts_conn_tls_active(const struct ts_conn *conn)
{
	return conn->tls_state == TS__CONN_TLS_UP;
}

int
ts_conn_tls_info(const struct ts_conn *conn, struct ts_tls_info *info_r)
{
	if (conn->tls_state != TS__CONN_TLS_UP)
		return TS_E_STATE;
	return ts__tls_info(conn->tls, info_r);
}

int
ts_conn_tls_channel_binding(const struct ts_conn *conn, const char *type,
			    uint8_t *buf, size_t *len_r)
{
	if (conn->tls_state != TS__CONN_TLS_UP)
		return TS_E_STATE;
	return ts__tls_channel_binding(conn->tls, type, buf, len_r);
}

int
ts_conn_tls_best_channel_binding(const struct ts_conn *conn,
				 const char **type_r, uint8_t *buf,
				 size_t *len_r)
{
	/* RFC 9266 makes tls-exporter the one to prefer; tls-unique is
	 * what TLS 1.2 without extended master secret still offers. */
	static const char *const types[] = { "tls-exporter", "tls-unique" };
	for (size_t i = 0; i < 2; i++) {
		size_t len = *len_r;
		if (ts_conn_tls_channel_binding(conn, types[i], buf, &len) ==
		    0) {
			*type_r = types[i];
			*len_r = len;
			return 0;
		}
	}
	return conn->tls_state != TS__CONN_TLS_UP ? TS_E_STATE
						 : TS_E_NOTFOUND;
}
