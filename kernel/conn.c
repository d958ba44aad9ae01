/*
 * kernel/conn.c — one accepted connection: line input, queued output,
 * timeouts, per-module data, and the protocol's callbacks.
 *
 * Lifecycle: accept → conn_open hooks (the connection is paused) → optional
 * delay → protocol open → lines → close.  Closing cancels pending hook runs
 * at once (so their cancel callbacks see the client leave), lets queued
 * output drain, and frees the connection only after libuv has closed both
 * of its handles.  TLS, byte-count reads and memory budgets come with the
 * network-layer work; this file keeps the seams for them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/net.h"
#include "kernel/serve.h"

/* Stop reading while this much output waits for a slow peer. */
#define TS_CONN_WRITE_HIGH_WATER (256 * 1024)
/* Buffer at most this much unprocessed input (or two max_lines). */
#define TS_CONN_INPUT_BUDGET (64 * 1024)

struct ts_conn_slot {
	void *data;
	void (*destroy)(void *data);
};

struct ts_conn {
	struct ts_conn *prev, *next;
	struct ts_kernel *kernel;
	uint64_t id;
	char *listener;
	const struct ts_protocol *proto;
	struct ts_ctx *proto_ctx;
	struct ts__conn_limits limits;

	uv_tcp_t tcp;
	uv_timer_t timer; /* idle timeout, or the conn_open delay */
	uv_shutdown_t shutdown_req;
	unsigned handles_open;

	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	unsigned remote_port, local_port;

	char *in;
	size_t in_len, in_cap;
	bool discarding; /* dropping the rest of an overlong line */

	struct ts_hook_run *open_run;
	struct ts_hook_result *open_result; /* kept across the delay */
	bool opened;
	bool paused;
	bool reading;
	bool processing;
	bool closing;
	bool freed_handles;
	char *close_reason;

	struct ts_conn_slot *slots;
	size_t slot_count;
};

static void ts_conn_process(struct ts_conn *conn);
static void ts_conn_update_reading(struct ts_conn *conn);

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
	struct ts_conn_slot *slot = &conn->slots[ctx->index];
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

static void
ts_conn_written(uv_write_t *req, int status)
{
	struct ts_conn_write *w = (struct ts_conn_write *)req;
	struct ts_conn *conn = w->conn;
	free(w);
	if (status < 0 && status != UV_ECANCELED && !conn->closing) {
		ts_conn_log(conn, &conn->kernel->kctx, TS_LOG_DEBUG,
			    "write failed error=%s", uv_strerror(status));
		ts_conn_close(conn, "write error");
		return;
	}
	ts_conn_update_reading(conn);
}

int
ts_conn_write(struct ts_conn *conn, const void *data, size_t len)
{
	if (conn->closing || conn->freed_handles)
		return TS_E_STATE;
	if (len == 0)
		return 0;
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
	ts_conn_update_reading(conn);
	return 0;
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
	ts_conn_log(conn, &k->kctx, TS_LOG_INFO,
		    "session closed listener=%s reason=\"%s\"", conn->listener,
		    conn->close_reason != NULL ? conn->close_reason : "closed");

	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		k->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	k->conn_count--;

	free(conn->slots);
	free(conn->in);
	free(conn->listener);
	free(conn->close_reason);
	free(conn->open_result);
	free(conn);
	ts__serve_conn_gone(k);
}

static void
ts_conn_handle_closed(uv_handle_t *handle)
{
	struct ts_conn *conn = handle->data;
	if (--conn->handles_open == 0)
		ts_conn_free(conn);
}

/* Close both handles now, dropping unsent output. */
static void
ts_conn_close_handles(struct ts_conn *conn)
{
	if (conn->freed_handles)
		return;
	conn->freed_handles = true;
	uv_timer_stop(&conn->timer);
	uv_close((uv_handle_t *)&conn->timer, ts_conn_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&conn->tcp))
		uv_close((uv_handle_t *)&conn->tcp, ts_conn_handle_closed);
}

static void
ts_conn_shutdown_done(uv_shutdown_t *req, int status)
{
	struct ts_conn *conn = req->data;
	ts_conn_close_handles(conn);
}

static void
ts_conn_begin_close(struct ts_conn *conn, const char *reason)
{
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
	if (conn->reading) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
	uv_timer_stop(&conn->timer);
}

void
ts_conn_close(struct ts_conn *conn, const char *reason)
{
	if (conn->closing)
		return;
	ts_conn_begin_close(conn, reason);
	/* Let queued replies (a 421, a 221) reach the peer first. */
	conn->shutdown_req.data = conn;
	if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp,
			ts_conn_shutdown_done) != 0)
		ts_conn_close_handles(conn);
}

/* Close at once, without waiting for output (peer gone, grace expired). */
static void
ts_conn_abort(struct ts_conn *conn, const char *reason)
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
ts_conn_arm_idle(struct ts_conn *conn)
{
	if (conn->limits.idle_timeout_ms > 0 && !conn->closing)
		uv_timer_start(&conn->timer, ts_conn_idle_timeout,
			       conn->limits.idle_timeout_ms, 0);
}

