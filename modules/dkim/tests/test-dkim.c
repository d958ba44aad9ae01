/*
 * modules/dkim/tests/test-dkim.c — the dkim module's pure layers:
 * canonicalization (RFC 6376 3.4.5 examples, chunking, l=, empty bodies),
 * the tag-list and DKIM-Signature parsers (a table of malformed
 * signatures, each with its reason), key records, and sign-then-verify
 * round trips with RSA and Ed25519 keys from the shared vectors.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../dkim.h"

struct sinkbuf {
	char data[4096];
	size_t len;
};

static void
sink(void *arg, const char *data, size_t len)
{
	struct sinkbuf *b = arg;
	assert_true(b->len + len < sizeof(b->data));
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Canonicalize body `in` fed in chunks of `chunk` bytes (0: at once). */
static void
canon_body(enum dkim_canon c, uint64_t limit, const char *in, size_t chunk,
	   struct sinkbuf *out)
{
	struct dkim_body b;
	memset(out, 0, sizeof(*out));
	dkim_body_init(&b, c, limit, sink, out);
	size_t len = strlen(in);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (size_t o = 0; o < len; o += chunk)
		dkim_body_feed(&b, in + o, len - o < chunk ? len - o : chunk);
	dkim_body_finish(&b);
}

static void
test_body_rfc_example(void **state)
{
	(void)state;
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	struct sinkbuf out;
	for (size_t chunk = 0; chunk < 6; chunk++) {
		canon_body(DKIM_CANON_RELAXED, UINT64_MAX, body, chunk, &out);
		assert_string_equal(out.data, " C\r\nD E\r\n");
		canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, body, chunk, &out);
		assert_string_equal(out.data, " C \r\nD \t E\r\n");
	}
}

static void
test_body_edges(void **state)
{
	(void)state;
	struct sinkbuf out;
	/* Empty body: simple is CRLF, relaxed is empty. */
	canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, "", 0, &out);
	assert_string_equal(out.data, "\r\n");
	canon_body(DKIM_CANON_RELAXED, UINT64_MAX, "", 0, &out);
	assert_string_equal(out.data, "");
	canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, "\r\n\r\n", 0, &out);
	assert_string_equal(out.data, "\r\n");
	canon_body(DKIM_CANON_RELAXED, UINT64_MAX, " \t\r\n\r\n", 0, &out);
	assert_string_equal(out.data, "");
	/* No final line end: one is added. */
	canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, "abc", 0, &out);
	assert_string_equal(out.data, "abc\r\n");
	canon_body(DKIM_CANON_RELAXED, UINT64_MAX, "abc \t", 0, &out);
	assert_string_equal(out.data, "abc\r\n");
	/* Bare LF ends lines too; CR alone is data. */
	canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, "a\nb\n\n", 1, &out);
	assert_string_equal(out.data, "a\r\nb\r\n");
	canon_body(DKIM_CANON_SIMPLE, UINT64_MAX, "a\rb\r\n", 1, &out);
	assert_string_equal(out.data, "a\rb\r\n");
	/* Blank lines in the middle are kept. */
	canon_body(DKIM_CANON_RELAXED, UINT64_MAX, "a\r\n\r\n \r\nb\r\n\r\n", 2,
		   &out);
	assert_string_equal(out.data, "a\r\n\r\n\r\nb\r\n");
	/* l= cuts the canonical output. */
	canon_body(DKIM_CANON_SIMPLE, 4, "abc\r\ndef\r\n", 1, &out);
	assert_string_equal(out.data, "abc\r");
	canon_body(DKIM_CANON_SIMPLE, 0, "abc\r\n", 0, &out);
	assert_string_equal(out.data, "");
}

static char *
canon_hdr(enum dkim_canon c, const char *name, const char *value)
{
	char *out = NULL;
	size_t len = 0;
	dkim_canon_header(c, name, strlen(name), value, strlen(value), &out,
			  &len);
	assert_int_equal(strlen(out), len);
	return out;
}

