/*
 * modules/imap/store-cmd.c — commands that change messages of the
 * selected mailbox: STORE (+FLAGS, -FLAGS, .SILENT, UNCHANGEDSINCE),
 * COPY and MOVE (UIDPLUS COPYUID), EXPUNGE, UID EXPUNGE and CLOSE.
 *
 * The changes themselves come back as store notifications (notify.c),
 * which mark messages dirty or expunged; imap_done then sends the FETCH,
 * EXPUNGE or VANISHED responses before the tagged reply.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

/* The UIDs of the visible messages at idx. */
static uint32_t *
imap_uids_of(const struct imap_session *s, const size_t *idx, size_t count)
{
	uint32_t *uids = ts_xmalloc((count + 1) * sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = s->msgs[idx[i]].uid;
	return uids;
}

/* --- STORE -----------------------------------------------------------------
 */

struct imap_store_op {
	struct imap_session *s;
	size_t *idx;
	size_t count;
};

/* A keyword list minus the words of another (both space separated). */
static char *
imap_keywords_minus(const char *all, const char *minus)
{
	char *out = ts_xstrdup("");
	char *copy = ts_xstrdup(all != NULL ? all : "");
	for (char *w = strtok(copy, " "); w != NULL; w = strtok(NULL, " ")) {
		bool skip = false;
		char *m = ts_xstrdup(minus);
		for (char *v = strtok(m, " "); v != NULL && !skip;
		     v = strtok(NULL, " "))
			skip = strcasecmp(v, w) == 0;
		free(m);
		if (skip)
			continue;
		char *t = ts_xasprintf("%s%s%s", out, out[0] ? " " : "", w);
		free(out);
		out = t;
	}
	free(copy);
	return out;
}

static void
imap_store_done(int status, const char *error, const uint32_t *modified,
		size_t count, void *arg)
{
	struct imap_store_op *op = arg;
	struct imap_session *s = op->s;
	if (imap_store_unref(s)) {
		free(op->idx);
		free(op);
		return;
	}
	if (status != 0) {
		free(op->idx);
		free(op);
		imap_done(s, "NO [SERVERBUG] %s",
			  error != NULL ? error : "cannot store flags");
		return;
	}
	/* Every message named gets its FETCH (RFC 3501 6.4.6), unless
	 * .SILENT; a conditional store's losers are reported instead. */
	for (size_t i = 0; i < op->count; i++) {
		struct imap_msg *m = &s->msgs[op->idx[i]];
		bool lost = false;
		for (size_t j = 0; j < count && !lost; j++)
			lost = modified[j] == m->uid;
		if (!s->cmd.silent && !lost && !m->expunged) {
			m->dirty = true;
		} else if (s->cmd.silent && !lost) {
			m->dirty = false;
			/* RFC 7162 3.1.3: .SILENT still reports the new
			 * MODSEQ to a CONDSTORE client. */
			if (s->condstore && !m->expunged)
				imap_send(s,
					  "* %zu FETCH (UID %" PRIu32
					  " MODSEQ (%" PRIu64 "))",
					  op->idx[i] + 1, m->uid, m->modseq);
		}
	}
	free(op->idx);
	free(op);
	if (count == 0) {
		imap_done(s, "OK STORE completed");
		return;
	}
	uint32_t *nums = ts_xmalloc(count * sizeof(*nums));
	size_t n = 0;
	for (size_t j = 0; j < count; j++) {
		if (s->cmd.uid) {
			nums[n++] = modified[j];
		} else {
			long i = imap_msg_index(s, modified[j]);
			if (i >= 0)
				nums[n++] = (uint32_t)(i + 1);
		}
	}
	char *set = imap_uid_set(nums, n);
	free(nums);
	imap_done(s, "OK [MODIFIED %s] conditional STORE failed", set);
	free(set);
}

void
imap_cmd_store(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	if (s->readonly) {
		imap_done(s, "NO [READ-ONLY] mailbox is read-only");
		return;
	}
	size_t *idx, count;
	const char *error;
	if (imap_resolve_set(s, &c->set, c->uid, &idx, &count, &error) != 0) {
		imap_done(s, "BAD %s", error);
		return;
	}
	if (c->has_unchangedsince)
		s->condstore = true;
	if (c->has_unchangedsince && c->unchangedsince == 0) {
		/* Every message has a modseq above 0: all fail (RFC 7162
		 * 3.1.3), and nothing changes. */
		uint32_t *nums = ts_xmalloc((count + 1) * sizeof(*nums));
		for (size_t i = 0; i < count; i++)
			nums[i] = c->uid ? s->msgs[idx[i]].uid
					 : (uint32_t)(idx[i] + 1);
		char *set = imap_uid_set(nums, count);
		free(nums);
		free(idx);
		if (count > 0)
			imap_done(s,
				  "OK [MODIFIED %s] conditional STORE failed",
				  set);
		else
			imap_done(s, "OK STORE completed");
		free(set);
		return;
	}
	struct ts_flag_change ch = { 0 };
	char *remove_kw = NULL;
	const uint32_t all = TS_FLAG_SEEN | TS_FLAG_ANSWERED | TS_FLAG_FLAGGED |
			     TS_FLAG_DELETED | TS_FLAG_DRAFT | TS_FLAG_JUNK |
			     TS_FLAG_NOTJUNK;
	if (c->store_mode > 0) {
		ch.add = c->flags.flags;
		ch.add_keywords = c->flags.keywords;
	} else if (c->store_mode < 0) {
		ch.remove = c->flags.flags;
		ch.remove_keywords = c->flags.keywords;
	} else {
		ch.add = c->flags.flags;
		ch.remove = all & ~c->flags.flags;
		ch.add_keywords = c->flags.keywords;
		/* every keyword in use that is not in the new list */
		char *used = ts_xstrdup(
			s->box_keywords != NULL ? s->box_keywords : "");
		for (size_t i = 0; i < count; i++) {
			char *t = ts_xasprintf("%s %s", used,
					       s->msgs[idx[i]].keywords);
			free(used);
			used = t;
		}
		remove_kw = imap_keywords_minus(used, c->flags.keywords);
		free(used);
		ch.remove_keywords = remove_kw;
	}
	uint32_t *uids = imap_uids_of(s, idx, count);
	struct imap_store_op *op = ts_xcalloc(1, sizeof(*op));
	op->s = s;
	op->idx = idx;
	op->count = count;
	imap_busy(s);
	imap_store_ref(s);
	int rc = ts_store_set_flags_since(
		s->store, s->mailbox, uids, count, &ch,
		c->has_unchangedsince ? c->unchangedsince : 0, imap_store_done,
		op);
	free(uids);
	free(remove_kw);
	if (rc != 0) {
		imap_store_unref(s);
		free(op->idx);
		free(op);
		imap_done(s, "NO [SERVERBUG] cannot store flags");
	}
}

/* --- COPY / MOVE -----------------------------------------------------------
 */

static void
imap_copy_done(int status, const char *error, uint32_t uidvalidity,
	       const uint32_t *src, const uint32_t *dst, size_t count,
	       void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	bool move = s->cmd.cmd == IMAP_CMD_MOVE;
	if (status != 0) {
		bool missing =
			error != NULL && strstr(error, "no such") != NULL;
		imap_done(s, "NO [%s] %s", missing ? "TRYCREATE" : "SERVERBUG",
			  error != NULL ? error : "failed");
		return;
	}
	if (count == 0) {
		imap_done(s, "OK %s completed", move ? "MOVE" : "COPY");
		return;
	}
	char *a = imap_uid_set(src, count);
	char *b = imap_uid_set(dst, count);
	if (move) {
		/* RFC 6851: COPYUID untagged, before the expunges. */
		imap_send(s, "* OK [COPYUID %" PRIu32 " %s %s] moved",
			  uidvalidity, a, b);
		imap_done(s, "OK MOVE completed");
	} else {
		imap_done(s, "OK [COPYUID %" PRIu32 " %s %s] COPY completed",
			  uidvalidity, a, b);
	}
	free(a);
	free(b);
}

void
imap_cmd_copy(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	bool move = c->cmd == IMAP_CMD_MOVE;
	if (move && s->readonly) {
		imap_done(s, "NO [READ-ONLY] mailbox is read-only");
		return;
	}
	size_t *idx, count;
	const char *error;
	if (imap_resolve_set(s, &c->set, c->uid, &idx, &count, &error) != 0) {
		imap_done(s, "BAD %s", error);
		return;
	}
	uint32_t *uids = imap_uids_of(s, idx, count);
	free(idx);
	imap_busy(s);
	imap_store_ref(s);
	int rc = ts_store_copy_uids(s->store, s->mailbox, uids, count,
				    c->mailbox, move, imap_copy_done, s);
	free(uids);
	if (rc != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [SERVERBUG] cannot copy");
	}
}

/* --- EXPUNGE / CLOSE -------------------------------------------------------
 */

static void
imap_expunge_done(int status, const char *error, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	if (s->cmd.cmd == IMAP_CMD_CLOSE) {
		/* CLOSE expunges without telling (RFC 3501 6.4.2). */
		imap_unselect(s);
		imap_done(s, "OK CLOSE completed");
		return;
	}
	if (status != 0)
		imap_done(s, "NO [SERVERBUG] %s",
			  error != NULL ? error : "cannot expunge");
	else
		imap_done(s, "OK EXPUNGE completed");
}

/* Expunge the \Deleted messages among idx (all visible when idx NULL). */
static void
imap_expunge_deleted(struct imap_session *s, const size_t *idx, size_t count)
{
	size_t n = idx != NULL ? count : s->exists;
	uint32_t *uids = ts_xmalloc((n + 1) * sizeof(*uids));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct imap_msg *m = &s->msgs[idx != NULL ? idx[i] : i];
		if ((m->flags & TS_FLAG_DELETED) && !m->expunged)
			uids[k++] = m->uid;
	}
	imap_busy(s);
	imap_store_ref(s);
	int rc = ts_store_expunge(s->store, s->mailbox, uids, k,
				  imap_expunge_done, s);
	free(uids);
	if (rc != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [SERVERBUG] cannot expunge");
	}
}

void
imap_cmd_expunge(struct imap_session *s)
{
	if (s->readonly) {
		imap_done(s, "NO [READ-ONLY] mailbox is read-only");
		return;
	}
	if (!s->cmd.uid) {
		imap_expunge_deleted(s, NULL, 0);
		return;
	}
	size_t *idx, count;
	const char *error;
	if (imap_resolve_set(s, &s->cmd.set, true, &idx, &count, &error) != 0) {
		imap_done(s, "BAD %s", error);
		return;
	}
	imap_expunge_deleted(s, idx, count);
	free(idx);
}

void
imap_cmd_close(struct imap_session *s)
{
	if (s->readonly) {
		imap_unselect(s);
		imap_done(s, "OK CLOSE completed");
		return;
	}
	imap_expunge_deleted(s, NULL, 0);
}
