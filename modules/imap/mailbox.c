/*
 * modules/imap/mailbox.c — commands on mailboxes as wholes: SELECT and
 * EXAMINE (with CONDSTORE and QRESYNC), CREATE (with USE), DELETE,
 * RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (LIST-EXTENDED, SPECIAL-USE,
 * CHILDREN, LIST-STATUS), LSUB, STATUS and APPEND.
 *
 * Each asks the store (tessera/store.h) and answers from its callback.
 * APPEND writes the literal to a spool file on the work pool, then hands
 * it to ts_store_deliver, which makes it durable before APPENDUID goes
 * out.  Messages, flags and the selected mailbox's live view are in
 * notify.c, fetch.c and store-cmd.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap.h"

char *
imap_flags_str(uint32_t flags, const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ TS_FLAG_SEEN, "\\Seen" },
		{ TS_FLAG_ANSWERED, "\\Answered" },
		{ TS_FLAG_FLAGGED, "\\Flagged" },
		{ TS_FLAG_DELETED, "\\Deleted" },
		{ TS_FLAG_DRAFT, "\\Draft" },
		{ TS_FLAG_JUNK, "$Junk" },
		{ TS_FLAG_NOTJUNK, "$NotJunk" },
	};
	size_t cap = 80 + (keywords != NULL ? strlen(keywords) : 0);
	char *out = ts_xmalloc(cap);
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, names[i].name);
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, keywords);
	}
	return out;
}

char *
imap_msg_flags_str(const struct imap_msg *m)
{
	char *f = imap_flags_str(m->flags, m->keywords);
	if (!m->recent)
		return f;
	char *out = ts_xasprintf("%s%s\\Recent", f, f[0] != '\0' ? " " : "");
	free(f);
	return out;
}

/* Map a store error text to an IMAP response code. */
static const char *
imap_store_code(const char *error)
{
	if (error == NULL)
		return "SERVERBUG";
	if (strstr(error, "no such") != NULL)
		return "NONEXISTENT";
	if (strstr(error, "exist") != NULL)
		return "ALREADYEXISTS";
	if (strstr(error, "special") != NULL)
		return "USEATTR";
	return "CANNOT";
}

static const struct ts_mailbox_info *
imap_find_box(const struct ts_mailbox_info *boxes, size_t count,
	      const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(boxes[i].name, name) == 0)
			return &boxes[i];
	return NULL;
}

/* --- SELECT / EXAMINE ---------------------------------------------------- */

void
imap_unselect(struct imap_session *s)
{
	if (s->state != IMAP_SELECTED)
		return;
	imap_msgs_clear(s);
	free(s->mailbox);
	s->mailbox = NULL;
	free(s->special_use);
	s->special_use = NULL;
	free(s->box_keywords);
	s->box_keywords = NULL;
	free(s->saved);
	s->saved = NULL;
	s->saved_count = 0;
	s->saved_valid = false;
	s->state = IMAP_AUTHENTICATED;
}

static void
imap_select_boxes(int status, const struct ts_mailbox_info *boxes, size_t count,
		  void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	const struct ts_mailbox_info *b =
		status == 0 ? imap_find_box(boxes, count, s->mailbox) : NULL;
	if (b == NULL)
		return; /* the message list reports it */
	s->uidvalidity = b->uidvalidity;
	s->uidnext = b->uidnext;
	if (b->highest_modseq > s->highest_modseq)
		s->highest_modseq = b->highest_modseq;
	free(s->box_keywords);
	s->box_keywords = ts_xstrdup(b->keywords != NULL ? b->keywords : "");
	free(s->special_use);
	s->special_use =
		b->special_use != NULL ? ts_xstrdup(b->special_use) : NULL;
}

static void
imap_select_send_flags(struct imap_session *s)
{
	char *kw = imap_flags_str(TS_FLAG_SEEN | TS_FLAG_ANSWERED |
					  TS_FLAG_FLAGGED | TS_FLAG_DELETED |
					  TS_FLAG_DRAFT | TS_FLAG_JUNK |
					  TS_FLAG_NOTJUNK,
				  s->box_keywords);
	imap_send(s, "* FLAGS (%s)", kw);
	if (s->readonly)
		imap_send(s, "* OK [PERMANENTFLAGS ()] read-only mailbox");
	else
		imap_send(s, "* OK [PERMANENTFLAGS (%s \\*)] flags permitted",
			  kw);
	free(kw);
}

