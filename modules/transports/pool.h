/*
 * modules/transports/pool.h — connections kept open between deliveries,
 * and how many may be open to one destination at once.
 *
 * A *destination* is whatever makes connections interchangeable: the
 * caller's key (transport instance, host, port, TLS requirements, …).
 * Each holds a count of open connections (slots), the idle connections
 * parked for reuse, and the deliveries waiting for a slot, first come
 * first served.  The pool knows nothing of SMTP: items and waiters are
 * the caller's, and it calls back only to wake a waiter or to let go of
 * parked items when it is freed.  Loop thread only.
 */
#ifndef TRANSPORTS_POOL_H
#define TRANSPORTS_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct tr_pool;
struct tr_dest;

/* A delivery waiting for a slot; lives in the caller's struct. */
struct tr_dest_waiter {
	void (*wake)(struct tr_dest_waiter *w); /* a slot or a parked item */
	struct tr_dest_waiter *next;
};

/*
 * A new, empty pool.  `drop` is called for every parked item when the
 * pool is freed (the caller closes it; the item must then not call back
 * into the pool: its destination pointer is gone).
 */
struct tr_pool *tr_pool_new(void (*drop)(void *item));
/*
 * Free the pool: parked items are dropped; destinations that still have
 * open connections outlive it until their last slot is released.  Sets
 * *pool to NULL.
 */
void tr_pool_free(struct tr_pool **pool);

/* The destination of key (created when new); owned by the pool. */
struct tr_dest *tr_pool_dest(struct tr_pool *pool, const char *key);

/* Take a slot if fewer than max are taken; true when taken. */
bool tr_dest_take_slot(struct tr_dest *d, unsigned max);
/*
 * Give a slot back (its connection closed).  Wakes the first waiter,
 * whose wake runs before this returns.  The destination may be freed
 * here when nothing else refers to it.
 */
void tr_dest_release_slot(struct tr_dest *d);

/*
 * Park an idle item (its slot stays taken).  If a delivery waits, its
 * wake runs before this returns (it will find the item).
 */
void tr_dest_park(struct tr_dest *d, void *item);
/* Take the most recently parked item, or NULL. */
void *tr_dest_take_parked(struct tr_dest *d);
/* Take this parked item out (it closed or timed out); false if absent. */
bool tr_dest_unpark(struct tr_dest *d, void *item);

/* Wait for a slot (at the end of the line) / stop waiting. */
void tr_dest_wait(struct tr_dest *d, struct tr_dest_waiter *w);
void tr_dest_unwait(struct tr_dest *d, struct tr_dest_waiter *w);

/* Counts, for logs and tests. */
unsigned tr_dest_active(const struct tr_dest *d);
size_t tr_dest_parked(const struct tr_dest *d);
size_t tr_dest_waiting(const struct tr_dest *d);
const char *tr_dest_key(const struct tr_dest *d);

#endif
