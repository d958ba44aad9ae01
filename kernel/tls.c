/*
 * kernel/tls.c — a GnuTLS session over memory buffers, for conn.c.
 *
 * A session never sees a socket: conn.c feeds it the ciphertext it read
 * (ts__tls_input, buffered here until GnuTLS pulls it) and GnuTLS's output
 * goes straight to the io->send callback, which queues it.  Pulling from an
 * empty buffer answers EAGAIN, so nothing here ever blocks.  This file also
 * owns server credentials (certificate files, or a self-signed certificate
 * made in memory) and the outbound verification policies: PKIX against a
 * CA bundle and hostname, or DANE against TLSA records (RFC 7672 rules).
 * It does not know about timeouts, logging or the event loop.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "kernel/tls.h"

struct ts__tls_creds {
	unsigned refs;
	gnutls_certificate_credentials_t cred;
};

struct ts__tls {
	gnutls_session_t session;
	bool server;
	struct ts__tls_io io;
	/* Server: the listener's shared credentials (a reference). */
	struct ts__tls_creds *creds;
	/* Client: credentials of this session alone (trust, verify hook). */
	gnutls_certificate_credentials_t client_cred;

	/* Ciphertext received but not yet pulled by GnuTLS. */
	uint8_t *in;
	size_t in_off, in_len, in_cap;

	bool handshake_done;
	bool failed; /* the handshake failed; error says why */
	bool verified; /* a PKIX or DANE check passed */
	char *error;

	/* Client verification policy (copied from the opts). */
	enum ts_tls_verify verify;
	char *server_name; /* client: SNI/PKIX name; server: SNI seen */
	struct ts_tls_tlsa *tlsa; /* data points into tlsa_data */
	size_t tlsa_count;
	uint8_t *tlsa_data;
};

/* Replace the session's error text with a formatted one. */
static void tls_set_error(struct ts__tls *tls, const char *fmt, ...)
	TS_PRINTF(2, 3);

static void
tls_set_error(struct ts__tls *tls, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(tls->error);
	tls->error = ts_xvasprintf(fmt, ap);
	va_end(ap);
}

/* The admin's priority string, "NORMAL" when none is given. */
static const char *
tls_given_priority(const char *priority)
{
	return priority != NULL && *priority != '\0' ? priority : "NORMAL";
}

/* The admin's priority string minus TLS 1.0/1.1; the caller frees it. */
static char *
tls_full_priority(const char *priority)
{
	return ts_xasprintf("%s%s", tls_given_priority(priority),
			    TS__TLS_FORBIDDEN);
}

/*
 * The text for a priority string GnuTLS refused (ret), e.g.
 * `invalid tls priority "NORMAL:+BOGUS" near "+BOGUS": The request is
 * invalid.`  On a syntax error err_pos points into `full` at the element
 * GnuTLS choked on: quote that element alone (up to the next ':').
 */
static char *
tls_priority_error(const char *priority, const char *full, int ret,
		   const char *err_pos)
{
	const char *given = tls_given_priority(priority);
	if (ret == GNUTLS_E_INVALID_REQUEST && err_pos != NULL &&
	    err_pos >= full && err_pos < full + strlen(full))
		return ts_xasprintf(
			"invalid tls priority \"%s\" near \"%.*s\": %s", given,
			(int)strcspn(err_pos, ":"), err_pos,
			gnutls_strerror(ret));
	/* Typically "TLS 1.1 only": nothing is left once 1.0/1.1 go. */
	if (ret == GNUTLS_E_NO_PRIORITIES_WERE_SET)
		return ts_xasprintf("invalid tls priority \"%s\": %s "
				    "(TLS 1.0 and 1.1 are always disabled)",
				    given, gnutls_strerror(ret));
	return ts_xasprintf("invalid tls priority \"%s\": %s", given,
			    gnutls_strerror(ret));
}