static void
imap_select_finish(struct imap_session *s)
{
	imap_done(s, "OK [%s] %s completed",
		  s->readonly ? "READ-ONLY" : "READ-WRITE",
		  s->cmd.cmd == IMAP_CMD_EXAMINE ? "EXAMINE" : "SELECT");
}

/* QRESYNC: what vanished since the client's modseq, then changed flags. */
static void
imap_select_vanished(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	if (status == 0 && count > 0) {
		uint32_t *keep = ts_xmalloc(count * sizeof(*keep));
		size_t n = 0;
		for (size_t i = 0; i < count; i++) {
			const struct imap_seqset *known = &s->cmd.qr_known_uids;
			if (known->count == 0 ||
			    imap_seqset_contains(known, uids[i], UINT32_MAX))
				keep[n++] = uids[i];
		}
		if (n > 0) {
			char *set = imap_uid_set(keep, n);
			imap_send(s, "* VANISHED (EARLIER) %s", set);
			free(set);
		}
		free(keep);
	}
	for (size_t i = 0; i < s->exists; i++) {
		struct imap_msg *m = &s->msgs[i];
		if (m->modseq <= s->cmd.qr_modseq)
			continue;
		char *f = imap_flags_str(m->flags, m->keywords);
		imap_send(s,
			  "* %zu FETCH (UID %" PRIu32
			  " FLAGS (%s) MODSEQ (%" PRIu64 "))",
			  i + 1, m->uid, f, m->modseq);
		free(f);
	}
	imap_select_finish(s);
}

static void
imap_select_messages(int status, const struct ts_message_info *messages,
		     size_t count, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	s->selecting = false;
	if (status != 0) {
		free(s->mailbox);
		s->mailbox = NULL;
		for (size_t i = 0; i < s->early_count; i++) {
			free((char *)s->early[i].mailbox);
			free((char *)s->early[i].keywords);
		}
		free(s->early);
		s->early = NULL;
		s->early_count = 0;
		imap_done(s, "NO [NONEXISTENT] no such mailbox");
		return;
	}
	imap_msgs_clear(s);
	s->msgs = ts_xcalloc(count + 1, sizeof(*s->msgs));
	s->alloc = count + 1;
	for (size_t i = 0; i < count; i++) {
		const struct ts_message_info *mi = &messages[i];
		s->msgs[i] = (struct imap_msg){
			.uid = mi->uid,
			.flags = mi->flags,
			.keywords = ts_xstrdup(
				mi->keywords != NULL ? mi->keywords : ""),
			.modseq = mi->modseq,
			.id = mi->id,
			.received = mi->received,
			.size = mi->size,
		};
		if (mi->modseq > s->highest_modseq)
			s->highest_modseq = mi->modseq;
	}
	s->count = count;
	s->state = IMAP_SELECTED;
	/* Changes that overtook the listing, folded in without a word. */
	struct ts_store_change *early = s->early;
	size_t early_count = s->early_count;
	s->early = NULL;
	s->early_count = 0;
	imap_apply_changes(s, early, early_count, true);
	for (size_t i = 0; i < early_count; i++) {
		free((char *)early[i].mailbox);
		free((char *)early[i].keywords);
	}
	free(early);
	s->exists = s->count;
	if (s->count > 0 && s->msgs[s->count - 1].uid >= s->uidnext)
		s->uidnext = s->msgs[s->count - 1].uid + 1;

	imap_select_send_flags(s);
	s->keywords_dirty = false;
	imap_recent_select(s);
	imap_send(s, "* %zu EXISTS", s->exists);
	if (!s->rev2)
		imap_send(s, "* %zu RECENT", s->recent_count); /* not in rev2 */
	if (s->rev2) {
		/* RFC 9051 6.3.2: the mailbox's name as the server spells it. */
		char *out = imap_mailbox_out(s, s->mailbox);
		char *q = imap_quote(out);
		imap_send(s, "* LIST () \"/\" %s", q);
		free(q);
		free(out);
	}
	for (size_t i = 0; i < s->exists && !s->rev2; i++) {
		if (!(s->msgs[i].flags & TS_FLAG_SEEN)) {
			imap_send(s, "* OK [UNSEEN %zu] first unseen", i + 1);
			break;
		}
	}
	imap_send(s, "* OK [UIDVALIDITY %" PRIu32 "] UIDs valid",
		  s->uidvalidity);
	imap_send(s, "* OK [UIDNEXT %" PRIu32 "] predicted next UID",
		  s->uidnext);
	imap_send(s, "* OK [HIGHESTMODSEQ %" PRIu64 "] highest",
		  s->highest_modseq);
	if (s->cmd.qresync && s->cmd.qr_uidvalidity == s->uidvalidity) {
		imap_store_ref(s);
		if (ts_store_vanished(s->store, s->mailbox, s->cmd.qr_modseq,
				      imap_select_vanished, s) != 0) {
			imap_store_unref(s);
			imap_select_finish(s);
		}
		return;
	}
	imap_select_finish(s);
}

