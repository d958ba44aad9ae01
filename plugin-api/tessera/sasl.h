/*
 * tessera/sasl.h — server-side SASL for protocol modules: which mechanisms
 * to advertise, one authentication exchange at a time, and the base64 that
 * carries it on the wire; and client-side SASL (at the end) for when
 * tessera itself logs in to another server.
 *
 * The kernel implements PLAIN (RFC 4616), LOGIN (the de-facto
 * "Username:"/"Password:" exchange), CRAM-MD5 (RFC 2195), SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) and their -PLUS variants with channel
 * binding (tls-exporter, RFC 9266; tls-unique, RFC 5929), checked against
 * the account secrets of tessera/store.h.  A protocol module (SMTP AUTH,
 * IMAP AUTHENTICATE) only frames the exchange: it decodes the client's
 * base64, feeds it to ts_sasl_step, and sends what the callback hands back.
 *
 * Everything here runs on the loop thread.  Failures are uniform: a wrong
 * password and an unknown user look the same to the client, in the answer
 * and in the shape of the exchange (SCRAM hands out a made-up salt for an
 * unknown user and fails only at the end).
 */
#ifndef TESSERA_SASL_H
#define TESSERA_SASL_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The mechanisms to advertise, best first, space separated (a static
 * string): "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1
 * CRAM-MD5 PLAIN LOGIN".  The -PLUS ones only with channel_binding (the
 * connection can give channel-binding data, see ts_sasl_opts); PLAIN and
 * LOGIN, which send the password itself, only when tls_active or
 * allow_plaintext.  Whether to offer authentication at all before TLS is
 * the protocol's decision (e.g. SMTP submission does not).
 */
const char *ts_sasl_mechanisms(bool tls_active, bool channel_binding,
			       bool allow_plaintext);

/* What one step of an exchange ended with. */
enum ts_sasl_status {
	/* Send the challenge and feed the client's answer to ts_sasl_step. */
	TS_SASL_CONTINUE,
	/*
	 * Authenticated as ts_sasl_account().  A non-empty challenge (SCRAM's
	 * server-final message, "v=…") must still reach the client in the
	 * way the protocol prescribes for additional data with success
	 * (SMTP: RFC 4954 section 4; IMAP: RFC 9051 section 6.2.2), e.g. as
	 * a last challenge whose empty answer precedes the success reply.
	 */
	TS_SASL_OK,
	/*
	 * Wrong credentials, an unknown user, a refused authorization
	 * identity, a failed channel binding or a downgrade attempt: one
	 * answer for all, so a client cannot tell which.  No challenge.
	 */
	TS_SASL_FAIL,
	/*
	 * Malformed exchange (bad syntax, a response the mechanism does not
	 * take, an unsupported channel-binding type); ts_sasl_error() says
	 * why, for logs.  No challenge.
	 */
	TS_SASL_ERROR,
	/*
	 * The secrets could not be read (store I/O error, shutting down):
	 * try again later (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE]).
	 */
	TS_SASL_TEMPFAIL,
};

/* One exchange; opaque. */
struct ts_sasl;

/*
 * Called with each step's outcome on the loop thread: sometimes before
 * ts_sasl_step returns (when no secret is needed), otherwise later, once
 * the store answered.  challenge (len bytes, not base64-encoded) stays
 * valid until the callback returns; base64 it for the wire (it may be
 * empty: an empty challenge, "334 " in SMTP, "+ " in IMAP).  The callback
 * may call ts_sasl_free on s.
 */
typedef void (*ts_sasl_fn)(struct ts_sasl *s, enum ts_sasl_status status,
			   const uint8_t *challenge, size_t len, void *arg);

