/*
 * kernel/sasl/client.c — the client side of SASL: what tessera says when
 * it authenticates to another server (a smarthost, `tessera sendmail`
 * submitting to a tessera).
 *
 * A pure state machine per exchange: the caller hands it the server's
 * decoded challenges and sends the responses it builds; it touches no
 * socket and no store.  PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and
 * SCRAM-SHA-1/-256 with and without channel binding (RFC 5802, RFC 7677,
 * RFC 9266).  For SCRAM it checks the server's signature: a server that
 * says "success" without proving it knows the password is not believed
 * (ts_sasl_client_complete stays false).
 *
 * The SCRAM key derivation (PBKDF2 with the server's iteration count)
 * costs CPU in proportion to that count; counts above
 * TS__SASL_CLIENT_MAX_ITERATIONS are refused so a hostile server cannot
 * make us spin.  Passwords are wiped when the exchange is freed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/sasl/sasl-private.h"

/* More SCRAM iterations than this are refused (RFC 7677 suggests 4096+;
 * the derivation runs on the caller's thread, the loop for a relay). */
#define TS__SASL_CLIENT_MAX_ITERATIONS 100000

enum sasl_client_mech {
	SC_PLAIN,
	SC_LOGIN,
	SC_CRAM_MD5,
	SC_SCRAM,
};

struct ts_sasl_client {
	enum sasl_client_mech mech;
	char *name; /* canonical mechanism name */
	char *username, *password, *authzid;
	unsigned steps; /* ts_sasl_client_step calls so far */
	bool complete;
	bool failed;
	bool resent; /* the initial response went again after "334 " */
	const char *error;

	/* SCRAM */
	bool plus;
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t digest;
	size_t hash_len;
	char *cb_type;
	uint8_t *cb_data;
	size_t cb_len;
	char *gs2_header;
	char *client_nonce;
	char *client_first_bare;
	uint8_t server_signature[64];
};

/* Mechanisms in order of preference, best first. */
static const char *const sasl_client_order[] = {
	"SCRAM-SHA-256-PLUS",
	"SCRAM-SHA-256",
	"SCRAM-SHA-1-PLUS",
	"SCRAM-SHA-1",
	"CRAM-MD5",
	"PLAIN",
	"LOGIN",
};

/* Whether the space-separated list names mech (case-insensitive). */
static bool
sasl_list_has(const char *list, const char *mech)
{
	size_t n = strlen(mech);
	const char *p = list;
	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		size_t w = strcspn(p, " ");
		if (w == n && strncasecmp(p, mech, n) == 0)
			return true;
		p += w;
	}
	return false;
}

const char *
ts_sasl_client_choose(const char *offered, bool tls_active,
		      bool channel_binding, bool allow_plaintext)
{
	if (offered == NULL)
		return NULL;
	for (size_t i = 0;
	     i < sizeof(sasl_client_order) / sizeof(sasl_client_order[0]);
	     i++) {
		const char *m = sasl_client_order[i];
		if (strstr(m, "-PLUS") != NULL && !channel_binding)
			continue;
		if ((strcmp(m, "PLAIN") == 0 || strcmp(m, "LOGIN") == 0) &&
		    !tls_active && !allow_plaintext)
			continue;
		if (sasl_list_has(offered, m))
			return m;
	}
	return NULL;
}

