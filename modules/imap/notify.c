/*
 * modules/imap/notify.c — the selected mailbox as the client sees it, kept
 * current from the store's change notifications, and IDLE.
 *
 * Changes (from this session, other sessions, deliveries) are applied to
 * s->msgs as they are committed: a new message is appended (announced
 * later with EXISTS), a flag change marks the message dirty (a FETCH
 * later), an expunge marks it expunged.  imap_flush_updates tells the
 * client at the moments IMAP allows: after a command (never an EXPUNGE
 * after FETCH, STORE or SEARCH, RFC 3501 section 7.4.1) and at once while
 * IDLE.  With QRESYNC enabled expunges go out as VANISHED.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

void
imap_msgs_clear(struct imap_session *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->msgs[i].keywords);
	free(s->msgs);
	s->msgs = NULL;
	s->count = s->alloc = s->exists = 0;
	for (size_t i = 0; i < s->early_count; i++) {
		free((char *)s->early[i].mailbox);
		free((char *)s->early[i].keywords);
	}
	free(s->early);
	s->early = NULL;
	s->early_count = 0;
}

/* Index of uid in s->msgs (all of them, announced or not), or -1. */
static long
imap_find_uid(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->msgs[mid].uid == uid)
			return (long)mid;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

long
imap_msg_index(const struct imap_session *s, uint32_t uid)
{
	long i = imap_find_uid(s, uid);
	return i >= 0 && (size_t)i < s->exists ? i : -1;
}

static void
imap_msg_remove(struct imap_session *s, size_t i)
{
	if (s->msgs[i].recent && s->recent_count > 0)
		s->recent_count--;
	free(s->msgs[i].keywords);
	memmove(&s->msgs[i], &s->msgs[i + 1],
		(s->count - i - 1) * sizeof(*s->msgs));
	s->count--;
}

void
imap_apply_changes(struct imap_session *s,
		   const struct ts_store_change *changes, size_t count,
		   bool silent)
{
	for (size_t i = 0; i < count; i++) {
		const struct ts_store_change *c = &changes[i];
		if (c->mailbox == NULL || s->mailbox == NULL)
			continue;
		if (c->kind == TS_CHANGE_MAILBOX_RENAMED &&
		    c->old_name != NULL &&
		    strcmp(c->old_name, s->mailbox) == 0) {
			free(s->mailbox);
			s->mailbox = ts_xstrdup(c->mailbox);
			continue;
		}
		if (strcmp(c->mailbox, s->mailbox) != 0)
			continue;
		if (c->kind == TS_CHANGE_MAILBOX_DELETED) {
			/* Deleted under us: its messages are gone. */
			for (size_t k = 0; k < s->count; k++)
				s->msgs[k].expunged = true;
			continue;
		}
		if (c->modseq > s->highest_modseq)
			s->highest_modseq = c->modseq;
		long idx;
		switch (c->kind) {
		case TS_CHANGE_ADDED:
			if (imap_find_uid(s, c->uid) >= 0 ||
			    (s->count > 0 &&
			     s->msgs[s->count - 1].uid > c->uid))
				break;
			if (s->count == s->alloc) {
				s->alloc = s->alloc != 0 ? s->alloc * 2 : 16;
				s->msgs = ts_xrealloc(
					s->msgs, s->alloc * sizeof(*s->msgs));
			}
			/* id, size and date come with imap_msgs_fill */
			s->msgs[s->count++] = (struct imap_msg){
				.uid = c->uid,
				.flags = c->flags,
				.keywords = ts_xstrdup(
					c->keywords != NULL ? c->keywords : ""),
				.modseq = c->modseq,
				/* At SELECT (silent) imap_recent_select
				 * decides, for every message at once. */
				.recent = !silent &&
					  imap_recent_claim(s, c->uid),
			};
			if (s->msgs[s->count - 1].recent)
				s->recent_count++;
			if (c->uid >= s->uidnext)
				s->uidnext = c->uid + 1;
			if (silent)
				s->exists = s->count;
			break;
		case TS_CHANGE_FLAGS:
			idx = imap_find_uid(s, c->uid);
			if (idx < 0 || s->msgs[idx].modseq >= c->modseq)
				break;
			s->msgs[idx].flags = c->flags;
			free(s->msgs[idx].keywords);
			s->msgs[idx].keywords = ts_xstrdup(
				c->keywords != NULL ? c->keywords : "");
			s->msgs[idx].modseq = c->modseq;
			s->msgs[idx].dirty = !silent;
			break;
		case TS_CHANGE_EXPUNGED:
			idx = imap_find_uid(s, c->uid);
			if (idx < 0)
				break;
			if (silent) {
				if ((size_t)idx < s->exists)
					s->exists--;
				imap_msg_remove(s, (size_t)idx);
			} else {
				s->msgs[idx].expunged = true;
			}
			break;
		case TS_CHANGE_MAILBOX_KEYWORDS:
			free(s->box_keywords);
			s->box_keywords = ts_xstrdup(
				c->keywords != NULL ? c->keywords : "");
			s->keywords_dirty = !silent;
			break;
		default:
			break;
		}
	}
}

