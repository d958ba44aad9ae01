/*
 * modules/transports/tests/test-client.c — the SMTP client state machine
 * (modules/transports/client.c).
 *
 * Conversations as tables: each step is a server line (or an event such
 * as "TLS is up", message bytes, a timeout, a lost connection) and the
 * exact bytes the client must send in answer; at the end the result of
 * every recipient, and whether the failure was the host's.  Covered:
 * lock-step and pipelined sessions, BDAT, STARTTLS (opportunistic and
 * REQUIRETLS), SMTPUTF8/8BITMIME/BINARYMIME/SIZE refusals, DSN
 * parameters, RCPT partial failures, 421 mid-session, multi-line
 * replies, malformed replies (garbage, missing code, overlong lines,
 * changing codes), dot-stuffing and a last line without CRLF; plus the
 * reply-line parser, xtext and the dot-stuffer alone; for relays,
 * required STARTTLS and AUTH (framing, challenges, refusal, cancel,
 * a success the SASL side does not believe) with a fake mechanism.
 * Pure: no socket,
 * no kernel beyond kernel/alloc.c.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/transports/client.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Events besides server lines, written as the step's input. */
#define EV_TLS "!tls" /* the TLS handshake finished */
#define EV_BODY "!body:" /* message bytes follow the colon */
#define EV_END "!end" /* the end of the message */
#define EV_TIMEOUT "!timeout"
#define EV_LOST "!lost" /* the connection broke */
#define EV_TOOLONG "!toolong" /* a line over the connection's limit */

struct step {
	const char *in;
	const char *out; /* NULL: nothing */
	int want; /* expected tr_want after the step, -1: not checked */
};

struct expect_result {
	int code;
	const char *enhanced;
	const char *text_part; /* a substring of the text, or NULL */
};

#define S(in_, out_)          \
	{                     \
		in_, out_, -1 \
	}
#define SW(in_, out_, want_)     \
	{                        \
		in_, out_, want_ \
	}

#define MAX_STEPS 40
#define MAX_RCPTS 4

struct conv {
	const char *name;
	struct ts_txn_mail mail;
	struct ts_txn_rcpt rcpts[MAX_RCPTS];
	size_t rcpt_count;
	uint64_t size;
	enum tr_tls_mode tls;
	bool auth; /* authenticate with the fake mechanism below */
	struct step steps[MAX_STEPS];
	struct expect_result results[MAX_RCPTS];
	bool host_failed;
};

/* Printable form of bytes for failure messages. */
static char *
show(const char *s, size_t len)
{
	char *out = ts_xmalloc(4 * len + 1);
	char *o = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\r') {
			*o++ = '\\';
			*o++ = 'r';
		} else if (ch == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (ch < 32 || ch >= 127) {
			o += sprintf(o, "\\x%02x", ch);
		} else {
			*o++ = (char)ch;
		}
	}
	*o = '\0';
	return out;
}

/*
 * A fake SASL mechanism "FAKE" behind the AUTH callbacks: initial
 * response "init", challenge "ch" gets "resp", anything else is
 * refused; success only after a challenge was answered.
 */
static int fake_steps;

static int
fake_begin(void *arg, const char *offered, bool tls_on, char **command_r,
	   const char **why_r)
{
	(void)arg;
	(void)tls_on;
	fake_steps = 0;
	if (strstr(offered, "FAKE") == NULL) {
		*why_r = "no usable mechanism";
		return -1;
	}
	*command_r = ts_xstrdup("AUTH FAKE aW5pdA==");
	return 0;
}

static int
fake_step(void *arg, const char *challenge, char **response_r,
	  const char **why_r)
{
	(void)arg;
	if (strcmp(challenge, "Y2g=") != 0) {
		*why_r = "bad challenge";
		return -1;
	}
	fake_steps++;
	*response_r = ts_xstrdup("cmVzcA==");
	return 0;
}

static int
fake_success(void *arg, const char **why_r)
{
	(void)arg;
	if (fake_steps == 0) {
		*why_r = "exchange incomplete";
		return -1;
	}
	return 0;
}

static const struct tr_client_auth fake_auth = {
	.begin = fake_begin,
	.step = fake_step,
	.success = fake_success,
};

