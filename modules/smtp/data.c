/*
 * modules/smtp/data.c — message content from DATA or BDAT into a spool
 * file.
 *
 * The message never sits wholly in memory: DATA lines (dot-unstuffed,
 * CRLF restored) and BDAT bytes collect in a buffer that goes to the
 * spool file in 64 KiB appends on the work pool, with input paused while
 * a write is pending.  The checks whose failure refuses the message at
 * its end are made while reading: SIZE (writing stops once it is
 * exceeded), NUL bytes, 8-bit data without BODY=8BITMIME or SMTPUTF8,
 * overlong lines, and bare LFs (in BDAT chunks here; for DATA lines the
 * session asks the kernel, ts_conn_line_bare_lf).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp.h"

#define SMTP_CHUNK (64 * 1024)

struct smtp_spool {
	struct ts_ctx *ctx;
	struct smtp_session *s; /* NULL once discarded */
	char *dir;
	char path[PATH_MAX];
	bool have_path;
	int fd;
	int err; /* errno of a failed create or write */
	char *buf; /* loop side: bytes not yet handed to a write */
	size_t len, cap;
	char *wbuf; /* worker side: bytes being written */
	size_t wlen;
	bool busy; /* a work item is queued or running */
	bool finish; /* close the file after this write */
	bool remove; /* close and unlink instead of writing */
	bool removed; /* the worker did so */
	void (*done)(struct smtp_session *s);
};

static struct smtp_spool *
smtp_spool_new(struct smtp_session *s)
{
	struct smtp_spool *sp = ts_xcalloc(1, sizeof(*sp));
	sp->ctx = s->ctx;
	sp->s = s;
	sp->dir = ts_xstrdup(smtp_settings(s->ctx)->spool_dir);
	sp->fd = -1;
	return sp;
}

const char *
smtp_spool_path(const struct smtp_spool *sp)
{
	return sp->path;
}

/* mkdir -p; on a pool thread. */
static void
smtp_mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return;
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(tmp, 0700);
		*p = '/';
	}
	(void)mkdir(tmp, 0700);
}

/* Close and unlink; on a pool thread, or on the loop at shutdown. */
static void
smtp_spool_remove_now(struct smtp_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (sp->have_path)
		unlink(sp->path);
	sp->have_path = false;
	sp->removed = true;
}

