/*
 * modules/imap/fetch.c — FETCH and UID FETCH (RFC 3501 6.4.5, RFC 3516
 * BINARY, RFC 7162 CHANGEDSINCE/VANISHED).
 *
 * Messages are answered one at a time.  Items that need no content
 * (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) come from the session's
 * view; content items open the message on the work pool
 * (ts_store_message_read: prefix + file), read its head to find where the
 * header ends, parse the MIME structure once when an item needs it
 * (ts_mime_parse_fd: offsets only, never the bodies) and resolve every
 * item there: ENVELOPE and BODYSTRUCTURE become text, each section a
 * byte range of the message, a generated text (HEADER.FIELDS) or a
 * decoded range (BINARY of a quoted-printable or base64 part, whose
 * decoded size is counted on the pool first).  Ranges are streamed in
 * 64 KiB chunks read (and decoded) on the pool, and whenever queued
 * output passes the connection's low-water mark the next chunk waits for
 * `drained`: a client that stops reading holds at most a chunk or two in
 * server memory.
 *
 * fetch_locate is the one place that maps a section to bytes.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap.h"
#include "structure.h"

/* How much of a message's start is read to find the end of its header. */
#define FETCH_HEAD_MAX (256 * 1024)
#define FETCH_CHUNK (64 * 1024)
/* Queued output above this waits for `drained` (the kernel's mark). */
#define FETCH_HIGH_WATER (64 * 1024)

/* One piece of a message's response: text, a range, or a decoded range. */
enum fetch_seg_kind {
	FETCH_SEG_TEXT = 0,
	FETCH_SEG_RANGE, /* bytes start..start+len of the message */
	FETCH_SEG_DECODED, /* len bytes of the decoded src range, after skip */
};
struct fetch_seg {
	enum fetch_seg_kind kind;
	char *text;
	size_t text_len;
	uint64_t start, len;
	uint64_t src_len, skip;
	const struct ts_mime_part *part; /* its transfer encoding */
};

/* What a content item resolved to on the pool (one per attribute). */
enum fetch_res_kind {
	FETCH_RES_NONE = 0, /* not a content item */
	FETCH_RES_TEXT, /* text (ENVELOPE, BODYSTRUCTURE, HEADER.FIELDS) */
	FETCH_RES_RANGE, /* bytes start..start+len */
	FETCH_RES_DECODED, /* decoded range: src start..+src_len, dsize out */
	FETCH_RES_MISSING, /* the section names no part: "" */
	FETCH_RES_UNKNOWN_CTE, /* BINARY of an encoding we cannot undo */
};
struct fetch_res {
	enum fetch_res_kind kind;
	char *text;
	size_t text_len;
	uint64_t start, len, src_len;
	const struct ts_mime_part *part;
};

struct imap_fetch {
	struct imap_session *s;
	size_t *idx;
	size_t count, pos;
	bool need_content;
	bool need_tree; /* parse the whole MIME structure */
	bool need_envelope; /* the root's header fields only */
	bool aborted;
	bool job_running;
	bool waiting_drain;
	bool set_seen;
	bool unknown_cte;
	unsigned missing; /* messages gone before they could be read */

	/* the current message */
	int64_t msg_id;
	uint64_t msg_size;
	int fd;
	char *prefix;
	size_t prefix_len;
	char *head;
	size_t head_len;
	uint64_t header_len; /* bytes of header, with its blank line */
	int read_error;
	struct ts_mime_message *mime;
	struct fetch_res *res; /* one per attribute of the command */
	struct fetch_seg *segs;
	size_t nseg, seg_pos;
	uint64_t seg_off;
	char *chunk;
	size_t chunk_len;
	/* decoding the current FETCH_SEG_DECODED segment (pool thread) */
	struct ts_mime_text_decoder *dec;
	uint64_t dec_src_off, dec_skipped;
	bool dec_done;
};

static void fetch_next(struct imap_fetch *f);
static void fetch_pump(struct imap_fetch *f);

/* --- reading message bytes (pool thread) ---------------------------------- */

/* Read [off, off+len) of prefix+file into buf; bytes read or -1. */
static ssize_t
fetch_read_at(struct imap_fetch *f, uint64_t off, char *buf, size_t len)
{
	size_t n = 0;
	if (off < f->prefix_len) {
		size_t k = f->prefix_len - (size_t)off;
		if (k > len)
			k = len;
		memcpy(buf, f->prefix + off, k);
		n = k;
		off += k;
	}
	while (n < len) {
		ssize_t r = pread(f->fd, buf + n, len - n,
				  (off_t)(off - f->prefix_len));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
		off += (uint64_t)r;
	}
	return (ssize_t)n;
}

