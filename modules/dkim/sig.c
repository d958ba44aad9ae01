/*
 * modules/dkim/sig.c — parsing DKIM-Signature fields (RFC 6376 3.5).
 *
 * The tag-list syntax (3.2) is shared with key records: `tag=value`
 * separated by semicolons, folding white space allowed around names,
 * equals signs and values.  A signature is parsed strictly: a duplicate
 * tag, a missing required tag, an unknown algorithm or canonicalization,
 * a malformed domain or number is a permerror with a reason; unknown
 * tags are ignored as the RFC asks.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"

static bool
dkim_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
dkim_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return TS_E_INVAL;
}

int
dkim_tag_next(const char *s, size_t len, size_t *pos, const char **name,
	      size_t *name_len, const char **value, size_t *value_len)
{
	size_t i = *pos;
	for (;;) {
		while (i < len && dkim_fws(s[i]))
			i++;
		if (i >= len) {
			*pos = i;
			return 0;
		}
		/* An empty element (";;" or a trailing ";") is allowed at
		 * the end only; in the middle we skip it like most do. */
		if (s[i] == ';') {
			i++;
			continue;
		}
		break;
	}
	size_t n0 = i;
	if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		return TS_E_INVAL;
	while (i < len &&
	       ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		(s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
		i++;
	size_t n1 = i;
	while (i < len && dkim_fws(s[i]))
		i++;
	if (i >= len || s[i] != '=')
		return TS_E_INVAL;
	i++;
	while (i < len && dkim_fws(s[i]))
		i++;
	size_t v0 = i;
	while (i < len && s[i] != ';')
		i++;
	size_t v1 = i;
	while (v1 > v0 && dkim_fws(s[v1 - 1]))
		v1--;
	/* tval characters: VCHAR except ';', plus FWS inside. */
	for (size_t k = v0; k < v1; k++) {
		unsigned char c = (unsigned char)s[k];
		if (!dkim_fws((char)c) && (c < 0x21 || c > 0x7e))
			return TS_E_INVAL;
	}
	if (i < len)
		i++; /* the ';' */
	*name = s + n0;
	*name_len = n1 - n0;
	*value = s + v0;
	*value_len = v1 - v0;
	*pos = i;
	return 1;
}

int
dkim_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
	char *clean = ts_xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (dkim_fws(s[i]))
			continue;
		clean[n++] = s[i];
	}
	clean[n] = '\0';
	*out = NULL;
	*out_len = 0;
	if (n == 0) {
		free(clean);
		*out = ts_xmalloc(1);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = clean[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			  (c == '=' && i + 2 >= n);
		if (!ok || n % 4 != 0) {
			free(clean);
			return TS_E_INVAL;
		}
	}
	gnutls_datum_t in = { (unsigned char *)clean, (unsigned)n };
	gnutls_datum_t res = { NULL, 0 };
	int rc = gnutls_base64_decode2(&in, &res);
	free(clean);
	if (rc < 0)
		return TS_E_INVAL;
	*out = ts_xmalloc(res.size + 1);
	memcpy(*out, res.data, res.size);
	*out_len = res.size;
	gnutls_free(res.data);
	return 0;
}

char *
dkim_base64_encode(const uint8_t *data, size_t len)
{
	gnutls_datum_t in = { (unsigned char *)data, (unsigned)len };
	gnutls_datum_t res = { NULL, 0 };
	if (gnutls_base64_encode2(&in, &res) < 0)
		abort();
	char *s = ts_xstrndup((const char *)res.data, res.size);
	gnutls_free(res.data);
	return s;
}

static bool
dkim_tag_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* The value with FWS removed, NUL-terminated. */
static char *
dkim_value_nows(const char *v, size_t len)
{
	char *s = ts_xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (!dkim_fws(v[i]))
			s[n++] = v[i];
	s[n] = '\0';
	return s;
}

/* A domain name as d= allows: dot-separated LDH labels (no empty ones). */
static bool
dkim_domain_ok(const char *d)
{
	size_t label = 0;
	if (*d == '\0' || strlen(d) > 253)
		return false;
	for (const char *p = d; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || (c == '-' && label > 0) ||
			  c == '_' || c >= 0x80;
		if (!ok || ++label > 63)
			return false;
	}
	return label > 0;
}

/* Decimal digits only, at most 20 (RFC: 1*76DIGIT; we cap). */
static bool
dkim_number(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			n = UINT64_MAX; /* saturate: far future */
		else
			n = n * 10 + d;
	}
	*v = n;
	return true;
}

/* Decode dkim-quoted-printable (=XX escapes) in place; false if bad. */
static bool
dkim_qp_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p != '\0'; p++) {
		if (*p != '=') {
			*o++ = *p;
			continue;
		}
		int v = 0;
		for (int k = 1; k <= 2; k++) {
			char c = p[k];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
						       : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		*o++ = (char)v;
		p += 2;
	}
	*o = '\0';
	return true;
}

