/*
 * kernel/service.c — the registry of named services.
 *
 * Modules register vtables under (kind, name) during init; protocol
 * listeners, routes and transports find them by name later.  The registry
 * is small (tens of entries) and read rarely, so a flat array is enough.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

int
ts_service_add(struct ts_ctx *ctx, const char *kind, const char *name,
	       const void *vtable, size_t size)
{
	struct ts_kernel *k = ctx->kernel;

	if (k->phase != TS__PHASE_INIT) {
		ts_log(ctx, TS_LOG_ERROR,
		       "service registered outside init kind=%s name=%s", kind,
		       name);
		return TS_E_STATE;
	}
	if (kind == NULL || name == NULL || vtable == NULL || *kind == '\0' ||
	    *name == '\0')
		return TS_E_INVAL;
	for (size_t i = 0; i < k->service_count; i++) {
		struct ts__service *s = &k->services[i];
		if (strcmp(s->kind, kind) == 0 && strcmp(s->name, name) == 0) {
			ts_log(ctx, TS_LOG_ERROR,
			       "service already registered kind=%s name=%s "
			       "owner=%s",
			       kind, name, s->owner->name);
			return TS_E_EXIST;
		}
	}
	k->services = ts_xrealloc(k->services, (k->service_count + 1) *
						       sizeof(*k->services));
	k->services[k->service_count++] = (struct ts__service){
		.kind = ts_xstrdup(kind),
		.name = ts_xstrdup(name),
		.vtable = vtable,
		.size = size,
		.owner = ctx,
	};
	return 0;
}

const void *
ts_service_find(const struct ts_ctx *ctx, const char *kind, const char *name,
		size_t min_size, struct ts_ctx **owner_r)
{
	const struct ts_kernel *k = ctx->kernel;

	for (size_t i = 0; i < k->service_count; i++) {
		const struct ts__service *s = &k->services[i];
		if (strcmp(s->kind, kind) != 0 || strcmp(s->name, name) != 0)
			continue;
		if (s->size < min_size)
			return NULL;
		if (owner_r != NULL)
			*owner_r = s->owner;
		return s->vtable;
	}
	return NULL;
}

size_t
ts_service_count(const struct ts_ctx *ctx, const char *kind)
{
	size_t n = 0;
	for (size_t i = 0; i < ctx->kernel->service_count; i++)
		if (strcmp(ctx->kernel->services[i].kind, kind) == 0)
			n++;
	return n;
}

const char *
ts_service_name(const struct ts_ctx *ctx, const char *kind, size_t i)
{
	for (size_t j = 0; j < ctx->kernel->service_count; j++) {
		const struct ts__service *s = &ctx->kernel->services[j];
		if (strcmp(s->kind, kind) != 0)
			continue;
		if (i-- == 0)
			return s->name;
	}
	return NULL;
}

void
ts__services_free(struct ts_kernel *k)
{
	for (size_t i = 0; i < k->service_count; i++) {
		free(k->services[i].kind);
		free(k->services[i].name);
	}
	free(k->services);
	k->services = NULL;
	k->service_count = 0;
}