static void
test_header_rfc_example(void **state)
{
	(void)state;
	char *s = canon_hdr(DKIM_CANON_RELAXED, "A", " X");
	assert_string_equal(s, "a:X\r\n");
	free(s);
	s = canon_hdr(DKIM_CANON_RELAXED, "B ", " Y\t\r\n\tZ  ");
	assert_string_equal(s, "b:Y Z\r\n");
	free(s);
	s = canon_hdr(DKIM_CANON_SIMPLE, "B ", " Y\t\r\n\tZ  ");
	assert_string_equal(s, "B : Y\t\r\n\tZ  \r\n");
	free(s);
	/* LF folding becomes CRLF in simple. */
	s = canon_hdr(DKIM_CANON_SIMPLE, "Subject", " a\n b");
	assert_string_equal(s, "Subject: a\r\n b\r\n");
	free(s);
	s = canon_hdr(DKIM_CANON_RELAXED, "SUBJECT", "  ");
	assert_string_equal(s, "subject:\r\n");
	free(s);
	/* Appending to an existing buffer. */
	char *out = NULL;
	size_t len = 0;
	dkim_canon_header(DKIM_CANON_RELAXED, "A", 1, "1", 1, &out, &len);
	dkim_canon_header(DKIM_CANON_RELAXED, "B", 1, " 2 ", 3, &out, &len);
	assert_string_equal(out, "a:1\r\nb:2\r\n");
	free(out);
}

static void
test_tag_list(void **state)
{
	(void)state;
	const char *s = " a = b ;\r\n\tc=d e; f=;";
	size_t pos = 0, nl, vl;
	const char *n, *v;
	assert_int_equal(dkim_tag_next(s, strlen(s), &pos, &n, &nl, &v, &vl),
			 1);
	assert_int_equal(nl, 1);
	assert_memory_equal(v, "b", 1);
	assert_int_equal(vl, 1);
	assert_int_equal(dkim_tag_next(s, strlen(s), &pos, &n, &nl, &v, &vl),
			 1);
	assert_int_equal(vl, 3);
	assert_int_equal(dkim_tag_next(s, strlen(s), &pos, &n, &nl, &v, &vl),
			 1);
	assert_int_equal(vl, 0);
	assert_int_equal(dkim_tag_next(s, strlen(s), &pos, &n, &nl, &v, &vl),
			 0);
	const char *bad[] = { "=x", "a", "a b=c", "1a=b", "a=\x01", "a=\xc3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pos = 0;
		assert_int_equal(dkim_tag_next(bad[i], strlen(bad[i]), &pos, &n,
					       &nl, &v, &vl),
				 TS_E_INVAL);
	}
}

#define GOOD_B "dGVzdA=="
#define GOOD_BH "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="

