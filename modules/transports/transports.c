/*
 * modules/transports/transports.c — the transports module's descriptor,
 * settings and init.
 *
 * It declares the `[module transports]` keys, turns them (plus [core]
 * hostname) into struct tr_settings, and registers the services of kind
 * "transport" the outbound queue hands deliveries to: for now "direct"
 * (MX lookup and SMTP to the recipient domain's servers, direct.c).
 * Relay transports (smtp, submission, socks) and the routes that choose
 * between them are to come; they will be further services here.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transports.h"

static const struct ts_cfg_key tr_keys[] = {
	{ .name = "helo_name",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "name given in EHLO/HELO (empty: [core] hostname)" },
	{ .name = "direct_port",
	  .type = TS_CFG_INT,
	  .default_value = "25",
	  .min = 1,
	  .max = 65535,
	  .doc = "port direct delivery connects to (a test knob; the "
		 "internet uses 25)" },
	{ .name = "connect_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "30s",
	  .doc = "time to establish a connection, per address" },
	{ .name = "command_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "5m",
	  .doc = "time to wait for the greeting and each reply, and for "
		 "progress while sending data (RFC 5321 4.5.3.2)" },
	{ .name = "data_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "10m",
	  .doc = "time to wait for the reply to the end of the data (RFC "
		 "5321 4.5.3.2.6)" },
	{ .name = "address_family",
	  .type = TS_CFG_ENUM,
	  .default_value = "ipv6-first",
	  .choices = "ipv6-first|ipv4-first|ipv6-only|ipv4-only",
	  .doc = "which addresses of a mail server to try, in which order" },
	{ .name = "starttls",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "use STARTTLS when the server offers it (opportunistic, "
		 "unverified); REQUIRETLS messages always use verified TLS" },
	{ .name = "tls_ca_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "PEM bundle of CAs for verified outbound TLS (empty: the "
		 "system's trust store)" },
	{ .name = NULL },
};

static void
tr_settings_free(struct tr_settings *set)
{
	if (set == NULL)
		return;
	free(set->helo_name);
	free(set->tls_ca_file);
	free(set);
}

static struct tr_settings *
tr_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	struct tr_settings *set = ts_xcalloc(1, sizeof(*set));

	const char *helo = ts_cfg_str(s, "helo_name");
	if (helo == NULL || helo[0] == '\0')
		helo = core != NULL ? ts_cfg_str(core, "hostname") : NULL;
	if (helo != NULL && helo[0] != '\0') {
		set->helo_name = ts_xstrdup(helo);
	} else {
		char buf[HOST_NAME_MAX + 1];
		if (gethostname(buf, sizeof(buf)) != 0 || buf[0] == '\0')
			strcpy(buf, "localhost");
		buf[sizeof(buf) - 1] = '\0';
		set->helo_name = ts_xstrdup(buf);
	}
	set->direct_port = (unsigned)ts_cfg_int(s, "direct_port");
	set->connect_timeout_ms = ts_cfg_duration_ms(s, "connect_timeout");
	set->command_timeout_ms = ts_cfg_duration_ms(s, "command_timeout");
	set->data_timeout_ms = ts_cfg_duration_ms(s, "data_timeout");
	if (tr_family_parse(ts_cfg_str(s, "address_family"), &set->family) != 0)
		set->family = TR_FAMILY_IPV6_FIRST; /* the enum checked it */
	set->starttls = ts_cfg_bool(s, "starttls");
	const char *ca = ts_cfg_str(s, "tls_ca_file");
	if (ca != NULL && ca[0] != '\0')
		set->tls_ca_file = ts_xstrdup(ca);
	return set;
}

const struct tr_settings *
tr_settings(const struct ts_ctx *ctx)
{
	return ts_ctx_data(ctx);
}

static int
tr_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	int rc = 0;
	static const char *const timeouts[] = { "connect_timeout",
						"command_timeout",
						"data_timeout" };
	for (size_t i = 0; i < 3; i++)
		if (ts_cfg_duration_ms(s, timeouts[i]) == 0)
			rc = ts_cfg_error(cfg, s, timeouts[i],
					  "%s must be more than 0",
					  timeouts[i]);
	const char *ca = ts_cfg_str(s, "tls_ca_file");
	if (ca != NULL && ca[0] != '\0' && access(ca, R_OK) != 0)
		rc = ts_cfg_error(cfg, s, "tls_ca_file", "cannot read %s", ca);
	return rc;
}

static int
tr_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, tr_settings_new(cfg, ctx));
	return ts_service_add(ctx, "transport", "direct", &tr_direct_transport,
			      sizeof(tr_direct_transport));
}

/*
 * Deliveries in flight copy what they keep (the HELO name) and read the
 * rest when they need it, so a reload applies from their next step.
 */
static int
tr_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	tr_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, tr_settings_new(cfg, ctx));
	return 0;
}

static void
tr_shutdown(struct ts_ctx *ctx)
{
	tr_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(transports) = {
	TS_MODULE_HEADER,
	.name = "transports",
	.version = "0.1",
	.description = "outbound transports: direct delivery to MX hosts",
	.config_keys = tr_keys,
	.init = tr_init,
	.check = tr_check,
	.reload = tr_reload,
	.shutdown = tr_shutdown,
};
