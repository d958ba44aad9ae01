/*
 * tessera/hook.h — the mail pipeline: hook points, verdicts, async hooks.
 *
 * A module adds a hook function to a hook point with a priority.  When a
 * protocol module (or the kernel) runs a point, the hooks are called in
 * priority order — lower numbers first, ties by module load order and then
 * registration order.  Each returns at once with TS_HOOK_CONTINUE, with a
 * final verdict (TS_HOOK_DONE after calling one of the verdict setters), or
 * TS_HOOK_PENDING after ts_hook_suspend(), resuming later with
 * ts_hook_resume().  The first final verdict ends the run.
 *
 * Consecutive hooks flagged TS_HOOK_PARALLEL (read-only checks such as SPF
 * and DKIM) are started together so their waits overlap; their results are
 * merged in priority order: the first reject wins, then the first tempfail,
 * then the first other final verdict.  Headers and delays accumulate.
 *
 * Everything here runs on the event-loop thread.
 */
#ifndef TESSERA_HOOK_H
#define TESSERA_HOOK_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ts_conn;

/* Hook points, in pipeline order. */
enum ts_hook_point {
	TS_HOOK_CONN_OPEN, /* before the greeting; subject NULL */
	TS_HOOK_SMTP_HELO, /* arg: the EHLO/HELO name */
	TS_HOOK_AUTH, /* arg: the SASL mechanism; attempt and result */
	/*
	 * From here to submit_message the subject is the transaction
	 * (struct ts_txn, see tessera/txn.h and ts_hook_call_txn).
	 */
	TS_HOOK_SMTP_MAIL, /* arg: the reverse path */
	TS_HOOK_SMTP_RCPT, /* arg: the forward path (the txn's last rcpt) */
	TS_HOOK_SMTP_DATA, /* arg: the spool file; the message is complete */
	TS_HOOK_DELIVER_LOCAL, /* per recipient (arg): choose the mailbox */
	TS_HOOK_DELIVERED, /* arg: the queue id; the message is stored */
	TS_HOOK_SUBMIT_MESSAGE, /* submission: Date, Message-ID, signing */
	TS_HOOK_QUEUE_ROUTE, /* outbound: choose the transport */
	TS_HOOK_OUTBOUND_TLS_POLICY, /* outbound: DANE, MTA-STS, REQUIRETLS */
	TS_HOOK_OUTBOUND_RESULT, /* outbound: outcome of an attempt */
	TS_HOOK_STORE_CHANGE, /* store: flags changed, message moved */
	TS_HOOK_POINT_COUNT
};

/* Lower-case name of a point ("smtp_rcpt"), or NULL if out of range. */
const char *ts_hook_point_name(enum ts_hook_point point);
/* Inverse of ts_hook_point_name; 0 or TS_E_NOTFOUND. */
int ts_hook_point_parse(const char *name, enum ts_hook_point *point_r);

/* What a hook function returns. */
enum ts_hook_rc {
	TS_HOOK_CONTINUE = 0, /* no opinion: go on with the next hook */
	TS_HOOK_DONE = 1, /* a final verdict was set on the call */
	TS_HOOK_PENDING = 2, /* ts_hook_suspend() was called; resume later */
};

/* The outcome of a run. */
enum ts_verdict {
	TS_VERDICT_CONTINUE = 0, /* nobody objected */
	TS_VERDICT_ACCEPT, /* accepted; later hooks skipped */
	TS_VERDICT_REJECT, /* permanent refusal (5xx) */
	TS_VERDICT_TEMPFAIL, /* temporary refusal (4xx) */
	TS_VERDICT_MAILBOX, /* deliver to the named mailbox (Junk, …) */
	TS_VERDICT_ROUTE, /* queue_route: deliver through this transport */
};

const char *ts_verdict_name(enum ts_verdict verdict);

/* One invocation of one hook function; owned by the kernel. */
struct ts_hook_call;

typedef int (*ts_hook_fn)(struct ts_hook_call *call);

/* Flags for ts_hook_add. */
#define TS_HOOK_PARALLEL 0x1u /* read-only check: may overlap its peers */

#define TS_HOOK_PRIO_MIN (-100)
#define TS_HOOK_PRIO_MAX 100

/*
 * Add fn to a point.  Only during init.  Returns 0, TS_E_INVAL for a bad
 * point or priority, TS_E_STATE after init.
 */
int ts_hook_add(struct ts_ctx *ctx, enum ts_hook_point point, ts_hook_fn fn,
		int prio, unsigned flags);

/* --- inside a hook function ------------------------------------------ */

/* The module that added the hook (for ts_ctx_data and logging). */
struct ts_ctx *ts_hook_call_ctx(const struct ts_hook_call *call);
enum ts_hook_point ts_hook_call_point(const struct ts_hook_call *call);
/* The connection the run belongs to, or NULL (queue, store). */
struct ts_conn *ts_hook_call_conn(const struct ts_hook_call *call);
/* The point-specific object (see enum ts_hook_point), or NULL. */
void *ts_hook_call_subject(const struct ts_hook_call *call);
/* The point-specific text (see enum ts_hook_point), or NULL. */
const char *ts_hook_call_arg(const struct ts_hook_call *call);

