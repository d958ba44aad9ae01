/*
 * modules/dmarc/eval.c — one message's DMARC evaluation (RFC 9989).
 *
 * For each From domain: a policy walk finds the DMARC policy record
 * ("DMARC Policy Discovery"); identifiers that equal the From domain align at
 * once (strict and relaxed); otherwise, for relaxed alignment, an
 * Organizational Domain walk from the From domain and one from each
 * SPF/DKIM-passing identifier below that Organizational Domain decide whether
 * their Organizational Domains are equal ("Identifier Alignment Explained",
 * "Organizational Domain Discovery").  A message that does
 * not pass gets temperror when SPF, DKIM or a walk failed temporarily
 * ("Determine Handling Policy", last paragraphs), else fail with the policy of
 * the record: p for the record's own domain, else np for a non-existent From
 * domain (one A lookup: NXDOMAIN, RFC 8020), sp, or p.  t=y (or RFC 7489's pct
 * below 100, read as DMARCbis says) asks for testing: one step less strict.
 *
 * Several From domains (RFC 9989 "Extract Author Domain" exempts such messages;
 * RFC 7489 6.6.1 let receivers apply the strictest policy): we evaluate
 * each and the strictest outcome wins, so that adding an address does not
 * switch DMARC off.  No From domain at all is a permerror.
 *
 * The evaluation is a state machine: it runs until it waits for an answer
 * from the injected resolver and goes on from the answer's callback.  One
 * lookup is in flight at a time; TXT answers are cached for the message,
 * so walks that share names share queries.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/common.h>

#include "dmarc.h"

#define DMARC_CACHE_MAX 48
#define DMARC_DEFAULT_MAX_QUERIES 40

enum dmarc_stage {
	ST_START_DOMAIN,
	ST_POLICY,
	ST_ORG_FROM,
	ST_ALIGN,
	ST_DECIDE,
	ST_EXISTS,
	ST_NEXT_DOMAIN,
	ST_DONE,
};

struct dmarc_cache_entry {
	char name[DMARC_NAME_MAX + 8];
	struct dmarc_lookup lookup;
};

/* One From domain's evaluation. */
struct dmarc_domain_state {
	struct dmarc_outcome o;
	char domain[DMARC_NAME_MAX];
	char policy_domain[DMARC_NAME_MAX];
	char org[DMARC_NAME_MAX];
	struct dmarc_record rec;
	bool align_temperror;
	bool exists_asked, nonexistent;
};

struct dmarc_eval {
	struct dmarc_resolver res;
	dmarc_done_fn done;
	void *arg;

	/* the request, copied */
	struct dmarc_from from;
	char *spf_domain;
	bool spf_temperror;
	char **dkim;
	size_t dkim_count;
	bool dkim_temperror;
	unsigned max_queries;

	enum dmarc_stage stage;
	size_t di; /* the From domain being evaluated */
	struct dmarc_domain_state *ds;
	struct dmarc_walk walk;
	size_t ident; /* 0: SPF, 1..: DKIM domain ident-1 */
	bool ident_walking;

	struct dmarc_cache_entry cache[DMARC_CACHE_MAX];
	size_t cache_count;

	void *query; /* in flight */
	bool pending, advancing, finished;
	enum ts_dns_type pending_type;
	char pending_name[DMARC_NAME_MAX + 8];
	unsigned queries, answers;
	bool insecure_seen, bogus_seen;
	struct dmarc_outcome final;
};

static void dmarc_advance(struct dmarc_eval *ev);

static struct dmarc_lookup *
dmarc_cache_find(struct dmarc_eval *ev, const char *name)
{
	for (size_t i = 0; i < ev->cache_count; i++)
		if (strcmp(ev->cache[i].name, name) == 0)
			return &ev->cache[i].lookup;
	return NULL;
}

