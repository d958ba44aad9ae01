/*
 * modules/transports/direct.h — what the files of the delivery engine
 * share: the session (one delivery: direct.c), the attempt (one
 * connection to one host: attempt.c), streaming the message (body.c),
 * AUTH for relays (auth.c), and connection reuse with the TLS policy per
 * host (reuse.c).  Module-internal; loop thread only unless a comment
 * says otherwise.
 */
#ifndef TRANSPORTS_DIRECT_H
#define TRANSPORTS_DIRECT_H

#include <tessera/sasl.h>

#include "client.h"
#include "pool.h"
#include "socks.h"
#include "transports.h"

/* Bytes read from the message file per work item. */
#define TR_CHUNK (64 * 1024)
/* Read more of the message while less than this waits to be sent. */
#define TR_LOW_WATER (256 * 1024)
/* How long a finished attempt waits for the reply to QUIT. */
#define TR_QUIT_WAIT_MS 10000


/* The queued message, shared by the session and reads in flight. */
struct tr_message {
	unsigned refs;
	int fd;
	char *prefix;
	size_t prefix_len;
};

struct tr_session;

/* One connection to one host. */
struct tr_attempt {
	struct tr_session *s; /* NULL once detached */
	struct ts_ctx *ctx;
	unsigned refs; /* the connection, a read in flight */
	struct ts_conn *conn; /* NULL once it closed or failed */
	struct tr_client *client;
	struct ts_timer *timer;
	char *helo_name;
	char *host; /* the host name (or address literal) */
	bool literal; /* host is a numeric address: no SNI, no name check */
	char **addrs; /* the addresses tried, for a retry without TLS */
	size_t addr_count;
	bool no_tls; /* this attempt does not try STARTTLS */
	/* what the TLS policy demands of this host (none: opportunistic) */
	enum ts_tls_verify verify;
	/* TLSA records, or NULL; points into the delivery's policy, so
	 * only until TLS is up (cleared when the connection is kept) */
	const struct ts_tls_policy_host *dane;
	char *tls_required_by; /* "the TLS policy (mta-sts)", or NULL */
	/* connection reuse (pool.h) */
	struct tr_dest *dest; /* the slot this connection holds, or NULL */
	bool parked; /* idle in the pool, no session */
	bool reused; /* taken from the pool for this session */
	unsigned txns; /* transactions started on this connection */
	bool tls_failed; /* STARTTLS was answered, the handshake failed */
	bool handshaking; /* between starting TLS and tls_ready */
	char *remote; /* "mx.example.org [192.0.2.1]" once connected */
	struct tr_message *msg; /* referenced while streaming */
	bool prefix_sent;
	bool reading; /* a read is in flight */
	uint64_t offset; /* of the next read in the file */
	bool ended; /* its results were taken */
	struct tr_client_auth auth; /* callbacks into sasl */
	struct ts_sasl_client *sasl; /* the AUTH exchange, or NULL */
	char *sasl_mech; /* the mechanism that authenticated, for logs */
	/* socks: the handshake with the proxy before SMTP */
	enum {
		TR_SOCKS_NONE,
		TR_SOCKS_METHOD,
		TR_SOCKS_HEAD,
		TR_SOCKS_REST,
		TR_SOCKS_DONE
	} socks;
	uint8_t socks_buf[TR_SOCKS5_REPLY_HEAD + 258];
	size_t socks_len;
};

/* One delivery. */
struct tr_session {
	struct ts_ctx *ctx;
	struct ts_delivery *d;
	/* the transport instance, copied (a reload may free it) */
	char *instance;
	enum tr_type type;
	unsigned port;
	bool relay; /* smtp, submission, submissions: one smarthost */
	bool implicit_tls; /* submissions */
	enum tr_tls_mode relay_tls; /* relay types: the TLS mode */
	bool tls_verify;
	char *tls_ca_file;
	char *username, *password, *mechanism;
	char *socks_host; /* socks: the proxy */
	unsigned socks_port;
	char *domain; /* A-labels */
	const struct ts_txn_rcpt **rcpts;
	size_t rcpt_count;
	bool requiretls;
	/* the recipient domain's TLS policy (outbound_tls_policy hooks);
	 * owned by the delivery; NULL for relays and until known */
	const struct ts_tls_policy *policy;

