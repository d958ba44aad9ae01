/*
 * modules/transports/direct.c — the "direct" transport: deliver to the
 * recipient domain's own mail servers.
 *
 * A *session* serves one delivery (the kernel's struct ts_delivery): it
 * opens the queued message on the work pool, looks up the domain's MX
 * records, then tries the hosts in order (mx.c), each through its A and
 * AAAA addresses (ts_conn_connect tries the addresses of one host).
 * The same code serves every transport type (transports.c): a relay
 * (smtp, submission, submissions) has its smarthost as the only "MX"
 * host, its own port, required or implicit TLS and AUTH through the
 * kernel's SASL client; socks connects to the proxy instead and speaks
 * SOCKS5 (socks.c) before SMTP, to the host's first address.  An
 * *attempt* is one connection to one host, driven by the pure SMTP
 * client (client.c): this file only moves bytes between it and the
 * connection, streams the message to it from the work pool with
 * back-pressure, and runs its timers.  When an attempt fails at the host
 * level (no connection, refused greeting, TLS failure) the next host is
 * tried — after one more try on the same host without STARTTLS when an
 * opportunistic handshake failed; otherwise its per-recipient results end
 * the delivery.  An
 * attempt outlives its session when the session ends first (QUIT still
 * going out, a read in flight): it is then *detached* and frees itself.
 *
 * Per-host connection reuse and concurrency limits belong between
 * tr_session_next_host and tr_attempt_start: a session would borrow an
 * idle connection to the host (after RSET) or wait for a slot.  Today
 * one session delivers one delivery over connections of its own.
 *
 * Everything here runs on the event-loop thread, except the work
 * functions, which touch only their job.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <idn2.h>
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
	const struct ts_tls_policy_host *dane; /* TLSA records, or NULL */
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

static void tr_session_next_host(struct tr_session *s);
static void tr_attempt_park(struct tr_attempt *a);
static void tr_attempt_release_slot(struct tr_attempt *a);
static void tr_attempt_pump(struct tr_attempt *a, enum tr_want w);
static void tr_attempt_read(struct tr_attempt *a);
static void tr_session_try_end(struct tr_session *s);
static void tr_attempt_start(struct tr_session *s, const char *host,
			     bool literal, char **addrs, size_t count,
			     bool no_tls);

/* --- the message --------------------------------------------------------- */

static void
tr_message_unref(struct tr_message **mp)
{
	struct tr_message *m = *mp;
	*mp = NULL;
	if (m == NULL || --m->refs > 0)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->prefix);
	free(m);
}

/*
 * ts_delivery_open on the pool; the session may be gone when it ends.
 * The delivery is freed as soon as `cancel` returns, so the pool thread
 * must not call ts_delivery_open after that: `lock` makes "not
 * cancelled, so open" one step.  A cancel that races an open in progress
 * waits for that open (a file open; rare: only a cancel at that moment).
 */
struct tr_open_job {
	pthread_mutex_t lock;
	bool cancelled; /* under lock */
	struct tr_session *s; /* NULL when the session went away */
	struct ts_delivery *d;
	int rc;
	struct tr_message *msg;
};

static void
tr_open_work(void *arg)
{
	struct tr_open_job *job = arg;
	struct tr_message *m = job->msg;
	pthread_mutex_lock(&job->lock);
	if (job->cancelled)
		job->rc = TS_E_STATE;
	else
		job->rc = ts_delivery_open(job->d, &m->fd, &m->prefix,
					   &m->prefix_len);
	pthread_mutex_unlock(&job->lock);
}

/* The session lets go of the job: ts_delivery_open must not start. */
static void
tr_open_job_orphan(struct tr_open_job *job)
{
	pthread_mutex_lock(&job->lock);
	job->cancelled = true;
	job->s = NULL;
	job->d = NULL;
	pthread_mutex_unlock(&job->lock);
}

static void
tr_open_done(void *arg, int status)
{
	struct tr_open_job *job = arg;
	struct tr_session *s = job->s;
	if (status == 0 && job->rc == 0 && s != NULL) {
		s->msg = job->msg;
		job->msg = NULL;
	} else if (s != NULL) {
		s->open_failed = true;
		ts_log(s->ctx, TS_LOG_WARN,
		       "cannot open queued message id=%s: %s",
		       ts_delivery_id(s->d), ts_strerror(job->rc));
	}
	tr_message_unref(&job->msg);
	if (s != NULL)
		s->open_job = NULL;
	pthread_mutex_destroy(&job->lock);
	free(job);
	if (s != NULL && s->finishing) {
		tr_session_try_end(s);
		return;
	}
	if (s != NULL && s->att != NULL && s->att->client != NULL &&
	    tr_client_wants_body(s->att->client))
		tr_attempt_read(s->att);
}

/* --- attempts ------------------------------------------------------------ */

static void
tr_attempt_unref(struct tr_attempt *a)
{
	if (--a->refs > 0)
		return;
	ts_timer_free(&a->timer);
	tr_client_free(&a->client);
	ts_sasl_client_free(&a->sasl);
	free(a->sasl_mech);
	tr_message_unref(&a->msg);
	tr_addrs_free(&a->addrs, a->addr_count);
	free(a->helo_name);
	free(a->host);
	free(a->remote);
	free(a->tls_required_by);
	free(a);
}

/*
 * Cut the attempt loose from its session: it finishes its QUIT (or is
 * closed at once when it was not done) and frees itself.
 */
static void
tr_attempt_detach(struct tr_attempt *a)
{
	if (a->s != NULL && a->s->att == a)
		a->s->att = NULL;
	a->s = NULL;
	if (a->conn == NULL)
		return;
	if (a->client != NULL && tr_client_idle(a->client)) {
		tr_attempt_park(a);
		return;
	}
	if (a->client == NULL || !tr_client_done(a->client)) {
		ts_conn_close(a->conn, "cancelled");
	} else if (!ts_conn_closing(a->conn)) {
		ts_timer_start(a->timer, TR_QUIT_WAIT_MS, 0);
	}
}

static void
tr_session_free(struct tr_session *s)
{
	if (s->waiting != NULL)
		tr_dest_unwait(s->waiting, &s->waiter);
	s->waiting = NULL;
	free(s->pending.host);
	tr_addrs_free(&s->pending.addrs, s->pending.count);
	if (s->att != NULL)
		tr_attempt_detach(s->att);
	if (s->open_job != NULL)
		tr_open_job_orphan(s->open_job);
	ts_dns_cancel(&s->q_mx);
	ts_dns_cancel(&s->q_aaaa);
	ts_dns_cancel(&s->q_a);
	tr_message_unref(&s->msg);
	tr_hosts_free(&s->hosts);
	tr_addrs_free(&s->addrs6, s->count6);
	tr_addrs_free(&s->addrs4, s->count4);
	free(s->last.text);
	free(s->last_remote);
	free(s->fin.text);
	free(s->fin_remote);
	free(s->rcpts);
	free(s->domain);
	free(s->instance);
	free(s->tls_ca_file);
	free(s->username);
	if (s->password != NULL) {
		memset(s->password, 0, strlen(s->password));
		free(s->password);
	}
	free(s->mechanism);
	free(s->socks_host);
	free(s);
}

