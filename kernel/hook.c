/*
 * kernel/hook.c — the hook pipeline: the registry of hook functions per
 * point, running a point, asynchronous hooks with resume tokens, timeouts
 * and cancellation.
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
 * This file does not know about connections beyond comparing pointers, and
 * it does not decide what a verdict means to a protocol.  Everything here
 * runs on the event-loop thread.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

/* Used when [core] hook_timeout is 0 (not set). */
#define HOOK_DEFAULT_TIMEOUT_MS 30000

/* One registered hook function. */
struct hook_entry {
	struct ts_ctx *owner;
	ts_hook_fn fn;
	int prio;
	unsigned flags;
};

/* The hooks of one point, in effective order. */
struct hook_list {
	struct hook_entry *entries;
	size_t count;
};

/* A slot of the token table (open addressing, linear probing). */
struct hook_slot {
	ts_hook_token token; /* 0: empty */
	struct ts_hook_call *call;
};

struct ts__hooks {
	struct ts_kernel *kernel;
	struct hook_list points[TS_HOOK_POINT_COUNT];
	ts_hook_token next_token;
	/* Pending calls by token; capacity is a power of two (or 0). */
	struct hook_slot *slots;
	size_t slot_cap;
	size_t slot_used;
	/* Runs that have not finished, most recent first. */
	struct ts_hook_run *runs;
};

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

enum hook_call_state {
	HOOK_CALL_NEW,      /* not started (later in a batch) */
	HOOK_CALL_RUNNING,  /* inside its function, or suspended */
	HOOK_CALL_FINISHED, /* returned, resumed, timed out or aborted */
};

struct ts_hook_call {
	struct ts_hook_run *run;
	const struct hook_entry *hook;
	enum hook_call_state state;
	bool in_fn;       /* its hook function is on the stack */
	bool aborted;     /* the run was cancelled before it finished */
	bool cancel_due;  /* call `cancel` when the function returns */
	int rc;           /* TS_HOOK_CONTINUE or TS_HOOK_DONE once finished */

	/* Suspension. */
	ts_hook_token token; /* live token, or 0 */
	ts_hook_cancel_fn cancel;
	void *cancel_arg;
	struct hook_timer *timer;

	/* What the hook said. */
	enum ts_verdict verdict;
	int code;
	char *enhanced;
	char *text;
	char *mailbox;
	char *reason;
	char **headers;
	size_t header_count;
	uint64_t delay_ms;
};

struct ts_hook_run {
	struct ts__hooks *hooks;
	struct ts_hook_run *prev, *next; /* in hooks->runs while not dead */
	struct ts_ctx *ctx;              /* who ran the point */
	enum ts_hook_point point;
	struct ts_hook_args args; /* args.arg points to arg_copy */
	char *arg_copy;
	ts_hook_done_fn done;
	void *done_arg;

	/* A snapshot of the point's hooks, taken when the run started. */
	struct hook_entry *list;
	size_t count;
	size_t next_hook; /* index of the first hook not yet started */

	/* The current batch: calls started together. */
	struct ts_hook_call *batch;
	size_t batch_count;
	size_t batch_open; /* calls of the batch not yet finished */

	/* The result so far. */
	struct ts_hook_result result;
	char *enhanced, *text, *mailbox, *reason;
	char **headers;
	size_t header_count;

	bool driving; /* hook_drive is on the stack for this run */
	bool dead;    /* finished or cancelled: no more progress */
	unsigned busy; /* holders up the stack; freed when 0 and dead */
};

