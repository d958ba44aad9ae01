/*
 * modules/iprev/tests/test-iprev-eval.c — the iprev check on a scripted
 * resolver: pass on the first or a later name, fail, permerror for no
 * PTR, temperror for DNS failures and bogus answers, the max_names cap,
 * IPv6 written differently in the answer, DNSSEC accounting, and that
 * freeing a check in flight cancels its queries.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../iprev.h"

/* A scripted zone: names with their records; queries held until run. */
struct fake_rr {
	const char *name;
	enum ts_dns_type type; /* TS_DNS_PTR for reverse, else A/AAAA */
	const char *values[64]; /* NULL-terminated */
	enum ts_dns_status status;
	enum ts_dns_security security;
};

struct fake_query {
	char *name;
	enum ts_dns_type type;
	ts_dns_fn fn;
	void *arg;
	bool cancelled, answered;
};

struct fake {
	const struct fake_rr *rrs;
	size_t rr_count;
	struct fake_query *queries[128];
	size_t query_count;
	bool refuse; /* lookups fail to start */
};

static void *
fake_start(struct fake *f, const char *name, enum ts_dns_type type,
	   ts_dns_fn fn, void *arg)
{
	if (f->refuse)
		return NULL;
	struct fake_query *q = calloc(1, sizeof(*q));
	q->name = strdup(name);
	q->type = type;
	q->fn = fn;
	q->arg = arg;
	assert_true(f->query_count < 128);
	f->queries[f->query_count++] = q;
	return q;
}

static void *
fake_lookup(void *ctx, const char *name, enum ts_dns_type type, ts_dns_fn fn,
	    void *arg)
{
	return fake_start(ctx, name, type, fn, arg);
}

static void *
fake_lookup_ptr(void *ctx, const char *ip, ts_dns_fn fn, void *arg)
{
	return fake_start(ctx, ip, TS_DNS_PTR, fn, arg);
}

static void
fake_cancel(void *ctx, void *query)
{
	(void)ctx;
	((struct fake_query *)query)->cancelled = true;
}

/* Answer every open query, in order, until none is left. */
static void
fake_run(struct fake *f)
{
	for (size_t i = 0; i < f->query_count; i++) {
		struct fake_query *q = f->queries[i];
		if (q->cancelled || q->answered)
			continue;
		q->answered = true;
		struct ts_dns_record recs[64];
		struct ts_dns_answer a = { .name = q->name,
					   .type = q->type,
					   .status = TS_DNS_NXDOMAIN };
		for (size_t r = 0; r < f->rr_count; r++) {
			const struct fake_rr *rr = &f->rrs[r];
			if (rr->type != q->type || strcmp(rr->name, q->name))
				continue;
			a.status = rr->status;
			a.security = rr->security;
			for (size_t v = 0; rr->values[v] != NULL; v++) {
				memset(&recs[v], 0, sizeof(recs[v]));
				if (q->type == TS_DNS_PTR)
					recs[v].u.name = rr->values[v];
				else
					snprintf(recs[v].u.addr,
						 sizeof(recs[v].u.addr), "%s",
						 rr->values[v]);
				a.count++;
			}
			a.records = recs;
		}
		q->fn(&a, q->arg);
	}
}

static void
fake_free(struct fake *f)
{
	for (size_t i = 0; i < f->query_count; i++) {
		free(f->queries[i]->name);
		free(f->queries[i]);
	}
}

struct result {
	bool called;
	enum iprev_result result;
	char name[256];
	unsigned lookups;
	bool all_secure, any_bogus;
};

static void
done(const struct iprev_outcome *o, void *arg)
{
	struct result *r = arg;
	assert_false(r->called);
	r->called = true;
	r->result = o->result;
	snprintf(r->name, sizeof(r->name), "%s",
		 o->name != NULL ? o->name : "");
	r->lookups = o->lookups;
	r->all_secure = o->all_secure;
	r->any_bogus = o->any_bogus;
}