static void fetch_resolve(struct imap_fetch *f,
			  const struct imap_fetch_att *att,
			  struct fetch_res *r);

/* Forget the decoder of a decoded range (pool thread or loop). */
static void
fetch_dec_reset(struct imap_fetch *f)
{
	if (f->dec != NULL) {
		struct ts_mime_buf scratch = { 0 };
		ts_mime_text_decoder_finish(&f->dec, &scratch);
		ts_mime_buf_free(&scratch);
	}
	f->dec_src_off = f->dec_skipped = 0;
	f->dec_done = false;
}

/*
 * Decode the next chunk of the range start..start+src_len (the body of
 * part) into out; at its end the decoder is finished and f->dec_done set.
 * Returns 0, or -1 when reading fails.
 */
static int
fetch_decode_step(struct imap_fetch *f, const struct ts_mime_part *part,
		  uint64_t start, uint64_t src_len, struct ts_mime_buf *out)
{
	if (f->dec == NULL)
		f->dec = ts_mime_binary_decoder_new(part);
	uint64_t left = src_len - f->dec_src_off;
	size_t want = left < FETCH_CHUNK ? (size_t)left : FETCH_CHUNK;
	ssize_t n = 0;
	if (want > 0) {
		char *buf = ts_xmalloc(want);
		n = fetch_read_at(f, start + f->dec_src_off, buf, want);
		if (n > 0)
			ts_mime_text_decoder_feed(f->dec, buf, (size_t)n, out);
		free(buf);
		if (n < 0)
			return -1;
		f->dec_src_off += (uint64_t)n;
	}
	if (n == 0 || f->dec_src_off >= src_len) {
		ts_mime_text_decoder_finish(&f->dec, out);
		f->dec_done = true;
	}
	return 0;
}

/* The decoded size of part's body start..start+src_len; -1 on error. */
static int64_t
fetch_decoded_size(struct imap_fetch *f, const struct ts_mime_part *part,
		   uint64_t start, uint64_t src_len)
{
	uint64_t total = 0;
	fetch_dec_reset(f);
	while (!f->dec_done) {
		struct ts_mime_buf b = { 0 };
		int rc = fetch_decode_step(f, part, start, src_len, &b);
		total += b.len;
		ts_mime_buf_free(&b);
		if (rc != 0) {
			fetch_dec_reset(f);
			return -1;
		}
	}
	fetch_dec_reset(f);
	return (int64_t)total;
}

/* The next chunk of a decoded segment into f->chunk (pool thread). */
static void
fetch_decoded_chunk(struct imap_fetch *f, const struct fetch_seg *g)
{
	struct ts_mime_buf out = { 0 };
	uint64_t remaining = g->len - f->seg_off;
	while (out.len == 0 && !f->dec_done) {
		if (fetch_decode_step(f, g->part, g->start, g->src_len, &out) !=
		    0) {
			f->read_error = TS_E_IO;
			break;
		}
		if (f->dec_skipped < g->skip && out.len > 0) {
			uint64_t drop = g->skip - f->dec_skipped;
			if (drop > out.len)
				drop = out.len;
			memmove(out.data, out.data + drop,
				out.len - (size_t)drop);
			out.len -= (size_t)drop;
			f->dec_skipped += drop;
		}
	}
	if (out.len > remaining)
		out.len = (size_t)remaining;
	f->chunk = out.data != NULL ? out.data : ts_xmalloc(1);
	f->chunk_len = out.len;
}

static void
fetch_open_work(void *arg)
{
	struct imap_fetch *f = arg;
	if (ts_store_message_read(f->s->store, f->msg_id, &f->fd, &f->prefix,
				  &f->prefix_len) != 0) {
		f->fd = -1;
		f->read_error = TS_E_NOTFOUND;
		return;
	}
	size_t want = f->msg_size < FETCH_HEAD_MAX ? (size_t)f->msg_size
						   : FETCH_HEAD_MAX;
	f->head = ts_xmalloc(want + 1);
	ssize_t n = fetch_read_at(f, 0, f->head, want);
	if (n < 0) {
		f->read_error = TS_E_IO;
		return;
	}
	f->head_len = (size_t)n;
	f->head[n] = '\0';
	/* The header ends with its first empty line (RFC 5322 2.1). */
	f->header_len = f->head_len;
	for (size_t i = 0; i < f->head_len; i++) {
		if (f->head[i] != '\n')
			continue;
		if (i + 1 < f->head_len && f->head[i + 1] == '\n') {
			f->header_len = i + 2;
			break;
		}
		if (i + 2 < f->head_len && f->head[i + 1] == '\r' &&
		    f->head[i + 2] == '\n') {
			f->header_len = i + 3;
			break;
		}
	}
	if (f->header_len == f->head_len)
		f->header_len =
			f->msg_size < f->head_len ? f->msg_size : f->head_len;
	if (f->need_tree) {
		const char *error;
		if (ts_mime_parse_fd(f->prefix, f->prefix_len, f->fd, NULL,
				     &f->mime, &error) != 0) {
			f->read_error = TS_E_IO;
			return;
		}
	} else if (f->need_envelope) {
		f->mime = ts_mime_parse_buffer(f->head, (size_t)f->header_len,
					       NULL);
	}
	struct imap_command *c = &f->s->cmd;
	f->res = ts_xcalloc(c->att_count + 1, sizeof(*f->res));
	for (size_t a = 0; a < c->att_count && f->read_error == 0; a++)
		fetch_resolve(f, &c->atts[a], &f->res[a]);
	fetch_dec_reset(f);
}

