/*
 * kernel/queue/tls-policy.c — the outbound_tls_policy hook point: what a
 * recipient domain demands of TLS, gathered from the hooks (DANE, MTA-STS,
 * local rules) for a transport to apply.
 *
 * A transport asks once per delivery (ts_delivery_run_tls_policy); hooks
 * add to the delivery's policy with ts_delivery_set_tls_policy, which
 * copies everything, combining several hooks (the stricter mode wins).
 * The transport's callback never runs inside its own call — a run that
 * finished at once is reported from a zero timer — and never after the
 * delivery ended: ts_delivery_finish and the delivery's free cancel the
 * hooks and the timer.  This file enforces nothing; transports do.
 * Loop thread only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/queue/queue-private.h"

struct ts__tls_policy {
	struct ts_tls_policy pub; /* pointers into the copies below */
	char **patterns;
	struct ts_tls_policy_host *hosts;
	char *source;
	/* a run in progress */
	struct ts_hook_run *run;
	struct ts_timer *timer; /* reports a run that finished at once */
	ts_delivery_tls_policy_fn fn;
	void *arg;
	bool running, at_once;
	/* the result of a run that finished at once */
	enum ts_verdict verdict;
	int code;
	char *enhanced, *text;
};

static struct ts__tls_policy *
ts_policy_get(struct ts_delivery *d)
{
	if (d->policy == NULL)
		d->policy = ts_xcalloc(1, sizeof(*d->policy));
	return d->policy;
}

static void
ts_policy_hosts_free(struct ts__tls_policy *p)
{
	for (size_t i = 0; i < p->pub.host_count; i++) {
		struct ts_tls_policy_host *h = &p->hosts[i];
		for (size_t j = 0; j < h->tlsa_count; j++)
			free((void *)h->tlsa[j].data);
		free((void *)h->tlsa);
		free((char *)h->name);
	}
	free(p->hosts);
	p->hosts = NULL;
	p->pub.hosts = NULL;
	p->pub.host_count = 0;
}

static void
ts_policy_patterns_free(struct ts__tls_policy *p)
{
	for (size_t i = 0; i < p->pub.mx_pattern_count; i++)
		free(p->patterns[i]);
	free(p->patterns);
	p->patterns = NULL;
	p->pub.mx_patterns = NULL;
	p->pub.mx_pattern_count = 0;
}

void
ts__delivery_policy_end(struct ts_delivery *d)
{
	struct ts__tls_policy *p = d->policy;
	if (p == NULL)
		return;
	ts_hook_run_cancel(&p->run);
	ts_timer_free(&p->timer);
	ts_policy_hosts_free(p);
	ts_policy_patterns_free(p);
	free(p->source);
	free(p->enhanced);
	free(p->text);
	free(p);
	d->policy = NULL;
}

