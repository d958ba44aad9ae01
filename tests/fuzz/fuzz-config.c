/*
 * tests/fuzz/fuzz-config.c — fuzz the configuration reader.
 *
 * The input (as a C string) is an INI file for ts__cfg_parse_string
 * (kernel/config-parse.c with inih): sections, keys, include directives
 * and malformed lines must all end as a config or recorded errors.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct ts_cfg *cfg;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	cfg = ts__cfg_parse_string("fuzz.ini", text);
	ts__cfg_free(&cfg);
	free(text);
	return 0;
}
