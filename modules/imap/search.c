/*
 * modules/imap/search.c — SEARCH and UID SEARCH (RFC 3501 6.4.4), with
 * ESEARCH (RFC 4731) results, SEARCHRES (RFC 5182) "$" and MODSEQ
 * (RFC 7162).
 *
 * The command's key tree and a snapshot of the visible messages go to
 * one work-pool job, which evaluates the tree per message; only keys that
 * need content (HEADER, FROM …, BODY, TEXT, SENT*) open the message, and
 * only once.  BODY and TEXT are a case-insensitive substring search on
 * the raw bytes for now (no MIME decoding yet).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imap.h"

/* How much of a message's start is read for its header fields. */
#define SEARCH_HEAD_MAX (256 * 1024)

struct search_msg {
	uint32_t uid, msn;
	uint32_t flags;
	char *keywords;
	uint64_t modseq;
	int64_t id;
	int64_t received;
	uint64_t size;
	bool recent;
	bool match;
};

struct imap_search {
	struct imap_session *s;
	struct ts_store *store;
	struct imap_search_key keys;
	struct search_msg *msgs;
	size_t count;
	uint32_t max_uid, max_msn;
	uint32_t *saved;
	size_t saved_count;
	bool aborted;
	uint64_t max_modseq;
	bool uses_modseq;

	/* the message being evaluated (pool thread) */
	int fd;
	char *prefix;
	size_t prefix_len;
	char *content; /* its head: the header, at most SEARCH_HEAD_MAX */
	size_t content_len;
	size_t header_len;
	struct ts_mime_message *mime; /* parsed when BODY/TEXT need it */
	bool loaded, load_failed, parse_failed;
};

static void
search_free(struct imap_search *q)
{
	imap_search_key_clear(&q->keys);
	for (size_t i = 0; i < q->count; i++)
		free(q->msgs[i].keywords);
	free(q->msgs);
	free(q->saved);
	free(q->content);
	free(q);
}

/* Forget the current message (pool thread). */
static void
search_unload(struct imap_search *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	free(q->prefix);
	q->prefix = NULL;
	q->prefix_len = 0;
	free(q->content);
	q->content = NULL;
	q->content_len = q->header_len = 0;
	ts_mime_message_free(&q->mime);
	q->loaded = q->load_failed = q->parse_failed = false;
}

/* --- content (pool thread) ------------------------------------------------ */

