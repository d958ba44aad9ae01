/*
 * modules/dmarc/dmarc.c — the dmarc module's descriptor, settings and init.
 *
 * It declares the `[module dmarc]` keys, turns them into struct
 * dmarc_settings and adds the evaluation (hook.c) to smtp_data, after the
 * spf and dkim checks whose results it reads (the module requires both),
 * and the Junk delivery of quarantined messages to deliver_local.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tessera/cli.h>
#include <tessera/config.h>
#include <tessera/hook.h>
#include <tessera/module.h>

#include "dmarc-hook.h"
#include "report.h"

/*
 * Priority of the smtp_data hook: after dkim's verification (priority 0,
 * parallel), whose results it needs, whatever the load order.
 */
#define DMARC_DATA_PRIO 10

static const struct ts_cfg_key dmarc_keys[] = {
	{ .name = "reject_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "reject",
	  .choices = "reject|quarantine|ignore",
	  .doc = "what a DMARC fail under p=reject does: reject (550 5.7.1), "
		 "quarantine (deliver to quarantine_mailbox) or ignore" },
	{ .name = "quarantine_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "quarantine",
	  .choices = "quarantine|ignore",
	  .doc = "what a DMARC fail under p=quarantine does: quarantine "
		 "(deliver to quarantine_mailbox) or ignore" },
	{ .name = "temperror_action",
	  .type = TS_CFG_ENUM,
	  .default_value = "accept",
	  .choices = "accept|tempfail",
	  .doc = "what a DMARC temperror (DNS failure, SPF/DKIM temperror) "
		 "does: accept, or tempfail (451 4.7.1)" },
	{ .name = "quarantine_mailbox",
	  .type = TS_CFG_STRING,
	  .default_value = "Junk",
	  .doc = "the mailbox quarantined messages are delivered to" },
	{ .name = "max_queries",
	  .type = TS_CFG_INT,
	  .default_value = "40",
	  .min = 8,
	  .max = 200,
	  .doc = "DNS queries per message for the tree walks of relaxed "
		 "alignment; past them an identifier does not align" },
	{ .name = "timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "20s",
	  .doc = "longest time for one message's evaluation; then it is a "
		 "temperror" },
	DMARC_REPORT_CONFIG_KEYS,
	{ .name = NULL },
};

static enum dmarc_action
dmarc_action_parse(const char *s)
{
	if (strcmp(s, "reject") == 0)
		return DMARC_ACTION_REJECT;
	if (strcmp(s, "quarantine") == 0)
		return DMARC_ACTION_QUARANTINE;
	if (strcmp(s, "tempfail") == 0)
		return DMARC_ACTION_TEMPFAIL;
	return DMARC_ACTION_IGNORE;
}

static struct dmarc_settings *
dmarc_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct dmarc_settings *set = ts_xcalloc(1, sizeof(*set));
	const char *mailbox = ts_cfg_str(s, "quarantine_mailbox");

	set->reject_action = dmarc_action_parse(ts_cfg_str(s, "reject_action"));
	set->quarantine_action =
		dmarc_action_parse(ts_cfg_str(s, "quarantine_action"));
	set->temperror_action =
		dmarc_action_parse(ts_cfg_str(s, "temperror_action"));
	set->quarantine_mailbox = ts_xstrdup(
		mailbox != NULL && mailbox[0] != '\0' ? mailbox : "Junk");
	set->max_queries = (unsigned)ts_cfg_int(s, "max_queries");
	set->timeout_ms = ts_cfg_duration_ms(s, "timeout");
	const char *ra = ts_cfg_str(s, "report_address");
	set->report_address = ra != NULL && ra[0] != '\0' ? ts_xstrdup(ra)
							  : NULL;
	set->report_max_size = ts_cfg_size(s, "report_max_size");
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	set->report_dir = ts_xasprintf(
		"%s/dmarc/reports",
		core != NULL ? ts_cfg_str(core, "data_dir") : ".");
	return set;
}

static void
dmarc_settings_free(struct dmarc_settings *set)
{
	if (set == NULL)
		return;
	free(set->quarantine_mailbox);
	free(set->report_address);
	free(set->report_dir);
	free(set);
}

static int
dmarc_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	int rc;

	ts_ctx_set_data(ctx, dmarc_settings_new(cfg, ctx));
	rc = ts_hook_add(ctx, TS_HOOK_SMTP_DATA, dmarc_data_hook,
			 DMARC_DATA_PRIO, 0);
	if (rc == 0)
		rc = ts_hook_add(ctx, TS_HOOK_DELIVER_LOCAL, dmarc_deliver_hook,
				 0, 0);
	if (rc == 0)
		rc = ts_hook_add(ctx, TS_HOOK_DELIVER_LOCAL, dmarc_report_hook,
				 0, 0);
	if (rc == 0)
		rc = ts_cli_add(ctx, "dmarc", "DMARC aggregate reports",
				"reports [--domain D] [--json] | show KEY | "
				"import FILE...",
				dmarc_report_cli);
	/* libxml2 wants its set-up on one thread before parses on others */
	dmarc_report_parser_init();
	return rc;
}

/* report_address, when set, is one local address: local@domain. */
static int
dmarc_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	const char *ra = ts_cfg_str(s, "report_address");
	const char *at = ra != NULL ? strchr(ra, '@') : NULL;
	if (ra == NULL || ra[0] == '\0')
		return 0;
	if (at == NULL || at == ra || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strpbrk(ra, " <>\t") != NULL)
		return ts_cfg_error(cfg, s, "report_address",
				    "'%s' is not an address (local@domain)",
				    ra);
	return 0;
}

static int
dmarc_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	/* checks in flight keep their own copy of what they need */
	dmarc_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, dmarc_settings_new(cfg, ctx));
	return 0;
}

static void
dmarc_shutdown(struct ts_ctx *ctx)
{
	dmarc_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

static const char *const dmarc_requires[] = { "spf", "dkim", NULL };

TS_MODULE(dmarc) = {
	TS_MODULE_HEADER,
	.name = "dmarc",
	.version = "0.1",
	.description = "DMARC (RFC 9989): evaluate the From domain's policy",
	.requires = dmarc_requires,
	.config_keys = dmarc_keys,
	.init = dmarc_init,
	.check = dmarc_check,
	.reload = dmarc_reload,
	.shutdown = dmarc_shutdown,
};
