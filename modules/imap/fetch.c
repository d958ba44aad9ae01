/*
 * modules/imap/fetch.c — FETCH and UID FETCH (RFC 3501 6.4.5, RFC 7162
 * CHANGEDSINCE/VANISHED).
 *
 * Messages are answered one at a time.  Items that need no content
 * (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) come from the session's
 * view; content items open the message on the work pool
 * (ts_store_message_read: prefix + file), read its head to find where the
 * header ends, and resolve each section to either a byte range of the
 * message or a generated text (HEADER.FIELDS).  Ranges are streamed in
 * 64 KiB chunks read on the pool, and whenever queued output passes the
 * connection's low-water mark the next chunk waits for `drained`: a client
 * that stops reading holds at most a chunk or two in server memory.
 *
 * imap_section_locate is the one place that maps a section to bytes; MIME
 * part sections (BODY[1.2]), ENVELOPE, BODYSTRUCTURE and BINARY are not
 * available yet and are refused with BAD [CANNOT] before anything is sent.
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

/* How much of a message's start is read to find the end of its header. */
#define FETCH_HEAD_MAX (256 * 1024)
#define FETCH_CHUNK (64 * 1024)
/* Queued output above this waits for `drained` (the kernel's mark). */
#define FETCH_HIGH_WATER (64 * 1024)

/* One piece of a message's response: text, or a range of its bytes. */
struct fetch_seg {
	char *text;
	size_t text_len;
	bool is_range;
	uint64_t start, len;
};

struct imap_fetch {
	struct imap_session *s;
	size_t *idx;
	size_t count, pos;
	bool need_content;
	bool aborted;
	bool job_running;
	bool waiting_drain;
	bool set_seen;
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
	struct fetch_seg *segs;
	size_t nseg, seg_pos;
	uint64_t seg_off;
	char *chunk;
	size_t chunk_len;
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
}

static void
fetch_chunk_work(void *arg)
{
	struct imap_fetch *f = arg;
	struct fetch_seg *g = &f->segs[f->seg_pos];
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

/*
 * Map a section of the current message to bytes: a range of the message
 * (*text_r NULL) or a generated text (*text_r, caller frees).  Returns 0
 * or -1 with *error_r.  The MIME library will plug part numbers in here.
 */
static int
imap_section_locate(const struct imap_fetch *f, const struct imap_section *sec,
		    uint64_t *start_r, uint64_t *len_r, char **text_r,
		    const char **error_r)
{
	*text_r = NULL;
	if (sec->part_count > 0) {
		*error_r = "MIME part sections are not available yet";
		return -1;
	}
	switch (sec->text) {
	case IMAP_SECTION_ALL:
		*start_r = 0;
		*len_r = f->msg_size;
		return 0;
	case IMAP_SECTION_HEADER:
		*start_r = 0;
		*len_r = f->header_len;
		return 0;
	case IMAP_SECTION_TEXT:
		*start_r = f->header_len;
		*len_r = f->msg_size > f->header_len
				 ? f->msg_size - f->header_len
				 : 0;
		return 0;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT: {
		size_t len;
		*text_r = fetch_header_fields(f, sec, &len);
		*start_r = 0;
		*len_r = len;
		return 0;
	}
	case IMAP_SECTION_MIME:
		break;
	}
	*error_r = "MIME part sections are not available yet";
	return -1;
}

/* The section as echoed in the response: "HEADER.FIELDS (From To)". */
static char *
fetch_section_name(const struct imap_section *sec)
{
	char *out = ts_xstrdup("");
	char *t;
	for (size_t i = 0; i < sec->part_count; i++) {
		t = ts_xasprintf("%s%s%" PRIu32, out, i ? "." : "",
				 sec->part[i]);
		free(out);
		out = t;
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
		t = ts_xasprintf("%s%s%s", out, sec->part_count ? "." : "",
				 names[sec->text]);
		free(out);
		out = t;
	}
	if (sec->field_count > 0) {
		t = ts_xasprintf("%s (", out);
		free(out);
		out = t;
		for (size_t i = 0; i < sec->field_count; i++) {
			t = ts_xasprintf("%s%s%s", out, i ? " " : "",
					 sec->fields[i]);
			free(out);
			out = t;
		}
		t = ts_xasprintf("%s)", out);
		free(out);
		out = t;
	}
	return out;
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
	f->segs[f->nseg++] = (struct fetch_seg){ .is_range = true,
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
				char *fl =
					imap_flags_str(m->flags, m->keywords);
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
		char *fl = imap_flags_str(m->flags, m->keywords);
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
	for (size_t a = 0; a < c->att_count; a++) {
		struct imap_fetch_att *att = &c->atts[a];
		const char *name;
		struct imap_section whole = { 0 };
		struct imap_section *sec = &att->section;
		switch (att->kind) {
		case IMAP_FETCH_RFC822:
			name = "RFC822";
			sec = &whole;
			break;
		case IMAP_FETCH_RFC822_HEADER:
			name = "RFC822.HEADER";
			whole.text = IMAP_SECTION_HEADER;
			sec = &whole;
			break;
		case IMAP_FETCH_RFC822_TEXT:
			name = "RFC822.TEXT";
			whole.text = IMAP_SECTION_TEXT;
			sec = &whole;
			break;
		case IMAP_FETCH_BODY_SECTION:
			name = NULL;
			break;
		default:
			continue;
		}
		uint64_t start = 0, len = 0;
		char *text = NULL;
		const char *error = NULL;
		if (imap_section_locate(f, sec, &start, &len, &text, &error) !=
		    0) {
			/* Refused up front; cannot happen here. */
			len = 0;
		}
		char *label;
		if (name != NULL) {
			label = ts_xstrdup(name);
		} else {
			char *sn = fetch_section_name(sec);
			if (att->partial)
				label = ts_xasprintf("BODY[%s]<%" PRIu32 ">",
						     sn, att->partial_offset);
			else
				label = ts_xasprintf("BODY[%s]", sn);
			free(sn);
		}
		if (att->partial) {
			uint64_t off = att->partial_offset;
			if (off > len)
				off = len;
			start += off;
			len -= off;
			if (len > att->partial_count)
				len = att->partial_count;
		}
		seg_str(f, ts_xasprintf("%s%s {%" PRIu64 "}\r\n",
					first ? "" : " ", label, len));
		first = false;
		free(label);
		if (text != NULL) {
			seg_text(f, ts_xstrndup(text + start, (size_t)len),
				 (size_t)len);
			free(text);
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
	s->fetch = NULL;
	fetch_free(f);
	if (imap_store_unref(s))
		return;
	if (missing > 0)
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
		if (!g->is_range) {
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
	for (size_t a = 0; a < c->att_count; a++) {
		struct imap_fetch_att *att = &c->atts[a];
		switch (att->kind) {
		case IMAP_FETCH_ENVELOPE:
		case IMAP_FETCH_BODYSTRUCTURE:
		case IMAP_FETCH_BODY_STRUCTURE:
			imap_done(s, "BAD [CANNOT] ENVELOPE and BODYSTRUCTURE "
				     "are not available yet");
			return;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			imap_done(s, "BAD [CANNOT] BINARY is not available "
				     "yet");
			return;
		case IMAP_FETCH_BODY_SECTION:
			if (att->section.part_count > 0 ||
			    att->section.text == IMAP_SECTION_MIME) {
				imap_done(s, "BAD [CANNOT] MIME part sections "
					     "are not available yet");
				return;
			}
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
