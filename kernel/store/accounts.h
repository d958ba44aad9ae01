/*
 * kernel/store/accounts.h — domains, accounts and addresses from the
 * configuration: [domain NAME] and [account NAME] sections, kept in
 * domains.d/ by convention (accounts.c).
 */
#ifndef TESSERA_STORE_ACCOUNTS_H
#define TESSERA_STORE_ACCOUNTS_H

#include "kernel/kernel.h"

extern const struct ts_cfg_key ts__domain_keys[];
extern const struct ts_cfg_key ts__account_keys[];

/*
 * Semantic checks with file:line (ts_cfg_error): an address in an unknown
 * domain, the same address in two accounts, a bad account name, two
 * postmaster accounts, …  Returns 0 or TS_E_INVAL.
 */
int ts__accounts_check(struct ts_cfg *cfg);
/*
 * Build the lookup tables from cfg, replacing the old ones (whose strings
 * die with them).  Entries a check would refuse are left out, so an
 * unchecked cfg is safe too.  Always returns 0.
 */
int ts__accounts_apply(struct ts_kernel *k, const struct ts_cfg *cfg);
void ts__accounts_free(struct ts_kernel *k);

/* Whether `name` is a configured account (binary search). */
bool ts__account_exists(const struct ts_kernel *k, const char *name);
/* Whether `name` is the account that receives postmaster@ mail. */
bool ts__account_is_postmaster(const struct ts_kernel *k, const char *name);
/*
 * Whether `name` may be an account name: [a-z0-9._-]+, at most 64 bytes,
 * not starting with '.', so it is safe as a directory name.
 */
bool ts__account_name_ok(const char *name);

#endif
