/*
 * modules/dkim/canon.c — DKIM canonicalization (RFC 6376 section 3.4).
 *
 * Header fields are canonicalized one at a time from their raw text;
 * bodies are streamed: bytes arrive in chunks of any size, each complete
 * line is canonicalized and passed on, empty lines are held back until a
 * non-empty one shows they were not at the end, and the l= limit cuts
 * the output.  Bare LF counts as a line end (a message read from a file
 * written with LF); CR not followed by LF is kept as data.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dkim.h"

static bool
dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void
dkim_emit(struct dkim_body *b, const char *data, size_t len)
{
	b->total += len;
	if (b->emitted >= b->limit)
		return;
	uint64_t room = b->limit - b->emitted;
	size_t n = len < room ? len : (size_t)room;
	if (n > 0)
		b->sink(b->sink_arg, data, n);
	b->emitted += n;
}

void
dkim_body_init(struct dkim_body *b, enum dkim_canon canon, uint64_t limit,
	       dkim_sink_fn sink, void *sink_arg)
{
	memset(b, 0, sizeof(*b));
	b->canon = canon;
	b->limit = limit;
	b->sink = sink;
	b->sink_arg = sink_arg;
}

/* One complete line (without its end) of the body. */
static void
dkim_body_line(struct dkim_body *b)
{
	char *l = b->line;
	size_t n = b->line_len;
	if (b->canon == DKIM_CANON_RELAXED) {
		/* White space runs become one space; trailing ones go. */
		size_t o = 0;
		bool ws = false;
		for (size_t i = 0; i < n; i++) {
			if (dkim_wsp(l[i])) {
				ws = true;
				continue;
			}
			if (ws)
				l[o++] = ' ';
			ws = false;
			l[o++] = l[i];
		}
		n = o;
	}
	b->line_len = 0;
	if (n == 0) {
		b->blank_lines++;
		return;
	}
	for (; b->blank_lines > 0; b->blank_lines--)
		dkim_emit(b, "\r\n", 2);
	dkim_emit(b, l, n);
	dkim_emit(b, "\r\n", 2);
	b->any = true;
}

static void
dkim_body_add(struct dkim_body *b, const char *data, size_t n)
{
	if (n == 0)
		return;
	if (b->line_len + n > b->line_cap) {
		size_t cap = b->line_cap ? b->line_cap : 256;
		while (cap < b->line_len + n)
			cap *= 2;
		b->line = ts_xrealloc(b->line, cap);
		b->line_cap = cap;
	}
	memcpy(b->line + b->line_len, data, n);
	b->line_len += n;
}

void
dkim_body_feed(struct dkim_body *b, const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (b->cr) {
			b->cr = false;
			if (data[i] == '\n') {
				dkim_body_line(b);
				i++;
				continue;
			}
			dkim_body_add(b, "\r", 1);
		}
		const char *p = data + i;
		size_t rest = len - i;
		size_t k = 0;
		while (k < rest && p[k] != '\r' && p[k] != '\n')
			k++;
		dkim_body_add(b, p, k);
		i += k;
		if (i >= len)
			break;
		if (data[i] == '\n')
			dkim_body_line(b);
		else
			b->cr = true;
		i++;
	}
}

void
dkim_body_finish(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		dkim_body_add(b, "\r", 1);
	}
	/* An unterminated last line counts as a line (CRLF added). */
	if (b->line_len > 0)
		dkim_body_line(b);
	/*
	 * Simple: an empty body is one CRLF.  Relaxed: an empty body stays
	 * empty.  Held-back empty lines are dropped either way.
	 */
	if (!b->any && b->canon == DKIM_CANON_SIMPLE)
		dkim_emit(b, "\r\n", 2);
	b->blank_lines = 0;
	dkim_body_free(b);
}

void
dkim_body_free(struct dkim_body *b)
{
	free(b->line);
	b->line = NULL;
	b->line_len = b->line_cap = 0;
}

static void
dkim_buf_add(char **out, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 128;
		while (c < *len + n + 1)
			c *= 2;
		*out = ts_xrealloc(*out, c);
		*cap = c;
	}
	memcpy(*out + *len, data, n);
	*len += n;
	(*out)[*len] = '\0';
}

void
dkim_canon_header(enum dkim_canon canon, const char *name, size_t name_len,
		  const char *value, size_t value_len, char **out, size_t *len)
{
	/* The buffer's capacity is not tracked by callers: keep it exact. */
	size_t cap = *out != NULL ? *len + 1 : 0;
	if (canon == DKIM_CANON_SIMPLE) {
		dkim_buf_add(out, len, &cap, name, name_len);
		dkim_buf_add(out, len, &cap, ":", 1);
		/* Line ends inside the value (folding) become CRLF. */
		size_t i = 0;
		while (i < value_len) {
			size_t k = i;
			while (k < value_len && value[k] != '\n')
				k++;
			size_t seg = k - i;
			if (k < value_len && seg > 0 && value[k - 1] == '\r')
				seg--;
			dkim_buf_add(out, len, &cap, value + i, seg);
			if (k < value_len)
				dkim_buf_add(out, len, &cap, "\r\n", 2);
			i = k + 1;
		}
		dkim_buf_add(out, len, &cap, "\r\n", 2);
		return;
	}
	/* Relaxed: lower-case name, trailing white space of it removed. */
	size_t nl = name_len;
	while (nl > 0 && dkim_wsp(name[nl - 1]))
		nl--;
	for (size_t i = 0; i < nl; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		dkim_buf_add(out, len, &cap, &c, 1);
	}
	dkim_buf_add(out, len, &cap, ":", 1);
	bool ws = false, started = false;
	for (size_t i = 0; i < value_len; i++) {
		char c = value[i];
		if (c == '\r' || c == '\n')
			continue;
		if (dkim_wsp(c)) {
			ws = true;
			continue;
		}
		if (ws && started)
			dkim_buf_add(out, len, &cap, " ", 1);
		ws = false;
		started = true;
		dkim_buf_add(out, len, &cap, &c, 1);
	}
	dkim_buf_add(out, len, &cap, "\r\n", 2);
}