static void
test_sig_good(void **state)
{
	(void)state;
	const char *v = "v=1; a=rsa-sha256; c=relaxed; d=Example.org;\r\n"
			" s=sel; h=From : to:FROM; i=jo=40e@mail.example.org;"
			" l=10; q=dns/txt:x/y; t=100; x=200; z=a|b;\r\n"
			" bh=" GOOD_BH "; b=dGVz\r\n dA==";
	struct dkim_sig sig;
	char err[128];
	int rc = dkim_sig_parse(v, strlen(v), &sig, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(sig.alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(sig.hcanon, DKIM_CANON_RELAXED);
	assert_int_equal(sig.bcanon, DKIM_CANON_SIMPLE);
	assert_string_equal(sig.d, "Example.org");
	assert_string_equal(sig.s, "sel");
	assert_string_equal(sig.i, "jo@e@mail.example.org");
	assert_int_equal(sig.h_count, 3);
	assert_string_equal(sig.h[1], "to");
	assert_true(sig.has_l && sig.l == 10);
	assert_true(sig.has_t && sig.t == 100 && sig.has_x && sig.x == 200);
	assert_int_equal(sig.b_len, 4);
	assert_memory_equal(sig.b, "test", 4);
	assert_int_equal(sig.bh_len, 32);
	dkim_sig_clear(&sig);
	/* b= stripped, the rest kept as written. */
	size_t sl;
	char *st = dkim_sig_strip_b(v, strlen(v), &sl);
	assert_non_null(strstr(st, " b="));
	assert_string_equal(strstr(st, " b="), " b=");
	assert_non_null(strstr(st, "bh=" GOOD_BH));
	free(st);
}

struct bad_sig {
	const char *value;
	const char *reason;
};

#define T_BASE "a=rsa-sha256; d=example.org; s=sel; h=from; bh=" GOOD_BH

static const struct bad_sig bad_sigs[] = {
	{ "v=2; " T_BASE "; b=" GOOD_B, "unsupported version v=2" },
	{ T_BASE "; b=" GOOD_B, "missing tag v=" },
	{ "v=1; d=example.org; s=sel; h=from; bh=" GOOD_BH "; b=" GOOD_B,
	  "missing tag a=" },
	{ "v=1; " T_BASE, "missing tag b=" },
	{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; b=" GOOD_B,
	  "missing tag bh=" },
	{ "v=1; a=rsa-sha256; s=sel; h=from; bh=" GOOD_BH "; b=" GOOD_B,
	  "missing tag d=" },
	{ "v=1; a=rsa-sha256; d=example.org; h=from; bh=" GOOD_BH "; b=" GOOD_B,
	  "missing tag s=" },
	{ "v=1; a=rsa-sha256; d=example.org; s=sel; bh=" GOOD_BH "; b=" GOOD_B,
	  "missing tag h=" },
	{ "v=1; v=1; " T_BASE "; b=" GOOD_B, "duplicate tag v" },
	{ "v=1; " T_BASE "; bh=" GOOD_BH "; b=" GOOD_B, "duplicate tag bh" },
	{ "v=1; a=rsa-md5; d=example.org; s=sel; h=from; bh=" GOOD_BH
	  "; b=" GOOD_B,
	  "unknown algorithm a=rsa-md5" },
	{ "v=1; " T_BASE "; b=***", "b= is not base64" },
	{ "v=1; " T_BASE "; b=", "b= is not base64" },
	{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=abc; b=" GOOD_B,
	  "bh= is not base64" },
	{ "v=1; " T_BASE "; c=fancy; b=" GOOD_B,
	  "unknown canonicalization c=" },
	{ "v=1; " T_BASE "; c=simple/odd; b=" GOOD_B,
	  "unknown canonicalization c=" },
	{ "v=1; a=rsa-sha256; d=legitimate.com(.attacker.com; s=sel; h=from; "
	  "bh=" GOOD_BH "; b=" GOOD_B,
	  "d= is not a domain" },
	{ "v=1; a=rsa-sha256; d=a..b; s=sel; h=from; bh=" GOOD_BH "; b=" GOOD_B,
	  "d= is not a domain" },
	{ "v=1; a=rsa-sha256; d=example.org; s=se/l; h=from; bh=" GOOD_BH
	  "; b=" GOOD_B,
	  "s= is not a selector" },
	{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=to:subject; "
	  "bh=" GOOD_BH "; b=" GOOD_B,
	  "h= does not include From" },
	{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from::to; bh=" GOOD_BH
	  "; b=" GOOD_B,
	  "h= has an empty header name" },
	{ "v=1; " T_BASE "; i=joe@example.com; b=" GOOD_B,
	  "i= domain is not within d=" },
	{ "v=1; " T_BASE "; i=joe@badexample.org; b=" GOOD_B,
	  "i= domain is not within d=" },
	{ "v=1; " T_BASE "; i=joe; b=" GOOD_B, "i= is malformed" },
	{ "v=1; " T_BASE "; i=jo=4@example.org; b=" GOOD_B, "i= is malformed" },
	{ "v=1; " T_BASE "; l=-1; b=" GOOD_B, "l= is not a number" },
	{ "v=1; " T_BASE "; q=http; b=" GOOD_B, "q= does not offer dns/txt" },
	{ "v=1; " T_BASE "; t=1x; b=" GOOD_B, "t= is not a number" },
	{ "v=1; " T_BASE "; x=; b=" GOOD_B, "x= is not a number" },
	{ "v=1; " T_BASE "; t=200; x=100; b=" GOOD_B, "x= is before t=" },
	{ "v=1; " T_BASE "; b=" GOOD_B "; junk", "malformed tag list" },
	{ "", "missing tag v=" },
};

static void
test_sig_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_sigs) / sizeof(bad_sigs[0]); i++) {
		struct dkim_sig sig;
		char err[128] = "";
		int rc = dkim_sig_parse(bad_sigs[i].value,
					strlen(bad_sigs[i].value), &sig, err,
					sizeof(err));
		if (rc != TS_E_INVAL || strcmp(err, bad_sigs[i].reason) != 0)
			print_error("case %zu: rc %d err '%s' want '%s'\n", i,
				    rc, err, bad_sigs[i].reason);
		assert_int_equal(rc, TS_E_INVAL);
		assert_string_equal(err, bad_sigs[i].reason);
	}
}

