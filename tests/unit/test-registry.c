/*
 * tests/unit/test-registry.c — unit tests of the small kernel units:
 * services (service.c), CLI commands (cli.c), the work pool (work.c),
 * timers (timer.c), logging (log.c) and allocation helpers (alloc.c).
 * Connections and listeners are covered by the integration tests.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/kernel.h"

struct world {
	struct ts_kernel k;
	uv_loop_t loop;
	struct ts_ctx alpha, beta;
	char *logbuf;
	size_t logsize;
};

static int
setup(void **state)
{
	struct world *w = ts_xcalloc(1, sizeof(*w));
	uv_loop_init(&w->loop);
	ts__kernel_init(&w->k, &w->loop);
	w->k.log.out = open_memstream(&w->logbuf, &w->logsize);
	w->k.log.level = TS_LOG_DEBUG;
	w->alpha =
		(struct ts_ctx){ .kernel = &w->k, .name = "alpha", .index = 1 };
	w->beta =
		(struct ts_ctx){ .kernel = &w->k, .name = "beta", .index = 2 };
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	struct world *w = *state;
	FILE *log = w->k.log.out;
	ts__kernel_fini(&w->k);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	fclose(log);
	free(w->logbuf);
	free(w);
	return 0;
}

static const char *
logged(struct world *w)
{
	fflush(w->k.log.out);
	return w->logbuf != NULL ? w->logbuf : "";
}

/* --- services ------------------------------------------------------------- */

struct proto_v1 {
	int (*a)(void);
};
struct proto_v2 {
	int (*a)(void);
	int (*b)(void);
};

static int
one(void)
{
	return 1;
}

static const struct proto_v1 vt1 = { one };
static const struct proto_v2 vt2 = { one, one };

static void
test_service_add_find(void **state)
{
	struct world *w = *state;
	w->k.phase = TS__PHASE_INIT;
	assert_int_equal(ts_service_add(&w->alpha, "transport", "relay", &vt1,
					sizeof(vt1)),
			 0);
	assert_int_equal(ts_service_add(&w->beta, "transport", "direct", &vt2,
					sizeof(vt2)),
			 0);
	/* Same name in another kind is fine. */
	assert_int_equal(
		ts_service_add(&w->beta, "sasl", "relay", &vt1, sizeof(vt1)),
		0);
	struct ts_ctx *owner = NULL;
	assert_ptr_equal(ts_service_find(&w->alpha, "transport", "direct",
					 sizeof(vt2), &owner),
			 &vt2);
	assert_ptr_equal(owner, &w->beta);
	/* A vtable smaller than the caller needs is not handed out. */
	assert_null(ts_service_find(&w->alpha, "transport", "relay",
				    sizeof(vt2), NULL));
	assert_ptr_equal(ts_service_find(&w->alpha, "transport", "relay",
					 sizeof(vt1), NULL),
			 &vt1);
	assert_null(ts_service_find(&w->alpha, "transport", "nope", 0, NULL));
	assert_int_equal(ts_service_count(&w->alpha, "transport"), 2);
	assert_string_equal(ts_service_name(&w->alpha, "transport", 1),
			    "direct");
	assert_null(ts_service_name(&w->alpha, "transport", 2));
}

static void
test_service_duplicate_and_phase(void **state)
{
	struct world *w = *state;
	w->k.phase = TS__PHASE_INIT;
	assert_int_equal(ts_service_add(&w->alpha, "protocol", "smtp", &vt1,
					sizeof(vt1)),
			 0);
	assert_int_equal(
		ts_service_add(&w->beta, "protocol", "smtp", &vt1, sizeof(vt1)),
		TS_E_EXIST);
	assert_non_null(strstr(logged(w), "service already registered "
					  "kind=protocol name=smtp "
					  "owner=alpha"));
	assert_int_equal(ts_service_add(&w->beta, "", "x", &vt1, 8),
			 TS_E_INVAL);
	w->k.phase = TS__PHASE_RUN;
	assert_int_equal(
		ts_service_add(&w->beta, "protocol", "imap", &vt1, sizeof(vt1)),
		TS_E_STATE);
}

/* --- CLI registry ----------------------------------------------------------
 */

static int
cli_fn(struct ts_ctx *ctx, int argc, char **argv)
{
	return argc;
}

static void
test_cli_add(void **state)
{
	struct world *w = *state;
	w->k.phase = TS__PHASE_INIT;
	assert_int_equal(
		ts_cli_add(&w->alpha, "hello", "say hi", "[NAME]", cli_fn), 0);
	assert_int_equal(ts_cli_add(&w->beta, "hello", "", "", cli_fn),
			 TS_E_EXIST);
	/* Built-in commands cannot be taken. */
	assert_int_equal(ts_cli_add(&w->beta, "serve", "", "", cli_fn),
			 TS_E_EXIST);
	assert_int_equal(ts_cli_add(&w->beta, "Bad Name", "", "", cli_fn),
			 TS_E_INVAL);
	assert_int_equal(ts_cli_add(&w->beta, "-x", "", "", cli_fn),
			 TS_E_INVAL);
	const struct ts__cli_cmd *cmd = ts__cli_find(&w->k, "hello");
	assert_non_null(cmd);
	assert_ptr_equal(cmd->owner, &w->alpha);
	assert_string_equal(cmd->usage, "[NAME]");
	w->k.phase = TS__PHASE_RUN;
	assert_int_equal(ts_cli_add(&w->beta, "later", "", "", cli_fn),
			 TS_E_STATE);
}

