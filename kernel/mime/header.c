/*
 * kernel/mime/header.c — header fields as written: iterating over the
 * fields of a header buffer, unfolding a value, converting a charset to
 * UTF-8 and decoding RFC 2047 encoded words.
 *
 * These are the byte-level helpers the rest of kernel/mime/ and the
 * modules build on; what the Content-* fields mean is params.c's job,
 * addresses are address.c's.
 */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/mime/mime-private.h"
#include "kernel/sasl/sasl-private.h"

/* --- buffer --------------------------------------------------------------- */

void
ts_mime_buf_add(struct ts_mime_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = ts_xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
ts_mime_buf_free(struct ts_mime_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
ts__mime_strdup_trim(const char *s, size_t len)
{
	while (len > 0 && (ts__mime_is_wsp(*s) || *s == '\r' || *s == '\n')) {
		s++;
		len--;
	}
	while (len > 0 && (ts__mime_is_wsp(s[len - 1]) || s[len - 1] == '\r' ||
			   s[len - 1] == '\n'))
		len--;
	return ts_xstrndup(s, len);
}

void
ts__mime_buf_add_utf8(struct ts_mime_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	ts_mime_buf_add(b, u, n);
}

/*
 * Length of the valid UTF-8 sequence at s (1..4), 0 when invalid, or -1
 * when s ends inside what may still become a valid sequence.
 */
static int
header_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t need;
	uint32_t min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	uint32_t cp = c & (0x3f >> (need - 1));
	for (size_t i = 1; i < need; i++) {
		if (i >= len)
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return (int)need;
}

size_t
ts__mime_add_valid_utf8(struct ts_mime_buf *b, const char *s, size_t len,
			bool keep_tail)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < len) {
		int n = header_utf8_seq(u + i, len - i);
		if (n > 0) {
			i += (size_t)n;
			continue;
		}
		ts_mime_buf_add(b, s + run, i - run);
		if (n < 0 && keep_tail)
			return len - i;
		ts_mime_buf_add(b, "\xef\xbf\xbd", 3);
		i++;
		run = i;
	}
	ts_mime_buf_add(b, s + run, i - run);
	return 0;
}

/* --- header iteration ----------------------------------------------------- */

void
ts_mime_header_init(struct ts_mime_header_iter *it, const char *data,
		    size_t len)
{
	it->data = data;
	it->len = len;
	it->pos = 0;
	it->done = false;
}

/* Offset after the line starting at i (after its LF, or len). */
static size_t
header_line_end(const char *d, size_t len, size_t i)
{
	const char *lf = memchr(d + i, '\n', len - i);
	return lf ? (size_t)(lf - d) + 1 : len;
}

/* The line at i is empty (LF, CRLF, or a lone CR at the end). */
static bool
header_line_empty(const char *d, size_t len, size_t i)
{
	if (d[i] == '\n')
		return true;
	return d[i] == '\r' && (i + 1 == len || d[i + 1] == '\n');
}

bool
ts_mime_header_next(struct ts_mime_header_iter *it, struct ts_mime_field *field)
{
	const char *d = it->data;
	size_t len = it->len;

	while (!it->done) {
		size_t i = it->pos;
		if (i >= len) {
			it->done = true;
			break;
		}
		if (header_line_empty(d, len, i)) {
			it->pos = header_line_end(d, len, i);
			it->done = true;
			break;
		}
		size_t end = header_line_end(d, len, i);
		/* The field goes on while lines start with white space. */
		while (end < len && ts__mime_is_wsp(d[end]))
			end = header_line_end(d, len, end);
		it->pos = end;
		if (ts__mime_is_wsp(d[i]))
			continue; /* continuation without a field */
		const char *colon = memchr(d + i, ':', end - i);
		if (colon == NULL)
			continue;
		size_t name_len = (size_t)(colon - (d + i));
		while (name_len > 0 && ts__mime_is_wsp(d[i + name_len - 1]))
			name_len--;
		if (name_len == 0)
			continue;
		size_t vstart = (size_t)(colon - d) + 1;
		size_t vend = end;
		if (vend > vstart && d[vend - 1] == '\n')
			vend--;
		if (vend > vstart && d[vend - 1] == '\r')
			vend--;
		field->name = d + i;
		field->name_len = name_len;
		field->value = d + vstart;
		field->value_len = vend - vstart;
		field->start = i;
		field->end = end;
		return true;
	}
	return false;
}