/* Open the message and read its head (pool thread); once per message. */
static void
search_load(struct imap_search *q, const struct search_msg *m)
{
	if (q->loaded)
		return;
	q->loaded = true;
	if (ts_store_message_read(q->store, m->id, &q->fd, &q->prefix,
				  &q->prefix_len) != 0) {
		q->fd = -1;
		q->load_failed = true;
		return;
	}
	size_t want =
		m->size < SEARCH_HEAD_MAX ? (size_t)m->size : SEARCH_HEAD_MAX;
	if (want < q->prefix_len)
		want = q->prefix_len;
	q->content = ts_xmalloc(want + 1);
	memcpy(q->content, q->prefix, q->prefix_len);
	size_t n = q->prefix_len;
	while (n < want) {
		ssize_t r = pread(q->fd, q->content + n, want - n,
				  (off_t)(n - q->prefix_len));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	q->content[n] = '\0';
	q->content_len = n;
	q->header_len = n;
	for (size_t i = 0; i + 1 < n; i++) {
		if (q->content[i] != '\n')
			continue;
		if (q->content[i + 1] == '\n') {
			q->header_len = i + 2;
			break;
		}
		if (i + 2 < n && q->content[i + 1] == '\r' &&
		    q->content[i + 2] == '\n') {
			q->header_len = i + 3;
			break;
		}
	}
}

/* BODY / TEXT: the decoded text of the message's parts (pool thread). */
static bool
search_text(struct imap_search *q, const struct search_msg *m,
	    enum ts_mime_search_scope scope, const char *needle)
{
	search_load(q, m);
	if (q->load_failed)
		return false;
	if (q->mime == NULL && !q->parse_failed) {
		const char *error;
		if (lseek(q->fd, 0, SEEK_SET) != 0 ||
		    ts_mime_parse_fd(q->prefix, q->prefix_len, q->fd, NULL,
				     &q->mime, &error) != 0)
			q->parse_failed = true;
	}
	if (q->mime == NULL)
		return false;
	return ts_mime_search_fd(q->mime, q->prefix, q->prefix_len, q->fd,
				 scope, needle, strlen(needle)) == 1;
}

/*
 * Call fn for each header field named `name` (NULL: every field) with
 * its unfolded value; stops when fn returns true.  Returns that.
 */
static bool
search_fields(const struct imap_search *q, const char *name,
	      bool (*fn)(const char *value, void *arg), void *arg)
{
	size_t nl = name != NULL ? strlen(name) : 0;
	const char *h = q->content;
	size_t hl = q->header_len;
	for (size_t i = 0; i < hl;) {
		size_t e = i;
		while (e < hl && h[e] != '\n')
			e++;
		if (e == i || (e == i + 1 && h[i] == '\r'))
			break; /* the blank line */
		const char *colon = memchr(h + i, ':', e - i);
		if (colon == NULL || h[i] == ' ' || h[i] == '\t') {
			i = e + 1;
			continue;
		}
		size_t fl = (size_t)(colon - (h + i));
		bool named = name == NULL ||
			     (fl == nl && strncasecmp(h + i, name, nl) == 0);
		/* the value with its continuation lines, unfolded */
		size_t vstart = (size_t)(colon + 1 - h);
		size_t vend = e;
		while (vend + 1 < hl &&
		       (h[vend + 1] == ' ' || h[vend + 1] == '\t')) {
			vend++;
			while (vend < hl && h[vend] != '\n')
				vend++;
		}
		if (named) {
			char *v = ts_xmalloc(vend - vstart + 1);
			size_t n = 0;
			for (size_t k = vstart; k < vend; k++)
				if (h[k] != '\r' && h[k] != '\n')
					v[n++] = h[k];
			v[n] = '\0';
			bool done = fn(v, arg);
			free(v);
			if (done)
				return true;
		}
		i = vend + 1;
	}
	return false;
}

static bool
search_value_contains(const char *value, void *arg)
{
	size_t len;
	char *decoded = ts_mime_decode_words(value, strlen(value), &len);
	bool found = ts_mime_contains(decoded, len, arg, strlen(arg));
	free(decoded);
	return found;
}

static bool
search_value_date(const char *value, void *arg)
{
	int64_t *day = arg;
	const char *p = value;
	while (*p == ' ' || *p == '\t')
		p++;
	const char *comma = strchr(p, ',');
	if (comma != NULL)
		p = comma + 1;
	while (*p == ' ')
		p++;
	/* "1 Jul 2003" -> "1-Jul-2003" */
	char buf[16];
	size_t n = 0;
	int spaces = 0;
	for (; *p != '\0' && n < sizeof(buf) - 1; p++) {
		if (*p == ' ') {
			if (++spaces == 3)
				break;
			buf[n++] = '-';
			while (p[1] == ' ')
				p++;
		} else {
			buf[n++] = *p;
		}
	}
	buf[n] = '\0';
	*day = imap_parse_day(buf, n);
	return true;
}

/* --- evaluation (pool thread) --------------------------------------------- */

static bool
search_has_keyword(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == wl && strncasecmp(p, word, n) == 0)
			return true;
		p += n;
	}
	return false;
}

