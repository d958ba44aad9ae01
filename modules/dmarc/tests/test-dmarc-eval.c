/*
 * modules/dmarc/tests/test-dmarc-eval.c — the DMARC core (record.c,
 * discover.c, align.c, eval.c) on a scripted resolver, as a table.
 *
 * Each row is a message (its header, the SPF-passing MAIL FROM domain,
 * the DKIM-passing d= domains, temperrors) and a zone; the evaluation runs
 * to its end and the row's expectations are checked: result, the From
 * domain it is about, the policy record's domain, which tag applied (p,
 * sp, np), policy and disposition, testing mode, and for some rows the
 * Organizational Domain, the number of queries or their exact sequence.
 * Rows cover alignment (relaxed/strict, SPF and DKIM), the tree walk
 * (psd=y, psd=n, a name of more than 8 labels), sp/np, t/pct, missing,
 * duplicate and invalid records, several From domains, no From, and
 * temperror on DNS failure.
 *
 * The OpenDMARC vectors (../shared/testdata/dmarc/opendmarc-vectors.tsv)
 * are checked too, each against RFC 9989; where we differ on purpose:
 *   record-parse "p=n" — OpenDMARC accepts a prefix of "none"; the
 *     dmarc-request rule of RFC 9989 ("Formal Definition") does not: p
 *     is invalid, the record unusable.
 *   record-parse adkim=bob, aspf=bob, rf=bob, ri=bob, pct=500, rf=000… —
 *     OpenDMARC fails the record; RFC 9989 ("General Record Format")
 *     discards syntax errors "in favor of default values" and rf/ri are
 *     no longer tags, so the record stays usable (the value is noted).
 *   record-parse sp=bob — OpenDMARC "bad value"; RFC 9989 ("DMARC
 *     Policy Discovery"): an invalid sp without a valid rua makes the
 *     record unusable: the same outcome, tested as such.
 *   alignment ".mac.com." / "....mac.com...." strict — OpenDMARC trims
 *     stray dots; a leading dot (empty label) is not a domain name for
 *     us: not aligned.  (One trailing dot, the root, is dropped.)
 *   alignment relaxed rows — OpenDMARC uses the PSL; under RFC 9989 they
 *     depend on DNS, so they run as evaluations with a record at the
 *     Organizational Domain (bcx.com, foo.com, b.com).
 *   from-domain "Joe Johnson <joe@joe.com>, ace@ace.com" and
 *     "joe@joe.com, ace@ace.com" — OpenDMARC takes the first domain; we
 *     keep both (and evaluate both, strictest wins); the first is joe.com.
 *   from-domain "<<<><joe@joe.com>>>" — the kernel's address parser
 *     (tessera/mime.h) finds no usable domain in this broken value: no
 *     From domain, a permerror; OpenDMARC digs out joe.com.
 * The other rows agree with OpenDMARC and are hard tests as they are.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <tessera/common.h>

#include "modules/dmarc/dmarc.h"

/* --- the scripted resolver ------------------------------------------------ */

#define TEMPFAIL "<tempfail>"

/* TXT (or A) data by name; a name not listed is NXDOMAIN. */
struct fake_rr {
	const char *name;
	enum ts_dns_type type;
	const char *data; /* TEMPFAIL: the lookup fails temporarily */
};

struct fake {
	const struct fake_rr *rrs;
	enum ts_dns_security security; /* of every answer */
	unsigned queries, cancels;
	char log[16][300]; /* the first names asked */
	bool pending;
	char name[300];
	enum ts_dns_type type;
	ts_dns_fn fn;
	void *arg;
};

static void *
fake_lookup(void *ctx, const char *name, enum ts_dns_type type, ts_dns_fn fn,
	    void *arg)
{
	struct fake *f = ctx;

	assert_false(f->pending);
	if (f->queries < 16)
		snprintf(f->log[f->queries], sizeof(f->log[0]), "%s%s",
			 type == TS_DNS_A ? "A " : "", name);
	f->queries++;
	f->pending = true;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	f->fn = fn;
	f->arg = arg;
	return f;
}

static void
fake_cancel(void *ctx, void *query)
{
	struct fake *f = ctx;

	assert_ptr_equal(query, f);
	f->pending = false;
	f->cancels++;
}

static bool
fake_step(struct fake *f)
{
	struct ts_dns_record recs[8];
	struct ts_dns_answer a = { .name = f->name,
				   .type = f->type,
				   .security = f->security,
				   .records = recs };
	bool temp = false;

	if (!f->pending)
		return false;
	f->pending = false;
	for (const struct fake_rr *r = f->rrs; r != NULL && r->name != NULL;
	     r++) {
		if (strcasecmp(r->name, f->name) != 0 || r->type != f->type)
			continue;
		if (strcmp(r->data, TEMPFAIL) == 0) {
			temp = true;
			break;
		}
		if (f->type == TS_DNS_TXT) {
			recs[a.count].u.txt.text = r->data;
			recs[a.count].u.txt.len = strlen(r->data);
		} else {
			snprintf(recs[a.count].u.addr, sizeof(recs[0].u.addr),
				 "%s", r->data);
		}
		a.count++;
	}
	a.status = temp		 ? TS_DNS_TEMPFAIL
		   : a.count > 0 ? TS_DNS_OK
				 : TS_DNS_NXDOMAIN;
	if (temp)
		a.count = 0;
	f->fn(&a, f->arg);
	return true;
}

