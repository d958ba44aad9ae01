/*
 * modules/dkim/dkim.h — the dkim module's internal interfaces.
 *
 * The pure layers (canonicalization, signature and key record parsing,
 * the verifier and the signer over memory and streamed chunks) depend on
 * nothing but GnuTLS and kernel/alloc.c, so the unit tests and the vector
 * driver link them without the kernel.  dkim.c, verify-hook.c and the
 * signing hook glue them to the transaction, the work pool and the
 * resolver.
 */
#ifndef TESSERA_DKIM_INTERNAL_H
#define TESSERA_DKIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <tessera/common.h>

/* --- canonicalization (canon.c) ------------------------------------------ */

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0,
	DKIM_CANON_RELAXED,
};

/* Where canonical body bytes go (a hash update, a test buffer). */
typedef void (*dkim_sink_fn)(void *arg, const char *data, size_t len);

/*
 * A streaming body canonicalizer (RFC 6376 3.4.3, 3.4.4).  Input line ends
 * may be CRLF or bare LF (both end a line; output uses CRLF).  Trailing
 * empty lines are held back and dropped at the end; at most `limit`
 * canonical bytes are passed on (l=; UINT64_MAX for all); `total` counts
 * every canonical byte, limited or not.
 */
struct dkim_body {
	enum dkim_canon canon;
	uint64_t limit, emitted, total;
	dkim_sink_fn sink;
	void *sink_arg;
	char *line; /* the line being collected, without its end */
	size_t line_len, line_cap;
	uint64_t blank_lines; /* empty lines held back */
	bool any; /* a non-empty line was emitted */
	bool cr; /* the last input byte was a CR (line end pending) */
};

void dkim_body_init(struct dkim_body *b, enum dkim_canon canon, uint64_t limit,
		    dkim_sink_fn sink, void *sink_arg);
void dkim_body_feed(struct dkim_body *b, const char *data, size_t len);
/* Flush the end of the body (the final CRLF rules); frees the line. */
void dkim_body_finish(struct dkim_body *b);
void dkim_body_free(struct dkim_body *b);

/*
 * Append the canonical form of one header field (name and raw value as in
 * struct ts_mime_field, value from after the colon, folding included) to
 * *out (a malloc'd buffer of *len bytes, grown), with a final CRLF.
 * Relaxed: name lower-cased, folding removed, white space runs made one
 * space, white space at the end of the value and around the colon removed.
 * Simple: as written, line ends made CRLF.
 */
void dkim_canon_header(enum dkim_canon canon, const char *name, size_t name_len,
		       const char *value, size_t value_len, char **out,
		       size_t *len);

/* --- tag lists, signatures, keys (sig.c, key.c) --------------------------- */

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,
};

enum dkim_key_type {
	DKIM_KEY_RSA = 0,
	DKIM_KEY_ED25519,
};

/* A parsed DKIM-Signature (RFC 6376 3.5).  Every string malloc'd. */
struct dkim_sig {
	enum dkim_alg alg;
	uint8_t *b, *bh; /* decoded */
	size_t b_len, bh_len;
	enum dkim_canon hcanon, bcanon;
	char *d, *s, *i; /* i: NULL when absent (then "@d") */
	char **h; /* the header names signed, in order */
	size_t h_count;
	bool has_l;
	uint64_t l;
	bool has_t, has_x;
	uint64_t t, x;
};

/*
 * Parse the raw value of a DKIM-Signature field.  Returns 0, or
 * TS_E_INVAL with a reason in err (permerror: malformed, missing
 * required tag, unknown algorithm, v not 1, h without From, i not in d,
 * x before t…).  sig is filled only on success; free with dkim_sig_clear.
 */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
		   char *err, size_t errlen);
void dkim_sig_clear(struct dkim_sig *sig);

/*
 * The raw field value with the b= tag's value removed (everything else,
 * folding included, kept): what the signature's own header contributes
 * to the hash.  Returns a malloc'd copy; *len_r its length.
 */
char *dkim_sig_strip_b(const char *value, size_t len, size_t *len_r);

/* A parsed key record (RFC 6376 3.6.1). */
struct dkim_key {
	enum dkim_key_type type;
	uint8_t *p; /* decoded public key data; NULL when revoked */
	size_t p_len;
	bool revoked; /* p= empty */
	bool testing; /* t=y */
	bool strict; /* t=s: i= must be exactly d= */
	bool sha256_ok; /* h= absent or lists sha256 */
	bool sha1_ok; /* h= absent or lists sha1 */
};

/*
 * Parse a key record's TXT text.  Returns 0, or TS_E_INVAL with a reason
 * in err (malformed tag list, v not DKIM1 or not first, unknown k=,
 * s= not allowing email, p= missing or not base64).
 */
int dkim_key_parse(const char *text, size_t len, struct dkim_key *key,
		   char *err, size_t errlen);
void dkim_key_clear(struct dkim_key *key);

/*
 * One tag of a tag list (RFC 6376 3.2), for the parsers and tests:
 * iterate with *pos starting at 0; returns 1 and the tag name/value
 * (trimmed, value with FWS inside kept), 0 at the end, TS_E_INVAL for a
 * syntax error.
 */
