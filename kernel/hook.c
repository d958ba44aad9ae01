/*
 * kernel/hook.c — the hook registry: the names of hook points and
 * verdicts, the hook functions registered at each point in effective order
 * (priority, then module load order, then registration order), the table
 * of resume tokens, and what a hook function may ask about its call or
 * say about it (the call accessors and verdict setters).
 *
 * It does not run a point: kernel/hook-run.c starts runs, batches parallel
 * hooks, suspends and resumes calls, times them out, cancels and merges.
 * This file does not know about connections, and it does not decide what
 * a verdict means to a protocol.  Everything here runs on the event-loop
 * thread.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"
#include "kernel/hook-private.h"

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
	case TS_VERDICT_CONTINUE:
		return "continue";
	case TS_VERDICT_ACCEPT:
		return "accept";
	case TS_VERDICT_REJECT:
		return "reject";
	case TS_VERDICT_TEMPFAIL:
		return "tempfail";
	case TS_VERDICT_MAILBOX:
		return "mailbox";
	case TS_VERDICT_ROUTE:
		return "route";
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
			ts__hook_table_put(hooks, old[i].token, old[i].call);
	free(old);
}

void
ts__hook_table_put(struct ts__hooks *hooks, ts_hook_token token,
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
size_t
ts__hook_table_find(const struct ts__hooks *hooks, ts_hook_token token)
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
void
ts__hook_table_del(struct ts__hooks *hooks, ts_hook_token token)
{
	size_t mask = hooks->slot_cap - 1;
	size_t hole = ts__hook_table_find(hooks, token);
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

void
ts__hooks_free(struct ts__hooks **hooksp)
{
	struct ts__hooks *hooks = *hooksp;
	if (hooks == NULL)
		return;
	/* Aborting unlinks the run, and a cancel callback may start more. */
	while (hooks->runs != NULL)
		ts__hook_run_abort(hooks->runs);
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
		.owner = ctx,
		.fn = fn,
		.prio = prio,
		.flags = flags,
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
hook_set_verdict(struct ts_hook_call *call, enum ts_verdict verdict, int code,
		 const char *enhanced, char *text)
{
	call->verdict = verdict;
	call->code = code;
	hook_set_str(&call->enhanced, enhanced);
	free(call->text);
	call->text = text;
	hook_set_str(&call->mailbox, NULL);
	hook_set_str(&call->route_service, NULL);
	hook_set_str(&call->route_instance, NULL);
	return TS_HOOK_DONE;
}

int
ts_hook_accept(struct ts_hook_call *call)
{
	return hook_set_verdict(call, TS_VERDICT_ACCEPT, 0, NULL, NULL);
}

/* Set a reject or tempfail whose text is printf-formatted (may be NULL). */
static int
hook_set_verdict_fmt(struct ts_hook_call *call, enum ts_verdict verdict,
		     int code, const char *enhanced, const char *fmt,
		     va_list ap)
{
	char *text = fmt != NULL ? ts_xvasprintf(fmt, ap) : NULL;
	return hook_set_verdict(call, verdict, code, enhanced, text);
}

int
ts_hook_reject(struct ts_hook_call *call, int code, const char *enhanced,
	       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = hook_set_verdict_fmt(call, TS_VERDICT_REJECT, code, enhanced,
				      fmt, ap);
	va_end(ap);
	return rc;
}

int
ts_hook_tempfail(struct ts_hook_call *call, int code, const char *enhanced,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = hook_set_verdict_fmt(call, TS_VERDICT_TEMPFAIL, code, enhanced,
				      fmt, ap);
	va_end(ap);
	return rc;
}

int
ts_hook_deliver_to(struct ts_hook_call *call, const char *mailbox)
{
	hook_set_verdict(call, TS_VERDICT_MAILBOX, 0, NULL, NULL);
	hook_set_str(&call->mailbox, mailbox);
	return TS_HOOK_DONE;
}

int
ts_hook_route(struct ts_hook_call *call, const char *service,
	      const char *instance)
{
	hook_set_verdict(call, TS_VERDICT_ROUTE, 0, NULL, NULL);
	hook_set_str(&call->route_service, service);
	hook_set_str(&call->route_instance, instance);
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