/*
 * The delivery's end once nothing runs on the pool with it: a pool
 * thread inside ts_delivery_open must not see it freed.
 */
static void
tr_session_try_end(struct tr_session *s)
{
	if (s->open_job != NULL)
		return; /* tr_open_done comes back here */
	const struct tr_result *f = &s->fin;
	ts_log(s->ctx, TS_LOG_INFO,
	       "delivery ended id=%s domain=%s code=%d status=%s remote=\"%s\" "
	       "text=\"%s\"",
	       ts_delivery_id(s->d), s->domain, f->code, f->enhanced,
	       s->fin_remote != NULL ? s->fin_remote : "", f->text);
	ts_delivery_set_data(s->d, NULL);
	ts_delivery_finish(s->d, f->code, f->enhanced, f->text, s->fin_remote);
	tr_session_free(s);
}

/*
 * End the delivery with one result for every recipient without one
 * (strings copied).  Stops everything the session still does; the
 * session is gone afterwards, or as soon as the message's open ends.
 */
static void
tr_session_finish(struct tr_session *s, int code, const char *enhanced,
		  const char *text, const char *remote)
{
	s->finishing = true;
	s->fin.code = code;
	snprintf(s->fin.enhanced, sizeof(s->fin.enhanced), "%s", enhanced);
	s->fin.text = ts_xstrdup(text);
	s->fin_remote = remote != NULL ? ts_xstrdup(remote) : NULL;
	if (s->att != NULL)
		tr_attempt_detach(s->att);
	ts_dns_cancel(&s->q_mx);
	ts_dns_cancel(&s->q_aaaa);
	ts_dns_cancel(&s->q_a);
	tr_session_try_end(s);
}

/* Remember a host-level failure for when no host is left. */
static void
tr_session_note_failure(struct tr_session *s, int code, const char *enhanced,
			const char *text, const char *remote)
{
	/* A temporary failure anywhere beats a permanent one elsewhere:
	 * another attempt may still reach that host. */
	if (s->last.code / 100 == 4 && code / 100 == 5)
		return;
	free(s->last.text);
	s->last.code = code;
	snprintf(s->last.enhanced, sizeof(s->last.enhanced), "%s", enhanced);
	s->last.text = ts_xstrdup(text);
	free(s->last_remote);
	s->last_remote = remote != NULL ? ts_xstrdup(remote) : NULL;
}

/* The attempt's client is done: take its results. */
static void
tr_attempt_end(struct tr_attempt *a)
{
	struct tr_session *s = a->s;
	a->ended = true;
	if (s == NULL)
		return;
	struct tr_client *c = a->client;
	/* What the recipient domain's own servers offer (not a relay's). */
	if (tr_client_saw_ehlo(c) && !s->relay)
		ts_delivery_note_tls(s->d, a->host, tr_client_saw_starttls(c),
				     tr_client_saw_requiretls(c));
	if (tr_client_host_failed(c) && a->reused) {
		/*
		 * A kept connection that turned out dead (closed, RSET
		 * refused) is no fault of the host: connect anew.
		 */
		ts_log(s->ctx, TS_LOG_INFO,
		       "kept connection failed, connecting anew id=%s host=%s",
		       ts_delivery_id(s->d), a->host);
		tr_attempt_detach(a);
		s->fresh_only = true;
		tr_attempt_start(s, a->host, a->literal, a->addrs,
				 a->addr_count, a->no_tls);
		return;
	}
	if (tr_client_host_failed(c) && a->tls_failed && !a->no_tls &&
	    !s->requiretls && a->tls_required_by == NULL &&
	    (!s->relay || s->relay_tls == TR_TLS_OPPORTUNISTIC)) {
		/*
		 * Opportunistic TLS that fails must not stop the mail (RFC
		 * 7435): once more, without STARTTLS — unless a TLS policy
		 * (DANE, MTA-STS: the outbound_tls_policy hook) or
		 * REQUIRETLS asks for TLS.
		 */
		ts_log(s->ctx, TS_LOG_INFO,
		       "tls failed, retrying without it id=%s host=%s",
		       ts_delivery_id(s->d), a->host);
		tr_attempt_detach(a);
		tr_attempt_start(s, a->host, a->literal, a->addrs,
				 a->addr_count, true);
		return;
	}
	if (tr_client_host_failed(c)) {
		const struct tr_result *r = tr_client_result(c, 0);
		/* Name the host: as `remote` when it answered, else in the
		 * text (our own reasons, connection failures). */
		char *text = r->remote ? ts_xstrdup(r->text)
				       : ts_xasprintf("%s: %s",
						      a->remote ? a->remote
								: a->host,
						      r->text);
		ts_log(s->ctx, TS_LOG_INFO,
		       "host failed id=%s host=%s code=%d text=\"%s\"",
		       ts_delivery_id(s->d), a->host, r->code, r->text);
		tr_session_note_failure(s, r->code, r->enhanced, text,
					r->remote ? a->remote : NULL);
		free(text);
		tr_attempt_detach(a);
		tr_session_next_host(s);
		return;
	}
	for (size_t i = 0; i < s->rcpt_count; i++) {
		const struct tr_result *r = tr_client_result(c, i);
		ts_delivery_rcpt_result(s->d, i, r->code, r->enhanced, r->text,
					r->remote ? a->remote : NULL);
	}
	const struct tr_result *r0 = tr_client_result(c, 0);
	tr_session_finish(s, r0->code, r0->enhanced, r0->text,
			  r0->remote ? a->remote : NULL);
}

/* (Re)arm the timer for what the client waits for now. */
static void
tr_attempt_arm(struct tr_attempt *a)
{
	const struct tr_settings *set = tr_settings(a->ctx);
	uint64_t ms = tr_client_timeout_kind(a->client) == TR_TIMEOUT_FINAL
			      ? set->data_timeout_ms
			      : set->command_timeout_ms;
	if (a->ended)
		ms = TR_QUIT_WAIT_MS;
	ts_timer_start(a->timer, ms, 0);
}

