/*
 * modules/smtp/command.h — one SMTP command line into a struct.
 *
 * smtp_command_parse turns a line (without its CRLF) into a verb, its
 * argument, the parsed path of MAIL/RCPT and their ESMTP parameters, the
 * size of BDAT, the mechanism and initial response of AUTH.  Every error
 * comes back as the complete reply to send (code, enhanced code, text).
 * What is allowed in which session state (MAIL before EHLO, AUTH twice,
 * BDAT without CHUNKING) is the session's business, not this parser's;
 * which parameters are accepted depends only on the extensions the
 * caller says it advertised.  Also here: xtext (RFC 3461) and base64
 * (for AUTH exchanges), and the "is this SMTP at all" test applied to the
 * first bytes of a session.
 */
#ifndef SMTP_COMMAND_H
#define SMTP_COMMAND_H

#include <tessera/tessera.h>

#include "address.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_QUIT,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* Upper-case name of a verb ("MAIL"); "?" for SMTP_VERB_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

/*
 * Extensions the caller advertised in its EHLO reply: a MAIL/RCPT
 * parameter of an extension not in the set is answered like an unknown
 * one (555 5.5.4).
 */
enum smtp_extension {
	SMTP_EXT_SIZE = 1 << 0, /* SIZE= (RFC 1870) */
	SMTP_EXT_8BITMIME = 1 << 1, /* BODY=7BIT|8BITMIME (RFC 6152) */
	SMTP_EXT_BINARYMIME = 1 << 2, /* BODY=BINARYMIME (RFC 3030) */
	SMTP_EXT_SMTPUTF8 = 1 << 3, /* SMTPUTF8 (RFC 6531) */
	SMTP_EXT_REQUIRETLS = 1 << 4, /* REQUIRETLS (RFC 8689) */
	SMTP_EXT_DSN = 1 << 5, /* RET ENVID NOTIFY ORCPT (RFC 3461) */
	SMTP_EXT_AUTH = 1 << 6, /* AUTH= on MAIL (RFC 4954) */
	SMTP_EXT_ALL = (1 << 7) - 1,
};

/* How to parse: per listener and session state. */
struct smtp_parse_opts {
	/*
	 * enum smtp_parse_flags: SMTP_LENIENT for authenticated
	 * submission; SMTP_UTF8 when the current transaction's MAIL had
	 * SMTPUTF8 (it governs RCPT; MAIL decides from its own parameters).
	 */
	unsigned flags;
	unsigned extensions; /* enum smtp_extension */
	/* SIZE= above this is refused with 552 5.3.4; 0: no limit */
	uint64_t max_size;
};

/* A reply to send as is: "code enhanced text". */
struct smtp_reply {
	int code; /* 501 */
	const char *enhanced; /* "5.5.4", a static string */
	char text[160]; /* "syntax: MAIL FROM:<address>" */
};

enum smtp_body {
	SMTP_BODY_UNSET = 0, /* no BODY= parameter */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
	SMTP_RET_UNSET = 0,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* NOTIFY= bits; 0 when the parameter was not given. */
enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

/* Parameters of MAIL FROM.  Strings are owned by the command. */
struct smtp_mail_params {
	bool has_size;
	uint64_t size; /* SIZE=; 20 digits that overflow give UINT64_MAX */
	enum smtp_body body;
	bool smtputf8;
	bool requiretls;
	enum smtp_ret ret;
	char *envid; /* ENVID= decoded from xtext; NULL if absent */
	/* AUTH= decoded from xtext; "" for AUTH=<>; NULL if absent */
	char *auth;
};

/* Parameters of RCPT TO.  Strings are owned by the command. */
struct smtp_rcpt_params {
	unsigned notify; /* enum smtp_notify bits; 0: absent */
	char *orcpt_type; /* "rfc822" (as written); NULL if absent */
	char *orcpt_raw; /* the value after `;` as received (xtext) */
	/* decoded: xtext decoded, except for type utf-8 (RFC 6533),
	 * kept as received */
	char *orcpt;
};

/*
 * One parsed command.  Only the members of its verb are set; the rest
 * stay zero.  Release with smtp_command_clear().
 */
struct smtp_command {
	enum smtp_verb verb;
	/* the text after the verb and its separator (lenient: trimmed);
	 * NULL if there was none */
	char *arg;
	char *domain; /* EHLO/HELO: see smtp_ehlo_parse */
	struct smtp_path path; /* MAIL (reverse-path), RCPT (forward-path) */
	struct smtp_mail_params mail;
	struct smtp_rcpt_params rcpt;
	uint64_t bdat_size; /* BDAT: the chunk size */
	bool bdat_last; /* BDAT: LAST given */
	char *auth_mechanism; /* AUTH: upper-cased */
	bool auth_has_initial; /* AUTH: an initial response was given */
	/* AUTH: the decoded initial response (also NUL-terminated, but it
	 * may hold NULs: use the length); "" for `=` */
	unsigned char *auth_initial;
	size_t auth_initial_len;
};

/*
 * Parse one command line: `line` is len bytes without the final CRLF
 * (need not be NUL-terminated).  Returns 0 with *cmd_r filled, or
 * TS_E_INVAL with the reply to send in *reply_r; cmd_r->verb is set in
 * both cases (SMTP_VERB_UNKNOWN if the verb was not recognised) so the
 * session can tell which command failed, the other members are then
 * empty.  Call smtp_command_clear() in both cases.
 */
int smtp_command_parse(const char *line, size_t len,
		       const struct smtp_parse_opts *opts,
		       struct smtp_command *cmd_r, struct smtp_reply *reply_r);

/* Free what *cmd owns and zero it; safe on a zeroed struct. */
void smtp_command_clear(struct smtp_command *cmd);

/*
 * The "first command must be SMTP" rule: whether a complete first line
 * (len bytes, a trailing CRLF or LF is ignored) starts with a known verb
 * followed by a space or the end, with no control characters after it.
 * False for `GET / HTTP/1.1`, a TLS ClientHello (0x16 0x03 ...) and
 * binary garbage.  Its arguments need not be valid: `MAIL FROM:bad` is
 * SMTP, it just gets a 501.
 */
bool smtp_command_looks_like_smtp(const char *line, size_t len);

/*
 * Whether the first len bytes a client sent can still become an SMTP
 * command: false as soon as they cannot start any verb (a ClientHello's
 * first byte already fails).  Lets the session close a non-SMTP peer
 * without waiting for a line end that may never come.
 */
bool smtp_command_prefix_possible(const char *buf, size_t len);

/*
 * Decode xtext (RFC 3461 4: `+HH` with upper-case hex; other bytes
 * 33-126 except `+` and `=`).  flags: SMTP_LENIENT also accepts
 * lower-case hex, SMTP_UTF8 also accepts UTF-8 (RFC 6531 esmtp-value).
 * A decoded NUL is refused.  Returns 0 with *out_r (caller frees) or
 * TS_E_INVAL.
 */
int smtp_xtext_decode(const char *in, size_t len, unsigned flags, char **out_r);

/* Encode s as xtext: bytes outside 33-126, `+` and `=` become `+HH`. */
char *smtp_xtext_encode(const char *s);

/*
 * Decode strict base64 (RFC 4648, padding required, no whitespace), as
 * in AUTH exchanges.  Returns 0 with *out_r (caller frees; also
 * NUL-terminated) and *out_len_r, or TS_E_INVAL.
 */
int smtp_base64_decode(const char *in, size_t len, unsigned char **out_r,
		       size_t *out_len_r);

/* Base64 of len bytes (for 334 challenges); the caller frees. */
char *smtp_base64_encode(const void *data, size_t len);

#endif