/* --- the table ---------------------------------------------------------- */

struct row {
	const char *name;
	const struct fake_rr *zone;
	const char *header; /* the message header */
	const char *spf; /* SPF-passing MAIL FROM domain */
	bool spf_temperror;
	const char *dkim[4]; /* DKIM-passing d= domains */
	bool dkim_temperror;
	unsigned max_queries;

	enum dmarc_result result;
	const char *domain; /* expected From domain of the outcome */
	const char *policy_domain; /* NULL: no record expected */
	char tag; /* 'p', 's', 'n' for fail rows, else 0 */
	enum dmarc_policy policy, disposition;
	bool testing;
	bool spf_aligned, dkim_aligned;
	const char *org; /* expected Organizational Domain, or NULL */
	int queries1; /* Q(expected DNS queries), or 0: not checked */
	const char *seq[9]; /* expected names asked, in order, or {NULL} */
};

#define Q(n) ((n) + 1)
#define FROM(d) "From: Someone <someone@" d ">\r\nSubject: x\r\n\r\n"

static const struct fake_rr z_example[] = {
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ NULL },
};

static const struct fake_rr z_example_strict[] = {
	{ "_dmarc.example.com", TS_DNS_TXT,
	  "v=DMARC1; p=reject; adkim=s; aspf=s" },
	{ NULL },
};

static const struct fake_rr z_sub[] = {
	{ "_dmarc.example.com", TS_DNS_TXT,
	  "v=DMARC1; p=none; sp=quarantine; np=reject" },
	{ "a.example.com", TS_DNS_A, "192.0.2.1" },
	{ NULL },
};

static const struct fake_rr z_sub_nonp[] = {
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=reject; sp=none" },
	{ NULL },
};

static const struct fake_rr z_testing[] = {
	{ "_dmarc.t-reject.example", TS_DNS_TXT, "v=DMARC1; p=reject; t=y" },
	{ "_dmarc.t-quar.example", TS_DNS_TXT, "v=DMARC1; p=quarantine; t=y" },
	{ "_dmarc.pct50.example", TS_DNS_TXT, "v=DMARC1; p=reject; pct=50" },
	{ "_dmarc.pct100.example", TS_DNS_TXT, "v=DMARC1; p=reject; pct=100" },
	{ "_dmarc.tn-pct0.example", TS_DNS_TXT,
	  "v=DMARC1; p=reject; pct=0; t=n" },
	{ "_dmarc.none.example", TS_DNS_TXT,
	  "v=DMARC1; p=none; rua=mailto:r@none.example" },
	{ NULL },
};

