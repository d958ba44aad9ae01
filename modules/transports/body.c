/*
 * modules/transports/body.c — the message to the server: read from the
 * queue file on the work pool in TR_CHUNK pieces, the prefix first, fed to
 * the client (DATA dot-stuffing or BDAT chunks) with back-pressure: no more
 * is read while TR_LOW_WATER bytes wait to be sent.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "direct.h"

/* --- streaming the message ---------------------------------------------- */

struct tr_read_job {
	struct tr_attempt *a;
	struct tr_message *msg;
	uint64_t offset;
	char buf[TR_CHUNK];
	ssize_t got;
	int err;
};

static void
tr_read_work(void *arg)
{
	struct tr_read_job *job = arg;
	do {
		job->got = pread(job->msg->fd, job->buf, sizeof(job->buf),
				 (off_t)job->offset);
	} while (job->got < 0 && errno == EINTR);
	job->err = job->got < 0 ? errno : 0;
}

static void
tr_read_done(void *arg, int status)
{
	struct tr_read_job *job = arg;
	struct tr_attempt *a = job->a;
	a->reading = false;
	bool live = a->s != NULL && a->conn != NULL && !a->ended &&
		    tr_client_wants_body(a->client);
	if (live) {
		enum tr_want w;
		if (status != 0 || job->got < 0) {
			char *t =
				ts_xasprintf("cannot read the queued "
					     "message: %s",
					     status != 0 ? ts_strerror(status)
							 : strerror(job->err));
			tr_client_fail(a->client, 451, "4.3.0", t, false);
			free(t);
			w = TR_WANT_CLOSE;
		} else if (job->got == 0) {
			w = tr_client_body_end(a->client);
		} else {
			a->offset += (uint64_t)job->got;
			w = tr_client_body(a->client, job->buf,
					   (size_t)job->got);
		}
		tr_attempt_pump(a, w);
	}
	tr_message_unref(&job->msg);
	free(job);
	tr_attempt_unref(a);
}

/*
 * Feed the client more of the message if it wants some, the message is
 * open, nothing is being read and the connection's output is low.
 */
void
tr_attempt_read(struct tr_attempt *a)
{
	struct tr_session *s = a->s;
	if (s == NULL || a->reading || a->conn == NULL || a->ended ||
	    !tr_client_wants_body(a->client))
		return;
	if (s->open_failed) {
		tr_client_fail(a->client, 451, "4.3.0",
			       "cannot open the queued message", false);
		tr_attempt_pump(a, TR_WANT_CLOSE);
		return;
	}
	if (s->msg == NULL)
		return; /* tr_open_done calls again */
	if (a->msg == NULL) {
		a->msg = s->msg;
		a->msg->refs++;
	}
	if (!a->prefix_sent) {
		a->prefix_sent = true;
		if (a->msg->prefix_len > 0) {
			enum tr_want w = tr_client_body(
				a->client, a->msg->prefix, a->msg->prefix_len);
			tr_attempt_pump(a, w);
			return; /* pump calls back here for the file */
		}
	}
	if (ts_conn_output_pending(a->conn) >= TR_LOW_WATER)
		return; /* drained calls again */
	struct tr_read_job *job = ts_xmalloc(sizeof(*job));
	job->a = a;
	job->msg = a->msg;
	job->msg->refs++;
	job->offset = a->offset;
	job->got = 0;
	job->err = 0;
	a->refs++;
	a->reading = true;
	if (ts_work_submit(a->ctx, tr_read_work, tr_read_done, job) != 0) {
		a->reading = false;
		tr_message_unref(&job->msg);
		free(job);
		a->refs--;
		tr_client_fail(a->client, 451, "4.3.0",
			       "tessera is shutting down", false);
		tr_attempt_pump(a, TR_WANT_CLOSE);
	}
}

