/*
 * tests/modules/needs_missing.c — requires a module that is not
 * installed; ordering must say it is not configured.
 */
#include <tessera/tessera.h>

static const char *const needs_missing_requires[] = { "nosuchmod", NULL };

TS_MODULE(needs_missing) = {
	TS_MODULE_HEADER,
	.name = "needs_missing",
	.requires = needs_missing_requires,
};
