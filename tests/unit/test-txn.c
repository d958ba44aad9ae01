/*
 * tests/unit/test-txn.c — the transaction object and the
 * Authentication-Results header composed from its results.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/kernel.h"

static void
test_envelope_and_recipients(void **state)
{
	(void)state;
	struct ts_txn *txn = ts_txn_new(NULL, "1x2");
	assert_string_equal(ts_txn_id(txn), "1x2");
	assert_null(ts_txn_mail(txn));
	assert_null(ts_txn_helo(txn));
	ts_txn_set_helo(txn, "client.example");
	ts_txn_set_account(txn, "alice");
	char envid[] = "E1";
	struct ts_txn_mail m = { .address = "a@b.example",
				 .localpart = "a",
				 .domain = "b.example",
				 .requiretls = true,
				 .ret = TS_DSN_RET_HDRS,
				 .envid = envid };
	ts_txn_set_mail(txn, &m);
	envid[0] = 'X'; /* copied, not kept */
	const struct ts_txn_mail *got = ts_txn_mail(txn);
	assert_non_null(got);
	assert_string_equal(got->address, "a@b.example");
	assert_string_equal(got->envid, "E1");
	assert_true(got->requiretls);
	assert_int_equal(got->ret, TS_DSN_RET_HDRS);

	struct ts_txn_rcpt r = { .address = "x@y", .localpart = "x",
				 .domain = "y",
				 .notify = TS_DSN_NOTIFY_FAILURE,
				 .orcpt_type = "rfc822", .orcpt = "x@y",
				 .account = "bob", .mailbox = "Inbox" };
	assert_int_equal(ts_txn_add_rcpt(txn, &r), 0);
	r.address = "z@y";
	assert_int_equal(ts_txn_add_rcpt(txn, &r), 1);
	assert_int_equal(ts_txn_rcpt_count(txn), 2);
	ts_txn_drop_last_rcpt(txn);
	assert_int_equal(ts_txn_rcpt_count(txn), 1);
	assert_null(ts_txn_rcpt(txn, 1));
	ts_txn_set_rcpt_mailbox(txn, 0, "Junk");
	ts_txn_set_rcpt_mailbox(txn, 7, "Ignored");
	assert_string_equal(ts_txn_rcpt(txn, 0)->mailbox, "Junk");
	assert_string_equal(ts_txn_rcpt(txn, 0)->orcpt, "x@y");
	assert_int_equal(ts_txn_rcpt(txn, 0)->notify, TS_DSN_NOTIFY_FAILURE);

	ts_txn_add_header(txn, "X-A: 1");
	ts_txn_add_header(txn, "X-B: 2");
	assert_int_equal(ts_txn_header_count(txn), 2);
	assert_string_equal(ts_txn_header(txn, 1), "X-B: 2");
	assert_null(ts_txn_header(txn, 2));
	ts_txn_set_message(txn, "/spool/1", 42);
	assert_string_equal(ts_txn_message_path(txn), "/spool/1");
	assert_int_equal(ts_txn_message_size(txn), 42);
	ts_txn_free(&txn);
	assert_null(txn);
	ts_txn_free(&txn); /* NULL is fine */
}

static int destroyed;

static void
count_destroy(void *data)
{
	destroyed += *(int *)data;
	free(data);
}

static void
test_module_data(void **state)
{
	(void)state;
	/* Any two distinct addresses serve as module identities here. */
	static int a_id, b_id;
	const struct ts_ctx *a = (const void *)&a_id, *b = (const void *)&b_id;
	struct ts_txn *txn = ts_txn_new(NULL, "t");
	assert_null(ts_txn_data(txn, a));
	int *one = ts_xmalloc(sizeof(int)), *ten = ts_xmalloc(sizeof(int));
	*one = 1;
	*ten = 10;
	destroyed = 0;
	ts_txn_set_data(txn, a, one, count_destroy);
	ts_txn_set_data(txn, b, ten, count_destroy);
	assert_ptr_equal(ts_txn_data(txn, a), one);
	int *hundred = ts_xmalloc(sizeof(int));
	*hundred = 100;
	ts_txn_set_data(txn, a, hundred, count_destroy); /* frees `one` */
	assert_int_equal(destroyed, 1);
	ts_txn_free(&txn);
	assert_int_equal(destroyed, 111);
}

