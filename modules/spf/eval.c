/*
 * modules/spf/eval.c — check_host() (RFC 7208 section 4) as a state
 * machine driven by DNS answers.
 *
 * One evaluation walks a stack of frames: the checked domain, then one per
 * include (a redirect replaces its frame's record, 6.1).  At most one
 * lookup is in flight; its answer calls the continuation stored in
 * ev->cont, which moves the machine on.  Nothing blocks: the resolver is
 * injected (struct spf_resolver), so tests can feed zone data directly.
 * Limits (4.6.4): max_dns_mechanisms terms that query DNS, max_void_lookups
 * empty answers, 10 MX names and 10 PTR names.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "spf.h"

#define SPF_MAX_NAMES 10 /* 4.6.4: MX and PTR names looked at */

struct spf_frame {
	struct spf_frame *parent;
	char *domain;
	struct spf_record *rec;
	size_t pos; /* current term */
	bool redirected; /* a "none" here is a permerror (6.1) */
	bool counted; /* the current term was counted against the limit */
	char *target; /* current term's expanded domain */
	char **names; /* MX exchanges being checked */
	size_t nnames, iname;
};

typedef void (*spf_cont_fn)(struct spf_eval *ev,
			    const struct ts_dns_answer *answer);

struct spf_eval {
	struct spf_resolver res;
	spf_done_fn done;
	void *done_arg;
	char *ip_text, *sender, *local, *sender_domain, *helo, *receiver;
	int family;
	uint8_t ip[16];
	unsigned max_dns, max_void, dns_terms, void_lookups;
	time_t now;

	struct spf_frame *cur;
	void *query;
	spf_cont_fn cont;

	/* validated PTR names (5.5), computed once on demand */
	int ptr_state; /* 0 not yet, 1 done */
	char **ptr_names; /* PTR answers, up to 10 */
	size_t ptr_count, ptr_i;
	char **valid; /* those whose A/AAAA include the client */
	size_t valid_count;
	spf_cont_fn after_ptr; /* what to resume after validation */
	char *p; /* %{p}, once chosen for the current domain */

	char *exp_text;
	char *problem_buf;
	bool finished;
	struct spf_outcome out;
};

static void spf_next_term(struct spf_eval *ev);
static void spf_frame_result(struct spf_eval *ev, enum spf_result r);
static void spf_start_frame(struct spf_eval *ev, const char *domain);

const char *
spf_result_name(enum spf_result result)
{
	static const char *const names[] = {
		"none",	    "neutral",	 "pass",      "fail",
		"softfail", "temperror", "permerror",
	};

	return (unsigned)result < 7 ? names[result] : "permerror";
}

static void
spf_free_names(char ***names, size_t *count)
{
	for (size_t i = 0; i < *count; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
	*count = 0;
}

static void
spf_frame_free(struct spf_frame *f)
{
	free(f->domain);
	spf_record_free(&f->rec);
	free(f->target);
	spf_free_names(&f->names, &f->nnames);
	free(f);
}

/* --- DNS -------------------------------------------------------------- */

static void
spf_dns_cb(const struct ts_dns_answer *answer, void *arg)
{
	struct spf_eval *ev = arg;
	spf_cont_fn cont = ev->cont;

	ev->query = NULL;
	ev->cont = NULL;
	ev->out.lookups++;
	if (answer->security != TS_DNS_SECURE)
		ev->out.all_secure = false;
	if (answer->security == TS_DNS_BOGUS)
		ev->out.any_bogus = true;
	cont(ev, answer);
}

/* RFC 1035 2.3.4: labels of 1..63 octets, at most 253 in all. */
static bool
spf_name_valid(const char *name)
{
	size_t n = strlen(name), label = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && name[i] != '.') {
			if (++label > 63)
				return false;
		} else if (label == 0) {
			return false;
		} else {
			label = 0;
		}
	}
	return true;
}

