/*
 * kernel/queue/schedule.c — the queue's in-memory schedule.
 *
 * Every (message, recipient domain) pair with queued recipients is one
 * entry.  Three views keep the common operations cheap however long the
 * queue grows: a hash table on the message id (finding an entry when a
 * message is queued or an admin names it: one chain), a binary min-heap
 * of the entries that may start (neither held nor busy) ordered by their
 * next attempt time (what is due: the top), and a list of all entries
 * (listing and `--all` commands).  Queueing, starting and finishing an
 * entry cost O(log n); before this file, each was a scan of every entry,
 * which made loading a queue of n entries at start-up O(n²).
 *
 * This file decides nothing: queue.c says when entries start, delivery.c
 * what their next time is.  Loop thread only.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/queue/queue-private.h"

#define TS_QSCHED_NOT_IN_HEAP SIZE_MAX

static size_t
ts_qsched_bucket(const struct ts__qsched *s, int64_t msg_id)
{
	/* Fibonacci hashing: ids are sequential, spread them. */
	uint64_t h = (uint64_t)msg_id * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(h >> 32) & (s->bucket_count - 1);
}

static bool
ts_qsched_eligible(const struct ts__qentry *e)
{
	return !e->busy && !e->hold;
}

/* --- the heap ------------------------------------------------------------- */

static bool
ts_qsched_before(const struct ts__qentry *a, const struct ts__qentry *b)
{
	if (a->next_ms != b->next_ms)
		return a->next_ms < b->next_ms;
	return a->msg_id < b->msg_id; /* older messages first among equals */
}

static void
ts_qsched_heap_set(struct ts__qsched *s, size_t i, struct ts__qentry *e)
{
	s->heap[i] = e;
	e->heap_index = i;
}

static void
ts_qsched_sift_up(struct ts__qsched *s, size_t i)
{
	struct ts__qentry *e = s->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!ts_qsched_before(e, s->heap[parent]))
			break;
		ts_qsched_heap_set(s, i, s->heap[parent]);
		i = parent;
	}
	ts_qsched_heap_set(s, i, e);
}

static void
ts_qsched_sift_down(struct ts__qsched *s, size_t i)
{
	struct ts__qentry *e = s->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= s->heap_count)
			break;
		if (child + 1 < s->heap_count &&
		    ts_qsched_before(s->heap[child + 1], s->heap[child]))
			child++;
		if (!ts_qsched_before(s->heap[child], e))
			break;
		ts_qsched_heap_set(s, i, s->heap[child]);
		i = child;
	}
	ts_qsched_heap_set(s, i, e);
}

static void
ts_qsched_heap_insert(struct ts__qsched *s, struct ts__qentry *e)
{
	if (s->heap_count == s->heap_size) {
		s->heap_size = s->heap_size != 0 ? 2 * s->heap_size : 64;
		s->heap = ts_xrealloc(s->heap,
				      s->heap_size * sizeof(*s->heap));
	}
	ts_qsched_heap_set(s, s->heap_count++, e);
	ts_qsched_sift_up(s, e->heap_index);
}

static void
ts_qsched_heap_delete(struct ts__qsched *s, struct ts__qentry *e)
{
	size_t i = e->heap_index;
	e->heap_index = TS_QSCHED_NOT_IN_HEAP;
	struct ts__qentry *last = s->heap[--s->heap_count];
	if (last == e)
		return;
	ts_qsched_heap_set(s, i, last);
	ts_qsched_sift_up(s, i);
	ts_qsched_sift_down(s, last->heap_index);
}

/* --- the table ------------------------------------------------------------ */

static void
ts_qsched_grow(struct ts__qsched *s)
{
	size_t count = s->bucket_count != 0 ? 2 * s->bucket_count : 256;
	struct ts__qentry **buckets = ts_xcalloc(count, sizeof(*buckets));
	size_t old_count = s->bucket_count;
	struct ts__qentry **old = s->buckets;
	s->buckets = buckets;
	s->bucket_count = count;
	for (size_t b = 0; b < old_count; b++) {
		struct ts__qentry *e = old[b];
		while (e != NULL) {
			struct ts__qentry *next = e->hash_next;
			size_t nb = ts_qsched_bucket(s, e->msg_id);
			e->hash_next = s->buckets[nb];
			s->buckets[nb] = e;
			e = next;
		}
	}
	free(old);
}

struct ts__qentry *
ts__qsched_find(const struct ts__qsched *s, int64_t msg_id,
		const char *domain)
{
	if (s->bucket_count == 0)
		return NULL;
	for (struct ts__qentry *e = s->buckets[ts_qsched_bucket(s, msg_id)];
	     e != NULL; e = e->hash_next)
		if (e->msg_id == msg_id &&
		    (domain == NULL || strcmp(e->domain, domain) == 0))
			return e;
	return NULL;
}

struct ts__qentry *
ts__qsched_add(struct ts__qsched *s, const struct ts__qentry *src)
{
	struct ts__qentry *e = ts__qsched_find(s, src->msg_id, src->domain);
	if (e != NULL) {
		if (src->next_ms < e->next_ms) {
			e->next_ms = src->next_ms;
			ts__qsched_update(s, e);
		}
		return e;
	}
	if (s->count >= s->bucket_count)
		ts_qsched_grow(s);
	e = ts_xmalloc(sizeof(*e));
	*e = *src;
	e->domain = ts_xstrdup(src->domain);
	e->busy = false;
	e->heap_index = TS_QSCHED_NOT_IN_HEAP;
	size_t b = ts_qsched_bucket(s, e->msg_id);
	e->hash_next = s->buckets[b];
	s->buckets[b] = e;
	e->all_prev = NULL;
	e->all_next = s->all;
	if (s->all != NULL)
		s->all->all_prev = e;
	s->all = e;
	s->count++;
	if (ts_qsched_eligible(e))
		ts_qsched_heap_insert(s, e);
	return e;
}

void
ts__qsched_remove(struct ts__qsched *s, struct ts__qentry *e)
{
	if (e->heap_index != TS_QSCHED_NOT_IN_HEAP)
		ts_qsched_heap_delete(s, e);
	struct ts__qentry **p = &s->buckets[ts_qsched_bucket(s, e->msg_id)];
	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	if (e->all_prev != NULL)
		e->all_prev->all_next = e->all_next;
	else
		s->all = e->all_next;
	if (e->all_next != NULL)
		e->all_next->all_prev = e->all_prev;
	s->count--;
	free(e->domain);
	free(e);
}

void
ts__qsched_update(struct ts__qsched *s, struct ts__qentry *e)
{
	bool in_heap = e->heap_index != TS_QSCHED_NOT_IN_HEAP;
	if (!ts_qsched_eligible(e)) {
		if (in_heap)
			ts_qsched_heap_delete(s, e);
		return;
	}
	if (!in_heap) {
		ts_qsched_heap_insert(s, e);
		return;
	}
	ts_qsched_sift_up(s, e->heap_index);
	ts_qsched_sift_down(s, e->heap_index);
}

struct ts__qentry *
ts__qsched_next(const struct ts__qsched *s)
{
	return s->heap_count > 0 ? s->heap[0] : NULL;
}

void
ts__qsched_free(struct ts__qsched *s)
{
	struct ts__qentry *e = s->all;
	while (e != NULL) {
		struct ts__qentry *next = e->all_next;
		free(e->domain);
		free(e);
		e = next;
	}
	free(s->buckets);
	free(s->heap);
	memset(s, 0, sizeof(*s));
}
