/*
 * kernel/conn-connect.c — outbound TCP connections.
 *
 * ts_conn_connect tries the caller's addresses in order (so IPv6 and IPv4
 * fall back to each other as the caller arranged them), each with its own
 * timeout, and hands the first that answers to the protocol exactly like
 * an accepted connection.  If none answers, the protocol's connect_failed
 * hears every address's error in one line.  Name resolution is the
 * caller's job (tessera/dns.h): this file only dials numbers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/conn-private.h"

#define TS_CONNECT_DEFAULT_TIMEOUT_MS 30000

static void ts_connect_next(struct ts_conn *conn);

/* Every attempt failed: report and free without open/close. */
static void
ts_connect_give_up(struct ts_conn *conn)
{
	conn->connecting = false;
	const char *why = conn->connect_errors != NULL ? conn->connect_errors
						       : "no addresses";
	ts__conn_set_error(conn, "connect: %s", why);
	ts_log(&conn->kernel->kctx, TS_LOG_INFO,
	       "connect failed peer=%s error=\"%s\"", conn->listener, why);
	conn->proto->connect_failed(conn, conn->error);
	ts__conn_abort(conn, "connect failed");
}

static void
ts_connect_note_error(struct ts_conn *conn, const char *ip, const char *what)
{
	char *line = ts_xasprintf("%s%s[%s]:%u: %s",
				  conn->connect_errors != NULL
					  ? conn->connect_errors
					  : "",
				  conn->connect_errors != NULL ? "; " : "", ip,
				  conn->port, what);
	free(conn->connect_errors);
	conn->connect_errors = line;
}

/* The failed attempt's socket is closed: try the next address. */
static void
ts_connect_socket_closed(uv_handle_t *handle)
{
	struct ts_conn *conn = handle->data;
	conn->handles_open--;
	conn->tcp_live = false;
	if (conn->closing) {
		/* Aborted meanwhile: finish the teardown it started. */
		conn->handles_open++;
		ts__conn_handle_closed(handle);
		return;
	}
	ts_connect_next(conn);
}

static void
ts_connect_attempt_failed(struct ts_conn *conn, const char *what)
{
	uv_timer_stop(&conn->timer);
	ts_connect_note_error(conn, conn->addresses[conn->address_next - 1],
			      what);
	if (!uv_is_closing((uv_handle_t *)&conn->tcp))
		uv_close((uv_handle_t *)&conn->tcp, ts_connect_socket_closed);
}

static void
ts_connect_timeout(uv_timer_t *timer)
{
	struct ts_conn *conn = timer->data;
	/* Closing the socket cancels the connect request (ECANCELED). */
	ts_connect_attempt_failed(conn, "timed out");
}

static void
ts_connect_done(uv_connect_t *req, int status)
{
	struct ts_conn *conn = req->data;
	if (status == UV_ECANCELED)
		return; /* timed out or aborted: already handled */
	if (conn->closing)
		return;
	if (status != 0) {
		ts_connect_attempt_failed(conn, uv_strerror(status));
		return;
	}
	uv_timer_stop(&conn->timer);
	conn->connecting = false;
	ts__conn_fill_addresses(conn);
	ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_INFO,
		    "connected peer=%s local=%s:%u", conn->listener,
		    conn->local_ip, conn->local_port);
	ts__conn_begin_io(conn);
	ts__conn_open_protocol(conn);
}

static void
ts_connect_next(struct ts_conn *conn)
{
	while (conn->address_next < conn->address_count) {
		const char *ip = conn->addresses[conn->address_next++];
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		int rc = strchr(ip, ':') != NULL
				 ? uv_ip6_addr(ip, (int)conn->port,
					       (struct sockaddr_in6 *)&ss)
				 : uv_ip4_addr(ip, (int)conn->port,
					       (struct sockaddr_in *)&ss);
		if (rc != 0) { /* checked in ts_conn_connect; be safe */
			ts_connect_note_error(conn, ip, "not an IP address");
			continue;
		}
		uv_tcp_init(conn->kernel->loop, &conn->tcp);
		conn->tcp.data = conn;
		conn->tcp_live = true;
		conn->handles_open++;
		conn->connect_req.data = conn;
		rc = uv_tcp_connect(&conn->connect_req, &conn->tcp,
				    (const struct sockaddr *)&ss,
				    ts_connect_done);
		if (rc != 0) {
			ts_connect_attempt_failed(conn, uv_strerror(rc));
			return; /* the close callback goes on */
		}
		uv_timer_start(&conn->timer, ts_connect_timeout,
			       conn->connect_timeout_ms, 0);
		return;
	}
	ts_connect_give_up(conn);
}

struct ts_conn *
ts_conn_connect(struct ts_ctx *ctx, const struct ts_connect_opts *opts,
		const struct ts_protocol *proto, void *arg)
{
	if (opts == NULL || proto == NULL || proto->connect_failed == NULL ||
	    proto->open == NULL || proto->line == NULL || opts->port == 0 ||
	    opts->port > 65535 || opts->address_count == 0)
		return NULL;
	/* Bad numbers are the caller's bug: refuse before anything starts. */
	for (size_t i = 0; i < opts->address_count; i++) {
		struct sockaddr_storage ss;
		const char *ip = opts->addresses[i];
		if (ip == NULL ||
		    (uv_ip6_addr(ip, 1, (struct sockaddr_in6 *)&ss) != 0 &&
		     uv_ip4_addr(ip, 1, (struct sockaddr_in *)&ss) != 0))
			return NULL;
	}
	struct ts_kernel *k = ctx->kernel;
	const struct ts_cfg_sect *core =
		k->cfg != NULL ? ts_cfg_find(k->cfg, "core", NULL) : NULL;
	struct ts__conn_limits limits = {
		.max_line = opts->max_line ? opts->max_line : 4096,
		.idle_timeout_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms
							 : 300000,
		.memory_budget = 1024 * 1024,
		.tls_mode = TS__TLS_NONE,
		.tls_priority = core != NULL ? ts_cfg_str(core, "tls_priority")
					     : NULL,
	};
	const char *label = opts->name != NULL ? opts->name
					       : opts->addresses[0];
	struct ts_conn *conn = ts__conn_new(k, label, proto, ctx, &limits);
	conn->outbound = true;
	conn->arg = arg;
	conn->connecting = true;
	conn->port = opts->port;
	conn->connect_timeout_ms = opts->timeout_ms
					   ? opts->timeout_ms
					   : TS_CONNECT_DEFAULT_TIMEOUT_MS;
	conn->addresses = ts_xcalloc(opts->address_count,
				     sizeof(*conn->addresses));
	for (size_t i = 0; i < opts->address_count; i++)
		conn->addresses[i] = ts_xstrdup(opts->addresses[i]);
	conn->address_count = opts->address_count;
	ts_connect_next(conn);
	return conn;
}
