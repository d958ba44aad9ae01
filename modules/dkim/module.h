/*
 * modules/dkim/module.h — what the dkim module's kernel-facing files share:
 * the settings read at start, the two hook functions and the CLI command.
 */
#ifndef TESSERA_DKIM_MODULE_H
#define TESSERA_DKIM_MODULE_H

#include <tessera/tessera.h>

#include "dkim.h"

/* A signing domain: `[dkim NAME]` and its keys. */
struct dkim_domain {
	char *name;
	struct dkim_sign_key *keys;
	size_t key_count;
};

struct dkim_settings {
	bool verify, sign;
	size_t max_signatures;
	uint64_t expire; /* seconds; 0: no x= */
	enum dkim_canon hcanon, bcanon;
	char **headers;
	size_t header_count;
	char **oversign;
	size_t oversign_count;
	struct dkim_domain *domains;
	size_t domain_count;
};

struct dkim_settings *dkim_settings(const struct ts_ctx *ctx);
void dkim_settings_free(struct dkim_settings *set);

/* hooks.c */
int dkim_verify_hook(struct ts_hook_call *call);
int dkim_sign_hook(struct ts_hook_call *call);

/* genkey.c */
int dkim_cli(struct ts_ctx *ctx, int argc, char **argv);

#endif
