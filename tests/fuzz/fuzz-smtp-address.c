/*
 * tests/fuzz/fuzz-smtp-address.c — fuzz SMTP path and EHLO parsing.
 *
 * The input is a path argument (`<user@example.org>`) for smtp_path_parse
 * and smtp_path_parse_prefix in strict, lenient and SMTPUTF8 mode; what
 * parses is formatted back (smtp_path_format).  The input as a C string
 * is also an EHLO argument.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/smtp/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	static const unsigned flag_sets[] = { 0, SMTP_LENIENT, SMTP_UTF8,
					      SMTP_LENIENT | SMTP_UTF8 };
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct smtp_path path = { 0 };
		const char *error = NULL;
		size_t consumed = 0;
		char *out = NULL;

		if (smtp_path_parse(text, size, flag_sets[i], &path,
				    &error) == 0) {
			char *f = smtp_path_format(&path);

			free(f);
			if (path.localpart_unquoted != NULL) {
				f = smtp_localpart_format(
					path.localpart_unquoted);
				free(f);
			}
		}
		smtp_path_clear(&path);
		if (smtp_path_parse_prefix(text, size, flag_sets[i], &path,
					   &consumed, &error) == 0 &&
		    consumed > size)
			abort();
		smtp_path_clear(&path);
		if (smtp_ehlo_parse(s, flag_sets[i], &out, &error) == 0)
			free(out);
	}
	(void)smtp_utf8_valid(text, size);
	free(s);
	return 0;
}