static void
ts_conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct ts_conn *conn = handle->data;
	/* Never hold more than one line plus one read of slack. */
	size_t want = conn->in_len + 16384;
	if (want > conn->in_cap) {
		conn->in_cap = want;
		conn->in = ts_xrealloc(conn->in, conn->in_cap);
	}
	*buf = uv_buf_init(conn->in + conn->in_len,
			   (unsigned)(conn->in_cap - conn->in_len));
}

static void
ts_conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct ts_conn *conn = stream->data;
	if (nread == UV_EOF) {
		ts_conn_close(conn, "peer closed");
		return;
	}
	if (nread < 0) {
		ts_conn_abort(conn, uv_strerror((int)nread));
		return;
	}
	conn->in_len += (size_t)nread;
	ts_conn_arm_idle(conn);
	ts_conn_process(conn);
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
	size_t budget = 2 * conn->limits.max_line + 2;
	if (budget < TS_CONN_INPUT_BUDGET)
		budget = TS_CONN_INPUT_BUDGET;
	return !conn->closing && conn->in_len < budget &&
	       uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) <
		       TS_CONN_WRITE_HIGH_WATER;
}

/* Start or stop reading from the socket to match what we can take. */
static void
ts_conn_update_reading(struct ts_conn *conn)
{
	if (conn->freed_handles || conn->closing)
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
}

/* Hand complete lines to the protocol while it wants them. */
static void
ts_conn_process(struct ts_conn *conn)
{
	if (conn->processing)
		return; /* the outer call will pick up where we are */
	conn->processing = true;
	while (conn->opened && !conn->paused && !conn->closing) {
		char *lf = conn->in_len > 0
				   ? memchr(conn->in, '\n', conn->in_len)
				   : NULL;
		if (lf == NULL) {
			if (conn->in_len > conn->limits.max_line) {
				conn->in_len = 0;
				if (!conn->discarding) {
					conn->discarding = true;
					if (conn->proto->line_too_long != NULL)
						conn->proto->line_too_long(
							conn);
					else
						ts_conn_close(conn,
							      "line too long");
				}
			}
			break;
		}
		size_t n = (size_t)(lf - conn->in) + 1;
		if (conn->discarding) {
			conn->discarding = false;
			ts_conn_consume(conn, n);
			continue;
		}
		size_t len = n - 1;
		if (len > 0 && conn->in[len - 1] == '\r')
			len--;
		if (len > conn->limits.max_line) {
			ts_conn_consume(conn, n);
			if (conn->proto->line_too_long != NULL)
				conn->proto->line_too_long(conn);
			else
				ts_conn_close(conn, "line too long");
			continue;
		}
		char *line = ts_xstrndup(conn->in, len);
		ts_conn_consume(conn, n);
		conn->proto->line(conn, line, len);
		free(line);
	}
	conn->processing = false;
	ts_conn_update_reading(conn);
}

void
ts_conn_pause(struct ts_conn *conn)
{
	conn->paused = true;
	ts_conn_update_reading(conn);
}

void
ts_conn_resume(struct ts_conn *conn)
{
	if (!conn->paused)
		return;
	conn->paused = false;
	ts_conn_process(conn);
}

/* --- opening ----------------------------------------------------------- */

static void
ts_conn_start_protocol(struct ts_conn *conn)
{
	conn->opened = true;
	conn->paused = false;
	struct ts_hook_result *res = conn->open_result;
	conn->proto->open(conn, res);
	if (!conn->closing) {
		ts_conn_arm_idle(conn);
		ts_conn_process(conn);
	}
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
ts__conn_accept(struct ts_kernel *k, uv_stream_t *server,
		const char *listener_name, const struct ts_protocol *proto,
		struct ts_ctx *proto_ctx, const struct ts__conn_limits *limits)
{
	struct ts_conn *conn = ts_xcalloc(1, sizeof(*conn));
	conn->kernel = k;
	conn->id = ++k->next_conn_id;
	conn->listener = ts_xstrdup(listener_name);
	conn->proto = proto;
	conn->proto_ctx = proto_ctx;
	conn->limits = *limits;
	conn->paused = true; /* until the conn_open hooks are done */

	uv_tcp_init(k->loop, &conn->tcp);
	uv_timer_init(k->loop, &conn->timer);
	conn->tcp.data = conn;
	conn->timer.data = conn;
	conn->handles_open = 2;

	conn->next = k->conns;
	if (k->conns != NULL)
		k->conns->prev = conn;
	k->conns = conn;
	k->conn_count++;

	int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
	if (rc != 0) {
		ts_log(&k->kctx, TS_LOG_WARN,
		       "accept failed listener=%s error=%s", listener_name,
		       uv_strerror(rc));
		ts_conn_abort(conn, "accept failed");
		return;
	}
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
	ts_conn_log(conn, &k->kctx, TS_LOG_INFO,
		    "session opened listener=%s local=%s:%u", listener_name,
		    conn->local_ip, conn->local_port);

	/* Early input is buffered; lines go out once the protocol opened. */
	ts_conn_update_reading(conn);
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
		ts_conn_abort(conn, reason);
	}
}
