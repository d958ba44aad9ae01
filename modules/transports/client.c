/*
 * modules/transports/client.c — the SMTP client state machine.
 *
 * Pure: it consumes server reply lines and produces the commands to send
 * (see client.h).  The conversation follows RFC 5321 with the extensions
 * a modern MTA uses: EHLO with a HELO fallback on 5xx, opportunistic or
 * required STARTTLS (RFC 3207; EHLO again afterwards), PIPELINING (RFC
 * 2920: MAIL, every RCPT and DATA in one group), SIZE (RFC 1870),
 * 8BITMIME (RFC 6152), CHUNKING/BINARYMIME (RFC 3030), SMTPUTF8 (RFC
 * 6531), DSN (RFC 3461), REQUIRETLS (RFC 8689) and enhanced status codes
 * (RFC 2034, 3463).  Expected replies sit in a FIFO, so the pipelined
 * and the lock-step conversations share one code path.  Sockets, timers,
 * files and DNS are the caller's (transports.c); this file is not.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* Where the conversation stands. */
enum tr_state {
	TR_S_GREETING, /* waiting for 220 */
	TR_S_EHLO, /* EHLO sent */
	TR_S_HELO, /* HELO sent after EHLO got 5xx */
	TR_S_STARTTLS, /* STARTTLS sent */
	TR_S_TLS_WAIT, /* 220 to STARTTLS: the caller runs the handshake */
	TR_S_AUTH, /* AUTH or a response sent: 334 or 235 expected */
	TR_S_AUTH_CANCEL, /* "*" sent: the server's refusal expected */
	TR_S_TXN, /* MAIL, RCPT, DATA/BDAT replies in the FIFO */
	TR_S_BODY, /* taking message bytes */
	TR_S_QUIT, /* QUIT sent (or about to close) */
	TR_S_IDLE, /* keep_open: the transaction is over, the session kept */
	TR_S_RSET, /* reused: RSET sent, its 250 expected before MAIL */
};

/* What a reply in the FIFO answers. */
enum tr_expect_kind {
	TR_E_MAIL,
	TR_E_RCPT,
	TR_E_DATA, /* 354 expected */
	TR_E_DATA_END, /* the final reply after "." */
	TR_E_BDAT, /* a chunk that is not the last */
	TR_E_BDAT_LAST, /* the final reply after BDAT … LAST */
	TR_E_IGNORE, /* an empty message sent to end a refused DATA */
};

struct tr_expect {
	enum tr_expect_kind kind;
	size_t rcpt; /* TR_E_RCPT */
};

struct tr_client {
	struct tr_client_params p;
	enum tr_state state;
	enum tr_want want;

	unsigned caps;
	uint64_t max_size;
	bool tls_on;
	bool saw_starttls, saw_requiretls, saw_ehlo;
	char *auth_offered; /* the last EHLO's AUTH list */
	bool authenticated;
	const char *auth_why; /* why our side cancelled the exchange */

	/* the reply being read */
	size_t reply_lines;
	int reply_code;
	char reply_enhanced[16];
	char *reply_text;
	size_t reply_text_len;

	/* output */
	char *out;
	size_t out_len, out_cap;

	/* expected replies, oldest first */
	struct tr_expect *fifo;
	size_t fifo_head, fifo_len, fifo_cap;

	/* the transaction */
	struct tr_result *results;
	bool *accepted; /* per recipient: RCPT got 2xx */
	size_t accepted_count;
	size_t rcpts_answered;
	size_t next_rcpt; /* lock-step: the next RCPT to send */
	bool mail_answered;
	bool abandoned; /* MAIL failed or no recipient: drain, then QUIT */
	bool use_bdat;
	bool body_ended;
	bool bdat_wait; /* lock-step BDAT: a chunk's reply is awaited */
	bool at_bol; /* dot-stuffing state */
	bool body_any; /* at least one body byte went out */
	bool body_ends_lf; /* the last body byte was LF */

	bool done;
	bool host_failed;
};

/* --- small helpers ----------------------------------------------------- */