static void
run(const struct conv *cv)
{
	const struct ts_txn_rcpt *rp[MAX_RCPTS];
	for (size_t i = 0; i < cv->rcpt_count; i++)
		rp[i] = &cv->rcpts[i];
	struct tr_client_params p = {
		.helo_name = "client.example",
		.mail = &cv->mail,
		.rcpts = rp,
		.rcpt_count = cv->rcpt_count,
		.size = cv->size ? cv->size : 1000,
		.tls = cv->tls,
		.auth = cv->auth ? &fake_auth : NULL,
	};
	struct tr_client *c = tr_client_new(&p);
	size_t len;
	tr_client_output(c, &len);
	assert_int_equal(len, 0);
	for (size_t i = 0; i < MAX_STEPS && cv->steps[i].in != NULL; i++) {
		const struct step *st = &cv->steps[i];
		enum tr_want w = TR_WANT_REPLY;
		if (strcmp(st->in, EV_TLS) == 0) {
			w = tr_client_tls_ready(c);
		} else if (strncmp(st->in, EV_BODY, strlen(EV_BODY)) == 0) {
			if (!tr_client_wants_body(c))
				fail_msg("%s: step %zu: body not wanted",
					 cv->name, i);
			const char *b = st->in + strlen(EV_BODY);
			w = tr_client_body(c, b, strlen(b));
		} else if (strcmp(st->in, EV_END) == 0) {
			if (!tr_client_wants_body(c))
				fail_msg("%s: step %zu: end not wanted",
					 cv->name, i);
			w = tr_client_body_end(c);
		} else if (strcmp(st->in, EV_TIMEOUT) == 0) {
			tr_client_timeout(c);
			w = TR_WANT_CLOSE;
		} else if (strcmp(st->in, EV_LOST) == 0) {
			tr_client_fail(c, 451, "4.4.2", "connection lost",
				       true);
			w = TR_WANT_CLOSE;
		} else if (strcmp(st->in, EV_TOOLONG) == 0) {
			w = tr_client_line_too_long(c);
		} else {
			w = tr_client_line(c, st->in, strlen(st->in));
		}
		const char *out = tr_client_output(c, &len);
		const char *want = st->out != NULL ? st->out : "";
		if (len != strlen(want) || memcmp(out, want, len) != 0) {
			char *g = show(out, len), *x = show(want, strlen(want));
			fail_msg("%s: step %zu (\"%s\"): sent \"%s\", expected "
				 "\"%s\"",
				 cv->name, i, st->in, g, x);
		}
		tr_client_output_clear(c);
		if (st->want >= 0 && (int)w != st->want)
			fail_msg("%s: step %zu: want %d, expected %d", cv->name,
				 i, (int)w, st->want);
	}
	if (!tr_client_done(c))
		fail_msg("%s: not done", cv->name);
	for (size_t i = 0; i < cv->rcpt_count; i++) {
		const struct tr_result *r = tr_client_result(c, i);
		const struct expect_result *e = &cv->results[i];
		if (r->code != e->code ||
		    strcmp(r->enhanced, e->enhanced) != 0 ||
		    (e->text_part != NULL &&
		     strstr(r->text, e->text_part) == NULL))
			fail_msg("%s: rcpt %zu: %d %s \"%s\", expected %d %s "
				 "\"%s\"",
				 cv->name, i, r->code, r->enhanced, r->text,
				 e->code, e->enhanced,
				 e->text_part ? e->text_part : "");
	}
	if (tr_client_host_failed(c) != cv->host_failed)
		fail_msg("%s: host_failed %d, expected %d", cv->name,
			 tr_client_host_failed(c), cv->host_failed);
	tr_client_free(&c);
	assert_null(c);
}

#define MAIL_PLAIN                                            \
	{                                                     \
		.address = "a@src.example", .localpart = "a", \
		.domain = "src.example"                       \
	}
#define RCPT(addr_)              \
	{                        \
		.address = addr_ \
	}

#define GREET S("220 mx.dst.example ESMTP", "EHLO client.example\r\n")

static void
test_lockstep(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "lock-step DATA, two recipients",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example") },
		.rcpt_count = 2,
		.size = 1234,
		.tls = TR_TLS_OPPORTUNISTIC,
		.steps = {
			GREET,
			S("250-mx.dst.example hello", NULL),
			S("250-SIZE 10000000", NULL),
			S("250 8BITMIME",
			  "MAIL FROM:<a@src.example> SIZE=1234\r\n"),
			S("250 2.1.0 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 2.1.5 ok", "RCPT TO:<c@dst.example>\r\n"),
			S("250 2.1.5 ok", "DATA\r\n"),
			SW("354 go ahead", NULL, TR_WANT_BODY),
			S(EV_BODY "Subject: x\r\n\r\nhello\r\n",
			  "Subject: x\r\n\r\nhello\r\n"),
			SW(EV_END, ".\r\n", TR_WANT_REPLY),
			S("250 2.0.0 queued as 17", "QUIT\r\n"),
			SW("221 2.0.0 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 250, "2.0.0", "queued as 17" },
			     { 250, "2.0.0", "queued as 17" } },
	};
	run(&cv);
}

/* Feed one line; check what the client sends and wants. */
static void
line(struct tr_client *c, const char *in, const char *out, int want)
{
	enum tr_want w = tr_client_line(c, in, strlen(in));
	size_t len;
	const char *got = tr_client_output(c, &len);
	const char *x = out != NULL ? out : "";
	if (len != strlen(x) || memcmp(got, x, len) != 0) {
		char *g = show(got, len);
		fail_msg("after \"%s\": sent \"%s\", expected \"%s\"", in, g,
			 x);
	}
	tr_client_output_clear(c);
	if (want >= 0)
		assert_int_equal((int)w, want);
}

/*
 * keep_open: after the transaction the machine idles instead of QUIT;
 * reuse sends RSET, then the next transaction (pipelined); a refused
 * RSET fails the host; quit from idle says QUIT.
 */
