/*
 * tessera/txn.h — a mail transaction: envelope, message, results.
 *
 * A protocol module (smtp) creates one transaction per MAIL FROM and
 * fills it in as the client speaks: the reverse path and its parameters
 * (SMTPUTF8, REQUIRETLS, the DSN parameters RET and ENVID), each
 * accepted recipient (with NOTIFY and ORCPT), the spooled message.  Hook
 * functions of the points smtp_mail, smtp_rcpt, smtp_data, deliver_local,
 * submit_message and delivered find it with ts_hook_call_txn() and read
 * it; checks (spf, dkim, dmarc, iprev) attach their typed results to it,
 * later hooks read those, and the protocol writes one
 * Authentication-Results header from them (RFC 8601).  The outbound queue
 * keeps the envelope of a queued message from here.
 *
 * The kernel owns the object; the protocol module that created it frees
 * it.  Strings returned by the accessors live as long as the transaction
 * (or until the setter that replaces them).  Everything here runs on the
 * event-loop thread.
 */
#ifndef TESSERA_TXN_H
#define TESSERA_TXN_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ts_conn;
struct ts_hook_call;

/* BODY= of MAIL FROM (RFC 6152, RFC 3030). */
enum ts_txn_body {
	TS_BODY_UNSET = 0,
	TS_BODY_7BIT,
	TS_BODY_8BITMIME,
	TS_BODY_BINARYMIME,
};

/* RET= of MAIL FROM (RFC 3461 4.3). */
enum ts_dsn_ret {
	TS_DSN_RET_UNSET = 0,
	TS_DSN_RET_FULL,
	TS_DSN_RET_HDRS,
};

/* NOTIFY= bits of RCPT TO (RFC 3461 4.1); 0 when absent. */
#define TS_DSN_NOTIFY_NEVER 0x1u
#define TS_DSN_NOTIFY_SUCCESS 0x2u
#define TS_DSN_NOTIFY_FAILURE 0x4u
#define TS_DSN_NOTIFY_DELAY 0x8u

/* The reverse path and its parameters. */
struct ts_txn_mail {
	/* "user@example.org" without brackets, "" for the null sender <> */
	const char *address;
	const char *localpart; /* unquoted; "" for <> */
	const char *domain; /* as written (A-labels or UTF-8); "" for <> */
	bool smtputf8; /* SMTPUTF8 given */
	bool requiretls; /* REQUIRETLS given (RFC 8689) */
	enum ts_txn_body body;
	enum ts_dsn_ret ret;
	const char *envid; /* ENVID= decoded, or NULL */
};

/* One accepted recipient. */
struct ts_txn_rcpt {
	const char *address; /* "user@example.org" without brackets */
	const char *localpart; /* unquoted */
	const char *domain;
	unsigned notify; /* TS_DSN_NOTIFY_* bits, 0 when absent */
	const char *orcpt_type; /* ORCPT address type ("rfc822"), or NULL */
	const char *orcpt; /* ORCPT address, decoded, or NULL */
	const char *account; /* the local account receiving it, or NULL */
	const char *mailbox; /* its destination mailbox, or NULL */
};

/* One authentication result (RFC 8601 resinfo). */
struct ts_auth_prop {
	const char *name; /* "smtp.mailfrom", "header.d", "header.s", … */
	const char *value;
};

#define TS_AUTH_PROP_MAX 8

struct ts_auth_result {
	const char *method; /* "spf", "dkim", "dmarc", "iprev", "auth" */
	const char *result; /* "pass", "fail", "softfail", "none", … */
	const char *reason; /* free text for reason=, or NULL */
	const char *comment; /* e.g. "dnssec" or "key 1024 bits", or NULL */
	struct ts_auth_prop props[TS_AUTH_PROP_MAX];
	size_t prop_count;
};

struct ts_txn;

/* --- for protocol modules ----------------------------------------------- */

/*
 * A new, empty transaction on `conn` (may be NULL for locally submitted
 * mail) with the id used in logs and the Received header (copied).  Free
 * with ts_txn_free.
 */
struct ts_txn *ts_txn_new(struct ts_conn *conn, const char *id);

/*
 * Free a transaction: every module's data destructor runs (see
 * ts_txn_set_data), then the object goes.  Sets *txn to NULL; NULL is
 * fine.
 */
