/*
 * tests/unit/test-accounts.c — domains, accounts and the address lookup
 * (kernel/store/accounts.c).
 *
 * Configurations are parsed from strings and bound to the kernel's key
 * tables, as boot does.  The lookup table test is issue 4's acceptance 1:
 * exact, case-insensitive and case-sensitive localparts, '+' and '-'
 * subaddresses, the catchall only when nothing else matches, postmaster
 * at every domain and at [core] hostname, IDNA, unknown and malformed
 * addresses.  The check test asserts every error's exact file:line text.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/boot.h"
#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"

/* Parse `text` as file "d.ini" and bind its sections like boot does. */
static struct ts_cfg *
parse(const char *text)
{
	struct ts_cfg *cfg = ts__cfg_parse_string("d.ini", text);

	for (size_t i = 0; i < cfg->sect_count; i++) {
		struct ts_cfg_sect *s = cfg->sects[i];
		const struct ts_cfg_key *tables[1];
		if (strcmp(s->type, "core") == 0)
			tables[0] = ts__core_keys;
		else if (strcmp(s->type, "domain") == 0)
			tables[0] = ts__domain_keys;
		else
			tables[0] = ts__account_keys;
		ts__cfg_bind(cfg, s, tables, 1);
	}
	return cfg;
}

/* Assert the recorded errors are exactly the NULL-terminated list. */
static void
expect_errors(const struct ts_cfg *cfg, ...)
{
	va_list ap;
	size_t n = 0;
	bool same = true;

	va_start(ap, cfg);
	for (const char *want; (want = va_arg(ap, const char *)) != NULL; n++)
		if (n >= cfg->error_count || strcmp(cfg->errors[n], want) != 0)
			same = false;
	va_end(ap);
	if (!same || n != cfg->error_count) {
		for (size_t i = 0; i < cfg->error_count; i++)
			print_message("got: %s\n", cfg->errors[i]);
		fail_msg("expected %zu errors, got %zu (or different text)", n,
			 cfg->error_count);
	}
}

/* A kernel with just enough in it for the lookup functions. */
struct fixture {
	struct ts_kernel k;
	struct ts_cfg *cfg;
};

static void
fixture_load(struct fixture *f, const char *text)
{
	memset(f, 0, sizeof(*f));
	f->k.kctx.kernel = &f->k;
	f->k.kctx.name = "kernel";
	f->cfg = parse(text);
	expect_errors(f->cfg, NULL);
	assert_int_equal(ts__accounts_check(f->cfg), 0);
	assert_int_equal(ts__accounts_apply(&f->k, f->cfg), 0);
}

static void
fixture_free(struct fixture *f)
{
	ts__accounts_free(&f->k);
	assert_null(f->k.accounts);
	ts__cfg_free(&f->cfg);
}

static const char lookup_config[] =
	"[core]\n"
	"hostname = MX.Example.NET.\n"
	"[domain example.org]\n"
	"localpart_separator = +\n"
	"[domain example.com]\n"
	"localpart_case_sensitive = yes\n"
	"localpart_separator = -\n"
	"[domain xn--bcher-kva.example]\n"
	"[account alice]\n"
	"addresses = alice@example.org, Alice.Smith@Example.ORG\n"
	"  \"quoted.one\"@example.org\n"
	"[account bob]\n"
	"addresses = Bob@example.com bob@bücher.example\n"
	"postmaster = yes\n"
	"destination = Lists/bob\n"
	"[account carol]\n"
	"addresses = @example.org postmaster@example.com\n";

/* Look `address` up and compare every field of the match. */
static void
expect_match(struct fixture *f, const char *address, const char *account,
	     const char *mailbox, const char *canonical,
	     enum ts_address_kind kind)
{
	struct ts_address_match m;
	int rc = ts_address_lookup(&f->k.kctx, address, &m);

	if (rc != 0)
		fail_msg("%s: %s", address, ts_strerror(rc));
	assert_string_equal(m.account, account);
	assert_string_equal(m.mailbox, mailbox);
	assert_string_equal(m.canonical, canonical);
	if (m.kind != kind)
		fail_msg("%s: kind %d, expected %d", address, (int)m.kind,
			 (int)kind);
}

