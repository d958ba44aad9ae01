/*
 * kernel/dns.h — the kernel side of the asynchronous resolver (dns.c).
 *
 * The [dns] section's keys, its semantic check, and the per-kernel
 * resolver's life cycle.  Modules use plugin-api/tessera/dns.h instead.
 */
#ifndef TESSERA_KERNEL_DNS_H
#define TESSERA_KERNEL_DNS_H

#include "kernel/kernel.h"

/* Keys of the [dns] section. */
extern const struct ts_cfg_key ts__dns_keys[];

/*
 * Semantic checks of [dns] beyond the key types, reported with
 * ts_cfg_error(): resolver = forward without forward addresses, a forward
 * address that is not IP or IP@PORT, an unreadable resolv_conf or trust
 * anchor file.  Returns 0 or TS_E_INVAL.  Touches no kernel state.
 */
int ts__dns_check(struct ts_cfg *cfg);

/*
 * Adopt the [dns] settings of cfg (checked already): the next lookup
 * creates a fresh libunbound context from them.  Lookups in flight finish
 * on the context they started on, which is deleted once they are done.
 * Call at start and after each reload; without any call the first lookup
 * reads k->cfg.  Returns 0 (error_r is for future settings that can fail
 * here; it is left alone).
 */
int ts__dns_configure(struct ts_kernel *k, const struct ts_cfg *cfg,
		      char **error_r);

/*
 * Cancel every lookup (their callbacks do not run), delete the libunbound
 * contexts and close the libuv handles; the memory goes when the loop runs
 * the close callbacks, so run the loop once more before uv_loop_close.
 * Safe when no lookup ever ran.  Sets k->dns to NULL.
 */
void ts__dns_free(struct ts_kernel *k);

#endif