/* The work item: create the file if needed, append, maybe close. */
static void
smtp_spool_work(void *arg)
{
	struct smtp_spool *sp = arg;
	if (sp->remove) {
		smtp_spool_remove_now(sp);
		return;
	}
	if (sp->fd < 0 && sp->err == 0 && !sp->have_path) {
		if (snprintf(sp->path, sizeof(sp->path), "%s/msg-XXXXXX",
			     sp->dir) >= (int)sizeof(sp->path)) {
			sp->err = ENAMETOOLONG;
			return;
		}
		sp->fd = mkstemp(sp->path);
		if (sp->fd < 0 && errno == ENOENT) {
			/* First message (or the directory was removed). */
			smtp_mkdirs(sp->dir);
			snprintf(sp->path, sizeof(sp->path), "%s/msg-XXXXXX",
				 sp->dir);
			sp->fd = mkstemp(sp->path);
		}
		if (sp->fd < 0) {
			sp->err = errno;
			return;
		}
		sp->have_path = true;
	}
	size_t off = 0;
	while (sp->err == 0 && sp->fd >= 0 && off < sp->wlen) {
		ssize_t n = write(sp->fd, sp->wbuf + off, sp->wlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sp->err = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	if (sp->finish && sp->fd >= 0) {
		if (close(sp->fd) != 0 && sp->err == 0)
			sp->err = errno;
		sp->fd = -1;
	}
}

static void
smtp_spool_free(struct smtp_spool *sp)
{
	free(sp->buf);
	free(sp->wbuf);
	free(sp->dir);
	free(sp);
}

/* Remove the file of a discarded spool, then free it. */
static void smtp_spool_work_done(void *arg, int status);

static void
smtp_spool_dispose(struct smtp_spool *sp)
{
	if (sp->fd < 0 && !sp->have_path) {
		smtp_spool_free(sp);
		return;
	}
	sp->remove = true;
	sp->busy = true;
	if (ts_work_submit(sp->ctx, smtp_spool_work, smtp_spool_work_done,
			   sp) != 0) {
		/* Shutting down: no pool left, do it here. */
		smtp_spool_remove_now(sp);
		smtp_spool_free(sp);
	}
}

static void
smtp_spool_work_done(void *arg, int status)
{
	struct smtp_spool *sp = arg;
	sp->busy = false;
	free(sp->wbuf);
	sp->wbuf = NULL;
	sp->wlen = 0;
	if (status != 0 && !sp->remove && sp->err == 0)
		sp->err = ECANCELED;
	if (sp->s == NULL) {
		if (sp->removed || status != 0) {
			smtp_spool_remove_now(sp);
			smtp_spool_free(sp);
		} else {
			smtp_spool_dispose(sp);
		}
		return;
	}
	sp->done(sp->s);
}

/* Hand the buffered bytes to the pool; done runs when they are written. */
static void
smtp_spool_flush(struct smtp_spool *sp, bool finish,
		 void (*done)(struct smtp_session *s))
{
	sp->wbuf = sp->buf;
	sp->wlen = sp->len;
	sp->buf = NULL;
	sp->len = sp->cap = 0;
	sp->finish = finish;
	sp->done = done;
	sp->busy = true;
	if (ts_work_submit(sp->ctx, smtp_spool_work, smtp_spool_work_done,
			   sp) != 0)
		smtp_spool_work_done(sp, TS_E_STATE);
}

static void
smtp_spool_append(struct smtp_spool *sp, const char *data, size_t len)
{
	if (sp->len + len > sp->cap) {
		sp->cap = sp->len + len > SMTP_CHUNK + 4096 ? sp->len + len
							    : SMTP_CHUNK + 4096;
		sp->buf = ts_xrealloc(sp->buf, sp->cap);
	}
	memcpy(sp->buf + sp->len, data, len);
	sp->len += len;
}

void
smtp_spool_discard(struct smtp_spool **spp)
{
	struct smtp_spool *sp = *spp;
	*spp = NULL;
	if (sp == NULL)
		return;
	sp->s = NULL;
	if (!sp->busy)
		smtp_spool_dispose(sp);
}

/* --- checks and the end of a message ------------------------------------ */

/* Note what is wrong with these bytes of the message. */
static void
smtp_data_check(struct smtp_session *s, const char *data, size_t len)
{
	struct smtp_settings *set = smtp_settings(s->ctx);
	s->data_bytes += len;
	if (set->max_size > 0 && s->data_bytes > set->max_size)
		s->data_flags |= SMTP_DATA_OVERSIZE;
	/* RFC 3030 3: BINARYMIME content is any octets, NULs included. */
	if (s->body == SMTP_BODY_BINARYMIME)
		return;
	if (memchr(data, '\0', len) != NULL)
		s->data_flags |= SMTP_DATA_NUL;
	if (!set->accept_8bit && s->body != SMTP_BODY_8BITMIME &&
	    !s->smtputf8) {
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)data[i] >= 0x80) {
				s->data_flags |= SMTP_DATA_8BIT;
				break;
			}
	}
}

/* The reply refusing a message because of data_flags. */
static char *
smtp_data_refusal(unsigned flags, uint64_t max_size)
{
	if (flags & SMTP_DATA_OVERSIZE)
		return ts_xasprintf("552 5.3.4 message size exceeds the limit "
				    "of %" PRIu64 " bytes",
				    max_size);
	if (flags & SMTP_DATA_IO)
		return ts_xstrdup("451 4.3.0 cannot spool the message, try "
				  "again later");
	if (flags & SMTP_DATA_NUL)
		return ts_xstrdup("554 5.6.0 message contains NUL bytes");
	if (flags & SMTP_DATA_BARE_LF)
		return ts_xstrdup("554 5.6.0 message contains a bare LF; "
				  "lines must end with CRLF");
	if (flags & SMTP_DATA_8BIT)
		return ts_xstrdup("554 5.6.0 8-bit data needs BODY=8BITMIME");
	return ts_xstrdup("554 5.6.0 message contains an overlong line");
}

/* Refuse the message for data_flags and drop the transaction. */
static void
smtp_data_refuse(struct smtp_session *s)
{
	char *r = smtp_data_refusal(s->data_flags,
				    smtp_settings(s->ctx)->max_size);
	ts_conn_log(s->conn, s->ctx, TS_LOG_INFO, "message refused: %s", r);
	smtp_transaction_reset(s);
	smtp_finish(s, 0, r, false);
}

