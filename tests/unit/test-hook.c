/*
 * tests/unit/test-hook.c — unit tests of the hook pipeline (kernel/hook.c).
 *
 * Each test builds a bare struct ts_kernel with its own libuv loop and
 * three fake modules (alpha, beta, gamma), registers "scripted" hooks whose
 * behaviour comes from a table, runs a point and drives the loop.  Log
 * lines go to a memory stream so tests can assert their exact text.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/kernel.h"

/* What a scripted hook does when called (or, for resume, on resume). */
enum act {
	ACT_CONTINUE,
	ACT_ACCEPT,
	ACT_REJECT,
	ACT_TEMPFAIL,
	ACT_MAILBOX,
	ACT_PENDING, /* suspend; a uv timer resumes after wait_ms */
	ACT_NEVER, /* suspend and never resume */
	ACT_SYNC_RESUME, /* suspend, resume at once, return PENDING */
	ACT_PENDING_NOSUSPEND, /* return PENDING without suspending (bug) */
	ACT_CANCEL_CONN, /* cancel the runs of its own connection */
};

struct step {
	const char *tag;
	enum act act;
	enum act resume; /* the verdict given on resume */
	uint64_t wait_ms;
	const char *header; /* header name; its value is the tag */
	uint64_t delay;
	const char *reason;
	bool double_resume; /* resume a second time, record the rc */

	struct ts_ctx *ctx;
	ts_hook_token token;
	uv_timer_t timer;
	bool timer_live;
	int called;
	int cancelled;
	int resume_rc, second_rc;
};

#define MAX_STEPS 8

struct captured {
	int calls;
	enum ts_verdict verdict;
	int code;
	char enhanced[32], text[128], module[32], reason[32], mailbox[32];
	uint64_t delay;
	size_t header_count;
	char headers[256];
	uint64_t at; /* uv_now when done ran */
};

/* One test's world; hooks reach it through this pointer. */
static struct world {
	struct ts_kernel *k;
	uv_loop_t loop;
	struct ts_ctx alpha, beta, gamma;
	char *logbuf;
	size_t logsize;
	struct step steps[MAX_STEPS];
	char trace[256];
	struct captured res[2];
} * w;

/* --- scripted hooks ------------------------------------------------------- */

static int
step_verdict(struct ts_hook_call *call, struct step *s, enum act act)
{
	switch (act) {
	case ACT_ACCEPT:
		return ts_hook_accept(call);
	case ACT_REJECT:
		return ts_hook_reject(call, 550, "5.7.1", "no from %s", s->tag);
	case ACT_TEMPFAIL:
		return ts_hook_tempfail(call, 451, "4.7.1", "later from %s",
					s->tag);
	case ACT_MAILBOX:
		return ts_hook_deliver_to(call, "Junk");
	default:
		return TS_HOOK_CONTINUE;
	}
}

static void
step_timer_closed(uv_handle_t *handle)
{
	struct step *s = handle->data;
	s->timer_live = false;
}

static void
step_timer_close(struct step *s)
{
	if (s->timer_live && !uv_is_closing((uv_handle_t *)&s->timer))
		uv_close((uv_handle_t *)&s->timer, step_timer_closed);
}

static void
step_cancel(void *arg)
{
	struct step *s = arg;
	s->cancelled++;
	/* The kernel promises the token is already stale. */
	assert_null(ts_hook_lookup(s->ctx, s->token));
	step_timer_close(s);
}

static void
step_timer_fired(uv_timer_t *timer)
{
	struct step *s = timer->data;
	struct ts_hook_call *call = ts_hook_lookup(s->ctx, s->token);
	assert_non_null(call);
	int rc = step_verdict(call, s, s->resume);
	s->resume_rc = ts_hook_resume(s->ctx, s->token, rc);
	if (s->double_resume)
		s->second_rc =
			ts_hook_resume(s->ctx, s->token, TS_HOOK_CONTINUE);
	step_timer_close(s);
}

