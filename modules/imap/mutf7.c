/*
 * modules/imap/mutf7.c — mailbox names in modified UTF-7 (RFC 3501
 * section 5.1.3), as IMAP4rev1 clients send and expect them; the store
 * keeps UTF-8.  Pure.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tessera/common.h>

#include "parse.h"

static const char mutf7_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
mutf7_value(char ch)
{
	const char *p = ch != '\0' ? strchr(mutf7_alphabet, ch) : NULL;
	return p != NULL ? (int)(p - mutf7_alphabet) : -1;
}

/* Append code point cp as UTF-8. */
static void
utf8_put(char *out, size_t *n, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | (cp >> 18));
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

int
imap_mutf7_decode(const char *in, char **out_r)
{
	size_t len = strlen(in);
	/* each input byte yields at most 3 output bytes */
	char *out = ts_xmalloc(len * 3 + 1);
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		if (in[i] != '&') {
			out[n++] = in[i++];
			continue;
		}
		i++;
		if (in[i] == '-') {
			out[n++] = '&';
			i++;
			continue;
		}
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0, units = 0;
		while (i < len && in[i] != '-') {
			int v = mutf7_value(in[i++]);
			if (v < 0)
				goto bad;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					goto bad;
				utf8_put(out, &n,
					 0x10000 + ((high - 0xd800) << 10) +
						 (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if ((u >= 0xdc00 && u <= 0xdfff) ||
				   (u >= 0x20 && u < 0x7f)) {
				/* lone low surrogate; printable ASCII must
				 * stand for itself */
				goto bad;
			} else {
				utf8_put(out, &n, u);
			}
		}
		/* ended by "-", no pending surrogate, leftover bits zero */
		if (i >= len || high != 0 || units == 0 || nbits >= 6 ||
		    (bits & ((1u << nbits) - 1)) != 0)
			goto bad;
		i++;
	}
	out[n] = '\0';
	*out_r = out;
	return 0;
bad:
	free(out);
	*out_r = NULL;
	return -1;
}

/* Next code point of UTF-8 at s (advancing *i); 0xfffd on bad input. */
static uint32_t
utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[(*i)++];
	if (c < 0x80)
		return c;
	unsigned extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
	uint32_t cp = c & (0x3f >> extra);
	for (unsigned k = 0; k < extra; k++) {
		if (*i >= len || (s[*i] & 0xc0) != 0x80)
			return 0xfffd;
		cp = (cp << 6) | (s[(*i)++] & 0x3f);
	}
	return extra == 0 ? 0xfffd : cp;
}

char *
imap_mutf7_encode(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len = strlen(in);
	char *out = ts_xmalloc(len * 4 + 8);
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			out[n++] = (char)s[i];
			if (s[i] == '&')
				out[n++] = '-';
			i++;
			continue;
		}
		out[n++] = '&';
		uint32_t bits = 0;
		unsigned nbits = 0;
		while (i < len && !(s[i] >= 0x20 && s[i] < 0x7f)) {
			uint32_t cp = utf8_next(s, len, &i);
			uint32_t units[2];
			unsigned count = 1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xd800 + (cp >> 10);
				units[1] = 0xdc00 + (cp & 0x3ff);
				count = 2;
			} else {
				units[0] = cp;
			}
			for (unsigned k = 0; k < count; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					out[n++] =
						mutf7_alphabet[(bits >> nbits) &
							       0x3f];
				}
			}
		}
		if (nbits > 0)
			out[n++] = mutf7_alphabet[(bits << (6 - nbits)) & 0x3f];
		out[n++] = '-';
	}
	out[n] = '\0';
	return out;
}
