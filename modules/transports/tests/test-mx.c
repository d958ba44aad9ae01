/*
 * modules/transports/tests/test-mx.c — target selection for direct
 * delivery (modules/transports/mx.c).
 *
 * MX answers to ordered host lists: preference order, the shuffle among
 * equal preferences with an injected random source (and that every
 * order turns up), implicit MX, null MX, MX records naming IP addresses,
 * address literals, and the DNS failure mapping (NXDOMAIN, temporary,
 * permanent, DNSSEC bogus); then A/AAAA answers to address lists in each
 * family order.  Pure functions: no DNS, no kernel beyond kernel/alloc.c.
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

#include "modules/transports/mx.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* A fixed sequence of "random" numbers, cycling. */
struct seq {
	const uint32_t *v;
	size_t n, i;
};

static uint32_t
seq_next(void *arg)
{
	struct seq *s = arg;
	uint32_t v = s->v[s->i % s->n];
	s->i++;
	return v;
}

static uint32_t
zero_rand(void *arg)
{
	(void)arg;
	return 0;
}

/* An MX answer of count records (pref, exchange pairs). */
static struct ts_dns_answer
mx_answer(struct ts_dns_record *recs, size_t count)
{
	struct ts_dns_answer a = {
		.name = "example.org",
		.type = TS_DNS_MX,
		.status = count > 0 ? TS_DNS_OK : TS_DNS_NODATA,
		.canonical = "example.org",
		.count = count,
		.records = recs,
	};
	return a;
}

static struct ts_dns_record
mx(uint16_t pref, const char *exchange)
{
	struct ts_dns_record r = { .ttl = 300 };
	r.u.mx.preference = pref;
	r.u.mx.exchange = exchange;
	return r;
}

/* The hosts' names joined by spaces, for one comparison. */
static char *
names(const struct tr_hosts *h)
{
	char *s = ts_xstrdup("");
	for (size_t i = 0; i < h->count; i++) {
		char *t = ts_xasprintf("%s%s%s", s, i ? " " : "",
				       h->hosts[i].name);
		free(s);
		s = t;
	}
	return s;
}

static void
expect_hosts(const struct ts_dns_answer *a, tr_random_fn rnd, void *arg,
	     const char *want)
{
	struct tr_hosts h;
	struct tr_result fail = { 0 };
	assert_int_equal(tr_mx_hosts("example.org", a, rnd, arg, &h, &fail), 0);
	char *got = names(&h);
	assert_string_equal(got, want);
	free(got);
	tr_hosts_free(&h);
}

static void
expect_fail(const struct ts_dns_answer *a, int code, const char *enh,
	    const char *text_part)
{
	struct tr_hosts h;
	struct tr_result fail = { 0 };
	assert_int_equal(
		tr_mx_hosts("example.org", a, zero_rand, NULL, &h, &fail),
		TS_E_NOTFOUND);
	assert_int_equal(fail.code, code);
	assert_string_equal(fail.enhanced, enh);
	if (strstr(fail.text, text_part) == NULL)
		fail_msg("text \"%s\" lacks \"%s\"", fail.text, text_part);
	assert_int_equal(h.count, 0);
	free(fail.text);
}

static void
test_preference_order(void **state)
{
	(void)state;
	struct ts_dns_record r[] = { mx(30, "c.example.org"),
				     mx(10, "a.example.org"),
				     mx(20, "b.example.org") };
	struct ts_dns_answer a = mx_answer(r, 3);
	expect_hosts(&a, zero_rand, NULL,
		     "a.example.org b.example.org c.example.org");
}

static void
test_equal_preferences_shuffled(void **state)
{
	(void)state;
	struct ts_dns_record r[] = { mx(10, "a"), mx(10, "b"), mx(10, "c"),
				     mx(5, "first"), mx(20, "last") };
	struct ts_dns_answer a = mx_answer(r, 5);
	/* Fisher-Yates over a, b, c: k=3 picks index v%3 for the last
	 * place, k=2 picks v%2 for the middle. */
	uint32_t v1[] = { 0, 0 }; /* c<->a: c b a; then b<->c: b c a */
	struct seq s1 = { v1, 2, 0 };
	expect_hosts(&a, seq_next, &s1, "first b c a last");
	uint32_t v2[] = { 2, 1 }; /* keep all */
	struct seq s2 = { v2, 2, 0 };
	expect_hosts(&a, seq_next, &s2, "first a b c last");

	/* Every one of the 6 orders is reachable, and the first and last
	 * stay where their preference puts them. */
	bool seen[6] = { false };
	for (uint32_t x = 0; x < 3; x++) {
		for (uint32_t y = 0; y < 2; y++) {
			uint32_t v[] = { x, y };
			struct seq s = { v, 2, 0 };
			struct tr_hosts h;
			struct tr_result fail = { 0 };
			assert_int_equal(tr_mx_hosts("example.org", &a,
						     seq_next, &s, &h, &fail),
					 0);
			assert_string_equal(h.hosts[0].name, "first");
			assert_string_equal(h.hosts[4].name, "last");
			int idx = (h.hosts[1].name[0] - 'a') * 2 +
				  (h.hosts[2].name[0] > h.hosts[3].name[0]);
			seen[idx] = true;
			tr_hosts_free(&h);
		}
	}
	for (size_t i = 0; i < 6; i++)
		assert_true(seen[i]);
}

