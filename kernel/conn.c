/*
 * kernel/conn.c — one connection: buffered input as lines or counted
 * bytes, queued output with backpressure, timeouts, a memory budget,
 * per-module data, and the protocol's callbacks.
 *
 * Lifecycle of an accepted connection: accept → conn_open hooks → optional
 * delay → (implicit TLS handshake) → protocol open → lines → close.
 * Closing cancels pending hook runs at once (so their cancel callbacks see
 * the client leave), lets queued output drain, and frees the connection
 * only after libuv has closed all of its handles.  TLS lives in
 * conn-tls.c and outbound connects in conn-connect.c; this file never
 * sees ciphertext.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/conn-private.h"
#include "kernel/serve.h"

/* Stop reading while this much output waits for a slow peer... */
#define TS_CONN_WRITE_HIGH_WATER (256 * 1024)
/* ...and tell a streaming protocol to go on below this. */
#define TS_CONN_WRITE_LOW_WATER (64 * 1024)
/* After closing our side, how long to wait for the peer's. */
#define TS_CONN_LINGER_MS 2000

/* --- accessors ------------------------------------------------------- */

uint64_t
ts_conn_id(const struct ts_conn *conn)
{
	return conn->id;
}

struct ts_ctx *
ts_conn_protocol_ctx(const struct ts_conn *conn)
{
	return conn->proto_ctx;
}

const char *
ts_conn_listener(const struct ts_conn *conn)
{
	return conn->listener;
}

const char *
ts_conn_remote_ip(const struct ts_conn *conn)
{
	return conn->remote_ip;
}

unsigned
ts_conn_remote_port(const struct ts_conn *conn)
{
	return conn->remote_port;
}

const char *
ts_conn_local_ip(const struct ts_conn *conn)
{
	return conn->local_ip;
}

unsigned
ts_conn_local_port(const struct ts_conn *conn)
{
	return conn->local_port;
}

bool
ts_conn_closing(const struct ts_conn *conn)
{
	return conn->closing;
}

bool
ts_conn_line_bare_lf(const struct ts_conn *conn)
{
	return conn->line_bare_lf;
}

const char *
ts_conn_error(const struct ts_conn *conn)
{
	return conn->error;
}

void *
ts_conn_arg(const struct ts_conn *conn)
{
	return conn->arg;
}

void
ts__conn_set_error(struct ts_conn *conn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = ts_xvasprintf(fmt, ap);
	va_end(ap);
	free(conn->error);
	conn->error = text;
}

void
ts_conn_log(const struct ts_conn *conn, const struct ts_ctx *ctx,
	    enum ts_log_level level, const char *fmt, ...)
{
	if (!ts_log_enabled(ctx, level))
		return;
	va_list ap;
	va_start(ap, fmt);
	ts__log_write(&conn->kernel->log, conn->kernel->loop, level,
		      ctx != NULL ? ctx->name : NULL, conn->id, conn->remote_ip,
		      fmt, ap);
	va_end(ap);
}

/* --- per-module data ---------------------------------------------------- */

void
ts_conn_set_data(struct ts_conn *conn, const struct ts_ctx *ctx, void *data,
		 void (*destroy)(void *data))
{
	if (ctx->index >= conn->slot_count) {
		size_t n = ctx->index + 1;
		conn->slots =
			ts_xrealloc(conn->slots, n * sizeof(*conn->slots));
		memset(conn->slots + conn->slot_count, 0,
		       (n - conn->slot_count) * sizeof(*conn->slots));
		conn->slot_count = n;
	}
	struct ts__conn_slot *slot = &conn->slots[ctx->index];
	if (slot->data != NULL && slot->data != data && slot->destroy != NULL)
		slot->destroy(slot->data);
	slot->data = data;
	slot->destroy = destroy;
}

void *
ts_conn_data(const struct ts_conn *conn, const struct ts_ctx *ctx)
{
	if (ctx->index >= conn->slot_count)
		return NULL;
	return conn->slots[ctx->index].data;
}

/* --- output ------------------------------------------------------------ */

