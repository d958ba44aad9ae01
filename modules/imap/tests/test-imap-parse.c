/*
 * modules/imap/tests/test-imap-parse.c — the IMAP command parser
 * (modules/imap/parse.c).
 *
 * Table-driven where it can be: commands that parse (and what they parse
 * to: atoms, quoted strings, literals {n} {n+} {n-}, lists, sequence sets
 * with "*" and "$", fetch attributes and sections, search keys, flag
 * lists, LIST-EXTENDED, STATUS, SELECT parameters), malformed commands
 * with the exact BAD text each gets, literal announcements at the end of
 * a line, size caps, dates, and the first-line test.  Pure functions: no
 * server, no kernel beyond kernel/alloc.c.
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

#include "modules/imap/parse.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct imap_parse_limits lim = {
	.max_literal = 1000,
	.append_limit = 5000,
	.max_depth = 8,
};

/* Parse a NUL-terminated command; returns the parser's result. */
static int
parse(const char *text, struct imap_command *cmd, const char **error_r)
{
	*error_r = NULL;
	return imap_parse_command(text, strlen(text), &lim, cmd, error_r);
}

/* Parse, expecting success. */
static void
parse_ok(const char *text, struct imap_command *cmd)
{
	const char *error;
	int rc = parse(text, cmd, &error);
	if (rc != 0)
		fail_msg("'%s' failed: %s", text, error);
}

/* --- malformed commands and their exact BAD texts ----------------------- */