char *
ts_mime_unfold(const char *value, size_t len, size_t *len_r)
{
	char *out = ts_xmalloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\r' && i + 1 < len && value[i + 1] == '\n')
			continue;
		if (value[i] == '\n')
			continue;
		out[n++] = value[i];
	}
	size_t start = 0;
	while (start < n && (ts__mime_is_wsp(out[start]) || out[start] == '\r'))
		start++;
	while (n > start && (ts__mime_is_wsp(out[n - 1]) || out[n - 1] == '\r'))
		n--;
	memmove(out, out + start, n - start);
	n -= start;
	out[n] = '\0';
	if (len_r != NULL)
		*len_r = n;
	return out;
}

bool
ts_mime_field_is(const struct ts_mime_field *field, const char *name)
{
	size_t n = strlen(name);
	return field->name_len == n && strncasecmp(field->name, name, n) == 0;
}

void
ts_mime_header_filter(const char *data, size_t len, const char *const *names,
		      size_t n, bool exclude, struct ts_mime_buf *out)
{
	struct ts_mime_header_iter it;
	struct ts_mime_field f;

	ts_mime_header_init(&it, data, len);
	while (ts_mime_header_next(&it, &f)) {
		bool listed = false;
		for (size_t k = 0; k < n && !listed; k++)
			listed = ts_mime_field_is(&f, names[k]);
		if (listed == exclude)
			continue;
		ts_mime_buf_add(out, data + f.start, f.end - f.start);
		/* The last field of an unterminated header gets a line end. */
		if (f.end == len && (len == 0 || data[len - 1] != '\n'))
			ts_mime_buf_add(out, "\r\n", 2);
	}
	ts_mime_buf_add(out, "\r\n", 2);
}

/* --- charsets ------------------------------------------------------------- */