/* Run a check of ip against rrs; the outcome lands in *r. */
static void
check(const struct fake_rr *rrs, size_t count, const char *ip,
      unsigned max_names, struct result *r, size_t *queries_r)
{
	struct fake f = { .rrs = rrs, .rr_count = count };
	struct iprev_resolver res = { .ctx = &f,
				      .lookup = fake_lookup,
				      .lookup_ptr = fake_lookup_ptr,
				      .cancel = fake_cancel };
	memset(r, 0, sizeof(*r));
	struct iprev_eval *e = iprev_eval_new(&res, ip, max_names, done, r);
	assert_false(iprev_eval_run(e));
	fake_run(&f);
	assert_true(r->called);
	if (queries_r != NULL)
		*queries_r = f.query_count;
	iprev_eval_free(&e);
	assert_null(e);
	fake_free(&f);
}

/* status and DNSSEC security of a scripted answer */
#define OK TS_DNS_OK, TS_DNS_INSECURE
#define SECURE TS_DNS_OK, TS_DNS_SECURE
#define BOGUS TS_DNS_OK, TS_DNS_BOGUS
#define NODATA TS_DNS_NODATA, TS_DNS_INSECURE
#define SERVFAIL TS_DNS_TEMPFAIL, TS_DNS_INSECURE
#define N(...) { __VA_ARGS__, NULL }

static void
test_pass(void **state)
{
	(void)state;
	const struct fake_rr rrs[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("mail.example.org"), OK },
		{ "mail.example.org", TS_DNS_A, N("192.0.2.9", "192.0.2.1"),
		  OK },
	};
	struct result r;
	check(rrs, 2, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_PASS);
	assert_string_equal(r.name, "mail.example.org");
	assert_int_equal(r.lookups, 2);
	assert_false(r.all_secure);
}

static void
test_pass_on_second_name_and_secure(void **state)
{
	(void)state;
	const struct fake_rr rrs[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("a.example", "b.example"), SECURE },
		{ "a.example", TS_DNS_A, N("192.0.2.7"), SECURE },
		{ "b.example", TS_DNS_A, N("192.0.2.1"), SECURE },
	};
	struct result r;
	check(rrs, 3, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_PASS);
	assert_string_equal(r.name, "b.example");
	assert_true(r.all_secure);
	assert_false(r.any_bogus);
}

static void
test_fail(void **state)
{
	(void)state;
	const struct fake_rr rrs[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("a.example", "gone.example"),
		  OK },
		{ "a.example", TS_DNS_A, N("192.0.2.7"), OK },
		/* gone.example: NXDOMAIN (no rr) */
	};
	struct result r;
	check(rrs, 1 + 1, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_FAIL);
	assert_string_equal(r.name, "a.example"); /* the first PTR name */
}

static void
test_no_ptr_is_permerror(void **state)
{
	(void)state;
	const struct fake_rr nodata[] = {
		{ "192.0.2.1", TS_DNS_PTR, N(NULL), NODATA },
	};
	struct result r;
	check(nodata, 0, "192.0.2.1", 10, &r, NULL); /* NXDOMAIN */
	assert_int_equal(r.result, IPREV_PERMERROR);
	assert_string_equal(r.name, "");
	check(nodata, 1, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_PERMERROR);
}

static void
test_temperrors(void **state)
{
	(void)state;
	const struct fake_rr servfail[] = {
		{ "192.0.2.1", TS_DNS_PTR, N(NULL), SERVFAIL },
	};
	struct result r;
	check(servfail, 1, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_TEMPERROR);

	const struct fake_rr bogus[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("a.example"), BOGUS },
		{ "a.example", TS_DNS_A, N("192.0.2.1"), OK },
	};
	check(bogus, 2, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_TEMPERROR);
	assert_true(r.any_bogus);

	/* A forward failure might have been the match: temperror. */
	const struct fake_rr fwd[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("a.example", "b.example"), OK },
		{ "a.example", TS_DNS_A, N("192.0.2.7"), OK },
		{ "b.example", TS_DNS_A, N(NULL), SERVFAIL },
	};
	check(fwd, 3, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_TEMPERROR);

	/* ...unless another name passed. */
	const struct fake_rr fwd_pass[] = {
		{ "192.0.2.1", TS_DNS_PTR, N("b.example", "a.example"), OK },
		{ "a.example", TS_DNS_A, N("192.0.2.1"), OK },
		{ "b.example", TS_DNS_A, N(NULL), SERVFAIL },
	};
	check(fwd_pass, 3, "192.0.2.1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_PASS);
}

