/*
 * modules/imap/parse.c — parse one complete IMAP command into a struct
 * imap_command (see parse.h).  Pure: no I/O, no kernel state.
 *
 * The cursor and the grammar's pieces are in parse-lex.c, FETCH
 * attributes and SEARCH keys in parse-items.c; here each command's
 * arguments are read by one function, and the line-level helpers (literal
 * announcements, the first-line test) live.  Every refusal is a fixed BAD
 * text naming what was wrong; the unit tests check them verbatim.  What
 * the arguments *mean* (does the mailbox exist, is the command allowed
 * now) is the session's business, not this file's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "parse-lex.h"

/* --- commands ------------------------------------------------------------ */

static bool
args_mailbox(struct imap_pcur *c, struct imap_command *cmd)
{
	return imap_pc_sp(c) && (cmd->mailbox = imap_pc_mailbox(c)) != NULL;
}

static bool
args_select(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!args_mailbox(c, cmd))
		return false;
	if (imap_pc_eof(c))
		return true;
	if (!imap_pc_sp(c) || !imap_pc_char(c, '(', "bad select parameters"))
		return false;
	for (;;) {
		if (imap_pc_word(c, "CONDSTORE")) {
			cmd->condstore = true;
		} else if (imap_pc_word(c, "QRESYNC")) {
			cmd->qresync = true;
			uint64_t m;
			if (!imap_pc_sp(c) ||
			    !imap_pc_char(c, '(', "bad QRESYNC") ||
			    !imap_pc_nz_number(c, &cmd->qr_uidvalidity) ||
			    !imap_pc_sp(c) ||
			    !imap_pc_number64(c, &m, INT64_MAX))
				return imap_pc_fail(c,
						    "bad QRESYNC parameters");
			cmd->qr_modseq = m;
			if (imap_pc_peek(c, ' ')) {
				c->p++;
				if (!imap_pc_peek(c, '(') &&
				    !imap_pc_seqset(c, &cmd->qr_known_uids))
					return imap_pc_fail(c, "bad QRESYNC "
							       "parameters");
				if (imap_pc_peek(c, ' '))
					c->p++;
				if (imap_pc_peek(c, '(')) {
					c->p++;
					if (!imap_pc_seqset(
						    c, &cmd->qr_seq_match) ||
					    !imap_pc_sp(c) ||
					    !imap_pc_seqset(
						    c, &cmd->qr_uid_match) ||
					    !imap_pc_char(c, ')',
							  "bad QRESYNC"))
						return imap_pc_fail(
							c, "bad QRESYNC "
							   "parameters");
				}
			}
			if (!imap_pc_char(c, ')', "bad QRESYNC parameters"))
				return false;
		} else {
			return imap_pc_fail(c, "unknown select parameter");
		}
		if (imap_pc_peek(c, ')')) {
			c->p++;
			return imap_pc_end(c);
		}
		if (!imap_pc_sp(c))
			return false;
	}
}

static bool
args_create(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!args_mailbox(c, cmd))
		return false;
	if (imap_pc_eof(c))
		return true;
	/* (USE (\Special)) — RFC 6154 CREATE-SPECIAL-USE */
	if (!imap_pc_sp(c) || !imap_pc_char(c, '(', "bad create parameters") ||
	    !imap_pc_word(c, "USE") || !imap_pc_sp(c) ||
	    !imap_pc_char(c, '(', "bad create parameters"))
		return imap_pc_fail(c, "bad create parameters");
	if (!imap_pc_char(c, '\\', "bad special-use flag"))
		return false;
	char *a = imap_pc_atom(c);
	if (a == NULL)
		return imap_pc_fail(c, "bad special-use flag");
	cmd->special_use = ts_xasprintf("\\%s", a);
	free(a);
	if (!imap_pc_char(c, ')', "only one special-use flag is supported") ||
	    !imap_pc_char(c, ')', "bad create parameters"))
		return false;
	return imap_pc_end(c);
}

static bool
args_rename(struct imap_pcur *c, struct imap_command *cmd)
{
	return args_mailbox(c, cmd) && imap_pc_sp(c) &&
	       (cmd->mailbox2 = imap_pc_mailbox(c)) != NULL && imap_pc_end(c);
}