struct ts_conn_write {
	uv_write_t req;
	struct ts_conn *conn;
	char data[];
};

size_t
ts_conn_output_pending(const struct ts_conn *conn)
{
	if (!conn->tcp_live)
		return 0;
	return uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
}

static void
ts_conn_written(uv_write_t *req, int status)
{
	struct ts_conn_write *w = (struct ts_conn_write *)req;
	struct ts_conn *conn = w->conn;
	free(w);
	if (status < 0 && status != UV_ECANCELED && !conn->closing) {
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_DEBUG,
			    "write failed error=%s", uv_strerror(status));
		ts__conn_abort(conn, "write error");
		return;
	}
	if (conn->above_low_water && !conn->closing &&
	    ts_conn_output_pending(conn) < TS_CONN_WRITE_LOW_WATER) {
		conn->above_low_water = false;
		if (conn->proto->drained != NULL)
			conn->proto->drained(conn);
	}
	ts__conn_update_reading(conn);
}

int
ts__conn_raw_write(struct ts_conn *conn, const void *data, size_t len)
{
	if (conn->freed_handles || !conn->tcp_live ||
	    uv_is_closing((uv_handle_t *)&conn->tcp))
		return TS_E_STATE;
	if (len == 0)
		return 0;
	size_t pending = ts_conn_output_pending(conn);
	if (pending + len + conn->in_len > conn->limits.memory_budget) {
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_WARN,
			    "memory budget exceeded queued=%zu budget=%zu",
			    pending + len, conn->limits.memory_budget);
		ts__conn_set_error(conn, "memory budget exceeded");
		ts__conn_abort(conn, "memory budget exceeded");
		return TS_E_NOMEM;
	}
	struct ts_conn_write *w = ts_xmalloc(sizeof(*w) + len);
	w->conn = conn;
	memcpy(w->data, data, len);
	uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
	int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1,
			  ts_conn_written);
	if (rc != 0) {
		free(w);
		return TS_E_IO;
	}
	if (ts_conn_output_pending(conn) >= TS_CONN_WRITE_LOW_WATER)
		conn->above_low_water = true;
	ts__conn_update_reading(conn);
	return 0;
}

int
ts_conn_write(struct ts_conn *conn, const void *data, size_t len)
{
	if (conn->closing || conn->freed_handles)
		return TS_E_STATE;
	if (conn->tls_state == TS__CONN_TLS_UP)
		return ts__conn_tls_write(conn, data, len);
	if (conn->tls_state == TS__CONN_TLS_HANDSHAKE)
		return TS_E_STATE; /* nothing may pass during a handshake */
	return ts__conn_raw_write(conn, data, len);
}

int
ts_conn_printf(struct ts_conn *conn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = ts_xvasprintf(fmt, ap);
	va_end(ap);
	int rc = ts_conn_write(conn, text, strlen(text));
	free(text);
	return rc;
}

/* --- teardown ---------------------------------------------------------- */

static void
ts_conn_free(struct ts_conn *conn)
{
	struct ts_kernel *k = conn->kernel;

	for (size_t i = 0; i < conn->slot_count; i++)
		if (conn->slots[i].data != NULL && conn->slots[i].destroy)
			conn->slots[i].destroy(conn->slots[i].data);
	if (!conn->outbound || conn->opened)
		ts_conn_log(conn, &k->kctx, TS_LOG_INFO,
			    "session closed %s=%s reason=\"%s\"%s%s%s",
			    conn->outbound ? "peer" : "listener",
			    conn->listener,
			    conn->close_reason != NULL ? conn->close_reason
						       : "closed",
			    conn->error != NULL ? " error=\"" : "",
			    conn->error != NULL ? conn->error : "",
			    conn->error != NULL ? "\"" : "");

	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		k->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	k->conn_count--;

	ts__tls_free(&conn->tls);
	ts__tls_creds_unref(&conn->limits.creds);
	free((char *)conn->limits.tls_priority);
	for (size_t i = 0; i < conn->address_count; i++)
		free(conn->addresses[i]);
	free(conn->addresses);
	free(conn->connect_errors);
	free(conn->slots);
	free(conn->in);
	free(conn->listener);
	free(conn->close_reason);
	free(conn->error);
	free(conn->open_result);
	free(conn);
	ts__serve_conn_gone(k);
}