static void
test_keep_open_and_reuse(void **state)
{
	(void)state;
	struct ts_txn_mail mail = MAIL_PLAIN;
	struct ts_txn_rcpt r1 = RCPT("b@dst.example"),
			   r2 = RCPT("c@dst.example");
	const struct ts_txn_rcpt *rp1[] = { &r1 }, *rp2[] = { &r2 };
	struct tr_client_params p = {
		.helo_name = "client.example",
		.mail = &mail,
		.rcpts = rp1,
		.rcpt_count = 1,
		.size = 100,
		.tls = TR_TLS_NEVER,
		.keep_open = true,
	};
	struct tr_client *c = tr_client_new(&p);
	line(c, "220 mx ESMTP", "EHLO client.example\r\n", TR_WANT_REPLY);
	line(c, "250-mx", NULL, -1);
	line(c, "250 PIPELINING",
	     "MAIL FROM:<a@src.example>\r\n"
	     "RCPT TO:<b@dst.example>\r\nDATA\r\n",
	     TR_WANT_REPLY);
	line(c, "250 ok", NULL, -1);
	line(c, "250 ok", NULL, -1);
	line(c, "354 go", NULL, TR_WANT_BODY);
	tr_client_body(c, "x\r\n", 3);
	tr_client_output_clear(c);
	tr_client_body_end(c);
	tr_client_output_clear(c);
	line(c, "250 2.0.0 first", NULL, TR_WANT_IDLE);
	assert_true(tr_client_done(c));
	assert_true(tr_client_idle(c));
	assert_false(tr_client_host_failed(c));
	assert_int_equal(tr_client_result(c, 0)->code, 250);

	/* The next transaction on the same session. */
	p.rcpts = rp2;
	assert_int_equal(tr_client_reuse(c, &p), TR_WANT_REPLY);
	size_t len;
	const char *out = tr_client_output(c, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "RSET\r\n", 6);
	tr_client_output_clear(c);
	assert_false(tr_client_done(c));
	assert_false(tr_client_idle(c));
	line(c, "250 reset",
	     "MAIL FROM:<a@src.example>\r\n"
	     "RCPT TO:<c@dst.example>\r\nDATA\r\n",
	     TR_WANT_REPLY);
	line(c, "250 ok", NULL, -1);
	line(c, "550 5.1.1 no such user", NULL, -1);
	/* every RCPT refused: the pipelined DATA's 503 ends it, idle */
	line(c, "503 5.5.1 no recipients", NULL, TR_WANT_IDLE);
	assert_int_equal(tr_client_result(c, 0)->code, 550);

	/* A refused RSET: the host (this kept session) failed. */
	p.rcpts = rp1;
	tr_client_reuse(c, &p);
	tr_client_output_clear(c);
	line(c, "421 4.4.2 closing", NULL, TR_WANT_CLOSE);
	assert_true(tr_client_done(c));
	tr_client_free(&c);

	/* Idle, then QUIT. */
	c = tr_client_new(&p);
	line(c, "220 mx", "EHLO client.example\r\n", -1);
	line(c, "250-mx", NULL, -1);
	line(c, "250 PIPELINING",
	     "MAIL FROM:<a@src.example>\r\n"
	     "RCPT TO:<b@dst.example>\r\nDATA\r\n",
	     -1);
	line(c, "250 ok", NULL, -1);
	line(c, "250 ok", NULL, -1);
	line(c, "354 go", NULL, TR_WANT_BODY);
	tr_client_body_end(c);
	tr_client_output_clear(c);
	line(c, "250 ok", NULL, TR_WANT_IDLE);
	assert_int_equal(tr_client_quit(c), TR_WANT_REPLY);
	out = tr_client_output(c, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "QUIT\r\n", 6);
	tr_client_output_clear(c);
	line(c, "221 bye", NULL, TR_WANT_CLOSE);
	tr_client_free(&c);

	/* A RSET answered 5xx fails the host too. */
	c = tr_client_new(&p);
	line(c, "220 mx", "EHLO client.example\r\n", -1);
	line(c, "250 mx",
	     "MAIL FROM:<a@src.example>\r\n", -1);
	line(c, "250 ok", "RCPT TO:<b@dst.example>\r\n", -1);
	line(c, "250 ok", "DATA\r\n", -1);
	line(c, "354 go", NULL, TR_WANT_BODY);
	tr_client_body_end(c);
	tr_client_output_clear(c);
	line(c, "250 ok", NULL, TR_WANT_IDLE);
	tr_client_reuse(c, &p);
	tr_client_output_clear(c);
	line(c, "502 5.5.1 no RSET here", "QUIT\r\n", TR_WANT_REPLY);
	assert_true(tr_client_host_failed(c));
	assert_int_equal(tr_client_result(c, 0)->code, 451);
	tr_client_free(&c);
}

static void
test_pipelining(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "pipelined MAIL, RCPTs and DATA",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example"),
			   RCPT("d@dst.example") },
		.rcpt_count = 3,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250-PIPELINING", NULL),
			S("250 ENHANCEDSTATUSCODES",
			  "MAIL FROM:<a@src.example>\r\n"
			  "RCPT TO:<b@dst.example>\r\n"
			  "RCPT TO:<c@dst.example>\r\n"
			  "RCPT TO:<d@dst.example>\r\n"
			  "DATA\r\n"),
			S("250 2.1.0 ok", NULL),
			S("250 2.1.5 ok", NULL),
			S("550 5.1.1 no such user", NULL),
			S("450 4.2.0 mailbox busy", NULL),
			SW("354 go", NULL, TR_WANT_BODY),
			S(EV_BODY "x\r\n", "x\r\n"),
			S(EV_END, ".\r\n"),
			S("250 2.0.0 ok", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 250, "2.0.0", "ok" },
			     { 550, "5.1.1", "no such user" },
			     { 450, "4.2.0", "mailbox busy" } },
	};
	run(&cv);
}

