/*
 * kernel/tls.h — a GnuTLS session over memory buffers (tls.c), for conn.c.
 *
 * The session never touches a socket: conn.c feeds it the ciphertext it
 * read (ts__tls_input) and hands on whatever it asks to send (the `send`
 * callback of struct ts__tls_io).  That keeps TLS independent of libuv and
 * testable with two sessions wired to each other.
 */
#ifndef TESSERA_KERNEL_TLS_H
#define TESSERA_KERNEL_TLS_H

#include <sys/types.h>

#include "kernel/kernel.h"
#include <tessera/tls.h>

/* TLS 1.0/1.1 (and SSL 3) are removed from whatever priority is given. */
#define TS__TLS_FORBIDDEN ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"

/*
 * Check that a [core] tls_priority string is understood by GnuTLS.
 * Returns 0, or TS_E_INVAL with *error_r (caller frees) quoting GnuTLS
 * and the offending part.
 */
int ts__tls_priority_check(const char *priority, char **error_r);

/*
 * Server credentials of one listener: one or more certificate/key pairs
 * (PEM files, chains allowed); GnuTLS picks by SNI, the first pair when
 * nothing matches.  With count == 0 a self-signed certificate for
 * `hostname` is generated in memory (for localserve and tests).
 * Reference counted: sessions keep theirs alive across a reload.
 */
struct ts__tls_creds;
int ts__tls_creds_new(const char *const *cert_files,
		      const char *const *key_files, size_t count,
		      const char *hostname, struct ts__tls_creds **creds_r,
		      char **error_r);
void ts__tls_creds_ref(struct ts__tls_creds *creds);
/* Drop a reference; frees at zero; sets *creds to NULL. */
void ts__tls_creds_unref(struct ts__tls_creds **creds);

/* Where a session sends its ciphertext. */
struct ts__tls_io {
	void (*send)(void *arg, const void *data, size_t len);
	void *arg;
};

struct ts__tls;

/* New sessions; NULL with *error_r (caller frees) on failure. */
struct ts__tls *ts__tls_server_new(struct ts__tls_creds *creds,
				   const char *priority,
				   const struct ts__tls_io *io, char **error_r);
struct ts__tls *ts__tls_client_new(const struct ts_tls_client_opts *opts,
				   const char *priority,
				   const struct ts__tls_io *io, char **error_r);
void ts__tls_free(struct ts__tls **tls);

/* Ciphertext from the peer.  Buffered until the session consumes it. */
void ts__tls_input(struct ts__tls *tls, const void *data, size_t len);

/*
 * Drive the handshake with what input there is.  Returns 0 once it is
 * complete (and, for clients, verification passed), TS__TLS_AGAIN while it
 * needs more input, or TS_E_IO on failure (ts__tls_error says why).
 */
#define TS__TLS_AGAIN 1
int ts__tls_handshake(struct ts__tls *tls);

/*
 * Decrypted bytes: returns how many were stored in buf (> 0), 0 when none
 * are available yet, TS__TLS_EOF after the peer's close_notify, or TS_E_IO
 * on error.
 */
#define TS__TLS_EOF (-100)
ssize_t ts__tls_read(struct ts__tls *tls, void *buf, size_t len);

/* Encrypt and send.  0 or TS_E_IO. */
int ts__tls_write(struct ts__tls *tls, const void *data, size_t len);

/* Send close_notify (best effort). */
void ts__tls_bye(struct ts__tls *tls);

/* Last error, e.g. "certificate hostname mismatch: expected x"; or "". */
const char *ts__tls_error(const struct ts__tls *tls);

/* Session details once the handshake is done; strings live with tls. */
int ts__tls_info(const struct ts__tls *tls, struct ts_tls_info *info_r);
int ts__tls_channel_binding(const struct ts__tls *tls, const char *type,
			    uint8_t *buf, size_t *len_r);

#endif