static bool
search_eval(struct imap_search *q, const struct imap_search_key *k,
	    const struct search_msg *m)
{
	int64_t day;
	switch (k->kind) {
	case IMAP_SK_ALL:
		return true;
	case IMAP_SK_AND:
		for (size_t i = 0; i < k->child_count; i++)
			if (!search_eval(q, &k->children[i], m))
				return false;
		return true;
	case IMAP_SK_OR:
		return search_eval(q, &k->children[0], m) ||
		       search_eval(q, &k->children[1], m);
	case IMAP_SK_NOT:
		return !search_eval(q, &k->children[0], m);
	case IMAP_SK_SEQSET:
		if (k->set.saved) {
			for (size_t i = 0; i < q->saved_count; i++)
				if (q->saved[i] == m->uid)
					return true;
			return false;
		}
		return imap_seqset_contains(&k->set, m->msn, q->max_msn);
	case IMAP_SK_UID:
		if (k->set.saved) {
			for (size_t i = 0; i < q->saved_count; i++)
				if (q->saved[i] == m->uid)
					return true;
			return false;
		}
		return imap_seqset_contains(&k->set, m->uid, q->max_uid);
	case IMAP_SK_FLAG:
		return (m->flags & (uint32_t)k->num) != 0;
	case IMAP_SK_NOFLAG:
		return (m->flags & (uint32_t)k->num) == 0;
	case IMAP_SK_KEYWORD:
	case IMAP_SK_UNKEYWORD: {
		bool has;
		if (strcasecmp(k->str, "$Junk") == 0)
			has = (m->flags & TS_FLAG_JUNK) != 0;
		else if (strcasecmp(k->str, "$NotJunk") == 0)
			has = (m->flags & TS_FLAG_NOTJUNK) != 0;
		else
			has = search_has_keyword(m->keywords, k->str);
		return k->kind == IMAP_SK_KEYWORD ? has : !has;
	}
	case IMAP_SK_NEW:
		return m->recent && !(m->flags & TS_FLAG_SEEN);
	case IMAP_SK_RECENT:
		return m->recent;
	case IMAP_SK_OLD:
		return !m->recent;
	case IMAP_SK_BEFORE:
		return m->received / 86400 < k->num;
	case IMAP_SK_ON:
		return m->received / 86400 == k->num;
	case IMAP_SK_SINCE:
		return m->received / 86400 >= k->num;
	case IMAP_SK_LARGER:
		return m->size > (uint64_t)k->num;
	case IMAP_SK_SMALLER:
		return m->size < (uint64_t)k->num;
	case IMAP_SK_MODSEQ:
		q->uses_modseq = true;
		return m->modseq >= (uint64_t)k->num;
	case IMAP_SK_HEADER:
		search_load(q, m);
		if (q->load_failed)
			return false;
		return search_fields(q, k->str2, search_value_contains, k->str);
	case IMAP_SK_BODY:
		return search_text(q, m, TS_MIME_SEARCH_BODY, k->str);
	case IMAP_SK_TEXT:
		return search_text(q, m, TS_MIME_SEARCH_TEXT, k->str);
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		search_load(q, m);
		if (q->load_failed)
			return false;
		day = -1;
		if (!search_fields(q, "Date", search_value_date, &day) ||
		    day < 0)
			return false;
		if (k->kind == IMAP_SK_SENTBEFORE)
			return day < k->num;
		if (k->kind == IMAP_SK_SENTON)
			return day == k->num;
		return day >= k->num;
	}
	return false;
}

static void
search_work(void *arg)
{
	struct imap_search *q = arg;
	for (size_t i = 0; i < q->count && !q->aborted; i++) {
		struct search_msg *m = &q->msgs[i];
		m->match = search_eval(q, &q->keys, m);
		if (m->match && m->modseq > q->max_modseq)
			q->max_modseq = m->modseq;
		search_unload(q);
	}
}

/* --- answering -------------------------------------------------------------
 */

