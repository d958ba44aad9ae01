/*
 * tests/fuzz/fuzz-thread-header.c — fuzz the store's threading headers.
 *
 * The input is a message header for ts__thread_headers_parse
 * (kernel/store/thread-header.c: Message-ID, References, In-Reply-To,
 * Subject, Date) and, as a C string, a subject for ts__subject_base.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"
#include "kernel/store/store-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts__thread_headers h;
	char *s, *base;

	memset(&h, 0, sizeof(h));
	(void)ts__thread_headers_parse((const char *)data, size, &h);
	ts__thread_headers_free(&h);

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	base = ts__subject_base(s);
	free(base);
	free(s);
	return 0;
}