static bool
imap_pc_status_items(struct imap_pcur *c, unsigned *items)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "MESSAGES", IMAP_STATUS_MESSAGES },
		{ "RECENT", IMAP_STATUS_RECENT },
		{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
		{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
		{ "UNSEEN", IMAP_STATUS_UNSEEN },
		{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
		{ "SIZE", IMAP_STATUS_SIZE },
		{ "DELETED", IMAP_STATUS_DELETED },
		{ "APPENDLIMIT", IMAP_STATUS_APPENDLIMIT },
	};
	if (!imap_pc_char(c, '(', "expected a status item list"))
		return false;
	for (;;) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!ok && imap_pc_word(c, names[i].name)) {
				*items |= names[i].bit;
				ok = true;
			}
		if (!ok)
			return imap_pc_fail(c, "unknown status item");
		if (imap_pc_peek(c, ')')) {
			c->p++;
			return true;
		}
		if (!imap_pc_sp(c))
			return false;
	}
}

static bool
args_status(struct imap_pcur *c, struct imap_command *cmd)
{
	return args_mailbox(c, cmd) && imap_pc_sp(c) &&
	       imap_pc_status_items(c, &cmd->status_items) && imap_pc_end(c);
}

static bool
args_list(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c))
		return false;
	bool extended = false;
	if (imap_pc_peek(c, '(') && cmd->cmd == IMAP_CMD_LIST) {
		c->p++;
		extended = true;
		while (!imap_pc_peek(c, ')')) {
			if (imap_pc_word(c, "SUBSCRIBED"))
				cmd->list_opts |= IMAP_LIST_SUBSCRIBED;
			else if (imap_pc_word(c, "REMOTE"))
				cmd->list_opts |= IMAP_LIST_REMOTE;
			else if (imap_pc_word(c, "RECURSIVEMATCH"))
				cmd->list_opts |= IMAP_LIST_RECURSIVEMATCH;
			else if (imap_pc_word(c, "SPECIAL-USE"))
				cmd->list_opts |= IMAP_LIST_SPECIAL_USE;
			else
				return imap_pc_fail(c, "unknown list selection "
						       "option");
			if (imap_pc_peek(c, ' '))
				c->p++;
		}
		c->p++;
		if ((cmd->list_opts & IMAP_LIST_RECURSIVEMATCH) &&
		    !(cmd->list_opts &
		      (IMAP_LIST_SUBSCRIBED | IMAP_LIST_SPECIAL_USE)))
			return imap_pc_fail(c, "RECURSIVEMATCH needs another "
					       "selection option");
		if (!imap_pc_sp(c))
			return false;
	}
	/* reference: a mailbox name, possibly empty */
	char *ref = imap_pc_astring(c);
	if (ref == NULL)
		return imap_pc_fail(c, "expected a reference name");
	imap_words_add(cmd, ref);
	if (!imap_pc_sp(c))
		return false;
	if (imap_pc_peek(c, '(') && cmd->cmd == IMAP_CMD_LIST) {
		c->p++;
		extended = true;
		for (;;) {
			char *p = imap_pc_list_mailbox(c);
			if (p == NULL)
				return false;
			imap_words_add(cmd, p);
			if (imap_pc_peek(c, ')')) {
				c->p++;
				break;
			}
			if (!imap_pc_sp(c))
				return false;
		}
	} else {
		char *p = imap_pc_list_mailbox(c);
		if (p == NULL)
			return false;
		imap_words_add(cmd, p);
	}
	if (imap_pc_eof(c) || cmd->cmd != IMAP_CMD_LIST)
		return imap_pc_end(c);
	(void)extended;
	if (!imap_pc_sp(c) || !imap_pc_word(c, "RETURN") || !imap_pc_sp(c) ||
	    !imap_pc_char(c, '(', "bad list return options"))
		return imap_pc_fail(c, "bad list return options");
	while (!imap_pc_peek(c, ')')) {
		if (imap_pc_word(c, "SUBSCRIBED"))
			cmd->list_opts |= IMAP_LIST_RET_SUBSCRIBED;
		else if (imap_pc_word(c, "CHILDREN"))
			cmd->list_opts |= IMAP_LIST_RET_CHILDREN;
		else if (imap_pc_word(c, "SPECIAL-USE"))
			cmd->list_opts |= IMAP_LIST_RET_SPECIAL_USE;
		else if (imap_pc_word(c, "STATUS")) {
			cmd->list_opts |= IMAP_LIST_RET_STATUS;
			if (!imap_pc_sp(c) ||
			    !imap_pc_status_items(c, &cmd->status_items))
				return false;
		} else
			return imap_pc_fail(c, "unknown list return option");
		if (imap_pc_peek(c, ' '))
			c->p++;
		else if (!imap_pc_peek(c, ')'))
			return imap_pc_fail(c, "bad list return options");
	}
	c->p++;
	return imap_pc_end(c);
}