/* How an exchange starts; ts_sasl_new copies what it needs. */
struct ts_sasl_opts {
	/* The mechanism the client chose, case-insensitive ("scram-sha-1"). */
	const char *mechanism;
	/* TLS is up on the connection (ts_conn_tls_active). */
	bool tls_active;
	/* Allow PLAIN and LOGIN without TLS (a listener's explicit choice). */
	bool allow_plaintext;
	/*
	 * Channel binding of this TLS session, as ts_conn_tls_channel_binding
	 * gives it: type "tls-exporter" (TLS 1.3) or "tls-unique" (TLS 1.2),
	 * and its data.  NULL/0 when there is none; then the -PLUS
	 * mechanisms are unavailable.  Give it whenever it exists, also
	 * for a non-PLUS mechanism: it means the -PLUS ones were advertised,
	 * so a SCRAM client saying "y" (it could do channel binding but
	 * believes the server cannot) reveals a downgrade and fails.
	 */
	const char *cb_type;
	const uint8_t *cb_data;
	size_t cb_len;
	/* This server's name, for the CRAM-MD5 challenge; NULL: "localhost". */
	const char *hostname;
};

/*
 * Start an exchange with the mechanism opts->mechanism.  fn reports each
 * step's outcome (see ts_sasl_fn) with arg.  Returns NULL when the
 * mechanism is unknown or not available under opts (PLAIN/LOGIN without
 * TLS and without allow_plaintext, -PLUS without channel-binding data):
 * the protocol then answers as for an unsupported mechanism.  Free with
 * ts_sasl_free.
 */
struct ts_sasl *ts_sasl_new(struct ts_ctx *ctx, const struct ts_sasl_opts *opts,
			    ts_sasl_fn fn, void *arg);

/*
 * Feed the client's next response, already base64-decoded (see
 * ts_base64_decode).  The first call passes the initial response (SMTP's
 * AUTH argument, IMAP's SASL-IR), or nothing (len 0) when the client sent
 * none; an empty initial response ("=") is taken the same way, and the
 * mechanism answers with its first challenge (empty for PLAIN and SCRAM).
 * The outcome arrives through fn, exactly once per accepted step.
 * Responses longer than 4096 bytes are an error.  Returns 0 when the step
 * was accepted (fn may already have run and freed s: do not touch s
 * after a 0 unless you know fn did not), or TS_E_STATE when the previous
 * step is still waiting for the store or the exchange is over (fn is not
 * called).
 */
int ts_sasl_step(struct ts_sasl *s, const uint8_t *data, size_t len);

/* The mechanism's canonical (upper-case) name. */
const char *ts_sasl_mechanism(const struct ts_sasl *s);

/*
 * The authentication identity the client gave (user name or address,
 * for logs and the auth hook), whatever the outcome; NULL until the
 * client has named one.
 */
const char *ts_sasl_username(const struct ts_sasl *s);

/* The authenticated account's name after TS_SASL_OK, otherwise NULL. */
const char *ts_sasl_account(const struct ts_sasl *s);

/*
 * Why the exchange ended with TS_SASL_ERROR, TS_SASL_FAIL or
 * TS_SASL_TEMPFAIL ("malformed SCRAM client-first message: missing
 * nonce"), for logs only: never send it to the client.  NULL otherwise.
 */
const char *ts_sasl_error(const struct ts_sasl *s);

/*
 * Abandon the exchange (the client sent "*", or the connection closed):
 * a pending store lookup is forgotten and fn will not be called again.
 * Further steps return TS_E_STATE.
 */
void ts_sasl_cancel(struct ts_sasl *s);

/*
 * Cancel and free the exchange, wiping its secrets; sets *s to NULL.  Safe
 * with a store lookup pending and inside fn.  NULL and *s == NULL are fine.
 */
void ts_sasl_free(struct ts_sasl **s);

/*
 * Standard base64 (RFC 4648 section 4, with padding) of len bytes, as a
 * NUL-terminated string the caller frees; "" for len 0.
 */
char *ts_base64_encode(const uint8_t *data, size_t len);

/*
 * Decode NUL-terminated base64, strictly: only the RFC 4648 alphabet,
 * no whitespace, correct padding, unused bits zero.  "" and "=" both
 * decode to zero bytes ("=" is RFC 4954's empty initial response).  On
 * success returns 0 with *data_r (caller frees; a NUL follows the len_r
 * bytes, not counted) and *len_r; otherwise TS_E_INVAL and *data_r NULL.
 */
int ts_base64_decode(const char *text, uint8_t **data_r, size_t *len_r);

/* --- the client side ------------------------------------------------- */

