/*
 * kernel/mime/search.c — case-insensitive search in decoded text: the
 * simple case folding both sides go through, a streaming substring
 * matcher, and IMAP SEARCH BODY/TEXT over a parsed message in memory or
 * in the store's prefix + file.
 *
 * Folding is deliberately simple (one code point to one code point, the
 * scripts mail here mostly uses); full Unicode folding and normalisation
 * would be a library's job, and SEARCH only promises a case-insensitive
 * substring match.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kernel/mime/mime-private.h"

/* Read size when searching bodies; header text kept for TEXT at most. */
#define SEARCH_CHUNK (64 * 1024)
#define SEARCH_MAX_HEADER (1024 * 1024)

/* --- folding -------------------------------------------------------------- */

/* The simple lower-case (folded) form of code point c. */
static uint32_t
search_fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 32;
	if (c == 0xb5)
		return 0x3bc; /* micro sign: Greek mu */
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x130)
			return 'i';
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return c & 1 ? c + 1 : c;
		if (c == 0x131 || c == 0x138 || c == 0x149)
			return c;
		return c & 1 ? c : c + 1;
	}
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 32;
	if (c == 0x3c2)
		return 0x3c3; /* final sigma */
	if (c == 0x386)
		return 0x3ac;
	if (c >= 0x388 && c <= 0x38a)
		return c + 37;
	if (c == 0x38c)
		return 0x3cc;
	if (c == 0x38e || c == 0x38f)
		return c + 63;
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

/*
 * Append the folded form of s to out.  Returns how many bytes at the end
 * form an incomplete UTF-8 sequence and were not consumed (final: none).
 */
static size_t
search_fold(const char *s, size_t len, bool final, struct ts_mime_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < len) {
		if (u[i] < 0x80) {
			if (u[i] >= 'A' && u[i] <= 'Z') {
				ts_mime_buf_add(out, s + run, i - run);
				char c = (char)(u[i] + 32);
				ts_mime_buf_add(out, &c, 1);
				run = i + 1;
			}
			i++;
			continue;
		}
		size_t need = u[i] >= 0xf0   ? 4
			      : u[i] >= 0xe0 ? 3
			      : u[i] >= 0xc0 ? 2
					     : 1;
		if (need == 1 || (u[i] & 0xc0) == 0x80) {
			i++; /* a stray byte: left as it is */
			continue;
		}
		if (i + need > len) {
			if (!final) {
				ts_mime_buf_add(out, s + run, i - run);
				return len - i;
			}
			break;
		}
		uint32_t cp = u[i] & (0x7f >> need);
		bool ok = true;
		for (size_t k = 1; k < need; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				ok = false;
			cp = cp << 6 | (u[i + k] & 0x3f);
		}
		if (!ok) {
			i++;
			continue;
		}
		uint32_t f = search_fold_cp(cp);
		if (f != cp) {
			ts_mime_buf_add(out, s + run, i - run);
			ts__mime_buf_add_utf8(out, f);
			run = i + need;
		}
		i += need;
	}
	ts_mime_buf_add(out, s + run, len - run);
	return 0;
}

/* --- matcher -------------------------------------------------------------- */

struct ts_mime_matcher {
	struct ts_mime_buf needle; /* folded */
	struct ts_mime_buf tail; /* last needle.len - 1 folded bytes */
	char carry[4]; /* incomplete UTF-8 sequence from the last chunk */
	size_t ncarry;
	bool matched;
};

struct ts_mime_matcher *
ts_mime_matcher_new(const char *needle, size_t len)
{
	struct ts_mime_matcher *m = ts_xcalloc(1, sizeof(*m));
	search_fold(needle, len, true, &m->needle);
	ts_mime_buf_add(&m->needle, "", 0);
	ts_mime_buf_add(&m->tail, "", 0);
	m->matched = m->needle.len == 0;
	return m;
}

/* Forget the stream (not a match already made). */
static void
search_matcher_new_stream(struct ts_mime_matcher *m)
{
	m->tail.len = 0;
	m->ncarry = 0;
}

bool
ts_mime_matcher_feed(struct ts_mime_matcher *m, const char *text, size_t len)
{
	if (m->matched)
		return true;
	struct ts_mime_buf in = { 0 }, hay = { 0 };
	ts_mime_buf_add(&in, m->carry, m->ncarry);
	ts_mime_buf_add(&in, text, len);
	ts_mime_buf_add(&hay, m->tail.data, m->tail.len);
	size_t keep = search_fold(in.data, in.len, false, &hay);
	memcpy(m->carry, in.data + in.len - keep, keep);
	m->ncarry = keep;
	if (hay.len >= m->needle.len &&
	    memmem(hay.data, hay.len, m->needle.data, m->needle.len) != NULL)
		m->matched = true;
	/* Keep what a match across the next chunk could start with. */
	size_t t = m->needle.len - 1;
	if (t > hay.len)
		t = hay.len;
	m->tail.len = 0;
	ts_mime_buf_add(&m->tail, hay.data + hay.len - t, t);
	ts_mime_buf_free(&in);
	ts_mime_buf_free(&hay);
	return m->matched;
}

void
ts_mime_matcher_reset(struct ts_mime_matcher *m)
{
	search_matcher_new_stream(m);
	m->matched = m->needle.len == 0;
}

void
ts_mime_matcher_free(struct ts_mime_matcher **mp)
{
	struct ts_mime_matcher *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	ts_mime_buf_free(&m->needle);
	ts_mime_buf_free(&m->tail);
	free(m);
}

