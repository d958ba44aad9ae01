/*
 * tests/modules/hooktest.c — a test module that exercises the hook API.
 *
 * Each `[hooktest NAME]` section adds one hook whose behaviour the section
 * spells out (answer at once, suspend and resume after a wait, never
 * resume, resume twice).  The module also offers a "protocol" service,
 * "hookprobe", through which an integration test runs any hook point over
 * a plain TCP connection and reads the merged result back:
 *
 *   RUN <point> [arg]  ->  RESULT verdict=… code=… enhanced=… module=…
 *                                 delay=… headers=… text=…
 *   QUIT               ->  221 bye
 *
 * At the transaction points a section can also attach an authentication
 * result (`auth_result = spf pass smtp.mailfrom=example.org`) and log
 * what the transaction holds (`report_txn = yes`: envelope, DSN
 * parameters, REQUIRETLS, added headers and results so far), so tests
 * see what a check module would see.
 *
 * It uses only the public plugin API.  Not installed; built for tests.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/tessera.h>

/* Hook functions take no user argument, so there is one per section. */
#define HOOKTEST_MAX 8

enum hooktest_action {
	HOOKTEST_CONTINUE,
	HOOKTEST_ACCEPT,
	HOOKTEST_REJECT,
	HOOKTEST_TEMPFAIL,
	HOOKTEST_MAILBOX,
	HOOKTEST_PENDING,
	HOOKTEST_NEVER,
	HOOKTEST_DOUBLE_RESUME,
};

/* In the order of enum hooktest_action, as written in the config. */
static const char *const hooktest_action_names[] = {
	"continue", "accept",  "reject", "tempfail",
	"mailbox",  "pending", "never",	 "double_resume",
};

/* The settings of one [hooktest NAME] section. */
struct hooktest_hook {
	char *name;
	enum ts_hook_point point;
	enum hooktest_action action;
	enum hooktest_action resume; /* continue, reject, tempfail, accept */
	uint64_t wait_ms;
	int prio;
	bool parallel;
	char *text;
	char *header_name; /* NULL: add no header */
	char *header_value;
	char *auth_result; /* "method result [name=value…]", or NULL */
	bool report_txn;
};

/* The module's data (ts_ctx_data). */
struct hooktest {
	struct hooktest_hook hooks[HOOKTEST_MAX];
	size_t count;
	bool linger; /* [module hooktest] linger */
};

/*
 * A suspended call.  It copies what it needs from its section so that a
 * cancel arriving late never reads the module's data.
 */
struct hooktest_wait {
	struct ts_ctx *ctx;
	char *name;
	bool double_resume;
	enum hooktest_action resume;
	char *text;
	ts_hook_token token;
	struct ts_timer *timer; /* NULL for `never` */
};

static const struct ts_cfg_key hooktest_module_keys[] = {
	{ .name = "linger",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "on shutdown, say 421 but keep the session open (tests the "
		 "kernel's shutdown_grace)" },
	{ .name = NULL },
};

static const struct ts_cfg_key hooktest_keys[] = {
	{ .name = "point",
	  .type = TS_CFG_STRING,
	  .default_value = "smtp_rcpt",
	  .doc = "hook point the hook is added to" },
	{ .name = "action",
	  .type = TS_CFG_ENUM,
	  .default_value = "continue",
	  .choices = "continue|accept|reject|tempfail|mailbox|pending|never|"
		     "double_resume",
	  .doc = "what the hook does when called" },
	{ .name = "resume",
	  .type = TS_CFG_ENUM,
	  .default_value = "continue",
	  .choices = "continue|reject|tempfail|accept",
	  .doc = "verdict a pending hook gives when it resumes" },
	{ .name = "wait",
	  .type = TS_CFG_DURATION,
	  .default_value = "100ms",
	  .doc = "how long a pending hook waits before resuming" },
	{ .name = "priority",
	  .type = TS_CFG_INT,
	  .default_value = "0",
	  .min = TS_HOOK_PRIO_MIN,
	  .max = TS_HOOK_PRIO_MAX,
	  .doc = "hook priority, -100 (first) to 100 (last)" },
	{ .name = "parallel",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "flag the hook TS_HOOK_PARALLEL" },
	{ .name = "text",
	  .type = TS_CFG_STRING,
	  .default_value = "hooktest says no",
	  .doc = "reply text of a reject or tempfail" },
	{ .name = "header",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "\"Name: value\" header the hook adds (default: none)" },
	{ .name = "auth_result",
	  .type = TS_CFG_STRING,
	  .default_value = NULL,
	  .doc = "\"method result [reason=x] [comment=x] [ptype.prop=value…]\" "
		 "attached to the transaction (default: none)" },
	{ .name = "report_txn",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "log the transaction the hook sees" },
	{ .name = NULL },
};