int
ts__tls_priority_check(const char *priority, char **error_r)
{
	gnutls_priority_t prio;
	const char *err_pos = NULL;
	char *full = tls_full_priority(priority);
	int ret = gnutls_priority_init(&prio, full, &err_pos);
	if (ret == 0)
		gnutls_priority_deinit(prio);
	else
		*error_r = tls_priority_error(priority, full, ret, err_pos);
	free(full);
	return ret == 0 ? 0 : TS_E_INVAL;
}

/* --- credentials -------------------------------------------------------- */

/*
 * A self-signed server certificate for `hostname`: ECDSA P-256, CN and DNS
 * SAN the hostname, valid from an hour ago for a year, not a CA.
 */
static int
tls_creds_self_signed(gnutls_certificate_credentials_t cred,
		      const char *hostname, char **error_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	unsigned char serial[16];
	time_t now = time(NULL);
	const char *step = "generating the key";
	int ret;

	if ((ret = gnutls_x509_privkey_init(&key)) < 0)
		goto out;
	ret = gnutls_x509_privkey_generate(
		key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (ret < 0)
		goto out;
	step = "building the certificate";
	if ((ret = gnutls_x509_crt_init(&crt)) < 0)
		goto out;
	/* A positive serial: clear the top bit of the random bytes. */
	if ((ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		goto out;
	serial[0] &= 0x7f;
	serial[0] |= 0x01; /* and no leading zero byte to strip */
	if ((ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) <
		    0 ||
	    (ret = gnutls_x509_crt_set_dn_by_oid(
		     crt, GNUTLS_OID_X520_COMMON_NAME, 0, hostname,
		     strlen(hostname))) < 0 ||
	    (ret = gnutls_x509_crt_set_subject_alt_name(
		     crt, GNUTLS_SAN_DNSNAME, hostname, strlen(hostname),
		     GNUTLS_FSAN_SET)) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(
		     crt, now + 365 * 24 * 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_usage(
		     crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_purpose_oid(
		     crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0)
		goto out;
	step = "signing the certificate";
	if ((ret = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) <
	    0)
		goto out;
	step = "installing the certificate";
	ret = gnutls_certificate_set_x509_key(cred, &crt, 1, key);
out:
	if (ret < 0)
		*error_r = ts_xasprintf(
			"cannot make a self-signed certificate for %s: "
			"%s: %s",
			hostname, step, gnutls_strerror(ret));
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret < 0 ? TS_E_INVAL : 0;
}

int
ts__tls_creds_new(const char *const *cert_files, const char *const *key_files,
		  size_t count, const char *hostname,
		  struct ts__tls_creds **creds_r, char **error_r)
{
	gnutls_certificate_credentials_t cred;
	int ret = gnutls_certificate_allocate_credentials(&cred);
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot allocate TLS credentials: %s",
					gnutls_strerror(ret));
		return TS_E_INVAL;
	}
	/*
	 * Each pair is one candidate; at handshake time GnuTLS picks the one
	 * whose names match the client's SNI, the first when none does.
	 */
	for (size_t i = 0; i < count; i++) {
		ret = gnutls_certificate_set_x509_key_file2(
			cred, cert_files[i], key_files[i], GNUTLS_X509_FMT_PEM,
			NULL, 0);
		if (ret < 0) {
			*error_r = ts_xasprintf(
				"cannot load certificate %s with key %s: %s",
				cert_files[i], key_files[i],
				gnutls_strerror(ret));
			gnutls_certificate_free_credentials(cred);
			return TS_E_INVAL;
		}
	}
	if (count == 0) {
		ret = tls_creds_self_signed(
			cred, hostname != NULL ? hostname : "localhost",
			error_r);
		if (ret < 0) {
			gnutls_certificate_free_credentials(cred);
			return ret;
		}
	}
	/* RFC 7919 groups for the DHE suites, should a client want them. */
	ret = gnutls_certificate_set_known_dh_params(cred,
						     GNUTLS_SEC_PARAM_MEDIUM);
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot set DH parameters: %s",
					gnutls_strerror(ret));
		gnutls_certificate_free_credentials(cred);
		return TS_E_INVAL;
	}
	struct ts__tls_creds *creds = ts_xcalloc(1, sizeof(*creds));
	creds->refs = 1;
	creds->cred = cred;
	*creds_r = creds;
	return 0;
}

void
ts__tls_creds_ref(struct ts__tls_creds *creds)
{
	creds->refs++;
}

void
ts__tls_creds_unref(struct ts__tls_creds **creds)
{
	struct ts__tls_creds *c = *creds;
	if (c == NULL)
		return;
	*creds = NULL;
	if (--c->refs > 0)
		return;
	gnutls_certificate_free_credentials(c->cred);
	free(c);
}

/* --- transport over the input buffer ------------------------------------ */

/* GnuTLS wants ciphertext: hand over what is buffered, or EAGAIN. */
static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct ts__tls *tls = ptr;
	size_t avail = tls->in_len - tls->in_off;
	if (avail == 0) {
		gnutls_transport_set_errno(tls->session, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(buf, tls->in + tls->in_off, len);
	tls->in_off += len;
	if (tls->in_off == tls->in_len)
		tls->in_off = tls->in_len = 0;
	return (ssize_t)len;
}

/*
 * Whether data can be pulled: we never wait, so "no data" is an immediate
 * timeout.  (With GNUTLS_NONBLOCK, GnuTLS rarely asks.)
 */
static int
tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct ts__tls *tls = ptr;
	return tls->in_len > tls->in_off ? 1 : 0;
}

/* GnuTLS has ciphertext for the peer: conn.c queues it, so it never fails. */
static ssize_t
tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct ts__tls *tls = ptr;
	tls->io.send(tls->io.arg, data, len);
	return (ssize_t)len;
}

void
ts__tls_input(struct ts__tls *tls, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (tls->in_off > 0) {
		memmove(tls->in, tls->in + tls->in_off,
			tls->in_len - tls->in_off);
		tls->in_len -= tls->in_off;
		tls->in_off = 0;
	}
	if (tls->in_len + len > tls->in_cap) {
		size_t cap = tls->in_cap ? tls->in_cap : 16384;
		while (cap < tls->in_len + len)
			cap *= 2;
		tls->in = ts_xrealloc(tls->in, cap);
		tls->in_cap = cap;
	}
	memcpy(tls->in + tls->in_len, data, len);
	tls->in_len += len;
}

/* --- sessions ------------------------------------------------------------ */

/*
 * The parts common to both sides: the session itself, our transport, and
 * the priority.  Returns NULL with *error_r on failure (tls is then freed).
 */
static struct ts__tls *
tls_session_new(unsigned flags, const char *priority,
		const struct ts__tls_io *io, char **error_r)
{
	struct ts__tls *tls = ts_xcalloc(1, sizeof(*tls));
	tls->io = *io;
	tls->server = (flags & GNUTLS_SERVER) != 0;
	int ret = gnutls_init(&tls->session, flags | GNUTLS_NONBLOCK);
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot start a TLS session: %s",
					gnutls_strerror(ret));
		free(tls);
		return NULL;
	}
	gnutls_session_set_ptr(tls->session, tls);
	gnutls_transport_set_ptr(tls->session, tls);
	gnutls_transport_set_push_function(tls->session, tls_push);
	gnutls_transport_set_pull_function(tls->session, tls_pull);
	gnutls_transport_set_pull_timeout_function(tls->session,
						   tls_pull_timeout);
	/* conn.c times the handshake out on its own clock. */
	gnutls_handshake_set_timeout(tls->session, 0);

	char *full = tls_full_priority(priority);
	const char *err_pos = NULL;
	ret = gnutls_priority_set_direct(tls->session, full, &err_pos);
	if (ret < 0)
		*error_r = tls_priority_error(priority, full, ret, err_pos);
	free(full);
	if (ret < 0) {
		ts__tls_free(&tls);
		return NULL;
	}
	return tls;
}