/* Send what the client produced and do what it wants next. */
static void
tr_attempt_pump(struct tr_attempt *a, enum tr_want w)
{
	size_t len;
	const char *out = tr_client_output(a->client, &len);
	if (len > 0 && a->conn != NULL && !ts_conn_closing(a->conn)) {
		if (ts_log_enabled(a->ctx, TS_LOG_TRACE) && w != TR_WANT_BODY)
			ts_conn_log(a->conn, a->ctx, TS_LOG_TRACE,
				    "smtp client sends \"%.*s\"",
				    (int)(len > 200 ? 200 : len), out);
		if (ts_conn_write(a->conn, out, len) != 0)
			tr_client_fail(a->client, 451, "4.4.2",
				       "cannot send to the server "
				       "(connection closing or output budget "
				       "exceeded)",
				       true);
	}
	tr_client_output_clear(a->client);
	if (tr_client_done(a->client) && !a->ended) {
		tr_attempt_end(a);
		/* a->s may be gone now; a itself lives on its refs */
	}
	if (a->conn == NULL)
		return;
	switch (w) {
	case TR_WANT_STARTTLS: {
		struct tr_session *s = a->s;
		const struct tr_settings *set = tr_settings(a->ctx);
		/* Opportunistic: encrypt, check nothing, send SNI.  The
		 * domain's TLS policy may ask for PKIX or DANE (a->verify);
		 * REQUIRETLS (RFC 8689 4.2.1): PKIX against the MX host
		 * name, or DANE where the policy has TLSA records. */
		struct ts_tls_client_opts opts = {
			.verify = a->verify,
			.ca_file = set->tls_ca_file,
		};
		if (s != NULL && s->requiretls &&
		    opts.verify == TS_TLS_VERIFY_NONE)
			opts.verify = TS_TLS_VERIFY_PKIX;
		if (opts.verify == TS_TLS_VERIFY_DANE && a->dane != NULL) {
			opts.tlsa = a->dane->tlsa;
			opts.tlsa_count = a->dane->tlsa_count;
		}
		/* A relay with tls_verify: PKIX against its host name. */
		if (s != NULL && s->relay && s->tls_verify &&
		    s->relay_tls != TR_TLS_OPPORTUNISTIC)
			opts.verify = TS_TLS_VERIFY_PKIX;
		if (s != NULL && s->relay && s->tls_ca_file != NULL)
			opts.ca_file = s->tls_ca_file;
		/* No SNI for an address literal (RFC 6066 3), but PKIX
		 * still needs the address to check. */
		if (!a->literal || opts.verify == TS_TLS_VERIFY_PKIX)
			opts.server_name = a->host;
		if (ts_conn_starttls_client(a->conn, &opts) != 0) {
			a->tls_failed = true;
			tr_client_fail(a->client, 451, "4.7.5",
				       "cannot start TLS", true);
			if (!a->ended)
				tr_attempt_end(a);
			if (a->conn != NULL)
				ts_conn_close(a->conn, "starttls failed");
			return;
		}
		a->handshaking = true;
		break;
	}
	case TR_WANT_BODY:
		tr_attempt_read(a);
		break;
	case TR_WANT_CLOSE:
		ts_conn_close(a->conn, "done");
		return;
	case TR_WANT_IDLE:
		/* parked (or quitting) by tr_attempt_detach already */
		return;
	case TR_WANT_REPLY:
		break;
	}
	tr_attempt_arm(a);
}

/* --- streaming the message ---------------------------------------------- */

struct tr_read_job {
	struct tr_attempt *a;
	struct tr_message *msg;
	uint64_t offset;
	char buf[TR_CHUNK];
	ssize_t got;
	int err;
};

static void
tr_read_work(void *arg)
{
	struct tr_read_job *job = arg;
	do {
		job->got = pread(job->msg->fd, job->buf, sizeof(job->buf),
				 (off_t)job->offset);
	} while (job->got < 0 && errno == EINTR);
	job->err = job->got < 0 ? errno : 0;
}

static void
tr_read_done(void *arg, int status)
{
	struct tr_read_job *job = arg;
	struct tr_attempt *a = job->a;
	a->reading = false;
	bool live = a->s != NULL && a->conn != NULL && !a->ended &&
		    tr_client_wants_body(a->client);
	if (live) {
		enum tr_want w;
		if (status != 0 || job->got < 0) {
			char *t =
				ts_xasprintf("cannot read the queued "
					     "message: %s",
					     status != 0 ? ts_strerror(status)
							 : strerror(job->err));
			tr_client_fail(a->client, 451, "4.3.0", t, false);
			free(t);
			w = TR_WANT_CLOSE;
		} else if (job->got == 0) {
			w = tr_client_body_end(a->client);
		} else {
			a->offset += (uint64_t)job->got;
			w = tr_client_body(a->client, job->buf,
					   (size_t)job->got);
		}
		tr_attempt_pump(a, w);
	}
	tr_message_unref(&job->msg);
	free(job);
	tr_attempt_unref(a);
}

/*
 * Feed the client more of the message if it wants some, the message is
 * open, nothing is being read and the connection's output is low.
 */
static void
tr_attempt_read(struct tr_attempt *a)
{
	struct tr_session *s = a->s;
	if (s == NULL || a->reading || a->conn == NULL || a->ended ||
	    !tr_client_wants_body(a->client))
		return;
	if (s->open_failed) {
		tr_client_fail(a->client, 451, "4.3.0",
			       "cannot open the queued message", false);
		tr_attempt_pump(a, TR_WANT_CLOSE);
		return;
	}
	if (s->msg == NULL)
		return; /* tr_open_done calls again */
	if (a->msg == NULL) {
		a->msg = s->msg;
		a->msg->refs++;
	}
	if (!a->prefix_sent) {
		a->prefix_sent = true;
		if (a->msg->prefix_len > 0) {
			enum tr_want w = tr_client_body(
				a->client, a->msg->prefix, a->msg->prefix_len);
			tr_attempt_pump(a, w);
			return; /* pump calls back here for the file */
		}
	}
	if (ts_conn_output_pending(a->conn) >= TR_LOW_WATER)
		return; /* drained calls again */
	struct tr_read_job *job = ts_xmalloc(sizeof(*job));
	job->a = a;
	job->msg = a->msg;
	job->msg->refs++;
	job->offset = a->offset;
	job->got = 0;
	job->err = 0;
	a->refs++;
	a->reading = true;
	if (ts_work_submit(a->ctx, tr_read_work, tr_read_done, job) != 0) {
		a->reading = false;
		tr_message_unref(&job->msg);
		free(job);
		a->refs--;
		tr_client_fail(a->client, 451, "4.3.0",
			       "tessera is shutting down", false);
		tr_attempt_pump(a, TR_WANT_CLOSE);
	}
}

/* --- the connection's callbacks ------------------------------------------ */

/* The SOCKS5 handshake failed: this host failed (our own reason). */
static void
tr_attempt_socks_fail(struct tr_attempt *a, const char *why)
{
	if (a->s != NULL)
		ts_log(a->ctx, TS_LOG_INFO, "socks failed id=%s host=%s %s",
		       ts_delivery_id(a->s->d), a->host, why);
	tr_client_fail(a->client, 451, "4.4.1", why, false);
	if (a->conn != NULL)
		ts_conn_close(a->conn, "socks failed");
}

/* The proxy's answers, read with ts_conn_read_bytes. */
static void
tr_conn_data(struct ts_conn *conn, const char *data, size_t len, bool last)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (a->socks_len + len > sizeof(a->socks_buf)) {
		tr_attempt_socks_fail(a, "malformed SOCKS5 reply");
		return;
	}
	memcpy(a->socks_buf + a->socks_len, data, len);
	a->socks_len += len;
	if (!last || a->ended || a->s == NULL)
		return;
	const char *why = NULL;
	size_t n = a->socks_len;
	a->socks_len = 0;
	switch (a->socks) {
	case TR_SOCKS_METHOD: {
		uint8_t req[TR_SOCKS5_REQUEST_MAX];
		size_t rlen;
		if (tr_socks5_method_reply(a->socks_buf, n, &why) != 0)
			break;
		if (tr_socks5_connect_request(a->addrs[0], a->s->port, req,
					      &rlen) != 0) {
			why = "SOCKS5: not a numeric address";
			break;
		}
		if (ts_conn_write(conn, req, rlen) != 0 ||
		    ts_conn_read_bytes(conn, TR_SOCKS5_REPLY_HEAD) != 0) {
			why = "cannot talk to the SOCKS5 proxy";
			break;
		}
		a->socks = TR_SOCKS_HEAD;
		return;
	}
	case TR_SOCKS_HEAD: {
		size_t rest;
		if (tr_socks5_reply(a->socks_buf, n, &rest, &why) != 0)
			break;
		if (ts_conn_read_bytes(conn, rest) != 0) {
			why = "cannot talk to the SOCKS5 proxy";
			break;
		}
		a->socks = TR_SOCKS_REST;
		return;
	}
	case TR_SOCKS_REST:
		/* Connected through the proxy: the greeting comes next. */
		a->socks = TR_SOCKS_DONE;
		ts_conn_log(conn, a->ctx, TS_LOG_INFO,
			    "connected through socks5 id=%s host=%s addr=%s",
			    ts_delivery_id(a->s->d), a->host, a->addrs[0]);
		tr_attempt_arm(a);
		return;
	default:
		why = "unexpected bytes from the SOCKS5 proxy";
		break;
	}
	tr_attempt_socks_fail(a, why);
}