#define ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static void
test_key_records(void **state)
{
	(void)state;
	struct dkim_key key;
	char err[128];
	const char *good[] = {
		"v=DKIM1; k=ed25519; p=" ED_P,
		"p=" ED_P,
		"v=DKIM1; g=*; k=rsa; s=email:other; t=y:s; p=" ED_P,
		"k=ed25519; h=sha256:sha512; n=notes here; p=" ED_P "; zz=1",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = dkim_key_parse(good[i], strlen(good[i]), &key, err,
					sizeof(err));
		if (rc != 0)
			print_error("good %zu: %s\n", i, err);
		assert_int_equal(rc, 0);
		assert_int_equal(key.p_len, 32);
		assert_false(key.revoked);
		if (i == 2) {
			assert_true(key.testing);
			assert_true(key.strict);
			assert_int_equal(key.type, DKIM_KEY_RSA);
		}
		if (i == 1)
			assert_int_equal(key.type, DKIM_KEY_RSA);
		dkim_key_clear(&key);
	}
	const char *revoked = "v=DKIM1; k=rsa; p=";
	assert_int_equal(dkim_key_parse(revoked, strlen(revoked), &key, err,
					sizeof(err)),
			 0);
	assert_true(key.revoked);
	assert_null(key.p);
	dkim_key_clear(&key);
	const char *h1 = "h=sha1; p=" ED_P;
	assert_int_equal(dkim_key_parse(h1, strlen(h1), &key, err, sizeof(err)),
			 0);
	assert_false(key.sha256_ok);
	dkim_key_clear(&key);
	struct bad_sig bad[] = {
		{ "v=DKIM1: k=rsa; p=" ED_P,
		  "key record v= is not DKIM1 first" },
		{ "k=rsa; v=DKIM1; p=" ED_P,
		  "key record v= is not DKIM1 first" },
		{ "v=DKIM2; p=" ED_P, "key record v= is not DKIM1 first" },
		{ "k=ed25519-sha256; p=" ED_P,
		  "unknown key type k=ed25519-sha256" },
		{ "k=dsa; p=" ED_P, "unknown key type k=dsa" },
		{ "v=DKIM1; s=tlsrpt; p=" ED_P, "key is not for email (s=)" },
		{ "v=DKIM1; k=rsa", "key record has no p=" },
		{ "p=!!!!", "key p= is not base64" },
		{ "p=" ED_P "; p=" ED_P, "duplicate tag in key record" },
		{ "p " ED_P, "malformed key record" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = dkim_key_parse(bad[i].value, strlen(bad[i].value),
					&key, err, sizeof(err));
		if (rc != TS_E_INVAL || strcmp(err, bad[i].reason) != 0)
			print_error("bad %zu: rc %d '%s'\n", i, rc, err);
		assert_int_equal(rc, TS_E_INVAL);
		assert_string_equal(err, bad[i].reason);
	}
}

/* --- sign, then verify ------------------------------------------------------
 */

static char *
read_vec(const char *rel, size_t *len_r)
{
	const char *src = getenv("TS_SRCDIR");
	char *path = ts_xasprintf("%s/../shared/testdata/dkim/%s",
				  src != NULL ? src : ".", rel);
	FILE *fp = fopen(path, "rb");
	free(path);
	if (fp == NULL)
		return NULL;
	char *buf = ts_xmalloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	*len_r = n;
	return buf;
}

/* The TXT record for a PEM private key, via GnuTLS. */
#include <gnutls/abstract.h>
static char *
txt_for(const char *pem, size_t len)
{
	gnutls_privkey_t k;
	gnutls_pubkey_t pub;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
	assert_int_equal(gnutls_privkey_init(&k), 0);
	assert_int_equal(gnutls_privkey_import_x509_raw(
				 k, &d, GNUTLS_X509_FMT_PEM, NULL, 0),
			 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, k, 0, 0), 0);
	unsigned bits;
	bool ed = gnutls_privkey_get_pk_algorithm(k, &bits) ==
		  GNUTLS_PK_EDDSA_ED25519;
	gnutls_datum_t out = { NULL, 0 };
	if (ed)
		assert_int_equal(
			gnutls_pubkey_export_ecc_raw2(pub, NULL, &out, NULL, 0),
			0);
	else
		assert_int_equal(
			gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &out),
			0);
	char *b64 = dkim_base64_encode(out.data, out.size);
	char *txt = ts_xasprintf("v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa",
				 b64);
	free(b64);
	gnutls_free(out.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(k);
	return txt;
}

