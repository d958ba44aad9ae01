/*
 * tests/unit/test-tls.c — unit tests of kernel/tls.c: TLS sessions over
 * memory buffers.
 *
 * A client and a server session are wired to each other in memory (what
 * one sends is fed to the other's input) and pumped until both handshakes
 * end.  The certificates are made here with the GnuTLS API at group setup
 * — a test CA, leaves for mx.example.test and other.example.test signed by
 * it, and an unrelated second CA — and written as PEM files to a temporary
 * directory for the credentials loader.  Some tests use a bare GnuTLS
 * session as the peer, to look at what tls.c presents or to offer what
 * tls.c must refuse.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "kernel/tls.h"

/* --- test certificates ---------------------------------------------------- */

struct test_certs {
	char dir[64];
	char ca_file[128], ca2_file[128];
	char mx_cert[128], mx_key[128];
	char other_cert[128], other_key[128];
	/* mx, then an impostor: the CA's name on another key. */
	char bad_chain[128];
	gnutls_datum_t ca_der, impostor_der, mx_der, other_der;
};

static struct test_certs certs;

static gnutls_x509_privkey_t
make_key(void)
{
	gnutls_x509_privkey_t key;
	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(
		gnutls_x509_privkey_generate(
			key, GNUTLS_PK_ECDSA,
			GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
		0);
	return key;
}

/*
 * A certificate for `cn` with `key`: a CA when issuer is NULL (self-signed,
 * may sign certificates), else a server leaf with a DNS SAN, signed by
 * issuer/issuer_key.
 */
static gnutls_x509_crt_t
make_cert(const char *cn, gnutls_x509_privkey_t key, gnutls_x509_crt_t issuer,
	  gnutls_x509_privkey_t issuer_key, unsigned serial)
{
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);
	unsigned char ser[2] = { 0x10, (unsigned char)serial };
	unsigned char id[64];
	size_t id_len = sizeof(id);
	bool ca = issuer == NULL;

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, ser, sizeof(ser)), 0);
	assert_int_equal(
		gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
					      0, cn, strlen(cn)),
		0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600),
			 0);
	assert_int_equal(
		gnutls_x509_crt_set_expiration_time(crt, now + 86400 * 30), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	assert_int_equal(gnutls_x509_crt_get_key_id(crt, 0, id, &id_len), 0);
	assert_int_equal(gnutls_x509_crt_set_subject_key_id(crt, id, id_len),
			 0);
	if (ca) {
		assert_int_equal(
			gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
		assert_int_equal(gnutls_x509_crt_set_key_usage(
					 crt, GNUTLS_KEY_KEY_CERT_SIGN |
						      GNUTLS_KEY_CRL_SIGN),
				 0);
		assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key,
						       GNUTLS_DIG_SHA256, 0),
				 0);
	} else {
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
					 crt, GNUTLS_SAN_DNSNAME, cn,
					 strlen(cn), GNUTLS_FSAN_SET),
				 0);
		assert_int_equal(
			gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
		assert_int_equal(gnutls_x509_crt_set_key_usage(
					 crt, GNUTLS_KEY_DIGITAL_SIGNATURE),
				 0);
		assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(
					 crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
				 0);
		assert_int_equal(gnutls_x509_crt_sign2(crt, issuer, issuer_key,
						       GNUTLS_DIG_SHA256, 0),
				 0);
	}
	return crt;
}

/* Write the PEM of each certificate in crts (NULL-terminated) to path. */
static void
write_certs(const char *path, gnutls_x509_crt_t *crts)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (; *crts != NULL; crts++) {
		gnutls_datum_t pem;
		assert_int_equal(gnutls_x509_crt_export2(
					 *crts, GNUTLS_X509_FMT_PEM, &pem),
				 0);
		assert_int_equal(fwrite(pem.data, 1, pem.size, f), pem.size);
		gnutls_free(pem.data);
	}
	assert_int_equal(fclose(f), 0);
}

static void
write_key(const char *path, gnutls_x509_privkey_t key)
{
	gnutls_datum_t pem;
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(
		gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem), 0);
	assert_int_equal(fwrite(pem.data, 1, pem.size, f), pem.size);
	gnutls_free(pem.data);
	assert_int_equal(fclose(f), 0);
}

static void
der_of(gnutls_x509_crt_t crt, gnutls_datum_t *der)
{
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der),
			 0);
}