static void
dmarc_cache_add(struct dmarc_eval *ev, const char *name,
		const struct dmarc_lookup *l)
{
	struct dmarc_cache_entry *e;

	if (ev->cache_count == DMARC_CACHE_MAX)
		return;
	e = &ev->cache[ev->cache_count++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->lookup = *l;
}

static void
dmarc_answer(const struct ts_dns_answer *a, void *arg)
{
	struct dmarc_eval *ev = arg;

	ev->query = NULL;
	ev->pending = false;
	ev->answers++;
	if (a->security == TS_DNS_BOGUS)
		ev->bogus_seen = true;
	else if (a->security != TS_DNS_SECURE)
		ev->insecure_seen = true;
	if (ev->pending_type == TS_DNS_TXT) {
		struct dmarc_lookup l;

		dmarc_lookup_from_answer(a, &l);
		dmarc_cache_add(ev, ev->pending_name, &l);
		dmarc_walk_feed(&ev->walk, &l);
	} else {
		/* the existence check (RFC 9989 np; RFC 8020) */
		ev->ds[ev->di].nonexistent = a->status == TS_DNS_NXDOMAIN &&
					     a->security != TS_DNS_BOGUS;
	}
	if (!ev->advancing)
		dmarc_advance(ev);
}

/* Start a lookup; false (and no callback) when it could not start. */
static bool
dmarc_ask(struct dmarc_eval *ev, const char *name, enum ts_dns_type type)
{
	snprintf(ev->pending_name, sizeof(ev->pending_name), "%s", name);
	ev->pending_type = type;
	ev->pending = true;
	ev->queries++;
	ev->query = ev->res.lookup(ev->res.ctx, name, type, dmarc_answer, ev);
	if (ev->query == NULL) {
		ev->pending = false;
		return false;
	}
	return true;
}

/*
 * Drive the current walk until it is over (true) or waits for DNS
 * (false).  A lookup that cannot start is a temporary failure.
 */
static bool
dmarc_walk_drive(struct dmarc_eval *ev)
{
	const char *q;

	while ((q = dmarc_walk_next(&ev->walk)) != NULL) {
		struct dmarc_lookup *c = dmarc_cache_find(ev, q);

		if (c != NULL) {
			dmarc_walk_feed(&ev->walk, c);
			continue;
		}
		if (dmarc_ask(ev, q, TS_DNS_TXT))
			return false;
		struct dmarc_lookup fail = { .status = DMARC_LOOKUP_TEMPFAIL };

		dmarc_walk_feed(&ev->walk, &fail);
	}
	return true;
}

static void
dmarc_domain_result(struct dmarc_eval *ev, enum dmarc_result r,
		    const char *reason)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];

	d->o.result = r;
	d->o.reason = reason;
	ev->stage = ST_NEXT_DOMAIN;
}

/* The policy walk is over: the record, or why there is none. */
static void
dmarc_policy_walked(struct dmarc_eval *ev)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];
	bool need_org;

	if (ev->walk.temperror) {
		dmarc_domain_result(ev, DMARC_TEMPERROR,
				    "DNS error looking up the DMARC record");
		return;
	}
	if (ev->walk.found_count == 0) {
		dmarc_domain_result(ev, DMARC_NONE, "no DMARC record");
		return;
	}
	d->rec = ev->walk.found[0].rec;
	snprintf(d->policy_domain, sizeof(d->policy_domain), "%s",
		 ev->walk.found[0].domain);
	d->o.policy_domain = d->policy_domain;
	d->o.rec = &d->rec;
	if (!d->rec.usable) {
		/* Policy Discovery: no valid p (nor rua): no DMARC applied */
		dmarc_domain_result(ev, DMARC_PERMERROR,
				    "DMARC record without a valid policy");
		return;
	}
	/* identical identifiers align in both modes, no walk needed */
	if (ev->spf_domain != NULL &&
	    dmarc_domain_equal(ev->spf_domain, d->domain))
		d->o.spf_aligned = true;
	for (size_t i = 0; i < ev->dkim_count; i++)
		if (dmarc_domain_equal(ev->dkim[i], d->domain))
			d->o.dkim_aligned = true;
	need_org = !d->o.spf_aligned && !d->o.dkim_aligned &&
		   ((ev->spf_domain != NULL && !d->rec.aspf_strict) ||
		    (ev->dkim_count > 0 && !d->rec.adkim_strict));
	if (need_org) {
		dmarc_walk_init(&ev->walk, d->domain, DMARC_WALK_ORG);
		ev->stage = ST_ORG_FROM;
	} else {
		ev->stage = ST_DECIDE;
	}
}

/* Pick the next identifier needing an Organizational Domain walk. */
static void
dmarc_align_next(struct dmarc_eval *ev)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];

	for (; ev->ident < 1 + ev->dkim_count; ev->ident++) {
		const char *id = ev->ident == 0 ? ev->spf_domain
						: ev->dkim[ev->ident - 1];
		bool strict = ev->ident == 0 ? d->rec.aspf_strict
					     : d->rec.adkim_strict;

		/* an Organizational Domain is a suffix of its domain */
		if (id == NULL || strict || !dmarc_domain_within(id, d->org))
			continue;
		/*
		 * Past the query budget an identifier does not align: a
		 * message cannot buy a temperror with many signatures.
		 */
		if (ev->queries >= ev->max_queries)
			continue;
		dmarc_walk_init(&ev->walk, id, DMARC_WALK_ORG);
		ev->ident_walking = true;
		return;
	}
	ev->stage = ST_DECIDE;
}