int dkim_tag_next(const char *s, size_t len, size_t *pos, const char **name,
		  size_t *name_len, const char **value, size_t *value_len);

/* Decode base64 ignoring white space; 0 or TS_E_INVAL. */
int dkim_base64_decode(const char *s, size_t len, uint8_t **out,
		       size_t *out_len);
/* Base64 of data, NUL-terminated, malloc'd. */
char *dkim_base64_encode(const uint8_t *data, size_t len);

/* --- the verifier (verify.c) ---------------------------------------------- */

/* Results per RFC 8601 (dkim method). */
enum dkim_result {
	DKIM_PASS = 0,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

const char *dkim_result_name(enum dkim_result r);

/* What a key lookup returned, handed to dkim_verifier_key. */
enum dkim_dns {
	DKIM_DNS_OK = 0,
	DKIM_DNS_NONE, /* NXDOMAIN or no TXT */
	DKIM_DNS_TEMP, /* timeout, SERVFAIL */
	DKIM_DNS_PERM, /* other failures */
};

/* One DKIM-Signature field of the message being verified. */
struct dkim_vsig {
	bool parsed; /* sig holds a parsed signature */
	struct dkim_sig sig;
	char *raw_d, *raw_s; /* best-effort d= and s= for reporting */
	char *b_prefix; /* first 8 characters of b= (header.b) */
	char *query; /* selector._domainkey.domain, or NULL */
	struct dkim_body body;
	gnutls_hash_hd_t bhash;
	int body_group; /* index of a sig sharing its body hash, or -1 */
	uint8_t body_digest[32];
	bool body_ok; /* the body hash matched bh= */
	size_t body_digest_len;
	char *hdata; /* canonical headers (+ the signature's own) */
	size_t hdata_len;
	enum dkim_result result;
	char reason[160];
	char comment[96];
	bool done; /* result final */
};

struct dkim_verifier {
	struct dkim_vsig *sigs;
	size_t count;
	size_t ignored; /* DKIM-Signature fields past the limit */
	uint64_t now; /* seconds, for t= and x= */
	bool in_body;
	char *header; /* the header collected so far */
	size_t header_len;
	size_t header_max;
	size_t max_sigs; /* signatures looked at */
};

/*
 * A verifier looking at most max_sigs signatures, judging t=/x= against
 * `now`.
 */
void dkim_verifier_init(struct dkim_verifier *v, size_t max_sigs, uint64_t now);
/*
 * Feed the message (the client's, as spooled), any chunks.  The header is
 * collected in memory (up to 1 MiB; beyond, every signature permerrors),
 * the body streamed through the body canonicalizers.
 */
void dkim_verifier_feed(struct dkim_verifier *v, const char *data, size_t len);
/* End of the message: body hashes compared, header data prepared. */
void dkim_verifier_finish(struct dkim_verifier *v);
/*
 * The key lookup result for signature i: its TXT text (first record), or
 * a DNS failure.  Verifies the signature (RSA / Ed25519 work: call it on
 * the work pool) and sets its result.
 */
void dkim_verifier_key(struct dkim_verifier *v, size_t i, enum dkim_dns dns,
		       const char *txt, size_t txt_len);
void dkim_verifier_free(struct dkim_verifier *v);

/* --- the signer (sign.c) -------------------------------------------------- */

struct dkim_sign_key {
	char *selector;
	char *pem; /* private key, PEM (PKCS#1 or PKCS#8) */
	size_t pem_len;
};

struct dkim_sign_params {
	const char *domain;
	const struct dkim_sign_key *keys;
	size_t key_count;
	enum dkim_canon hcanon, bcanon;
	const char *const *headers; /* header names to sign if present */
	size_t header_count;
	const char *const *oversign; /* also signed once more than present */
	size_t oversign_count;
	uint64_t now; /* t= */
	uint64_t expire; /* x= now + expire; 0: no x= */
};

/*
 * Sign the message whose header fields are `header` (header_len bytes,
 * CRLF or LF, the empty line may be included) and whose body comes
 * through dkim_signer_body.  Returns the DKIM-Signature values (without
 * "DKIM-Signature: "; folded) in *values (count = key_count), or a
 * negative code with a reason.
 */
struct dkim_signer;
struct dkim_signer *dkim_signer_new(const struct dkim_sign_params *p);
void dkim_signer_body(struct dkim_signer *s, const char *data, size_t len);
int dkim_signer_finish(struct dkim_signer *s, const char *header,
		       size_t header_len, char ***values, char *err,
		       size_t errlen);
void dkim_signer_free(struct dkim_signer **s);

/*
 * Which algorithm a PEM private key has (for reporting and genkey); 0 or
 * TS_E_INVAL with a reason.
 */
int dkim_pem_key_type(const char *pem, size_t len, enum dkim_key_type *type,
		      unsigned *bits, char *err, size_t errlen);

/* The From domain of a header block (first mailbox), malloc'd or NULL. */
char *dkim_from_domain(const char *header, size_t len, size_t *from_count);

#endif
