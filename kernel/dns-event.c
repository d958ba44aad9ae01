/*
 * kernel/dns-event.c — libunbound's event base, made of libuv handles.
 *
 * libunbound can run its resolver state machines on an event loop it is
 * given ("pluggable event base", unbound-event.h): it asks for events on
 * its sockets and for timers through two small vtables, and calls back
 * when they fire.  This file implements those vtables on the kernel's
 * libuv loop, so lookups need neither the background thread nor the
 * forked process of ub_resolve_async().  The semantics follow libevent,
 * which libunbound was written against: an event without UB_EV_PERSIST
 * fires once and is then inactive; a persistent one keeps firing and its
 * timeout restarts after each firing.
 *
 * Every handle here is unreferenced so that libunbound's own housekeeping
 * (a cancelled query's retries, a TCP connection kept for reuse) never
 * keeps the loop alive; the lookups' own timers in dns.c do that.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/time.h>

#include <unbound-event.h>

#include "kernel/dns-private.h"

struct ts_dns_evbase {
	struct ub_event_base base; /* first: libunbound sees only this */
	uv_loop_t *loop;
};

struct ts_dns_event {
	struct ub_event ev; /* first: libunbound sees only this */
	uv_loop_t *loop;
	int fd;
	short bits; /* UB_EV_READ, _WRITE, _PERSIST, _TIMEOUT */
	void (*cb)(int fd, short bits, void *arg);
	void *arg;
	uv_poll_t *poll; /* while active on fd; else NULL */
	uv_timer_t *timer; /* NULL until first needed */
	uint64_t timeout_ms;
	bool timeout_set; /* the last add asked for a timeout */
};

/* Handles are allocated apart from events and freed when closed. */
static void
ts_dns_handle_closed(uv_handle_t *handle)
{
	free(handle);
}

static void
ts_dns_handle_close(uv_handle_t **handle)
{
	if (*handle != NULL)
		uv_close(*handle, ts_dns_handle_closed);
	*handle = NULL;
}

static uint64_t
ts_dns_tv_ms(const struct timeval *tv)
{
	/* Round up: libevent never fires a timeout early either. */
	return (uint64_t)tv->tv_sec * 1000 +
	       ((uint64_t)tv->tv_usec + 999) / 1000;
}

/*
 * Deactivate; the event stays configured for a later add.  The poll
 * handle is closed rather than stopped: libuv removes an fd from epoll
 * again whenever a poll handle on it stops or closes, and by the time a
 * stopped handle were closed later libunbound may have closed the fd and
 * another socket may have its number.  libunbound always deactivates an
 * event before closing its fd, so closing here is safe.
 */
static void
ts_dns_event_stop(struct ts_dns_event *e)
{
	ts_dns_handle_close((uv_handle_t **)&e->poll);
	if (e->timer != NULL)
		uv_timer_stop(e->timer);
}

static void ts_dns_event_timed_out(uv_timer_t *handle);

static void
ts_dns_event_timer_start(struct ts_dns_event *e)
{
	if (e->timer == NULL) {
		e->timer = ts_xmalloc(sizeof(*e->timer));
		uv_timer_init(e->loop, e->timer);
		uv_unref((uv_handle_t *)e->timer);
		e->timer->data = e;
	}
	uv_timer_start(e->timer, ts_dns_event_timed_out, e->timeout_ms, 0);
}

/*
 * Called by libuv; runs libunbound's callback, which may free the event:
 * nothing touches `e` after it.
 */
static void
ts_dns_event_fire(struct ts_dns_event *e, short bits)
{
	if (!(e->bits & UB_EV_PERSIST))
		ts_dns_event_stop(e);
	else if (e->timeout_set)
		ts_dns_event_timer_start(e);
	e->cb(e->fd, bits, e->arg);
}

static void
ts_dns_event_timed_out(uv_timer_t *handle)
{
	ts_dns_event_fire(handle->data, UB_EV_TIMEOUT);
}

static void
ts_dns_event_polled(uv_poll_t *handle, int status, int events)
{
	struct ts_dns_event *e = handle->data;
	short bits = 0;
	if (status < 0) {
		/* Let libunbound's read or write find the error itself. */
		bits = e->bits & (UB_EV_READ | UB_EV_WRITE);
	} else {
		if (events & UV_READABLE)
			bits |= UB_EV_READ;
		if (events & UV_WRITABLE)
			bits |= UB_EV_WRITE;
		bits &= e->bits;
	}
	if (bits != 0)
		ts_dns_event_fire(e, bits);
}

/* --- the ub_event vtable -------------------------------------------------- */

static void
ts_dns_event_add_bits(struct ub_event *ev, short bits)
{
	((struct ts_dns_event *)ev)->bits |= bits;
}

static void
ts_dns_event_del_bits(struct ub_event *ev, short bits)
{
	((struct ts_dns_event *)ev)->bits &= (short)~bits;
}

static void
ts_dns_event_set_fd(struct ub_event *ev, int fd)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	e->fd = fd;
}

static void
ts_dns_event_free(struct ub_event *ev)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	if (e == NULL)
		return;
	ts_dns_handle_close((uv_handle_t **)&e->poll);
	ts_dns_handle_close((uv_handle_t **)&e->timer);
	free(e);
}

