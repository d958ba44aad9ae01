/*
 * tests/modules/bad_size.c — says its descriptor is 40 bytes, as a module
 * built against a different struct layout would; the loader must refuse
 * it ("descriptor size 40, kernel expects …").
 */
#include <tessera/tessera.h>

TS_MODULE(bad_size) = {
	.abi_major = TS_ABI_MAJOR,
	.abi_minor = TS_ABI_MINOR,
	.struct_size = 40,
	.build_signature = TS_BUILD_SIGNATURE,
	.name = "bad_size",
};