static const char *const hook_point_names[TS_HOOK_POINT_COUNT] = {
	[TS_HOOK_CONN_OPEN] = "conn_open",
	[TS_HOOK_SMTP_HELO] = "smtp_helo",
	[TS_HOOK_AUTH] = "auth",
	[TS_HOOK_SMTP_MAIL] = "smtp_mail",
	[TS_HOOK_SMTP_RCPT] = "smtp_rcpt",
	[TS_HOOK_SMTP_DATA] = "smtp_data",
	[TS_HOOK_DELIVER_LOCAL] = "deliver_local",
	[TS_HOOK_DELIVERED] = "delivered",
	[TS_HOOK_SUBMIT_MESSAGE] = "submit_message",
	[TS_HOOK_QUEUE_ROUTE] = "queue_route",
	[TS_HOOK_OUTBOUND_TLS_POLICY] = "outbound_tls_policy",
	[TS_HOOK_OUTBOUND_RESULT] = "outbound_result",
	[TS_HOOK_STORE_CHANGE] = "store_change",
};

static void hook_drive(struct ts_hook_run *run);

/* --- names ---------------------------------------------------------------- */

const char *
ts_hook_point_name(enum ts_hook_point point)
{
	if ((unsigned)point >= TS_HOOK_POINT_COUNT)
		return NULL;
	return hook_point_names[point];
}

int
ts_hook_point_parse(const char *name, enum ts_hook_point *point_r)
{
	for (unsigned i = 0; i < TS_HOOK_POINT_COUNT; i++) {
		if (strcmp(name, hook_point_names[i]) == 0) {
			*point_r = (enum ts_hook_point)i;
			return 0;
		}
	}
	return TS_E_NOTFOUND;
}

const char *
ts_verdict_name(enum ts_verdict verdict)
{
	switch (verdict) {
	case TS_VERDICT_CONTINUE: return "continue";
	case TS_VERDICT_ACCEPT: return "accept";
	case TS_VERDICT_REJECT: return "reject";
	case TS_VERDICT_TEMPFAIL: return "tempfail";
	case TS_VERDICT_MAILBOX: return "mailbox";
	}
	return "unknown";
}

/* --- the token table ------------------------------------------------------ */

/* Fibonacci hashing: tokens are sequential, so spread them out. */
static size_t
hook_slot_index(const struct ts__hooks *hooks, ts_hook_token token)
{
	return (size_t)((token * UINT64_C(0x9E3779B97F4A7C15)) >> 32) &
	       (hooks->slot_cap - 1);
}

static void hook_table_put(struct ts__hooks *hooks, ts_hook_token token,
			   struct ts_hook_call *call);

/* Double the table (or create it) and re-insert every live token. */
static void
hook_table_grow(struct ts__hooks *hooks)
{
	struct hook_slot *old = hooks->slots;
	size_t old_cap = hooks->slot_cap;

	hooks->slot_cap = old_cap ? old_cap * 2 : 64;
	hooks->slots = ts_xcalloc(hooks->slot_cap, sizeof(*hooks->slots));
	hooks->slot_used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].token != 0)
			hook_table_put(hooks, old[i].token, old[i].call);
	free(old);
}

static void
hook_table_put(struct ts__hooks *hooks, ts_hook_token token,
	       struct ts_hook_call *call)
{
	/* Keep the load factor under 3/4 so probes stay short. */
	if ((hooks->slot_used + 1) * 4 > hooks->slot_cap * 3)
		hook_table_grow(hooks);
	size_t i = hook_slot_index(hooks, token);
	while (hooks->slots[i].token != 0)
		i = (i + 1) & (hooks->slot_cap - 1);
	hooks->slots[i].token = token;
	hooks->slots[i].call = call;
	hooks->slot_used++;
}

/* The slot holding token, or SIZE_MAX. */
static size_t
hook_table_find(const struct ts__hooks *hooks, ts_hook_token token)
{
	if (token == 0 || hooks->slot_cap == 0)
		return SIZE_MAX;
	size_t i = hook_slot_index(hooks, token);
	while (hooks->slots[i].token != 0) {
		if (hooks->slots[i].token == token)
			return i;
		i = (i + 1) & (hooks->slot_cap - 1);
	}
	return SIZE_MAX;
}

/*
 * Remove a token.  Linear probing needs no tombstones if the entries after
 * the hole that probed past it are shifted back into it.
 */