static void
spf_lookup(struct spf_eval *ev, const char *name, enum ts_dns_type type,
	   spf_cont_fn cont)
{
	static const struct ts_dns_answer fail = {
		.status = TS_DNS_TEMPFAIL,
	};
	static const struct ts_dns_answer nxdomain = {
		.status = TS_DNS_NXDOMAIN,
		.rcode = 3,
	};

	/*
	 * A target name no DNS query can carry (an empty or too long label,
	 * often from a macro) is treated as non-existent, like a malformed
	 * <domain> in 4.3 (the suites accept this; RFC 7208 leaves it open).
	 */
	if (!spf_name_valid(name)) {
		cont(ev, &nxdomain);
		return;
	}
	ev->cont = cont;
	ev->query = ev->res.lookup(ev->res.ctx, name, type, spf_dns_cb, ev);
	if (ev->query == NULL) {
		/* could not even start: a temporary DNS error */
		ev->cont = NULL;
		cont(ev, &fail);
	}
}

/* The client's address family as a query type. */
static enum ts_dns_type
spf_addr_type(const struct spf_eval *ev)
{
	return ev->family == 4 ? TS_DNS_A : TS_DNS_AAAA;
}

static bool
spf_cidr_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

/* Does one A/AAAA record text match the client within the term's CIDR? */
static bool
spf_addr_match(const struct spf_eval *ev, const char *text, int c4, int c6)
{
	uint8_t a[16];

	if (ev->family == 4)
		return inet_pton(AF_INET, text, a) == 1 &&
		       spf_cidr_match(a, ev->ip, c4);
	return inet_pton(AF_INET6, text, a) == 1 &&
	       spf_cidr_match(a, ev->ip, c6);
}

/* --- finishing ----------------------------------------------------------- */

static void
spf_finish(struct spf_eval *ev, enum spf_result r, const char *problem)
{
	if (ev->finished)
		return;
	ev->finished = true;
	ev->out.result = r;
	if (problem != NULL && ev->out.problem == NULL)
		ev->out.problem = problem;
	ev->out.explanation = ev->exp_text;
	ev->done(&ev->out, ev->done_arg);
}

/* 4.6.4: count one more empty answer; true when over the limit. */
static bool
spf_void(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	if (a->status != TS_DNS_NXDOMAIN && a->status != TS_DNS_NODATA)
		return false;
	if (++ev->void_lookups > ev->max_void) {
		ev->problem_buf = ts_xstrdup("too many void DNS lookups");
		spf_finish(ev, SPF_PERMERROR, ev->problem_buf);
		return true;
	}
	return false;
}

/* The macro environment for the current frame. */
static void
spf_env(struct spf_eval *ev, struct spf_macro_env *env)
{
	*env = (struct spf_macro_env){
		.sender = ev->sender,
		.local = ev->local,
		.sender_domain = ev->sender_domain,
		.domain = ev->cur->domain,
		.helo = ev->helo,
		.receiver = ev->receiver,
		.p = ev->p,
		.family = ev->family,
		.ip = ev->ip,
		.now = ev->now,
	};
}

/* --- %{p} and ptr: validated names (5.5) -------------------------------- */

static void spf_validate_next(struct spf_eval *ev);

static void
spf_validate_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	/* errors during validation just skip the name (5.5) */
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		if (spf_addr_match(ev, a->records[i].u.addr, 32, 128)) {
			ev->valid =
				ts_xrealloc(ev->valid, (ev->valid_count + 1) *
							       sizeof(char *));
			ev->valid[ev->valid_count++] =
				ts_xstrdup(ev->ptr_names[ev->ptr_i]);
			break;
		}
	}
	ev->ptr_i++;
	spf_validate_next(ev);
}

static void
spf_validate_next(struct spf_eval *ev)
{
	if (ev->ptr_i < ev->ptr_count) {
		spf_lookup(ev, ev->ptr_names[ev->ptr_i], spf_addr_type(ev),
			   spf_validate_answer);
		return;
	}
	ev->ptr_state = 1;
	ev->after_ptr(ev, NULL);
}

static void
spf_ptr_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	/* 5.5: a DNS error on the PTR lookup: no names, no match */
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		/* 4.6.4: only the first 10 PTR names are looked at */
		if (ev->ptr_count >= SPF_MAX_NAMES)
			break;
		ev->ptr_names = ts_xrealloc(
			ev->ptr_names, (ev->ptr_count + 1) * sizeof(char *));
		ev->ptr_names[ev->ptr_count++] =
			ts_xstrdup(a->records[i].u.name);
	}
	ev->ptr_i = 0;
	spf_validate_next(ev);
}

