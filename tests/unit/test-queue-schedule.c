/*
 * tests/unit/test-queue-schedule.c — the queue's in-memory schedule
 * (kernel/queue/schedule.c): due order, merging twins, hold and busy,
 * removal, lookups by message, and a large queue built in linear-ish
 * time (checked by order, not by a clock).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/queue/queue-private.h"

static struct ts__qentry *
add(struct ts__qsched *s, int64_t id, const char *domain, int64_t next)
{
	struct ts__qentry e = { .msg_id = id, .domain = (char *)domain,
				.next_ms = next };
	return ts__qsched_add(s, &e);
}

static void
test_due_order(void **state)
{
	(void)state;
	struct ts__qsched s = { 0 };
	add(&s, 1, "a.example", 300);
	add(&s, 2, "b.example", 100);
	add(&s, 3, "c.example", 200);
	add(&s, 4, "d.example", 100); /* ties: the older message first */
	int64_t want[] = { 2, 4, 3, 1 };
	for (size_t i = 0; i < 4; i++) {
		struct ts__qentry *e = ts__qsched_next(&s);
		assert_non_null(e);
		assert_int_equal(e->msg_id, want[i]);
		ts__qsched_remove(&s, e);
	}
	assert_null(ts__qsched_next(&s));
	assert_int_equal(s.count, 0);
	ts__qsched_free(&s);
}

static void
test_twins_merge(void **state)
{
	(void)state;
	struct ts__qsched s = { 0 };
	struct ts__qentry *a = add(&s, 7, "x.example", 500);
	assert_ptr_equal(add(&s, 7, "x.example", 900), a);
	assert_int_equal(a->next_ms, 500); /* later twin: unchanged */
	assert_ptr_equal(add(&s, 7, "x.example", 50), a);
	assert_int_equal(a->next_ms, 50); /* earlier twin: moves up */
	struct ts__qentry *b = add(&s, 7, "y.example", 60);
	assert_ptr_not_equal(a, b);
	assert_int_equal(s.count, 2);
	assert_ptr_equal(ts__qsched_find(&s, 7, "y.example"), b);
	assert_non_null(ts__qsched_find(&s, 7, NULL));
	assert_null(ts__qsched_find(&s, 8, NULL));
	assert_ptr_equal(ts__qsched_next(&s), a);
	ts__qsched_free(&s);
}

static void
test_hold_busy_and_kick(void **state)
{
	(void)state;
	struct ts__qsched s = { 0 };
	struct ts__qentry *a = add(&s, 1, "a.example", 10);
	struct ts__qentry *b = add(&s, 2, "b.example", 20);
	a->busy = true;
	ts__qsched_update(&s, a);
	assert_ptr_equal(ts__qsched_next(&s), b);
	b->hold = true;
	ts__qsched_update(&s, b);
	assert_null(ts__qsched_next(&s));
	/* Removing entries that are out of the heap works too. */
	a->busy = false;
	a->next_ms = 30;
	ts__qsched_update(&s, a);
	b->hold = false;
	ts__qsched_update(&s, b);
	assert_ptr_equal(ts__qsched_next(&s), b);
	a->next_ms = 0; /* a kick */
	ts__qsched_update(&s, a);
	assert_ptr_equal(ts__qsched_next(&s), a);
	b->hold = true;
	ts__qsched_update(&s, b);
	ts__qsched_remove(&s, b);
	assert_int_equal(s.count, 1);
	assert_ptr_equal(s.all, a);
	assert_null(a->all_next);
	ts__qsched_free(&s);
}

/* A pseudo-random walk over many entries keeps the heap ordered. */
static void
test_many_entries(void **state)
{
	(void)state;
	struct ts__qsched s = { 0 };
	enum { N = 100000 };
	uint64_t x = 88172645463325252u;
	char domain[32];
	for (int64_t id = 1; id <= N; id++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		snprintf(domain, sizeof(domain), "d%u.example",
			 (unsigned)(x % 7));
		add(&s, id, domain, (int64_t)(x % 1000000));
	}
	assert_int_equal(s.count, N);
	assert_true(s.bucket_count >= s.count);
	/* Hold every third message; the rest come out in time order. */
	size_t held = 0;
	for (struct ts__qentry *e = s.all; e != NULL; e = e->all_next)
		if (e->msg_id % 3 == 0) {
			e->hold = true;
			ts__qsched_update(&s, e);
			held++;
		}
	int64_t last = -1;
	size_t popped = 0;
	struct ts__qentry *e;
	while ((e = ts__qsched_next(&s)) != NULL) {
		assert_true(e->next_ms >= last);
		assert_true(e->msg_id % 3 != 0);
		last = e->next_ms;
		ts__qsched_remove(&s, e);
		popped++;
	}
	assert_int_equal(popped, N - held);
	assert_int_equal(s.count, held);
	ts__qsched_free(&s);
	assert_int_equal(s.count, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_order),
		cmocka_unit_test(test_twins_merge),
		cmocka_unit_test(test_hold_busy_and_kick),
		cmocka_unit_test(test_many_entries),
	};
	return cmocka_run_group_tests_name("queue-schedule", tests, NULL,
					   NULL);
}
