/*
 * modules/smtp/address.h — RFC 5321 paths, mailboxes and EHLO arguments.
 *
 * Pure parsing, no I/O and no configuration: the text of a MAIL FROM: or
 * RCPT TO: path (the `<...>` part, parameters excluded) becomes a
 * struct smtp_path with the localpart as written and decoded, the domain
 * as written and normalised (lower case, U-labels turned into A-labels
 * with libidn2), and flags for every shape the relay check must look at.
 * Deciding whether a domain is local, or whether a flagged shape is
 * refused, is the caller's job.
 */
#ifndef SMTP_ADDRESS_H
#define SMTP_ADDRESS_H

#include <tessera/tessera.h>

/* RFC 5321 4.5.3.1 limits, in octets. */
#define SMTP_MAX_LOCALPART 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256

/*
 * Input flags shared by the parsers of this folder (address.c and
 * command.c).
 */
enum smtp_parse_flags {
	/*
	 * Authenticated submission: accept the common client deviations
	 * (a path without `<>`, a space after `FROM:`, extra spaces between
	 * parameters, an odd EHLO name).  Never set for port 25.
	 */
	SMTP_LENIENT = 1 << 0,
	/*
	 * SMTPUTF8 is in effect for this transaction (RFC 6531): UTF-8 is
	 * allowed in localparts, domains and parameter values.  Without it
	 * a non-ASCII address is refused with SMTP_E_UTF8.
	 */
	SMTP_UTF8 = 1 << 1,
	/* The null reverse-path `<>` is allowed (MAIL FROM only). */
	SMTP_NULL_PATH_OK = 1 << 2,
	/* The bare `<Postmaster>` (any case, no domain) is allowed (RCPT). */
	SMTP_POSTMASTER_OK = 1 << 3,
};

/*
 * Error code of the parsers beyond TS_E_INVAL (bad syntax): the address
 * (or parameter) is well-formed UTF-8 but SMTPUTF8 was not given; the
 * SMTP answer is 553 5.6.7 (RFC 6531 3.5).
 */
#define SMTP_E_UTF8 (-64)

/*
 * What the parser saw; set in struct smtp_path.flags.  The relay check
 * of the module must consider each "trick" flag (see
 * SMTP_PATH_RELAY_TRICKS): the mailbox itself is parsed correctly, but
 * such a shape is how open-relay probes try to make a server forward
 * mail for a domain that is not its own.
 */
enum smtp_path_flag {
	SMTP_PATH_NULL = 1 << 0, /* `<>`: localpart and domain are "" */
	/* `<Postmaster>` without a domain: domain is "" */
	SMTP_PATH_POSTMASTER = 1 << 1,
	SMTP_PATH_QUOTED = 1 << 2, /* the localpart was a quoted string */
	SMTP_PATH_UNBRACKETED = 1 << 3, /* lenient: no `<>` around it */
	/* UTF-8 in localpart or domain (needs SMTPUTF8) */
	SMTP_PATH_NON_ASCII = 1 << 4,
	/* the domain had U-labels; `domain` holds their A-labels */
	SMTP_PATH_IDNA = 1 << 5,

	/* --- relay tricks ------------------------------------------ */
	/*
	 * `<@a,@b:user@d>`: an RFC 821 source route.  RFC 5321 4.1.1.3 and
	 * appendix C: accept and ignore it — the mailbox is user@d and only
	 * d counts; the route is dropped.
	 */
	SMTP_PATH_HAD_SOURCE_ROUTE = 1 << 8,
	/*
	 * The domain is an address literal (`[192.0.2.1]`, `[IPv6:...]`):
	 * never a local domain by name; `domain` holds the canonical text
	 * (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
	 */
	SMTP_PATH_ADDRESS_LITERAL = 1 << 9,
	/*
	 * The (decoded) localpart holds `%`: the "percent hack"
	 * user%remote@local asks local to relay to user@remote.
	 */
	SMTP_PATH_PERCENT = 1 << 10,
	/* The localpart holds `!`: a UUCP bang path (remote!user@local). */
	SMTP_PATH_BANG = 1 << 11,
	/*
	 * The decoded localpart holds `@` (only possible quoted:
	 * `"user@remote"@local`), an attempt at a second hop.
	 */
	SMTP_PATH_AT_IN_LOCAL = 1 << 12,
};