static int
step_run(struct ts_hook_call *call, int i)
{
	struct step *s = &w->steps[i];
	s->called++;
	s->ctx = ts_hook_call_ctx(call);
	strcat(w->trace, s->tag);
	strcat(w->trace, " ");
	if (s->header != NULL)
		ts_hook_add_header(call, s->header, s->tag);
	if (s->delay != 0)
		ts_hook_delay(call, s->delay);
	if (s->reason != NULL)
		ts_hook_reason(call, s->reason);

	switch (s->act) {
	case ACT_PENDING:
		s->token = ts_hook_suspend(call, step_cancel, s);
		uv_timer_init(&w->loop, &s->timer);
		s->timer.data = s;
		s->timer_live = true;
		uv_timer_start(&s->timer, step_timer_fired, s->wait_ms, 0);
		return TS_HOOK_PENDING;
	case ACT_NEVER:
		s->token = ts_hook_suspend(call, step_cancel, s);
		return TS_HOOK_PENDING;
	case ACT_SYNC_RESUME:
		s->token = ts_hook_suspend(call, step_cancel, s);
		assert_ptr_equal(ts_hook_lookup(s->ctx, s->token), call);
		s->resume_rc = ts_hook_resume(s->ctx, s->token,
					      step_verdict(call, s, s->resume));
		return TS_HOOK_PENDING;
	case ACT_PENDING_NOSUSPEND:
		return TS_HOOK_PENDING;
	case ACT_CANCEL_CONN:
		ts__hooks_cancel_conn(w->k->hooks, ts_hook_call_conn(call));
		return TS_HOOK_CONTINUE;
	default:
		return step_verdict(call, s, s->act);
	}
}

#define STEP_FN(i)                                       \
	static int step_fn##i(struct ts_hook_call *call) \
	{                                                \
		return step_run(call, i);                \
	}
STEP_FN(0)
STEP_FN(1)
STEP_FN(2)
STEP_FN(3)
STEP_FN(4)
STEP_FN(5)
STEP_FN(6)
STEP_FN(7)
static const ts_hook_fn step_fns[MAX_STEPS] = {
	step_fn0, step_fn1, step_fn2, step_fn3,
	step_fn4, step_fn5, step_fn6, step_fn7,
};

/* Register steps[i] for ctx at point with prio and flags. */
static void
add_step(int i, struct ts_ctx *ctx, enum ts_hook_point point, int prio,
	 unsigned flags, const char *tag, enum act act)
{
	w->steps[i].tag = tag;
	w->steps[i].act = act;
	assert_int_equal(ts_hook_add(ctx, point, step_fns[i], prio, flags), 0);
}

/* --- running -------------------------------------------------------------- */

static void
capture_done(const struct ts_hook_result *r, void *arg)
{
	struct captured *c = arg;
	c->calls++;
	c->verdict = r->verdict;
	c->code = r->code;
	snprintf(c->enhanced, sizeof(c->enhanced), "%s",
		 r->enhanced ? r->enhanced : "-");
	snprintf(c->text, sizeof(c->text), "%s", r->text ? r->text : "-");
	snprintf(c->module, sizeof(c->module), "%s",
		 r->module ? r->module : "-");
	snprintf(c->reason, sizeof(c->reason), "%s",
		 r->reason ? r->reason : "-");
	snprintf(c->mailbox, sizeof(c->mailbox), "%s",
		 r->mailbox ? r->mailbox : "-");
	c->delay = r->delay_ms;
	c->header_count = r->header_count;
	c->headers[0] = '\0';
	for (size_t i = 0; i < r->header_count; i++) {
		strcat(c->headers, r->headers[i]);
		strcat(c->headers, "|");
	}
	assert_null(r->headers == NULL ? NULL : r->headers[r->header_count]);
	c->at = uv_now(&w->loop);
}

static struct ts_hook_run *
run_point(enum ts_hook_point point, struct ts_conn *conn, int slot)
{
	struct ts_hook_args args = { .conn = conn, .arg = "<a@example.org>" };
	return ts_hook_run(&w->k->kctx, point, &args, capture_done,
			   &w->res[slot]);
}

static void
serve(void)
{
	w->k->phase = TS__PHASE_RUN;
}

