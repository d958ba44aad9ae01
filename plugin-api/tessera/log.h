/*
 * tessera/log.h — structured logging.
 *
 * One line per event: a time stamp, the level, `module=NAME`, the
 * connection id where there is one, then the caller's lower-case message
 * and key=value fields.  Levels are ordered; a line is written when its
 * level is at or above the configured verbosity ([core] log_level).
 * Authentication secrets may be logged only at TS_LOG_TRACEAUTH and message
 * contents only at TS_LOG_TRACEDATA: those two are never enabled by any
 * lower setting, so `trace` is safe to turn on in production.
 */
#ifndef TESSERA_LOG_H
#define TESSERA_LOG_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ts_log_level {
	TS_LOG_ERROR = 0,
	TS_LOG_WARN,
	TS_LOG_INFO,
	TS_LOG_DEBUG,
	TS_LOG_TRACE,
	TS_LOG_TRACEAUTH, /* SASL exchanges, passwords: only here */
	TS_LOG_TRACEDATA, /* message bytes: only here */
};

/* Name of a level ("traceauth"); parse one back with ts_log_level_parse. */
const char *ts_log_level_name(enum ts_log_level level);
int ts_log_level_parse(const char *name, enum ts_log_level *level_r);

/* Whether a line at this level would be written (to skip costly work). */
bool ts_log_enabled(const struct ts_ctx *ctx, enum ts_log_level level);

/*
 * Write one line: `fmt` is a lower-case message optionally followed by
 * key=value fields, e.g. ts_log(ctx, TS_LOG_INFO, "policy loaded
 * domain=%s", d).  A value with spaces should be quoted by the caller.
 */
void ts_log(const struct ts_ctx *ctx, enum ts_log_level level, const char *fmt,
	    ...) TS_PRINTF(3, 4);
void ts_logv(const struct ts_ctx *ctx, enum ts_log_level level, const char *fmt,
	     va_list ap) TS_PRINTF(3, 0);

#ifdef __cplusplus
}
#endif
#endif