static void
tr_out_append(struct tr_client *c, const char *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 256;
		while (cap < c->out_len + len)
			cap *= 2;
		c->out = ts_xrealloc(c->out, cap);
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

static void TS_PRINTF(2, 3)
	tr_out_printf(struct tr_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = ts_xvasprintf(fmt, ap);
	va_end(ap);
	tr_out_append(c, s, strlen(s));
	free(s);
}

static void
tr_expect_push(struct tr_client *c, enum tr_expect_kind kind, size_t rcpt)
{
	if (c->fifo_head + c->fifo_len == c->fifo_cap) {
		if (c->fifo_head > 0) {
			memmove(c->fifo, c->fifo + c->fifo_head,
				c->fifo_len * sizeof(*c->fifo));
			c->fifo_head = 0;
		} else {
			c->fifo_cap = c->fifo_cap ? c->fifo_cap * 2 : 8;
			c->fifo = ts_xrealloc(c->fifo,
					      c->fifo_cap * sizeof(*c->fifo));
		}
	}
	c->fifo[c->fifo_head + c->fifo_len].kind = kind;
	c->fifo[c->fifo_head + c->fifo_len].rcpt = rcpt;
	c->fifo_len++;
}

static bool
tr_expect_pop(struct tr_client *c, struct tr_expect *e_r)
{
	if (c->fifo_len == 0)
		return false;
	*e_r = c->fifo[c->fifo_head];
	c->fifo_head++;
	c->fifo_len--;
	if (c->fifo_len == 0)
		c->fifo_head = 0;
	return true;
}

/* Set recipient i's result unless it has one. */
static void
tr_set_result(struct tr_client *c, size_t i, int code, const char *enhanced,
	      const char *text, bool remote)
{
	struct tr_result *r = &c->results[i];
	if (r->code != 0)
		return;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	r->text = ts_xstrdup(text != NULL ? text : "");
	r->remote = remote;
	c->done = true;
	for (size_t k = 0; k < c->p.rcpt_count; k++)
		if (c->results[k].code == 0)
			c->done = false;
}

/* Every recipient without a result gets this one. */
static void
tr_set_open(struct tr_client *c, int code, const char *enhanced,
	    const char *text, bool remote)
{
	if (!c->mail_answered)
		c->host_failed = true;
	for (size_t i = 0; i < c->p.rcpt_count; i++)
		tr_set_result(c, i, code, enhanced, text, remote);
	c->done = true;
}

/* Accepted recipients (RCPT 2xx) get the message's result. */
static void
tr_set_accepted(struct tr_client *c, int code, const char *enhanced,
		const char *text)
{
	for (size_t i = 0; i < c->p.rcpt_count; i++)
		if (c->accepted[i])
			tr_set_result(c, i, code, enhanced, text, true);
}

static void
tr_quit(struct tr_client *c)
{
	tr_out_printf(c, "QUIT\r\n");
	c->state = TR_S_QUIT;
	c->want = TR_WANT_REPLY;
}

/* Fail the open recipients with our own reason, then QUIT. */
static enum tr_want
tr_refuse(struct tr_client *c, int code, const char *enhanced, const char *text)
{
	tr_set_open(c, code, enhanced, text, false);
	tr_quit(c);
	return c->want;
}

/* "4.1.1"-style code for a reply without one: the class alone. */
static void
tr_default_enhanced(int code, char *buf, size_t size)
{
	snprintf(buf, size, "%d.0.0", code / 100);
}

/*
 * An enhanced status code (RFC 3463: class.subject.detail, 1-3 digits
 * each) at the start of text whose class matches the reply code's.
 * Returns its length (without the following space), or 0.
 */
static size_t
tr_enhanced_len(const char *text, int code)
{
	const char *p = text;
	if (p[0] != '0' + code / 100 || p[1] != '.')
		return 0;
	p += 2;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		while (n < 4 && p[n] >= '0' && p[n] <= '9')
			n++;
		if (n == 0 || n > 3)
			return 0;
		p += n;
		if (part == 0) {
			if (*p != '.')
				return 0;
			p++;
		}
	}
	if (*p != '\0' && *p != ' ')
		return 0;
	return (size_t)(p - text);
}

/* --- reply lines --------------------------------------------------------- */

int
tr_reply_line_parse(const char *line, size_t len, int *code_r, bool *more_r,
		    const char **text_r, const char **why_r)
{
	if (len > TR_REPLY_LINE_MAX) {
		*why_r = "line too long";
		return TS_E_INVAL;
	}
	if (memchr(line, '\0', len) != NULL) {
		*why_r = "NUL byte";
		return TS_E_INVAL;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9') {
		*why_r = "no reply code";
		return TS_E_INVAL;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*why_r = "no space or dash after the code";
		return TS_E_INVAL;
	}
	*code_r =
		(line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more_r = len > 3 && line[3] == '-';
	*text_r = len > 3 ? line + 4 : line + 3;
	return 0;
}

/* A printable excerpt of a bad line for the error text. */
static char *
tr_excerpt(const char *line, size_t len)
{
	size_t n = len < 60 ? len : 60;
	char *s = ts_xmalloc(n + 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		s[i] = ch >= 32 && ch < 127 && ch != '"' ? (char)ch : '?';
	}
	strcpy(s + n, len > n ? "..." : "");
	return s;
}

static enum tr_want
tr_protocol_error(struct tr_client *c, const char *why, const char *line,
		  size_t len)
{
	char *ex = line != NULL ? tr_excerpt(line, len) : NULL;
	char *text = ex != NULL ? ts_xasprintf("malformed reply from server "
					       "(%s): \"%s\"",
					       why, ex)
				: ts_xasprintf("malformed reply from server "
					       "(%s)",
					       why);
	tr_set_open(c, 451, "4.5.0", text, true);
	free(ex);
	free(text);
	/*
	 * The conversation is out of step: say QUIT, but do not wait —
	 * unless QUIT would go out in clear during a TLS handshake, or land
	 * inside the message data (the server drops a message that never
	 * got its final ".").
	 */
	if (c->state != TR_S_QUIT && c->state != TR_S_TLS_WAIT &&
	    !(c->state == TR_S_BODY && !c->use_bdat))
		tr_out_printf(c, "QUIT\r\n");
	c->state = TR_S_QUIT;
	c->want = TR_WANT_CLOSE;
	return c->want;
}

/* Append a line's text to the reply being read (space-separated). */
static void
tr_reply_add_text(struct tr_client *c, const char *text)
{
	size_t skip = tr_enhanced_len(text, c->reply_code);
	if (skip > 0) {
		if (c->reply_enhanced[0] == '\0')
			snprintf(c->reply_enhanced, sizeof(c->reply_enhanced),
				 "%.*s", (int)skip, text);
		text += skip;
		while (*text == ' ')
			text++;
	}
	size_t n = strlen(text);
	/* Keep the text short enough for a DSN line or a queue listing. */
	if (c->reply_text_len + n + 1 > 900)
		return;
	c->reply_text = ts_xrealloc(c->reply_text, c->reply_text_len + n + 2);
	if (c->reply_text_len > 0)
		c->reply_text[c->reply_text_len++] = ' ';
	memcpy(c->reply_text + c->reply_text_len, text, n + 1);
	c->reply_text_len += n;
}

/* An EHLO keyword line: "PIPELINING", "SIZE 35882577", … */
static void
tr_parse_capability(struct tr_client *c, const char *text)
{
	static const struct {
		const char *name;
		unsigned cap;
	} caps[] = {
		{ "STARTTLS", TR_CAP_STARTTLS },
		{ "PIPELINING", TR_CAP_PIPELINING },
		{ "SIZE", TR_CAP_SIZE },
		{ "8BITMIME", TR_CAP_8BITMIME },
		{ "SMTPUTF8", TR_CAP_SMTPUTF8 },
		{ "CHUNKING", TR_CAP_CHUNKING },
		{ "DSN", TR_CAP_DSN },
		{ "REQUIRETLS", TR_CAP_REQUIRETLS },
		{ "ENHANCEDSTATUSCODES", TR_CAP_ENHANCEDSTATUSCODES },
		{ "BINARYMIME", TR_CAP_BINARYMIME },
	};
	size_t n = strcspn(text, " ");
	if (n == 4 && strncasecmp(text, "AUTH", 4) == 0) {
		c->caps |= TR_CAP_AUTH;
		free(c->auth_offered);
		c->auth_offered =
			ts_xstrdup(text[n] == ' ' ? text + n + 1 : "");
		return;
	}
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (strlen(caps[i].name) != n ||
		    strncasecmp(text, caps[i].name, n) != 0)
			continue;
		c->caps |= caps[i].cap;
		if (caps[i].cap == TR_CAP_SIZE && text[n] == ' ') {
			/* RFC 1870: the limit, 0 or absent meaning none. */
			char *end;
			unsigned long long v = strtoull(text + n + 1, &end, 10);
			if (*end == '\0' || *end == ' ')
				c->max_size = v;
		}
	}
}