void
imap_cmd_select(struct imap_session *s)
{
	if (s->cmd.qresync && !s->qresync) {
		imap_done(s, "BAD QRESYNC is not enabled");
		return;
	}
	if (s->state == IMAP_SELECTED) {
		imap_unselect(s);
		imap_send(s, "* OK [CLOSED] previous mailbox closed");
	}
	if (s->cmd.condstore)
		s->condstore = true;
	s->readonly = s->cmd.cmd == IMAP_CMD_EXAMINE;
	s->mailbox = ts_xstrdup(s->cmd.mailbox);
	s->selecting = true;
	s->highest_modseq = 0;
	s->uidvalidity = 0;
	s->uidnext = 1;
	imap_notify_attach(s);
	imap_busy(s);
	imap_store_ref(s);
	imap_store_ref(s);
	if (ts_store_mailboxes(s->store, imap_select_boxes, s) != 0 ||
	    ts_store_messages(s->store, s->mailbox, 1, UINT32_MAX,
			      imap_select_messages, s) != 0) {
		/* Only with a NULL store, which a logged-in session has not. */
		s->pending -= 2;
		s->selecting = false;
		imap_done(s, "NO [SERVERBUG] store refused the request");
	}
}

/* --- CREATE / DELETE / RENAME / SUBSCRIBE -------------------------------- */

static void
imap_simple_done(int status, const char *error, void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	static const char *const names[] = {
		[IMAP_CMD_CREATE] = "CREATE",
		[IMAP_CMD_DELETE] = "DELETE",
		[IMAP_CMD_RENAME] = "RENAME",
		[IMAP_CMD_SUBSCRIBE] = "SUBSCRIBE",
		[IMAP_CMD_UNSUBSCRIBE] = "UNSUBSCRIBE",
	};
	const char *name = names[s->cmd.cmd] != NULL ? names[s->cmd.cmd] : "";
	if (status == 0)
		imap_done(s, "OK %s completed", name);
	else
		imap_done(s, "NO [%s] %s", imap_store_code(error),
			  error != NULL ? error : "failed");
}

/* A mailbox name argument with a trailing separator removed. */
static void
imap_trim_name(char *name)
{
	size_t n = strlen(name);
	while (n > 1 && name[n - 1] == '/')
		name[--n] = '\0';
}

void
imap_cmd_create(struct imap_session *s)
{
	imap_trim_name(s->cmd.mailbox);
	if (strcmp(s->cmd.mailbox, "Inbox") == 0) {
		imap_done(s, "NO [ALREADYEXISTS] INBOX always exists");
		return;
	}
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailbox_create(s->store, s->cmd.mailbox,
				    s->cmd.special_use, imap_simple_done,
				    s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [CANNOT] cannot create");
	}
}

void
imap_cmd_delete(struct imap_session *s)
{
	if (strcmp(s->cmd.mailbox, "Inbox") == 0) {
		imap_done(s, "NO [CANNOT] INBOX cannot be deleted");
		return;
	}
	if (s->state == IMAP_SELECTED &&
	    strcmp(s->mailbox, s->cmd.mailbox) == 0)
		imap_unselect(s);
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailbox_delete(s->store, s->cmd.mailbox, imap_simple_done,
				    s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [CANNOT] cannot delete");
	}
}

