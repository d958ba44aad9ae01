/*
 * kernel/store/accounts.c — placeholder; being written.
 */
#include "config.h"

#include "kernel/store/accounts.h"

const struct ts_cfg_key ts__domain_keys[] = { { .name = NULL } };
const struct ts_cfg_key ts__account_keys[] = { { .name = NULL } };

int
ts__accounts_check(struct ts_cfg *cfg)
{
	(void)cfg;
	return 0;
}

int
ts__accounts_apply(struct ts_kernel *k, const struct ts_cfg *cfg)
{
	(void)k;
	(void)cfg;
	return 0;
}

void
ts__accounts_free(struct ts_kernel *k)
{
	(void)k;
}
