/*
 * modules/spf/macro.c — SPF macro strings (RFC 7208 section 7).
 *
 * Checks the syntax of macro-strings and domain-specs as the ABNF of
 * section 12 defines them, and expands them: the letters s l o d i p v h
 * (and c r t in explanations), the digit and "r" transformers, custom
 * delimiters, and URL-escaping for upper-case letters (section 7.3).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <tessera/common.h>

#include "spf.h"

struct spf_buf {
	char *s;
	size_t len, cap;
};

static void
spf_buf_add(struct spf_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = ts_xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static bool
spf_macro_letter(char c, bool exp)
{
	c = (char)tolower((unsigned char)c);
	if (strchr("slodipvh", c) != NULL)
		return true;
	return exp && strchr("crt", c) != NULL;
}

static bool
spf_delimiter(char c)
{
	return strchr(".-+,/_=", c) != NULL;
}

/*
 * Parse one macro-expand at s[0] == '%'.  Returns its length, or 0 when
 * malformed.  Fills letter, digits (-1 none), reverse and delimiters.
 */
static size_t
spf_macro_token(const char *s, size_t len, bool exp, char *letter_r,
		int *digits_r, bool *reverse_r, char *delims_r)
{
	size_t i = 2, nd = 0;
	int digits = -1;

	if (len < 2)
		return 0;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
		*letter_r = s[1];
		return 2;
	}
	if (s[1] != '{' || len < 4 || !spf_macro_letter(s[2], exp))
		return 0;
	*letter_r = s[2];
	i = 3;
	while (i < len && isdigit((unsigned char)s[i])) {
		digits = (digits < 0 ? 0 : digits) * 10 + (s[i] - '0');
		if (digits > 128)
			digits = 128;
		i++;
	}
	/* 7.3: a DIGIT transformer must be at least one. */
	if (digits == 0)
		return 0;
	*reverse_r = false;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		*reverse_r = true;
		i++;
	}
	while (i < len && spf_delimiter(s[i])) {
		if (nd < 7)
			delims_r[nd++] = s[i];
		i++;
	}
	delims_r[nd] = '\0';
	if (i >= len || s[i] != '}')
		return 0;
	*digits_r = digits;
	return i + 1;
}

bool
spf_macro_valid(const char *s, size_t len, bool exp)
{
	char letter, delims[8];
	int digits;
	bool rev;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			size_t n = spf_macro_token(s + i, len - i, exp, &letter,
						   &digits, &rev, delims);
			if (n == 0)
				return false;
			i += n;
		} else if (c >= 0x21 && c <= 0x7e) {
			i++;
		} else if (exp && c == ' ') {
			/* explain-string allows SP between macro-strings */
			i++;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static bool
spf_toplabel_valid(const char *s, size_t n)
{
	bool alpha = false;

	if (n == 0 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (isalpha((unsigned char)s[i]))
			alpha = true;
		else if (s[i] == '-')
			alpha = true; /* the second form: has a hyphen */
		else if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return alpha;
}

bool
spf_domain_spec_valid(const char *s, size_t len)
{
	char letter, delims[8];
	int digits;
	bool rev;
	size_t lit = 0; /* start of the trailing literal run */
	size_t end;

	if (len == 0 || !spf_macro_valid(s, len, false))
		return false;
	for (size_t i = 0; i < len;) {
		if (s[i] == '%') {
			i += spf_macro_token(s + i, len - i, false, &letter,
					     &digits, &rev, delims);
			lit = i;
		} else {
			i++;
		}
	}
	/* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	if (lit == len)
		return true;
	end = len;
	if (s[end - 1] == '.')
		end--;
	for (size_t i = end; i > lit; i--) {
		if (s[i - 1] == '.')
			return spf_toplabel_valid(s + i, end - i);
	}
	return false;
}

/* The raw value of a macro letter into b (before transformers). */
static int
spf_macro_value(char letter, const struct spf_macro_env *env, struct spf_buf *b)
{
	char tmp[80];

	switch (tolower((unsigned char)letter)) {
	case 's':
		spf_buf_add(b, env->sender, strlen(env->sender));
		return 0;
	case 'l':
		spf_buf_add(b, env->local, strlen(env->local));
		return 0;
	case 'o':
		spf_buf_add(b, env->sender_domain, strlen(env->sender_domain));
		return 0;
	case 'd':
		spf_buf_add(b, env->domain, strlen(env->domain));
		return 0;
	case 'h':
		spf_buf_add(b, env->helo, strlen(env->helo));
		return 0;
	case 'r':
		spf_buf_add(b, env->receiver, strlen(env->receiver));
		return 0;
	case 'p':
		if (env->p == NULL)
			return SPF_MACRO_NEED_P;
		spf_buf_add(b, env->p, strlen(env->p));
		return 0;
	case 'v':
		spf_buf_add(b, env->family == 4 ? "in-addr" : "ip6",
			    env->family == 4 ? 7 : 3);
		return 0;
	case 't':
		snprintf(tmp, sizeof(tmp), "%lld", (long long)env->now);
		spf_buf_add(b, tmp, strlen(tmp));
		return 0;
	case 'i':
	case 'c':
		if (env->family == 4) {
			snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", env->ip[0],
				 env->ip[1], env->ip[2], env->ip[3]);
		} else if (tolower((unsigned char)letter) == 'i') {
			/* 7.3: IPv6 %{i} is dot-separated nibbles */
			for (int k = 0; k < 16; k++)
				snprintf(tmp + k * 4, 5, "%x.%x.",
					 env->ip[k] >> 4, env->ip[k] & 15);
			tmp[63] = '\0';
		} else {
			if (inet_ntop(AF_INET6, env->ip, tmp, sizeof(tmp)) ==
			    NULL)
				return -1;
		}
		spf_buf_add(b, tmp, strlen(tmp));
		return 0;
	}
	return -1;
}

/* Split on delims, reverse, keep the rightmost `digits` parts, join by '.' */
static void
spf_macro_transform(const char *v, int digits, bool reverse, const char *delims,
		    struct spf_buf *out)
{
	const char *parts[256];
	size_t lens[256], n = 0, first;
	const char *p = v;

	if (*delims == '\0')
		delims = ".";
	for (;;) {
		size_t l = strcspn(p, delims);

		if (n < 256) {
			parts[n] = p;
			lens[n++] = l;
		}
		if (p[l] == '\0')
			break;
		p += l + 1;
	}
	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			const char *tp = parts[i];
			size_t tl = lens[i];

			parts[i] = parts[n - 1 - i];
			lens[i] = lens[n - 1 - i];
			parts[n - 1 - i] = tp;
			lens[n - 1 - i] = tl;
		}
	}
	first = digits > 0 && (size_t)digits < n ? n - (size_t)digits : 0;
	for (size_t i = first; i < n; i++) {
		if (i > first)
			spf_buf_add(out, ".", 1);
		spf_buf_add(out, parts[i], lens[i]);
	}
}

