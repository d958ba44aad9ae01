/*
 * kernel/sasl/base64.c — base64 (RFC 4648 section 4) for SASL: the
 * protocols' wire encoding of challenges and responses, and the values
 * inside SCRAM messages.
 *
 * Decoding is strict on purpose: a SASL response is short and produced by
 * a program, so whitespace, missing padding or stray bits mean a broken
 * or hostile client, and accepting several spellings of one value would
 * only let SCRAM's channel-binding comparison be fooled.  Not a general
 * MIME decoder (that one must be lenient).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/sasl/sasl-private.h"

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
ts_base64_encode(const uint8_t *data, size_t len)
{
	char *out = ts_xmalloc((len + 2) / 3 * 4 + 1);
	char *p = out;
	size_t i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 |
			     (uint32_t)data[i + 1] << 8 | data[i + 2];
		*p++ = base64_alphabet[v >> 18];
		*p++ = base64_alphabet[(v >> 12) & 63];
		*p++ = base64_alphabet[(v >> 6) & 63];
		*p++ = base64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;
		*p++ = base64_alphabet[v >> 18];
		*p++ = base64_alphabet[(v >> 12) & 63];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1]
							       << 8;
		*p++ = base64_alphabet[v >> 18];
		*p++ = base64_alphabet[(v >> 12) & 63];
		*p++ = base64_alphabet[(v >> 6) & 63];
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

/*
 * The 6-bit value of a base64 character, or -1.  Shared with the lenient
 * MIME body decoder (kernel/mime/codec.c).
 */
int
ts__base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
ts__base64_decode_n(const char *text, size_t len, uint8_t **data_r,
		    size_t *len_r)
{
	*data_r = NULL;
	*len_r = 0;
	if (len % 4 != 0)
		return TS_E_INVAL;

	uint8_t *out = ts_xmalloc(len / 4 * 3 + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		/* Padding only in the last quantum: "xx==" or "xxx=". */
		size_t pad = 0;
		if (last && text[i + 3] == '=')
			pad = text[i + 2] == '=' ? 2 : 1;
		int v[4] = { 0, 0, 0, 0 };
		for (size_t j = 0; j < 4 - pad; j++)
			if ((v[j] = ts__base64_value(text[i + j])) < 0)
				goto bad;
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[n++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[n++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[n++] = (uint8_t)w;
		/* The bits the padding leaves unused must be zero. */
		if ((pad == 2 && (w & 0xffff) != 0) ||
		    (pad == 1 && (w & 0xff) != 0))
			goto bad;
	}
	out[n] = 0;
	*data_r = out;
	*len_r = n;
	return 0;
bad:
	free(out);
	return TS_E_INVAL;
}

int
ts_base64_decode(const char *text, uint8_t **data_r, size_t *len_r)
{
	if (text == NULL) {
		*data_r = NULL;
		*len_r = 0;
		return TS_E_INVAL;
	}
	/* RFC 4954 section 4: "=" is a zero-length initial response. */
	if (strcmp(text, "=") == 0) {
		*data_r = ts_xcalloc(1, 1);
		*len_r = 0;
		return 0;
	}
	return ts__base64_decode_n(text, strlen(text), data_r, len_r);
}