static bool
args_append(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!args_mailbox(c, cmd) || !imap_pc_sp(c))
		return false;
	if (imap_pc_peek(c, '(')) {
		cmd->has_flags = true;
		if (!imap_pc_flag_list(c, &cmd->flags, false) || !imap_pc_sp(c))
			return false;
	}
	if (imap_pc_peek(c, '"')) {
		char *d = imap_pc_quoted(c);
		if (d == NULL)
			return false;
		cmd->date = imap_parse_date_time(d, strlen(d));
		free(d);
		if (cmd->date < 0)
			return imap_pc_fail(c, "bad date-time");
		if (!imap_pc_sp(c))
			return false;
	}
	if (imap_pc_word(c, "UTF8")) {
		/* UTF8 (literal8), RFC 6855 */
		if (!imap_pc_sp(c) ||
		    !imap_pc_char(c, '(', "bad UTF8 append") ||
		    !imap_pc_literal_raw(c, &cmd->message, &cmd->message_len,
					 c->lim->append_limit,
					 &cmd->message_binary,
					 c->lim->spooled) ||
		    !imap_pc_char(c, ')', "bad UTF8 append"))
			return imap_pc_fail(c, "bad UTF8 append");
	} else if (!imap_pc_literal_raw(c, &cmd->message, &cmd->message_len,
					c->lim->append_limit,
					&cmd->message_binary,
					c->lim->spooled)) {
		return false;
	}
	if (!cmd->message_binary && cmd->message != NULL &&
	    memchr(cmd->message, '\0', cmd->message_len) != NULL)
		return imap_pc_fail(c, "NUL byte in message (use literal8)");
	if (!imap_pc_eof(c))
		return imap_pc_fail(c,
				    "only one message per APPEND is supported");
	return true;
}

static bool
args_search(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c))
		return false;
	cmd->search.kind = IMAP_SK_AND;
	if (imap_pc_word(c, "RETURN")) {
		cmd->esearch = true;
		if (!imap_pc_sp(c) ||
		    !imap_pc_char(c, '(', "bad search return options"))
			return false;
		while (!imap_pc_peek(c, ')')) {
			if (imap_pc_word(c, "MIN"))
				cmd->search_return |= IMAP_RET_MIN;
			else if (imap_pc_word(c, "MAX"))
				cmd->search_return |= IMAP_RET_MAX;
			else if (imap_pc_word(c, "ALL"))
				cmd->search_return |= IMAP_RET_ALL;
			else if (imap_pc_word(c, "COUNT"))
				cmd->search_return |= IMAP_RET_COUNT;
			else if (imap_pc_word(c, "SAVE"))
				cmd->search_return |= IMAP_RET_SAVE;
			else
				return imap_pc_fail(c, "unknown search return "
						       "option");
			if (imap_pc_peek(c, ' '))
				c->p++;
			else if (!imap_pc_peek(c, ')'))
				return imap_pc_fail(
					c, "bad search return options");
		}
		c->p++;
		if (cmd->search_return == 0)
			cmd->search_return = IMAP_RET_ALL;
		if (!imap_pc_sp(c))
			return false;
	}
	if (imap_pc_word(c, "CHARSET")) {
		if (!imap_pc_sp(c) ||
		    (cmd->charset = imap_pc_astring(c)) == NULL ||
		    !imap_pc_sp(c))
			return imap_pc_fail(c, "bad charset");
	}
	for (;;) {
		if (!imap_pc_search_key(c, imap_key_child(&cmd->search)))
			return false;
		if (imap_pc_eof(c))
			return true;
		if (!imap_pc_sp(c))
			return false;
	}
}

