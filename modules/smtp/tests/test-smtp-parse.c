/*
 * modules/smtp/tests/test-smtp-parse.c — the SMTP module's parsing layer
 * (modules/smtp/address.c and command.c).
 *
 * Table-driven: RFC 5321 paths valid and invalid (quoted and empty quoted
 * localparts, source routes, address literals, IDNA, SMTPUTF8, length
 * limits), the relay-trick shapes of the open-relay acceptance test,
 * formatting round trips, EHLO arguments, whole command lines in strict
 * and lenient mode with the exact reply of every error, ESMTP parameters,
 * BDAT and AUTH arguments, xtext, base64 and the first-command test.
 * Pure functions: no server, no kernel beyond kernel/alloc.c.
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

#include "modules/smtp/address.h"
#include "modules/smtp/command.h"

/* UTF-8 spelled out, and ended, so a hex escape never eats a letter. */
#define U_UML "\xc3\xbc" /* ü */
#define O_UML "\xc3\xb6" /* ö */
#define SNOWMAN "\xe2\x98\x83"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Compare strings, naming the case on failure. */
static void
check_str(const char *what_case, const char *field, const char *got,
	  const char *want)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: %s is \"%s\", expected \"%s\"", what_case, field,
			 got != NULL ? got : "(null)",
			 want != NULL ? want : "(null)");
}

static void
check_int(const char *what_case, const char *field, long long got,
	  long long want)
{
	if (got != want)
		fail_msg("%s: %s is %lld, expected %lld", what_case, field, got,
			 want);
}

/* --- paths --------------------------------------------------------- */

struct path_case {
	const char *in;
	unsigned flags; /* enum smtp_parse_flags */
	int ret; /* 0, TS_E_INVAL or SMTP_E_UTF8 */
	const char *error; /* when ret < 0 */
	const char *localpart;
	const char *unquoted;
	const char *domain;
	const char *domain_raw; /* checked when not NULL */
	unsigned pflags; /* enum smtp_path_flag, exact */
};

#define UTF SMTP_UTF8
#define LEN SMTP_LENIENT
#define OK_(in_, fl_, lp_, uq_, dom_, pf_)                                  \
	{                                                                   \
		.in = in_, .flags = fl_, .localpart = lp_, .unquoted = uq_, \
		.domain = dom_, .pflags = pf_                               \
	}
#define BAD(in_, fl_, err_)                                               \
	{                                                                 \
		.in = in_, .flags = fl_, .ret = TS_E_INVAL, .error = err_ \
	}

static const struct path_case path_cases[] = {
	/* plain, case, atext */
	OK_("<user@example.org>", 0, "user", "user", "example.org", 0),
	OK_("<First.Last@Example.ORG>", 0, "First.Last", "First.Last",
	    "example.org", 0),
	OK_("<USER@EXAMPLE.COM>", 0, "USER", "USER", "example.com", 0),
	OK_("<a+tag@sub.example.org>", 0, "a+tag", "a+tag", "sub.example.org",
	    0),
	OK_("<a-b_c@a-b.example>", 0, "a-b_c", "a-b_c", "a-b.example", 0),
	OK_("<#&'*/=?^_`{|}~@example.org>", 0, "#&'*/=?^_`{|}~",
	    "#&'*/=?^_`{|}~", "example.org", 0),
	OK_("<u@1.2.3.4>", 0, "u", "u", "1.2.3.4", 0), /* a DNS name */
	OK_("<u@localhost>", 0, "u", "u", "localhost", 0),
	OK_("<u@xn--bcher-kva.example>", 0, "u", "u", "xn--bcher-kva.example",
	    0),
	/* quoted localparts */
	OK_("<\"a b\"@x.example>", 0, "\"a b\"", "a b", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"\"@example.org>", 0, "\"\"", "", "example.org",
	    SMTP_PATH_QUOTED),
	OK_("<\"a\\\"b\"@x.example>", 0, "\"a\\\"b\"", "a\"b", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"a\\\\b\"@x.example>", 0, "\"a\\\\b\"", "a\\b", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"ab\"@x.example>", 0, "\"ab\"", "ab", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"\\a\"@x.example>", 0, "\"\\a\"", "a", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"a..b\"@x.example>", 0, "\"a..b\"", "a..b", "x.example",
	    SMTP_PATH_QUOTED),
	OK_("<\"<>()[]:;,\"@x.example>", 0, "\"<>()[]:;,\"", "<>()[]:;,",
	    "x.example", SMTP_PATH_QUOTED),
	/* null path, Postmaster */
	OK_("<>", SMTP_NULL_PATH_OK, "", "", "", SMTP_PATH_NULL),
	OK_("<Postmaster>", SMTP_POSTMASTER_OK, "Postmaster", "Postmaster", "",
	    SMTP_PATH_POSTMASTER),
	OK_("<POSTMASTER>", SMTP_POSTMASTER_OK, "POSTMASTER", "POSTMASTER", "",
	    SMTP_PATH_POSTMASTER),
	OK_("<postmaster@Example.ORG>", SMTP_POSTMASTER_OK, "postmaster",
	    "postmaster", "example.org", 0),
	/* source routes: accepted, dropped */
	OK_("<@a.example,@b.example:user@d.example>", 0, "user", "user",
	    "d.example", SMTP_PATH_HAD_SOURCE_ROUTE),
	OK_("<@a.example:b@c.example>", 0, "b", "b", "c.example",
	    SMTP_PATH_HAD_SOURCE_ROUTE),
	/* relay-trick shapes, parsed and flagged */
	OK_("<user%other.example@local.example>", 0, "user%other.example",
	    "user%other.example", "local.example", SMTP_PATH_PERCENT),
	OK_("<a!b@local.example>", 0, "a!b", "a!b", "local.example",
	    SMTP_PATH_BANG),
	OK_("<\"b@c.example\"@a.example>", 0, "\"b@c.example\"", "b@c.example",
	    "a.example", SMTP_PATH_QUOTED | SMTP_PATH_AT_IN_LOCAL),
	/* address literals, canonical */
	OK_("<user@[192.0.2.1]>", 0, "user", "user", "[192.0.2.1]",
	    SMTP_PATH_ADDRESS_LITERAL),
	OK_("<user@[192.0.02.001]>", 0, "user", "user", "[192.0.2.1]",
	    SMTP_PATH_ADDRESS_LITERAL),
	OK_("<user@[IPv6:2001:DB8:0:0:0:0:0:1]>", 0, "user", "user",
	    "[IPv6:2001:db8::1]", SMTP_PATH_ADDRESS_LITERAL),
	OK_("<user@[ipv6:::1]>", 0, "user", "user", "[IPv6:::1]",
	    SMTP_PATH_ADDRESS_LITERAL),
	OK_("<user@[IPv6:::ffff:192.0.2.1]>", 0, "user", "user",
	    "[IPv6:::ffff:192.0.2.1]", SMTP_PATH_ADDRESS_LITERAL),
	/* SMTPUTF8 and IDNA */
	{ .in = "<user@b" U_UML "cher.example>",
	  .flags = UTF,
	  .localpart = "user",
	  .unquoted = "user",
	  .domain = "xn--bcher-kva.example",
	  .domain_raw = "b" U_UML "cher.example",
	  .pflags = SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA },
	OK_("<user@B\xc3\x9c"
	    "CHER.Example>",
	    UTF, "user", "user", "xn--bcher-kva.example",
	    SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA),
	OK_("<j" O_UML "ran@example.org>", UTF, "j" O_UML "ran",
	    "j" O_UML "ran", "example.org", SMTP_PATH_NON_ASCII),
	OK_("<\"j" O_UML " ran\"@example.org>", UTF, "\"j" O_UML " ran\"",
	    "j" O_UML " ran", "example.org",
	    SMTP_PATH_NON_ASCII | SMTP_PATH_QUOTED),
	OK_("<j" O_UML "ran@b" U_UML "cher.example>", UTF, "j" O_UML "ran",
	    "j" O_UML "ran", "xn--bcher-kva.example",
	    SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA),
	OK_("<user@example.org>", UTF, "user", "user", "example.org", 0),
	OK_("<@b" U_UML "cher.example:u@x.example>", UTF, "u", "u", "x.example",
	    SMTP_PATH_HAD_SOURCE_ROUTE | SMTP_PATH_NON_ASCII),
	/* lenient */
	OK_("user@Example.org", LEN, "user", "user", "example.org",
	    SMTP_PATH_UNBRACKETED),
	OK_("\"a b\"@example.org", LEN, "\"a b\"", "a b", "example.org",
	    SMTP_PATH_UNBRACKETED | SMTP_PATH_QUOTED),
	OK_("<user@example.org>", LEN, "user", "user", "example.org", 0),

	/* --- refused ------------------------------------------------ */
	BAD("", 0, "missing address"),
	BAD("", LEN, "missing address"),
	BAD("user@example.org", 0, "missing <"),
	BAD("<user@example.org", 0, "missing >"),
	BAD("<user@example.org> ", 0, "unexpected text after the address"),
	BAD("<user@example.org>>", 0, "unexpected text after the address"),
	BAD("<>", 0, "null path not allowed here"),
	BAD("<Postmaster>", 0, "missing @domain"),
	BAD("<user>", 0, "missing @domain"),
	BAD("<user@>", 0, "missing domain"),
	BAD("<@example.org>", 0, "bad source route"),
	BAD("<@a.example,b.example:u@d.example>", 0, "bad source route"),
	BAD("<@a.example.:u@d.example>", 0, "trailing dot in domain"),
	BAD("<.user@example.org>", 0, "localpart starts with a dot"),
	BAD("<user.@example.org>", 0, "localpart ends with a dot"),
	BAD("<us..er@example.org>", 0, "two dots in a row in localpart"),
	BAD("<a b@example.org>", 0, "missing @domain"),
	BAD("<a\"b@example.org>", 0, "missing @domain"),
	BAD("<a(b)@example.org>", 0, "missing @domain"),
	BAD("<\"unterminated@example.org>", 0, "unterminated quoted localpart"),
	BAD("<\"a\x01z\"@example.org>", 0, "bad character in quoted localpart"),
	BAD("<\"a\\\x01\"@example.org>", 0, "bad quoted pair in localpart"),
	BAD("<user@example.org.>", 0, "trailing dot in domain"),
	BAD("<user@example..org>", 0, "empty label in domain"),
	BAD("<user@.example.org>", 0, "empty label in domain"),
	BAD("<user@-example.org>", 0,
	    "hyphen at the start or end of a domain label"),
	BAD("<user@example-.org>", 0,
	    "hyphen at the start or end of a domain label"),
	BAD("<user@exa_mple.org>", 0, "bad character in address"),
	BAD("<user@example.org@other.example>", 0, "bad character in address"),
	BAD("<user@[1.2.3]>", 0, "bad IPv4 address literal"),
	BAD("<user@[256.1.1.1]>", 0, "bad IPv4 address literal"),
	BAD("<user@[1.2.3.4.5]>", 0, "bad IPv4 address literal"),
	BAD("<user@[1234.1.1.1]>", 0, "bad IPv4 address literal"),
	BAD("<user@[IPv6:zz::1]>", 0, "bad IPv6 address literal"),
	BAD("<user@[IPv6:1.2.3.4]>", 0, "bad IPv6 address literal"),
	BAD("<user@[x400:c=fr]>", 0,
	    "general address literals are not supported"),
	BAD("<user@[1.2.3.4>", 0, "unterminated address literal"),
	BAD("user@example.org>", LEN, "bad character in address"),
	BAD(" user@example.org", LEN, "missing address"),
	/* UTF-8 */
	{ .in = "<j" O_UML "ran@example.org>",
	  .ret = SMTP_E_UTF8,
	  .error = "non-ASCII address requires SMTPUTF8" },
	{ .in = "<user@b" U_UML "cher.example>",
	  .ret = SMTP_E_UTF8,
	  .error = "non-ASCII address requires SMTPUTF8" },
	{ .in = "<\"j" O_UML "\"@example.org>",
	  .ret = SMTP_E_UTF8,
	  .error = "non-ASCII address requires SMTPUTF8" },
	{ .in = "<@b" U_UML "cher.example:u@x.example>",
	  .ret = SMTP_E_UTF8,
	  .error = "non-ASCII address requires SMTPUTF8" },
	BAD("<j\xffran@example.org>", UTF, "invalid UTF-8 in localpart"),
	BAD("<\xc0\xafuser@example.org>", UTF, "invalid UTF-8 in localpart"),
	BAD("<\xed\xa0\x80@example.org>", UTF, "invalid UTF-8 in localpart"),
	BAD("<\"a\xff\"@example.org>", UTF, "invalid UTF-8 in localpart"),
	BAD("<user@b\xc3"
	    "cher.example>",
	    UTF, "invalid UTF-8 in domain"),
	BAD("<user@" SNOWMAN ".example>", UTF,
	    "invalid internationalized domain name"),
	BAD("<user@b" U_UML "cher.example.>", UTF, "trailing dot in domain"),
};