static void
test_pipelined_mail_refused(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "pipelined, MAIL refused",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example") },
		.rcpt_count = 2,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 PIPELINING",
			  "MAIL FROM:<a@src.example>\r\n"
			  "RCPT TO:<b@dst.example>\r\n"
			  "RCPT TO:<c@dst.example>\r\n"
			  "DATA\r\n"),
			S("550 5.7.1 sender rejected", NULL),
			S("503 5.5.1 need MAIL", NULL),
			S("503 5.5.1 need MAIL", NULL),
			S("503 5.5.1 need RCPT", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 550, "5.7.1", "sender rejected" },
			     { 550, "5.7.1", "sender rejected" } },
	};
	run(&cv);
}

static void
test_pipelined_no_rcpt_but_354(void **state)
{
	(void)state;
	/* RFC 2920 3.1: DATA accepted although every RCPT failed: end it
	 * with an empty message. */
	static const struct conv cv = {
		.name = "pipelined, every RCPT refused, DATA 354",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 PIPELINING",
			  "MAIL FROM:<a@src.example>\r\n"
			  "RCPT TO:<b@dst.example>\r\n"
			  "DATA\r\n"),
			S("250 ok", NULL),
			S("550 no", NULL),
			S("354 go", ".\r\n"),
			S("554 no valid recipients", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 550, "5.0.0", "no" } },
	};
	run(&cv);
}

static void
test_lockstep_all_refused(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "lock-step, every RCPT refused",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example") },
		.rcpt_count = 2,
		.steps = {
			GREET,
			S("250 mx.dst.example", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("550 5.1.1 unknown", "RCPT TO:<c@dst.example>\r\n"),
			S("551 5.1.6 moved", "QUIT\r\n"),
			S("221 bye", NULL),
		},
		.results = { { 550, "5.1.1", "unknown" },
			     { 551, "5.1.6", "moved" } },
	};
	run(&cv);
}

static void
test_starttls(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "opportunistic STARTTLS, EHLO again",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_OPPORTUNISTIC,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250-PIPELINING", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			SW("220 2.0.0 ready", NULL, TR_WANT_STARTTLS),
			S(EV_TLS, "EHLO client.example\r\n"),
			S("250-mx.dst.example", NULL),
			S("250 8BITMIME", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			S("354 go", NULL),
			S(EV_END, ".\r\n"),
			S("250 ok", "QUIT\r\n"),
			S("221 bye", NULL),
		},
		.results = { { 250, "2.0.0", "ok" } },
	};
	run(&cv);
}

static void
test_starttls_refused_carries_on(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "STARTTLS refused: opportunistic continues in clear",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_OPPORTUNISTIC,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			S("454 4.7.0 TLS not available",
			  "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S(EV_LOST, NULL),
		},
		.results = { { 451, "4.4.2", "connection lost" } },
		/* MAIL was answered: the failure is not the host's alone */
		.host_failed = false,
	};
	run(&cv);
}

static void
test_starttls_never(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "TLS off: STARTTLS ignored",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_NEVER,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 STARTTLS", "MAIL FROM:<a@src.example>\r\n"),
			S("421 4.3.2 shutting down", NULL),
		},
		.results = { { 421, "4.3.2", "shutting down" } },
		/* before MAIL's answer: the next host may do better */
		.host_failed = true,
	};
	run(&cv);
}

#define MAIL_RTLS                                              \
	{                                                      \
		.address = "a@src.example", .requiretls = true \
	}

static void
test_requiretls(void **state)
{
	(void)state;
	static const struct conv no_starttls = {
		.name = "REQUIRETLS, no STARTTLS",
		.mail = MAIL_RTLS,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRETLS,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 PIPELINING", "QUIT\r\n"),
			S("221 bye", NULL),
		},
		.results = { { 550, "5.7.10", "does not offer STARTTLS" } },
		.host_failed = true,
	};
	run(&no_starttls);
	static const struct conv no_cap = {
		.name = "REQUIRETLS, no REQUIRETLS after TLS",
		.mail = MAIL_RTLS,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRETLS,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			S("220 go", NULL),
			S(EV_TLS, "EHLO client.example\r\n"),
			S("250-mx.dst.example", NULL),
			S("250 PIPELINING", "QUIT\r\n"),
		},
		.results = { { 550, "5.7.10", "does not support REQUIRETLS" } },
		.host_failed = true,
	};
	run(&no_cap);
	static const struct conv refused = {
		.name = "REQUIRETLS, STARTTLS refused",
		.mail = MAIL_RTLS,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRETLS,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			S("454 4.7.0 no TLS today", "QUIT\r\n"),
		},
		.results = { { 550, "5.7.10", "454 no TLS today" } },
		.host_failed = true,
	};
	run(&refused);
	static const struct conv ok = {
		.name = "REQUIRETLS offered after TLS",
		.mail = MAIL_RTLS,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRETLS,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			S("220 go", NULL),
			S(EV_TLS, "EHLO client.example\r\n"),
			S("250-mx.dst.example", NULL),
			S("250 REQUIRETLS",
			  "MAIL FROM:<a@src.example> REQUIRETLS\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S(EV_TIMEOUT, NULL),
		},
		.results = { { 451, "4.4.2",
			       "timeout waiting for the reply to RCPT TO" } },
	};
	run(&ok);
}