static const struct ts_cfg_section hooktest_sections[] = {
	{ .type = "hooktest",
	  .named = true,
	  .keys = hooktest_keys,
	  .doc = "one test hook per section" },
	{ .type = NULL },
};

/* --- the hooks ------------------------------------------------------------ */

static enum hooktest_action
hooktest_action_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(hooktest_action_names) /
				       sizeof(hooktest_action_names[0]);
	     i++)
		if (strcmp(name, hooktest_action_names[i]) == 0)
			return (enum hooktest_action)i;
	return HOOKTEST_CONTINUE; /* the config check has the enum */
}

/* Set the verdict an immediate action (or a resume) stands for. */
static int
hooktest_verdict(struct ts_hook_call *call, enum hooktest_action action,
		 const char *text)
{
	switch (action) {
	case HOOKTEST_ACCEPT:
		return ts_hook_accept(call);
	case HOOKTEST_REJECT:
		return ts_hook_reject(call, 550, "5.7.1", "%s", text);
	case HOOKTEST_TEMPFAIL:
		return ts_hook_tempfail(call, 451, "4.7.1", "%s", text);
	case HOOKTEST_MAILBOX:
		return ts_hook_deliver_to(call, "Junk");
	default:
		return TS_HOOK_CONTINUE;
	}
}

static void
hooktest_wait_free(struct hooktest_wait *wait)
{
	if (wait->timer != NULL)
		ts_timer_free(&wait->timer);
	free(wait->name);
	free(wait->text);
	free(wait);
}

/* The call ended without us: client gone, run cancelled or timed out. */
static void
hooktest_wait_cancel(void *arg)
{
	struct hooktest_wait *wait = arg;
	ts_log(wait->ctx, TS_LOG_INFO, "hooktest cancelled hook=%s",
	       wait->name);
	hooktest_wait_free(wait);
}

/* The wait is over: give the configured verdict (twice if asked). */
static void
hooktest_wait_fired(struct ts_timer *timer, void *arg)
{
	struct hooktest_wait *wait = arg;
	struct ts_ctx *ctx = wait->ctx;
	ts_hook_token token = wait->token;
	bool twice = wait->double_resume;
	int rc = TS_HOOK_CONTINUE;

	struct ts_hook_call *call = ts_hook_lookup(ctx, token);
	if (call != NULL)
		rc = hooktest_verdict(call, wait->resume, wait->text);
	ts_log(ctx, TS_LOG_INFO, "hooktest resumed hook=%s", wait->name);
	/* Free first: the resume may run the rest of the pipeline. */
	hooktest_wait_free(wait);
	int first = ts_hook_resume(ctx, token, rc);
	if (first != 0)
		ts_log(ctx, TS_LOG_WARN, "hooktest resume rc=%s",
		       ts_strerror(first));
	if (twice) {
		int second = ts_hook_resume(ctx, token, TS_HOOK_CONTINUE);
		ts_log(ctx, TS_LOG_INFO, "hooktest second resume rc=%s",
		       ts_strerror(second));
	}
}

/* Suspend the call; `never` has no timer and ends only by cancel. */
static int
hooktest_suspend(struct ts_hook_call *call, struct ts_ctx *ctx,
		 const struct hooktest_hook *h)
{
	struct hooktest_wait *wait = ts_xcalloc(1, sizeof(*wait));
	wait->ctx = ctx;
	wait->name = ts_xstrdup(h->name);
	wait->double_resume = h->action == HOOKTEST_DOUBLE_RESUME;
	wait->resume = h->resume;
	wait->text = ts_xstrdup(h->text);
	wait->token = ts_hook_suspend(call, hooktest_wait_cancel, wait);
	if (h->action != HOOKTEST_NEVER) {
		wait->timer = ts_timer_new(ctx, hooktest_wait_fired, wait);
		ts_timer_start(wait->timer, h->wait_ms, 0);
	}
	return TS_HOOK_PENDING;
}