static void
test_implicit_mx(void **state)
{
	(void)state;
	struct ts_dns_answer a = mx_answer(NULL, 0); /* NODATA */
	struct tr_hosts h;
	struct tr_result fail = { 0 };
	assert_int_equal(
		tr_mx_hosts("example.org", &a, zero_rand, NULL, &h, &fail), 0);
	assert_int_equal(h.count, 1);
	assert_string_equal(h.hosts[0].name, "example.org");
	assert_true(h.implicit);
	assert_false(h.hosts[0].literal);
	tr_hosts_free(&h);
}

static void
test_null_mx(void **state)
{
	(void)state;
	struct ts_dns_record r1[] = { mx(0, "") };
	struct ts_dns_answer a = mx_answer(r1, 1);
	expect_fail(&a, 556, "5.1.10", "does not accept mail");
	struct ts_dns_record r2[] = { mx(0, ".") };
	a = mx_answer(r2, 1);
	expect_fail(&a, 556, "5.1.10", "null MX");
	/* A null MX beside real ones (RFC 7505 forbids it): use the real
	 * ones. */
	struct ts_dns_record r3[] = { mx(0, ""), mx(10, "mx.example.org") };
	a = mx_answer(r3, 2);
	expect_hosts(&a, zero_rand, NULL, "mx.example.org");
}

static void
test_mx_to_ip_address(void **state)
{
	(void)state;
	struct ts_dns_record r1[] = { mx(10, "192.0.2.1"),
				      mx(20, "2001:db8::1") };
	struct ts_dns_answer a = mx_answer(r1, 2);
	expect_fail(&a, 550, "5.4.4", "IP addresses");
	struct ts_dns_record r2[] = { mx(10, "192.0.2.1"),
				      mx(20, "mx2.example.org") };
	a = mx_answer(r2, 2);
	expect_hosts(&a, zero_rand, NULL, "mx2.example.org");
	/* An MX naming an alias is used: the A/AAAA lookup follows it. */
	struct ts_dns_record r3[] = { mx(10, "alias.example.org") };
	a = mx_answer(r3, 1);
	expect_hosts(&a, zero_rand, NULL, "alias.example.org");
}

static void
test_dns_failures(void **state)
{
	(void)state;
	struct ts_dns_answer a = mx_answer(NULL, 0);
	a.status = TS_DNS_NXDOMAIN;
	a.rcode = 3;
	expect_fail(&a, 550, "5.1.2", "does not exist");
	a.status = TS_DNS_TEMPFAIL;
	a.rcode = 2;
	expect_fail(&a, 451, "4.4.3", "temporary DNS failure");
	a.status = TS_DNS_PERMFAIL;
	a.rcode = 5;
	expect_fail(&a, 550, "5.4.4", "failed permanently");
	struct ts_dns_record r[] = { mx(10, "mx.example.org") };
	a = mx_answer(r, 1);
	a.security = TS_DNS_BOGUS;
	a.why_bogus = "signature expired";
	expect_fail(&a, 451, "4.4.3", "signature expired");
	/* OK but no records: odd, and temporary. */
	a = mx_answer(r, 0);
	a.status = TS_DNS_OK;
	expect_fail(&a, 451, "4.4.3", "empty MX answer");
}

static void
test_address_literals(void **state)
{
	(void)state;
	static const struct {
		const char *domain;
		int ret;
		const char *ip;
	} cases[] = {
		{ "example.org", 0, NULL },
		{ "[192.0.2.7]", 1, "192.0.2.7" },
		{ "[IPv6:2001:db8::7]", 1, "2001:db8::7" },
		{ "[ipv6:::1]", 1, "::1" },
		{ "[192.0.2.300]", TS_E_INVAL, NULL },
		{ "[2001:db8::7]", TS_E_INVAL, NULL }, /* needs IPv6: */
		{ "[IPv6:192.0.2.1]", TS_E_INVAL, NULL },
		{ "[192.0.2.7", TS_E_INVAL, NULL },
		{ "[]", TS_E_INVAL, NULL },
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct tr_hosts h;
		struct tr_result fail = { 0 };
		int ret = tr_mx_literal(cases[i].domain, &h, &fail);
		if (ret != cases[i].ret)
			fail_msg("%s: %d, expected %d", cases[i].domain, ret,
				 cases[i].ret);
		if (ret == 1) {
			assert_int_equal(h.count, 1);
			assert_true(h.hosts[0].literal);
			assert_string_equal(h.hosts[0].name, cases[i].ip);
		} else if (ret < 0) {
			assert_int_equal(fail.code, 553);
			assert_string_equal(fail.enhanced, "5.1.2");
			free(fail.text);
		}
		tr_hosts_free(&h);
	}
}