static void
run_loop(void)
{
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* The log so far, as one string. */
static const char *
log_text(void)
{
	fflush(w->k->log.out);
	return w->logbuf ? w->logbuf : "";
}

/* --- fixture -------------------------------------------------------------- */

static int
setup(void **state)
{
	w = calloc(1, sizeof(*w));
	assert_int_equal(uv_loop_init(&w->loop), 0);
	struct ts_kernel *k = calloc(1, sizeof(*k));
	w->k = k;
	k->loop = &w->loop;
	k->kctx.kernel = k;
	k->kctx.name = "kernel";
	k->log.level = TS_LOG_DEBUG;
	k->log.out = open_memstream(&w->logbuf, &w->logsize);
	k->phase = TS__PHASE_INIT;
	k->hooks = ts__hooks_new(k);
	w->alpha = (struct ts_ctx){ .kernel = k, .name = "alpha", .index = 1 };
	w->beta = (struct ts_ctx){ .kernel = k, .name = "beta", .index = 2 };
	w->gamma = (struct ts_ctx){ .kernel = k, .name = "gamma", .index = 3 };
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	ts__hooks_free(&w->k->hooks);
	assert_null(w->k->hooks);
	for (int i = 0; i < MAX_STEPS; i++)
		step_timer_close(&w->steps[i]);
	/* Closes every handle the kernel or the steps left closing. */
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	fclose(w->k->log.out);
	free(w->logbuf);
	free(w->k);
	free(w);
	w = NULL;
	return 0;
}

/* --- tests ---------------------------------------------------------------- */

static void
test_names(void **state)
{
	enum ts_hook_point p;
	assert_string_equal(ts_hook_point_name(TS_HOOK_CONN_OPEN), "conn_open");
	assert_string_equal(ts_hook_point_name(TS_HOOK_OUTBOUND_TLS_POLICY),
			    "outbound_tls_policy");
	assert_string_equal(ts_hook_point_name(TS_HOOK_STORE_CHANGE),
			    "store_change");
	assert_null(ts_hook_point_name(TS_HOOK_POINT_COUNT));
	for (int i = 0; i < TS_HOOK_POINT_COUNT; i++) {
		assert_int_equal(
			ts_hook_point_parse(
				ts_hook_point_name((enum ts_hook_point)i), &p),
			0);
		assert_int_equal(p, i);
	}
	assert_int_equal(ts_hook_point_parse("smtp_rcpt", &p), 0);
	assert_int_equal(p, TS_HOOK_SMTP_RCPT);
	assert_int_equal(ts_hook_point_parse("smtp_rcpt ", &p), TS_E_NOTFOUND);
	assert_int_equal(ts_hook_point_parse("", &p), TS_E_NOTFOUND);
	assert_string_equal(ts_verdict_name(TS_VERDICT_CONTINUE), "continue");
	assert_string_equal(ts_verdict_name(TS_VERDICT_ACCEPT), "accept");
	assert_string_equal(ts_verdict_name(TS_VERDICT_REJECT), "reject");
	assert_string_equal(ts_verdict_name(TS_VERDICT_TEMPFAIL), "tempfail");
	assert_string_equal(ts_verdict_name(TS_VERDICT_MAILBOX), "mailbox");
}

static void
test_add_errors(void **state)
{
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn0, 101, 0),
		TS_E_INVAL);
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn0, -101, 0),
		TS_E_INVAL);
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_POINT_COUNT, step_fn0, 0, 0),
		TS_E_INVAL);
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn0, -100, 0),
		0);
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn1, 100, 0), 0);
	assert_int_equal(
		ts__hooks_count(w->k->hooks, &w->alpha, TS_HOOK_SMTP_RCPT), 2);
	assert_int_equal(
		ts__hooks_count(w->k->hooks, &w->beta, TS_HOOK_SMTP_RCPT), 0);
	assert_int_equal(
		ts__hooks_count(w->k->hooks, &w->alpha, TS_HOOK_SMTP_MAIL), 0);
	serve();
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn2, 0, 0),
		TS_E_STATE);
	w->k->phase = TS__PHASE_LOAD;
	assert_int_equal(
		ts_hook_add(&w->alpha, TS_HOOK_SMTP_RCPT, step_fn2, 0, 0),
		TS_E_STATE);
	assert_int_equal(
		ts__hooks_count(w->k->hooks, &w->alpha, TS_HOOK_SMTP_RCPT), 2);
}

static void
each_collect(const char *module, int prio, unsigned flags, void *arg)
{
	char *out = arg;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s:%d:%u ", module, prio, flags);
	strcat(out, buf);
}