/* --- the conversation ---------------------------------------------------- */

static void
tr_send_ehlo(struct tr_client *c)
{
	c->caps = 0;
	c->max_size = 0;
	free(c->auth_offered);
	c->auth_offered = NULL;
	tr_out_printf(c, "EHLO %s\r\n", c->p.helo_name);
	c->state = TR_S_EHLO;
	c->want = TR_WANT_REPLY;
}

/* Whether s has a byte outside ASCII. */
static bool
tr_non_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/*
 * Whether the envelope needs SMTPUTF8 (RFC 6531 3.2): the submitter
 * asked for it and an address is not ASCII.  The header is not scanned:
 * a message with UTF-8 only in its header goes out as 8-bit data.
 */
static bool
tr_needs_smtputf8(const struct tr_client *c)
{
	if (!c->p.mail->smtputf8)
		return false;
	if (tr_non_ascii(c->p.mail->address))
		return true;
	for (size_t i = 0; i < c->p.rcpt_count; i++)
		if (tr_non_ascii(c->p.rcpts[i]->address))
			return true;
	return false;
}

static void
tr_send_rcpt(struct tr_client *c, size_t i)
{
	const struct ts_txn_rcpt *r = c->p.rcpts[i];
	tr_out_printf(c, "RCPT TO:<%s>", r->address);
	if (c->caps & TR_CAP_DSN) {
		if (r->notify & TS_DSN_NOTIFY_NEVER) {
			tr_out_printf(c, " NOTIFY=NEVER");
		} else if (r->notify != 0) {
			const char *sep = " NOTIFY=";
			if (r->notify & TS_DSN_NOTIFY_SUCCESS) {
				tr_out_printf(c, "%sSUCCESS", sep);
				sep = ",";
			}
			if (r->notify & TS_DSN_NOTIFY_FAILURE) {
				tr_out_printf(c, "%sFAILURE", sep);
				sep = ",";
			}
			if (r->notify & TS_DSN_NOTIFY_DELAY)
				tr_out_printf(c, "%sDELAY", sep);
		}
		if (r->orcpt != NULL) {
			char *x = tr_xtext_encode(r->orcpt);
			tr_out_printf(c, " ORCPT=%s;%s",
				      r->orcpt_type != NULL ? r->orcpt_type
							    : "rfc822",
				      x);
			free(x);
		}
	}
	tr_out_printf(c, "\r\n");
	tr_expect_push(c, TR_E_RCPT, i);
}