struct ts__tls *
ts__tls_server_new(struct ts__tls_creds *creds, const char *priority,
		   const struct ts__tls_io *io, char **error_r)
{
	struct ts__tls *tls =
		tls_session_new(GNUTLS_SERVER, priority, io, error_r);
	if (tls == NULL)
		return NULL;
	ts__tls_creds_ref(creds);
	tls->creds = creds;
	int ret = gnutls_credentials_set(tls->session, GNUTLS_CRD_CERTIFICATE,
					 creds->cred);
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot set TLS credentials: %s",
					gnutls_strerror(ret));
		ts__tls_free(&tls);
		return NULL;
	}
	/*
	 * Ask for a client certificate but never require or verify one: we
	 * only report whether the client offered one.
	 */
	gnutls_certificate_server_set_request(tls->session,
					      GNUTLS_CERT_REQUEST);
	return tls;
}

/* Text for a failed PKIX verification: the most useful reason first. */
static void
tls_pkix_error(struct ts__tls *tls, unsigned status)
{
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		tls_set_error(tls,
			      "certificate signed by an unknown authority");
	else if (status & GNUTLS_CERT_EXPIRED)
		tls_set_error(tls, "certificate expired");
	else if (status & GNUTLS_CERT_NOT_ACTIVATED)
		tls_set_error(tls, "certificate not yet valid");
	else if (status & GNUTLS_CERT_REVOKED)
		tls_set_error(tls, "certificate revoked");
	else if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
		tls_set_error(tls, "certificate hostname mismatch: expected %s",
			      tls->server_name);
	else {
		gnutls_datum_t out = { NULL, 0 };
		gnutls_certificate_type_t type = gnutls_certificate_type_get2(
			tls->session, GNUTLS_CTYPE_PEERS);
		if (gnutls_certificate_verification_status_print(
			    status, type, &out, 0) == 0) {
			tls_set_error(tls,
				      "certificate verification failed: %s",
				      (const char *)out.data);
			gnutls_free(out.data);
		} else {
			tls_set_error(tls,
				      "certificate verification failed "
				      "(status 0x%x)",
				      status);
		}
	}
}