static int
group_setup(void **state)
{
	struct test_certs *c = &certs;
	strcpy(c->dir, "/tmp/test-tls-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->ca_file, sizeof(c->ca_file), "%s/ca.pem", c->dir);
	snprintf(c->ca2_file, sizeof(c->ca2_file), "%s/ca2.pem", c->dir);
	snprintf(c->mx_cert, sizeof(c->mx_cert), "%s/mx.pem", c->dir);
	snprintf(c->mx_key, sizeof(c->mx_key), "%s/mx.key", c->dir);
	snprintf(c->other_cert, sizeof(c->other_cert), "%s/other.pem", c->dir);
	snprintf(c->other_key, sizeof(c->other_key), "%s/other.key", c->dir);
	snprintf(c->bad_chain, sizeof(c->bad_chain), "%s/bad.pem", c->dir);

	gnutls_x509_privkey_t ca_key = make_key(), ca2_key = make_key();
	gnutls_x509_privkey_t mx_key = make_key(), other_key = make_key();
	gnutls_x509_privkey_t impostor_key = make_key();
	gnutls_x509_crt_t ca =
		make_cert("Tessera Test CA", ca_key, NULL, NULL, 1);
	gnutls_x509_crt_t ca2 =
		make_cert("Unrelated Test CA", ca2_key, NULL, NULL, 2);
	gnutls_x509_crt_t impostor =
		make_cert("Tessera Test CA", impostor_key, NULL, NULL, 5);
	gnutls_x509_crt_t mx =
		make_cert("mx.example.test", mx_key, ca, ca_key, 3);
	gnutls_x509_crt_t other =
		make_cert("other.example.test", other_key, ca, ca_key, 4);

	write_certs(c->ca_file, (gnutls_x509_crt_t[]){ ca, NULL });
	write_certs(c->ca2_file, (gnutls_x509_crt_t[]){ ca2, NULL });
	/* The server files carry the chain: leaf, then the CA. */
	write_certs(c->mx_cert, (gnutls_x509_crt_t[]){ mx, ca, NULL });
	write_certs(c->other_cert, (gnutls_x509_crt_t[]){ other, ca, NULL });
	write_certs(c->bad_chain, (gnutls_x509_crt_t[]){ mx, impostor, NULL });
	write_key(c->mx_key, mx_key);
	write_key(c->other_key, other_key);
	der_of(ca, &c->ca_der);
	der_of(impostor, &c->impostor_der);
	der_of(mx, &c->mx_der);
	der_of(other, &c->other_der);

	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(ca2);
	gnutls_x509_crt_deinit(impostor);
	gnutls_x509_crt_deinit(mx);
	gnutls_x509_crt_deinit(other);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(ca2_key);
	gnutls_x509_privkey_deinit(impostor_key);
	gnutls_x509_privkey_deinit(mx_key);
	gnutls_x509_privkey_deinit(other_key);
	return 0;
}

static int
group_teardown(void **state)
{
	struct test_certs *c = &certs;
	unlink(c->ca_file);
	unlink(c->ca2_file);
	unlink(c->mx_cert);
	unlink(c->mx_key);
	unlink(c->other_cert);
	unlink(c->other_key);
	unlink(c->bad_chain);
	rmdir(c->dir);
	gnutls_free(c->ca_der.data);
	gnutls_free(c->impostor_der.data);
	gnutls_free(c->mx_der.data);
	gnutls_free(c->other_der.data);
	return 0;
}

/* --- two endpoints wired in memory ---------------------------------------- */

struct buf {
	uint8_t *data;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->data = ts_xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/*
 * One end: a tls.c session, or (raw != NULL) a bare GnuTLS session that
 * reads from `in`.  Whatever either sends collects in `out`.
 */
struct endpoint {
	struct ts__tls *tls;
	gnutls_session_t raw;
	gnutls_certificate_credentials_t raw_cred;
	struct buf in, out;
	struct ts__tls_io io;
	int rc; /* last handshake result */
};

static void
ep_send(void *arg, const void *data, size_t len)
{
	struct endpoint *ep = arg;
	buf_add(&ep->out, data, len);
}

static ssize_t
raw_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	ep_send(ptr, data, len);
	return (ssize_t)len;
}

static ssize_t
raw_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct endpoint *ep = ptr;
	if (ep->in.len == 0) {
		gnutls_transport_set_errno(ep->raw, EAGAIN);
		return -1;
	}
	if (len > ep->in.len)
		len = ep->in.len;
	memcpy(data, ep->in.data, len);
	memmove(ep->in.data, ep->in.data + len, ep->in.len - len);
	ep->in.len -= len;
	return (ssize_t)len;
}

static void
ep_init(struct endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->io.send = ep_send;
	ep->io.arg = ep;
	ep->rc = TS__TLS_AGAIN;
}

/*
 * A bare GnuTLS peer with priority used verbatim (no TLS 1.0/1.1 ban),
 * optional SNI, and for a server the mx certificate.
 */
static void
ep_raw(struct endpoint *ep, bool server, const char *priority, const char *sni)
{
	ep_init(ep);
	assert_int_equal(
		gnutls_init(&ep->raw, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
					      GNUTLS_NONBLOCK),
		0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&ep->raw_cred),
			 0);
	if (server)
		assert_int_equal(gnutls_certificate_set_x509_key_file2(
					 ep->raw_cred, certs.mx_cert,
					 certs.mx_key, GNUTLS_X509_FMT_PEM,
					 NULL, 0),
				 0);
	assert_int_equal(gnutls_credentials_set(ep->raw, GNUTLS_CRD_CERTIFICATE,
						ep->raw_cred),
			 0);
	assert_int_equal(gnutls_priority_set_direct(ep->raw, priority, NULL),
			 0);
	if (sni != NULL)
		assert_int_equal(gnutls_server_name_set(ep->raw,
							GNUTLS_NAME_DNS, sni,
							strlen(sni)),
				 0);
	gnutls_transport_set_ptr(ep->raw, ep);
	gnutls_transport_set_push_function(ep->raw, raw_push);
	gnutls_transport_set_pull_function(ep->raw, raw_pull);
}

static void
ep_free(struct endpoint *ep)
{
	ts__tls_free(&ep->tls);
	if (ep->raw != NULL)
		gnutls_deinit(ep->raw);
	if (ep->raw_cred != NULL)
		gnutls_certificate_free_credentials(ep->raw_cred);
	free(ep->in.data);
	free(ep->out.data);
}