/* An identifier's Organizational Domain walk is over. */
static void
dmarc_ident_walked(struct dmarc_eval *ev)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];
	char org[DMARC_NAME_MAX];

	ev->ident_walking = false;
	if (ev->walk.temperror) {
		d->align_temperror = true;
	} else if (dmarc_domain_equal(dmarc_walk_org(&ev->walk, org), d->org)) {
		if (ev->ident == 0)
			d->o.spf_aligned = true;
		else
			d->o.dkim_aligned = true;
		ev->stage = ST_DECIDE;
		return;
	}
	ev->ident++;
	dmarc_align_next(ev);
}

/* The policy a failing message gets (Policy Discovery), t/pct. */
static void
dmarc_fail(struct dmarc_eval *ev)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];
	struct dmarc_outcome *o = &d->o;

	if (strcmp(d->policy_domain, d->domain) == 0) {
		o->policy_tag = 'p';
		o->policy = d->rec.p;
	} else if (d->nonexistent && d->rec.np_set) {
		o->policy_tag = 'n';
		o->policy = d->rec.np;
	} else if (d->rec.sp_set) {
		o->policy_tag = 's';
		o->policy = d->rec.sp;
	} else {
		o->policy_tag = 'p';
		o->policy = d->rec.p;
	}
	/* t=y; RFC 7489 pct as DMARCbis reads it: below 100 is testing */
	o->testing = d->rec.t == 1 ||
		     (d->rec.t == -1 && d->rec.pct >= 0 && d->rec.pct < 100);
	o->disposition = o->policy;
	if (o->testing)
		o->disposition = o->policy == DMARC_POLICY_REJECT
					 ? DMARC_POLICY_QUARANTINE
					 : DMARC_POLICY_NONE;
	dmarc_domain_result(ev, DMARC_FAIL, "no aligned identifier passed");
}

static void
dmarc_decide(struct dmarc_eval *ev)
{
	struct dmarc_domain_state *d = &ev->ds[ev->di];

	if (d->o.spf_aligned || d->o.dkim_aligned) {
		dmarc_domain_result(ev, DMARC_PASS, NULL);
		return;
	}
	/* with a temporary failure the policy cannot be applied */
	if (ev->spf_temperror || ev->dkim_temperror || d->align_temperror) {
		dmarc_domain_result(
			ev, DMARC_TEMPERROR,
			d->align_temperror ? "DNS error in the tree walk"
			: ev->spf_temperror
				? "SPF temperror and no aligned pass"
				: "DKIM temperror and no aligned pass");
		return;
	}
	if (strcmp(d->policy_domain, d->domain) != 0 && d->rec.np_set) {
		ev->stage = ST_EXISTS;
		return;
	}
	dmarc_fail(ev);
}

/* How strict a domain's outcome is, to pick the one that decides. */
static int
dmarc_rank(const struct dmarc_outcome *o)
{
	switch (o->result) {
	case DMARC_FAIL:
		return 100 + 10 * (int)o->disposition + (int)o->policy;
	case DMARC_TEMPERROR:
		return 3;
	case DMARC_PERMERROR:
		return 2;
	case DMARC_PASS:
		return 1;
	default:
		return 0;
	}
}

static void
dmarc_finish(struct dmarc_eval *ev)
{
	const struct dmarc_from *f = &ev->from;

	memset(&ev->final, 0, sizeof(ev->final));
	if (f->count == 0 || f->too_many) {
		ev->final.result = DMARC_PERMERROR;
		ev->final.reason = f->too_many	    ? "too many From domains"
				   : f->fields == 0 ? "no From header field"
				   : f->bad_domain  ? "no usable From domain"
						    : "no From address";
	} else {
		size_t best = 0;

		for (size_t i = 1; i < f->count; i++)
			if (dmarc_rank(&ev->ds[i].o) >
			    dmarc_rank(&ev->ds[best].o))
				best = i;
		ev->final = ev->ds[best].o;
	}
	ev->final.queries = ev->queries;
	ev->final.answers = ev->answers;
	ev->final.dnssec_secure =
		ev->answers > 0 && !ev->insecure_seen && !ev->bogus_seen;
	ev->final.dnssec_bogus = ev->bogus_seen;
}

