/*
 * tests/unit/test-sasl.c — server-side SASL (kernel/sasl/): base64,
 * the PLAIN/LOGIN/CRAM-MD5 message formats, the SCRAM state machine, and
 * whole exchanges through ts_sasl_new/ts_sasl_step against a real store
 * on a real loop.
 *
 * SCRAM replays the example exchanges of RFC 5802 (SHA-1) and RFC 7677
 * (SHA-256) byte for byte, with the server nonce and the secret injected;
 * the other SCRAM cases compute the client's side here, independently,
 * from the password with GnuTLS (PBKDF2, HMAC, hash).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/boot.h"
#include "kernel/sasl/sasl-private.h"
#include "kernel/store/accounts.h"
#include "kernel/store/md5.h"
#include "kernel/store/store-private.h"

#define U8(s) ((const uint8_t *)(s))

/* --- base64 -------------------------------------------------------------- */

static void
expect_b64(const char *raw, const char *text)
{
	char *enc = ts_base64_encode(U8(raw), strlen(raw));
	assert_string_equal(enc, text);
	free(enc);
	uint8_t *dec;
	size_t len;
	assert_int_equal(ts_base64_decode(text, &dec, &len), 0);
	assert_int_equal(len, strlen(raw));
	assert_memory_equal(dec, raw, len);
	assert_int_equal(dec[len], 0);
	free(dec);
}