int
ts_delivery_set_tls_policy(struct ts_delivery *d,
			   const struct ts_tls_policy *policy)
{
	struct ts__tls_policy *p = d->policy;
	if (p == NULL || !p->running || policy == NULL)
		return TS_E_STATE;
	if (policy->mode > p->pub.mode)
		p->pub.mode = policy->mode;
	if (policy->mx_pattern_count > 0) {
		ts_policy_patterns_free(p);
		p->patterns = ts_xcalloc(policy->mx_pattern_count,
					 sizeof(*p->patterns));
		for (size_t i = 0; i < policy->mx_pattern_count; i++)
			p->patterns[i] = ts_xstrdup(policy->mx_patterns[i]);
		p->pub.mx_patterns = (const char *const *)p->patterns;
		p->pub.mx_pattern_count = policy->mx_pattern_count;
	}
	if (policy->host_count > 0) {
		size_t n = p->pub.host_count + policy->host_count;
		p->hosts = ts_xrealloc(p->hosts, n * sizeof(*p->hosts));
		for (size_t i = 0; i < policy->host_count; i++) {
			const struct ts_tls_policy_host *src =
				&policy->hosts[i];
			struct ts_tls_policy_host *h =
				&p->hosts[p->pub.host_count + i];
			struct ts_tls_tlsa *tlsa = ts_xcalloc(
				src->tlsa_count ? src->tlsa_count : 1,
				sizeof(*tlsa));
			for (size_t j = 0; j < src->tlsa_count; j++) {
				tlsa[j] = src->tlsa[j];
				uint8_t *data = ts_xmalloc(
					src->tlsa[j].len ? src->tlsa[j].len
							 : 1);
				memcpy(data, src->tlsa[j].data,
				       src->tlsa[j].len);
				tlsa[j].data = data;
			}
			*h = (struct ts_tls_policy_host){
				.name = ts_xstrdup(src->name != NULL
							   ? src->name
							   : ""),
				.tlsa = tlsa,
				.tlsa_count = src->tlsa_count,
			};
		}
		p->pub.hosts = p->hosts;
		p->pub.host_count = n;
	}
	if (policy->source != NULL && policy->source[0] != '\0') {
		char *joined = p->source == NULL
				       ? ts_xstrdup(policy->source)
				       : ts_xasprintf("%s+%s", p->source,
						      policy->source);
		free(p->source);
		p->source = joined;
		p->pub.source = p->source;
	}
	return 0;
}

const struct ts_tls_policy *
ts_delivery_tls_policy(const struct ts_delivery *d)
{
	static const struct ts_tls_policy none = {
		.mode = TS_TLS_POLICY_OPPORTUNISTIC,
	};
	return d->policy != NULL ? &d->policy->pub : &none;
}

static void
ts_policy_report(struct ts_delivery *d, const struct ts_hook_result *res)
{
	struct ts__tls_policy *p = d->policy;
	p->running = false;
	ts_delivery_tls_policy_fn fn = p->fn;
	void *arg = p->arg;
	p->fn = NULL;
	fn(d, res, arg); /* may end d: nothing after this */
}

static void
ts_policy_timer(struct ts_timer *timer, void *arg)
{
	(void)timer;
	struct ts_delivery *d = arg;
	struct ts__tls_policy *p = d->policy;
	struct ts_hook_result res = {
		.verdict = p->verdict,
		.code = p->code,
		.enhanced = p->enhanced,
		.text = p->text,
	};
	ts_policy_report(d, &res);
}

static void
ts_policy_done(const struct ts_hook_result *res, void *arg)
{
	struct ts_delivery *d = arg;
	struct ts__tls_policy *p = d->policy;
	p->run = NULL;
	if (!p->at_once) {
		ts_policy_report(d, res);
		return;
	}
	/* Inside ts_delivery_run_tls_policy: report from the loop. */
	p->verdict = res->verdict;
	p->code = res->code;
	free(p->enhanced);
	free(p->text);
	p->enhanced = res->enhanced != NULL ? ts_xstrdup(res->enhanced) : NULL;
	p->text = res->text != NULL ? ts_xstrdup(res->text) : NULL;
	if (p->timer == NULL)
		p->timer = ts_timer_new(&d->queue->kernel->kctx,
					ts_policy_timer, d);
	ts_timer_start(p->timer, 0, 0);
}

int
ts_delivery_run_tls_policy(struct ts_delivery *d, ts_delivery_tls_policy_fn fn,
			   void *arg)
{
	struct ts__tls_policy *p = ts_policy_get(d);
	if (p->running || fn == NULL)
		return TS_E_STATE;
	p->running = true;
	p->at_once = true;
	p->fn = fn;
	p->arg = arg;
	struct ts_hook_args args = { .subject = d, .arg = d->entry->domain };
	struct ts_hook_run *run =
		ts_hook_run(&d->queue->kernel->kctx,
			    TS_HOOK_OUTBOUND_TLS_POLICY, &args, ts_policy_done, d);
	/* d->policy is still p: nothing reported yet */
	p->at_once = false;
	if (run != NULL)
		p->run = run;
	return 0;
}