void
ts__conn_handle_closed(uv_handle_t *handle)
{
	struct ts_conn *conn = handle->data;
	if (--conn->handles_open == 0)
		ts_conn_free(conn);
}

/* Close every handle now, dropping unsent output. */
static void
ts_conn_close_handles(struct ts_conn *conn)
{
	if (conn->freed_handles)
		return;
	conn->freed_handles = true;
	uv_timer_stop(&conn->timer);
	uv_timer_stop(&conn->life_timer);
	uv_close((uv_handle_t *)&conn->timer, ts__conn_handle_closed);
	uv_close((uv_handle_t *)&conn->life_timer, ts__conn_handle_closed);
	if (conn->tcp_live && !uv_is_closing((uv_handle_t *)&conn->tcp))
		uv_close((uv_handle_t *)&conn->tcp, ts__conn_handle_closed);
}

static void
ts_conn_linger_done(uv_timer_t *timer)
{
	ts_conn_close_handles(timer->data);
}

/*
 * Our FIN is out.  Wait (briefly) for the peer's: closing a socket with
 * unread input makes the kernel send a reset, which can destroy the very
 * error reply we just sent before the peer reads it.  Input meanwhile is
 * read and dropped.
 */
static void
ts_conn_shutdown_done(uv_shutdown_t *req, int status)
{
	struct ts_conn *conn = req->data;
	conn->shutdown_done = true;
	if (status != 0 || conn->peer_eof || conn->freed_handles) {
		ts_conn_close_handles(conn);
		return;
	}
	uv_timer_start(&conn->timer, ts_conn_linger_done, TS_CONN_LINGER_MS, 0);
}

static void
ts_conn_begin_close(struct ts_conn *conn, const char *reason)
{
	if (conn->connecting) {
		/* The owner hears of it the way it hears of failures. */
		conn->connecting = false;
		ts__conn_set_error(conn, "connect: cancelled");
		conn->proto->connect_failed(conn, conn->error);
	}
	conn->closing = true;
	if (conn->close_reason == NULL)
		conn->close_reason = ts_xstrdup(reason != NULL ? reason : "");
	ts_hook_run_cancel(&conn->open_run);
	/*
	 * The protocol hears first, so it can cancel the runs it holds
	 * pointers to; then the kernel cancels whatever it forgot.
	 */
	if (conn->opened && conn->proto->close != NULL)
		conn->proto->close(conn);
	ts__hooks_cancel_conn(conn->kernel->hooks, conn);
	/* Input from now on is read only to be dropped (see linger). */
	conn->in_len = 0;
	uv_timer_stop(&conn->timer);
	ts__conn_update_reading(conn);
}

void
ts_conn_close(struct ts_conn *conn, const char *reason)
{
	if (conn->closing)
		return;
	ts_conn_begin_close(conn, reason);
	if (!conn->tcp_live) {
		ts_conn_close_handles(conn);
		return;
	}
	ts__conn_tls_finish(conn);
	/* Let queued replies (a 421, a 221) reach the peer first. */
	conn->shutdown_req.data = conn;
	if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp,
			ts_conn_shutdown_done) != 0)
		ts_conn_close_handles(conn);
}

void
ts__conn_abort(struct ts_conn *conn, const char *reason)
{
	if (!conn->closing)
		ts_conn_begin_close(conn, reason);
	ts_conn_close_handles(conn);
}

/* --- input ------------------------------------------------------------- */

static void
ts_conn_idle_timeout(uv_timer_t *timer)
{
	struct ts_conn *conn = timer->data;
	ts_conn_close(conn, "idle timeout");
}

static void
ts_conn_life_timeout(uv_timer_t *timer)
{
	struct ts_conn *conn = timer->data;
	ts_conn_close(conn, "session timeout");
}

