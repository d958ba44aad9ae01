/*
 * modules/spf/spf.c — the spf module's descriptor, settings and init.
 *
 * It declares the `[module spf]` keys, turns them into struct
 * spf_settings and adds the check (hook.c) to smtp_mail as a PARALLEL
 * hook, so its DNS waits overlap those of other read-only checks (DKIM).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tessera/config.h>
#include <tessera/hook.h>
#include <tessera/module.h>

#include "spf.h"
#include "spf-hook.h"

static const struct ts_cfg_key spf_keys[] = {
	{ .name = "fail_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|reject|tempfail",
	  .doc = "what an SPF fail of MAIL FROM does: ignore (DMARC and "
		 "the junk filter decide), reject (550 5.7.23) or tempfail" },
	{ .name = "softfail_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|reject|tempfail",
	  .doc = "what an SPF softfail of MAIL FROM does" },
	{ .name = "temperror_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|tempfail",
	  .doc = "what an SPF temperror (DNS failure) of MAIL FROM does: "
		 "ignore, or tempfail (451 4.7.24)" },
	{ .name = "helo_fail_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "ignore",
	  .choices = "ignore|reject|tempfail",
	  .doc = "what an SPF fail of the HELO identity does when MAIL "
		 "FROM's result asked for nothing: ignore, reject (550 "
		 "5.7.23) or tempfail" },
	{ .name = "check_helo",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "also check the HELO identity (RFC 7208 2.3)" },
	{ .name = "max_dns_mechanisms",
	  .type = TS_CFG_INT,
	  .default_value = "10",
	  .min = 1,
	  .max = 100,
	  .doc = "terms that query DNS per check (RFC 7208 4.6.4: 10)" },
	{ .name = "max_void_lookups",
	  .type = TS_CFG_INT,
	  .default_value = "2",
	  .min = 0,
	  .max = 100,
	  .doc = "DNS lookups with empty answers per check (RFC 7208 "
		 "4.6.4: 2)" },
	{ .name = "timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "20s",
	  .doc = "longest time for the checks of one MAIL; then the "
		 "unfinished ones are temperror" },
	{ .name = NULL },
};

static enum spf_action
spf_action_parse(const char *s)
{
	if (strcmp(s, "reject") == 0)
		return SPF_ACTION_REJECT;
	if (strcmp(s, "tempfail") == 0)
		return SPF_ACTION_TEMPFAIL;
	return SPF_ACTION_IGNORE;
}

static struct spf_settings *
spf_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct spf_settings *set = ts_xcalloc(1, sizeof(*set));
	set->hostname = ts_cfg_hostname(cfg);
	set->fail_action = spf_action_parse(ts_cfg_str(s, "fail_action"));
	set->softfail_action =
		spf_action_parse(ts_cfg_str(s, "softfail_action"));
	set->temperror_action =
		spf_action_parse(ts_cfg_str(s, "temperror_action"));
	set->helo_fail_action =
		spf_action_parse(ts_cfg_str(s, "helo_fail_action"));
	set->check_helo = ts_cfg_bool(s, "check_helo");
	set->max_dns = (unsigned)ts_cfg_int(s, "max_dns_mechanisms");
	set->max_void = (unsigned)ts_cfg_int(s, "max_void_lookups");
	set->timeout_ms = ts_cfg_duration_ms(s, "timeout");
	return set;
}

static void
spf_settings_free(struct spf_settings *set)
{
	if (set == NULL)
		return;
	free(set->hostname);
	free(set);
}

static int
spf_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, spf_settings_new(cfg, ctx));
	return ts_hook_add(ctx, TS_HOOK_SMTP_MAIL, spf_mail_hook, 0,
			   TS_HOOK_PARALLEL);
}

static int
spf_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	/* checks in flight keep their own copy of what they need */
	spf_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, spf_settings_new(cfg, ctx));
	return 0;
}

static void
spf_shutdown(struct ts_ctx *ctx)
{
	spf_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(spf) = {
	TS_MODULE_HEADER,
	.name = "spf",
	.version = "0.1",
	.description = "SPF (RFC 7208): check HELO and MAIL FROM",
	.config_keys = spf_keys,
	.init = spf_init,
	.reload = spf_reload,
	.shutdown = spf_shutdown,
};
