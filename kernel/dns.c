/*
 * kernel/dns.c — asynchronous, DNSSEC-validating lookups on the loop.
 *
 * Implements plugin-api/tessera/dns.h with libunbound.  libunbound's
 * ub_resolve_async() would resolve in a background thread (ub_ctx_async
 * 1) or, by default, in a forked process (ub_ctx_async 0); instead each
 * context is created with ub_ctx_create_ub_event() on the libuv-backed
 * event base of dns-event.c, and lookups start with ub_resolve_event():
 * libunbound's state machines then run on the loop thread itself, driven
 * by poll and timer handles, and nothing ever blocks on the network.
 *
 * One struct ts__dns hangs off the kernel.  It holds the [dns] settings
 * and the current libunbound context, created at the first lookup after
 * each (re)configuration.  A reconfiguration retires the current context:
 * lookups in flight finish on it, and it is deleted once the last is done
 * (always from a timer, never from inside libunbound's own call stack).
 *
 * Answers are never handed over from inside libunbound: its callback
 * (which may even run within ub_resolve_event(), for /etc/hosts or cached
 * data) parses the response into a struct ts__dns_result, and the query's
 * timer, restarted at 0 ms, delivers it on the next loop turn.  The same
 * timer enforces [dns] timeout.  So user callbacks always run from a
 * libuv timer on the loop thread, free to start or cancel lookups.
 *
 * Wire-format parsing lives in dns-wire.c, the event base in dns-event.c.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <unbound-event.h>
#include <unbound.h>

#include "kernel/dns-private.h"
#include "kernel/dns.h"

const struct ts_cfg_key ts__dns_keys[] = {
	{ .name = "resolver",
	  .type = TS_CFG_ENUM,
	  .default_value = "system",
	  .choices = "system|forward|recursive",
	  .doc = "system: the nameservers of resolv_conf plus /etc/hosts; "
		 "forward: only the `forward` servers; recursive: full "
		 "recursion from the root" },
	{ .name = "forward",
	  .type = TS_CFG_LIST,
	  .default_value = NULL,
	  .doc = "servers for resolver = forward, each IP or IP@PORT "
		 "(default port 53)" },
	{ .name = "resolv_conf",
	  .type = TS_CFG_STRING,
	  .default_value = "/etc/resolv.conf",
	  .doc = "file whose nameserver lines resolver = system uses" },
	{ .name = "trust_anchor_file",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "file of DS or DNSKEY records (zone-file format) that "
		 "DNSSEC validation starts from (default: none; for resolver "
		 "= recursive /usr/share/dns/root.key if it exists)" },
	{ .name = "trust_anchor",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "one more trust anchor: a DS or DNSKEY record in zone-file "
		 "format, e.g. \"example. DS 12345 13 2 AB12...\" (default: "
		 "none)" },
	{ .name = "timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "10s",
	  .doc = "a lookup not answered after this ends as tempfail" },
	{ .name = "edns_buffer_size",
	  .type = TS_CFG_INT,
	  .default_value = NULL,
	  .min = 512,
	  .max = 65535,
	  .doc = "EDNS UDP payload size advertised, in bytes (default: "
		 "libunbound's, 1232)" },
	{ .name = "private_reverse",
	  .type = TS_CFG_ENUM,
	  .default_value = "auto",
	  .choices = "auto|ask|local",
	  .doc = "reverse (PTR) names of private addresses (RFC 1918, "
		 "fd00::/8 and the other RFC 6303 zones): local answers them "
		 "inside tessera as libunbound does (NXDOMAIN); auto asks the "
		 "resolvers for them when resolver = system or forward (a "
		 "LAN's server knows its hosts), local for recursive; ask "
		 "also sends loopback (127/8, ::1) names to the resolvers, "
		 "which auto and local answer locally (localhost)" },
	{ .name = NULL },
};

#define TS_DNS_ROOT_KEY "/usr/share/dns/root.key"

enum ts_dns_mode {
	TS_DNS_SYSTEM,
	TS_DNS_FORWARD,
	TS_DNS_RECURSIVE,
};

/* The [dns] settings, copied out of the snapshot (reload frees it). */
struct ts_dns_settings {
	enum ts_dns_mode mode;
	char **forward;
	size_t forward_count;
	char *resolv_conf;
	char *trust_anchor_file; /* NULL: none */
	char *trust_anchor; /* NULL: none */
	uint64_t timeout_ms;
	long long edns_buffer_size; /* 0: libunbound's default */
	bool private_reverse_ask; /* forward RFC 1918 etc. PTR names */
	bool loopback_reverse_ask; /* and 127/8, ::1 too */
};