static int
ep_handshake(struct endpoint *ep)
{
	if (ep->tls != NULL)
		return ts__tls_handshake(ep->tls);
	int ret;
	do {
		ret = gnutls_handshake(ep->raw);
	} while (ret < 0 && ret != GNUTLS_E_AGAIN &&
		 gnutls_error_is_fatal(ret) == 0);
	if (ret == GNUTLS_E_AGAIN)
		return TS__TLS_AGAIN;
	return ret < 0 ? TS_E_IO : 0;
}

/* Hand what `from` sent to `to`. */
static void
deliver(struct endpoint *from, struct endpoint *to)
{
	if (from->out.len == 0)
		return;
	if (to->tls != NULL)
		ts__tls_input(to->tls, from->out.data, from->out.len);
	else
		buf_add(&to->in, from->out.data, from->out.len);
	from->out.len = 0;
}

/* Run both handshakes until each has finished or failed (or stalled). */
static void
pump(struct endpoint *c, struct endpoint *s)
{
	c->rc = s->rc = TS__TLS_AGAIN;
	for (int i = 0; i < 50; i++) {
		if (c->rc == TS__TLS_AGAIN)
			c->rc = ep_handshake(c);
		deliver(c, s);
		if (s->rc == TS__TLS_AGAIN)
			s->rc = ep_handshake(s);
		deliver(s, c);
		if (c->rc != TS__TLS_AGAIN && s->rc != TS__TLS_AGAIN)
			break;
	}
}

static struct ts__tls_creds *
creds_self_signed(void)
{
	struct ts__tls_creds *creds = NULL;
	char *error = NULL;
	assert_int_equal(
		ts__tls_creds_new(NULL, NULL, 0, "localhost", &creds, &error),
		0);
	assert_null(error);
	return creds;
}

/* Server creds with the mx pair, then (if both) the other pair. */
static struct ts__tls_creds *
creds_files(bool both)
{
	const char *certs_v[] = { certs.mx_cert, certs.other_cert };
	const char *keys_v[] = { certs.mx_key, certs.other_key };
	struct ts__tls_creds *creds = NULL;
	char *error = NULL;
	assert_int_equal(ts__tls_creds_new(certs_v, keys_v, both ? 2 : 1, NULL,
					   &creds, &error),
			 0);
	assert_null(error);
	return creds;
}

static void
server_new(struct endpoint *s, struct ts__tls_creds *creds,
	   const char *priority)
{
	char *error = NULL;
	ep_init(s);
	s->tls = ts__tls_server_new(creds, priority, &s->io, &error);
	assert_null(error);
	assert_non_null(s->tls);
}

static void
client_new(struct endpoint *c, const struct ts_tls_client_opts *opts,
	   const char *priority)
{
	char *error = NULL;
	ep_init(c);
	c->tls = ts__tls_client_new(opts, priority, &c->io, &error);
	assert_null(error);
	assert_non_null(c->tls);
}

/*
 * A client with `opts` against a server with the mx/other pairs; the
 * handshake result of each side is left in c->rc and s->rc.
 */
static void
handshake_files(struct endpoint *c, struct endpoint *s,
		const struct ts_tls_client_opts *opts)
{
	struct ts__tls_creds *creds = creds_files(true);
	server_new(s, creds, NULL);
	ts__tls_creds_unref(&creds);
	client_new(c, opts, NULL);
	pump(c, s);
}

/* Everything `to` can decrypt now, appended to b. */
static void
read_all(struct endpoint *to, struct buf *b)
{
	uint8_t chunk[4096];
	ssize_t n;
	while ((n = ts__tls_read(to->tls, chunk, sizeof(chunk))) > 0)
		buf_add(b, chunk, (size_t)n);
	assert_int_equal(n, 0);
}

/* Send `len` patterned bytes from one end and check the other gets them. */
static void
transfer(struct endpoint *from, struct endpoint *to, size_t len, int seed)
{
	uint8_t *data = ts_xmalloc(len);
	struct buf got = { 0 };
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + seed);
	assert_int_equal(ts__tls_write(from->tls, data, len), 0);
	/* More than one record went out in one go. */
	assert_true(from->out.len > len);
	deliver(from, to);
	read_all(to, &got);
	assert_int_equal(got.len, len);
	assert_memory_equal(got.data, data, len);
	free(got.data);
	free(data);
}

/* --- tests ------------------------------------------------------------------
 */

static void
test_self_signed_data_both_ways(void **state)
{
	struct ts__tls_creds *creds = creds_self_signed();
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE,
					   .server_name = "localhost" };
	server_new(&s, creds, NULL);
	/* The session keeps its own reference. */
	ts__tls_creds_unref(&creds);
	assert_null(creds);
	client_new(&c, &opts, NULL);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	assert_string_equal(ts__tls_error(c.tls), "");
	/* Nothing to read yet. */
	uint8_t b[16];
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), 0);

	transfer(&c, &s, 100 * 1024, 1);
	transfer(&s, &c, 100 * 1024 + 17, 5);
	/* Several small writes arriving in one input. */
	struct buf got = { 0 };
	assert_int_equal(ts__tls_write(c.tls, "EHLO x\r\n", 8), 0);
	assert_int_equal(ts__tls_write(c.tls, "QUIT\r\n", 6), 0);
	deliver(&c, &s);
	read_all(&s, &got);
	assert_int_equal(got.len, 14);
	assert_memory_equal(got.data, "EHLO x\r\nQUIT\r\n", 14);
	free(got.data);

	struct ts_tls_info info;
	assert_int_equal(ts__tls_info(c.tls, &info), 0);
	assert_false(info.verified);
	ep_free(&c);
	ep_free(&s);
}

