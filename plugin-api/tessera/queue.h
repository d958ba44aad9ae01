/*
 * tessera/queue.h — the outbound queue and the transports that drain it.
 *
 * The kernel keeps a durable queue of messages for remote recipients
 * (SQLite plus one file per message, with the store's fsync discipline):
 * protocol modules hand it a transaction's remote recipients with
 * ts_queue_add and answer their client only when it says the message is
 * safe.  The kernel groups a message's recipients by domain and, when an
 * entry is due, starts one *delivery*: it runs the `queue_route` hooks,
 * which may name a transport instance, and hands the delivery to a
 * service of kind "transport" (struct ts_transport) — "direct" when no
 * route matched.  The transport reports a result per recipient; the
 * kernel records it durably, retries temporary failures with increasing
 * backoff, and sends delivery status notifications (RFC 3464) to the
 * sender's local account.
 *
 * Everything here runs on the event-loop thread unless a comment says
 * otherwise.
 */
#ifndef TESSERA_QUEUE_H
#define TESSERA_QUEUE_H

#include <tessera/common.h>
#include <tessera/hook.h>
#include <tessera/tls.h>
#include <tessera/txn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- adding (protocol modules) ---------------------------------------- */

/*
 * Called once: status 0 means the message and its recipients are
 * durably queued (file and directory fsynced, index committed) under
 * `id`; otherwise nothing was queued (TS_E_IO, TS_E_INVAL).
 */
typedef void (*ts_queue_add_fn)(int status, int64_t id, void *arg);

/*
 * Queue the transaction's recipients without a local account
 * (ts_txn_rcpt()->account == NULL) for remote delivery: its envelope
 * (sender, SMTPUTF8, BODY, REQUIRETLS, RET, ENVID; per recipient NOTIFY
 * and ORCPT), the submitting account (for DSNs and limits) and its
 * message — `prefix` (header lines to put in front, CRLF-terminated, may
 * be NULL) followed by the transaction's spool file, which is linked or
 * copied, never changed.  Returns 0 (fn will be called), TS_E_INVAL when
 * the transaction has no remote recipient or no message, TS_E_STATE when
 * the queue is not running (CLI contexts).
 */
int ts_queue_add(struct ts_ctx *ctx, const struct ts_txn *txn,
		 const char *prefix, ts_queue_add_fn fn, void *arg);

/* --- deliveries (transports) ------------------------------------------ */

struct ts_hook_call;

/*
 * One delivery attempt: one queued message to its pending recipients at
 * one domain.  Owned by the kernel; valid from the transport's `start`
 * until the transport calls ts_delivery_finish (or the kernel calls
 * `cancel`).
 */
struct ts_delivery;

/*
 * The delivery a hook runs for at queue_route (where ts_hook_route picks
 * its transport; a reject or tempfail there fails or defers the delivery
 * with its code and text), outbound_tls_policy and outbound_result; NULL
 * at other points.  The queue_route hooks' arg is the recipient domain.
 */
struct ts_delivery *ts_hook_call_delivery(const struct ts_hook_call *call);

/* Queue id of the message ("17"), for logs. */
const char *ts_delivery_id(const struct ts_delivery *d);
/* The recipients' domain (as queued: A-labels or UTF-8). */
const char *ts_delivery_domain(const struct ts_delivery *d);
/* Which attempt this is for these recipients, from 1. */
unsigned ts_delivery_attempt(const struct ts_delivery *d);
/* The envelope: .address etc. as given to ts_queue_add. */
const struct ts_txn_mail *ts_delivery_mail(const struct ts_delivery *d);
/* The submitting account, or NULL. */
const char *ts_delivery_account(const struct ts_delivery *d);
size_t ts_delivery_rcpt_count(const struct ts_delivery *d);
/* Recipient i (address, localpart, domain, notify, orcpt), NULL past end. */
const struct ts_txn_rcpt *ts_delivery_rcpt(const struct ts_delivery *d,
					   size_t i);

/*
 * Whether the message must travel over verified TLS only (REQUIRETLS
 * given at submission, unless an admin overrode it with `tessera queue
 * requiretls ID no`), and whether it asked for the opposite
 * ("TLS-Required: No", RFC 8689 5).
 */
bool ts_delivery_requiretls(const struct ts_delivery *d);
bool ts_delivery_tls_optional(const struct ts_delivery *d);

/* Size of the whole message (prefix + file). */
uint64_t ts_delivery_size(const struct ts_delivery *d);

/*
 * Open the message for reading: fills *fd_r (the file; the caller closes
 * it) and a malloc'd *prefix_r of *prefix_len_r bytes (the caller frees)
 * to be sent before it.  Blocks: call it from a work-pool function.
 * Returns 0 or TS_E_IO.
 */
int ts_delivery_open(const struct ts_delivery *d, int *fd_r, char **prefix_r,
		     size_t *prefix_len_r);

/*
 * Record what the transport learned of the receiving side, for the
 * sender's account (issue: which domains offer STARTTLS, REQUIRETLS).
 */
void ts_delivery_note_tls(struct ts_delivery *d, const char *host,
			  bool starttls, bool requiretls);