char *
imap_uid_set(const uint32_t *uids, size_t count)
{
	size_t cap = 64, len = 0;
	char *out = ts_xmalloc(cap);
	out[0] = '\0';
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		char piece[32];
		int n = j > i ? snprintf(piece, sizeof(piece),
					 "%s%" PRIu32 ":%" PRIu32,
					 len ? "," : "", uids[i], uids[j])
			      : snprintf(piece, sizeof(piece), "%s%" PRIu32,
					 len ? "," : "", uids[i]);
		if (len + (size_t)n + 1 > cap) {
			cap = (len + (size_t)n + 1) * 2;
			out = ts_xrealloc(out, cap);
		}
		memcpy(out + len, piece, (size_t)n + 1);
		len += (size_t)n;
		i = j + 1;
	}
	return out;
}

void
imap_flush_updates(struct imap_session *s, bool allow_expunge)
{
	if (s->state != IMAP_SELECTED || s->closed)
		return;
	if (allow_expunge) {
		uint32_t *vanished = NULL;
		size_t nv = 0;
		for (size_t i = s->count; i-- > 0;) {
			if (!s->msgs[i].expunged)
				continue;
			if (i < s->exists) {
				if (s->qresync) {
					vanished = ts_xrealloc(
						vanished,
						(nv + 1) * sizeof(*vanished));
					vanished[nv++] = s->msgs[i].uid;
				} else {
					imap_send(s, "* %zu EXPUNGE", i + 1);
				}
				s->exists--;
			}
			imap_msg_remove(s, i);
		}
		if (nv > 0) {
			/* collected descending */
			for (size_t i = 0; i < nv / 2; i++) {
				uint32_t t = vanished[i];
				vanished[i] = vanished[nv - 1 - i];
				vanished[nv - 1 - i] = t;
			}
			char *set = imap_uid_set(vanished, nv);
			imap_send(s, "* VANISHED %s", set);
			free(set);
		}
		free(vanished);
	}
	if (s->keywords_dirty) {
		s->keywords_dirty = false;
		char *kw = imap_flags_str(
			TS_FLAG_SEEN | TS_FLAG_ANSWERED | TS_FLAG_FLAGGED |
				TS_FLAG_DELETED | TS_FLAG_DRAFT | TS_FLAG_JUNK |
				TS_FLAG_NOTJUNK,
			s->box_keywords);
		imap_send(s, "* FLAGS (%s)", kw);
		if (!s->readonly)
			imap_send(s, "* OK [PERMANENTFLAGS (%s \\*)] flags",
				  kw);
		free(kw);
	}
	if (s->count > s->exists) {
		s->exists = s->count;
		imap_send(s, "* %zu EXISTS", s->exists);
		if (!s->rev2)
			imap_send(s, "* %zu RECENT", s->recent_count);
	}
	for (size_t i = 0; i < s->exists; i++) {
		struct imap_msg *m = &s->msgs[i];
		if (!m->dirty || m->expunged)
			continue;
		m->dirty = false;
		char *f = imap_msg_flags_str(m);
		if (s->condstore)
			imap_send(s,
				  "* %zu FETCH (UID %" PRIu32 " FLAGS (%s) "
				  "MODSEQ (%" PRIu64 "))",
				  i + 1, m->uid, f, m->modseq);
		else
			imap_send(s, "* %zu FETCH (UID %" PRIu32 " FLAGS (%s))",
				  i + 1, m->uid, f);
		free(f);
	}
}

/* --- the subscription ----------------------------------------------------- */

static void
imap_changes(const struct ts_store_change *changes, size_t count, void *arg)
{
	struct imap_session *s = arg;
	if (s->closed || s->mailbox == NULL)
		return;
	if (s->selecting) {
		/* Kept for imap_select_messages, which folds them in. */
		for (size_t i = 0; i < count; i++) {
			const struct ts_store_change *c = &changes[i];
			if (c->mailbox == NULL ||
			    strcmp(c->mailbox, s->mailbox) != 0)
				continue;
			s->early = ts_xrealloc(s->early,
					       (s->early_count + 1) *
						       sizeof(*s->early));
			struct ts_store_change *e = &s->early[s->early_count++];
			*e = *c;
			e->mailbox = ts_xstrdup(c->mailbox);
			e->keywords = c->keywords != NULL
					      ? ts_xstrdup(c->keywords)
					      : NULL;
			e->old_name = NULL;
			e->special_use = NULL;
		}
		return;
	}
	if (s->state != IMAP_SELECTED)
		return;
	imap_apply_changes(s, changes, count, false);
	if (s->input == IMAP_IN_IDLE)
		imap_flush_updates(s, true);
}

