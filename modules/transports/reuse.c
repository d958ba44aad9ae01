/*
 * modules/transports/reuse.c — what a delivery asks of one host before
 * connecting: the TLS policy for it (PKIX, DANE with its TLSA records, or
 * nothing), and whether a kept connection to the same destination can serve
 * it (pool.h: slots per destination, parked connections, deliveries waiting
 * in line).
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "direct.h"

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
void
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
char *
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
void
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
void
tr_attempt_park(struct tr_attempt *a)
{
	const struct tr_settings *set = tr_settings(a->ctx);
	if (a->dest == NULL || set->idle_timeout_ms == 0 ||
	    a->txns >= set->max_per_conn || ts_conn_closing(a->conn)) {
		tr_attempt_pump(a, tr_client_quit(a->client));
		return;
	}
	a->parked = true;
	/* TLS is settled: the TLSA records belonged to the delivery */
	a->dane = NULL;
	ts_timer_start(a->timer, set->idle_timeout_ms, 0);
	ts_conn_log(a->conn, a->ctx, TS_LOG_DEBUG,
		    "connection kept host=%s transactions=%u", a->host,
		    a->txns);
	tr_dest_park(a->dest, a); /* may hand it to a waiting delivery */
}

/* Give a kept connection to session s: the next transaction on it. */
void
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
void
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

