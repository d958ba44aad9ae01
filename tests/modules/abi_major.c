/*
 * tests/modules/abi_major.c — claims the next ABI major; the loader must
 * refuse it ("built for ABI 2.0, kernel provides 1.0").  The header fields
 * are spelled out because overriding TS_MODULE_HEADER's would warn.
 */
#include <tessera/tessera.h>

TS_MODULE(abi_major) = {
	.abi_major = TS_ABI_MAJOR + 1,
	.abi_minor = TS_ABI_MINOR,
	.struct_size = sizeof(struct ts_module),
	.build_signature = TS_BUILD_SIGNATURE,
	.name = "abi_major",
};