/* The reverse name of the client address (in-addr.arpa / ip6.arpa). */
static char *
spf_reverse_name(const struct spf_eval *ev)
{
	char buf[80];
	size_t n = 0;

	if (ev->family == 4)
		return ts_xasprintf("%u.%u.%u.%u.in-addr.arpa", ev->ip[3],
				    ev->ip[2], ev->ip[1], ev->ip[0]);
	for (int k = 15; k >= 0; k--)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%x.%x.",
				      ev->ip[k] & 15, ev->ip[k] >> 4);
	return ts_xasprintf("%sip6.arpa", buf);
}

/* Compute the validated names, then call then(ev, NULL). */
static void
spf_validate(struct spf_eval *ev, spf_cont_fn then)
{
	char *rev;

	ev->after_ptr = then;
	if (ev->ptr_state == 1) {
		then(ev, NULL);
		return;
	}
	rev = spf_reverse_name(ev);
	spf_lookup(ev, rev, TS_DNS_PTR, spf_ptr_answer);
	free(rev);
}

/* Is name equal to domain or a subdomain of it? */
static bool
spf_name_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == d)
		return strncasecmp(name, domain, n) == 0;
	return n > d && name[n - d - 1] == '.' &&
	       strncasecmp(name + n - d, domain, d) == 0;
}

/* 7.3: %{p} prefers the domain itself, then a subdomain, then any. */
static void
spf_choose_p(struct spf_eval *ev)
{
	const char *best = NULL;

	for (size_t i = 0; i < ev->valid_count && best == NULL; i++)
		if (strcasecmp(ev->valid[i], ev->cur->domain) == 0)
			best = ev->valid[i];
	for (size_t i = 0; i < ev->valid_count && best == NULL; i++)
		if (spf_name_under(ev->valid[i], ev->cur->domain))
			best = ev->valid[i];
	if (best == NULL && ev->valid_count > 0)
		best = ev->valid[0];
	free(ev->p);
	ev->p = ts_xstrdup(best != NULL ? best : "unknown");
}

/* --- terms ------------------------------------------------------------- */

static void
spf_resume_term(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	(void)a;
	spf_next_term(ev);
}

/*
 * Expand spec (NULL: the current domain) into f->target.  Returns 0, 1
 * when %{p} is being computed (the term is retried), -1 after finishing
 * with permerror.
 */
static int
spf_expand_target(struct spf_eval *ev, const char *spec, bool exp, char **out_r,
		  spf_cont_fn retry)
{
	struct spf_macro_env env;
	int rc;

	if (spec == NULL) {
		*out_r = ts_xstrdup(ev->cur->domain);
		return 0;
	}
	if (ev->ptr_state == 1)
		spf_choose_p(ev);
	spf_env(ev, &env);
	rc = spf_macro_expand(spec, &env, exp, out_r);
	if (rc == SPF_MACRO_NEED_P) {
		spf_validate(ev, retry);
		return 1;
	}
	if (rc < 0) {
		spf_finish(ev, SPF_PERMERROR, "bad macro");
		return -1;
	}
	return 0;
}

/* The current term matched: its qualifier is the frame's result. */
static void
spf_match(struct spf_eval *ev)
{
	struct spf_frame *f = ev->cur;
	struct spf_term *t = &f->rec->terms[f->pos];

	if (f->parent == NULL)
		ev->out.mechanism = t->text;
	spf_frame_result(ev, t->qual);
}

/* The current term did not match: go on with the next. */
static void
spf_no_match(struct spf_eval *ev)
{
	ev->cur->pos++;
	ev->cur->counted = false;
	spf_next_term(ev);
}

static bool
spf_tempfail(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	if (a->status == TS_DNS_TEMPFAIL || a->status == TS_DNS_PERMFAIL) {
		spf_finish(ev, SPF_TEMPERROR, "DNS lookup failed");
		return true;
	}
	return false;
}

static void
spf_a_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_term *t = &ev->cur->rec->terms[ev->cur->pos];

	if (spf_tempfail(ev, a) || spf_void(ev, a))
		return;
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		if (spf_addr_match(ev, a->records[i].u.addr, t->cidr4,
				   t->cidr6)) {
			spf_match(ev);
			return;
		}
	}
	spf_no_match(ev);
}

static void
spf_exists_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	if (spf_tempfail(ev, a) || spf_void(ev, a))
		return;
	if (a->status == TS_DNS_OK && a->count > 0)
		spf_match(ev);
	else
		spf_no_match(ev);
}