/* One libunbound context and the lookups of ours running on it. */
struct ts_dns_resolver {
	struct ub_ctx *ub;
	unsigned pending; /* our lookups it has not answered yet */
	bool retired; /* replaced by a newer configuration */
	struct ts_dns_resolver *next; /* in ts__dns.retired */
};

struct ts__dns {
	struct ts_kernel *k;
	struct ub_event_base *evbase;
	struct ts_dns_settings settings;
	struct ts_dns_resolver *current; /* NULL until a lookup needs one */
	struct ts_dns_resolver *retired; /* deleted once idle */
	uv_timer_t *reaper; /* deletes idle retired resolvers */
	struct ts_dns_query *queries; /* not yet answered or cancelled */
};

struct ts_dns_query {
	struct ts__dns *dns;
	struct ts_dns_query *prev, *next; /* in ts__dns.queries */
	char *name; /* as asked, or the reverse name */
	enum ts_dns_type type;
	ts_dns_fn fn;
	void *arg;
	struct ts_dns_resolver *resolver; /* while libunbound works on it */
	int async_id;
	uint64_t started_ms;
	struct ts__dns_result *ready; /* answer waiting for delivery */
	bool delivering; /* inside fn */
	uv_timer_t timer; /* timeout, then delivery; frees us when closed */
};

/* --- settings ------------------------------------------------------------- */

static const char *
ts_dns_default(const char *key)
{
	for (const struct ts_cfg_key *k = ts__dns_keys; k->name != NULL; k++)
		if (strcmp(k->name, key) == 0)
			return k->default_value;
	return NULL;
}

static void
ts_dns_settings_clear(struct ts_dns_settings *s)
{
	ts__strv_free(&s->forward);
	free(s->resolv_conf);
	free(s->trust_anchor_file);
	free(s->trust_anchor);
	memset(s, 0, sizeof(*s));
}

static char *
ts_dns_strdup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? ts_xstrdup(s) : NULL;
}

/* Read [dns] of cfg (defaults when it has none, or no cfg at all). */
static void
ts_dns_settings_read(struct ts_dns_settings *s, const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *sect =
		cfg != NULL ? ts_cfg_find(cfg, "dns", NULL) : NULL;
	const char *mode = ts_dns_default("resolver");
	const char *timeout = ts_dns_default("timeout");
	const char *private_reverse = ts_dns_default("private_reverse");

	ts_dns_settings_clear(s);
	ts_parse_duration_ms(timeout, &s->timeout_ms);
	s->resolv_conf = ts_xstrdup(ts_dns_default("resolv_conf"));
	if (sect != NULL) {
		mode = ts_cfg_str(sect, "resolver");
		for (size_t i = 0; i < ts_cfg_list_len(sect, "forward"); i++)
			ts__strv_push(&s->forward, &s->forward_count,
				      ts_xstrdup(ts_cfg_list_item(
					      sect, "forward", i)));
		free(s->resolv_conf);
		s->resolv_conf = ts_xstrdup(ts_cfg_str(sect, "resolv_conf"));
		s->trust_anchor_file = ts_dns_strdup_or_null(
			ts_cfg_str(sect, "trust_anchor_file"));
		s->trust_anchor =
			ts_dns_strdup_or_null(ts_cfg_str(sect, "trust_anchor"));
		s->timeout_ms = ts_cfg_duration_ms(sect, "timeout");
		s->edns_buffer_size = ts_cfg_int(sect, "edns_buffer_size");
		private_reverse = ts_cfg_str(sect, "private_reverse");
	}
	if (strcmp(mode, "forward") == 0)
		s->mode = TS_DNS_FORWARD;
	else if (strcmp(mode, "recursive") == 0)
		s->mode = TS_DNS_RECURSIVE;
	else
		s->mode = TS_DNS_SYSTEM;
	s->loopback_reverse_ask = strcmp(private_reverse, "ask") == 0;
	s->private_reverse_ask =
		s->loopback_reverse_ask ||
		(strcmp(private_reverse, "auto") == 0 &&
		 s->mode != TS_DNS_RECURSIVE);
	if (s->mode == TS_DNS_RECURSIVE && s->trust_anchor_file == NULL &&
	    access(TS_DNS_ROOT_KEY, R_OK) == 0)
		s->trust_anchor_file = ts_xstrdup(TS_DNS_ROOT_KEY);
}