/*
 * Attach `spec` ("method result [reason=x] [comment=x] [p.q=v…]", words
 * separated by single spaces) to txn; logs when the kernel refuses it.
 */
static void
hooktest_attach_result(struct ts_ctx *ctx, struct ts_txn *txn,
		       const char *spec)
{
	char *copy = ts_xstrdup(spec);
	char *words[2 + TS_AUTH_PROP_MAX + 2];
	size_t n = 0;
	for (char *save = NULL, *w = strtok_r(copy, " ", &save);
	     w != NULL && n < sizeof(words) / sizeof(words[0]);
	     w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	struct ts_auth_result r = { .method = n > 0 ? words[0] : "",
				    .result = n > 1 ? words[1] : "" };
	for (size_t i = 2; i < n; i++) {
		char *eq = strchr(words[i], '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(words[i], "reason") == 0)
			r.reason = eq + 1;
		else if (strcmp(words[i], "comment") == 0)
			r.comment = eq + 1;
		else if (r.prop_count < TS_AUTH_PROP_MAX)
			r.props[r.prop_count++] = (struct ts_auth_prop){
				.name = words[i], .value = eq + 1
			};
	}
	int rc = ts_txn_add_auth_result(txn, &r);
	if (rc != 0)
		ts_log(ctx, TS_LOG_WARN, "hooktest auth_result refused: %s",
		       ts_strerror(rc));
	free(copy);
}

/* One log line with what the transaction holds. */
static void
hooktest_report_txn(struct ts_ctx *ctx, enum ts_hook_point point,
		    const struct ts_txn *txn)
{
	const struct ts_txn_mail *m = ts_txn_mail(txn);
	char *rcpts = ts_xstrdup("");
	for (size_t i = 0; i < ts_txn_rcpt_count(txn); i++) {
		const struct ts_txn_rcpt *r = ts_txn_rcpt(txn, i);
		char *t = ts_xasprintf("%s%s<%s>/notify=%u/orcpt=%s;%s/"
				       "mailbox=%s",
				       rcpts, i > 0 ? "," : "", r->address,
				       r->notify,
				       r->orcpt_type ? r->orcpt_type : "-",
				       r->orcpt ? r->orcpt : "-",
				       r->mailbox ? r->mailbox : "-");
		free(rcpts);
		rcpts = t;
	}
	char *results = ts_xstrdup("");
	for (size_t i = 0; i < ts_txn_auth_result_count(txn); i++) {
		const struct ts_auth_result *r = ts_txn_auth_result(txn, i);
		char *t = ts_xasprintf("%s%s%s=%s", results, i > 0 ? "," : "",
				       r->method, r->result);
		free(results);
		results = t;
	}
	ts_log(ctx, TS_LOG_INFO,
	       "hooktest txn point=%s id=%s helo=%s account=%s mail=<%s> "
	       "smtputf8=%d requiretls=%d body=%d ret=%d envid=%s "
	       "rcpts=%s headers=%zu results=%s message=%s",
	       ts_hook_point_name(point), ts_txn_id(txn),
	       ts_txn_helo(txn) ? ts_txn_helo(txn) : "-",
	       ts_txn_account(txn) ? ts_txn_account(txn) : "-",
	       m ? m->address : "?", m ? m->smtputf8 : 0,
	       m ? m->requiretls : 0, m ? (int)m->body : 0,
	       m ? (int)m->ret : 0, m && m->envid ? m->envid : "-", rcpts,
	       ts_txn_header_count(txn), results,
	       ts_txn_message_path(txn) ? "yes" : "no");
	free(rcpts);
	free(results);
}

/* What every hook does; i is its section's index. */
static int
hooktest_hook_run(struct ts_hook_call *call, size_t i)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	struct hooktest *ht = ts_ctx_data(ctx);
	if (ht == NULL || i >= ht->count)
		return TS_HOOK_CONTINUE;
	const struct hooktest_hook *h = &ht->hooks[i];

	ts_log(ctx, TS_LOG_INFO, "hooktest hook=%s point=%s action=%s", h->name,
	       ts_hook_point_name(h->point), hooktest_action_names[h->action]);
	if (h->header_name != NULL)
		ts_hook_add_header(call, h->header_name, h->header_value);
	struct ts_txn *txn = ts_hook_call_txn(call);
	if (txn != NULL && h->auth_result != NULL)
		hooktest_attach_result(ctx, txn, h->auth_result);
	if (txn != NULL && h->report_txn)
		hooktest_report_txn(ctx, h->point, txn);
	switch (h->action) {
	case HOOKTEST_PENDING:
	case HOOKTEST_NEVER:
	case HOOKTEST_DOUBLE_RESUME:
		return hooktest_suspend(call, ctx, h);
	default:
		return hooktest_verdict(call, h->action, h->text);
	}
}

#define HOOKTEST_HOOK(i)                                       \
	static int hooktest_hook##i(struct ts_hook_call *call) \
	{                                                      \
		return hooktest_hook_run(call, i);             \
	}
HOOKTEST_HOOK(0)
HOOKTEST_HOOK(1)
HOOKTEST_HOOK(2)
HOOKTEST_HOOK(3)
HOOKTEST_HOOK(4)
HOOKTEST_HOOK(5)
HOOKTEST_HOOK(6)
HOOKTEST_HOOK(7)

static const ts_hook_fn hooktest_hooks[HOOKTEST_MAX] = {
	hooktest_hook0, hooktest_hook1, hooktest_hook2, hooktest_hook3,
	hooktest_hook4, hooktest_hook5, hooktest_hook6, hooktest_hook7,
};

/* --- the hookprobe protocol ----------------------------------------------- */

/* Per-connection state. */
struct hooktest_probe {
	struct ts_hook_run *run; /* pending run, or NULL */
	char *arg; /* the running point's argument */
};

static void
hooktest_probe_free(void *data)
{
	struct hooktest_probe *probe = data;
	/* The protocol's close has cancelled any run already. */
	free(probe->arg);
	free(probe);
}

static struct hooktest_probe *
hooktest_probe_get(struct ts_conn *conn)
{
	struct hooktest_probe *probe =
		ts_conn_data(conn, ts_conn_protocol_ctx(conn));
	if (probe == NULL) {
		probe = ts_xcalloc(1, sizeof(*probe));
		ts_conn_set_data(conn, ts_conn_protocol_ctx(conn), probe,
				 hooktest_probe_free);
	}
	return probe;
}

static void
hooktest_probe_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	if (res != NULL && (res->verdict == TS_VERDICT_REJECT ||
			    res->verdict == TS_VERDICT_TEMPFAIL)) {
		ts_conn_printf(conn, "554 %s\r\n",
			       res->text != NULL ? res->text : "refused");
		ts_conn_close(conn, "rejected");
		return;
	}
	hooktest_probe_get(conn);
	ts_conn_printf(conn, "200 hookprobe ready\r\n");
}