static bool
args_fetch(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c) || !imap_pc_seqset(c, &cmd->set) || !imap_pc_sp(c) ||
	    !imap_pc_fetch_atts(c, cmd))
		return false;
	if (imap_pc_eof(c))
		return true;
	if (!imap_pc_sp(c) || !imap_pc_char(c, '(', "bad fetch modifiers"))
		return false;
	for (;;) {
		if (imap_pc_word(c, "CHANGEDSINCE")) {
			if (!imap_pc_sp(c) ||
			    !imap_pc_number64(c, &cmd->changedsince, INT64_MAX))
				return false;
			cmd->has_changedsince = true;
		} else if (imap_pc_word(c, "VANISHED")) {
			cmd->vanished = true;
		} else {
			return imap_pc_fail(c, "unknown fetch modifier");
		}
		if (imap_pc_peek(c, ')')) {
			c->p++;
			break;
		}
		if (!imap_pc_sp(c))
			return false;
	}
	if (cmd->vanished && (!cmd->uid || !cmd->has_changedsince))
		return imap_pc_fail(
			c, "VANISHED needs UID FETCH with CHANGEDSINCE");
	return imap_pc_end(c);
}

static bool
args_store(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c) || !imap_pc_seqset(c, &cmd->set) || !imap_pc_sp(c))
		return false;
	if (imap_pc_peek(c, '(')) {
		c->p++;
		if (!imap_pc_word(c, "UNCHANGEDSINCE") || !imap_pc_sp(c) ||
		    !imap_pc_number64(c, &cmd->unchangedsince, INT64_MAX) ||
		    !imap_pc_char(c, ')', "bad store modifiers"))
			return imap_pc_override(c, "bad store modifiers");
		cmd->has_unchangedsince = true;
		if (!imap_pc_sp(c))
			return false;
	}
	if (imap_pc_peek(c, '+')) {
		cmd->store_mode = 1;
		c->p++;
	} else if (imap_pc_peek(c, '-')) {
		cmd->store_mode = -1;
		c->p++;
	}
	if (imap_pc_word(c, "FLAGS.SILENT"))
		cmd->silent = true;
	else if (!imap_pc_word(c, "FLAGS"))
		return imap_pc_fail(c, "expected FLAGS, +FLAGS or -FLAGS");
	if (!imap_pc_sp(c))
		return false;
	cmd->has_flags = true;
	return imap_pc_flag_list(c, &cmd->flags, true) && imap_pc_end(c);
}

static bool
args_copy(struct imap_pcur *c, struct imap_command *cmd)
{
	return imap_pc_sp(c) && imap_pc_seqset(c, &cmd->set) && imap_pc_sp(c) &&
	       (cmd->mailbox = imap_pc_mailbox(c)) != NULL && imap_pc_end(c);
}

static bool
args_expunge(struct imap_pcur *c, struct imap_command *cmd)
{
	if (cmd->uid && (!imap_pc_sp(c) || !imap_pc_seqset(c, &cmd->set)))
		return false;
	return imap_pc_end(c);
}

static bool
args_words(struct imap_pcur *c, struct imap_command *cmd)
{
	/* ENABLE capability *(SP capability) */
	for (;;) {
		if (!imap_pc_sp(c))
			return false;
		char *w = imap_pc_atom(c);
		if (w == NULL)
			return false;
		imap_words_add(cmd, w);
		if (imap_pc_eof(c))
			return true;
	}
}

static bool
args_id(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c))
		return false;
	if (imap_pc_word(c, "NIL"))
		return imap_pc_end(c);
	if (!imap_pc_char(c, '(', "expected NIL or a parameter list"))
		return false;
	if (imap_pc_peek(c, ')')) {
		c->p++;
		return imap_pc_end(c);
	}
	for (unsigned n = 0;; n++) {
		if (n >= 30)
			return imap_pc_fail(c, "too many ID fields");
		char *k = imap_pc_string(c);
		if (k == NULL || !imap_pc_sp(c)) {
			free(k);
			return imap_pc_override(c, "bad ID parameter list");
		}
		bool nil;
		char *v = imap_pc_nstring(c, &nil);
		if (v == NULL && !nil) {
			free(k);
			return imap_pc_override(c, "bad ID parameter list");
		}
		imap_words_add(cmd, k);
		imap_words_add(cmd, v != NULL ? v : ts_xstrdup("NIL"));
		if (imap_pc_peek(c, ')')) {
			c->p++;
			return imap_pc_end(c);
		}
		if (!imap_pc_sp(c))
			return false;
	}
}