static void
ts_conn_arm_idle(struct ts_conn *conn)
{
	if (conn->limits.idle_timeout_ms > 0 && !conn->closing)
		uv_timer_start(&conn->timer, ts_conn_idle_timeout,
			       conn->limits.idle_timeout_ms, 0);
}

/* The most unprocessed input a connection holds before it stops reading. */
static size_t
ts_conn_input_budget(const struct ts_conn *conn)
{
	size_t budget = conn->limits.memory_budget / 2;
	if (budget < 2 * conn->limits.max_line + 2)
		budget = 2 * conn->limits.max_line + 2;
	return budget;
}

static void
ts_conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct ts_conn *conn = handle->data;
	if (conn->tls != NULL || conn->closing) {
		struct ts_kernel *k = conn->kernel;
		if (k->conn_read_buf == NULL)
			k->conn_read_buf = ts_xmalloc(TS__CONN_READ_BUF);
		*buf = uv_buf_init(k->conn_read_buf, TS__CONN_READ_BUF);
		return;
	}
	/* Never hold more than the budget plus one read of slack. */
	size_t want = conn->in_len + 16384;
	if (want > conn->in_cap) {
		conn->in_cap = want;
		conn->in = ts_xrealloc(conn->in, conn->in_cap);
	}
	*buf = uv_buf_init(conn->in + conn->in_len,
			   (unsigned)(conn->in_cap - conn->in_len));
}

/*
 * The peer closed its side.  Complete lines it sent before still get
 * answered (a pipelined QUIT, say); but a peer that leaves while we wait
 * for a hook is gone, and its pending work is cancelled at once.
 */
static void
ts_conn_peer_eof(struct ts_conn *conn)
{
	conn->peer_eof = true;
	if (conn->reading) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
	if (!conn->opened || conn->paused ||
	    conn->tls_state == TS__CONN_TLS_HANDSHAKE)
		ts_conn_close(conn, "peer closed");
	else
		ts__conn_process(conn);
}