static void
test_sync_order(void **state)
{
	/* Registered out of order on purpose. */
	add_step(0, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b0", ACT_CONTINUE);
	add_step(1, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a0", ACT_CONTINUE);
	add_step(2, &w->beta, TS_HOOK_SMTP_RCPT, 100, 0, "b100", ACT_CONTINUE);
	add_step(3, &w->alpha, TS_HOOK_SMTP_RCPT, -100, 0, "a-100",
		 ACT_CONTINUE);
	add_step(4, &w->alpha, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "a0b",
		 ACT_CONTINUE);
	add_step(5, &w->alpha, TS_HOOK_SMTP_RCPT, 50, 0, "a50", ACT_CONTINUE);
	add_step(6, &w->gamma, TS_HOOK_SMTP_MAIL, 0, 0, "other", ACT_REJECT);

	char each[256] = "";
	ts__hooks_each(w->k->hooks, TS_HOOK_SMTP_RCPT, each_collect, each);
	assert_string_equal(each, "alpha:-100:0 alpha:0:0 alpha:0:1 beta:0:0 "
				  "alpha:50:0 beta:100:0 ");
	serve();
	assert_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_string_equal(w->trace, "a-100 a0 a0b b0 a50 b100 ");
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_CONTINUE);
	assert_int_equal(w->res[0].code, 0);
	assert_string_equal(w->res[0].module, "-");
	assert_string_equal(w->res[0].text, "-");
	assert_int_equal(w->steps[6].called, 0);

	/* A point with no hooks continues at once. */
	assert_null(run_point(TS_HOOK_DELIVERED, NULL, 1));
	assert_int_equal(w->res[1].calls, 1);
	assert_int_equal(w->res[1].verdict, TS_VERDICT_CONTINUE);
}

static void
test_reject_stops(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a0", ACT_CONTINUE);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b0", ACT_REJECT);
	add_step(2, &w->alpha, TS_HOOK_SMTP_RCPT, 50, 0, "a50", ACT_ACCEPT);
	w->steps[0].header = "X-One";
	w->steps[0].delay = 10;
	w->steps[1].header = "X-Two";
	w->steps[1].delay = 5;
	w->steps[1].reason = "relay-denied";
	w->steps[2].header = "X-Three";
	serve();
	assert_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_string_equal(w->trace, "a0 b0 ");
	assert_int_equal(w->steps[2].called, 0);
	struct captured *c = &w->res[0];
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->verdict, TS_VERDICT_REJECT);
	assert_int_equal(c->code, 550);
	assert_string_equal(c->enhanced, "5.7.1");
	assert_string_equal(c->text, "no from b0");
	assert_string_equal(c->module, "beta");
	assert_string_equal(c->reason, "relay-denied");
	assert_int_equal(c->delay, 15);
	assert_int_equal(c->header_count, 2);
	assert_string_equal(c->headers, "X-One: a0|X-Two: b0|");
}

static void
test_accept_mailbox(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_MAIL, 0, 0, "a0", ACT_ACCEPT);
	add_step(1, &w->beta, TS_HOOK_SMTP_MAIL, 10, 0, "b10", ACT_REJECT);
	add_step(2, &w->alpha, TS_HOOK_DELIVER_LOCAL, 0, 0, "a0d",
		 ACT_CONTINUE);
	add_step(3, &w->beta, TS_HOOK_DELIVER_LOCAL, 5, 0, "b5d", ACT_MAILBOX);
	add_step(4, &w->gamma, TS_HOOK_DELIVER_LOCAL, 7, 0, "g7d", ACT_REJECT);
	serve();
	assert_null(run_point(TS_HOOK_SMTP_MAIL, NULL, 0));
	assert_int_equal(w->res[0].verdict, TS_VERDICT_ACCEPT);
	assert_string_equal(w->res[0].module, "alpha");
	assert_string_equal(w->res[0].text, "-");
	assert_int_equal(w->steps[1].called, 0);

	assert_null(run_point(TS_HOOK_DELIVER_LOCAL, NULL, 1));
	assert_int_equal(w->res[1].verdict, TS_VERDICT_MAILBOX);
	assert_string_equal(w->res[1].mailbox, "Junk");
	assert_string_equal(w->res[1].module, "beta");
	assert_int_equal(w->steps[4].called, 0);
	assert_string_equal(w->trace, "a0 a0d b5d ");
}

