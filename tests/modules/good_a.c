/*
 * tests/modules/good_a.c — the smallest valid module: a TS_MODULE
 * descriptor with no requirements.  test-module opens it and checks every
 * field the loader fills in.
 */
#include <tessera/tessera.h>

TS_MODULE(good_a) = {
	TS_MODULE_HEADER,
	.name = "good_a",
	.version = "1.0",
	.description = "test module without requirements",
};
