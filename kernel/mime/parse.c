/*
 * kernel/mime/parse.c — the MIME tree of a message, built from a byte
 * stream fed in chunks: part boundaries (RFC 2046 section 5.1.1),
 * encapsulated messages (message/rfc822, message/global), offsets and
 * line counts.
 *
 * The stream is cut into lines (LF-terminated; a CR before the LF belongs
 * to the line end).  Only what a decision needs is kept: the current part's
 * header until it is complete, and the first bytes of every other line
 * (enough to recognise a boundary).  Bodies pass through without being
 * stored.  Field meaning is params.c's job; section lookup is section.c's.
 *
 * Every open part is an ancestor of the current one (or the current one);
 * a boundary line closes the parts between the current one and the
 * multipart that owns the boundary, which is how a missing close
 * delimiter of an inner multipart is repaired.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kernel/mime/mime-private.h"

#define PARSE_DEFAULT_DEPTH 50
#define PARSE_DEFAULT_PARTS 5000
#define PARSE_DEFAULT_HEADER (256 * 1024)
#define PARSE_DEFAULT_CHUNK (64 * 1024)
/* Bytes of a body line kept for boundary recognition. */
#define PARSE_LINE_KEEP 1024
/* Longest boundary taken (RFC 2046 allows 70). */
#define PARSE_MAX_BOUNDARY 900

struct parse_boundary {
	char *text;
	size_t len;
	struct ts_mime_part *multipart;
};

enum parse_state {
	PARSE_HEADER, /* reading cur's header */
	PARSE_BODY, /* in cur's body (or a multipart's preamble/epilogue) */
};

struct ts_mime_parser {
	struct ts_mime_limits limits;
	struct ts_mime_message *msg;

	/* The line being read. */
	uint64_t line_start;
	struct ts_mime_buf line; /* its first bytes */
	uint64_t line_len; /* all its bytes so far (without the LF) */
	char line_last; /* its last byte so far */
	bool line_overflow; /* line.data holds only a prefix */
	bool overflow_space; /* the bytes not kept are all white space */

	/* The line before it. */
	size_t prev_eol; /* 0 (none), 1 (LF) or 2 (CRLF) */
	uint64_t lf_total; /* LFs before line_start */

	enum parse_state state;
	struct ts_mime_part *cur;
	struct ts_mime_buf header;
	bool header_overflow;
	bool no_boundaries; /* the part limit was reached */

	struct parse_boundary *stack;
	size_t nstack, stack_cap;
};

/* --- parts ---------------------------------------------------------------- */

static struct ts_mime_part *
parse_new_part(struct ts_mime_parser *p, struct ts_mime_part *parent,
	       uint64_t header_start, bool is_message)
{
	struct ts_mime_part *part = ts_xcalloc(1, sizeof(*part));
	part->parent = parent;
	part->depth = parent ? parent->depth + 1 : 0;
	part->is_message = is_message;
	part->header_start = header_start;
	if (parent != NULL) {
		struct ts_mime_part **tail = &parent->children;
		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = part;
		parent->nchildren++;
	}
	p->msg->nparts++;
	return part;
}

static bool
parse_in_digest(const struct ts_mime_part *part)
{
	const struct ts_mime_part *mp = part->parent;
	return mp != NULL && mp->kind == TS_MIME_PART_MULTIPART &&
	       ts_mime_part_is(mp, "multipart", "digest");
}

/* The boundary parameter of a multipart, if usable. */
static const char *
parse_boundary_param(const struct ts_mime_part *part)
{
	for (size_t k = 0; k < part->nparams; k++)
		if (strcasecmp(part->params[k].name, "boundary") == 0) {
			const char *b = part->params[k].raw_value;
			size_t n = strlen(b);
			if (n == 0 || n > PARSE_MAX_BOUNDARY)
				return NULL;
			return b;
		}
	return NULL;
}

/* Parse cur's collected header (its fields, not what follows). */
static void
parse_header_fields(struct ts_mime_parser *p, struct ts_mime_part *part)
{
	ts__mime_part_parse_header(part, p->header.data ? p->header.data : "",
				   p->header.len, parse_in_digest(part));
	p->header.len = 0;
	p->header_overflow = false;
	if (ts_mime_part_is(part, "multipart", NULL))
		part->kind = TS_MIME_PART_MULTIPART;
}