/* The CN of the certificate the bare client `c` was shown. */
static char *
peer_subject(struct endpoint *c)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->raw, &n);
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn;
	assert_non_null(chain);
	assert_true(n >= 1);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(
		gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER), 0);
	assert_int_equal(gnutls_x509_crt_get_dn3(crt, &dn, 0), 0);
	char *s = ts_xstrdup((const char *)dn.data);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
	return s;
}

static void
sni_case(struct ts__tls_creds *creds, const char *sni, const char *expect)
{
	struct endpoint c, s;
	server_new(&s, creds, NULL);
	ep_raw(&c, false, "NORMAL", sni);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	char *subject = peer_subject(&c);
	assert_string_equal(subject, expect);
	free(subject);
	struct ts_tls_info info;
	assert_int_equal(ts__tls_info(s.tls, &info), 0);
	if (sni != NULL)
		assert_string_equal(info.server_name, sni);
	else
		assert_null(info.server_name);
	ep_free(&c);
	ep_free(&s);
}

static void
test_sni_selects_certificate(void **state)
{
	struct ts__tls_creds *creds = creds_files(true);
	sni_case(creds, "other.example.test", "CN=other.example.test");
	sni_case(creds, "mx.example.test", "CN=mx.example.test");
	/* No SNI, or an unknown name: the first pair. */
	sni_case(creds, NULL, "CN=mx.example.test");
	sni_case(creds, "nobody.example.test", "CN=mx.example.test");
	ts__tls_creds_unref(&creds);
}

static void
test_old_versions_refused(void **state)
{
	const char *tls11 = "NORMAL:-VERS-ALL:+VERS-TLS1.1";
	struct ts__tls_creds *creds = creds_files(false);
	struct endpoint c, s;

	/* Control: two bare GnuTLS sessions can agree on TLS 1.1 here. */
	ep_raw(&s, true, "NORMAL:+VERS-TLS1.1", NULL);
	ep_raw(&c, false, tls11, NULL);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	assert_int_equal(gnutls_protocol_get_version(c.raw), GNUTLS_TLS1_1);
	ep_free(&c);
	ep_free(&s);

	/* A tls.c server refuses it, even when its priority allows 1.0/1.1. */
	const char *server_prios[] = { NULL,
				       "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1" };
	for (size_t i = 0; i < 2; i++) {
		server_new(&s, creds, server_prios[i]);
		ep_raw(&c, false,
		       i == 0 ? tls11 : "NORMAL:-VERS-ALL:+VERS-TLS1.0", NULL);
		pump(&c, &s);
		assert_int_equal(s.rc, TS_E_IO);
		assert_int_equal(c.rc, TS_E_IO);
		char *want = ts_xasprintf(
			"TLS handshake failed: %s",
			gnutls_strerror(GNUTLS_E_UNSUPPORTED_VERSION_PACKET));
		assert_string_equal(ts__tls_error(s.tls), want);
		free(want);
		/* The server told the client why. */
		assert_int_equal(gnutls_alert_get(c.raw),
				 GNUTLS_A_PROTOCOL_VERSION);
		ep_free(&c);
		ep_free(&s);
	}

	/*
	 * A tls.c client told to use TLS 1.1 only has no version left; so
	 * does the config check.
	 */
	const char *want_error =
		"invalid tls priority \"NORMAL:-VERS-ALL:+VERS-TLS1.1\": "
		"No or insufficient priorities were set. "
		"(TLS 1.0 and 1.1 are always disabled)";
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	char *error = NULL;
	ep_init(&c);
	assert_null(ts__tls_client_new(&opts, tls11, &c.io, &error));
	assert_string_equal(error, want_error);
	free(error);
	error = NULL;
	assert_int_equal(ts__tls_priority_check(tls11, &error), TS_E_INVAL);
	assert_string_equal(error, want_error);
	free(error);
	/* A server whose priority allows only old versions cannot start. */
	error = NULL;
	assert_null(ts__tls_server_new(creds, tls11, &c.io, &error));
	assert_string_equal(error, want_error);
	free(error);
	ep_free(&c);
	ts__tls_creds_unref(&creds);
}

static void
test_pkix_ok(void **state)
{
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_PKIX,
					   .server_name = "other.example.test",
					   .ca_file = certs.ca_file };
	handshake_files(&c, &s, &opts);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	struct ts_tls_info info;
	assert_int_equal(ts__tls_info(c.tls, &info), 0);
	assert_true(info.verified);
	assert_string_equal(info.server_name, "other.example.test");
	ep_free(&c);
	ep_free(&s);
}