/* "IP" or "IP@PORT" with a numeric IPv4 or IPv6 address. */
static bool
ts_dns_forward_valid(const char *item)
{
	const char *at = strchr(item, '@');
	size_t len = at != NULL ? (size_t)(at - item) : strlen(item);
	char ip[64];
	unsigned char addr[16];
	if (len == 0 || len >= sizeof(ip))
		return false;
	memcpy(ip, item, len);
	ip[len] = '\0';
	if (uv_inet_pton(AF_INET, ip, addr) != 0 &&
	    uv_inet_pton(AF_INET6, ip, addr) != 0)
		return false;
	if (at == NULL)
		return true;
	char *end;
	long port = strtol(at + 1, &end, 10);
	return at[1] != '\0' && *end == '\0' && port > 0 && port <= 65535;
}

/* Whether text has a DS or DNSKEY type among its words. */
static bool
ts_dns_anchor_valid(const char *text)
{
	char *copy = ts_xstrdup(text);
	bool found = false;
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t", &save); w != NULL && !found;
	     w = strtok_r(NULL, " \t", &save))
		found = strcasecmp(w, "DS") == 0 ||
			strcasecmp(w, "DNSKEY") == 0;
	free(copy);
	return found;
}

int
ts__dns_check(struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "dns", NULL);
	if (s == NULL)
		return 0;
	int rc = 0;
	const char *mode = ts_cfg_str(s, "resolver");
	size_t forwards = ts_cfg_list_len(s, "forward");
	if (strcmp(mode, "forward") == 0 && forwards == 0)
		rc = ts_cfg_error(cfg, s, "resolver",
				  "resolver = forward needs at least one "
				  "forward address");
	if (strcmp(mode, "forward") != 0 && forwards > 0)
		rc = ts_cfg_error(cfg, s, "forward",
				  "forward is only used with resolver = "
				  "forward (resolver is %s)",
				  mode);
	for (size_t i = 0; i < forwards; i++) {
		const char *item = ts_cfg_list_item(s, "forward", i);
		if (!ts_dns_forward_valid(item))
			rc = ts_cfg_error(cfg, s, "forward",
					  "'%s' is not IP or IP@PORT", item);
	}
	const char *resolv_conf = ts_cfg_str(s, "resolv_conf");
	if (strcmp(mode, "system") == 0 && access(resolv_conf, R_OK) != 0)
		rc = ts_cfg_error(cfg, s, "resolv_conf", "cannot read %s: %s",
				  resolv_conf, strerror(errno));
	const char *ta_file = ts_cfg_str(s, "trust_anchor_file");
	if (ta_file != NULL && *ta_file != '\0' && access(ta_file, R_OK) != 0)
		rc = ts_cfg_error(cfg, s, "trust_anchor_file",
				  "cannot read %s: %s", ta_file,
				  strerror(errno));
	const char *ta = ts_cfg_str(s, "trust_anchor");
	if (ta != NULL && *ta != '\0' && !ts_dns_anchor_valid(ta))
		rc = ts_cfg_error(cfg, s, "trust_anchor",
				  "'%s' is not a DS or DNSKEY record", ta);
	if (ts_cfg_duration_ms(s, "timeout") == 0)
		rc = ts_cfg_error(cfg, s, "timeout",
				  "timeout must be longer than 0");
	return rc;
}

