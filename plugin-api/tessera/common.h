/*
 * tessera/common.h — types and conventions shared by every plugin header.
 *
 * Error codes, the opaque per-module context, and the allocation helpers
 * that abort on out-of-memory.  Nothing here depends on libuv, GnuTLS or any
 * other library: a module needs only the C library and these headers.
 */
#ifndef TESSERA_COMMON_H
#define TESSERA_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define TS_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define TS_PRINTF(fmt, args)
#define TS_WARN_UNUSED
#endif

/*
 * Error codes.  Functions return 0 on success and one of these (negative)
 * on failure; a human-readable reason, where there is one, comes back
 * through a `const char **error_r` or is logged by the kernel.
 */
enum ts_error {
	TS_OK = 0,
	TS_E_INVAL = -1, /* bad argument or bad configuration value */
	TS_E_EXIST = -2, /* name already registered */
	TS_E_NOTFOUND = -3, /* no such name, token or object */
	TS_E_STALE = -4, /* token already used, timed out or cancelled */
	TS_E_STATE = -5, /* call not allowed now (e.g. after init) */
	TS_E_IO = -6, /* system error; errno-style detail in logs */
	TS_E_NOMEM = -7, /* a bounded budget was exceeded */
};

/* Human-readable name of a TS_E_* code ("stale token"); never NULL. */
const char *ts_strerror(int code);

/*
 * The context the kernel hands to each module: its identity, its
 * registrations and its log prefix.  Opaque; it lives from before the
 * module's init until after its shutdown.  Every kernel call that acts on
 * behalf of a module takes it.
 */
struct ts_ctx;

/* Name of the module owning ctx ("spf"); "kernel" for the kernel's own. */
const char *ts_ctx_name(const struct ts_ctx *ctx);

/*
 * A module's private state pointer.  Set it in init, read it anywhere;
 * the kernel never touches it.  Free what it points to in shutdown.
 */
void ts_ctx_set_data(struct ts_ctx *ctx, void *data);
void *ts_ctx_data(const struct ts_ctx *ctx);

/* Monotonic milliseconds of the event loop (cached at each loop turn). */
uint64_t ts_now_ms(const struct ts_ctx *ctx);

/*
 * Allocation that never returns NULL: on out-of-memory the process logs
 * and aborts, so callers need not pretend to handle it.  Free with free().
 */
void *ts_xmalloc(size_t size);
void *ts_xcalloc(size_t nmemb, size_t size);
void *ts_xrealloc(void *ptr, size_t size);
char *ts_xstrdup(const char *s);
char *ts_xstrndup(const char *s, size_t n);
/* printf into a freshly allocated string; the caller frees it. */
char *ts_xasprintf(const char *fmt, ...) TS_PRINTF(1, 2);
char *ts_xvasprintf(const char *fmt, va_list ap) TS_PRINTF(1, 0);

#ifdef __cplusplus
}
#endif
#endif
