/*
 * modules/transports/tests/test-pool.c — destinations, slots, parked
 * connections and the line of waiting deliveries (pool.c): limits per
 * key, first come first served, a slot or a parked item waking the
 * first waiter, leaving the line, freeing destinations that nothing
 * uses, and a pool freed while connections are still open.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/transports/pool.h"

struct waiter {
	struct tr_dest_waiter w; /* first: the wake gets it */
	int id;
	int *woken; /* where the wake records its id */
	size_t *n;
};

static void
wake(struct tr_dest_waiter *w)
{
	struct waiter *x = (struct waiter *)w;
	x->woken[(*x->n)++] = x->id;
}

static int dropped;

static void
drop(void *item)
{
	(void)item;
	dropped++;
}

static void
test_slots_and_line(void **state)
{
	(void)state;
	struct tr_pool *p = tr_pool_new(drop);
	struct tr_dest *a = tr_pool_dest(p, "direct|mx.a|25");
	assert_ptr_equal(tr_pool_dest(p, "direct|mx.a|25"), a);
	struct tr_dest *b = tr_pool_dest(p, "direct|mx.b|25");
	assert_ptr_not_equal(a, b);
	assert_true(tr_dest_take_slot(a, 2));
	assert_true(tr_dest_take_slot(a, 2));
	assert_false(tr_dest_take_slot(a, 2)); /* the limit is per key */
	assert_true(tr_dest_take_slot(b, 2));
	int woken[4];
	size_t n = 0;
	struct waiter w1 = { .w.wake = wake, .id = 1, .woken = woken, .n = &n };
	struct waiter w2 = { .w.wake = wake, .id = 2, .woken = woken, .n = &n };
	struct waiter w3 = { .w.wake = wake, .id = 3, .woken = woken, .n = &n };
	tr_dest_wait(a, &w1.w);
	tr_dest_wait(a, &w2.w);
	tr_dest_wait(a, &w3.w);
	assert_int_equal(tr_dest_waiting(a), 3);
	tr_dest_unwait(a, &w2.w); /* gave up (cancelled) */
	assert_int_equal(tr_dest_waiting(a), 2);
	tr_dest_release_slot(a); /* first come, first served */
	assert_int_equal(n, 1);
	assert_int_equal(woken[0], 1);
	assert_int_equal(tr_dest_active(a), 1); /* w1 did not take it */
	/* A parked connection also wakes the next one. */
	int item;
	tr_dest_park(a, &item);
	assert_int_equal(n, 2);
	assert_int_equal(woken[1], 3);
	assert_int_equal(tr_dest_parked(a), 1);
	assert_ptr_equal(tr_dest_take_parked(a), &item);
	assert_null(tr_dest_take_parked(a));
	tr_dest_park(a, &item);
	assert_true(tr_dest_unpark(a, &item));
	assert_false(tr_dest_unpark(a, &item));
	tr_dest_release_slot(a);
	tr_dest_release_slot(b);
	tr_pool_free(&p);
	assert_null(p);
	assert_int_equal(dropped, 0);
}

/* A destination nothing uses goes away (and comes back new). */
static void
test_unused_destinations_freed(void **state)
{
	(void)state;
	struct tr_pool *p = tr_pool_new(drop);
	struct tr_dest *a = tr_pool_dest(p, "k");
	assert_true(tr_dest_take_slot(a, 1));
	tr_dest_release_slot(a); /* freed: nothing refers to it */
	a = tr_pool_dest(p, "k");
	assert_int_equal(tr_dest_active(a), 0);
	assert_string_equal(tr_dest_key(a), "k");
	tr_pool_free(&p);
}

/* The pool goes first: parked items dropped, open slots outlive it. */
static void
test_pool_freed_with_connections_open(void **state)
{
	(void)state;
	dropped = 0;
	struct tr_pool *p = tr_pool_new(drop);
	struct tr_dest *a = tr_pool_dest(p, "a");
	assert_true(tr_dest_take_slot(a, 5));
	assert_true(tr_dest_take_slot(a, 5));
	int x, y;
	tr_dest_park(a, &x);
	tr_dest_park(a, &y);
	tr_dest_take_parked(a); /* y: in use again */
	tr_pool_free(&p);
	assert_int_equal(dropped, 1); /* x, and its slot with it */
	assert_int_equal(tr_dest_active(a), 1);
	/* y's connection closes later: its slot is released on the
	 * orphaned destination, which then frees itself (ASan: no leak). */
	tr_dest_release_slot(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots_and_line),
		cmocka_unit_test(test_unused_destinations_freed),
		cmocka_unit_test(test_pool_freed_with_connections_open),
	};
	return cmocka_run_group_tests_name("transports-pool", tests, NULL,
					   NULL);
}
