/*
 * kernel/sasl/scram.c — the server side of SCRAM (RFC 5802) with SHA-1 and
 * SHA-256 (RFC 7677), with and without channel binding (-PLUS).
 *
 * A pure state machine: it parses the client's two messages, builds the
 * server's two, and checks the proof, taking the stored secret and the
 * server nonce as inputs.  Where the secret comes from (the store, or a
 * made-up one for an unknown user) and when, is sasl.c's business; the
 * tests feed RFC example values directly.
 *
 * The server never sees the password: it holds StoredKey and ServerKey,
 * and the proof check is (RFC 5802 section 3)
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientKey       = ClientProof XOR ClientSignature
 *   H(ClientKey)   == StoredKey
 * with AuthMessage = client-first-bare "," server-first "," client-final
 * without its proof.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/sasl/sasl-private.h"

struct ts__scram_hash {
	const char *name; /* the store's secret name */
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t digest;
	size_t len;
	/* Iterations of a stand-in secret: the store's (credentials.c). */
	unsigned iterations;
};

static const struct ts__scram_hash scram_sha256 = {
	"SCRAM-SHA-256", GNUTLS_MAC_SHA256, GNUTLS_DIG_SHA256, 32, 10000
};
static const struct ts__scram_hash scram_sha1 = { "SCRAM-SHA-1",
						  GNUTLS_MAC_SHA1,
						  GNUTLS_DIG_SHA1, 20, 4096 };

/* Random bytes in a server nonce (RFC 5802 asks for enough; 18+). */
#define SCRAM_NONCE_BYTES 24

int
ts__scram_init(struct ts__scram *sc, const char *mechanism, const char *cb_type,
	       const uint8_t *cb_data, size_t cb_len)
{
	memset(sc, 0, sizeof(*sc));
	if (strcmp(mechanism, "SCRAM-SHA-256") == 0 ||
	    strcmp(mechanism, "SCRAM-SHA-256-PLUS") == 0)
		sc->hash = &scram_sha256;
	else if (strcmp(mechanism, "SCRAM-SHA-1") == 0 ||
		 strcmp(mechanism, "SCRAM-SHA-1-PLUS") == 0)
		sc->hash = &scram_sha1;
	else
		return TS_E_INVAL;
	sc->plus = strstr(mechanism, "-PLUS") != NULL;
	if (cb_type != NULL) {
		sc->cb_type = ts_xstrdup(cb_type);
		sc->cb_data = ts_xmalloc(cb_len + 1);
		if (cb_len > 0)
			memcpy(sc->cb_data, cb_data, cb_len);
		sc->cb_len = cb_len;
	}
	return 0;
}

