/*
 * tests/modules/abi_minor.c — claims a newer ABI minor than the kernel
 * provides; the loader must refuse it ("built for ABI 1.1, kernel
 * provides 1.0").
 */
#include <tessera/tessera.h>

TS_MODULE(abi_minor) = {
	.abi_major = TS_ABI_MAJOR,
	.abi_minor = TS_ABI_MINOR + 1,
	.struct_size = sizeof(struct ts_module),
	.build_signature = TS_BUILD_SIGNATURE,
	.name = "abi_minor",
};