static void
test_path_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(path_cases); i++) {
		const struct path_case *c = &path_cases[i];
		struct smtp_path path;
		const char *error = NULL;
		char name[300];

		snprintf(name, sizeof(name), "path %zu \"%s\" flags %u", i,
			 c->in, c->flags);
		int ret = smtp_path_parse(c->in, strlen(c->in), c->flags, &path,
					  &error);
		check_int(name, "return", ret, c->ret);
		if (c->ret < 0) {
			check_str(name, "error", error, c->error);
			check_str(name, "localpart", path.localpart, NULL);
			continue;
		}
		check_str(name, "localpart", path.localpart, c->localpart);
		check_str(name, "unquoted", path.localpart_unquoted,
			  c->unquoted);
		check_str(name, "domain", path.domain, c->domain);
		if (c->domain_raw != NULL)
			check_str(name, "domain_raw", path.domain_raw,
				  c->domain_raw);
		check_int(name, "flags", path.flags, c->pflags);
		smtp_path_clear(&path);
	}
	assert_true(N_ELEMENTS(path_cases) >= 40);
}

/* The raw domain is kept as written, for logs and Received. */
static void
test_path_domain_raw(void **state)
{
	struct smtp_path path;
	const char *error;

	assert_int_equal(
		smtp_path_parse("<u@Mail.Example.ORG>", 20, 0, &path, &error),
		0);
	assert_string_equal(path.domain_raw, "Mail.Example.ORG");
	assert_string_equal(path.domain, "mail.example.org");
	smtp_path_clear(&path);
	smtp_path_clear(&path); /* twice is harmless */

	assert_int_equal(
		smtp_path_parse("<u@[IPv6:2001:DB8::1]>", 22, 0, &path, &error),
		0);
	assert_string_equal(path.domain_raw, "[IPv6:2001:DB8::1]");
	assert_string_equal(path.domain, "[IPv6:2001:db8::1]");
	smtp_path_clear(&path);
}

/* The prefix parser stops after the path (the command parser's use). */
static void
test_path_prefix(void **state)
{
	struct smtp_path path;
	const char *error;
	size_t consumed;
	const char *s = "<\"a b\"@example.org> SIZE=10";

	assert_int_equal(smtp_path_parse_prefix(s, strlen(s), 0, &path,
						&consumed, &error),
			 0);
	assert_int_equal(consumed, 19);
	assert_string_equal(path.localpart_unquoted, "a b");
	smtp_path_clear(&path);

	s = "a@example.org SIZE=10";
	assert_int_equal(smtp_path_parse_prefix(s, strlen(s), SMTP_LENIENT,
						&path, &consumed, &error),
			 0);
	assert_int_equal(consumed, 13);
	assert_int_equal(path.flags, SMTP_PATH_UNBRACKETED);
	smtp_path_clear(&path);

	/* not NUL-terminated: the length is what counts */
	assert_int_equal(
		smtp_path_parse("<a@b.example>XYZ", 13, 0, &path, &error), 0);
	assert_string_equal(path.domain, "b.example");
	smtp_path_clear(&path);
}

/* Build a string of n copies of c. */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
expect_path(const char *text, unsigned flags, int want_ret,
	    const char *want_error)
{
	struct smtp_path path;
	const char *error = NULL;
	int ret = smtp_path_parse(text, strlen(text), flags, &path, &error);

	check_int(text, "return", ret, want_ret);
	if (ret < 0)
		check_str(text, "error", error, want_error);
	else
		smtp_path_clear(&path);
}

/* RFC 5321 4.5.3.1: localpart 64, domain 255, path 256 octets. */
static void
test_path_limits(void **state)
{
	char *l64 = repeat('a', 64), *l65 = repeat('a', 65);
	char *label63 = repeat('b', 63), *label64 = repeat('b', 64);
	char *text;

	text = ts_xasprintf("<%s@example.org>", l64);
	expect_path(text, 0, 0, NULL);
	free(text);
	text = ts_xasprintf("<%s@example.org>", l65);
	expect_path(text, 0, TS_E_INVAL, "localpart longer than 64 octets");
	free(text);
	/* the quotes count: 62 letters quoted are 64 octets */
	text = ts_xasprintf("<\"%.62s\"@example.org>", l64);
	expect_path(text, 0, 0, NULL);
	free(text);
	text = ts_xasprintf("<\"%.63s\"@example.org>", l64);
	expect_path(text, 0, TS_E_INVAL, "localpart longer than 64 octets");
	free(text);

	text = ts_xasprintf("<u@%s.example>", label63);
	expect_path(text, 0, 0, NULL);
	free(text);
	text = ts_xasprintf("<u@%s.example>", label64);
	expect_path(text, 0, TS_E_INVAL, "domain label longer than 63 octets");
	free(text);

	/* 4 labels of 63 + 3 dots = 255: the longest domain; with "u@"
	 * and the brackets the path is 259 octets, over 256. */
	char *d255 =
		ts_xasprintf("%s.%s.%s.%s", label63, label63, label63, label63);
	text = ts_xasprintf("<u@%s>", d255);
	expect_path(text, 0, TS_E_INVAL, "path longer than 256 octets");
	free(text);
	text = ts_xasprintf("<u@%s.x>", d255);
	expect_path(text, 0, TS_E_INVAL, "domain longer than 255 octets");
	free(text);
	/* 252-octet domain: path exactly 256 */
	char *d251 = ts_xasprintf("%s.%s.%s.%.60s", label63, label63, label63,
				  label63);
	text = ts_xasprintf("<u@%s>", d251);
	assert_int_equal(strlen(text), 256);
	expect_path(text, 0, 0, NULL);
	free(text);
	text = ts_xasprintf("<uu@%s>", d251);
	expect_path(text, 0, TS_E_INVAL, "path longer than 256 octets");
	free(text);
	/* lenient unbracketed: the missing brackets still count */
	text = ts_xasprintf("uu@%s", d251);
	expect_path(text, SMTP_LENIENT, TS_E_INVAL,
		    "path longer than 256 octets");
	free(text);
	/* a 64-octet localpart of two-byte characters is 32 characters */
	text = ts_xasprintf("<%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s"
			    "%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s@example.org>",
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML);
	expect_path(text, SMTP_UTF8, 0, NULL);
	free(text);
	text = ts_xasprintf("<a%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s"
			    "%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s@example.org>",
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML, O_UML, O_UML, O_UML,
			    O_UML, O_UML, O_UML, O_UML);
	expect_path(text, SMTP_UTF8, TS_E_INVAL,
		    "localpart longer than 64 octets");
	free(text);

	free(d255);
	free(d251);
	free(l64);
	free(l65);
	free(label63);
	free(label64);
}

