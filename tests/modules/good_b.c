/*
 * tests/modules/good_b.c — a valid module that requires good_a, so
 * ts__module_order must put good_a first.
 */
#include <tessera/tessera.h>

static const char *const good_b_requires[] = { "good_a", NULL };

TS_MODULE(good_b) = {
	TS_MODULE_HEADER,
	.name = "good_b",
	.version = "1.0",
	.description = "test module requiring good_a",
	.requires = good_b_requires,
};
