/*
 * modules/smtp/smtp.c — the smtp module's descriptor, settings and init.
 *
 * It declares the `[module smtp]` keys, turns them (plus [core] hostname
 * and data_dir) into struct smtp_settings, and registers the three
 * protocol services a listener can name: "smtp" (inbound, port 25),
 * "submission" (587, STARTTLS then AUTH) and "submissions" (465,
 * implicit TLS).  They share session.c and differ only in a mode flag.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"

static const struct ts_cfg_key smtp_keys[] = {
	{ .name = "max_messages_per_day",
	  .type = TS_CFG_INT,
	  .default_value = "1000",
	  .min = 0,
	  .max = 100000000,
	  .doc = "messages with remote recipients an authenticated account "
		 "may send per 24 hours (0: no limit); then MAIL gets 451 "
		 "4.7.1" },
	{ .name = "max_new_recipients_per_day",
	  .type = TS_CFG_INT,
	  .default_value = "200",
	  .min = 0,
	  .max = 100000000,
	  .doc = "remote addresses an account never sent to before that it "
		 "may send to per 24 hours (0: no limit); then RCPT gets 451 "
		 "4.7.1" },
	{ .name = "max_message_size",
	  .type = TS_CFG_SIZE,
	  .default_value = "50M",
	  .doc = "largest message accepted (advertised as SIZE, enforced "
		 "while reading)" },
	{ .name = "max_recipients",
	  .type = TS_CFG_INT,
	  .default_value = "100",
	  .min = 1,
	  .max = 100000,
	  .doc = "recipients per message; more get 452 4.5.3" },
	{ .name = "max_errors",
	  .type = TS_CFG_INT,
	  .default_value = "10",
	  .min = 1,
	  .max = 1000,
	  .doc = "bad commands per session before 421 and close" },
	{ .name = "spool_dir",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "where messages are spooled while received (default: "
		 "DATA_DIR/spool/smtp; keep it on the data_dir filesystem)" },
	{ .name = "allow_plaintext_auth",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "offer AUTH on submission without TLS (testing only)" },
	{ .name = "eight_bit_without_8bitmime",
	  .type = TS_CFG_ENUM,
	  .default_value = "reject",
	  .choices = "reject|accept",
	  .doc = "8-bit message data when the client did not say "
		 "BODY=8BITMIME or SMTPUTF8" },
	{ .name = "accept_all",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "deliver every recipient, any domain, to this account's "
		 "Inbox, also on submission (development servers; empty: "
		 "off)" },
	{ .name = "test_localparts",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "recipients temperror… get 451, permerror… 550, timeout… "
		 "an answer after 30 s (development servers)" },
	{ .name = "pedantic",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "parse submission as strictly as port 25 (no space after "
		 "MAIL FROM:, no unbracketed paths or odd EHLO names)" },
	{ .name = NULL },
};

static void
smtp_settings_free(struct smtp_settings *set)
{
	if (set == NULL)
		return;
	free(set->hostname);
	free(set->spool_dir);
	free(set->accept_all);
	free(set);
}

static struct smtp_settings *
smtp_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	struct smtp_settings *set = ts_xcalloc(1, sizeof(*set));

	set->hostname = ts_cfg_hostname(cfg);
	const char *spool = ts_cfg_str(s, "spool_dir");
	if (spool != NULL && spool[0] != '\0')
		set->spool_dir = ts_xstrdup(spool);
	else
		set->spool_dir = ts_xasprintf(
			"%s/spool/smtp",
			core != NULL ? ts_cfg_str(core, "data_dir") : ".");
	set->max_size = ts_cfg_size(s, "max_message_size");
	set->max_recipients = (unsigned)ts_cfg_int(s, "max_recipients");
	set->max_errors = (unsigned)ts_cfg_int(s, "max_errors");
	set->allow_plaintext_auth = ts_cfg_bool(s, "allow_plaintext_auth");
	set->accept_8bit = strcmp(ts_cfg_str(s, "eight_bit_without_8bitmime"),
				  "accept") == 0;
	const char *all = ts_cfg_str(s, "accept_all");
	if (all != NULL && all[0] != '\0')
		set->accept_all = ts_xstrdup(all);
	set->test_localparts = ts_cfg_bool(s, "test_localparts");
	set->pedantic = ts_cfg_bool(s, "pedantic");
	set->max_messages_per_day =
		(unsigned)ts_cfg_int(s, "max_messages_per_day");
	set->max_new_recipients_per_day =
		(unsigned)ts_cfg_int(s, "max_new_recipients_per_day");
	return set;
}

struct smtp_settings *
smtp_settings(const struct ts_ctx *ctx)
{
	return ts_ctx_data(ctx);
}

static int
smtp_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, smtp_settings_new(cfg, ctx));
	int rc = ts_service_add(ctx, "protocol", "smtp", &smtp_protocol_smtp,
				sizeof(smtp_protocol_smtp));
	if (rc == 0)
		rc = ts_service_add(ctx, "protocol", "submission",
				    &smtp_protocol_submission,
				    sizeof(smtp_protocol_submission));
	if (rc == 0)
		rc = ts_service_add(ctx, "protocol", "submissions",
				    &smtp_protocol_submissions,
				    sizeof(smtp_protocol_submissions));
	if (rc == 0)
		rc = smtp_limits_init(ctx);
	return rc;
}

static int
smtp_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	smtp_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, smtp_settings_new(cfg, ctx));
	return 0;
}

static void
smtp_shutdown_module(struct ts_ctx *ctx)
{
	smtp_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(smtp) = {
	TS_MODULE_HEADER,
	.name = "smtp",
	.version = "0.1",
	.description = "SMTP: inbound mail, submission, local delivery",
	.config_keys = smtp_keys,
	.init = smtp_init,
	.reload = smtp_reload,
	.shutdown = smtp_shutdown_module,
};