static void
tr_send_mail(struct tr_client *c)
{
	const struct ts_txn_mail *m = c->p.mail;
	tr_out_printf(c, "MAIL FROM:<%s>", m->address);
	if (c->caps & TR_CAP_SIZE)
		tr_out_printf(c, " SIZE=%llu", (unsigned long long)c->p.size);
	if (m->body == TS_BODY_8BITMIME)
		tr_out_printf(c, " BODY=8BITMIME");
	else if (m->body == TS_BODY_BINARYMIME)
		tr_out_printf(c, " BODY=BINARYMIME");
	if (m->smtputf8 && (c->caps & TR_CAP_SMTPUTF8))
		tr_out_printf(c, " SMTPUTF8");
	if (c->p.tls == TR_TLS_REQUIRETLS)
		tr_out_printf(c, " REQUIRETLS");
	if (c->caps & TR_CAP_DSN) {
		if (m->ret == TS_DSN_RET_FULL)
			tr_out_printf(c, " RET=FULL");
		else if (m->ret == TS_DSN_RET_HDRS)
			tr_out_printf(c, " RET=HDRS");
		if (m->envid != NULL) {
			char *x = tr_xtext_encode(m->envid);
			tr_out_printf(c, " ENVID=%s", x);
			free(x);
		}
	}
	tr_out_printf(c, "\r\n");
	tr_expect_push(c, TR_E_MAIL, 0);
}

/* Start the body: DATA (its 354 comes first) or the first BDAT. */
static void
tr_start_body(struct tr_client *c)
{
	if (c->use_bdat) {
		c->state = TR_S_BODY;
		c->want = TR_WANT_BODY;
	} else {
		tr_out_printf(c, "DATA\r\n");
		tr_expect_push(c, TR_E_DATA, 0);
		c->state = TR_S_TXN;
		c->want = TR_WANT_REPLY;
	}
}

/*
 * EHLO (or HELO) is answered and TLS is settled: check that this server
 * can take the message at all, then MAIL (with every RCPT and DATA when
 * pipelining).
 */
static enum tr_want
tr_start_txn(struct tr_client *c)
{
	const struct ts_txn_mail *m = c->p.mail;
	if (c->p.tls == TR_TLS_REQUIRETLS && !c->tls_on)
		return tr_refuse(c, 550, "5.7.10",
				 "REQUIRETLS: the server does not offer "
				 "STARTTLS (RFC 8689)");
	if (c->p.tls == TR_TLS_REQUIRETLS && !(c->caps & TR_CAP_REQUIRETLS))
		return tr_refuse(c, 550, "5.7.10",
				 "REQUIRETLS: the server does not support "
				 "REQUIRETLS (RFC 8689)");
	if (c->max_size > 0 && c->p.size > c->max_size) {
		char *t = ts_xasprintf("message of %llu bytes exceeds the "
				       "server's SIZE limit of %llu",
				       (unsigned long long)c->p.size,
				       (unsigned long long)c->max_size);
		tr_refuse(c, 552, "5.3.4", t);
		free(t);
		return c->want;
	}
	if (tr_needs_smtputf8(c) && !(c->caps & TR_CAP_SMTPUTF8))
		return tr_refuse(c, 553, "5.6.7",
				 "non-ASCII addresses, and the server does "
				 "not support SMTPUTF8 (RFC 6531)");
	if (m->body == TS_BODY_BINARYMIME &&
	    (c->caps & (TR_CAP_CHUNKING | TR_CAP_BINARYMIME)) !=
		    (TR_CAP_CHUNKING | TR_CAP_BINARYMIME))
		return tr_refuse(c, 554, "5.6.3",
				 "binary message, and the server does not "
				 "support BINARYMIME and CHUNKING (RFC "
				 "3030); conversion is not supported");
	if (m->body == TS_BODY_8BITMIME && !(c->caps & TR_CAP_8BITMIME))
		return tr_refuse(c, 554, "5.6.3",
				 "8-bit message, and the server does not "
				 "support 8BITMIME (RFC 6152); conversion is "
				 "not supported");
	if (c->p.rcpt_count == 0)
		return tr_refuse(c, 554, "5.5.0", "no recipients");

	c->use_bdat = (c->caps & TR_CAP_CHUNKING) != 0;
	c->state = TR_S_TXN;
	c->want = TR_WANT_REPLY;
	tr_send_mail(c);
	if (c->caps & TR_CAP_PIPELINING) {
		/* RFC 2920 3.1: DATA may end the group; BDAT waits. */
		for (size_t i = 0; i < c->p.rcpt_count; i++)
			tr_send_rcpt(c, i);
		c->next_rcpt = c->p.rcpt_count;
		if (!c->use_bdat) {
			tr_out_printf(c, "DATA\r\n");
			tr_expect_push(c, TR_E_DATA, 0);
		}
	}
	return c->want;
}

/* Fail the session before MAIL with our own reason: the host failed. */
static enum tr_want
tr_refuse_host(struct tr_client *c, int code, const char *enhanced,
	       const char *text)
{
	c->host_failed = true;
	return tr_refuse(c, code, enhanced, text);
}

/* Start AUTH with the mechanism the caller's SASL client chooses. */
static enum tr_want
tr_auth_begin(struct tr_client *c)
{
	char *cmd = NULL;
	const char *why = NULL;
	if (c->p.auth->begin(c->p.auth->arg,
			     c->auth_offered != NULL ? c->auth_offered : "",
			     c->tls_on, &cmd, &why) != 0) {
		char *t = ts_xasprintf("cannot authenticate to the relay: %s",
				       why != NULL ? why : "no mechanism");
		tr_refuse_host(c, 451, "4.7.0", t);
		free(t);
		return c->want;
	}
	tr_out_printf(c, "%s\r\n", cmd);
	free(cmd);
	c->state = TR_S_AUTH;
	c->want = TR_WANT_REPLY;
	return c->want;
}

