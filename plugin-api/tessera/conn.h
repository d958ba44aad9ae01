/*
 * tessera/conn.h — accepted connections and the protocol service.
 *
 * The kernel owns listeners (`[listener NAME]` sections) and the
 * connections they accept.  A protocol module registers a service of kind
 * "protocol" whose vtable (struct ts_protocol) receives the connection's
 * events; listeners name the protocol that serves them.  On accept the
 * kernel runs the conn_open hooks, waits any delay they ask for, then calls
 * the protocol's `open` with their verdict.  Input arrives as CRLF lines
 * (the terminator stripped; a bare LF also ends a line) of at most the
 * listener's max_line bytes.
 *
 * Everything here runs on the event-loop thread.
 */
#ifndef TESSERA_CONN_H
#define TESSERA_CONN_H

#include <tessera/common.h>
#include <tessera/hook.h>
#include <tessera/log.h>
#include <tessera/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ts_conn;

/* The vtable of a "protocol" service. */
struct ts_protocol {
	/*
	 * The conn_open hooks are done.  On TS_VERDICT_REJECT or
	 * TS_VERDICT_TEMPFAIL write a refusal and ts_conn_close(); otherwise
	 * greet.
	 */
	void (*open)(struct ts_conn *conn, const struct ts_hook_result *res);
	/*
 * One input line, without its line terminator, NUL-terminated after `len`
 * bytes; NUL bytes inside the line are kept (check with memchr).  Whether
 * it ended with a bare LF instead of CRLF: ts_conn_line_bare_lf.
 */
	void (*line)(struct ts_conn *conn, const char *line, size_t len);
	/*
	 * Bytes asked for with ts_conn_read_bytes (a BDAT chunk, an IMAP
	 * literal), delivered as they arrive, in pieces; `last` marks the
	 * piece that completes the count, after which lines resume.  May be
	 * NULL for protocols that never ask.
	 */
	void (*data)(struct ts_conn *conn, const char *data, size_t len,
		     bool last);
	/*
	 * A line exceeded max_line; its bytes up to the next LF are dropped.
	 * May be NULL: the kernel then closes the connection.
	 */
	void (*line_too_long)(struct ts_conn *conn);
	/*
	 * tessera is stopping: finish politely (e.g. "421") and close soon.
	 * Connections still open after [core] shutdown_grace are closed by
	 * the kernel.  May be NULL: the kernel closes at once.
	 */
	void (*shutdown)(struct ts_conn *conn);
	/*
	 * The connection is closing (peer left, ts_conn_close — also from
	 * inside this protocol's own callbacks —, timeout or shutdown).
	 * Cancel the hook runs you hold (ts_hook_run_cancel); no callback
	 * follows and writes are refused.  Per-connection data is freed
	 * (with its destroy function) later, when the socket is closed.
	 * May be NULL.
	 */
	void (*close)(struct ts_conn *conn);
	/*
	 * TLS is up: after ts_conn_starttls (the protocol resets its state,
	 * as RFC 3207 requires) or ts_conn_starttls_client.  For implicit-TLS
	 * listeners the handshake happens before `open`, and this is not
	 * called.  May be NULL.
	 */
	void (*tls_ready)(struct ts_conn *conn);
	/*
	 * Queued output fell below the low-water mark after having been
	 * above it: a protocol streaming a large body writes its next piece
	 * here (see ts_conn_output_pending).  May be NULL.
	 */
	void (*drained)(struct ts_conn *conn);
	/*
	 * Outbound only: ts_conn_connect could reach none of the addresses;
	 * `error` says why ("connect to [192.0.2.1]:25: connection refused;
	 * …").  The connection is freed after this returns, and neither open
	 * nor close is called.  Also called ("connect: cancelled") when
	 * ts_conn_close is called while still connecting.  Required for
	 * ts_conn_connect.
	 */
	void (*connect_failed)(struct ts_conn *conn, const char *error);
};

/* Unique id within this process, for logs ("conn=17"). */
uint64_t ts_conn_id(const struct ts_conn *conn);
/*
 * The module serving the connection (the owner of its protocol service),
 * so protocol callbacks reach their module's data with ts_ctx_data().
 */
struct ts_ctx *ts_conn_protocol_ctx(const struct ts_conn *conn);
/* Name of the listener that accepted it. */
const char *ts_conn_listener(const struct ts_conn *conn);
/* Numeric addresses ("127.0.0.1", "::1") and ports. */
const char *ts_conn_remote_ip(const struct ts_conn *conn);
unsigned ts_conn_remote_port(const struct ts_conn *conn);
const char *ts_conn_local_ip(const struct ts_conn *conn);
unsigned ts_conn_local_port(const struct ts_conn *conn);