/*
 * End part at offset end (clamped to its body start); lf_before_end: LFs
 * in the stream before end.  Lines are the body's LFs, as Dovecot counts
 * them: an unterminated last line is not one.
 */
static void
parse_end_part(struct ts_mime_part *part, uint64_t end, uint64_t lf_before_end)
{
	/* body_lines held the LF count at body_start until now. */
	uint64_t lf_at_start = part->body_lines;
	if (end <= part->body_start) {
		part->body_end = part->body_start;
		part->body_size = 0;
		part->body_lines = 0;
		return;
	}
	part->body_end = end;
	part->body_size = end - part->body_start;
	part->body_lines = lf_before_end - lf_at_start;
}

/*
 * The current part's header was cut short (a boundary, the end of the
 * stream) at offset end: its body is empty.
 */
static void
parse_cut_header(struct ts_mime_parser *p, uint64_t end, uint64_t lf)
{
	struct ts_mime_part *part = p->cur;
	if (end < part->header_start)
		end = part->header_start;
	part->body_start = end;
	part->body_lines = lf;
	parse_header_fields(p, part);
	p->state = PARSE_BODY;
}

/*
 * The current part's header ended with an empty line; its body starts at
 * body_start.  Decide what the body is and set up to read it.
 */
static void
parse_header_done(struct ts_mime_parser *p, uint64_t body_start)
{
	struct ts_mime_part *part = p->cur;
	struct ts_mime_limits *lim = &p->limits;

	part->body_start = body_start;
	part->body_lines = p->lf_total + 1;
	parse_header_fields(p, part);
	p->state = PARSE_BODY;

	bool deep_ok = part->depth < lim->max_depth;
	if (part->kind == TS_MIME_PART_MULTIPART) {
		const char *b = parse_boundary_param(part);
		if (b == NULL || !deep_ok) {
			/* A multipart without parts; its body is opaque. */
			if (!deep_ok)
				p->msg->truncated = true;
			return;
		}
		if (p->nstack == p->stack_cap) {
			p->stack_cap = p->stack_cap ? p->stack_cap * 2 : 8;
			p->stack = ts_xrealloc(
				p->stack, p->stack_cap * sizeof(*p->stack));
		}
		struct parse_boundary *pb = &p->stack[p->nstack++];
		pb->text = ts_xstrdup(b);
		pb->len = strlen(b);
		pb->multipart = part;
		return;
	}
	bool rfc822 = ts_mime_part_is(part, "message", "rfc822") ||
		      ts_mime_part_is(part, "message", "global");
	/* RFC 2046 section 5.2.1: only identity encodings are looked into. */
	const char *enc = part->encoding;
	bool identity = enc == NULL || strcasecmp(enc, "7bit") == 0 ||
			strcasecmp(enc, "8bit") == 0 ||
			strcasecmp(enc, "binary") == 0;
	if (!rfc822 || !identity)
		return;
	if (!deep_ok || p->msg->nparts >= lim->max_parts) {
		p->msg->truncated = true;
		return;
	}
	part->kind = TS_MIME_PART_MESSAGE;
	p->cur = parse_new_part(p, part, body_start, true);
	p->state = PARSE_HEADER;
}

/* --- boundaries ----------------------------------------------------------- */

/*
 * Does the current line delimit boundary b?  Sets *close for the close
 * delimiter.  Transport padding (white space) may follow (RFC 2046).
 */
static bool
parse_line_is_boundary(const struct ts_mime_parser *p,
		       const struct parse_boundary *b, bool *close)
{
	const char *s = p->line.data;
	size_t n = p->line.len;

	if (n < 2 + b->len || s[0] != '-' || s[1] != '-' ||
	    memcmp(s + 2, b->text, b->len) != 0)
		return false;
	size_t i = 2 + b->len;
	*close = false;
	if (i + 2 <= n && s[i] == '-' && s[i + 1] == '-') {
		*close = true;
		i += 2;
	}
	for (; i < n; i++)
		if (!ts__mime_is_wsp(s[i]) && s[i] != '\r')
			return false;
	return !p->line_overflow || p->overflow_space;
}