static void
ts_conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct ts_conn *conn = stream->data;
	if (conn->closing) {
		/* Lingering: drop input; the peer's FIN ends it. */
		if (nread < 0) {
			conn->peer_eof = true;
			if (conn->shutdown_done)
				ts_conn_close_handles(conn);
			else if (conn->reading) {
				uv_read_stop(stream);
				conn->reading = false;
			}
		}
		return;
	}
	if (nread == UV_EOF) {
		ts_conn_peer_eof(conn);
		return;
	}
	if (nread < 0) {
		ts__conn_abort(conn, uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	ts_conn_arm_idle(conn);
	if (conn->tls != NULL) {
		ts__conn_tls_received(conn, buf->base, (size_t)nread);
		return;
	}
	/* Plaintext was read straight into conn->in by ts_conn_alloc. */
	conn->in_len += (size_t)nread;
	ts__conn_process(conn);
}

void
ts__conn_received(struct ts_conn *conn, const char *data, size_t len)
{
	if (conn->in_len + len > conn->in_cap) {
		conn->in_cap = conn->in_len + len + 4096;
		conn->in = ts_xrealloc(conn->in, conn->in_cap);
	}
	memcpy(conn->in + conn->in_len, data, len);
	conn->in_len += len;
	ts__conn_process(conn);
}

/*
 * Keep reading while lines are not being delivered (before the greeting,
 * while a hook is pending) so that a client who leaves is noticed and its
 * pending hooks cancelled at once; only a full input buffer or a peer that
 * does not read our replies stops reading.
 */
static bool
ts_conn_wants_input(const struct ts_conn *conn)
{
	if (conn->closing)
		return !conn->peer_eof; /* lingering: read to drop */
	return !conn->peer_eof && !conn->connecting &&
	       conn->in_len < ts_conn_input_budget(conn) &&
	       ts_conn_output_pending(conn) < TS_CONN_WRITE_HIGH_WATER;
}

void
ts__conn_update_reading(struct ts_conn *conn)
{
	if (conn->freed_handles || !conn->tcp_live || conn->connecting ||
	    uv_is_closing((uv_handle_t *)&conn->tcp))
		return;
	bool want = ts_conn_wants_input(conn);
	if (want && !conn->reading) {
		if (uv_read_start((uv_stream_t *)&conn->tcp, ts_conn_alloc,
				  ts_conn_read) == 0)
			conn->reading = true;
	} else if (!want && conn->reading) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
}

static void
ts_conn_consume(struct ts_conn *conn, size_t n)
{
	memmove(conn->in, conn->in + n, conn->in_len - n);
	conn->in_len -= n;
	if (conn->in_len == 0 && conn->in_cap > 0) {
		/* An idle connection keeps no input buffer. */
		free(conn->in);
		conn->in = NULL;
		conn->in_cap = 0;
	}
}

int
ts_conn_read_bytes(struct ts_conn *conn, uint64_t count)
{
	if (conn->proto->data == NULL)
		return TS_E_INVAL;
	conn->bytes_wanted = count;
	return 0;
}

/* Deliver counted bytes; false when the loop must stop for more input. */
static bool
ts_conn_deliver_bytes(struct ts_conn *conn)
{
	if (conn->in_len == 0)
		return false;
	size_t n = conn->in_len;
	if (n > conn->bytes_wanted)
		n = (size_t)conn->bytes_wanted;
	conn->bytes_wanted -= n;
	bool last = conn->bytes_wanted == 0;
	/* Binary data (NULs too): copy out, the protocol may not keep it. */
	char *piece = ts_xmalloc(n + 1);
	memcpy(piece, conn->in, n);
	piece[n] = '\0';
	ts_conn_consume(conn, n);
	conn->proto->data(conn, piece, n, last);
	free(piece);
	return true;
}

static void
ts_conn_line_too_long(struct ts_conn *conn)
{
	if (conn->proto->line_too_long != NULL)
		conn->proto->line_too_long(conn);
	else
		ts_conn_close(conn, "line too long");
}

/* Deliver one line; false when the loop must stop for more input. */
static bool
ts_conn_deliver_line(struct ts_conn *conn)
{
	char *lf =
		conn->in_len > 0 ? memchr(conn->in, '\n', conn->in_len) : NULL;
	if (lf == NULL) {
		if (conn->first_line_possible != NULL && conn->in_len > 0 &&
		    !conn->first_line_possible(conn->in, conn->in_len)) {
			ts_conn_close(conn, "first bytes are not this protocol");
			return false;
		}
		if (conn->in_len > conn->limits.max_line) {
			/* Drop it without ever holding more than a line. */
			conn->in_len = 0;
			if (!conn->discarding) {
				conn->discarding = true;
				ts_conn_line_too_long(conn);
			}
		}
		return false;
	}
	size_t n = (size_t)(lf - conn->in) + 1;
	/* A whole line: from now on the protocol judges complete lines. */
	conn->first_line_possible = NULL;
	if (conn->discarding) {
		conn->discarding = false;
		ts_conn_consume(conn, n);
		return true;
	}
	size_t len = n - 1;
	conn->line_bare_lf = true;
	if (len > 0 && conn->in[len - 1] == '\r') {
		len--;
		conn->line_bare_lf = false;
	}
	if (len > conn->limits.max_line) {
		ts_conn_consume(conn, n);
		ts_conn_line_too_long(conn);
		return true;
	}
	/* memcpy, not strndup: a NUL inside the line must not shorten it
	 * below `len` (protocols may answer NULs, but must be able to see
	 * them). */
	char *line = ts_xmalloc(len + 1);
	memcpy(line, conn->in, len);
	line[len] = '\0';
	ts_conn_consume(conn, n);
	conn->proto->line(conn, line, len);
	free(line);
	return true;
}

void
ts__conn_process(struct ts_conn *conn)
{
	if (conn->processing)
		return; /* the outer call will pick up where we are */
	conn->processing = true;
	while (conn->opened && !conn->paused && !conn->closing &&
	       conn->tls_state != TS__CONN_TLS_HANDSHAKE) {
		bool more = conn->bytes_wanted > 0 ? ts_conn_deliver_bytes(conn)
						   : ts_conn_deliver_line(conn);
		if (!more)
			break;
	}
	conn->processing = false;
	/* After a half-close, stop once nothing complete is left. */
	if (conn->peer_eof && !conn->closing && !conn->paused)
		ts_conn_close(conn, "peer closed");
	ts__conn_update_reading(conn);
}

void
ts_conn_first_line_filter(struct ts_conn *conn,
			  bool (*possible)(const char *buf, size_t len))
{
	conn->first_line_possible = possible;
}

void
ts_conn_pause(struct ts_conn *conn)
{
	conn->paused = true;
	ts__conn_update_reading(conn);
}

void
ts_conn_resume(struct ts_conn *conn)
{
	if (!conn->paused)
		return;
	conn->paused = false;
	ts__conn_process(conn);
}

/* --- opening ----------------------------------------------------------- */

void
ts__conn_open_protocol(struct ts_conn *conn)
{
	conn->opened = true;
	conn->paused = false;
	static const struct ts_hook_result proceed = {
		.verdict = TS_VERDICT_CONTINUE,
	};
	conn->proto->open(conn, conn->open_result != NULL ? conn->open_result
							  : &proceed);
	if (!conn->closing) {
		ts_conn_arm_idle(conn);
		ts__conn_process(conn);
	}
}

/* conn_open is done (and any delay waited): TLS first if implicit. */
static void
ts_conn_start_protocol(struct ts_conn *conn)
{
	if (conn->limits.tls_mode == TS__TLS_IMPLICIT) {
		if (ts__conn_tls_start_server(conn) != 0)
			ts__conn_abort(conn, "tls setup failed");
		/* open runs when the handshake completes. */
		return;
	}
	ts__conn_open_protocol(conn);
}

static void
ts_conn_delay_done(uv_timer_t *timer)
{
	ts_conn_start_protocol(timer->data);
}

/*
 * The conn_open verdict.  Only the scalar fields and the text survive the
 * delay; conn_open has no message to add headers to.
 */
static void
ts_conn_open_done(const struct ts_hook_result *res, void *arg)
{
	struct ts_conn *conn = arg;
	conn->open_run = NULL;

	size_t text_len = res->text != NULL ? strlen(res->text) + 1 : 0;
	struct ts_hook_result *copy =
		ts_xcalloc(1, sizeof(*copy) + text_len + 16);
	copy->verdict = res->verdict;
	copy->code = res->code;
	copy->delay_ms = res->delay_ms;
	char *p = (char *)(copy + 1);
	if (res->enhanced != NULL) {
		snprintf(p, 16, "%s", res->enhanced);
		copy->enhanced = p;
	}
	if (res->text != NULL) {
		memcpy(p + 16, res->text, text_len);
		copy->text = p + 16;
	}
	conn->open_result = copy;

	if (res->verdict != TS_VERDICT_CONTINUE || res->delay_ms > 0)
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_INFO,
			    "conn_open verdict=%s module=%s delay=%llums",
			    ts_verdict_name(res->verdict),
			    res->module != NULL ? res->module : "-",
			    (unsigned long long)res->delay_ms);
	if (res->delay_ms > 0) {
		/* Tarpit without blocking: the greeting waits on a timer. */
		uv_timer_start(&conn->timer, ts_conn_delay_done, res->delay_ms,
			       0);
		return;
	}
	ts_conn_start_protocol(conn);
}

