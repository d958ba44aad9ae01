/*
 * kernel/hook-private.h — what kernel/hook.c (the registry) and
 * kernel/hook-run.c (running a point) share: the registry, call and run
 * structs, and the few helpers each needs from the other.
 *
 * Plugins see calls and runs only as opaque pointers through
 * <tessera/hook.h>, and the rest of the kernel reaches the registry
 * through kernel/kernel.h; nothing but the two hook files includes this.
 */
#ifndef TESSERA_HOOK_PRIVATE_H
#define TESSERA_HOOK_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/kernel.h"

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

/* The timeout timer of a suspended call (defined in hook-run.c). */
struct hook_timer;

enum hook_call_state {
	HOOK_CALL_NEW, /* not started (later in a batch) */
	HOOK_CALL_RUNNING, /* inside its function, or suspended */
	HOOK_CALL_FINISHED, /* returned, resumed, timed out or aborted */
};

struct ts_hook_call {
	struct ts_hook_run *run;
	const struct hook_entry *hook;
	enum hook_call_state state;
	bool in_fn; /* its hook function is on the stack */
	bool aborted; /* the run was cancelled before it finished */
	bool cancel_due; /* call `cancel` when the function returns */
	int rc; /* TS_HOOK_CONTINUE or TS_HOOK_DONE once finished */

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
	char *route_service, *route_instance;
	char *reason;
	char **headers;
	size_t header_count;
	uint64_t delay_ms;
};

struct ts_hook_run {
	struct ts__hooks *hooks;
	struct ts_hook_run *prev, *next; /* in hooks->runs while not dead */
	struct ts_ctx *ctx; /* who ran the point */
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
	char *route_service, *route_instance;
	char **headers;
	size_t header_count;

	bool driving; /* hook_drive is on the stack for this run */
	bool dead; /* finished or cancelled: no more progress */
	unsigned busy; /* holders up the stack; freed when 0 and dead */
};

/* --- the token table (hook.c) --------------------------------------------- */

/* Map token (not yet in the table) to call; grows the table as needed. */
void ts__hook_table_put(struct ts__hooks *hooks, ts_hook_token token,
			struct ts_hook_call *call);

/* The slot holding token, or SIZE_MAX (always for token 0). */
size_t ts__hook_table_find(const struct ts__hooks *hooks, ts_hook_token token);

/* Remove token from the table; no-op when it is not there. */
void ts__hook_table_del(struct ts__hooks *hooks, ts_hook_token token);

/* --- runs (hook-run.c) ---------------------------------------------------- */

/*
 * Cancel a pending run: every suspended call gets its cancel callback
 * (which may re-enter), done is never called.  No-op on a dead run.
 * ts__hooks_free uses it to end the runs still pending.
 */
void ts__hook_run_abort(struct ts_hook_run *run);

#endif
