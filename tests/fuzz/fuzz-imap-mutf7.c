/*
 * tests/fuzz/fuzz-imap-mutf7.c — fuzz modified UTF-7 mailbox names.
 *
 * The input as a C string is decoded (imap_mutf7_decode); when it is
 * ASCII (a real modified UTF-7 name: bytes above 0x7f only pass through,
 * and need not be UTF-8) and decodes, the result is encoded again and
 * must decode to the same UTF-8.  The input is also
 * encoded directly (a client's UTF-8 name, valid or not).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/imap/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *utf8 = NULL, *enc;

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (imap_mutf7_decode(s, &utf8) == 0) {
		char *again = NULL;
		bool ascii = true;

		for (size_t i = 0; i < size; i++)
			ascii = ascii && data[i] < 0x80;
		enc = imap_mutf7_encode(utf8);
		if (ascii && (imap_mutf7_decode(enc, &again) != 0 ||
			      strcmp(again, utf8) != 0))
			abort(); /* the round trip must hold */
		free(again);
		free(enc);
		free(utf8);
	}
	enc = imap_mutf7_encode(s);
	free(enc);
	free(s);
	return 0;
}