static void
test_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *error;
	} cases[] = {
		{ "", "missing or bad tag" },
		{ " NOOP", "missing or bad tag" },
		{ "a1", "missing command" },
		{ "a1 ", "unknown command" },
		{ "a1 FROB", "unknown command" },
		{ "a1 NOOP extra", "unexpected characters at end of command" },
		{ "a1 UID NOOP", "unknown command" },
		{ "a1 UID", "missing command after UID" },
		{ "a1 LOGIN", "expected a user name" },
		{ "a1 LOGIN alice", "expected a password" },
		{ "a1 LOGIN \"alice pw", "unterminated quoted string" },
		{ "a1 LOGIN \"a\\x\" pw", "bad escape in quoted string" },
		{ "a1 SELECT", "expected a space" },
		{ "a1 SELECT INBOX (FOO)", "unknown select parameter" },
		{ "a1 SELECT INBOX (QRESYNC (0 5))",
		  "zero is not a valid number here" },
		{ "a1 SELECT INBOX (QRESYNC (1 x))", "expected a number" },
		{ "a1 FETCH 1 FOO", "unknown fetch attribute" },
		{ "a1 FETCH 0 FLAGS", "bad sequence set" },
		{ "a1 FETCH 1: FLAGS", "bad sequence set" },
		{ "a1 FETCH a FLAGS", "bad sequence set" },
		{ "a1 FETCH 1 (FLAGS", "expected a space" },
		{ "a1 FETCH 1 BODY[HEADER.FIELDS]", "expected a header list" },
		{ "a1 FETCH 1 BODY[FOO]", "bad section" },
		{ "a1 FETCH 1 BODY[]<5>", "bad partial range" },
		{ "a1 FETCH 1 BODY[]<5.0>", "bad partial range" },
		{ "a1 FETCH 1 BODY[MIME]", "MIME needs a part number" },
		{ "a1 FETCH 1 BINARY[TEXT]", "bad section" },
		{ "a1 FETCH 1 FLAGS (VANISHED)",
		  "VANISHED needs UID FETCH with CHANGEDSINCE" },
		{ "a1 FETCH 1 FLAGS (CHANGEDSINCE x)", "expected a number" },
		{ "a1 FETCH 99999999999 FLAGS", "bad sequence set" },
		{ "a1 STORE 1 FLAGS (\\Seen) (x)",
		  "unexpected characters at end of command" },
		{ "a1 STORE 1 FLAGZ (\\Seen)",
		  "expected FLAGS, +FLAGS or -FLAGS" },
		{ "a1 STORE 1 +FLAGS (\\Bogus)", "unknown system flag" },
		{ "a1 STORE 1 +FLAGS (\\Seen", "expected a space" },
		{ "a1 STORE 1 (UNCHANGEDSINCE) FLAGS ()",
		  "bad store modifiers" },
		{ "a1 SEARCH FOO", "unknown search key" },
		{ "a1 SEARCH BEFORE 32-Jan-2020", "bad date" },
		{ "a1 SEARCH BEFORE 1-Foo-2020", "bad date" },
		{ "a1 SEARCH RETURN (BOGUS) ALL",
		  "unknown search return option" },
		{ "a1 SEARCH ((((((((((ALL))))))))))", "nesting too deep" },
		{ "a1 SEARCH NOT", "expected a space" },
		{ "a1 SEARCH OR ALL", "expected a space" },
		{ "a1 STATUS INBOX (FOO)", "unknown status item" },
		{ "a1 STATUS INBOX", "expected a space" },
		{ "a1 LIST (BOGUS) \"\" *", "unknown list selection option" },
		{ "a1 LIST (RECURSIVEMATCH) \"\" *",
		  "RECURSIVEMATCH needs another selection option" },
		{ "a1 LIST \"\" * RETURN (FOO)", "unknown list return option" },
		{ "a1 CREATE x (USE (\\Sent \\Junk))",
		  "only one special-use flag is supported" },
		{ "a1 APPEND INBOX {3}\r\nab",
		  "literal shorter than announced" },
		{ "a1 APPEND INBOX {3}ab", "literal must be followed by CRLF" },
		{ "a1 APPEND INBOX {9999}\r\n", "literal too large" },
		{ "a1 APPEND INBOX \"bad date\" {1}\r\nx", "bad date-time" },
		{ "a1 APPEND INBOX {1}\r\nx {1}\r\ny",
		  "only one message per APPEND is supported" },
		{ "a1 LOGIN {1001}\r\n", "literal too large" },
		{ "a1 ID (\"a\")", "bad ID parameter list" },
		{ "a1 AUTHENTICATE", "expected a SASL mechanism" },
		{ "a1 ENABLE", "expected a space" },
		{ "a1 RENAME a", "expected a space" },
	};
	unsigned bad = 0;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_command cmd;
		const char *error = NULL;
		int rc = imap_parse_command(cases[i].in, strlen(cases[i].in),
					    &lim, &cmd, &error);
		if (rc == 0) {
			print_error("'%s' parsed\n", cases[i].in);
			bad++;
		} else if (error == NULL ||
			   strcmp(error, cases[i].error) != 0) {
			print_error("'%s': got '%s', want '%s'\n", cases[i].in,
				    error != NULL ? error : "(null)",
				    cases[i].error);
			bad++;
		}
		imap_command_clear(&cmd);
	}
	assert_int_equal(bad, 0);
}

/* The tag of a malformed command is kept for the BAD reply. */
static void
test_tag_kept(void **state)
{
	(void)state;
	struct imap_command cmd;
	const char *error;
	assert_int_equal(parse("x7 FROB", &cmd, &error), -1);
	assert_string_equal(cmd.tag, "x7");
	imap_command_clear(&cmd);
	assert_int_equal(parse("+x NOOP", &cmd, &error), -1);
	assert_null(cmd.tag);
	imap_command_clear(&cmd);
}

/* --- strings ------------------------------------------------------------ */

