/*
 * modules/imap/tests/test-imap-structure.c — ENVELOPE, BODYSTRUCTURE and
 * BODY (modules/imap/structure.c over the kernel MIME library) for a
 * corpus of tricky messages, each with its expected output written out
 * and checked by hand against RFC 3501 section 7.4.2 (sizes are octets of
 * the part's body, the line end before a boundary belonging to the
 * boundary; lines are the LFs in the body, as Dovecot counts them, so an
 * unterminated last line does not count).
 *
 * Every message is parsed from memory and again from a temp file through
 * ts_mime_parse_fd with small chunk sizes, so chunk boundaries fall inside
 * header lines and boundary lines; all parses must give the same output.
 * Also: the string quoting rules on their own.  With "--json" it prints
 * the corpus instead, for tests/integration/test_imap_structure.py.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "modules/imap/structure.h"

#define L(s) s "\r\n"

struct corpus_case {
	const char *name;
	const char *message;
	const char *envelope;
	const char *bodystructure;
	const char *body; /* NULL: not checked */
	unsigned int max_depth, max_parts;
};

/*
 * Most cases leave the limits at their defaults; spelling ", 0, 0" in
 * each of them would only add noise.
 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* The ENVELOPE of a message with no interesting header. */
#define ENV_NONE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
#define ALICE "((\"Alice\" NIL \"alice\" \"example.com\"))"
#define TEXT_ASCII "(\"charset\" \"us-ascii\")"