static void
test_pkix_hostname_mismatch(void **state)
{
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_PKIX,
					   .server_name = "wrong.example.test",
					   .ca_file = certs.ca_file };
	handshake_files(&c, &s, &opts);
	assert_int_equal(c.rc, TS_E_IO);
	assert_string_equal(ts__tls_error(c.tls),
			    "certificate hostname mismatch: "
			    "expected wrong.example.test");
	/* The server learns of it through the client's alert. */
	assert_int_equal(s.rc, TS_E_IO);
	assert_string_equal(ts__tls_error(s.tls),
			    "TLS handshake failed: peer sent alert: "
			    "Certificate is bad");
	struct ts_tls_info info;
	assert_int_equal(ts__tls_info(c.tls, &info), TS_E_STATE);
	ep_free(&c);
	ep_free(&s);
}

static void
test_pkix_unknown_ca(void **state)
{
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_PKIX,
					   .server_name = "mx.example.test",
					   .ca_file = certs.ca2_file };
	handshake_files(&c, &s, &opts);
	assert_int_equal(c.rc, TS_E_IO);
	assert_string_equal(ts__tls_error(c.tls),
			    "certificate signed by an unknown authority");
	ep_free(&c);
	ep_free(&s);
}

static void
test_pkix_setup_errors(void **state)
{
	struct endpoint c;
	char *error = NULL;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.pem", certs.dir);
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_PKIX,
					   .server_name = "mx.example.test",
					   .ca_file = missing };
	ep_init(&c);
	assert_null(ts__tls_client_new(&opts, NULL, &c.io, &error));
	char *want = ts_xasprintf("cannot load CA file %s: %s", missing,
				  gnutls_strerror(GNUTLS_E_FILE_ERROR));
	assert_string_equal(error, want);
	free(want);
	free(error);
	error = NULL;

	opts.server_name = NULL;
	assert_null(ts__tls_client_new(&opts, NULL, &c.io, &error));
	assert_string_equal(error, "PKIX verification needs a server name");
	free(error);
}

/* SHA-256 of a certificate's SubjectPublicKeyInfo, as in a 3 1 1 record. */
static void
spki_sha256(const gnutls_datum_t *der, uint8_t out[32])
{
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;
	gnutls_datum_t spki;
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER),
			 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_x509(pub, crt, 0), 0);
	assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki),
			 0);
	assert_int_equal(
		gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, out),
		0);
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
}

/* A DANE handshake against the mx/other server; returns the client's rc. */
static int
dane_case(const char *name, const struct ts_tls_tlsa *tlsa, size_t n,
	  const char *want_error)
{
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_DANE,
					   .server_name = name,
					   .tlsa = tlsa,
					   .tlsa_count = n };
	handshake_files(&c, &s, &opts);
	int rc = c.rc;
	assert_string_equal(ts__tls_error(c.tls), want_error);
	if (rc == 0) {
		struct ts_tls_info info;
		assert_int_equal(s.rc, 0);
		assert_int_equal(ts__tls_info(c.tls, &info), 0);
		assert_true(info.verified);
	}
	ep_free(&c);
	ep_free(&s);
	return rc;
}

static void
test_dane_ee(void **state)
{
	const char *nomatch = "no TLSA record matches the server's certificate";
	uint8_t mx_hash[32], other_hash[32];
	spki_sha256(&certs.mx_der, mx_hash);
	spki_sha256(&certs.other_der, other_hash);
	struct ts_tls_tlsa good = { 3, 1, 1, mx_hash, 32 };
	struct ts_tls_tlsa bad = { 3, 1, 1, other_hash, 32 };

	assert_int_equal(dane_case("mx.example.test", &good, 1, ""), 0);
	/* DANE-EE ignores the name in the certificate (RFC 7672 3.1.1). */
	assert_int_equal(dane_case("wrong.example.test", &good, 1, ""), 0);
	/* Any one matching record is enough. */
	struct ts_tls_tlsa two[] = { bad, good };
	assert_int_equal(dane_case("mx.example.test", two, 2, ""), 0);
	assert_int_equal(dane_case("mx.example.test", &bad, 1, nomatch),
			 TS_E_IO);
	/* The full certificate, exact match (3 0 0). */
	struct ts_tls_tlsa full = { 3, 0, 0, certs.mx_der.data,
				    certs.mx_der.size };
	assert_int_equal(dane_case("mx.example.test", &full, 1, ""), 0);
	/* PKIX-EE (1) records are unusable for SMTP even when they match. */
	struct ts_tls_tlsa pkix_ee = { 1, 1, 1, mx_hash, 32 };
	assert_int_equal(dane_case("mx.example.test", &pkix_ee, 1, nomatch),
			 TS_E_IO);
	/* No records at all. */
	assert_int_equal(dane_case("mx.example.test", NULL, 0, nomatch),
			 TS_E_IO);
}

