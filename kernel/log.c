/*
 * kernel/log.c — structured, levelled log lines.
 *
 * One line per event: `TIME LEVEL module=NAME [conn=ID remote=IP] message
 * key=value…`, written whole with one fputs so lines from the loop thread
 * never interleave.  The verbosity comes from [core] log_level; the two
 * secret-bearing levels (traceauth, tracedata) sit above trace, so no lower
 * setting can ever print passwords or message bytes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kernel/kernel.h"

static const char *const ts_log_level_names[] = {
	[TS_LOG_ERROR] = "error",	  [TS_LOG_WARN] = "warn",
	[TS_LOG_INFO] = "info",		  [TS_LOG_DEBUG] = "debug",
	[TS_LOG_TRACE] = "trace",	  [TS_LOG_TRACEAUTH] = "traceauth",
	[TS_LOG_TRACEDATA] = "tracedata",
};

const char *
ts_log_level_name(enum ts_log_level level)
{
	if ((unsigned)level > TS_LOG_TRACEDATA)
		return "unknown";
	return ts_log_level_names[level];
}

int
ts_log_level_parse(const char *name, enum ts_log_level *level_r)
{
	for (unsigned i = 0; i <= TS_LOG_TRACEDATA; i++) {
		if (strcasecmp(name, ts_log_level_names[i]) == 0) {
			*level_r = (enum ts_log_level)i;
			return 0;
		}
	}
	return TS_E_INVAL;
}

bool
ts_log_enabled(const struct ts_ctx *ctx, enum ts_log_level level)
{
	if (ctx == NULL || ctx->kernel == NULL)
		return level <= TS_LOG_INFO;
	return level <= ctx->kernel->log.level;
}

void
ts__log_write(struct ts__log *log, uv_loop_t *loop, enum ts_log_level level,
	      const char *module, uint64_t conn_id, const char *remote,
	      const char *fmt, va_list ap)
{
	FILE *out = log != NULL && log->out != NULL ? log->out : stderr;
	(void)loop;

	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);

	char prefix[160];
	int n = snprintf(prefix, sizeof(prefix),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s module=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec,
			 now.tv_nsec / 1000000, ts_log_level_name(level),
			 module != NULL ? module : "kernel");
	if (n < 0)
		return;
	if (conn_id != 0 && (size_t)n < sizeof(prefix))
		snprintf(prefix + n, sizeof(prefix) - (size_t)n,
			 " conn=%llu remote=%s", (unsigned long long)conn_id,
			 remote != NULL ? remote : "-");

	char *text = ts_xvasprintf(fmt, ap);
	/* A message must stay on one line whatever a peer sent us. */
	for (char *p = text; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	char *line = ts_xasprintf("%s %s\n", prefix, text);
	fputs(line, out);
	fflush(out);
	free(line);
	free(text);
}

void
ts_logv(const struct ts_ctx *ctx, enum ts_log_level level, const char *fmt,
	va_list ap)
{
	if (!ts_log_enabled(ctx, level))
		return;
	struct ts_kernel *k = ctx != NULL ? ctx->kernel : NULL;
	ts__log_write(k != NULL ? &k->log : NULL, k != NULL ? k->loop : NULL,
		      level, ctx != NULL ? ctx->name : NULL, 0, NULL, fmt, ap);
}

void
ts_log(const struct ts_ctx *ctx, enum ts_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ts_logv(ctx, level, fmt, ap);
	va_end(ap);
}