/*
 * Acceptance 3 of issue 5, the parser's part: every relay trick is either
 * refused as bad syntax, or parsed so that the relay check sees it — a
 * trick flag set, or the domain that really counts, normalised.
 */
struct relay_case {
	const char *in;
	int ret; /* < 0: refused by the parser */
	unsigned trick; /* flag that must be set */
	const char *domain; /* the domain the relay check must judge */
};

static const struct relay_case relay_cases[] = {
	{ "<user%remote.example@local.example>", 0, SMTP_PATH_PERCENT,
	  "local.example" },
	{ "<user%remote.example%local.example@local.example>", 0,
	  SMTP_PATH_PERCENT, "local.example" },
	{ "<\"user%remote.example\"@local.example>", 0, SMTP_PATH_PERCENT,
	  "local.example" },
	{ "<user%remote.example>", TS_E_INVAL, 0, NULL },
	{ "<remote.example!user@local.example>", 0, SMTP_PATH_BANG,
	  "local.example" },
	{ "<\"remote.example!user\"@local.example>", 0, SMTP_PATH_BANG,
	  "local.example" },
	{ "<remote.example!user>", TS_E_INVAL, 0, NULL },
	{ "<@local.example:user@remote.example>", 0, SMTP_PATH_HAD_SOURCE_ROUTE,
	  "remote.example" },
	{ "<@local.example,@relay.example:user@remote.example>", 0,
	  SMTP_PATH_HAD_SOURCE_ROUTE, "remote.example" },
	{ "<@remote.example:user@local.example>", 0, SMTP_PATH_HAD_SOURCE_ROUTE,
	  "local.example" },
	{ "<\"user@remote.example\"@local.example>", 0, SMTP_PATH_AT_IN_LOCAL,
	  "local.example" },
	{ "<user@remote.example@local.example>", TS_E_INVAL, 0, NULL },
	{ "<user@[192.0.2.1]>", 0, SMTP_PATH_ADDRESS_LITERAL, "[192.0.2.1]" },
	{ "<user@[127.0.0.1]>", 0, SMTP_PATH_ADDRESS_LITERAL, "[127.0.0.1]" },
	{ "<user@[IPv6:::1]>", 0, SMTP_PATH_ADDRESS_LITERAL, "[IPv6:::1]" },
	{ "<user@local.example.>", TS_E_INVAL, 0, NULL },
	{ "<user@remote.example.>", TS_E_INVAL, 0, NULL },
	{ "<user@LOCAL.EXAMPLE>", 0, 0, "local.example" },
	{ "<user@Remote.Example>", 0, 0, "remote.example" },
	{ "<user@remote.example%local.example>", TS_E_INVAL, 0, NULL },
	{ "<user@local.example,@remote.example>", TS_E_INVAL, 0, NULL },
	{ "user@remote.example", TS_E_INVAL, 0, NULL }, /* strict */
};

static void
test_relay_tricks(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(relay_cases); i++) {
		const struct relay_case *c = &relay_cases[i];
		struct smtp_path path;
		const char *error;
		int ret = smtp_path_parse(c->in, strlen(c->in), SMTP_UTF8,
					  &path, &error);

		check_int(c->in, "return", ret, c->ret);
		if (ret < 0)
			continue;
		if ((path.flags & c->trick) != c->trick)
			fail_msg("%s: trick flag 0x%x not set (0x%x)", c->in,
				 c->trick, path.flags);
		if (c->trick != 0 && (path.flags & SMTP_PATH_RELAY_TRICKS) == 0)
			fail_msg("%s: not in SMTP_PATH_RELAY_TRICKS", c->in);
		if (c->trick == 0 && (path.flags & SMTP_PATH_RELAY_TRICKS))
			fail_msg("%s: unexpected trick flags 0x%x", c->in,
				 path.flags);
		check_str(c->in, "domain", path.domain, c->domain);
		smtp_path_clear(&path);
	}
	assert_true(N_ELEMENTS(relay_cases) >= 15);
}

/* U-labels and the A-label they become compare equal. */
static void
test_idna(void **state)
{
	struct smtp_path a, b;
	const char *error;
	const char *u = "<x@b" U_UML "cher.example>";
	const char *alabel = "<x@XN--BCHER-KVA.example>";

	assert_int_equal(smtp_path_parse(u, strlen(u), SMTP_UTF8, &a, &error),
			 0);
	assert_int_equal(smtp_path_parse(alabel, strlen(alabel), 0, &b, &error),
			 0);
	assert_string_equal(a.domain, "xn--bcher-kva.example");
	assert_string_equal(a.domain, b.domain);
	assert_int_equal(a.flags, SMTP_PATH_NON_ASCII | SMTP_PATH_IDNA);
	assert_int_equal(b.flags, 0);
	smtp_path_clear(&a);
	smtp_path_clear(&b);
}

/* --- formatting ---------------------------------------------------- */

static const struct {
	const char *in;
	unsigned flags;
	const char *out;
} format_cases[] = {
	{ "<\"a b\"@x>", 0, "<\"a b\"@x>" },
	{ "<\"\"@x>", 0, "<\"\"@x>" },
	{ "<\"a\\\"b\"@x>", 0, "<\"a\\\"b\"@x>" },
	{ "<a.b@x>", 0, "<a.b@x>" },
	{ "<\"a\\\\b\"@x>", 0, "<\"a\\\\b\"@x>" },
	{ "<\"ab\"@X>", 0, "<ab@x>" },
	{ "<\"a.b\"@x>", 0, "<a.b@x>" },
	{ "<\"\\a\\b\"@x>", 0, "<ab@x>" },
	{ "<\"a..b\"@x>", 0, "<\"a..b\"@x>" },
	{ "<\".a\"@x>", 0, "<\".a\"@x>" },
	{ "<\"a.\"@x>", 0, "<\"a.\"@x>" },
	{ "<\"b@c\"@a>", 0, "<\"b@c\"@a>" },
	{ "<\"a,b\"@x>", 0, "<\"a,b\"@x>" },
	{ "<User@Example.ORG>", 0, "<User@example.org>" },
	{ "<>", SMTP_NULL_PATH_OK, "<>" },
	{ "<Postmaster>", SMTP_POSTMASTER_OK, "<Postmaster>" },
	{ "<@r.example:u@D.example>", 0, "<u@d.example>" },
	{ "<u@[IPv6:2001:DB8:0::1]>", 0, "<u@[IPv6:2001:db8::1]>" },
	{ "<j" O_UML "@b" U_UML "cher.example>", SMTP_UTF8,
	  "<j" O_UML "@xn--bcher-kva.example>" },
	{ "<\"j" O_UML " x\"@x>", SMTP_UTF8, "<\"j" O_UML " x\"@x>" },
	{ "u@x", SMTP_LENIENT, "<u@x>" },
};

static void
test_format_round_trip(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(format_cases); i++) {
		struct smtp_path path, again;
		const char *error;
		const char *in = format_cases[i].in;
		unsigned flags = format_cases[i].flags | SMTP_NULL_PATH_OK |
				 SMTP_POSTMASTER_OK;

		check_int(in, "parse",
			  smtp_path_parse(in, strlen(in), flags, &path, &error),
			  0);
		char *out = smtp_path_format(&path);
		check_str(in, "format", out, format_cases[i].out);
		/* what we write parses back to the same address */
		check_int(in, "reparse",
			  smtp_path_parse(out, strlen(out), flags | SMTP_UTF8,
					  &again, &error),
			  0);
		check_str(in, "reparsed unquoted", again.localpart_unquoted,
			  path.localpart_unquoted);
		check_str(in, "reparsed domain", again.domain, path.domain);
		char *out2 = smtp_path_format(&again);
		check_str(in, "format twice", out2, out);
		free(out);
		free(out2);
		smtp_path_clear(&path);
		smtp_path_clear(&again);
	}
}

