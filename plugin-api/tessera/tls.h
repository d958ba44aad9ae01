/*
 * tessera/tls.h — TLS on connections: STARTTLS, session details, outbound
 * verification modes.
 *
 * The kernel runs TLS (GnuTLS) underneath the connection: protocol modules
 * keep reading lines and writing bytes and never see ciphertext.  Listeners
 * choose `tls = none|starttls|implicit` and their certificates in ini (see
 * tessera.ini(5)); SNI picks among a listener's certificates.  Only TLS 1.2
 * and 1.3 are ever negotiated.
 */
#ifndef TESSERA_TLS_H
#define TESSERA_TLS_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ts_conn;

/* What a Received header or a log line says about a session. */
struct ts_tls_info {
	const char *version;      /* "TLS1.3" */
	const char *cipher;       /* "TLS_AES_256_GCM_SHA384" */
	const char *server_name;  /* SNI the client sent, or NULL */
	bool client_cert_offered; /* the client presented a certificate */
	bool verified;            /* outbound: the peer passed verification */
};

/* How an outbound connection checks the server's certificate. */
enum ts_tls_verify {
	TS_TLS_VERIFY_NONE, /* opportunistic: encrypt, check nothing */
	TS_TLS_VERIFY_PKIX, /* CA chain + hostname (server_name) */
	TS_TLS_VERIFY_DANE, /* the caller's TLSA records (RFC 7672 rules) */
};

/* One TLSA record (RFC 6698): usage 2 (DANE-TA) and 3 (DANE-EE) apply. */
struct ts_tls_tlsa {
	uint8_t usage, selector, matching;
	const uint8_t *data;
	size_t len;
};

struct ts_tls_client_opts {
	enum ts_tls_verify verify;
	const char *server_name; /* SNI, and the name PKIX checks */
	const char *ca_file;     /* PEM bundle; NULL: the system's trust */
	const struct ts_tls_tlsa *tlsa; /* for TS_TLS_VERIFY_DANE */
	size_t tlsa_count;
};

/*
 * Server side: start TLS on a plaintext connection (after the protocol has
 * queued its "ready to start TLS" reply, which still goes out in clear).
 * Input the client sent after its STARTTLS command is discarded (it could
 * be an injection).  When the handshake completes the protocol's
 * tls_ready runs; a failed handshake closes the connection with a log line.
 * Returns 0, TS_E_STATE if TLS is already on, or TS_E_INVAL when the
 * listener has no TLS configured.
 */
int ts_conn_starttls(struct ts_conn *conn);

/*
 * Client side: start TLS on an outbound connection (after the server's
 * "go ahead").  Verification follows opts (copied); tls_ready runs when
 * the handshake and verification succeeded, otherwise the connection
 * closes and ts_conn_error() says why ("certificate hostname mismatch:
 * expected mx.example.org").
 */
int ts_conn_starttls_client(struct ts_conn *conn,
			    const struct ts_tls_client_opts *opts);

/*
 * Whether ts_conn_starttls can work here: an accepted connection on a
 * listener with `tls = starttls` that is not yet under TLS (so a protocol
 * knows whether to offer STARTTLS at all).
 */
bool ts_conn_tls_offered(const struct ts_conn *conn);

/* Whether TLS is up (handshake done) on the connection. */
bool ts_conn_tls_active(const struct ts_conn *conn);

/* Session details; 0, or TS_E_STATE when TLS is not up. */
int ts_conn_tls_info(const struct ts_conn *conn, struct ts_tls_info *info_r);

/*
 * Channel-binding data for SCRAM-PLUS: type "tls-exporter" (RFC 9266, TLS
 * 1.3) or "tls-unique" (RFC 5929, TLS 1.2).  Writes up to *len_r bytes into
 * buf and sets *len_r.  0, TS_E_STATE (no TLS) or TS_E_NOTFOUND (type not
 * available for this TLS version).
 */
int ts_conn_tls_channel_binding(const struct ts_conn *conn, const char *type,
				uint8_t *buf, size_t *len_r);

/*
 * The channel binding a SCRAM-PLUS server or client should use on this
 * connection: tls-exporter when available, else tls-unique.  Sets
 * *type_r (a static string) and fills buf and *len_r as above.  0,
 * TS_E_STATE (no TLS) or TS_E_NOTFOUND (no binding available).
 */
int ts_conn_tls_best_channel_binding(const struct ts_conn *conn,
				     const char **type_r, uint8_t *buf,
				     size_t *len_r);

#ifdef __cplusplus
}
#endif
#endif