	struct tr_open_job *open_job; /* opening the message, or NULL */
	struct tr_message *msg; /* NULL until opened */
	bool open_failed;

	struct ts_dns_query *q_mx, *q_aaaa, *q_a;
	struct tr_hosts hosts;
	size_t next_host;
	/* addresses of the host being resolved, per family */
	char **addrs6, **addrs4;
	size_t count6, count4;
	enum tr_addr_status st6, st4;
	unsigned lookups; /* address lookups in flight */

	struct tr_attempt *att; /* the current attempt, or NULL */
	/* waiting for a connection slot (max_connections_per_host) */
	struct tr_dest_waiter waiter;
	struct tr_dest *waiting; /* NULL when not waiting */
	struct {
		char *host;
		bool literal, no_tls;
		char **addrs;
		size_t count;
	} pending; /* the attempt to start once woken */
	bool fresh_only; /* a kept connection failed: connect anew */
	/* what to say when every host failed */
	struct tr_result last;
	char *last_remote; /* the host that said it, or NULL */
	/* the end, when it waits for the message's open to finish */
	bool finishing;
	struct tr_result fin;
	char *fin_remote;
};


/* --- direct.c: the message and the session ----------------------------- */

/* Drop a reference to the message; sets *mp to NULL. */
void tr_message_unref(struct tr_message **mp);
/* End the delivery with one result for every open recipient. */
void tr_session_finish(struct tr_session *s, int code, const char *enhanced,
		       const char *text, const char *remote);
/* Remember a host-level failure for when no host is left. */
void tr_session_note_failure(struct tr_session *s, int code,
			     const char *enhanced, const char *text,
			     const char *remote);
/* Try the next MX host (or end the delivery when none is left). */
void tr_session_next_host(struct tr_session *s);

/* --- attempt.c: one connection ----------------------------------------- */

/* Connect to host (its addresses), or reuse a kept connection, or wait
 * for a slot (max_connections_per_host). */
void tr_attempt_start(struct tr_session *s, const char *host, bool literal,
		      char **addrs, size_t count, bool no_tls);
void tr_attempt_unref(struct tr_attempt *a);
/* Cut the attempt loose from its session (QUIT, park, or close). */
void tr_attempt_detach(struct tr_attempt *a);
/* The client is done: take its results into the session. */
void tr_attempt_end(struct tr_attempt *a);
/* (Re)arm the timer for what the client waits for now. */
void tr_attempt_arm(struct tr_attempt *a);
/* Send what the client produced and do what it wants next. */
void tr_attempt_pump(struct tr_attempt *a, enum tr_want w);

/* --- body.c: the message to the server ---------------------------------- */

/* Read the next piece of the message on the pool, with back-pressure. */
void tr_attempt_read(struct tr_attempt *a);

/* --- auth.c: AUTH through the kernel's SASL client ----------------------- */

int tr_auth_begin(void *arg, const char *offered, bool tls_on,
		  char **command_r, const char **why_r);
int tr_auth_step(void *arg, const char *challenge, char **response_r,
		 const char **why_r);
int tr_auth_success(void *arg, const char **why_r);

/* --- reuse.c: kept connections, limits, the TLS policy per host --------- */

/* What the domain's TLS policy demands of the attempt's host. */
void tr_attempt_policy(struct tr_attempt *a, const struct tr_session *s);
/* The pool key of connections from s to host (malloc'd). */
char *tr_dest_key_for(const struct tr_session *s, const char *host,
		      bool literal, bool no_tls);
/* The connection closed (or never opened): give its slot back. */
void tr_attempt_release_slot(struct tr_attempt *a);
/* The transaction is over: keep the connection, or QUIT. */
void tr_attempt_park(struct tr_attempt *a);
/* Give a kept connection to session s for its transaction. */
void tr_attempt_reuse(struct tr_session *s, struct tr_attempt *a);
/* A slot or a kept connection came free for a waiting session. */
void tr_session_wake(struct tr_dest_waiter *w);

#endif