static void
test_localpart_format(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\"\"" },		  { "a b", "\"a b\"" },
		{ "a\"b", "\"a\\\"b\"" }, { "a\\b", "\"a\\\\b\"" },
		{ "a.b", "a.b" },	  { "a..b", "\"a..b\"" },
		{ "b@c", "\"b@c\"" },	  { "user+tag", "user+tag" },
		{ "j" O_UML, "j" O_UML }, { "(x)", "\"(x)\"" },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *out = smtp_localpart_format(cases[i].in);
		check_str(cases[i].in, "quoted", out, cases[i].out);
		free(out);
	}
}

/* --- EHLO ---------------------------------------------------------- */

static const struct {
	const char *arg;
	unsigned flags;
	const char *domain; /* NULL: refused with error */
	const char *error;
} ehlo_cases[] = {
	{ "mail.example.org", 0, "mail.example.org", NULL },
	{ "Mail.Example.ORG", 0, "mail.example.org", NULL },
	{ "localhost", 0, "localhost", NULL },
	{ "[192.0.2.1]", 0, "[192.0.2.1]", NULL },
	{ "[IPv6:2001:db8::1]", 0, "[IPv6:2001:db8::1]", NULL },
	{ "[IPv6:2001:DB8:0:0:0:0:0:1]", 0, "[IPv6:2001:db8::1]", NULL },
	{ "b" U_UML "cher.example", 0, "xn--bcher-kva.example", NULL },
	{ "", 0, NULL, "missing domain" },
	{ "", SMTP_LENIENT, NULL, "missing domain" },
	{ "host.example.", 0, NULL, "trailing dot in domain" },
	{ "my_laptop", 0, NULL, "bad character in domain" },
	{ "a b", 0, NULL, "bad character in domain" },
	{ "[foo:bar]", 0, NULL, "general address literals are not supported" },
	{ "[300.1.1.1]", 0, NULL, "bad IPv4 address literal" },
	{ "[IPv6:::g]", 0, NULL, "bad IPv6 address literal" },
	{ "[192.0.2.1", 0, NULL, "bad address literal" },
	{ "-host.example", 0, NULL,
	  "hyphen at the start or end of a domain label" },
	{ "host.example.", SMTP_LENIENT, "host.example.", NULL },
	{ "My_Laptop", SMTP_LENIENT, "My_Laptop", NULL },
	{ "[foo:bar]", SMTP_LENIENT, "[foo:bar]", NULL },
	{ "Host.Example", SMTP_LENIENT, "host.example", NULL },
	{ "a b", SMTP_LENIENT, NULL, "bad character in EHLO argument" },
	{ "a\x01z", SMTP_LENIENT, NULL, "bad character in EHLO argument" },
	{ "a\xffz", SMTP_LENIENT, NULL, "invalid UTF-8 in EHLO argument" },
};

static void
test_ehlo_args(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(ehlo_cases); i++) {
		char *domain = NULL;
		const char *error = NULL;
		char name[300];

		snprintf(name, sizeof(name), "EHLO \"%s\" flags %u",
			 ehlo_cases[i].arg, ehlo_cases[i].flags);
		int ret = smtp_ehlo_parse(ehlo_cases[i].arg,
					  ehlo_cases[i].flags, &domain, &error);
		if (ehlo_cases[i].domain != NULL) {
			check_int(name, "return", ret, 0);
			check_str(name, "domain", domain, ehlo_cases[i].domain);
		} else {
			check_int(name, "return", ret, TS_E_INVAL);
			check_str(name, "error", error, ehlo_cases[i].error);
			check_str(name, "domain", domain, NULL);
		}
		free(domain);
	}
}

/* --- commands: errors ---------------------------------------------- */

#define EXT_STD                                                  \
	(SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | \
	 SMTP_EXT_DSN | SMTP_EXT_AUTH | SMTP_EXT_REQUIRETLS)
#define MAX_SIZE 10485760

struct command_error_case {
	const char *line;
	size_t len; /* 0: strlen(line) */
	unsigned flags;
	unsigned ext;
	enum smtp_verb verb;
	int code;
	const char *enhanced;
	const char *text;
};

#define ERR(line_, fl_, ext_, verb_, code_, enh_, text_)                    \
	{                                                                   \
		.line = line_, .flags = fl_, .ext = ext_,                   \
		.verb = SMTP_VERB_##verb_, .code = code_, .enhanced = enh_, \
		.text = text_                                               \
	}

#define MAIL_SYNTAX "syntax: MAIL FROM:<address>"
#define RCPT_SYNTAX "syntax: RCPT TO:<address>"
#define A "<a@example.org>"

