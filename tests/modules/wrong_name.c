/*
 * tests/modules/wrong_name.c — its descriptor calls itself "other", not
 * "wrong_name"; the loader must refuse it.
 */
#include <tessera/tessera.h>

TS_MODULE(wrong_name) = {
	TS_MODULE_HEADER,
	.name = "other",
};
