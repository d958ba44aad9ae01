/*
 * tessera/module.h — the module descriptor and its ABI contract.
 *
 * A module is a shared object exporting exactly one `const struct
 * ts_module`, declared with TS_MODULE(name).  The kernel reads it before
 * anything else, refuses modules built for another ABI or another build
 * signature, orders modules by their requirements, then calls init in that
 * order and shutdown in reverse.
 */
#ifndef TESSERA_MODULE_H
#define TESSERA_MODULE_H

#include <tessera/common.h>
#include <tessera/config.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI version.  The major changes when an existing struct layout or
 * function signature changes; the minor when something is added.  A kernel
 * loads a module whose major equals its own and whose minor is not newer.
 */
#define TS_ABI_MAJOR 1
#define TS_ABI_MINOR 2

#define TS__STR2(x) #x
#define TS__STR(x) TS__STR2(x)

/* Sizes of the types whose width differs between otherwise equal builds. */
#if defined(_TIME_BITS) && _TIME_BITS == 64
#define TS__TIME_SIZE "8"
#else
#define TS__TIME_SIZE TS__STR(__SIZEOF_LONG__)
#endif
#if defined(_FILE_OFFSET_BITS) && _FILE_OFFSET_BITS == 64
#define TS__OFF_SIZE "8"
#else
#define TS__OFF_SIZE TS__STR(__SIZEOF_LONG__)
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TS__ASAN "1"
#else
#define TS__ASAN "0"
#endif

/*
 * Build signature: the facts of a build that must match between kernel and
 * module for their structs to agree.  Computed in the module's own
 * translation unit by TS_MODULE, compared verbatim by the loader.
 */
/* clang-format off */
#define TS_BUILD_SIGNATURE                                                   \
	"ptr=" TS__STR(__SIZEOF_POINTER__) " time=" TS__TIME_SIZE            \
	" off=" TS__OFF_SIZE " asan=" TS__ASAN
/* clang-format on */

struct ts_module {
	unsigned abi_major; /* TS_ABI_MAJOR at build time */
	unsigned abi_minor; /* TS_ABI_MINOR at build time */
	size_t struct_size; /* sizeof(struct ts_module) at build time */
	const char *build_signature; /* TS_BUILD_SIGNATURE at build time */

	const char *name; /* must equal the file's base name */
	const char *version; /* free-form, e.g. "1.2.0" */
	const char *description; /* one line for `tessera module list` */

	/*
	 * NULL-terminated lists of module names.  `requires` must be loaded
	 * and enabled or tessera refuses to start; `after`/`before` only
	 * order init (and hook ties) when both modules are present.
	 */
	const char *const *requires;
	const char *const *after;
	const char *const *before;

	/*
	 * Keys of this module's own `[module NAME]` section (besides
	 * `enabled`), and further section types it owns such as
	 * `[transport NAME]`.  Both NULL-terminated (name == NULL ends them).
	 * The kernel validates types and rejects unknown keys before check.
	 */
	const struct ts_cfg_key *config_keys;
	const struct ts_cfg_section *config_sections;

	/*
	 * init: register hooks, services, CLI commands; read cfg.  Runs once,
	 *   on the event-loop thread, before any listener accepts.  Return 0,
	 *   or a TS_E_* code after logging why (tessera then exits).
	 * check: validate cfg without side effects; report each problem with
	 *   ts_cfg_error() and return TS_E_INVAL, else 0.  Serves `tessera
	 *   config check` and SIGHUP, and runs before init too.  May be NULL.
	 * reload: adopt a new cfg that every module's check accepted.  May be
	 *   NULL (the module keeps the config it had at init).
	 * shutdown: release everything; runs in reverse init order.  May be
	 *   NULL.
	 */
	int (*init)(struct ts_ctx *ctx, const struct ts_cfg *cfg);
	int (*check)(struct ts_ctx *ctx, struct ts_cfg *cfg);
	int (*reload)(struct ts_ctx *ctx, const struct ts_cfg *cfg);
	void (*shutdown)(struct ts_ctx *ctx);
};

/*
 * Declare the module descriptor.  Use once per module, at file scope:
 *
 *   TS_MODULE(hello) = {
 *       TS_MODULE_HEADER,
 *       .name = "hello", .version = "1.0", .init = hello_init,
 *   };
 *
 * The symbol is `hello_LTX_tessera_module` (libtool's convention, which
 * lets static test builds link many modules into one binary); the loader
 * also accepts a plain `tessera_module`.
 */
#define TS_MODULE(name)                                          \
	extern const struct ts_module name##_LTX_tessera_module; \
	const struct ts_module name##_LTX_tessera_module

/* The ABI fields every descriptor starts with. */
#define TS_MODULE_HEADER                                      \
	.abi_major = TS_ABI_MAJOR, .abi_minor = TS_ABI_MINOR, \
	.struct_size = sizeof(struct ts_module),              \
	.build_signature = TS_BUILD_SIGNATURE

#ifdef __cplusplus
}
#endif
#endif