/* One message line per source line: clang-format would reflow them. */
/* clang-format off */
static const struct corpus_case corpus[] = {
	{
		"simple",
		L("From: Alice <alice@example.com>")
		L("To: bob@example.org")
		L("Subject: hello")
		L("Date: Mon, 7 Feb 1994 21:52:25 -0800")
		L("Message-ID: <1@example.com>")
		L("")
		L("Hi Bob"),
		"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"hello\" " ALICE " "
		ALICE " " ALICE " ((NIL NIL \"bob\" \"example.org\")) NIL NIL "
		"NIL \"<1@example.com>\")",
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 8 1 NIL "
		"NIL NIL NIL)",
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 8 1)",
	},
	{
		"no header at all",
		L("") L("body"),
		ENV_NONE,
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 6 1 NIL "
		"NIL NIL NIL)",
		NULL,
	},
	{
		"header only, no empty line",
		L("Subject: only a header"),
		"(NIL \"only a header\" NIL NIL NIL NIL NIL NIL NIL NIL)",
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0 NIL "
		"NIL NIL NIL)",
		NULL,
	},
	{
		"body without final line end",
		L("Subject: x") L("") "abc",
		"(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)",
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 3 0 NIL "
		"NIL NIL NIL)",
		NULL,
	},
	{
		"bare LF line ends",
		"Subject: lf\n\nline1\nline2\n",
		"(NIL \"lf\" NIL NIL NIL NIL NIL NIL NIL NIL)",
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 12 2 NIL "
		"NIL NIL NIL)",
		NULL,
	},
	{
		"folded subject with encoded words, kept raw",
		L("Subject: =?UTF-8?Q?caf=C3=A9?=")
		L("\t=?UTF-8?B?w6k=?=")
		L("") L("x"),
		"(NIL \"=?UTF-8?Q?caf=C3=A9?=\t=?UTF-8?B?w6k=?=\" NIL NIL NIL "
		"NIL NIL NIL NIL NIL)",
		NULL,
		NULL,
	},
	{
		"8-bit subject and name become literals",
		L("Subject: Gr\xc3\xbc\xc3\x9f" "e")
		L("From: J\xc3\xb6rg <jorg@example.de>")
		L("") L("x"),
		"(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e "
		"(({5}\r\nJ\xc3\xb6rg NIL \"jorg\" \"example.de\")) "
		"(({5}\r\nJ\xc3\xb6rg NIL \"jorg\" \"example.de\")) "
		"(({5}\r\nJ\xc3\xb6rg NIL \"jorg\" \"example.de\")) "
		"NIL NIL NIL NIL NIL)",
		NULL,
		NULL,
	},
	{
		"quotes and backslashes in a subject",
		L("Subject: say \"hi\" \\ there") L("") L("x"),
		"(NIL \"say \\\"hi\\\" \\\\ there\" NIL NIL NIL NIL NIL NIL "
		"NIL NIL)",
		NULL,
		NULL,
	},
	{
		"groups, empty and not",
		L("To: undisclosed-recipients:;")
		L("Cc: Team: a@x.example, \"B\" <b@y.example>; , c@z.example")
		L("") L("x"),
		"(NIL NIL NIL NIL NIL "
		"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		"((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.example\")"
		"(\"B\" NIL \"b\" \"y.example\")(NIL NIL NIL NIL)"
		"(NIL NIL \"c\" \"z.example\")) NIL NIL NIL)",
		NULL,
		NULL,
	},
	{
		"address oddities: quoted comma, comment name, route, no domain",
		L("From: \"Doe, John\" <john@example.com> (work)")
		L("To: jane@example.com (Jane Roe),")
		L(" <@r1.example,@r2.example:joe@example.net>, broken")
		L("") L("x"),
		"(NIL NIL ((\"Doe, John\" NIL \"john\" \"example.com\")) "
		"((\"Doe, John\" NIL \"john\" \"example.com\")) "
		"((\"Doe, John\" NIL \"john\" \"example.com\")) "
		"((\"Jane Roe\" NIL \"jane\" \"example.com\")"
		"(NIL \"@r1.example,@r2.example\" \"joe\" \"example.net\")"
		"(NIL NIL \"broken\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)",
		NULL,
		NULL,
	},
	{
		"sender present, reply-to empty, bcc, in-reply-to",
		L("From: Alice <alice@example.com>")
		L("Sender: sec@example.com")
		L("Reply-To:")
		L("Bcc: hidden@example.com")
		L("In-Reply-To: <0@example.com>")
		L("") L("x"),
		"(NIL NIL " ALICE " ((NIL NIL \"sec\" \"example.com\")) " ALICE
		" NIL NIL ((NIL NIL \"hidden\" \"example.com\")) "
		"\"<0@example.com>\" NIL)",
		NULL,
		NULL,
	},
	{
		"first of repeated fields, empty subject and date",
		L("Subject:")
		L("Subject: second")
		L("Date: ")
		L("Message-ID: <a@b>")
		L("Message-ID: <c@d>")
		L("") L("x"),
		"(\"\" \"\" NIL NIL NIL NIL NIL NIL NIL \"<a@b>\")",
		NULL,
		NULL,
	},
	{
		"multipart/mixed with preamble and epilogue",
		L("From: a@b.example")
		L("Content-Type: multipart/mixed; boundary=\"XX\"")
		L("")
		L("preamble")
		L("--XX")
		L("")
		L("part one")
		L("--XX")
		L("Content-Type: text/html; charset=UTF-8")
		L("Content-Transfer-Encoding: quoted-printable")
		L("")
		L("<p>two</p>")
		L("")
		L("--XX--")
		L("epilogue"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 8 0 NIL "
		"NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL "
		"\"quoted-printable\" 12 1 NIL NIL NIL NIL) \"mixed\" "
		"(\"boundary\" \"XX\") NIL NIL NIL)",
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 8 0)"
		"(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL "
		"\"quoted-printable\" 12 1) \"mixed\")",
	},
	{
		"nested alternative and an attachment with every field",
		L("Content-Type: multipart/mixed; boundary=outer")
		L("")
		L("--outer")
		L("Content-Type: multipart/alternative; boundary=inner")
		L("")
		L("--inner")
		L("Content-Type: text/plain; charset=utf-8; format=flowed")
		L("")
		L("plain")
		L("--inner")
		L("Content-Type: text/html; charset=utf-8")
		L("")
		L("<b>html</b>")
		L("--inner--")
		L("--outer")
		L("Content-Type: application/pdf; name=\"doc.pdf\"")
		L("Content-Transfer-Encoding: base64")
		L("Content-ID: <pdf@example>")
		L("Content-Description: The  document")
		L("Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==")
		L("Content-Disposition: attachment; filename=\"doc.pdf\";")
		L(" size=4")
		L("Content-Language: en, de")
		L("Content-Location: http://example.com/doc.pdf")
		L("")
		L("JVBE")
		L("--outer--"),
		NULL,
		"(((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" "
		"\"flowed\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 "
		"0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") "
		"NIL NIL NIL)"
		"(\"application\" \"pdf\" (\"name\" \"doc.pdf\") "
		"\"<pdf@example>\" \"The  document\" \"base64\" 4 "
		"\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" "
		"\"doc.pdf\" \"size\" \"4\")) (\"en\" \"de\") "
		"\"http://example.com/doc.pdf\") \"mixed\" (\"boundary\" "
		"\"outer\") NIL NIL NIL)",
		"(((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" "
		"\"flowed\") NIL NIL \"7bit\" 5 0)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 "
		"0) \"alternative\")"
		"(\"application\" \"pdf\" (\"name\" \"doc.pdf\") "
		"\"<pdf@example>\" \"The  document\" \"base64\" 4) \"mixed\")",
	},
	{
		"message/rfc822 attachment holding a multipart",
		L("Subject: outer")
		L("Content-Type: multipart/mixed; boundary=b1")
		L("")
		L("--b1")
		L("")
		L("see attached")
		L("--b1")
		L("Content-Type: message/rfc822")
		L("")
		L("Subject: inner")
		L("From: Carol <carol@example.com>")
		L("Content-Type: multipart/alternative; boundary=b2")
		L("")
		L("--b2")
		L("")
		L("a")
		L("--b2")
		L("Content-Type: text/enriched")
		L("")
		L("b")
		L("--b2--")
		L("--b1--"),
		"(NIL \"outer\" NIL NIL NIL NIL NIL NIL NIL NIL)",
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 12 0 NIL "
		"NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 158 "
		"(NIL \"inner\" ((\"Carol\" NIL \"carol\" \"example.com\")) "
		"((\"Carol\" NIL \"carol\" \"example.com\")) "
		"((\"Carol\" NIL \"carol\" \"example.com\")) NIL NIL NIL NIL "
		"NIL) ((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 1 0 "
		"NIL NIL NIL NIL)(\"text\" \"enriched\" " TEXT_ASCII " NIL NIL "
		"\"7bit\" 1 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
		"\"b2\") NIL NIL NIL) 11 NIL NIL NIL NIL) \"mixed\" "
		"(\"boundary\" \"b1\") NIL NIL NIL)",
		NULL,
	},
	{
		"RFC 2231 extended, continued and both",
		L("Content-Type: application/octet-stream;")
		L(" name*=iso-8859-1'en'%A3%20rates.txt;")
		L(" title*0=\"Part one\"; title*1=\" and two\"")
		L("Content-Disposition: attachment;")
		L(" filename*0*=utf-8''%E2%82%AC%20rates; filename*1*=.txt")
		L("")
		L("x"),
		NULL,
		"(\"application\" \"octet-stream\" (\"name*\" "
		"\"iso-8859-1'en'%A3%20rates.txt\" \"title\" "
		"\"Part one and two\") NIL NIL \"7bit\" 3 NIL "
		"(\"attachment\" (\"filename*\" "
		"\"utf-8''%E2%82%AC%20rates.txt\")) NIL NIL)",
		NULL,
	},
	{
		"RFC 2231 sections out of order, with a gap",
		L("Content-Type: text/plain; a*1=B; a*0=A; a*3=D; charset=utf-8")
		L("") L("x"),
		NULL,
		"(\"text\" \"plain\" (\"a\" \"AB\" \"charset\" \"utf-8\") NIL "
		"NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
		NULL,
	},
	{
		"encoded word in a quoted filename stays raw",
		L("Content-Type: image/png")
		L("Content-Disposition: inline;")
		L(" filename=\"=?UTF-8?B?w6kucG5n?=\"")
		L("") L("x"),
		NULL,
		"(\"image\" \"png\" NIL NIL NIL \"7bit\" 3 NIL (\"inline\" "
		"(\"filename\" \"=?UTF-8?B?w6kucG5n?=\")) NIL NIL)",
		NULL,
	},
	{
		"multipart/digest: parts default to message/rfc822",
		L("Content-Type: multipart/digest; boundary=d")
		L("")
		L("--d")
		L("")
		L("Subject: first")
		L("")
		L("one")
		L("--d")
		L("Content-Type: text/plain")
		L("")
		L("not a message")
		L("--d--"),
		NULL,
		"((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 "
		"(NIL \"first\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 3 0 NIL NIL "
		"NIL NIL) 2 NIL NIL NIL NIL)(\"text\" \"plain\" " TEXT_ASCII
		" NIL NIL \"7bit\" 13 0 NIL NIL NIL NIL) \"digest\" "
		"(\"boundary\" \"d\") NIL NIL NIL)",
		NULL,
	},
	{
		"missing close delimiter: the last part runs to the end",
		L("Content-Type: multipart/mixed; boundary=zz")
		L("")
		L("--zz")
		L("")
		L("first")
		L("--zz")
		L("")
		L("second")
		L("and more"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 5 0 NIL "
		"NIL NIL NIL)(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" "
		"18 2 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL "
		"NIL)",
		NULL,
	},
	{
		"boundaries that are prefixes of each other",
		L("Content-Type: multipart/mixed; boundary=\"==b\"")
		L("")
		L("--==b")
		L("Content-Type: multipart/alternative; boundary=\"==b1\"")
		L("")
		L("--==b1")
		L("")
		L("x")
		L("--==b1")
		L("")
		L("--==b is not a boundary here")
		L("--==b1--")
		L("--==b")
		L("")
		L("last")
		L("--==b--"),
		NULL,
		"(((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 1 0 NIL "
		"NIL NIL NIL)(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" "
		"28 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"==b1\") "
		"NIL NIL NIL)(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" "
		"4 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"==b\") NIL NIL "
		"NIL)",
		NULL,
	},
	{
		"transport padding after boundaries",
		L("Content-Type: multipart/mixed; boundary=pad")
		L("")
		L("--pad  \t")
		L("")
		L("padded")
		L("--pad-- ")
		L("--padx is epilogue"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 6 0 NIL "
		"NIL NIL NIL) \"mixed\" (\"boundary\" \"pad\") NIL NIL NIL)",
		NULL,
	},
	{
		"multipart without a boundary parameter",
		L("Content-Type: multipart/mixed")
		L("")
		L("--x")
		L("")
		L("y"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0 NIL "
		"NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)",
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0) "
		"\"mixed\")",
	},
	{
		"multipart whose boundary never appears",
		L("Content-Type: multipart/related; boundary=never;")
		L(" type=\"text/html\"")
		L("")
		L("just text"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0 NIL "
		"NIL NIL NIL) \"related\" (\"boundary\" \"never\" \"type\" "
		"\"text/html\") NIL NIL NIL)",
		NULL,
	},
	{
		"unusable Content-Type falls back to text/plain",
		L("Content-Type: text")
		L("Content-Transfer-Encoding: 8bit")
		L("") L("x"),
		NULL,
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"8bit\" 3 1 NIL NIL "
		"NIL NIL)",
		NULL,
	},
	{
		"case and comments as written",
		L("Content-Type: TEXT/Plain (a comment) ; CHARSET = \"ISO-8859-1\"")
		L("  ; Format=Flowed")
		L("Content-Transfer-Encoding: QUOTED-PRINTABLE")
		L("") L("x"),
		NULL,
		"(\"TEXT\" \"Plain\" (\"CHARSET\" \"ISO-8859-1\" \"Format\" "
		"\"Flowed\") NIL NIL \"QUOTED-PRINTABLE\" 3 1 NIL NIL NIL NIL)",
		NULL,
	},
	{
		"base64 message/rfc822 is not looked into",
		L("Content-Type: multipart/mixed; boundary=m")
		L("")
		L("--m")
		L("Content-Type: message/rfc822")
		L("Content-Transfer-Encoding: base64")
		L("")
		L("U3ViamVjdDogeA0KDQp5DQo=")
		L("--m--"),
		NULL,
		"((\"message\" \"rfc822\" NIL NIL NIL \"base64\" 24 NIL NIL NIL "
		"NIL) \"mixed\" (\"boundary\" \"m\") NIL NIL NIL)",
		NULL,
	},
	{
		"inner multipart without close delimiter, closed by the outer",
		L("Content-Type: multipart/mixed; boundary=o")
		L("")
		L("--o")
		L("Content-Type: multipart/mixed; boundary=i")
		L("")
		L("--i")
		L("")
		L("inner")
		L("--o")
		L("")
		L("after")
		L("--o--"),
		NULL,
		"(((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 5 0 NIL "
		"NIL NIL NIL) \"mixed\" (\"boundary\" \"i\") NIL NIL NIL)"
		"(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 5 0 NIL NIL "
		"NIL NIL) \"mixed\" (\"boundary\" \"o\") NIL NIL NIL)",
		NULL,
	},
	{
		"empty parts and a part with no empty line after its header",
		L("Content-Type: multipart/mixed; boundary=e")
		L("")
		L("--e")
		L("--e")
		L("Content-Type: image/gif")
		L("--e")
		L("")
		L("--e--"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0 NIL "
		"NIL NIL NIL)(\"image\" \"gif\" NIL NIL NIL \"7bit\" 0 NIL NIL "
		"NIL NIL)(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 "
		"0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"e\") NIL NIL NIL)",
		NULL,
	},
	{
		"nesting deeper than the limit is opaque",
		L("Content-Type: multipart/mixed; boundary=l1")
		L("")
		L("--l1")
		L("Content-Type: multipart/mixed; boundary=l2")
		L("")
		L("--l2")
		L("Content-Type: multipart/mixed; boundary=l3")
		L("")
		L("--l3")
		L("")
		L("deep")
		L("--l3--")
		L("--l2--")
		L("--l1--"),
		NULL,
		"(((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 0 0 NIL "
		"NIL NIL NIL) \"mixed\" (\"boundary\" \"l2\") NIL NIL NIL) "
		"\"mixed\" (\"boundary\" \"l1\") NIL NIL NIL)",
		NULL,
		1,
		0,
	},
	{
		"part limit: the rest is the last multipart's body",
		L("Content-Type: multipart/mixed; boundary=p")
		L("")
		L("--p")
		L("")
		L("one")
		L("--p")
		L("")
		L("two")
		L("--p")
		L("")
		L("three")
		L("--p--"),
		NULL,
		"((\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 3 0 NIL "
		"NIL NIL NIL)(\"text\" \"plain\" " TEXT_ASCII " NIL NIL \"7bit\" "
		"3 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"p\") NIL NIL "
		"NIL)",
		NULL,
		0,
		3,
	},
	{
		"message/global, and a literal for an 8-bit parameter",
		L("Content-Type: multipart/mixed; boundary=g")
		L("")
		L("--g")
		L("Content-Type: message/global")
		L("")
		L("Subject: =?utf-8?q?x?=")
		L("")
		L("body")
		L("--g")
		L("Content-Type: text/plain; name=\"r\xc3\xa9sum\xc3\xa9.txt\"")
		L("")
		L("cv")
		L("--g--"),
		NULL,
		"((\"message\" \"global\" NIL NIL NIL \"7bit\" 30 (NIL "
		"\"=?utf-8?q?x?=\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" "
		"\"plain\" " TEXT_ASCII " NIL NIL \"7bit\" 4 0 NIL NIL NIL NIL) "
		"2 NIL NIL NIL NIL)(\"text\" \"plain\" (\"name\" {12}\r\n"
		"r\xc3\xa9sum\xc3\xa9.txt \"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 2 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"g\") "
		"NIL NIL NIL)",
		NULL,
	},
	{
		"multipart disposition, language and location",
		L("Content-Type: multipart/related; boundary=r; type=text/html")
		L("Content-Disposition: inline")
		L("Content-Language: fr")
		L("Content-Location: base/")
		L("")
		L("--r")
		L("Content-Type: text/html")
		L("")
		L("<img>")
		L("--r--"),
		NULL,
		"((\"text\" \"html\" " TEXT_ASCII " NIL NIL \"7bit\" 5 0 NIL NIL "
		"NIL NIL) \"related\" (\"boundary\" \"r\" \"type\" "
		"\"text/html\") (\"inline\" NIL) (\"fr\") \"base/\")",
		NULL,
	},
	{
		"garbage lines in the header are skipped",
		L("Subject: kept")
		L("this line has no colon")
		L(" continuation of nothing useful")
		L("Content-Type: text/x-custom")
		L("") L("x"),
		"(NIL \"kept\" NIL NIL NIL NIL NIL NIL NIL NIL)",
		"(\"text\" \"x-custom\" " TEXT_ASCII " NIL NIL \"7bit\" 3 1 NIL "
		"NIL NIL NIL)",
		NULL,
	},
};
/* clang-format on */

/* --- running a case ------------------------------------------------------- */

static struct ts_mime_message *
parse_case(const struct corpus_case *c, size_t chunk)
{
	struct ts_mime_limits lim = { .max_depth = c->max_depth,
				      .max_parts = c->max_parts,
				      .chunk_size = chunk };
	size_t len = strlen(c->message);
	if (chunk == 0)
		return ts_mime_parse_buffer(c->message, len, &lim);

	/* From a file, with part of the message as the prefix. */
	char path[] = "/tmp/test-imap-structure-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	size_t plen = len < 10 ? len : 10;
	assert_int_equal(write(fd, c->message + plen, len - plen),
			 (ssize_t)(len - plen));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct ts_mime_message *msg = NULL;
	const char *error = NULL;
	assert_int_equal(
		ts_mime_parse_fd(c->message, plen, fd, &lim, &msg, &error), 0);
	close(fd);
	return msg;
}

/* Compare, naming the case and the parse when they differ. */
static void
expect_output(const struct corpus_case *c, size_t chunk, const char *what,
	      const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		print_error("case \"%s\", %s, chunk size %zu (0: memory)\n",
			    c->name, what, chunk);
	assert_string_equal(got, want);
}

static void
check_case(const struct corpus_case *c, size_t chunk)
{
	struct ts_mime_message *msg = parse_case(c, chunk);
	struct imap_str s = { 0 };

	assert_int_equal(msg->size, strlen(c->message));
	if (c->envelope != NULL) {
		imap_structure_envelope(&s, msg->root);
		expect_output(c, chunk, "ENVELOPE", s.data, c->envelope);
		s.len = 0;
	}
	if (c->bodystructure != NULL) {
		imap_structure_body(&s, msg->root, true);
		expect_output(c, chunk, "BODYSTRUCTURE", s.data,
			      c->bodystructure);
		s.len = 0;
	}
	if (c->body != NULL) {
		imap_structure_body(&s, msg->root, false);
		expect_output(c, chunk, "BODY", s.data, c->body);
	}
	imap_str_free(&s);
	ts_mime_message_free(&msg);
}

static void
test_corpus(void **state)
{
	(void)state;
	static const size_t chunks[] = { 0, 1, 2, 3, 7, 64, 65536 };
	size_t n = sizeof(corpus) / sizeof(corpus[0]);

	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++)
			check_case(&corpus[i], chunks[k]);
}

/* --- quoting -------------------------------------------------------------- */

static void
expect_quoted(const char *in, size_t len, const char *want)
{
	struct imap_str s = { 0 };
	imap_str_append_string(&s, in, len);
	assert_string_equal(s.data, want);
	imap_str_free(&s);
}

static void
test_quoting(void **state)
{
	(void)state;
	expect_quoted("", 0, "\"\"");
	expect_quoted("plain", 5, "\"plain\"");
	expect_quoted("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	expect_quoted("line\r\nbreak", 11, "{11}\r\nline\r\nbreak");
	expect_quoted("nul\0x", 5, "{5}\r\nnul");
	expect_quoted("\xc3\xa9", 2, "{2}\r\n\xc3\xa9");

	struct imap_str s = { 0 };
	imap_str_append_nstring(&s, NULL);
	imap_str_append_cstr(&s, " ");
	imap_str_append_nstring(&s, "NIL");
	assert_string_equal(s.data, "NIL \"NIL\"");
	imap_str_free(&s);
}

/* --- the corpus for the integration test ---------------------------------- */

/* A JSON string: bytes >= 0x80 as \u00XX (the test reads them as Latin-1). */
static void
dump_json_string(const char *s)
{
	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/*
 * "--json": print the cases with default limits as a JSON list, so that
 * tests/integration/test_imap_structure.py checks the same messages and
 * the same hand-checked outputs through a running server.
 */
static void
dump_corpus(void)
{
	size_t n = sizeof(corpus) / sizeof(corpus[0]);
	bool first = true;
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		const struct corpus_case *c = &corpus[i];
		if (c->max_depth != 0 || c->max_parts != 0)
			continue;
		fputs(first ? "\n" : ",\n", stdout);
		first = false;
		fputs("{\"name\": ", stdout);
		dump_json_string(c->name);
		fputs(", \"message\": ", stdout);
		dump_json_string(c->message);
		fputs(", \"envelope\": ", stdout);
		dump_json_string(c->envelope);
		fputs(", \"bodystructure\": ", stdout);
		dump_json_string(c->bodystructure);
		fputs(", \"body\": ", stdout);
		dump_json_string(c->body);
		putchar('}');
	}
	fputs("\n]\n", stdout);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--json") == 0) {
		dump_corpus();
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_quoting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
