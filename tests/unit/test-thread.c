/*
 * tests/unit/test-thread.c — threading (kernel/store/thread-header.c and
 * kernel/store/thread.c): header parsing (folding, ids with comments and
 * without brackets, the References/In-Reply-To merge, garbage, dates in
 * many forms and zones), base subjects (reply markers, list tags, RFC 2047
 * words in UTF-8 and ISO-8859-1) and thread assignment on an in-memory
 * database with the store's schema (reply chains, missing parents,
 * subject changes, subject-only matching inside and outside 4 weeks,
 * muted and collapsed inheritance, late parents adopting their replies).
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

#include "kernel/store/store-private.h"

#define DAY (24 * 3600)

/* --- header parsing --- */

static void
parse(const char *text, struct ts__thread_headers *h)
{
	assert_int_equal(ts__thread_headers_parse(text, strlen(text), h), 0);
}

static void
assert_refs(const struct ts__thread_headers *h, const char *const *want,
	    size_t n)
{
	assert_int_equal(h->reference_count, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(h->references[i], want[i]);
	if (n > 0)
		assert_null(h->references[n]);
}

static void
test_parse_basic(void **state)
{
	struct ts__thread_headers h;
	parse("From: a@example.org\r\n"
	      "Message-ID: <abc@example.org>\r\n"
	      "Subject: Re: Hello\r\n"
	      "In-Reply-To: <p@example.org>\r\n"
	      "References: <r@example.org> <p@example.org>\r\n"
	      "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
	      "\r\n"
	      "Message-ID: <body@example.org>\r\n",
	      &h);
	assert_string_equal(h.message_id, "abc@example.org");
	assert_string_equal(h.subject_base, "hello");
	const char *refs[] = { "r@example.org", "p@example.org" };
	assert_refs(&h, refs, 2);
	assert_int_equal(h.sent, 1057049557);
	ts__thread_headers_free(&h);
	assert_null(h.message_id);
}

static void
test_parse_folded(void **state)
{
	struct ts__thread_headers h;
	parse("message-id:\n <folded@\n example.org>\n"
	      "SUBJECT: a long\n\tsubject\n"
	      "references: <one@x>\n <two@x>\n\t<three@x>\n"
	      "X-Other: <no@x>\n"
	      " <cont@x>\n"
	      "\n",
	      &h);
	assert_string_equal(h.message_id, "folded@example.org");
	assert_string_equal(h.subject_base, "a long subject");
	const char *refs[] = { "one@x", "two@x", "three@x" };
	assert_refs(&h, refs, 3);
	assert_int_equal(h.sent, 0);
	ts__thread_headers_free(&h);
}

static void
test_parse_comments_and_brackets(void **state)
{
	struct ts__thread_headers h;
	parse("Message-ID: (a comment <not@this>) <real@x> <second@x>\n"
	      "References: <a@x> (comment (nested) <c@x>) <b@x>\n"
	      "In-Reply-To: \"quoted <q@x>\" <b@x> (from Joe <j@x>)\n\n",
	      &h);
	assert_string_equal(h.message_id, "real@x");
	const char *refs[] = { "a@x", "b@x" };
	assert_refs(&h, refs, 2);
	ts__thread_headers_free(&h);

	/* Missing brackets are tolerated. */
	parse("Message-ID: bare@example.org\n"
	      "In-Reply-To: parent@example.org (Joe's message)\n\n",
	      &h);
	assert_string_equal(h.message_id, "bare@example.org");
	const char *refs2[] = { "parent@example.org" };
	assert_refs(&h, refs2, 1);
	ts__thread_headers_free(&h);

	/* Without any id: empty, not NULL. */
	parse("Subject: x\n\n", &h);
	assert_string_equal(h.message_id, "");
	assert_int_equal(h.reference_count, 0);
	assert_null(h.references);
	ts__thread_headers_free(&h);
}

static void
test_parse_merge_order(void **state)
{
	struct ts__thread_headers h;
	/* In-Reply-To ids not in References go last: the direct parent. */
	parse("In-Reply-To: <parent@x>\n"
	      "References: <root@x> <mid@x>\n\n",
	      &h);
	const char *refs[] = { "root@x", "mid@x", "parent@x" };
	assert_refs(&h, refs, 3);
	ts__thread_headers_free(&h);

	parse("In-Reply-To: <mid@x>\n"
	      "References: <root@x> <mid@x>\n\n",
	      &h);
	const char *refs2[] = { "root@x", "mid@x" };
	assert_refs(&h, refs2, 2);
	ts__thread_headers_free(&h);

	/* Only In-Reply-To; the first References header counts. */
	parse("In-Reply-To: <a@x> <b@x>\n"
	      "References: <r1@x>\n"
	      "References: <r2@x>\n\n",
	      &h);
	const char *refs3[] = { "r1@x", "a@x", "b@x" };
	assert_refs(&h, refs3, 3);
	ts__thread_headers_free(&h);
}

static void
test_parse_garbage(void **state)
{
	struct ts__thread_headers h;
	/* NULs and 8-bit bytes, no empty line at the end. */
	static const char text[] = "Subj\0ect: no\n"
				   "Subject: caf\xc3\xa9 \xff\0x\n"
				   "no colon here\n"
				   "Message-ID: <a\0b@x>\n"
				   ": empty name\n"
				   "References: <<<>>> <ok@x";
	assert_int_equal(ts__thread_headers_parse(text, sizeof(text) - 1, &h),
			 0);
	assert_string_equal(h.subject_base, "caf\xc3\xa9 \xff x");
	assert_string_equal(h.message_id, "ab@x");
	const char *refs[] = { "ok@x" };
	assert_refs(&h, refs, 1);
	ts__thread_headers_free(&h);

	/* The body starts right away. */
	parse("\nMessage-ID: <body@x>\n", &h);
	assert_string_equal(h.message_id, "");
	ts__thread_headers_free(&h);

	/* Empty and NULL input. */
	assert_int_equal(ts__thread_headers_parse("", 0, &h), 0);
	assert_string_equal(h.subject_base, "");
	ts__thread_headers_free(&h);
	assert_int_equal(ts__thread_headers_parse(NULL, 0, &h), 0);
	assert_string_equal(h.message_id, "");
	ts__thread_headers_free(&h);
}

static void
test_parse_huge(void **state)
{
	/*
	 * 100 000 references in one folded header and 50 000 other fields:
	 * linear work, and the references kept are the root plus the
	 * nearest 255.
	 */
	size_t n = 100000, cap = n * 24 + 50000 * 16 + 100;
	char *text = malloc(cap), *p = text;
	p += sprintf(p, "References:");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "\r\n <%zu@x>", i);
	p += sprintf(p, "\r\n");
	for (size_t i = 0; i < 50000; i++)
		p += sprintf(p, "X-F: %zu\r\n", i);
	p += sprintf(p, "Message-ID: <last@x>\r\n\r\n");
	struct ts__thread_headers h;
	assert_int_equal(ts__thread_headers_parse(text, (size_t)(p - text), &h),
			 0);
	assert_string_equal(h.message_id, "last@x");
	assert_int_equal(h.reference_count, 256);
	assert_string_equal(h.references[0], "0@x");
	assert_string_equal(h.references[1], "99745@x");
	assert_string_equal(h.references[255], "99999@x");
	ts__thread_headers_free(&h);
	free(text);
}

