/*
 * kernel/timer.c — loop timers for modules.
 *
 * A thin wrapper over uv_timer_t that hides libuv from modules and makes
 * freeing safe at any moment, including inside the timer's own callback:
 * the memory goes in the handle's close callback, as libuv requires.
 */
#include "config.h"

#include <stdlib.h>

#include "kernel/kernel.h"

struct ts_timer {
	uv_timer_t handle;
	struct ts_ctx *ctx;
	ts_timer_fn fn;
	void *arg;
};

static void
ts_timer_fire(uv_timer_t *handle)
{
	struct ts_timer *t = handle->data;
	t->fn(t, t->arg);
}

struct ts_timer *
ts_timer_new(struct ts_ctx *ctx, ts_timer_fn fn, void *arg)
{
	struct ts_timer *t = ts_xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->fn = fn;
	t->arg = arg;
	uv_timer_init(ctx->kernel->loop, &t->handle);
	t->handle.data = t;
	return t;
}

void
ts_timer_start(struct ts_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
	uv_timer_start(&t->handle, ts_timer_fire, timeout_ms, repeat_ms);
}

void
ts_timer_stop(struct ts_timer *t)
{
	uv_timer_stop(&t->handle);
}

bool
ts_timer_active(const struct ts_timer *t)
{
	return uv_is_active((const uv_handle_t *)&t->handle) != 0;
}

static void
ts_timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

void
ts_timer_free(struct ts_timer **timer)
{
	struct ts_timer *t = *timer;
	if (t == NULL)
		return;
	*timer = NULL;
	uv_timer_stop(&t->handle);
	uv_close((uv_handle_t *)&t->handle, ts_timer_closed);
}
