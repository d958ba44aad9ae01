/*
 * modules/transports/pool.c — destinations, their connection slots,
 * parked idle connections and waiting deliveries (see pool.h).
 *
 * Destinations live in a list: a server delivers to a few hundred
 * destinations at once at most, and each lookup is one per delivery
 * attempt.  A destination is freed as soon as nothing refers to it (no
 * slot taken, nothing parked, nobody waiting), so the list holds only
 * what is in use.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tessera/common.h>

#include "pool.h"

struct tr_parked {
	void *item;
	struct tr_parked *next;
};

struct tr_dest {
	struct tr_pool *pool; /* NULL once the pool is gone */
	char *key;
	unsigned active; /* slots taken: open connections, parked or not */
	struct tr_parked *parked; /* most recent first */
	struct tr_dest_waiter *waiters, **waiters_tail;
	unsigned waking; /* inside a wake: the callee may release too */
	struct tr_dest *next;
};

struct tr_pool {
	void (*drop)(void *item);
	struct tr_dest *dests;
};

struct tr_pool *
tr_pool_new(void (*drop)(void *item))
{
	struct tr_pool *p = ts_xcalloc(1, sizeof(*p));
	p->drop = drop;
	return p;
}

static void
tr_dest_free(struct tr_dest *d)
{
	free(d->key);
	free(d);
}

/* Free d if nothing refers to it any more. */
static void
tr_dest_maybe_free(struct tr_dest *d)
{
	if (d->active > 0 || d->parked != NULL || d->waiters != NULL ||
	    d->waking > 0)
		return;
	if (d->pool != NULL) {
		struct tr_dest **pp = &d->pool->dests;
		while (*pp != d)
			pp = &(*pp)->next;
		*pp = d->next;
	}
	tr_dest_free(d);
}

void
tr_pool_free(struct tr_pool **pool)
{
	struct tr_pool *p = *pool;
	if (p == NULL)
		return;
	*pool = NULL;
	struct tr_dest *d = p->dests;
	while (d != NULL) {
		struct tr_dest *next = d->next;
		d->pool = NULL;
		d->next = NULL;
		while (d->parked != NULL) {
			struct tr_parked *k = d->parked;
			d->parked = k->next;
			/* the dropped item gives its slot back with it */
			if (d->active > 0)
				d->active--;
			p->drop(k->item);
			free(k);
		}
		if (d->active == 0 && d->waiters == NULL && d->waking == 0)
			tr_dest_free(d);
		d = next;
	}
	free(p);
}

struct tr_dest *
tr_pool_dest(struct tr_pool *pool, const char *key)
{
	for (struct tr_dest *d = pool->dests; d != NULL; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	struct tr_dest *d = ts_xcalloc(1, sizeof(*d));
	d->pool = pool;
	d->key = ts_xstrdup(key);
	d->waiters_tail = &d->waiters;
	d->next = pool->dests;
	pool->dests = d;
	return d;
}

bool
tr_dest_take_slot(struct tr_dest *d, unsigned max)
{
	if (d->active >= max)
		return false;
	d->active++;
	return true;
}

/* Wake the first waiter, if any (it is taken off the line first). */
static void
tr_dest_wake(struct tr_dest *d)
{
	struct tr_dest_waiter *w = d->waiters;
	if (w == NULL)
		return;
	d->waiters = w->next;
	if (d->waiters == NULL)
		d->waiters_tail = &d->waiters;
	w->next = NULL;
	d->waking++;
	w->wake(w);
	d->waking--;
}

void
tr_dest_release_slot(struct tr_dest *d)
{
	if (d->active > 0)
		d->active--;
	tr_dest_wake(d);
	tr_dest_maybe_free(d);
}

void
tr_dest_park(struct tr_dest *d, void *item)
{
	struct tr_parked *k = ts_xmalloc(sizeof(*k));
	k->item = item;
	k->next = d->parked;
	d->parked = k;
	tr_dest_wake(d);
	tr_dest_maybe_free(d);
}

void *
tr_dest_take_parked(struct tr_dest *d)
{
	struct tr_parked *k = d->parked;
	if (k == NULL)
		return NULL;
	d->parked = k->next;
	void *item = k->item;
	free(k);
	return item;
}

bool
tr_dest_unpark(struct tr_dest *d, void *item)
{
	for (struct tr_parked **kp = &d->parked; *kp != NULL;
	     kp = &(*kp)->next) {
		if ((*kp)->item == item) {
			struct tr_parked *k = *kp;
			*kp = k->next;
			free(k);
			return true;
		}
	}
	return false;
}

void
tr_dest_wait(struct tr_dest *d, struct tr_dest_waiter *w)
{
	w->next = NULL;
	*d->waiters_tail = w;
	d->waiters_tail = &w->next;
}

void
tr_dest_unwait(struct tr_dest *d, struct tr_dest_waiter *w)
{
	struct tr_dest_waiter **wp = &d->waiters;
	while (*wp != NULL && *wp != w)
		wp = &(*wp)->next;
	if (*wp == NULL)
		return;
	*wp = w->next;
	if (d->waiters_tail == &w->next)
		d->waiters_tail = wp;
	w->next = NULL;
	tr_dest_maybe_free(d);
}

unsigned
tr_dest_active(const struct tr_dest *d)
{
	return d->active;
}

size_t
tr_dest_parked(const struct tr_dest *d)
{
	size_t n = 0;
	for (const struct tr_parked *k = d->parked; k != NULL; k = k->next)
		n++;
	return n;
}

size_t
tr_dest_waiting(const struct tr_dest *d)
{
	size_t n = 0;
	for (const struct tr_dest_waiter *w = d->waiters; w != NULL;
	     w = w->next)
		n++;
	return n;
}

const char *
tr_dest_key(const struct tr_dest *d)
{
	return d->key;
}
