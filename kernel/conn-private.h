/*
 * kernel/conn-private.h — struct ts_conn and the functions its three files
 * share: conn.c (lifecycle, buffered input, output, lines and bytes),
 * conn-tls.c (TLS underneath a connection) and conn-connect.c (outbound
 * connections).
 */
#ifndef TESSERA_CONN_PRIVATE_H
#define TESSERA_CONN_PRIVATE_H

#include <arpa/inet.h>

#include "kernel/net.h"
#include "kernel/tls.h"

enum ts__conn_tls_state {
	TS__CONN_TLS_OFF,
	TS__CONN_TLS_HANDSHAKE,
	TS__CONN_TLS_UP,
};

struct ts__conn_slot {
	void *data;
	void (*destroy)(void *data);
};

struct ts_conn {
	struct ts_conn *prev, *next;
	struct ts_kernel *kernel;
	uint64_t id;
	char *listener; /* listener name, or the outbound label */
	const struct ts_protocol *proto;
	struct ts_ctx *proto_ctx;
	struct ts__conn_limits limits; /* creds/priority: our own copies */
	bool outbound;
	void *arg; /* ts_conn_connect's arg */

	uv_tcp_t tcp;
	uv_timer_t timer;      /* idle timeout, conn_open delay, connect */
	uv_timer_t life_timer; /* session_timeout */
	uv_shutdown_t shutdown_req;
	unsigned handles_open;
	bool tcp_live; /* tcp initialised (outbound: connected or trying) */

	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	unsigned remote_port, local_port;

	/* Plaintext input not yet delivered. */
	char *in;
	size_t in_len, in_cap;
	bool discarding;       /* dropping the rest of an overlong line */
	uint64_t bytes_wanted; /* ts_conn_read_bytes still to deliver */
	bool peer_eof;         /* the peer closed its side */
	bool line_bare_lf;     /* the last line delivered ended in LF only */
	/* until the first line: can the bytes so far start the protocol? */
	bool (*first_line_possible)(const char *buf, size_t len);

	/* TLS. */
	enum ts__conn_tls_state tls_state;
	struct ts__tls *tls;

	struct ts_hook_run *open_run;
	struct ts_hook_result *open_result; /* kept across the delay */
	bool opened;
	bool paused;
	bool reading;
	bool processing;
	bool closing;
	bool shutdown_done; /* our FIN is out; lingering for the peer's */
	bool freed_handles;
	bool above_low_water; /* output was high: call drained when low */
	char *close_reason;
	char *error;

	/* Outbound connecting state (conn-connect.c). */
	char **addresses;
	size_t address_count, address_next;
	unsigned port;
	uint64_t connect_timeout_ms;
	uv_connect_t connect_req;
	char *connect_errors;
	bool connecting;

	struct ts__conn_slot *slots;
	size_t slot_count;
};

/* Size of the kernel's shared read buffer (k->conn_read_buf). */
#define TS__CONN_READ_BUF 65536

/* A connection with its timers, linked into k->conns; tcp not set up. */
struct ts_conn *ts__conn_new(struct ts_kernel *k, const char *label,
			     const struct ts_protocol *proto,
			     struct ts_ctx *proto_ctx,
			     const struct ts__conn_limits *limits);
/* Fill remote/local addresses from the connected socket. */
void ts__conn_fill_addresses(struct ts_conn *conn);
/* Record why it failed (kept for ts_conn_error and the close log line). */
void ts__conn_set_error(struct ts_conn *conn, const char *fmt, ...)
	TS_PRINTF(2, 3);
/* Close now without draining output (peer gone, TLS failure). */
void ts__conn_abort(struct ts_conn *conn, const char *reason);
/* Plaintext arrived (from the socket or from TLS): buffer and process. */
void ts__conn_received(struct ts_conn *conn, const char *data, size_t len);
/* Write bytes to the socket as they are (ciphertext when TLS is on). */
int ts__conn_raw_write(struct ts_conn *conn, const void *data, size_t len);
/* Hand buffered lines/bytes to the protocol while it wants them. */
void ts__conn_process(struct ts_conn *conn);
/* Start or stop reading from the socket to match what we can take. */
void ts__conn_update_reading(struct ts_conn *conn);
/* Start reading and arm the timers of a connected socket. */
void ts__conn_begin_io(struct ts_conn *conn);
/* Call the protocol's open (implicit TLS: after the handshake). */
void ts__conn_open_protocol(struct ts_conn *conn);
/* Free what the connection owns once its handles are closed. */
void ts__conn_handle_closed(uv_handle_t *handle);

/* conn-tls.c */
/* Ciphertext from the socket: decrypt and pass plaintext on. */
void ts__conn_tls_received(struct ts_conn *conn, const char *data,
			   size_t len);
/* Start the server side handshake (implicit TLS or STARTTLS). */
int ts__conn_tls_start_server(struct ts_conn *conn);
/* Encrypt and send plaintext. */
int ts__conn_tls_write(struct ts_conn *conn, const void *data, size_t len);
/* Send close_notify and free the session. */
void ts__conn_tls_finish(struct ts_conn *conn);

#endif