static const struct fake_rr z_records[] = {
	/* two DMARC records: both discarded, the walk goes on up */
	{ "_dmarc.dup.example.com", TS_DNS_TXT, "v=DMARC1; p=none" },
	{ "_dmarc.dup.example.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=quarantine" },
	{ "_dmarc.dup.example", TS_DNS_TXT, "v=DMARC1; p=none" },
	{ "_dmarc.dup.example", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.badp.example", TS_DNS_TXT, "v=DMARC1; p=bogus" },
	{ "_dmarc.badp-rua.example", TS_DNS_TXT,
	  "v=DMARC1; p=bogus; rua=mailto:agg@badp-rua.example" },
	{ "_dmarc.badsp.example", TS_DNS_TXT, "v=DMARC1; p=reject; sp=x" },
	{ "_dmarc.nop.example", TS_DNS_TXT, "v=DMARC1; adkim=s" },
	{ "_dmarc.vlate.example", TS_DNS_TXT, "p=reject; v=DMARC1" },
	{ "_dmarc.mixed.example", TS_DNS_TXT, "v=spf1 -all" },
	{ "_dmarc.mixed.example", TS_DNS_TXT, "v=DMARC1; p=quarantine" },
	{ "_dmarc.mixed.example", TS_DNS_TXT, "hello" },
	{ NULL },
};

static const struct fake_rr z_psd[] = {
	{ "_dmarc.bank", TS_DNS_TXT, "v=DMARC1; p=reject; np=reject; psd=y" },
	{ "x.example.bank", TS_DNS_A, "192.0.2.2" },
	/* psd=n: corp.example is its own Organizational Domain */
	{ "_dmarc.corp.example", TS_DNS_TXT, "v=DMARC1; p=reject; psd=n" },
	{ "_dmarc.example", TS_DNS_TXT, "v=DMARC1; p=none; psd=y" },
	{ NULL },
};

static const struct fake_rr z_long[] = {
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=quarantine" },
	{ NULL },
};

static const struct fake_rr z_temp[] = {
	{ "_dmarc.broken.example", TS_DNS_TXT, TEMPFAIL },
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.com", TS_DNS_TXT, TEMPFAIL },
	{ NULL },
};

static const struct fake_rr z_multi[] = {
	{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=none" },
	{ "_dmarc.reject.example", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.xn--bcher-kva.example", TS_DNS_TXT,
	  "v=DMARC1; p=quarantine" },
	{ NULL },
};

/* OpenDMARC's relaxed alignment rows, with records at the org domains */
static const struct fake_rr z_opendmarc[] = {
	{ "_dmarc.bcx.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.foo.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.b.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
	{ NULL },
};

static const struct row rows[] = {
	/* --- alignment ------------------------------------------------- */
	{ .name = "dkim_same_domain_strict_pass",
	  .zone = z_example_strict,
	  .header = FROM("example.com"),
	  .dkim = { "example.com" },
	  .result = DMARC_PASS,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .dkim_aligned = true,
	  .queries1 = Q(1) },
	{ .name = "spf_subdomain_relaxed_pass",
	  .zone = z_example,
	  .header = FROM("example.com"),
	  .spf = "bounce.example.com",
	  .result = DMARC_PASS,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .spf_aligned = true,
	  .org = "example.com",
	  .queries1 = Q(3),
	  .seq = { "_dmarc.example.com", "_dmarc.com",
		   "_dmarc.bounce.example.com" } },
	{ .name = "spf_subdomain_strict_fail",
	  .zone = z_example_strict,
	  .header = FROM("example.com"),
	  .spf = "bounce.example.com",
	  .result = DMARC_FAIL,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT,
	  .queries1 = Q(1) },
	{ .name = "dkim_parent_relaxed_pass",
	  .zone = z_sub,
	  .header = FROM("a.example.com"),
	  .dkim = { "example.com" },
	  .result = DMARC_PASS,
	  .domain = "a.example.com",
	  .policy_domain = "example.com",
	  .dkim_aligned = true,
	  .org = "example.com" },
	{ .name = "dkim_parent_strict_fail_sp",
	  .zone = z_example_strict,
	  .header = FROM("news.example.com"),
	  .dkim = { "example.com" },
	  .result = DMARC_FAIL,
	  .domain = "news.example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "unrelated_identifiers_fail",
	  .zone = z_example,
	  .header = FROM("example.com"),
	  .spf = "evil.example",
	  .dkim = { "evil.example", "com" },
	  .result = DMARC_FAIL,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "dkim_sibling_relaxed_pass",
	  .zone = z_opendmarc,
	  .header = FROM("a.foo.com"),
	  .dkim = { "b.foo.com" },
	  .result = DMARC_PASS,
	  .domain = "a.foo.com",
	  .policy_domain = "foo.com",
	  .dkim_aligned = true,
	  .org = "foo.com" },
	{ .name = "opendmarc_deep_subdomain_relaxed",
	  .zone = z_opendmarc,
	  .header = FROM("bcx.com"),
	  .spf = "a.b.c.bcx.com",
	  .result = DMARC_PASS,
	  .domain = "bcx.com",
	  .policy_domain = "bcx.com",
	  .spf_aligned = true,
	  .org = "bcx.com" },
	{ .name = "opendmarc_parent_of_from_relaxed",
	  .zone = z_opendmarc,
	  .header = FROM("a.b.com"),
	  .dkim = { "b.com" },
	  .result = DMARC_PASS,
	  .domain = "a.b.com",
	  .policy_domain = "b.com",
	  .dkim_aligned = true,
	  .org = "b.com" },
	/* --- sp / np ---------------------------------------------------- */
	{ .name = "sp_for_existing_subdomain",
	  .zone = z_sub,
	  .header = FROM("a.example.com"),
	  .result = DMARC_FAIL,
	  .domain = "a.example.com",
	  .policy_domain = "example.com",
	  .tag = 's',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_QUARANTINE,
	  .seq = { "_dmarc.a.example.com", "_dmarc.example.com",
		   "A a.example.com" } },
	{ .name = "np_for_nonexistent_subdomain",
	  .zone = z_sub,
	  .header = FROM("ghost.example.com"),
	  .result = DMARC_FAIL,
	  .domain = "ghost.example.com",
	  .policy_domain = "example.com",
	  .tag = 'n',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "p_for_the_domain_itself_not_sp",
	  .zone = z_sub,
	  .header = FROM("example.com"),
	  .result = DMARC_FAIL,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_NONE,
	  .disposition = DMARC_POLICY_NONE,
	  .queries1 = Q(1) },
	{ .name = "sp_without_np_no_existence_check",
	  .zone = z_sub_nonp,
	  .header = FROM("ghost.example.com"),
	  .result = DMARC_FAIL,
	  .domain = "ghost.example.com",
	  .policy_domain = "example.com",
	  .tag = 's',
	  .policy = DMARC_POLICY_NONE,
	  .disposition = DMARC_POLICY_NONE,
	  .queries1 = Q(2) },
	/* --- t / pct ---------------------------------------------------- */
	{ .name = "t_y_reject_becomes_quarantine",
	  .zone = z_testing,
	  .header = FROM("t-reject.example"),
	  .result = DMARC_FAIL,
	  .domain = "t-reject.example",
	  .policy_domain = "t-reject.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_QUARANTINE,
	  .testing = true },
	{ .name = "t_y_quarantine_becomes_none",
	  .zone = z_testing,
	  .header = FROM("t-quar.example"),
	  .result = DMARC_FAIL,
	  .domain = "t-quar.example",
	  .policy_domain = "t-quar.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_NONE,
	  .testing = true },
	{ .name = "pct_50_is_testing",
	  .zone = z_testing,
	  .header = FROM("pct50.example"),
	  .result = DMARC_FAIL,
	  .domain = "pct50.example",
	  .policy_domain = "pct50.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_QUARANTINE,
	  .testing = true },
	{ .name = "pct_100_is_not_testing",
	  .zone = z_testing,
	  .header = FROM("pct100.example"),
	  .result = DMARC_FAIL,
	  .domain = "pct100.example",
	  .policy_domain = "pct100.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "t_n_wins_over_pct_0",
	  .zone = z_testing,
	  .header = FROM("tn-pct0.example"),
	  .result = DMARC_FAIL,
	  .domain = "tn-pct0.example",
	  .policy_domain = "tn-pct0.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "p_none_fails_with_no_disposition",
	  .zone = z_testing,
	  .header = FROM("none.example"),
	  .result = DMARC_FAIL,
	  .domain = "none.example",
	  .policy_domain = "none.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_NONE,
	  .disposition = DMARC_POLICY_NONE },
	/* --- missing, duplicate, invalid records ----------------------------
	 */
	{ .name = "no_record_is_none",
	  .zone = z_example,
	  .header = FROM("nowhere.example"),
	  .result = DMARC_NONE,
	  .domain = "nowhere.example",
	  .queries1 = Q(2),
	  .seq = { "_dmarc.nowhere.example", "_dmarc.example" } },
	{ .name = "duplicate_records_discarded_walk_goes_up",
	  .zone = z_records,
	  .header = FROM("dup.example.com"),
	  .result = DMARC_FAIL,
	  .domain = "dup.example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_QUARANTINE },
	{ .name = "duplicate_records_only_is_none",
	  .zone = z_records,
	  .header = FROM("dup.example"),
	  .result = DMARC_NONE,
	  .domain = "dup.example" },
	{ .name = "invalid_p_is_permerror",
	  .zone = z_records,
	  .header = FROM("badp.example"),
	  .result = DMARC_PERMERROR,
	  .domain = "badp.example",
	  .policy_domain = "badp.example" },
	{ .name = "invalid_p_with_rua_is_p_none",
	  .zone = z_records,
	  .header = FROM("badp-rua.example"),
	  .result = DMARC_FAIL,
	  .domain = "badp-rua.example",
	  .policy_domain = "badp-rua.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_NONE,
	  .disposition = DMARC_POLICY_NONE },
	{ .name = "invalid_sp_without_rua_is_permerror",
	  .zone = z_records,
	  .header = FROM("badsp.example"),
	  .result = DMARC_PERMERROR,
	  .domain = "badsp.example",
	  .policy_domain = "badsp.example" },
	{ .name = "missing_p_without_rua_is_permerror",
	  .zone = z_records,
	  .header = FROM("nop.example"),
	  .result = DMARC_PERMERROR,
	  .domain = "nop.example",
	  .policy_domain = "nop.example" },
	{ .name = "v_not_first_is_no_record",
	  .zone = z_records,
	  .header = FROM("vlate.example"),
	  .result = DMARC_NONE,
	  .domain = "vlate.example" },
	{ .name = "other_txt_records_ignored",
	  .zone = z_records,
	  .header = FROM("mixed.example"),
	  .result = DMARC_FAIL,
	  .domain = "mixed.example",
	  .policy_domain = "mixed.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_QUARANTINE },
	/* --- tree walk: PSD, psd=n, long names -------------------------- */
	{ .name = "psd_y_org_is_one_below_relaxed_pass",
	  .zone = z_psd,
	  .header = FROM("x.example.bank"),
	  .spf = "example.bank",
	  .result = DMARC_PASS,
	  .domain = "x.example.bank",
	  .policy_domain = "bank",
	  .spf_aligned = true,
	  .org = "example.bank" },
	{ .name = "psd_y_sibling_does_not_align",
	  .zone = z_psd,
	  .header = FROM("x.example.bank"),
	  .dkim = { "other.bank", "bank" },
	  .result = DMARC_FAIL,
	  .domain = "x.example.bank",
	  .policy_domain = "bank",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT,
	  .org = "example.bank" },
	{ .name = "psd_y_np_for_nonexistent",
	  .zone = z_psd,
	  .header = FROM("ghost.bank"),
	  .result = DMARC_FAIL,
	  .domain = "ghost.bank",
	  .policy_domain = "bank",
	  .tag = 'n',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "psd_n_stops_the_org_walk",
	  .zone = z_psd,
	  .header = FROM("x.sub.corp.example"),
	  .dkim = { "example", "y.corp.example" },
	  .result = DMARC_PASS,
	  .domain = "x.sub.corp.example",
	  .policy_domain = "corp.example",
	  .dkim_aligned = true,
	  .org = "corp.example" },
	{ .name = "long_name_walk_skips_to_7_labels",
	  .zone = z_long,
	  .header = FROM("a.b.c.d.e.f.g.h.i.example.com"),
	  .result = DMARC_FAIL,
	  .domain = "a.b.c.d.e.f.g.h.i.example.com",
	  .policy_domain = "example.com",
	  .tag = 'p',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_QUARANTINE,
	  .queries1 = Q(7),
	  .seq = { "_dmarc.a.b.c.d.e.f.g.h.i.example.com",
		   "_dmarc.e.f.g.h.i.example.com", "_dmarc.f.g.h.i.example.com",
		   "_dmarc.g.h.i.example.com", "_dmarc.h.i.example.com",
		   "_dmarc.i.example.com", "_dmarc.example.com" } },
	{ .name = "long_name_no_record_at_most_8_queries",
	  .zone = z_long,
	  .header = FROM("a.b.c.d.e.f.g.h.i.j.k.l.nothing.example"),
	  .result = DMARC_NONE,
	  .domain = "a.b.c.d.e.f.g.h.i.j.k.l.nothing.example",
	  .queries1 = Q(8),
	  .seq = { "_dmarc.a.b.c.d.e.f.g.h.i.j.k.l.nothing.example",
		   "_dmarc.h.i.j.k.l.nothing.example",
		   "_dmarc.i.j.k.l.nothing.example",
		   "_dmarc.j.k.l.nothing.example", "_dmarc.k.l.nothing.example",
		   "_dmarc.l.nothing.example", "_dmarc.nothing.example",
		   "_dmarc.example" } },
	/* --- temperror ------------------------------------------------------
	 */
	{ .name = "dns_failure_in_policy_walk_is_temperror",
	  .zone = z_temp,
	  .header = FROM("broken.example"),
	  .result = DMARC_TEMPERROR,
	  .domain = "broken.example",
	  .queries1 = Q(1) },
	{ .name = "spf_temperror_without_aligned_pass",
	  .zone = z_example_strict,
	  .header = FROM("example.com"),
	  .spf_temperror = true,
	  .result = DMARC_TEMPERROR,
	  .domain = "example.com",
	  .policy_domain = "example.com" },
	{ .name = "dkim_pass_wins_over_spf_temperror",
	  .zone = z_example_strict,
	  .header = FROM("example.com"),
	  .spf_temperror = true,
	  .dkim = { "example.com" },
	  .result = DMARC_PASS,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .dkim_aligned = true },
	{ .name = "dns_failure_in_org_walk_is_temperror",
	  .zone = z_temp,
	  .header = FROM("example.com"),
	  .spf = "bounce.example.com",
	  .result = DMARC_TEMPERROR,
	  .domain = "example.com",
	  .policy_domain = "example.com" },
	/* --- From: several, none, IDN ----------------------------------- */
	{ .name = "several_from_fields_strictest_wins",
	  .zone = z_multi,
	  .header = "From: a@example.com\r\nFrom: b@reject.example\r\n\r\n",
	  .dkim = { "example.com" },
	  .result = DMARC_FAIL,
	  .domain = "reject.example",
	  .policy_domain = "reject.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_REJECT,
	  .disposition = DMARC_POLICY_REJECT },
	{ .name = "several_addresses_one_domain_once",
	  .zone = z_multi,
	  .header = "From: a@Example.COM, b@example.com.\r\n\r\n",
	  .dkim = { "example.com" },
	  .result = DMARC_PASS,
	  .domain = "example.com",
	  .policy_domain = "example.com",
	  .dkim_aligned = true,
	  .queries1 = Q(1) },
	{ .name = "no_from_is_permerror",
	  .zone = z_multi,
	  .header = "Subject: no author\r\n\r\nFrom: body@example.com\r\n",
	  .result = DMARC_PERMERROR,
	  .queries1 = Q(0) },
	{ .name = "from_without_domain_is_permerror",
	  .zone = z_multi,
	  .header = "From: undisclosed-recipients:;\r\n\r\n",
	  .result = DMARC_PERMERROR,
	  .queries1 = Q(0) },
	{ .name = "idn_from_domain_as_a_label",
	  .zone = z_multi,
	  .header = "From: x@b\xc3\xbc"
		    "cher.example\r\n\r\n",
	  .result = DMARC_FAIL,
	  .domain = "xn--bcher-kva.example",
	  .policy_domain = "xn--bcher-kva.example",
	  .tag = 'p',
	  .policy = DMARC_POLICY_QUARANTINE,
	  .disposition = DMARC_POLICY_QUARANTINE },
};

/* --- running a row ------------------------------------------------------ */

struct outcome {
	int calls;
	struct dmarc_outcome o;
	char domain[DMARC_NAME_MAX], policy_domain[DMARC_NAME_MAX],
		org[DMARC_NAME_MAX];
};

static void
on_done(const struct dmarc_outcome *o, void *arg)
{
	struct outcome *out = arg;

	out->calls++;
	out->o = *o;
	snprintf(out->domain, sizeof(out->domain), "%s",
		 o->domain != NULL ? o->domain : "");
	snprintf(out->policy_domain, sizeof(out->policy_domain), "%s",
		 o->policy_domain != NULL ? o->policy_domain : "");
	snprintf(out->org, sizeof(out->org), "%s",
		 o->org_domain != NULL ? o->org_domain : "");
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	struct fake f = { .rrs = r->zone };
	struct dmarc_resolver res = { &f, fake_lookup, fake_cancel };
	struct dmarc_from from;
	size_t ndkim = 0;
	struct outcome out = { 0 };
	struct dmarc_eval *ev;

	dmarc_from_parse(r->header, strlen(r->header), &from);
	while (ndkim < 4 && r->dkim[ndkim] != NULL)
		ndkim++;
	struct dmarc_request req = {
		.from = &from,
		.spf_domain = r->spf,
		.spf_temperror = r->spf_temperror,
		.dkim_domains = r->dkim,
		.dkim_count = ndkim,
		.dkim_temperror = r->dkim_temperror,
		.max_queries = r->max_queries,
	};
	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_from_clear(&from);
	dmarc_eval_run(ev);
	while (fake_step(&f))
		;
	assert_int_equal(out.calls, 1);
	if (out.o.result != r->result)
		fail_msg("%s: result %s, expected %s (%s)", r->name,
			 dmarc_result_name(out.o.result),
			 dmarc_result_name(r->result),
			 out.o.reason != NULL ? out.o.reason : "");
	assert_string_equal(out.domain, r->domain != NULL ? r->domain : "");
	assert_string_equal(out.policy_domain,
			    r->policy_domain != NULL ? r->policy_domain : "");
	if (r->result == DMARC_FAIL) {
		assert_int_equal(out.o.policy_tag, r->tag);
		assert_string_equal(dmarc_policy_name(out.o.policy),
				    dmarc_policy_name(r->policy));
		assert_string_equal(dmarc_policy_name(out.o.disposition),
				    dmarc_policy_name(r->disposition));
		assert_int_equal(out.o.testing, r->testing);
	}
	assert_int_equal(out.o.spf_aligned, r->spf_aligned);
	assert_int_equal(out.o.dkim_aligned, r->dkim_aligned);
	if (r->org != NULL)
		assert_string_equal(out.org, r->org);
	if (r->queries1 != 0)
		assert_int_equal(f.queries, (unsigned)(r->queries1 - 1));
	for (size_t i = 0; i < 9 && r->seq[i] != NULL; i++)
		assert_string_equal(f.log[i], r->seq[i]);
	assert_int_equal(out.o.queries, f.queries);
	dmarc_eval_free(&ev);
	assert_int_equal(f.cancels, 0);
}

/* --- record parsing: the OpenDMARC rows and more ------------------------ */

struct record_row {
	const char *text;
	int rc; /* 0 or DMARC_NOT_RECORD */
	bool usable;
};

static const struct record_row record_rows[] = {
	{ "v=DMARC1; p=none; rf=afrf; rua=mailto:dmarc-a@abuse.net; "
	  "ruf=mailto:dmarc-f@abuse.net",
	  0, true },
	{ "v=DMARC1; p=none;", 0, true },
	{ "v=DMARC1; p=reject;", 0, true },
	{ "v=DMARC1; p=quarantine;", 0, true },
	{ "v=DMARC1; p=n;", 0, false }, /* deviation: no prefixes */
	{ "", DMARC_NOT_RECORD, false },
	{ "V=BOB", DMARC_NOT_RECORD, false },
	{ "v=DMARC1; p=bob;", 0, false },
	{ "v=DMARC1; p=none; sp=bob;", 0, false },
	{ "v=DMARC1; p=none; adkim=bob;", 0, true }, /* deviation */
	{ "v=DMARC1; p=none; aspf=bob;", 0, true }, /* deviation */
	{ "v=DMARC1; p=none; rf=bob;", 0, true }, /* deviation */
	{ "v=DMARC1; p=none; ri=bob;", 0, true }, /* deviation */
	{ "v=DMARC1; p=none; pct=500;", 0, true }, /* deviation */
	{ "v=DMARC1; pct=100;", 0, false },
	{ "v=DMARC1; p=none; rua=ftp://abuse.com", 0, true },
	{ "v=DMARC1; p=none; ruf=mailto://abuse.com", 0, true },
	{ "v=DMARC1; p=none; ruf=mailto://abuse.com; foo=bar; buzz=happy;", 0,
	  true },
	{ "v=DMARC1; p=none; rf=000000000000000000000000000000000", 0,
	  true }, /* deviation */
	/* beyond OpenDMARC */
	{ "v=DMARC1", 0, false },
	{ "v=DMARC1;", 0, false },
	{ "v = DMARC1 ; p = reject", 0, true },
	{ "v=dmarc1; p=reject", DMARC_NOT_RECORD, false },
	{ "v=DMARC10; p=reject", DMARC_NOT_RECORD, false },
	{ " p=reject; v=DMARC1", DMARC_NOT_RECORD, false },
	{ "v=DMARC1; p=REJECT", 0, true },
	{ "v=DMARC1; rua=mailto:a@example.com", 0, true },
	{ "v=DMARC1; rua=not a uri", 0, false },
	{ "v=DMARC1; p=reject; np=maybe", 0, false },
	{ "v=DMARC1; p=reject; np=maybe; rua=mailto:x@y", 0, true },
	{ "v=DMARC1; p=reject;; ;", 0, true },
	{ "v=DMARC1; p=reject; 9x=1; =; p=none", 0, true },
};

static void
test_record_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(record_rows) / sizeof(record_rows[0]);
	     i++) {
		const struct record_row *r = &record_rows[i];
		struct dmarc_record rec;
		int rc = dmarc_record_parse(r->text, strlen(r->text), &rec);

		if (rc != r->rc || (rc == 0 && rec.usable != r->usable))
			fail_msg("record %zu \"%s\": rc %d usable %d", i,
				 r->text, rc, rec.usable);
	}
}

static void
test_record_values(void **state)
{
	struct dmarc_record r;

	(void)state;
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=quarantine; "
					    "sp=reject; np=none; adkim=s; "
					    "aspf=s; psd=y; t=y; pct=20; "
					    "p=none",
					    strlen("v=DMARC1; p=quarantine; "
						   "sp=reject; np=none; "
						   "adkim=s; aspf=s; psd=y; "
						   "t=y; pct=20; p=none"),
					    &r),
			 0);
	assert_true(r.usable);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE); /* first p counts */
	assert_int_equal(r.sp, DMARC_POLICY_REJECT);
	assert_int_equal(r.np, DMARC_POLICY_NONE);
	assert_true(r.adkim_strict && r.aspf_strict);
	assert_int_equal(r.psd, DMARC_PSD_Y);
	assert_int_equal(r.t, 1);
	assert_int_equal(r.pct, 20);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; adkim=x; "
					    "t=maybe; pct=abc; psd=q",
					    strlen("v=DMARC1; p=reject; "
						   "adkim=x; t=maybe; "
						   "pct=abc; psd=q"),
					    &r),
			 0);
	assert_true(r.usable);
	assert_false(r.adkim_strict);
	assert_int_equal(r.t, -1);
	assert_int_equal(r.pct, -1);
	assert_int_equal(r.psd, DMARC_PSD_U);
	assert_string_equal(r.note, "invalid adkim=x");
	/* a NUL inside: not a record */
	assert_int_equal(dmarc_record_parse("v=DMARC1\0; p=reject", 19, &r),
			 DMARC_NOT_RECORD);
}