static void
test_strings(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a LOGIN alice \"pass \\\"word\\\\\"", &cmd);
	assert_string_equal(cmd.user, "alice");
	assert_string_equal(cmd.password, "pass \"word\\");
	imap_command_clear(&cmd);

	parse_ok("a LOGIN {5}\r\nalice {3+}\r\npw!", &cmd);
	assert_string_equal(cmd.user, "alice");
	assert_string_equal(cmd.password, "pw!");
	imap_command_clear(&cmd);

	parse_ok("a LOGIN {0}\r\n {2-}\r\nxy", &cmd);
	assert_string_equal(cmd.user, "");
	assert_string_equal(cmd.password, "xy");
	imap_command_clear(&cmd);

	/* a NUL inside a literal string is refused */
	const char nul[] = "a LOGIN {3}\r\na\0b pw";
	const char *error;
	assert_int_equal(
		imap_parse_command(nul, sizeof(nul) - 1, &lim, &cmd, &error),
		-1);
	assert_string_equal(error, "NUL byte in literal");
	imap_command_clear(&cmd);
}

static void
test_mailbox_names(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a SELECT inbox", &cmd);
	assert_string_equal(cmd.mailbox, "Inbox");
	imap_command_clear(&cmd);
	parse_ok("a SELECT \"INBOX/Sub\"", &cmd);
	assert_string_equal(cmd.mailbox, "Inbox/Sub");
	imap_command_clear(&cmd);
	parse_ok("a SELECT Inboxes", &cmd);
	assert_string_equal(cmd.mailbox, "Inboxes");
	imap_command_clear(&cmd);
	parse_ok("a RENAME \"a b\" c]d", &cmd);
	assert_string_equal(cmd.mailbox, "a b");
	assert_string_equal(cmd.mailbox2, "c]d");
	imap_command_clear(&cmd);
	parse_ok("a EXAMINE x (CONDSTORE)", &cmd);
	assert_true(cmd.condstore);
	assert_int_equal(cmd.cmd, IMAP_CMD_EXAMINE);
	imap_command_clear(&cmd);
	parse_ok("a SELECT x (QRESYNC (67890007 20050715194045000 41,43:211"
		 ",214:541 (1:5 1:10)))",
		 &cmd);
	assert_true(cmd.qresync);
	assert_int_equal(cmd.qr_uidvalidity, 67890007);
	assert_true(cmd.qr_modseq == 20050715194045000ULL);
	assert_int_equal(cmd.qr_known_uids.count, 3);
	assert_int_equal(cmd.qr_uid_match.ranges[0].hi, 10);
	imap_command_clear(&cmd);
	parse_ok("a CREATE Stuff (USE (\\Archive))", &cmd);
	assert_string_equal(cmd.special_use, "\\Archive");
	imap_command_clear(&cmd);
}

/* --- sequence sets -------------------------------------------------------- */

static void
test_seqset(void **state)
{
	(void)state;
	struct imap_seqset set;
	assert_int_equal(imap_seqset_parse("1:3,5,7:*", &set), 0);
	assert_int_equal(set.count, 3);
	assert_true(imap_seqset_contains(&set, 2, 10));
	assert_false(imap_seqset_contains(&set, 4, 10));
	assert_true(imap_seqset_contains(&set, 10, 10));
	assert_false(imap_seqset_contains(&set, 11, 10));
	imap_seqset_clear(&set);
	/* reversed ranges are the same range */
	assert_int_equal(imap_seqset_parse("9:4", &set), 0);
	assert_int_equal(set.ranges[0].lo, 4);
	assert_int_equal(set.ranges[0].hi, 9);
	imap_seqset_clear(&set);
	/* "*" beyond max: "*:5" with max 3 covers 3..5 */
	assert_int_equal(imap_seqset_parse("*:5", &set), 0);
	assert_true(imap_seqset_contains(&set, 3, 3));
	imap_seqset_clear(&set);
	assert_int_equal(imap_seqset_parse("$", &set), 0);
	assert_true(set.saved);
	imap_seqset_clear(&set);
	assert_int_equal(imap_seqset_parse("1,,2", &set), -1);
	assert_int_equal(imap_seqset_parse("0", &set), -1);
	assert_int_equal(imap_seqset_parse("1:", &set), -1);
	assert_int_equal(imap_seqset_parse("", &set), -1);
}