static void
sasl_wipe_str(char **s)
{
	if (*s != NULL) {
		gnutls_memset(*s, 0, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
ts_sasl_client_free(struct ts_sasl_client **cp)
{
	struct ts_sasl_client *c = cp != NULL ? *cp : NULL;
	if (c == NULL)
		return;
	free(c->name);
	sasl_wipe_str(&c->username);
	sasl_wipe_str(&c->password);
	sasl_wipe_str(&c->authzid);
	free(c->cb_type);
	free(c->cb_data);
	free(c->gs2_header);
	sasl_wipe_str(&c->client_nonce);
	sasl_wipe_str(&c->client_first_bare);
	gnutls_memset(c, 0, sizeof(*c));
	free(c);
	*cp = NULL;
}

struct ts_sasl_client *
ts_sasl_client_new(const struct ts_sasl_client_opts *opts, const char **error_r)
{
	const char *m = opts->mechanism;
	enum sasl_client_mech mech;
	bool plus = false;
	gnutls_mac_algorithm_t mac = GNUTLS_MAC_UNKNOWN;
	gnutls_digest_algorithm_t digest = GNUTLS_DIG_UNKNOWN;
	size_t hash_len = 0;

	*error_r = NULL;
	if (m == NULL || opts->username == NULL || opts->password == NULL) {
		*error_r = "no mechanism, user name or password";
		return NULL;
	}
	if (strcasecmp(m, "PLAIN") == 0) {
		mech = SC_PLAIN;
	} else if (strcasecmp(m, "LOGIN") == 0) {
		mech = SC_LOGIN;
	} else if (strcasecmp(m, "CRAM-MD5") == 0) {
		mech = SC_CRAM_MD5;
	} else if (strcasecmp(m, "SCRAM-SHA-256") == 0 ||
		   strcasecmp(m, "SCRAM-SHA-256-PLUS") == 0) {
		mech = SC_SCRAM;
		mac = GNUTLS_MAC_SHA256;
		digest = GNUTLS_DIG_SHA256;
		hash_len = 32;
	} else if (strcasecmp(m, "SCRAM-SHA-1") == 0 ||
		   strcasecmp(m, "SCRAM-SHA-1-PLUS") == 0) {
		mech = SC_SCRAM;
		mac = GNUTLS_MAC_SHA1;
		digest = GNUTLS_DIG_SHA1;
		hash_len = 20;
	} else {
		*error_r = "unknown SASL mechanism";
		return NULL;
	}
	if (mech == SC_SCRAM)
		plus = strlen(m) > 5 &&
		       strcasecmp(m + strlen(m) - 5, "-PLUS") == 0;
	if ((mech == SC_PLAIN || mech == SC_LOGIN) && !opts->tls_active &&
	    !opts->allow_plaintext) {
		*error_r = "PLAIN and LOGIN send the password: not without TLS";
		return NULL;
	}
	if (plus && opts->cb_type == NULL) {
		*error_r = "a -PLUS mechanism needs channel binding, and the "
			   "connection has none";
		return NULL;
	}
	if (opts->username[0] == '\0' || opts->password[0] == '\0') {
		*error_r = "empty user name or password";
		return NULL;
	}
	if (mech == SC_LOGIN && opts->authzid != NULL &&
	    opts->authzid[0] != '\0') {
		*error_r = "LOGIN cannot carry an authorization identity";
		return NULL;
	}

	struct ts_sasl_client *c = ts_xcalloc(1, sizeof(*c));
	c->mech = mech;
	c->name = ts_xstrdup(m);
	for (char *p = c->name; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	c->username = ts_xstrdup(opts->username);
	c->password = ts_xstrdup(opts->password);
	if (opts->authzid != NULL && opts->authzid[0] != '\0')
		c->authzid = ts_xstrdup(opts->authzid);
	c->plus = plus;
	c->mac = mac;
	c->digest = digest;
	c->hash_len = hash_len;
	if (mech == SC_SCRAM && opts->cb_type != NULL) {
		c->cb_type = ts_xstrdup(opts->cb_type);
		c->cb_data = ts_xmalloc(opts->cb_len + 1);
		if (opts->cb_len > 0)
			memcpy(c->cb_data, opts->cb_data, opts->cb_len);
		c->cb_len = opts->cb_len;
	}
	return c;
}

const char *
ts_sasl_client_mechanism(const struct ts_sasl_client *c)
{
	return c->name;
}

bool
ts_sasl_client_complete(const struct ts_sasl_client *c)
{
	return c->complete && !c->failed;
}

const char *
ts_sasl_client_error(const struct ts_sasl_client *c)
{
	return c->error;
}

/* Fail the exchange with a static reason. */
static int
sasl_client_fail(struct ts_sasl_client *c, const char *why)
{
	c->failed = true;
	c->error = why;
	return TS_E_INVAL;
}

/* Hand a malloc'd buffer out as the response. */
static int
sasl_client_respond(char *resp, size_t len, uint8_t **resp_r, size_t *len_r)
{
	*resp_r = (uint8_t *)resp;
	*len_r = len;
	return 0;
}

/* --- PLAIN, LOGIN, CRAM-MD5 ---------------------------------------------- */

static int
sasl_client_plain(struct ts_sasl_client *c, uint8_t **resp_r, size_t *len_r)
{
	size_t za = c->authzid != NULL ? strlen(c->authzid) : 0;
	size_t u = strlen(c->username), p = strlen(c->password);
	char *buf = ts_xmalloc(za + u + p + 3);
	if (za > 0)
		memcpy(buf, c->authzid, za);
	buf[za] = '\0';
	memcpy(buf + za + 1, c->username, u);
	buf[za + 1 + u] = '\0';
	memcpy(buf + za + 2 + u, c->password, p);
	buf[za + u + p + 2] = '\0';
	c->complete = true;
	return sasl_client_respond(buf, za + u + p + 2, resp_r, len_r);
}

static int
sasl_client_cram_md5(struct ts_sasl_client *c, const uint8_t *challenge,
		     size_t len, uint8_t **resp_r, size_t *len_r)
{
	/* RFC 2195: "<…@…>"; we only insist it is non-empty text. */
	if (len == 0 || memchr(challenge, '\0', len) != NULL)
		return sasl_client_fail(c, "malformed CRAM-MD5 challenge");
	uint8_t digest[16];
	if (gnutls_hmac_fast(GNUTLS_MAC_MD5, c->password, strlen(c->password),
			     challenge, len, digest) != 0)
		return sasl_client_fail(c, "HMAC-MD5 failed");
	char hex[33];
	for (size_t i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	gnutls_memset(digest, 0, sizeof(digest));
	char *resp = ts_xasprintf("%s %s", c->username, hex);
	c->complete = true;
	return sasl_client_respond(resp, strlen(resp), resp_r, len_r);
}

/* --- SCRAM -----------------------------------------------------------------
 */

/* "=" → "=3D", "," → "=2C" (RFC 5802 5.1, saslname). */
static char *
sasl_scram_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p != '\0'; p++)
		n += (*p == '=' || *p == ',') ? 3 : 1;
	char *out = ts_xmalloc(n + 1), *o = out;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '=') {
			memcpy(o, "=3D", 3);
			o += 3;
		} else if (*p == ',') {
			memcpy(o, "=2C", 3);
			o += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* For tests: use this client nonce instead of a random one. */
void
ts__sasl_client_set_nonce(struct ts_sasl_client *c, const char *nonce)
{
	sasl_wipe_str(&c->client_nonce);
	c->client_nonce = ts_xstrdup(nonce);
}

static int
sasl_scram_first(struct ts_sasl_client *c, uint8_t **resp_r, size_t *len_r)
{
	if (c->client_nonce == NULL) {
		uint8_t rnd[24];
		if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) != 0)
			return sasl_client_fail(c, "no random numbers");
		c->client_nonce = ts_base64_encode(rnd, sizeof(rnd));
	}
	char *authz = c->authzid != NULL ? sasl_scram_escape(c->authzid) : NULL;
	const char *flag = c->plus ? "p=" : c->cb_type != NULL ? "y" : "n";
	c->gs2_header = ts_xasprintf(
		"%s%s,%s%s,", flag, c->plus ? c->cb_type : "",
		authz != NULL ? "a=" : "", authz != NULL ? authz : "");
	free(authz);
	char *user = sasl_scram_escape(c->username);
	c->client_first_bare = ts_xasprintf("n=%s,r=%s", user, c->client_nonce);
	sasl_wipe_str(&user);
	char *resp = ts_xasprintf("%s%s", c->gs2_header, c->client_first_bare);
	return sasl_client_respond(resp, strlen(resp), resp_r, len_r);
}

/* The value of attribute `name` if the field is "name=…", else NULL. */
static const char *
sasl_scram_attr(const char *field, char name)
{
	return field[0] == name && field[1] == '=' ? field + 2 : NULL;
}

static int
sasl_scram_final(struct ts_sasl_client *c, const uint8_t *msg, size_t len,
		 uint8_t **resp_r, size_t *len_r)
{
	if (len == 0 || memchr(msg, '\0', len) != NULL)
		return sasl_client_fail(c, "malformed SCRAM server-first "
					   "message");
	char *sf = ts_xstrndup((const char *)msg, len);
	char *fields[3] = { NULL, NULL, NULL };
	char *p = sf;
	/* r=…,s=…,i=…[,extensions] — in this order (RFC 5802 7). */
	for (size_t i = 0; i < 3; i++) {
		fields[i] = p;
		char *comma = p != NULL ? strchr(p, ',') : NULL;
		if (comma != NULL) {
			*comma = '\0';
			p = comma + 1;
		} else {
			p = NULL;
		}
	}
	const char *nonce = fields[0] ? sasl_scram_attr(fields[0], 'r') : NULL;
	const char *salt64 = fields[1] ? sasl_scram_attr(fields[1], 's') : NULL;
	const char *iter = fields[2] ? sasl_scram_attr(fields[2], 'i') : NULL;
	const char *why = NULL;
	uint8_t *salt = NULL;
	size_t salt_len = 0;
	unsigned long iterations = 0;
	if (fields[0] != NULL && sasl_scram_attr(fields[0], 'm') != NULL)
		why = "SCRAM server-first message has a mandatory extension";
	else if (fields[0] != NULL && sasl_scram_attr(fields[0], 'e') != NULL)
		why = "SCRAM server refused the client-first message";
	else if (nonce == NULL || salt64 == NULL || iter == NULL)
		why = "malformed SCRAM server-first message";
	else if (strncmp(nonce, c->client_nonce, strlen(c->client_nonce)) !=
			 0 ||
		 strlen(nonce) <= strlen(c->client_nonce) ||
		 strchr(nonce, ',') != NULL)
		why = "SCRAM server nonce does not extend ours";
	else if (ts__base64_decode_n(salt64, strlen(salt64), &salt,
				     &salt_len) != 0 ||
		 salt_len == 0)
		why = "malformed SCRAM salt";
	else {
		char *end;
		iterations = strtoul(iter, &end, 10);
		if (*end != '\0' || iter[0] < '1' || iter[0] > '9' ||
		    iterations == 0)
			why = "malformed SCRAM iteration count";
		else if (iterations > TS__SASL_CLIENT_MAX_ITERATIONS)
			why = "SCRAM iteration count too high";
	}
	if (why != NULL) {
		free(salt);
		free(sf);
		return sasl_client_fail(c, why);
	}

	/* c= base64(gs2-header [cbind-data]) */
	size_t gl = strlen(c->gs2_header);
	size_t cbl = c->plus ? c->cb_len : 0;
	uint8_t *cbind = ts_xmalloc(gl + cbl + 1);
	memcpy(cbind, c->gs2_header, gl);
	if (cbl > 0)
		memcpy(cbind + gl, c->cb_data, cbl);
	char *cbind64 = ts_base64_encode(cbind, gl + cbl);
	free(cbind);
	char *without_proof = ts_xasprintf("c=%s,r=%s", cbind64, nonce);
	free(cbind64);
	char *auth = ts_xasprintf("%s,%.*s,%s", c->client_first_bare, (int)len,
				  (const char *)msg, without_proof);

	uint8_t salted[64], client_key[64], stored_key[64], server_key[64],
		client_sig[64], proof[64];
	gnutls_datum_t pw = { (unsigned char *)c->password,
			      (unsigned)strlen(c->password) };
	gnutls_datum_t salt_d = { salt, (unsigned)salt_len };
	size_t h = c->hash_len;
	int rc = 0;
	if (gnutls_pbkdf2(c->mac, &pw, &salt_d, (unsigned)iterations, salted,
			  h) != 0 ||
	    gnutls_hmac_fast(c->mac, salted, h, "Client Key", 10, client_key) !=
		    0 ||
	    gnutls_hash_fast(c->digest, client_key, h, stored_key) != 0 ||
	    gnutls_hmac_fast(c->mac, salted, h, "Server Key", 10, server_key) !=
		    0 ||
	    gnutls_hmac_fast(c->mac, stored_key, h, auth, strlen(auth),
			     client_sig) != 0 ||
	    gnutls_hmac_fast(c->mac, server_key, h, auth, strlen(auth),
			     c->server_signature) != 0)
		rc = sasl_client_fail(c, "SCRAM key derivation failed");
	if (rc == 0) {
		for (size_t i = 0; i < h; i++)
			proof[i] = client_key[i] ^ client_sig[i];
		char *proof64 = ts_base64_encode(proof, h);
		char *resp = ts_xasprintf("%s,p=%s", without_proof, proof64);
		free(proof64);
		rc = sasl_client_respond(resp, strlen(resp), resp_r, len_r);
	}
	gnutls_memset(salted, 0, sizeof(salted));
	gnutls_memset(client_key, 0, sizeof(client_key));
	gnutls_memset(stored_key, 0, sizeof(stored_key));
	gnutls_memset(server_key, 0, sizeof(server_key));
	gnutls_memset(client_sig, 0, sizeof(client_sig));
	gnutls_memset(proof, 0, sizeof(proof));
	free(auth);
	free(without_proof);
	free(salt);
	free(sf);
	return rc;
}

/* server-final: "v=" ServerSignature, or "e=" an error. */
static int
sasl_scram_verify(struct ts_sasl_client *c, const uint8_t *msg, size_t len)
{
	if (len >= 2 && msg[0] == 'e' && msg[1] == '=')
		return sasl_client_fail(c, "SCRAM server reported an error");
	if (len < 2 || msg[0] != 'v' || msg[1] != '=')
		return sasl_client_fail(c, "malformed SCRAM server-final "
					   "message");
	/* Extensions may follow after a comma. */
	const uint8_t *comma = memchr(msg, ',', len);
	size_t vlen = (size_t)((comma != NULL ? comma : msg + len) - msg) - 2;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	if (ts__base64_decode_n((const char *)msg + 2, vlen, &sig, &sig_len) !=
	    0)
		return sasl_client_fail(c, "malformed SCRAM server signature");
	bool ok = sig_len == c->hash_len &&
		  gnutls_memcmp(sig, c->server_signature, sig_len) == 0;
	free(sig);
	if (!ok)
		return sasl_client_fail(c, "wrong SCRAM server signature: the "
					   "server does not know the "
					   "password");
	c->complete = true;
	return 0;
}

int
ts_sasl_client_step(struct ts_sasl_client *c, const uint8_t *challenge,
		    size_t len, uint8_t **resp_r, size_t *len_r)
{
	*resp_r = NULL;
	*len_r = 0;
	if (c->failed)
		return TS_E_STATE;
	unsigned step = c->steps++;
	if (step > 0 && challenge == NULL)
		challenge = (const uint8_t *)"";
	switch (c->mech) {
	case SC_PLAIN:
		if (step == 0)
			return sasl_client_plain(c, resp_r, len_r);
		/* A server that did not take the initial response asks
		 * with an empty challenge (RFC 4954 4). */
		if (step == 1 && len == 0) {
			c->complete = false;
			return sasl_client_plain(c, resp_r, len_r);
		}
		return sasl_client_fail(c, "unexpected PLAIN challenge");
	case SC_LOGIN:
		/* The prompts' texts vary ("Username:", "User Name"): go
		 * by position. */
		if (step == 0)
			return 0;
		if (step == 1) {
			char *u = ts_xstrdup(c->username);
			return sasl_client_respond(u, strlen(u), resp_r, len_r);
		}
		if (step == 2) {
			char *p = ts_xstrdup(c->password);
			c->complete = true;
			return sasl_client_respond(p, strlen(p), resp_r, len_r);
		}
		return sasl_client_fail(c, "unexpected LOGIN challenge");
	case SC_CRAM_MD5:
		if (step == 0)
			return 0;
		if (step == 1)
			return sasl_client_cram_md5(c, challenge, len, resp_r,
						    len_r);
		return sasl_client_fail(c, "unexpected CRAM-MD5 challenge");
	case SC_SCRAM:
		if (step == 0)
			return sasl_scram_first(c, resp_r, len_r);
		if (step == 1 && len == 0 && !c->resent) {
			/* initial response not taken: send it now */
			c->steps = 1;
			c->resent = true;
			char *resp = ts_xasprintf("%s%s", c->gs2_header,
						  c->client_first_bare);
			return sasl_client_respond(resp, strlen(resp), resp_r,
						   len_r);
		}
		if (step == 1)
			return sasl_scram_final(c, challenge, len, resp_r,
						len_r);
		if (step == 2) {
			int rc = sasl_scram_verify(c, challenge, len);
			if (rc != 0)
				return rc;
			/* An empty response acknowledges (RFC 4954 4). */
			return sasl_client_respond(ts_xstrdup(""), 0, resp_r,
						   len_r);
		}
		return sasl_client_fail(c, "unexpected SCRAM challenge");
	}
	return TS_E_STATE;
}

int
ts_sasl_client_success_data(struct ts_sasl_client *c, const uint8_t *data,
			    size_t len)
{
	if (c->failed)
		return TS_E_STATE;
	if (c->mech == SC_SCRAM && !c->complete)
		return sasl_scram_verify(c, data, len);
	return 0;
}