/* Activate: watch the fd for the event's bits, and time out after tv. */
static int
ts_dns_event_add(struct ub_event *ev, struct timeval *tv)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	int want = 0;
	if (e->bits & UB_EV_READ)
		want |= UV_READABLE;
	if (e->bits & UB_EV_WRITE)
		want |= UV_WRITABLE;
	/* Re-adding replaces the watch (libevent semantics). */
	ts_dns_handle_close((uv_handle_t **)&e->poll);
	if (e->fd >= 0 && want != 0) {
		uv_poll_t *poll = ts_xmalloc(sizeof(*poll));
		if (uv_poll_init(e->loop, poll, e->fd) != 0) {
			free(poll);
			return -1;
		}
		uv_unref((uv_handle_t *)poll);
		poll->data = e;
		e->poll = poll;
		if (uv_poll_start(poll, want, ts_dns_event_polled) != 0)
			return -1;
	}
	e->timeout_set = tv != NULL;
	if (tv != NULL) {
		e->timeout_ms = ts_dns_tv_ms(tv);
		ts_dns_event_timer_start(e);
	} else if (e->timer != NULL) {
		uv_timer_stop(e->timer);
	}
	return 0;
}

static int
ts_dns_event_del(struct ub_event *ev)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	ts_dns_event_stop(e);
	e->timeout_set = false;
	return 0;
}

static int
ts_dns_event_add_timer(struct ub_event *ev, struct ub_event_base *base,
		       void (*cb)(int, short, void *), void *arg,
		       struct timeval *tv)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	e->cb = cb;
	e->arg = arg;
	e->bits = UB_EV_TIMEOUT;
	e->timeout_set = true;
	e->timeout_ms = ts_dns_tv_ms(tv);
	ts_dns_event_timer_start(e);
	return 0;
}

static int
ts_dns_event_del_timer(struct ub_event *ev)
{
	struct ts_dns_event *e = (struct ts_dns_event *)ev;
	if (e->timer != NULL)
		uv_timer_stop(e->timer);
	e->timeout_set = false;
	return 0;
}

/* Signals and winsock are never asked for by libunbound's lookups. */
static int
ts_dns_event_signal(struct ub_event *ev, struct timeval *tv)
{
	return -1;
}

static int
ts_dns_event_unsignal(struct ub_event *ev)
{
	return -1;
}

static void
ts_dns_event_wsa_unregister(struct ub_event *ev)
{
}

static void
ts_dns_event_wsa_wouldblock(struct ub_event *ev, int bit)
{
}

static struct ub_event_vmt ts_dns_event_vmt = {
	.add_bits = ts_dns_event_add_bits,
	.del_bits = ts_dns_event_del_bits,
	.set_fd = ts_dns_event_set_fd,
	.free = ts_dns_event_free,
	.add = ts_dns_event_add,
	.del = ts_dns_event_del,
	.add_timer = ts_dns_event_add_timer,
	.del_timer = ts_dns_event_del_timer,
	.add_signal = ts_dns_event_signal,
	.del_signal = ts_dns_event_unsignal,
	.winsock_unregister_wsaevent = ts_dns_event_wsa_unregister,
	.winsock_tcp_wouldblock = ts_dns_event_wsa_wouldblock,
};

/* --- the ub_event_base vtable --------------------------------------------- */

static void
ts_dns_evbase_vfree(struct ub_event_base *base)
{
	free(base);
}

/* libunbound never runs or stops the loop of an event base it is given. */
static int
ts_dns_evbase_dispatch(struct ub_event_base *base)
{
	return -1;
}

static int
ts_dns_evbase_loopexit(struct ub_event_base *base, struct timeval *tv)
{
	return -1;
}

static struct ub_event *
ts_dns_evbase_new_event(struct ub_event_base *base, int fd, short bits,
			void (*cb)(int, short, void *), void *arg)
{
	struct ts_dns_event *e = ts_xcalloc(1, sizeof(*e));
	e->ev.magic = UB_EVENT_MAGIC;
	e->ev.vmt = &ts_dns_event_vmt;
	e->loop = ((struct ts_dns_evbase *)base)->loop;
	e->fd = fd;
	e->bits = bits;
	e->cb = cb;
	e->arg = arg;
	return &e->ev;
}

static struct ub_event *
ts_dns_evbase_new_signal(struct ub_event_base *base, int fd,
			 void (*cb)(int, short, void *), void *arg)
{
	return NULL;
}

static struct ub_event *
ts_dns_evbase_wsa_register(struct ub_event_base *base, void *wsaevent,
			   void (*cb)(int, short, void *), void *arg)
{
	return NULL;
}

static struct ub_event_base_vmt ts_dns_evbase_vmt = {
	.free = ts_dns_evbase_vfree,
	.dispatch = ts_dns_evbase_dispatch,
	.loopexit = ts_dns_evbase_loopexit,
	.new_event = ts_dns_evbase_new_event,
	.new_signal = ts_dns_evbase_new_signal,
	.winsock_register_wsaevent = ts_dns_evbase_wsa_register,
};

struct ub_event_base *
ts__dns_evbase_new(uv_loop_t *loop)
{
	struct ts_dns_evbase *b = ts_xcalloc(1, sizeof(*b));
	b->base.magic = UB_EVENT_MAGIC;
	b->base.vmt = &ts_dns_evbase_vmt;
	b->loop = loop;
	return &b->base;
}

void
ts__dns_evbase_free(struct ub_event_base **base)
{
	if (*base != NULL)
		(*base)->vmt->free(*base);
	*base = NULL;
}
