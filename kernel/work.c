/*
 * kernel/work.c — the work pool over libuv's threadpool.
 *
 * Blocking work (SQLite, fsync, heavy crypto) runs on pool threads; its
 * completion runs back on the loop.  The kernel counts outstanding work so
 * shutdown can wait for it: a job that started always reports, one that
 * had not started when we stopped reports TS_E_STATE.
 */
#include "config.h"

#include <stdlib.h>

#include "kernel/kernel.h"

struct ts_work {
	uv_work_t req;
	struct ts_kernel *kernel;
	ts_work_fn work;
	ts_work_done_fn done;
	void *arg;
};

static void
ts_work_run(uv_work_t *req)
{
	struct ts_work *w = req->data;
	w->work(w->arg);
}

static void
ts_work_after(uv_work_t *req, int status)
{
	struct ts_work *w = req->data;
	w->kernel->pending_work--;
	if (w->done != NULL)
		w->done(w->arg, status == UV_ECANCELED ? TS_E_STATE : 0);
	free(w);
}

int
ts_work_submit(struct ts_ctx *ctx, ts_work_fn work, ts_work_done_fn done,
	       void *arg)
{
	struct ts_kernel *k = ctx->kernel;

	if (work == NULL)
		return TS_E_INVAL;
	if (k->loop == NULL)
		return TS_E_STATE;
	struct ts_work *w = ts_xcalloc(1, sizeof(*w));
	*w = (struct ts_work){
		.kernel = k,
		.work = work,
		.done = done,
		.arg = arg,
	};
	w->req.data = w;
	int rc = uv_queue_work(k->loop, &w->req, ts_work_run, ts_work_after);
	if (rc != 0) {
		ts_log(ctx, TS_LOG_ERROR, "cannot queue work error=%s",
		       uv_strerror(rc));
		free(w);
		return TS_E_IO;
	}
	k->pending_work++;
	return 0;
}