static void
tr_conn_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	(void)res;
	struct tr_attempt *a = ts_conn_arg(conn);
	free(a->remote);
	if (a->socks != TR_SOCKS_NONE) {
		a->remote = ts_xasprintf("%s [%s] via socks5 %s", a->host,
					 a->addrs[0], ts_conn_remote_ip(conn));
		uint8_t g[3];
		size_t n = tr_socks5_greeting(g);
		if (ts_conn_write(conn, g, n) != 0 ||
		    ts_conn_read_bytes(conn, 2) != 0) {
			tr_attempt_socks_fail(a, "cannot talk to the SOCKS5 "
						 "proxy");
			return;
		}
		tr_attempt_arm(a);
		return;
	}
	a->remote = ts_xasprintf("%s [%s]", a->host, ts_conn_remote_ip(conn));
	if (a->s != NULL)
		ts_conn_log(conn, a->ctx, TS_LOG_INFO,
			    "connected id=%s host=%s", ts_delivery_id(a->s->d),
			    a->host);
	if (a->s != NULL && a->s->implicit_tls) {
		/* submissions (RFC 8314): TLS before the greeting. */
		struct tr_session *s = a->s;
		struct ts_tls_client_opts opts = {
			.verify = s->tls_verify ? TS_TLS_VERIFY_PKIX
						: TS_TLS_VERIFY_NONE,
			.ca_file = s->tls_ca_file != NULL
					   ? s->tls_ca_file
					   : tr_settings(a->ctx)->tls_ca_file,
			.server_name =
				a->literal && !s->tls_verify ? NULL : a->host,
		};
		if (ts_conn_starttls_client(conn, &opts) != 0) {
			tr_client_fail(a->client, 451, "4.7.5",
				       "cannot start TLS", false);
			ts_conn_close(conn, "tls failed");
			return;
		}
		a->handshaking = true;
	}
	tr_attempt_arm(a);
}

static void
tr_conn_line(struct ts_conn *conn, const char *line, size_t len)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (ts_log_enabled(a->ctx, TS_LOG_TRACE))
		ts_conn_log(conn, a->ctx, TS_LOG_TRACE,
			    "smtp client got \"%.*s\"",
			    (int)(len > 200 ? 200 : len), line);
	if (a->parked) {
		/* e.g. 421 idle timeout: the kept connection is done */
		tr_attempt_release_slot(a);
		ts_conn_close(conn, "server spoke while idle");
		return;
	}
	tr_attempt_pump(a, tr_client_line(a->client, line, len));
}

static void
tr_conn_line_too_long(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	tr_attempt_pump(a, tr_client_line_too_long(a->client));
}

static void
tr_conn_tls_ready(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->handshaking = false;
	if (a->s != NULL && a->s->implicit_tls) {
		tr_attempt_arm(a); /* now the greeting */
		return;
	}
	tr_attempt_pump(a, tr_client_tls_ready(a->client));
}

/* --- AUTH: the SASL client behind the client machine's callbacks ------- */

static int
tr_auth_begin(void *arg, const char *offered, bool tls_on, char **command_r,
	      const char **why_r)
{
	struct tr_attempt *a = arg;
	struct tr_session *s = a->s;
	if (s == NULL || a->conn == NULL) {
		*why_r = "delivery cancelled";
		return TS_E_STATE;
	}
	uint8_t cb[128];
	size_t cb_len = sizeof(cb);
	const char *cb_type = "tls-exporter";
	if (ts_conn_tls_channel_binding(a->conn, cb_type, cb, &cb_len) != 0) {
		cb_type = "tls-unique";
		cb_len = sizeof(cb);
		if (ts_conn_tls_channel_binding(a->conn, cb_type, cb,
						&cb_len) != 0)
			cb_type = NULL;
	}
	const char *mech = s->mechanism;
	if (mech == NULL)
		mech = ts_sasl_client_choose(offered, tls_on, cb_type != NULL,
					     false);
	if (mech == NULL) {
		*why_r = offered[0] == '\0'
				 ? "the relay offers no AUTH"
				 : "no usable mechanism among those the "
				   "relay offers";
		return TS_E_INVAL;
	}
	/* Binding data for a plain SCRAM only when -PLUS was not offered
	 * (else our "y" reads as a downgrade). */
	bool plus = strstr(mech, "-PLUS") != NULL;
	char *plus_name = ts_xasprintf("%s-PLUS", mech);
	bool offered_plus = !plus && strncmp(mech, "SCRAM", 5) == 0 &&
			    strcasestr(offered, plus_name) != NULL;
	free(plus_name);
	struct ts_sasl_client_opts o = {
		.mechanism = mech,
		.username = s->username,
		.password = s->password,
		.tls_active = tls_on,
		.cb_type = offered_plus ? NULL : cb_type,
		.cb_data = cb,
		.cb_len = cb_len,
	};
	ts_sasl_client_free(&a->sasl);
	a->sasl = ts_sasl_client_new(&o, why_r);
	if (a->sasl == NULL)
		return TS_E_INVAL;
	uint8_t *resp;
	size_t len;
	if (ts_sasl_client_step(a->sasl, NULL, 0, &resp, &len) != 0) {
		*why_r = ts_sasl_client_error(a->sasl);
		return TS_E_INVAL;
	}
	if (resp == NULL) {
		*command_r = ts_xasprintf("AUTH %s", mech);
	} else {
		char *b64 =
			len > 0 ? ts_base64_encode(resp, len) : ts_xstrdup("=");
		*command_r = ts_xasprintf("AUTH %s %s", mech, b64);
		memset(b64, 0, strlen(b64));
		free(b64);
		memset(resp, 0, len);
		free(resp);
	}
	free(a->sasl_mech);
	a->sasl_mech = ts_xstrdup(mech);
	return 0;
}

static int
tr_auth_step(void *arg, const char *challenge, char **response_r,
	     const char **why_r)
{
	struct tr_attempt *a = arg;
	uint8_t *data, *resp;
	size_t len, rlen;
	if (ts_base64_decode(challenge, &data, &len) != 0) {
		*why_r = "challenge is not base64";
		return TS_E_INVAL;
	}
	int rc = ts_sasl_client_step(a->sasl, data, len, &resp, &rlen);
	free(data);
	if (rc != 0) {
		*why_r = ts_sasl_client_error(a->sasl);
		return rc;
	}
	*response_r = ts_base64_encode(resp, rlen);
	memset(resp, 0, rlen);
	free(resp);
	return 0;
}