static void
hook_table_del(struct ts__hooks *hooks, ts_hook_token token)
{
	size_t mask = hooks->slot_cap - 1;
	size_t hole = hook_table_find(hooks, token);
	if (hole == SIZE_MAX)
		return;
	hooks->slots[hole].token = 0;
	hooks->slots[hole].call = NULL;
	hooks->slot_used--;
	for (size_t i = (hole + 1) & mask; hooks->slots[i].token != 0;
	     i = (i + 1) & mask) {
		size_t home = hook_slot_index(hooks, hooks->slots[i].token);
		/* Move it if its home is not within (hole, i], cyclically. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			hooks->slots[hole] = hooks->slots[i];
			hooks->slots[i].token = 0;
			hooks->slots[i].call = NULL;
			hole = i;
		}
	}
}

/* --- the registry --------------------------------------------------------- */

struct ts__hooks *
ts__hooks_new(struct ts_kernel *k)
{
	struct ts__hooks *hooks = ts_xcalloc(1, sizeof(*hooks));
	hooks->kernel = k;
	hooks->next_token = 1;
	return hooks;
}

static void hook_run_abort(struct ts_hook_run *run);

void
ts__hooks_free(struct ts__hooks **hooksp)
{
	struct ts__hooks *hooks = *hooksp;
	if (hooks == NULL)
		return;
	/* Aborting unlinks the run, and a cancel callback may start more. */
	while (hooks->runs != NULL)
		hook_run_abort(hooks->runs);
	for (unsigned i = 0; i < TS_HOOK_POINT_COUNT; i++)
		free(hooks->points[i].entries);
	free(hooks->slots);
	free(hooks);
	*hooksp = NULL;
}

/* Whether a sorts strictly after b: by priority, then module load order. */
static bool
hook_entry_after(const struct hook_entry *a, const struct hook_entry *b)
{
	if (a->prio != b->prio)
		return a->prio > b->prio;
	return a->owner->index > b->owner->index;
}

int
ts_hook_add(struct ts_ctx *ctx, enum ts_hook_point point, ts_hook_fn fn,
	    int prio, unsigned flags)
{
	if ((unsigned)point >= TS_HOOK_POINT_COUNT || fn == NULL ||
	    prio < TS_HOOK_PRIO_MIN || prio > TS_HOOK_PRIO_MAX)
		return TS_E_INVAL;
	if (ctx->kernel->phase != TS__PHASE_INIT)
		return TS_E_STATE;

	struct hook_list *list = &ctx->kernel->hooks->points[point];
	struct hook_entry add = {
		.owner = ctx, .fn = fn, .prio = prio, .flags = flags,
	};
	/* After every entry that does not sort after it: registration order. */
	size_t at = list->count;
	while (at > 0 && hook_entry_after(&list->entries[at - 1], &add))
		at--;
	list->entries = ts_xrealloc(list->entries,
				    (list->count + 1) * sizeof(*list->entries));
	memmove(&list->entries[at + 1], &list->entries[at],
		(list->count - at) * sizeof(*list->entries));
	list->entries[at] = add;
	list->count++;
	return 0;
}

void
ts__hooks_each(const struct ts__hooks *hooks, enum ts_hook_point point,
	       void (*fn)(const char *module, int prio, unsigned flags,
			  void *arg),
	       void *arg)
{
	if ((unsigned)point >= TS_HOOK_POINT_COUNT)
		return;
	const struct hook_list *list = &hooks->points[point];
	for (size_t i = 0; i < list->count; i++)
		fn(list->entries[i].owner->name, list->entries[i].prio,
		   list->entries[i].flags, arg);
}

size_t
ts__hooks_count(const struct ts__hooks *hooks, const struct ts_ctx *owner,
		enum ts_hook_point point)
{
	if ((unsigned)point >= TS_HOOK_POINT_COUNT)
		return 0;
	const struct hook_list *list = &hooks->points[point];
	size_t n = 0;
	for (size_t i = 0; i < list->count; i++)
		if (list->entries[i].owner == owner)
			n++;
	return n;
}

/* --- inside a hook function ----------------------------------------------- */

struct ts_ctx *
ts_hook_call_ctx(const struct ts_hook_call *call)
{
	return call->hook->owner;
}

enum ts_hook_point
ts_hook_call_point(const struct ts_hook_call *call)
{
	return call->run->point;
}

struct ts_conn *
ts_hook_call_conn(const struct ts_hook_call *call)
{
	return call->run->args.conn;
}

void *
ts_hook_call_subject(const struct ts_hook_call *call)
{
	return call->run->args.subject;
}

const char *
ts_hook_call_arg(const struct ts_hook_call *call)
{
	return call->run->args.arg;
}

/* Replace *field with a copy of value (NULL allowed). */
static void
hook_set_str(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? ts_xstrdup(value) : NULL;
}

/*
 * Record a final verdict, taking ownership of text; a later setter on the
 * same call overrides an earlier one.
 */
static int
hook_set_verdict(struct ts_hook_call *call, enum ts_verdict verdict,
		 int code, const char *enhanced, char *text)
{
	call->verdict = verdict;
	call->code = code;
	hook_set_str(&call->enhanced, enhanced);
	free(call->text);
	call->text = text;
	hook_set_str(&call->mailbox, NULL);
	return TS_HOOK_DONE;
}

int
ts_hook_accept(struct ts_hook_call *call)
{
	return hook_set_verdict(call, TS_VERDICT_ACCEPT, 0, NULL, NULL);
}

int
ts_hook_reject(struct ts_hook_call *call, int code, const char *enhanced,
	       const char *fmt, ...)
{
	char *text = NULL;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		text = ts_xvasprintf(fmt, ap);
		va_end(ap);
	}
	return hook_set_verdict(call, TS_VERDICT_REJECT, code, enhanced, text);
}

int
ts_hook_tempfail(struct ts_hook_call *call, int code, const char *enhanced,
		 const char *fmt, ...)
{
	char *text = NULL;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		text = ts_xvasprintf(fmt, ap);
		va_end(ap);
	}
	return hook_set_verdict(call, TS_VERDICT_TEMPFAIL, code, enhanced,
				text);
}