/* --- FETCH ---------------------------------------------------------------- */

static void
test_fetch(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "
		 "\"To\")]<0.100> RFC822.SIZE BODY[1.2.MIME] BINARY[1] "
		 "BINARY.SIZE[2] BODY) (CHANGEDSINCE 12 VANISHED)",
		 &cmd);
	assert_true(cmd.uid);
	assert_int_equal(cmd.cmd, IMAP_CMD_FETCH);
	assert_int_equal(cmd.att_count, 7);
	assert_int_equal(cmd.atts[0].kind, IMAP_FETCH_FLAGS);
	const struct imap_fetch_att *b = &cmd.atts[1];
	assert_int_equal(b->kind, IMAP_FETCH_BODY_SECTION);
	assert_true(b->peek);
	assert_int_equal(b->section.text, IMAP_SECTION_HEADER_FIELDS);
	assert_int_equal(b->section.field_count, 2);
	assert_string_equal(b->section.fields[1], "To");
	assert_true(b->partial);
	assert_int_equal(b->partial_count, 100);
	assert_int_equal(cmd.atts[3].section.part_count, 2);
	assert_int_equal(cmd.atts[3].section.text, IMAP_SECTION_MIME);
	assert_int_equal(cmd.atts[4].kind, IMAP_FETCH_BINARY);
	assert_int_equal(cmd.atts[5].kind, IMAP_FETCH_BINARY_SIZE);
	assert_int_equal(cmd.atts[6].kind, IMAP_FETCH_BODY_STRUCTURE);
	assert_true(cmd.has_changedsince);
	assert_int_equal(cmd.changedsince, 12);
	assert_true(cmd.vanished);
	imap_command_clear(&cmd);

	parse_ok("a FETCH 2 FAST", &cmd);
	assert_int_equal(cmd.att_count, 3);
	imap_command_clear(&cmd);
	parse_ok("a FETCH 2 full", &cmd);
	assert_int_equal(cmd.att_count, 5);
	imap_command_clear(&cmd);
	parse_ok("a FETCH $ (UID MODSEQ RFC822 RFC822.HEADER RFC822.TEXT "
		 "ENVELOPE BODYSTRUCTURE INTERNALDATE BODY[TEXT] BODY[])",
		 &cmd);
	assert_true(cmd.set.saved);
	assert_int_equal(cmd.att_count, 10);
	assert_int_equal(cmd.atts[8].section.text, IMAP_SECTION_TEXT);
	assert_int_equal(cmd.atts[9].section.text, IMAP_SECTION_ALL);
	imap_command_clear(&cmd);
}

/* --- STORE, COPY, flags -----------------------------------------------------
 */

static void
test_store(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a STORE 1:2 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen "
		 "\\Deleted $Junk Work $Label1)",
		 &cmd);
	assert_int_equal(cmd.store_mode, 1);
	assert_true(cmd.silent);
	assert_true(cmd.has_unchangedsince);
	assert_int_equal(cmd.unchangedsince, 5);
	assert_int_equal(cmd.flags.flags,
			 IMAP_FLAG_SEEN | IMAP_FLAG_DELETED | IMAP_FLAG_JUNK);
	assert_string_equal(cmd.flags.keywords, "Work $Label1");
	imap_command_clear(&cmd);

	parse_ok("a STORE 3 -FLAGS \\Flagged", &cmd);
	assert_int_equal(cmd.store_mode, -1);
	assert_int_equal(cmd.flags.flags, IMAP_FLAG_FLAGGED);
	imap_command_clear(&cmd);

	parse_ok("a STORE 3 FLAGS ()", &cmd);
	assert_int_equal(cmd.store_mode, 0);
	assert_int_equal(cmd.flags.flags, 0);
	assert_string_equal(cmd.flags.keywords, "");
	imap_command_clear(&cmd);

	parse_ok("a UID MOVE 1:* Trash", &cmd);
	assert_int_equal(cmd.cmd, IMAP_CMD_MOVE);
	assert_true(cmd.uid);
	assert_string_equal(cmd.mailbox, "Trash");
	imap_command_clear(&cmd);
	parse_ok("a UID EXPUNGE 4:7", &cmd);
	assert_int_equal(cmd.cmd, IMAP_CMD_EXPUNGE);
	imap_command_clear(&cmd);
}