static int
tr_auth_success(void *arg, const char **why_r)
{
	struct tr_attempt *a = arg;
	if (a->sasl == NULL || !ts_sasl_client_complete(a->sasl)) {
		*why_r = "exchange incomplete";
		return TS_E_STATE;
	}
	if (a->s != NULL && a->conn != NULL)
		ts_conn_log(a->conn, a->ctx, TS_LOG_INFO,
			    "authenticated to relay id=%s mechanism=%s user=%s",
			    ts_delivery_id(a->s->d), a->sasl_mech,
			    a->s->username);
	ts_sasl_client_free(&a->sasl);
	return 0;
}

static void
tr_conn_drained(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	if (!a->ended)
		tr_attempt_arm(a); /* progress: the data block timer */
	tr_attempt_read(a);
}

static void
tr_conn_close(struct ts_conn *conn)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->conn = NULL;
	ts_timer_stop(a->timer);
	/* Before the session learns of it: a delivery waiting for a
	 * slot may take this one (it connects anew). */
	tr_attempt_release_slot(a);
	if (!a->ended && !tr_client_done(a->client)) {
		const char *why = ts_conn_error(conn);
		char *t =
			ts_xasprintf("connection to %s closed: %s",
				     a->remote ? a->remote : a->host,
				     why != NULL      ? why
				     : a->handshaking ? "closed during the "
							"TLS handshake"
						      : "closed by the server");
		/* A TLS failure is about this host: try the next one (or
		 * this one without TLS). */
		a->tls_failed = a->handshaking ||
				(why != NULL && strncmp(why, "tls", 3) == 0);
		tr_client_fail(a->client, 451,
			       a->tls_failed ? "4.7.5" : "4.4.2", t, true);
		free(t);
	}
	if (!a->ended)
		tr_attempt_end(a);
	tr_attempt_unref(a);
}

static void
tr_conn_connect_failed(struct ts_conn *conn, const char *error)
{
	struct tr_attempt *a = ts_conn_arg(conn);
	a->conn = NULL;
	ts_timer_stop(a->timer);
	/* Before the session learns of it: a delivery waiting for a
	 * slot may take this one (it connects anew). */
	tr_attempt_release_slot(a);
	if (!a->ended) {
		/* error names the addresses; tr_attempt_end adds the host */
		tr_client_fail(a->client, 451, "4.4.1", error, false);
		tr_attempt_end(a);
	}
	tr_attempt_unref(a);
}

static const struct ts_protocol tr_smtp_client_protocol = {
	.open = tr_conn_open,
	.line = tr_conn_line,
	.data = tr_conn_data,
	.line_too_long = tr_conn_line_too_long,
	.close = tr_conn_close,
	.tls_ready = tr_conn_tls_ready,
	.drained = tr_conn_drained,
	.connect_failed = tr_conn_connect_failed,
};

static void
tr_attempt_timeout(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct tr_attempt *a = arg;
	if (a->conn == NULL)
		return;
	if (a->parked) {
		/* idle_timeout: nobody came for the kept connection */
		if (a->dest != NULL)
			tr_dest_unpark(a->dest, a);
		a->parked = false;
		tr_attempt_pump(a, tr_client_quit(a->client));
		return;
	}
	if (a->ended) {
		ts_conn_close(a->conn, "quit timeout");
		return;
	}
	tr_client_timeout(a->client);
	tr_attempt_pump(a, TR_WANT_CLOSE);
}

/* The TLSA records the policy has for host, or NULL. */
static const struct ts_tls_policy_host *
tr_policy_dane_host(const struct ts_tls_policy *pol, const char *host)
{
	for (size_t i = 0; pol != NULL && i < pol->host_count; i++)
		if (pol->hosts[i].tlsa_count > 0 &&
		    strcasecmp(pol->hosts[i].name, host) == 0)
			return &pol->hosts[i];
	return NULL;
}

/* What the domain's TLS policy demands of the attempt's host. */
static void
tr_attempt_policy(struct tr_attempt *a, const struct tr_session *s)
{
	const struct ts_tls_policy *pol = s->policy;
	a->verify = TS_TLS_VERIFY_NONE;
	if (pol == NULL)
		return; /* a relay, or no policy */
	const char *src = pol->source != NULL ? pol->source : "a hook";
	a->dane = a->literal ? NULL : tr_policy_dane_host(pol, a->host);
	if (a->dane != NULL) {
		a->verify = TS_TLS_VERIFY_DANE;
		a->tls_required_by =
			ts_xasprintf("the TLS policy (%s, DANE)", src);
	} else if (pol->mode == TS_TLS_POLICY_REQUIRE_PKIX) {
		a->verify = TS_TLS_VERIFY_PKIX;
		a->tls_required_by = ts_xasprintf("the TLS policy (%s)", src);
	}
}

/* --- connection reuse and per-destination limits (pool.h) --------------- */

/*
 * What makes two connections interchangeable: the transport instance,
 * where it goes, and every TLS requirement the delivery puts on it.
 */
static char *
tr_dest_key_for(const struct tr_session *s, const char *host, bool literal,
		bool no_tls)
{
	const struct ts_tls_policy *pol = s->policy;
	const char *verify = "none";
	if (pol != NULL && !literal && tr_policy_dane_host(pol, host) != NULL)
		verify = "dane";
	else if (pol != NULL && pol->mode == TS_TLS_POLICY_REQUIRE_PKIX)
		verify = "pkix";
	return ts_xasprintf("%s|%s|%u|%s|%s%s|%s", s->instance, host, s->port,
			    verify, s->requiretls ? "requiretls" : "-",
			    no_tls ? "|clear" : "",
			    s->socks_host != NULL ? s->socks_host : "-");
}

/* The connection closed (or never opened): its slot is free again. */
static void
tr_attempt_release_slot(struct tr_attempt *a)
{
	struct tr_dest *d = a->dest;
	if (d == NULL)
		return;
	a->dest = NULL;
	if (a->parked)
		tr_dest_unpark(d, a);
	a->parked = false;
	tr_dest_release_slot(d); /* may start a waiting delivery */
}

/*
 * The transaction is over and the connection healthy: keep it for the
 * next delivery to the same destination, or QUIT when reuse is off or
 * the connection has served max_messages_per_connection.
 */
static void
tr_attempt_park(struct tr_attempt *a)
{
	const struct tr_settings *set = tr_settings(a->ctx);
	if (a->dest == NULL || set->idle_timeout_ms == 0 ||
	    a->txns >= set->max_per_conn || ts_conn_closing(a->conn)) {
		tr_attempt_pump(a, tr_client_quit(a->client));
		return;
	}
	a->parked = true;
	ts_timer_start(a->timer, set->idle_timeout_ms, 0);
	ts_conn_log(a->conn, a->ctx, TS_LOG_DEBUG,
		    "connection kept host=%s transactions=%u", a->host,
		    a->txns);
	tr_dest_park(a->dest, a); /* may hand it to a waiting delivery */
}