static int64_t
date_of(const char *value)
{
	char *text = ts_xasprintf("Date: %s\r\n\r\n", value);
	struct ts__thread_headers h;
	parse(text, &h);
	int64_t sent = h.sent;
	ts__thread_headers_free(&h);
	free(text);
	return sent;
}

static void
test_parse_dates(void **state)
{
	/* 2003-07-01 08:52:37 UTC */
	const int64_t t = 1057049557;
	assert_int_equal(date_of("Tue, 1 Jul 2003 10:52:37 +0200"), t);
	assert_int_equal(date_of("1 Jul 2003 10:52:37 +0200"), t);
	assert_int_equal(date_of("Tue, 01 Jul 2003 08:52:37 +0000"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 08:52:37 GMT"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 08:52:37 UT"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 04:52:37 EDT"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 03:52:37 EST"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 01:52:37 PDT"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 00:52:37 PST"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 02:52:37 -0600"), t);
	assert_int_equal(date_of("Tue, 1 Jul 2003 14:22:37 +0530"), t);
	/* Obsolete: 2-digit year, comments, odd spacing, no seconds. */
	assert_int_equal(date_of("Tue, 1 Jul 03 10:52:37 +0200"), t);
	assert_int_equal(date_of("Tue , 1 jul 2003 10 : 52 : 37 +0200 (CEST)"),
			 t);
	assert_int_equal(date_of("(comment) 1 JUL 2003 08:52:37 Z"), t);
	assert_int_equal(date_of("Thu, 1 Jan 1970 00:01 +0000"), 60);
	assert_int_equal(date_of("Wed, 31 Dec 99 23:59:59 +0000"), 946684799);
	assert_int_equal(date_of("Fri, 29 Feb 2036 12:00:00 +0000"),
			 2087899200);
	/* No zone: UTC. */
	assert_int_equal(date_of("1 Jul 2003 08:52:37"), t);
	/* Unparsable: 0. */
	assert_int_equal(date_of("yesterday"), 0);
	assert_int_equal(date_of("32 Jul 2003 10:52:37 +0200"), 0);
	assert_int_equal(date_of("1 Foo 2003 10:52:37 +0200"), 0);
	assert_int_equal(date_of("1 Jul 2003 24:52:37 +0200"), 0);
	assert_int_equal(date_of("1 Jul 2003 10:52:37 +02"), 0);
	assert_int_equal(date_of(""), 0);
}

/* --- base subjects --- */

static void
assert_base(const char *subject, const char *want)
{
	char *base = ts__subject_base(subject);
	assert_string_equal(base, want);
	free(base);
}

static void
test_subject_markers(void **state)
{
	assert_base("Re: [tessera] Fwd: Hello   World (fwd)", "hello world");
	assert_base("Hello World", "hello world");
	assert_base("RE: re: Re[2]: Re(3): hello", "hello");
	assert_base("Fw: FWD: Aw: Antw: Sv: Vs: Wg: x", "x");
	assert_base("Re : spaced", "spaced");
	assert_base("Re:no space", "no space");
	assert_base("Re: Hello (fwd) (FWD)", "hello");
	assert_base("[list] [other] Re: [list] x", "x");
	assert_base("[fwd: Re: inner]", "inner");
	assert_base("  \t tabs\tand\r\n  newlines  ", "tabs and newlines");
	/* Not markers: whole words only, a counter must be numeric. */
	assert_base("Review: the plan", "review: the plan");
	assert_base("Re[x]: y", "re[x]: y");
	assert_base("Regarding it", "regarding it");
	/* A subject that is all blob keeps it. */
	assert_base("[PATCH]", "[patch]");
	assert_base("Re: [PATCH]", "[patch]");
	assert_base("", "");
	assert_base(NULL, "");
	assert_base("Re:", "");
	/* Non-ASCII bytes are left as they are. */
	assert_base("Re: \xc3\x89T\xc3\x89", "\xc3\x89t\xc3\x89");
}

static void
test_subject_rfc2047(void **state)
{
	/* B and Q in UTF-8: "Grüße" */
	assert_base("=?UTF-8?B?R3LDvMOfZQ==?=", "gr\xc3\xbc\xc3\x9f\x65");
	assert_base("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "gr\xc3\xbc\xc3\x9f\x65");
	/* ISO-8859-1 converted to UTF-8. */
	assert_base("=?ISO-8859-1?Q?Caf=E9?=", "caf\xc3\xa9");
	assert_base("Re: =?iso-8859-1?B?Q2Fm6Q==?= time", "caf\xc3\xa9 time");
	/* Q underscores are spaces; the marker inside a word is found. */
	assert_base("=?us-ascii?Q?Re:_hello_world?=", "hello world");
	/* Adjacent words are joined without the whitespace between. */
	assert_base("=?utf-8?q?hel?= =?utf-8?q?lo?=", "hello");
	assert_base("=?utf-8?q?hel?=\r\n\t=?utf-8?b?bG8=?= world",
		    "hello world");
	/* A word next to plain text keeps its space. */
	assert_base("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c");
	/* Language suffix (RFC 2231). */
	assert_base("=?utf-8*en?q?Hi?=", "hi");
	/* Another charset through iconv. */
	assert_base("=?windows-1252?q?=80_5?=", "\xe2\x82\xac 5");
	/* Bad words stay as they are. */
	assert_base("=?x-unknown-charset?q?abc?=",
		    "=?x-unknown-charset?q?abc?=");
	assert_base("=?utf-8?b?***?=", "=?utf-8?b?***?=");
	assert_base("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	assert_base("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
	assert_base("=?utf-8?q?a?= =?bad?q?b?=", "a =?bad?q?b?=");
	/* Decoded control characters and NULs become spaces. */
	assert_base("=?utf-8?q?a=00b=0Ac?=", "a b c");
}

/* --- thread assignment --- */

static sqlite3 *
db_new(void)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA foreign_keys=ON;" TS__STORE_SCHEMA
				      "INSERT INTO mailboxes (id, name,"
				      " uidvalidity) VALUES (1, 'Inbox', 1);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	return db;
}

/* Message ids of the database rows, by what add() returned. */
struct row {
	int64_t thread_id;
	char *parent_ids;
	bool missing_link, muted, collapsed;
};

/*
 * What ts__store_add_message does for threading: insert the row, assign
 * its thread, write the result back.  `header` is the message's header.
 */
static int64_t
add_full(sqlite3 *db, int64_t received, const char *header,
	 struct ts__thread_result *r_out)
{
	struct ts__thread_headers h;
	parse(header, &h);
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "INSERT INTO messages (mailbox_id, uid,"
				   " modseq, createseq, received, size,"
				   " message_id, subject_base, sent)"
				   " VALUES (1, (SELECT count(*) + 1 FROM"
				   " messages), 1, 1, ?1, 0, ?2, ?3, ?4)",
				   -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_int64(st, 1, received);
	sqlite3_bind_text(st, 2, h.message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, h.subject_base, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, h.sent);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	int64_t id = sqlite3_last_insert_rowid(db);

	struct ts__thread_result r;
	assert_int_equal(ts__thread_assign(db, id, received, &h, &r), 0);
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "UPDATE messages SET thread_id = ?1,"
				   " thread_parent_ids = ?2,"
				   " thread_missing_link = ?3,"
				   " thread_muted = ?4, thread_collapsed = ?5"
				   " WHERE id = ?6",
				   -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_int64(st, 1, r.thread_id);
	sqlite3_bind_text(st, 2, r.parent_ids, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, r.missing_link);
	sqlite3_bind_int(st, 4, r.muted);
	sqlite3_bind_int(st, 5, r.collapsed);
	sqlite3_bind_int64(st, 6, id);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	ts__thread_headers_free(&h);
	if (r_out != NULL)
		*r_out = r;
	else
		free(r.parent_ids);
	return id;
}

static int64_t
add(sqlite3 *db, int64_t received, const char *header)
{
	return add_full(db, received, header, NULL);
}

/* A message's thread columns as "thread_id|parent ids|missing link". */
static void
assert_thread(sqlite3 *db, int64_t id, const char *want)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT thread_id || '|' ||"
					    " thread_parent_ids || '|' ||"
					    " thread_missing_link"
					    " FROM messages WHERE id = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
}

static void
exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static const int64_t T0 = 1700000000;

static void
test_assign_chain(void **state)
{
	sqlite3 *db = db_new();
	int64_t a = add(db, T0, "Message-ID: <a@x>\nSubject: Plan\n\n");
	int64_t b = add(db, T0 + 10,
			"Message-ID: <b@x>\nSubject: Re: Plan\n"
			"In-Reply-To: <a@x>\n\n");
	int64_t c = add(db, T0 + 20,
			"Message-ID: <c@x>\nSubject: Re: Re: plan\n"
			"References: <a@x> <b@x>\n\n");
	int64_t d = add(db, T0 + 30,
			"Message-ID: <d@x>\nSubject: RE: [list] Plan\n"
			"References: <a@x>\nIn-Reply-To: <c@x>\n\n");
	/* A second reply to a: a sibling of b. */
	int64_t e = add(db, T0 + 40,
			"Message-ID: <e@x>\nSubject: Re: Plan\n"
			"References: <a@x>\n\n");
	assert_int_equal(a, 1);
	assert_thread(db, a, "1||0");
	assert_thread(db, b, "1|1|0");
	assert_thread(db, c, "1|1 2|0");
	assert_thread(db, d, "1|1 2 3|0");
	assert_thread(db, e, "1|1|0");
	sqlite3_close(db);
}

static void
test_assign_missing_parent(void **state)
{
	sqlite3 *db = db_new();
	int64_t a = add(db, T0, "Message-ID: <a@x>\nSubject: Plan\n\n");
	/* c's parent b never arrived: c hangs under a, link missing. */
	int64_t c = add(db, T0 + 20,
			"Message-ID: <c@x>\nSubject: Re: Plan\n"
			"References: <a@x> <b@x>\n\n");
	assert_thread(db, c, "1|1|1");
	/* A reply to c itself is complete again. */
	int64_t d = add(db, T0 + 30,
			"Message-ID: <d@x>\nSubject: Re: Plan\n"
			"References: <a@x> <b@x> <c@x>\n\n");
	assert_thread(db, d, "1|1 2|0");
	/* Now b arrives: c (and d below it) move under b. */
	int64_t b = add(db, T0 + 40,
			"Message-ID: <b@x>\nSubject: Re: Plan\n"
			"References: <a@x>\n\n");
	assert_int_equal(b, 4);
	assert_thread(db, b, "1|1|0");
	assert_thread(db, c, "1|1 4|0");
	assert_thread(db, d, "1|1 4 2|0");
	assert_thread(db, a, "1||0");
	sqlite3_close(db);
}

static void
test_assign_late_parent_no_refs_found(void **state)
{
	sqlite3 *db = db_new();
	/* A reply arrives before the message it answers (a new thread). */
	int64_t b = add(db, T0,
			"Message-ID: <b@x>\nSubject: Re: Party\n"
			"In-Reply-To: <a@x>\n\n");
	assert_thread(db, b, "1||1");
	int64_t c = add(db, T0 + 5,
			"Message-ID: <c@x>\nSubject: Re: Party\n"
			"References: <a@x> <b@x>\n\n");
	assert_thread(db, c, "1|1|0");
	/*
	 * The original arrives: instead of matching its own reply by
	 * subject, it takes b's place as the root and adopts b and c; the
	 * thread id becomes the new root's.
	 */
	int64_t a = add(db, T0 + 10, "Message-ID: <a@x>\nSubject: Party\n\n");
	assert_thread(db, a, "3||0");
	assert_thread(db, b, "3|3|0");
	assert_thread(db, c, "3|3 1|0");
	/* A late parent of a non-root reply takes its place in the tree. */
	int64_t e = add(db, T0 + 20,
			"Message-ID: <e@x>\nSubject: Re: Party\n"
			"References: <a@x> <d@x>\n\n");
	assert_thread(db, e, "3|3|1");
	int64_t d =
		add(db, T0 + 30, "Message-ID: <d@x>\nSubject: Re: Party\n\n");
	assert_thread(db, d, "3|3|0");
	assert_thread(db, e, "3|3 5|0");
	sqlite3_close(db);
}

static void
test_assign_subject_change(void **state)
{
	sqlite3 *db = db_new();
	add(db, T0, "Message-ID: <a@x>\nSubject: Plan\n\n");
	struct ts__thread_result r;
	int64_t b = add_full(db, T0 + 10,
			     "Message-ID: <b@x>\nSubject: Re: Something else\n"
			     "In-Reply-To: <a@x>\n\n",
			     &r);
	assert_int_equal(r.thread_id, b);
	assert_string_equal(r.parent_ids, "");
	assert_false(r.missing_link);
	free(r.parent_ids);
	/* Found ancestor with another subject, direct parent missing. */
	int64_t c = add(db, T0 + 20,
			"Message-ID: <c@x>\nSubject: Re: Third\n"
			"References: <a@x> <zz@x>\n\n");
	assert_thread(db, c, "3||1");
	/* Replies to b follow b's subject. */
	int64_t d = add(db, T0 + 30,
			"Message-ID: <d@x>\nSubject: Re: something ELSE\n"
			"References: <a@x> <b@x>\n\n");
	assert_thread(db, d, "2|2|0");
	sqlite3_close(db);
}

static void
test_assign_subject_window(void **state)
{
	sqlite3 *db = db_new();
	int64_t a = add(db, T0, "Message-ID: <a@x>\nSubject: Weekly\n\n");
	int64_t b = add(db, T0 + 10, "Message-ID: <b@x>\nSubject: Other\n\n");
	/* No references: the subject matches a, inside 4 weeks. */
	int64_t c = add(db, T0 + 28 * DAY,
			"Message-ID: <c@x>\nSubject: Re: Weekly\n\n");
	assert_thread(db, b, "2||0");
	assert_thread(db, c, "1|1|0");
	/* Unknown references, subject match: missing link. */
	int64_t d = add(db, T0 + 28 * DAY + 60,
			"Message-ID: <d@x>\nSubject: Re: Weekly\n"
			"References: <unknown@x>\n\n");
	assert_thread(db, d, "1|1 3|1");
	/* Outside 4 weeks of the last one: a new thread. */
	int64_t e = add(db, T0 + 56 * DAY + 61,
			"Message-ID: <e@x>\nSubject: Re: Weekly\n\n");
	assert_thread(db, e, "5||0");
	/* Empty subjects never match by subject. */
	int64_t f = add(db, T0 + 60 * DAY, "Message-ID: <f@x>\n\n");
	int64_t g = add(db, T0 + 60 * DAY + 1,
			"Message-ID: <g@x>\nSubject: Re:\n\n");
	assert_thread(db, f, "6||0");
	assert_thread(db, g, "7||0");
	/* But a reply to an empty subject by reference works. */
	int64_t i = add(db, T0 + 60 * DAY + 2,
			"Message-ID: <i@x>\nIn-Reply-To: <f@x>\n\n");
	assert_thread(db, i, "6|6|0");
	(void)a;
	sqlite3_close(db);
}

static void
test_assign_muted_collapsed(void **state)
{
	sqlite3 *db = db_new();
	struct ts__thread_result r;
	add(db, T0, "Message-ID: <a@x>\nSubject: Noise\n\n");
	add(db, T0 + 1, "Message-ID: <q@x>\nSubject: Quiet\n\n");
	exec(db, "UPDATE messages SET thread_muted = 1 WHERE thread_id = 1;"
		 "UPDATE messages SET thread_collapsed = 1"
		 " WHERE thread_id = 2");
	add_full(
		db, T0 + 10,
		"Message-ID: <b@x>\nSubject: Re: Noise\nIn-Reply-To: <a@x>\n\n",
		&r);
	assert_true(r.muted);
	assert_false(r.collapsed);
	free(r.parent_ids);
	/* Also by subject, and down the chain. */
	add_full(db, T0 + 20, "Message-ID: <c@x>\nSubject: noise\n\n", &r);
	assert_true(r.muted);
	assert_string_equal(r.parent_ids, "1 3");
	free(r.parent_ids);
	add_full(db, T0 + 30,
		 "Message-ID: <d@x>\nSubject: Re: Quiet\nReferences: <q@x>\n\n",
		 &r);
	assert_false(r.muted);
	assert_true(r.collapsed);
	free(r.parent_ids);
	/* A new root inherits nothing. */
	add_full(db, T0 + 40, "Message-ID: <n@x>\nSubject: Fresh\n\n", &r);
	assert_false(r.muted);
	assert_false(r.collapsed);
	assert_int_equal(r.thread_id, 6);
	assert_string_equal(r.parent_ids, "");
	assert_false(r.missing_link);
	free(r.parent_ids);
	sqlite3_close(db);
}

static void
test_assign_duplicates_and_self(void **state)
{
	sqlite3 *db = db_new();
	/* Two copies of a: the oldest is the parent. */
	add(db, T0 + 5, "Message-ID: <a@x>\nSubject: Dup\n\n");
	add(db, T0, "Message-ID: <a@x>\nSubject: Dup\n\n");
	int64_t b = add(db, T0 + 10,
			"Message-ID: <b@x>\nSubject: Re: Dup\n"
			"In-Reply-To: <a@x>\n\n");
	assert_thread(db, b, "2|2|0");
	/* A message referencing itself is not its own parent. */
	int64_t s = add(db, T0 + 20,
			"Message-ID: <s@x>\nSubject: Self\n"
			"References: <s@x>\n\n");
	assert_thread(db, s, "4||0");
	/*
	 * Hostile References: p waits for q, q's references lead to p.
	 * q hangs under p; p must not then move under q (a cycle).
	 */
	int64_t p = add(db, T0 + 30,
			"Message-ID: <p@x>\nSubject: Loop\n"
			"References: <q@x>\n\n");
	int64_t q = add(db, T0 + 40,
			"Message-ID: <q@x>\nSubject: Loop\n"
			"References: <p@x>\n\n");
	assert_thread(db, p, "5||1");
	assert_thread(db, q, "5|5|0");
	sqlite3_close(db);
}

static void
test_assign_pending_cleanup(void **state)
{
	sqlite3 *db = db_new();
	add(db, T0, "Message-ID: <a@x>\nSubject: T\n\n");
	int64_t c = add(db, T0 + 1,
			"Message-ID: <c@x>\nSubject: T\n"
			"References: <a@x> <b1@x> <b2@x>\n\n");
	assert_thread(db, c, "1|1|1");
	/* b1 arrives: c moves under it, b2 still missing. */
	int64_t b1 =
		add(db, T0 + 2,
		    "Message-ID: <b1@x>\nSubject: T\nReferences: <a@x>\n\n");
	assert_thread(db, c, "1|1 3|1");
	/* Deleting c drops its pending references (foreign key cascade). */
	exec(db, "DELETE FROM messages WHERE id = 2");
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT count(*) FROM thread_pending",
				   -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	(void)b1;
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_folded),
		cmocka_unit_test(test_parse_comments_and_brackets),
		cmocka_unit_test(test_parse_merge_order),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_parse_huge),
		cmocka_unit_test(test_parse_dates),
		cmocka_unit_test(test_subject_markers),
		cmocka_unit_test(test_subject_rfc2047),
		cmocka_unit_test(test_assign_chain),
		cmocka_unit_test(test_assign_missing_parent),
		cmocka_unit_test(test_assign_late_parent_no_refs_found),
		cmocka_unit_test(test_assign_subject_change),
		cmocka_unit_test(test_assign_subject_window),
		cmocka_unit_test(test_assign_muted_collapsed),
		cmocka_unit_test(test_assign_duplicates_and_self),
		cmocka_unit_test(test_assign_pending_cleanup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