static void
test_continue_accumulates(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_DATA, 0, 0, "a", ACT_CONTINUE);
	add_step(1, &w->beta, TS_HOOK_SMTP_DATA, 0, TS_HOOK_PARALLEL, "b",
		 ACT_CONTINUE);
	add_step(2, &w->gamma, TS_HOOK_SMTP_DATA, 0, TS_HOOK_PARALLEL, "g",
		 ACT_CONTINUE);
	w->steps[0].header = "X-A";
	w->steps[0].delay = 100;
	w->steps[1].header = "X-B";
	w->steps[1].reason = "first-reason";
	w->steps[2].header = "X-G";
	w->steps[2].delay = 250;
	w->steps[2].reason = "second-reason";
	serve();
	assert_null(run_point(TS_HOOK_SMTP_DATA, NULL, 0));
	struct captured *c = &w->res[0];
	assert_int_equal(c->verdict, TS_VERDICT_CONTINUE);
	assert_string_equal(c->module, "-");
	assert_int_equal(c->delay, 350);
	assert_int_equal(c->header_count, 3);
	assert_string_equal(c->headers, "X-A: a|X-B: b|X-G: g|");
	assert_string_equal(c->reason, "first-reason");
}

static void
test_pending_resume(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b", ACT_REJECT);
	w->steps[0].wait_ms = 50;
	w->steps[0].resume = ACT_CONTINUE;
	w->steps[0].header = "X-A";
	serve();
	uv_update_time(&w->loop);
	uint64_t t0 = uv_now(&w->loop);
	struct ts_hook_run *run = run_point(TS_HOOK_SMTP_RCPT, NULL, 0);
	assert_non_null(run);
	assert_int_equal(w->res[0].calls, 0);
	assert_int_equal(w->steps[1].called, 0);
	assert_non_null(ts_hook_lookup(&w->alpha, w->steps[0].token));
	run_loop();
	assert_int_equal(w->steps[0].resume_rc, 0);
	assert_int_equal(w->res[0].calls, 1);
	assert_true(w->res[0].at - t0 >= 50);
	assert_string_equal(w->trace, "a b ");
	assert_int_equal(w->res[0].verdict, TS_VERDICT_REJECT);
	assert_string_equal(w->res[0].module, "beta");
	assert_string_equal(w->res[0].headers, "X-A: a|");
	assert_int_equal(w->steps[0].cancelled, 0);
	assert_null(ts_hook_lookup(&w->alpha, w->steps[0].token));
}

static void
test_pending_resume_verdict(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b", ACT_ACCEPT);
	w->steps[0].wait_ms = 20;
	w->steps[0].resume = ACT_TEMPFAIL;
	serve();
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	run_loop();
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_TEMPFAIL);
	assert_int_equal(w->res[0].code, 451);
	assert_string_equal(w->res[0].enhanced, "4.7.1");
	assert_string_equal(w->res[0].text, "later from a");
	assert_string_equal(w->res[0].module, "alpha");
	assert_int_equal(w->steps[1].called, 0);
}

static void
test_double_resume(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	w->steps[0].wait_ms = 10;
	w->steps[0].resume = ACT_REJECT;
	w->steps[0].double_resume = true;
	serve();
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	run_loop();
	struct step *s = &w->steps[0];
	assert_int_equal(s->resume_rc, 0);
	assert_int_equal(s->second_rc, TS_E_STALE);
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_REJECT);
	assert_string_equal(w->res[0].text, "no from a");
	assert_int_equal(s->cancelled, 0);

	char line[128];
	snprintf(line, sizeof(line), "hook resume ignored token=%llu (stale)",
		 (unsigned long long)s->token);
	assert_non_null(strstr(log_text(), line));
	/* Never-issued tokens are stale too, and 0 is never valid. */
	assert_int_equal(ts_hook_resume(&w->alpha, 0, 0), TS_E_STALE);
	assert_int_equal(ts_hook_resume(&w->alpha, s->token + 1000, 0),
			 TS_E_STALE);
	assert_null(ts_hook_lookup(&w->alpha, 0));
	assert_int_equal(w->res[0].calls, 1);
}