static void
ts_conn_addr(const struct sockaddr_storage *ss, char *ip, size_t ip_size,
	     unsigned *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		uv_ip6_name(a, ip, ip_size);
		*port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const void *)ss;
		uv_ip4_name(a, ip, ip_size);
		*port = ntohs(a->sin_port);
	}
}

void
ts__conn_fill_addresses(struct ts_conn *conn)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) == 0)
		ts_conn_addr(&ss, conn->remote_ip, sizeof(conn->remote_ip),
			     &conn->remote_port);
	len = sizeof(ss);
	if (uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&ss, &len) == 0)
		ts_conn_addr(&ss, conn->local_ip, sizeof(conn->local_ip),
			     &conn->local_port);
	uv_tcp_nodelay(&conn->tcp, 1);
}

struct ts_conn *
ts__conn_new(struct ts_kernel *k, const char *label,
	     const struct ts_protocol *proto, struct ts_ctx *proto_ctx,
	     const struct ts__conn_limits *limits)
{
	struct ts_conn *conn = ts_xcalloc(1, sizeof(*conn));
	conn->kernel = k;
	conn->id = ++k->next_conn_id;
	conn->listener = ts_xstrdup(label);
	conn->proto = proto;
	conn->proto_ctx = proto_ctx;
	conn->limits = *limits;
	if (conn->limits.creds != NULL)
		ts__tls_creds_ref(conn->limits.creds);
	conn->limits.tls_priority = ts_xstrdup(
		limits->tls_priority != NULL ? limits->tls_priority : "NORMAL");
	conn->paused = true; /* until the protocol opens */

	uv_timer_init(k->loop, &conn->timer);
	uv_timer_init(k->loop, &conn->life_timer);
	conn->timer.data = conn;
	conn->life_timer.data = conn;
	conn->handles_open = 2;

	conn->next = k->conns;
	if (k->conns != NULL)
		k->conns->prev = conn;
	k->conns = conn;
	k->conn_count++;
	return conn;
}