void ts_txn_free(struct ts_txn **txn);

/* Set the envelope (all strings copied).  Replaces an earlier one. */
void ts_txn_set_helo(struct ts_txn *txn, const char *helo);
void ts_txn_set_account(struct ts_txn *txn, const char *account);
void ts_txn_set_mail(struct ts_txn *txn, const struct ts_txn_mail *mail);

/* Append a recipient (copied); returns its index. */
size_t ts_txn_add_rcpt(struct ts_txn *txn, const struct ts_txn_rcpt *rcpt);
/* Remove the last recipient (one its RCPT hooks refused). */
void ts_txn_drop_last_rcpt(struct ts_txn *txn);
/* Change the destination mailbox of recipient i (a hook's verdict). */
void ts_txn_set_rcpt_mailbox(struct ts_txn *txn, size_t i,
			     const char *mailbox);

/*
 * The spooled message: a complete RFC 5322 message in `path` (the file
 * stays the protocol's; the kernel neither changes nor removes it) of
 * `size` bytes.
 */
void ts_txn_set_message(struct ts_txn *txn, const char *path, uint64_t size);

/*
 * Add a header line ("Name: value", without CRLF; copied) to those that
 * will be put in front of the message, in call order.  Protocols add the
 * headers hooks asked for (ts_hook_add_header) and their own (Date,
 * Message-ID on submission).
 */
void ts_txn_add_header(struct ts_txn *txn, const char *line);

/* --- for everyone -------------------------------------------------------- */

/*
 * The transaction a hook runs for, or NULL at points without one
 * (conn_open, smtp_helo, auth, outbound and store points).
 */
struct ts_txn *ts_hook_call_txn(const struct ts_hook_call *call);

const char *ts_txn_id(const struct ts_txn *txn);
/* The client connection, or NULL. */
struct ts_conn *ts_txn_conn(const struct ts_txn *txn);
/* The EHLO/HELO name, or NULL. */
const char *ts_txn_helo(const struct ts_txn *txn);
/* The authenticated account, or NULL for an anonymous client. */
const char *ts_txn_account(const struct ts_txn *txn);
/* The reverse path, or NULL before ts_txn_set_mail. */
const struct ts_txn_mail *ts_txn_mail(const struct ts_txn *txn);
size_t ts_txn_rcpt_count(const struct ts_txn *txn);
/* Recipient i, or NULL past the end. */
const struct ts_txn_rcpt *ts_txn_rcpt(const struct ts_txn *txn, size_t i);
/* The spooled message's path, or NULL before the message is complete. */
const char *ts_txn_message_path(const struct ts_txn *txn);
uint64_t ts_txn_message_size(const struct ts_txn *txn);
size_t ts_txn_header_count(const struct ts_txn *txn);
/* Added header line i ("Name: value"), or NULL past the end. */
const char *ts_txn_header(const struct ts_txn *txn, size_t i);

/*
 * Attach an authentication result (every string copied).  method and
 * result must be RFC 8601 tokens (letters, digits, '-', '_', '.'); a
 * property name is a token with one dot ("smtp.mailfrom").  Returns 0,
 * or TS_E_INVAL (and attaches nothing) for a malformed one.
 */
int ts_txn_add_auth_result(struct ts_txn *txn,
			   const struct ts_auth_result *result);
size_t ts_txn_auth_result_count(const struct ts_txn *txn);
/* Result i in attach order, or NULL past the end. */
const struct ts_auth_result *ts_txn_auth_result(const struct ts_txn *txn,
						size_t i);

/*
 * The Authentication-Results header line (RFC 8601) for the attached
 * results, "Authentication-Results: AUTHSERV-ID;" followed by each
 * result, folded with CRLF + tab between results, without a final CRLF;
 * "AUTHSERV-ID; none" when there are none.  Values that are not tokens
 * are quoted.  The caller frees.
 */
char *ts_txn_auth_results_header(const struct ts_txn *txn,
				 const char *authserv_id);

/*
 * A module's private data on the transaction: one slot per module,
 * `destroy` (may be NULL) runs when the transaction is freed or the slot
 * is set again.
 */
void ts_txn_set_data(struct ts_txn *txn, const struct ts_ctx *ctx,
		     void *data, void (*destroy)(void *data));
void *ts_txn_data(const struct ts_txn *txn, const struct ts_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