/* PKIX: chain to a trusted CA and the certificate names server_name. */
static int
tls_verify_pkix(struct ts__tls *tls)
{
	unsigned status = 0;
	int ret = gnutls_certificate_verify_peers3(tls->session,
						   tls->server_name, &status);
	if (ret < 0) {
		tls_set_error(tls, "certificate verification failed: %s",
			      gnutls_strerror(ret));
		return -1;
	}
	if (status != 0) {
		tls_pkix_error(tls, status);
		return -1;
	}
	return 0;
}

/*
 * Whether TLSA record `rr` matches the DER certificate `der`: selector 0
 * is the whole certificate, 1 its SubjectPublicKeyInfo; matching 0 exact,
 * 1 SHA-256, 2 SHA-512.  Unknown selectors and matchings never match.
 */
static bool
tls_tlsa_matches(const struct ts_tls_tlsa *rr, const gnutls_datum_t *der)
{
	gnutls_datum_t spki = { NULL, 0 };
	const gnutls_datum_t *sel = der;
	uint8_t digest[64];
	const uint8_t *got;
	size_t got_len;
	bool match = false;

	if (rr->selector == 1) {
		gnutls_x509_crt_t crt = NULL;
		gnutls_pubkey_t pub = NULL;
		int ret = gnutls_x509_crt_init(&crt);
		if (ret == 0)
			ret = gnutls_x509_crt_import(crt, der,
						     GNUTLS_X509_FMT_DER);
		if (ret == 0)
			ret = gnutls_pubkey_init(&pub);
		if (ret == 0)
			ret = gnutls_pubkey_import_x509(pub, crt, 0);
		if (ret == 0)
			ret = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER,
						    &spki);
		if (pub != NULL)
			gnutls_pubkey_deinit(pub);
		if (crt != NULL)
			gnutls_x509_crt_deinit(crt);
		if (ret < 0)
			return false;
		sel = &spki;
	} else if (rr->selector != 0) {
		return false;
	}

	switch (rr->matching) {
	case 0:
		got = sel->data;
		got_len = sel->size;
		break;
	case 1:
	case 2: {
		gnutls_digest_algorithm_t alg = rr->matching == 1
							? GNUTLS_DIG_SHA256
							: GNUTLS_DIG_SHA512;
		if (gnutls_hash_fast(alg, sel->data, sel->size, digest) < 0)
			goto out;
		got = digest;
		got_len = gnutls_hash_get_len(alg);
		break;
	}
	default:
		goto out;
	}
	match = rr->len == got_len && memcmp(rr->data, got, got_len) == 0;