static void spf_mx_next(struct spf_eval *ev);

static void
spf_mx_addr_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;
	struct spf_term *t = &f->rec->terms[f->pos];

	if (spf_tempfail(ev, a))
		return;
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		if (spf_addr_match(ev, a->records[i].u.addr, t->cidr4,
				   t->cidr6)) {
			spf_free_names(&f->names, &f->nnames);
			spf_match(ev);
			return;
		}
	}
	f->iname++;
	spf_mx_next(ev);
}

static void
spf_mx_next(struct spf_eval *ev)
{
	struct spf_frame *f = ev->cur;

	if (f->iname < f->nnames) {
		spf_lookup(ev, f->names[f->iname], spf_addr_type(ev),
			   spf_mx_addr_answer);
		return;
	}
	spf_free_names(&f->names, &f->nnames);
	spf_no_match(ev);
}

static void
spf_mx_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;

	if (spf_tempfail(ev, a) || spf_void(ev, a))
		return;
	/* 4.6.4: more than 10 MX names is a permerror */
	if (a->status == TS_DNS_OK && a->count > SPF_MAX_NAMES) {
		spf_finish(ev, SPF_PERMERROR, "more than 10 MX records");
		return;
	}
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		f->names =
			ts_xrealloc(f->names, (f->nnames + 1) * sizeof(char *));
		f->names[f->nnames++] = ts_xstrdup(a->records[i].u.mx.exchange);
	}
	f->iname = 0;
	spf_mx_next(ev);
}

static void
spf_ptr_done(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;

	(void)a;
	for (size_t i = 0; i < ev->valid_count; i++) {
		if (spf_name_under(ev->valid[i], f->target)) {
			spf_match(ev);
			return;
		}
	}
	spf_no_match(ev);
}

/* Run the mechanism at ev->cur->pos. */
static void
spf_run_term(struct spf_eval *ev)
{
	struct spf_frame *f = ev->cur;
	struct spf_term *t = &f->rec->terms[f->pos];
	int rc;

	switch (t->mech) {
	case SPF_M_ALL:
		spf_match(ev);
		return;
	case SPF_M_IP4:
	case SPF_M_IP6:
		if ((t->mech == SPF_M_IP4) == (ev->family == 4) &&
		    spf_cidr_match(t->net, ev->ip,
				   ev->family == 4 ? t->cidr4 : t->cidr6))
			spf_match(ev);
		else
			spf_no_match(ev);
		return;
	default:
		break;
	}
	/* 4.6.4: terms that query DNS count against the limit */
	if (!f->counted) {
		f->counted = true;
		if (++ev->dns_terms > ev->max_dns) {
			spf_finish(ev, SPF_PERMERROR,
				   "too many DNS-querying terms");
			return;
		}
	}
	free(f->target);
	f->target = NULL;
	rc = spf_expand_target(ev, t->spec, false, &f->target, spf_resume_term);
	if (rc != 0)
		return;
	switch (t->mech) {
	case SPF_M_INCLUDE:
		spf_start_frame(ev, f->target);
		break;
	case SPF_M_A:
		spf_lookup(ev, f->target, spf_addr_type(ev), spf_a_answer);
		break;
	case SPF_M_MX:
		spf_lookup(ev, f->target, TS_DNS_MX, spf_mx_answer);
		break;
	case SPF_M_EXISTS:
		/* 5.7: always an A query, whatever the client's family */
		spf_lookup(ev, f->target, TS_DNS_A, spf_exists_answer);
		break;
	case SPF_M_PTR:
		spf_validate(ev, spf_ptr_done);
		break;
	default:
		break;
	}
}

/* --- explanation (6.2) --------------------------------------------------- */

static void
spf_exp_expand(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_macro_env env;
	char *text = NULL;
	int rc;

	(void)a;
	if (ev->ptr_state == 1)
		spf_choose_p(ev);
	spf_env(ev, &env);
	rc = spf_macro_expand(ev->cur->target, &env, true, &text);
	if (rc == SPF_MACRO_NEED_P) {
		spf_validate(ev, spf_exp_expand);
		return;
	}
	if (rc == 0)
		ev->exp_text = text;
	spf_finish(ev, SPF_FAIL, NULL);
}