/* Give a kept connection to session s: the next transaction on it. */
static void
tr_attempt_reuse(struct tr_session *s, struct tr_attempt *a)
{
	a->parked = false;
	a->s = s;
	a->reused = true;
	a->ended = false;
	a->tls_failed = false;
	a->prefix_sent = false;
	a->offset = 0;
	a->txns++;
	tr_message_unref(&a->msg);
	ts_timer_stop(a->timer);
	s->att = a;
	ts_conn_log(a->conn, a->ctx, TS_LOG_INFO,
		    "connection reused id=%s host=%s transaction=%u",
		    ts_delivery_id(s->d), a->host, a->txns);
	struct tr_client_params p = {
		.mail = ts_delivery_mail(s->d),
		.rcpts = s->rcpts,
		.rcpt_count = s->rcpt_count,
		.size = ts_delivery_size(s->d),
	};
	tr_attempt_pump(a, tr_client_reuse(a->client, &p));
}

/* A slot or a kept connection came free for the waiting session. */
static void
tr_session_wake(struct tr_dest_waiter *w)
{
	struct tr_session *s = (struct tr_session *)((char *)w -
						      offsetof(struct tr_session,
							       waiter));
	s->waiting = NULL;
	char *host = s->pending.host;
	char **addrs = s->pending.addrs;
	size_t count = s->pending.count;
	s->pending.host = NULL;
	s->pending.addrs = NULL;
	s->pending.count = 0;
	tr_attempt_start(s, host, s->pending.literal, addrs, count,
			 s->pending.no_tls);
	free(host);
	tr_addrs_free(&addrs, count);
}

void
tr_direct_drop_parked(void *item)
{
	struct tr_attempt *a = item;
	/* The pool is going (shutdown): no slot to give back. */
	a->parked = false;
	a->dest = NULL;
	if (a->conn != NULL)
		ts_conn_close(a->conn, "shutting down");
}

/* Connect to one host through its addresses. */
static void
tr_attempt_start(struct tr_session *s, const char *host, bool literal,
		 char **addrs, size_t count, bool no_tls)
{
	const struct tr_settings *set = tr_settings(s->ctx);
	char *key = tr_dest_key_for(s, host, literal, no_tls);
	struct tr_dest *dest = tr_pool_dest(tr_module_pool(s->ctx), key);
	free(key);
	bool fresh = s->fresh_only;
	s->fresh_only = false;
	struct tr_attempt *kept = fresh ? NULL : tr_dest_take_parked(dest);
	if (kept != NULL) {
		tr_attempt_reuse(s, kept);
		return;
	}
	if (!tr_dest_take_slot(dest, set->max_per_host)) {
		/* max_connections_per_host: wait for a slot or a kept
		 * connection (the delivery's own timeouts still apply at
		 * the queue: a cancel takes it out of the line). */
		ts_log(s->ctx, TS_LOG_DEBUG,
		       "waiting for a connection slot id=%s host=%s open=%u",
		       ts_delivery_id(s->d), host, tr_dest_active(dest));
		s->pending.host = ts_xstrdup(host);
		s->pending.literal = literal;
		s->pending.no_tls = no_tls;
		s->pending.addrs = ts_xcalloc(count ? count : 1,
					      sizeof(*s->pending.addrs));
		for (size_t i = 0; i < count; i++)
			s->pending.addrs[i] = ts_xstrdup(addrs[i]);
		s->pending.count = count;
		s->waiter.wake = tr_session_wake;
		s->waiting = dest;
		tr_dest_wait(dest, &s->waiter);
		return;
	}
	struct tr_attempt *a = ts_xcalloc(1, sizeof(*a));
	a->s = s;
	a->ctx = s->ctx;
	a->refs = 1;
	a->dest = dest;
	a->txns = 1;
	a->helo_name = ts_xstrdup(set->helo_name);
	a->host = ts_xstrdup(host);
	a->literal = literal;
	a->no_tls = no_tls;
	a->addrs = ts_xcalloc(count, sizeof(*a->addrs));
	for (size_t i = 0; i < count; i++)
		a->addrs[i] = ts_xstrdup(addrs[i]);
	a->addr_count = count;
	a->timer = ts_timer_new(s->ctx, tr_attempt_timeout, a);
	tr_attempt_policy(a, s);
	struct tr_client_params p = {
		.helo_name = a->helo_name,
		.mail = ts_delivery_mail(s->d),
		.rcpts = s->rcpts,
		.rcpt_count = s->rcpt_count,
		.size = ts_delivery_size(s->d),
		.tls = s->requiretls		  ? TR_TLS_REQUIRETLS
		       : set->starttls && !no_tls ? TR_TLS_OPPORTUNISTIC
						  : TR_TLS_NEVER,
		.tls_active = s->implicit_tls,
		.keep_open = set->idle_timeout_ms > 0 && set->max_per_conn > 1,
	};
	if (s->relay && !s->requiretls)
		p.tls = no_tls ? TR_TLS_NEVER : s->relay_tls;
	if (a->tls_required_by != NULL && !s->requiretls) {
		p.tls = TR_TLS_REQUIRED;
		p.tls_required_by = a->tls_required_by;
	}
	if (s->username != NULL && s->password != NULL) {
		a->auth.begin = tr_auth_begin;
		a->auth.step = tr_auth_step;
		a->auth.success = tr_auth_success;
		a->auth.arg = a;
		p.auth = &a->auth;
	}
	a->client = tr_client_new(&p);
	s->att = a;
	struct ts_connect_opts opts = {
		.addresses = (const char *const *)addrs,
		.address_count = count,
		.port = s->port,
		.timeout_ms = set->connect_timeout_ms,
		/* the client judges overlong replies itself */
		.max_line = TR_REPLY_LINE_MAX + 2,
		/* our own timers fire first */
		.idle_timeout_ms =
			set->data_timeout_ms + set->command_timeout_ms + 60000,
		.name = host,
	};
	const char *proxy[1] = { s->socks_host };
	if (s->socks_host != NULL) {
		/* The proxy connects to the first address for us. */
		opts.addresses = proxy;
		opts.address_count = 1;
		opts.port = s->socks_port;
		a->socks = TR_SOCKS_METHOD;
	}
	a->conn = ts_conn_connect(s->ctx, &opts, &tr_smtp_client_protocol, a);
	if (a->conn == NULL) {
		tr_attempt_release_slot(a);
		char *t = ts_xasprintf("cannot connect to %s", host);
		tr_client_fail(a->client, 451, "4.4.1", t, false);
		free(t);
		a->refs++; /* tr_attempt_end may detach; keep a until here */
		tr_attempt_end(a);
		tr_attempt_unref(a);
		tr_attempt_unref(a);
	}
}

/* --- hosts and addresses ------------------------------------------------- */