out:
	gnutls_free(spki.data);
	return match;
}

/*
 * DANE-TA: whether the presented chain leads from the leaf (chain[0]) up
 * to chain[ta], each certificate issued and signed by the next one.
 */
static bool
tls_dane_chain_ok(const gnutls_datum_t *chain, size_t ta)
{
	gnutls_x509_crt_t *crts = ts_xcalloc(ta + 1, sizeof(*crts));
	bool ok = true;
	size_t made = 0;
	for (; made <= ta; made++) {
		if (gnutls_x509_crt_init(&crts[made]) < 0) {
			ok = false;
			break;
		}
		if (gnutls_x509_crt_import(crts[made], &chain[made],
					   GNUTLS_X509_FMT_DER) < 0) {
			made++;
			ok = false;
			break;
		}
	}
	for (size_t i = 0; ok && i < ta; i++) {
		unsigned status = 0;
		if (!gnutls_x509_crt_check_issuer(crts[i], crts[i + 1]) ||
		    gnutls_x509_crt_verify(crts[i], &crts[i + 1], 1, 0,
					   &status) < 0 ||
		    status != 0)
			ok = false;
	}
	for (size_t i = 0; i < made; i++)
		if (crts[i] != NULL)
			gnutls_x509_crt_deinit(crts[i]);
	free(crts);
	return ok;
}

/* DANE-TA also needs the leaf to name the host (RFC 7672 section 3.2.2). */
static bool
tls_leaf_names(const gnutls_datum_t *der, const char *name)
{
	gnutls_x509_crt_t crt;
	bool ok = false;
	if (gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0)
		ok = gnutls_x509_crt_check_hostname(crt, name) != 0;
	gnutls_x509_crt_deinit(crt);
	return ok;
}

/*
 * DANE (RFC 7672): a DANE-EE(3) record matching the leaf passes, with no
 * name or expiry checks; a DANE-TA(2) record matching a certificate of the
 * presented chain passes if the chain leads from the leaf to it and the
 * leaf names the host.  PKIX-TA(0) and PKIX-EE(1) records are unusable for
 * SMTP and ignored.
 */
static int
tls_verify_dane(struct ts__tls *tls)
{
	unsigned n = 0;
	const gnutls_datum_t *chain =
		gnutls_certificate_get_peers(tls->session, &n);
	bool name_mismatch = false;
	if (chain == NULL || n == 0) {
		tls_set_error(tls, "server sent no certificate");
		return -1;
	}
	for (size_t r = 0; r < tls->tlsa_count; r++) {
		const struct ts_tls_tlsa *rr = &tls->tlsa[r];
		if (rr->usage == 3) {
			if (tls_tlsa_matches(rr, &chain[0]))
				return 0;
		} else if (rr->usage == 2) {
			for (size_t i = 0; i < n; i++) {
				if (!tls_tlsa_matches(rr, &chain[i]) ||
				    !tls_dane_chain_ok(chain, i))
					continue;
				if (tls->server_name == NULL ||
				    tls_leaf_names(&chain[0], tls->server_name))
					return 0;
				name_mismatch = true;
			}
		}
	}
	if (name_mismatch)
		tls_set_error(tls, "certificate hostname mismatch: expected %s",
			      tls->server_name);
	else
		tls_set_error(
			tls, "no TLSA record matches the server's certificate");
	return -1;
}