void
dkim_sig_clear(struct dkim_sig *sig)
{
	free(sig->b);
	free(sig->bh);
	free(sig->d);
	free(sig->s);
	free(sig->i);
	for (size_t k = 0; k < sig->h_count; k++)
		free(sig->h[k]);
	free(sig->h);
	memset(sig, 0, sizeof(*sig));
}

/* Is `sub` the domain `d` or a subdomain of it (case-insensitive)? */
static bool
dkim_domain_within(const char *sub, const char *d)
{
	size_t ls = strlen(sub), ld = strlen(d);
	if (ls < ld || strcasecmp(sub + ls - ld, d) != 0)
		return false;
	return ls == ld || sub[ls - ld - 1] == '.';
}

static int
dkim_sig_parse_h(struct dkim_sig *sig, const char *v, size_t len, char *err,
		 size_t errlen)
{
	char *s = dkim_value_nows(v, len);
	bool from = false;
	char *save = NULL;
	if (s[0] == '\0' || s[0] == ':' || s[strlen(s) - 1] == ':' ||
	    strstr(s, "::") != NULL) {
		free(s);
		return dkim_err(err, errlen, "h= has an empty header name");
	}
	for (char *t = strtok_r(s, ":", &save); t != NULL;
	     t = strtok_r(NULL, ":", &save)) {
		for (const char *p = t; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;
			if (c < 0x21 || c > 0x7e) {
				free(s);
				return dkim_err(err, errlen,
						"h= has a bad header name");
			}
		}
		if (strcasecmp(t, "from") == 0)
			from = true;
		sig->h = ts_xrealloc(sig->h,
				     (sig->h_count + 1) * sizeof(char *));
		sig->h[sig->h_count++] = ts_xstrdup(t);
	}
	free(s);
	if (!from)
		return dkim_err(err, errlen, "h= does not include From");
	return 0;
}