static void
test_timeout(void **state)
{
	w->k->hook_timeout_ms = 100;
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_NEVER);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 10, 0, "b", ACT_ACCEPT);
	serve();
	uv_update_time(&w->loop);
	uint64_t t0 = uv_now(&w->loop);
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	run_loop();
	struct captured *c = &w->res[0];
	assert_int_equal(c->calls, 1);
	assert_true(c->at - t0 >= 100);
	assert_int_equal(c->verdict, TS_VERDICT_TEMPFAIL);
	assert_int_equal(c->code, 451);
	assert_string_equal(c->enhanced, "4.4.3");
	assert_string_equal(c->text,
			    "temporary failure, please try again later");
	assert_string_equal(c->reason, "hook-timeout");
	assert_string_equal(c->module, "alpha");
	assert_int_equal(w->steps[0].cancelled, 1);
	assert_int_equal(w->steps[1].called, 0);
	assert_non_null(strstr(log_text(), "hook timed out module=alpha "
					   "hook=smtp_rcpt after=100ms"));
	assert_int_equal(
		ts_hook_resume(&w->alpha, w->steps[0].token, TS_HOOK_CONTINUE),
		TS_E_STALE);
	assert_int_equal(w->res[0].calls, 1);
}

static void
test_run_cancel(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b", ACT_CONTINUE);
	w->steps[0].wait_ms = 50;
	serve();
	struct ts_hook_run *run = run_point(TS_HOOK_SMTP_RCPT, NULL, 0);
	assert_non_null(run);
	ts_hook_run_cancel(&run);
	assert_null(run);
	ts_hook_run_cancel(&run); /* NULL is allowed */
	assert_int_equal(w->steps[0].cancelled, 1);
	assert_int_equal(ts_hook_resume(&w->alpha, w->steps[0].token, 0),
			 TS_E_STALE);
	run_loop();
	assert_int_equal(w->res[0].calls, 0);
	assert_int_equal(w->steps[1].called, 0);
	assert_int_equal(w->steps[0].cancelled, 1);
}

static void
test_cancel_conn(void **state)
{
	static char conn_a, conn_b; /* never dereferenced */
	struct ts_conn *a = (struct ts_conn *)&conn_a;
	struct ts_conn *b = (struct ts_conn *)&conn_b;

	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_MAIL, 0, 0, "b", ACT_PENDING);
	w->steps[0].wait_ms = 30;
	w->steps[1].wait_ms = 30;
	w->steps[1].resume = ACT_ACCEPT;
	serve();
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, a, 0));
	assert_non_null(run_point(TS_HOOK_SMTP_MAIL, b, 1));
	ts__hooks_cancel_conn(w->k->hooks, a);
	assert_int_equal(w->steps[0].cancelled, 1);
	assert_int_equal(w->steps[1].cancelled, 0);
	run_loop();
	assert_int_equal(w->res[0].calls, 0);
	assert_int_equal(w->res[1].calls, 1);
	assert_int_equal(w->res[1].verdict, TS_VERDICT_ACCEPT);
	/* Nothing left to cancel. */
	ts__hooks_cancel_conn(w->k->hooks, b);
	assert_int_equal(w->steps[1].cancelled, 0);
}

static void
test_parallel_overlap(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "a",
		 ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "b",
		 ACT_PENDING);
	w->steps[0].wait_ms = 200;
	w->steps[1].wait_ms = 200;
	serve();
	uv_update_time(&w->loop);
	uint64_t t0 = uv_now(&w->loop);
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	/* Both started before either finished. */
	assert_string_equal(w->trace, "a b ");
	run_loop();
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_CONTINUE);
	assert_true(w->res[0].at - t0 >= 200);
	assert_true(w->res[0].at - t0 < 350);
}

static void
test_serial_waits_add_up(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b", ACT_PENDING);
	w->steps[0].wait_ms = 200;
	w->steps[1].wait_ms = 200;
	serve();
	uv_update_time(&w->loop);
	uint64_t t0 = uv_now(&w->loop);
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_string_equal(w->trace, "a ");
	run_loop();
	assert_string_equal(w->trace, "a b ");
	assert_int_equal(w->res[0].calls, 1);
	assert_true(w->res[0].at - t0 >= 400);
}

static void
test_parallel_merge(void **state)
{
	/* The tempfail has the lowest number, the reject still wins. */
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, -10, TS_HOOK_PARALLEL, "a",
		 ACT_TEMPFAIL);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "b",
		 ACT_PENDING);
	add_step(2, &w->gamma, TS_HOOK_SMTP_RCPT, 5, TS_HOOK_PARALLEL, "g",
		 ACT_ACCEPT);
	add_step(3, &w->alpha, TS_HOOK_SMTP_RCPT, 10, 0, "after", ACT_CONTINUE);
	w->steps[1].wait_ms = 30;
	w->steps[1].resume = ACT_REJECT;
	w->steps[0].header = "X-A";
	w->steps[1].header = "X-B";
	w->steps[2].header = "X-G";
	w->steps[0].delay = 1;
	w->steps[1].delay = 2;
	w->steps[2].delay = 4;
	serve();
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_string_equal(w->trace, "a b g ");
	run_loop();
	struct captured *c = &w->res[0];
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->verdict, TS_VERDICT_REJECT);
	assert_string_equal(c->module, "beta");
	assert_string_equal(c->text, "no from b");
	assert_string_equal(c->headers, "X-A: a|X-B: b|X-G: g|");
	assert_int_equal(c->delay, 7);
	assert_int_equal(w->steps[3].called, 0);
}