/* A reply during AUTH: a challenge, success, or refusal. */
static enum tr_want
tr_auth_reply(struct tr_client *c, int code, const char *enh, const char *text,
	      const char *full)
{
	const char *why = NULL;
	if (c->state == TR_S_AUTH_CANCEL) {
		/* Our "*" was answered (501): give up on this host. */
		char *t = ts_xasprintf("authentication to the relay "
				       "abandoned: %s",
				       c->auth_why);
		tr_refuse_host(c, 451, "4.7.0", t);
		free(t);
		return c->want;
	}
	if (code == 334) {
		char *resp = NULL;
		if (c->p.auth->step(c->p.auth->arg, text, &resp, &why) != 0) {
			c->auth_why = why != NULL ? why : "bad challenge";
			tr_out_printf(c, "*\r\n");
			c->state = TR_S_AUTH_CANCEL;
			return c->want;
		}
		tr_out_printf(c, "%s\r\n", resp);
		free(resp);
		return c->want;
	}
	if (code == 235) {
		if (c->p.auth->success(c->p.auth->arg, &why) != 0) {
			char *t = ts_xasprintf("the relay accepted us without "
					       "proving it knows the password "
					       "(%s)",
					       why != NULL ? why : "?");
			tr_refuse_host(c, 451, "4.7.0", t);
			free(t);
			return c->want;
		}
		c->authenticated = true;
		return tr_start_txn(c);
	}
	/*
	 * Refused: a wrong password is a configuration problem on our
	 * side, so the mail stays queued (temporary) rather than bounce.
	 */
	(void)full;
	char *t = ts_xasprintf("authentication to the relay failed: %d %s %s",
			       code, enh, text);
	tr_set_open(c, 451, "4.7.0", t, false);
	c->host_failed = true;
	free(t);
	tr_quit(c);
	return c->want;
}

/* The EHLO/HELO reply was 250: STARTTLS, or on to the transaction. */
static enum tr_want
tr_after_ehlo(struct tr_client *c)
{
	if (c->caps & TR_CAP_REQUIRETLS)
		c->saw_requiretls = true;
	if (!c->tls_on) {
		c->saw_starttls = (c->caps & TR_CAP_STARTTLS) != 0;
		if (c->p.tls != TR_TLS_NEVER && (c->caps & TR_CAP_STARTTLS)) {
			tr_out_printf(c, "STARTTLS\r\n");
			c->state = TR_S_STARTTLS;
			c->want = TR_WANT_REPLY;
			return c->want;
		}
	}
	if (c->p.tls == TR_TLS_REQUIRED && !c->tls_on) {
		char *t = ts_xasprintf("the server does not offer STARTTLS, "
				       "and %s requires TLS",
				       c->p.tls_required_by != NULL
					       ? c->p.tls_required_by
					       : "this transport");
		tr_refuse_host(c, 451, "4.7.5", t);
		free(t);
		return c->want;
	}
	if (c->p.auth != NULL && !c->authenticated)
		return tr_auth_begin(c);
	return tr_start_txn(c);
}

/*
 * No more replies are owed for the transaction: QUIT, or with keep_open
 * stay connected for the caller's next transaction (tr_client_reuse).
 */
static void
tr_maybe_quit(struct tr_client *c)
{
	if (c->fifo_len != 0 || c->state != TR_S_TXN ||
	    !(c->abandoned || c->done))
		return;
	if (c->p.keep_open && !c->host_failed) {
		c->state = TR_S_IDLE;
		c->want = TR_WANT_IDLE;
		return;
	}
	tr_quit(c);
}

/* The RCPT replies are all in. */
static void
tr_rcpts_complete(struct tr_client *c)
{
	if (c->accepted_count == 0) {
		/* Every RCPT failed: a pipelined DATA still gets a reply. */
		c->abandoned = true;
		return;
	}
	if (c->caps & TR_CAP_PIPELINING) {
		if (c->use_bdat)
			tr_start_body(c);
		/* else DATA went out with the group */
	} else {
		tr_start_body(c);
	}
}

/* A complete reply in the transaction (MAIL onwards). */
static enum tr_want
tr_txn_reply(struct tr_client *c, int code, const char *enh, const char *text)
{
	struct tr_expect e;
	if (!tr_expect_pop(c, &e))
		return tr_protocol_error(c, "reply without a command", text,
					 strlen(text));
	switch (e.kind) {
	case TR_E_MAIL:
		c->mail_answered = true;
		if (code / 100 != 2) {
			tr_set_open(c, code, enh, text, true);
			c->abandoned = true;
			if (!(c->caps & TR_CAP_PIPELINING))
				tr_quit(c);
		} else if (!(c->caps & TR_CAP_PIPELINING)) {
			tr_send_rcpt(c, c->next_rcpt++);
		}
		break;
	case TR_E_RCPT:
		if (c->abandoned)
			break;
		if (code / 100 == 2) {
			c->accepted[e.rcpt] = true;
			c->accepted_count++;
		} else {
			tr_set_result(c, e.rcpt, code, enh, text, true);
		}
		c->rcpts_answered++;
		if (c->rcpts_answered == c->p.rcpt_count)
			tr_rcpts_complete(c);
		else if (!(c->caps & TR_CAP_PIPELINING))
			tr_send_rcpt(c, c->next_rcpt++);
		break;
	case TR_E_DATA:
		if (code == 354 && (c->abandoned || c->accepted_count == 0)) {
			/* RFC 2920 3.1: accepted without recipients — end
			 * it with an empty message. */
			tr_out_printf(c, ".\r\n");
			tr_expect_push(c, TR_E_IGNORE, 0);
		} else if (code == 354) {
			c->state = TR_S_BODY;
			c->want = TR_WANT_BODY;
			return c->want;
		} else if (!c->abandoned) {
			tr_set_accepted(c, code, enh, text);
		}
		c->abandoned = true;
		break;
	case TR_E_DATA_END:
	case TR_E_BDAT_LAST:
		tr_set_accepted(c, code, enh, text);
		break;
	case TR_E_BDAT:
		if (code / 100 != 2) {
			tr_set_accepted(c, code, enh, text);
			c->abandoned = true;
			c->body_ended = true;
			c->state = TR_S_TXN;
		} else if (c->bdat_wait) {
			c->bdat_wait = false;
			c->want = TR_WANT_BODY;
			return c->want;
		}
		break;
	case TR_E_IGNORE:
		break;
	}
	if (c->state == TR_S_BODY) {
		/* a pipelined BDAT's 250 while more bytes are to come */
		c->want = TR_WANT_BODY;
		return c->want;
	}
	tr_maybe_quit(c);
	return c->want;
}

