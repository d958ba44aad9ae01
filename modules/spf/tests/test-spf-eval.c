/*
 * modules/spf/tests/test-spf-eval.c — the check_host() state machine
 * (modules/spf/eval.c) on a scripted resolver.
 *
 * What the YAML suites do not show: an include loop stops at the DNS term
 * limit with few queries, the configured limits are honoured, freeing an
 * evaluation with a lookup in flight cancels it, the DNSSEC status of the
 * answers is summed up, a resolver that cannot start a lookup gives
 * temperror, a bad client address a permerror at once, an IPv4-mapped
 * client is checked as IPv4, and the null sender is postmaster@HELO.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <tessera/common.h>

#include "modules/spf/spf.h"

/* The scripted zone: TXT records by name; everything else NXDOMAIN. */
struct fake_rr {
	const char *name;
	enum ts_dns_type type;
	const char *data;
};

struct fake {
	const struct fake_rr *rrs;
	enum ts_dns_security security;
	bool refuse; /* lookup returns NULL */
	unsigned queries, cancels;
	/* one pending query at a time (the evaluator never has more) */
	bool pending;
	char name[300];
	enum ts_dns_type type;
	ts_dns_fn fn;
	void *arg;
};

static void *
fake_lookup(void *ctx, const char *name, enum ts_dns_type type, ts_dns_fn fn,
	    void *arg)
{
	struct fake *f = ctx;

	if (f->refuse)
		return NULL;
	assert_false(f->pending);
	f->queries++;
	f->pending = true;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	f->fn = fn;
	f->arg = arg;
	return f;
}

static void
fake_cancel(void *ctx, void *query)
{
	struct fake *f = ctx;

	assert_ptr_equal(query, f);
	assert_true(f->pending);
	f->pending = false;
	f->cancels++;
}

/* Deliver the pending answer; false when nothing was pending. */
static bool
fake_step(struct fake *f)
{
	struct ts_dns_record recs[8];
	struct ts_dns_answer a = { .name = f->name,
				   .type = f->type,
				   .security = f->security,
				   .records = recs };

	if (!f->pending)
		return false;
	f->pending = false;
	for (const struct fake_rr *r = f->rrs; r != NULL && r->name != NULL;
	     r++) {
		if (strcasecmp(r->name, f->name) != 0 || r->type != f->type)
			continue;
		if (f->type == TS_DNS_TXT) {
			recs[a.count].u.txt.text = r->data;
			recs[a.count].u.txt.len = strlen(r->data);
		} else {
			snprintf(recs[a.count].u.addr, sizeof(recs[0].u.addr),
				 "%s", r->data);
		}
		a.count++;
	}
	a.status = a.count > 0 ? TS_DNS_OK : TS_DNS_NXDOMAIN;
	f->fn(&a, f->arg);
	return true;
}

struct outcome {
	int calls;
	enum spf_result result;
	bool secure, bogus;
	char sender[100];
};

static void
on_done(const struct spf_outcome *o, void *arg)
{
	struct outcome *out = arg;

	out->calls++;
	out->result = o->result;
	out->secure = o->all_secure;
	out->bogus = o->any_bogus;
	snprintf(out->sender, sizeof(out->sender), "%s", o->sender);
}

static struct outcome
run(struct fake *f, const char *ip, const char *sender, unsigned max_dns)
{
	struct spf_resolver r = { fake_lookup, fake_cancel, f };
	struct spf_request req = {
		.ip = ip,
		.sender = sender,
		.helo = "helo.example.net",
		.max_dns_mechanisms = max_dns,
		.max_void_lookups = 2,
	};
	struct outcome out = { 0 };
	struct spf_eval *ev = spf_eval_new(&r, &req, on_done, &out);

	spf_eval_run(ev);
	while (fake_step(f))
		;
	spf_eval_free(&ev);
	assert_int_equal(out.calls, 1);
	return out;
}

static const struct fake_rr loop[] = {
	{ "a.example.com", TS_DNS_TXT, "v=spf1 include:b.example.com -all" },
	{ "b.example.com", TS_DNS_TXT, "v=spf1 include:a.example.com -all" },
	{ NULL },
};

