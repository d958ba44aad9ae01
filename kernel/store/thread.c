/*
 * kernel/store/thread.c — placing a new message in a conversation thread.
 *
 * Inside the caller's write transaction, ts__thread_assign finds the new
 * message's parent among the account's messages: by its References and
 * In-Reply-To ids (the nearest one present, same base subject required),
 * else by base subject among the messages of the last four weeks.  A
 * message stores its thread's root id, the ids of its ancestors and
 * whether a link in between is missing; muted and collapsed come from the
 * parent.  When a parent arrives after its replies, the replies waiting
 * for it (table thread_pending) move under it.
 *
 * Parsing the header that feeds this is thread-header.c's job; writing
 * the new message's own row is the caller's (ts__store_add_message).
 * Every lookup goes through an index: message_id, (subject_base,
 * received), thread_id, thread_pending(ref).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/store/store-private.h"

/* Subject-only matching looks this far back from the new message. */
#define THREAD_SUBJECT_WINDOW (28 * 24 * 3600)

/* A message that may become the parent. */
struct thread_row {
	int64_t id;
	int64_t thread_id;
	char *subject_base;
	char *parent_ids;
	bool muted, collapsed;
};

static void
thread_row_free(struct thread_row *row)
{
	free(row->subject_base);
	free(row->parent_ids);
	memset(row, 0, sizeof(*row));
}

static int
thread_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return TS_E_IO;
	}
	return 0;
}

static char *
thread_column_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return ts_xstrdup(t != NULL ? (const char *)t : "");
}

/*
 * Step a statement selecting id, thread_id, subject_base,
 * thread_parent_ids, thread_muted, thread_collapsed into *row.  Returns 1
 * with a row, 0 without, TS_E_IO on error.
 */
static int
thread_step_row(sqlite3_stmt *st, struct thread_row *row)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return TS_E_IO;
	row->id = sqlite3_column_int64(st, 0);
	row->thread_id = sqlite3_column_int64(st, 1);
	row->subject_base = thread_column_text(st, 2);
	row->parent_ids = thread_column_text(st, 3);
	row->muted = sqlite3_column_int(st, 4) != 0;
	row->collapsed = sqlite3_column_int(st, 5) != 0;
	return 1;
}

#define THREAD_ROW_COLUMNS                                              \
	"id, thread_id, subject_base, thread_parent_ids, thread_muted," \
	" thread_collapsed"

/*
 * Look up each reference from the nearest (the direct parent, last) to the
 * oldest; the first one present is the nearest known ancestor.  When
 * several rows carry that Message-ID (copies in several mailboxes, a
 * duplicate delivery) the oldest counts.  *distance_r is its distance
 * from the end of the list (0: the direct parent), -1 if none is present.
 */
static int
thread_find_reference(sqlite3 *db, int64_t id,
		      const struct ts__thread_headers *h,
		      struct thread_row *row, int64_t *distance_r)
{
	sqlite3_stmt *st;
	int rc = thread_prepare(db,
				"SELECT " THREAD_ROW_COLUMNS " FROM messages"
				" WHERE message_id = ?1 AND id != ?2"
				" ORDER BY received, id LIMIT 1",
				&st);
	*distance_r = -1;
	if (rc < 0)
		return rc;
	for (size_t d = 0; d < h->reference_count; d++) {
		const char *ref = h->references[h->reference_count - 1 - d];
		if (ref[0] == '\0' || strcmp(ref, h->message_id) == 0)
			continue; /* a message is not its own parent */
		sqlite3_reset(st);
		if (sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC) !=
			    SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, id) != SQLITE_OK) {
			rc = TS_E_IO;
			break;
		}
		rc = thread_step_row(st, row);
		if (rc < 0)
			break;
		if (rc == 1) {
			*distance_r = (int64_t)d;
			rc = 0;
			break;
		}
	}
	ts__store_finalize(st);
	return rc < 0 ? rc : 0;
}

/*
 * The most recently received message with the same (non-empty) base
 * subject within the window before `received`.  Returns 1 with *row, 0
 * when there is none, or TS_E_IO.
 */
static int
thread_find_subject(sqlite3 *db, int64_t id, int64_t received,
		    const char *subject_base, struct thread_row *row)
{
	sqlite3_stmt *st;
	int rc = thread_prepare(
		db,
		"SELECT " THREAD_ROW_COLUMNS " FROM messages"
		" WHERE subject_base = ?1 AND received BETWEEN ?2 AND ?3"
		" AND id != ?4 ORDER BY received DESC, id DESC LIMIT 1",
		&st);
	if (rc < 0)
		return rc;
	if (sqlite3_bind_text(st, 1, subject_base, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, received - THREAD_SUBJECT_WINDOW) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, received) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, id) != SQLITE_OK)
		rc = TS_E_IO;
	else
		rc = thread_step_row(st, row);
	ts__store_finalize(st);
	return rc;
}