/* A complete reply: act on it according to the state. */
static enum tr_want
tr_reply(struct tr_client *c)
{
	int code = c->reply_code;
	char enh[16];
	if (c->reply_enhanced[0] != '\0')
		snprintf(enh, sizeof(enh), "%s", c->reply_enhanced);
	else
		tr_default_enhanced(code, enh, sizeof(enh));
	char *text = c->reply_text != NULL ? c->reply_text : ts_xstrdup("");
	c->reply_text = NULL;
	c->reply_text_len = 0;
	c->reply_lines = 0;
	c->reply_enhanced[0] = '\0';
	/* `text` goes into results (the code travels apart); `full` into
	 * our own reasons that quote the reply. */
	char *full = ts_xasprintf("%d %s", code, text);
	enum tr_want w;

	if (c->state == TR_S_QUIT) {
		c->want = TR_WANT_CLOSE;
		w = c->want;
		goto out;
	}
	if (code == 421) {
		/* RFC 5321 3.8: the server is going away; no QUIT. */
		tr_set_open(c, 421, enh, text, true);
		c->state = TR_S_QUIT;
		c->want = TR_WANT_CLOSE;
		w = c->want;
		goto out;
	}
	switch (c->state) {
	case TR_S_GREETING:
		if (code == 220) {
			tr_send_ehlo(c);
			w = c->want;
		} else {
			/* A refusal to talk (RFC 5321 3.1) or a bad code. */
			int fail = code / 100 >= 4 ? code : 451;
			tr_set_open(c, fail, enh, text, true);
			tr_quit(c);
			w = c->want;
		}
		break;
	case TR_S_EHLO:
		if (code == 250) {
			c->saw_ehlo = true;
			w = tr_after_ehlo(c);
		} else if (code / 100 == 5) {
			tr_out_printf(c, "HELO %s\r\n", c->p.helo_name);
			c->state = TR_S_HELO;
			w = c->want = TR_WANT_REPLY;
		} else {
			tr_set_open(c, code / 100 == 4 ? code : 451, enh, full,
				    true);
			tr_quit(c);
			w = c->want;
		}
		break;
	case TR_S_HELO:
		if (code == 250) {
			c->caps = 0;
			w = tr_after_ehlo(c);
		} else {
			tr_set_open(c, code / 100 >= 4 ? code : 451, enh, text,
				    true);
			tr_quit(c);
			w = c->want;
		}
		break;
	case TR_S_STARTTLS:
		if (code == 220) {
			c->state = TR_S_TLS_WAIT;
			w = c->want = TR_WANT_STARTTLS;
		} else if (c->p.tls == TR_TLS_REQUIRETLS) {
			char *t = ts_xasprintf("REQUIRETLS: STARTTLS refused: "
					       "%s",
					       full);
			w = tr_refuse(c, 550, "5.7.10", t);
			free(t);
		} else if (c->p.tls == TR_TLS_REQUIRED) {
			char *t = ts_xasprintf("the server refused STARTTLS, "
					       "which %s requires: %s",
					       c->p.tls_required_by != NULL
						       ? c->p.tls_required_by
						       : "this transport",
					       full);
			w = tr_refuse_host(c, 451, "4.7.5", t);
			free(t);
		} else if (c->p.auth != NULL) {
			w = tr_auth_begin(c);
		} else {
			/* Opportunistic: carry on in the clear. */
			w = tr_start_txn(c);
		}
		break;
	case TR_S_AUTH:
	case TR_S_AUTH_CANCEL:
		w = tr_auth_reply(c, code, enh, text, full);
		break;
	case TR_S_TXN:
	case TR_S_BODY:
		if (c->state == TR_S_BODY && !c->use_bdat) {
			w = tr_protocol_error(c, "reply during DATA", full,
					      strlen(full));
			break;
		}
		w = tr_txn_reply(c, code, enh, text);
		break;
	case TR_S_RSET:
		if (code / 100 == 2) {
			w = tr_start_txn(c);
		} else {
			char *t = ts_xasprintf("the kept connection refused "
					       "RSET: %s",
					       full);
			w = tr_refuse_host(c, 451, "4.4.2", t);
			free(t);
		}
		break;
	case TR_S_IDLE:
		w = tr_protocol_error(c, "reply while idle", full,
				      strlen(full));
		break;
	case TR_S_TLS_WAIT:
	default:
		w = tr_protocol_error(c, "reply while starting TLS", full,
				      strlen(full));
		break;
	}
out:
	free(full);
	free(text);
	return w;
}