static void
tr_session_addresses_done(struct tr_session *s)
{
	const struct tr_settings *set = tr_settings(s->ctx);
	struct tr_host *h = &s->hosts.hosts[s->next_host - 1];
	char **first =
		set->family == TR_FAMILY_IPV4_FIRST ? s->addrs4 : s->addrs6;
	char **second =
		set->family == TR_FAMILY_IPV4_FIRST ? s->addrs6 : s->addrs4;
	size_t n1 = set->family == TR_FAMILY_IPV4_FIRST ? s->count4 : s->count6;
	size_t n2 = set->family == TR_FAMILY_IPV4_FIRST ? s->count6 : s->count4;
	if (n1 + n2 == 0) {
		bool temp = s->st6 == TR_ADDR_TEMP || s->st4 == TR_ADDR_TEMP;
		char *t;
		if (temp) {
			t = ts_xasprintf("%s: temporary DNS failure looking "
					 "up its address",
					 h->name);
			tr_session_note_failure(s, 451, "4.4.3", t, NULL);
		} else if (s->hosts.implicit) {
			t = ts_xasprintf("domain %s has no MX and no address "
					 "records (RFC 5321 5.1)",
					 s->domain);
			tr_session_note_failure(s, 550, "5.4.4", t, NULL);
		} else {
			t = ts_xasprintf("MX host %s has no address records",
					 h->name);
			tr_session_note_failure(s, 451, "4.4.4", t, NULL);
		}
		free(t);
		tr_session_next_host(s);
		return;
	}
	char **all = ts_xcalloc(n1 + n2, sizeof(*all));
	if (n1 > 0)
		memcpy(all, first, n1 * sizeof(*all));
	if (n2 > 0)
		memcpy(all + n1, second, n2 * sizeof(*all));
	tr_attempt_start(s, h->name, false, all, n1 + n2, false);
	free(all);
}

static void
tr_session_address_answer(const struct ts_dns_answer *ans, void *arg)
{
	struct tr_session *s = arg;
	const char *why;
	if (ans->type == TS_DNS_AAAA) {
		s->q_aaaa = NULL;
		s->st6 = tr_addrs_from_answers(ans, NULL, TR_FAMILY_IPV6_ONLY,
					       &s->addrs6, &s->count6, &why);
	} else {
		s->q_a = NULL;
		s->st4 = tr_addrs_from_answers(NULL, ans, TR_FAMILY_IPV4_ONLY,
					       &s->addrs4, &s->count4, &why);
	}
	if (--s->lookups == 0)
		tr_session_addresses_done(s);
}

/* Try the next host, or end the delivery when none is left. */
/*
 * Whether the policy's MX patterns allow host: "mx.example.com" exactly,
 * "*.example.com" for one more label (RFC 8461 4.1); no patterns: any.
 */
static bool
tr_policy_allows(const struct ts_tls_policy *pol, const char *host)
{
	if (pol == NULL || pol->mx_pattern_count == 0)
		return true;
	for (size_t i = 0; i < pol->mx_pattern_count; i++) {
		const char *pat = pol->mx_patterns[i];
		if (strncmp(pat, "*.", 2) == 0) {
			const char *dot = strchr(host, '.');
			if (dot != NULL && dot != host &&
			    strcasecmp(dot + 1, pat + 2) == 0)
				return true;
		} else if (strcasecmp(pat, host) == 0) {
			return true;
		}
	}
	return false;
}

static void
tr_session_next_host(struct tr_session *s)
{
	if (s->next_host >= s->hosts.count) {
		if (s->last.code == 0)
			tr_session_note_failure(s, 451, "4.4.0",
						"no mail server could be "
						"reached",
						NULL);
		tr_session_finish(s, s->last.code, s->last.enhanced,
				  s->last.text, s->last_remote);
		return;
	}
	struct tr_host *h = &s->hosts.hosts[s->next_host++];
	if (!tr_policy_allows(s->policy, h->name)) {
		char *t = ts_xasprintf("MX host %s is not allowed by the TLS "
				       "policy (%s)",
				       h->name,
				       s->policy->source != NULL
					       ? s->policy->source
					       : "a hook");
		ts_log(s->ctx, TS_LOG_INFO, "host skipped id=%s host=%s: %s",
		       ts_delivery_id(s->d), h->name, t);
		tr_session_note_failure(s, 451, "4.7.5", t, NULL);
		free(t);
		tr_session_next_host(s);
		return;
	}
	tr_addrs_free(&s->addrs6, s->count6);
	tr_addrs_free(&s->addrs4, s->count4);
	s->count6 = s->count4 = 0;
	s->st6 = s->st4 = TR_ADDR_NONE;
	if (h->literal) {
		char *addr = h->name;
		tr_attempt_start(s, h->name, true, &addr, 1, false);
		return;
	}
	const struct tr_settings *set = tr_settings(s->ctx);
	s->lookups = 2; /* neither callback runs before both are asked */
	if (tr_family_wants(set->family, TS_DNS_AAAA))
		s->q_aaaa = ts_dns_lookup(s->ctx, h->name, TS_DNS_AAAA,
					  tr_session_address_answer, s);
	if (s->q_aaaa == NULL) {
		s->st6 = tr_family_wants(set->family, TS_DNS_AAAA)
				 ? TR_ADDR_TEMP
				 : TR_ADDR_NONE;
		s->lookups--;
	}
	if (tr_family_wants(set->family, TS_DNS_A))
		s->q_a = ts_dns_lookup(s->ctx, h->name, TS_DNS_A,
				       tr_session_address_answer, s);
	if (s->q_a == NULL) {
		s->st4 = tr_family_wants(set->family, TS_DNS_A) ? TR_ADDR_TEMP
								: TR_ADDR_NONE;
		s->lookups--;
	}
	if (s->lookups == 0)
		tr_session_addresses_done(s);
}

static uint32_t
tr_random(void *arg)
{
	(void)arg;
	return arc4random();
}

static void
tr_session_mx_answer(const struct ts_dns_answer *ans, void *arg)
{
	struct tr_session *s = arg;
	s->q_mx = NULL;
	struct tr_result fail = { 0 };
	if (tr_mx_hosts(s->domain, ans, tr_random, NULL, &s->hosts, &fail) !=
	    0) {
		tr_session_finish(s, fail.code, fail.enhanced, fail.text, NULL);
		free(fail.text);
		return;
	}
	tr_session_next_host(s);
}

/* --- the transport service ----------------------------------------------- */

/*
 * Copy what the session needs of its instance.  Returns false with
 * *why_r when the instance is unknown (a route names one a reload
 * removed) or its password could not be read.
 */
static bool
tr_session_configure(struct tr_session *s, const char *instance,
		     const char **why_r)
{
	*why_r = "unknown transport instance";
	const struct tr_settings *set = tr_settings(s->ctx);
	const struct tr_instance *in =
		tr_instance_find(set, instance != NULL ? instance : "direct");
	s->instance = ts_xstrdup(instance != NULL ? instance : "direct");
	s->port = set->direct_port;
	s->type = TR_TYPE_DIRECT;
	if (in == NULL)
		return false;
	s->type = in->type;
	s->relay = in->type == TR_TYPE_SMTP || in->type == TR_TYPE_SUBMISSION ||
		   in->type == TR_TYPE_SUBMISSIONS;
	if (in->type == TR_TYPE_SOCKS) {
		s->socks_host = ts_xstrdup(in->socks_host ? in->socks_host
							  : "127.0.0.1");
		s->socks_port = in->socks_port;
	}
	if (!s->relay)
		return true;
	s->port = in->port;
	s->implicit_tls = in->type == TR_TYPE_SUBMISSIONS;
	s->relay_tls = in->type == TR_TYPE_SUBMISSION ? TR_TLS_REQUIRED
		       : in->type == TR_TYPE_SUBMISSIONS
			       ? TR_TLS_NEVER /* already under TLS */
		       : in->starttls ? TR_TLS_OPPORTUNISTIC
				      : TR_TLS_NEVER;
	s->tls_verify = in->tls_verify;
	s->tls_ca_file = in->tls_ca_file ? ts_xstrdup(in->tls_ca_file) : NULL;
	s->username = in->username ? ts_xstrdup(in->username) : NULL;
	s->password = in->password ? ts_xstrdup(in->password) : NULL;
	if (s->username != NULL && s->password == NULL) {
		/* The file went away since the check: never send without
		 * the AUTH the configuration asks for. */
		*why_r = "cannot read the transport's password_file";
		return false;
	}
	s->mechanism = in->mechanism ? ts_xstrdup(in->mechanism) : NULL;
	/* The smarthost is the one "MX" host. */
	s->hosts.hosts = ts_xcalloc(1, sizeof(*s->hosts.hosts));
	s->hosts.count = 1;
	s->hosts.hosts[0].name = ts_xstrdup(in->host != NULL ? in->host : "");
	unsigned char buf[16];
	s->hosts.hosts[0].literal = inet_pton(AF_INET, in->host, buf) == 1 ||
				    inet_pton(AF_INET6, in->host, buf) == 1;
	return true;
}