/*
 * The current line is a boundary of stack entry k: end the parts it
 * closes and start the next part (or the epilogue).
 */
static void
parse_boundary_line(struct ts_mime_parser *p, size_t k, bool close,
		    uint64_t line_total)
{
	/* The line end before the boundary belongs to the boundary. */
	uint64_t end = p->line_start - p->prev_eol;
	uint64_t lf = p->lf_total - (p->prev_eol > 0 ? 1 : 0);
	struct ts_mime_part *mp = p->stack[k].multipart;

	if (p->state == PARSE_HEADER)
		parse_cut_header(p, end, lf);
	for (struct ts_mime_part *n = p->cur; n != mp; n = n->parent)
		parse_end_part(n, end, lf);
	for (size_t j = k + (close ? 0 : 1); j < p->nstack; j++)
		free(p->stack[j].text);
	p->nstack = k + (close ? 0 : 1);
	p->cur = mp;
	p->state = PARSE_BODY;
	if (close)
		return;
	if (p->msg->nparts >= p->limits.max_parts) {
		/* Defined cut: everything from here is mp's opaque body. */
		p->msg->truncated = true;
		p->no_boundaries = true;
		return;
	}
	p->cur = parse_new_part(p, mp, p->line_start + line_total, false);
	p->state = PARSE_HEADER;
}

/* --- lines ---------------------------------------------------------------- */

static void
parse_line_done(struct ts_mime_parser *p, bool has_lf)
{
	uint64_t line_total = p->line_len + (has_lf ? 1 : 0);
	size_t eol = 0;
	if (has_lf)
		eol = p->line_len > 0 && p->line_last == '\r' ? 2 : 1;
	uint64_t content_len = line_total - eol;
	bool handled = false;

	if (!p->no_boundaries && p->line.len >= 2 && p->line.data[0] == '-' &&
	    p->line.data[1] == '-') {
		for (size_t k = p->nstack; k > 0; k--) {
			bool close;
			if (parse_line_is_boundary(p, &p->stack[k - 1],
						   &close)) {
				parse_boundary_line(p, k - 1, close,
						    line_total);
				handled = true;
				break;
			}
		}
	}
	if (!handled && p->state == PARSE_HEADER) {
		if (content_len == 0 && has_lf) {
			parse_header_done(p, p->line_start + line_total);
		} else if (!p->header_overflow && !p->line_overflow &&
			   p->header.len + line_total <=
				   p->limits.max_header_size) {
			ts_mime_buf_add(&p->header, p->line.data, p->line.len);
			if (has_lf)
				ts_mime_buf_add(&p->header, "\n", 1);
		} else {
			p->header_overflow = true;
		}
	}
	p->prev_eol = eol;
	if (has_lf)
		p->lf_total++;
	p->line_start += line_total;
	p->line.len = 0;
	p->line_len = 0;
	p->line_overflow = false;
	p->overflow_space = true;
}

/* Append bytes of the current line (no LF among them). */
static void
parse_line_add(struct ts_mime_parser *p, const char *s, size_t n)
{
	if (n == 0)
		return;
	size_t keep = PARSE_LINE_KEEP;
	if (p->state == PARSE_HEADER && !p->header_overflow &&
	    p->limits.max_header_size > keep)
		keep = p->limits.max_header_size;
	size_t room = p->line.len < keep ? keep - p->line.len : 0;
	size_t take = n < room ? n : room;
	ts_mime_buf_add(&p->line, s, take);
	for (size_t k = take; k < n && p->overflow_space; k++)
		if (!ts__mime_is_wsp(s[k]) && s[k] != '\r')
			p->overflow_space = false;
	if (take < n)
		p->line_overflow = true;
	p->line_len += n;
	p->line_last = s[n - 1];
}

/* --- the public parser ---------------------------------------------------- */