/* --- SEARCH --------------------------------------------------------------- */

static void
test_search(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a UID SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 "
		 "OR FROM alice (SINCE 1-Feb-2020 NOT SEEN) UNKEYWORD Work "
		 "HEADER X-Foo \"\" LARGER 10 SMALLER 99 1:3 UID $ MODSEQ 7 "
		 "BODY {3}\r\nabc",
		 &cmd);
	assert_true(cmd.esearch);
	assert_int_equal(cmd.search_return, IMAP_RET_MIN | IMAP_RET_MAX |
						    IMAP_RET_COUNT |
						    IMAP_RET_SAVE);
	assert_string_equal(cmd.charset, "UTF-8");
	const struct imap_search_key *k = &cmd.search;
	assert_int_equal(k->kind, IMAP_SK_AND);
	assert_int_equal(k->child_count, 9);
	assert_int_equal(k->children[0].kind, IMAP_SK_OR);
	assert_string_equal(k->children[0].children[0].str2, "FROM");
	assert_int_equal(k->children[0].children[1].kind, IMAP_SK_AND);
	assert_int_equal(k->children[1].kind, IMAP_SK_UNKEYWORD);
	assert_int_equal(k->children[2].kind, IMAP_SK_HEADER);
	assert_string_equal(k->children[2].str2, "X-Foo");
	assert_string_equal(k->children[2].str, "");
	assert_int_equal(k->children[3].kind, IMAP_SK_LARGER);
	assert_int_equal(k->children[4].kind, IMAP_SK_SMALLER);
	assert_int_equal(k->children[5].kind, IMAP_SK_SEQSET);
	assert_int_equal(k->children[6].kind, IMAP_SK_UID);
	assert_true(k->children[6].set.saved);
	assert_int_equal(k->children[7].kind, IMAP_SK_MODSEQ);
	assert_string_equal(k->children[8].str, "abc");
	imap_command_clear(&cmd);

	parse_ok("a SEARCH RETURN () ALL", &cmd);
	assert_int_equal(cmd.search_return, IMAP_RET_ALL);
	imap_command_clear(&cmd);
}

/* --- LIST, STATUS, APPEND, ID -----------------------------------------------
 */

static void
test_list_status(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX* %/x) RETURN "
		 "(CHILDREN STATUS (MESSAGES SIZE))",
		 &cmd);
	assert_int_equal(cmd.word_count, 3);
	assert_string_equal(cmd.words[1], "INBOX*");
	assert_true(cmd.list_opts & IMAP_LIST_RET_STATUS);
	assert_true(cmd.list_opts & IMAP_LIST_SUBSCRIBED);
	assert_int_equal(cmd.status_items,
			 IMAP_STATUS_MESSAGES | IMAP_STATUS_SIZE);
	imap_command_clear(&cmd);
	parse_ok("a LSUB \"\" *", &cmd);
	assert_int_equal(cmd.cmd, IMAP_CMD_LSUB);
	imap_command_clear(&cmd);
	parse_ok("a STATUS Sent (UIDNEXT HIGHESTMODSEQ DELETED APPENDLIMIT)",
		 &cmd);
	assert_int_equal(cmd.status_items,
			 IMAP_STATUS_UIDNEXT | IMAP_STATUS_HIGHESTMODSEQ |
				 IMAP_STATUS_DELETED | IMAP_STATUS_APPENDLIMIT);
	imap_command_clear(&cmd);
}

