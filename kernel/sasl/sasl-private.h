/*
 * kernel/sasl/sasl-private.h — the pure parts of server-side SASL, shared
 * by the exchange driver (sasl.c) and the unit tests.
 *
 * Nothing declared here touches the store, the loop or the clock: each
 * function takes the secret, the nonce or the challenge as input, so the
 * tests can replay the RFC example exchanges byte for byte.  sasl.c
 * fetches secrets from the store and drives these functions.
 *
 * Error texts are static strings, meant for logs (ts_sasl_error).
 */
#ifndef TESSERA_SASL_PRIVATE_H
#define TESSERA_SASL_PRIVATE_H

#include <tessera/sasl.h>
#include <tessera/store.h>

/* Longest client response any mechanism takes (bytes, decoded). */
#define TS__SASL_MAX_RESPONSE 4096

/* --- base64 (base64.c) ------------------------------------------------- */

/*
 * Strict decode of len characters of text (not NUL-terminated), as
 * ts_base64_decode; "=" alone is not special here (SCRAM attributes
 * never use it), only in ts_base64_decode.
 */
int ts__base64_decode_n(const char *text, size_t len, uint8_t **data_r,
			size_t *len_r);

/* The 6-bit value of a base64 alphabet character, or -1 (kernel/mime too). */
int ts__base64_value(char c);

/* --- text checks (mech.c) ---------------------------------------------- */

/*
 * Whether s[0..len) is UTF-8 (shortest forms, no surrogates) without
 * control characters (C0, DEL, C1): a "SASLprep-lite" for identities.
 */
bool ts__sasl_text_ok(const uint8_t *s, size_t len);

/* --- PLAIN (RFC 4616) and LOGIN (mech.c) ------------------------------- */

/*
 * Split a PLAIN message "[authzid] NUL authcid NUL passwd".  On
 * TS_SASL_CONTINUE (meaning: parsed) *authzid_r (NULL when empty),
 * *authcid_r and *password_r are NUL-terminated copies the caller frees
 * (wipe the password).  TS_SASL_ERROR with *error_r for anything else:
 * not exactly two NULs, an empty authcid or password, bad text.
 */
enum ts_sasl_status ts__plain_parse(const uint8_t *msg, size_t len,
				    char **authzid_r, char **authcid_r,
				    char **password_r, const char **error_r);

/*
 * A LOGIN user name or password (what = "user name" or "password"):
 * TS_SASL_CONTINUE with a NUL-terminated copy in *text_r, or
 * TS_SASL_ERROR (empty, a NUL inside, bad text).  Passwords are only
 * checked for emptiness and NULs: the store judges the rest.
 */
enum ts_sasl_status ts__login_parse(const uint8_t *msg, size_t len,
				    bool password, char **text_r,
				    const char **error_r);

/* --- CRAM-MD5 (RFC 2195; mech.c) --------------------------------------- */

/*
 * The challenge "<random.unixtime@hostname>" (caller frees), random a
 * 64-bit number in decimal from gnutls_rnd.
 */
char *ts__cram_md5_challenge(const char *hostname, int64_t now);

/*
 * Split the response "username SP 32-hex-digest" (the last space
 * separates; hex in either case).  TS_SASL_CONTINUE with *username_r
 * (caller frees) and digest_r, or TS_SASL_ERROR.
 */
enum ts_sasl_status ts__cram_md5_parse(const uint8_t *msg, size_t len,
				       char **username_r, uint8_t digest_r[16],
				       const char **error_r);

/*
 * Whether digest is HMAC-MD5(password, challenge), computed from the
 * stored pad states; constant-time comparison.
 */
bool ts__cram_md5_check(const struct ts_cram_md5_secret *secret,
			const char *challenge, const uint8_t digest[16]);

/* --- SCRAM (RFC 5802, RFC 7677; scram.c) -------------------------------- */

/* One SCRAM hash: what the mechanism name's "SHA-1"/"SHA-256" selects. */
struct ts__scram_hash;