static void
search_done(void *arg, int status)
{
	struct imap_search *q = arg;
	struct imap_session *s = q->s;
	s->search = NULL;
	if (q->aborted || status != 0) {
		search_free(q);
		if (!imap_store_unref(s))
			imap_done(s, "NO [UNAVAILABLE] search interrupted");
		return;
	}
	if (imap_store_unref(s)) {
		search_free(q);
		return;
	}
	struct imap_command *c = &s->cmd;
	uint32_t *nums = ts_xmalloc((q->count + 1) * sizeof(*nums));
	uint32_t *uids = ts_xmalloc((q->count + 1) * sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < q->count; i++) {
		if (!q->msgs[i].match)
			continue;
		nums[n] = c->uid ? q->msgs[i].uid : q->msgs[i].msn;
		uids[n] = q->msgs[i].uid;
		n++;
	}
	if (c->search_return & IMAP_RET_SAVE) {
		free(s->saved);
		s->saved = uids;
		s->saved_count = n;
		s->saved_valid = true;
		uids = NULL;
	}
	free(uids);
	/* IMAP4rev2 has no SEARCH response: ESEARCH ALL instead. */
	if (!c->esearch && s->rev2) {
		c->esearch = true;
		c->search_return = IMAP_RET_ALL;
	}
	if (c->esearch) {
		unsigned r = c->search_return;
		if (r != IMAP_RET_SAVE) {
			char *out = ts_xasprintf("* ESEARCH (TAG \"%s\")%s",
						 c->tag, c->uid ? " UID" : "");
			char *t;
			if ((r & IMAP_RET_MIN) && n > 0) {
				t = ts_xasprintf("%s MIN %" PRIu32, out,
						 nums[0]);
				free(out);
				out = t;
			}
			if ((r & IMAP_RET_MAX) && n > 0) {
				t = ts_xasprintf("%s MAX %" PRIu32, out,
						 nums[n - 1]);
				free(out);
				out = t;
			}
			if (r & IMAP_RET_COUNT) {
				t = ts_xasprintf("%s COUNT %zu", out, n);
				free(out);
				out = t;
			}
			if ((r & IMAP_RET_ALL) && n > 0) {
				char *set = imap_uid_set(nums, n);
				t = ts_xasprintf("%s ALL %s", out, set);
				free(set);
				free(out);
				out = t;
			}
			if (q->uses_modseq && n > 0) {
				t = ts_xasprintf("%s MODSEQ %" PRIu64, out,
						 q->max_modseq);
				free(out);
				out = t;
			}
			imap_send(s, "%s", out);
			free(out);
		}
	} else {
		size_t cap = 16 + n * 11, len = 0;
		char *out = ts_xmalloc(cap + 32);
		len = (size_t)sprintf(out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			len += (size_t)sprintf(out + len, " %" PRIu32, nums[i]);
		if (q->uses_modseq && n > 0)
			len += (size_t)sprintf(out + len,
					       " (MODSEQ %" PRIu64 ")",
					       q->max_modseq);
		imap_send(s, "%s", out);
		free(out);
	}
	free(nums);
	search_free(q);
	imap_done(s, "OK SEARCH completed");
}

void
imap_search_abort(struct imap_session *s)
{
	if (s->search != NULL)
		s->search->aborted = true;
}

static bool
search_uses_saved(const struct imap_search_key *k)
{
	if ((k->kind == IMAP_SK_SEQSET || k->kind == IMAP_SK_UID) &&
	    k->set.saved)
		return true;
	for (size_t i = 0; i < k->child_count; i++)
		if (search_uses_saved(&k->children[i]))
			return true;
	return false;
}

static void
search_start(struct imap_session *s)
{
	if (s->closed)
		return;
	struct imap_search *q = ts_xcalloc(1, sizeof(*q));
	q->s = s;
	q->fd = -1;
	q->store = s->store;
	q->keys = s->cmd.search;
	memset(&s->cmd.search, 0, sizeof(s->cmd.search));
	q->msgs = ts_xcalloc(s->exists + 1, sizeof(*q->msgs));
	for (size_t i = 0; i < s->exists; i++) {
		const struct imap_msg *m = &s->msgs[i];
		if (m->expunged)
			continue;
		q->msgs[q->count++] = (struct search_msg){
			.uid = m->uid,
			.msn = (uint32_t)(i + 1),
			.flags = m->flags,
			.keywords = ts_xstrdup(m->keywords),
			.modseq = m->modseq,
			.id = m->id,
			.received = m->received,
			.size = m->size,
			.recent = m->recent,
		};
	}
	q->max_msn = (uint32_t)s->exists;
	q->max_uid = s->exists > 0 ? s->msgs[s->exists - 1].uid : 0;
	if (s->saved_valid && s->saved_count > 0) {
		q->saved = ts_xmalloc(s->saved_count * sizeof(*q->saved));
		memcpy(q->saved, s->saved, s->saved_count * sizeof(*q->saved));
		q->saved_count = s->saved_count;
	}
	s->search = q;
	imap_store_ref(s);
	if (ts_work_submit(s->ctx, search_work, search_done, q) != 0)
		search_done(q, TS_E_STATE);
}

void
imap_cmd_search(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	if (c->charset != NULL && strcasecmp(c->charset, "US-ASCII") != 0 &&
	    strcasecmp(c->charset, "UTF-8") != 0) {
		imap_done(s, "NO [BADCHARSET (US-ASCII UTF-8)] unsupported "
			     "charset");
		return;
	}
	if (search_uses_saved(&c->search) && !s->saved_valid) {
		imap_done(s, "BAD no saved search result");
		return;
	}
	imap_busy(s);
	imap_msgs_fill(s, search_start);
}
