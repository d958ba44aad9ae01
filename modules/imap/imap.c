/*
 * modules/imap/imap.c — the imap module's descriptor, settings and init.
 *
 * It declares the `[module imap]` keys, turns them (plus [core] hostname
 * and data_dir) into struct imap_settings, keeps the per-user connection
 * counts, and registers two protocol services a listener can name:
 * "imap" (port 143, STARTTLS) and "imaps" (993, implicit TLS).  Both run
 * session.c; whether TLS is implicit comes from the listener's tls key.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imap.h"

static const struct ts_cfg_key imap_keys[] = {
	{ .name = "append_limit",
	  .type = TS_CFG_SIZE,
	  .default_value = "50M",
	  .doc = "largest message APPEND takes (advertised as APPENDLIMIT)" },
	{ .name = "max_command_size",
	  .type = TS_CFG_SIZE,
	  .default_value = "1M",
	  .doc = "largest command other than APPEND, literals included" },
	{ .name = "max_errors",
	  .type = TS_CFG_INT,
	  .default_value = "20",
	  .min = 1,
	  .max = 1000,
	  .doc = "bad commands per session before BYE and close" },
	{ .name = "max_connections_per_user",
	  .type = TS_CFG_INT,
	  .default_value = "20",
	  .min = 1,
	  .max = 100000,
	  .doc = "simultaneous logged-in sessions of one account" },
	{ .name = "allow_plaintext_auth",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "allow LOGIN and AUTHENTICATE before TLS (testing only)" },
	{ .name = "idle_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "29m",
	  .doc = "how long IDLE may last before the server ends the session" },
	{ .name = "spool_dir",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "where APPENDed messages are spooled before delivery "
		 "(default: DATA_DIR/spool/imap)" },
	{ .name = NULL },
};

static void
imap_settings_free(struct imap_settings *set)
{
	if (set == NULL)
		return;
	free(set->hostname);
	free(set->spool_dir);
	free(set);
}

static struct imap_settings *
imap_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	struct imap_settings *set = ts_xcalloc(1, sizeof(*set));
	set->hostname = ts_cfg_hostname(cfg);
	const char *spool = ts_cfg_str(s, "spool_dir");
	if (spool != NULL && spool[0] != '\0')
		set->spool_dir = ts_xstrdup(spool);
	else
		set->spool_dir = ts_xasprintf(
			"%s/spool/imap",
			core != NULL ? ts_cfg_str(core, "data_dir") : ".");
	set->append_limit = ts_cfg_size(s, "append_limit");
	set->max_command = ts_cfg_size(s, "max_command_size");
	set->max_literal = set->max_command;
	set->max_errors = (unsigned)ts_cfg_int(s, "max_errors");
	set->max_connections_per_user =
		(unsigned)ts_cfg_int(s, "max_connections_per_user");
	set->allow_plaintext_auth = ts_cfg_bool(s, "allow_plaintext_auth");
	set->idle_timeout_ms = ts_cfg_duration_ms(s, "idle_timeout");
	return set;
}

struct imap_module *
imap_module(const struct ts_ctx *ctx)
{
	return ts_ctx_data(ctx);
}

struct imap_settings *
imap_settings(const struct ts_ctx *ctx)
{
	return imap_module(ctx)->set;
}

static int
imap_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	struct imap_module *m = ts_xcalloc(1, sizeof(*m));
	m->started = (int64_t)time(NULL);
	m->set = imap_settings_new(cfg, ctx);
	ts_ctx_set_data(ctx, m);
	int rc = ts_service_add(ctx, "protocol", "imap", &imap_protocol,
				sizeof(imap_protocol));
	if (rc == 0)
		rc = ts_service_add(ctx, "protocol", "imaps", &imap_protocol,
				    sizeof(imap_protocol));
	return rc;
}

static int
imap_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	struct imap_module *m = imap_module(ctx);
	imap_settings_free(m->set);
	m->set = imap_settings_new(cfg, ctx);
	return 0;
}

static void
imap_shutdown_module(struct ts_ctx *ctx)
{
	struct imap_module *m = imap_module(ctx);
	if (m == NULL)
		return;
	imap_settings_free(m->set);
	imap_recent_free(m);
	while (m->users != NULL) {
		struct imap_user_count *u = m->users;
		m->users = u->next;
		free(u->account);
		free(u);
	}
	free(m);
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(imap) = {
	TS_MODULE_HEADER,
	.name = "imap",
	.version = "0.1",
	.description = "IMAP4rev1/IMAP4rev2 access to the mail store",
	.config_keys = imap_keys,
	.init = imap_init,
	.reload = imap_reload,
	.shutdown = imap_shutdown_module,
};