/* --- domains: the OpenDMARC strict rows, From parsing --------------------- */

static void
test_domains(void **state)
{
	static const struct {
		const char *a, *b;
		bool aligned;
	} strict[] = {
		{ "a.b.c.edu.ar", "edr.au", false },
		{ "oooo.com", "ooo.com", false },
		{ ".mac.com.", "mac.com", false }, /* deviation */
		{ "....mac.com....", "mac.com", false }, /* deviation */
		{ "mac...com", "..com", false },
		{ "a.b.de", "a.b.de", true },
		{ "A.B.De.", "a.b.de", true },
	};
	char x[DMARC_NAME_MAX], y[DMARC_NAME_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(strict) / sizeof(strict[0]); i++) {
		const char *a = dmarc_domain_normalize(strict[i].a, x);
		const char *b = dmarc_domain_normalize(strict[i].b, y);

		if ((a != NULL && b != NULL && dmarc_domain_equal(a, b)) !=
		    strict[i].aligned)
			fail_msg("strict %s / %s", strict[i].a, strict[i].b);
	}
	assert_null(dmarc_domain_normalize("[192.0.2.1]", x));
	assert_null(dmarc_domain_normalize("", x));
	assert_null(dmarc_domain_normalize("a..b", x));
	assert_string_equal(dmarc_domain_normalize("b\xc3\xbc"
						   "cher.DE",
						   x),
			    "xn--bcher-kva.de");
	assert_true(dmarc_domain_within("a.example.com", "example.com"));
	assert_true(dmarc_domain_within("example.com", "example.com"));
	assert_false(dmarc_domain_within("badexample.com", "example.com"));
	assert_false(dmarc_domain_within("com", "example.com"));
	assert_int_equal(dmarc_label_count("a.b.c"), 3);
	assert_int_equal(dmarc_label_count(""), 0);
}

