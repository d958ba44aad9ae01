/*
 * modules/imap/spool.c — an APPEND's large message literal, written to a
 * spool file as it arrives instead of being held in memory.
 *
 * Pieces from the connection collect in a bounded buffer; when it is full
 * (or the literal is complete) input pauses while a work-pool job appends
 * the buffer to the file, and resumes when it is written.  So a client
 * sending a 50 MB APPEND costs the server one buffer, whatever the size.
 * The file then goes to ts_store_deliver (mailbox.c); an abandoned one is
 * removed on the pool.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap.h"

/* How much of a literal is collected before it is written out. */
#define SPOOL_BUFFER (256 * 1024)

struct imap_spool {
	struct imap_session *s;
	struct ts_ctx *ctx;
	char *path, *dir;
	int fd;
	char *buf;
	size_t len, cap;
	uint64_t size;
	bool last; /* the final piece is in buf */
	bool writing; /* a write job is running */
	bool complete; /* every byte is in the file */
	bool discard; /* abandoned: remove once the job is back */
	int error; /* errno of a failed write */
};

static void
spool_free(struct imap_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->path);
	free(sp->dir);
	free(sp->buf);
	free(sp);
}

static void
spool_unlink_work(void *arg)
{
	struct imap_spool *sp = arg;
	if (sp->fd >= 0) {
		close(sp->fd);
		sp->fd = -1;
	}
	(void)unlink(sp->path);
}

static void
spool_unlink_done(void *arg, int status)
{
	(void)status;
	spool_free(arg);
}

/* Remove the file on the pool, then free. */
static void
spool_remove(struct imap_spool *sp)
{
	if (ts_work_submit(sp->ctx, spool_unlink_work, spool_unlink_done, sp) !=
	    0)
		spool_free(sp); /* shutting down: a stray file is harmless */
}

/* Pool thread: append the buffer to the file. */
static void
spool_write_work(void *arg)
{
	struct imap_spool *sp = arg;
	if (sp->error != 0)
		return;
	if (sp->fd < 0) {
		for (char *p = sp->dir + 1; *p != '\0'; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			(void)mkdir(sp->dir, 0700);
			*p = '/';
		}
		(void)mkdir(sp->dir, 0700);
		sp->fd = open(sp->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			      0600);
		if (sp->fd < 0) {
			sp->error = errno;
			return;
		}
	}
	const char *p = sp->buf;
	size_t left = sp->len;
	while (left > 0) {
		ssize_t n = write(sp->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sp->error = errno;
			return;
		}
		p += n;
		left -= (size_t)n;
	}
	if (sp->last) {
		if (close(sp->fd) != 0 && sp->error == 0)
			sp->error = errno;
		sp->fd = -1;
	}
}

static void
spool_write_done(void *arg, int status)
{
	struct imap_spool *sp = arg;
	struct imap_session *s = sp->s;
	sp->writing = false;
	sp->len = 0;
	if (status != 0 && sp->error == 0)
		sp->error = EIO;
	if (sp->discard) {
		spool_remove(sp);
		imap_store_unref(s);
		return;
	}
	if (sp->last) {
		sp->complete = true;
		s->input = IMAP_IN_COMMAND;
	}
	if (!imap_store_unref(s))
		ts_conn_resume(s->conn);
}

static void
spool_flush(struct imap_spool *sp)
{
	struct imap_session *s = sp->s;
	sp->writing = true;
	imap_store_ref(s);
	ts_conn_pause(s->conn);
	if (ts_work_submit(sp->ctx, spool_write_work, spool_write_done, sp) !=
	    0) {
		sp->error = ECANCELED;
		spool_write_done(sp, TS_E_STATE);
	}
}

void
imap_spool_begin(struct imap_session *s, uint64_t size)
{
	static uint64_t serial;
	struct imap_settings *set = imap_settings(s->ctx);
	struct imap_spool *sp = ts_xcalloc(1, sizeof(*sp));
	sp->s = s;
	sp->ctx = s->ctx;
	sp->fd = -1;
	sp->size = size;
	sp->dir = ts_xstrdup(set->spool_dir);
	sp->path = ts_xasprintf("%s/literal-%ld-%" PRIu64 "-%" PRIu64,
				set->spool_dir, (long)getpid(),
				ts_conn_id(s->conn), ++serial);
	sp->cap = SPOOL_BUFFER;
	sp->buf = ts_xmalloc(sp->cap);
	imap_spool_discard(s);
	s->spool = sp;
	s->input = IMAP_IN_SPOOL;
	(void)ts_conn_read_bytes(s->conn, size);
}

void
imap_spool_data(struct imap_session *s, const char *data, size_t len, bool last)
{
	struct imap_spool *sp = s->spool;
	/* Pieces are at most one socket read: the buffer overshoots
	 * SPOOL_BUFFER by less than that before it is written. */
	if (sp->len + len > sp->cap) {
		sp->cap = sp->len + len;
		sp->buf = ts_xrealloc(sp->buf, sp->cap);
	}
	memcpy(sp->buf + sp->len, data, len);
	sp->len += len;
	sp->last = last;
	if (last || sp->len >= SPOOL_BUFFER)
		spool_flush(sp);
}

bool
imap_spool_ready(const struct imap_session *s, uint64_t *size_r)
{
	if (s->spool == NULL || !s->spool->complete)
		return false;
	*size_r = s->spool->size;
	return true;
}

char *
imap_spool_take(struct imap_session *s, int *error_r)
{
	struct imap_spool *sp = s->spool;
	s->spool = NULL;
	*error_r = sp->error;
	char *path = sp->path;
	sp->path = NULL;
	spool_free(sp);
	return path;
}

void
imap_spool_discard(struct imap_session *s)
{
	struct imap_spool *sp = s->spool;
	if (sp == NULL)
		return;
	s->spool = NULL;
	if (sp->writing) {
		sp->discard = true; /* the job's done callback removes it */
		return;
	}
	spool_remove(sp);
}
