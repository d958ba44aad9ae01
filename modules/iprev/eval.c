/*
 * modules/iprev/eval.c — one iprev check on an injected resolver.
 *
 * PTR of the address first; then the forward lookups of the names it
 * returned (A for IPv4, AAAA for IPv6) all at once, so the check takes
 * two DNS round trips however many names there are.  At most max_names
 * names are asked about (RFC 7208 5.5 uses 10 for the same walk; a
 * reverse zone with hundreds of PTR records must not cost hundreds of
 * queries).  The first forward answer that lists the address passes
 * and cancels the rest.  Results follow RFC 8601 2.7.3: no PTR data is
 * permerror, names that do not lead back are fail, a DNS failure that
 * might have passed is temperror.  A DNSSEC-bogus answer counts as a
 * failed lookup, never as data.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/common.h>

#include "iprev.h"

struct iprev_forward {
	struct iprev_eval *e;
	void *query; /* NULL once answered or cancelled */
	char *name;
};

struct iprev_eval {
	struct iprev_resolver resolver;
	char *ip;
	int family;
	unsigned char addr[16];
	unsigned max_names;
	iprev_done_fn fn;
	void *arg;
	void *ptr_query;
	struct iprev_forward *forward;
	size_t forward_count, pending;
	bool forward_temperror;
	bool running; /* inside iprev_eval_run: report by return value */
	bool done;
	struct iprev_outcome outcome;
	char *outcome_name;
};

const char *
iprev_result_name(enum iprev_result result)
{
	switch (result) {
	case IPREV_PASS:
		return "pass";
	case IPREV_FAIL:
		return "fail";
	case IPREV_TEMPERROR:
		return "temperror";
	default:
		return "permerror";
	}
}

struct iprev_eval *
iprev_eval_new(const struct iprev_resolver *resolver, const char *ip,
	       unsigned max_names, iprev_done_fn fn, void *arg)
{
	struct iprev_eval *e = ts_xcalloc(1, sizeof(*e));
	e->resolver = *resolver;
	e->ip = ts_xstrdup(ip);
	e->max_names = max_names > 0 ? max_names : 1;
	e->fn = fn;
	e->arg = arg;
	e->outcome.all_secure = true;
	return e;
}

static void
iprev_cancel_all(struct iprev_eval *e)
{
	if (e->ptr_query != NULL) {
		e->resolver.cancel(e->resolver.ctx, e->ptr_query);
		e->ptr_query = NULL;
	}
	for (size_t i = 0; i < e->forward_count; i++) {
		if (e->forward[i].query != NULL) {
			e->resolver.cancel(e->resolver.ctx,
					   e->forward[i].query);
			e->forward[i].query = NULL;
		}
	}
	e->pending = 0;
}

/* Settle the outcome; tell the caller unless run will return it. */
static void
iprev_finish(struct iprev_eval *e, enum iprev_result result,
	     const char *name, const char *problem)
{
	if (e->done)
		return;
	e->done = true;
	iprev_cancel_all(e);
	e->outcome.result = result;
	if (name == NULL && e->forward_count > 0)
		name = e->forward[0].name;
	e->outcome_name = name != NULL ? ts_xstrdup(name) : NULL;
	e->outcome.name = e->outcome_name;
	e->outcome.problem = problem;
	if (!e->running)
		e->fn(&e->outcome, e->arg); /* may free e: nothing after */
}

static void
iprev_note_answer(struct iprev_eval *e, const struct ts_dns_answer *ans)
{
	e->outcome.lookups++;
	if (ans->security != TS_DNS_SECURE)
		e->outcome.all_secure = false;
	if (ans->security == TS_DNS_BOGUS)
		e->outcome.any_bogus = true;
}

