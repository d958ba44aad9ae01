/*
 * kernel/hook-run.c — running a hook point: runs and their batches,
 * asynchronous hooks with resume tokens, timeouts, cancellation and the
 * merge of the verdicts.
 *
 * A run walks the hooks of one point in effective order (priority, then
 * module load order, then registration order).  Consecutive hooks flagged
 * TS_HOOK_PARALLEL form one batch that is started together; any other hook
 * is a batch of its own.  When every call of a batch has finished, the
 * batch is merged: a reject beats a tempfail beats any other final verdict,
 * each time the first in priority order; headers and delays accumulate.
 * The first batch with a final verdict ends the run.
 *
 * Hooks and `done` callbacks may re-enter this file freely (resume their
 * own token before returning, cancel the run they belong to, start another
 * run).  Two devices keep that safe: a run is advanced by one iterative
 * driver (hook_drive) that never nests for the same run, and a run is only
 * freed when nobody up the stack holds it (the `busy` count).
 *
 * Registering hooks, the token table, the call accessors and the verdict
 * setters live in kernel/hook.c.  This file does not know about
 * connections beyond comparing pointers, and it does not decide what a
 * verdict means to a protocol.  Everything here runs on the event-loop
 * thread.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"
#include "kernel/hook-private.h"

/* Used when [core] hook_timeout is 0 (not set). */
#define HOOK_DEFAULT_TIMEOUT_MS 30000

/*
 * The timeout timer of a suspended call.  It is allocated apart from the
 * call because libuv owns the handle until its close callback: the call
 * (and its run) may be freed long before the loop gets around to that.
 */
struct hook_timer {
	uv_timer_t handle;
	struct ts_hook_call *call; /* NULL once the timer is being closed */
	uint64_t timeout_ms;
};

static void hook_drive(struct ts_hook_run *run);

/* --- run lifetime --------------------------------------------------------- */

static void
hook_call_clear(struct ts_hook_call *call)
{
	free(call->enhanced);
	free(call->text);
	free(call->mailbox);
	free(call->route_service);
	free(call->route_instance);
	free(call->reason);
	ts__strv_free(&call->headers);
}

static void
hook_batch_free(struct ts_hook_run *run)
{
	for (size_t i = 0; i < run->batch_count; i++)
		hook_call_clear(&run->batch[i]);
	free(run->batch);
	run->batch = NULL;
	run->batch_count = 0;
	run->batch_open = 0;
}

static void
hook_run_free(struct ts_hook_run *run)
{
	hook_batch_free(run);
	free(run->list);
	free(run->arg_copy);
	free(run->enhanced);
	free(run->text);
	free(run->mailbox);
	free(run->route_service);
	free(run->route_instance);
	free(run->reason);
	ts__strv_free(&run->headers);
	free(run);
}

/* Drop a hold on run; free it if it is dead and nobody else holds it. */
static void
hook_run_release(struct ts_hook_run *run)
{
	if (--run->busy == 0 && run->dead)
		hook_run_free(run);
}

/* Mark run dead and take it off the registry's list of pending runs. */
static void
hook_run_kill(struct ts_hook_run *run)
{
	run->dead = true;
	if (run->prev != NULL)
		run->prev->next = run->next;
	else
		run->hooks->runs = run->next;
	if (run->next != NULL)
		run->next->prev = run->prev;
	run->prev = run->next = NULL;
}

static void
hook_timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

/* Forget the call's token and stop its timer (memory goes on close). */
static void
hook_call_unsuspend(struct ts_hook_call *call)
{
	if (call->token != 0) {
		ts__hook_table_del(call->run->hooks, call->token);
		call->token = 0;
	}
	if (call->timer != NULL) {
		call->timer->call = NULL;
		uv_timer_stop(&call->timer->handle);
		uv_close((uv_handle_t *)&call->timer->handle,
			 hook_timer_closed);
		call->timer = NULL;
	}
}

/* The call has its outcome; the batch has one fewer open call. */
static void
hook_call_finish(struct ts_hook_call *call, int rc)
{
	call->state = HOOK_CALL_FINISHED;
	call->rc = rc;
	call->run->batch_open--;
}