static void
spf_exp_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;

	/* 6.2: errors, no record or several: as if there were no exp= */
	if (a->status != TS_DNS_OK || a->count != 1 ||
	    !spf_macro_valid(a->records[0].u.txt.text, a->records[0].u.txt.len,
			     true)) {
		spf_finish(ev, SPF_FAIL, NULL);
		return;
	}
	free(f->target);
	f->target =
		ts_xstrndup(a->records[0].u.txt.text, a->records[0].u.txt.len);
	spf_exp_expand(ev, NULL);
}

static void
spf_exp_start(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;
	char *name = NULL;

	(void)a;
	if (spf_expand_target(ev, f->rec->exp, false, &name, spf_exp_start) !=
	    0)
		return;
	spf_lookup(ev, name, TS_DNS_TXT, spf_exp_answer);
	free(name);
}

/* --- frames -------------------------------------------------------------- */

/* 4.3: a usable domain: labels of 1..63 octets, more than one label. */
static bool
spf_domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0, labels = 0;

	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
		} else {
			label++;
		}
	}
	return labels >= 2;
}

static void
spf_frame_result(struct spf_eval *ev, enum spf_result r)
{
	struct spf_frame *f = ev->cur;

	/* 6.1: a redirect to a domain without a record is a permerror */
	if (r == SPF_NONE && f->redirected)
		r = SPF_PERMERROR;
	if (f->parent == NULL) {
		if (r == SPF_FAIL && f->rec != NULL && f->rec->exp != NULL)
			spf_exp_start(ev, NULL);
		else
			spf_finish(ev, r, NULL);
		return;
	}
	ev->cur = f->parent;
	spf_frame_free(f);
	/* 5.2: what an include's result means for the including record */
	switch (r) {
	case SPF_PASS:
		spf_match(ev);
		break;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		spf_no_match(ev);
		break;
	case SPF_TEMPERROR:
		spf_finish(ev, SPF_TEMPERROR, NULL);
		break;
	default:
		spf_finish(ev, SPF_PERMERROR,
			   "include of a domain without a valid record");
		break;
	}
}

static void
spf_txt_answer(struct spf_eval *ev, const struct ts_dns_answer *a)
{
	struct spf_frame *f = ev->cur;
	const struct ts_dns_record *found = NULL;
	const char *error;

	if (spf_tempfail(ev, a))
		return;
	for (size_t i = 0; a->status == TS_DNS_OK && i < a->count; i++) {
		if (!spf_is_record(a->records[i].u.txt.text,
				   a->records[i].u.txt.len))
			continue;
		/* 4.5: more than one record is a permerror */
		if (found != NULL) {
			spf_finish(ev, SPF_PERMERROR, "several SPF records");
			return;
		}
		found = &a->records[i];
	}
	if (found == NULL) {
		spf_frame_result(ev, SPF_NONE);
		return;
	}
	if (spf_record_parse(found->u.txt.text, found->u.txt.len, &f->rec,
			     &error) < 0) {
		free(ev->problem_buf);
		ev->problem_buf = ts_xasprintf("%s: %s", f->domain, error);
		spf_finish(ev, SPF_PERMERROR, ev->problem_buf);
		return;
	}
	f->pos = 0;
	f->counted = false;
	spf_next_term(ev);
}

/* Look up domain's record into the current frame (new or redirected). */
static void
spf_load(struct spf_eval *ev, const char *domain)
{
	struct spf_frame *f = ev->cur;

	if (!spf_domain_ok(domain)) {
		spf_frame_result(ev, SPF_NONE);
		return;
	}
	if (domain != f->domain) {
		free(f->domain);
		f->domain = ts_xstrdup(domain);
	}
	spf_record_free(&f->rec);
	spf_lookup(ev, f->domain, TS_DNS_TXT, spf_txt_answer);
}

static void
spf_start_frame(struct spf_eval *ev, const char *domain)
{
	struct spf_frame *f = ts_xcalloc(1, sizeof(*f));

	f->parent = ev->cur;
	f->domain = ts_xstrdup(domain);
	ev->cur = f;
	spf_load(ev, f->domain);
}

