/*
 * tests/fuzz/fuzz-scram.c — fuzz the SASL server's message parsing.
 *
 * The input is split at its first NUL: the part before is a SCRAM
 * client-first message (ts__scram_client_first, SCRAM-SHA-256 without
 * and SCRAM-SHA-256-PLUS with channel binding offered); when it parses,
 * the server-first message is built and the part after is the
 * client-final message (ts__scram_client_final).  The whole input is
 * also a PLAIN, LOGIN and CRAM-MD5 response (kernel/sasl/mech.c).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"
#include "kernel/sasl/sasl-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_scram(const char *mech, const char *cb_type, const uint8_t *first,
	   size_t first_len, const uint8_t *final, size_t final_len)
{
	static const uint8_t cb_data[32] = { 1, 2, 3 };
	static const uint8_t key[32] = { 7 };
	struct ts__scram sc;
	struct ts_scram_secret secret;
	const char *error = NULL, *server_final = NULL;

	memset(&sc, 0, sizeof(sc));
	if (ts__scram_init(&sc, mech, cb_type, cb_type ? cb_data : NULL,
			   cb_type ? sizeof(cb_data) : 0) != 0)
		abort();
	if (ts__scram_client_first(&sc, first, first_len, &error) ==
	    TS_SASL_CONTINUE) {
		memset(&secret, 0, sizeof(secret));
		ts__scram_fake_secret(&sc, key, &secret);
		if (ts__scram_server_first(&sc, &secret, false,
					   "3rfcNHYJY1ZVvWVs7j") != NULL)
			(void)ts__scram_client_final(&sc, final, final_len,
						     &server_final, &error);
	}
	ts__scram_clear(&sc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t first_len = nul != NULL ? (size_t)(nul - data) : size;
	const uint8_t *final = nul != NULL ? nul + 1 : data + size;
	size_t final_len = size - first_len - (nul != NULL);
	char *a = NULL, *b = NULL, *c = NULL;
	const char *error = NULL;
	uint8_t digest[16];

	fuzz_scram("SCRAM-SHA-256", NULL, data, first_len, final, final_len);
	fuzz_scram("SCRAM-SHA-256-PLUS", "tls-exporter", data, first_len,
		   final, final_len);
	fuzz_scram("SCRAM-SHA-1", "tls-exporter", data, first_len, final,
		   final_len);

	if (ts__plain_parse(data, size, &a, &b, &c, &error) ==
	    TS_SASL_CONTINUE) {
		free(a);
		free(b);
		free(c);
	}
	a = NULL;
	if (ts__login_parse(data, size, false, &a, &error) == TS_SASL_CONTINUE)
		free(a);
	a = NULL;
	if (ts__cram_md5_parse(data, size, &a, digest, &error) ==
	    TS_SASL_CONTINUE)
		free(a);
	return 0;
}
