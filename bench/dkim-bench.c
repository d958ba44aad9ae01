/*
 * bench/dkim-bench.c — DKIM signatures and verifications per second with
 * the dkim module's own code (modules/dkim: canonicalization, hashing,
 * GnuTLS), for rsa-2048 and ed25519 keys over 4 KiB and 1 MiB messages.
 * Keys and messages are made here; verification gets the key record
 * directly (no DNS).  Run by bench/dkim-speed.py, which times dkimpy on the
 * same cases; not a test.
 *
 *   dkim-bench [SECONDS-PER-CASE]
 *
 * Prints one line per case: "sign|verify ALG SIZE N ops/s".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "modules/dkim/dkim.h"

static double
bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A PEM key and its TXT record. */
static void
bench_key(bool ed, char **pem_r, size_t *pem_len, char **txt_r)
{
	gnutls_x509_privkey_t k;
	gnutls_privkey_t pk;
	gnutls_pubkey_t pub;
	gnutls_datum_t pem = { NULL, 0 }, out = { NULL, 0 };
	if (gnutls_x509_privkey_init(&k) < 0 ||
	    gnutls_x509_privkey_generate(
		    k, ed ? GNUTLS_PK_EDDSA_ED25519 : GNUTLS_PK_RSA,
		    ed ? 256 : 2048, 0) < 0 ||
	    gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL,
					      GNUTLS_PKCS_PLAIN, &pem) < 0 ||
	    gnutls_privkey_init(&pk) < 0 ||
	    gnutls_privkey_import_x509(pk, k, 0) < 0 ||
	    gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_pubkey_import_privkey(pub, pk, 0, 0) < 0)
		abort();
	if (ed ? gnutls_pubkey_export_ecc_raw2(pub, NULL, &out, NULL, 0) < 0
	       : gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &out) < 0)
		abort();
	char *b64 = dkim_base64_encode(out.data, out.size);
	*txt_r = ts_xasprintf("v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa",
			      b64);
	free(b64);
	*pem_r = ts_xstrndup((const char *)pem.data, pem.size);
	*pem_len = pem.size;
	gnutls_free(pem.data);
	gnutls_free(out.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(pk);
	gnutls_x509_privkey_deinit(k);
}

static const char bench_header[] = "From: Alice <alice@example.org>\r\n"
				   "To: Bob <bob@example.net>\r\n"
				   "Subject: benchmark message\r\n"
				   "Date: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
				   "Message-ID: <bench@example.org>\r\n"
				   "\r\n";

static char *
bench_message(size_t body_size, size_t *len_r)
{
	size_t hl = strlen(bench_header);
	char *m = ts_xmalloc(hl + body_size + 1);
	memcpy(m, bench_header, hl);
	static const char line[] = "The quick brown fox jumps over the lazy "
				   "dog, again and again and again.\r\n";
	size_t o = hl;
	while (o < hl + body_size) {
		size_t n = strlen(line);
		if (n > hl + body_size - o)
			n = hl + body_size - o;
		memcpy(m + o, line, n);
		o += n;
	}
	m[o] = '\0';
	*len_r = o;
	return m;
}

static const char *const bench_names[] = { "From", "To", "Subject", "Date",
					   "Message-ID" };

static char *
bench_sign(const char *msg, size_t len, struct dkim_sign_key *key)
{
	struct dkim_sign_params p = {
		.domain = "example.org",
		.keys = key,
		.key_count = 1,
		.hcanon = DKIM_CANON_RELAXED,
		.bcanon = DKIM_CANON_RELAXED,
		.headers = bench_names,
		.header_count = 5,
		.oversign = bench_names,
		.oversign_count = 1,
		.now = (uint64_t)time(NULL),
	};
	size_t hl = strlen(bench_header);
	struct dkim_signer *s = dkim_signer_new(&p);
	for (size_t o = hl; o < len; o += 65536)
		dkim_signer_body(s, msg + o, len - o < 65536 ? len - o : 65536);
	char **values;
	char err[128];
	if (dkim_signer_finish(s, msg, hl, &values, err, sizeof(err)) < 0) {
		fprintf(stderr, "sign: %s\n", err);
		exit(1);
	}
	dkim_signer_free(&s);
	char *v = values[0];
	free(values);
	return v;
}

static void
bench_verify(const char *msg, size_t len, const char *txt)
{
	struct dkim_verifier v;
	dkim_verifier_init(&v, 10, (uint64_t)time(NULL));
	for (size_t o = 0; o < len; o += 65536)
		dkim_verifier_feed(&v, msg + o,
				   len - o < 65536 ? len - o : 65536);
	dkim_verifier_finish(&v);
	dkim_verifier_key(&v, 0, DKIM_DNS_OK, txt, strlen(txt));
	if (v.count != 1 || v.sigs[0].result != DKIM_PASS) {
		fprintf(stderr, "verify: %s\n",
			v.count ? v.sigs[0].reason : "no signature");
		exit(1);
	}
	dkim_verifier_free(&v);
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	for (int ed = 1; ed >= 0; ed--) {
		char *pem, *txt;
		size_t pem_len;
		bench_key(ed, &pem, &pem_len, &txt);
		struct dkim_sign_key key = { "bench", pem, pem_len };
		const size_t sizes[] = { 4096, 1024 * 1024 };
		for (size_t si = 0; si < 2; si++) {
			size_t len;
			char *msg = bench_message(sizes[si], &len);
			const char *alg = ed ? "ed25519" : "rsa-2048";
			const char *size = si ? "1MiB" : "4KiB";
			unsigned n = 0;
			char *sig = NULL;
			double t0 = bench_now(), t;
			do {
				free(sig);
				sig = bench_sign(msg, len, &key);
				n++;
			} while ((t = bench_now() - t0) < secs);
			printf("sign %s %s %u %.1f\n", alg, size, n, n / t);
			char *signed_msg = ts_xasprintf(
				"DKIM-Signature: %s\r\n%s", sig, msg);
			size_t sl = strlen(signed_msg);
			n = 0;
			t0 = bench_now();
			do {
				bench_verify(signed_msg, sl, txt);
				n++;
			} while ((t = bench_now() - t0) < secs);
			printf("verify %s %s %u %.1f\n", alg, size, n, n / t);
			fflush(stdout);
			free(signed_msg);
			free(sig);
			free(msg);
		}
		free(pem);
		free(txt);
	}
	return 0;
}