void
imap_cmd_rename(struct imap_session *s)
{
	imap_trim_name(s->cmd.mailbox2);
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailbox_rename(s->store, s->cmd.mailbox, s->cmd.mailbox2,
				    imap_simple_done, s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [CANNOT] cannot rename");
	}
}

void
imap_cmd_subscribe(struct imap_session *s)
{
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailbox_subscribe(s->store, s->cmd.mailbox,
				       s->cmd.cmd == IMAP_CMD_SUBSCRIBE,
				       imap_simple_done, s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [CANNOT] cannot change the subscription");
	}
}

/* --- LIST / LSUB / STATUS ------------------------------------------------ */

/* IMAP LIST wildcards: "*" anything, "%" anything but the delimiter. */
static bool
imap_match(const char *pat, const char *name)
{
	for (; *pat != '\0'; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *n = name;; n++) {
				if (imap_match(pat + 1, n))
					return true;
				if (*n == '\0' || (*pat == '%' && *n == '/'))
					return false;
			}
		}
		if (*name == '\0' || *pat != *name)
			return false;
	}
	return *name == '\0';
}

/* Whether a pattern (INBOX case-insensitive) matches a client name. */
static bool
imap_pattern_match(const char *pattern, const char *out_name)
{
	char *p = ts_xstrdup(pattern);
	if (strncasecmp(p, "INBOX", 5) == 0 &&
	    (p[5] == '\0' || p[5] == '/' || p[5] == '*' || p[5] == '%'))
		memcpy(p, "INBOX", 5);
	bool ok = imap_match(p, out_name);
	free(p);
	return ok;
}

static char *
imap_status_items(const struct imap_session *s, const struct ts_mailbox_info *b,
		  unsigned items)
{
	char *out = ts_xstrdup("");
	char *t;
#define ITEM(bit, fmt, val)                                                \
	if (items & (bit)) {                                               \
		t = ts_xasprintf("%s%s" fmt, out, out[0] ? " " : "", val); \
		free(out);                                                 \
		out = t;                                                   \
	}
	ITEM(IMAP_STATUS_MESSAGES, "MESSAGES %" PRIu32, b->total);
	ITEM(IMAP_STATUS_RECENT, "RECENT %" PRIu32,
	     imap_recent_unclaimed(imap_module(s->ctx), s->account, b->name,
				   b->uidvalidity, b->uidnext, b->total));
	ITEM(IMAP_STATUS_UIDNEXT, "UIDNEXT %" PRIu32, b->uidnext);
	ITEM(IMAP_STATUS_UIDVALIDITY, "UIDVALIDITY %" PRIu32, b->uidvalidity);
	ITEM(IMAP_STATUS_UNSEEN, "UNSEEN %" PRIu32, b->unseen);
	ITEM(IMAP_STATUS_DELETED, "DELETED %" PRIu32, b->deleted);
	ITEM(IMAP_STATUS_SIZE, "SIZE %" PRIu64, b->size);
	ITEM(IMAP_STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %" PRIu64,
	     b->highest_modseq);
	ITEM(IMAP_STATUS_APPENDLIMIT, "APPENDLIMIT %" PRIu64,
	     imap_settings(s->ctx)->append_limit);
#undef ITEM
	return out;
}

static bool
imap_has_children(const struct ts_mailbox_info *boxes, size_t count,
		  const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < count; i++)
		if (strncmp(boxes[i].name, name, n) == 0 &&
		    boxes[i].name[n] == '/')
			return true;
	return false;
}