/* --- libunbound contexts -------------------------------------------------- */

/* Apply the settings to a fresh context; 0 or a UB_* error, with what. */
static int
ts_dns_ub_setup(struct ub_ctx *ub, const struct ts_dns_settings *s,
		const char **what_r)
{
	int rc = 0;
	switch (s->mode) {
	case TS_DNS_SYSTEM:
		*what_r = s->resolv_conf;
		rc = ub_ctx_resolvconf(ub, s->resolv_conf);
		if (rc == 0) {
			*what_r = "/etc/hosts";
			rc = ub_ctx_hosts(ub, NULL);
		}
		break;
	case TS_DNS_FORWARD:
		for (size_t i = 0; i < s->forward_count && rc == 0; i++) {
			*what_r = s->forward[i];
			rc = ub_ctx_set_fwd(ub, s->forward[i]);
		}
		break;
	case TS_DNS_RECURSIVE:
		break; /* libunbound's root hints */
	}
	if (rc == 0 && s->trust_anchor_file != NULL) {
		*what_r = s->trust_anchor_file;
		rc = ub_ctx_add_ta_file(ub, s->trust_anchor_file);
	}
	if (rc == 0 && s->trust_anchor != NULL) {
		*what_r = "trust_anchor";
		rc = ub_ctx_add_ta(ub, s->trust_anchor);
	}
	if (rc == 0) {
		/*
		 * libunbound's library default is 16 UDP ports, i.e. at most
		 * 16 queries on the wire at once: far too few for a server
		 * with hundreds of sessions resolving in parallel.
		 */
		*what_r = "outgoing-range";
		rc = ub_ctx_set_option(ub, "outgoing-range:", "256");
	}
	if (rc == 0 && s->private_reverse_ask) {
		/*
		 * libunbound answers these itself (RFC 6303) unless told
		 * otherwise; a LAN's own DNS server knows better, and
		 * such zones are never signed.  The loopback zones need
		 * "transparent": libunbound ignores "nodefault" set through
		 * ub_ctx_set_option (tried: still NXDOMAIN).
		 */
		static const char *const zones[] = {
			"127.in-addr.arpa.",
			"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
			"0.0.0.0.ip6.arpa.",
		};
		*what_r = "private_reverse";
		rc = ub_ctx_set_option(ub, "unblock-lan-zones:", "yes");
		if (rc == 0)
			rc = ub_ctx_set_option(ub, "insecure-lan-zones:",
					       "yes");
		for (size_t i = 0;
		     rc == 0 && s->loopback_reverse_ask && i < 2; i++) {
			char value[128];
			snprintf(value, sizeof(value), "%s transparent",
				 zones[i]);
			rc = ub_ctx_set_option(ub, "local-zone:", value);
			if (rc == 0)
				rc = ub_ctx_set_option(ub, "domain-insecure:",
						       zones[i]);
		}
	}
	if (rc == 0 && s->edns_buffer_size > 0) {
		char value[24];
		snprintf(value, sizeof(value), "%lld", s->edns_buffer_size);
		*what_r = "edns_buffer_size";
		rc = ub_ctx_set_option(ub, "edns-buffer-size:", value);
	}
	return rc;
}

/* The context for new lookups, created from the settings if need be. */
static struct ts_dns_resolver *
ts_dns_resolver_get(struct ts__dns *dns)
{
	if (dns->current != NULL)
		return dns->current;
	struct ub_ctx *ub = ub_ctx_create_ub_event(dns->evbase);
	if (ub == NULL) {
		ts_log(&dns->k->kctx, TS_LOG_ERROR,
		       "dns: cannot create a libunbound context");
		return NULL;
	}
	const char *what = "-";
	int rc = ts_dns_ub_setup(ub, &dns->settings, &what);
	if (rc != 0) {
		ts_log(&dns->k->kctx, TS_LOG_ERROR,
		       "dns: resolver setup failed at %s: %s", what,
		       ub_strerror(rc));
		ub_ctx_delete(ub);
		return NULL;
	}
	struct ts_dns_resolver *res = ts_xcalloc(1, sizeof(*res));
	res->ub = ub;
	dns->current = res;
	return res;
}