/*
 * Client-side SASL, for when tessera authenticates to another server (a
 * smarthost through the transports module, `tessera sendmail`).  A pure
 * state machine, one per exchange, usable on any thread: the caller
 * frames the exchange for its protocol (SMTP "AUTH mech initial", "334
 * challenge", "235"), decodes each challenge from base64 and encodes
 * each response.  For SCRAM the server's signature is checked: only
 * ts_sasl_client_complete() says the server proved it knows the password.
 */

/*
 * The best mechanism in `offered` (the server's space-separated list,
 * case-insensitive) that this client can use, as a static canonical
 * name, or NULL: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS,
 * SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN in that order; -PLUS only with
 * channel_binding; PLAIN and LOGIN only when tls_active or
 * allow_plaintext.
 */
const char *ts_sasl_client_choose(const char *offered, bool tls_active,
				  bool channel_binding, bool allow_plaintext);

/* How a client exchange starts; ts_sasl_client_new copies everything. */
struct ts_sasl_client_opts {
	/* PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1[-PLUS], SCRAM-SHA-256[-PLUS]. */
	const char *mechanism;
	const char *username; /* authentication identity, UTF-8 */
	const char *password;
	const char *authzid; /* act for this identity; NULL or "": none */
	bool tls_active; /* PLAIN and LOGIN need it… */
	bool allow_plaintext; /* …unless this says otherwise */
	/*
	 * Channel binding of the connection (ts_conn_tls_channel_binding),
	 * or NULL.  Required for -PLUS.  For a SCRAM mechanism without
	 * -PLUS, give it only when the server did not offer a -PLUS one:
	 * the client then says "y" (RFC 5802 6), and a server that did
	 * offer -PLUS takes that as a downgrade and fails the exchange.
	 */
	const char *cb_type;
	const uint8_t *cb_data;
	size_t cb_len;
};

struct ts_sasl_client;

/*
 * A new exchange, or NULL with *error_r (a static text) for an unknown
 * mechanism, PLAIN/LOGIN without TLS, -PLUS without channel binding, or
 * an empty user name or password.  Free with ts_sasl_client_free.
 */
struct ts_sasl_client *
ts_sasl_client_new(const struct ts_sasl_client_opts *opts,
		   const char **error_r);

/*
 * One step.  The first call (challenge NULL, len 0) builds the initial
 * response: *resp_r is NULL when the mechanism has none (LOGIN,
 * CRAM-MD5: send "AUTH mech" alone), otherwise the bytes to send with
 * the command ("AUTH PLAIN base64").  Each later call takes a decoded
 * server challenge and gives the decoded response (possibly empty:
 * "" on the wire, e.g. after SCRAM's server-final "v=…").  *resp_r is
 * malloc'd (caller frees, wipe it: it may hold the password).  Returns 0,
 * TS_E_INVAL for a malformed or unexpected challenge or a wrong SCRAM
 * server signature (ts_sasl_client_error says which; the caller cancels
 * the exchange with "*"), TS_E_STATE after a failure.
 */
int ts_sasl_client_step(struct ts_sasl_client *c, const uint8_t *challenge,
			size_t len, uint8_t **resp_r, size_t *len_r);

/*
 * Additional data the server sent with its success (IMAP "OK" with a
 * final challenge; SMTP sends it as a last 334 instead): for SCRAM the
 * server-final message, which is checked.  0 or TS_E_INVAL as above.
 */
int ts_sasl_client_success_data(struct ts_sasl_client *c, const uint8_t *data,
				size_t len);

/*
 * Whether the client has done its part and, for SCRAM, verified the
 * server's signature.  When the server reports success while this is
 * false, do not trust the connection (treat it as a failure).
 */
bool ts_sasl_client_complete(const struct ts_sasl_client *c);

/* The mechanism's canonical (upper-case) name. */
const char *ts_sasl_client_mechanism(const struct ts_sasl_client *c);

/* Why the exchange failed (static text, no secrets), or NULL. */
const char *ts_sasl_client_error(const struct ts_sasl_client *c);

/* Free and wipe the exchange; sets *c to NULL; NULL is fine. */
void ts_sasl_client_free(struct ts_sasl_client **c);

#ifdef __cplusplus
}
#endif
#endif