static void
test_dane_ta(void **state)
{
	const char *nomatch = "no TLSA record matches the server's certificate";
	uint8_t ca_sha512[64], ca_spki[32], mx_spki[32];
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA512, certs.ca_der.data,
					  certs.ca_der.size, ca_sha512),
			 0);
	spki_sha256(&certs.ca_der, ca_spki);
	spki_sha256(&certs.mx_der, mx_spki);

	struct ts_tls_tlsa ta_full = { 2, 0, 2, ca_sha512, 64 };
	struct ts_tls_tlsa ta_spki = { 2, 1, 1, ca_spki, 32 };
	assert_int_equal(dane_case("mx.example.test", &ta_full, 1, ""), 0);
	assert_int_equal(dane_case("other.example.test", &ta_spki, 1, ""), 0);
	/* With DANE-TA the leaf must name the host. */
	assert_int_equal(dane_case("wrong.example.test", &ta_spki, 1,
				   "certificate hostname mismatch: "
				   "expected wrong.example.test"),
			 TS_E_IO);
	/* A record for a key the chain does not hold. */
	uint8_t wrong[32];
	memcpy(wrong, ca_spki, 32);
	wrong[0] ^= 1;
	struct ts_tls_tlsa ta_wrong = { 2, 1, 1, wrong, 32 };
	assert_int_equal(dane_case("mx.example.test", &ta_wrong, 1, nomatch),
			 TS_E_IO);
	/* PKIX-TA (0) is ignored. */
	struct ts_tls_tlsa pkix_ta = { 0, 1, 1, ca_spki, 32 };
	assert_int_equal(dane_case("mx.example.test", &pkix_ta, 1, nomatch),
			 TS_E_IO);
	/*
	 * Unknown selector and matching types never match, even with data
	 * that would match under selector 0 or matching 1.
	 */
	uint8_t ca_sha256[32];
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, certs.ca_der.data,
					  certs.ca_der.size, ca_sha256),
			 0);
	struct ts_tls_tlsa odd[] = { { 2, 7, 1, ca_sha256, 32 },
				     { 2, 1, 9, ca_spki, 32 } };
	assert_int_equal(dane_case("mx.example.test", odd, 2, nomatch),
			 TS_E_IO);
}

static void
test_dane_ta_broken_chain(void **state)
{
	/*
	 * The server presents mx followed by a certificate with its issuer's
	 * name but another key, and the record names that impostor.
	 */
	const char *cert_v[] = { certs.bad_chain };
	const char *key_v[] = { certs.mx_key };
	struct ts__tls_creds *creds = NULL;
	char *error = NULL;
	assert_int_equal(
		ts__tls_creds_new(cert_v, key_v, 1, NULL, &creds, &error), 0);
	struct ts_tls_tlsa ta = { 2, 0, 0, certs.impostor_der.data,
				  certs.impostor_der.size };
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_DANE,
					   .server_name = "mx.example.test",
					   .tlsa = &ta,
					   .tlsa_count = 1 };
	struct endpoint c, s;
	server_new(&s, creds, NULL);
	client_new(&c, &opts, NULL);
	pump(&c, &s);
	assert_int_equal(c.rc, TS_E_IO);
	assert_string_equal(ts__tls_error(c.tls),
			    "no TLSA record matches the server's certificate");
	ep_free(&c);
	ep_free(&s);
	ts__tls_creds_unref(&creds);
}

/* Read from a bare GnuTLS session until it yields data (or fails). */
static ssize_t
raw_read(struct endpoint *ep, void *buf, size_t len)
{
	ssize_t n;
	for (;;) {
		size_t before = ep->in.len;
		n = gnutls_record_recv(ep->raw, buf, len);
		/* AGAIN after a post-handshake message, with input left. */
		if (n == GNUTLS_E_AGAIN && ep->in.len > 0 &&
		    ep->in.len < before)
			continue;
		if (n >= 0 || n == GNUTLS_E_AGAIN || gnutls_error_is_fatal(n))
			return n;
	}
}

static void
test_post_handshake_messages(void **state)
{
	struct ts__tls_creds *creds = creds_files(false);
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	struct endpoint c, s;
	uint8_t b[64];

	/*
	 * TLS 1.3 key update asking for ours in return, then data, in one
	 * input: the server reads the data and the client can still read
	 * what the server sends under its new keys.
	 */
	server_new(&s, creds, NULL);
	ep_raw(&c, false, "NORMAL", NULL);
	pump(&c, &s);
	assert_int_equal(s.rc, 0);
	assert_int_equal(gnutls_session_key_update(c.raw, GNUTLS_KU_PEER), 0);
	assert_int_equal(gnutls_record_send(c.raw, "one", 3), 3);
	deliver(&c, &s);
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), 3);
	assert_memory_equal(b, "one", 3);
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), 0);
	assert_int_equal(ts__tls_write(s.tls, "two", 3), 0);
	deliver(&s, &c);
	assert_int_equal(raw_read(&c, b, sizeof(b)), 3);
	assert_memory_equal(b, "two", 3);
	ep_free(&c);
	ep_free(&s);

	/* A TLS 1.3 session ticket arriving with data. */
	gnutls_datum_t key;
	assert_int_equal(gnutls_session_ticket_key_generate(&key), 0);
	ep_raw(&s, true, "NORMAL", NULL);
	assert_int_equal(gnutls_session_ticket_enable_server(s.raw, &key), 0);
	client_new(&c, &opts, NULL);
	c.rc = ts__tls_handshake(c.tls);
	deliver(&c, &s);
	assert_int_equal(ep_handshake(&s), TS__TLS_AGAIN);
	deliver(&s, &c);
	assert_int_equal(ts__tls_handshake(c.tls), 0);
	deliver(&c, &s);
	assert_int_equal(ep_handshake(&s), 0); /* sends the ticket */
	assert_int_equal(gnutls_record_send(s.raw, "three", 5), 5);
	deliver(&s, &c);
	assert_int_equal(ts__tls_read(c.tls, b, sizeof(b)), 5);
	assert_memory_equal(b, "three", 5);
	assert_int_equal(ts__tls_read(c.tls, b, sizeof(b)), 0);
	ep_free(&c);
	ep_free(&s);
	gnutls_free(key.data);

	/* A TLS 1.2 renegotiation request is declined; data flows on. */
	ep_raw(&s, true, "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL);
	client_new(&c, &opts, NULL);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	assert_int_equal(gnutls_rehandshake(s.raw), 0);
	assert_int_equal(gnutls_record_send(s.raw, "four", 4), 4);
	deliver(&s, &c);
	assert_int_equal(ts__tls_read(c.tls, b, sizeof(b)), 4);
	assert_memory_equal(b, "four", 4);
	deliver(&c, &s);
	/* The server got our no_renegotiation warning. */
	assert_int_equal(gnutls_handshake(s.raw),
			 GNUTLS_E_WARNING_ALERT_RECEIVED);
	assert_int_equal(gnutls_alert_get(s.raw), GNUTLS_A_NO_RENEGOTIATION);
	assert_int_equal(ts__tls_write(c.tls, "five", 4), 0);
	deliver(&c, &s);
	assert_int_equal(raw_read(&s, b, sizeof(b)), 4);
	assert_memory_equal(b, "five", 4);
	ep_free(&c);
	ep_free(&s);
	ts__tls_creds_unref(&creds);
}

