/*
 * modules/dkim/sign.c — making DKIM-Signature fields (RFC 6376 section 5).
 *
 * The signer streams the body once through one canonicalizer and SHA-256
 * (every key of a domain shares the body canonicalization), then, given
 * the final header block, builds one signature per key: the header list
 * is the configured names present in the message, each as often as it
 * occurs, plus one more for names to over-sign (so nobody can add such a
 * field later without breaking the signature).  RSA keys sign rsa-sha256,
 * Ed25519 keys ed25519-sha256 (RFC 8463: Ed25519 over the SHA-256 of the
 * header data).  Pure computation: the module runs it on the work pool.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include <tessera/mime.h>

#include "dkim.h"

struct dkim_signer {
	struct dkim_sign_params p;
	struct dkim_body body;
	gnutls_hash_hd_t hash;
};

static int
dkim_sign_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return TS_E_INVAL;
}

static void
dkim_sign_sink(void *arg, const char *data, size_t len)
{
	gnutls_hash((gnutls_hash_hd_t)arg, data, len);
}

struct dkim_signer *
dkim_signer_new(const struct dkim_sign_params *p)
{
	struct dkim_signer *s = ts_xcalloc(1, sizeof(*s));
	s->p = *p;
	if (gnutls_hash_init(&s->hash, GNUTLS_DIG_SHA256) < 0)
		abort();
	dkim_body_init(&s->body, p->bcanon, UINT64_MAX, dkim_sign_sink,
		       s->hash);
	return s;
}

void
dkim_signer_body(struct dkim_signer *s, const char *data, size_t len)
{
	dkim_body_feed(&s->body, data, len);
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;
	if (s == NULL)
		return;
	dkim_body_free(&s->body);
	if (s->hash != NULL)
		gnutls_hash_deinit(s->hash, NULL);
	free(s);
	*sp = NULL;
}

static int
dkim_privkey_load(const char *pem, size_t len, gnutls_privkey_t *key_r)
{
	gnutls_privkey_t key;
	if (gnutls_privkey_init(&key) < 0)
		return TS_E_INVAL;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
	if (gnutls_privkey_import_x509_raw(key, &d, GNUTLS_X509_FMT_PEM, NULL,
					   0) < 0) {
		gnutls_privkey_deinit(key);
		return TS_E_INVAL;
	}
	*key_r = key;
	return 0;
}

int
dkim_pem_key_type(const char *pem, size_t len, enum dkim_key_type *type,
		  unsigned *bits, char *err, size_t errlen)
{
	gnutls_privkey_t key;
	if (dkim_privkey_load(pem, len, &key) < 0)
		return dkim_sign_err(err, errlen,
				     "not a PEM private key GnuTLS reads");
	unsigned b = 0;
	int alg = gnutls_privkey_get_pk_algorithm(key, &b);
	gnutls_privkey_deinit(key);
	if (alg == GNUTLS_PK_RSA)
		*type = DKIM_KEY_RSA;
	else if (alg == GNUTLS_PK_EDDSA_ED25519)
		*type = DKIM_KEY_ED25519;
	else
		return dkim_sign_err(err, errlen,
				     "key is neither RSA nor Ed25519");
	if (bits != NULL)
		*bits = b;
	if (alg == GNUTLS_PK_RSA && b < 1024)
		return dkim_sign_err(err, errlen,
				     "RSA key of %u bits is too small", b);
	return 0;
}

struct dkim_sfield {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	bool used;
};

static bool
dkim_sfield_named(const struct dkim_sfield *f, const char *name)
{
	size_t n = f->name_len;
	while (n > 0 && (f->name[n - 1] == ' ' || f->name[n - 1] == '\t'))
		n--;
	return n == strlen(name) && strncasecmp(f->name, name, n) == 0;
}

static bool
dkim_in_list(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(list[i], name) == 0)
			return true;
	return false;
}

/* Append s to a growing string. */
static void
dkim_cat(char **out, size_t *len, const char *s, size_t n)
{
	*out = ts_xrealloc(*out, *len + n + 1);
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
}

/*
 * Append `text` folded: a line break (CRLF TAB) before a piece would push
 * the line past 76 columns; `col` tracks the column.
 */