/* A run is over: report it in one line and read the next command. */
static void
hooktest_probe_done(const struct ts_hook_result *r, void *arg)
{
	struct ts_conn *conn = arg;
	struct hooktest_probe *probe =
		ts_conn_data(conn, ts_conn_protocol_ctx(conn));
	if (probe != NULL)
		probe->run = NULL;
	ts_conn_printf(conn,
		       "RESULT verdict=%s code=%d enhanced=%s module=%s "
		       "delay=%" PRIu64 " headers=%zu text=%s\r\n",
		       ts_verdict_name(r->verdict), r->code,
		       r->enhanced != NULL ? r->enhanced : "-",
		       r->module != NULL ? r->module : "-", r->delay_ms,
		       r->header_count, r->text != NULL ? r->text : "-");
	ts_conn_resume(conn);
}

/* "RUN <point> [arg]": run the point, pausing input until it is done. */
static void
hooktest_probe_run(struct ts_conn *conn, const char *rest)
{
	const char *space = strchr(rest, ' ');
	char *name = space != NULL ? ts_xstrndup(rest, (size_t)(space - rest))
				   : ts_xstrdup(rest);
	enum ts_hook_point point;
	int rc = ts_hook_point_parse(name, &point);
	free(name);
	if (rc != 0) {
		ts_conn_printf(conn, "501 unknown hook point\r\n");
		return;
	}
	struct hooktest_probe *probe = hooktest_probe_get(conn);
	if (probe->run != NULL) {
		ts_conn_printf(conn, "503 a run is pending\r\n");
		return;
	}
	free(probe->arg);
	probe->arg = space != NULL && space[1] != '\0' ? ts_xstrdup(space + 1)
						       : NULL;
	ts_conn_pause(conn);
	struct ts_hook_run *run = ts_hook_run(
		ts_conn_protocol_ctx(conn), point,
		&(struct ts_hook_args){ .conn = conn, .arg = probe->arg },
		hooktest_probe_done, conn);
	/* NULL: done already ran (and may have started another run). */
	if (run != NULL)
		probe->run = run;
}