/*
 * GnuTLS calls this on the client once the server's certificate arrived;
 * a nonzero return aborts the handshake with a fatal alert to the server.
 */
static int
tls_verify_callback(gnutls_session_t session)
{
	struct ts__tls *tls = gnutls_session_get_ptr(session);
	int ret = tls->verify == TS_TLS_VERIFY_PKIX ? tls_verify_pkix(tls)
						    : tls_verify_dane(tls);
	if (ret < 0)
		return -1;
	tls->verified = true;
	return 0;
}

/* Copy the caller's TLSA records (their data in one block). */
static void
tls_copy_tlsa(struct ts__tls *tls, const struct ts_tls_tlsa *tlsa, size_t count)
{
	size_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += tlsa[i].len;
	tls->tlsa = ts_xcalloc(count ? count : 1, sizeof(*tls->tlsa));
	tls->tlsa_data = ts_xmalloc(total);
	tls->tlsa_count = count;
	size_t off = 0;
	for (size_t i = 0; i < count; i++) {
		tls->tlsa[i] = tlsa[i];
		if (tlsa[i].len > 0)
			memcpy(tls->tlsa_data + off, tlsa[i].data, tlsa[i].len);
		tls->tlsa[i].data = tls->tlsa_data + off;
		off += tlsa[i].len;
	}
}

/* Whether s is an IP literal, which RFC 6066 forbids in SNI. */
static bool
tls_is_ip(const char *s)
{
	unsigned char addr[16];
	return inet_pton(AF_INET, s, addr) == 1 ||
	       inet_pton(AF_INET6, s, addr) == 1;
}

struct ts__tls *
ts__tls_client_new(const struct ts_tls_client_opts *opts, const char *priority,
		   const struct ts__tls_io *io, char **error_r)
{
	if (opts->verify == TS_TLS_VERIFY_PKIX &&
	    (opts->server_name == NULL || *opts->server_name == '\0')) {
		*error_r = ts_xstrdup("PKIX verification needs a server name");
		return NULL;
	}
	struct ts__tls *tls =
		tls_session_new(GNUTLS_CLIENT, priority, io, error_r);
	if (tls == NULL)
		return NULL;
	tls->verify = opts->verify;
	if (opts->server_name != NULL && *opts->server_name != '\0')
		tls->server_name = ts_xstrdup(opts->server_name);
	if (opts->verify == TS_TLS_VERIFY_DANE)
		tls_copy_tlsa(tls, opts->tlsa, opts->tlsa_count);

	int ret = gnutls_certificate_allocate_credentials(&tls->client_cred);
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot allocate TLS credentials: %s",
					gnutls_strerror(ret));
		goto fail;
	}
	if (opts->verify == TS_TLS_VERIFY_PKIX) {
		if (opts->ca_file != NULL) {
			ret = gnutls_certificate_set_x509_trust_file(
				tls->client_cred, opts->ca_file,
				GNUTLS_X509_FMT_PEM);
			if (ret == 0)
				ret = GNUTLS_E_NO_CERTIFICATE_FOUND;
			if (ret < 0) {
				*error_r = ts_xasprintf(
					"cannot load CA file %s: %s",
					opts->ca_file, gnutls_strerror(ret));
				goto fail;
			}
		} else {
			ret = gnutls_certificate_set_x509_system_trust(
				tls->client_cred);
			if (ret < 0) {
				*error_r = ts_xasprintf(
					"cannot load the system's trusted "
					"CAs: %s",
					gnutls_strerror(ret));
				goto fail;
			}
		}
	}
	if (opts->verify != TS_TLS_VERIFY_NONE)
		gnutls_certificate_set_verify_function(tls->client_cred,
						       tls_verify_callback);
	ret = gnutls_credentials_set(tls->session, GNUTLS_CRD_CERTIFICATE,
				     tls->client_cred);
	if (ret == 0 && tls->server_name != NULL &&
	    !tls_is_ip(tls->server_name))
		ret = gnutls_server_name_set(tls->session, GNUTLS_NAME_DNS,
					     tls->server_name,
					     strlen(tls->server_name));
	if (ret < 0) {
		*error_r = ts_xasprintf("cannot set up the TLS session: %s",
					gnutls_strerror(ret));
		goto fail;
	}
	return tls;