/* "ids id": a parent's parent ids with the parent appended. */
static char *
thread_child_parent_ids(const char *parent_ids, int64_t parent)
{
	return ts_xasprintf("%s%s%" PRId64, parent_ids,
			    parent_ids[0] != '\0' ? " " : "", parent);
}

/* Whether the space separated list holds id. */
static bool
thread_ids_hold(const char *list, int64_t id)
{
	const char *p = list;
	while (*p != '\0') {
		char *end;
		long long v = strtoll(p, &end, 10);
		if (end == p)
			return false;
		if (v == id)
			return true;
		p = end;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Whether the message references any message but itself. */
static bool
thread_has_references(const struct ts__thread_headers *h)
{
	for (size_t k = 0; k < h->reference_count; k++)
		if (h->references[k][0] != '\0' &&
		    strcmp(h->references[k], h->message_id) != 0)
			return true;
	return false;
}

/*
 * Remember the references nearer than the ancestor found (all of them when
 * none was), so a parent arriving later finds this message.
 */
static int
thread_remember_pending(sqlite3 *db, int64_t id,
			const struct ts__thread_headers *h, size_t nearer)
{
	sqlite3_stmt *st;
	int rc = thread_prepare(db,
				"INSERT OR IGNORE INTO thread_pending"
				" (message, distance, ref) VALUES (?1, ?2, ?3)",
				&st);
	if (rc < 0)
		return rc;
	for (size_t d = 0; d < nearer && rc == 0; d++) {
		const char *ref = h->references[h->reference_count - 1 - d];
		if (ref[0] == '\0' || strcmp(ref, h->message_id) == 0)
			continue;
		sqlite3_reset(st);
		if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, (int64_t)d) != SQLITE_OK ||
		    sqlite3_bind_text(st, 3, ref, -1, SQLITE_STATIC) !=
			    SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE)
			rc = TS_E_IO;
	}
	ts__store_finalize(st);
	return rc;
}

/* A message waiting for the new one as its parent. */
struct thread_waiting {
	int64_t id, distance, thread_id;
	char *parent_ids;
	bool muted, collapsed;
};

struct thread_waiters {
	struct thread_waiting *v;
	size_t n;
};

static void
thread_waiters_free(struct thread_waiters *ws)
{
	for (size_t k = 0; k < ws->n; k++)
		free(ws->v[k].parent_ids);
	free(ws->v);
	memset(ws, 0, sizeof(*ws));
}

/*
 * The replies that arrived before the new message and wait for it: it is
 * one of their missing references, nearer than the ancestor they hang
 * under, and they share its base subject.  Ordered by id (arrival).
 */
static int
thread_load_waiters(sqlite3 *db, int64_t id, const struct ts__thread_headers *h,
		    struct thread_waiters *ws)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc = thread_prepare(
		db,
		"SELECT p.message, p.distance, m.thread_id,"
		" m.thread_parent_ids, m.thread_muted, m.thread_collapsed"
		" FROM thread_pending p JOIN messages m ON m.id = p.message"
		" WHERE p.ref = ?1 AND m.subject_base = ?2 AND m.id != ?3"
		" ORDER BY p.message, p.distance",
		&st);
	if (rc < 0)
		return rc;
	if (sqlite3_bind_text(st, 1, h->message_id, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_text(st, 2, h->subject_base, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, id) != SQLITE_OK)
		rc = TS_E_IO;
	while (rc == 0) {
		int step = sqlite3_step(st);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = TS_E_IO;
			break;
		}
		int64_t message = sqlite3_column_int64(st, 0);
		/* The same id twice in References: the nearest counts. */
		if (ws->n > 0 && ws->v[ws->n - 1].id == message)
			continue;
		if (ws->n == cap) {
			cap = cap ? cap * 2 : 8;
			ws->v = ts_xrealloc(ws->v, cap * sizeof(*ws->v));
		}
		struct thread_waiting *w = &ws->v[ws->n++];
		w->id = message;
		w->distance = sqlite3_column_int64(st, 1);
		w->thread_id = sqlite3_column_int64(st, 2);
		w->parent_ids = thread_column_text(st, 3);
		w->muted = sqlite3_column_int(st, 4) != 0;
		w->collapsed = sqlite3_column_int(st, 5) != 0;
	}
	ts__store_finalize(st);
	return rc;
}

