/*
 * modules/spf/tests/test-spf-record.c — SPF record parsing and macros
 * (modules/spf/record.c and macro.c) on their own.
 *
 * Table-driven: valid and invalid records (qualifiers, CIDR lengths and
 * their leading zeros, unknown mechanisms, repeated modifiers, bad
 * domain-ends, bad bytes), and the macro expansions of RFC 7208 section
 * 7.4 for an IPv4 and an IPv6 client, with URL-escaping, transformers,
 * delimiters, truncation to 253 octets and the %{p} retry signal.
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

#include "modules/spf/spf.h"

static void
test_record_valid(void **state)
{
	static const char *const ok[] = {
		"v=spf1",
		"v=spf1 ",
		"V=SPF1 -ALL",
		"v=spf1 +a -mx ~ptr ?all",
		"v=spf1 a/24 mx//64 a:example.com/24//64 ip4:192.0.2.0/24",
		"v=spf1 ip6:2001:db8::/32 ip6:::1 exists:%{ir}.%{l1r+-}.x.org",
		"v=spf1 include:_spf.example.com redirect=example.org",
		"v=spf1 exp=explain.%{d} foo=bar%{s} -all",
		"v=spf1  a   mx  ",
		"v=spf1 a:example.com. ptr:%{d}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct spf_record *rec = NULL;
		const char *error = NULL;

		if (spf_record_parse(ok[i], strlen(ok[i]), &rec, &error) != 0)
			fail_msg("%s: %s", ok[i], error);
		spf_record_free(&rec);
		assert_null(rec);
	}
}

static void
test_record_terms(void **state)
{
	struct spf_record *rec;
	const char *error;
	const char *text = "v=spf1 -a:ex.org/24//64 ~ip4:10.1.2.3/8 ?all "
			   "redirect=r.example exp=e.example";

	assert_int_equal(spf_record_parse(text, strlen(text), &rec, &error), 0);
	assert_int_equal(rec->count, 3);
	assert_int_equal(rec->terms[0].mech, SPF_M_A);
	assert_int_equal(rec->terms[0].qual, SPF_FAIL);
	assert_string_equal(rec->terms[0].spec, "ex.org");
	assert_int_equal(rec->terms[0].cidr4, 24);
	assert_int_equal(rec->terms[0].cidr6, 64);
	assert_int_equal(rec->terms[1].mech, SPF_M_IP4);
	assert_int_equal(rec->terms[1].qual, SPF_SOFTFAIL);
	assert_int_equal(rec->terms[1].cidr4, 8);
	assert_int_equal(rec->terms[1].net[0], 10);
	assert_int_equal(rec->terms[2].qual, SPF_NEUTRAL);
	assert_string_equal(rec->terms[2].text, "?all");
	assert_string_equal(rec->redirect, "r.example");
	assert_string_equal(rec->exp, "e.example");
	spf_record_free(&rec);
}

static void
test_record_invalid(void **state)
{
	static const char *const bad[] = {
		"v=spf10",
		"spf1 -all",
		"v=spf1 -all/24",
		"v=spf1 a/33",
		"v=spf1 a//129",
		"v=spf1 a/024",
		"v=spf1 ip4:192.0.2.1/33",
		"v=spf1 ip4:192.0.2",
		"v=spf1 ip4:192.0.2.1//64",
		"v=spf1 ip6:2001:db8::/129",
		"v=spf1 ip6:192.0.2.1",
		"v=spf1 include",
		"v=spf1 include:",
		"v=spf1 exists:foo",
		"v=spf1 a:foo.123",
		"v=spf1 a:foo.-bar",
		"v=spf1 frobnicate",
		"v=spf1 a:ex.org:x",
		"v=spf1 redirect=a.org redirect=b.org",
		"v=spf1 exp=a.org exp=b.org",
		"v=spf1 a:%{x}.org",
		"v=spf1 a:%{d0}.org",
		"v=spf1 a:%{d",
		"v=spf1 foo=%",
		"v=spf1 1foo=bar",
		"v=spf1 a:ex\x80.org",
		"v=spf1\ta",
		"v=spf1 ptr/24",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct spf_record *rec = NULL;
		const char *error = NULL;

		if (spf_record_parse(bad[i], strlen(bad[i]), &rec, &error) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(error);
		assert_null(rec);
	}
}

static void
test_is_record(void **state)
{
	assert_true(spf_is_record("v=spf1", 6));
	assert_true(spf_is_record("v=spf1 a", 8));
	assert_false(spf_is_record("v=spf1a", 7));
	assert_false(spf_is_record("v=spf", 5));
	assert_false(spf_is_record("\"v=spf1\"", 8));
}

static const uint8_t ip4[4] = { 192, 0, 2, 3 };
static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
				 0,    0,    0,	   0,	 0, 0, 0xcb, 0x01 };

static void
expect(const char *spec, bool exp, const uint8_t *ip, const char *want)
{
	struct spf_macro_env env = {
		.sender = "strong-bad@email.example.com",
		.local = "strong-bad",
		.sender_domain = "email.example.com",
		.domain = "email.example.com",
		.helo = "mx.example.org",
		.receiver = "mx.example.net",
		.p = "mx.example.org",
		.family = ip == ip4 ? 4 : 6,
		.ip = ip,
		.now = 1234,
	};
	char *out = NULL;

	if (spf_macro_expand(spec, &env, exp, &out) != 0)
		fail_msg("%s: failed", spec);
	if (strcmp(out, want) != 0)
		fail_msg("%s: got %s, want %s", spec, out, want);
	free(out);
}

/* RFC 7208 7.4, the examples as printed. */
static void
test_macro_rfc_examples(void **state)
{
	expect("%{s}", false, ip4, "strong-bad@email.example.com");
	expect("%{o}", false, ip4, "email.example.com");
	expect("%{d}", false, ip4, "email.example.com");
	expect("%{d4}", false, ip4, "email.example.com");
	expect("%{d3}", false, ip4, "email.example.com");
	expect("%{d2}", false, ip4, "example.com");
	expect("%{d1}", false, ip4, "com");
	expect("%{dr}", false, ip4, "com.example.email");
	expect("%{d2r}", false, ip4, "example.email");
	expect("%{l}", false, ip4, "strong-bad");
	expect("%{l-}", false, ip4, "strong.bad");
	expect("%{lr}", false, ip4, "strong-bad");
	expect("%{lr-}", false, ip4, "bad.strong");
	expect("%{l1r-}", false, ip4, "strong");
	expect("%{ir}.%{v}._spf.%{d2}", false, ip4,
	       "3.2.0.192.in-addr._spf.example.com");
	expect("%{lr-}.lp._spf.%{d2}", false, ip4,
	       "bad.strong.lp._spf.example.com");
	expect("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, ip4,
	       "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expect("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, ip4,
	       "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expect("%{d2}.trusted-domains.example.net", false, ip4,
	       "example.com.trusted-domains.example.net");
	expect("%{ir}.%{v}._spf.%{d2}", false, ip6,
	       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0."
	       "2.ip6._spf.example.com");
}