/* --- work pool -------------------------------------------------------------
 */

struct job {
	pthread_t loop_thread, work_thread, done_thread;
	int input, output, status, done_calls;
};

static void
job_work(void *arg)
{
	struct job *j = arg;
	j->work_thread = pthread_self();
	j->output = j->input * 2;
}

static void
job_done(void *arg, int status)
{
	struct job *j = arg;
	j->done_thread = pthread_self();
	j->status = status;
	j->done_calls++;
}

static void
test_work_runs_off_loop_and_reports_on_loop(void **state)
{
	struct world *w = *state;
	struct job jobs[8];
	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct job){ .loop_thread = pthread_self(),
					.input = i,
					.status = -99 };
		assert_int_equal(
			ts_work_submit(&w->alpha, job_work, job_done, &jobs[i]),
			0);
	}
	assert_int_equal(w->k.pending_work, 8);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(w->k.pending_work, 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].status, 0);
		assert_int_equal(jobs[i].output, 2 * i);
		assert_true(pthread_equal(jobs[i].done_thread,
					  jobs[i].loop_thread));
		assert_false(pthread_equal(jobs[i].work_thread,
					   jobs[i].loop_thread));
	}
	assert_int_equal(ts_work_submit(&w->alpha, NULL, job_done, NULL),
			 TS_E_INVAL);
}

/* --- timers ----------------------------------------------------------------
 */

struct tick {
	int fired;
	bool free_inside;
	struct ts_timer *self;
};

static void
tick_fn(struct ts_timer *t, void *arg)
{
	struct tick *tk = arg;
	tk->fired++;
	if (tk->fired == 3 || tk->free_inside)
		ts_timer_free(&tk->self); /* inside its own callback */
}

static void
test_timer_once_repeat_and_free_inside(void **state)
{
	struct world *w = *state;
	struct tick a = { .free_inside = true };
	a.self = ts_timer_new(&w->alpha, tick_fn, &a);
	assert_false(ts_timer_active(a.self));
	uint64_t start = uv_now(&w->loop);
	ts_timer_start(a.self, 30, 0);
	assert_true(ts_timer_active(a.self));

	struct tick b = { 0 };
	b.self = ts_timer_new(&w->alpha, tick_fn, &b);
	ts_timer_start(b.self, 5, 5); /* repeats until freed on the 3rd */

	struct tick c = { 0 };
	struct ts_timer *stopped = ts_timer_new(&w->alpha, tick_fn, &c);
	ts_timer_start(stopped, 10, 0);
	ts_timer_stop(stopped);
	ts_timer_free(&stopped);
	assert_null(stopped);

	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(a.fired, 1);
	assert_null(a.self);
	assert_true(uv_now(&w->loop) - start >= 30);
	assert_int_equal(b.fired, 3);
	assert_null(b.self);
	assert_int_equal(c.fired, 0);
}

/* --- logging ---------------------------------------------------------------
 */

static void
test_log_levels_and_format(void **state)
{
	struct world *w = *state;
	w->k.log.level = TS_LOG_TRACE;
	ts_log(&w->alpha, TS_LOG_INFO, "hello key=%d", 42);
	ts_log(&w->alpha, TS_LOG_TRACEAUTH, "secret=%s", "hunter2");
	ts_log(&w->alpha, TS_LOG_TRACEDATA, "data=%s", "body");
	ts_log(&w->beta, TS_LOG_WARN, "multi\nline\rtext");
	const char *text = logged(w);
	assert_non_null(strstr(text, " info module=alpha hello key=42\n"));
	assert_null(strstr(text, "hunter2"));
	assert_null(strstr(text, "body"));
	/* A peer's CR/LF cannot forge a log line. */
	assert_non_null(strstr(text, " warn module=beta multi line text\n"));
	assert_true(ts_log_enabled(&w->alpha, TS_LOG_TRACE));
	assert_false(ts_log_enabled(&w->alpha, TS_LOG_TRACEAUTH));
	w->k.log.level = TS_LOG_TRACEAUTH;
	assert_true(ts_log_enabled(&w->alpha, TS_LOG_TRACEAUTH));
	assert_false(ts_log_enabled(&w->alpha, TS_LOG_TRACEDATA));

	enum ts_log_level lvl;
	assert_int_equal(ts_log_level_parse("TraceData", &lvl), 0);
	assert_int_equal(lvl, TS_LOG_TRACEDATA);
	assert_int_equal(ts_log_level_parse("loud", &lvl), TS_E_INVAL);
	assert_string_equal(ts_log_level_name(TS_LOG_WARN), "warn");
}

static void
test_strerror_and_alloc(void **state)
{
	assert_string_equal(ts_strerror(TS_E_STALE), "stale token");
	assert_string_equal(ts_strerror(-1234), "unknown error");
	char *s = ts_xasprintf("%s-%d", "a", 7);
	assert_string_equal(s, "a-7");
	free(s);
	s = ts_xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	char **v = NULL;
	size_t n = 0;
	ts__strv_push(&v, &n, ts_xstrdup("x"));
	ts__strv_push(&v, &n, ts_xstrdup("y"));
	assert_int_equal(n, 2);
	assert_null(v[2]);
	ts__strv_free(&v);
	assert_null(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_service_add_find, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_service_duplicate_and_phase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_add, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_work_runs_off_loop_and_reports_on_loop, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_timer_once_repeat_and_free_inside, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_log_levels_and_format,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_strerror_and_alloc, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