static void
test_parallel_merge_tempfail_over_accept(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_HELO, 0, TS_HOOK_PARALLEL, "a",
		 ACT_ACCEPT);
	add_step(1, &w->beta, TS_HOOK_SMTP_HELO, 0, TS_HOOK_PARALLEL, "b",
		 ACT_TEMPFAIL);
	add_step(2, &w->gamma, TS_HOOK_SMTP_HELO, 0, TS_HOOK_PARALLEL, "g",
		 ACT_TEMPFAIL);
	serve();
	assert_null(run_point(TS_HOOK_SMTP_HELO, NULL, 0));
	assert_int_equal(w->res[0].verdict, TS_VERDICT_TEMPFAIL);
	assert_string_equal(w->res[0].module, "beta");
	assert_string_equal(w->res[0].text, "later from b");
}

static void
test_sync_self_resume(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_SYNC_RESUME);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 1, 0, "b", ACT_CONTINUE);
	add_step(2, &w->alpha, TS_HOOK_SMTP_MAIL, 0, 0, "m", ACT_SYNC_RESUME);
	w->steps[0].resume = ACT_CONTINUE;
	w->steps[2].resume = ACT_REJECT;
	serve();
	assert_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_int_equal(w->steps[0].resume_rc, 0);
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_CONTINUE);
	assert_string_equal(w->trace, "a b ");

	assert_null(run_point(TS_HOOK_SMTP_MAIL, NULL, 1));
	assert_int_equal(w->res[1].calls, 1);
	assert_int_equal(w->res[1].verdict, TS_VERDICT_REJECT);
	assert_string_equal(w->res[1].module, "alpha");
	assert_int_equal(ts_hook_resume(&w->alpha, w->steps[2].token, 0),
			 TS_E_STALE);
	assert_int_equal(w->steps[0].cancelled + w->steps[2].cancelled, 0);
	/* No timer was left behind: the loop has nothing to do. */
	assert_int_equal(uv_run(&w->loop, UV_RUN_NOWAIT), 0);
}

static void
test_pending_without_suspend(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a",
		 ACT_PENDING_NOSUSPEND);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, 0, "b", ACT_REJECT);
	serve();
	assert_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_string_equal(w->trace, "a b ");
	assert_int_equal(w->res[0].verdict, TS_VERDICT_REJECT);
	assert_non_null(strstr(log_text(),
			       "hook returned pending without suspending "
			       "module=alpha hook=smtp_rcpt"));
}

/* A hook that cancels its own run while a parallel peer is pending. */
static void
test_cancel_from_inside(void **state)
{
	static char conn_a;
	struct ts_conn *a = (struct ts_conn *)&conn_a;

	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "a",
		 ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "b",
		 ACT_CANCEL_CONN);
	add_step(2, &w->gamma, TS_HOOK_SMTP_RCPT, 0, TS_HOOK_PARALLEL, "g",
		 ACT_CONTINUE);
	w->steps[0].wait_ms = 20;
	serve();
	/* The run died before ts_hook_run returned: nothing to hand back. */
	assert_null(run_point(TS_HOOK_SMTP_RCPT, a, 0));
	assert_int_equal(w->steps[0].cancelled, 1);
	assert_int_equal(w->steps[2].called, 0);
	run_loop();
	assert_int_equal(w->res[0].calls, 0);
}

/* done starts another run, which goes async on its own. */
static void
nested_done(const struct ts_hook_result *r, void *arg)
{
	capture_done(r, &w->res[0]);
	assert_non_null(run_point(TS_HOOK_SMTP_MAIL, NULL, 1));
}