static void
test_smtputf8(void **state)
{
	(void)state;
	static const struct conv refused = {
		.name = "SMTPUTF8 needed, not offered",
		.mail = { .address = "a@src.example", .smtputf8 = true },
		.rcpts = { RCPT("b@dst.example"),
			   RCPT("j\xc3\xb6rg@dst.example") },
		.rcpt_count = 2,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 8BITMIME", "QUIT\r\n"),
			S("221 bye", NULL),
		},
		.results = { { 553, "5.6.7", "SMTPUTF8" },
			     { 553, "5.6.7", "SMTPUTF8" } },
		.host_failed = true,
	};
	run(&refused);
	static const struct conv ascii = {
		.name = "SMTPUTF8 asked, ASCII envelope, not offered: sent",
		.mail = { .address = "a@src.example", .smtputf8 = true,
			  .body = TS_BODY_8BITMIME },
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 8BITMIME",
			  "MAIL FROM:<a@src.example> BODY=8BITMIME\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("550 no", "QUIT\r\n"),
		},
		.results = { { 550, "5.0.0", "no" } },
	};
	run(&ascii);
	static const struct conv offered = {
		.name = "SMTPUTF8 offered",
		.mail = { .address = "\xc3\xa4@src.example", .smtputf8 = true,
			  .body = TS_BODY_8BITMIME },
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250-8BITMIME", NULL),
			S("250 SMTPUTF8",
			  "MAIL FROM:<\xc3\xa4@src.example> BODY=8BITMIME "
			  "SMTPUTF8\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("550 no", "QUIT\r\n"),
		},
		.results = { { 550, "5.0.0", "no" } },
	};
	run(&offered);
}

static void
test_body_refusals(void **state)
{
	(void)state;
	static const struct conv eight = {
		.name = "8BITMIME needed, not offered",
		.mail = { .address = "a@src.example",
			  .body = TS_BODY_8BITMIME },
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250 mx.dst.example", "QUIT\r\n"),
		},
		.results = { { 554, "5.6.3", "8BITMIME" } },
		.host_failed = true,
	};
	run(&eight);
	static const struct conv binary = {
		.name = "BINARYMIME without CHUNKING",
		.mail = { .address = "a@src.example",
			  .body = TS_BODY_BINARYMIME },
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 BINARYMIME", "QUIT\r\n"),
		},
		.results = { { 554, "5.6.3", "BINARYMIME" } },
		.host_failed = true,
	};
	run(&binary);
	static const struct conv size = {
		.name = "bigger than SIZE",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.size = 5000,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 SIZE 4999", "QUIT\r\n"),
		},
		.results = { { 552, "5.3.4", "4999" } },
		.host_failed = true,
	};
	run(&size);
}

static void
test_dsn_parameters(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "DSN parameters when DSN is offered",
		.mail = { .address = "a@src.example",
			  .ret = TS_DSN_RET_HDRS,
			  .envid = "id+1=x y" },
		.rcpts = {
			{ .address = "b@dst.example",
			  .notify = TS_DSN_NOTIFY_SUCCESS |
				    TS_DSN_NOTIFY_FAILURE,
			  .orcpt_type = "rfc822",
			  .orcpt = "b+tag@dst.example" },
			{ .address = "c@dst.example",
			  .notify = TS_DSN_NOTIFY_NEVER },
			{ .address = "d@dst.example",
			  .notify = TS_DSN_NOTIFY_DELAY },
		},
		.rcpt_count = 3,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250-PIPELINING", NULL),
			S("250 DSN",
			  "MAIL FROM:<a@src.example> RET=HDRS "
			  "ENVID=id+2B1+3Dx+20y\r\n"
			  "RCPT TO:<b@dst.example> NOTIFY=SUCCESS,FAILURE "
			  "ORCPT=rfc822;b+2Btag@dst.example\r\n"
			  "RCPT TO:<c@dst.example> NOTIFY=NEVER\r\n"
			  "RCPT TO:<d@dst.example> NOTIFY=DELAY\r\n"
			  "DATA\r\n"),
			S("421 4.4.2 bye", NULL),
		},
		.results = { { 421, "4.4.2", "bye" },
			     { 421, "4.4.2", "bye" },
			     { 421, "4.4.2", "bye" } },
		.host_failed = true,
	};
	run(&cv);
	static const struct conv none = {
		.name = "no DSN parameters without DSN",
		.mail = { .address = "a@src.example",
			  .ret = TS_DSN_RET_FULL,
			  .envid = "x" },
		.rcpts = { { .address = "b@dst.example",
			     .notify = TS_DSN_NOTIFY_NEVER,
			     .orcpt_type = "rfc822",
			     .orcpt = "b@dst.example" } },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx.dst.example", NULL),
			S("250 PIPELINING",
			  "MAIL FROM:<a@src.example>\r\n"
			  "RCPT TO:<b@dst.example>\r\n"
			  "DATA\r\n"),
			S(EV_LOST, NULL),
		},
		.results = { { 451, "4.4.2", "connection lost" } },
		.host_failed = true,
	};
	run(&none);
}

static void
test_421_mid_session(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "421 after a refused and an accepted RCPT",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example"),
			   RCPT("d@dst.example") },
		.rcpt_count = 3,
		.steps = {
			GREET,
			S("250 mx.dst.example", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("550 5.1.1 unknown", "RCPT TO:<c@dst.example>\r\n"),
			S("250 ok", "RCPT TO:<d@dst.example>\r\n"),
			SW("421-4.7.0 too many errors", NULL, TR_WANT_REPLY),
			SW("421 4.7.0 closing", NULL, TR_WANT_CLOSE),
			/* anything after that is ignored */
			SW("250 ok", NULL, TR_WANT_CLOSE),
		},
		.results = { { 550, "5.1.1", "unknown" },
			     { 421, "4.7.0", "too many errors closing" },
			     { 421, "4.7.0", "too many errors closing" } },
	};
	run(&cv);
}

