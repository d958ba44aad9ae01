/*
 * tests/modules/bad_sig.c — carries the build signature of a 32-bit
 * build; the loader must refuse it, quoting both signatures.
 */
#include <tessera/tessera.h>

TS_MODULE(bad_sig) = {
	.abi_major = TS_ABI_MAJOR,
	.abi_minor = TS_ABI_MINOR,
	.struct_size = sizeof(struct ts_module),
	.build_signature = "ptr=4 time=4 off=4 asan=0",
	.name = "bad_sig",
};