/* --- public -------------------------------------------------------------- */

/* Per-recipient results and RCPT outcomes of a new transaction. */
static void
tr_client_txn_alloc(struct tr_client *c, size_t rcpt_count)
{
	c->results = ts_xcalloc(rcpt_count ? rcpt_count : 1,
				sizeof(*c->results));
	c->accepted = ts_xcalloc(rcpt_count ? rcpt_count : 1,
				 sizeof(*c->accepted));
}

struct tr_client *
tr_client_new(const struct tr_client_params *params)
{
	struct tr_client *c = ts_xcalloc(1, sizeof(*c));
	c->p = *params;
	c->state = TR_S_GREETING;
	c->want = TR_WANT_REPLY;
	c->tls_on = params->tls_active;
	c->at_bol = true;
	tr_client_txn_alloc(c, params->rcpt_count);
	return c;
}

enum tr_want
tr_client_reuse(struct tr_client *c, const struct tr_client_params *params)
{
	if (c->state != TR_S_IDLE)
		return c->want;
	for (size_t i = 0; i < c->p.rcpt_count; i++)
		free(c->results[i].text);
	free(c->results);
	free(c->accepted);
	c->p.mail = params->mail;
	c->p.rcpts = params->rcpts;
	c->p.rcpt_count = params->rcpt_count;
	c->p.size = params->size;
	tr_client_txn_alloc(c, params->rcpt_count);
	c->accepted_count = 0;
	c->rcpts_answered = 0;
	c->next_rcpt = 0;
	c->mail_answered = false;
	c->abandoned = false;
	c->use_bdat = false;
	c->body_ended = false;
	c->bdat_wait = false;
	c->at_bol = true;
	c->body_any = false;
	c->body_ends_lf = false;
	c->done = false;
	c->host_failed = false;
	c->fifo_head = c->fifo_len = 0;
	/* The last transaction may have ended half way (all RCPTs
	 * refused): RSET puts the server back to a clean state. */
	tr_out_printf(c, "RSET\r\n");
	c->state = TR_S_RSET;
	c->want = TR_WANT_REPLY;
	return c->want;
}

enum tr_want
tr_client_quit(struct tr_client *c)
{
	if (c->state == TR_S_IDLE)
		tr_quit(c);
	return c->want;
}

bool
tr_client_idle(const struct tr_client *c)
{
	return c->state == TR_S_IDLE;
}

void
tr_client_free(struct tr_client **cp)
{
	struct tr_client *c = *cp;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->p.rcpt_count; i++)
		free(c->results[i].text);
	free(c->results);
	free(c->accepted);
	free(c->reply_text);
	free(c->out);
	free(c->fifo);
	free(c->auth_offered);
	free(c);
	*cp = NULL;
}

enum tr_want
tr_client_line(struct tr_client *c, const char *line, size_t len)
{
	if (c->want == TR_WANT_CLOSE)
		return c->want;
	int code;
	bool more;
	const char *text, *why;
	if (tr_reply_line_parse(line, len, &code, &more, &text, &why) != 0)
		return tr_protocol_error(c, why, line, len);
	if (c->reply_lines > 0 && code != c->reply_code)
		return tr_protocol_error(c, "code changed inside a reply", line,
					 len);
	if (c->reply_lines >= TR_REPLY_LINES_MAX)
		return tr_protocol_error(c, "too many lines in one reply", line,
					 len);
	c->reply_code = code;
	if (c->state == TR_S_EHLO && code == 250 && c->reply_lines > 0)
		tr_parse_capability(c, text);
	c->reply_lines++;
	tr_reply_add_text(c, text);
	if (more)
		return c->want;
	return tr_reply(c);
}

enum tr_want
tr_client_line_too_long(struct tr_client *c)
{
	if (c->want == TR_WANT_CLOSE)
		return c->want;
	return tr_protocol_error(c, "line too long", NULL, 0);
}

enum tr_want
tr_client_tls_ready(struct tr_client *c)
{
	if (c->state != TR_S_TLS_WAIT)
		return c->want;
	c->tls_on = true;
	tr_send_ehlo(c);
	return c->want;
}

bool
tr_client_wants_body(const struct tr_client *c)
{
	return c->state == TR_S_BODY && c->want == TR_WANT_BODY &&
	       !c->body_ended && !c->bdat_wait;
}

void
tr_dot_stuff(const char *data, size_t len, bool *at_bol, char **out,
	     size_t *out_len, size_t *out_cap)
{
	/* Worst case every byte is a "." at the start of a line. */
	size_t need = *out_len + 2 * len;
	if (need > *out_cap) {
		size_t cap = *out_cap ? *out_cap : 256;
		while (cap < need)
			cap *= 2;
		*out = ts_xrealloc(*out, cap);
		*out_cap = cap;
	}
	char *o = *out + *out_len;
	bool bol = *at_bol;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (bol && ch == '.')
			*o++ = '.';
		*o++ = ch;
		bol = ch == '\n';
	}
	*at_bol = bol;
	*out_len = (size_t)(o - *out);
}

