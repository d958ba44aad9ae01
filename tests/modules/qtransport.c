/*
 * tests/modules/qtransport.c — a scripted transport for queue tests.
 *
 * Registers a "transport" service named "direct" (the name the queue
 * uses when no route matched) that delivers nothing: each recipient's
 * result follows from its localpart, so tests can drive the queue's
 * retries, DSNs and crash recovery without a network:
 *
 *   ok…        250 2.0.0 (delivered)
 *   perm…      550 5.1.1 no such user
 *   temp…      451 4.4.1 try later
 *   flakyN…    451 for the first N attempts, then 250 (N one digit)
 *   slow…      250 after [module qtransport] delay (a delivery in
 *              flight for a while)
 *
 * Every result is logged as "qtransport result id=… to=… attempt=…
 * code=… via=INSTANCE", which tests count.  A queue_route hook sends
 * [module qtransport] route_domain to the service "qrelay" (instance
 * "relay1") and refuses reject_domain.  Only the public plugin API.
 */
#include <stdlib.h>
#include <string.h>

#include <tessera/tessera.h>

static const struct ts_cfg_key qtransport_keys[] = {
	{ .name = "delay",
	  .type = TS_CFG_DURATION,
	  .default_value = "2s",
	  .doc = "how long slow… recipients take" },
	{ .name = "route_domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "recipient domain the route hook sends to qrelay/relay1" },
	{ .name = "reject_domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "recipient domain the route hook refuses (550 5.7.1)" },
	{ .name = NULL },
};

struct qtransport_slow {
	struct ts_ctx *ctx;
	struct ts_delivery *d;
	struct ts_timer *timer;
	char *instance;
};

struct qtransport {
	uint64_t delay;
	char *route_domain, *reject_domain;
};

/* The scripted result of recipient i at this attempt. */
static int
qtransport_code(const struct ts_delivery *d, size_t i, const char **enh_r,
		const char **text_r)
{
	const char *lp = ts_delivery_rcpt(d, i)->localpart;
	unsigned attempt = ts_delivery_attempt(d);
	*enh_r = "2.0.0";
	*text_r = "delivered (qtransport)";
	if (strncmp(lp, "perm", 4) == 0) {
		*enh_r = "5.1.1";
		*text_r = "no such user (qtransport)";
		return 550;
	}
	if (strncmp(lp, "temp", 4) == 0 ||
	    (strncmp(lp, "flaky", 5) == 0 && lp[5] >= '0' && lp[5] <= '9' &&
	     attempt <= (unsigned)(lp[5] - '0'))) {
		*enh_r = "4.4.1";
		*text_r = "try later (qtransport)";
		return 451;
	}
	return 250;
}

static void
qtransport_report(struct ts_ctx *ctx, struct ts_delivery *d,
		  const char *instance)
{
	for (size_t i = 0; i < ts_delivery_rcpt_count(d); i++) {
		const char *enh, *text;
		int code = qtransport_code(d, i, &enh, &text);
		ts_log(ctx, TS_LOG_INFO,
		       "qtransport result id=%s to=%s attempt=%u code=%d "
		       "via=%s",
		       ts_delivery_id(d), ts_delivery_rcpt(d, i)->address,
		       ts_delivery_attempt(d), code, instance);
		ts_delivery_rcpt_result(d, i, code, enh, text,
					"mx.qtransport.test [192.0.2.25]");
	}
	ts_delivery_finish(d, 451, "4.3.0", "not reported", NULL);
}

static void
qtransport_slow_fired(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct qtransport_slow *sl = arg;
	struct ts_delivery *d = sl->d;
	struct ts_ctx *ctx = sl->ctx;
	char *instance = sl->instance;
	ts_delivery_set_data(d, NULL);
	ts_timer_free(&sl->timer);
	free(sl);
	qtransport_report(ctx, d, instance);
	free(instance);
}

static void
qtransport_start(struct ts_ctx *ctx, const char *instance,
		 struct ts_delivery *d)
{
	bool slow = false;
	for (size_t i = 0; i < ts_delivery_rcpt_count(d); i++)
		slow |= strncmp(ts_delivery_rcpt(d, i)->localpart, "slow",
				4) == 0;
	if (!slow) {
		qtransport_report(ctx, d, instance);
		return;
	}
	struct qtransport_slow *sl = calloc(1, sizeof(*sl));
	if (sl == NULL)
		abort();
	sl->ctx = ctx;
	sl->d = d;
	sl->instance = ts_xstrdup(instance);
	sl->timer = ts_timer_new(ctx, qtransport_slow_fired, sl);
	ts_delivery_set_data(d, sl);
	const struct qtransport *qt = ts_ctx_data(ctx);
	ts_timer_start(sl->timer, qt->delay, 0);
}

static void
qtransport_cancel(struct ts_ctx *ctx, struct ts_delivery *d)
{
	(void)ctx;
	struct qtransport_slow *sl = ts_delivery_data(d);
	if (sl == NULL)
		return;
	ts_timer_free(&sl->timer);
	free(sl->instance);
	free(sl);
}

/* queue_route: route_domain goes through qrelay, reject_domain nowhere. */
static int
qtransport_route(struct ts_hook_call *call)
{
	const struct qtransport *qt = ts_ctx_data(ts_hook_call_ctx(call));
	const char *domain = ts_hook_call_arg(call);
	if (ts_hook_call_delivery(call) == NULL || domain == NULL)
		return TS_HOOK_CONTINUE;
	if (strcmp(domain, qt->reject_domain) == 0)
		return ts_hook_reject(call, 550, "5.7.1",
				      "no route to %s (qtransport)", domain);
	if (strcmp(domain, qt->route_domain) == 0)
		return ts_hook_route(call, "qrelay", "relay1");
	return TS_HOOK_CONTINUE;
}

static const struct ts_transport qtransport_vtable = {
	.start = qtransport_start,
	.cancel = qtransport_cancel,
};

static int
qtransport_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct qtransport *qt = ts_xcalloc(1, sizeof(*qt));
	qt->delay = ts_cfg_duration_ms(s, "delay");
	qt->route_domain = ts_xstrdup(ts_cfg_str(s, "route_domain"));
	qt->reject_domain = ts_xstrdup(ts_cfg_str(s, "reject_domain"));
	ts_ctx_set_data(ctx, qt);
	int rc = ts_service_add(ctx, "transport", "direct", &qtransport_vtable,
				sizeof(qtransport_vtable));
	if (rc == 0)
		rc = ts_service_add(ctx, "transport", "qrelay",
				    &qtransport_vtable,
				    sizeof(qtransport_vtable));
	if (rc == 0)
		rc = ts_hook_add(ctx, TS_HOOK_QUEUE_ROUTE, qtransport_route, 0,
				 0);
	return rc;
}

static void
qtransport_shutdown(struct ts_ctx *ctx)
{
	struct qtransport *qt = ts_ctx_data(ctx);
	if (qt != NULL) {
		free(qt->route_domain);
		free(qt->reject_domain);
		free(qt);
	}
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(qtransport) = {
	TS_MODULE_HEADER,
	.name = "qtransport",
	.version = "1.0",
	.description = "scripted transport for queue tests",
	.config_keys = qtransport_keys,
	.init = qtransport_init,
	.shutdown = qtransport_shutdown,
};
