/*
 * modules/imap/session.c — the IMAP session: input assembly, the state
 * machine (not authenticated / authenticated / selected / logout) and
 * command dispatch.
 *
 * Lines and literals are gathered into one buffer per command (a
 * synchronising literal gets "+ OK" first; LITERAL+ and LITERAL- ones do
 * not); when a line ends without a literal the command is complete and
 * parse.c reads it.  A command that waits for the store pauses input, so
 * pipelined commands run strictly in order.  The session outlives its
 * connection while store callbacks are due (pending/closed/destroyed).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

static struct imap_session *
imap_session(struct ts_conn *conn)
{
	return ts_conn_data(conn, ts_conn_protocol_ctx(conn));
}

void
imap_write(struct imap_session *s, const char *data, size_t len)
{
	if (!s->closed)
		(void)ts_conn_write(s->conn, data, len);
}

void
imap_send(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = ts_xvasprintf(fmt, ap);
	va_end(ap);
	if (!s->closed)
		ts_conn_printf(s->conn, "%s\r\n", text);
	free(text);
}

char *
imap_quote(const char *text)
{
	size_t len = strlen(text);
	bool literal = len > 1024;
	for (size_t i = 0; !literal && i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '\r' || ch == '\n' || ch >= 0x80)
			literal = true;
	}
	if (literal)
		return ts_xasprintf("{%zu}\r\n%s", len, text);
	char *out = ts_xmalloc(len * 2 + 3);
	size_t n = 0;
	out[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '"' || text[i] == '\\')
			out[n++] = '\\';
		out[n++] = text[i];
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

char *
imap_mailbox_out(const struct imap_session *s, const char *name)
{
	char *out;
	if (strncmp(name, "Inbox", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		out = ts_xasprintf("INBOX%s", name + 5);
	else
		out = ts_xstrdup(name);
	if (s->rev2)
		return out;
	char *enc = imap_mutf7_encode(out);
	free(out);
	return enc;
}

/* IMAP4rev1 names arrive in modified UTF-7: decode one in place. */
static bool
imap_name_in(char **name)
{
	if (*name == NULL || strchr(*name, '&') == NULL)
		return true;
	char *dec;
	if (imap_mutf7_decode(*name, &dec) != 0)
		return false;
	free(*name);
	*name = dec;
	return true;
}

/* Decode the mailbox names of a command (not for IMAP4rev2 clients). */
static bool
imap_names_in(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	if (s->rev2)
		return true;
	bool ok = imap_name_in(&c->mailbox) && imap_name_in(&c->mailbox2);
	if (c->cmd == IMAP_CMD_LIST || c->cmd == IMAP_CMD_LSUB)
		for (size_t i = 0; ok && i < c->word_count; i++)
			ok = imap_name_in(&c->words[i]);
	return ok;
}

/* --- lifetime ------------------------------------------------------------ */

void
imap_store_ref(struct imap_session *s)
{
	s->pending++;
}

static void imap_session_free_now(struct imap_session *s);

bool
imap_store_unref(struct imap_session *s)
{
	s->pending--;
	if (!s->closed)
		return false;
	if (s->destroyed && s->pending == 0)
		imap_session_free_now(s);
	return true;
}

bool
imap_gone(struct imap_session *s)
{
	return s->closed;
}

bool
imap_user_add(struct imap_session *s, const char *account)
{
	struct imap_module *m = imap_module(s->ctx);
	struct imap_user_count *u;
	for (u = m->users; u != NULL; u = u->next)
		if (strcmp(u->account, account) == 0)
			break;
	if (u == NULL) {
		u = ts_xcalloc(1, sizeof(*u));
		u->account = ts_xstrdup(account);
		u->next = m->users;
		m->users = u;
	}
	if (u->count >= m->set->max_connections_per_user)
		return false;
	u->count++;
	s->counted = true;
	return true;
}

static void
imap_user_remove(struct imap_session *s)
{
	if (!s->counted)
		return;
	s->counted = false;
	struct imap_module *m = imap_module(s->ctx);
	for (struct imap_user_count **p = &m->users; *p != NULL;
	     p = &(*p)->next) {
		struct imap_user_count *u = *p;
		if (strcmp(u->account, s->account) != 0)
			continue;
		if (--u->count == 0) {
			*p = u->next;
			free(u->account);
			free(u);
		}
		return;
	}
}