/* An Ed25519 PKCS#8 key made by GnuTLS for the round trip. */
static char *
ed_pem(size_t *len_r)
{
	gnutls_x509_privkey_t k;
	assert_int_equal(gnutls_x509_privkey_init(&k), 0);
	assert_int_equal(gnutls_x509_privkey_generate(
				 k, GNUTLS_PK_EDDSA_ED25519, 256, 0),
			 0);
	gnutls_datum_t pem = { NULL, 0 };
	assert_int_equal(
		gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL,
						  GNUTLS_PKCS_PLAIN, &pem),
		0);
	char *s = ts_xstrndup((const char *)pem.data, pem.size);
	*len_r = pem.size;
	gnutls_free(pem.data);
	gnutls_x509_privkey_deinit(k);
	return s;
}

static const char *const sign_headers[] = { "From", "To",	  "Subject",
					    "Date", "Message-ID", "Cc" };
static const char *const sign_over[] = { "From", "Subject", "Cc" };

static void
round_trip(const char *msg, size_t len, enum dkim_canon hc, enum dkim_canon bc,
	   size_t chunk)
{
	size_t rlen = 0;
	char *rsa = read_vec("dkimpy/test.private", &rlen);
	if (rsa == NULL)
		skip();
	size_t elen;
	char *ed = ed_pem(&elen);
	struct dkim_sign_key keys[2] = {
		{ "rsa", rsa, rlen },
		{ "ed", ed, elen },
	};
	struct dkim_sign_params p = {
		.domain = "example.com",
		.keys = keys,
		.key_count = 2,
		.hcanon = hc,
		.bcanon = bc,
		.headers = sign_headers,
		.header_count = 6,
		.oversign = sign_over,
		.oversign_count = 3,
		.now = (uint64_t)time(NULL),
		.expire = 3600,
	};
	/* Split the message: header (with its empty line) and body. */
	const char *sep = strstr(msg, "\n\n");
	size_t hl = sep != NULL ? (size_t)(sep - msg) + 2 : len;
	const char *sep2 = strstr(msg, "\r\n\r\n");
	if (sep2 != NULL && (sep == NULL || sep2 < sep))
		hl = (size_t)(sep2 - msg) + 4;
	struct dkim_signer *s = dkim_signer_new(&p);
	for (size_t o = hl; o < len; o += chunk)
		dkim_signer_body(s, msg + o, len - o < chunk ? len - o : chunk);
	char **values;
	char err[128];
	assert_int_equal(
		dkim_signer_finish(s, msg, hl, &values, err, sizeof(err)), 0);
	dkim_signer_free(&s);
	/* The signed message: both fields on top, then the original. */
	char *signed_msg = ts_xasprintf("DKIM-Signature: %s\r\n"
					"DKIM-Signature: %s\r\n%s",
					values[0], values[1], msg);
	char *txt[2] = { txt_for(rsa, rlen), txt_for(ed, elen) };
	for (int tamper = 0; tamper < 2; tamper++) {
		if (tamper) {
			char *p2 = strrchr(signed_msg, 'e');
			assert_non_null(p2);
			*p2 = 'E';
		}
		struct dkim_verifier v;
		dkim_verifier_init(&v, 10, (uint64_t)time(NULL));
		size_t sl = strlen(signed_msg);
		for (size_t o = 0; o < sl; o += chunk)
			dkim_verifier_feed(&v, signed_msg + o,
					   sl - o < chunk ? sl - o : chunk);
		dkim_verifier_finish(&v);
		assert_int_equal(v.count, 2);
		for (size_t i = 0; i < 2; i++) {
			/* Fields are in file order: values[0] first. */
			dkim_verifier_key(&v, i, DKIM_DNS_OK, txt[i],
					  strlen(txt[i]));
			if (v.sigs[i].result !=
			    (tamper ? DKIM_FAIL : DKIM_PASS))
				print_error("sig %zu: %s %s\n%s\n", i,
					    dkim_result_name(v.sigs[i].result),
					    v.sigs[i].reason, signed_msg);
			assert_int_equal(v.sigs[i].result,
					 tamper ? DKIM_FAIL : DKIM_PASS);
		}
		dkim_verifier_free(&v);
	}
	free(txt[0]);
	free(txt[1]);
	free(signed_msg);
	free(values[0]);
	free(values[1]);
	free(values);
	free(rsa);
	free(ed);
}