static void
test_base64(void **state)
{
	/* RFC 4648 section 10. */
	expect_b64("", "");
	expect_b64("f", "Zg==");
	expect_b64("fo", "Zm8=");
	expect_b64("foo", "Zm9v");
	expect_b64("foob", "Zm9vYg==");
	expect_b64("fooba", "Zm9vYmE=");
	expect_b64("foobar", "Zm9vYmFy");
	expect_b64("\xfb\xff\xbf", "+/+/");

	/* "=" alone: RFC 4954's empty initial response. */
	uint8_t *dec;
	size_t len = 99;
	assert_int_equal(ts_base64_decode("=", &dec, &len), 0);
	assert_int_equal(len, 0);
	assert_non_null(dec);
	free(dec);

	static const char *const bad[] = {
		"Zg",	 "Zg=",	     "Zg===",	 "Z===",      "====",	"Zh==",
		"Zm9=",	 "Zm9vYg=a", "Zg==Zg==", "Zm9v YmFy", "Zm9v\n", "Zm$v",
		"Zm9v=", "=Zm9",     "-_-_",	 "==",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dec = (uint8_t *)"x";
		if (ts_base64_decode(bad[i], &dec, &len) != TS_E_INVAL)
			fail_msg("accepted bad base64 '%s'", bad[i]);
		assert_null(dec);
	}
	assert_int_equal(ts_base64_decode(NULL, &dec, &len), TS_E_INVAL);
	/* The length-bound decoder stops where told; "=" is not special. */
	assert_int_equal(ts__base64_decode_n("Zm9vXXXX", 4, &dec, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(dec, "foo", 3);
	free(dec);
	assert_int_equal(ts__base64_decode_n("=", 1, &dec, &len), TS_E_INVAL);

	/* Every length and byte value round-trips. */
	uint8_t buf[256];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(255 - i);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		char *enc = ts_base64_encode(buf, n);
		assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
		assert_int_equal(ts_base64_decode(enc, &dec, &len), 0);
		assert_int_equal(len, n);
		if (n > 0)
			assert_memory_equal(dec, buf, n);
		free(dec);
		free(enc);
	}
}

/* --- identity text, PLAIN, LOGIN ----------------------------------------- */

static void
test_text_ok(void **state)
{
	static const char *const good[] = {
		"alice",
		"a@example.org",
		"J\xc3\xbcrgen",
		"\xe2\x82\xac",
		"\xf0\x9f\x98\x80",
		"with space",
		"",
	};
	static const char *const bad[] = {
		"tab\there",
		"nl\n",
		"del\x7f",
		"\xc2\x85" /* NEL, C1 */,
		"\xc0\xaf" /* overlong */,
		"\xe0\x80\xaf",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xff",
		"\xc3",
		"\xe2\x82",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ts__sasl_text_ok(U8(good[i]), strlen(good[i])))
			fail_msg("refused '%s'", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ts__sasl_text_ok(U8(bad[i]), strlen(bad[i])))
			fail_msg("accepted bad text #%zu", i);
	assert_false(ts__sasl_text_ok(U8("a\0b"), 3));
}

static enum ts_sasl_status
plain(const char *msg, size_t len, char **z, char **c, char **p,
      const char **error)
{
	*error = NULL;
	return ts__plain_parse(U8(msg), len, z, c, p, error);
}

static void
test_plain_parse(void **state)
{
	char *z, *c, *p;
	const char *error;

	assert_int_equal(
		plain("\0tim\0tanstaaftanstaaf", 21, &z, &c, &p, &error),
		TS_SASL_CONTINUE);
	assert_null(z);
	assert_string_equal(c, "tim");
	assert_string_equal(p, "tanstaaftanstaaf");
	free(c);
	free(p);

	/* RFC 4616 section 4's second example, with an authzid. */
	assert_int_equal(
		plain("Ursel\0Kurt\0xipj3plmq", 20, &z, &c, &p, &error),
		TS_SASL_CONTINUE);
	assert_string_equal(z, "Ursel");
	assert_string_equal(c, "Kurt");
	assert_string_equal(p, "xipj3plmq");
	free(z);
	free(c);
	free(p);

	/* Passwords may hold any non-NUL octet (the store judges them). */
	assert_int_equal(plain("\0u\0p\xc3\xa4 \t!", 9, &z, &c, &p, &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(p, "p\xc3\xa4 \t!");
	free(c);
	free(p);

	static const struct {
		const char *msg;
		size_t len;
		const char *error;
	} bad[] = {
		{ "", 0, "malformed PLAIN message: fewer than two NULs" },
		{ "user\0pass", 9,
		  "malformed PLAIN message: fewer than two NULs" },
		{ "userpass", 8,
		  "malformed PLAIN message: fewer than two NULs" },
		{ "\0u\0p\0x", 7,
		  "malformed PLAIN message: more than two NULs" },
		{ "\0u\0\0", 4, "malformed PLAIN message: more than two NULs" },
		{ "\0\0pass", 6,
		  "malformed PLAIN message: empty authentication identity" },
		{ "z\0\0pass", 7,
		  "malformed PLAIN message: empty authentication identity" },
		{ "\0user\0", 6, "malformed PLAIN message: empty password" },
		{ "\0us\ter\0p", 8,
		  "malformed PLAIN message: identity is not UTF-8 text" },
		{ "a\xff\0user\0p", 9,
		  "malformed PLAIN message: identity is not UTF-8 text" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		z = c = p = (char *)"x";
		assert_int_equal(
			plain(bad[i].msg, bad[i].len, &z, &c, &p, &error),
			TS_SASL_ERROR);
		assert_string_equal(error, bad[i].error);
		assert_null(z);
		assert_null(c);
		assert_null(p);
	}
}

static void
test_login_parse(void **state)
{
	char *t;
	const char *error;

	assert_int_equal(ts__login_parse(U8("alice"), 5, false, &t, &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(t, "alice");
	free(t);
	assert_int_equal(ts__login_parse(U8("p w\t"), 4, true, &t, &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(t, "p w\t");
	free(t);
	assert_int_equal(ts__login_parse(U8(""), 0, false, &t, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "malformed LOGIN exchange: empty user name");
	assert_null(t);
	assert_int_equal(ts__login_parse(U8(""), 0, true, &t, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "malformed LOGIN exchange: empty password");
	assert_int_equal(ts__login_parse(U8("a\0b"), 3, true, &t, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "malformed LOGIN exchange: NUL in password");
	assert_int_equal(ts__login_parse(U8("a\0b"), 3, false, &t, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error,
			    "malformed LOGIN exchange: NUL in user name");
	assert_int_equal(ts__login_parse(U8("a\nb"), 3, false, &t, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "malformed LOGIN exchange: user name is "
				   "not UTF-8 text");
}

/* --- CRAM-MD5 ------------------------------------------------------------ */

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void
test_cram_md5(void **state)
{
	char *ch = ts__cram_md5_challenge("mx.example.org", 1700000000);
	char *ch2 = ts__cram_md5_challenge(NULL, 1700000000);
	unsigned long long r;
	long long t;
	char host[64];
	assert_int_equal(sscanf(ch, "<%llu.%lld@%63[^>]>", &r, &t, host), 3);
	assert_int_equal(t, 1700000000);
	assert_string_equal(host, "mx.example.org");
	assert_int_equal(ch[strlen(ch) - 1], '>');
	assert_int_equal(sscanf(ch2, "<%llu.%lld@%63[^>]>", &r, &t, host), 3);
	assert_string_equal(host, "localhost");
	assert_string_not_equal(strchr(ch, '.'), strchr(ch2, '.'));
	assert_true(strncmp(ch, ch2, (size_t)(strchr(ch, '.') - ch)) != 0);

	/* The client's digest: HMAC-MD5(password, challenge), by GnuTLS. */
	const char *password = "tanstaaftanstaaf";
	uint8_t d[16];
	char response[128];
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_MD5, password,
					  strlen(password), ch, strlen(ch), d),
			 0);
	strcpy(response, "tim ");
	hex(d, 16, response + 4);

	struct ts_cram_md5_secret secret;
	ts__cram_md5_states(password, strlen(password), secret.inner,
			    secret.outer);
	char *user;
	uint8_t digest[16];
	const char *error;
	assert_int_equal(ts__cram_md5_parse(U8(response), strlen(response),
					    &user, digest, &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(user, "tim");
	free(user);
	assert_memory_equal(digest, d, 16);
	assert_true(ts__cram_md5_check(&secret, ch, digest));
	/* Another challenge, another password: no. */
	assert_false(ts__cram_md5_check(&secret, ch2, digest));
	struct ts_cram_md5_secret other;
	ts__cram_md5_states("tanstaaftanstaaF", 16, other.inner, other.outer);
	assert_false(ts__cram_md5_check(&other, ch, digest));

	/* RFC 2195's example, upper-case hex, a space in the user name. */
	const char *rfc = "tim B913A602C7EDA7A495B4E6E7334D3890";
	assert_int_equal(
		ts__cram_md5_parse(U8(rfc), strlen(rfc), &user, digest, &error),
		TS_SASL_CONTINUE);
	free(user);
	assert_true(ts__cram_md5_check(
		&secret, "<1896.697170952@postoffice.reston.mci.net>", digest));
	const char *spaced = "tim s b913a602c7eda7a495b4e6e7334d3890";
	assert_int_equal(ts__cram_md5_parse(U8(spaced), strlen(spaced), &user,
					    digest, &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(user, "tim s");
	free(user);

	static const struct {
		const char *msg, *error;
	} bad[] = {
		{ "", "malformed CRAM-MD5 response: expected \"user digest\" "
		      "with a 32-digit hex digest" },
		{ "timb913a602c7eda7a495b4e6e7334d3890",
		  "malformed CRAM-MD5 response: expected \"user digest\" with "
		  "a 32-digit hex digest" },
		{ "tim b913a602c7eda7a495b4e6e7334d389",
		  "malformed CRAM-MD5 response: expected \"user digest\" with "
		  "a 32-digit hex digest" },
		{ "tim b913a602c7eda7a495b4e6e7334d3890 ",
		  "malformed CRAM-MD5 response: expected \"user digest\" with "
		  "a 32-digit hex digest" },
		{ " b913a602c7eda7a495b4e6e7334d3890",
		  "malformed CRAM-MD5 response: empty user name" },
		{ "tim g913a602c7eda7a495b4e6e7334d3890",
		  "malformed CRAM-MD5 response: digest is not hex" },
		{ "t\x01m b913a602c7eda7a495b4e6e7334d3890",
		  "malformed CRAM-MD5 response: user name is not UTF-8 text" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		user = (char *)"x";
		assert_int_equal(ts__cram_md5_parse(U8(bad[i].msg),
						    strlen(bad[i].msg), &user,
						    digest, &error),
				 TS_SASL_ERROR);
		assert_string_equal(error, bad[i].error);
		assert_null(user);
	}
	free(ch);
	free(ch2);
}

/* --- SCRAM: the client's side, computed independently -------------------- */

struct hash {
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	size_t len;
};
static const struct hash sha1 = { GNUTLS_MAC_SHA1, GNUTLS_DIG_SHA1, 20 };
static const struct hash sha256 = { GNUTLS_MAC_SHA256, GNUTLS_DIG_SHA256, 32 };

/* The secret a store would hold for password (RFC 5802 section 3). */
static void
make_secret(const struct hash *h, const char *password, const uint8_t *salt,
	    size_t salt_len, unsigned iter, struct ts_scram_secret *s)
{
	uint8_t salted[64], ck[64];
	gnutls_datum_t pw = { (unsigned char *)password,
			      (unsigned)strlen(password) };
	gnutls_datum_t sd = { (unsigned char *)salt, (unsigned)salt_len };

	memset(s, 0, sizeof(*s));
	assert_int_equal(gnutls_pbkdf2(h->mac, &pw, &sd, iter, salted, h->len),
			 0);
	assert_int_equal(
		gnutls_hmac_fast(h->mac, salted, h->len, "Client Key", 10, ck),
		0);
	assert_int_equal(gnutls_hash_fast(h->dig, ck, h->len, s->stored_key),
			 0);
	assert_int_equal(gnutls_hmac_fast(h->mac, salted, h->len, "Server Key",
					  10, s->server_key),
			 0);
	memcpy(s->salt, salt, salt_len);
	s->salt_len = salt_len;
	s->iterations = iter;
	s->key_len = h->len;
}

/*
 * The client's final message for password: "c=…,r=…,p=…" (caller frees),
 * and the "v=…" it expects back in *verifier_r (caller frees).
 */
static char *
client_final(const struct hash *h, const char *password,
	     const char *client_first_bare, const char *server_first,
	     const char *without_proof, char **verifier_r)
{
	/* Salt and iteration count from server-first. */
	const char *sp = strstr(server_first, ",s=");
	const char *ip = strstr(server_first, ",i=");
	assert_non_null(sp);
	assert_non_null(ip);
	uint8_t *salt;
	size_t salt_len;
	assert_int_equal(ts__base64_decode_n(sp + 3, (size_t)(ip - sp - 3),
					     &salt, &salt_len),
			 0);
	struct ts_scram_secret s;
	make_secret(h, password, salt, salt_len, (unsigned)atoi(ip + 3), &s);
	free(salt);

	char *auth = ts_xasprintf("%s,%s,%s", client_first_bare, server_first,
				  without_proof);
	uint8_t salted[64], ck[64], sig[64], proof[64], ssig[64];
	gnutls_datum_t pw = { (unsigned char *)password,
			      (unsigned)strlen(password) };
	gnutls_datum_t sd = { s.salt, (unsigned)s.salt_len };
	assert_int_equal(
		gnutls_pbkdf2(h->mac, &pw, &sd, s.iterations, salted, h->len),
		0);
	gnutls_hmac_fast(h->mac, salted, h->len, "Client Key", 10, ck);
	gnutls_hmac_fast(h->mac, s.stored_key, h->len, auth, strlen(auth), sig);
	for (size_t i = 0; i < h->len; i++)
		proof[i] = ck[i] ^ sig[i];
	gnutls_hmac_fast(h->mac, s.server_key, h->len, auth, strlen(auth),
			 ssig);
	free(auth);
	char *p = ts_base64_encode(proof, h->len);
	char *v = ts_base64_encode(ssig, h->len);
	char *out = ts_xasprintf("%s,p=%s", without_proof, p);
	*verifier_r = ts_xasprintf("v=%s", v);
	free(p);
	free(v);
	return out;
}

/* The "c=" value for a GS2 header and channel-binding data. */
static char *
cbind(const char *gs2, const uint8_t *cb, size_t cb_len)
{
	size_t n = strlen(gs2);
	uint8_t *buf = ts_xmalloc(n + cb_len + 1);
	memcpy(buf, gs2, n);
	if (cb_len > 0)
		memcpy(buf + n, cb, cb_len);
	char *out = ts_base64_encode(buf, n + cb_len);
	free(buf);
	return out;
}

static enum ts_sasl_status
scram_first(struct ts__scram *sc, const char *msg, const char **error)
{
	*error = NULL;
	return ts__scram_client_first(sc, U8(msg), strlen(msg), error);
}

static enum ts_sasl_status
scram_final(struct ts__scram *sc, const char *msg, const char **sf,
	    const char **error)
{
	*error = NULL;
	return ts__scram_client_final(sc, U8(msg), strlen(msg), sf, error);
}

/* --- SCRAM: the RFC examples ---------------------------------------------- */

/* Replay one RFC example exchange on the server side. */
static void
replay(const char *mech, const struct hash *h, const char *client_first,
       const char *server_nonce, const char *salt_b64, unsigned iter,
       const char *server_first, const char *client_final_msg,
       const char *server_final)
{
	struct ts__scram sc;
	struct ts_scram_secret secret;
	const char *error, *sf;
	uint8_t *salt;
	size_t salt_len;

	assert_int_equal(ts__scram_init(&sc, mech, NULL, NULL, 0), 0);
	assert_string_equal(ts__scram_secret_name(&sc), mech);
	assert_int_equal(scram_first(&sc, client_first, &error),
			 TS_SASL_CONTINUE);
	assert_null(error);
	assert_string_equal(sc.username, "user");
	assert_null(sc.authzid);
	assert_string_equal(sc.gs2_header, "n,,");

	assert_int_equal(ts_base64_decode(salt_b64, &salt, &salt_len), 0);
	make_secret(h, "pencil", salt, salt_len, iter, &secret);
	free(salt);
	assert_string_equal(
		ts__scram_server_first(&sc, &secret, false, server_nonce),
		server_first);
	/* Only once. */
	assert_null(ts__scram_server_first(&sc, &secret, false, server_nonce));

	assert_int_equal(scram_final(&sc, client_final_msg, &sf, &error),
			 TS_SASL_OK);
	assert_null(error);
	assert_string_equal(sf, server_final);
	/* And not twice. */
	assert_int_equal(scram_final(&sc, client_final_msg, &sf, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "SCRAM client-final message out of order");
	ts__scram_clear(&sc);
}

static void
test_scram_sha1_rfc5802(void **state)
{
	/* RFC 5802 section 5. */
	replay("SCRAM-SHA-1", &sha1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	       "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92", 4096,
	       "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	       "s=QSXCR+Q6sek8bf92,i=4096",
	       "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	       "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	       "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void
test_scram_sha256_rfc7677(void **state)
{
	/* RFC 7677 section 3. */
	replay("SCRAM-SHA-256", &sha256, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	       "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	       "W22ZaJ0SNY7soEsUEjb6gQ==", 4096,
	       "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	       "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	       "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/*
 * Run SCRAM's first half: init with the channel binding offered, the
 * client's first message, server-first with password's secret (salt
 * "saltsaltsalt", 4096) and nonce "SERVERNONCE".
 */
static void
scram_start(struct ts__scram *sc, const char *mech, const struct hash *h,
	    const char *cb_type, const char *cb, const char *client_first)
{
	struct ts_scram_secret secret;
	const char *error;

	assert_int_equal(ts__scram_init(sc, mech, cb_type, U8(cb),
					cb != NULL ? strlen(cb) : 0),
			 0);
	if (scram_first(sc, client_first, &error) != TS_SASL_CONTINUE)
		fail_msg("client-first refused: %s", error);
	make_secret(h, "pencil", U8("saltsaltsalt"), 12, 4096, &secret);
	assert_non_null(
		ts__scram_server_first(sc, &secret, false, "SERVERNONCE"));
}

/* The client-final message of a client with password and c=cbind. */
static char *
scram_client_final(struct ts__scram *sc, const struct hash *h,
		   const char *password, const char *c, char **verifier_r)
{
	char *wp = ts_xasprintf("c=%s,r=%s", c, sc->nonce);
	char *msg = client_final(h, password, sc->client_first_bare,
				 sc->server_first, wp, verifier_r);
	free(wp);
	return msg;
}

static void
test_scram_proof(void **state)
{
	struct ts__scram sc;
	const char *error, *sf;
	char *v, *msg;

	/* A client computed here succeeds, with our own nonce. */
	scram_start(&sc, "SCRAM-SHA-256", &sha256, NULL, NULL,
		    "n,,n=alice,r=abc");
	assert_string_equal(sc.server_first, "r=abcSERVERNONCE,"
					     "s=c2FsdHNhbHRzYWx0,i=4096");
	msg = scram_client_final(&sc, &sha256, "pencil", "biws", &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_OK);
	assert_string_equal(sf, v);
	free(msg);
	free(v);
	ts__scram_clear(&sc);

	/* Wrong password: a valid-looking proof that does not match. */
	scram_start(&sc, "SCRAM-SHA-256", &sha256, NULL, NULL,
		    "n,,n=alice,r=abc");
	msg = scram_client_final(&sc, &sha256, "pencil2", "biws", &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "wrong SCRAM proof (password)");
	assert_null(sf);
	free(msg);
	free(v);
	ts__scram_clear(&sc);

	/* One flipped bit in the RFC proof. */
	scram_start(&sc, "SCRAM-SHA-1", &sha1, NULL, NULL, "n,,n=u,r=x");
	msg = scram_client_final(&sc, &sha1, "pencil", "biws", &v);
	char *p = strstr(msg, ",p=") + 3;
	p[0] = p[0] == 'A' ? 'B' : 'A';
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "wrong SCRAM proof (password)");
	free(msg);
	free(v);
	ts__scram_clear(&sc);

	/*
	 * A stand-in secret fails even with a proof that matches it (one
	 * computed from its all-zero keys cannot be, but make sure).
	 */
	struct ts_scram_secret fake;
	uint8_t key[32] = { 1 };
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-256", NULL, NULL, 0),
			 0);
	assert_int_equal(scram_first(&sc, "n,,n=nobody,r=abc", &error),
			 TS_SASL_CONTINUE);
	ts__scram_fake_secret(&sc, key, &fake);
	make_secret(&sha256, "pencil", fake.salt, fake.salt_len, 4096, &fake);
	assert_non_null(ts__scram_server_first(&sc, &fake, true, "N"));
	msg = scram_client_final(&sc, &sha256, "pencil", "biws", &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "no such user, or no password set");
	free(msg);
	free(v);
	ts__scram_clear(&sc);

	/* A secret of the other hash does not fit. */
	struct ts_scram_secret s1;
	make_secret(&sha1, "pencil", U8("salt"), 4, 4096, &s1);
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-256", NULL, NULL, 0),
			 0);
	assert_int_equal(scram_first(&sc, "n,,n=a,r=b", &error),
			 TS_SASL_CONTINUE);
	assert_null(ts__scram_server_first(&sc, &s1, false, "N"));
	ts__scram_clear(&sc);
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-512", NULL, NULL, 0),
			 TS_E_INVAL);
}

static void
test_scram_channel_binding(void **state)
{
	struct ts__scram sc;
	const char *error, *sf;
	char *v, *msg, *c;
	const char *cb = "\x01\x02exporter-bytes\xff";

	/* -PLUS with tls-exporter: c= carries the header and the data. */
	scram_start(&sc, "SCRAM-SHA-256-PLUS", &sha256, "tls-exporter", cb,
		    "p=tls-exporter,,n=alice,r=abc");
	assert_true(sc.cb_used);
	assert_string_equal(sc.gs2_header, "p=tls-exporter,,");
	c = cbind("p=tls-exporter,,", U8(cb), strlen(cb));
	msg = scram_client_final(&sc, &sha256, "pencil", c, &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_OK);
	assert_string_equal(sf, v);
	free(msg);
	free(v);
	free(c);
	ts__scram_clear(&sc);

	/* Another TLS session's data (a man in the middle): fail. */
	scram_start(&sc, "SCRAM-SHA-1-PLUS", &sha1, "tls-unique", cb,
		    "p=tls-unique,a=alice,n=alice,r=abc");
	assert_string_equal(sc.authzid, "alice");
	c = cbind("p=tls-unique,a=alice,", U8("\x01\x02other"), 7);
	msg = scram_client_final(&sc, &sha1, "pencil", c, &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "SCRAM channel binding does not match");
	free(msg);
	free(v);
	free(c);
	ts__scram_clear(&sc);

	/* The right data behind another GS2 header: fail too. */
	scram_start(&sc, "SCRAM-SHA-256-PLUS", &sha256, "tls-exporter", cb,
		    "p=tls-exporter,,n=alice,r=abc");
	c = cbind("p=tls-exporter,a=bob,", U8(cb), strlen(cb));
	msg = scram_client_final(&sc, &sha256, "pencil", c, &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "SCRAM channel binding does not match");
	free(msg);
	free(v);
	free(c);
	ts__scram_clear(&sc);

	/* Without -PLUS, "biws" (n,,) but the client claims data: fail. */
	scram_start(&sc, "SCRAM-SHA-256", &sha256, NULL, NULL,
		    "n,,n=alice,r=abc");
	c = cbind("n,,", U8(cb), strlen(cb));
	msg = scram_client_final(&sc, &sha256, "pencil", c, &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "SCRAM channel binding does not match");
	free(msg);
	free(v);
	free(c);
	ts__scram_clear(&sc);

	/* Flag and mechanism must agree; the type must be ours. */
	static const struct {
		const char *mech, *cb_type, *first, *error;
	} bad[] = {
		{ "SCRAM-SHA-256-PLUS", "tls-exporter", "p=tls-unique,,n=a,r=b",
		  "SCRAM channel-binding type not supported" },
		{ "SCRAM-SHA-256-PLUS", "tls-exporter",
		  "p=TLS-EXPORTER,,n=a,r=b",
		  "SCRAM channel-binding type not supported" },
		{ "SCRAM-SHA-256-PLUS", "tls-exporter", "n,,n=a,r=b",
		  "SCRAM -PLUS mechanism without channel binding" },
		{ "SCRAM-SHA-256-PLUS", "tls-exporter", "y,,n=a,r=b",
		  "SCRAM -PLUS mechanism without channel binding" },
		{ "SCRAM-SHA-256", "tls-exporter", "p=tls-exporter,,n=a,r=b",
		  "SCRAM client requests channel binding with a mechanism "
		  "without -PLUS" },
		{ "SCRAM-SHA-1", NULL, "p=tls-unique,,n=a,r=b",
		  "SCRAM client requests channel binding with a mechanism "
		  "without -PLUS" },
		{ "SCRAM-SHA-1", NULL, "p=,,n=a,r=b",
		  "malformed SCRAM client-first message: bad GS2 "
		  "channel-binding flag" },
		{ "SCRAM-SHA-1", NULL, "p=tls_unique,,n=a,r=b",
		  "malformed SCRAM client-first message: bad GS2 "
		  "channel-binding flag" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ts__scram_init(&sc, bad[i].mech,
						bad[i].cb_type, U8(cb),
						strlen(cb)),
				 0);
		assert_int_equal(scram_first(&sc, bad[i].first, &error),
				 TS_SASL_ERROR);
		assert_string_equal(error, bad[i].error);
		assert_null(sc.username);
		ts__scram_clear(&sc);
	}
}

static void
test_scram_downgrade(void **state)
{
	struct ts__scram sc;
	const char *error, *sf;
	char *v, *msg;

	/* We offered -PLUS (there is channel binding); the client says y. */
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-256", "tls-exporter",
					U8("cb"), 2),
			 0);
	assert_int_equal(scram_first(&sc, "y,,n=alice,r=abc", &error),
			 TS_SASL_FAIL);
	assert_string_equal(error, "SCRAM downgrade: client says \"y\" but "
				   "-PLUS was offered");
	ts__scram_clear(&sc);

	/* Without channel binding on offer, "y" is an honest client. */
	scram_start(&sc, "SCRAM-SHA-1", &sha1, NULL, NULL, "y,,n=alice,r=abc");
	assert_false(sc.cb_used);
	msg = scram_client_final(&sc, &sha1, "pencil", "eSws", &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_OK);
	assert_string_equal(sf, v);
	free(msg);
	free(v);
	ts__scram_clear(&sc);

	/* ... but its c= must repeat the "y", not turn it into "n". */
	scram_start(&sc, "SCRAM-SHA-1", &sha1, NULL, NULL, "y,,n=alice,r=abc");
	msg = scram_client_final(&sc, &sha1, "pencil", "biws", &v);
	assert_int_equal(scram_final(&sc, msg, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "SCRAM channel binding does not match");
	free(msg);
	free(v);
	ts__scram_clear(&sc);
}

static void
test_scram_names(void **state)
{
	struct ts__scram sc;
	const char *error;

	static const struct {
		const char *first, *user, *authzid;
	} good[] = {
		{ "n,,n=a=2Cb=3Dc,r=x", "a,b=c", NULL },
		{ "n,,n=a=2cb=3dc,r=x", "a,b=c", NULL },
		{ "n,a=bob=2Cx,n=alice,r=x", "alice", "bob,x" },
		{ "n,a=b=3D,n=J\xc3\xbcrgen,r=x", "J\xc3\xbcrgen", "b=" },
		{ "n,,n=alice,r=x,x=ext,y=", "alice", NULL },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(
			ts__scram_init(&sc, "SCRAM-SHA-1", NULL, NULL, 0), 0);
		if (scram_first(&sc, good[i].first, &error) != TS_SASL_CONTINUE)
			fail_msg("refused '%s': %s", good[i].first, error);
		assert_string_equal(sc.username, good[i].user);
		if (good[i].authzid == NULL)
			assert_null(sc.authzid);
		else
			assert_string_equal(sc.authzid, good[i].authzid);
		assert_string_equal(sc.client_nonce, "x");
		ts__scram_clear(&sc);
	}
}

static void
test_scram_malformed_first(void **state)
{
	struct ts__scram sc;
	const char *error;
	static const char e_flag[] = "malformed SCRAM client-first message: "
				     "bad GS2 channel-binding flag";
	static const char e_gs2[] = "malformed SCRAM client-first message: "
				    "GS2 header incomplete";
	static const char e_authz[] = "malformed SCRAM client-first message: "
				      "bad authorization identity";
	static const char e_user[] = "malformed SCRAM client-first message: "
				     "bad user name";
	static const char e_nouser[] = "malformed SCRAM client-first message: "
				       "missing user name";
	static const char e_nonce[] = "malformed SCRAM client-first message: "
				      "missing nonce";
	static const char e_badnonce[] = "malformed SCRAM client-first "
					 "message: bad nonce";
	static const char e_ext[] = "malformed SCRAM client-first message: "
				    "bad extension or trailing comma";
	static const struct {
		const char *msg, *error;
	} bad[] = {
		{ "", e_flag },
		{ "n", e_gs2 },
		{ "n,", e_gs2 },
		{ "n,,", e_nouser },
		{ "x,,n=a,r=b", e_flag },
		{ "nn,,n=a,r=b", e_flag },
		{ "N,,n=a,r=b", e_flag },
		{ "n,b=x,n=a,r=b", e_authz },
		{ "n,a=x=41,n=a,r=b", e_authz },
		{ "n,,m=ext,n=a,r=b",
		  "SCRAM mandatory extension not supported" },
		{ "n,,r=b,n=a", e_nouser },
		{ ",,n=a,r=b", e_flag },
		{ "n,,n=,r=b", e_user },
		{ "n,,n=a=,r=b", e_user },
		{ "n,,n=a=2,r=b", e_user },
		{ "n,,n=a=41,r=b", e_user },
		{ "n,,n=a\tb,r=b", e_user },
		{ "n,,n=a\xff,r=b", e_user },
		{ "n,,n=a", e_nonce },
		{ "n,,n=a,", e_nonce },
		{ "n,,n=a,s=b", e_nonce },
		{ "n,,n=a,r=", e_badnonce },
		{ "n,,n=a,r=b c", e_badnonce },
		{ "n,,n=a,r=b\x80", e_badnonce },
		{ "n,,n=a,r=b,", e_ext },
		{ "n,,n=a,r=b,,x=y", e_ext },
		{ "n,,n=a,r=b,x", e_ext },
		{ "n,,n=a,r=b,1=y", e_ext },
		{ "n,,,n=a,r=b", e_nouser },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
			ts__scram_init(&sc, "SCRAM-SHA-256", NULL, NULL, 0), 0);
		if (scram_first(&sc, bad[i].msg, &error) != TS_SASL_ERROR)
			fail_msg("accepted '%s'", bad[i].msg);
		if (strcmp(error, bad[i].error) != 0)
			fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].msg,
				 error, bad[i].error);
		assert_null(sc.username);
		ts__scram_clear(&sc);
	}
	/* NUL inside. */
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-256", NULL, NULL, 0),
			 0);
	assert_int_equal(
		ts__scram_client_first(&sc, U8("n,,n=a\0,r=b"), 11, &error),
		TS_SASL_ERROR);
	assert_string_equal(error, "malformed SCRAM client-first message: NUL "
				   "or too long");
	/* An empty "a=" (GNU SASL's client sends it) means no authzid. */
	assert_int_equal(scram_first(&sc, "n,a=,n=a,r=b", &error),
			 TS_SASL_CONTINUE);
	assert_string_equal(sc.username, "a");
	ts__scram_clear(&sc);
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-256", NULL, NULL, 0),
			 0);
	/* Twice. */
	assert_int_equal(scram_first(&sc, "n,,n=a,r=b", &error),
			 TS_SASL_CONTINUE);
	assert_int_equal(scram_first(&sc, "n,,n=a,r=b", &error), TS_SASL_ERROR);
	assert_string_equal(error, "SCRAM client-first message received twice");
	ts__scram_clear(&sc);
}

static void
test_scram_malformed_final(void **state)
{
	struct ts__scram sc;
	const char *error, *sf;
	char *v;

	scram_start(&sc, "SCRAM-SHA-1", &sha1, NULL, NULL, "n,,n=u,r=x");
	char *good = scram_client_final(&sc, &sha1, "pencil", "biws", &v);
	const char *proof = strstr(good, ",p=") + 1;
	static const char e_cb[] = "malformed SCRAM client-final message: bad "
				   "channel binding";
	static const char e_nonce[] = "malformed SCRAM client-final message: "
				      "missing nonce";
	static const char e_proof[] = "malformed SCRAM client-final message: "
				      "missing proof";
	static const char e_badproof[] = "malformed SCRAM client-final "
					 "message: bad proof";
	static const char e_ext[] = "malformed SCRAM client-final message: "
				    "bad extension";
	static const char e_comma[] = "malformed SCRAM client-final message: "
				      "trailing comma";
	static const char e_ours[] = "SCRAM client-final nonce is not the one "
				     "we sent";
	struct {
		char *msg;
		const char *error;
	} bad[] = {
		{ ts_xstrdup(""), e_cb },
		{ ts_xasprintf("r=xSERVERNONCE,%s", proof), e_cb },
		{ ts_xasprintf("c=biw,r=xSERVERNONCE,%s", proof), e_cb },
		{ ts_xasprintf("c=biws=,r=xSERVERNONCE,%s", proof), e_cb },
		{ ts_xasprintf("c=biws,%s", proof), e_nonce },
		{ ts_xasprintf("c=biws"), e_nonce },
		{ ts_xasprintf("c=biws,r=,%s", proof), e_nonce },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE"), e_proof },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,"), e_comma },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,%s,", proof), e_comma },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,%s,x=y", proof),
		  e_proof },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,,%s", proof), e_ext },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,p=AAAA"), e_badproof },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,p=%s!", proof + 2),
		  e_badproof },
		{ ts_xasprintf("c=biws,r=xSERVERNONCE,p="), e_badproof },
		{ ts_xasprintf("c=biws,r=xSERVERNONCX,%s", proof), e_ours },
		{ ts_xasprintf("c=biws,r=x,%s", proof), e_ours },
		{ ts_xasprintf("c=biws,r=xSERVERNONCEx,%s", proof), e_ours },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (scram_final(&sc, bad[i].msg, &sf, &error) != TS_SASL_ERROR)
			fail_msg("accepted '%s'", bad[i].msg);
		if (strcmp(error, bad[i].error) != 0)
			fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].msg,
				 error, bad[i].error);
		assert_null(sf);
		free(bad[i].msg);
	}
	/* An extension before the proof is fine, but is part of the proof. */
	char *ext = ts_xasprintf("c=biws,r=xSERVERNONCE,x=1,%s", proof);
	assert_int_equal(scram_final(&sc, ext, &sf, &error), TS_SASL_FAIL);
	assert_string_equal(error, "wrong SCRAM proof (password)");
	free(ext);
	/* After all that, the right message still works. */
	assert_int_equal(scram_final(&sc, good, &sf, &error), TS_SASL_OK);
	assert_string_equal(sf, v);
	free(good);
	free(v);
	ts__scram_clear(&sc);

	/* Before server-first: out of order. */
	assert_int_equal(ts__scram_init(&sc, "SCRAM-SHA-1", NULL, NULL, 0), 0);
	assert_int_equal(scram_final(&sc, "c=biws,r=x,p=AAAA", &sf, &error),
			 TS_SASL_ERROR);
	assert_string_equal(error, "SCRAM client-final message out of order");
	ts__scram_clear(&sc);
}

static void
test_scram_fake_secret(void **state)
{
	struct ts__scram a, b;
	struct ts_scram_secret s1, s2, s3;
	uint8_t key[32], key2[32];
	const char *error;

	memset(key, 7, sizeof(key));
	memset(key2, 8, sizeof(key2));
	assert_int_equal(ts__scram_init(&a, "SCRAM-SHA-256", NULL, NULL, 0), 0);
	assert_int_equal(scram_first(&a, "n,,n=nobody,r=x", &error),
			 TS_SASL_CONTINUE);
	assert_int_equal(ts__scram_init(&b, "SCRAM-SHA-1-PLUS", "tls-unique",
					U8("c"), 1),
			 0);
	assert_int_equal(scram_first(&b, "p=tls-unique,,n=nobody,r=y", &error),
			 TS_SASL_CONTINUE);

	/* Same user, same key: the same salt every time. */
	ts__scram_fake_secret(&a, key, &s1);
	ts__scram_fake_secret(&a, key, &s2);
	assert_memory_equal(&s1, &s2, sizeof(s1));
	assert_int_equal(s1.salt_len, 16);
	assert_int_equal(s1.iterations, 10000);
	assert_int_equal(s1.key_len, 32);
	/* Another mechanism or key: another salt. */
	ts__scram_fake_secret(&b, key, &s3);
	assert_int_equal(s3.iterations, 4096);
	assert_int_equal(s3.key_len, 20);
	assert_memory_not_equal(s1.salt, s3.salt, 16);
	ts__scram_fake_secret(&a, key2, &s2);
	assert_memory_not_equal(s1.salt, s2.salt, 16);
	ts__scram_clear(&a);
	ts__scram_clear(&b);

	/* Another user: another salt. */
	assert_int_equal(ts__scram_init(&a, "SCRAM-SHA-256", NULL, NULL, 0), 0);
	assert_int_equal(scram_first(&a, "n,,n=nobody2,r=x", &error),
			 TS_SASL_CONTINUE);
	ts__scram_fake_secret(&a, key, &s2);
	assert_memory_not_equal(s1.salt, s2.salt, 16);
	ts__scram_clear(&a);

	/* Server nonces: 24 random bytes, base64, never the same. */
	char *n1 = ts__scram_server_nonce(), *n2 = ts__scram_server_nonce();
	assert_int_equal(strlen(n1), 32);
	assert_string_not_equal(n1, n2);
	assert_null(strchr(n1, ','));
	free(n1);
	free(n2);
}

/* --- whole exchanges on a loop, against the store ------------------------- */

struct env {
	uv_loop_t loop;
	struct ts_kernel k;
	char dir[64];
};

struct rec {
	int calls;
	enum ts_sasl_status status;
	char *challenge;
	size_t len;
	bool free_in_callback;
};

static void
env_setup(struct env *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/test-sasl-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	sqlite3 *db;
	char *error = NULL;
	assert_int_equal(ts__store_db_open(e->dir, "alice", &db, &error), 0);
	assert_int_equal(ts__credentials_set(db, "pencil", &error), 0);
	ts__store_db_close(&db);
	assert_int_equal(ts__store_db_open(e->dir, "bob", &db, &error), 0);
	assert_int_equal(ts__credentials_set(db, "bobs password", &error), 0);
	ts__store_db_close(&db);

	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->k.loop = &e->loop;
	e->k.kctx.kernel = &e->k;
	e->k.kctx.name = "kernel";
	e->k.log.out = stderr;
	e->k.log.level = TS_LOG_WARN;
	e->k.log.max = TS_LOG_WARN;
	char *text =
		ts_xasprintf("[core]\ndata_dir = %s\n"
			     "[domain example.org]\nlocalpart_separator = +\n"
			     "[account alice]\naddresses = a@example.org, "
			     "Alice.Smith@example.org, @example.org\n"
			     "[account bob]\naddresses = b@example.org\n"
			     "[account carol]\naddresses = c@example.org\n",
			     e->dir);
	e->k.cfg = ts__cfg_parse_string("t.ini", text);
	free(text);
	for (size_t i = 0; i < e->k.cfg->sect_count; i++) {
		struct ts_cfg_sect *s = e->k.cfg->sects[i];
		const struct ts_cfg_key *t[1] = {
			strcmp(s->type, "core") == 0	 ? ts__core_keys
			: strcmp(s->type, "domain") == 0 ? ts__domain_keys
							 : ts__account_keys
		};
		ts__cfg_bind(e->k.cfg, s, t, 1);
	}
	for (size_t i = 0; i < e->k.cfg->error_count; i++)
		fprintf(stderr, "%s\n", e->k.cfg->errors[i]);
	assert_int_equal(e->k.cfg->error_count, 0);
	assert_int_equal(ts__accounts_check(e->k.cfg), 0);
	ts__accounts_apply(&e->k, e->k.cfg);
}

static void
env_teardown(struct env *e)
{
	assert_int_equal(e->k.pending_work, 0);
	ts__accounts_free(&e->k);
	ts__cfg_free(&e->k.cfg);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	char *cmd = ts_xasprintf("rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
on_sasl(struct ts_sasl *s, enum ts_sasl_status status, const uint8_t *challenge,
	size_t len, void *arg)
{
	struct rec *r = arg;

	assert_non_null(challenge);
	r->calls++;
	r->status = status;
	free(r->challenge);
	r->challenge = ts_xstrndup((const char *)challenge, len);
	r->len = len;
	if (r->free_in_callback)
		ts_sasl_free(&s);
}

static struct ts_sasl *
start(struct env *e, struct rec *r, const char *mech, bool tls,
      const char *cb_type, const char *cb)
{
	struct ts_sasl_opts o = {
		.mechanism = mech,
		.tls_active = tls,
		.cb_type = cb_type,
		.cb_data = U8(cb),
		.cb_len = cb != NULL ? strlen(cb) : 0,
		.hostname = "mx.example.org",
	};
	memset(r, 0, sizeof(*r));
	return ts_sasl_new(&e->k.kctx, &o, on_sasl, r);
}

/* One step; runs the loop; expects exactly one callback. */
static enum ts_sasl_status
step(struct env *e, struct ts_sasl *s, struct rec *r, const void *data,
     size_t len)
{
	r->calls = 0;
	assert_int_equal(ts_sasl_step(s, data, len), 0);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(r->calls, 1);
	return r->status;
}

static enum ts_sasl_status
step_str(struct env *e, struct ts_sasl *s, struct rec *r, const char *text)
{
	return step(e, s, r, text, strlen(text));
}

static void
rec_clear(struct rec *r)
{
	free(r->challenge);
	r->challenge = NULL;
}

static void
test_mechanisms(void **state)
{
	assert_string_equal(ts_sasl_mechanisms(true, true, false),
			    "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS "
			    "SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN");
	assert_string_equal(ts_sasl_mechanisms(true, false, false),
			    "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN");
	assert_string_equal(ts_sasl_mechanisms(false, false, false),
			    "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5");
	assert_string_equal(ts_sasl_mechanisms(false, false, true),
			    "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN");
	assert_string_equal(ts_sasl_mechanisms(false, true, false),
			    "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5");

	struct env e;
	struct rec r;
	struct ts_sasl *s;
	memset(&e, 0, sizeof(e));
	e.k.kctx.kernel = &e.k;

	assert_null(start(&e, &r, "DIGEST-MD5", true, NULL, NULL));
	assert_null(start(&e, &r, "PLAIN", false, NULL, NULL));
	assert_null(start(&e, &r, "login", false, NULL, NULL));
	assert_null(start(&e, &r, "SCRAM-SHA-256-PLUS", true, NULL, NULL));
	assert_null(
		start(&e, &r, "SCRAM-SHA-256-PLUS", false, "tls-unique", "x"));
	assert_null(start(&e, &r, "SCRAM-SHA-1-PLUS", true, "tls-unique", ""));
	assert_null(start(&e, &r, "", true, NULL, NULL));
	struct ts_sasl_opts o = { .mechanism = "PLAIN",
				  .allow_plaintext = true };
	s = ts_sasl_new(&e.k.kctx, &o, on_sasl, &r);
	assert_non_null(s);
	ts_sasl_free(&s);
	assert_null(s);
	ts_sasl_free(&s);
	ts_sasl_free(NULL);

	static const char *const names[] = {
		"scram-sha-256-plus",
		"Scram-Sha-256",
		"SCRAM-SHA-1-PLUS",
		"scram-sha-1",
		"cram-md5",
		"plain",
		"LOGIN",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		s = start(&e, &r, names[i], true, "tls-exporter", "x");
		assert_non_null(s);
		assert_true(strcasecmp(ts_sasl_mechanism(s), names[i]) == 0);
		assert_null(ts_sasl_username(s));
		assert_null(ts_sasl_account(s));
		assert_null(ts_sasl_error(s));
		ts_sasl_free(&s);
	}

	/* First challenges need no store: they come before step returns. */
	s = start(&e, &r, "PLAIN", true, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, NULL, 0), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, TS_SASL_CONTINUE);
	assert_string_equal(r.challenge, "");
	ts_sasl_free(&s);
	rec_clear(&r);
	s = start(&e, &r, "LOGIN", true, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, U8(""), 0), 0);
	assert_string_equal(r.challenge, "Username:");
	ts_sasl_free(&s);
	rec_clear(&r);
	s = start(&e, &r, "CRAM-MD5", false, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, NULL, 0), 0);
	assert_int_equal(r.status, TS_SASL_CONTINUE);
	assert_true(strncmp(r.challenge, "<", 1) == 0);
	assert_non_null(strstr(r.challenge, "@mx.example.org>"));
	ts_sasl_free(&s);
	rec_clear(&r);
	s = start(&e, &r, "CRAM-MD5", false, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, U8("x"), 1), 0);
	assert_int_equal(r.status, TS_SASL_ERROR);
	assert_string_equal(ts_sasl_error(s),
			    "CRAM-MD5 takes no initial response");
	assert_int_equal(ts_sasl_step(s, U8("x"), 1), TS_E_STATE);
	ts_sasl_free(&s);
	rec_clear(&r);

	/* Oversized responses. */
	uint8_t big[TS__SASL_MAX_RESPONSE + 1];
	memset(big, 'a', sizeof(big));
	s = start(&e, &r, "SCRAM-SHA-1", false, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, big, sizeof(big)), 0);
	assert_int_equal(r.status, TS_SASL_ERROR);
	assert_string_equal(ts_sasl_error(s),
			    "response longer than 4096 bytes");
	ts_sasl_free(&s);
	rec_clear(&r);
	/* Malformed messages end the exchange before any lookup. */
	s = start(&e, &r, "PLAIN", true, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, U8("user\0pass"), 9), 0);
	assert_int_equal(r.status, TS_SASL_ERROR);
	assert_string_equal(ts_sasl_error(s),
			    "malformed PLAIN message: fewer than two NULs");
	ts_sasl_free(&s);
	rec_clear(&r);
}