static void
test_append(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a APPEND Drafts (\\Draft $x) \" 2-Jan-2020 10:00:00 +0100\" "
		 "{5+}\r\nHi\r\n!",
		 &cmd);
	assert_true(cmd.has_flags);
	assert_int_equal(cmd.flags.flags, IMAP_FLAG_DRAFT);
	assert_string_equal(cmd.flags.keywords, "$x");
	assert_int_equal(cmd.date, 1577955600);
	assert_int_equal(cmd.message_len, 5);
	assert_memory_equal(cmd.message, "Hi\r\n!", 5);
	imap_command_clear(&cmd);
	/* APPEND has its own limit, above the other literals' */
	char big[2200];
	int n = snprintf(big, sizeof(big), "a APPEND x {2000}\r\n");
	memset(big + n, 'x', 2000);
	const char *error;
	assert_int_equal(
		imap_parse_command(big, (size_t)n + 2000, &lim, &cmd, &error),
		0);
	imap_command_clear(&cmd);
	/* literal8 may hold NUL; a plain literal may not */
	const char bin[] = "a APPEND x ~{3}\r\na\0b";
	assert_int_equal(
		imap_parse_command(bin, sizeof(bin) - 1, &lim, &cmd, &error),
		0);
	assert_true(cmd.message_binary);
	imap_command_clear(&cmd);
	const char nul[] = "a APPEND x {3}\r\na\0b";
	assert_int_equal(
		imap_parse_command(nul, sizeof(nul) - 1, &lim, &cmd, &error),
		-1);
	assert_string_equal(error, "NUL byte in message (use literal8)");
	imap_command_clear(&cmd);
}

static void
test_misc_commands(void **state)
{
	(void)state;
	struct imap_command cmd;
	parse_ok("a ID (\"name\" \"x\" \"version\" NIL)", &cmd);
	assert_int_equal(cmd.word_count, 4);
	imap_command_clear(&cmd);
	parse_ok("a ID NIL", &cmd);
	imap_command_clear(&cmd);
	parse_ok("a ENABLE CONDSTORE QRESYNC", &cmd);
	assert_int_equal(cmd.word_count, 2);
	imap_command_clear(&cmd);
	parse_ok("a AUTHENTICATE PLAIN AGFsaWNlAHB3", &cmd);
	assert_true(cmd.has_initial);
	assert_string_equal(cmd.initial, "AGFsaWNlAHB3");
	imap_command_clear(&cmd);
	parse_ok("a authenticate scram-sha-256", &cmd);
	assert_false(cmd.has_initial);
	imap_command_clear(&cmd);
	static const char *const simple[] = {
		"a CAPABILITY",	   "a NOOP",	"a LOGOUT",   "a STARTTLS",
		"a NAMESPACE",	   "a IDLE",	"a CHECK",    "a CLOSE",
		"a UNSELECT",	   "a EXPUNGE", "a DELETE x", "a SUBSCRIBE x",
		"a UNSUBSCRIBE x",
	};
	for (size_t i = 0; i < N_ELEMENTS(simple); i++) {
		parse_ok(simple[i], &cmd);
		imap_command_clear(&cmd);
	}
}

/* --- line level -------------------------------------------------------------
 */

static void
test_literal_suffix(void **state)
{
	(void)state;
	uint64_t n;
	bool sync;
	const char *error;
	assert_int_equal(
		imap_literal_suffix("a LOGIN {5}", 11, &n, &sync, &error), 1);
	assert_int_equal(n, 5);
	assert_true(sync);
	assert_int_equal(
		imap_literal_suffix("a LOGIN {5+}", 12, &n, &sync, &error), 1);
	assert_false(sync);
	assert_int_equal(
		imap_literal_suffix("a X {4096-}", 11, &n, &sync, &error), 1);
	assert_int_equal(
		imap_literal_suffix("a X {4097-}", 11, &n, &sync, &error), -1);
	assert_string_equal(error,
			    "non-synchronizing literal too large (LITERAL-)");
	assert_int_equal(imap_literal_suffix("a X {99999999999999999999}", 26,
					     &n, &sync, &error),
			 -1);
	assert_string_equal(error, "literal too large");
	assert_int_equal(imap_literal_suffix("a X {}", 6, &n, &sync, &error),
			 -1);
	assert_int_equal(imap_literal_suffix("a NOOP", 6, &n, &sync, &error),
			 0);
	assert_int_equal(imap_literal_suffix("a X 5}", 6, &n, &sync, &error),
			 0);
}