void
imap_notify_attach(struct imap_session *s)
{
	if (s->sub == NULL)
		s->sub = ts_store_subscribe(s->store, imap_changes, s);
}

void
imap_notify_detach(struct imap_session *s)
{
	ts_store_unsubscribe(&s->sub);
}

/* --- sequence sets -------------------------------------------------------- */

int
imap_resolve_set(struct imap_session *s, const struct imap_seqset *set,
		 bool uid, size_t **idx_r, size_t *count_r,
		 const char **error_r)
{
	*idx_r = NULL;
	*count_r = 0;
	size_t n = s->exists;
	size_t *out = ts_xmalloc((n != 0 ? n : 1) * sizeof(*out));
	size_t k = 0;
	if (set->saved) {
		if (!s->saved_valid) {
			free(out);
			*error_r = "no saved search result";
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < s->saved_count; j++) {
				if (s->saved[j] == s->msgs[i].uid) {
					out[k++] = i;
					break;
				}
			}
		}
		*idx_r = out;
		*count_r = k;
		return 0;
	}
	if (uid) {
		uint32_t max = n > 0 ? s->msgs[n - 1].uid : 0;
		for (size_t i = 0; i < n; i++)
			if (imap_seqset_contains(set, s->msgs[i].uid, max))
				out[k++] = i;
		*idx_r = out;
		*count_r = k;
		return 0;
	}
	for (size_t r = 0; r < set->count; r++) {
		uint32_t lo = set->ranges[r].lo, hi = set->ranges[r].hi;
		if ((lo != IMAP_STAR && lo > n) ||
		    (hi != IMAP_STAR && hi > n) || n == 0) {
			free(out);
			*error_r = "invalid message sequence number";
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (imap_seqset_contains(set, (uint32_t)(i + 1), (uint32_t)n))
			out[k++] = i;
	*idx_r = out;
	*count_r = k;
	return 0;
}

/* --- IDLE ----------------------------------------------------------------- */

static void
imap_idle_timeout(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct imap_session *s = arg;
	imap_send(s, "* BYE IDLE lasted too long");
	s->state = IMAP_LOGOUT;
	ts_conn_close(s->conn, "idle timeout");
}

void
imap_cmd_idle(struct imap_session *s)
{
	imap_send(s, "+ idling");
	s->input = IMAP_IN_IDLE;
	imap_flush_updates(s, true);
	if (s->idle_timer == NULL)
		s->idle_timer = ts_timer_new(s->ctx, imap_idle_timeout, s);
	ts_timer_start(s->idle_timer, imap_settings(s->ctx)->idle_timeout_ms,
		       0);
}

void
imap_idle_stop(struct imap_session *s)
{
	if (s->idle_timer != NULL)
		ts_timer_stop(s->idle_timer);
}

void
imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	imap_idle_stop(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_done(s, "OK IDLE terminated");
	else
		imap_done(s, "BAD expected DONE");
}

/* --- completing messages known only from a notification ------------------ */

static void
imap_fill_messages(int status, const struct ts_message_info *messages,
		   size_t count, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	for (size_t i = 0; status == 0 && i < count; i++) {
		long idx = imap_find_uid(s, messages[i].uid);
		if (idx < 0)
			continue;
		struct imap_msg *m = &s->msgs[idx];
		m->id = messages[i].id;
		m->size = messages[i].size;
		m->received = messages[i].received;
	}
	/* Still unknown: gone meanwhile; its expunge is on its way. */
	for (size_t i = 0; i < s->count; i++)
		if (s->msgs[i].id == 0)
			s->msgs[i].expunged = true;
	void (*cb)(struct imap_session *) = s->fill_cb;
	s->fill_cb = NULL;
	cb(s);
}

void
imap_msgs_fill(struct imap_session *s, void (*cb)(struct imap_session *s))
{
	uint32_t lo = UINT32_MAX, hi = 0;
	for (size_t i = 0; i < s->count; i++) {
		if (s->msgs[i].id != 0 || s->msgs[i].expunged)
			continue;
		if (s->msgs[i].uid < lo)
			lo = s->msgs[i].uid;
		if (s->msgs[i].uid > hi)
			hi = s->msgs[i].uid;
	}
	if (hi == 0) {
		cb(s);
		return;
	}
	s->fill_cb = cb;
	imap_store_ref(s);
	if (ts_store_messages(s->store, s->mailbox, lo, hi, imap_fill_messages,
			      s) != 0) {
		imap_store_unref(s);
		s->fill_cb = NULL;
		cb(s);
	}
}