/*
 * Move every descendant of `child` (old ancestors old_parent_ids, old
 * thread old_thread) to the new place: their parent ids start with
 * "old_parent_ids child"; that prefix becomes "new_parent_ids child".
 * Descendants share the child's thread, so the thread_id index bounds
 * the search to that thread.
 */
static int
thread_move_descendants(sqlite3 *db, int64_t child, int64_t old_thread,
			const char *old_parent_ids, int64_t new_thread,
			const char *new_parent_ids)
{
	char *old_prefix = thread_child_parent_ids(old_parent_ids, child);
	char *new_prefix = thread_child_parent_ids(new_parent_ids, child);
	size_t old_len = strlen(old_prefix);
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rc = thread_prepare(db,
				"SELECT id, thread_parent_ids FROM messages"
				" WHERE thread_id = ?1 AND id != ?2",
				&sel);
	if (rc == 0)
		rc = thread_prepare(db,
				    "UPDATE messages SET thread_id = ?1,"
				    " thread_parent_ids = ?2 WHERE id = ?3",
				    &upd);
	if (rc == 0 && (sqlite3_bind_int64(sel, 1, old_thread) != SQLITE_OK ||
			sqlite3_bind_int64(sel, 2, child) != SQLITE_OK))
		rc = TS_E_IO;

	/* Collect first: updating rows of the index being walked is unsafe. */
	int64_t *ids = NULL;
	char **lists = NULL;
	size_t n = 0, cap = 0;
	while (rc == 0) {
		int step = sqlite3_step(sel);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = TS_E_IO;
			break;
		}
		const char *list = (const char *)sqlite3_column_text(sel, 1);
		if (list == NULL || strncmp(list, old_prefix, old_len) != 0 ||
		    (list[old_len] != '\0' && list[old_len] != ' '))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = ts_xrealloc(ids, cap * sizeof(*ids));
			lists = ts_xrealloc(lists, cap * sizeof(*lists));
		}
		ids[n] = sqlite3_column_int64(sel, 0);
		lists[n] = ts_xasprintf("%s%s", new_prefix, list + old_len);
		n++;
	}
	for (size_t k = 0; k < n; k++) {
		if (rc == 0) {
			sqlite3_reset(upd);
			if (sqlite3_bind_int64(upd, 1, new_thread) !=
				    SQLITE_OK ||
			    sqlite3_bind_text(upd, 2, lists[k], -1,
					      SQLITE_STATIC) != SQLITE_OK ||
			    sqlite3_bind_int64(upd, 3, ids[k]) != SQLITE_OK ||
			    sqlite3_step(upd) != SQLITE_DONE)
				rc = TS_E_IO;
		}
		free(lists[k]);
	}
	free(ids);
	free(lists);
	ts__store_finalize(sel);
	ts__store_finalize(upd);
	free(old_prefix);
	free(new_prefix);
	return rc;
}

/* Put one waiting message (and its subtree) under the new message. */
static int
thread_adopt(sqlite3 *db, int64_t id, const struct ts__thread_result *r,
	     const struct thread_waiting *w)
{
	char *parent_ids = thread_child_parent_ids(r->parent_ids, id);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (w->thread_id != 0)
		rc = thread_move_descendants(db, w->id, w->thread_id,
					     w->parent_ids, r->thread_id,
					     parent_ids);
	if (rc == 0)
		rc = thread_prepare(db,
				    "UPDATE messages SET thread_id = ?1,"
				    " thread_parent_ids = ?2,"
				    " thread_missing_link = ?3 WHERE id = ?4",
				    &st);
	if (rc == 0 &&
	    (sqlite3_bind_int64(st, 1, r->thread_id) != SQLITE_OK ||
	     sqlite3_bind_text(st, 2, parent_ids, -1, SQLITE_STATIC) !=
		     SQLITE_OK ||
	     sqlite3_bind_int(st, 3, w->distance != 0) != SQLITE_OK ||
	     sqlite3_bind_int64(st, 4, w->id) != SQLITE_OK ||
	     sqlite3_step(st) != SQLITE_DONE))
		rc = TS_E_IO;
	ts__store_finalize(st);
	st = NULL;
	/* References as far as the new parent no longer matter. */
	if (rc == 0)
		rc = thread_prepare(db,
				    "DELETE FROM thread_pending"
				    " WHERE message = ?1 AND distance >= ?2",
				    &st);
	if (rc == 0 && (sqlite3_bind_int64(st, 1, w->id) != SQLITE_OK ||
			sqlite3_bind_int64(st, 2, w->distance) != SQLITE_OK ||
			sqlite3_step(st) != SQLITE_DONE))
		rc = TS_E_IO;
	ts__store_finalize(st);
	free(parent_ids);
	return rc;
}