static void
spf_next_term(struct spf_eval *ev)
{
	struct spf_frame *f = ev->cur;
	char *target = NULL;

	if (f->pos < f->rec->count) {
		spf_run_term(ev);
		return;
	}
	if (f->rec->redirect == NULL) {
		/* 4.7: no mechanism matched, no redirect */
		spf_frame_result(ev, SPF_NEUTRAL);
		return;
	}
	/* 6.1: redirect counts as a DNS-querying term */
	if (!f->counted) {
		f->counted = true;
		if (++ev->dns_terms > ev->max_dns) {
			spf_finish(ev, SPF_PERMERROR,
				   "too many DNS-querying terms");
			return;
		}
	}
	if (spf_expand_target(ev, f->rec->redirect, false, &target,
			      spf_resume_term) != 0)
		return;
	f->redirected = true;
	f->counted = false;
	free(f->domain);
	f->domain = target;
	spf_load(ev, f->domain);
}

/* --- the API ------------------------------------------------------------ */

struct spf_eval *
spf_eval_new(const struct spf_resolver *resolver, const struct spf_request *req,
	     spf_done_fn done, void *arg)
{
	struct spf_eval *ev = ts_xcalloc(1, sizeof(*ev));
	const char *at;

	ev->res = *resolver;
	ev->done = done;
	ev->done_arg = arg;
	ev->ip_text = ts_xstrdup(req->ip);
	ev->helo = ts_xstrdup(req->helo != NULL ? req->helo : "");
	ev->receiver =
		ts_xstrdup(req->receiver != NULL ? req->receiver : "unknown");
	ev->max_dns = req->max_dns_mechanisms;
	ev->max_void = req->max_void_lookups;
	ev->now = req->now;
	/* 4.3: the null sender is checked as postmaster@HELO; a sender
	 * without a local part gets "postmaster" */
	if (req->sender == NULL || *req->sender == '\0')
		ev->sender = ts_xasprintf("postmaster@%s", ev->helo);
	else
		ev->sender = ts_xstrdup(req->sender);
	at = strrchr(ev->sender, '@');
	if (at == NULL) {
		ev->local = ts_xstrdup("postmaster");
		ev->sender_domain = ts_xstrdup(ev->sender);
		free(ev->sender);
		ev->sender = ts_xasprintf("postmaster@%s", ev->sender_domain);
	} else {
		ev->sender_domain = ts_xstrdup(at + 1);
		if (at == ev->sender) {
			char *s = ts_xasprintf("postmaster%s", ev->sender);

			free(ev->sender);
			ev->sender = s;
			ev->local = ts_xstrdup("postmaster");
		} else {
			ev->local = ts_xstrndup(ev->sender,
						(size_t)(at - ev->sender));
		}
	}
	ev->out.domain = ev->sender_domain;
	ev->out.sender = ev->sender;
	ev->out.all_secure = true;
	return ev;
}

void
spf_eval_run(struct spf_eval *ev)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0,    0,
					    0, 0, 0, 0, 0xff, 0xff };

	if (inet_pton(AF_INET, ev->ip_text, ev->ip) == 1) {
		ev->family = 4;
	} else if (inet_pton(AF_INET6, ev->ip_text, ev->ip) == 1) {
		ev->family = 6;
		/* an IPv4-mapped address is checked as IPv4 */
		if (memcmp(ev->ip, mapped, 12) == 0) {
			memmove(ev->ip, ev->ip + 12, 4);
			ev->family = 4;
		}
	} else {
		spf_finish(ev, SPF_PERMERROR, "bad client address");
		return;
	}
	spf_start_frame(ev, ev->sender_domain);
}

void
spf_eval_free(struct spf_eval **evp)
{
	struct spf_eval *ev = *evp;

	if (ev == NULL)
		return;
	if (ev->query != NULL)
		ev->res.cancel(ev->res.ctx, ev->query);
	while (ev->cur != NULL) {
		struct spf_frame *f = ev->cur;

		ev->cur = f->parent;
		spf_frame_free(f);
	}
	spf_free_names(&ev->ptr_names, &ev->ptr_count);
	spf_free_names(&ev->valid, &ev->valid_count);
	free(ev->p);
	free(ev->exp_text);
	free(ev->problem_buf);
	free(ev->ip_text);
	free(ev->sender);
	free(ev->local);
	free(ev->sender_domain);
	free(ev->helo);
	free(ev->receiver);
	free(ev);
	*evp = NULL;
}