/*
 * The result for recipient i: code 2xx delivered, 4xx try again later,
 * 5xx failed for good; enhanced ("5.1.1") and text (the remote reply or
 * our reason) are kept for the queue listing and DSNs.  `remote` names
 * the host that answered ("mx.example.org [192.0.2.1]") or NULL when the
 * result is ours.  A second result for the same recipient is ignored.
 */
void ts_delivery_rcpt_result(struct ts_delivery *d, size_t i, int code,
			     const char *enhanced, const char *text,
			     const char *remote);

/*
 * End the delivery: every recipient without a result gets this one (as
 * in ts_delivery_rcpt_result).  The delivery is freed; do not touch it
 * afterwards.
 */
void ts_delivery_finish(struct ts_delivery *d, int code, const char *enhanced,
			const char *text, const char *remote);

/*
 * The vtable of a service of kind "transport".  `name` is the service
 * name the module registered ("direct", "smtp", "submission", …); an
 * instance is a `[transport NAME]` section whose `type` names the
 * service (see the transports module), and `instance` is that section's
 * name ("direct" for the default).
 */
struct ts_transport {
	/*
	 * Start delivering d; report with ts_delivery_rcpt_result and end
	 * with ts_delivery_finish, now or later.  ctx is the transport
	 * module's.
	 */
	void (*start)(struct ts_ctx *ctx, const char *instance,
		      struct ts_delivery *d);
	/*
	 * tessera is stopping (or the entry was dropped by an admin): stop
	 * at once and release what d holds; do not call
	 * ts_delivery_finish.  The recipients stay queued.
	 */
	void (*cancel)(struct ts_ctx *ctx, struct ts_delivery *d);
};

/* --- the outbound TLS policy (since ABI 1.2) --------------------------- */

/*
 * What the recipient domain demands of TLS, as the outbound_tls_policy
 * hooks (DANE, MTA-STS, local rules) say.  Without any: opportunistic.
 * REQUIRETLS (RFC 8689) is a property of the message, not of the policy;
 * transports apply both, the stricter winning.
 */
enum ts_tls_policy_mode {
	/* STARTTLS when offered, nothing verified; a failed handshake is
	 * retried in clear (RFC 7435) */
	TS_TLS_POLICY_OPPORTUNISTIC = 0,
	/* STARTTLS required, the certificate verified (PKIX) for the MX
	 * host name, no clear fallback: a host failing it is a temporary
	 * failure (4.7.5) and the next MX is tried (MTA-STS "enforce") */
	TS_TLS_POLICY_REQUIRE_PKIX = 1,
};

/* TLSA records for one MX host (DANE, RFC 7672). */
struct ts_tls_policy_host {
	const char *name; /* the MX host name (A-labels, no trailing dot) */
	const struct ts_tls_tlsa *tlsa;
	size_t tlsa_count;
};

struct ts_tls_policy {
	enum ts_tls_policy_mode mode;
	/*
	 * MX host names allowed, NULL/0 for any: "mx.example.com", or
	 * "*.example.com" for exactly one label more (MTA-STS, RFC 8461
	 * 4.1).  Hosts that match none are not used.
	 */
	const char *const *mx_patterns;
	size_t mx_pattern_count;
	/*
	 * Hosts with TLSA records: TLS is required to them and verified
	 * against these records (DANE), whatever `mode` says; others
	 * follow `mode`.
	 */
	const struct ts_tls_policy_host *hosts;
	size_t host_count;
	/* Who asked ("mta-sts", "dane", …): named in logs and errors. */
	const char *source;
};

/*
 * From an outbound_tls_policy hook (ts_hook_call_delivery gives d): add
 * a policy; everything is copied.  Several hooks combine: the stricter
 * mode wins, MX patterns replace earlier ones when given, hosts add up;
 * sources join with "+".  Returns 0, or TS_E_STATE outside that hook
 * point.
 */
int ts_delivery_set_tls_policy(struct ts_delivery *d,
			       const struct ts_tls_policy *policy);

/*
 * The combined policy (opportunistic, nothing else, when no hook set
 * one).  Owned by the delivery; valid until it ends.
 */
const struct ts_tls_policy *ts_delivery_tls_policy(const struct ts_delivery *d);

/*
 * Called once on the loop when the policy hooks are done: res says
 * continue (the policy is ts_delivery_tls_policy(d)), or a reject or
 * tempfail with code, enhanced code and text, which the transport turns
 * into the delivery's result.
 */
typedef void (*ts_delivery_tls_policy_fn)(struct ts_delivery *d,
					  const struct ts_hook_result *res,
					  void *arg);

/*
 * For transports, before connecting to the recipient domain's hosts:
 * run the outbound_tls_policy hooks (their arg is the recipient domain),
 * then fn.  fn never runs inside this call, and never after the
 * delivery ended (ts_delivery_finish, or the transport's cancel):
 * ending it cancels the hooks.  Returns 0, or TS_E_STATE when hooks are
 * already running for d.
 */
int ts_delivery_run_tls_policy(struct ts_delivery *d,
			       ts_delivery_tls_policy_fn fn, void *arg);

/*
 * A transport's per-delivery state (one slot, no destructor: free it
 * before ts_delivery_finish or in cancel).
 */
void ts_delivery_set_data(struct ts_delivery *d, void *data);
void *ts_delivery_data(const struct ts_delivery *d);

#ifdef __cplusplus
}
#endif
#endif