static void
test_multiline_and_helo(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "multi-line greeting, EHLO 502, HELO",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			S("220-mx.dst.example ESMTP", NULL),
			S("220-no UCE", NULL),
			S("220 welcome", "EHLO client.example\r\n"),
			S("502 5.5.2 what?", "HELO client.example\r\n"),
			S("250 mx.dst.example", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			S("354 go", NULL),
			S(EV_END, ".\r\n"),
			S("250-2.0.0 first line", NULL),
			S("250-2.0.0 second line", NULL),
			S("250 2.0.0 third", "QUIT\r\n"),
			S(EV_LOST, NULL),
		},
		.results = { { 250, "2.0.0",
			       "first line second line third" } },
	};
	run(&cv);
}

static void
test_greeting_refused(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "554 greeting",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			S("554 5.7.1 go away", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 554, "5.7.1", "go away" } },
		.host_failed = true,
	};
	run(&cv);
	static const struct conv ehlo4 = {
		.name = "EHLO 451",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("451 4.3.0 later", "QUIT\r\n"),
		},
		.results = { { 451, "4.3.0", "later" } },
		.host_failed = true,
	};
	run(&ehlo4);
}

/* Malformed replies: each fails the open recipients with 451 4.5.0. */
static void
test_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *greeting_or_reply;
		bool after_ehlo;
		const char *why;
	} cases[] = {
		{ "hello there", false, "no reply code" },
		{ "", false, "no reply code" },
		{ "22", false, "no reply code" },
		{ "2x0 hi", false, "no reply code" },
		{ "620 hi", false, "no reply code" },
		{ "220hello", false, "no space or dash" },
		{ "250-ok", true, NULL }, /* then a code change */
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct ts_txn_mail m = MAIL_PLAIN;
		struct ts_txn_rcpt r = RCPT("b@dst.example");
		const struct ts_txn_rcpt *rp = &r;
		struct tr_client_params p = { .helo_name = "h",
					      .mail = &m,
					      .rcpts = &rp,
					      .rcpt_count = 1 };
		struct tr_client *c = tr_client_new(&p);
		size_t len;
		if (cases[i].after_ehlo) {
			tr_client_line(c, "220 hi", 6);
			tr_client_output_clear(c);
		}
		const char *l = cases[i].greeting_or_reply;
		enum tr_want w = tr_client_line(c, l, strlen(l));
		if (cases[i].why == NULL)
			w = tr_client_line(c, "251 changed", 11);
		assert_int_equal(w, TR_WANT_CLOSE);
		const char *out = tr_client_output(c, &len);
		assert_int_equal(len, 6);
		assert_memory_equal(out, "QUIT\r\n", 6);
		assert_true(tr_client_done(c));
		const struct tr_result *res = tr_client_result(c, 0);
		assert_int_equal(res->code, 451);
		assert_string_equal(res->enhanced, "4.5.0");
		assert_non_null(strstr(res->text, "malformed reply"));
		if (cases[i].why != NULL)
			assert_non_null(strstr(res->text, cases[i].why));
		else
			assert_non_null(strstr(res->text, "code changed"));
		tr_client_free(&c);
	}

	/* A NUL inside a line, and lines over the limit. */
	struct ts_txn_mail m = MAIL_PLAIN;
	struct ts_txn_rcpt r = RCPT("b@dst.example");
	const struct ts_txn_rcpt *rp = &r;
	struct tr_client_params p = {
		.helo_name = "h", .mail = &m, .rcpts = &rp, .rcpt_count = 1
	};
	struct tr_client *c = tr_client_new(&p);
	assert_int_equal(tr_client_line(c, "220 a\0b", 7), TR_WANT_CLOSE);
	assert_non_null(strstr(tr_client_result(c, 0)->text, "NUL byte"));
	tr_client_free(&c);

	c = tr_client_new(&p);
	char *longline = ts_xmalloc(TR_REPLY_LINE_MAX + 2);
	memset(longline, 'x', TR_REPLY_LINE_MAX + 1);
	memcpy(longline, "220 ", 4);
	assert_int_equal(tr_client_line(c, longline, TR_REPLY_LINE_MAX + 1),
			 TR_WANT_CLOSE);
	assert_non_null(strstr(tr_client_result(c, 0)->text, "line too long"));
	/* the excerpt in the text stays short */
	assert_true(strlen(tr_client_result(c, 0)->text) < 200);
	free(longline);
	tr_client_free(&c);

	c = tr_client_new(&p);
	assert_int_equal(tr_client_line_too_long(c), TR_WANT_CLOSE);
	assert_non_null(strstr(tr_client_result(c, 0)->text, "line too long"));
	tr_client_free(&c);

	/* Endless multi-line replies are cut off. */
	c = tr_client_new(&p);
	enum tr_want w = TR_WANT_REPLY;
	for (size_t i = 0; i <= TR_REPLY_LINES_MAX && w != TR_WANT_CLOSE; i++)
		w = tr_client_line(c, "220-more", 8);
	assert_int_equal(w, TR_WANT_CLOSE);
	assert_non_null(strstr(tr_client_result(c, 0)->text, "too many lines"));
	tr_client_free(&c);
}