static void
dkim_cat_fold(char **out, size_t *len, size_t *col, const char *text)
{
	size_t n = strlen(text);
	if (*col + n > 76 && *col > 1) {
		dkim_cat(out, len, "\r\n\t", 3);
		*col = 1;
	}
	dkim_cat(out, len, text, n);
	*col += n;
}

int
dkim_signer_finish(struct dkim_signer *s, const char *header, size_t header_len,
		   char ***values_r, char *err, size_t errlen)
{
	const struct dkim_sign_params *p = &s->p;
	dkim_body_finish(&s->body);
	uint8_t bh[32];
	gnutls_hash_deinit(s->hash, bh);
	s->hash = NULL;
	char *bh64 = dkim_base64_encode(bh, sizeof(bh));

	/* The fields, and the names to sign in order. */
	struct dkim_sfield *fields = NULL;
	size_t nfields = 0;
	struct ts_mime_header_iter it;
	struct ts_mime_field f;
	ts_mime_header_init(&it, header, header_len);
	while (ts_mime_header_next(&it, &f)) {
		fields = ts_xrealloc(fields, (nfields + 1) * sizeof(*fields));
		fields[nfields] =
			(struct dkim_sfield){ f.name, f.name_len, f.value,
					      f.value_len, false };
		nfields++;
	}
	char *hlist = NULL;
	size_t hlist_len = 0;
	const char **hnames = NULL;
	size_t hcount = 0;
	for (size_t pass = 0; pass < 2; pass++) {
		const char *const *names = pass == 0 ? p->headers : p->oversign;
		size_t n = pass == 0 ? p->header_count : p->oversign_count;
		for (size_t i = 0; i < n; i++) {
			/* Each name once, in the first list it appears in. */
			if (pass == 1 &&
			    dkim_in_list(p->headers, p->header_count, names[i]))
				continue;
			bool dup = false;
			for (size_t k = 0; k < i; k++)
				if (strcasecmp(names[k], names[i]) == 0)
					dup = true;
			if (dup)
				continue;
			size_t present = 0;
			for (size_t k = 0; k < nfields; k++)
				if (dkim_sfield_named(&fields[k], names[i]))
					present++;
			size_t times = present;
			if (dkim_in_list(p->oversign, p->oversign_count,
					 names[i]))
				times++;
			for (size_t t = 0; t < times; t++) {
				hnames = ts_xrealloc(
					hnames, (hcount + 1) * sizeof(char *));
				hnames[hcount++] = names[i];
			}
		}
	}
	/* The header data of the selected fields (without the signature). */
	char *hdata = NULL;
	size_t hdata_len = 0;
	for (size_t j = 0; j < hcount; j++) {
		for (size_t k = nfields; k-- > 0;) {
			if (fields[k].used ||
			    !dkim_sfield_named(&fields[k], hnames[j]))
				continue;
			fields[k].used = true;
			dkim_canon_header(p->hcanon, fields[k].name,
					  fields[k].name_len, fields[k].value,
					  fields[k].value_len, &hdata,
					  &hdata_len);
			break;
		}
	}
	if (hdata == NULL)
		hdata = ts_xstrdup("");

	char **values = ts_xcalloc(p->key_count + 1, sizeof(char *));
	int rc = 0;
	for (size_t k = 0; k < p->key_count && rc == 0; k++) {
		const struct dkim_sign_key *key = &p->keys[k];
		gnutls_privkey_t pk;
		if (dkim_privkey_load(key->pem, key->pem_len, &pk) < 0) {
			rc = dkim_sign_err(err, errlen,
					   "selector %s: cannot load the key",
					   key->selector);
			break;
		}
		unsigned bits;
		bool ed = gnutls_privkey_get_pk_algorithm(pk, &bits) ==
			  GNUTLS_PK_EDDSA_ED25519;
		/* The value, b= empty; the leading space is what
		 * ts_hook_add_header puts after the colon. */
		char *v = NULL;
		size_t vl = 0, col = strlen("DKIM-Signature: ");
		char *piece = ts_xasprintf(
			"v=1; a=%s; c=%s/%s;",
			ed ? "ed25519-sha256" : "rsa-sha256",
			p->hcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
			p->bcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
		dkim_cat_fold(&v, &vl, &col, piece);
		free(piece);
		piece = ts_xasprintf(" d=%s;", p->domain);
		dkim_cat_fold(&v, &vl, &col, piece);
		free(piece);
		piece = ts_xasprintf(" s=%s;", key->selector);
		dkim_cat_fold(&v, &vl, &col, piece);
		free(piece);
		piece = ts_xasprintf(" t=%llu;", (unsigned long long)p->now);
		dkim_cat_fold(&v, &vl, &col, piece);
		free(piece);
		if (p->expire > 0) {
			piece = ts_xasprintf(
				" x=%llu;",
				(unsigned long long)(p->now + p->expire));
			dkim_cat_fold(&v, &vl, &col, piece);
			free(piece);
		}
		dkim_cat_fold(&v, &vl, &col, " h=");
		for (size_t j = 0; j < hcount; j++) {
			piece = ts_xasprintf("%s%s", hnames[j],
					     j + 1 < hcount ? ":" : ";");
			dkim_cat_fold(&v, &vl, &col, piece);
			free(piece);
		}
		dkim_cat_fold(&v, &vl, &col, " bh=");
		dkim_cat_fold(&v, &vl, &col, bh64);
		dkim_cat_fold(&v, &vl, &col, ";");
		dkim_cat_fold(&v, &vl, &col, " b=");
		/* Header data: selected fields, then this one sans CRLF. */
		char *data = ts_xmalloc(hdata_len + 1);
		memcpy(data, hdata, hdata_len);
		size_t dl = hdata_len;
		char *sv = ts_xasprintf(" %s", v);
		dkim_canon_header(p->hcanon, "DKIM-Signature", 14, sv,
				  strlen(sv), &data, &dl);
		free(sv);
		dl -= 2;
		gnutls_datum_t in = { (unsigned char *)data, (unsigned)dl };
		uint8_t digest[32];
		if (ed) {
			gnutls_hash_fast(GNUTLS_DIG_SHA256, data, dl, digest);
			in.data = digest;
			in.size = 32;
		}
		gnutls_datum_t sig = { NULL, 0 };
		if (gnutls_privkey_sign_data2(pk,
					      ed ? GNUTLS_SIGN_EDDSA_ED25519
						 : GNUTLS_SIGN_RSA_SHA256,
					      0, &in, &sig) < 0) {
			rc = dkim_sign_err(err, errlen,
					   "selector %s: signing failed",
					   key->selector);
		} else {
			char *b64 = dkim_base64_encode(sig.data, sig.size);
			/* Fold b= in pieces that fit the line. */
			size_t bl = strlen(b64);
			for (size_t o = 0; o < bl;) {
				size_t room = col < 76 ? 76 - col : 0;
				if (room < 8) {
					dkim_cat(&v, &vl, "\r\n\t", 3);
					col = 1;
					continue;
				}
				size_t n = bl - o < room ? bl - o : room;
				dkim_cat(&v, &vl, b64 + o, n);
				col += n;
				o += n;
			}
			free(b64);
			gnutls_free(sig.data);
			values[k] = v;
			v = NULL;
		}
		free(v);
		free(data);
		gnutls_privkey_deinit(pk);
	}
	free(hdata);
	free(hnames);
	free(hlist);
	(void)hlist_len;
	free(fields);
	free(bh64);
	if (rc < 0) {
		for (size_t k = 0; k < p->key_count; k++)
			free(values[k]);
		free(values);
		return rc;
	}
	*values_r = values;
	return 0;
}

char *
dkim_from_domain(const char *header, size_t len, size_t *from_count)
{
	struct ts_mime_header_iter it;
	struct ts_mime_field f;
	char *domain = NULL;
	size_t count = 0;
	ts_mime_header_init(&it, header, len);
	while (ts_mime_header_next(&it, &f)) {
		if (!ts_mime_field_is(&f, "From"))
			continue;
		count++;
		if (domain != NULL)
			continue;
		struct ts_mime_address *list =
			ts_mime_address_parse(f.value, f.value_len);
		for (struct ts_mime_address *a = list; a != NULL; a = a->next)
			if (a->kind == TS_MIME_ADDRESS_MAILBOX &&
			    a->domain != NULL && a->domain[0] != '\0') {
				domain = ts_xstrdup(a->domain);
				break;
			}
		ts_mime_address_free(&list);
	}
	if (from_count != NULL)
		*from_count = count;
	return domain;
}
