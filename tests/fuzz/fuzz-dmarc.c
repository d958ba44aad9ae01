/*
 * tests/fuzz/fuzz-dmarc.c — fuzz DMARC record parsing.
 *
 * The input is a TXT record for dmarc_record_parse
 * (modules/dmarc/record.c).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/dmarc/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;

	memset(&r, 0, sizeof(r));
	if (dmarc_record_parse((const char *)data, size, &r) == 0 &&
	    memchr(r.note, '\0', sizeof(r.note)) == NULL)
		abort(); /* the note must stay a C string */
	return 0;
}