/* A full SCRAM exchange through the public API; returns the final status. */
static enum ts_sasl_status
scram_exchange(struct env *e, const char *mech, const struct hash *h,
	       const char *cb_type, const char *cb, const char *gs2,
	       const char *user, const char *password, char **salt_r,
	       struct ts_sasl **s_r, struct rec *r)
{
	struct ts_sasl *s = start(e, r, mech, true, cb_type, cb);
	assert_non_null(s);
	*s_r = s;

	/* No initial response: an empty challenge first. */
	assert_int_equal(step(e, s, r, NULL, 0), TS_SASL_CONTINUE);
	assert_int_equal(r->len, 0);

	char *first = ts_xasprintf("%sn=%s,r=clientnonce", gs2, user);
	r->calls = 0;
	assert_int_equal(ts_sasl_step(s, U8(first), strlen(first)), 0);
	assert_int_equal(r->calls, 0); /* the secret comes later */
	assert_int_equal(ts_sasl_step(s, U8(first), strlen(first)), TS_E_STATE);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->status, TS_SASL_CONTINUE);
	char *server_first = ts_xstrdup(r->challenge);
	assert_true(strncmp(server_first, "r=clientnonce", 13) == 0);
	assert_int_equal(strlen(server_first),
			 strlen("r=clientnonce,s=,i=") + 32 + 24 +
				 strlen(strstr(server_first, ",i=") + 3));
	if (salt_r != NULL) {
		const char *sp = strstr(server_first, ",s=") + 3;
		*salt_r = ts_xstrndup(sp, (size_t)(strchr(sp, ',') - sp));
	}

	char *c = cbind(gs2, U8(cb),
			cb != NULL && gs2[0] == 'p' ? strlen(cb) : 0);
	char *wp = ts_xasprintf("c=%s,%.*s", c,
				(int)(strchr(server_first, ',') - server_first),
				server_first);
	char *v;
	char *final = client_final(h, password, first + strlen(gs2),
				   server_first, wp, &v);
	r->calls = 0;
	assert_int_equal(ts_sasl_step(s, U8(final), strlen(final)), 0);
	/* The last step needs no store: it is answered at once. */
	assert_int_equal(r->calls, 1);
	if (r->status == TS_SASL_OK)
		assert_string_equal(r->challenge, v);
	else
		assert_int_equal(r->len, 0);
	free(first);
	free(server_first);
	free(c);
	free(wp);
	free(v);
	free(final);
	return r->status;
}

