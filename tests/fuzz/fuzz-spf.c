/*
 * tests/fuzz/fuzz-spf.c — fuzz SPF record and macro parsing.
 *
 * The input is a TXT record for spf_is_record and spf_record_parse
 * (modules/spf/record.c) and a macro-string for spf_macro_valid,
 * spf_domain_spec_valid and spf_macro_expand (macro.c) with an IPv4 and
 * an IPv6 client, with and without %{p}, as domain and as explanation.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/spf/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ip4[4] = { 192, 0, 2, 1 };
	static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					 0, 0, 0, 0, 0, 0, 0, 1 };
	const char *text = (const char *)data;
	struct spf_record *rec = NULL;
	const char *error = NULL;
	char *s;

	(void)spf_is_record(text, size);
	if (spf_record_parse(text, size, &rec, &error) == 0)
		spf_record_free(&rec);

	(void)spf_macro_valid(text, size, false);
	(void)spf_macro_valid(text, size, true);
	(void)spf_domain_spec_valid(text, size);

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	for (int i = 0; i < 4; i++) {
		struct spf_macro_env env = {
			.sender = "strong-bad@email.example.com",
			.local = "strong-bad",
			.sender_domain = "email.example.com",
			.domain = "email.example.com",
			.helo = "mx.example.org",
			.receiver = "receiver.example.net",
			.p = (i & 1) ? "mx.example.org" : NULL,
			.family = (i & 2) ? 6 : 4,
			.ip = (i & 2) ? ip6 : ip4,
			.now = 1700000000,
		};
		char *out = NULL;

		if (spf_macro_expand(s, &env, (i & 1) != 0, &out) == 0)
			free(out);
	}
	free(s);
	return 0;
}