static struct ts_dns_record
addr(const char *ip)
{
	struct ts_dns_record r = { .ttl = 60 };
	snprintf(r.u.addr, sizeof(r.u.addr), "%s", ip);
	return r;
}

static void
expect_addrs(const struct ts_dns_answer *aaaa, const struct ts_dns_answer *a,
	     enum tr_family fam, enum tr_addr_status st, const char *want)
{
	char **addrs;
	size_t n;
	const char *why;
	assert_int_equal(tr_addrs_from_answers(aaaa, a, fam, &addrs, &n, &why),
			 st);
	char *got = ts_xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *t = ts_xasprintf("%s%s%s", got, i ? " " : "", addrs[i]);
		free(got);
		got = t;
	}
	assert_string_equal(got, want);
	if (st != TR_ADDR_OK)
		assert_non_null(why);
	free(got);
	tr_addrs_free(&addrs, n);
}

static void
test_addresses(void **state)
{
	(void)state;
	struct ts_dns_record r6[] = { addr("2001:db8::1"),
				      addr("2001:db8::2") };
	struct ts_dns_record r4[] = { addr("192.0.2.1"),
				      addr("not-an-address") };
	struct ts_dns_answer aaaa = { .type = TS_DNS_AAAA,
				      .status = TS_DNS_OK,
				      .count = 2,
				      .records = r6 };
	struct ts_dns_answer a = {
		.type = TS_DNS_A, .status = TS_DNS_OK, .count = 2, .records = r4
	};
	expect_addrs(&aaaa, &a, TR_FAMILY_IPV6_FIRST, TR_ADDR_OK,
		     "2001:db8::1 2001:db8::2 192.0.2.1");
	expect_addrs(&aaaa, &a, TR_FAMILY_IPV4_FIRST, TR_ADDR_OK,
		     "192.0.2.1 2001:db8::1 2001:db8::2");
	expect_addrs(&aaaa, &a, TR_FAMILY_IPV6_ONLY, TR_ADDR_OK,
		     "2001:db8::1 2001:db8::2");
	expect_addrs(&aaaa, &a, TR_FAMILY_IPV4_ONLY, TR_ADDR_OK, "192.0.2.1");
	expect_addrs(NULL, &a, TR_FAMILY_IPV6_FIRST, TR_ADDR_OK, "192.0.2.1");

	/* One family failing temporarily does not matter when the other
	 * answered; both failing is temporary; no records is NONE. */
	struct ts_dns_answer temp = { .type = TS_DNS_AAAA,
				      .status = TS_DNS_TEMPFAIL };
	struct ts_dns_answer nodata = { .type = TS_DNS_A,
					.status = TS_DNS_NODATA };
	struct ts_dns_answer nx = { .type = TS_DNS_A,
				    .status = TS_DNS_NXDOMAIN };
	expect_addrs(&temp, &a, TR_FAMILY_IPV6_FIRST, TR_ADDR_OK, "192.0.2.1");
	expect_addrs(&temp, &nodata, TR_FAMILY_IPV6_FIRST, TR_ADDR_TEMP, "");
	expect_addrs(NULL, &nx, TR_FAMILY_IPV6_FIRST, TR_ADDR_NONE, "");
	/* The temporary failure of an unwanted family is ignored. */
	expect_addrs(&temp, &nodata, TR_FAMILY_IPV4_ONLY, TR_ADDR_NONE, "");
	struct ts_dns_answer bogus = a;
	bogus.security = TS_DNS_BOGUS;
	expect_addrs(NULL, &bogus, TR_FAMILY_IPV6_FIRST, TR_ADDR_TEMP, "");
}

static void
test_family(void **state)
{
	(void)state;
	enum tr_family f;
	assert_int_equal(tr_family_parse("ipv4-first", &f), 0);
	assert_int_equal(f, TR_FAMILY_IPV4_FIRST);
	assert_int_equal(tr_family_parse("ipv6", &f), TS_E_INVAL);
	assert_true(tr_family_wants(TR_FAMILY_IPV6_FIRST, TS_DNS_A));
	assert_true(tr_family_wants(TR_FAMILY_IPV6_FIRST, TS_DNS_AAAA));
	assert_false(tr_family_wants(TR_FAMILY_IPV4_ONLY, TS_DNS_AAAA));
	assert_false(tr_family_wants(TR_FAMILY_IPV6_ONLY, TS_DNS_A));
	assert_false(tr_family_wants(TR_FAMILY_IPV6_FIRST, TS_DNS_MX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preference_order),
		cmocka_unit_test(test_equal_preferences_shuffled),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_mx_to_ip_address),
		cmocka_unit_test(test_dns_failures),
		cmocka_unit_test(test_address_literals),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_family),
	};
	return cmocka_run_group_tests_name("transports mx", tests, NULL, NULL);
}