static void
ts_dns_resolver_delete(struct ts_dns_resolver *res)
{
	/* Closes libunbound's sockets; its queries die without callbacks. */
	ub_ctx_delete(res->ub);
	free(res);
}

/* Delete the retired contexts nobody waits on any more. */
static void
ts_dns_reap(uv_timer_t *timer)
{
	struct ts__dns *dns = timer->data;
	struct ts_dns_resolver **p = &dns->retired;
	while (*p != NULL) {
		struct ts_dns_resolver *res = *p;
		if (res->pending > 0) {
			p = &res->next;
			continue;
		}
		*p = res->next;
		ts_dns_resolver_delete(res);
	}
}

/* A lookup left its context: reap that context later if it is retired. */
static void
ts_dns_query_detach(struct ts_dns_query *q)
{
	struct ts_dns_resolver *res = q->resolver;
	if (res == NULL)
		return;
	q->resolver = NULL;
	if (--res->pending == 0 && res->retired)
		uv_timer_start(q->dns->reaper, ts_dns_reap, 0, 0);
}

static struct ts__dns *
ts_dns_state(struct ts_kernel *k)
{
	if (k->dns != NULL)
		return k->dns;
	struct ts__dns *dns = ts_xcalloc(1, sizeof(*dns));
	dns->k = k;
	dns->evbase = ts__dns_evbase_new(k->loop);
	dns->reaper = ts_xmalloc(sizeof(*dns->reaper));
	uv_timer_init(k->loop, dns->reaper);
	uv_unref((uv_handle_t *)dns->reaper);
	dns->reaper->data = dns;
	/* Until ts__dns_configure is called, the kernel's current config. */
	ts_dns_settings_read(&dns->settings, k->cfg);
	k->dns = dns;
	return dns;
}

int
ts__dns_configure(struct ts_kernel *k, const struct ts_cfg *cfg, char **error_r)
{
	struct ts__dns *dns = ts_dns_state(k);
	ts_dns_settings_read(&dns->settings, cfg);
	struct ts_dns_resolver *res = dns->current;
	if (res != NULL) {
		dns->current = NULL;
		res->retired = true;
		res->next = dns->retired;
		dns->retired = res;
		if (res->pending == 0)
			uv_timer_start(dns->reaper, ts_dns_reap, 0, 0);
	}
	return 0;
}

/* --- queries -------------------------------------------------------------- */

static void
ts_dns_query_closed(uv_handle_t *handle)
{
	struct ts_dns_query *q = handle->data;
	ts__dns_result_free(&q->ready);
	free(q->name);
	free(q);
}

/* Unlink and release (the memory goes when the timer has closed). */
static void
ts_dns_query_destroy(struct ts_dns_query *q)
{
	struct ts__dns *dns = q->dns;
	if (q->resolver != NULL) {
		/* Its callback must never run now: q is going away. */
		ub_cancel(q->resolver->ub, q->async_id);
		ts_dns_query_detach(q);
	}
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		dns->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	uv_close((uv_handle_t *)&q->timer, ts_dns_query_closed);
}

/* Hand the ready answer to the caller, log it, and finish the query. */
static void
ts_dns_deliver(struct ts_dns_query *q)
{
	struct ts__dns *dns = q->dns;
	const struct ts_dns_answer *a = &q->ready->answer;
	if (ts_log_enabled(&dns->k->kctx, TS_LOG_TRACE))
		ts_log(&dns->k->kctx, TS_LOG_TRACE,
		       "dns lookup name=%s type=%s status=%s security=%s "
		       "rcode=%d count=%zu ttl=%" PRIu32 " ms=%" PRIu64
		       "%s%s%s",
		       a->name, ts_dns_type_name(a->type),
		       ts_dns_status_name(a->status),
		       ts_dns_security_name(a->security), a->rcode, a->count,
		       a->ttl, uv_now(dns->k->loop) - q->started_ms,
		       a->why_bogus != NULL ? " why=\"" : "",
		       a->why_bogus != NULL ? a->why_bogus : "",
		       a->why_bogus != NULL ? "\"" : "");
	q->delivering = true;
	q->fn(a, q->arg);
	ts_dns_query_destroy(q);
}