static void
imap_session_free_now(struct imap_session *s)
{
	imap_spool_discard(s);
	imap_command_clear(&s->cmd);
	imap_auth_reset(s);
	imap_msgs_clear(s);
	free(s->mailbox);
	free(s->special_use);
	free(s->box_keywords);
	free(s->saved);
	free(s->buf);
	free(s->cmd_buf);
	free(s->idle_tag);
	ts_timer_free(&s->idle_timer);
	ts_store_unref(&s->store);
	free(s->account);
	free(s);
}

static void
imap_session_destroy(void *data)
{
	struct imap_session *s = data;
	s->closed = true;
	s->destroyed = true;
	if (s->pending == 0)
		imap_session_free_now(s);
}

/* --- capabilities -------------------------------------------------------- */

char *
imap_capabilities(const struct imap_session *s)
{
	struct imap_settings *set = imap_settings(s->ctx);
	char *c = ts_xstrdup("IMAP4rev1 IMAP4rev2");
	char *t;
	if (s->state == IMAP_NOT_AUTHENTICATED) {
		if (ts_conn_tls_offered(s->conn)) {
			t = ts_xasprintf("%s STARTTLS", c);
			free(c);
			c = t;
		}
		if (!imap_login_allowed(s)) {
			t = ts_xasprintf("%s LOGINDISABLED", c);
		} else {
			const char *mechs = imap_auth_mechanisms(s);
			char *m = ts_xstrdup(mechs);
			char *list = ts_xstrdup("");
			for (char *w = strtok(m, " "); w != NULL;
			     w = strtok(NULL, " ")) {
				char *l = ts_xasprintf("%s AUTH=%s", list, w);
				free(list);
				list = l;
			}
			t = ts_xasprintf("%s%s SASL-IR", c, list);
			free(m);
			free(list);
		}
		free(c);
		c = t;
	}
	t = ts_xasprintf(
		"%s LITERAL+ ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE ID "
		"CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE "
		"CREATE-SPECIAL-USE CONDSTORE QRESYNC ESEARCH SEARCHRES "
		"STATUS=SIZE BINARY APPENDLIMIT=%" PRIu64,
		c, set->append_limit);
	free(c);
	return t;
}

/* --- finishing commands -------------------------------------------------- */

void
imap_busy(struct imap_session *s)
{
	s->input = IMAP_IN_BUSY;
	if (!s->closed)
		ts_conn_pause(s->conn);
}

/* Whether the running command may be followed by EXPUNGE responses. */
static bool
imap_expunge_allowed(const struct imap_session *s)
{
	if (!s->cmd_active)
		return true;
	switch (s->cmd.cmd) {
	case IMAP_CMD_FETCH:
	case IMAP_CMD_STORE:
	case IMAP_CMD_SEARCH:
		/* RFC 3501 section 7.4.1; UID variants too, to be safe */
		return false;
	default:
		return true;
	}
}

void
imap_done(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = ts_xvasprintf(fmt, ap);
	va_end(ap);
	if (s->state == IMAP_SELECTED && !s->selecting)
		imap_flush_updates(s, imap_expunge_allowed(s));
	imap_send(s, "%s %s", s->cmd.tag != NULL ? s->cmd.tag : "*", text);
	free(text);
	imap_command_clear(&s->cmd);
	free(s->cmd_buf);
	s->cmd_buf = NULL;
	s->cmd_active = false;
	if (s->state == IMAP_LOGOUT || s->closed)
		return;
	s->input = IMAP_IN_COMMAND;
	ts_conn_resume(s->conn);
}

/* Count a bad command; true when the session was closed for too many. */
static bool
imap_error(struct imap_session *s)
{
	s->errors++;
	if (s->errors < imap_settings(s->ctx)->max_errors)
		return false;
	imap_send(s, "* BYE too many bad commands");
	s->state = IMAP_LOGOUT;
	ts_conn_close(s->conn, "too many errors");
	return true;
}

