/*
 * modules/transports/direct.c — the "direct" transport: deliver to the
 * recipient domain's own mail servers.
 *
 * A *session* serves one delivery (the kernel's struct ts_delivery): it
 * opens the queued message on the work pool, asks the outbound_tls_policy
 * hooks for the recipient domain's TLS policy, looks up the domain's MX
 * records, then tries the hosts in order (mx.c; hosts outside the
 * policy's MX patterns are skipped), each through its A and AAAA
 * addresses.  The same code serves every transport type (transports.c):
 * a relay (smtp, submission, submissions) has its smarthost as the only
 * "MX" host, its own port, required or implicit TLS and AUTH through the
 * kernel's SASL client; socks connects to the proxy instead and speaks
 * SOCKS5 (socks.c) before SMTP.  An *attempt* (attempt.c) is one
 * connection to one host, driven by the pure SMTP client (client.c).
 * When an attempt fails at the host level (no connection, refused
 * greeting, TLS failure) the next host is tried — after one more try on
 * the same host without STARTTLS when an opportunistic handshake failed
 * and nothing requires TLS; otherwise its per-recipient results end the
 * delivery.  A connection may be kept after its delivery and reused by
 * the next one to the same destination, and at most
 * max_connections_per_host are open per destination (reuse.c, pool.c).
 *
 * This file is the session: opening the message, the recipient
 * domain's TLS policy, MX and address lookups, host after host, and
 * the transport service; attempt.c, body.c, auth.c and reuse.c do the
 * rest (see direct.h).  Everything here runs on the event-loop thread,
 * except the work functions, which touch only their job.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <idn2.h>

#include "direct.h"

static void tr_session_try_end(struct tr_session *s);

/* --- the message --------------------------------------------------------- */

void
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
void
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
void
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

void
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
