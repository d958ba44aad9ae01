/*
 * tests/unit/test-outgoing.c — an account's sending history
 * (kernel/store/outgoing.c), the counters behind the outgoing limits:
 * messages and first-time recipients in the 24 hours before a given
 * time (so "the next day" is a later `now`, not a wait), addresses
 * compared case-insensitively and counted once, an unknown account.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel/boot.h"
#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"

struct world {
	struct ts_kernel k;
	uv_loop_t loop;
	char dir[64];
	char *logbuf;
	size_t logsize;
};

static int
setup(void **state)
{
	struct world *w = ts_xcalloc(1, sizeof(*w));
	strcpy(w->dir, "/tmp/ts-outgoing-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	uv_loop_init(&w->loop);
	ts__kernel_init(&w->k, &w->loop);
	w->k.log.out = open_memstream(&w->logbuf, &w->logsize);
	char *text = ts_xasprintf("[core]\ndata_dir = %s\n"
				  "[domain example.org]\n"
				  "[account alice]\n"
				  "addresses = alice@example.org\n",
				  w->dir);
	w->k.cfg = ts__cfg_parse_string("t.ini", text);
	free(text);
	for (size_t i = 0; i < w->k.cfg->sect_count; i++) {
		struct ts_cfg_sect *s = w->k.cfg->sects[i];
		const struct ts_cfg_key *t[1] = {
			strcmp(s->type, "core") == 0	 ? ts__core_keys
			: strcmp(s->type, "domain") == 0 ? ts__domain_keys
							 : ts__account_keys
		};
		ts__cfg_bind(w->k.cfg, s, t, 1);
	}
	assert_int_equal(w->k.cfg->error_count, 0);
	assert_int_equal(ts__accounts_check(w->k.cfg), 0);
	assert_int_equal(ts__accounts_apply(&w->k, w->k.cfg), 0);
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	struct world *w = *state;
	FILE *log = w->k.log.out;
	uv_run(&w->loop, UV_RUN_DEFAULT);
	ts__stores_free(&w->k);
	ts__kernel_fini(&w->k);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	fclose(log);
	free(w->logbuf);
	char *cmd = ts_xasprintf("rm -rf '%s'", w->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(w);
	return 0;
}

struct answer {
	int calls;
	int status;
	struct ts_store_outgoing out;
};

static void
on_query(int status, const char *error, const struct ts_store_outgoing *out,
	 void *arg)
{
	(void)error;
	struct answer *a = arg;
	a->calls++;
	a->status = status;
	a->out = *out;
}

static void
on_done(int status, const char *error, void *arg)
{
	(void)error;
	struct answer *a = arg;
	a->calls++;
	a->status = status;
}

static struct ts_store_outgoing
query(struct world *w, const char *const *addrs, size_t n, int64_t now)
{
	struct answer a = { 0 };
	assert_int_equal(ts_store_outgoing_query(&w->k.kctx, "alice", addrs, n,
						 now, on_query, &a),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 0);
	return a.out;
}

static void
record(struct world *w, const char *const *addrs, size_t n, int64_t now)
{
	struct answer a = { 0 };
	assert_int_equal(ts_store_outgoing_record(&w->k.kctx, "alice", addrs, n,
						  now, on_done, &a),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 0);
}

static void
test_history(void **state)
{
	struct world *w = *state;
	const int64_t t0 = 1800000000;
	static const char *const ab[] = { "a@x.example", "b@x.example",
					  "A@X.example" };
	static const char *const c[] = { "c@x.example", "a@X.EXAMPLE" };

	struct ts_store_outgoing o = query(w, ab, 3, t0);
	assert_int_equal(o.messages, 0);
	assert_int_equal(o.new_recipients, 0);
	assert_int_equal(o.unknown, 2); /* a counted once */
	assert_true(o.first_unknown);

	record(w, ab, 3, t0);
	o = query(w, c, 2, t0 + 10);
	assert_int_equal(o.messages, 1);
	assert_int_equal(o.new_recipients, 2);
	assert_int_equal(o.unknown, 1);
	assert_true(o.first_unknown);
	o = query(w, c + 1, 1, t0 + 10);
	assert_int_equal(o.unknown, 0);
	assert_false(o.first_unknown);

	record(w, c, 2, t0 + 3600);
	o = query(w, NULL, 0, t0 + 3601);
	assert_int_equal(o.messages, 2);
	assert_int_equal(o.new_recipients, 3);

	/* A day after the first message: it and its new addresses age
	 * out of the counts, but the addresses stay known. */
	o = query(w, ab, 2, t0 + 86400);
	assert_int_equal(o.messages, 1);
	assert_int_equal(o.new_recipients, 1);
	assert_int_equal(o.unknown, 0);
	o = query(w, NULL, 0, t0 + 86400 + 3600);
	assert_int_equal(o.messages, 0);
	assert_int_equal(o.new_recipients, 0);
	/* Recording prunes old messages; known addresses stay known. */
	record(w, ab, 1, t0 + 2 * 86400);
	o = query(w, ab, 2, t0 + 2 * 86400);
	assert_int_equal(o.messages, 1);
	assert_int_equal(o.new_recipients, 0);
	assert_int_equal(o.unknown, 0);
}

static void
test_refusals(void **state)
{
	struct world *w = *state;
	struct answer a = { 0 };
	assert_int_equal(ts_store_outgoing_query(&w->k.kctx, "nobody", NULL, 0,
						 1, on_query, &a),
			 TS_E_NOTFOUND);
	assert_int_equal(ts_store_outgoing_query(&w->k.kctx, "alice", NULL, 1,
						 1, on_query, &a),
			 TS_E_INVAL);
	assert_int_equal(ts_store_outgoing_query(&w->k.kctx, "alice", NULL, 0,
						 1, NULL, &a),
			 TS_E_INVAL);
	assert_int_equal(ts_store_outgoing_record(&w->k.kctx, NULL, NULL, 0, 1,
						  NULL, NULL),
			 TS_E_INVAL);
	/* Recording without a callback is fine. */
	static const char *const one[] = { "z@x.example" };
	assert_int_equal(ts_store_outgoing_record(&w->k.kctx, "alice", one, 1,
						  5, NULL, NULL),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(a.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