fail:
	ts__tls_free(&tls);
	return NULL;
}

void
ts__tls_free(struct ts__tls **tlsp)
{
	struct ts__tls *tls = *tlsp;
	if (tls == NULL)
		return;
	*tlsp = NULL;
	gnutls_deinit(tls->session);
	if (tls->client_cred != NULL)
		gnutls_certificate_free_credentials(tls->client_cred);
	ts__tls_creds_unref(&tls->creds);
	free(tls->in);
	free(tls->error);
	free(tls->server_name);
	free(tls->tlsa);
	free(tls->tlsa_data);
	free(tls);
}

/* Server side, once the handshake is done: remember the SNI sent. */
static void
tls_record_sni(struct ts__tls *tls)
{
	char name[256];
	size_t len = sizeof(name) - 1;
	unsigned type = 0;
	if (gnutls_server_name_get(tls->session, name, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS) {
		name[len < sizeof(name) ? len : sizeof(name) - 1] = '\0';
		tls->server_name = ts_xstrdup(name);
	}
}

int
ts__tls_handshake(struct ts__tls *tls)
{
	if (tls->failed)
		return TS_E_IO;
	if (tls->handshake_done)
		return 0;
	int ret;
	/* Warnings and other non-fatal codes just mean "go on". */
	do {
		ret = gnutls_handshake(tls->session);
	} while (ret < 0 && ret != GNUTLS_E_AGAIN &&
		 gnutls_error_is_fatal(ret) == 0);
	if (ret == GNUTLS_E_AGAIN)
		return TS__TLS_AGAIN;
	if (ret < 0) {
		tls->failed = true;
		tls->verified = false;
		/*
		 * GnuTLS leaves telling the peer to us; without the alert
		 * it would wait for a flight that never comes.
		 */
		if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED)
			(void)gnutls_alert_send_appropriate(tls->session, ret);
		if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
		    ret == GNUTLS_E_CERTIFICATE_ERROR) {
			/* Our verify callback said why, unless GnuTLS did. */
			if (tls->error == NULL)
				tls_set_error(tls, "TLS handshake failed: %s",
					      gnutls_strerror(ret));
		} else if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED) {
			tls_set_error(tls,
				      "TLS handshake failed: peer sent alert: "
				      "%s",
				      gnutls_alert_get_name(
					      gnutls_alert_get(tls->session)));
		} else {
			tls_set_error(tls, "TLS handshake failed: %s",
				      gnutls_strerror(ret));
		}
		return TS_E_IO;
	}
	tls->handshake_done = true;
	if (tls->server)
		tls_record_sni(tls);
	return 0;
}

ssize_t
ts__tls_read(struct ts__tls *tls, void *buf, size_t len)
{
	for (;;) {
		size_t before = tls->in_len - tls->in_off;
		ssize_t ret = gnutls_record_recv(tls->session, buf, len);
		if (ret > 0)
			return ret;
		if (ret == 0)
			return TS__TLS_EOF;
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			/*
			 * A post-handshake message (TLS 1.3 key update or
			 * session ticket) may have been consumed with more
			 * records still buffered: go on while input is
			 * being used up, stop when nothing moves.
			 */
			size_t after = tls->in_len - tls->in_off;
			if (after > 0 && after < before)
				continue;
			return 0;
		}
		if (ret == GNUTLS_E_REHANDSHAKE) {
			/* A TLS 1.2 renegotiation request: decline. */
			(void)gnutls_alert_send(tls->session, GNUTLS_AL_WARNING,
						GNUTLS_A_NO_RENEGOTIATION);
			continue;
		}
		if (gnutls_error_is_fatal((int)ret) == 0)
			continue; /* a warning alert and the like */
		if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
			tls_set_error(tls,
				      "TLS read failed: peer sent alert: %s",
				      gnutls_alert_get_name(
					      gnutls_alert_get(tls->session)));
		else
			tls_set_error(tls, "TLS read failed: %s",
				      gnutls_strerror((int)ret));
		return TS_E_IO;
	}
}