static void
test_from_rows(void **state)
{
	static const struct {
		const char *value;
		const char *first; /* expected first domain, or NULL */
		size_t count;
	} from_rows[] = {
		{ "Joe Johnson <joe@joe.com>", "joe.com", 1 },
		{ "\"Johnson, Joe <joe@joe.com>\" joe@joe.com", "joe.com", 1 },
		{ "\"Joe Johnson\" <joe@joe.com>", "joe.com", 1 },
		{ "(Joe Johnson) joe@joe.com", "joe.com", 1 },
		{ "joe@joe.com", "joe.com", 1 },
		/* deviation: the kernel's parser finds no domain here */
		{ "<<<><joe@joe.com>>>", NULL, 0 },
		/* deviation: both domains are kept (and evaluated) */
		{ "Joe Johnson <joe@joe.com>, ace@ace.com", "joe.com", 2 },
		{ "joe@joe.com, ace@ace.com", "joe.com", 2 },
		{ "\"Mandel, Bob\" <joe@joe.com>", "joe.com", 1 },
		{ "(,) joe@joe.com", "joe.com", 1 },
		{ "\"( bob@bob.com)\" joe@joe.com", "joe.com", 1 },
		/* a field name inside the value: the address still shows */
		{ "Mail From:<joe@joe.com>", "joe.com", 1 },
		{ "From: Davide D'Marco <user@blah.com>", "blah.com", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(from_rows) / sizeof(from_rows[0]); i++) {
		char hdr[300];
		struct dmarc_from f;

		snprintf(hdr, sizeof(hdr), "From: %s\r\n\r\n",
			 from_rows[i].value);
		dmarc_from_parse(hdr, strlen(hdr), &f);
		if (f.count != from_rows[i].count ||
		    (f.count > 0 &&
		     strcmp(f.domains[0], from_rows[i].first) != 0))
			fail_msg("from \"%s\": %zu domains, first %s",
				 from_rows[i].value, f.count,
				 f.count > 0 ? f.domains[0] : "-");
		dmarc_from_clear(&f);
	}
}

/* Too many From domains: a permerror without a lookup. */
static void
test_too_many_from(void **state)
{
	char hdr[1024] = "From: ";
	struct dmarc_from f;

	(void)state;
	for (int i = 0; i < DMARC_FROM_MAX + 1; i++) {
		char a[40];

		snprintf(a, sizeof(a), "%sx@d%d.example", i > 0 ? ", " : "", i);
		strcat(hdr, a);
	}
	strcat(hdr, "\r\n\r\n");
	dmarc_from_parse(hdr, strlen(hdr), &f);
	assert_true(f.too_many);
	assert_int_equal(f.count, DMARC_FROM_MAX);

	struct fake fk = { .rrs = z_multi };
	struct dmarc_resolver res = { &fk, fake_lookup, fake_cancel };
	struct dmarc_request req = { .from = &f };
	struct outcome out = { 0 };
	struct dmarc_eval *ev = dmarc_eval_new(&res, &req, on_done, &out);

	dmarc_eval_run(ev);
	assert_int_equal(out.calls, 1);
	assert_int_equal(out.o.result, DMARC_PERMERROR);
	assert_int_equal(fk.queries, 0);
	dmarc_eval_free(&ev);
	dmarc_from_clear(&f);
}

/* Freeing with a lookup in flight cancels it; done never runs. */
static void
test_free_cancels(void **state)
{
	struct fake f = { .rrs = z_example };
	struct dmarc_resolver res = { &f, fake_lookup, fake_cancel };
	struct dmarc_from from;
	struct outcome out = { 0 };
	struct dmarc_eval *ev;

	(void)state;
	dmarc_from_parse(FROM("example.com"), strlen(FROM("example.com")),
			 &from);
	struct dmarc_request req = { .from = &from };

	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_eval_run(ev);
	assert_true(f.pending);
	dmarc_eval_free(&ev);
	assert_int_equal(f.cancels, 1);
	assert_int_equal(out.calls, 0);
	dmarc_from_clear(&from);
}

/* Past the query budget, identifiers do not align (no temperror). */
static void
test_query_budget(void **state)
{
	static const struct fake_rr zone[] = {
		{ "_dmarc.example.com", TS_DNS_TXT, "v=DMARC1; p=reject" },
		{ NULL },
	};
	struct fake f = { .rrs = zone };
	struct dmarc_resolver res = { &f, fake_lookup, fake_cancel };
	struct dmarc_from from;
	const char *dkim[] = { "a.b.c.d.e.f.example.com",
			       "g.h.i.j.k.l.example.com" };
	struct outcome out = { 0 };
	struct dmarc_eval *ev;

	(void)state;
	dmarc_from_parse(FROM("example.com"), strlen(FROM("example.com")),
			 &from);
	struct dmarc_request req = { .from = &from,
				     .dkim_domains = dkim,
				     .dkim_count = 2,
				     .max_queries = 8 };

	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_eval_run(ev);
	while (fake_step(&f))
		;
	assert_int_equal(out.calls, 1);
	/* 2 for From's walks, 6 for the first d=, none for the second */
	assert_int_equal(out.o.result, DMARC_PASS);
	assert_int_equal(f.queries, 8);
	dmarc_eval_free(&ev);
	dmarc_from_clear(&from);
}

/* The DNSSEC status of the answers; a bogus one is a temperror. */
static void
test_dnssec(void **state)
{
	struct fake f = { .rrs = z_example, .security = TS_DNS_SECURE };
	struct dmarc_resolver res = { &f, fake_lookup, fake_cancel };
	struct dmarc_from from;
	const char *dkim[] = { "example.com" };
	struct outcome out = { 0 };
	struct dmarc_eval *ev;

	(void)state;
	dmarc_from_parse(FROM("example.com"), strlen(FROM("example.com")),
			 &from);
	struct dmarc_request req = { .from = &from,
				     .dkim_domains = dkim,
				     .dkim_count = 1 };

	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_eval_run(ev);
	while (fake_step(&f))
		;
	assert_int_equal(out.o.result, DMARC_PASS);
	assert_int_equal(out.o.answers, 1);
	assert_true(out.o.dnssec_secure);
	assert_false(out.o.dnssec_bogus);
	dmarc_eval_free(&ev);

	f.security = TS_DNS_BOGUS;
	memset(&out, 0, sizeof(out));
	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_eval_run(ev);
	while (fake_step(&f))
		;
	assert_int_equal(out.o.result, DMARC_TEMPERROR);
	assert_false(out.o.dnssec_secure);
	assert_true(out.o.dnssec_bogus);
	dmarc_eval_free(&ev);

	f.security = TS_DNS_INSECURE;
	memset(&out, 0, sizeof(out));
	ev = dmarc_eval_new(&res, &req, on_done, &out);
	dmarc_eval_run(ev);
	while (fake_step(&f))
		;
	assert_int_equal(out.o.result, DMARC_PASS);
	assert_false(out.o.dnssec_secure || out.o.dnssec_bogus);
	dmarc_eval_free(&ev);
	dmarc_from_clear(&from);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0]) + 8];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		tests[n] = (struct CMUnitTest){
			.name = rows[i].name,
			.test_func = run_row,
			.initial_state = (void *)&rows[i],
		};
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_record_parse);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_record_values);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_domains);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_from_rows);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_too_many_from);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_free_cancels);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_query_budget);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_dnssec);
	return _cmocka_run_group_tests("dmarc", tests, n, NULL, NULL);
}