void
ts__conn_begin_io(struct ts_conn *conn)
{
	if (conn->limits.session_timeout_ms > 0)
		uv_timer_start(&conn->life_timer, ts_conn_life_timeout,
			       conn->limits.session_timeout_ms, 0);
	ts__conn_update_reading(conn);
}

void
ts__conn_accept(struct ts_kernel *k, uv_stream_t *server,
		const char *listener_name, const struct ts_protocol *proto,
		struct ts_ctx *proto_ctx, const struct ts__conn_limits *limits)
{
	struct ts_conn *conn =
		ts__conn_new(k, listener_name, proto, proto_ctx, limits);
	uv_tcp_init(k->loop, &conn->tcp);
	conn->tcp.data = conn;
	conn->tcp_live = true;
	conn->handles_open++;

	int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
	if (rc != 0) {
		ts_log(&k->kctx, TS_LOG_WARN,
		       "accept failed listener=%s error=%s", listener_name,
		       uv_strerror(rc));
		ts__conn_abort(conn, "accept failed");
		return;
	}
	ts__conn_fill_addresses(conn);
	ts_conn_log(conn, &k->kctx, TS_LOG_INFO,
		    "session opened listener=%s local=%s:%u", listener_name,
		    conn->local_ip, conn->local_port);

	/* Early input is buffered; lines go out once the protocol opened. */
	ts__conn_begin_io(conn);
	struct ts_hook_args args = { .conn = conn };
	conn->open_run = ts_hook_run(&k->kctx, TS_HOOK_CONN_OPEN, &args,
				     ts_conn_open_done, conn);
}

/* --- shutdown ---------------------------------------------------------- */

void
ts__conns_shutdown(struct ts_kernel *k)
{
	struct ts_conn *next;
	for (struct ts_conn *conn = k->conns; conn != NULL; conn = next) {
		next = conn->next;
		if (conn->closing)
			continue;
		if (conn->opened && conn->proto->shutdown != NULL) {
			free(conn->close_reason);
			conn->close_reason = ts_xstrdup("shutdown");
			conn->proto->shutdown(conn);
		} else {
			ts_conn_close(conn, "shutdown");
		}
	}
}

void
ts__conns_abort(struct ts_kernel *k, const char *reason)
{
	struct ts_conn *next;
	for (struct ts_conn *conn = k->conns; conn != NULL; conn = next) {
		next = conn->next;
		free(conn->close_reason);
		conn->close_reason = ts_xstrdup(reason);
		ts__conn_abort(conn, reason);
	}
}