/* Abandon one call of a run being cancelled. */
static void
hook_call_abort(struct ts_hook_call *call)
{
	if (call->state != HOOK_CALL_RUNNING)
		return;
	bool suspended = call->token != 0;
	hook_call_unsuspend(call);
	call->aborted = true;
	hook_call_finish(call, TS_HOOK_CONTINUE);
	if (!suspended)
		return;
	if (call->in_fn) /* tell it once its function has returned */
		call->cancel_due = true;
	else if (call->cancel != NULL)
		call->cancel(call->cancel_arg);
}

/*
 * Cancel a pending run: every suspended call gets its cancel callback
 * (which may re-enter), done is never called.  No-op on a dead run.
 */
void
ts__hook_run_abort(struct ts_hook_run *run)
{
	if (run->dead)
		return;
	hook_run_kill(run);
	run->busy++;
	for (size_t i = 0; i < run->batch_count; i++)
		hook_call_abort(&run->batch[i]);
	hook_run_release(run);
}

void
ts_hook_run_cancel(struct ts_hook_run **runp)
{
	struct ts_hook_run *run = *runp;
	*runp = NULL;
	if (run != NULL)
		ts__hook_run_abort(run);
}

void
ts__hooks_cancel_conn(struct ts__hooks *hooks, struct ts_conn *conn)
{
	/*
	 * Rescan from the head after each abort: cancel callbacks may end or
	 * start other runs, so no saved `next` pointer can be trusted.
	 */
	if (conn == NULL)
		return;
	for (;;) {
		struct ts_hook_run *run = hooks->runs;
		while (run != NULL && run->args.conn != conn)
			run = run->next;
		if (run == NULL)
			return;
		ts__hook_run_abort(run);
	}
}

/* --- suspending and resuming ---------------------------------------------- */

ts_hook_token
ts_hook_suspend(struct ts_hook_call *call, ts_hook_cancel_fn cancel, void *arg)
{
	struct ts__hooks *hooks = call->run->hooks;

	if (call->token != 0) {
		/* Suspended twice: keep the token, take the newer cancel. */
		call->cancel = cancel;
		call->cancel_arg = arg;
		return call->token;
	}
	call->cancel = cancel;
	call->cancel_arg = arg;
	ts_hook_token token = hooks->next_token++;
	if (call->state != HOOK_CALL_RUNNING || !call->in_fn) {
		/*
		 * The run was cancelled while the hook was still running (or
		 * the call is over): the token is stale from birth, and the
		 * hook's pending work is released once it returns.
		 */
		if (call->aborted && call->in_fn)
			call->cancel_due = true;
		return token;
	}
	call->token = token;
	ts__hook_table_put(hooks, token, call);
	return token;
}

struct ts_hook_call *
ts_hook_lookup(struct ts_ctx *ctx, ts_hook_token token)
{
	struct ts__hooks *hooks = ctx->kernel->hooks;
	size_t i = ts__hook_table_find(hooks, token);
	return i == SIZE_MAX ? NULL : hooks->slots[i].call;
}

int
ts_hook_resume(struct ts_ctx *ctx, ts_hook_token token, int rc)
{
	struct ts_hook_call *call = ts_hook_lookup(ctx, token);
	if (call == NULL) {
		ts_log(ctx, TS_LOG_DEBUG,
		       "hook resume ignored token=%" PRIu64 " (stale)", token);
		return TS_E_STALE;
	}
	struct ts_hook_run *run = call->run;
	hook_call_unsuspend(call);
	hook_call_finish(call, rc);
	/* If its function is still on the stack, the driver is too. */
	if (!call->in_fn)
		hook_drive(run);
	return 0;
}

/* A suspended call ran out of time: tempfail it and move on. */
static void
hook_timer_fired(uv_timer_t *handle)
{
	struct hook_timer *timer = handle->data;
	struct ts_hook_call *call = timer->call;
	struct ts_hook_run *run = call->run;
	struct ts_kernel *k = run->hooks->kernel;

	ts_log(&k->kctx, TS_LOG_ERROR,
	       "hook timed out module=%s hook=%s after=%" PRIu64 "ms",
	       call->hook->owner->name, ts_hook_point_name(run->point),
	       timer->timeout_ms);
	hook_call_unsuspend(call);
	run->busy++;
	ts_hook_tempfail(call, 451, "4.4.3",
			 "temporary failure, please try again later");
	ts_hook_reason(call, "hook-timeout");
	hook_call_finish(call, TS_HOOK_DONE);
	/* The token is already stale, as the cancel callback expects. */
	if (call->cancel != NULL)
		call->cancel(call->cancel_arg);
	hook_drive(run);
	hook_run_release(run);
}

