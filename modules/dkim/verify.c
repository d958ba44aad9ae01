/*
 * modules/dkim/verify.c — checking the DKIM signatures of one message
 * (RFC 6376 section 6, RFC 8301, RFC 8463).
 *
 * The verifier is fed the message in chunks: it keeps the header in
 * memory, and once the header is complete it parses every DKIM-Signature
 * (up to a limit), prepares the data each signature's header hash covers
 * and starts one streaming body canonicalizer and SHA-256 per signature.
 * At the end the body hashes are compared; then, for each signature, the
 * caller hands in what the key lookup gave and the public-key check runs.
 * Nothing here touches the network or the event loop: the module glue
 * does the DNS lookups and runs this on the work pool; tests call it
 * directly with keys from a table.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/abstract.h>

#include <tessera/mime.h>

#include "dkim.h"

#define DKIM_HEADER_MAX (1024 * 1024)
/* A signature dated this far in the future is refused (clock skew). */
#define DKIM_FUTURE_SLACK 3600

const char *
dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_POLICY:
		return "policy";
	case DKIM_TEMPERROR:
		return "temperror";
	case DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static void dkim_set(struct dkim_vsig *s, enum dkim_result r, const char *fmt,
		     ...) TS_PRINTF(3, 4);

static void
dkim_set(struct dkim_vsig *s, enum dkim_result r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	s->result = r;
	s->done = true;
}

void
dkim_verifier_init(struct dkim_verifier *v, size_t max_sigs, uint64_t now)
{
	memset(v, 0, sizeof(*v));
	v->now = now;
	v->header_max = DKIM_HEADER_MAX;
	v->max_sigs = max_sigs;
	v->sigs = ts_xcalloc(max_sigs > 0 ? max_sigs : 1, sizeof(*v->sigs));
}

static void
dkim_hash_sink(void *arg, const char *data, size_t len)
{
	gnutls_hash((gnutls_hash_hd_t)arg, data, len);
}

/* A best-effort tag value from a signature that did not parse. */
static char *
dkim_raw_tag(const char *value, size_t len, const char *tag)
{
	size_t pos = 0;
	const char *n, *v;
	size_t nl, vl;
	while (dkim_tag_next(value, len, &pos, &n, &nl, &v, &vl) == 1) {
		if (nl == strlen(tag) && memcmp(n, tag, nl) == 0) {
			char *s = ts_xmalloc(vl + 1);
			size_t k = 0;
			for (size_t i = 0; i < vl && k < 255; i++)
				if (v[i] != ' ' && v[i] != '\t' &&
				    v[i] != '\r' && v[i] != '\n')
					s[k++] = v[i];
			s[k] = '\0';
			return s;
		}
	}
	return NULL;
}

struct dkim_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	bool used;
};

static bool
dkim_field_named(const struct dkim_field *f, const char *name)
{
	size_t n = f->name_len;
	while (n > 0 && (f->name[n - 1] == ' ' || f->name[n - 1] == '\t'))
		n--;
	return n == strlen(name) && strncasecmp(f->name, name, n) == 0;
}

/* The data the header hash of signature s covers (RFC 6376 5.4.2). */
static void
dkim_header_data(struct dkim_vsig *s, struct dkim_field *fields, size_t nfields,
		 const struct dkim_field *self)
{
	for (size_t k = 0; k < nfields; k++)
		fields[k].used = false;
	char *out = NULL;
	size_t len = 0;
	for (size_t j = 0; j < s->sig.h_count; j++) {
		/* The last unused instance, bottom up. */
		for (size_t k = nfields; k-- > 0;) {
			if (fields[k].used ||
			    !dkim_field_named(&fields[k], s->sig.h[j]))
				continue;
			fields[k].used = true;
			dkim_canon_header(s->sig.hcanon, fields[k].name,
					  fields[k].name_len, fields[k].value,
					  fields[k].value_len, &out, &len);
			break;
		}
	}
	size_t sl;
	char *stripped = dkim_sig_strip_b(self->value, self->value_len, &sl);
	dkim_canon_header(s->sig.hcanon, self->name, self->name_len, stripped,
			  sl, &out, &len);
	free(stripped);
	/* The signature's own field goes in without its final CRLF. */
	len -= 2;
	out[len] = '\0';
	s->hdata = out;
	s->hdata_len = len;
}