/* The query's timer: deliver a ready answer, or give up waiting. */
static void
ts_dns_query_timer(uv_timer_t *timer)
{
	struct ts_dns_query *q = timer->data;
	if (q->ready == NULL) {
		if (q->resolver != NULL) {
			ub_cancel(q->resolver->ub, q->async_id);
			ts_dns_query_detach(q);
		}
		q->ready = ts__dns_result_new(q->name, q->type);
		ts__dns_result_fail(q->ready, TS_DNS_TEMPFAIL, 2);
		ts_log(&q->dns->k->kctx, TS_LOG_DEBUG,
		       "dns lookup timed out name=%s type=%s after=%" PRIu64
		       "ms",
		       q->name, ts_dns_type_name(q->type),
		       uv_now(q->dns->k->loop) - q->started_ms);
	}
	ts_dns_deliver(q);
}

/* Keep the answer and deliver it on the next loop turn. */
static void
ts_dns_query_ready(struct ts_dns_query *q, struct ts__dns_result *r)
{
	ts__dns_result_free(&q->ready);
	q->ready = r;
	uv_timer_start(&q->timer, ts_dns_query_timer, 0, 0);
}

/*
 * libunbound's callback, on the loop thread, possibly from inside
 * ub_resolve_event().  The packet belongs to libunbound: parse it now.
 */
static void
ts_dns_answered(void *arg, int rcode, void *packet, int len, int sec,
		char *why_bogus, int was_ratelimited)
{
	struct ts_dns_query *q = arg;
	ts_dns_query_detach(q);
	struct ts__dns_result *r = ts__dns_result_new(q->name, q->type);
	if (rcode != 0 || packet == NULL || len <= 0)
		ts__dns_result_fail(
			r, ts__dns_rcode_status(rcode != 0 ? rcode : 2),
			rcode != 0 ? rcode : 2);
	else if (ts__dns_result_parse(r, packet, (size_t)len) != 0)
		ts_log(&q->dns->k->kctx, TS_LOG_WARN,
		       "dns malformed answer name=%s type=%s", q->name,
		       ts_dns_type_name(q->type));
	switch (sec) {
	case 2:
		r->answer.security = TS_DNS_SECURE;
		break;
	case 1: {
		/*
		 * libunbound hands bogus data over, flagged.  Answer as a
		 * validating resolver would (SERVFAIL), so that no caller can
		 * use forged records by looking only at the status: DANE
		 * (RFC 7672 2.1.1) and SPF (RFC 7208 5) call this a temporary
		 * failure too.
		 */
		const char *why =
			why_bogus != NULL ? why_bogus : "validation failed";
		free(r->records);
		r->records = NULL;
		ts__dns_result_fail(r, TS_DNS_TEMPFAIL, 2);
		r->answer.security = TS_DNS_BOGUS;
		r->answer.why_bogus = ts__dns_result_keep(r, why, strlen(why));
		break;
	}
	default:
		r->answer.security = TS_DNS_INSECURE;
	}
	ts_dns_query_ready(q, r);
}

/* A query in the list with its timer; not yet started. */
static struct ts_dns_query *
ts_dns_query_new(struct ts__dns *dns, const char *name, enum ts_dns_type type,
		 ts_dns_fn fn, void *arg)
{
	struct ts_dns_query *q = ts_xcalloc(1, sizeof(*q));
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	q->dns = dns;
	q->name = ts_xstrndup(name, len);
	q->type = type;
	q->fn = fn;
	q->arg = arg;
	q->started_ms = uv_now(dns->k->loop);
	uv_timer_init(dns->k->loop, &q->timer);
	q->timer.data = q;
	q->next = dns->queries;
	if (q->next != NULL)
		q->next->prev = q;
	dns->queries = q;
	return q;
}

