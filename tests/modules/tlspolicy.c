/*
 * tests/modules/tlspolicy.c — a scripted outbound_tls_policy hook, for
 * the transports' TLS policy tests (what a dane or mtasts module will
 * do for real).  By [module tlspolicy] keys, for the delivery's
 * recipient domain:
 *
 *   pkix_domain      mode REQUIRE_PKIX (source "tlspolicy")
 *   mx_domain        MX patterns = mx_patterns
 *   tempfail_domain  refuse for now: 451 4.7.5 "policy not ready"
 *   dane_host        TLSA records for this MX host: dane_tlsa, as
 *                    "USAGE SELECTOR MATCHING HEX" (for any domain)
 *   pending          answer from a timer (an asynchronous hook)
 *
 * Each decision is logged as "tlspolicy domain=… …".  Only the public
 * plugin API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/tessera.h>

static const struct ts_cfg_key tlspolicy_keys[] = {
	{ .name = "pkix_domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "recipient domain that gets a REQUIRE_PKIX policy" },
	{ .name = "mx_domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "recipient domain that gets the MX patterns" },
	{ .name = "mx_patterns",
	  .type = TS_CFG_LIST,
	  .default_value = NULL,
	  .doc = "MX patterns for mx_domain" },
	{ .name = "tempfail_domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "recipient domain whose policy hook tempfails" },
	{ .name = "dane_host",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "MX host that gets dane_tlsa" },
	{ .name = "dane_tlsa",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "one TLSA record: USAGE SELECTOR MATCHING HEX" },
	{ .name = "pending",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "answer from a timer instead of at once" },
	{ .name = NULL },
};

struct tlspolicy_set {
	char *pkix, *mx, *tempfail;
	char *pats[8];
	size_t npats;
	bool pending;
	char *dane_host;
	struct ts_tls_tlsa tlsa;
	uint8_t tlsa_data[64];
};

struct tlspolicy_wait {
	struct ts_ctx *ctx;
	ts_hook_token token;
	struct ts_timer *timer;
	char *domain;
};

/* Apply the scripted policy to the call's delivery; a hook return code. */
static int
tlspolicy_decide(struct ts_ctx *ctx, struct ts_hook_call *call,
		 const char *domain)
{
	const struct tlspolicy_set *set = ts_ctx_data(ctx);
	struct ts_delivery *d = ts_hook_call_delivery(call);
	if (d == NULL || domain == NULL)
		return TS_HOOK_CONTINUE;
	if (strcmp(domain, set->tempfail) == 0) {
		ts_log(ctx, TS_LOG_INFO, "tlspolicy domain=%s tempfail", domain);
		return ts_hook_tempfail(call, 451, "4.7.5", "policy not ready");
	}
	struct ts_tls_policy p = { .source = "tlspolicy" };
	bool any = false;
	if (strcmp(domain, set->pkix) == 0) {
		p.mode = TS_TLS_POLICY_REQUIRE_PKIX;
		any = true;
	}
	if (strcmp(domain, set->mx) == 0) {
		p.mx_patterns = (const char *const *)set->pats;
		p.mx_pattern_count = set->npats;
		any = true;
	}
	struct ts_tls_policy_host host = { .name = set->dane_host,
					   .tlsa = &set->tlsa,
					   .tlsa_count = 1 };
	if (set->dane_host[0] != '\0' && set->tlsa.len > 0) {
		p.hosts = &host;
		p.host_count = 1;
		any = true;
	}
	if (any) {
		int rc = ts_delivery_set_tls_policy(d, &p);
		ts_log(ctx, TS_LOG_INFO,
		       "tlspolicy domain=%s mode=%d patterns=%zu rc=%d", domain,
		       (int)p.mode, p.mx_pattern_count, rc);
	}
	return TS_HOOK_CONTINUE;
}

static void
tlspolicy_wait_free(struct tlspolicy_wait *w)
{
	ts_timer_free(&w->timer);
	free(w->domain);
	free(w);
}

static void
tlspolicy_fire(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct tlspolicy_wait *w = arg;
	struct ts_hook_call *call = ts_hook_lookup(w->ctx, w->token);
	int rc = call != NULL ? tlspolicy_decide(w->ctx, call, w->domain)
			      : TS_HOOK_CONTINUE;
	struct ts_ctx *ctx = w->ctx;
	ts_hook_token token = w->token;
	tlspolicy_wait_free(w);
	ts_hook_resume(ctx, token, rc);
}

static void
tlspolicy_cancel(void *arg)
{
	tlspolicy_wait_free(arg);
}

static int
tlspolicy_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct tlspolicy_set *set = ts_ctx_data(ctx);
	const char *domain = ts_hook_call_arg(call);
	if (!set->pending)
		return tlspolicy_decide(ctx, call, domain);
	struct tlspolicy_wait *w = ts_xcalloc(1, sizeof(*w));
	w->ctx = ctx;
	w->domain = ts_xstrdup(domain != NULL ? domain : "");
	w->token = ts_hook_suspend(call, tlspolicy_cancel, w);
	w->timer = ts_timer_new(ctx, tlspolicy_fire, w);
	ts_timer_start(w->timer, 50, 0);
	return TS_HOOK_PENDING;
}

static int
tlspolicy_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct tlspolicy_set *set = ts_xcalloc(1, sizeof(*set));
	set->pkix = ts_xstrdup(ts_cfg_str(s, "pkix_domain"));
	set->mx = ts_xstrdup(ts_cfg_str(s, "mx_domain"));
	set->tempfail = ts_xstrdup(ts_cfg_str(s, "tempfail_domain"));
	for (size_t i = 0; i < ts_cfg_list_len(s, "mx_patterns") && i < 8;
	     i++)
		set->pats[set->npats++] =
			ts_xstrdup(ts_cfg_list_item(s, "mx_patterns", i));
	set->pending = ts_cfg_bool(s, "pending");
	set->dane_host = ts_xstrdup(ts_cfg_str(s, "dane_host"));
	unsigned u, sel, m;
	char hex[130];
	if (sscanf(ts_cfg_str(s, "dane_tlsa"), "%u %u %u %129s", &u, &sel, &m,
		   hex) == 4) {
		size_t n = strlen(hex) / 2;
		for (size_t i = 0; i < n && i < sizeof(set->tlsa_data); i++) {
			unsigned b;
			if (sscanf(hex + 2 * i, "%2x", &b) != 1)
				break;
			set->tlsa_data[set->tlsa.len++] = (uint8_t)b;
		}
		set->tlsa.usage = (uint8_t)u;
		set->tlsa.selector = (uint8_t)sel;
		set->tlsa.matching = (uint8_t)m;
		set->tlsa.data = set->tlsa_data;
	}
	ts_ctx_set_data(ctx, set);
	return ts_hook_add(ctx, TS_HOOK_OUTBOUND_TLS_POLICY, tlspolicy_hook, 0,
			   0);
}

static void
tlspolicy_shutdown(struct ts_ctx *ctx)
{
	struct tlspolicy_set *set = ts_ctx_data(ctx);
	if (set == NULL)
		return;
	free(set->pkix);
	free(set->mx);
	free(set->tempfail);
	free(set->dane_host);
	for (size_t i = 0; i < set->npats; i++)
		free(set->pats[i]);
	free(set);
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(tlspolicy) = {
	TS_MODULE_HEADER,
	.name = "tlspolicy",
	.version = "0.1",
	.description = "test: scripted outbound TLS policies",
	.config_keys = tlspolicy_keys,
	.init = tlspolicy_init,
	.shutdown = tlspolicy_shutdown,
};
