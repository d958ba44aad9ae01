/*
 * tests/fuzz/fuzz-smtp-command.c — fuzz the SMTP command-line parser.
 *
 * The input is one command line (without CRLF) given to
 * smtp_command_parse in strict and lenient mode with every extension, and
 * to the "is this SMTP" tests, xtext and base64 decoders.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "modules/smtp/address.h"
#include "modules/smtp/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	static const unsigned flag_sets[] = { 0, SMTP_LENIENT,
					      SMTP_LENIENT | SMTP_UTF8 };

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct smtp_parse_opts opts = {
			.flags = flag_sets[i],
			.extensions = i == 0 ? 0 : SMTP_EXT_ALL,
			.max_size = i == 2 ? 1000 : 0,
		};
		struct smtp_command cmd = { 0 };
		struct smtp_reply reply = { 0 };
		char *out = NULL;

		(void)smtp_command_parse(line, size, &opts, &cmd, &reply);
		smtp_command_clear(&cmd);
		if (smtp_xtext_decode(line, size, flag_sets[i], &out) == 0)
			free(out);
	}
	(void)smtp_command_looks_like_smtp(line, size);
	(void)smtp_command_prefix_possible(line, size);
	{
		unsigned char *out = NULL;
		size_t out_len;

		if (smtp_base64_decode(line, size, &out, &out_len) == 0)
			free(out);
	}
	return 0;
}
