/*
 * modules/smtp/address.c — parse RFC 5321 paths and EHLO arguments.
 *
 * A hand-written recursive-descent parser over the grammar of RFC 5321
 * 4.1.2 (Path, Mailbox, Local-part, Domain, address-literal), extended by
 * RFC 6531 for UTF-8 when SMTPUTF8 is in effect.  It keeps what was
 * written (for a faithful Return-Path) next to what is compared (decoded
 * localpart, normalised domain), and flags the shapes open-relay probes
 * use.  No I/O, no configuration, no policy: what to refuse is decided by
 * the caller.  Command lines and their parameters are command.c's job.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "address.h"

/* One parse of a path: the input, where we are, and what we saw. */
struct smtp_scan {
	const unsigned char *s;
	size_t len;
	size_t pos;
	unsigned flags; /* enum smtp_parse_flags */
};

static bool
smtp_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext (ASCII part). */
static bool
smtp_is_atext(unsigned char c)
{
	return smtp_is_alpha(c) || smtp_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 qtextSMTP (ASCII part): printable, not `"` nor `\`. */
static bool
smtp_is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static char
smtp_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Length of the well-formed UTF-8 sequence of a non-ASCII character at s
 * (at most len bytes available), or 0 if there is none: overlong forms,
 * surrogates and code points above U+10FFFF are refused (RFC 3629).
 */
static size_t
smtp_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned cp;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool
smtp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = smtp_utf8_seq(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * An IPv4 address literal body, RFC 5321 IPv4-address-literal: four
 * Snum (1*3DIGIT, at most 255) separated by dots.  inet_pton is not used
 * because glibc's refuses leading zeros, which the grammar allows.
 */
static bool
smtp_ipv4_parse(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned value = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		while (i < len && smtp_is_digit((unsigned char)s[i]) &&
		       digits < 3) {
			value = value * 10 + (unsigned)(s[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || value > 255)
			return false;
		out[part] = (unsigned char)value;
	}
	return i == len;
}

/*
 * An address literal including its brackets (len bytes): IPv4 or
 * `IPv6:` (checked with inet_pton); general literals are refused.
 * Returns 0 with the canonical text in *canon_r (caller frees).
 */
static int
smtp_literal_parse(const char *s, size_t len, char **canon_r,
		   const char **error_r)
{
	const char *body = s + 1;
	size_t body_len = len - 2;
	unsigned char v4[4];

	if (len < 2 || s[0] != '[' || s[len - 1] != ']') {
		*error_r = "bad address literal";
		return TS_E_INVAL;
	}
	if (body_len > 5 && strncasecmp(body, "IPv6:", 5) == 0) {
		char text[64], canon[INET6_ADDRSTRLEN];
		unsigned char v6[16];

		if (body_len - 5 >= sizeof(text)) {
			*error_r = "bad IPv6 address literal";
			return TS_E_INVAL;
		}
		memcpy(text, body + 5, body_len - 5);
		text[body_len - 5] = '\0';
		if (inet_pton(AF_INET6, text, v6) != 1 ||
		    inet_ntop(AF_INET6, v6, canon, sizeof(canon)) == NULL) {
			*error_r = "bad IPv6 address literal";
			return TS_E_INVAL;
		}
		*canon_r = ts_xasprintf("[IPv6:%s]", canon);
		return 0;
	}
	if (smtp_ipv4_parse(body, body_len, v4)) {
		*canon_r = ts_xasprintf("[%u.%u.%u.%u]", v4[0], v4[1], v4[2],
					v4[3]);
		return 0;
	}
	if (memchr(body, ':', body_len) != NULL) {
		*error_r = "general address literals are not supported";
		return TS_E_INVAL;
	}
	*error_r = "bad IPv4 address literal";
	return TS_E_INVAL;
}

/*
 * Check the label structure of a domain (len bytes): no empty label, no
 * trailing dot, labels of at most 63 octets without a hyphen at either
 * end, made of letters, digits, hyphens and (only if utf8) well-formed
 * UTF-8.  Sets *non_ascii when UTF-8 was seen.
 */
static int
smtp_domain_labels(const char *d, size_t len, bool utf8, bool *non_ascii,
		   const char **error_r)
{
	const unsigned char *u = (const unsigned char *)d;
	size_t start = 0;

	*non_ascii = false;
	if (len == 0) {
		*error_r = "missing domain";
		return TS_E_INVAL;
	}
	if (len > SMTP_MAX_DOMAIN) {
		*error_r = "domain longer than 255 octets";
		return TS_E_INVAL;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i == len || u[i] == '.') {
			size_t label = i - start;
			if (label == 0) {
				*error_r = i == len ? "trailing dot in domain"
						    : "empty label in domain";
				return TS_E_INVAL;
			}
			if (label > 63) {
				*error_r = "domain label longer than 63 "
					   "octets";
				return TS_E_INVAL;
			}
			if (u[start] == '-' || u[i - 1] == '-') {
				*error_r = "hyphen at the start or end of a "
					   "domain label";
				return TS_E_INVAL;
			}
			start = i + 1;
			continue;
		}
		if (smtp_is_alpha(u[i]) || smtp_is_digit(u[i]) || u[i] == '-')
			continue;
		size_t n = u[i] >= 0x80 ? smtp_utf8_seq(u + i, len - i) : 0;
		if (n == 0) {
			*error_r = u[i] >= 0x80 ? "invalid UTF-8 in domain"
						: "bad character in domain";
			return TS_E_INVAL;
		}
		*non_ascii = true;
		i += n - 1;
	}
	if (*non_ascii && !utf8) {
		*error_r = "non-ASCII address requires SMTPUTF8";
		return SMTP_E_UTF8;
	}
	return 0;
}

/*
 * Validate and normalise a domain name (not a literal): ASCII lower
 * case; a name with U-labels goes through IDNA2008 with UTS #46 mapping
 * (the same flags as the store's lookup, so both agree) and comes back
 * as A-labels.  Sets SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA in *flags when
 * it converted.  Returns 0 with *norm_r (caller frees).
 */
static int
smtp_domain_normalise(const char *d, size_t len, bool utf8, char **norm_r,
		      unsigned *flags, const char **error_r)
{
	bool non_ascii;
	int ret = smtp_domain_labels(d, len, utf8, &non_ascii, error_r);

	if (ret < 0)
		return ret;
	if (!non_ascii) {
		char *norm = ts_xstrndup(d, len);
		for (char *p = norm; *p != '\0'; p++)
			*p = smtp_lower(*p);
		*norm_r = norm;
		return 0;
	}

	char *in = ts_xstrndup(d, len);
	uint8_t *alabel = NULL;
	int rc = idn2_lookup_u8((const uint8_t *)in, &alabel,
				IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	free(in);
	if (rc != IDN2_OK) {
		*error_r = "invalid internationalized domain name";
		return TS_E_INVAL;
	}
	char *norm = ts_xstrdup((const char *)alabel);
	idn2_free(alabel);
	for (char *p = norm; *p != '\0'; p++)
		*p = smtp_lower(*p);
	/* The mapping may have produced something no DNS name looks like
	 * (or longer than allowed): check the result as plain ASCII. */
	ret = smtp_domain_labels(norm, strlen(norm), false, &non_ascii,
				 error_r);
	if (ret < 0) {
		free(norm);
		*error_r = "invalid internationalized domain name";
		return TS_E_INVAL;
	}
	*flags |= SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA;
	*norm_r = norm;
	return 0;
}

/* Bytes from the scan position that may belong to a domain name. */
static size_t
smtp_domain_span(const struct smtp_scan *sc)
{
	size_t i = sc->pos;

	while (i < sc->len) {
		unsigned char c = sc->s[i];
		if (!(smtp_is_alpha(c) || smtp_is_digit(c) || c == '-' ||
		      c == '.' || c >= 0x80))
			break;
		i++;
	}
	return i - sc->pos;
}

/*
 * A source route `@a,@b:` at the scan position (just after `<`): each
 * domain checked, then dropped (RFC 5321 4.1.1.3: accept and ignore).
 * *route_non_ascii tells whether a route domain held UTF-8.
 */
static int
smtp_scan_route(struct smtp_scan *sc, bool *route_non_ascii,
		const char **error_r)
{
	*route_non_ascii = false;
	for (;;) {
		bool non_ascii;

		if (sc->pos >= sc->len || sc->s[sc->pos] != '@') {
			*error_r = "bad source route";
			return TS_E_INVAL;
		}
		sc->pos++;
		size_t n = smtp_domain_span(sc);
		int ret = smtp_domain_labels((const char *)sc->s + sc->pos, n,
					     (sc->flags & SMTP_UTF8) != 0,
					     &non_ascii, error_r);
		if (ret < 0)
			return ret;
		*route_non_ascii |= non_ascii;
		sc->pos += n;
		if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
			sc->pos++;
			continue;
		}
		if (sc->pos < sc->len && sc->s[sc->pos] == ':') {
			sc->pos++;
			return 0;
		}
		*error_r = "bad source route";
		return TS_E_INVAL;
	}
}

/*
 * A quoted-string localpart at the scan position (on its `"`): the
 * decoded bytes go to out (at least len bytes of room).  Sets
 * *non_ascii for UTF-8 in qtext.
 */
static int
smtp_scan_quoted(struct smtp_scan *sc, char *out, size_t *out_len,
		 bool *non_ascii, const char **error_r)
{
	size_t n = 0;

	sc->pos++; /* the opening quote */
	for (;;) {
		if (sc->pos >= sc->len) {
			*error_r = "unterminated quoted localpart";
			return TS_E_INVAL;
		}
		unsigned char c = sc->s[sc->pos];
		if (c == '"') {
			sc->pos++;
			break;
		}
		if (c == '\\') {
			/* quoted-pairSMTP: backslash and one printable */
			if (sc->pos + 1 >= sc->len || sc->s[sc->pos + 1] < 32 ||
			    sc->s[sc->pos + 1] > 126) {
				*error_r = "bad quoted pair in localpart";
				return TS_E_INVAL;
			}
			out[n++] = (char)sc->s[sc->pos + 1];
			sc->pos += 2;
			continue;
		}
		if (smtp_is_qtext(c)) {
			out[n++] = (char)c;
			sc->pos++;
			continue;
		}
		size_t u = c >= 0x80 ? smtp_utf8_seq(sc->s + sc->pos,
						     sc->len - sc->pos)
				     : 0;
		if (u == 0) {
			*error_r = c >= 0x80 ? "invalid UTF-8 in localpart"
					     : "bad character in quoted "
					       "localpart";
			return TS_E_INVAL;
		}
		memcpy(out + n, sc->s + sc->pos, u);
		n += u;
		sc->pos += u;
		*non_ascii = true;
	}
	*out_len = n;
	return 0;
}

/* A dot-string localpart at the scan position. */
static int
smtp_scan_dot_string(struct smtp_scan *sc, bool *non_ascii,
		     const char **error_r)
{
	bool atom_empty = true;
	size_t start = sc->pos;

	while (sc->pos < sc->len) {
		unsigned char c = sc->s[sc->pos];
		if (c == '.') {
			if (atom_empty) {
				*error_r =
					sc->pos == start
						? "localpart starts with a dot"
						: "two dots in a row in "
						  "localpart";
				return TS_E_INVAL;
			}
			atom_empty = true;
			sc->pos++;
			continue;
		}
		if (smtp_is_atext(c)) {
			atom_empty = false;
			sc->pos++;
			continue;
		}
		if (c < 0x80)
			break;
		size_t u = smtp_utf8_seq(sc->s + sc->pos, sc->len - sc->pos);
		if (u == 0) {
			*error_r = "invalid UTF-8 in localpart";
			return TS_E_INVAL;
		}
		*non_ascii = true;
		atom_empty = false;
		sc->pos += u;
	}
	if (sc->pos == start) {
		*error_r = "missing localpart";
		return TS_E_INVAL;
	}
	if (atom_empty) {
		*error_r = "localpart ends with a dot";
		return TS_E_INVAL;
	}
	return 0;
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ) at the scan
 * position; fills path (all four strings) and its flags.
 */
static int
smtp_scan_mailbox(struct smtp_scan *sc, struct smtp_path *path,
		  const char **error_r)
{
	size_t start = sc->pos;
	bool non_ascii = false;
	char *unquoted = ts_xmalloc(sc->len - sc->pos + 1);
	size_t unquoted_len = 0;
	int ret;

	if (sc->pos < sc->len && sc->s[sc->pos] == '"') {
		ret = smtp_scan_quoted(sc, unquoted, &unquoted_len, &non_ascii,
				       error_r);
		path->flags |= SMTP_PATH_QUOTED;
	} else {
		ret = smtp_scan_dot_string(sc, &non_ascii, error_r);
		unquoted_len = sc->pos - start;
		memcpy(unquoted, sc->s + start, unquoted_len);
	}
	unquoted[ret < 0 ? 0 : unquoted_len] = '\0';
	if (ret < 0)
		goto fail;
	if (sc->pos - start > SMTP_MAX_LOCALPART) {
		*error_r = "localpart longer than 64 octets";
		ret = TS_E_INVAL;
		goto fail;
	}
	if (non_ascii && !(sc->flags & SMTP_UTF8)) {
		*error_r = "non-ASCII address requires SMTPUTF8";
		ret = SMTP_E_UTF8;
		goto fail;
	}
	if (memchr(unquoted, '\0', unquoted_len) != NULL) {
		/* `"\<NUL>"` cannot happen (quoted-pair is 32-126), but a
		 * decoded localpart must stay a C string. */
		*error_r = "bad character in localpart";
		ret = TS_E_INVAL;
		goto fail;
	}
	path->localpart =
		ts_xstrndup((const char *)sc->s + start, sc->pos - start);
	path->localpart_unquoted = unquoted;
	unquoted = NULL;
	if (non_ascii)
		path->flags |= SMTP_PATH_NON_ASCII;
	if (strchr(path->localpart_unquoted, '%') != NULL)
		path->flags |= SMTP_PATH_PERCENT;
	if (strchr(path->localpart_unquoted, '!') != NULL)
		path->flags |= SMTP_PATH_BANG;
	if (strchr(path->localpart_unquoted, '@') != NULL)
		path->flags |= SMTP_PATH_AT_IN_LOCAL;

	if (sc->pos >= sc->len || sc->s[sc->pos] != '@') {
		*error_r = "missing @domain";
		ret = TS_E_INVAL;
		goto fail;
	}
	sc->pos++;

	size_t dstart = sc->pos;
	if (sc->pos < sc->len && sc->s[sc->pos] == '[') {
		const unsigned char *close =
			memchr(sc->s + sc->pos, ']', sc->len - sc->pos);
		if (close == NULL) {
			*error_r = "unterminated address literal";
			ret = TS_E_INVAL;
			goto fail;
		}
		sc->pos = (size_t)(close - sc->s) + 1;
		ret = smtp_literal_parse((const char *)sc->s + dstart,
					 sc->pos - dstart, &path->domain,
					 error_r);
		if (ret < 0)
			goto fail;
		path->flags |= SMTP_PATH_ADDRESS_LITERAL;
	} else {
		sc->pos += smtp_domain_span(sc);
		ret = smtp_domain_normalise(
			(const char *)sc->s + dstart, sc->pos - dstart,
			(sc->flags & SMTP_UTF8) != 0, &path->domain,
			&path->flags, error_r);
		if (ret < 0)
			goto fail;
		if (strlen(path->domain) > SMTP_MAX_DOMAIN) {
			*error_r = "domain longer than 255 octets";
			ret = TS_E_INVAL;
			goto fail;
		}
	}
	path->domain_raw =
		ts_xstrndup((const char *)sc->s + dstart, sc->pos - dstart);
	return 0;

fail:
	free(unquoted);
	return ret;
}

void
smtp_path_clear(struct smtp_path *path)
{
	free(path->localpart);
	free(path->localpart_unquoted);
	free(path->domain);
	free(path->domain_raw);
	memset(path, 0, sizeof(*path));
}

/* Fill path as the null path or the bare Postmaster (no domain). */
static void
smtp_path_set_special(struct smtp_path *path, const char *local,
		      size_t local_len, unsigned flag)
{
	path->localpart = ts_xstrndup(local, local_len);
	path->localpart_unquoted = ts_xstrndup(local, local_len);
	path->domain = ts_xstrdup("");
	path->domain_raw = ts_xstrdup("");
	path->flags = flag;
}

/* The bracketed form `<...>` after its `<`. */
static int
smtp_scan_bracketed(struct smtp_scan *sc, struct smtp_path *path,
		    const char **error_r)
{
	const unsigned char *rest = sc->s + sc->pos;
	size_t rest_len = sc->len - sc->pos;
	int ret;

	if (rest_len >= 1 && rest[0] == '>') {
		if (!(sc->flags & SMTP_NULL_PATH_OK)) {
			*error_r = "null path not allowed here";
			return TS_E_INVAL;
		}
		smtp_path_set_special(path, "", 0, SMTP_PATH_NULL);
		sc->pos++;
		return 0;
	}
	/* RFC 5321 4.1.1.3: "Postmaster" without a domain, any case. */
	if ((sc->flags & SMTP_POSTMASTER_OK) && rest_len >= 11 &&
	    strncasecmp((const char *)rest, "postmaster>", 11) == 0) {
		smtp_path_set_special(path, (const char *)rest, 10,
				      SMTP_PATH_POSTMASTER);
		sc->pos += 11;
		return 0;
	}
	if (rest_len >= 1 && rest[0] == '@') {
		bool route_non_ascii;
		ret = smtp_scan_route(sc, &route_non_ascii, error_r);
		if (ret < 0)
			return ret;
		path->flags |= SMTP_PATH_HAD_SOURCE_ROUTE;
		if (route_non_ascii)
			path->flags |= SMTP_PATH_NON_ASCII;
	}
	ret = smtp_scan_mailbox(sc, path, error_r);
	if (ret < 0)
		return ret;
	if (sc->pos >= sc->len || sc->s[sc->pos] != '>') {
		*error_r = sc->pos >= sc->len ? "missing >"
					      : "bad character in address";
		return TS_E_INVAL;
	}
	sc->pos++;
	return 0;
}

int
smtp_path_parse_prefix(const char *text, size_t len, unsigned flags,
		       struct smtp_path *path_r, size_t *consumed_r,
		       const char **error_r)
{
	struct smtp_scan sc = { .s = (const unsigned char *)text,
				.len = len,
				.flags = flags };
	size_t total;
	int ret;

	memset(path_r, 0, sizeof(*path_r));
	if (len > 0 && text[0] == '<') {
		sc.pos = 1;
		ret = smtp_scan_bracketed(&sc, path_r, error_r);
		total = sc.pos;
	} else if (!(flags & SMTP_LENIENT)) {
		*error_r = len == 0 ? "missing address" : "missing <";
		ret = TS_E_INVAL;
		total = 0;
	} else if (len == 0 || text[0] == ' ') {
		*error_r = "missing address";
		ret = TS_E_INVAL;
		total = 0;
	} else {
		/* No `<>`: the mailbox ends where its grammar does (a space
		 * after it starts the parameters). */
		ret = smtp_scan_mailbox(&sc, path_r, error_r);
		if (ret == 0 && sc.pos < sc.len && sc.s[sc.pos] != ' ') {
			*error_r = "bad character in address";
			ret = TS_E_INVAL;
		}
		path_r->flags |= SMTP_PATH_UNBRACKETED;
		total = sc.pos + 2; /* count the brackets it should have */
	}
	if (ret == 0 && total > SMTP_MAX_PATH) {
		*error_r = "path longer than 256 octets";
		ret = TS_E_INVAL;
	}
	if (ret < 0) {
		smtp_path_clear(path_r);
		return ret;
	}
	*consumed_r = sc.pos;
	return 0;
}

int
smtp_path_parse(const char *text, size_t len, unsigned flags,
		struct smtp_path *path_r, const char **error_r)
{
	size_t consumed;
	int ret = smtp_path_parse_prefix(text, len, flags, path_r, &consumed,
					 error_r);

	if (ret < 0)
		return ret;
	if (consumed != len) {
		smtp_path_clear(path_r);
		*error_r = "unexpected text after the address";
		return TS_E_INVAL;
	}
	return 0;
}

/* Whether s is a dot-string (atext, UTF-8 allowed, single inner dots). */
static bool
smtp_is_dot_string(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	bool atom_empty = true;

	if (*u == '\0')
		return false;
	for (; *u != '\0'; u++) {
		if (*u == '.') {
			if (atom_empty)
				return false;
			atom_empty = true;
		} else if (smtp_is_atext(*u) || *u >= 0x80) {
			atom_empty = false;
		} else {
			return false;
		}
	}
	return !atom_empty;
}

char *
smtp_localpart_format(const char *unquoted)
{
	if (smtp_is_dot_string(unquoted))
		return ts_xstrdup(unquoted);

	/* Quoted string: only `"` and `\` need a backslash. */
	size_t len = strlen(unquoted), n = 0;
	char *out = ts_xmalloc(2 * len + 3);
	out[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (unquoted[i] == '"' || unquoted[i] == '\\')
			out[n++] = '\\';
		out[n++] = unquoted[i];
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

char *
smtp_path_format(const struct smtp_path *path)
{
	if (path->flags & SMTP_PATH_NULL)
		return ts_xstrdup("<>");
	if (path->flags & SMTP_PATH_POSTMASTER)
		return ts_xasprintf("<%s>", path->localpart);

	char *local = smtp_localpart_format(path->localpart_unquoted);
	char *out = ts_xasprintf("<%s@%s>", local, path->domain);
	free(local);
	return out;
}

int
smtp_ehlo_parse(const char *arg, unsigned flags, char **domain_r,
		const char **error_r)
{
	size_t len = strlen(arg);
	unsigned dflags = 0;
	int ret;

	*domain_r = NULL;
	if (len == 0) {
		*error_r = "missing domain";
		return TS_E_INVAL;
	}
	if (arg[0] == '[')
		ret = smtp_literal_parse(arg, len, domain_r, error_r);
	else
		/* RFC 6531 3.7.1 lets the EHLO name hold U-labels; they do
		 * not depend on SMTPUTF8, which comes later. */
		ret = smtp_domain_normalise(arg, len, true, domain_r, &dflags,
					    error_r);
	if (ret == 0 || !(flags & SMTP_LENIENT))
		return ret;

	/* Lenient: clients send `EHLO my_laptop`, `EHLO host.`, a bare IP
	 * address...  Take it as written if it is one printable word. */
	if (len > SMTP_MAX_DOMAIN) {
		*error_r = "domain longer than 255 octets";
		return TS_E_INVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];
		if (c <= 32 || c == 127) {
			*error_r = "bad character in EHLO argument";
			return TS_E_INVAL;
		}
	}
	if (!smtp_utf8_valid(arg, len)) {
		*error_r = "invalid UTF-8 in EHLO argument";
		return TS_E_INVAL;
	}
	*domain_r = ts_xstrndup(arg, len);
	return 0;
}
