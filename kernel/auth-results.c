/*
 * kernel/auth-results.c — the Authentication-Results header (RFC 8601).
 *
 * Checks attach typed results to a transaction (kernel/txn.c); this file
 * says which of them are well-formed and writes them as one header:
 * methods and results are keywords, property values are written bare
 * when RFC 8601's grammar allows (a token, or local-part@domain) and as
 * quoted strings otherwise, comments are escaped.  It is not a parser of
 * other servers' Authentication-Results headers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

/* A keyword as RFC 8601 uses it: letters, digits, '-', '_' (and '.'). */
static bool
ts_ar_keyword(const char *s, bool dots)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (dots && c == '.')))
			return false;
	}
	return true;
}

/* "ptype.property": two keywords joined by one dot. */
static bool
ts_ar_prop_name(const char *s)
{
	const char *dot = s != NULL ? strchr(s, '.') : NULL;
	if (dot == NULL || dot == s || dot[1] == '\0' ||
	    strchr(dot + 1, '.') != NULL)
		return false;
	char *ptype = ts_xstrndup(s, (size_t)(dot - s));
	bool ok = ts_ar_keyword(ptype, false) && ts_ar_keyword(dot + 1, false);
	free(ptype);
	return ok;
}

bool
ts__auth_result_valid(const struct ts_auth_result *r)
{
	if (!ts_ar_keyword(r->method, false) ||
	    !ts_ar_keyword(r->result, false) ||
	    r->prop_count > TS_AUTH_PROP_MAX)
		return false;
	for (size_t i = 0; i < r->prop_count; i++)
		if (!ts_ar_prop_name(r->props[i].name) ||
		    r->props[i].value == NULL ||
		    strpbrk(r->props[i].value, "\r\n") != NULL)
			return false;
	if ((r->reason != NULL && strpbrk(r->reason, "\r\n") != NULL) ||
	    (r->comment != NULL && strpbrk(r->comment, "\r\n") != NULL))
		return false;
	return true;
}

/* An RFC 2045 token: no space, control, 8-bit or tspecial. */
static bool
ts_ar_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* [dot-atom-localpart]@domain, which RFC 8601's pvalue allows bare. */
static bool
ts_ar_address(const char *s)
{
	const char *at = strrchr(s, '@');
	if (at == NULL || at[1] == '\0')
		return false;
	for (const char *p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"[]", c))
			return false;
	}
	for (const char *p = at + 1; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Append s to the growing string *buf. */
static void
ts_ar_append(char **buf, size_t *len, const char *s, size_t n)
{
	*buf = ts_xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static void
ts_ar_puts(char **buf, size_t *len, const char *s)
{
	ts_ar_append(buf, len, s, strlen(s));
}

/* s with `open`..`close` around it, '\\' before each char of `esc`. */
static void
ts_ar_escaped(char **buf, size_t *len, const char *s, char open, char close,
	      const char *esc)
{
	ts_ar_append(buf, len, &open, 1);
	for (; *s != '\0'; s++) {
		if (strchr(esc, *s) != NULL)
			ts_ar_append(buf, len, "\\", 1);
		ts_ar_append(buf, len, s, 1);
	}
	ts_ar_append(buf, len, &close, 1);
}

static void
ts_ar_value(char **buf, size_t *len, const char *v, bool address_ok)
{
	if (ts_ar_token(v) || (address_ok && ts_ar_address(v)))
		ts_ar_puts(buf, len, v);
	else
		ts_ar_escaped(buf, len, v, '"', '"', "\"\\");
}

char *
ts_txn_auth_results_header(const struct ts_txn *txn, const char *authserv_id)
{
	char *buf = NULL;
	size_t len = 0;
	ts_ar_puts(&buf, &len, "Authentication-Results: ");
	ts_ar_value(&buf, &len, authserv_id, false);
	ts_ar_puts(&buf, &len, ";");
	size_t n = ts_txn_auth_result_count(txn);
	if (n == 0)
		ts_ar_puts(&buf, &len, " none");
	for (size_t i = 0; i < n; i++) {
		const struct ts_auth_result *r = ts_txn_auth_result(txn, i);
		ts_ar_puts(&buf, &len, "\r\n\t");
		ts_ar_puts(&buf, &len, r->method);
		ts_ar_puts(&buf, &len, "=");
		ts_ar_puts(&buf, &len, r->result);
		if (r->comment != NULL) {
			ts_ar_puts(&buf, &len, " ");
			ts_ar_escaped(&buf, &len, r->comment, '(', ')',
				      "()\\");
		}
		if (r->reason != NULL) {
			ts_ar_puts(&buf, &len, " reason=");
			ts_ar_value(&buf, &len, r->reason, false);
		}
		for (size_t j = 0; j < r->prop_count; j++) {
			ts_ar_puts(&buf, &len, " ");
			ts_ar_puts(&buf, &len, r->props[j].name);
			ts_ar_puts(&buf, &len, "=");
			ts_ar_value(&buf, &len, r->props[j].value, true);
		}
		if (i + 1 < n)
			ts_ar_puts(&buf, &len, ";");
	}
	return buf;
}
