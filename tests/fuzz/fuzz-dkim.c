/*
 * tests/fuzz/fuzz-dkim.c — fuzz DKIM parsing and canonicalization.
 *
 * The input is a DKIM-Signature value for dkim_sig_parse and
 * dkim_sig_strip_b, a key record for dkim_key_parse (modules/dkim/sig.c,
 * key.c), a header value for both header canonicalizations and a body
 * for both body canonicalizations (canon.c), fed in odd-sized chunks
 * with and without an l= limit.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/dkim/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_dkim_sink(void *arg, const char *data, size_t len)
{
	size_t *count = arg;

	/* read every byte handed on, so ASan checks the range */
	for (size_t i = 0; i < len; i++)
		*count += (unsigned char)data[i];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct dkim_sig sig;
	struct dkim_key key;
	char err[160];
	char *out = NULL;
	size_t len = 0;

	memset(&sig, 0, sizeof(sig));
	(void)dkim_sig_parse(text, size, &sig, err, sizeof(err));
	dkim_sig_clear(&sig);
	out = dkim_sig_strip_b(text, size, &len);
	free(out);

	memset(&key, 0, sizeof(key));
	(void)dkim_key_parse(text, size, &key, err, sizeof(err));
	dkim_key_clear(&key);

	for (int c = 0; c < 2; c++) {
		enum dkim_canon canon = c ? DKIM_CANON_RELAXED :
			DKIM_CANON_SIMPLE;

		out = NULL;
		len = 0;
		dkim_canon_header(canon, "Subject", 7, text, size, &out, &len);
		free(out);
		for (int lim = 0; lim < 2; lim++) {
			struct dkim_body b;
			size_t count = 0, pos = 0, step = 1;

			dkim_body_init(&b, canon, lim ? 17 : UINT64_MAX,
				       fuzz_dkim_sink, &count);
			while (pos < size) {
				size_t n = size - pos;

				if (n > step)
					n = step;
				dkim_body_feed(&b, text + pos, n);
				pos += n;
				step = step < 1024 ? step * 3 + 1 : 1;
			}
			dkim_body_finish(&b);
			dkim_body_free(&b);
		}
	}
	return 0;
}