static void
dmarc_advance(struct dmarc_eval *ev)
{
	ev->advancing = true;
	while (!ev->pending && ev->stage != ST_DONE) {
		struct dmarc_domain_state *d =
			ev->di < ev->from.count ? &ev->ds[ev->di] : NULL;

		switch (ev->stage) {
		case ST_START_DOMAIN:
			if (d == NULL || ev->from.too_many) {
				ev->stage = ST_DONE;
				break;
			}
			d->o.domain = d->domain;
			dmarc_walk_init(&ev->walk, d->domain,
					DMARC_WALK_POLICY);
			ev->stage = ST_POLICY;
			break;
		case ST_POLICY:
			if (dmarc_walk_drive(ev))
				dmarc_policy_walked(ev);
			break;
		case ST_ORG_FROM:
			if (!dmarc_walk_drive(ev))
				break;
			if (ev->walk.temperror) {
				d->align_temperror = true;
				ev->stage = ST_DECIDE;
				break;
			}
			dmarc_walk_org(&ev->walk, d->org);
			d->o.org_domain = d->org;
			ev->ident = 0;
			ev->ident_walking = false;
			ev->stage = ST_ALIGN;
			dmarc_align_next(ev);
			break;
		case ST_ALIGN:
			if (ev->ident_walking && dmarc_walk_drive(ev))
				dmarc_ident_walked(ev);
			break;
		case ST_DECIDE:
			dmarc_decide(ev);
			break;
		case ST_EXISTS:
			/* dmarc_answer notes the answer; no start: exists */
			if (!d->exists_asked) {
				d->exists_asked = true;
				if (dmarc_ask(ev, d->domain, TS_DNS_A))
					break;
			}
			dmarc_fail(ev);
			break;
		case ST_NEXT_DOMAIN:
			ev->di++;
			ev->stage = ST_START_DOMAIN;
			break;
		case ST_DONE:
			break;
		}
	}
	ev->advancing = false;
	if (ev->stage == ST_DONE && !ev->finished) {
		ev->finished = true;
		dmarc_finish(ev);
		/* the callback may free ev: nothing after it */
		ev->done(&ev->final, ev->arg);
	}
}

struct dmarc_eval *
dmarc_eval_new(const struct dmarc_resolver *resolver,
	       const struct dmarc_request *req, dmarc_done_fn done, void *arg)
{
	struct dmarc_eval *ev = ts_xcalloc(1, sizeof(*ev));

	ev->res = *resolver;
	ev->done = done;
	ev->arg = arg;
	if (req->from != NULL) {
		ev->from = *req->from;
		for (size_t i = 0; i < ev->from.count; i++)
			ev->from.domains[i] = ts_xstrdup(req->from->domains[i]);
	}
	ev->spf_domain =
		req->spf_domain != NULL ? ts_xstrdup(req->spf_domain) : NULL;
	ev->spf_temperror = req->spf_temperror;
	ev->dkim = ts_xcalloc(req->dkim_count + 1, sizeof(char *));
	for (size_t i = 0; i < req->dkim_count; i++)
		ev->dkim[i] = ts_xstrdup(req->dkim_domains[i]);
	ev->dkim_count = req->dkim_count;
	ev->dkim_temperror = req->dkim_temperror;
	ev->max_queries = req->max_queries != 0 ? req->max_queries
						: DMARC_DEFAULT_MAX_QUERIES;
	ev->ds = ts_xcalloc(ev->from.count + 1, sizeof(*ev->ds));
	for (size_t i = 0; i < ev->from.count; i++)
		snprintf(ev->ds[i].domain, sizeof(ev->ds[i].domain), "%s",
			 ev->from.domains[i]);
	ev->pending_type = TS_DNS_TXT;
	ev->stage = ST_START_DOMAIN;
	return ev;
}

void
dmarc_eval_run(struct dmarc_eval *ev)
{
	dmarc_advance(ev);
}

void
dmarc_eval_free(struct dmarc_eval **evp)
{
	struct dmarc_eval *ev = *evp;

	if (ev == NULL)
		return;
	if (ev->pending && ev->query != NULL)
		ev->res.cancel(ev->res.ctx, ev->query);
	dmarc_from_clear(&ev->from);
	free(ev->spf_domain);
	for (size_t i = 0; i < ev->dkim_count; i++)
		free(ev->dkim[i]);
	free(ev->dkim);
	free(ev->ds);
	free(ev);
	*evp = NULL;
}