enum tr_want
tr_client_body(struct tr_client *c, const void *data, size_t len)
{
	if (!tr_client_wants_body(c) || len == 0)
		return c->want;
	if (c->use_bdat) {
		tr_out_printf(c, "BDAT %zu\r\n", len);
		tr_out_append(c, data, len);
		tr_expect_push(c, TR_E_BDAT, 0);
		if (!(c->caps & TR_CAP_PIPELINING)) {
			c->bdat_wait = true;
			c->want = TR_WANT_REPLY;
		}
	} else {
		tr_dot_stuff(data, len, &c->at_bol, &c->out, &c->out_len,
			     &c->out_cap);
	}
	c->body_any = true;
	c->body_ends_lf = ((const char *)data)[len - 1] == '\n';
	return c->want;
}

enum tr_want
tr_client_body_end(struct tr_client *c)
{
	if (!tr_client_wants_body(c))
		return c->want;
	c->body_ended = true;
	if (c->use_bdat) {
		tr_out_printf(c, "BDAT 0 LAST\r\n");
		tr_expect_push(c, TR_E_BDAT_LAST, 0);
	} else {
		/* RFC 5321 4.1.1.4: the data ends with CRLF before ".". */
		if (c->body_any && !c->body_ends_lf)
			tr_out_printf(c, "\r\n");
		tr_out_printf(c, ".\r\n");
		tr_expect_push(c, TR_E_DATA_END, 0);
	}
	c->state = TR_S_TXN;
	c->want = TR_WANT_REPLY;
	return c->want;
}

void
tr_client_fail(struct tr_client *c, int code, const char *enhanced,
	       const char *text, bool remote)
{
	tr_set_open(c, code, enhanced, text, remote);
	c->state = TR_S_QUIT;
	c->want = TR_WANT_CLOSE;
}

void
tr_client_timeout(struct tr_client *c)
{
	const char *what = "reply";
	struct tr_expect *e = c->fifo_len > 0 ? &c->fifo[c->fifo_head] : NULL;
	switch (c->state) {
	case TR_S_GREETING:
		what = "greeting";
		break;
	case TR_S_EHLO:
		what = "EHLO";
		break;
	case TR_S_HELO:
		what = "HELO";
		break;
	case TR_S_STARTTLS:
		what = "STARTTLS";
		break;
	case TR_S_TLS_WAIT:
		what = "TLS handshake";
		break;
	case TR_S_AUTH:
	case TR_S_AUTH_CANCEL:
		what = "AUTH";
		break;
	case TR_S_QUIT:
		what = "QUIT";
		break;
	case TR_S_RSET:
		what = "RSET";
		break;
	case TR_S_IDLE:
		what = "nothing (idle)";
		break;
	case TR_S_BODY:
		what = c->use_bdat ? "BDAT" : "message data";
		break;
	case TR_S_TXN:
		if (e == NULL)
			break;
		what = e->kind == TR_E_MAIL	   ? "MAIL FROM"
		       : e->kind == TR_E_RCPT	   ? "RCPT TO"
		       : e->kind == TR_E_DATA	   ? "DATA"
		       : e->kind == TR_E_BDAT	   ? "BDAT"
		       : e->kind == TR_E_BDAT_LAST ? "BDAT LAST"
						   : "end of data";
		break;
	}
	char *t = ts_xasprintf("timeout waiting for the reply to %s", what);
	tr_client_fail(c, 451, "4.4.2", t, true);
	free(t);
}

const char *
tr_client_output(const struct tr_client *c, size_t *len_r)
{
	*len_r = c->out_len;
	return c->out != NULL ? c->out : "";
}

void
tr_client_output_clear(struct tr_client *c)
{
	c->out_len = 0;
}

bool
tr_client_done(const struct tr_client *c)
{
	return c->done;
}

bool
tr_client_host_failed(const struct tr_client *c)
{
	return c->done && c->host_failed;
}

const struct tr_result *
tr_client_result(const struct tr_client *c, size_t i)
{
	return i < c->p.rcpt_count ? &c->results[i] : NULL;
}

enum tr_timeout_kind
tr_client_timeout_kind(const struct tr_client *c)
{
	if (c->state == TR_S_TXN && c->fifo_len > 0) {
		enum tr_expect_kind k = c->fifo[c->fifo_head].kind;
		if (k == TR_E_DATA_END || k == TR_E_BDAT_LAST)
			return TR_TIMEOUT_FINAL;
	}
	return TR_TIMEOUT_COMMAND;
}

unsigned
tr_client_caps(const struct tr_client *c)
{
	return c->caps;
}

bool
tr_client_saw_starttls(const struct tr_client *c)
{
	return c->saw_starttls;
}

bool
tr_client_saw_requiretls(const struct tr_client *c)
{
	return c->saw_requiretls;
}

const char *
tr_client_auth_offered(const struct tr_client *c)
{
	return c->auth_offered != NULL ? c->auth_offered : "";
}

bool
tr_client_authenticated(const struct tr_client *c)
{
	return c->authenticated;
}

bool
tr_client_saw_ehlo(const struct tr_client *c)
{
	return c->saw_ehlo;
}

uint64_t
tr_client_max_size(const struct tr_client *c)
{
	return c->max_size;
}

char *
tr_xtext_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = ts_xmalloc(3 * n + 1);
	char *o = out;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=') {
			*o++ = '+';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		} else {
			*o++ = (char)ch;
		}
	}
	*o = '\0';
	return out;
}