static void
imap_bad(struct imap_session *s, const char *tag, const char *text)
{
	imap_send(s, "%s BAD %s", tag != NULL ? tag : "*", text);
	imap_error(s);
}

/* --- commands of every state -------------------------------------------- */

static void
imap_cmd_capability(struct imap_session *s)
{
	char *caps = imap_capabilities(s);
	imap_send(s, "* CAPABILITY %s", caps);
	free(caps);
	imap_done(s, "OK CAPABILITY completed");
}

static void
imap_cmd_logout(struct imap_session *s)
{
	imap_send(s, "* BYE logging out");
	s->state = IMAP_LOGOUT;
	imap_send(s, "%s OK LOGOUT completed", s->cmd.tag);
	imap_command_clear(&s->cmd);
	s->cmd_active = false;
	ts_conn_close(s->conn, "logout");
}

static void
imap_cmd_starttls(struct imap_session *s)
{
	if (!ts_conn_tls_offered(s->conn)) {
		imap_done(s, "BAD STARTTLS not available");
		return;
	}
	imap_send(s, "%s OK begin TLS negotiation now", s->cmd.tag);
	imap_command_clear(&s->cmd);
	s->cmd_active = false;
	s->input = IMAP_IN_BUSY;
	if (ts_conn_starttls(s->conn) != 0)
		ts_conn_close(s->conn, "starttls failed");
}

static void
imap_cmd_enable(struct imap_session *s)
{
	char *list = ts_xstrdup("");
	for (size_t i = 0; i < s->cmd.word_count; i++) {
		const char *w = s->cmd.words[i];
		bool *flag = NULL;
		if (strcasecmp(w, "CONDSTORE") == 0)
			flag = &s->condstore;
		else if (strcasecmp(w, "QRESYNC") == 0)
			flag = &s->qresync;
		else if (strcasecmp(w, "IMAP4rev2") == 0)
			flag = &s->rev2;
		if (flag == NULL || *flag)
			continue;
		*flag = true;
		if (flag == &s->qresync)
			s->condstore = true;
		char *t = ts_xasprintf("%s %s", list, w);
		free(list);
		list = t;
	}
	imap_send(s, "* ENABLED%s", list);
	free(list);
	imap_done(s, "OK ENABLE completed");
}

static void
imap_cmd_id(struct imap_session *s)
{
	imap_send(s, "* ID (\"name\" \"tessera\" \"version\" \"%s\")",
		  PACKAGE_VERSION);
	imap_done(s, "OK ID completed");
}