/* The header is complete: find and prepare the signatures. */
static void
dkim_verifier_start(struct dkim_verifier *v, bool overflow)
{
	size_t max = v->max_sigs;
	struct ts_mime_header_iter it;
	struct ts_mime_field f;
	struct dkim_field *fields = NULL;
	size_t nfields = 0;
	ts_mime_header_init(&it, v->header, v->header_len);
	while (ts_mime_header_next(&it, &f)) {
		fields = ts_xrealloc(fields, (nfields + 1) * sizeof(*fields));
		fields[nfields].name = f.name;
		fields[nfields].name_len = f.name_len;
		fields[nfields].value = f.value;
		fields[nfields].value_len = f.value_len;
		fields[nfields].used = false;
		nfields++;
	}
	for (size_t k = 0; k < nfields; k++) {
		if (!dkim_field_named(&fields[k], "dkim-signature"))
			continue;
		if (v->count >= max) {
			v->ignored++;
			continue;
		}
		struct dkim_vsig *s = &v->sigs[v->count++];
		const char *val = fields[k].value;
		size_t vl = fields[k].value_len;
		s->body_group = -1;
		s->raw_d = dkim_raw_tag(val, vl, "d");
		s->raw_s = dkim_raw_tag(val, vl, "s");
		char *b = dkim_raw_tag(val, vl, "b");
		if (b != NULL) {
			if (strlen(b) > 8)
				b[8] = '\0';
			s->b_prefix = b;
		}
		char err[128];
		if (dkim_sig_parse(val, vl, &s->sig, err, sizeof(err)) < 0) {
			dkim_set(s, DKIM_PERMERROR, "%s", err);
			continue;
		}
		s->parsed = true;
		s->query = ts_xasprintf("%s._domainkey.%s", s->sig.s, s->sig.d);
		if (overflow) {
			dkim_set(s, DKIM_PERMERROR, "header too large");
			continue;
		}
		if (s->sig.alg == DKIM_ALG_RSA_SHA1) {
			dkim_set(s, DKIM_POLICY,
				 "rsa-sha1 is not accepted (RFC 8301)");
			continue;
		}
		if (s->sig.has_x && s->sig.x < v->now) {
			dkim_set(s, DKIM_FAIL, "signature expired");
			continue;
		}
		if (s->sig.has_t && s->sig.t > v->now + DKIM_FUTURE_SLACK) {
			dkim_set(s, DKIM_PERMERROR,
				 "signature timestamp in the future");
			continue;
		}
		if (gnutls_hash_init(&s->bhash, GNUTLS_DIG_SHA256) < 0) {
			dkim_set(s, DKIM_TEMPERROR, "hash unavailable");
			continue;
		}
		dkim_body_init(&s->body, s->sig.bcanon,
			       s->sig.has_l ? s->sig.l : UINT64_MAX,
			       dkim_hash_sink, s->bhash);
		dkim_header_data(s, fields, nfields, &fields[k]);
	}
	free(fields);
}

