/*
 * kernel/net.h — listeners and connections, kernel side.
 *
 * listener.c binds the `[listener NAME]` sections and accepts; conn.c owns
 * each accepted connection (buffered line input, queued output, timers) and
 * drives its protocol service.  Modules see only tessera/conn.h.
 */
#ifndef TESSERA_NET_H
#define TESSERA_NET_H

#include "kernel/kernel.h"

/* Keys of a [listener NAME] section. */
extern const struct ts_cfg_key ts__listener_keys[];

/*
 * Validate the listener sections of cfg against the registered protocol
 * services and each other (addresses parse, address:port unique).  Errors
 * go to cfg.  Needs the modules' init to have run (services exist).
 */
int ts__listeners_check(struct ts_kernel *k, struct ts_cfg *cfg);

/*
 * Bind and listen on every listener of k->cfg.  On failure nothing stays
 * bound and *error_r (caller frees) names the listener and address.
 */
int ts__listeners_start(struct ts_kernel *k, char **error_r);
/* Stop accepting; close the listening sockets. */
void ts__listeners_stop(struct ts_kernel *k);

/* TLS on a listener. */
enum ts__tls_mode {
	TS__TLS_NONE,     /* plaintext only */
	TS__TLS_STARTTLS, /* plaintext, upgraded by ts_conn_starttls */
	TS__TLS_IMPLICIT, /* TLS from the first byte */
};

/* Settings a connection takes from its listener (or ts_conn_connect). */
struct ts__conn_limits {
	size_t max_line;
	uint64_t idle_timeout_ms;
	uint64_t session_timeout_ms; /* total lifetime; 0: none */
	size_t memory_budget;        /* buffered input + queued output */
	enum ts__tls_mode tls_mode;
	struct ts__tls_creds *creds; /* borrowed; the conn takes a ref */
	const char *tls_priority;    /* borrowed; the conn copies it */
};

/* Rebuild every listener's TLS credentials from k->cfg (SIGHUP). */
int ts__listeners_reload_tls(struct ts_kernel *k, char **error_r);

/*
 * Accept one pending connection from `server` into a new connection, which
 * runs the conn_open hooks and then its protocol.  Errors are logged; the
 * listener just goes on.
 */
void ts__conn_accept(struct ts_kernel *k, uv_stream_t *server,
		     const char *listener_name, const struct ts_protocol *proto,
		     struct ts_ctx *proto_ctx,
		     const struct ts__conn_limits *limits);

/* Ask every connection's protocol to finish (SIGTERM). */
void ts__conns_shutdown(struct ts_kernel *k);
/* Close every connection now, logging one line each with `reason`. */
void ts__conns_abort(struct ts_kernel *k, const char *reason);

#endif