/* The spool file is complete and closed: hand the message on. */
static void
smtp_data_written(struct smtp_session *s)
{
	if (s->spool->err != 0) {
		ts_conn_log(s->conn, s->ctx, TS_LOG_ERROR,
			    "cannot write spool file dir=%s error=\"%s\"",
			    smtp_settings(s->ctx)->spool_dir,
			    strerror(s->spool->err));
		s->data_flags |= SMTP_DATA_IO;
		smtp_data_refuse(s);
		return;
	}
	smtp_deliver_start(s);
}

/* The message ended (final "." or BDAT LAST). */
static void
smtp_data_end(struct smtp_session *s)
{
	s->state = SMTP_S_BUSY;
	ts_conn_pause(s->conn);
	if (s->data_flags != 0 || s->spool == NULL) {
		smtp_data_refuse(s);
		return;
	}
	smtp_spool_flush(s->spool, true, smtp_data_written);
}

/* A 64 KiB piece went to disk: read on. */
static void
smtp_data_chunk_written(struct smtp_session *s)
{
	if (s->spool->err != 0)
		s->data_flags |= SMTP_DATA_IO;
	ts_conn_resume(s->conn);
}

static void
smtp_data_maybe_flush(struct smtp_session *s)
{
	if (s->spool->len < SMTP_CHUNK)
		return;
	ts_conn_pause(s->conn);
	smtp_spool_flush(s->spool, false, smtp_data_chunk_written);
}

/* --- the header block of a submitted message ---------------------------- */

/*
 * A BDAT line is kept up to this many bytes: enough for a field name and
 * a From: value of SMTP_FROM_MAX, so a cut line always marks the value
 * as too long.
 */
#define SMTP_HDR_LINE_MAX (SMTP_FROM_MAX + 64)

/*
 * Forget what was noted about a message's header block and decide
 * whether to note anything: only an authenticated submission needs it.
 */
void
smtp_header_reset(struct smtp_session *s)
{
	s->hdr_track = s->account != NULL && s->mode != SMTP_MODE_SMTP;
	s->hdr_done = false;
	s->hdr_date = false;
	s->hdr_msgid = false;
	s->hdr_in_from = false;
	s->hdr_from_count = 0;
	s->hdr_from_long = false;
	free(s->hdr_from);
	s->hdr_from = NULL;
	s->hdr_from_len = 0;
	free(s->hdr_line);
	s->hdr_line = NULL;
	s->hdr_line_len = 0;
}

/*
 * The value of header line `line` when its field name is `name` (any
 * case; RFC 5322 4.5 allows blanks before the colon), else NULL.
 */
static const char *
smtp_header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len < n + 1 || strncasecmp(line, name, n) != 0)
		return NULL;
	while (n < len && (line[n] == ' ' || line[n] == '\t'))
		n++;
	return n < len && line[n] == ':' ? line + n + 1 : NULL;
}

/* Add to the unfolded From: value, up to SMTP_FROM_MAX bytes. */
static void
smtp_header_from_append(struct smtp_session *s, const char *v, size_t len)
{
	if (s->hdr_from_long || s->hdr_from_len + len > SMTP_FROM_MAX) {
		s->hdr_from_long = true;
		return;
	}
	s->hdr_from = ts_xrealloc(s->hdr_from, s->hdr_from_len + len + 1);
	memcpy(s->hdr_from + s->hdr_from_len, v, len);
	s->hdr_from_len += len;
	s->hdr_from[s->hdr_from_len] = '\0';
}

/* One line of the message (no line ending) while in its header block. */
static void
smtp_header_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 0) {
		s->hdr_done = true;
		return;
	}
	if (line[0] == ' ' || line[0] == '\t') {
		/* Unfolding drops only the CRLF (RFC 5322 2.2.3). */
		if (s->hdr_in_from)
			smtp_header_from_append(s, line, len);
		return;
	}
	s->hdr_in_from = false;
	const char *v;
	if (smtp_header_value(line, len, "Date") != NULL) {
		s->hdr_date = true;
	} else if (smtp_header_value(line, len, "Message-ID") != NULL) {
		s->hdr_msgid = true;
	} else if ((v = smtp_header_value(line, len, "From")) != NULL) {
		/* A second From: field is checked too, as if one list. */
		if (s->hdr_from_count++ > 0)
			smtp_header_from_append(s, ",", 1);
		smtp_header_from_append(s, v, len - (size_t)(v - line));
		s->hdr_in_from = true;
	}
}