static void
test_async_scram(void **state)
{
	struct env e;
	struct rec r;
	struct ts_sasl *s;
	char *salt1, *salt2;

	env_setup(&e);
	/* By account name and by address, SHA-256 and SHA-1. */
	assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256", &sha256, NULL,
					NULL, "n,,", "alice", "pencil", NULL,
					&s, &r),
			 TS_SASL_OK);
	assert_string_equal(ts_sasl_account(s), "alice");
	assert_string_equal(ts_sasl_username(s), "alice");
	assert_null(ts_sasl_error(s));
	ts_sasl_free(&s);
	rec_clear(&r);
	assert_int_equal(scram_exchange(&e, "SCRAM-SHA-1", &sha1, NULL, NULL,
					"n,,", "Alice.Smith@EXAMPLE.org",
					"pencil", NULL, &s, &r),
			 TS_SASL_OK);
	assert_string_equal(ts_sasl_account(s), "alice");
	assert_string_equal(ts_sasl_username(s), "Alice.Smith@EXAMPLE.org");
	ts_sasl_free(&s);
	rec_clear(&r);

	/* -PLUS, with an authzid naming the same account. */
	assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256-PLUS", &sha256,
					"tls-exporter", "0123456789abcdef",
					"p=tls-exporter,a=a@example.org,",
					"alice", "pencil", NULL, &s, &r),
			 TS_SASL_OK);
	assert_string_equal(ts_sasl_account(s), "alice");
	ts_sasl_free(&s);
	rec_clear(&r);

	/* Wrong password. */
	assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256", &sha256, NULL,
					NULL, "n,,", "alice", "pencil!", NULL,
					&s, &r),
			 TS_SASL_FAIL);
	assert_null(ts_sasl_account(s));
	assert_string_equal(ts_sasl_error(s), "wrong SCRAM proof (password)");
	ts_sasl_free(&s);
	rec_clear(&r);

	/* Acting for another account: refused even with the right proof. */
	assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256", &sha256, NULL,
					NULL, "n,a=bob,", "alice", "pencil",
					NULL, &s, &r),
			 TS_SASL_FAIL);
	assert_null(ts_sasl_account(s));
	assert_string_equal(ts_sasl_error(s), "authorization identity refused");
	ts_sasl_free(&s);
	rec_clear(&r);

	/*
	 * Unknown users (not configured; configured without a password;
	 * a catchall-only address) get a salt, the same one twice, and the
	 * store's iteration count; the exchange fails only at the end.
	 */
	static const char *const unknown[] = { "zoe", "carol",
					       "nobody@example.org" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256", &sha256,
						NULL, NULL, "n,,", unknown[i],
						"pencil", &salt1, &s, &r),
				 TS_SASL_FAIL);
		assert_null(ts_sasl_account(s));
		assert_string_equal(ts_sasl_error(s),
				    "no such user, or no password set");
		ts_sasl_free(&s);
		rec_clear(&r);
		assert_int_equal(scram_exchange(&e, "SCRAM-SHA-256", &sha256,
						NULL, NULL, "n,,", unknown[i],
						"x", &salt2, &s, &r),
				 TS_SASL_FAIL);
		assert_string_equal(salt1, salt2);
		assert_int_equal(strlen(salt1), 24); /* 16 bytes, as real */
		free(salt1);
		free(salt2);
		ts_sasl_free(&s);
		rec_clear(&r);
	}
	env_teardown(&e);
}