/* Where the header ends in buf (offset of the body), or 0 if not yet. */
static size_t
dkim_header_end(const char *buf, size_t len, size_t from)
{
	if (from == 0) {
		if (len >= 1 && buf[0] == '\n')
			return 1;
		if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
			return 2;
	}
	for (size_t i = from > 0 ? from - 1 : 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void
dkim_verifier_body(struct dkim_verifier *v, const char *data, size_t len)
{
	for (size_t i = 0; i < v->count; i++) {
		struct dkim_vsig *s = &v->sigs[i];
		if (!s->done && s->parsed)
			dkim_body_feed(&s->body, data, len);
	}
}

void
dkim_verifier_feed(struct dkim_verifier *v, const char *data, size_t len)
{
	if (v->in_body) {
		dkim_verifier_body(v, data, len);
		return;
	}
	size_t old = v->header_len;
	size_t take = len;
	bool overflow = false;
	if (old + take > v->header_max) {
		take = v->header_max - old;
		overflow = true;
	}
	v->header = ts_xrealloc(v->header, old + take + 1);
	memcpy(v->header + old, data, take);
	v->header_len = old + take;
	v->header[v->header_len] = '\0';
	/* Look from a little before the new bytes (a split "\r\n\r\n"). */
	size_t from = old > 3 ? old - 3 : 0;
	size_t end = dkim_header_end(v->header, v->header_len, from);
	if (end == 0 && !overflow)
		return;
	v->in_body = true;
	if (end == 0) {
		dkim_verifier_start(v, true);
		return;
	}
	size_t body_in_header = v->header_len - end;
	v->header_len = end;
	dkim_verifier_start(v, false);
	dkim_verifier_body(v, v->header + end, body_in_header);
	if (take < len)
		dkim_verifier_body(v, data + take, len - take);
}

void
dkim_verifier_finish(struct dkim_verifier *v)
{
	if (!v->in_body) {
		/* No empty line: the whole message is header, empty body. */
		v->in_body = true;
		dkim_verifier_start(v, false);
	}
	for (size_t i = 0; i < v->count; i++) {
		struct dkim_vsig *s = &v->sigs[i];
		if (!s->parsed || s->bhash == NULL)
			continue;
		if (!s->done)
			dkim_body_finish(&s->body);
		else
			dkim_body_free(&s->body);
		gnutls_hash_deinit(s->bhash, s->body_digest);
		s->bhash = NULL;
		s->body_digest_len = 32;
		if (s->done)
			continue;
		if (s->sig.has_l && s->sig.l > s->body.total) {
			dkim_set(s, DKIM_PERMERROR,
				 "l= is longer than the body");
			continue;
		}
		/* A body hash mismatch is reported after the key checks
		 * (RFC 6376 6.1.2 before 6.1.3): a bad key is a permerror. */
		s->body_ok = s->sig.bh_len == 32 &&
			     memcmp(s->sig.bh, s->body_digest, 32) == 0;
		if (s->sig.has_l && s->sig.l < s->body.total)
			snprintf(s->comment, sizeof(s->comment),
				 "l= covers %llu of %llu body bytes",
				 (unsigned long long)s->sig.l,
				 (unsigned long long)s->body.total);
	}
}

/* Read a DER length; false if malformed. */
static bool
dkim_der_len(const uint8_t **p, const uint8_t *end, size_t *len)
{
	if (*p >= end)
		return false;
	uint8_t c = *(*p)++;
	if (c < 0x80) {
		*len = c;
	} else {
		size_t n = c & 0x7f, v = 0;
		if (n == 0 || n > 3 || (size_t)(end - *p) < n)
			return false;
		for (size_t i = 0; i < n; i++)
			v = v << 8 | *(*p)++;
		*len = v;
	}
	return *len <= (size_t)(end - *p);
}

/* A bare PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }. */
static int
dkim_import_pkcs1(gnutls_pubkey_t pk, const uint8_t *der, size_t len)
{
	const uint8_t *p = der, *end = der + len;
	size_t l;
	if (p >= end || *p++ != 0x30 || !dkim_der_len(&p, end, &l))
		return -1;
	end = p + l;
	gnutls_datum_t n, e;
	if (p >= end || *p++ != 0x02 || !dkim_der_len(&p, end, &l))
		return -1;
	n.data = (unsigned char *)p;
	n.size = (unsigned)l;
	p += l;
	if (p >= end || *p++ != 0x02 || !dkim_der_len(&p, end, &l))
		return -1;
	e.data = (unsigned char *)p;
	e.size = (unsigned)l;
	return gnutls_pubkey_import_rsa_raw(pk, &n, &e);
}

/* Check the signature of s with key; sets the result. */
static void
dkim_verify_crypto(struct dkim_vsig *s, const struct dkim_key *key)
{
	gnutls_pubkey_t pk;
	if (gnutls_pubkey_init(&pk) < 0) {
		dkim_set(s, DKIM_TEMPERROR, "out of memory");
		return;
	}
	gnutls_datum_t sig = { s->sig.b, (unsigned)s->sig.b_len };
	int rc;
	if (key->type == DKIM_KEY_RSA) {
		gnutls_datum_t der = { key->p, (unsigned)key->p_len };
		if (gnutls_pubkey_import(pk, &der, GNUTLS_X509_FMT_DER) < 0 &&
		    dkim_import_pkcs1(pk, key->p, key->p_len) < 0) {
			dkim_set(s, DKIM_PERMERROR, "key p= is not an RSA key");
			goto out;
		}
		unsigned bits = 0;
		if (gnutls_pubkey_get_pk_algorithm(pk, &bits) !=
		    GNUTLS_PK_RSA) {
			dkim_set(s, DKIM_PERMERROR, "key p= is not an RSA key");
			goto out;
		}
		snprintf(s->comment + strlen(s->comment),
			 sizeof(s->comment) - strlen(s->comment),
			 "%s%u-bit key", s->comment[0] ? "; " : "", bits);
		if (bits < 1024) {
			dkim_set(s, DKIM_POLICY,
				 "RSA key of %u bits is too small (RFC 8301)",
				 bits);
			goto out;
		}
		if (!s->body_ok) {
			dkim_set(s, DKIM_FAIL, "body hash did not verify");
			goto out;
		}
		gnutls_datum_t data = { (unsigned char *)s->hdata,
					(unsigned)s->hdata_len };
		rc = gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_RSA_SHA256, 0,
						&data, &sig);
	} else {
		if (key->p_len != 32) {
			dkim_set(s, DKIM_PERMERROR,
				 "key p= is not an Ed25519 key");
			goto out;
		}
		gnutls_datum_t x = { key->p, 32 };
		if (gnutls_pubkey_import_ecc_raw(pk, GNUTLS_ECC_CURVE_ED25519,
						 &x, NULL) < 0) {
			dkim_set(s, DKIM_PERMERROR,
				 "key p= is not an Ed25519 key");
			goto out;
		}
		if (!s->body_ok) {
			dkim_set(s, DKIM_FAIL, "body hash did not verify");
			goto out;
		}
		uint8_t digest[32];
		gnutls_hash_fast(GNUTLS_DIG_SHA256, s->hdata, s->hdata_len,
				 digest);
		gnutls_datum_t data = { digest, 32 };
		rc = gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_EDDSA_ED25519,
						0, &data, &sig);
	}
	if (rc < 0)
		dkim_set(s, DKIM_FAIL, "signature did not verify");
	else
		dkim_set(s, DKIM_PASS, "%s", "");
out:
	gnutls_pubkey_deinit(pk);
}