static void
test_include_loop(void **state)
{
	struct fake f = { .rrs = loop };
	struct outcome o = run(&f, "192.0.2.1", "x@a.example.com", 10);

	assert_int_equal(o.result, SPF_PERMERROR);
	/* the TXT of the domain and of each of the 10 includes */
	assert_int_equal(f.queries, 11);
	f.queries = 0;
	o = run(&f, "192.0.2.1", "x@a.example.com", 3);
	assert_int_equal(o.result, SPF_PERMERROR);
	assert_int_equal(f.queries, 4);
}

static const struct fake_rr simple[] = {
	{ "pass.example.com", TS_DNS_TXT, "v=spf1 a:h.example.com -all" },
	{ "h.example.com", TS_DNS_A, "192.0.2.7" },
	{ "helo.example.net", TS_DNS_TXT, "v=spf1 ip4:192.0.2.0/24 -all" },
	{ NULL },
};

static void
test_pass_and_dnssec(void **state)
{
	struct fake f = { .rrs = simple, .security = TS_DNS_SECURE };
	struct outcome o = run(&f, "192.0.2.7", "x@pass.example.com", 10);

	assert_int_equal(o.result, SPF_PASS);
	assert_true(o.secure);
	assert_false(o.bogus);
	f.security = TS_DNS_BOGUS;
	o = run(&f, "192.0.2.8", "x@pass.example.com", 10);
	assert_int_equal(o.result, SPF_FAIL);
	assert_false(o.secure);
	assert_true(o.bogus);
	f.security = TS_DNS_INSECURE;
	o = run(&f, "::ffff:192.0.2.7", "x@pass.example.com", 10);
	assert_int_equal(o.result, SPF_PASS);
	assert_false(o.secure);
}

static void
test_null_sender(void **state)
{
	struct fake f = { .rrs = simple };
	struct outcome o = run(&f, "192.0.2.99", "", 10);

	assert_int_equal(o.result, SPF_PASS);
	assert_string_equal(o.sender, "postmaster@helo.example.net");
	o = run(&f, "192.0.2.99", "@helo.example.net", 10);
	assert_string_equal(o.sender, "postmaster@helo.example.net");
}

static void
test_cancel_on_free(void **state)
{
	struct fake f = { .rrs = simple };
	struct spf_resolver r = { fake_lookup, fake_cancel, &f };
	struct spf_request req = {
		.ip = "192.0.2.7",
		.sender = "x@pass.example.com",
		.max_dns_mechanisms = 10,
		.max_void_lookups = 2,
	};
	struct outcome out = { 0 };
	struct spf_eval *ev = spf_eval_new(&r, &req, on_done, &out);

	spf_eval_run(ev);
	assert_true(fake_step(&f)); /* the TXT; the A is now in flight */
	assert_true(f.pending);
	spf_eval_free(&ev);
	assert_null(ev);
	assert_int_equal(f.cancels, 1);
	assert_int_equal(out.calls, 0);
}

static void
test_refused_and_bad_ip(void **state)
{
	struct fake f = { .rrs = simple, .refuse = true };
	struct outcome o = run(&f, "192.0.2.7", "x@pass.example.com", 10);

	assert_int_equal(o.result, SPF_TEMPERROR);
	f.refuse = false;
	o = run(&f, "not-an-ip", "x@pass.example.com", 10);
	assert_int_equal(o.result, SPF_PERMERROR);
	assert_int_equal(f.queries, 0);
	/* 4.3: a malformed or single-label domain is "none", no query */
	o = run(&f, "192.0.2.7", "x@localhost", 10);
	assert_int_equal(o.result, SPF_NONE);
	o = run(&f, "192.0.2.7", "x@a..example.com", 10);
	assert_int_equal(o.result, SPF_NONE);
	assert_int_equal(f.queries, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_include_loop),
		cmocka_unit_test(test_pass_and_dnssec),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_cancel_on_free),
		cmocka_unit_test(test_refused_and_bad_ip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