static void
test_unexpected_reply_during_data(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "a reply while sending DATA",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250 mx", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			S("354 go", NULL),
			S(EV_BODY "abc", "abc"),
			/* no QUIT: it would become message data */
			SW("552 5.3.4 too big", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.5.0", "reply during DATA" } },
	};
	run(&cv);
}

static void
test_dot_stuffing(void **state)
{
	(void)state;
	static const struct conv cv = {
		.name = "dot-stuffing across pieces, last line without CRLF",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250 mx", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			S("354 go", NULL),
			S(EV_BODY ".leading\r\nmid.dle\r\n..two\r\n.",
			  "..leading\r\nmid.dle\r\n...two\r\n.."),
			S(EV_BODY "\r\n", "\r\n"),
			S(EV_BODY ".\r\n", "..\r\n"),
			S(EV_BODY "last line", "last line"),
			S(EV_END, "\r\n.\r\n"),
			S("250 ok", "QUIT\r\n"),
		},
		.results = { { 250, "2.0.0", "ok" } },
	};
	run(&cv);
	static const struct conv empty = {
		.name = "empty message",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250 mx", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			S("354 go", NULL),
			S(EV_END, ".\r\n"),
			S("550 5.6.0 empty", "QUIT\r\n"),
		},
		.results = { { 550, "5.6.0", "empty" } },
	};
	run(&empty);
}

static void
test_bdat(void **state)
{
	(void)state;
	static const struct conv lockstep = {
		.name = "CHUNKING without PIPELINING: one BDAT at a time",
		.mail = { .address = "a@src.example",
			  .body = TS_BODY_BINARYMIME },
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx", NULL),
			S("250-CHUNKING", NULL),
			S("250 BINARYMIME",
			  "MAIL FROM:<a@src.example> BODY=BINARYMIME\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			SW("250 ok", NULL, TR_WANT_BODY),
			SW(EV_BODY ".hi\r\n", "BDAT 5\r\n.hi\r\n",
			   TR_WANT_REPLY),
			SW("250 2.0.0 5 octets", NULL, TR_WANT_BODY),
			S(EV_BODY "x", "BDAT 1\r\nx"),
			S("250 ok", NULL),
			S(EV_END, "BDAT 0 LAST\r\n"),
			S("250 2.0.0 queued", "QUIT\r\n"),
		},
		.results = { { 250, "2.0.0", "queued" } },
	};
	run(&lockstep);
	static const struct conv piped = {
		.name = "CHUNKING with PIPELINING: BDATs back to back",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example"), RCPT("c@dst.example") },
		.rcpt_count = 2,
		.steps = {
			GREET,
			S("250-mx", NULL),
			S("250-PIPELINING", NULL),
			S("250 CHUNKING",
			  "MAIL FROM:<a@src.example>\r\n"
			  "RCPT TO:<b@dst.example>\r\n"
			  "RCPT TO:<c@dst.example>\r\n"),
			S("250 ok", NULL),
			S("550 no", NULL),
			SW("250 ok", NULL, TR_WANT_BODY),
			SW(EV_BODY "ab", "BDAT 2\r\nab", TR_WANT_BODY),
			SW(EV_BODY "cd", "BDAT 2\r\ncd", TR_WANT_BODY),
			S(EV_END, "BDAT 0 LAST\r\n"),
			S("250 ok", NULL),
			S("250 ok", NULL),
			S("250 2.0.0 done", "QUIT\r\n"),
		},
		.results = { { 550, "5.0.0", "no" }, { 250, "2.0.0", "done" } },
	};
	run(&piped);
	static const struct conv refused = {
		.name = "a BDAT refused",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.steps = {
			GREET,
			S("250-mx", NULL),
			S("250 CHUNKING", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", NULL),
			S(EV_BODY "ab", "BDAT 2\r\nab"),
			SW("552 5.3.4 too big", "QUIT\r\n", TR_WANT_REPLY),
		},
		.results = { { 552, "5.3.4", "too big" } },
	};
	run(&refused);
}

static void
test_reply_line_parse(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		int ret, code;
		bool more;
		const char *text;
	} cases[] = {
		{ "250 ok", 0, 250, false, "ok" },
		{ "250-PIPELINING", 0, 250, true, "PIPELINING" },
		{ "250", 0, 250, false, "" },
		{ "354 ", 0, 354, false, "" },
		{ "599 x", 0, 599, false, "x" },
		{ "199 x", TS_E_INVAL, 0, false, NULL },
		{ "600 x", TS_E_INVAL, 0, false, NULL },
		{ "25", TS_E_INVAL, 0, false, NULL },
		{ "250x", TS_E_INVAL, 0, false, NULL },
		{ " 250 x", TS_E_INVAL, 0, false, NULL },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		int code = 0;
		bool more = false;
		const char *text = NULL, *why = NULL;
		int ret = tr_reply_line_parse(cases[i].line,
					      strlen(cases[i].line), &code,
					      &more, &text, &why);
		if (ret != cases[i].ret)
			fail_msg("\"%s\": %d, expected %d", cases[i].line, ret,
				 cases[i].ret);
		if (ret == 0) {
			assert_int_equal(code, cases[i].code);
			assert_int_equal(more, cases[i].more);
			assert_string_equal(text, cases[i].text);
		} else {
			assert_non_null(why);
		}
	}
}