/* Free a string after overwriting it. */
static void
scram_wipe_str(char **s)
{
	if (*s != NULL) {
		gnutls_memset(*s, 0, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
ts__scram_clear(struct ts__scram *sc)
{
	free(sc->cb_type);
	free(sc->cb_data);
	scram_wipe_str(&sc->gs2_header);
	scram_wipe_str(&sc->authzid);
	scram_wipe_str(&sc->username);
	scram_wipe_str(&sc->client_first_bare);
	scram_wipe_str(&sc->client_nonce);
	scram_wipe_str(&sc->nonce);
	scram_wipe_str(&sc->server_first);
	scram_wipe_str(&sc->server_final);
	gnutls_memset(sc, 0, sizeof(*sc));
}

const char *
ts__scram_secret_name(const struct ts__scram *sc)
{
	return sc->hash->name;
}

/* --- parsing helpers --------------------------------------------------- */

/*
 * A cursor over one message's comma-separated fields.  After a comma
 * another field always follows, possibly empty: a trailing comma leaves
 * an empty last field, which no attribute check accepts.
 */
struct scram_cursor {
	const char *p, *end;
	bool more; /* a field remains */
};

/* The next field (up to a comma or the end); false when none is left. */
static bool
scram_field(struct scram_cursor *c, const char **field_r, size_t *len_r)
{
	if (!c->more)
		return false;
	const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
	const char *stop = comma != NULL ? comma : c->end;

	*field_r = c->p;
	*len_r = (size_t)(stop - c->p);
	c->p = comma != NULL ? comma + 1 : c->end;
	c->more = comma != NULL;
	return true;
}

/* Whether the field is the attribute "<name>=…" (names are case-exact). */
static bool
scram_is_attr(const char *field, size_t len, char name)
{
	return len >= 2 && field[0] == name && field[1] == '=';
}

/* attr-val = ALPHA "=" value, value without commas (already split). */
static bool
scram_is_extension(const char *field, size_t len)
{
	return len >= 2 &&
	       ((field[0] >= 'a' && field[0] <= 'z') ||
		(field[0] >= 'A' && field[0] <= 'Z')) &&
	       field[1] == '=';
}

/*
 * Undo saslname escaping ("=2C" → ",", "=3D" → "="; hex letters in either
 * case, as ABNF literals are case-insensitive) and check the result is
 * identity text.  NULL when malformed or empty.
 */
static char *
scram_unescape(const char *s, size_t len)
{
	char *out = ts_xmalloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '=') {
			out[n++] = s[i];
			continue;
		}
		if (len - i < 3)
			goto bad;
		if (s[i + 1] == '2' && (s[i + 2] == 'C' || s[i + 2] == 'c'))
			out[n++] = ',';
		else if (s[i + 1] == '3' &&
			 (s[i + 2] == 'D' || s[i + 2] == 'd'))
			out[n++] = '=';
		else
			goto bad;
		i += 2;
	}
	if (n == 0 || !ts__sasl_text_ok((const uint8_t *)out, n))
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* printable = %x21-2B / %x2D-7E: a nonce's characters. */
static bool
scram_printable(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* cb-name = 1*(ALPHA / DIGIT / "." / "-") */
static bool
scram_cb_name_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* --- client-first ------------------------------------------------------ */

enum ts_sasl_status
ts__scram_client_first(struct ts__scram *sc, const uint8_t *msg, size_t len,
		       const char **error_r)
{
	struct scram_cursor c = { (const char *)msg, (const char *)msg + len,
				  true };
	const char *f, *cb_name = NULL;
	size_t flen, cb_name_len = 0;
	char flag;

	if (sc->username != NULL) {
		*error_r = "SCRAM client-first message received twice";
		return TS_SASL_ERROR;
	}
	if (len > TS__SASL_MAX_RESPONSE || memchr(msg, 0, len) != NULL) {
		*error_r = "malformed SCRAM client-first message: NUL or too "
			   "long";
		return TS_SASL_ERROR;
	}

	/* gs2-cbind-flag: "n", "y" or "p=" cb-name */
	scram_field(&c, &f, &flen);
	if (flen == 1 && (f[0] == 'n' || f[0] == 'y')) {
		flag = f[0];
	} else if (scram_is_attr(f, flen, 'p') &&
		   scram_cb_name_ok(f + 2, flen - 2)) {
		flag = 'p';
		cb_name = f + 2;
		cb_name_len = flen - 2;
	} else {
		*error_r = "malformed SCRAM client-first message: bad GS2 "
			   "channel-binding flag";
		return TS_SASL_ERROR;
	}
	if (!c.more) {
		*error_r = "malformed SCRAM client-first message: GS2 header "
			   "incomplete";
		return TS_SASL_ERROR;
	}

	/* [ "a=" saslname ] "," */
	scram_field(&c, &f, &flen);
	char *authzid = NULL;
	/*
	 * An empty "a=" is not a saslname, but GNU SASL's client sends it
	 * for "no authorization identity"; read it as that.
	 */
	if (flen > 0 && !(flen == 2 && memcmp(f, "a=", 2) == 0)) {
		if (!scram_is_attr(f, flen, 'a') ||
		    (authzid = scram_unescape(f + 2, flen - 2)) == NULL) {
			*error_r = "malformed SCRAM client-first message: bad "
				   "authorization identity";
			return TS_SASL_ERROR;
		}
	}
	if (!c.more) {
		free(authzid);
		*error_r = "malformed SCRAM client-first message: GS2 header "
			   "incomplete";
		return TS_SASL_ERROR;
	}
	size_t gs2_len = (size_t)(c.p - (const char *)msg);
	const char *bare = c.p;
	size_t bare_len = (size_t)(c.end - c.p);

	/* [reserved-mext ","] username "," nonce ["," extensions] */
	const char *error = NULL;
	char *username = NULL;
	scram_field(&c, &f, &flen);
	if (scram_is_attr(f, flen, 'm')) {
		error = "SCRAM mandatory extension not supported";
		goto bad;
	}
	if (!scram_is_attr(f, flen, 'n')) {
		error = "malformed SCRAM client-first message: missing user "
			"name";
		goto bad;
	}
	if ((username = scram_unescape(f + 2, flen - 2)) == NULL) {
		error = "malformed SCRAM client-first message: bad user name";
		goto bad;
	}
	if (!scram_field(&c, &f, &flen) || !scram_is_attr(f, flen, 'r')) {
		error = "malformed SCRAM client-first message: missing nonce";
		goto bad;
	}
	if (!scram_printable(f + 2, flen - 2)) {
		error = "malformed SCRAM client-first message: bad nonce";
		goto bad;
	}
	const char *nonce = f + 2;
	size_t nonce_len = flen - 2;
	while (scram_field(&c, &f, &flen)) {
		if (!scram_is_extension(f, flen)) {
			error = "malformed SCRAM client-first message: bad "
				"extension or trailing comma";
			goto bad;
		}
	}

	/* The channel-binding flag against what we offer (section 6). */
	if (flag == 'p') {
		if (!sc->plus) {
			error = "SCRAM client requests channel binding with a "
				"mechanism without -PLUS";
			goto bad;
		}
		if (sc->cb_type == NULL || strlen(sc->cb_type) != cb_name_len ||
		    memcmp(sc->cb_type, cb_name, cb_name_len) != 0) {
			error = "SCRAM channel-binding type not supported";
			goto bad;
		}
	} else if (sc->plus) {
		error = "SCRAM -PLUS mechanism without channel binding";
		goto bad;
	} else if (flag == 'y' && sc->cb_type != NULL) {
		/*
		 * The client could bind but thinks we cannot, though we
		 * advertised -PLUS: someone removed it on the way.
		 */
		free(username);
		free(authzid);
		*error_r = "SCRAM downgrade: client says \"y\" but -PLUS was "
			   "offered";
		return TS_SASL_FAIL;
	}

	sc->gs2_header = ts_xstrndup((const char *)msg, gs2_len);
	sc->cb_used = flag == 'p';
	sc->authzid = authzid;
	sc->username = username;
	sc->client_first_bare = ts_xstrndup(bare, bare_len);
	sc->client_nonce = ts_xstrndup(nonce, nonce_len);
	return TS_SASL_CONTINUE;
bad:
	free(username);
	free(authzid);
	*error_r = error;
	return TS_SASL_ERROR;
}

/* --- server-first ------------------------------------------------------ */

char *
ts__scram_server_nonce(void)
{
	uint8_t raw[SCRAM_NONCE_BYTES];

	if (gnutls_rnd(GNUTLS_RND_NONCE, raw, sizeof(raw)) != 0)
		abort(); /* a predictable nonce would allow replays */
	return ts_base64_encode(raw, sizeof(raw));
}

void
ts__scram_fake_secret(const struct ts__scram *sc, const uint8_t key[32],
		      struct ts_scram_secret *secret_r)
{
	size_t name_len = strlen(sc->hash->name);
	size_t user_len = strlen(sc->username);
	uint8_t *msg = ts_xmalloc(name_len + 1 + user_len);
	uint8_t mac[32];

	memcpy(msg, sc->hash->name, name_len);
	msg[name_len] = 0;
	memcpy(msg + name_len + 1, sc->username, user_len);
	memset(secret_r, 0, sizeof(*secret_r));
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, 32, msg,
			     name_len + 1 + user_len, mac) != 0)
		abort();
	free(msg);
	memcpy(secret_r->salt, mac, 16);
	secret_r->salt_len = 16;
	secret_r->iterations = sc->hash->iterations;
	secret_r->key_len = sc->hash->len;
}

const char *
ts__scram_server_first(struct ts__scram *sc,
		       const struct ts_scram_secret *secret, bool unknown,
		       const char *server_nonce)
{
	if (sc->client_nonce == NULL || sc->server_first != NULL ||
	    secret->key_len != sc->hash->len || secret->salt_len == 0 ||
	    secret->salt_len > sizeof(secret->salt) || secret->iterations == 0)
		return NULL;
	sc->secret = *secret;
	sc->unknown = unknown;
	sc->nonce = ts_xasprintf("%s%s", sc->client_nonce, server_nonce);
	char *salt = ts_base64_encode(secret->salt, secret->salt_len);
	sc->server_first = ts_xasprintf("r=%s,s=%s,i=%u", sc->nonce, salt,
					secret->iterations);
	free(salt);
	return sc->server_first;
}

/* --- client-final ------------------------------------------------------ */

/*
 * Whether the channel binding the client sent, decoded, is our GS2 header
 * followed (for "p") by our channel-binding data.
 */
static bool
scram_cb_matches(const struct ts__scram *sc, const uint8_t *cb, size_t len)
{
	size_t gs2_len = strlen(sc->gs2_header);
	size_t want = gs2_len + (sc->cb_used ? sc->cb_len : 0);

	if (len != want || memcmp(cb, sc->gs2_header, gs2_len) != 0)
		return false;
	return !sc->cb_used ||
	       gnutls_memcmp(cb + gs2_len, sc->cb_data, sc->cb_len) == 0;
}

/*
 * The proof check of section 3, and ServerSignature into server_sig.
 * Returns whether the proof is right.
 */
static bool
scram_verify_proof(const struct ts__scram *sc, const char *auth, size_t len,
		   const uint8_t *proof, uint8_t *server_sig)
{
	const struct ts__scram_hash *h = sc->hash;
	uint8_t client_sig[64], client_key[64], stored[64];
	bool ok = false;

	if (gnutls_hmac_fast(h->mac, sc->secret.stored_key, h->len, auth, len,
			     client_sig) == 0 &&
	    gnutls_hmac_fast(h->mac, sc->secret.server_key, h->len, auth, len,
			     server_sig) == 0) {
		for (size_t i = 0; i < h->len; i++)
			client_key[i] = proof[i] ^ client_sig[i];
		if (gnutls_hash_fast(h->digest, client_key, h->len, stored) ==
		    0)
			ok = gnutls_memcmp(stored, sc->secret.stored_key,
					   h->len) == 0;
	}
	gnutls_memset(client_sig, 0, sizeof(client_sig));
	gnutls_memset(client_key, 0, sizeof(client_key));
	gnutls_memset(stored, 0, sizeof(stored));
	return ok;
}

enum ts_sasl_status
ts__scram_client_final(struct ts__scram *sc, const uint8_t *msg, size_t len,
		       const char **server_final_r, const char **error_r)
{
	struct scram_cursor c = { (const char *)msg, (const char *)msg + len,
				  true };
	const char *f, *error = NULL, *proof_field = NULL;
	size_t flen;
	uint8_t *cb = NULL, *proof = NULL;
	size_t cb_len = 0, proof_len = 0;
	char *auth = NULL;
	enum ts_sasl_status status = TS_SASL_ERROR;

	*server_final_r = NULL;
	if (sc->server_first == NULL || sc->server_final != NULL) {
		*error_r = "SCRAM client-final message out of order";
		return TS_SASL_ERROR;
	}
	if (len > TS__SASL_MAX_RESPONSE || memchr(msg, 0, len) != NULL) {
		*error_r = "malformed SCRAM client-final message: NUL or too "
			   "long";
		return TS_SASL_ERROR;
	}

	/* channel-binding "," nonce ["," extensions] "," proof */
	scram_field(&c, &f, &flen);
	if (!scram_is_attr(f, flen, 'c') ||
	    ts__base64_decode_n(f + 2, flen - 2, &cb, &cb_len) != 0) {
		error = "malformed SCRAM client-final message: bad channel "
			"binding";
		goto out;
	}
	if (!scram_field(&c, &f, &flen) || !scram_is_attr(f, flen, 'r') ||
	    !scram_printable(f + 2, flen - 2)) {
		error = "malformed SCRAM client-final message: missing nonce";
		goto out;
	}
	bool nonce_ok = flen - 2 == strlen(sc->nonce) &&
			memcmp(f + 2, sc->nonce, flen - 2) == 0;
	while (scram_field(&c, &f, &flen)) {
		if (!c.more && scram_is_attr(f, flen, 'p')) {
			proof_field = f;
			break;
		}
		if (!c.more) { /* the last field is not the proof */
			if (flen == 0)
				error = "malformed SCRAM client-final message: "
					"trailing comma";
			break;
		}
		if (!scram_is_extension(f, flen)) {
			error = "malformed SCRAM client-final message: bad "
				"extension";
			goto out;
		}
	}
	if (proof_field == NULL) {
		if (error == NULL)
			error = "malformed SCRAM client-final message: missing "
				"proof";
		goto out;
	}
	if (ts__base64_decode_n(proof_field + 2, flen - 2, &proof,
				&proof_len) != 0 ||
	    proof_len != sc->hash->len) {
		error = "malformed SCRAM client-final message: bad proof";
		goto out;
	}
	if (!nonce_ok) {
		error = "SCRAM client-final nonce is not the one we sent";
		goto out;
	}

	/* AuthMessage: the final message without ",p=…" (section 3). */
	size_t without_proof = (size_t)(proof_field - 1 - (const char *)msg);
	auth = ts_xasprintf("%s,%s,%.*s", sc->client_first_bare,
			    sc->server_first, (int)without_proof,
			    (const char *)msg);
	uint8_t server_sig[64];
	bool proof_ok =
		scram_verify_proof(sc, auth, strlen(auth), proof, server_sig);

	status = TS_SASL_FAIL;
	if (!scram_cb_matches(sc, cb, cb_len))
		error = "SCRAM channel binding does not match";
	else if (sc->unknown)
		error = "no such user, or no password set";
	else if (!proof_ok)
		error = "wrong SCRAM proof (password)";
	else {
		char *v = ts_base64_encode(server_sig, sc->hash->len);
		sc->server_final = ts_xasprintf("v=%s", v);
		free(v);
		*server_final_r = sc->server_final;
		status = TS_SASL_OK;
	}
	gnutls_memset(server_sig, 0, sizeof(server_sig));
out:
	free(cb);
	if (proof != NULL)
		gnutls_memset(proof, 0, proof_len);
	free(proof);
	scram_wipe_str(&auth);
	if (status != TS_SASL_OK)
		*error_r = error;
	return status;
}
