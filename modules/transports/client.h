/*
 * modules/transports/client.h — the SMTP client as a pure state machine.
 *
 * One struct tr_client speaks one SMTP session with one server for one
 * delivery (RFC 5321 with EHLO, STARTTLS, PIPELINING, SIZE, 8BITMIME,
 * BINARYMIME, CHUNKING, SMTPUTF8, DSN, REQUIRETLS, ENHANCEDSTATUSCODES).
 * It touches no socket, no timer and no file: the caller feeds it the
 * server's reply lines (tr_client_line), the end of a TLS handshake, the
 * message bytes and failures (connection lost, timeout), and after each
 * call takes the bytes to send (tr_client_output) and looks at what the
 * machine asks for next (tr_client_want).  Per-recipient results collect
 * in the machine (tr_client_result) until it is done.  transports.c is
 * the thin layer that connects it to a ts_conn; tests drive it directly
 * with tables of server lines and expected client output.
 */
#ifndef TRANSPORTS_CLIENT_H
#define TRANSPORTS_CLIENT_H

#include <tessera/common.h>
#include <tessera/txn.h>

/* Longest reply line we accept (RFC 5321 4.5.3.1.5 says 512 with CRLF;
 * real servers exceed it a little, so allow twice that). */
#define TR_REPLY_LINE_MAX 1024
/* Most lines in one multi-line reply (a long EHLO list is ~30). */
#define TR_REPLY_LINES_MAX 200

/* Capabilities from the EHLO reply. */
enum tr_cap {
	TR_CAP_STARTTLS = 1u << 0,
	TR_CAP_PIPELINING = 1u << 1,
	TR_CAP_SIZE = 1u << 2,
	TR_CAP_8BITMIME = 1u << 3,
	TR_CAP_SMTPUTF8 = 1u << 4,
	TR_CAP_CHUNKING = 1u << 5,
	TR_CAP_DSN = 1u << 6,
	TR_CAP_REQUIRETLS = 1u << 7,
	TR_CAP_ENHANCEDSTATUSCODES = 1u << 8,
	TR_CAP_BINARYMIME = 1u << 9,
	TR_CAP_AUTH = 1u << 10,
};

/* What the caller must do after a call into the machine. */
enum tr_want {
	TR_WANT_REPLY, /* send the output, then wait for server lines */
	TR_WANT_STARTTLS, /* send the output, then start TLS (client side) */
	TR_WANT_BODY, /* send the output, then feed message bytes */
	TR_WANT_CLOSE, /* send the output (QUIT, maybe), then close */
	/* keep_open: the transaction is over and the session healthy;
	 * tr_client_reuse starts the next one, tr_client_quit ends it */
	TR_WANT_IDLE,
};

/* How the session must use TLS. */
enum tr_tls_mode {
	TR_TLS_NEVER, /* do not even try STARTTLS */
	TR_TLS_OPPORTUNISTIC, /* STARTTLS when offered, verify nothing */
	/* RFC 8689: STARTTLS with PKIX verification and the peer's
	 * REQUIRETLS capability, or fail the recipients with 5.7.10 */
	TR_TLS_REQUIRETLS,
	/* A relay: STARTTLS must be offered and work, or the host fails
	 * with 4.7.5 (the caller chooses the certificate check) */
	TR_TLS_REQUIRED,
};

/*
 * Client authentication (RFC 4954) after EHLO (under TLS when TLS is
 * used), before MAIL.  The machine frames the exchange; the callbacks
 * (the SASL client, in the caller) make its content.  A "why" text is
 * static or lives until the next callback.
 */
struct tr_client_auth {
	/*
	 * Choose a mechanism from the EHLO AUTH list `offered` (possibly
	 * empty) and start: 0 with *command_r, the whole command without
	 * CRLF ("AUTH SCRAM-SHA-256 biws…", malloc'd), or an error with
	 * *why_r (the host fails with 4.7.0).
	 */
	int (*begin)(void *arg, const char *offered, bool tls_on,
		     char **command_r, const char **why_r);
	/*
	 * A 334 challenge (its base64 text): 0 with *response_r (base64,
	 * malloc'd, no CRLF), or an error with *why_r: the machine cancels
	 * with "*" and the host fails.
	 */
	int (*step)(void *arg, const char *challenge, char **response_r,
		    const char **why_r);
	/* 235: 0 when our side is satisfied (SCRAM: server verified). */
	int (*success)(void *arg, const char **why_r);
	void *arg;
};

/* The timeout that applies while waiting now (RFC 5321 4.5.3.2). */
enum tr_timeout_kind {
	TR_TIMEOUT_COMMAND, /* greeting, EHLO, MAIL, RCPT, DATA, BDAT… */
	TR_TIMEOUT_FINAL, /* the reply to the end of the data (10 min) */
};

/* A result for one recipient, or for all. */
struct tr_result {
	int code; /* 0: none yet; 2xx, 4xx, 5xx */
	char enhanced[16]; /* "5.1.1" */
	char *text; /* reply text or our reason (malloc'd) */
	bool remote; /* the server said it (else: our own reason) */
};

struct tr_client_params {
	const char *helo_name; /* our name for EHLO/HELO */
	const struct ts_txn_mail *mail;
	const struct ts_txn_rcpt *const *rcpts; /* not copied: must outlive */
	size_t rcpt_count;
	uint64_t size; /* message size in bytes (for SIZE=) */
	enum tr_tls_mode tls;
	/* Under TLS already (the caller wants no STARTTLS), e.g. a retry,
	 * or implicit TLS (the handshake runs before the greeting). */
	bool tls_active;
	/* Authenticate before MAIL; NULL: never.  Not copied. */
	const struct tr_client_auth *auth;
	/*
	 * With TR_TLS_REQUIRED: who requires TLS, for the failure text
	 * ("this transport", "the TLS policy (mta-sts)"); NULL: "this
	 * transport".  Not copied.
	 */
	const char *tls_required_by;
	/*
	 * Keep the session after the transaction (connection reuse):
	 * instead of QUIT the machine goes idle (TR_WANT_IDLE).  Only when
	 * nothing went wrong with the host itself.
	 */
	bool keep_open;
};