void
dkim_verifier_key(struct dkim_verifier *v, size_t i, enum dkim_dns dns,
		  const char *txt, size_t txt_len)
{
	struct dkim_vsig *s = &v->sigs[i];
	if (s->done || !s->parsed)
		return;
	switch (dns) {
	case DKIM_DNS_OK:
		break;
	case DKIM_DNS_NONE:
		dkim_set(s, DKIM_PERMERROR, "no key record at %s", s->query);
		return;
	case DKIM_DNS_TEMP:
		dkim_set(s, DKIM_TEMPERROR, "key lookup failed");
		return;
	case DKIM_DNS_PERM:
		dkim_set(s, DKIM_PERMERROR, "key lookup failed permanently");
		return;
	}
	struct dkim_key key;
	char err[128];
	if (dkim_key_parse(txt, txt_len, &key, err, sizeof(err)) < 0) {
		dkim_set(s, DKIM_PERMERROR, "%s", err);
		return;
	}
	enum dkim_key_type want = s->sig.alg == DKIM_ALG_ED25519_SHA256
					  ? DKIM_KEY_ED25519
					  : DKIM_KEY_RSA;
	const char *at = s->sig.i != NULL ? strrchr(s->sig.i, '@') : NULL;
	if (key.testing)
		snprintf(s->comment, sizeof(s->comment), "testing key");
	if (key.revoked)
		dkim_set(s, DKIM_FAIL, "key revoked");
	else if (key.type != want)
		dkim_set(s, DKIM_PERMERROR, "key type does not match a=");
	else if (!key.sha256_ok)
		dkim_set(s, DKIM_PERMERROR, "key does not allow sha256 (h=)");
	else if (key.strict && at != NULL && strcasecmp(at + 1, s->sig.d) != 0)
		dkim_set(s, DKIM_PERMERROR,
			 "key has t=s and i= is a subdomain of d=");
	else
		dkim_verify_crypto(s, &key);
	dkim_key_clear(&key);
}

void
dkim_verifier_free(struct dkim_verifier *v)
{
	for (size_t i = 0; i < v->count; i++) {
		struct dkim_vsig *s = &v->sigs[i];
		dkim_sig_clear(&s->sig);
		dkim_body_free(&s->body);
		if (s->bhash != NULL)
			gnutls_hash_deinit(s->bhash, NULL);
		free(s->raw_d);
		free(s->raw_s);
		free(s->b_prefix);
		free(s->query);
		free(s->hdata);
	}
	free(v->sigs);
	free(v->header);
	memset(v, 0, sizeof(*v));
}