/*
 * Queue bytes to send (copied; through TLS when it is on).  Returns 0,
 * TS_E_STATE once closing, or TS_E_NOMEM when queued output would exceed
 * the listener's memory_budget (the connection is then closed: a peer
 * that does not read cannot make us buffer without end).
 */
int ts_conn_write(struct ts_conn *conn, const void *data, size_t len);
int ts_conn_printf(struct ts_conn *conn, const char *fmt, ...) TS_PRINTF(2, 3);

/* Bytes queued for the peer and not yet handed to the kernel. */
size_t ts_conn_output_pending(const struct ts_conn *conn);

/*
 * Deliver the next `count` input bytes through the protocol's `data`
 * callback instead of as lines (BDAT, literals).  Returns 0, or TS_E_INVAL
 * when the protocol has no data callback.
 */
int ts_conn_read_bytes(struct ts_conn *conn, uint64_t count);

/*
 * Until the first complete line arrives, ask `possible` (NULL: stop
 * asking) whether the bytes received so far (buf, len; not
 * NUL-terminated) can still begin a valid first line; when it says false
 * the connection is closed at once ("first bytes are not this
 * protocol").  Lets a protocol drop a peer speaking something else — a
 * TLS ClientHello on a plain port has no line end to wait for — without
 * waiting for the idle timeout.  Call it from `open`.
 */
void ts_conn_first_line_filter(struct ts_conn *conn,
			       bool (*possible)(const char *buf, size_t len));

/*
 * Stop (or restart) delivering lines, e.g. while a hook is pending; input
 * stays buffered (up to the memory budget).  A peer that leaves while the
 * connection is paused is noticed at once: the connection closes and
 * pending hook runs are cancelled.
 */
void ts_conn_pause(struct ts_conn *conn);
void ts_conn_resume(struct ts_conn *conn);

/*
 * Close after the queued output is sent.  `reason` goes to the log line
 * ("quit", "timeout").  The protocol's close runs later, on the loop.
 */
void ts_conn_close(struct ts_conn *conn, const char *reason);
bool ts_conn_closing(const struct ts_conn *conn);

/*
 * Inside the `line` callback: whether this line ended with a bare LF
 * rather than CRLF (SMTP refuses bare LFs in DATA, for example).
 */
bool ts_conn_line_bare_lf(const struct ts_conn *conn);

/* Why the connection failed or closed ("tls: …", "connect: …"), or NULL. */
const char *ts_conn_error(const struct ts_conn *conn);

/* The `arg` given to ts_conn_connect (outbound), NULL for accepted ones. */
void *ts_conn_arg(const struct ts_conn *conn);

/* --- outbound connections ------------------------------------------- */

struct ts_connect_opts {
	/*
	 * Numeric addresses to try in order (put IPv6 and IPv4 as the caller
	 * prefers); each gets `timeout_ms` (0: 30 s), the next is tried on
	 * failure.
	 */
	const char *const *addresses;
	size_t address_count;
	unsigned port;
	uint64_t timeout_ms;
	size_t max_line;          /* 0: 4096 */
	uint64_t idle_timeout_ms; /* 0: 5 minutes */
	const char *name;         /* label for logs, e.g. "mx.example.org" */
};

/*
 * Connect to the first address that answers and serve the connection with
 * `proto` (whose `open` then runs with a CONTINUE result).  No conn_open
 * hooks run for outbound connections.  Returns the connection at once
 * (connecting), or NULL when opts is unusable.  `arg` is the caller's,
 * available through ts_conn_arg.
 */
struct ts_conn *ts_conn_connect(struct ts_ctx *ctx,
				const struct ts_connect_opts *opts,
				const struct ts_protocol *proto, void *arg);

/*
 * Per-module data on a connection: one slot per module, freed with
 * `destroy` (may be NULL) when the connection goes away.
 */
void ts_conn_set_data(struct ts_conn *conn, const struct ts_ctx *ctx,
		      void *data, void (*destroy)(void *data));
void *ts_conn_data(const struct ts_conn *conn, const struct ts_ctx *ctx);

/* Log a line with conn=ID and the remote address. */
void ts_conn_log(const struct ts_conn *conn, const struct ts_ctx *ctx,
		 enum ts_log_level level, const char *fmt, ...) TS_PRINTF(4, 5);

#ifdef __cplusplus
}
#endif
#endif