/*
 * Move the waiting messages with their subtrees under the new message.
 * Muted and collapsed of the moved messages stay as they were.  A waiter
 * that is an ancestor of the new message is left alone (hostile
 * References could otherwise make a cycle).
 */
static int
thread_adopt_waiters(sqlite3 *db, int64_t id, const struct ts__thread_result *r,
		     const struct thread_waiters *ws)
{
	int rc = 0;
	for (size_t k = 0; k < ws->n && rc == 0; k++)
		if (!thread_ids_hold(r->parent_ids, ws->v[k].id))
			rc = thread_adopt(db, id, r, &ws->v[k]);
	return rc;
}

/*
 * The rules (after the Go mail server mox):
 * - References are walked from the direct parent (last) back to the root;
 *   the first message present is the nearest known ancestor.  If its base
 *   subject equals the new message's, it is the parent; if not, the
 *   conversation changed topic and the new message starts its own thread.
 * - With no reference present (or none at all): if replies to this
 *   message arrived before it (see below), it takes the place of the
 *   oldest of them and they move under it.  Else the most recently
 *   received message of the last 4 weeks with the same non-empty base
 *   subject becomes the parent.  We hang the message under that latest
 *   message rather than under the thread's root: a conversation whose
 *   references got lost reads best in arrival order, and the latest
 *   message is the likeliest one answered.
 * - Otherwise the message is the root of a new thread.
 * missing_link means "this message has a direct parent (its last
 * reference) that is not in the account": true when the ancestor found
 * is not the direct parent, or nothing was found although there were
 * references (a subject match does not clear it).  Such messages remember
 * their nearer references in thread_pending; a later arrival with one of
 * those ids and the same base subject adopts them, with their subtrees.
 */
int
ts__thread_assign(sqlite3 *db, int64_t id, int64_t received,
		  const struct ts__thread_headers *h,
		  struct ts__thread_result *r)
{
	struct thread_row parent = { 0 };
	struct thread_waiters waiters = { 0 };
	int64_t distance;
	bool have_parent = false;
	size_t nearer; /* references to remember as pending */
	struct ts__thread_headers hh = *h;
	if (hh.subject_base == NULL)
		hh.subject_base = (char *)"";
	if (hh.message_id == NULL)
		hh.message_id = (char *)"";

	memset(r, 0, sizeof(*r));
	int rc = thread_find_reference(db, id, &hh, &parent, &distance);
	if (rc == 0 && hh.message_id[0] != '\0')
		rc = thread_load_waiters(db, id, &hh, &waiters);
	if (rc < 0)
		goto out;
	if (distance >= 0) {
		have_parent = strcmp(parent.subject_base, hh.subject_base) == 0;
		r->missing_link = distance != 0;
		nearer = (size_t)distance;
	} else {
		r->missing_link = thread_has_references(&hh);
		nearer = hh.reference_count;
		if (waiters.n > 0) {
			/*
			 * Slot in above the oldest reply, in its place.  When
			 * that reply was a root, this message becomes the
			 * root and its id the thread's (adopting the reply
			 * moves the whole thread).
			 */
			const struct thread_waiting *w = &waiters.v[0];
			r->thread_id = w->thread_id != 0 ? w->thread_id : w->id;
			if (w->parent_ids[0] == '\0')
				r->thread_id = id;
			r->parent_ids = ts_xstrdup(w->parent_ids);
			r->muted = w->muted;
			r->collapsed = w->collapsed;
		} else if (hh.subject_base[0] != '\0') {
			rc = thread_find_subject(db, id, received,
						 hh.subject_base, &parent);
			if (rc < 0)
				goto out;
			have_parent = rc == 1;
		}
	}

	if (have_parent) {
		/* A row the caller never threaded counts as its own root. */
		r->thread_id =
			parent.thread_id != 0 ? parent.thread_id : parent.id;
		r->parent_ids =
			thread_child_parent_ids(parent.parent_ids, parent.id);
		r->muted = parent.muted;
		r->collapsed = parent.collapsed;
	} else if (r->parent_ids == NULL) {
		r->thread_id = id;
		r->parent_ids = ts_xstrdup("");
	}

	rc = 0;
	if (r->missing_link && nearer > 0)
		rc = thread_remember_pending(db, id, &hh, nearer);
	if (rc == 0)
		rc = thread_adopt_waiters(db, id, r, &waiters);
out:
	thread_row_free(&parent);
	thread_waiters_free(&waiters);
	if (rc < 0) {
		free(r->parent_ids);
		memset(r, 0, sizeof(*r));
	}
	return rc < 0 ? rc : 0;
}
