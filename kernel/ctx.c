/*
 * kernel/ctx.c — the kernel object and the per-module context.
 *
 * struct ts_kernel holds all of the process's mutable state; each module
 * reaches it through its struct ts_ctx.  This file creates and destroys
 * the kernel and answers the small questions a module asks of its ctx.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/dns.h"
#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"
#include "kernel/kernel.h"

void
ts__kernel_init(struct ts_kernel *k, uv_loop_t *loop)
{
	memset(k, 0, sizeof(*k));
	k->loop = loop;
	k->phase = TS__PHASE_LOAD;
	k->log.level = TS_LOG_INFO;
	k->log.max = TS_LOG_TRACEDATA;
	k->log.out = stderr;
	k->kctx.kernel = k;
	k->kctx.name = "kernel";
	k->kctx.index = 0;
	k->hook_timeout_ms = 30000;
	k->shutdown_grace_ms = 30000;
	k->hooks = ts__hooks_new(k);
}

void
ts__kernel_fini(struct ts_kernel *k)
{
	/* Sessions are gone by now, and with them their lookups. */
	ts__dns_free(k);
	/* The loop has drained: no store job is running any more. */
	ts__queue_free(k);
	ts__stores_free(k);
	ts__accounts_free(k);
	ts__hooks_free(&k->hooks);
	ts__services_free(k);
	ts__cli_free(k);
	ts__cfg_free(&k->cfg);
	free(k->conn_read_buf);
	k->conn_read_buf = NULL;
	free(k->modules);
	k->modules = NULL;
	k->module_count = 0;
	if (k->log.owns_out && k->log.out != NULL)
		fclose(k->log.out);
	k->log.out = stderr;
	k->log.owns_out = false;
}

const char *
ts_ctx_name(const struct ts_ctx *ctx)
{
	return ctx->name;
}

void
ts_ctx_set_data(struct ts_ctx *ctx, void *data)
{
	ctx->data = data;
}

void *
ts_ctx_data(const struct ts_ctx *ctx)
{
	return ctx->data;
}

uint64_t
ts_now_ms(const struct ts_ctx *ctx)
{
	return uv_now(ctx->kernel->loop);
}

char *
ts_cfg_hostname(const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	const char *name = core != NULL ? ts_cfg_str(core, "hostname") : NULL;
	if (name != NULL && *name != '\0')
		return ts_xstrdup(name);
	char buf[256];
	size_t len = sizeof(buf);
	if (uv_os_gethostname(buf, &len) == 0 && buf[0] != '\0')
		return ts_xstrdup(buf);
	return ts_xstrdup("localhost");
}

const struct ts_cfg_sect *
ts_cfg_module_section(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	return ts_cfg_find(cfg, "module", ctx->name);
}