bool
ts_mime_contains(const char *haystack, size_t hlen, const char *needle,
		 size_t nlen)
{
	struct ts_mime_matcher *m = ts_mime_matcher_new(needle, nlen);
	bool found = ts_mime_matcher_feed(m, haystack, hlen);
	ts_mime_matcher_free(&m);
	return found;
}

/* --- SEARCH over a message ------------------------------------------------ */

/* Where the stream's bytes come from: memory, or prefix + file. */
struct search_source {
	const char *data;
	size_t len;
	const char *prefix;
	size_t prefix_len;
	int fd;
	bool from_file;
	bool io_error;
};

/* Copy up to n bytes of the stream at off into buf; returns the count. */
static size_t
search_read(struct search_source *src, uint64_t off, char *buf, size_t n)
{
	if (!src->from_file) {
		if (off >= src->len)
			return 0;
		if (n > src->len - off)
			n = (size_t)(src->len - off);
		memcpy(buf, src->data + off, n);
		return n;
	}
	size_t got = 0;
	if (off < src->prefix_len) {
		size_t k = src->prefix_len - (size_t)off;
		if (k > n)
			k = n;
		memcpy(buf, src->prefix + off, k);
		got = k;
		off += k;
	}
	while (got < n) {
		ssize_t r = pread(src->fd, buf + got, n - got,
				  (off_t)(off - src->prefix_len));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			src->io_error = true;
		if (r <= 0)
			break;
		got += (size_t)r;
		off += (uint64_t)r;
	}
	return got;
}

/* Feed a header's fields, unfolded and decoded, to m. */
static bool
search_header(struct search_source *src, const struct ts_mime_part *msgpart,
	      struct ts_mime_matcher *m)
{
	uint64_t size = msgpart->body_start - msgpart->header_start;
	if (size > SEARCH_MAX_HEADER)
		size = SEARCH_MAX_HEADER;
	char *buf = ts_xmalloc(size + 1);
	size_t n = search_read(src, msgpart->header_start, buf, (size_t)size);
	struct ts_mime_header_iter it;
	struct ts_mime_field f;

	search_matcher_new_stream(m);
	ts_mime_header_init(&it, buf, n);
	while (!m->matched && ts_mime_header_next(&it, &f)) {
		size_t ulen, dlen;
		char *u = ts_mime_unfold(f.value, f.value_len, &ulen);
		char *d = ts_mime_decode_words(u, ulen, &dlen);
		ts_mime_matcher_feed(m, f.name, f.name_len);
		ts_mime_matcher_feed(m, ": ", 2);
		ts_mime_matcher_feed(m, d, dlen);
		ts_mime_matcher_feed(m, "\n", 1);
		free(u);
		free(d);
	}
	free(buf);
	return m->matched;
}

/* Feed the decoded text of a text part's body to m. */
static bool
search_text_part(struct search_source *src, const struct ts_mime_part *part,
		 struct ts_mime_matcher *m)
{
	struct ts_mime_text_decoder *d = ts_mime_text_decoder_new(part);
	struct ts_mime_buf out = { 0 };
	char *buf = ts_xmalloc(SEARCH_CHUNK);
	uint64_t off = part->body_start;

	search_matcher_new_stream(m);
	while (off < part->body_end && !m->matched) {
		size_t want = SEARCH_CHUNK;
		if (part->body_end - off < want)
			want = (size_t)(part->body_end - off);
		size_t n = search_read(src, off, buf, want);
		if (n == 0)
			break;
		off += n;
		out.len = 0;
		ts_mime_text_decoder_feed(d, buf, n, &out);
		ts_mime_matcher_feed(m, out.data ? out.data : "", out.len);
	}
	out.len = 0;
	ts_mime_text_decoder_finish(&d, &out);
	ts_mime_matcher_feed(m, out.data, out.len);
	ts_mime_buf_free(&out);
	free(buf);
	return m->matched;
}

static bool
search_part(struct search_source *src, const struct ts_mime_part *part,
	    struct ts_mime_matcher *m)
{
	switch (part->kind) {
	case TS_MIME_PART_MULTIPART:
		for (const struct ts_mime_part *c = part->children; c != NULL;
		     c = c->next)
			if (search_part(src, c, m))
				return true;
		return false;
	case TS_MIME_PART_MESSAGE:
		if (search_header(src, part->children, m))
			return true;
		return search_part(src, part->children, m);
	case TS_MIME_PART_LEAF:
		break;
	}
	if (!ts_mime_part_is(part, "text", NULL))
		return false;
	return search_text_part(src, part, m);
}

static int
search_run(struct search_source *src, const struct ts_mime_message *msg,
	   enum ts_mime_search_scope scope, const char *needle, size_t nlen)
{
	struct ts_mime_matcher *m = ts_mime_matcher_new(needle, nlen);
	bool found = m->matched;

	if (!found && scope == TS_MIME_SEARCH_TEXT)
		found = search_header(src, msg->root, m);
	if (!found)
		found = search_part(src, msg->root, m);
	ts_mime_matcher_free(&m);
	if (src->io_error)
		return TS_E_IO;
	return found ? 1 : 0;
}

bool
ts_mime_search(const struct ts_mime_message *msg, const void *data, size_t len,
	       enum ts_mime_search_scope scope, const char *needle, size_t nlen)
{
	struct search_source src = { .data = data, .len = len };
	return search_run(&src, msg, scope, needle, nlen) == 1;
}

int
ts_mime_search_fd(const struct ts_mime_message *msg, const char *prefix,
		  size_t prefix_len, int fd, enum ts_mime_search_scope scope,
		  const char *needle, size_t nlen)
{
	struct search_source src = { .prefix = prefix,
				     .prefix_len = prefix_len,
				     .fd = fd,
				     .from_file = true };
	return search_run(&src, msg, scope, needle, nlen);
}
