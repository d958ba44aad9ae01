/*
 * tests/modules/cyc_b.c — requires cyc_a, which requires cyc_b (see
 * cyc_a.c).
 */
#include <tessera/tessera.h>

static const char *const cyc_b_requires[] = { "cyc_a", NULL };

TS_MODULE(cyc_b) = {
	TS_MODULE_HEADER,
	.name = "cyc_b",
	.requires = cyc_b_requires,
};
