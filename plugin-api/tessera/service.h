/*
 * tessera/service.h — the service registry.
 *
 * A module offers named implementations of a kind ("transport", "sasl",
 * "http_route", "store", "tls_policy", "protocol", …) as a vtable: a
 * struct of function pointers whose layout the kind's header defines.  The
 * registry only stores and finds them; the kernel owns the registrations
 * and drops them after the module's shutdown.
 */
#ifndef TESSERA_SERVICE_H
#define TESSERA_SERVICE_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Register `vtable` (not copied: it must outlive the module, normally a
 * static const struct) of `size` bytes as kind/name.  Only during init.
 * Returns 0, TS_E_EXIST when kind/name is taken (the error is logged with
 * both module names), TS_E_STATE after init.
 */
int ts_service_add(struct ts_ctx *ctx, const char *kind, const char *name,
		   const void *vtable, size_t size);

/*
 * Find kind/name.  Returns NULL when there is none, or when its vtable is
 * smaller than min_size (an older module lacking fields the caller needs).
 * If owner_r is not NULL it receives the owning module's context.
 */
const void *ts_service_find(const struct ts_ctx *ctx, const char *kind,
			    const char *name, size_t min_size,
			    struct ts_ctx **owner_r);

/* Number of services of a kind; name_r of index i via ts_service_name. */
size_t ts_service_count(const struct ts_ctx *ctx, const char *kind);
const char *ts_service_name(const struct ts_ctx *ctx, const char *kind,
			    size_t i);

#ifdef __cplusplus
}
#endif
#endif