static void
test_macro_more(void **state)
{
	expect("%%%_%-", false, ip4, "% %20");
	expect("%{S}", false, ip4, "strong-bad%40email.example.com");
	expect("%{c} %{r} %{t}", true, ip4, "192.0.2.3 mx.example.net 1234");
	expect("%{c}", true, ip6, "2001:db8::cb01");
	expect("%{p}.%{h}", false, ip4, "mx.example.org.mx.example.org");
	expect("%{l+=}", false, ip4, "strong-bad");
	expect("%{d9}", false, ip4, "email.example.com");
}

static void
test_macro_errors(void **state)
{
	struct spf_macro_env env = {
		.sender = "a@b.c",
		.local = "a",
		.sender_domain = "b.c",
		.domain = "b.c",
		.helo = "h.c",
		.receiver = "r.c",
		.p = NULL,
		.family = 4,
		.ip = ip4,
	};
	char *out = (char *)"untouched";

	assert_int_equal(spf_macro_expand("%{p}.x", &env, false, &out),
			 SPF_MACRO_NEED_P);
	assert_int_equal(spf_macro_expand("%{c}", &env, false, &out), -1);
	assert_int_equal(spf_macro_expand("%x", &env, false, &out), -1);
	assert_int_equal(spf_macro_expand("%", &env, false, &out), -1);
	assert_string_equal(out, "untouched");
	assert_false(spf_macro_valid("%{c}", 4, false));
	assert_true(spf_macro_valid("%{c}", 4, true));
	assert_true(spf_macro_valid("a b", 3, true));
	assert_false(spf_macro_valid("a b", 3, false));
}

/* 7.3: a domain name longer than 253 octets loses labels on the left. */
static void
test_macro_truncate(void **state)
{
	char local[200], sender[260], *out = NULL;
	struct spf_macro_env env = {
		.sender = sender,
		.local = local,
		.sender_domain = "b.c",
		.domain = "b.c",
		.helo = "h.c",
		.receiver = "r.c",
		.p = "x",
		.family = 4,
		.ip = ip4,
	};

	for (size_t i = 0; i < 190; i += 2)
		memcpy(local + i, "a.", 2);
	local[190] = '\0';
	snprintf(sender, sizeof(sender), "%s@b.c", local);
	assert_int_equal(
		spf_macro_expand("%{l}.%{l}.example.com", &env, false, &out),
		0);
	assert_true(strlen(out) <= 253);
	assert_true(strlen(out) > 240);
	assert_int_equal(out[0], 'a');
	assert_int_equal(out[1], '.');
	assert_string_equal(out + strlen(out) - 12, ".example.com");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_valid),
		cmocka_unit_test(test_record_terms),
		cmocka_unit_test(test_record_invalid),
		cmocka_unit_test(test_is_record),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_macro_more),
		cmocka_unit_test(test_macro_errors),
		cmocka_unit_test(test_macro_truncate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
