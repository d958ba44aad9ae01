/*
 * modules/imap/recent.c — who sees a message as \Recent (RFC 3501 2.3.2).
 *
 * A message is recent in exactly one session: the first read-write
 * session of its mailbox to be told about it.  The module keeps, per
 * account, mailbox and UIDVALIDITY, the highest UID some session has
 * claimed; SELECT claims everything up to the mailbox's last UID and a
 * selected session claims each message as it learns of it.  EXAMINE and
 * read-only sessions never claim.  The record lives in this process:
 * after a restart, messages that arrived since the module started are
 * the recent ones (when it cannot tell, RFC 3501 says to call a message
 * recent; we call only the new ones so, to keep old mail from reappearing
 * as new after every restart).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap.h"

struct imap_recent {
	char *account, *mailbox;
	uint32_t uidvalidity;
	uint32_t claimed; /* highest UID claimed so far */
	struct imap_recent *next;
};

static struct imap_recent *
imap_recent_find(struct imap_module *m, const char *account,
		 const char *mailbox, uint32_t uidvalidity, bool create)
{
	for (struct imap_recent *r = m->recent; r != NULL; r = r->next)
		if (r->uidvalidity == uidvalidity &&
		    strcmp(r->account, account) == 0 &&
		    strcmp(r->mailbox, mailbox) == 0)
			return r;
	if (!create)
		return NULL;
	struct imap_recent *r = ts_xcalloc(1, sizeof(*r));
	r->account = ts_xstrdup(account);
	r->mailbox = ts_xstrdup(mailbox);
	r->uidvalidity = uidvalidity;
	r->next = m->recent;
	m->recent = r;
	return r;
}

void
imap_recent_select(struct imap_session *s)
{
	struct imap_module *m = imap_module(s->ctx);
	s->recent_count = 0;
	if (s->count == 0)
		return;
	/*
	 * EXAMINE shows what is recent but claims nothing (RFC 3501 6.3.2:
	 * it must not make messages lose \Recent).
	 */
	struct imap_recent *r = imap_recent_find(m, s->account, s->mailbox,
						 s->uidvalidity, !s->readonly);
	bool fresh = r == NULL || r->claimed == 0;
	for (size_t i = 0; i < s->count; i++) {
		struct imap_msg *msg = &s->msgs[i];
		msg->recent = fresh ? msg->received >= m->started
				    : msg->uid > r->claimed;
		if (msg->recent)
			s->recent_count++;
	}
	if (r != NULL)
		r->claimed = s->msgs[s->count - 1].uid;
}

bool
imap_recent_claim(struct imap_session *s, uint32_t uid)
{
	if (s->readonly)
		return false;
	struct imap_recent *r =
		imap_recent_find(imap_module(s->ctx), s->account, s->mailbox,
				 s->uidvalidity, true);
	if (uid <= r->claimed)
		return false;
	r->claimed = uid;
	return true;
}

uint32_t
imap_recent_unclaimed(struct imap_module *m, const char *account,
		      const char *mailbox, uint32_t uidvalidity,
		      uint32_t uidnext, uint32_t total)
{
	struct imap_recent *r =
		imap_recent_find(m, account, mailbox, uidvalidity, false);
	if (r == NULL)
		return 0; /* nobody selected it since start: unknown, see top */
	/* UIDs are dense only until expunges: an upper bound, capped. */
	uint32_t n = uidnext > r->claimed + 1 ? uidnext - r->claimed - 1 : 0;
	return n < total ? n : total;
}

void
imap_recent_free(struct imap_module *m)
{
	while (m->recent != NULL) {
		struct imap_recent *r = m->recent;
		m->recent = r->next;
		free(r->account);
		free(r->mailbox);
		free(r);
	}
}