/* An answer that never reached a server: a malformed name. */
static void
ts_dns_query_bad_name(struct ts_dns_query *q)
{
	struct ts__dns_result *r = ts__dns_result_new(q->name, q->type);
	ts__dns_result_fail(r, TS_DNS_PERMFAIL, 1); /* as FORMERR */
	ts_dns_query_ready(q, r);
}

struct ts_dns_query *
ts_dns_lookup(struct ts_ctx *ctx, const char *name, enum ts_dns_type type,
	      ts_dns_fn fn, void *arg)
{
	struct ts_kernel *k = ctx->kernel;
	if (ts_dns_type_name(type) == NULL || name == NULL) {
		ts_log(ctx, TS_LOG_ERROR,
		       "dns lookup refused: bad type or no name type=%d",
		       (int)type);
		return NULL;
	}
	struct ts__dns *dns = ts_dns_state(k);
	struct ts_dns_query *q = ts_dns_query_new(dns, name, type, fn, arg);
	if (!ts__dns_name_valid(name)) {
		ts_dns_query_bad_name(q);
		return q;
	}
	struct ts_dns_resolver *res = ts_dns_resolver_get(dns);
	if (res == NULL) {
		ts_dns_query_destroy(q);
		return NULL;
	}
	q->resolver = res;
	res->pending++;
	int rc = ub_resolve_event(res->ub, q->name, (int)type, 1, q,
				  ts_dns_answered, &q->async_id);
	if (rc != 0) {
		/* No callback will come (and none came). */
		ts_dns_query_detach(q);
		if (rc == UB_SYNTAX) {
			ts_dns_query_bad_name(q);
			return q;
		}
		ts_log(ctx, TS_LOG_ERROR,
		       "dns lookup failed to start name=%s type=%s "
		       "error=\"%s\"",
		       q->name, ts_dns_type_name(type), ub_strerror(rc));
		ts_dns_query_destroy(q);
		return NULL;
	}
	/* Answered already (hosts, cache): the timer delivers it at once. */
	if (q->ready == NULL)
		uv_timer_start(&q->timer, ts_dns_query_timer,
			       dns->settings.timeout_ms, 0);
	return q;
}

struct ts_dns_query *
ts_dns_lookup_ptr(struct ts_ctx *ctx, const char *ip, ts_dns_fn fn, void *arg)
{
	char name[TS__DNS_REVERSE_MAX];
	if (ip == NULL || ts__dns_reverse_name(ip, name) != 0) {
		ts_log(ctx, TS_LOG_DEBUG,
		       "dns ptr lookup of a bad address ip=%s",
		       ip != NULL ? ip : "-");
		return NULL;
	}
	return ts_dns_lookup(ctx, name, TS_DNS_PTR, fn, arg);
}

void
ts_dns_cancel(struct ts_dns_query **query)
{
	struct ts_dns_query *q = *query;
	*query = NULL;
	/* Inside its own callback the delivery finishes it afterwards. */
	if (q == NULL || q->delivering)
		return;
	ts_dns_query_destroy(q);
}

/* --- teardown ------------------------------------------------------------- */

static void
ts_dns_reaper_closed(uv_handle_t *handle)
{
	free(handle);
}

void
ts__dns_free(struct ts_kernel *k)
{
	struct ts__dns *dns = k->dns;
	if (dns == NULL)
		return;
	while (dns->queries != NULL)
		ts_dns_query_destroy(dns->queries);
	if (dns->current != NULL)
		ts_dns_resolver_delete(dns->current);
	while (dns->retired != NULL) {
		struct ts_dns_resolver *res = dns->retired;
		dns->retired = res->next;
		ts_dns_resolver_delete(res);
	}
	ts__dns_evbase_free(&dns->evbase);
	uv_close((uv_handle_t *)dns->reaper, ts_dns_reaper_closed);
	ts_dns_settings_clear(&dns->settings);
	free(dns);
	k->dns = NULL;
}
