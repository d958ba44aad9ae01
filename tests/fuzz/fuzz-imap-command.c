/*
 * tests/fuzz/fuzz-imap-command.c — fuzz the IMAP command parser.
 *
 * The input is one complete command, literals included, for
 * imap_parse_command (with small limits so the depth and size checks are
 * reached), and a line for the literal-suffix, first-line and tag tests;
 * as a C string it is also a sequence set and a date-time.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/imap/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct imap_parse_limits limits = {
		.max_literal = 4096,
		.append_limit = 65536,
		.max_depth = 8,
	};
	struct imap_command cmd;
	struct imap_seqset set = { 0 };
	const char *error = NULL;
	uint64_t lsize;
	bool sync;
	char *tag, *s;

	memset(&cmd, 0, sizeof(cmd));
	(void)imap_parse_command(buf, size, &limits, &cmd, &error);
	imap_command_clear(&cmd);

	(void)imap_literal_suffix(buf, size, &lsize, &sync, &error);
	(void)imap_looks_like_imap(buf, size);
	tag = imap_line_tag(buf, size);
	free(tag);
	(void)imap_parse_day(buf, size);
	(void)imap_parse_date_time(buf, size);

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (imap_seqset_parse(s, &set) == 0) {
		(void)imap_seqset_contains(&set, 1, 10);
		(void)imap_seqset_contains(&set, UINT32_MAX - 1, 5);
	}
	imap_seqset_clear(&set);
	free(s);
	return 0;
}
