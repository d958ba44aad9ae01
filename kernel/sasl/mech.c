/*
 * kernel/sasl/mech.c — the message formats of the simple mechanisms:
 * PLAIN (RFC 4616), LOGIN (no RFC; the "Username:"/"Password:" exchange
 * every client knows) and CRAM-MD5 (RFC 2195), plus the identity text
 * check they share with SCRAM.
 *
 * Pure functions: parsing, the CRAM-MD5 challenge and its check against
 * the stored HMAC-MD5 pad states.  Fetching secrets and driving the
 * exchange is sasl.c's job; SCRAM lives in scram.c.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/sasl/sasl-private.h"
#include "kernel/store/md5.h"

bool
ts__sasl_text_ok(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += n + 1;
	}
	return true;
}

/* --- PLAIN ------------------------------------------------------------- */

enum ts_sasl_status
ts__plain_parse(const uint8_t *msg, size_t len, char **authzid_r,
		char **authcid_r, char **password_r, const char **error_r)
{
	const uint8_t *nul1, *nul2;

	*authzid_r = *authcid_r = *password_r = NULL;
	nul1 = memchr(msg, 0, len);
	nul2 = nul1 != NULL
		       ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - msg))
		       : NULL;
	if (nul2 == NULL) {
		*error_r = "malformed PLAIN message: fewer than two NULs";
		return TS_SASL_ERROR;
	}
	const uint8_t *authcid = nul1 + 1, *password = nul2 + 1;
	size_t authzid_len = (size_t)(nul1 - msg);
	size_t authcid_len = (size_t)(nul2 - authcid);
	size_t password_len = len - (size_t)(password - msg);

	if (memchr(password, 0, password_len) != NULL) {
		*error_r = "malformed PLAIN message: more than two NULs";
		return TS_SASL_ERROR;
	}
	if (authcid_len == 0) {
		*error_r = "malformed PLAIN message: empty authentication "
			   "identity";
		return TS_SASL_ERROR;
	}
	if (password_len == 0) {
		*error_r = "malformed PLAIN message: empty password";
		return TS_SASL_ERROR;
	}
	if (!ts__sasl_text_ok(msg, authzid_len) ||
	    !ts__sasl_text_ok(authcid, authcid_len)) {
		*error_r = "malformed PLAIN message: identity is not UTF-8 "
			   "text";
		return TS_SASL_ERROR;
	}
	if (authzid_len > 0)
		*authzid_r = ts_xstrndup((const char *)msg, authzid_len);
	*authcid_r = ts_xstrndup((const char *)authcid, authcid_len);
	*password_r = ts_xstrndup((const char *)password, password_len);
	return TS_SASL_CONTINUE;
}

/* --- LOGIN ------------------------------------------------------------- */

enum ts_sasl_status
ts__login_parse(const uint8_t *msg, size_t len, bool password, char **text_r,
		const char **error_r)
{
	*text_r = NULL;
	if (len == 0) {
		*error_r = password ? "malformed LOGIN exchange: empty password"
				    : "malformed LOGIN exchange: empty user "
				      "name";
		return TS_SASL_ERROR;
	}
	if (memchr(msg, 0, len) != NULL) {
		*error_r = password ? "malformed LOGIN exchange: NUL in "
				      "password"
				    : "malformed LOGIN exchange: NUL in user "
				      "name";
		return TS_SASL_ERROR;
	}
	if (!password && !ts__sasl_text_ok(msg, len)) {
		*error_r = "malformed LOGIN exchange: user name is not UTF-8 "
			   "text";
		return TS_SASL_ERROR;
	}
	*text_r = ts_xstrndup((const char *)msg, len);
	return TS_SASL_CONTINUE;
}

/* --- CRAM-MD5 ---------------------------------------------------------- */

char *
ts__cram_md5_challenge(const char *hostname, int64_t now)
{
	uint64_t r = 0;

	/* Without randomness the challenge could repeat: never go on. */
	if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) != 0)
		abort();
	return ts_xasprintf("<%" PRIu64 ".%" PRId64 "@%s>", r, now,
			    hostname != NULL ? hostname : "localhost");
}

static int
mech_hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum ts_sasl_status
ts__cram_md5_parse(const uint8_t *msg, size_t len, char **username_r,
		   uint8_t digest_r[16], const char **error_r)
{
	size_t sp = len;

	*username_r = NULL;
	while (sp > 0 && msg[sp - 1] != ' ')
		sp--;
	/* msg[sp - 1] is the last space; the digest follows it. */
	if (sp == 0 || len - sp != 32) {
		*error_r = "malformed CRAM-MD5 response: expected "
			   "\"user digest\" with a 32-digit hex digest";
		return TS_SASL_ERROR;
	}
	if (sp == 1) {
		*error_r = "malformed CRAM-MD5 response: empty user name";
		return TS_SASL_ERROR;
	}
	for (size_t i = 0; i < 16; i++) {
		int hi = mech_hex_value(msg[sp + 2 * i]);
		int lo = mech_hex_value(msg[sp + 2 * i + 1]);
		if (hi < 0 || lo < 0) {
			*error_r = "malformed CRAM-MD5 response: digest is "
				   "not hex";
			return TS_SASL_ERROR;
		}
		digest_r[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!ts__sasl_text_ok(msg, sp - 1)) {
		*error_r = "malformed CRAM-MD5 response: user name is not "
			   "UTF-8 text";
		return TS_SASL_ERROR;
	}
	*username_r = ts_xstrndup((const char *)msg, sp - 1);
	return TS_SASL_CONTINUE;
}

bool
ts__cram_md5_check(const struct ts_cram_md5_secret *secret,
		   const char *challenge, const uint8_t digest[16])
{
	uint8_t want[TS__MD5_DIGEST];
	bool ok;

	ts__cram_md5_hmac(secret->inner, secret->outer, challenge,
			  strlen(challenge), want);
	ok = gnutls_memcmp(want, digest, sizeof(want)) == 0;
	gnutls_memset(want, 0, sizeof(want));
	return ok;
}