static void
test_looks_like_imap(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		bool ok;
	} cases[] = {
		{ "a1 CAPABILITY", true },
		{ "* LOGIN", false },
		{ "GET / HTTP/1.1", false },
		{ "POST /x HTTP/1.0", false },
		{ "a1", false },
		{ "a1 1", false },
		{ "\x16\x03\x01", false },
		{ "", false },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (imap_looks_like_imap(cases[i].line,
					 strlen(cases[i].line)) != cases[i].ok)
			fail_msg("'%s'", cases[i].line);
	char *t = imap_line_tag("x1 FOO", 6);
	assert_string_equal(t, "x1");
	free(t);
	t = imap_line_tag("garbage", 7);
	assert_string_equal(t, "*");
	free(t);
}

static void
test_dates(void **state)
{
	(void)state;
	assert_int_equal(imap_parse_day("1-Jan-1970", 10), 0);
	assert_int_equal(imap_parse_day("02-jan-1970", 11), 1);
	assert_int_equal(imap_parse_day("29-Feb-2000", 11), 11016);
	assert_int_equal(imap_parse_day("1-Jan-70", 8), -1);
	assert_int_equal(imap_parse_day("x", 1), -1);
	assert_int_equal(imap_parse_date_time("01-Jan-1970 00:00:00 +0000", 26),
			 0);
	assert_int_equal(imap_parse_date_time(" 1-Jan-1970 01:00:00 +0100", 26),
			 0);
	assert_int_equal(imap_parse_date_time("01-Jan-1970 00:00:00 -0130", 26),
			 5400);
	assert_int_equal(imap_parse_date_time("01-Jan-1970 24:00:00 +0000", 26),
			 -1);
	assert_int_equal(imap_parse_date_time("01-Jan-1970", 11), -1);
}

static void
test_mutf7(void **state)
{
	(void)state;
	static const struct {
		const char *mutf7, *utf8;
	} good[] = {
		{ "Entw&APw-rfe", "Entw\xc3\xbcrfe" },
		{ "&Jjo-!", "\xe2\x98\xba!" },
		{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
		  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ "A&-B", "A&B" },
		{ "&2D3eAA-", "\xf0\x9f\x98\x80" }, /* U+1F600, a pair */
		{ "plain", "plain" },
	};
	for (size_t i = 0; i < N_ELEMENTS(good); i++) {
		char *out;
		assert_int_equal(imap_mutf7_decode(good[i].mutf7, &out), 0);
		assert_string_equal(out, good[i].utf8);
		free(out);
		out = imap_mutf7_encode(good[i].utf8);
		assert_string_equal(out, good[i].mutf7);
		free(out);
	}
	static const char *const bad[] = {
		"&",	 "&Jjo",  "&AGE-", "&-&",
		"&2D0-", "&3gA-", "&Jj!-", "&-&Jjp-",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *out = (char *)"x";
		if (imap_mutf7_decode(bad[i], &out) == 0)
			fail_msg("'%s' decoded to '%s'", bad[i], out);
		assert_null(out);
	}
	/* UTF-8 from a client that did not ask passes through */
	char *out;
	assert_int_equal(imap_mutf7_decode("Entw\xc3\xbcrfe", &out), 0);
	assert_string_equal(out, "Entw\xc3\xbcrfe");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_tag_kept),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_mailbox_names),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_fetch),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_list_status),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_misc_commands),
		cmocka_unit_test(test_literal_suffix),
		cmocka_unit_test(test_looks_like_imap),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_mutf7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