static void
imap_list_boxes(int status, const struct ts_mailbox_info *boxes, size_t count,
		void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	if (status != 0) {
		imap_done(s, "NO [SERVERBUG] cannot list mailboxes");
		return;
	}
	struct imap_command *c = &s->cmd;
	bool lsub = c->cmd == IMAP_CMD_LSUB;
	const char *verb = lsub ? "LSUB" : "LIST";
	const char *ref = c->words[0];
	unsigned o = c->list_opts;
	/* LIST "" "": the hierarchy delimiter */
	if (c->word_count == 2 && c->words[1][0] == '\0') {
		imap_send(s, "* %s (\\Noselect) \"/\" \"\"", verb);
		imap_done(s, "OK %s completed", verb);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct ts_mailbox_info *b = &boxes[i];
		char *out = imap_mailbox_out(s, b->name);
		bool match = false;
		for (size_t p = 1; p < c->word_count && !match; p++) {
			char *pat = ts_xasprintf("%s%s", ref, c->words[p]);
			match = imap_pattern_match(pat, out);
			free(pat);
		}
		bool subscribed_only = lsub || (o & IMAP_LIST_SUBSCRIBED) != 0;
		if (!match || (subscribed_only && !b->subscribed) ||
		    ((o & IMAP_LIST_SPECIAL_USE) && b->special_use == NULL)) {
			free(out);
			continue;
		}
		char *attrs =
			ts_xstrdup(imap_has_children(boxes, count, b->name)
					   ? "\\HasChildren"
					   : "\\HasNoChildren");
		char *t;
		if (b->subscribed && !lsub &&
		    (o & (IMAP_LIST_SUBSCRIBED | IMAP_LIST_RET_SUBSCRIBED))) {
			t = ts_xasprintf("%s \\Subscribed", attrs);
			free(attrs);
			attrs = t;
		}
		if (b->special_use != NULL) {
			t = ts_xasprintf("%s %s", attrs, b->special_use);
			free(attrs);
			attrs = t;
		}
		char *q = imap_quote(out);
		imap_send(s, "* %s (%s) \"/\" %s", verb, attrs, q);
		if (o & IMAP_LIST_RET_STATUS) {
			char *items = imap_status_items(s, b, c->status_items);
			imap_send(s, "* STATUS %s (%s)", q, items);
			free(items);
		}
		free(q);
		free(attrs);
		free(out);
	}
	imap_done(s, "OK %s completed", verb);
}

void
imap_cmd_list(struct imap_session *s)
{
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailboxes(s->store, imap_list_boxes, s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [SERVERBUG] cannot list mailboxes");
	}
}

static void
imap_status_boxes(int status, const struct ts_mailbox_info *boxes, size_t count,
		  void *arg)
{
	struct imap_session *s = arg;
	if (imap_store_unref(s))
		return;
	const struct ts_mailbox_info *b =
		status == 0 ? imap_find_box(boxes, count, s->cmd.mailbox)
			    : NULL;
	if (b == NULL) {
		imap_done(s, "NO [NONEXISTENT] no such mailbox");
		return;
	}
	char *out = imap_mailbox_out(s, b->name);
	char *q = imap_quote(out);
	char *items = imap_status_items(s, b, s->cmd.status_items);
	imap_send(s, "* STATUS %s (%s)", q, items);
	free(items);
	free(q);
	free(out);
	imap_done(s, "OK STATUS completed");
}

void
imap_cmd_status(struct imap_session *s)
{
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailboxes(s->store, imap_status_boxes, s) != 0) {
		imap_store_unref(s);
		imap_done(s, "NO [SERVERBUG] cannot read mailbox status");
	}
}

/* --- APPEND --------------------------------------------------------------- */

struct imap_append {
	struct imap_session *s;
	char *path;
	char *dir;
	char *data; /* the command buffer, owned */
	const char *message;
	size_t len;
	bool spooled; /* the message is in the file already (spool.c) */
	int error; /* errno of the spool write */
	uint32_t uidvalidity;
};

static void
imap_append_free(struct imap_append *a)
{
	free(a->path);
	free(a->dir);
	free(a->data);
	free(a);
}

/* Pool thread: remove the spool file. */
static void
imap_append_unlink(void *arg)
{
	struct imap_append *a = arg;
	(void)unlink(a->path);
}

static void
imap_append_unlinked(void *arg, int status)
{
	(void)status;
	imap_append_free(arg);
}

static void
imap_append_cleanup(struct imap_append *a)
{
	if (ts_work_submit(a->s->ctx, imap_append_unlink, imap_append_unlinked,
			   a) != 0) {
		/* Shutting down: a stray spool file is harmless. */
		imap_append_free(a);
	}
}

/* Give up before delivery: a spooled file goes too. */
static void
imap_append_drop(struct imap_append *a)
{
	if (a->spooled)
		imap_append_cleanup(a);
	else
		imap_append_free(a);
}