#define SMTP_PATH_RELAY_TRICKS                                    \
	(SMTP_PATH_HAD_SOURCE_ROUTE | SMTP_PATH_ADDRESS_LITERAL | \
	 SMTP_PATH_PERCENT | SMTP_PATH_BANG | SMTP_PATH_AT_IN_LOCAL)

/*
 * A parsed path.  Every string is allocated and owned by the struct:
 * release with smtp_path_clear().  A zeroed struct is a valid empty one.
 */
struct smtp_path {
	/* as written: a quoted localpart keeps its quotes and backslashes */
	char *localpart;
	/* the decoded value: `"a\"b"` gives `a"b`; `""` gives "" */
	char *localpart_unquoted;
	/* normalised: ASCII lower case, U-labels as A-labels; literals
	 * canonical; "" for the null path and bare Postmaster */
	char *domain;
	/* as written (case kept, U-labels kept) */
	char *domain_raw;
	unsigned flags; /* enum smtp_path_flag */
};

/*
 * Parse a whole path argument: `text` (len bytes, need not be
 * NUL-terminated) must be exactly one path, e.g. `<user@example.org>`.
 * `flags` are enum smtp_parse_flags.  Returns 0 and fills *path_r (clear
 * it with smtp_path_clear), or TS_E_INVAL (bad syntax, over a length
 * limit) or SMTP_E_UTF8, with a lower-case reason in *error_r (a static
 * string) and *path_r left empty.
 */
int smtp_path_parse(const char *text, size_t len, unsigned flags,
		    struct smtp_path *path_r, const char **error_r);

/*
 * Like smtp_path_parse but the path need only start `text`: on success
 * *consumed_r is the number of bytes it took (up to and including `>`,
 * or, unbracketed in lenient mode, up to the first space).  The command
 * parser uses it to find where the parameters begin — a quoted localpart
 * may contain spaces.
 */
int smtp_path_parse_prefix(const char *text, size_t len, unsigned flags,
			   struct smtp_path *path_r, size_t *consumed_r,
			   const char **error_r);

/* Free the strings of *path and zero it; safe on a zeroed struct. */
void smtp_path_clear(struct smtp_path *path);

/*
 * The path as it should be written back (Return-Path, DSNs, logs):
 * `<localpart@domain>` with the normalised domain and the decoded
 * localpart written as a dot-string where it is one, else as a quoted
 * string with only `"` and `\` escaped (RFC 5321 4.1.2).  `<>` for the
 * null path, `<Postmaster>` for the bare one.  The caller frees.
 */
char *smtp_path_format(const struct smtp_path *path);

/*
 * A decoded localpart as it must be written in a mailbox: unchanged if it
 * is a dot-string (UTF-8 atext counts), else quoted with minimal
 * escaping.  The caller frees.
 */
char *smtp_localpart_format(const char *unquoted);

/*
 * Parse the argument of EHLO/HELO (NUL-terminated, without the verb):
 * a domain (normalised as in a path; U-labels accepted and converted) or
 * an address literal `[192.0.2.1]` / `[IPv6:2001:db8::1]` (kept in
 * canonical form; general literals `[tag:...]` refused).  With
 * SMTP_LENIENT anything printable without spaces is accepted as written
 * when it is not a valid domain.  Returns 0 with *domain_r (caller
 * frees) or TS_E_INVAL with a static reason in *error_r.
 */
int smtp_ehlo_parse(const char *arg, unsigned flags, char **domain_r,
		    const char **error_r);

/*
 * Whether s (len bytes) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
bool smtp_utf8_valid(const char *s, size_t len);

#endif