/* Arm the timeout of a call that returned TS_HOOK_PENDING. */
static void
hook_call_arm(struct ts_hook_call *call)
{
	struct ts_kernel *k = call->run->hooks->kernel;
	uint64_t ms = k->hook_timeout_ms ? k->hook_timeout_ms
					 : HOOK_DEFAULT_TIMEOUT_MS;
	struct hook_timer *timer = ts_xcalloc(1, sizeof(*timer));
	uv_timer_init(k->loop, &timer->handle);
	timer->handle.data = timer;
	timer->call = call;
	timer->timeout_ms = ms;
	call->timer = timer;
	uv_timer_start(&timer->handle, hook_timer_fired, ms, 0);
}

/* --- driving a run -------------------------------------------------------- */

/* Work out what a hook function's return value means for its call. */
static void
hook_call_returned(struct ts_hook_call *call, int rc)
{
	struct ts_ctx *kctx = &call->run->hooks->kernel->kctx;
	const char *module = call->hook->owner->name;
	const char *point = ts_hook_point_name(call->run->point);

	if (call->state == HOOK_CALL_FINISHED) {
		/* Resumed before returning, or aborted meanwhile. */
		if (call->cancel_due) {
			call->cancel_due = false;
			if (rc == TS_HOOK_PENDING && call->cancel != NULL)
				call->cancel(call->cancel_arg);
		}
		return;
	}
	if (rc == TS_HOOK_PENDING) {
		if (call->token != 0) {
			hook_call_arm(call);
			return;
		}
		ts_log(kctx, TS_LOG_ERROR,
		       "hook returned pending without suspending module=%s "
		       "hook=%s",
		       module, point);
		rc = TS_HOOK_CONTINUE;
	} else if (call->token != 0) {
		ts_log(kctx, TS_LOG_ERROR,
		       "hook suspended but returned rc=%d module=%s hook=%s",
		       rc, module, point);
		hook_call_unsuspend(call);
	}
	hook_call_finish(call, rc);
}

/* Start the next batch: a maximal run of parallel hooks, or one hook. */
static void
hook_start_batch(struct ts_hook_run *run)
{
	size_t first = run->next_hook, end = first + 1;
	if (run->list[first].flags & TS_HOOK_PARALLEL)
		while (end < run->count &&
		       (run->list[end].flags & TS_HOOK_PARALLEL))
			end++;
	run->next_hook = end;
	run->batch_count = end - first;
	run->batch_open = run->batch_count;
	run->batch = ts_xcalloc(run->batch_count, sizeof(*run->batch));
	for (size_t i = 0; i < run->batch_count; i++) {
		run->batch[i].run = run;
		run->batch[i].hook = &run->list[first + i];
	}
	for (size_t i = 0; i < run->batch_count && !run->dead; i++) {
		struct ts_hook_call *call = &run->batch[i];
		call->state = HOOK_CALL_RUNNING;
		call->in_fn = true;
		int rc = call->hook->fn(call);
		call->in_fn = false;
		hook_call_returned(call, rc);
	}
}

/* Rank of a final verdict in a merge: lower wins. */
static int
hook_verdict_rank(enum ts_verdict verdict)
{
	switch (verdict) {
	case TS_VERDICT_REJECT:
		return 0;
	case TS_VERDICT_TEMPFAIL:
		return 1;
	default:
		return 2;
	}
}

/* Move a string from *from to *to, freeing what *to held. */
static void
hook_move_str(char **to, char **from)
{
	free(*to);
	*to = *from;
	*from = NULL;
}

/*
 * Merge the finished batch into the run's result and free it.  Returns
 * whether it produced a final verdict.
 */
