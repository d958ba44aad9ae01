/*
 * modules/dkim/key.c — parsing DKIM key records (RFC 6376 3.6.1).
 *
 * A key record is a tag list in a TXT record: v=DKIM1 (optional, first
 * when present), h= acceptable hashes, k= key type (rsa, ed25519 per RFC
 * 8463), n= notes, p= the base64 public key (empty: revoked), s= service
 * types (* or email), t= flags (y testing, s strict i=).  Unknown tags
 * and unknown flags or hashes are ignored; anything else malformed makes
 * the key unusable (permerror).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"

static int
dkim_key_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return TS_E_INVAL;
}

static bool
dkim_key_tag(const char *n, size_t nl, const char *want)
{
	return strlen(want) == nl && memcmp(n, want, nl) == 0;
}

/* Split a colon-separated list (white space ignored); call fn per item. */
static bool
dkim_key_list_has(const char *v, size_t vl, const char *want)
{
	char *s = ts_xmalloc(vl + 1);
	size_t n = 0;
	for (size_t i = 0; i < vl; i++)
		if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
			s[n++] = v[i];
	s[n] = '\0';
	bool found = false;
	char *save = NULL;
	for (char *t = strtok_r(s, ":", &save); t != NULL;
	     t = strtok_r(NULL, ":", &save))
		if (strcasecmp(t, want) == 0)
			found = true;
	free(s);
	return found;
}

void
dkim_key_clear(struct dkim_key *key)
{
	free(key->p);
	memset(key, 0, sizeof(*key));
}

int
dkim_key_parse(const char *text, size_t len, struct dkim_key *out, char *err,
	       size_t errlen)
{
	struct dkim_key key;
	memset(&key, 0, sizeof(key));
	key.sha256_ok = key.sha1_ok = true;
	size_t pos = 0;
	const char *n, *v;
	size_t nl, vl;
	int rc, idx = 0;
	bool have_p = false, have_k = false;
	if (memchr(text, '\0', len) != NULL)
		return dkim_key_err(err, errlen, "key record has a NUL byte");
	while ((rc = dkim_tag_next(text, len, &pos, &n, &nl, &v, &vl)) == 1) {
		idx++;
		if (dkim_key_tag(n, nl, "v")) {
			if (idx != 1 || vl != 5 ||
			    memcmp(v, "DKIM1", 5) != 0) {
				dkim_key_clear(&key);
				return dkim_key_err(err, errlen,
						    "key record v= is not "
						    "DKIM1 first");
			}
		} else if (dkim_key_tag(n, nl, "k")) {
			if (have_k)
				goto dup;
			have_k = true;
			if (vl == 3 && strncasecmp(v, "rsa", 3) == 0)
				key.type = DKIM_KEY_RSA;
			else if (vl == 7 && strncasecmp(v, "ed25519", 7) == 0)
				key.type = DKIM_KEY_ED25519;
			else {
				dkim_key_clear(&key);
				return dkim_key_err(
					err, errlen, "unknown key type k=%.*s",
					(int)(vl > 30 ? 30 : vl), v);
			}
		} else if (dkim_key_tag(n, nl, "h")) {
			key.sha256_ok = dkim_key_list_has(v, vl, "sha256");
			key.sha1_ok = dkim_key_list_has(v, vl, "sha1");
		} else if (dkim_key_tag(n, nl, "p")) {
			if (have_p)
				goto dup;
			have_p = true;
			if (dkim_base64_decode(v, vl, &key.p, &key.p_len) < 0) {
				dkim_key_clear(&key);
				return dkim_key_err(err, errlen,
						    "key p= is not base64");
			}
			if (key.p_len == 0) {
				free(key.p);
				key.p = NULL;
				key.revoked = true;
			}
		} else if (dkim_key_tag(n, nl, "s")) {
			if (!dkim_key_list_has(v, vl, "*") &&
			    !dkim_key_list_has(v, vl, "email")) {
				dkim_key_clear(&key);
				return dkim_key_err(
					err, errlen,
					"key is not for email (s=)");
			}
		} else if (dkim_key_tag(n, nl, "t")) {
			key.testing = dkim_key_list_has(v, vl, "y");
			key.strict = dkim_key_list_has(v, vl, "s");
		}
	}
	if (rc < 0) {
		dkim_key_clear(&key);
		return dkim_key_err(err, errlen, "malformed key record");
	}
	if (!have_p)
		return dkim_key_err(err, errlen, "key record has no p=");
	*out = key;
	return 0;
dup:
	dkim_key_clear(&key);
	return dkim_key_err(err, errlen, "duplicate tag in key record");
}