/* 7.3: upper-case macro letters URL-escape (RFC 3986 unreserved kept). */
static void
spf_url_escape(const char *s, struct spf_buf *out)
{
	char tmp[4];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			spf_buf_add(out, s, 1);
		} else {
			snprintf(tmp, sizeof(tmp), "%%%02X", c);
			spf_buf_add(out, tmp, 3);
		}
	}
}

int
spf_macro_expand(const char *s, const struct spf_macro_env *env, bool exp,
		 char **out_r)
{
	struct spf_buf out = { 0 }, val = { 0 }, tr = { 0 };
	size_t len = strlen(s);
	int rc = 0;

	spf_buf_add(&out, "", 0);
	for (size_t i = 0; i < len && rc == 0;) {
		char letter, delims[8];
		int digits;
		bool rev;
		size_t n;

		if (s[i] != '%') {
			spf_buf_add(&out, s + i, 1);
			i++;
			continue;
		}
		n = spf_macro_token(s + i, len - i, exp, &letter, &digits, &rev,
				    delims);
		if (n == 0) {
			rc = -1;
			break;
		}
		i += n;
		if (n == 2) {
			/* "%%", "%_" (a space), "%-" (URL-encoded space) */
			spf_buf_add(&out,
				    letter == '%'   ? "%"
				    : letter == '_' ? " "
						    : "%20",
				    letter == '-' ? 3 : 1);
			continue;
		}
		val.len = 0;
		tr.len = 0;
		spf_buf_add(&val, "", 0);
		spf_buf_add(&tr, "", 0);
		rc = spf_macro_value(letter, env, &val);
		if (rc != 0)
			break;
		spf_macro_transform(val.s, digits, rev, delims, &tr);
		if (isupper((unsigned char)letter))
			spf_url_escape(tr.s, &out);
		else
			spf_buf_add(&out, tr.s, tr.len);
	}
	free(val.s);
	free(tr.s);
	if (rc != 0) {
		free(out.s);
		return rc;
	}
	if (!exp) {
		/* 7.3: over 253 octets, drop labels on the left. */
		char *p = out.s;

		while (strlen(p) > 253 && strchr(p, '.') != NULL)
			p = strchr(p, '.') + 1;
		if (p != out.s)
			memmove(out.s, p, strlen(p) + 1);
	}
	*out_r = out.s;
	return 0;
}