static void
iprev_forward_answer(const struct ts_dns_answer *ans, void *arg)
{
	struct iprev_forward *f = arg;
	struct iprev_eval *e = f->e;

	f->query = NULL;
	e->pending--;
	iprev_note_answer(e, ans);
	if (ans->security == TS_DNS_BOGUS || ans->status == TS_DNS_TEMPFAIL) {
		e->forward_temperror = true;
	} else if (ans->status == TS_DNS_OK) {
		for (size_t i = 0; i < ans->count; i++) {
			unsigned char got[16];
			size_t len = e->family == AF_INET ? 4 : 16;
			if (inet_pton(e->family, ans->records[i].u.addr,
				      got) == 1 &&
			    memcmp(got, e->addr, len) == 0) {
				iprev_finish(e, IPREV_PASS, f->name, NULL);
				return;
			}
		}
	}
	if (e->pending == 0)
		iprev_finish(e,
			     e->forward_temperror ? IPREV_TEMPERROR
						  : IPREV_FAIL,
			     NULL,
			     e->forward_temperror
				     ? "forward lookup of the PTR name failed"
				     : "no PTR name resolves to the address");
}

static void
iprev_ptr_answer(const struct ts_dns_answer *ans, void *arg)
{
	struct iprev_eval *e = arg;

	e->ptr_query = NULL;
	iprev_note_answer(e, ans);
	if (ans->security == TS_DNS_BOGUS) {
		iprev_finish(e, IPREV_TEMPERROR, NULL,
			     "PTR answer failed DNSSEC validation");
		return;
	}
	if (ans->status == TS_DNS_TEMPFAIL) {
		iprev_finish(e, IPREV_TEMPERROR, NULL, "PTR lookup failed");
		return;
	}
	size_t names = 0;
	for (size_t i = 0; ans->status == TS_DNS_OK && i < ans->count; i++)
		if (ans->records[i].u.name != NULL &&
		    ans->records[i].u.name[0] != '\0')
			names++;
	if (names == 0) {
		iprev_finish(e, IPREV_PERMERROR, NULL, "no PTR record");
		return;
	}
	if (names > e->max_names)
		names = e->max_names;
	e->forward = ts_xcalloc(names, sizeof(*e->forward));
	for (size_t i = 0; i < ans->count && e->forward_count < names; i++) {
		const char *name = ans->records[i].u.name;
		if (name == NULL || name[0] == '\0')
			continue;
		struct iprev_forward *f = &e->forward[e->forward_count++];
		f->e = e;
		f->name = ts_xstrdup(name);
	}
	/* Every forward lookup starts before any answer can arrive. */
	enum ts_dns_type type = e->family == AF_INET ? TS_DNS_A : TS_DNS_AAAA;
	for (size_t i = 0; i < e->forward_count; i++) {
		struct iprev_forward *f = &e->forward[i];
		f->query = e->resolver.lookup(e->resolver.ctx, f->name, type,
					      iprev_forward_answer, f);
		if (f->query != NULL)
			e->pending++;
		else
			e->forward_temperror = true;
	}
	if (e->pending == 0)
		iprev_finish(e, IPREV_TEMPERROR, NULL,
			     "cannot start the forward lookups");
}

bool
iprev_eval_run(struct iprev_eval *e)
{
	e->running = true;
	if (inet_pton(AF_INET, e->ip, e->addr) == 1)
		e->family = AF_INET;
	else if (inet_pton(AF_INET6, e->ip, e->addr) == 1)
		e->family = AF_INET6;
	if (e->family == 0) {
		iprev_finish(e, IPREV_PERMERROR, NULL,
			     "client address is not an IP address");
	} else {
		e->ptr_query = e->resolver.lookup_ptr(e->resolver.ctx, e->ip,
						      iprev_ptr_answer, e);
		if (e->ptr_query == NULL)
			iprev_finish(e, IPREV_TEMPERROR, NULL,
				     "cannot start the PTR lookup");
	}
	e->running = false;
	return e->done;
}

const struct iprev_outcome *
iprev_eval_outcome(const struct iprev_eval *e)
{
	return e->done ? &e->outcome : NULL;
}

void
iprev_eval_free(struct iprev_eval **ep)
{
	struct iprev_eval *e = *ep;
	if (e == NULL)
		return;
	*ep = NULL;
	iprev_cancel_all(e);
	for (size_t i = 0; i < e->forward_count; i++)
		free(e->forward[i].name);
	free(e->forward);
	free(e->outcome_name);
	free(e->ip);
	free(e);
}