/*
 * Verdict setters.  Each returns TS_HOOK_DONE, so a hook can write
 * `return ts_hook_reject(call, 550, "5.7.1", "relaying denied");`.
 * code 0 and enhanced NULL pick the protocol's defaults; text is copied.
 */
int ts_hook_accept(struct ts_hook_call *call);
int ts_hook_reject(struct ts_hook_call *call, int code, const char *enhanced,
		   const char *fmt, ...) TS_PRINTF(4, 5);
int ts_hook_tempfail(struct ts_hook_call *call, int code, const char *enhanced,
		     const char *fmt, ...) TS_PRINTF(4, 5);
int ts_hook_deliver_to(struct ts_hook_call *call, const char *mailbox);
/*
 * At queue_route: deliver through `instance` of the transport service
 * `service` (kind "transport"; e.g. "smtp", "relay1").  Both copied.
 */
int ts_hook_route(struct ts_hook_call *call, const char *service,
		  const char *instance);

/*
 * Non-final effects, kept whatever the hook returns: ask the protocol to
 * wait before answering (delays add up), add a header to the message (in
 * the order hooks ran), and give a short reason code for logs ("spf-fail").
 */
void ts_hook_delay(struct ts_hook_call *call, uint64_t ms);
void ts_hook_add_header(struct ts_hook_call *call, const char *name,
			const char *value);
void ts_hook_reason(struct ts_hook_call *call, const char *reason);

/* --- asynchronous hooks -------------------------------------------- */

/*
 * A resume token: a number, not a pointer, so a stale one is harmless.
 * 0 is never a valid token.
 */
typedef uint64_t ts_hook_token;

/*
 * Called instead of a verdict when the call ends before the hook resumed
 * it: the client left, the run was cancelled, or the hook timed out
 * ([core] hook_timeout; the kernel logs an error naming module and point
 * and answers tempfail).  Release what the pending work holds; the token
 * is already stale.
 */
typedef void (*ts_hook_cancel_fn)(void *arg);

/*
 * Suspend the call: return TS_HOOK_PENDING right after.  `cancel` may be
 * NULL.  The call object stays valid until resumed, cancelled or timed out.
 */
ts_hook_token ts_hook_suspend(struct ts_hook_call *call,
			      ts_hook_cancel_fn cancel, void *arg);

/* The pending call a token names, or NULL when it is stale. */
struct ts_hook_call *ts_hook_lookup(struct ts_ctx *ctx, ts_hook_token token);

/*
 * Resume a suspended call with rc (TS_HOOK_CONTINUE, or TS_HOOK_DONE after
 * a verdict setter on ts_hook_lookup()'s call).  Returns 0, or
 * TS_E_STALE when the token was already resumed, cancelled or timed out —
 * such a resume is ignored.  The pipeline may continue before this returns.
 */
int ts_hook_resume(struct ts_ctx *ctx, ts_hook_token token, int rc);

/* --- running a point (protocol modules) ----------------------------- */

struct ts_hook_result {
	enum ts_verdict verdict;
	int code; /* reply code for reject/tempfail, or 0 */
	const char *enhanced; /* "5.7.1" or NULL */
	const char *text; /* reply text or NULL */
	const char *mailbox; /* for TS_VERDICT_MAILBOX */
	const char *module; /* who set the verdict, or NULL */
	const char *reason; /* reason code for logs, or NULL */
	uint64_t delay_ms; /* total requested delay */
	size_t header_count;
	const char *const *headers; /* "Name: value", without CRLF */
	/* For TS_VERDICT_ROUTE: the transport service and instance. */
	const char *route_service, *route_instance;
};

struct ts_hook_args {
	struct ts_conn *conn; /* may be NULL; a closing conn cancels the run */
	void *subject;
	const char *arg;
};

struct ts_hook_run;

/*
 * Called once with the merged result; the result and the run are freed
 * when it returns, so copy what you keep.
 */
typedef void (*ts_hook_done_fn)(const struct ts_hook_result *result, void *arg);

/*
 * Run every hook of a point.  `done` may be called before this returns;
 * then the return value is NULL.  Otherwise it returns the pending run,
 * which ts_hook_run_cancel() abandons (done is then never called).
 */
struct ts_hook_run *ts_hook_run(struct ts_ctx *ctx, enum ts_hook_point point,
				const struct ts_hook_args *args,
				ts_hook_done_fn done, void *arg);

/*
 * Abandon a pending run: pending hooks get their cancel callback, done is
 * not called.  Sets *run to NULL; a NULL *run is allowed.
 */
void ts_hook_run_cancel(struct ts_hook_run **run);

#ifdef __cplusplus
}
#endif
#endif