static void
hooktest_probe_line(struct ts_conn *conn, const char *line, size_t len)
{
	if (strcmp(line, "QUIT") == 0) {
		ts_conn_printf(conn, "221 bye\r\n");
		ts_conn_close(conn, "quit");
	} else if (strncmp(line, "RUN ", 4) == 0) {
		hooktest_probe_run(conn, line + 4);
	} else if (strncmp(line, "SECRET ", 7) == 0) {
		/* For the log-level test: secrets and data have own levels. */
		struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
		ts_conn_log(conn, ctx, TS_LOG_TRACE, "hooktest trace marker");
		ts_conn_log(conn, ctx, TS_LOG_TRACEAUTH,
			    "hooktest auth secret=%s", line + 7);
		ts_conn_log(conn, ctx, TS_LOG_TRACEDATA,
			    "hooktest message data=%s", line + 7);
		ts_conn_printf(conn, "250 logged\r\n");
	} else {
		ts_conn_printf(conn, "500 unknown command\r\n");
	}
}

static void
hooktest_probe_shutdown(struct ts_conn *conn)
{
	ts_conn_printf(conn, "421 shutting down\r\n");
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	const struct hooktest *ht = ts_ctx_data(ctx);
	if (!ht->linger)
		ts_conn_close(conn, "shutdown");
}

static void
hooktest_probe_close(struct ts_conn *conn)
{
	struct hooktest_probe *probe =
		ts_conn_data(conn, ts_conn_protocol_ctx(conn));
	if (probe != NULL)
		ts_hook_run_cancel(&probe->run);
}

static const struct ts_protocol hooktest_probe_protocol = {
	.open = hooktest_probe_open,
	.line = hooktest_probe_line,
	.line_too_long = NULL,
	.shutdown = hooktest_probe_shutdown,
	.close = hooktest_probe_close,
};

/* --- module life cycle ---------------------------------------------------- */

/* Split "Name: value" into its two parts; TS_E_INVAL if malformed. */
static int
hooktest_header_split(const char *header, char **name_r, char **value_r)
{
	const char *colon = strchr(header, ':');
	if (colon == NULL || colon == header)
		return TS_E_INVAL;
	const char *value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	*name_r = ts_xstrndup(header, (size_t)(colon - header));
	*value_r = ts_xstrdup(value);
	return 0;
}

static int
hooktest_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	int rc = 0;
	size_t n = 0;
	for (const struct ts_cfg_sect *s = ts_cfg_next(cfg, "hooktest", NULL);
	     s != NULL; s = ts_cfg_next(cfg, "hooktest", s)) {
		if (++n > HOOKTEST_MAX)
			rc = ts_cfg_error(cfg, s, NULL,
					  "at most %d [hooktest] sections",
					  HOOKTEST_MAX);
		enum ts_hook_point point;
		const char *name = ts_cfg_str(s, "point");
		if (ts_hook_point_parse(name, &point) != 0)
			rc = ts_cfg_error(cfg, s, "point",
					  "unknown hook point '%s'", name);
		const char *header = ts_cfg_str(s, "header");
		char *hname, *hvalue;
		if (header != NULL) {
			if (hooktest_header_split(header, &hname, &hvalue) != 0)
				rc = ts_cfg_error(cfg, s, "header",
						  "'%s' is not 'Name: value'",
						  header);
			else {
				free(hname);
				free(hvalue);
			}
		}
	}
	return rc;
}