static void
test_max_names(void **state)
{
	(void)state;
	/* 40 PTR names, the match last: with a cap of 10, not reached. */
	static char names[40][32];
	struct fake_rr rrs[2] = {
		{ "192.0.2.1", TS_DNS_PTR, { NULL }, OK },
		{ "n39.example", TS_DNS_A, N("192.0.2.1"), OK },
	};
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "n%d.example", i);
		rrs[0].values[i] = names[i];
	}
	struct result r;
	size_t queries;
	check(rrs, 2, "192.0.2.1", 10, &r, &queries);
	assert_int_equal(r.result, IPREV_FAIL);
	assert_int_equal(queries, 1 + 10);
	check(rrs, 2, "192.0.2.1", 40, &r, &queries);
	assert_int_equal(r.result, IPREV_PASS);
	assert_int_equal(queries, 1 + 40);
}

static void
test_ipv6(void **state)
{
	(void)state;
	const struct fake_rr rrs[] = {
		{ "2001:db8::1", TS_DNS_PTR, N("v6.example"), OK },
		{ "v6.example", TS_DNS_AAAA,
		  N("2001:db8:0:0:0:0:0:1"), OK }, /* spelt out: same */
		{ "v6.example", TS_DNS_A, N("192.0.2.1"), OK },
	};
	struct result r;
	check(rrs, 3, "2001:db8::1", 10, &r, NULL);
	assert_int_equal(r.result, IPREV_PASS);
}

static void
test_bad_address_and_refusing_resolver(void **state)
{
	(void)state;
	struct fake f = { 0 };
	struct iprev_resolver res = { .ctx = &f,
				      .lookup = fake_lookup,
				      .lookup_ptr = fake_lookup_ptr,
				      .cancel = fake_cancel };
	struct result r = { 0 };
	struct iprev_eval *e = iprev_eval_new(&res, "not-an-ip", 10, done, &r);
	assert_true(iprev_eval_run(e));
	assert_false(r.called); /* reported by the return value */
	assert_int_equal(iprev_eval_outcome(e)->result, IPREV_PERMERROR);
	iprev_eval_free(&e);

	f.refuse = true;
	e = iprev_eval_new(&res, "192.0.2.1", 10, done, &r);
	assert_true(iprev_eval_run(e));
	assert_int_equal(iprev_eval_outcome(e)->result, IPREV_TEMPERROR);
	iprev_eval_free(&e);
	fake_free(&f);
}

static void
test_free_in_flight_cancels(void **state)
{
	(void)state;
	struct fake f = { 0 };
	struct iprev_resolver res = { .ctx = &f,
				      .lookup = fake_lookup,
				      .lookup_ptr = fake_lookup_ptr,
				      .cancel = fake_cancel };
	struct result r = { 0 };
	struct iprev_eval *e = iprev_eval_new(&res, "192.0.2.1", 10, done, &r);
	assert_false(iprev_eval_run(e));
	assert_null(iprev_eval_outcome(e));
	iprev_eval_free(&e);
	assert_true(f.queries[0]->cancelled);
	fake_run(&f); /* nothing answers a cancelled query */
	assert_false(r.called);
	fake_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_pass_on_second_name_and_secure),
		cmocka_unit_test(test_fail),
		cmocka_unit_test(test_no_ptr_is_permerror),
		cmocka_unit_test(test_temperrors),
		cmocka_unit_test(test_max_names),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_bad_address_and_refusing_resolver),
		cmocka_unit_test(test_free_in_flight_cancels),
	};
	return cmocka_run_group_tests_name("iprev-eval", tests, NULL, NULL);
}
