/*
 * tests/modules/undef_sym.c — calls a function nothing defines.  Opened
 * lazily it would load and crash in init; the loader uses RTLD_NOW, so
 * opening it must fail.
 */
#include <tessera/tessera.h>

void ts_does_not_exist(void);

static int
undef_sym_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	(void)ctx;
	(void)cfg;
	ts_does_not_exist();
	return 0;
}

TS_MODULE(undef_sym) = {
	TS_MODULE_HEADER,
	.name = "undef_sym",
	.init = undef_sym_init,
};