static void
hooktest_free(struct hooktest *ht)
{
	for (size_t i = 0; i < ht->count; i++) {
		free(ht->hooks[i].name);
		free(ht->hooks[i].text);
		free(ht->hooks[i].header_name);
		free(ht->hooks[i].header_value);
		free(ht->hooks[i].auth_result);
	}
	free(ht);
}

/* Read one section into h; TS_E_INVAL (logged) if it is unusable. */
static int
hooktest_read(struct ts_ctx *ctx, const struct ts_cfg_sect *s,
	      struct hooktest_hook *h)
{
	h->name = ts_xstrdup(ts_cfg_sect_name(s) != NULL ? ts_cfg_sect_name(s)
							 : "-");
	h->action = hooktest_action_parse(ts_cfg_str(s, "action"));
	h->resume = hooktest_action_parse(ts_cfg_str(s, "resume"));
	h->wait_ms = ts_cfg_duration_ms(s, "wait");
	h->prio = (int)ts_cfg_int(s, "priority");
	h->parallel = ts_cfg_bool(s, "parallel");
	h->text = ts_xstrdup(ts_cfg_str(s, "text"));
	const char *result = ts_cfg_str(s, "auth_result");
	h->auth_result = result != NULL ? ts_xstrdup(result) : NULL;
	h->report_txn = ts_cfg_bool(s, "report_txn");
	if (ts_hook_point_parse(ts_cfg_str(s, "point"), &h->point) != 0) {
		ts_log(ctx, TS_LOG_ERROR, "hooktest hook=%s: bad point",
		       h->name);
		return TS_E_INVAL;
	}
	const char *header = ts_cfg_str(s, "header");
	if (header != NULL && hooktest_header_split(header, &h->header_name,
						    &h->header_value) != 0) {
		ts_log(ctx, TS_LOG_ERROR, "hooktest hook=%s: bad header",
		       h->name);
		return TS_E_INVAL;
	}
	return 0;
}

static int
hooktest_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	struct hooktest *ht = ts_xcalloc(1, sizeof(*ht));
	int rc = 0;

	for (const struct ts_cfg_sect *s = ts_cfg_next(cfg, "hooktest", NULL);
	     s != NULL && rc == 0; s = ts_cfg_next(cfg, "hooktest", s)) {
		if (ht->count == HOOKTEST_MAX) {
			ts_log(ctx, TS_LOG_ERROR,
			       "hooktest: more than %d sections", HOOKTEST_MAX);
			rc = TS_E_INVAL;
			break;
		}
		struct hooktest_hook *h = &ht->hooks[ht->count];
		ht->count++; /* so hooktest_free releases it either way */
		rc = hooktest_read(ctx, s, h);
		if (rc == 0)
			rc = ts_hook_add(ctx, h->point,
					 hooktest_hooks[ht->count - 1], h->prio,
					 h->parallel ? TS_HOOK_PARALLEL : 0);
		if (rc != 0)
			ts_log(ctx, TS_LOG_ERROR,
			       "hooktest hook=%s: cannot add: %s", h->name,
			       ts_strerror(rc));
	}
	if (rc == 0)
		rc = ts_service_add(ctx, "protocol", "hookprobe",
				    &hooktest_probe_protocol,
				    sizeof(hooktest_probe_protocol));
	if (rc != 0) {
		hooktest_free(ht);
		return rc;
	}
	ht->linger = ts_cfg_bool(ts_cfg_module_section(cfg, ctx), "linger");
	ts_ctx_set_data(ctx, ht);
	ts_log(ctx, TS_LOG_DEBUG, "hooktest ready hooks=%zu", ht->count);
	return 0;
}

static void
hooktest_shutdown(struct ts_ctx *ctx)
{
	struct hooktest *ht = ts_ctx_data(ctx);
	if (ht != NULL)
		hooktest_free(ht);
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(hooktest) = {
	TS_MODULE_HEADER,
	.name = "hooktest",
	.version = "1.0",
	.description = "test hooks driven by [hooktest NAME] sections",
	.config_keys = hooktest_module_keys,
	.config_sections = hooktest_sections,
	.init = hooktest_init,
	.check = hooktest_check,
	.shutdown = hooktest_shutdown,
};