static void
expect_lookup_error(struct fixture *f, const char *address, int want)
{
	struct ts_address_match m = { .account = "untouched" };
	int rc = ts_address_lookup(&f->k.kctx, address, &m);

	if (rc != want)
		fail_msg("%s: got %s, expected %s", address, ts_strerror(rc),
			 ts_strerror(want));
}

/* Acceptance 1: the address lookup table. */
static void
test_lookup_table(void **state)
{
	struct fixture f;
	fixture_load(&f, lookup_config);

	/* Exact, and case-insensitive in both halves. */
	expect_match(&f, "alice@example.org", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_EXACT);
	expect_match(&f, "ALICE@EXAMPLE.ORG", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_EXACT);
	expect_match(&f, "alice.smith@example.org.", "alice", "Inbox",
		     "alice.smith@example.org", TS_ADDRESS_EXACT);
	/* Quoted localparts compare without their quotes. */
	expect_match(&f, "quoted.one@example.org", "alice", "Inbox",
		     "quoted.one@example.org", TS_ADDRESS_EXACT);
	expect_match(&f, "\"alice\"@example.org", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_EXACT);

	/* '+' subaddresses; '-' is not example.org's separator. */
	expect_match(&f, "alice+lists@example.org", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_SUBADDRESS);
	expect_match(&f, "Alice+a+b@Example.org", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_SUBADDRESS);
	expect_match(&f, "alice+@example.org", "alice", "Inbox",
		     "alice@example.org", TS_ADDRESS_SUBADDRESS);

	/* The catchall only when nothing else matches. */
	expect_match(&f, "alice-lists@example.org", "carol", "Inbox",
		     "@example.org", TS_ADDRESS_CATCHALL);
	expect_match(&f, "nobody@example.org", "carol", "Inbox", "@example.org",
		     TS_ADDRESS_CATCHALL);
	expect_match(&f, "+alice@example.org", "carol", "Inbox", "@example.org",
		     TS_ADDRESS_CATCHALL);
	expect_match(&f, "\"a b\"@example.org", "carol", "Inbox",
		     "@example.org", TS_ADDRESS_CATCHALL);

	/* A case-sensitive domain with '-' as its separator. */
	expect_match(&f, "Bob@EXAMPLE.COM", "bob", "Lists/bob",
		     "Bob@example.com", TS_ADDRESS_EXACT);
	expect_match(&f, "Bob-news@example.com", "bob", "Lists/bob",
		     "Bob@example.com", TS_ADDRESS_SUBADDRESS);
	expect_lookup_error(&f, "bob@example.com", TS_E_NOTFOUND);
	expect_lookup_error(&f, "BOB@example.com", TS_E_NOTFOUND);
	expect_lookup_error(&f, "Bob+news@example.com", TS_E_NOTFOUND);

	/* IDNA: U-label and A-label are the same domain. */
	expect_match(&f, "bob@bücher.example", "bob", "Lists/bob",
		     "bob@xn--bcher-kva.example", TS_ADDRESS_EXACT);
	expect_match(&f, "BOB@BÜCHER.example", "bob", "Lists/bob",
		     "bob@xn--bcher-kva.example", TS_ADDRESS_EXACT);
	expect_match(&f, "bob@XN--BCHER-KVA.example", "bob", "Lists/bob",
		     "bob@xn--bcher-kva.example", TS_ADDRESS_EXACT);

	/* Postmaster at every local domain and at the host name. */
	expect_match(&f, "postmaster@example.org", "bob", "Lists/bob",
		     "postmaster@example.org", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "PostMaster@Example.ORG", "bob", "Lists/bob",
		     "postmaster@example.org", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "postmaster+x@example.org", "bob", "Lists/bob",
		     "postmaster@example.org", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "postmaster@bücher.example", "bob", "Lists/bob",
		     "postmaster@xn--bcher-kva.example", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "POSTMASTER@mx.example.net", "bob", "Lists/bob",
		     "postmaster@mx.example.net", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "postmaster@MX.EXAMPLE.NET.", "bob", "Lists/bob",
		     "postmaster@mx.example.net", TS_ADDRESS_POSTMASTER);
	/* A configured postmaster@ address is exact and wins ... */
	expect_match(&f, "postmaster@example.com", "carol", "Inbox",
		     "postmaster@example.com", TS_ADDRESS_EXACT);
	/* ... but only as written in a case-sensitive domain. */
	expect_match(&f, "Postmaster@example.com", "bob", "Lists/bob",
		     "postmaster@example.com", TS_ADDRESS_POSTMASTER);

	/* Unknown addresses and domains. */
	expect_lookup_error(&f, "alice@example.net", TS_E_NOTFOUND);
	expect_lookup_error(&f, "alice@mx.example.net", TS_E_NOTFOUND);
	expect_lookup_error(&f, "nobody@bücher.example", TS_E_NOTFOUND);
	expect_lookup_error(&f, "postmaster@[192.0.2.1]", TS_E_NOTFOUND);

	/* Malformed. */
	static const char *const bad[] = {
		"",
		"alice",
		"@example.org",
		"alice@",
		"alice@.",
		"alice@@example.org",
		"a b@example.org",
		"a,b@example.org",
		"<alice@example.org>",
		"\"alice@example.org",
		"\"ali\"ce\"@example.org",
		"\"\"@example.org",
		"alice@exa_mple.org",
		"alice@-example.org",
		"alice@example..org",
		"alice@ex ample.org",
		"al\x01ice@example.org",
		"al\xc3ice@example.org",
		"alice@b\xfc"
		"cher.example",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_lookup_error(&f, bad[i], TS_E_INVAL);
	expect_lookup_error(&f, NULL, TS_E_INVAL);

	/* Local domains, and accounts in configuration order. */
	const struct ts_ctx *ctx = &f.k.kctx;
	assert_true(ts_domain_is_local(ctx, "example.org"));
	assert_true(ts_domain_is_local(ctx, "EXAMPLE.COM."));
	assert_true(ts_domain_is_local(ctx, "Bücher.example"));
	assert_true(ts_domain_is_local(ctx, "mx.example.net"));
	assert_false(ts_domain_is_local(ctx, "example.net"));
	assert_false(ts_domain_is_local(ctx, "sub.example.org"));
	assert_false(ts_domain_is_local(ctx, ""));
	assert_false(ts_domain_is_local(ctx, "[192.0.2.1]"));
	assert_string_equal(ts_account_name(ctx, 0), "alice");
	assert_string_equal(ts_account_name(ctx, 1), "bob");
	assert_string_equal(ts_account_name(ctx, 2), "carol");
	assert_null(ts_account_name(ctx, 3));
	assert_true(ts__account_exists(&f.k, "carol"));
	assert_true(ts__account_exists(&f.k, "alice"));
	assert_false(ts__account_exists(&f.k, "Carol"));
	assert_false(ts__account_exists(&f.k, "dave"));
	assert_true(ts__account_is_postmaster(&f.k, "bob"));
	assert_false(ts__account_is_postmaster(&f.k, "alice"));
	fixture_free(&f);
}

/* Without postmaster = yes the first account is the postmaster. */
static void
test_default_postmaster(void **state)
{
	struct fixture f;
	fixture_load(&f, "[core]\nhostname = host.test\n"
			 "[domain a.test]\n"
			 "[account zed]\naddresses = z@a.test\n"
			 "[account amy]\naddresses = amy@a.test\n");
	expect_match(&f, "postmaster@a.test", "zed", "Inbox",
		     "postmaster@a.test", TS_ADDRESS_POSTMASTER);
	expect_match(&f, "postmaster@host.test", "zed", "Inbox",
		     "postmaster@host.test", TS_ADDRESS_POSTMASTER);
	expect_lookup_error(&f, "other@a.test", TS_E_NOTFOUND);
	assert_true(ts__account_exists(&f.k, "amy"));
	assert_true(ts__account_exists(&f.k, "zed"));
	fixture_free(&f);
}

/* No accounts: nothing is found, not even postmaster. */
static void
test_empty(void **state)
{
	struct fixture f;
	fixture_load(&f, "[core]\nhostname = host.test\n[domain a.test]\n");
	expect_lookup_error(&f, "postmaster@a.test", TS_E_NOTFOUND);
	expect_lookup_error(&f, "postmaster@host.test", TS_E_NOTFOUND);
	expect_lookup_error(&f, "bad", TS_E_INVAL);
	assert_true(ts_domain_is_local(&f.k.kctx, "a.test"));
	assert_false(ts_domain_is_local(&f.k.kctx, "host.test"));
	assert_null(ts_account_name(&f.k.kctx, 0));
	assert_false(ts__account_exists(&f.k, "a"));
	fixture_free(&f);

	/* Before any apply the kernel has no tables at all. */
	struct ts_kernel k;
	memset(&k, 0, sizeof(k));
	k.kctx.kernel = &k;
	struct ts_address_match m;
	assert_int_equal(ts_address_lookup(&k.kctx, "a@a.test", &m),
			 TS_E_NOTFOUND);
	assert_false(ts_domain_is_local(&k.kctx, "a.test"));
	assert_null(ts_account_name(&k.kctx, 0));
}

/* A reload replaces the tables. */
static void
test_reapply(void **state)
{
	struct fixture f;
	fixture_load(&f, lookup_config);
	struct ts_cfg *next = parse("[core]\nhostname = h.test\n"
				    "[domain b.test]\n"
				    "[account dave]\naddresses = d@b.test\n");
	assert_int_equal(ts__accounts_check(next), 0);
	assert_int_equal(ts__accounts_apply(&f.k, next), 0);
	expect_lookup_error(&f, "alice@example.org", TS_E_NOTFOUND);
	expect_match(&f, "D@B.test", "dave", "Inbox", "d@b.test",
		     TS_ADDRESS_EXACT);
	assert_string_equal(ts_account_name(&f.k.kctx, 0), "dave");
	ts__cfg_free(&next);
	fixture_free(&f);
}

/* Every configuration error, with its exact file:line text. */
static void
test_check_errors(void **state)
{
	/* clang-format off */
	struct ts_cfg *cfg = parse(
		/* 1 */ "[core]\n"
		/* 2 */ "hostname = mx.example.net\n"
		/* 3 */ "[domain example.org]\n"
		/* 4 */ "localpart_separator = ++\n"
		/* 5 */ "[domain example.net]\n"
		/* 6 */ "localpart_separator = x\n"
		/* 7 */ "[domain Example.ORG]\n"
		/* 8 */ "[domain bad_name.test]\n"
		/* 9 */ "[account alice]\n"
		/* 10 */ "addresses = alice@example.org alice@nowhere.test\n"
		/* 11 */ "  @example.org alice a@b@example.org\n"
		/* 12 */ "postmaster = yes\n"
		/* 13 */ "[account bob]\n"
		/* 14 */ "addresses = ALICE@example.org @example.org\n"
		/* 15 */ "  bob@example.org bob@example.org @Example.Net\n"
		/* 16 */ "  @example.net @nowhere.test\n"
		/* 17 */ "postmaster = yes\n"
		/* 18 */ "[account .hidden]\n"
		/* 19 */ "addresses = hidden@example.org\n"
		/* 20 */ "[account Carol]\n"
		/* 21 */ "[account dave]\n"
		/* 22 */ "destination = a//b\n");
	/* clang-format on */
	expect_errors(cfg, NULL);
	assert_int_equal(ts__accounts_check(cfg), TS_E_INVAL);

	char *dest = ts_xasprintf("d.ini:22: destination 'a//b': %s",
				  ts__store_mailbox_name_problem("a//b"));
	expect_errors(
		cfg,
		"d.ini:4: localpart_separator '++' is longer than one "
		"character",
		"d.ini:6: localpart_separator 'x' must be a punctuation "
		"character such as '+' or '-'",
		"d.ini:7: domain example.org is configured twice: "
		"[domain Example.ORG] and [domain example.org] (d.ini:3)",
		"d.ini:8: [domain bad_name.test]: not a valid domain name",
		"d.ini:10: address alice@nowhere.test: domain nowhere.test is "
		"not configured ([domain nowhere.test])",
		"d.ini:10: address 'alice': expected localpart@domain, or "
		"@domain for the domain's catchall",
		"d.ini:10: address 'a@b@example.org': expected "
		"localpart@domain, or @domain for the domain's catchall",
		"d.ini:17: [account bob] and [account alice] (d.ini:12) both "
		"say postmaster = yes; only one can",
		"d.ini:14: catchall @example.org is in [account alice] and "
		"[account bob]",
		"d.ini:14: catchall @example.net is listed twice in "
		"[account bob]",
		"d.ini:14: address @nowhere.test: domain nowhere.test is not "
		"configured ([domain nowhere.test])",
		"d.ini:18: account name '.hidden': use a-z, 0-9, '.', '_' and "
		"'-' (at most 64, not starting with '.')",
		"d.ini:20: account name 'Carol': use a-z, 0-9, '.', '_' and "
		"'-' (at most 64, not starting with '.')",
		dest,
		"d.ini:14: address alice@example.org is in [account alice] "
		"and [account bob]",
		"d.ini:14: address bob@example.org is listed twice in "
		"[account bob]",
		NULL);
	free(dest);

	/* Applying the same bad configuration keeps only good entries. */
	struct ts_kernel k;
	memset(&k, 0, sizeof(k));
	k.kctx.kernel = &k;
	assert_int_equal(ts__accounts_apply(&k, cfg), 0);
	struct ts_address_match m;
	assert_int_equal(ts_address_lookup(&k.kctx, "alice@example.org", &m),
			 0);
	assert_string_equal(m.account, "alice");
	assert_int_equal(ts_address_lookup(&k.kctx, "x@example.org", &m), 0);
	assert_string_equal(m.account, "alice"); /* the first catchall */
	assert_int_equal(ts_address_lookup(&k.kctx, "hidden@example.org", &m),
			 0);
	assert_int_equal(m.kind, TS_ADDRESS_CATCHALL);
	assert_int_equal(
		ts_address_lookup(&k.kctx, "postmaster@example.net", &m), 0);
	assert_string_equal(m.account, "alice");
	assert_null(ts_account_name(&k.kctx, 3));
	assert_string_equal(ts_account_name(&k.kctx, 2), "dave");
	ts__accounts_free(&k);
	ts__cfg_free(&cfg);
}

/* A good configuration reports nothing. */
static void
test_check_clean(void **state)
{
	struct ts_cfg *cfg = parse(lookup_config);
	assert_int_equal(ts__accounts_check(cfg), 0);
	expect_errors(cfg, NULL);
	ts__cfg_free(&cfg);
}

/* Many addresses: every one is found (and the tables are sorted). */
static void
test_many(void **state)
{
	size_t n = 5000, cap = 64 * n + 256, len = 0;
	char *text = ts_xmalloc(cap);

	len += (size_t)snprintf(text + len, cap - len,
				"[core]\nhostname = h.test\n"
				"[domain a.test]\nlocalpart_separator = +\n"
				"[domain b.test]\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"[account u%zu]\naddresses = "
					"u%zu@a.test x%zu@b.test\n",
					i, i, n - i);
	struct fixture f;
	fixture_load(&f, text);
	free(text);
	for (size_t i = 0; i < n; i += 7) {
		char addr[64], want[32];
		snprintf(addr, sizeof(addr), "U%zu+tag@A.test", i);
		snprintf(want, sizeof(want), "u%zu", i);
		struct ts_address_match m;
		assert_int_equal(ts_address_lookup(&f.k.kctx, addr, &m), 0);
		assert_string_equal(m.account, want);
		snprintf(addr, sizeof(addr), "x%zu@b.test", n - i);
		assert_int_equal(ts_address_lookup(&f.k.kctx, addr, &m), 0);
		assert_string_equal(m.account, want);
		assert_true(ts__account_exists(&f.k, want));
	}
	fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_table),
		cmocka_unit_test(test_default_postmaster),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_reapply),
		cmocka_unit_test(test_check_errors),
		cmocka_unit_test(test_check_clean),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