static void
imap_cmd_namespace(struct imap_session *s)
{
	imap_send(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_done(s, "OK NAMESPACE completed");
}

static void
imap_cmd_check(struct imap_session *s)
{
	imap_done(s, "OK CHECK completed");
}

static void
imap_cmd_unselect(struct imap_session *s)
{
	imap_unselect(s);
	imap_done(s, "OK UNSELECT completed");
}

/* Which states a command runs in: bit per enum imap_state. */
static unsigned
imap_cmd_states(enum imap_cmd cmd)
{
	const unsigned any = 1u << IMAP_NOT_AUTHENTICATED |
			     1u << IMAP_AUTHENTICATED | 1u << IMAP_SELECTED;
	const unsigned authed = 1u << IMAP_AUTHENTICATED | 1u << IMAP_SELECTED;
	switch (cmd) {
	case IMAP_CMD_CAPABILITY:
	case IMAP_CMD_NOOP:
	case IMAP_CMD_LOGOUT:
	case IMAP_CMD_ID:
		return any;
	case IMAP_CMD_STARTTLS:
	case IMAP_CMD_AUTHENTICATE:
	case IMAP_CMD_LOGIN:
		return 1u << IMAP_NOT_AUTHENTICATED;
	case IMAP_CMD_CHECK:
	case IMAP_CMD_CLOSE:
	case IMAP_CMD_UNSELECT:
	case IMAP_CMD_EXPUNGE:
	case IMAP_CMD_SEARCH:
	case IMAP_CMD_FETCH:
	case IMAP_CMD_STORE:
	case IMAP_CMD_COPY:
	case IMAP_CMD_MOVE:
		return 1u << IMAP_SELECTED;
	default:
		return authed;
	}
}

static void
imap_dispatch(struct imap_session *s)
{
	struct imap_command *c = &s->cmd;
	if (!(imap_cmd_states(c->cmd) & (1u << s->state))) {
		unsigned ok = imap_cmd_states(c->cmd);
		const char *why = s->state == IMAP_NOT_AUTHENTICATED
					  ? "BAD log in first"
				  : ok == 1u << IMAP_NOT_AUTHENTICATED
					  ? "BAD already authenticated"
					  : "BAD no mailbox selected";
		imap_done(s, "%s", why);
		imap_error(s);
		return;
	}
	switch (c->cmd) {
	case IMAP_CMD_CAPABILITY:
		imap_cmd_capability(s);
		break;
	case IMAP_CMD_NOOP:
		imap_done(s, "OK NOOP completed");
		break;
	case IMAP_CMD_LOGOUT:
		imap_cmd_logout(s);
		break;
	case IMAP_CMD_STARTTLS:
		imap_cmd_starttls(s);
		break;
	case IMAP_CMD_AUTHENTICATE:
		imap_cmd_authenticate(s);
		break;
	case IMAP_CMD_LOGIN:
		imap_cmd_login(s);
		break;
	case IMAP_CMD_ENABLE:
		imap_cmd_enable(s);
		break;
	case IMAP_CMD_ID:
		imap_cmd_id(s);
		break;
	case IMAP_CMD_SELECT:
	case IMAP_CMD_EXAMINE:
		imap_cmd_select(s);
		break;
	case IMAP_CMD_CREATE:
		imap_cmd_create(s);
		break;
	case IMAP_CMD_DELETE:
		imap_cmd_delete(s);
		break;
	case IMAP_CMD_RENAME:
		imap_cmd_rename(s);
		break;
	case IMAP_CMD_SUBSCRIBE:
	case IMAP_CMD_UNSUBSCRIBE:
		imap_cmd_subscribe(s);
		break;
	case IMAP_CMD_LIST:
	case IMAP_CMD_LSUB:
		imap_cmd_list(s);
		break;
	case IMAP_CMD_NAMESPACE:
		imap_cmd_namespace(s);
		break;
	case IMAP_CMD_STATUS:
		imap_cmd_status(s);
		break;
	case IMAP_CMD_APPEND:
		imap_cmd_append(s);
		break;
	case IMAP_CMD_IDLE:
		imap_cmd_idle(s);
		break;
	case IMAP_CMD_CHECK:
		imap_cmd_check(s);
		break;
	case IMAP_CMD_CLOSE:
		imap_cmd_close(s);
		break;
	case IMAP_CMD_UNSELECT:
		imap_cmd_unselect(s);
		break;
	case IMAP_CMD_EXPUNGE:
		imap_cmd_expunge(s);
		break;
	case IMAP_CMD_SEARCH:
		imap_cmd_search(s);
		break;
	case IMAP_CMD_FETCH:
		imap_cmd_fetch(s);
		break;
	case IMAP_CMD_STORE:
		imap_cmd_store(s);
		break;
	case IMAP_CMD_COPY:
	case IMAP_CMD_MOVE:
		imap_cmd_copy(s);
		break;
	}
}

/* --- input assembly ------------------------------------------------------ */

static void
imap_buf_add(struct imap_session *s, const char *data, size_t len)
{
	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->buf = ts_xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
}

static void
imap_buf_reset(struct imap_session *s)
{
	s->len = 0;
	s->buf_append = false;
	/* Do not keep a large APPEND's buffer around. */
	if (s->cap > 65536) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
}

/* The command in the buffer is complete: parse and run it. */
static void
imap_command_complete(struct imap_session *s)
{
	struct imap_settings *set = imap_settings(s->ctx);
	struct imap_parse_limits lim = {
		.max_literal = set->max_literal,
		.append_limit = set->append_limit,
		.max_depth = 32,
	};
	uint64_t spooled;
	if (imap_spool_ready(s, &spooled))
		lim.spooled = spooled;
	const char *error = NULL;
	imap_command_clear(&s->cmd);
	int rc = imap_parse_command(s->buf, s->len, &lim, &s->cmd, &error);
	/* A spooled literal belongs to an APPEND that uses it, or nobody. */
	if (rc != 0 || s->cmd.cmd != IMAP_CMD_APPEND || s->cmd.message != NULL)
		imap_spool_discard(s);
	if (rc != 0) {
		char *tag = s->cmd.tag != NULL ? ts_xstrdup(s->cmd.tag) : NULL;
		imap_command_clear(&s->cmd);
		imap_buf_reset(s);
		imap_bad(s, tag, error);
		free(tag);
		return;
	}
	if (!imap_names_in(s)) {
		char *tag = ts_xstrdup(s->cmd.tag);
		imap_command_clear(&s->cmd);
		imap_spool_discard(s);
		imap_buf_reset(s);
		imap_bad(s, tag, "invalid modified UTF-7 mailbox name");
		free(tag);
		return;
	}
	s->cmd_active = true;
	/*
	 * The buffer is free for the next command before this one runs
	 * (input may resume inside it); APPEND's message points into it,
	 * so APPEND takes it along.
	 */
	if (s->cmd.cmd == IMAP_CMD_APPEND) {
		free(s->cmd_buf);
		s->cmd_buf = s->buf;
		s->buf = NULL;
		s->cap = 0;
		s->len = 0;
		s->buf_append = false;
	} else {
		imap_buf_reset(s);
	}
	imap_dispatch(s);
}

static void
imap_command_line(struct imap_session *s, const char *line, size_t len)
{
	struct imap_settings *set = imap_settings(s->ctx);
	if (memchr(line, '\0', len) != NULL) {
		char *tag = imap_line_tag(line, len);
		imap_buf_reset(s);
		imap_bad(s, tag, "NUL byte in command");
		free(tag);
		return;
	}
	if (s->len == 0) {
		/* APPEND has its own, larger limit for its literal. */
		const char *sp = memchr(line, ' ', len);
		if (sp != NULL) {
			size_t rest = len - (size_t)(sp + 1 - line);
			s->buf_append = rest >= 7 &&
					strncasecmp(sp + 1, "APPEND ", 7) == 0;
		}
	}
	imap_buf_add(s, line, len);
	uint64_t size;
	bool sync;
	const char *error = NULL;
	int lit = imap_literal_suffix(line, len, &size, &sync, &error);
	if (lit == 0) {
		imap_command_complete(s);
		return;
	}
	/*
	 * APPEND's message may be up to append_limit (a large one goes to
	 * a spool file, not into the buffer); anything else counts against
	 * max_command_size.
	 */
	bool spool = s->buf_append && size >= IMAP_SPOOL_MIN;
	uint64_t cap = s->buf_append ? set->append_limit : set->max_command;
	uint64_t used = s->buf_append ? 0 : s->len;
	if (lit < 0 || size > cap || used + size > cap ||
	    (s->buf_append && s->len > set->max_command) ||
	    (spool && s->spool != NULL)) {
		char *tag = imap_line_tag(s->buf, s->len);
		imap_buf_reset(s);
		if (lit > 0 && !sync) {
			/* The bytes are on their way: tell, and hang up. */
			imap_send(s, "* BYE literal too large");
			ts_conn_close(s->conn, "literal too large");
		} else if (lit > 0) {
			imap_send(s, "%s NO [TOOBIG] literal too large", tag);
		} else {
			imap_bad(s, tag, error);
		}
		free(tag);
		return;
	}
	imap_buf_add(s, "\r\n", 2);
	if (sync)
		imap_send(s, "+ OK");
	if (size == 0)
		return; /* the next line continues the command */
	if (s->buf_append && size >= IMAP_SPOOL_MIN && s->spool == NULL) {
		/* a message: to a file as it arrives, not into memory */
		imap_spool_begin(s, size);
		return;
	}
	s->input = IMAP_IN_LITERAL;
	(void)ts_conn_read_bytes(s->conn, size);
}

/* --- protocol callbacks -------------------------------------------------- */

static void
imap_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	struct imap_session *s = ts_xcalloc(1, sizeof(*s));
	s->conn = conn;
	s->ctx = ctx;
	s->implicit_tls = ts_conn_tls_active(conn);
	ts_conn_set_data(conn, ctx, s, imap_session_destroy);
	if (res->verdict == TS_VERDICT_REJECT ||
	    res->verdict == TS_VERDICT_TEMPFAIL) {
		imap_send(s, "* BYE %s",
			  res->text != NULL ? res->text : "go away");
		ts_conn_close(conn, "refused at connect");
		return;
	}
	char *caps = imap_capabilities(s);
	imap_send(s, "* OK [CAPABILITY %s] tessera ready", caps);
	free(caps);
}