static void
test_async_plain_login(void **state)
{
	struct env e;
	struct rec r;
	struct ts_sasl *s;

	env_setup(&e);
	static const struct {
		const char *msg;
		size_t len;
		enum ts_sasl_status status;
		const char *account, *error;
	} plain_cases[] = {
		{ "\0alice\0pencil", 13, TS_SASL_OK, "alice", NULL },
		{ "\0ALICE\0pencil", 13, TS_SASL_OK, "alice", NULL },
		{ "\0a@example.org\0pencil", 21, TS_SASL_OK, "alice", NULL },
		{ "alice\0a@example.org\0pencil", 26, TS_SASL_OK, "alice",
		  NULL },
		{ "b@example.org\0b@example.org\0bobs password", 41, TS_SASL_OK,
		  "bob", NULL },
		{ "\0alice\0Pencil", 13, TS_SASL_FAIL, NULL, "wrong password" },
		{ "bob\0alice\0pencil", 16, TS_SASL_FAIL, NULL,
		  "authorization identity refused" },
		{ "zoe\0alice\0pencil", 16, TS_SASL_FAIL, NULL,
		  "authorization identity refused" },
		{ "\0zoe\0pencil", 11, TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
		{ "\0carol\0pencil", 13, TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
		{ "\0x@example.org\0pencil", 21, TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
		{ "\0alice+tag@example.org\0pencil", 29, TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
		{ "\0alice\0bad\xff", 11, TS_SASL_FAIL, NULL,
		  "wrong password" },
	};
	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]);
	     i++) {
		s = start(&e, &r, "PLAIN", true, NULL, NULL);
		/* Half the cases as initial response, half after "". */
		if (i % 2 == 1)
			assert_int_equal(step(&e, s, &r, NULL, 0),
					 TS_SASL_CONTINUE);
		r.calls = 0;
		assert_int_equal(ts_sasl_step(s, U8(plain_cases[i].msg),
					      plain_cases[i].len),
				 0);
		assert_int_equal(r.calls, 0); /* PBKDF2 on the pool */
		uv_run(&e.loop, UV_RUN_DEFAULT);
		assert_int_equal(r.calls, 1);
		if (r.status != plain_cases[i].status)
			fail_msg("case %zu: status %d (%s)", i, r.status,
				 ts_sasl_error(s));
		assert_int_equal(r.len, 0);
		if (plain_cases[i].account != NULL)
			assert_string_equal(ts_sasl_account(s),
					    plain_cases[i].account);
		else
			assert_null(ts_sasl_account(s));
		if (plain_cases[i].error != NULL)
			assert_string_equal(ts_sasl_error(s),
					    plain_cases[i].error);
		else
			assert_null(ts_sasl_error(s));
		assert_int_equal(ts_sasl_step(s, U8("x"), 1), TS_E_STATE);
		ts_sasl_free(&s);
		rec_clear(&r);
	}

	/* LOGIN: asked, and with the user name as initial response. */
	s = start(&e, &r, "LOGIN", true, NULL, NULL);
	assert_int_equal(step(&e, s, &r, NULL, 0), TS_SASL_CONTINUE);
	assert_string_equal(r.challenge, "Username:");
	assert_int_equal(step_str(&e, s, &r, "b@example.org"),
			 TS_SASL_CONTINUE);
	assert_string_equal(r.challenge, "Password:");
	assert_string_equal(ts_sasl_username(s), "b@example.org");
	assert_int_equal(step_str(&e, s, &r, "bobs password"), TS_SASL_OK);
	assert_string_equal(ts_sasl_account(s), "bob");
	ts_sasl_free(&s);
	rec_clear(&r);
	s = start(&e, &r, "login", true, NULL, NULL);
	assert_int_equal(step_str(&e, s, &r, "alice"), TS_SASL_CONTINUE);
	assert_string_equal(r.challenge, "Password:");
	assert_int_equal(step_str(&e, s, &r, "bobs password"), TS_SASL_FAIL);
	assert_string_equal(ts_sasl_error(s), "wrong password");
	ts_sasl_free(&s);
	rec_clear(&r);
	s = start(&e, &r, "LOGIN", true, NULL, NULL);
	assert_int_equal(step_str(&e, s, &r, "alice"), TS_SASL_CONTINUE);
	assert_int_equal(step(&e, s, &r, NULL, 0), TS_SASL_ERROR);
	assert_string_equal(ts_sasl_error(s),
			    "malformed LOGIN exchange: empty password");
	ts_sasl_free(&s);
	rec_clear(&r);
	env_teardown(&e);
}

/* The CRAM-MD5 response to the last challenge in r, for password. */
static char *
cram_response(const struct rec *r, const char *user, const char *password)
{
	uint8_t d[16];
	char h[33];
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_MD5, password,
					  strlen(password), r->challenge,
					  r->len, d),
			 0);
	hex(d, 16, h);
	return ts_xasprintf("%s %s", user, h);
}