/* BDAT bytes while in the header block: cut them into lines. */
static void
smtp_header_bytes(struct smtp_session *s, const char *data, size_t len)
{
	while (len > 0 && !s->hdr_done) {
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) : len;
		size_t keep = n;
		if (s->hdr_line_len + keep > SMTP_HDR_LINE_MAX)
			keep = SMTP_HDR_LINE_MAX - s->hdr_line_len;
		if (keep > 0) {
			if (s->hdr_line == NULL)
				s->hdr_line = ts_xmalloc(SMTP_HDR_LINE_MAX);
			memcpy(s->hdr_line + s->hdr_line_len, data, keep);
			s->hdr_line_len += keep;
		}
		if (lf == NULL)
			return;
		size_t l = s->hdr_line_len;
		if (l > 0 && s->hdr_line[l - 1] == '\r')
			l--;
		smtp_header_line(s, s->hdr_line != NULL ? s->hdr_line : "", l);
		s->hdr_line_len = 0;
		data += n + 1;
		len -= n + 1;
	}
}

/* --- DATA ---------------------------------------------------------------- */

void
smtp_data_begin(struct smtp_session *s)
{
	s->state = SMTP_S_DATA;
	s->spool = smtp_spool_new(s);
	s->data_bytes = 0;
	s->data_flags = 0;
	s->data_prev_bare_lf = false;
	smtp_header_reset(s);
}

void
smtp_data_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '.') {
		smtp_data_end(s);
		return;
	}
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	smtp_data_check(s, line, len);
	s->data_bytes += 2;
	if (s->data_flags != 0)
		return; /* refused at the end; stop writing now */
	if (s->hdr_track && !s->hdr_done)
		smtp_header_line(s, line, len);
	smtp_spool_append(s->spool, line, len);
	smtp_spool_append(s->spool, "\r\n", 2);
	smtp_data_maybe_flush(s);
}

void
smtp_data_line_too_long(struct smtp_session *s)
{
	s->data_flags |= SMTP_DATA_LONG;
}

/* --- BDAT ---------------------------------------------------------------- */

static void
smtp_bdat_chunk_end(struct smtp_session *s)
{
	if (s->bdat_discard) {
		s->bdat_discard = false;
		s->state = SMTP_S_CMD;
		smtp_reply(s, "503 5.5.1 need MAIL and RCPT before BDAT");
		return;
	}
	if (s->bdat_last) {
		smtp_data_end(s);
		return;
	}
	s->state = SMTP_S_CMD;
	if (s->data_flags != 0) {
		/* Refuse now; later chunks of it find no transaction. */
		smtp_data_refuse(s);
		return;
	}
	smtp_reply(s, "250 2.0.0 %" PRIu64 " octets received", s->bdat_chunk);
}

void
smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last)
{
	s->bdat_discard = s->txn == NULL || smtp_rcpt_count(s) == 0;
	s->bdat_last = last;
	s->bdat_chunk = size;
	if (!s->bdat_discard && s->spool == NULL) {
		s->spool = smtp_spool_new(s);
		s->data_bytes = 0;
		s->data_flags = 0;
		s->bdat_prev_cr = false;
		smtp_header_reset(s);
	}
	s->state = SMTP_S_BDAT;
	if (size == 0 || ts_conn_read_bytes(s->conn, size) != 0)
		smtp_bdat_chunk_end(s);
}

void
smtp_bdat_bytes(struct smtp_session *s, const char *data, size_t len, bool last)
{
	if (!s->bdat_discard && len > 0) {
		smtp_data_check(s, data, len);
		bool binary = s->body == SMTP_BODY_BINARYMIME;
		for (size_t i = 0; i < len && !binary; i++) {
			if (data[i] != '\n')
				continue;
			char prev = i > 0 ? data[i - 1]
					  : (s->bdat_prev_cr ? '\r' : 0);
			if (prev != '\r') {
				s->data_flags |= SMTP_DATA_BARE_LF;
				break;
			}
		}
		s->bdat_prev_cr = data[len - 1] == '\r';
		if (s->data_flags == 0) {
			if (s->hdr_track && !s->hdr_done)
				smtp_header_bytes(s, data, len);
			smtp_spool_append(s->spool, data, len);
			if (!last)
				smtp_data_maybe_flush(s);
		}
	}
	if (last)
		smtp_bdat_chunk_end(s);
}