static bool
args_authenticate(struct imap_pcur *c, struct imap_command *cmd)
{
	if (!imap_pc_sp(c) || (cmd->mechanism = imap_pc_atom(c)) == NULL)
		return imap_pc_override(c, "expected a SASL mechanism");
	if (imap_pc_eof(c))
		return true;
	if (!imap_pc_sp(c))
		return false;
	/* SASL-IR: base64 or "=" for an empty response */
	const char *s = c->p;
	while (c->p < c->end && *c->p != ' ')
		c->p++;
	if (c->p == s)
		return imap_pc_fail(c, "bad initial response");
	cmd->has_initial = true;
	cmd->initial = ts_xstrndup(s, (size_t)(c->p - s));
	return imap_pc_end(c);
}

static bool
args_login(struct imap_pcur *c, struct imap_command *cmd)
{
	/* A generic complaint names the missing argument instead. */
	if (!imap_pc_sp(c) || (cmd->user = imap_pc_astring(c)) == NULL) {
		if (imap_pc_generic(c))
			c->error = "expected a user name";
		return false;
	}
	if (!imap_pc_sp(c) || (cmd->password = imap_pc_astring(c)) == NULL) {
		if (imap_pc_generic(c))
			c->error = "expected a password";
		return false;
	}
	return imap_pc_end(c);
}

struct imap_verb {
	const char *name;
	enum imap_cmd cmd;
	bool (*args)(struct imap_pcur *c, struct imap_command *cmd);
	bool uid_ok;
};

static const struct imap_verb imap_verbs[] = {
	{ "CAPABILITY", IMAP_CMD_CAPABILITY, NULL, false },
	{ "NOOP", IMAP_CMD_NOOP, NULL, false },
	{ "LOGOUT", IMAP_CMD_LOGOUT, NULL, false },
	{ "STARTTLS", IMAP_CMD_STARTTLS, NULL, false },
	{ "AUTHENTICATE", IMAP_CMD_AUTHENTICATE, args_authenticate, false },
	{ "LOGIN", IMAP_CMD_LOGIN, args_login, false },
	{ "ENABLE", IMAP_CMD_ENABLE, args_words, false },
	{ "ID", IMAP_CMD_ID, args_id, false },
	{ "SELECT", IMAP_CMD_SELECT, args_select, false },
	{ "EXAMINE", IMAP_CMD_EXAMINE, args_select, false },
	{ "CREATE", IMAP_CMD_CREATE, args_create, false },
	{ "DELETE", IMAP_CMD_DELETE, args_mailbox, false },
	{ "RENAME", IMAP_CMD_RENAME, args_rename, false },
	{ "SUBSCRIBE", IMAP_CMD_SUBSCRIBE, args_mailbox, false },
	{ "UNSUBSCRIBE", IMAP_CMD_UNSUBSCRIBE, args_mailbox, false },
	{ "LIST", IMAP_CMD_LIST, args_list, false },
	{ "LSUB", IMAP_CMD_LSUB, args_list, false },
	{ "NAMESPACE", IMAP_CMD_NAMESPACE, NULL, false },
	{ "STATUS", IMAP_CMD_STATUS, args_status, false },
	{ "APPEND", IMAP_CMD_APPEND, args_append, false },
	{ "IDLE", IMAP_CMD_IDLE, NULL, false },
	{ "CHECK", IMAP_CMD_CHECK, NULL, false },
	{ "CLOSE", IMAP_CMD_CLOSE, NULL, false },
	{ "UNSELECT", IMAP_CMD_UNSELECT, NULL, false },
	{ "EXPUNGE", IMAP_CMD_EXPUNGE, args_expunge, true },
	{ "SEARCH", IMAP_CMD_SEARCH, args_search, true },
	{ "FETCH", IMAP_CMD_FETCH, args_fetch, true },
	{ "STORE", IMAP_CMD_STORE, args_store, true },
	{ "COPY", IMAP_CMD_COPY, args_copy, true },
	{ "MOVE", IMAP_CMD_MOVE, args_copy, true },
};

static bool
tag_char(unsigned char ch)
{
	return imap_astring_char(ch) && ch != '+';
}