/* A SCRAM exchange on the server side. */
struct ts__scram {
	const struct ts__scram_hash *hash;
	bool plus; /* a -PLUS mechanism: channel binding required */
	/* Channel binding this server offers (NULL: none, no -PLUS). */
	char *cb_type;
	uint8_t *cb_data;
	size_t cb_len;

	/* From client-first. */
	char *gs2_header; /* "n,,", "y,a=bob,", "p=tls-exporter,," */
	bool cb_used; /* the gs2 flag was "p" */
	char *authzid; /* unescaped, NULL when absent */
	char *username; /* unescaped */
	char *client_first_bare;
	char *client_nonce;

	/* From server-first. */
	char *nonce; /* client nonce + server nonce */
	char *server_first;
	struct ts_scram_secret secret;
	bool unknown; /* a made-up secret: fail at the end */

	/* From client-final. */
	char *server_final;
};

/*
 * Set up sc for mechanism (canonical name: "SCRAM-SHA-256",
 * "SCRAM-SHA-1-PLUS", …) with the channel binding the server offers (type
 * NULL when none).  Returns 0, or TS_E_INVAL for another name.  Release
 * with ts__scram_clear.
 */
int ts__scram_init(struct ts__scram *sc, const char *mechanism,
		   const char *cb_type, const uint8_t *cb_data, size_t cb_len);
/* Free and wipe everything sc holds. */
void ts__scram_clear(struct ts__scram *sc);

/*
 * The store's name for sc's secret: "SCRAM-SHA-256" or "SCRAM-SHA-1".
 */
const char *ts__scram_secret_name(const struct ts__scram *sc);

/*
 * Parse the client-first message (RFC 5802 section 7): GS2 header (flag,
 * optional authzid), optional reserved "m=" (refused), user name with
 * "=2C"/"=3D" escapes, client nonce, extensions (ignored).
 * TS_SASL_CONTINUE when it parsed (sc->username, sc->authzid are set);
 * TS_SASL_FAIL for a downgrade ("y" while channel binding is offered);
 * TS_SASL_ERROR for anything malformed or a channel binding the
 * mechanism or server cannot do.  *error_r says why, unless it parsed.
 */
enum ts_sasl_status ts__scram_client_first(struct ts__scram *sc,
					   const uint8_t *msg, size_t len,
					   const char **error_r);

/*
 * A server nonce: 24 random bytes in base64 (caller frees).
 */
char *ts__scram_server_nonce(void);

/*
 * A deterministic stand-in secret for a user without one, so that the
 * salt and iteration count a client sees do not reveal the difference:
 * salt = HMAC-SHA-256(key, mechanism NUL username) cut to 16 bytes, the
 * iteration count the store uses for real secrets.  Keys are zero.
 */
void ts__scram_fake_secret(const struct ts__scram *sc, const uint8_t key[32],
			   struct ts_scram_secret *secret_r);

/*
 * Build the server-first message from the secret (copied; unknown: it is
 * a stand-in and the exchange must fail) and the server nonce (printable
 * ASCII without commas).  Returns sc->server_first, or NULL when the
 * secret does not fit the mechanism.
 */
const char *ts__scram_server_first(struct ts__scram *sc,
				   const struct ts_scram_secret *secret,
				   bool unknown, const char *server_nonce);

/*
 * Check the client-final message (RFC 5802 sections 3 and 7): channel
 * binding "c=" equal to base64(gs2 header + cbind data), nonce "r=" equal
 * to ours, then the proof.  TS_SASL_OK with *server_final_r (owned by sc:
 * "v=" + ServerSignature); TS_SASL_FAIL for a wrong proof, a stand-in
 * secret, a channel-binding mismatch; TS_SASL_ERROR for malformed
 * messages, a nonce that is not ours, a call out of order.  *error_r says
 * why, unless TS_SASL_OK.
 */
enum ts_sasl_status ts__scram_client_final(struct ts__scram *sc,
					   const uint8_t *msg, size_t len,
					   const char **server_final_r,
					   const char **error_r);

/* --- client side (client.c) ------------------------------------------- */

/*
 * Tests: use this SCRAM client nonce instead of a random one (call
 * before the first step).
 */
void ts__sasl_client_set_nonce(struct ts_sasl_client *c, const char *nonce);

#endif