static void tr_session_find_hosts(struct tr_session *s);

/* The outbound_tls_policy hooks are done (never after the session). */
static void
tr_session_policy_done(struct ts_delivery *d, const struct ts_hook_result *res,
		       void *arg)
{
	struct tr_session *s = arg;
	if (res->verdict == TS_VERDICT_REJECT ||
	    res->verdict == TS_VERDICT_TEMPFAIL) {
		bool perm = res->verdict == TS_VERDICT_REJECT;
		tr_session_finish(
			s, res->code != 0 ? res->code : perm ? 550 : 451,
			res->enhanced != NULL ? res->enhanced
			: perm		      ? "5.7.1"
					      : "4.7.5",
			res->text != NULL ? res->text
					  : "refused by the TLS policy",
			NULL);
		return;
	}
	s->policy = ts_delivery_tls_policy(d);
	if (s->policy->mode != TS_TLS_POLICY_OPPORTUNISTIC ||
	    s->policy->mx_pattern_count > 0 || s->policy->host_count > 0)
		ts_log(s->ctx, TS_LOG_INFO,
		       "tls policy id=%s domain=%s mode=%s mx_patterns=%zu "
		       "dane_hosts=%zu source=%s",
		       ts_delivery_id(d), s->domain,
		       s->policy->mode == TS_TLS_POLICY_REQUIRE_PKIX
			       ? "require-pkix"
			       : "opportunistic",
		       s->policy->mx_pattern_count, s->policy->host_count,
		       s->policy->source != NULL ? s->policy->source : "-");
	tr_session_find_hosts(s);
}

static void
tr_direct_start(struct ts_ctx *ctx, const char *instance, struct ts_delivery *d)
{
	struct tr_session *s = ts_xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->d = d;
	const char *why;
	if (!tr_session_configure(s, instance, &why)) {
		ts_delivery_set_data(d, s);
		s->domain = ts_xstrdup(ts_delivery_domain(d));
		char *t = ts_xasprintf("%s: %s", why, s->instance);
		tr_session_finish(s, 451, "4.3.5", t, NULL);
		free(t);
		return;
	}
	s->requiretls = ts_delivery_requiretls(d);
	s->rcpt_count = ts_delivery_rcpt_count(d);
	s->rcpts = ts_xcalloc(s->rcpt_count ? s->rcpt_count : 1,
			      sizeof(*s->rcpts));
	for (size_t i = 0; i < s->rcpt_count; i++)
		s->rcpts[i] = ts_delivery_rcpt(d, i);
	ts_delivery_set_data(d, s);
	if (s->rcpt_count == 0) {
		s->domain = ts_xstrdup(ts_delivery_domain(d));
		tr_session_finish(s, 554, "5.5.0", "no recipients", NULL);
		return;
	}

	/* DNS wants A-labels; the queue may hold a UTF-8 domain. */
	const char *domain = ts_delivery_domain(d);
	char *alabel = NULL;
	if (domain[0] != '[' &&
	    idn2_lookup_u8((const uint8_t *)domain, (uint8_t **)&alabel,
			   IDN2_NONTRANSITIONAL) != IDN2_OK) {
		char *t = ts_xasprintf("invalid domain name %s", domain);
		s->domain = ts_xstrdup(domain);
		tr_session_finish(s, 553, "5.1.2", t, NULL);
		free(t);
		return;
	}
	s->domain = ts_xstrdup(alabel != NULL ? alabel : domain);
	idn2_free(alabel);

	ts_log(ctx, TS_LOG_INFO,
	       "delivery started id=%s domain=%s rcpts=%zu "
	       "attempt=%u transport=%s",
	       ts_delivery_id(d), s->domain, s->rcpt_count,
	       ts_delivery_attempt(d), s->instance);

	/* Open the message while DNS answers. */
	struct tr_open_job *job = ts_xcalloc(1, sizeof(*job));
	pthread_mutex_init(&job->lock, NULL);
	job->s = s;
	job->d = d;
	job->msg = ts_xcalloc(1, sizeof(*job->msg));
	job->msg->refs = 1;
	job->msg->fd = -1;
	if (ts_work_submit(ctx, tr_open_work, tr_open_done, job) != 0) {
		tr_message_unref(&job->msg);
		pthread_mutex_destroy(&job->lock);
		free(job);
		tr_session_finish(s, 451, "4.3.0", "tessera is shutting down",
				  NULL);
		return;
	}
	s->open_job = job;

	if (s->relay) {
		/* A smarthost is ours to choose: no recipient-domain policy. */
		tr_session_next_host(s);
		return;
	}
	/* The recipient domain's TLS policy (DANE, MTA-STS, …) first. */
	if (ts_delivery_run_tls_policy(d, tr_session_policy_done, s) != 0)
		tr_session_finish(s, 451, "4.3.0",
				  "the TLS policy hooks could not run", NULL);
}

/* The policy is known: find the domain's hosts (MX, or a literal). */
static void
tr_session_find_hosts(struct tr_session *s)
{
	struct ts_ctx *ctx = s->ctx;
	struct tr_result fail = { 0 };
	int lit = tr_mx_literal(s->domain, &s->hosts, &fail);
	if (lit < 0) {
		tr_session_finish(s, fail.code, fail.enhanced, fail.text, NULL);
		free(fail.text);
		return;
	}
	if (lit == 1) {
		tr_session_next_host(s);
		return;
	}
	s->q_mx = ts_dns_lookup(ctx, s->domain, TS_DNS_MX, tr_session_mx_answer,
				s);
	if (s->q_mx == NULL)
		tr_session_finish(s, 451, "4.4.3",
				  "the MX lookup could not start", NULL);
}

static void
tr_direct_cancel(struct ts_ctx *ctx, struct ts_delivery *d)
{
	(void)ctx;
	struct tr_session *s = ts_delivery_data(d);
	if (s == NULL)
		return;
	ts_delivery_set_data(d, NULL);
	tr_session_free(s);
}

const struct ts_transport tr_direct_transport = {
	.start = tr_direct_start,
	.cancel = tr_direct_cancel,
};