struct ts_mime_parser *
ts_mime_parser_new(const struct ts_mime_limits *limits)
{
	struct ts_mime_parser *p = ts_xcalloc(1, sizeof(*p));
	if (limits != NULL)
		p->limits = *limits;
	if (p->limits.max_depth == 0)
		p->limits.max_depth = PARSE_DEFAULT_DEPTH;
	if (p->limits.max_parts == 0)
		p->limits.max_parts = PARSE_DEFAULT_PARTS;
	if (p->limits.max_header_size == 0)
		p->limits.max_header_size = PARSE_DEFAULT_HEADER;
	if (p->limits.chunk_size == 0)
		p->limits.chunk_size = PARSE_DEFAULT_CHUNK;
	p->msg = ts_xcalloc(1, sizeof(*p->msg));
	p->msg->root = parse_new_part(p, NULL, 0, true);
	p->cur = p->msg->root;
	p->state = PARSE_HEADER;
	p->overflow_space = true;
	return p;
}

void
ts_mime_parser_feed(struct ts_mime_parser *p, const void *data, size_t len)
{
	const char *s = data;
	size_t i = 0;

	while (i < len) {
		const char *lf = memchr(s + i, '\n', len - i);
		size_t end = lf ? (size_t)(lf - s) : len;
		parse_line_add(p, s + i, end - i);
		i = end;
		if (lf != NULL) {
			parse_line_done(p, true);
			i++;
		}
	}
}

static void
parse_free_part(struct ts_mime_part *part)
{
	struct ts_mime_part *c = part->children;
	while (c != NULL) {
		struct ts_mime_part *next = c->next;
		parse_free_part(c);
		c = next;
	}
	ts__mime_part_free_fields(part);
	free(part);
}

void
ts_mime_parser_free(struct ts_mime_parser **pp)
{
	struct ts_mime_parser *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	for (size_t k = 0; k < p->nstack; k++)
		free(p->stack[k].text);
	free(p->stack);
	ts_mime_buf_free(&p->line);
	ts_mime_buf_free(&p->header);
	if (p->msg != NULL)
		ts_mime_message_free(&p->msg);
	free(p);
}

struct ts_mime_message *
ts_mime_parser_finish(struct ts_mime_parser **pp)
{
	struct ts_mime_parser *p = *pp;

	if (p->line_len > 0)
		parse_line_done(p, false);
	uint64_t end = p->line_start;
	if (p->state == PARSE_HEADER)
		parse_cut_header(p, end, p->lf_total);
	for (struct ts_mime_part *n = p->cur; n != NULL; n = n->parent)
		parse_end_part(n, end, p->lf_total);
	struct ts_mime_message *msg = p->msg;
	msg->size = end;
	p->msg = NULL;
	ts_mime_parser_free(pp);
	return msg;
}

struct ts_mime_message *
ts_mime_parse_buffer(const void *data, size_t len,
		     const struct ts_mime_limits *limits)
{
	struct ts_mime_parser *p = ts_mime_parser_new(limits);
	ts_mime_parser_feed(p, data, len);
	return ts_mime_parser_finish(&p);
}

int
ts_mime_parse_fd(const char *prefix, size_t prefix_len, int fd,
		 const struct ts_mime_limits *limits,
		 struct ts_mime_message **msg_r, const char **error_r)
{
	struct ts_mime_parser *p = ts_mime_parser_new(limits);
	size_t size = p->limits.chunk_size;
	char *buf = ts_xmalloc(size);

	*msg_r = NULL;
	ts_mime_parser_feed(p, prefix, prefix_len);
	for (;;) {
		ssize_t n = read(fd, buf, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			ts_mime_parser_free(&p);
			if (error_r != NULL)
				*error_r = "read of message file failed";
			return TS_E_IO;
		}
		if (n == 0)
			break;
		ts_mime_parser_feed(p, buf, (size_t)n);
	}
	free(buf);
	*msg_r = ts_mime_parser_finish(&p);
	return 0;
}

void
ts_mime_message_free(struct ts_mime_message **msgp)
{
	struct ts_mime_message *msg = *msgp;
	if (msg == NULL)
		return;
	*msgp = NULL;
	if (msg->root != NULL)
		parse_free_part(msg->root);
	free(msg);
}
