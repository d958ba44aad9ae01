/*
 * kernel/alloc.c — allocation that aborts on out-of-memory, small string
 * vectors, and the text of error codes.
 *
 * A mail server that cannot allocate a few bytes cannot do anything useful;
 * aborting loudly beats half-handled NULLs in every caller.  Nothing here
 * touches the event loop.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

static void
ts_alloc_fail(size_t size)
{
	fprintf(stderr, "tessera: out of memory allocating %zu bytes\n", size);
	abort();
}

void *
ts_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		ts_alloc_fail(size);
	return p;
}

void *
ts_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		ts_alloc_fail(nmemb * size);
	return p;
}

void *
ts_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		ts_alloc_fail(size);
	return p;
}

char *
ts_xstrdup(const char *s)
{
	return ts_xstrndup(s, strlen(s));
}

char *
ts_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = ts_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
ts_xvasprintf(const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0)
		ts_alloc_fail(0);
	char *p = ts_xmalloc((size_t)len + 1);
	vsnprintf(p, (size_t)len + 1, fmt, ap);
	return p;
}

char *
ts_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = ts_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void
ts__strv_push(char ***strv, size_t *n, char *s)
{
	*strv = ts_xrealloc(*strv, (*n + 2) * sizeof(**strv));
	(*strv)[(*n)++] = s;
	(*strv)[*n] = NULL;
}

void
ts__strv_free(char ***strv)
{
	if (*strv == NULL)
		return;
	for (char **p = *strv; *p != NULL; p++)
		free(*p);
	free(*strv);
	*strv = NULL;
}

const char *
ts_strerror(int code)
{
	switch (code) {
	case TS_OK:
		return "success";
	case TS_E_INVAL:
		return "invalid argument";
	case TS_E_EXIST:
		return "already exists";
	case TS_E_NOTFOUND:
		return "not found";
	case TS_E_STALE:
		return "stale token";
	case TS_E_STATE:
		return "not allowed now";
	case TS_E_IO:
		return "input/output error";
	case TS_E_NOMEM:
		return "budget exceeded";
	}
	return "unknown error";
}
