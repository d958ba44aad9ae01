/*
 * tests/modules/plain_sym.c — exports the plain `tessera_module` symbol
 * instead of plain_sym_LTX_tessera_module; the loader must fall back to it.
 */
#include <tessera/tessera.h>

extern const struct ts_module tessera_module;
const struct ts_module tessera_module = {
	TS_MODULE_HEADER,
	.name = "plain_sym",
	.version = "1.0",
	.description = "test module with a plain descriptor symbol",
};