static void
test_async_cram_md5(void **state)
{
	struct env e;
	struct rec r;
	struct ts_sasl *s;
	static const struct {
		const char *user, *password;
		enum ts_sasl_status status;
		const char *account, *error;
	} cases[] = {
		{ "alice", "pencil", TS_SASL_OK, "alice", NULL },
		{ "Alice.Smith@example.org", "pencil", TS_SASL_OK, "alice",
		  NULL },
		{ "bob", "bobs password", TS_SASL_OK, "bob", NULL },
		{ "bob", "pencil", TS_SASL_FAIL, NULL,
		  "wrong CRAM-MD5 digest" },
		{ "carol", "pencil", TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
		{ "zoe", "pencil", TS_SASL_FAIL, NULL,
		  "no such user, or no password set" },
	};

	env_setup(&e);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = start(&e, &r, "CRAM-MD5", false, NULL, NULL);
		assert_int_equal(step(&e, s, &r, NULL, 0), TS_SASL_CONTINUE);
		char *resp =
			cram_response(&r, cases[i].user, cases[i].password);
		assert_int_equal(step_str(&e, s, &r, resp), cases[i].status);
		free(resp);
		if (cases[i].account != NULL)
			assert_string_equal(ts_sasl_account(s),
					    cases[i].account);
		else
			assert_null(ts_sasl_account(s));
		if (cases[i].error != NULL)
			assert_string_equal(ts_sasl_error(s), cases[i].error);
		assert_string_equal(ts_sasl_username(s), cases[i].user);
		ts_sasl_free(&s);
		rec_clear(&r);
	}
	env_teardown(&e);
}