static const struct command_error_case command_errors[] = {
	/* verbs and raw bytes */
	ERR("", 0, EXT_STD, UNKNOWN, 500, "5.5.2", "empty command"),
	ERR("FOO", 0, EXT_STD, UNKNOWN, 500, "5.5.2", "unknown command"),
	ERR("GET / HTTP/1.1", 0, EXT_STD, UNKNOWN, 500, "5.5.2",
	    "unknown command"),
	ERR("EHLOX foo", 0, EXT_STD, UNKNOWN, 500, "5.5.2", "unknown command"),
	ERR(" EHLO x.example", 0, EXT_STD, UNKNOWN, 500, "5.5.2",
	    "unknown command"),
	ERR("EHLO\tx.example", 0, EXT_STD, UNKNOWN, 500, "5.5.2",
	    "unknown command"),
	{ .line = "MAIL FROM:<a@b\0>",
	  .len = 16,
	  .ext = EXT_STD,
	  .verb = SMTP_VERB_UNKNOWN,
	  .code = 501,
	  .enhanced = "5.5.2",
	  .text = "NUL byte in command" },
	{ .line = "\0",
	  .len = 1,
	  .ext = EXT_STD,
	  .verb = SMTP_VERB_UNKNOWN,
	  .code = 501,
	  .enhanced = "5.5.2",
	  .text = "NUL byte in command" },
	ERR("NOOP\rx", 0, EXT_STD, UNKNOWN, 501, "5.5.2", "bare CR in command"),
	ERR("DATA\r", 0, EXT_STD, UNKNOWN, 501, "5.5.2", "bare CR in command"),
	ERR("NOOP\nx", 0, EXT_STD, UNKNOWN, 501, "5.5.2", "bare LF in command"),
	/* EHLO/HELO */
	ERR("EHLO", 0, EXT_STD, EHLO, 501, "5.5.4", "syntax: EHLO domain"),
	ERR("HELO", 0, EXT_STD, HELO, 501, "5.5.4", "syntax: HELO domain"),
	ERR("EHLO ", 0, EXT_STD, EHLO, 501, "5.5.4", "syntax: EHLO domain"),
	ERR("EHLO ", SMTP_LENIENT, EXT_STD, EHLO, 501, "5.5.4",
	    "syntax: EHLO domain"),
	ERR("EHLO host.example.", 0, EXT_STD, EHLO, 501, "5.5.4",
	    "bad EHLO argument: trailing dot in domain"),
	ERR("EHLO a b", 0, EXT_STD, EHLO, 501, "5.5.4",
	    "bad EHLO argument: bad character in domain"),
	ERR("EHLO  x.example", 0, EXT_STD, EHLO, 501, "5.5.4",
	    "bad EHLO argument: bad character in domain"),
	ERR("HELO [1.2.3.999]", 0, EXT_STD, HELO, 501, "5.5.4",
	    "bad HELO argument: bad IPv4 address literal"),
	ERR("EHLO a b", SMTP_LENIENT, EXT_STD, EHLO, 501, "5.5.4",
	    "bad EHLO argument: bad character in EHLO argument"),
	/* MAIL/RCPT shape */
	ERR("MAIL", 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL FROM:", 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL FROM:", SMTP_LENIENT, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM: ", SMTP_LENIENT, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM: " A, 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL FROM:a@example.org", 0, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM " A, 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL FROM " A, SMTP_LENIENT, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL  FROM:" A, 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL TO:" A, 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("RCPT FROM:" A, 0, EXT_STD, RCPT, 501, "5.5.4", RCPT_SYNTAX),
	ERR("RCPT TO: " A, 0, EXT_STD, RCPT, 501, "5.5.4", RCPT_SYNTAX),
	ERR("RCPT", 0, EXT_STD, RCPT, 501, "5.5.4", RCPT_SYNTAX),
	/* addresses */
	ERR("MAIL FROM:<a@example.org.>", 0, EXT_STD, MAIL, 553, "5.1.7",
	    "bad sender address: trailing dot in domain"),
	ERR("RCPT TO:<a@example.org.>", 0, EXT_STD, RCPT, 553, "5.1.3",
	    "bad recipient address: trailing dot in domain"),
	ERR("RCPT TO:<>", 0, EXT_STD, RCPT, 553, "5.1.3",
	    "bad recipient address: null path not allowed here"),
	ERR("MAIL FROM:<a>", 0, EXT_STD, MAIL, 553, "5.1.7",
	    "bad sender address: missing @domain"),
	ERR("MAIL FROM:<a@example.org", 0, EXT_STD, MAIL, 553, "5.1.7",
	    "bad sender address: missing >"),
	ERR("MAIL FROM:a@example.org>", SMTP_LENIENT, EXT_STD, MAIL, 553,
	    "5.1.7", "bad sender address: bad character in address"),
	ERR("RCPT TO:<a@[x400:c=fr]>", 0, EXT_STD, RCPT, 553, "5.1.3",
	    "bad recipient address: general address literals are not "
	    "supported"),
	/* SMTPUTF8 */
	ERR("MAIL FROM:<j" O_UML "@example.org>", 0, EXT_STD, MAIL, 553,
	    "5.6.7", "non-ASCII address requires SMTPUTF8"),
	ERR("MAIL FROM:<j@b" U_UML "cher.example> SIZE=10", 0, EXT_STD, MAIL,
	    553, "5.6.7", "non-ASCII address requires SMTPUTF8"),
	ERR("MAIL FROM:<j" O_UML "@example.org> SMTPUTF8", 0,
	    EXT_STD & ~SMTP_EXT_SMTPUTF8, MAIL, 555, "5.5.4",
	    "unsupported parameter SMTPUTF8"),
	ERR("RCPT TO:<j" O_UML "@example.org>", 0, EXT_STD, RCPT, 553, "5.6.7",
	    "non-ASCII address requires SMTPUTF8"),
	ERR("MAIL FROM:<@b" U_UML "cher.example:u@x.example>", 0, EXT_STD, MAIL,
	    553, "5.6.7", "non-ASCII address requires SMTPUTF8"),
	ERR("MAIL FROM:" A " ENVID=j" O_UML, 0, EXT_STD, MAIL, 501, "5.6.7",
	    "non-ASCII parameter value requires SMTPUTF8"),
	ERR("MAIL FROM:" A " ENVID=j\xff", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "bad value for parameter ENVID"),
	/* parameter layout */
	ERR("MAIL FROM:" A "  SIZE=10", 0, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM:" A " SIZE=10 ", 0, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM:" A " ", 0, EXT_STD, MAIL, 501, "5.5.4", MAIL_SYNTAX),
	ERR("MAIL FROM:" A "SIZE=10", 0, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("MAIL FROM:" A "\tSIZE=10", 0, EXT_STD, MAIL, 501, "5.5.4",
	    MAIL_SYNTAX),
	ERR("RCPT TO:" A "  NOTIFY=NEVER", 0, EXT_STD, RCPT, 501, "5.5.4",
	    RCPT_SYNTAX),
	ERR("MAIL FROM:" A " -X=1", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "bad parameter syntax"),
	ERR("MAIL FROM:" A " =1", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "bad parameter syntax"),
	ERR("MAIL FROM:" A " A B C D E F G H I J K L M N O P Q", 0, EXT_STD,
	    MAIL, 501, "5.5.4", "too many parameters"),
	/* unknown or unadvertised parameters */
	ERR("MAIL FROM:" A " FOO=bar", 0, EXT_STD, MAIL, 555, "5.5.4",
	    "unsupported parameter FOO"),
	ERR("MAIL FROM:" A " foo", 0, EXT_STD, MAIL, 555, "5.5.4",
	    "unsupported parameter foo"),
	ERR("MAIL FROM:" A " SIZE=10", 0, 0, MAIL, 555, "5.5.4",
	    "unsupported parameter SIZE"),
	ERR("MAIL FROM:" A " BODY=8BITMIME", 0, 0, MAIL, 555, "5.5.4",
	    "unsupported parameter BODY"),
	ERR("MAIL FROM:" A " BODY=BINARYMIME", 0, EXT_STD, MAIL, 555, "5.5.4",
	    "unsupported parameter BODY=BINARYMIME"),
	ERR("MAIL FROM:" A " REQUIRETLS", 0, EXT_STD & ~SMTP_EXT_REQUIRETLS,
	    MAIL, 555, "5.5.4", "unsupported parameter REQUIRETLS"),
	ERR("MAIL FROM:" A " RET=FULL", 0, EXT_STD & ~SMTP_EXT_DSN, MAIL, 555,
	    "5.5.4", "unsupported parameter RET"),
	ERR("MAIL FROM:" A " AUTH=<>", 0, EXT_STD & ~SMTP_EXT_AUTH, MAIL, 555,
	    "5.5.4", "unsupported parameter AUTH"),
	ERR("MAIL FROM:" A " NOTIFY=NEVER", 0, EXT_STD, MAIL, 555, "5.5.4",
	    "unsupported parameter NOTIFY"),
	ERR("RCPT TO:" A " SIZE=10", 0, EXT_STD, RCPT, 555, "5.5.4",
	    "unsupported parameter SIZE"),
	ERR("RCPT TO:" A " NOTIFY=NEVER", 0, EXT_STD & ~SMTP_EXT_DSN, RCPT, 555,
	    "5.5.4", "unsupported parameter NOTIFY"),
	/* bad values */
	ERR("MAIL FROM:" A " SIZE=abc", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: SIZE=<number>"),
	ERR("MAIL FROM:" A " SIZE=-1", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: SIZE=<number>"),
	ERR("MAIL FROM:" A " SIZE=123456789012345678901", 0, EXT_STD, MAIL, 501,
	    "5.5.4", "syntax: SIZE=<number>"),
	ERR("MAIL FROM:" A " SIZE=", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "bad value for parameter SIZE"),
	ERR("MAIL FROM:" A " SIZE", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "parameter SIZE needs a value"),
	ERR("MAIL FROM:" A " SIZE=1 size=2", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "duplicate parameter SIZE"),
	ERR("MAIL FROM:" A " SIZE=10485761", 0, EXT_STD, MAIL, 552, "5.3.4",
	    "message size exceeds the limit of 10485760 bytes"),
	ERR("MAIL FROM:" A " SIZE=99999999999999999999", 0, EXT_STD, MAIL, 552,
	    "5.3.4", "message size exceeds the limit of 10485760 bytes"),
	ERR("MAIL FROM:" A " BODY=9BIT", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: BODY=7BIT|8BITMIME|BINARYMIME"),
	ERR("MAIL FROM:" A " SMTPUTF8=yes", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "parameter SMTPUTF8 takes no value"),
	ERR("MAIL FROM:" A " REQUIRETLS=1", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "parameter REQUIRETLS takes no value"),
	ERR("MAIL FROM:" A " SMTPUTF8 SMTPUTF8", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "duplicate parameter SMTPUTF8"),
	ERR("MAIL FROM:" A " RET=ALL", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: RET=FULL|HDRS"),
	ERR("MAIL FROM:" A " ENVID=a+2", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: ENVID=xtext"),
	ERR("MAIL FROM:" A " ENVID=a+zz", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: ENVID=xtext"),
	ERR("MAIL FROM:" A " ENVID=a+2b", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: ENVID=xtext"),
	ERR("MAIL FROM:" A " ENVID=a=b", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "bad value for parameter ENVID"),
	ERR("MAIL FROM:" A " ENVID="
	    "12345678901234567890123456789012345678901234567890"
	    "123456789012345678901234567890123456789012345678901",
	    0, EXT_STD, MAIL, 501, "5.5.4", "syntax: ENVID=xtext"),
	ERR("MAIL FROM:" A " AUTH=a+2", 0, EXT_STD, MAIL, 501, "5.5.4",
	    "syntax: AUTH=xtext|<>"),
	ERR("RCPT TO:" A " NOTIFY=NEVER,SUCCESS", 0, EXT_STD, RCPT, 501,
	    "5.5.4", "syntax: NOTIFY=NEVER|SUCCESS,FAILURE,DELAY"),
	ERR("RCPT TO:" A " NOTIFY=SUCCESS,SUCCESS", 0, EXT_STD, RCPT, 501,
	    "5.5.4", "syntax: NOTIFY=NEVER|SUCCESS,FAILURE,DELAY"),
	ERR("RCPT TO:" A " NOTIFY=SUCCESS,", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: NOTIFY=NEVER|SUCCESS,FAILURE,DELAY"),
	ERR("RCPT TO:" A " NOTIFY=SOMETIMES", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: NOTIFY=NEVER|SUCCESS,FAILURE,DELAY"),
	ERR("RCPT TO:" A " NOTIFY=", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "bad value for parameter NOTIFY"),
	ERR("RCPT TO:" A " ORCPT=rfc822", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: ORCPT=addr-type;xtext"),
	ERR("RCPT TO:" A " ORCPT=;a@b", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: ORCPT=addr-type;xtext"),
	ERR("RCPT TO:" A " ORCPT=rfc822;", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: ORCPT=addr-type;xtext"),
	ERR("RCPT TO:" A " ORCPT=rfc822;a+4", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: ORCPT=addr-type;xtext"),
	ERR("RCPT TO:" A " ORCPT=rfc(822);a", 0, EXT_STD, RCPT, 501, "5.5.4",
	    "syntax: ORCPT=addr-type;xtext"),
	/* commands without arguments */
	ERR("DATA x", 0, EXT_STD, DATA, 501, "5.5.4", "syntax: DATA"),
	ERR("DATA ", 0, EXT_STD, DATA, 501, "5.5.4", "syntax: DATA"),
	ERR("RSET now", 0, EXT_STD, RSET, 501, "5.5.4", "syntax: RSET"),
	ERR("QUIT now", 0, EXT_STD, QUIT, 501, "5.5.4", "syntax: QUIT"),
	ERR("STARTTLS x", SMTP_LENIENT, EXT_STD, STARTTLS, 501, "5.5.4",
	    "syntax: STARTTLS"),
	ERR("VRFY", 0, EXT_STD, VRFY, 501, "5.5.4", "syntax: VRFY string"),
	ERR("EXPN", 0, EXT_STD, EXPN, 501, "5.5.4", "syntax: EXPN string"),
	/* BDAT */
	ERR("BDAT", 0, EXT_STD, BDAT, 501, "5.5.4", "syntax: BDAT size [LAST]"),
	ERR("BDAT abc", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT -1", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 10 FIRST", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 10  LAST", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 10 LAST x", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 10 ", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 10LAST", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	ERR("BDAT 99999999999999999999", 0, EXT_STD, BDAT, 501, "5.5.4",
	    "syntax: BDAT size [LAST]"),
	/* AUTH */
	ERR("AUTH", 0, EXT_STD, AUTH, 501, "5.5.4",
	    "syntax: AUTH mechanism [initial-response]"),
	ERR("AUTH PL@IN", 0, EXT_STD, AUTH, 501, "5.5.4",
	    "syntax: AUTH mechanism [initial-response]"),
	ERR("AUTH ABCDEFGHIJKLMNOPQRSTU", 0, EXT_STD, AUTH, 501, "5.5.4",
	    "syntax: AUTH mechanism [initial-response]"),
	ERR("AUTH PLAIN ", 0, EXT_STD, AUTH, 501, "5.5.4",
	    "syntax: AUTH mechanism [initial-response]"),
	ERR("AUTH PLAIN a b", 0, EXT_STD, AUTH, 501, "5.5.4",
	    "syntax: AUTH mechanism [initial-response]"),
	ERR("AUTH PLAIN dGVzdA", 0, EXT_STD, AUTH, 501, "5.5.2",
	    "invalid base64 in initial response"),
	ERR("AUTH PLAIN dGV*dA==", 0, EXT_STD, AUTH, 501, "5.5.2",
	    "invalid base64 in initial response"),
	ERR("AUTH PLAIN ==", 0, EXT_STD, AUTH, 501, "5.5.2",
	    "invalid base64 in initial response"),
};

static void
test_command_errors(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(command_errors); i++) {
		const struct command_error_case *c = &command_errors[i];
		struct smtp_parse_opts opts = { .flags = c->flags,
						.extensions = c->ext,
						.max_size = MAX_SIZE };
		struct smtp_command cmd;
		struct smtp_reply reply;
		size_t len = c->len != 0 ? c->len : strlen(c->line);
		char name[400];

		snprintf(name, sizeof(name), "command %zu \"%s\" flags %u", i,
			 c->line, c->flags);
		int ret = smtp_command_parse(c->line, len, &opts, &cmd, &reply);
		check_int(name, "return", ret, TS_E_INVAL);
		check_int(name, "verb", cmd.verb, c->verb);
		check_int(name, "code", reply.code, c->code);
		check_str(name, "enhanced", reply.enhanced, c->enhanced);
		check_str(name, "text", reply.text, c->text);
		/* nothing is left allocated on error */
		check_str(name, "arg", cmd.arg, NULL);
		check_str(name, "path", cmd.path.localpart, NULL);
		smtp_command_clear(&cmd);
	}
}

/* --- commands: successes ------------------------------------------- */

static struct smtp_command
parse_ok(const char *line, unsigned flags, unsigned ext)
{
	struct smtp_parse_opts opts = { .flags = flags,
					.extensions = ext,
					.max_size = MAX_SIZE };
	struct smtp_command cmd;
	struct smtp_reply reply;

	if (smtp_command_parse(line, strlen(line), &opts, &cmd, &reply) != 0)
		fail_msg("\"%s\": refused: %d %s %s", line, reply.code,
			 reply.enhanced, reply.text);
	return cmd;
}

/* For expect_simple: the command must have no argument at all. */
static const char no_arg[] = "(no argument)";

/*
 * Parse, check verb, argument (NULL: not checked; no_arg: must be
 * absent) and formatted path (NULL: not checked), clear.
 */
static void
expect_simple(const char *line, unsigned flags, enum smtp_verb verb,
	      const char *arg, const char *path)
{
	struct smtp_command cmd = parse_ok(line, flags, EXT_STD);

	check_int(line, "verb", cmd.verb, verb);
	if (arg == no_arg)
		check_str(line, "arg", cmd.arg, NULL);
	else if (arg != NULL)
		check_str(line, "arg", cmd.arg, arg);
	if (path != NULL) {
		char *f = smtp_path_format(&cmd.path);
		check_str(line, "path", f, path);
		free(f);
	}
	smtp_command_clear(&cmd);
}

static void
test_command_simple(void **state)
{
	expect_simple("DATA", 0, SMTP_VERB_DATA, no_arg, NULL);
	expect_simple("data", 0, SMTP_VERB_DATA, no_arg, NULL);
	expect_simple("RSET", 0, SMTP_VERB_RSET, no_arg, NULL);
	expect_simple("QUIT", 0, SMTP_VERB_QUIT, no_arg, NULL);
	expect_simple("QUIT ", SMTP_LENIENT, SMTP_VERB_QUIT, no_arg, NULL);
	expect_simple("  quit\t", SMTP_LENIENT, SMTP_VERB_QUIT, no_arg, NULL);
	expect_simple("StartTLS", 0, SMTP_VERB_STARTTLS, no_arg, NULL);
	expect_simple("NOOP", 0, SMTP_VERB_NOOP, no_arg, NULL);
	expect_simple("NOOP anything at all", 0, SMTP_VERB_NOOP,
		      "anything at all", NULL);
	expect_simple("HELP", 0, SMTP_VERB_HELP, no_arg, NULL);
	expect_simple("HELP MAIL", 0, SMTP_VERB_HELP, "MAIL", NULL);
	expect_simple("VRFY postmaster", 0, SMTP_VERB_VRFY, "postmaster", NULL);
	expect_simple("EXPN list", 0, SMTP_VERB_EXPN, "list", NULL);
	expect_simple("RCPT TO:<Postmaster>", 0, SMTP_VERB_RCPT,
		      "TO:<Postmaster>", "<Postmaster>");
	expect_simple("rcpt to:<postmaster@Example.ORG>", 0, SMTP_VERB_RCPT,
		      NULL, "<postmaster@example.org>");
	expect_simple("MAIL FROM:<>", 0, SMTP_VERB_MAIL, "FROM:<>", "<>");
	expect_simple("mail from:<User@Example.ORG>", 0, SMTP_VERB_MAIL, NULL,
		      "<User@example.org>");
	expect_simple("MAIL FROM:<\"\"@example.org>", 0, SMTP_VERB_MAIL, NULL,
		      "<\"\"@example.org>");
	expect_simple("RCPT TO:<@a.example:b@C.example>", 0, SMTP_VERB_RCPT,
		      NULL, "<b@c.example>");
	/* lenient submission deviations */
	expect_simple("MAIL FROM: <a@example.org>", SMTP_LENIENT,
		      SMTP_VERB_MAIL, NULL, "<a@example.org>");
	expect_simple("MAIL FROM:a@example.org", SMTP_LENIENT, SMTP_VERB_MAIL,
		      NULL, "<a@example.org>");
	expect_simple("MAIL FROM:  a@example.org  ", SMTP_LENIENT,
		      SMTP_VERB_MAIL, "FROM:  a@example.org",
		      "<a@example.org>");
	expect_simple("RCPT TO: b@example.org", SMTP_LENIENT, SMTP_VERB_RCPT,
		      NULL, "<b@example.org>");
	expect_simple("RCPT  TO:<b@example.org>", SMTP_LENIENT, SMTP_VERB_RCPT,
		      "TO:<b@example.org>", "<b@example.org>");
}

static void
test_command_ehlo(void **state)
{
	struct smtp_command cmd;

	cmd = parse_ok("EHLO mail.example.org", 0, EXT_STD);
	assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
	assert_string_equal(cmd.domain, "mail.example.org");
	assert_string_equal(cmd.arg, "mail.example.org");
	smtp_command_clear(&cmd);

	cmd = parse_ok("ehlo [192.0.2.1]", 0, EXT_STD);
	assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
	assert_string_equal(cmd.domain, "[192.0.2.1]");
	smtp_command_clear(&cmd);

	cmd = parse_ok("HeLo Mail.Example", 0, EXT_STD);
	assert_int_equal(cmd.verb, SMTP_VERB_HELO);
	assert_string_equal(cmd.domain, "mail.example");
	smtp_command_clear(&cmd);

	cmd = parse_ok("EHLO [IPv6:::1]", 0, EXT_STD);
	assert_string_equal(cmd.domain, "[IPv6:::1]");
	smtp_command_clear(&cmd);

	cmd = parse_ok("EHLO my_laptop", SMTP_LENIENT, EXT_STD);
	assert_string_equal(cmd.domain, "my_laptop");
	smtp_command_clear(&cmd);

	cmd = parse_ok("EHLO \t x.example  ", SMTP_LENIENT, EXT_STD);
	assert_string_equal(cmd.domain, "x.example");
	smtp_command_clear(&cmd);
}

static void
test_command_mail_params(void **state)
{
	struct smtp_command cmd;

	/* a quoted localpart with a space, followed by parameters */
	cmd = parse_ok("MAIL FROM:<\"a b\"@example.org> SIZE=100", 0, EXT_STD);
	assert_string_equal(cmd.path.localpart, "\"a b\"");
	assert_true(cmd.mail.has_size);
	assert_int_equal(cmd.mail.size, 100);
	assert_int_equal(cmd.mail.body, SMTP_BODY_UNSET);
	assert_null(cmd.mail.envid);
	assert_null(cmd.mail.auth);
	smtp_command_clear(&cmd);

	cmd = parse_ok("MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME "
		       "SMTPUTF8 REQUIRETLS RET=HDRS ENVID=QQ+2B1+3Dx "
		       "AUTH=a+2Bb@example.org",
		       0, EXT_STD);
	assert_int_equal(cmd.mail.size, 1000);
	assert_int_equal(cmd.mail.body, SMTP_BODY_8BITMIME);
	assert_true(cmd.mail.smtputf8);
	assert_true(cmd.mail.requiretls);
	assert_int_equal(cmd.mail.ret, SMTP_RET_HDRS);
	assert_string_equal(cmd.mail.envid, "QQ+1=x");
	assert_string_equal(cmd.mail.auth, "a+b@example.org");
	smtp_command_clear(&cmd);

	cmd = parse_ok("MAIL FROM:<a@example.org> auth=<> ret=full "
		       "body=7bit",
		       0, EXT_STD);
	assert_string_equal(cmd.mail.auth, "");
	assert_int_equal(cmd.mail.ret, SMTP_RET_FULL);
	assert_int_equal(cmd.mail.body, SMTP_BODY_7BIT);
	assert_false(cmd.mail.has_size);
	smtp_command_clear(&cmd);

	cmd = parse_ok("MAIL FROM:<a@example.org> BODY=BINARYMIME", 0,
		       SMTP_EXT_BINARYMIME);
	assert_int_equal(cmd.mail.body, SMTP_BODY_BINARYMIME);
	smtp_command_clear(&cmd);

	/* exactly the limit passes; 20 digits without a limit saturate */
	cmd = parse_ok("MAIL FROM:<a@example.org> SIZE=10485760", 0, EXT_STD);
	assert_int_equal(cmd.mail.size, MAX_SIZE);
	smtp_command_clear(&cmd);
	{
		struct smtp_parse_opts opts = { .extensions = EXT_STD };
		struct smtp_reply reply;
		const char *l = "MAIL FROM:<a@example.org> "
				"SIZE=99999999999999999999";
		assert_int_equal(
			smtp_command_parse(l, strlen(l), &opts, &cmd, &reply),
			0);
		assert_true(cmd.mail.size == UINT64_MAX);
		smtp_command_clear(&cmd);
	}

	/* SMTPUTF8 after the path it governs */
	cmd = parse_ok("MAIL FROM:<j" O_UML "ran@b" U_UML "cher.example> "
		       "SMTPUTF8 ENVID=" O_UML,
		       0, EXT_STD);
	assert_true(cmd.mail.smtputf8);
	assert_string_equal(cmd.path.domain, "xn--bcher-kva.example");
	assert_string_equal(cmd.path.localpart, "j" O_UML "ran");
	assert_string_equal(cmd.mail.envid, O_UML);
	smtp_command_clear(&cmd);

	/* lenient: blanks between parameters, lower-case xtext hex */
	cmd = parse_ok("MAIL FROM: a@example.org  SIZE=5\t ENVID=a+2bb ",
		       SMTP_LENIENT, EXT_STD);
	assert_int_equal(cmd.mail.size, 5);
	assert_string_equal(cmd.mail.envid, "a+b");
	assert_int_equal(cmd.path.flags, SMTP_PATH_UNBRACKETED);
	smtp_command_clear(&cmd);
}

static void
test_command_rcpt_params(void **state)
{
	struct smtp_command cmd;

	cmd = parse_ok("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY "
		       "ORCPT=rfc822;b+2Bx@example.org",
		       0, EXT_STD);
	assert_int_equal(cmd.rcpt.notify, SMTP_NOTIFY_SUCCESS |
						  SMTP_NOTIFY_FAILURE |
						  SMTP_NOTIFY_DELAY);
	assert_string_equal(cmd.rcpt.orcpt_type, "rfc822");
	assert_string_equal(cmd.rcpt.orcpt_raw, "b+2Bx@example.org");
	assert_string_equal(cmd.rcpt.orcpt, "b+x@example.org");
	smtp_command_clear(&cmd);

	cmd = parse_ok("RCPT TO:<b@example.org> notify=never", 0, EXT_STD);
	assert_int_equal(cmd.rcpt.notify, SMTP_NOTIFY_NEVER);
	assert_null(cmd.rcpt.orcpt_type);
	smtp_command_clear(&cmd);

	cmd = parse_ok("RCPT TO:<b@example.org> NOTIFY=delay", 0, EXT_STD);
	assert_int_equal(cmd.rcpt.notify, SMTP_NOTIFY_DELAY);
	smtp_command_clear(&cmd);

	/* the transaction had SMTPUTF8: UTF-8 recipient and ORCPT */
	cmd = parse_ok("RCPT TO:<j" O_UML "@example.org> "
		       "ORCPT=utf-8;j" O_UML "@example.org",
		       SMTP_UTF8, EXT_STD);
	assert_string_equal(cmd.path.localpart_unquoted, "j" O_UML);
	assert_string_equal(cmd.rcpt.orcpt_type, "utf-8");
	assert_string_equal(cmd.rcpt.orcpt, "j" O_UML "@example.org");
	assert_int_equal(cmd.rcpt.notify, 0);
	smtp_command_clear(&cmd);
}

static void
test_command_bdat(void **state)
{
	static const struct {
		const char *line;
		unsigned flags;
		uint64_t size;
		bool last;
	} cases[] = {
		{ "BDAT 1000", 0, 1000, false },
		{ "BDAT 0 LAST", 0, 0, true },
		{ "bdat 512 last", 0, 512, true },
		{ "BDAT 18446744073709551615", 0, UINT64_MAX, false },
		{ "BDAT 10   LAST ", SMTP_LENIENT, 10, true },
		{ "BDAT 0010", 0, 10, false },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct smtp_command cmd =
			parse_ok(cases[i].line, cases[i].flags, EXT_STD);
		check_int(cases[i].line, "verb", cmd.verb, SMTP_VERB_BDAT);
		if (cmd.bdat_size != cases[i].size)
			fail_msg("%s: size %llu", cases[i].line,
				 (unsigned long long)cmd.bdat_size);
		check_int(cases[i].line, "last", cmd.bdat_last, cases[i].last);
		smtp_command_clear(&cmd);
	}
}

static void
test_command_auth(void **state)
{
	struct smtp_command cmd;

	cmd = parse_ok("AUTH PLAIN", 0, EXT_STD);
	assert_string_equal(cmd.auth_mechanism, "PLAIN");
	assert_false(cmd.auth_has_initial);
	assert_null(cmd.auth_initial);
	smtp_command_clear(&cmd);

	cmd = parse_ok("auth plain AGZvbwBiYXI=", 0, EXT_STD);
	assert_string_equal(cmd.auth_mechanism, "PLAIN");
	assert_true(cmd.auth_has_initial);
	assert_int_equal(cmd.auth_initial_len, 8);
	assert_memory_equal(cmd.auth_initial, "\0foo\0bar", 8);
	smtp_command_clear(&cmd);

	cmd = parse_ok("AUTH EXTERNAL =", 0, EXT_STD);
	assert_string_equal(cmd.auth_mechanism, "EXTERNAL");
	assert_true(cmd.auth_has_initial);
	assert_int_equal(cmd.auth_initial_len, 0);
	assert_string_equal((char *)cmd.auth_initial, "");
	smtp_command_clear(&cmd);

	cmd = parse_ok("AUTH scram-sha-256-plus biwsbj11c2VyLHI9YWJj", 0,
		       EXT_STD);
	assert_string_equal(cmd.auth_mechanism, "SCRAM-SHA-256-PLUS");
	assert_int_equal(cmd.auth_initial_len, 15);
	assert_memory_equal(cmd.auth_initial, "n,,n=user,r=abc", 15);
	smtp_command_clear(&cmd);

	cmd = parse_ok("AUTH  LOGIN   dXNlcg==", SMTP_LENIENT, EXT_STD);
	assert_string_equal(cmd.auth_mechanism, "LOGIN");
	assert_string_equal((char *)cmd.auth_initial, "user");
	smtp_command_clear(&cmd);
}

/* Every verb by name, and its name back. */
static void
test_verb_names(void **state)
{
	static const char *const names[] = { "EHLO",	 "HELO", "MAIL", "RCPT",
					     "DATA",	 "BDAT", "RSET", "NOOP",
					     "VRFY",	 "EXPN", "HELP", "QUIT",
					     "STARTTLS", "AUTH" };
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		enum smtp_verb verb = (enum smtp_verb)(SMTP_VERB_EHLO + i);
		assert_string_equal(smtp_verb_name(verb), names[i]);
		assert_true(smtp_command_looks_like_smtp(names[i],
							 strlen(names[i])));
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "?");
}

/* --- first command ------------------------------------------------- */

static void
test_looks_like_smtp(void **state)
{
	static const struct {
		const char *line;
		size_t len; /* 0: strlen */
		bool smtp;
	} cases[] = {
		{ "EHLO client.example", 0, true },
		{ "ehlo client.example\r\n", 0, true },
		{ "HELO x", 0, true },
		{ "HELO", 0, true },
		{ "QUIT\n", 0, true },
		{ "STARTTLS", 0, true },
		{ "NOOP", 0, true },
		{ "MAIL FROM:bad", 0, true },
		{ "EHLO b" U_UML "cher.example", 0, true },
		{ "GET / HTTP/1.1", 0, false },
		{ "POST /submit HTTP/1.1\r\n", 0, false },
		{ "CONNECT mx.example:25 HTTP/1.1", 0, false },
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, false },
		{ "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11, false },
		{ "", 0, false },
		{ "\r\n", 0, false },
		{ "\x00\x01\x02\x03", 4, false },
		{ "EHLO\0x", 6, false },
		{ "EHLOX", 0, false },
		{ "EHLO x\x1b[0m", 0, false },
		{ "EHLO x\x7f", 0, false },
		{ "USER bob", 0, false },
		{ "a001 LOGIN bob secret", 0, false },
		{ "XCLIENT ADDR=1.2.3.4", 0, false },
		{ " EHLO x", 0, false },
		{ "SSH-2.0-OpenSSH_9.2", 0, false },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		size_t len =
			cases[i].len ? cases[i].len : strlen(cases[i].line);
		if (smtp_command_looks_like_smtp(cases[i].line, len) !=
		    cases[i].smtp)
			fail_msg("case %zu \"%s\": expected %s", i,
				 cases[i].line, cases[i].smtp ? "yes" : "no");
	}
}

static void
test_prefix_possible(void **state)
{
	static const struct {
		const char *buf;
		size_t len;
		bool possible;
	} cases[] = {
		{ "", 0, true },	   { "E", 1, true },
		{ "eh", 2, true },	   { "EHLO", 4, true },
		{ "EHLO ", 5, true },	   { "EHLO x", 6, true },
		{ "EHLOX", 5, false },	   { "H", 1, true },
		{ "S", 1, true },	   { "STARTTLS\r", 9, true },
		{ "STARTTLSX", 9, false }, { "Q", 1, true },
		{ "\x16", 1, false },	   { "\x16\x03\x01", 3, false },
		{ "G", 1, false },	   { "GET ", 4, false },
		{ "\0", 1, false },	   { "E\0", 2, false },
		{ "P", 1, false },	   { "X", 1, false },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (smtp_command_prefix_possible(cases[i].buf, cases[i].len) !=
		    cases[i].possible)
			fail_msg("case %zu \"%.*s\": expected %s", i,
				 (int)cases[i].len, cases[i].buf,
				 cases[i].possible ? "yes" : "no");
}

/* --- xtext and base64 ---------------------------------------------- */

static void
test_xtext(void **state)
{
	static const struct {
		const char *in;
		unsigned flags;
		const char *out; /* NULL: refused */
	} cases[] = {
		{ "abc", 0, "abc" },
		{ "", 0, "" },
		{ "a+2Bb", 0, "a+b" },
		{ "+3D", 0, "=" },
		{ "+20x+7E", 0, " x~" },
		{ "<>", 0, "<>" },
		{ "a+2bb", 0, NULL },
		{ "a+2bb", SMTP_LENIENT, "a+b" },
		{ "+", 0, NULL },
		{ "+2", 0, NULL },
		{ "a+2", 0, NULL },
		{ "+ZZ", 0, NULL },
		{ "+G0", 0, NULL },
		{ "a=b", 0, NULL },
		{ "a b", 0, NULL },
		{ "a\x7f", 0, NULL },
		{ "+00", 0, NULL },
		{ "j" O_UML, 0, NULL },
		{ "j" O_UML, SMTP_UTF8, "j" O_UML },
		{ "j\xff", SMTP_UTF8, NULL },
		{ "+C3+B6", 0, O_UML },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *out = NULL;
		int ret = smtp_xtext_decode(cases[i].in, strlen(cases[i].in),
					    cases[i].flags, &out);
		check_int(cases[i].in, "return", ret,
			  cases[i].out != NULL ? 0 : TS_E_INVAL);
		check_str(cases[i].in, "decoded", out, cases[i].out);
		free(out);
	}

	char *enc = smtp_xtext_encode("a+b=c d" O_UML "~");
	assert_string_equal(enc, "a+2Bb+3Dc+20d+C3+B6~");
	char *dec;
	assert_int_equal(smtp_xtext_decode(enc, strlen(enc), 0, &dec), 0);
	assert_string_equal(dec, "a+b=c d" O_UML "~");
	free(enc);
	free(dec);
}

static void
test_base64(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{ "", "" },
		{ "Zg==", "f" },
		{ "Zm8=", "fo" },
		{ "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" },
		{ "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" },
		{ "Zg=", NULL },
		{ "Z===", NULL },
		{ "Zg=a", NULL },
		{ "Zm9v\n", NULL },
		{ "Zm 9v", NULL },
		{ "Zm9v====", NULL },
		{ "Zg==Zg==", NULL },
		{ "Zm-v", NULL },
		{ "====", NULL },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		unsigned char *out = NULL;
		size_t len = 0;
		int ret = smtp_base64_decode(cases[i].in, strlen(cases[i].in),
					     &out, &len);
		check_int(cases[i].in, "return", ret,
			  cases[i].out != NULL ? 0 : TS_E_INVAL);
		if (cases[i].out != NULL) {
			check_int(cases[i].in, "length", len,
				  strlen(cases[i].out));
			check_str(cases[i].in, "decoded", (char *)out,
				  cases[i].out);
		}
		free(out);
	}

	/* encode every length 0..6 of binary and decode it back */
	const unsigned char bin[] = { 0x00, 0xff, 0x10, 0x80, 0x7f, 0x01 };
	for (size_t n = 0; n <= sizeof(bin); n++) {
		char *enc = smtp_base64_encode(bin, n);
		unsigned char *dec;
		size_t dlen;
		assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
		assert_int_equal(
			smtp_base64_decode(enc, strlen(enc), &dec, &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, bin, n);
		free(enc);
		free(dec);
	}
	char *enc = smtp_base64_encode("\0foo\0bar", 8);
	assert_string_equal(enc, "AGZvbwBiYXI=");
	free(enc);
}

static void
test_utf8_valid(void **state)
{
	assert_true(smtp_utf8_valid("", 0));
	assert_true(smtp_utf8_valid("abc", 3));
	assert_true(smtp_utf8_valid(O_UML, 2));
	assert_true(smtp_utf8_valid(SNOWMAN, 3));
	assert_true(smtp_utf8_valid("\xf0\x9f\x93\xa7", 4)); /* U+1F4E7 */
	assert_false(smtp_utf8_valid("\xc3", 1)); /* truncated */
	assert_false(smtp_utf8_valid("\xc0\xaf", 2)); /* overlong */
	assert_false(smtp_utf8_valid("\xe0\x80\xaf", 3)); /* overlong */
	assert_false(smtp_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(smtp_utf8_valid("\xf4\x90\x80\x80", 4)); /* > 10FFFF */
	assert_false(smtp_utf8_valid("\x80", 1));
	assert_false(smtp_utf8_valid("\xff", 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_domain_raw),
		cmocka_unit_test(test_path_prefix),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_relay_tricks),
		cmocka_unit_test(test_idna),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_localpart_format),
		cmocka_unit_test(test_ehlo_args),
		cmocka_unit_test(test_command_errors),
		cmocka_unit_test(test_command_simple),
		cmocka_unit_test(test_command_ehlo),
		cmocka_unit_test(test_command_mail_params),
		cmocka_unit_test(test_command_rcpt_params),
		cmocka_unit_test(test_command_bdat),
		cmocka_unit_test(test_command_auth),
		cmocka_unit_test(test_verb_names),
		cmocka_unit_test(test_looks_like_smtp),
		cmocka_unit_test(test_prefix_possible),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