int
dkim_sig_parse(const char *value, size_t len, struct dkim_sig *out, char *err,
	       size_t errlen)
{
	struct dkim_sig sig;
	memset(&sig, 0, sizeof(sig));
	bool seen[26 * 2] = { false };
	const char *req = NULL;
	size_t pos = 0;
	int rc;
	const char *n, *v;
	size_t nl, vl;
	bool have_v = false, have_a = false, have_c = false, have_q = false;
	while ((rc = dkim_tag_next(value, len, &pos, &n, &nl, &v, &vl)) == 1) {
		/* Duplicate tags: permerror (3.2).  Track one-letter ones. */
		int slot = -1;
		if (nl == 1 && n[0] >= 'a' && n[0] <= 'z')
			slot = n[0] - 'a';
		else if (nl == 2 && n[0] == 'b' && n[1] == 'h')
			slot = 26;
		if (slot >= 0) {
			if (seen[slot]) {
				dkim_err(err, errlen, "duplicate tag %.*s",
					 (int)nl, n);
				goto bad;
			}
			seen[slot] = true;
		}
		char *val = dkim_value_nows(v, vl);
		if (dkim_tag_is(n, nl, "v")) {
			have_v = true;
			if (strcmp(val, "1") != 0) {
				dkim_err(err, errlen,
					 "unsupported version v=%s", val);
				free(val);
				goto bad;
			}
		} else if (dkim_tag_is(n, nl, "a")) {
			have_a = true;
			if (strcasecmp(val, "rsa-sha256") == 0)
				sig.alg = DKIM_ALG_RSA_SHA256;
			else if (strcasecmp(val, "ed25519-sha256") == 0)
				sig.alg = DKIM_ALG_ED25519_SHA256;
			else if (strcasecmp(val, "rsa-sha1") == 0)
				sig.alg = DKIM_ALG_RSA_SHA1;
			else {
				dkim_err(err, errlen,
					 "unknown algorithm a=%.40s", val);
				free(val);
				goto bad;
			}
		} else if (dkim_tag_is(n, nl, "b")) {
			free(val);
			if (dkim_base64_decode(v, vl, &sig.b, &sig.b_len) < 0 ||
			    sig.b_len == 0) {
				dkim_err(err, errlen, "b= is not base64");
				goto bad;
			}
			continue;
		} else if (dkim_tag_is(n, nl, "bh")) {
			free(val);
			if (dkim_base64_decode(v, vl, &sig.bh, &sig.bh_len) <
				    0 ||
			    sig.bh_len == 0) {
				dkim_err(err, errlen, "bh= is not base64");
				goto bad;
			}
			continue;
		} else if (dkim_tag_is(n, nl, "c")) {
			have_c = true;
			char *slash = strchr(val, '/');
			const char *hc = val, *bc = "simple";
			if (slash != NULL) {
				*slash = '\0';
				bc = slash + 1;
			}
			bool ok = true;
			if (strcasecmp(hc, "simple") == 0)
				sig.hcanon = DKIM_CANON_SIMPLE;
			else if (strcasecmp(hc, "relaxed") == 0)
				sig.hcanon = DKIM_CANON_RELAXED;
			else
				ok = false;
			if (strcasecmp(bc, "simple") == 0)
				sig.bcanon = DKIM_CANON_SIMPLE;
			else if (strcasecmp(bc, "relaxed") == 0)
				sig.bcanon = DKIM_CANON_RELAXED;
			else
				ok = false;
			if (!ok) {
				free(val);
				dkim_err(err, errlen,
					 "unknown canonicalization c=");
				goto bad;
			}
		} else if (dkim_tag_is(n, nl, "d")) {
			if (!dkim_domain_ok(val)) {
				free(val);
				dkim_err(err, errlen, "d= is not a domain");
				goto bad;
			}
			sig.d = val;
			continue;
		} else if (dkim_tag_is(n, nl, "s")) {
			if (!dkim_domain_ok(val)) {
				free(val);
				dkim_err(err, errlen, "s= is not a selector");
				goto bad;
			}
			sig.s = val;
			continue;
		} else if (dkim_tag_is(n, nl, "h")) {
			free(val);
			if (dkim_sig_parse_h(&sig, v, vl, err, errlen) < 0)
				goto bad;
			continue;
		} else if (dkim_tag_is(n, nl, "i")) {
			char *at = strrchr(val, '@');
			if (!dkim_qp_decode(val) ||
			    (at = strrchr(val, '@')) == NULL ||
			    !dkim_domain_ok(at + 1)) {
				free(val);
				dkim_err(err, errlen, "i= is malformed");
				goto bad;
			}
			sig.i = val;
			continue;
		} else if (dkim_tag_is(n, nl, "l")) {
			if (!dkim_number(val, &sig.l)) {
				free(val);
				dkim_err(err, errlen, "l= is not a number");
				goto bad;
			}
			sig.has_l = true;
		} else if (dkim_tag_is(n, nl, "q")) {
			have_q = true;
			/* A colon-separated list; dns/txt must be in it. */
			bool ok = false;
			char *save = NULL;
			for (char *t = strtok_r(val, ":", &save); t != NULL;
			     t = strtok_r(NULL, ":", &save))
				if (strcasecmp(t, "dns/txt") == 0)
					ok = true;
			if (!ok) {
				free(val);
				dkim_err(err, errlen,
					 "q= does not offer dns/txt");
				goto bad;
			}
		} else if (dkim_tag_is(n, nl, "t")) {
			if (!dkim_number(val, &sig.t)) {
				free(val);
				dkim_err(err, errlen, "t= is not a number");
				goto bad;
			}
			sig.has_t = true;
		} else if (dkim_tag_is(n, nl, "x")) {
			if (!dkim_number(val, &sig.x)) {
				free(val);
				dkim_err(err, errlen, "x= is not a number");
				goto bad;
			}
			sig.has_x = true;
		}
		/* z= (copied headers) and unknown tags: ignored. */
		free(val);
	}
	(void)have_c;
	(void)have_q;
	if (rc < 0) {
		dkim_err(err, errlen, "malformed tag list");
		goto bad;
	}
	if (!have_v)
		req = "v";
	else if (!have_a)
		req = "a";
	else if (sig.b == NULL)
		req = "b";
	else if (sig.bh == NULL)
		req = "bh";
	else if (sig.d == NULL)
		req = "d";
	else if (sig.h == NULL)
		req = "h";
	else if (sig.s == NULL)
		req = "s";
	if (req != NULL) {
		dkim_err(err, errlen, "missing tag %s=", req);
		goto bad;
	}
	if (sig.i != NULL &&
	    !dkim_domain_within(strrchr(sig.i, '@') + 1, sig.d)) {
		dkim_err(err, errlen, "i= domain is not within d=");
		goto bad;
	}
	if (sig.has_t && sig.has_x && sig.x < sig.t) {
		dkim_err(err, errlen, "x= is before t=");
		goto bad;
	}
	*out = sig;
	return 0;
bad:
	dkim_sig_clear(&sig);
	return TS_E_INVAL;
}

char *
dkim_sig_strip_b(const char *value, size_t len, size_t *len_r)
{
	size_t pos = 0;
	const char *n, *v;
	size_t nl, vl;
	while (dkim_tag_next(value, len, &pos, &n, &nl, &v, &vl) == 1) {
		if (!dkim_tag_is(n, nl, "b"))
			continue;
		size_t cut0 = (size_t)(v - value), cut1 = cut0 + vl;
		char *s = ts_xmalloc(len - vl + 1);
		memcpy(s, value, cut0);
		memcpy(s + cut0, value + cut1, len - cut1);
		s[len - vl] = '\0';
		*len_r = len - vl;
		return s;
	}
	*len_r = len;
	return ts_xstrndup(value, len);
}