static void
test_reentrant_done(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_PENDING);
	add_step(1, &w->beta, TS_HOOK_SMTP_MAIL, 0, 0, "b", ACT_PENDING);
	w->steps[0].wait_ms = 10;
	w->steps[0].resume = ACT_ACCEPT;
	w->steps[1].wait_ms = 10;
	w->steps[1].resume = ACT_REJECT;
	serve();
	struct ts_hook_args args = { 0 };
	assert_non_null(ts_hook_run(&w->k->kctx, TS_HOOK_SMTP_RCPT, &args,
				    nested_done, NULL));
	run_loop();
	assert_int_equal(w->res[0].calls, 1);
	assert_int_equal(w->res[0].verdict, TS_VERDICT_ACCEPT);
	assert_int_equal(w->res[1].calls, 1);
	assert_int_equal(w->res[1].verdict, TS_VERDICT_REJECT);
	assert_string_equal(w->trace, "a b ");
}

/*
 * Many pending calls at once, started and resumed in a pseudo-random
 * order against a model: the token table grows, probes past collisions
 * and closes the holes deletions leave.
 */
static void
test_many_tokens(void **state)
{
	enum { MAX = 3000, OPS = 6000 };
	static ts_hook_token tokens[MAX];
	static bool live[MAX];
	size_t issued = 0, live_count = 0, done = 0;
	uint32_t rnd = 12345;

	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "", ACT_NEVER);
	serve();
	for (int op = 0; op < OPS || live_count > 0; op++) {
		rnd = rnd * 1103515245u + 12345u;
		bool start = op < OPS && issued < MAX &&
			     (live_count < 50 || (rnd >> 16) % 3 != 0) &&
			     live_count < 700;
		if (start) {
			w->trace[0] = '\0';
			assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
			tokens[issued] = w->steps[0].token;
			assert_int_not_equal(tokens[issued], 0);
			if (issued > 0)
				assert_true(tokens[issued] >
					    tokens[issued - 1]);
			live[issued++] = true;
			live_count++;
		} else {
			size_t i = (rnd >> 8) % issued;
			while (!live[i])
				i = (i + 1) % issued;
			struct ts_hook_call *call =
				ts_hook_lookup(&w->alpha, tokens[i]);
			assert_non_null(call);
			assert_int_equal(ts_hook_call_point(call),
					 TS_HOOK_SMTP_RCPT);
			assert_string_equal(ts_hook_call_arg(call),
					    "<a@example.org>");
			int rc = i % 2 ? ts_hook_reject(call, 550, NULL, "n%zu",
							i)
				       : TS_HOOK_CONTINUE;
			assert_int_equal(
				ts_hook_resume(&w->alpha, tokens[i], rc), 0);
			live[i] = false;
			live_count--;
			assert_int_equal(w->res[0].calls, ++done);
			assert_int_equal(w->res[0].verdict,
					 i % 2 ? TS_VERDICT_REJECT
					       : TS_VERDICT_CONTINUE);
		}
		if (op % 97 == 0 || live_count == 0)
			for (size_t i = 0; i < issued; i++)
				assert_int_equal(
					ts_hook_lookup(&w->alpha, tokens[i]) !=
						NULL,
					live[i]);
	}
	assert_int_equal(done, issued);
	assert_true(issued > 1000);
	assert_int_equal(w->steps[0].cancelled, 0);
}

static void
test_free_cancels(void **state)
{
	add_step(0, &w->alpha, TS_HOOK_SMTP_RCPT, 0, 0, "a", ACT_NEVER);
	add_step(1, &w->beta, TS_HOOK_SMTP_MAIL, 0, 0, "b", ACT_NEVER);
	serve();
	assert_non_null(run_point(TS_HOOK_SMTP_RCPT, NULL, 0));
	assert_non_null(run_point(TS_HOOK_SMTP_MAIL, NULL, 1));
	ts__hooks_free(&w->k->hooks);
	assert_null(w->k->hooks);
	assert_int_equal(w->steps[0].cancelled, 1);
	assert_int_equal(w->steps[1].cancelled, 1);
	run_loop();
	assert_int_equal(w->res[0].calls + w->res[1].calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reject_stops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_accept_mailbox, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_continue_accumulates,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pending_resume_verdict,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_double_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_cancel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_conn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_parallel_overlap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_serial_waits_add_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_parallel_merge, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_parallel_merge_tempfail_over_accept, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_sync_self_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pending_without_suspend,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_inside, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reentrant_done, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_tokens, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_free_cancels, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