int
ts_hook_deliver_to(struct ts_hook_call *call, const char *mailbox)
{
	hook_set_verdict(call, TS_VERDICT_MAILBOX, 0, NULL, NULL);
	hook_set_str(&call->mailbox, mailbox);
	return TS_HOOK_DONE;
}

void
ts_hook_delay(struct ts_hook_call *call, uint64_t ms)
{
	call->delay_ms += ms;
}

void
ts_hook_add_header(struct ts_hook_call *call, const char *name,
		   const char *value)
{
	ts__strv_push(&call->headers, &call->header_count,
		      ts_xasprintf("%s: %s", name, value));
}

void
ts_hook_reason(struct ts_hook_call *call, const char *reason)
{
	hook_set_str(&call->reason, reason);
}

/* --- run lifetime --------------------------------------------------------- */

static void
hook_call_clear(struct ts_hook_call *call)
{
	free(call->enhanced);
	free(call->text);
	free(call->mailbox);
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
		hook_table_del(call->run->hooks, call->token);
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
static void
hook_run_abort(struct ts_hook_run *run)
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
		hook_run_abort(run);
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
		hook_run_abort(run);
	}
}

/* --- suspending and resuming ---------------------------------------------- */

ts_hook_token
ts_hook_suspend(struct ts_hook_call *call, ts_hook_cancel_fn cancel,
		void *arg)
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
	hook_table_put(hooks, token, call);
	return token;
}

struct ts_hook_call *
ts_hook_lookup(struct ts_ctx *ctx, ts_hook_token token)
{
	struct ts__hooks *hooks = ctx->kernel->hooks;
	size_t i = hook_table_find(hooks, token);
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
		       "hook=%s", module, point);
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
	case TS_VERDICT_REJECT: return 0;
	case TS_VERDICT_TEMPFAIL: return 1;
	default: return 2;
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