static void
test_client_cert_offered(void **state)
{
	struct ts__tls_creds *creds = creds_self_signed();
	struct endpoint c, s;
	struct ts_tls_info info;
	server_new(&s, creds, NULL);
	ep_raw(&c, false, "NORMAL", NULL);
	/* The client has a certificate to show (any will do). */
	assert_int_equal(gnutls_certificate_set_x509_key_file2(
				 c.raw_cred, certs.other_cert, certs.other_key,
				 GNUTLS_X509_FMT_PEM, NULL, 0),
			 0);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	assert_int_equal(ts__tls_info(s.tls, &info), 0);
	assert_true(info.client_cert_offered);
	assert_null(info.server_name);
	ep_free(&c);
	ep_free(&s);
	ts__tls_creds_unref(&creds);
}

static void
test_info(void **state)
{
	struct endpoint c, s;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE,
					   .server_name = "mx.example.test" };
	handshake_files(&c, &s, &opts);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	struct ts_tls_info ci, si;
	assert_int_equal(ts__tls_info(c.tls, &ci), 0);
	assert_int_equal(ts__tls_info(s.tls, &si), 0);
	assert_string_equal(ci.version, "TLS1.3");
	assert_string_equal(si.version, "TLS1.3");
	assert_true(strncmp(si.cipher, "TLS_AES_", 8) == 0 ||
		    strncmp(si.cipher, "TLS_CHACHA20_", 13) == 0);
	assert_string_equal(ci.cipher, si.cipher);
	assert_string_equal(si.server_name, "mx.example.test");
	assert_false(si.client_cert_offered);
	assert_false(si.verified);
	assert_false(ci.verified);
	ep_free(&c);
	ep_free(&s);
}

static void
test_channel_binding(void **state)
{
	struct ts__tls_creds *creds = creds_self_signed();
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	const char *prios[] = { NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2" };
	for (size_t i = 0; i < 2; i++) {
		struct endpoint c, s;
		uint8_t cb[128], sb[128], tiny[4];
		size_t clen = sizeof(cb), slen = sizeof(sb), tlen = 4;
		const char *yes = i == 0 ? "tls-exporter" : "tls-unique";
		const char *no = i == 0 ? "tls-unique" : "tls-exporter";

		server_new(&s, creds, NULL);
		client_new(&c, &opts, prios[i]);
		assert_int_equal(ts__tls_channel_binding(c.tls, yes, cb, &clen),
				 TS_E_STATE);
		pump(&c, &s);
		assert_int_equal(c.rc, 0);
		assert_int_equal(s.rc, 0);
		struct ts_tls_info info;
		assert_int_equal(ts__tls_info(s.tls, &info), 0);
		assert_string_equal(info.version, i == 0 ? "TLS1.3" : "TLS1.2");

		assert_int_equal(ts__tls_channel_binding(c.tls, yes, cb, &clen),
				 0);
		assert_int_equal(ts__tls_channel_binding(s.tls, yes, sb, &slen),
				 0);
		assert_int_equal(clen, i == 0 ? 32 : 12);
		assert_int_equal(clen, slen);
		assert_memory_equal(cb, sb, clen);
		assert_int_equal(ts__tls_channel_binding(c.tls, no, cb, &clen),
				 TS_E_NOTFOUND);
		assert_int_equal(
			ts__tls_channel_binding(c.tls, "tls-bogus", cb, &clen),
			TS_E_NOTFOUND);
		assert_int_equal(
			ts__tls_channel_binding(c.tls, yes, tiny, &tlen),
			TS_E_INVAL);
		ep_free(&c);
		ep_free(&s);
	}
	ts__tls_creds_unref(&creds);
}

static void
test_close_notify(void **state)
{
	struct ts__tls_creds *creds = creds_self_signed();
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	struct endpoint c, s;
	uint8_t b[64];
	server_new(&s, creds, NULL);
	client_new(&c, &opts, NULL);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	/* Data and close_notify in one input: the data first, then EOF. */
	assert_int_equal(ts__tls_write(c.tls, "bye", 3), 0);
	ts__tls_bye(c.tls);
	deliver(&c, &s);
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), 3);
	assert_memory_equal(b, "bye", 3);
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), TS__TLS_EOF);
	/* The server answers in kind. */
	ts__tls_bye(s.tls);
	deliver(&s, &c);
	assert_int_equal(ts__tls_read(c.tls, b, sizeof(b)), TS__TLS_EOF);

	ep_free(&c);
	ep_free(&s);
	ts__tls_creds_unref(&creds);
}