static void
test_xtext(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "plain@example.org", "plain@example.org" },
		{ "a+b=c", "a+2Bb+3Dc" },
		{ "sp ace", "sp+20ace" },
		{ "\x01\x7f\xc3\xa4", "+01+7F+C3+A4" },
		{ "!~", "!~" },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *x = tr_xtext_encode(cases[i].in);
		assert_string_equal(x, cases[i].out);
		free(x);
	}
}

static void
test_dot_stuff_alone(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0, cap = 0;
	bool bol = true;
	tr_dot_stuff("...", 3, &bol, &out, &len, &cap);
	tr_dot_stuff("\n", 1, &bol, &out, &len, &cap);
	tr_dot_stuff(".", 1, &bol, &out, &len, &cap);
	tr_dot_stuff(".", 1, &bol, &out, &len, &cap);
	tr_dot_stuff("\r\n\r\n.", 5, &bol, &out, &len, &cap);
	assert_int_equal(len, strlen("....\n...\r\n\r\n.."));
	assert_memory_equal(out, "....\n...\r\n\r\n..", len);
	assert_false(bol);
	free(out);
}

/* A relay: STARTTLS required, then AUTH, then the transaction. */
static void
test_relay_auth(void **state)
{
	(void)state;
	static const struct conv ok = {
		.name = "STARTTLS, AUTH with a challenge, then MAIL",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRED,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			SW("220 go ahead", NULL, TR_WANT_STARTTLS),
			S(EV_TLS, "EHLO client.example\r\n"),
			S("250-relay.example", NULL),
			S("250 AUTH PLAIN FAKE", "AUTH FAKE aW5pdA==\r\n"),
			S("334 Y2g=", "cmVzcA==\r\n"),
			S("235 2.7.0 ok", "MAIL FROM:<a@src.example>\r\n"),
			S("250 ok", "RCPT TO:<b@dst.example>\r\n"),
			S("250 ok", "DATA\r\n"),
			SW("354 go", NULL, TR_WANT_BODY),
			S(EV_BODY "x\r\n", "x\r\n"),
			S(EV_END, ".\r\n"),
			S("250 2.0.0 ok", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 250, "2.0.0", "ok" } },
	};
	run(&ok);
	static const struct conv no_starttls = {
		.name = "TLS required, not offered",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRED,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 AUTH FAKE", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.5", "does not offer STARTTLS" } },
		.host_failed = true,
	};
	run(&no_starttls);
	static const struct conv starttls_refused = {
		.name = "TLS required, STARTTLS refused",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_REQUIRED,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 STARTTLS", "STARTTLS\r\n"),
			S("454 4.7.0 not now", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.5", "which this transport requires: 454" } },
		.host_failed = true,
	};
	run(&starttls_refused);
}

static void
test_relay_auth_failures(void **state)
{
	(void)state;
	static const struct conv refused = {
		.name = "AUTH refused: temporary, the host's",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_NEVER,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 AUTH FAKE", "AUTH FAKE aW5pdA==\r\n"),
			S("535 5.7.8 bad credentials", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.0",
			       "authentication to the relay failed: 535 "
			       "5.7.8 bad credentials" } },
		.host_failed = true,
	};
	run(&refused);
	static const struct conv bad_challenge = {
		.name = "a challenge our side refuses: cancelled with *",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_NEVER,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 AUTH FAKE", "AUTH FAKE aW5pdA==\r\n"),
			S("334 Zm9v", "*\r\n"),
			S("501 5.7.0 cancelled", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.0", "abandoned: bad challenge" } },
		.host_failed = true,
	};
	run(&bad_challenge);
	static const struct conv no_mech = {
		.name = "no usable mechanism",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_NEVER,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 AUTH PLAIN LOGIN", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.0", "no usable mechanism" } },
		.host_failed = true,
	};
	run(&no_mech);
	static const struct conv unproven = {
		.name = "235 before our side is satisfied",
		.mail = MAIL_PLAIN,
		.rcpts = { RCPT("b@dst.example") },
		.rcpt_count = 1,
		.tls = TR_TLS_NEVER,
		.auth = true,
		.steps = {
			GREET,
			S("250-relay.example", NULL),
			S("250 AUTH FAKE", "AUTH FAKE aW5pdA==\r\n"),
			S("235 2.7.0 ok", "QUIT\r\n"),
			SW("221 bye", NULL, TR_WANT_CLOSE),
		},
		.results = { { 451, "4.7.0", "without proving" } },
		.host_failed = true,
	};
	run(&unproven);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lockstep),
		cmocka_unit_test(test_keep_open_and_reuse),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_pipelined_mail_refused),
		cmocka_unit_test(test_pipelined_no_rcpt_but_354),
		cmocka_unit_test(test_lockstep_all_refused),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_refused_carries_on),
		cmocka_unit_test(test_starttls_never),
		cmocka_unit_test(test_requiretls),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_body_refusals),
		cmocka_unit_test(test_dsn_parameters),
		cmocka_unit_test(test_421_mid_session),
		cmocka_unit_test(test_multiline_and_helo),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unexpected_reply_during_data),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_relay_auth),
		cmocka_unit_test(test_relay_auth_failures),
		cmocka_unit_test(test_reply_line_parse),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_dot_stuff_alone),
	};
	return cmocka_run_group_tests_name("transports client", tests, NULL,
					   NULL);
}