static void
test_auth_results_header(void **state)
{
	(void)state;
	struct ts_txn *txn = ts_txn_new(NULL, "t");
	char *h = ts_txn_auth_results_header(txn, "mx.example.org");
	assert_string_equal(h, "Authentication-Results: mx.example.org; none");
	free(h);

	struct ts_auth_result spf = {
		.method = "spf", .result = "pass",
		.props = { { "smtp.mailfrom", "user@example.com" } },
		.prop_count = 1,
	};
	assert_int_equal(ts_txn_add_auth_result(txn, &spf), 0);
	struct ts_auth_result dkim = {
		.method = "dkim", .result = "fail",
		.reason = "signature did not verify",
		.comment = "1024-bit key (weak)",
		.props = { { "header.d", "example.com" },
			   { "header.s", "sel" },
			   { "header.b", "abc/def+=" } },
		.prop_count = 3,
	};
	assert_int_equal(ts_txn_add_auth_result(txn, &dkim), 0);
	struct ts_auth_result iprev = {
		.method = "iprev", .result = "pass",
		.props = { { "policy.iprev", "192.0.2.1" } },
		.prop_count = 1,
	};
	assert_int_equal(ts_txn_add_auth_result(txn, &iprev), 0);
	struct ts_auth_result odd = {
		.method = "x", .result = "none",
		.props = { { "smtp.mailfrom", "\"a b\"@example.com" } },
		.prop_count = 1,
	};
	assert_int_equal(ts_txn_add_auth_result(txn, &odd), 0);
	assert_int_equal(ts_txn_auth_result_count(txn), 4);
	assert_string_equal(ts_txn_auth_result(txn, 1)->reason,
			    "signature did not verify");
	h = ts_txn_auth_results_header(txn, "mx.example.org");
	assert_string_equal(
		h, "Authentication-Results: mx.example.org;\r\n"
		   "\tspf=pass smtp.mailfrom=user@example.com;\r\n"
		   "\tdkim=fail (1024-bit key \\(weak\\)) "
		   "reason=\"signature did not verify\" "
		   "header.d=example.com header.s=sel "
		   "header.b=\"abc/def+=\";\r\n"
		   "\tiprev=pass policy.iprev=192.0.2.1;\r\n"
		   "\tx=none smtp.mailfrom=\"\\\"a b\\\"@example.com\"");
	free(h);
	ts_txn_free(&txn);
}

static void
test_auth_results_refused(void **state)
{
	(void)state;
	struct ts_txn *txn = ts_txn_new(NULL, "t");
	static const struct ts_auth_result bad[] = {
		{ .method = "", .result = "pass" },
		{ .method = "spf", .result = NULL },
		{ .method = "sp f", .result = "pass" },
		{ .method = "spf", .result = "pa;ss" },
		{ .method = "spf", .result = "pass", .reason = "a\r\nX: y" },
		{ .method = "spf", .result = "pass", .comment = "a\nb" },
		{ .method = "spf", .result = "pass",
		  .props = { { "mailfrom", "x" } }, .prop_count = 1 },
		{ .method = "spf", .result = "pass",
		  .props = { { "smtp.mail.from", "x" } }, .prop_count = 1 },
		{ .method = "spf", .result = "pass",
		  .props = { { ".x", "x" } }, .prop_count = 1 },
		{ .method = "spf", .result = "pass",
		  .props = { { "smtp.mailfrom", NULL } }, .prop_count = 1 },
		{ .method = "spf", .result = "pass",
		  .props = { { "smtp.mailfrom", "a\r\nb" } }, .prop_count = 1 },
		{ .method = "spf", .result = "pass",
		  .prop_count = TS_AUTH_PROP_MAX + 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ts_txn_add_auth_result(txn, &bad[i]) != TS_E_INVAL)
			fail_msg("bad result %zu accepted", i);
	assert_int_equal(ts_txn_auth_result_count(txn), 0);
	ts_txn_free(&txn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_and_recipients),
		cmocka_unit_test(test_module_data),
		cmocka_unit_test(test_auth_results_header),
		cmocka_unit_test(test_auth_results_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
