/*
 * tests/modules/cyc_a.c — requires cyc_b, which requires cyc_a: ordering
 * must report "requirement cycle cyc_a -> cyc_b -> cyc_a".
 */
#include <tessera/tessera.h>

static const char *const cyc_a_requires[] = { "cyc_b", NULL };

TS_MODULE(cyc_a) = {
	TS_MODULE_HEADER,
	.name = "cyc_a",
	.requires = cyc_a_requires,
};