static void
fetch_chunk_work(void *arg)
{
	struct imap_fetch *f = arg;
	struct fetch_seg *g = &f->segs[f->seg_pos];
	if (g->kind == FETCH_SEG_DECODED) {
		fetch_decoded_chunk(f, g);
		return;
	}
	uint64_t left = g->len - f->seg_off;
	size_t want = left < FETCH_CHUNK ? (size_t)left : FETCH_CHUNK;
	f->chunk = ts_xmalloc(want != 0 ? want : 1);
	ssize_t n = fetch_read_at(f, g->start + f->seg_off, f->chunk, want);
	f->chunk_len = n > 0 ? (size_t)n : 0;
	if (n < 0)
		f->read_error = TS_E_IO;
}

/* --- sections --------------------------------------------------------------
 */

/* Whether header field `name` (len bytes) is in the list. */
static bool
fetch_field_listed(const struct imap_section *sec, const char *name, size_t len)
{
	for (size_t i = 0; i < sec->field_count; i++)
		if (strlen(sec->fields[i]) == len &&
		    strncasecmp(sec->fields[i], name, len) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS (NOT): the chosen fields and the blank line. */
static char *
fetch_header_fields(const struct imap_fetch *f, const struct imap_section *sec,
		    size_t *len_r)
{
	size_t hl = (size_t)f->header_len;
	char *out = ts_xmalloc(hl + 3);
	size_t n = 0;
	bool keep = false;
	for (size_t i = 0; i < hl;) {
		size_t e = i;
		while (e < hl && f->head[e] != '\n')
			e++;
		if (e < hl)
			e++;
		const char *line = f->head + i;
		size_t ll = e - i;
		bool blank = (ll == 1 && line[0] == '\n') ||
			     (ll == 2 && line[0] == '\r');
		if (blank)
			break;
		if (line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', ll);
			size_t nl = colon != NULL ? (size_t)(colon - line) : 0;
			while (nl > 0 &&
			       (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
				nl--;
			bool listed = colon != NULL &&
				      fetch_field_listed(sec, line, nl);
			keep = sec->text == IMAP_SECTION_HEADER_FIELDS
				       ? listed
				       : !listed && colon != NULL;
		}
		if (keep) {
			memcpy(out + n, line, ll);
			n += ll;
		}
		i = e;
	}
	memcpy(out + n, "\r\n", 2);
	n += 2;
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* The section as written: "1.2.HEADER.FIELDS", with fields "(From To)". */
static char *
fetch_section_name(const struct imap_section *sec, bool with_fields)
{
	struct imap_str out = { 0 };
	char num[16];
	for (size_t i = 0; i < sec->part_count; i++) {
		snprintf(num, sizeof(num), "%s%" PRIu32, i ? "." : "",
			 sec->part[i]);
		imap_str_append_cstr(&out, num);
	}
	static const char *const names[] = {
		[IMAP_SECTION_ALL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};
	if (sec->text != IMAP_SECTION_ALL) {
		if (sec->part_count > 0)
			imap_str_append_cstr(&out, ".");
		imap_str_append_cstr(&out, names[sec->text]);
	}
	if (with_fields && sec->field_count > 0) {
		imap_str_append_cstr(&out, " (");
		for (size_t i = 0; i < sec->field_count; i++) {
			if (i > 0)
				imap_str_append_cstr(&out, " ");
			imap_str_append_cstr(&out, sec->fields[i]);
		}
		imap_str_append_cstr(&out, ")");
	}
	return out.data != NULL ? out.data : ts_xstrdup("");
}

/*
 * Map a section of the current message to bytes (pool thread): a range
 * of the message, a generated text (HEADER.FIELDS), or missing when the
 * numbers name no part.  Top-level sections need only the head; part
 * sections the parsed tree.
 */
static void
fetch_locate(struct imap_fetch *f, const struct imap_section *sec,
	     struct fetch_res *r)
{
	r->kind = FETCH_RES_RANGE;
	if (sec->part_count == 0 || f->mime == NULL) {
		switch (sec->text) {
		case IMAP_SECTION_ALL:
			r->start = 0;
			r->len = f->msg_size;
			return;
		case IMAP_SECTION_HEADER:
			r->start = 0;
			r->len = f->header_len;
			return;
		case IMAP_SECTION_TEXT:
			r->start = f->header_len;
			r->len = f->msg_size > f->header_len
					 ? f->msg_size - f->header_len
					 : 0;
			return;
		case IMAP_SECTION_HEADER_FIELDS:
		case IMAP_SECTION_HEADER_FIELDS_NOT:
			r->kind = FETCH_RES_TEXT;
			r->text = fetch_header_fields(f, sec, &r->text_len);
			return;
		case IMAP_SECTION_MIME:
			break;
		}
		r->kind = FETCH_RES_MISSING;
		return;
	}
	char *spec = fetch_section_name(sec, false);
	struct ts_mime_section ms;
	int rc = ts_mime_section_find(f->mime, spec, &ms);
	free(spec);
	if (rc != 0) {
		r->kind = FETCH_RES_MISSING;
		return;
	}
	if (ms.kind == TS_MIME_SECTION_HEADER_FIELDS ||
	    ms.kind == TS_MIME_SECTION_HEADER_FIELDS_NOT) {
		/* Read the part's header (bounded) and filter it. */
		uint64_t hl = ms.end - ms.start;
		size_t want = hl < FETCH_HEAD_MAX ? (size_t)hl : FETCH_HEAD_MAX;
		char *buf = ts_xmalloc(want + 1);
		ssize_t n = fetch_read_at(f, ms.start, buf, want);
		struct ts_mime_buf out = { 0 };
		ts_mime_header_filter(
			buf, n > 0 ? (size_t)n : 0,
			(const char *const *)sec->fields, sec->field_count,
			ms.kind == TS_MIME_SECTION_HEADER_FIELDS_NOT, &out);
		free(buf);
		if (n < 0)
			f->read_error = TS_E_IO;
		r->kind = FETCH_RES_TEXT;
		r->text = out.data;
		r->text_len = out.len;
		return;
	}
	r->start = ms.start;
	r->len = ms.end - ms.start;
}

/* BINARY[section] and BINARY.SIZE (RFC 3516): a range, decoded or not. */
static void
fetch_locate_binary(struct imap_fetch *f, const struct imap_section *sec,
		    struct fetch_res *r)
{
	r->kind = FETCH_RES_RANGE;
	if (sec->part_count == 0) {
		r->start = 0;
		r->len = f->msg_size;
		return;
	}
	char *spec = fetch_section_name(sec, false);
	struct ts_mime_section ms;
	int rc = ts_mime_section_find(f->mime, spec, &ms);
	free(spec);
	if (rc != 0) {
		r->kind = FETCH_RES_MISSING;
		return;
	}
	const struct ts_mime_part *part = ms.part;
	r->start = ms.start;
	r->len = ms.end - ms.start;
	if (part->kind != TS_MIME_PART_LEAF || part->encoding == NULL)
		return;
	if (!ts_mime_encoding_known(part)) {
		r->kind = FETCH_RES_UNKNOWN_CTE;
		return;
	}
	if (strcasecmp(part->encoding, "quoted-printable") != 0 &&
	    strcasecmp(part->encoding, "base64") != 0)
		return;
	int64_t size = fetch_decoded_size(f, part, r->start, r->len);
	if (size < 0) {
		f->read_error = TS_E_IO;
		return;
	}
	r->kind = FETCH_RES_DECODED;
	r->part = part;
	r->src_len = r->len;
	r->len = (uint64_t)size;
}

/* Resolve one attribute of the command for the current message. */
static void
fetch_resolve(struct imap_fetch *f, const struct imap_fetch_att *att,
	      struct fetch_res *r)
{
	struct imap_section whole = { 0 };
	struct imap_str out = { 0 };
	switch (att->kind) {
	case IMAP_FETCH_ENVELOPE:
		imap_str_append_cstr(&out, "ENVELOPE ");
		imap_structure_envelope(&out, f->mime->root);
		break;
	case IMAP_FETCH_BODYSTRUCTURE:
		imap_str_append_cstr(&out, "BODYSTRUCTURE ");
		imap_structure_body(&out, f->mime->root, true);
		break;
	case IMAP_FETCH_BODY_STRUCTURE:
		imap_str_append_cstr(&out, "BODY ");
		imap_structure_body(&out, f->mime->root, false);
		break;
	case IMAP_FETCH_RFC822:
		fetch_locate(f, &whole, r);
		return;
	case IMAP_FETCH_RFC822_HEADER:
		whole.text = IMAP_SECTION_HEADER;
		fetch_locate(f, &whole, r);
		return;
	case IMAP_FETCH_RFC822_TEXT:
		whole.text = IMAP_SECTION_TEXT;
		fetch_locate(f, &whole, r);
		return;
	case IMAP_FETCH_BODY_SECTION:
		fetch_locate(f, &att->section, r);
		return;
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		fetch_locate_binary(f, &att->section, r);
		return;
	default:
		r->kind = FETCH_RES_NONE;
		return;
	}
	r->kind = FETCH_RES_TEXT;
	r->text = out.data;
	r->text_len = out.len;
}

/* --- building a response ---------------------------------------------------
 */

static void
seg_text(struct imap_fetch *f, char *text, size_t len)
{
	f->segs = ts_xrealloc(f->segs, (f->nseg + 1) * sizeof(*f->segs));
	f->segs[f->nseg++] =
		(struct fetch_seg){ .text = text, .text_len = len };
}

static void
seg_str(struct imap_fetch *f, char *text)
{
	seg_text(f, text, strlen(text));
}

static void
seg_range(struct imap_fetch *f, uint64_t start, uint64_t len)
{
	/* Bytes already read with the head need no second read. */
	if (start + len <= f->head_len) {
		seg_text(f, ts_xstrndup(f->head + start, (size_t)len),
			 (size_t)len);
		return;
	}
	f->segs = ts_xrealloc(f->segs, (f->nseg + 1) * sizeof(*f->segs));
	f->segs[f->nseg++] = (struct fetch_seg){ .kind = FETCH_SEG_RANGE,
						 .start = start,
						 .len = len };
}

static char *
fetch_internaldate(int64_t t)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	return ts_xasprintf("\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
			    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
			    tm.tm_min, tm.tm_sec);
}

/* Build the segments of message f->idx[f->pos]'s response. */
static void
fetch_build(struct imap_fetch *f)
{
	struct imap_session *s = f->s;
	struct imap_command *c = &s->cmd;
	size_t i = f->idx[f->pos];
	struct imap_msg *m = &s->msgs[i];
	char *items = ts_xstrdup("");
	char *t;
	bool flags_done = false, uid_done = false, modseq_done = false;
#define ADD(...)                                                       \
	do {                                                           \
		char *piece_ = ts_xasprintf(__VA_ARGS__);              \
		t = ts_xasprintf("%s%s%s", items, items[0] ? " " : "", \
				 piece_);                              \
		free(piece_);                                          \
		free(items);                                           \
		items = t;                                             \
	} while (0)
	if (c->uid) {
		ADD("UID %" PRIu32, m->uid);
		uid_done = true;
	}
	for (size_t a = 0; a < c->att_count; a++) {
		struct imap_fetch_att *att = &c->atts[a];
		switch (att->kind) {
		case IMAP_FETCH_FLAGS:
			if (!flags_done) {
				char *fl = imap_msg_flags_str(m);
				ADD("FLAGS (%s)", fl);
				free(fl);
				flags_done = true;
			}
			break;
		case IMAP_FETCH_UID:
			if (!uid_done)
				ADD("UID %" PRIu32, m->uid);
			uid_done = true;
			break;
		case IMAP_FETCH_MODSEQ:
			if (!modseq_done)
				ADD("MODSEQ (%" PRIu64 ")", m->modseq);
			modseq_done = true;
			break;
		case IMAP_FETCH_INTERNALDATE: {
			char *d = fetch_internaldate(m->received);
			ADD("INTERNALDATE %s", d);
			free(d);
			break;
		}
		case IMAP_FETCH_RFC822_SIZE:
			ADD("RFC822.SIZE %" PRIu64, m->size);
			break;
		default:
			break;
		}
	}
	/* \Seen set implicitly (or by someone else) shows in FLAGS. */
	if (m->dirty && !flags_done) {
		char *fl = imap_msg_flags_str(m);
		ADD("FLAGS (%s)", fl);
		free(fl);
		flags_done = true;
	}
	if (m->dirty && s->condstore && !modseq_done) {
		ADD("MODSEQ (%" PRIu64 ")", m->modseq);
		modseq_done = true;
	}
	if (flags_done)
		m->dirty = false;
#undef ADD
	seg_str(f, ts_xasprintf("* %zu FETCH (%s", i + 1, items));
	bool first = items[0] == '\0';
	free(items);
	for (size_t a = 0; a < c->att_count && f->res != NULL; a++) {
		struct imap_fetch_att *att = &c->atts[a];
		struct fetch_res *r = &f->res[a];
		const char *sp = first ? "" : " ";
		if (r->kind == FETCH_RES_NONE)
			continue;
		first = false;
		if (att->kind == IMAP_FETCH_ENVELOPE ||
		    att->kind == IMAP_FETCH_BODYSTRUCTURE ||
		    att->kind == IMAP_FETCH_BODY_STRUCTURE) {
			seg_str(f, ts_xasprintf("%s", sp));
			seg_text(f, r->text, r->text_len);
			r->text = NULL;
			continue;
		}
		bool binary = att->kind == IMAP_FETCH_BINARY;
		char *label;
		switch (att->kind) {
		case IMAP_FETCH_RFC822:
			label = ts_xstrdup("RFC822");
			break;
		case IMAP_FETCH_RFC822_HEADER:
			label = ts_xstrdup("RFC822.HEADER");
			break;
		case IMAP_FETCH_RFC822_TEXT:
			label = ts_xstrdup("RFC822.TEXT");
			break;
		default: {
			char *sn = fetch_section_name(&att->section, true);
			const char *item = att->kind == IMAP_FETCH_BODY_SECTION
						   ? "BODY"
					   : binary ? "BINARY"
						    : "BINARY.SIZE";
			if (att->partial)
				label = ts_xasprintf("%s[%s]<%" PRIu32 ">",
						     item, sn,
						     att->partial_offset);
			else
				label = ts_xasprintf("%s[%s]", item, sn);
			free(sn);
			break;
		}
		}
		uint64_t start = r->start, len = r->len, skip = 0;
		if (r->kind == FETCH_RES_TEXT) {
			start = 0;
			len = r->text_len;
		}
		if (r->kind == FETCH_RES_MISSING)
			len = 0;
		if (att->kind == IMAP_FETCH_BINARY_SIZE) {
			seg_str(f,
				ts_xasprintf("%s%s %" PRIu64, sp, label, len));
			free(label);
			continue;
		}
		if (r->kind == FETCH_RES_MISSING) {
			seg_str(f, ts_xasprintf("%s%s \"\"", sp, label));
			free(label);
			continue;
		}
		if (att->partial) {
			uint64_t off = att->partial_offset;
			if (off > len)
				off = len;
			start += off;
			skip = off;
			len -= off;
			if (len > att->partial_count)
				len = att->partial_count;
		}
		seg_str(f, ts_xasprintf("%s%s %s{%" PRIu64 "}\r\n", sp, label,
					binary ? "~" : "", len));
		free(label);
		if (r->kind == FETCH_RES_TEXT) {
			seg_text(f, ts_xstrndup(r->text + start, (size_t)len),
				 (size_t)len);
		} else if (r->kind == FETCH_RES_DECODED) {
			if (len > 0) {
				f->segs = ts_xrealloc(f->segs,
						      (f->nseg + 1) *
							      sizeof(*f->segs));
				f->segs[f->nseg++] = (struct fetch_seg){
					.kind = FETCH_SEG_DECODED,
					.start = r->start,
					.len = len,
					.src_len = r->src_len,
					.skip = skip,
					.part = r->part,
				};
			}
		} else if (len > 0) {
			seg_range(f, start, len);
		}
	}
	seg_str(f, ts_xstrdup(")\r\n"));
}

/* --- the state machine -----------------------------------------------------
 */

static void
fetch_msg_reset(struct imap_fetch *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->prefix);
	f->prefix = NULL;
	f->prefix_len = 0;
	free(f->head);
	f->head = NULL;
	f->head_len = 0;
	for (size_t i = 0; i < f->nseg; i++)
		free(f->segs[i].text);
	free(f->segs);
	f->segs = NULL;
	f->nseg = f->seg_pos = 0;
	f->seg_off = 0;
	free(f->chunk);
	f->chunk = NULL;
	f->chunk_len = 0;
	f->read_error = 0;
	fetch_dec_reset(f);
	if (f->res != NULL)
		for (size_t i = 0; i < f->s->cmd.att_count; i++)
			free(f->res[i].text);
	free(f->res);
	f->res = NULL;
	ts_mime_message_free(&f->mime);
}

static void
fetch_free(struct imap_fetch *f)
{
	fetch_msg_reset(f);
	free(f->idx);
	free(f);
}

/* Finish: the tagged reply, and the session may go on. */
static void
fetch_finish(struct imap_fetch *f)
{
	struct imap_session *s = f->s;
	unsigned missing = f->missing;
	bool unknown_cte = f->unknown_cte;
	s->fetch = NULL;
	fetch_free(f);
	if (imap_store_unref(s))
		return;
	if (unknown_cte)
		imap_done(s, "NO [UNKNOWN-CTE] cannot decode the part's "
			     "Content-Transfer-Encoding");
	else if (missing > 0)
		imap_done(s, "NO [EXPUNGEISSUED] some messages were expunged");
	else
		imap_done(s, "OK FETCH completed");
}

static void
fetch_chunk_done(void *arg, int status)
{
	struct imap_fetch *f = arg;
	f->job_running = false;
	if (f->aborted || status != 0 || f->read_error != 0 ||
	    f->chunk_len == 0) {
		if (!f->aborted && f->s->conn != NULL && !f->s->closed)
			ts_conn_close(f->s->conn, "message read failed");
		struct imap_session *s = f->s;
		s->fetch = NULL;
		fetch_free(f);
		imap_store_unref(s);
		return;
	}
	imap_write(f->s, f->chunk, f->chunk_len);
	f->seg_off += f->chunk_len;
	free(f->chunk);
	f->chunk = NULL;
	if (f->seg_off >= f->segs[f->seg_pos].len) {
		f->seg_pos++;
		f->seg_off = 0;
		fetch_dec_reset(f);
	}
	fetch_pump(f);
}

/* Write segments until done, a read is needed, or output is too high. */
static void
fetch_pump(struct imap_fetch *f)
{
	struct imap_session *s = f->s;
	while (f->seg_pos < f->nseg) {
		if (ts_conn_output_pending(s->conn) >= FETCH_HIGH_WATER) {
			f->waiting_drain = true;
			return;
		}
		struct fetch_seg *g = &f->segs[f->seg_pos];
		if (g->kind == FETCH_SEG_TEXT) {
			imap_write(s, g->text, g->text_len);
			f->seg_pos++;
			continue;
		}
		f->job_running = true;
		if (ts_work_submit(s->ctx, fetch_chunk_work, fetch_chunk_done,
				   f) != 0) {
			f->job_running = false;
			f->aborted = true;
			fetch_chunk_done(f, TS_E_STATE);
		}
		return;
	}
	fetch_msg_reset(f);
	f->pos++;
	fetch_next(f);
}

void
imap_fetch_drained(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	if (f == NULL || !f->waiting_drain || f->job_running)
		return;
	f->waiting_drain = false;
	fetch_pump(f);
}

static void
fetch_open_done(void *arg, int status)
{
	struct imap_fetch *f = arg;
	f->job_running = false;
	if (f->aborted || status != 0) {
		struct imap_session *s = f->s;
		s->fetch = NULL;
		fetch_free(f);
		imap_store_unref(s);
		return;
	}
	if (f->read_error != 0) {
		/* Expunged meanwhile: skip it (RFC 3501 allows either). */
		f->missing++;
		fetch_msg_reset(f);
		f->pos++;
		fetch_next(f);
		return;
	}
	for (size_t a = 0; a < f->s->cmd.att_count; a++) {
		if (f->res[a].kind == FETCH_RES_UNKNOWN_CTE) {
			/* RFC 3516 section 4.3: the command fails. */
			f->unknown_cte = true;
			fetch_msg_reset(f);
			fetch_finish(f);
			return;
		}
	}
	fetch_build(f);
	fetch_pump(f);
}

static void
fetch_next(struct imap_fetch *f)
{
	struct imap_session *s = f->s;
	for (;;) {
		if (f->pos >= f->count || s->closed) {
			fetch_finish(f);
			return;
		}
		struct imap_msg *m = &s->msgs[f->idx[f->pos]];
		if (m->expunged && f->need_content) {
			f->missing++;
			f->pos++;
			continue;
		}
		if (!f->need_content) {
			fetch_build(f);
			fetch_pump(f);
			return;
		}
		f->msg_id = m->id;
		f->msg_size = m->size;
		f->job_running = true;
		if (ts_work_submit(s->ctx, fetch_open_work, fetch_open_done,
				   f) != 0) {
			f->job_running = false;
			f->aborted = true;
			fetch_open_done(f, TS_E_STATE);
		}
		return;
	}
}

void
imap_fetch_abort(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	if (f == NULL)
		return;
	f->aborted = true;
	if (f->job_running)
		return; /* its done callback frees it */
	s->fetch = NULL;
	fetch_free(f);
	imap_store_unref(s);
}

/* --- the command -----------------------------------------------------------
 */

static void
fetch_seen_done(int status, const char *error, void *arg)
{
	(void)error;
	(void)status;
	struct imap_fetch *f = arg;
	if (f->s->closed) {
		struct imap_session *s = f->s;
		fetch_free(f);
		imap_store_unref(s);
		return;
	}
	f->s->fetch = f;
	fetch_next(f);
}

static void
fetch_start(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	if (s->closed) {
		s->fetch = NULL;
		fetch_free(f);
		imap_store_unref(s);
		return;
	}
	/* Non-PEEK body sections set \Seen first, so FLAGS can show it. */
	if (f->set_seen && !s->readonly) {
		uint32_t *uids = ts_xmalloc((f->count + 1) * sizeof(*uids));
		size_t n = 0;
		for (size_t i = 0; i < f->count; i++) {
			struct imap_msg *m = &s->msgs[f->idx[i]];
			if (!(m->flags & TS_FLAG_SEEN) && !m->expunged)
				uids[n++] = m->uid;
		}
		if (n > 0) {
			struct ts_flag_change ch = { .add = TS_FLAG_SEEN };
			s->fetch = NULL; /* held by the request meanwhile */
			int rc = ts_store_set_flags(s->store, s->mailbox, uids,
						    n, &ch, fetch_seen_done, f);
			free(uids);
			if (rc == 0)
				return;
			s->fetch = f;
		} else {
			free(uids);
		}
	}
	fetch_next(f);
}

static void
fetch_vanished(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s)) {
		return;
	}
	if (status == 0 && count > 0) {
		uint32_t *keep = ts_xmalloc(count * sizeof(*keep));
		size_t n = 0;
		for (size_t i = 0; i < count; i++)
			if (imap_seqset_contains(&s->cmd.set, uids[i],
						 UINT32_MAX))
				keep[n++] = uids[i];
		if (n > 0) {
			char *set = imap_uid_set(keep, n);
			imap_send(s, "* VANISHED (EARLIER) %s", set);
			free(set);
		}
		free(keep);
	}
	imap_msgs_fill(s, fetch_start);
}

void
imap_cmd_fetch(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	bool need_content = false, set_seen = false;
	bool need_tree = false, need_envelope = false;
	for (size_t a = 0; a < c->att_count; a++) {
		struct imap_fetch_att *att = &c->atts[a];
		switch (att->kind) {
		case IMAP_FETCH_ENVELOPE:
			need_content = need_envelope = true;
			break;
		case IMAP_FETCH_BODYSTRUCTURE:
		case IMAP_FETCH_BODY_STRUCTURE:
			need_content = need_tree = true;
			break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			need_content = true;
			if (att->section.part_count > 0)
				need_tree = true;
			if (att->kind == IMAP_FETCH_BINARY && !att->peek)
				set_seen = true;
			break;
		case IMAP_FETCH_BODY_SECTION:
			if (att->section.part_count > 0)
				need_tree = true;
			need_content = true;
			if (!att->peek)
				set_seen = true;
			break;
		case IMAP_FETCH_RFC822:
		case IMAP_FETCH_RFC822_TEXT:
			set_seen = true;
			need_content = true;
			break;
		case IMAP_FETCH_RFC822_HEADER:
			need_content = true;
			break;
		case IMAP_FETCH_MODSEQ:
			s->condstore = true;
			break;
		default:
			break;
		}
	}
	size_t *idx, count;
	const char *error;
	if (imap_resolve_set(s, &c->set, c->uid, &idx, &count, &error) != 0) {
		imap_done(s, "BAD %s", error);
		return;
	}
	if (c->has_changedsince) {
		s->condstore = true;
		size_t n = 0;
		for (size_t i = 0; i < count; i++)
			if (s->msgs[idx[i]].modseq > c->changedsince)
				idx[n++] = idx[i];
		count = n;
		bool have = false;
		for (size_t a = 0; a < c->att_count; a++)
			have |= c->atts[a].kind == IMAP_FETCH_MODSEQ;
		if (!have) {
			c->atts = ts_xrealloc(
				c->atts, (c->att_count + 1) * sizeof(*c->atts));
			memset(&c->atts[c->att_count], 0, sizeof(*c->atts));
			c->atts[c->att_count++].kind = IMAP_FETCH_MODSEQ;
		}
	}
	struct imap_fetch *f = ts_xcalloc(1, sizeof(*f));
	f->s = s;
	f->idx = idx;
	f->count = count;
	f->fd = -1;
	f->need_content = need_content;
	f->need_tree = need_tree;
	f->need_envelope = need_envelope;
	f->set_seen = set_seen;
	s->fetch = f;
	imap_busy(s);
	imap_store_ref(s);
	if (c->vanished) {
		if (!s->qresync) {
			s->fetch = NULL;
			fetch_free(f);
			imap_store_unref(s);
			imap_done(s, "BAD QRESYNC is not enabled");
			return;
		}
		imap_store_ref(s);
		if (ts_store_vanished(s->store, s->mailbox, c->changedsince,
				      fetch_vanished, s) == 0)
			return;
		imap_store_unref(s);
	}
	imap_msgs_fill(s, fetch_start);
}