static bool
hook_merge_batch(struct ts_hook_run *run)
{
	struct ts_ctx *kctx = &run->hooks->kernel->kctx;
	struct ts_hook_call *final = NULL;

	for (size_t i = 0; i < run->batch_count; i++) {
		struct ts_hook_call *call = &run->batch[i];
		if (call->state != HOOK_CALL_FINISHED)
			continue; /* not started */
		for (size_t h = 0; h < call->header_count; h++) {
			ts__strv_push(&run->headers, &run->header_count,
				      call->headers[h]);
			call->headers[h] = NULL;
		}
		run->result.delay_ms += call->delay_ms;
		if (call->reason != NULL && run->reason == NULL)
			run->reason = ts_xstrdup(call->reason);

		if (call->rc != TS_HOOK_DONE) {
			if (call->rc != TS_HOOK_CONTINUE)
				ts_log(kctx, TS_LOG_ERROR,
				       "hook returned rc=%d module=%s hook=%s",
				       call->rc, call->hook->owner->name,
				       ts_hook_point_name(run->point));
			continue;
		}
		if (call->verdict == TS_VERDICT_CONTINUE)
			continue; /* done without a verdict: no opinion */
		if (final == NULL || hook_verdict_rank(call->verdict) <
					     hook_verdict_rank(final->verdict))
			final = call;
	}
	if (final != NULL) {
		run->result.verdict = final->verdict;
		run->result.code = final->code;
		run->result.module = final->hook->owner->name;
		hook_move_str(&run->enhanced, &final->enhanced);
		hook_move_str(&run->text, &final->text);
		hook_move_str(&run->mailbox, &final->mailbox);
		hook_move_str(&run->route_service, &final->route_service);
		hook_move_str(&run->route_instance, &final->route_instance);
		/* The verdict's own reason explains the outcome best. */
		if (final->reason != NULL)
			hook_move_str(&run->reason, &final->reason);
	}
	hook_batch_free(run);
	return final != NULL;
}

/* The run is over: hand the result to done.  The caller holds the run. */
static void
hook_finish(struct ts_hook_run *run)
{
	hook_run_kill(run);
	struct ts_hook_result *res = &run->result;
	res->enhanced = run->enhanced;
	res->text = run->text;
	res->mailbox = run->mailbox;
	res->route_service = run->route_service;
	res->route_instance = run->route_instance;
	res->reason = run->reason;
	res->header_count = run->header_count;
	res->headers = (const char *const *)run->headers;
	if (run->done != NULL)
		run->done(res, run->done_arg);
}

/*
 * Advance a run as far as it goes without waiting: merge finished batches,
 * start new ones, finish the run.  Only one activation per run does the
 * work; a nested call (a resume from inside a hook of the same run) just
 * returns and the outer loop sees the change.
 */
static void
hook_drive(struct ts_hook_run *run)
{
	if (run->driving || run->dead)
		return;
	run->driving = true;
	run->busy++;
	while (!run->dead && run->batch_open == 0) {
		if (run->batch_count > 0 && hook_merge_batch(run)) {
			hook_finish(run);
			break;
		}
		if (run->next_hook >= run->count) {
			hook_finish(run);
			break;
		}
		hook_start_batch(run);
	}
	run->driving = false;
	hook_run_release(run);
}

struct ts_hook_run *
ts_hook_run(struct ts_ctx *ctx, enum ts_hook_point point,
	    const struct ts_hook_args *args, ts_hook_done_fn done, void *arg)
{
	struct ts__hooks *hooks = ctx->kernel->hooks;
	struct ts_hook_run *run = ts_xcalloc(1, sizeof(*run));

	run->hooks = hooks;
	run->ctx = ctx;
	run->point = point;
	run->done = done;
	run->done_arg = arg;
	if (args != NULL) {
		/* Copied: callers pass compound literals and line buffers. */
		run->args = *args;
		if (args->arg != NULL)
			run->arg_copy = ts_xstrdup(args->arg);
		run->args.arg = run->arg_copy;
	}
	if ((unsigned)point < TS_HOOK_POINT_COUNT &&
	    hooks->points[point].count > 0) {
		const struct hook_list *list = &hooks->points[point];
		run->count = list->count;
		run->list = ts_xmalloc(list->count * sizeof(*run->list));
		memcpy(run->list, list->entries,
		       list->count * sizeof(*run->list));
	}
	run->next = hooks->runs;
	if (hooks->runs != NULL)
		hooks->runs->prev = run;
	hooks->runs = run;

	/* Hold it so a synchronous finish cannot free it under us. */
	run->busy++;
	hook_drive(run);
	if (run->dead) {
		hook_run_release(run);
		return NULL;
	}
	run->busy--;
	return run;
}