static bool
header_charset_is_utf8(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

bool
ts_mime_charset_to_utf8(const char *charset, const char *in, size_t len,
			struct ts_mime_buf *out)
{
	if (header_charset_is_utf8(charset)) {
		ts__mime_add_valid_utf8(out, in, len, false);
		return true;
	}
	/* Mailers say iso-8859-1 and mean windows-1252 (RFC-less reality). */
	const char *from = charset;
	if (strcasecmp(charset, "iso-8859-1") == 0 ||
	    strcasecmp(charset, "latin1") == 0)
		from = "WINDOWS-1252";
	iconv_t cd = iconv_open("UTF-8", from);
	if (cd == (iconv_t)-1)
		return false;

	char tmp[1024];
	char *ip = (char *)in;
	size_t il = len;
	while (il > 0) {
		char *op = tmp;
		size_t ol = sizeof(tmp);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		ts_mime_buf_add(out, tmp, (size_t)(op - tmp));
		if (r != (size_t)-1)
			continue;
		if (errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated input): skip one byte. */
		ts_mime_buf_add(out, "\xef\xbf\xbd", 3);
		ip++;
		il--;
	}
	/* Flush a stateful encoding's shift sequence. */
	char *op = tmp;
	size_t ol = sizeof(tmp);
	iconv(cd, NULL, NULL, &op, &ol);
	ts_mime_buf_add(out, tmp, (size_t)(op - tmp));
	iconv_close(cd);
	return true;
}

/* --- RFC 2047 ------------------------------------------------------------- */

static int
header_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One encoded word found at s: its charset and decoded bytes. */
struct header_word {
	char charset[64];
	size_t len; /* bytes of the word in the input */
};

/*
 * Is there an encoded word "=?cs?e?text?=" at s[i]?  On success fill w and
 * append the decoded bytes to bytes.
 */
static bool
header_word_at(const char *s, size_t len, size_t i, struct header_word *w,
	       struct ts_mime_buf *bytes)
{
	if (i + 8 > len || s[i] != '=' || s[i + 1] != '?')
		return false;
	size_t p = i + 2, cs = p;
	while (p < len && s[p] != '?' && !ts__mime_is_wsp(s[p]))
		p++;
	if (p >= len || s[p] != '?' || p == cs || p - cs >= sizeof(w->charset))
		return false;
	size_t cslen = p - cs;
	memcpy(w->charset, s + cs, cslen);
	w->charset[cslen] = '\0';
	char *star = strchr(w->charset, '*'); /* RFC 2231 language */
	if (star != NULL)
		*star = '\0';
	if (w->charset[0] == '\0')
		return false;
	p++;
	if (p + 1 >= len || s[p + 1] != '?')
		return false;
	char enc = s[p];
	if (enc != 'q' && enc != 'Q' && enc != 'b' && enc != 'B')
		return false;
	size_t text = p + 2, t = text;
	while (t + 1 < len && !(s[t] == '?' && s[t + 1] == '=')) {
		if (ts__mime_is_wsp(s[t]) || s[t] == '\r' || s[t] == '\n')
			return false;
		t++;
	}
	if (t + 1 >= len)
		return false;
	if (enc == 'b' || enc == 'B') {
		/* Strict here: a word that is not base64 is not a word. */
		for (size_t k = text; k < t; k++)
			if (s[k] != '=' && ts__base64_value(s[k]) < 0)
				return false;
		struct ts_mime_base64 b64 = { 0, 0 };
		ts_mime_base64_decode(&b64, s + text, t - text, bytes);
		ts_mime_base64_finish(&b64, bytes);
	} else {
		for (size_t k = text; k < t; k++) {
			char c = s[k];
			int h1, h2;
			if (c == '_') {
				c = ' ';
			} else if (c == '=' && k + 2 < t &&
				   (h1 = header_hex(s[k + 1])) >= 0 &&
				   (h2 = header_hex(s[k + 2])) >= 0) {
				c = (char)(h1 << 4 | h2);
				k += 2;
			}
			ts_mime_buf_add(bytes, &c, 1);
		}
	}
	w->len = t + 2 - i;
	return true;
}

/* s[from..to) is nothing but white space and line breaks. */
static bool
header_all_space(const char *s, size_t from, size_t to)
{
	for (size_t k = from; k < to; k++)
		if (!ts__mime_is_wsp(s[k]) && s[k] != '\r' && s[k] != '\n')
			return false;
	return true;
}

/* Can iconv (or we) convert from cs? */
static bool
header_charset_known(const char *cs)
{
	if (header_charset_is_utf8(cs))
		return true;
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

char *
ts_mime_decode_words(const char *s, size_t len, size_t *len_r)
{
	struct ts_mime_buf out = { 0 };
	struct ts_mime_buf pend = { 0 }; /* decoded bytes of adjacent words */
	char pend_cs[64] = ""; /* their charset; "" when none pending */
	size_t i = 0, plain = 0; /* plain: first byte not yet emitted */

	while (i < len) {
		struct header_word w;
		struct ts_mime_buf bytes = { 0 };
		if (s[i] != '=' || !header_word_at(s, len, i, &w, &bytes) ||
		    !header_charset_known(w.charset)) {
			ts_mime_buf_free(&bytes);
			i++;
			continue;
		}
		bool adjacent =
			pend_cs[0] != '\0' && header_all_space(s, plain, i);
		if (!adjacent || strcasecmp(pend_cs, w.charset) != 0) {
			if (pend_cs[0] != '\0')
				ts_mime_charset_to_utf8(pend_cs, pend.data,
							pend.len, &out);
			pend.len = 0;
			if (!adjacent)
				ts_mime_buf_add(&out, s + plain, i - plain);
			snprintf(pend_cs, sizeof(pend_cs), "%s", w.charset);
		}
		ts_mime_buf_add(&pend, bytes.data, bytes.len);
		ts_mime_buf_free(&bytes);
		i += w.len;
		plain = i;
	}
	if (pend_cs[0] != '\0')
		ts_mime_charset_to_utf8(pend_cs, pend.data, pend.len, &out);
	ts_mime_buf_add(&out, s + plain, len - plain);
	ts_mime_buf_free(&pend);
	if (out.data == NULL)
		ts_mime_buf_add(&out, "", 0);
	if (len_r != NULL)
		*len_r = out.len;
	return out.data;
}