static void
imap_line(struct ts_conn *conn, const char *line, size_t len)
{
	struct imap_session *s = imap_session(conn);
	if (s == NULL || s->closed || ts_conn_closing(conn))
		return;
	if (!s->seen_line) {
		s->seen_line = true;
		if (!imap_looks_like_imap(line, len)) {
			ts_conn_log(conn, s->ctx, TS_LOG_INFO,
				    "first command is not imap, closing");
			ts_conn_close(conn, "not imap");
			return;
		}
	}
	switch (s->input) {
	case IMAP_IN_COMMAND:
		imap_command_line(s, line, len);
		return;
	case IMAP_IN_AUTH:
		imap_auth_line(s, line, len);
		return;
	case IMAP_IN_IDLE:
		imap_idle_line(s, line, len);
		return;
	case IMAP_IN_LITERAL:
	case IMAP_IN_SPOOL:
	case IMAP_IN_DISCARD:
	case IMAP_IN_BUSY:
		return;
	}
}

static void
imap_data(struct ts_conn *conn, const char *data, size_t len, bool last)
{
	struct imap_session *s = imap_session(conn);
	if (s == NULL || s->closed)
		return;
	if (s->input == IMAP_IN_SPOOL) {
		imap_spool_data(s, data, len, last);
		return;
	}
	if (s->input == IMAP_IN_LITERAL)
		imap_buf_add(s, data, len);
	if (last)
		s->input = IMAP_IN_COMMAND;
}

