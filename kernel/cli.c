/*
 * kernel/cli.c — the registry of subcommands that modules add.
 *
 * Built-in commands (serve, config, module, …) live in commands.c and
 * cannot be shadowed; this file only keeps what modules register during
 * init and finds it again for main().
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/commands.h"
#include "kernel/kernel.h"

static bool
ts_cli_name_valid(const char *name)
{
	if (name == NULL || *name == '\0' || *name == '-')
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

int
ts_cli_add(struct ts_ctx *ctx, const char *name, const char *summary,
	   const char *usage, ts_cli_fn fn)
{
	struct ts_kernel *k = ctx->kernel;

	if (k->phase != TS__PHASE_INIT)
		return TS_E_STATE;
	if (!ts_cli_name_valid(name) || fn == NULL)
		return TS_E_INVAL;
	if (ts__command_is_builtin(name) || ts__cli_find(k, name) != NULL) {
		ts_log(ctx, TS_LOG_ERROR, "cli command already exists name=%s",
		       name);
		return TS_E_EXIST;
	}
	k->cli = ts_xrealloc(k->cli, (k->cli_count + 1) * sizeof(*k->cli));
	k->cli[k->cli_count++] = (struct ts__cli_cmd){
		.name = ts_xstrdup(name),
		.summary = ts_xstrdup(summary != NULL ? summary : ""),
		.usage = ts_xstrdup(usage != NULL ? usage : ""),
		.fn = fn,
		.owner = ctx,
	};
	return 0;
}

const struct ts__cli_cmd *
ts__cli_find(const struct ts_kernel *k, const char *name)
{
	for (size_t i = 0; i < k->cli_count; i++)
		if (strcmp(k->cli[i].name, name) == 0)
			return &k->cli[i];
	return NULL;
}

void
ts__cli_free(struct ts_kernel *k)
{
	for (size_t i = 0; i < k->cli_count; i++) {
		free(k->cli[i].name);
		free(k->cli[i].summary);
		free(k->cli[i].usage);
	}
	free(k->cli);
	k->cli = NULL;
	k->cli_count = 0;
}