static void
test_async_cancel(void **state)
{
	struct env e;
	struct rec r;
	struct ts_sasl *s;

	env_setup(&e);
	/* Freed while the store works: the callback never comes. */
	s = start(&e, &r, "SCRAM-SHA-256", true, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, U8("n,,n=alice,r=x"), 14), 0);
	ts_sasl_free(&s);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	assert_int_equal(r.calls, 0);

	s = start(&e, &r, "PLAIN", true, NULL, NULL);
	assert_int_equal(ts_sasl_step(s, U8("\0alice\0pencil"), 13), 0);
	ts_sasl_cancel(s);
	assert_int_equal(ts_sasl_step(s, U8("x"), 1), TS_E_STATE);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	assert_int_equal(r.calls, 0);
	assert_null(ts_sasl_account(s));
	ts_sasl_free(&s);

	/* Freed inside the callback, after a store lookup and before. */
	s = start(&e, &r, "CRAM-MD5", false, NULL, NULL);
	assert_int_equal(step(&e, s, &r, NULL, 0), TS_SASL_CONTINUE);
	char *resp = cram_response(&r, "alice", "pencil");
	r.free_in_callback = true;
	r.calls = 0;
	assert_int_equal(ts_sasl_step(s, U8(resp), strlen(resp)), 0);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, TS_SASL_OK);
	free(resp);
	rec_clear(&r);
	s = start(&e, &r, "LOGIN", true, NULL, NULL);
	r.free_in_callback = true;
	assert_int_equal(ts_sasl_step(s, NULL, 0), 0);
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.challenge, "Username:");
	rec_clear(&r);
	env_teardown(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_text_ok),
		cmocka_unit_test(test_plain_parse),
		cmocka_unit_test(test_login_parse),
		cmocka_unit_test(test_cram_md5),
		cmocka_unit_test(test_scram_sha1_rfc5802),
		cmocka_unit_test(test_scram_sha256_rfc7677),
		cmocka_unit_test(test_scram_proof),
		cmocka_unit_test(test_scram_channel_binding),
		cmocka_unit_test(test_scram_downgrade),
		cmocka_unit_test(test_scram_names),
		cmocka_unit_test(test_scram_malformed_first),
		cmocka_unit_test(test_scram_malformed_final),
		cmocka_unit_test(test_scram_fake_secret),
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_async_scram),
		cmocka_unit_test(test_async_plain_login),
		cmocka_unit_test(test_async_cram_md5),
		cmocka_unit_test(test_async_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