int
imap_parse_command(const char *buf, size_t len,
		   const struct imap_parse_limits *limits,
		   struct imap_command *cmd, const char **error_r)
{
	struct imap_pcur c = { .p = buf, .end = buf + len, .lim = limits };
	memset(cmd, 0, sizeof(*cmd));
	cmd->flags.keywords = NULL;
	cmd->tag = imap_pc_run(&c, tag_char, "missing or bad tag");
	if (cmd->tag == NULL) {
		*error_r = "missing or bad tag";
		return -1;
	}
	if (!imap_pc_peek(&c, ' ')) {
		*error_r = imap_pc_eof(&c) ? "missing command" : "bad tag";
		return -1;
	}
	c.p++;
	if (imap_pc_word(&c, "UID")) {
		cmd->uid = true;
		if (!imap_pc_sp(&c)) {
			*error_r = "missing command after UID";
			return -1;
		}
	}
	const struct imap_verb *verb = NULL;
	for (size_t i = 0; i < sizeof(imap_verbs) / sizeof(imap_verbs[0]);
	     i++) {
		if (imap_pc_word(&c, imap_verbs[i].name)) {
			verb = &imap_verbs[i];
			break;
		}
	}
	if (verb == NULL || (cmd->uid && !verb->uid_ok)) {
		*error_r = "unknown command";
		return -1;
	}
	cmd->cmd = verb->cmd;
	bool ok = verb->args != NULL ? verb->args(&c, cmd) : imap_pc_end(&c);
	if (ok && cmd->cmd == IMAP_CMD_DELETE)
		ok = imap_pc_end(&c);
	if (ok && cmd->cmd == IMAP_CMD_SUBSCRIBE)
		ok = imap_pc_end(&c);
	if (ok && cmd->cmd == IMAP_CMD_UNSUBSCRIBE)
		ok = imap_pc_end(&c);
	if (!ok) {
		*error_r = c.error != NULL ? c.error : "syntax error";
		return -1;
	}
	if (cmd->flags.keywords == NULL)
		cmd->flags.keywords = ts_xstrdup("");
	return 0;
}

void
imap_command_clear(struct imap_command *cmd)
{
	free(cmd->tag);
	free(cmd->mailbox);
	free(cmd->mailbox2);
	free(cmd->user);
	if (cmd->password != NULL)
		memset(cmd->password, 0, strlen(cmd->password));
	free(cmd->password);
	free(cmd->mechanism);
	if (cmd->initial != NULL)
		memset(cmd->initial, 0, strlen(cmd->initial));
	free(cmd->initial);
	for (size_t i = 0; i < cmd->word_count; i++)
		free(cmd->words[i]);
	free(cmd->words);
	imap_seqset_clear(&cmd->qr_known_uids);
	imap_seqset_clear(&cmd->qr_seq_match);
	imap_seqset_clear(&cmd->qr_uid_match);
	free(cmd->special_use);
	free(cmd->flags.keywords);
	imap_seqset_clear(&cmd->set);
	for (size_t i = 0; i < cmd->att_count; i++)
		imap_section_clear(&cmd->atts[i].section);
	free(cmd->atts);
	imap_search_key_clear(&cmd->search);
	free(cmd->charset);
	memset(cmd, 0, sizeof(*cmd));
}

/* --- line-level helpers -------------------------------------------------- */

int
imap_literal_suffix(const char *line, size_t len, uint64_t *size_r,
		    bool *sync_r, const char **error_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t i = len - 1;
	bool sync = true;
	bool minus = false;
	if (line[i - 1] == '+' || line[i - 1] == '-') {
		sync = false;
		minus = line[i - 1] == '-';
		i--;
	}
	size_t digits_end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '{')
		return 0;
	if (i == digits_end) {
		*error_r = "bad literal size";
		return -1;
	}
	uint64_t n = 0;
	for (size_t j = i; j < digits_end; j++) {
		if (n > (UINT64_MAX / 2) / 10) {
			*error_r = "literal too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(line[j] - '0');
	}
	if (minus && n > 4096) {
		*error_r = "non-synchronizing literal too large (LITERAL-)";
		return -1;
	}
	*size_r = n;
	*sync_r = sync;
	return 1;
}

bool
imap_looks_like_imap(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && tag_char((unsigned char)line[i]))
		i++;
	if (i == 0 || i >= len || line[i] != ' ')
		return false;
	i++;
	if (i >= len)
		return false;
	unsigned char ch = (unsigned char)line[i];
	if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
		return false;
	/* "GET / HTTP/1.1", "POST /x HTTP/1.0": a request line */
	if (len >= 9 && memcmp(line + len - 9, " HTTP/1.", 8) == 0)
		return false;
	return true;
}

char *
imap_line_tag(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && i < 64 && tag_char((unsigned char)line[i]))
		i++;
	if (i == 0 || i >= len || line[i] != ' ')
		return ts_xstrdup("*");
	return ts_xstrndup(line, i);
}