static void
test_read_garbage(void **state)
{
	struct ts__tls_creds *creds = creds_self_signed();
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	struct endpoint c, s;
	uint8_t b[64];
	server_new(&s, creds, NULL);
	client_new(&c, &opts, NULL);
	pump(&c, &s);
	assert_int_equal(s.rc, 0);
	/* An application-data record that fails to decrypt. */
	ts__tls_input(s.tls, "\x17\x03\x03\x00\x20", 5);
	ts__tls_input(s.tls, "0123456789abcdef0123456789abcdef", 32);
	assert_int_equal(ts__tls_read(s.tls, b, sizeof(b)), TS_E_IO);
	char *want = ts_xasprintf("TLS read failed: %s",
				  gnutls_strerror(GNUTLS_E_DECRYPTION_FAILED));
	assert_string_equal(ts__tls_error(s.tls), want);
	free(want);
	ep_free(&c);
	ep_free(&s);
	ts__tls_creds_unref(&creds);
}

static void
test_creds_errors(void **state)
{
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.pem", certs.dir);
	const char *cert_v[] = { certs.mx_cert, missing };
	const char *key_v[] = { certs.mx_key, certs.mx_key };
	struct ts__tls_creds *creds = NULL;
	char *error = NULL;
	assert_int_equal(
		ts__tls_creds_new(cert_v, key_v, 2, NULL, &creds, &error),
		TS_E_INVAL);
	assert_null(creds);
	char *want = ts_xasprintf("cannot load certificate %s with key %s: %s",
				  missing, certs.mx_key,
				  gnutls_strerror(GNUTLS_E_FILE_ERROR));
	assert_string_equal(error, want);
	free(want);
	free(error);
	error = NULL;

	/* A key that does not belong to the certificate. */
	const char *cert_w[] = { certs.mx_cert };
	const char *key_w[] = { certs.other_key };
	assert_int_equal(
		ts__tls_creds_new(cert_w, key_w, 1, NULL, &creds, &error),
		TS_E_INVAL);
	want = ts_xasprintf("cannot load certificate %s with key %s: %s",
			    certs.mx_cert, certs.other_key,
			    gnutls_strerror(GNUTLS_E_CERTIFICATE_KEY_MISMATCH));
	assert_string_equal(error, want);
	free(want);
	free(error);

	/* References: two refs, two unrefs. */
	creds = creds_self_signed();
	struct ts__tls_creds *again = creds;
	ts__tls_creds_ref(again);
	ts__tls_creds_unref(&again);
	assert_null(again);
	ts__tls_creds_unref(&creds);
	ts__tls_creds_unref(&creds); /* NULL: nothing */
	struct ts__tls *none = NULL;
	ts__tls_free(&none);
}

static void
test_priority_check(void **state)
{
	char *error = NULL;
	assert_int_equal(ts__tls_priority_check("NORMAL", &error), 0);
	assert_int_equal(ts__tls_priority_check(NULL, &error), 0);
	assert_int_equal(
		ts__tls_priority_check("SECURE256:+VERS-TLS1.0", &error), 0);
	assert_null(error);
	assert_int_equal(ts__tls_priority_check("NORMAL:+BOGUS:-CAMELLIA-"
						"128-CBC",
						&error),
			 TS_E_INVAL);
	char *want = ts_xasprintf(
		"invalid tls priority \"NORMAL:+BOGUS:-CAMELLIA-128-CBC\" "
		"near \"+BOGUS\": %s",
		gnutls_strerror(GNUTLS_E_INVALID_REQUEST));
	assert_string_equal(error, want);
	free(want);
	free(error);
	error = NULL;

	/* Sessions refuse a bad priority too. */
	struct endpoint c;
	struct ts_tls_client_opts opts = { .verify = TS_TLS_VERIFY_NONE };
	ep_init(&c);
	assert_null(ts__tls_client_new(&opts, "NORMAL:+BOGUS", &c.io, &error));
	assert_non_null(error);
	assert_true(strncmp(error, "invalid tls priority \"NORMAL:+BOGUS\"",
			    36) == 0);
	free(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_signed_data_both_ways),
		cmocka_unit_test(test_sni_selects_certificate),
		cmocka_unit_test(test_old_versions_refused),
		cmocka_unit_test(test_pkix_ok),
		cmocka_unit_test(test_pkix_hostname_mismatch),
		cmocka_unit_test(test_pkix_unknown_ca),
		cmocka_unit_test(test_pkix_setup_errors),
		cmocka_unit_test(test_dane_ee),
		cmocka_unit_test(test_dane_ta),
		cmocka_unit_test(test_dane_ta_broken_chain),
		cmocka_unit_test(test_post_handshake_messages),
		cmocka_unit_test(test_client_cert_offered),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_channel_binding),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_read_garbage),
		cmocka_unit_test(test_creds_errors),
		cmocka_unit_test(test_priority_check),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