int
ts__tls_write(struct ts__tls *tls, const void *data, size_t len)
{
	const uint8_t *p = data;
	unsigned retries = 0;
	/* GnuTLS sends at most one record per call: loop over the rest. */
	while (len > 0) {
		ssize_t ret = gnutls_record_send(tls->session, p, len);
		if (ret > 0) {
			p += ret;
			len -= (size_t)ret;
			retries = 0;
			continue;
		}
		/* Our push never fails, so EAGAIN should not last. */
		if ((ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) &&
		    ++retries < 16)
			continue;
		tls_set_error(tls, "TLS write failed: %s",
			      gnutls_strerror((int)ret));
		return TS_E_IO;
	}
	return 0;
}

void
ts__tls_bye(struct ts__tls *tls)
{
	/* SHUT_WR: send close_notify without waiting for the peer's. */
	if (tls->handshake_done)
		(void)gnutls_bye(tls->session, GNUTLS_SHUT_WR);
}

const char *
ts__tls_error(const struct ts__tls *tls)
{
	return tls->error != NULL ? tls->error : "";
}

int
ts__tls_info(const struct ts__tls *tls, struct ts_tls_info *info_r)
{
	if (!tls->handshake_done)
		return TS_E_STATE;
	gnutls_session_t s = tls->session;
	memset(info_r, 0, sizeof(*info_r));
	info_r->version =
		gnutls_protocol_get_name(gnutls_protocol_get_version(s));
	if (info_r->version == NULL)
		info_r->version = "unknown";
	info_r->cipher = gnutls_ciphersuite_get(s);
	if (info_r->cipher == NULL)
		info_r->cipher = gnutls_cipher_suite_get_name(
			gnutls_kx_get(s), gnutls_cipher_get(s),
			gnutls_mac_get(s));
	if (info_r->cipher == NULL)
		info_r->cipher = "unknown";
	info_r->server_name = tls->server_name;
	if (tls->server) {
		unsigned n = 0;
		info_r->client_cert_offered =
			gnutls_certificate_get_peers(s, &n) != NULL && n > 0;
	}
	info_r->verified = tls->verified;
	return 0;
}

/*
 * Channel binding for SCRAM-PLUS: "tls-unique" (RFC 5929) exists only for
 * TLS 1.2, "tls-exporter" (RFC 9266) is used only with TLS 1.3.  Returns
 * TS_E_INVAL when buf (*len_r bytes) is too small: a truncated binding
 * would never match the peer's.
 */
int
ts__tls_channel_binding(const struct ts__tls *tls, const char *type,
			uint8_t *buf, size_t *len_r)
{
	if (!tls->handshake_done)
		return TS_E_STATE;
	gnutls_protocol_t version = gnutls_protocol_get_version(tls->session);
	gnutls_channel_binding_t cb;
	if (strcmp(type, "tls-unique") == 0 && version == GNUTLS_TLS1_2)
		cb = GNUTLS_CB_TLS_UNIQUE;
	else if (strcmp(type, "tls-exporter") == 0 && version == GNUTLS_TLS1_3)
		cb = GNUTLS_CB_TLS_EXPORTER;
	else
		return TS_E_NOTFOUND;
	gnutls_datum_t data = { NULL, 0 };
	if (gnutls_session_channel_binding(tls->session, cb, &data) < 0)
		return TS_E_NOTFOUND;
	int ret = 0;
	if (data.size > *len_r) {
		ret = TS_E_INVAL;
	} else {
		memcpy(buf, data.data, data.size);
		*len_r = data.size;
	}
	gnutls_free(data.data);
	return ret;
}