static void
imap_append_delivered(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct imap_append *a = arg;
	struct imap_session *s = a->s;
	uint32_t uid = status == 0 && count > 0 ? uids[0] : 0;
	imap_append_cleanup(a);
	if (imap_store_unref(s))
		return;
	if (status != 0)
		imap_done(s, "NO [SERVERBUG] the message could not be stored");
	else
		imap_done(s,
			  "OK [APPENDUID %" PRIu32 " %" PRIu32 "] APPEND "
			  "completed",
			  a->uidvalidity, uid);
}

/* Pool thread: write the message to the spool file. */
static void
imap_append_write(void *arg)
{
	struct imap_append *a = arg;
	/* mkdir -p: DATA_DIR/spool may not exist yet */
	for (char *p = a->dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(a->dir, 0700);
		*p = '/';
	}
	(void)mkdir(a->dir, 0700);
	int fd = open(a->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		a->error = errno;
		return;
	}
	const char *p = a->message;
	size_t left = a->len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			a->error = errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	if (close(fd) != 0 && a->error == 0)
		a->error = errno;
	/* The store reads the file: the buffer is no longer needed. */
	free(a->data);
	a->data = NULL;
	a->message = NULL;
}

static void
imap_append_written(void *arg, int status)
{
	struct imap_append *a = arg;
	struct imap_session *s = a->s;
	if (status != 0 || a->error != 0 || s->closed) {
		if (a->error != 0)
			ts_conn_log(s->conn, s->ctx, TS_LOG_ERROR,
				    "append spool %s: %s", a->path,
				    strerror(a->error));
		imap_append_cleanup(a);
		if (!imap_store_unref(s))
			imap_done(s, "NO [SERVERBUG] cannot spool the message");
		return;
	}
	struct ts_delivery_target t = {
		.account = s->account,
		.mailbox = s->cmd.mailbox,
		.flags = s->cmd.flags.flags & 0x7fu,
		.keywords = s->cmd.flags.keywords,
		.received = s->cmd.date,
	};
	if (ts_store_deliver(s->ctx, a->path, NULL, &t, 1,
			     imap_append_delivered, a) != 0) {
		imap_append_cleanup(a);
		if (!imap_store_unref(s))
			imap_done(s, "NO [SERVERBUG] cannot store the message");
	}
}

static void
imap_append_boxes(int status, const struct ts_mailbox_info *boxes, size_t count,
		  void *arg)
{
	struct imap_append *a = arg;
	struct imap_session *s = a->s;
	const struct ts_mailbox_info *b =
		status == 0 ? imap_find_box(boxes, count, s->cmd.mailbox)
			    : NULL;
	if (s->closed || b == NULL) {
		imap_append_drop(a);
		if (!imap_store_unref(s))
			imap_done(s, "NO [TRYCREATE] no such mailbox");
		return;
	}
	a->uidvalidity = b->uidvalidity;
	if (a->spooled) {
		imap_append_written(a, 0);
		return;
	}
	if (ts_work_submit(s->ctx, imap_append_write, imap_append_written, a) !=
	    0) {
		imap_append_drop(a);
		if (!imap_store_unref(s))
			imap_done(s, "NO [UNAVAILABLE] shutting down");
	}
}

void
imap_cmd_append(struct imap_session *s)
{
	if (s->cmd.message_len == 0) {
		imap_done(s, "NO empty message");
		return;
	}
	static uint64_t serial;
	struct imap_settings *set = imap_settings(s->ctx);
	struct imap_append *a = ts_xcalloc(1, sizeof(*a));
	a->s = s;
	a->dir = ts_xstrdup(set->spool_dir);
	if (s->cmd.message == NULL) {
		/* spooled while it arrived (spool.c) */
		a->path = imap_spool_take(s, &a->error);
		a->spooled = true;
	} else {
		a->path = ts_xasprintf("%s/append-%ld-%" PRIu64 "-%" PRIu64,
				       set->spool_dir, (long)getpid(),
				       ts_conn_id(s->conn), ++serial);
		a->data = s->cmd_buf;
		s->cmd_buf = NULL;
		a->message = s->cmd.message;
	}
	a->len = s->cmd.message_len;
	imap_busy(s);
	imap_store_ref(s);
	if (ts_store_mailboxes(s->store, imap_append_boxes, a) != 0) {
		imap_append_drop(a);
		imap_store_unref(s);
		imap_done(s, "NO [SERVERBUG] store refused the request");
	}
}