static void
imap_line_too_long(struct ts_conn *conn)
{
	struct imap_session *s = imap_session(conn);
	if (s == NULL)
		return;
	if (!s->seen_line) {
		ts_conn_close(conn, "not imap");
		return;
	}
	imap_buf_reset(s);
	if (s->input == IMAP_IN_AUTH) {
		imap_auth_reset(s);
		s->input = IMAP_IN_COMMAND;
	}
	imap_bad(s, "*", "line too long");
}

static void
imap_shutdown(struct ts_conn *conn)
{
	struct imap_session *s = imap_session(conn);
	if (s != NULL)
		imap_send(s, "* BYE server shutting down");
	ts_conn_close(conn, "shutdown");
}

static void
imap_close(struct ts_conn *conn)
{
	struct imap_session *s = imap_session(conn);
	if (s == NULL)
		return;
	ts_hook_run_cancel(&s->run);
	imap_fetch_abort(s);
	imap_search_abort(s);
	imap_idle_stop(s);
	imap_notify_detach(s);
	imap_user_remove(s);
	imap_spool_discard(s);
	s->closed = true;
	if (s->sasl != NULL)
		ts_sasl_cancel(s->sasl);
}

static void
imap_tls_ready(struct ts_conn *conn)
{
	struct imap_session *s = imap_session(conn);
	if (s == NULL)
		return;
	imap_buf_reset(s);
	s->input = IMAP_IN_COMMAND;
	ts_conn_resume(conn);
}

static void
imap_drained(struct ts_conn *conn)
{
	struct imap_session *s = imap_session(conn);
	if (s != NULL && !s->closed)
		imap_fetch_drained(s);
}

const struct ts_protocol imap_protocol = {
	.open = imap_open,
	.line = imap_line,
	.data = imap_data,
	.line_too_long = imap_line_too_long,
	.shutdown = imap_shutdown,
	.close = imap_close,
	.tls_ready = imap_tls_ready,
	.drained = imap_drained,
};