static void
test_round_trips(void **state)
{
	(void)state;
	const char *files[] = { "dkimpy/rfc6376.msg", "dkimpy/test.message",
				"dkimpy/test_extra.message",
				"dkimpy/rfc6376.w1258.msg" };
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len;
		char *msg = read_vec(files[f], &len);
		if (msg == NULL)
			skip();
		for (int c = 0; c < 4; c++)
			round_trip(
				msg, len,
				c & 1 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
				c & 2 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
				c == 3 ? 5 : 4096);
		free(msg);
	}
}

static void
test_from_domain(void **state)
{
	(void)state;
	const char *h = "Date: x\r\nFrom: \"Jo\" <jo@Example.ORG>\r\n\r\n";
	size_t n;
	char *d = dkim_from_domain(h, strlen(h), &n);
	assert_string_equal(d, "Example.ORG");
	assert_int_equal(n, 1);
	free(d);
	h = "From: a@b.example\r\nFrom: c@d.example\r\n";
	d = dkim_from_domain(h, strlen(h), &n);
	assert_int_equal(n, 2);
	free(d);
	h = "To: a@b.example\r\n";
	assert_null(dkim_from_domain(h, strlen(h), &n));
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_rfc_example),
		cmocka_unit_test(test_body_edges),
		cmocka_unit_test(test_header_rfc_example),
		cmocka_unit_test(test_tag_list),
		cmocka_unit_test(test_sig_good),
		cmocka_unit_test(test_sig_bad),
		cmocka_unit_test(test_key_records),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_from_domain),
	};
	return cmocka_run_group_tests_name("dkim", tests, NULL, NULL);
}