struct tr_client;

/*
 * A new machine, waiting for the server's greeting; nothing to send yet.
 * The params' strings are used, not copied: they must outlive it.
 */
struct tr_client *tr_client_new(const struct tr_client_params *params);
/*
 * Idle (TR_WANT_IDLE): start another transaction on the same session
 * with params' mail, rcpts, rcpt_count and size (the rest stays as it
 * was; nothing is copied).  The old results are dropped.  RSET goes out
 * first; if it is refused the host fails (tr_client_host_failed), and
 * the caller should connect afresh.  Returns what to do next.
 */
enum tr_want tr_client_reuse(struct tr_client *c,
			     const struct tr_client_params *params);
/* Idle: end the session with QUIT (then wait for the reply, close). */
enum tr_want tr_client_quit(struct tr_client *c);
/* Whether the machine is idle between transactions. */
bool tr_client_idle(const struct tr_client *c);

/* Free it and its results; sets *c to NULL; NULL is fine. */
void tr_client_free(struct tr_client **c);

/*
 * Feed one server line without its CRLF (len bytes; NULs inside make it
 * malformed).  Returns what to do next.
 */
enum tr_want tr_client_line(struct tr_client *c, const char *line, size_t len);
/* The server sent a line longer than the connection's limit. */
enum tr_want tr_client_line_too_long(struct tr_client *c);

/* TLS is up after TR_WANT_STARTTLS: the machine sends EHLO again. */
enum tr_want tr_client_tls_ready(struct tr_client *c);

/*
 * Whether the machine takes message bytes now (TR_WANT_BODY given and
 * not yet ended; false while a BDAT reply is awaited without
 * PIPELINING).
 */
bool tr_client_wants_body(const struct tr_client *c);
/*
 * Feed message bytes (prefix, then the file, in any pieces): for DATA
 * they are dot-stuffed into the output; for BDAT each call becomes one
 * chunk.  Then tr_client_body_end after the last byte.
 */
enum tr_want tr_client_body(struct tr_client *c, const void *data, size_t len);
enum tr_want tr_client_body_end(struct tr_client *c);

/*
 * The session failed outside the protocol: the connection broke or
 * closed, TLS failed, a timeout, the message could not be read.  Every
 * recipient without a result gets code/enhanced/text (remote says
 * whether the text comes from the server side); the machine is done.
 */
void tr_client_fail(struct tr_client *c, int code, const char *enhanced,
		    const char *text, bool remote);
/* A timeout fired while waiting: fails the open recipients with 4.4.2. */
void tr_client_timeout(struct tr_client *c);

/* Bytes to send now (not NUL-terminated); tr_client_output_clear after. */
const char *tr_client_output(const struct tr_client *c, size_t *len_r);
void tr_client_output_clear(struct tr_client *c);

/* Every recipient has its result (QUIT may still be going out). */
bool tr_client_done(const struct tr_client *c);
/*
 * Done, and nothing the server said was about a recipient or the
 * message: the greeting, EHLO, STARTTLS or TLS failed, or the connection
 * broke before MAIL got an answer.  The caller may try the next host.
 */
bool tr_client_host_failed(const struct tr_client *c);
/* The result of recipient i (code 0 while unknown). */
const struct tr_result *tr_client_result(const struct tr_client *c, size_t i);

/* Which timeout applies to the current wait. */
enum tr_timeout_kind tr_client_timeout_kind(const struct tr_client *c);
/* Capabilities of the last EHLO reply (enum tr_cap bits). */
unsigned tr_client_caps(const struct tr_client *c);
/* Whether the first EHLO offered STARTTLS, whether any offered
 * REQUIRETLS, and whether we got an EHLO answer at all. */
bool tr_client_saw_starttls(const struct tr_client *c);
bool tr_client_saw_requiretls(const struct tr_client *c);
bool tr_client_saw_ehlo(const struct tr_client *c);
/* The mechanism list of the last EHLO's AUTH keyword ("" if none). */
const char *tr_client_auth_offered(const struct tr_client *c);
/* Whether AUTH succeeded in this session. */
bool tr_client_authenticated(const struct tr_client *c);
/* The SIZE limit the server announced (0: none). */
uint64_t tr_client_max_size(const struct tr_client *c);

/* --- pure helpers, also for tests ----------------------------------- */

/*
 * Encode s as xtext (RFC 3461 4): bytes outside 33..126, "+" and "="
 * become "+HH".  The caller frees.
 */
char *tr_xtext_encode(const char *s);

/*
 * Parse one reply line: its 3-digit code (2xx..5xx), whether more lines
 * follow ("250-"), and the text after the separator.  Returns 0 or
 * TS_E_INVAL (with *why_r) for a line that is no reply line.
 */
int tr_reply_line_parse(const char *line, size_t len, int *code_r, bool *more_r,
			const char **text_r, const char **why_r);

/*
 * Dot-stuffing for DATA (RFC 5321 4.5.2) across pieces: `at_bol` is the
 * caller's state (start true).  Appends to *out (grown with
 * ts_xrealloc; *out_len and *out_cap in bytes) the stuffed copy of data.
 */
void tr_dot_stuff(const char *data, size_t len, bool *at_bol, char **out,
		  size_t *out_len, size_t *out_cap);

#endif
