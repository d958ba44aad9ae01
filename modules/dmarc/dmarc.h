/*
 * modules/dmarc/dmarc.h — the dmarc module's core, usable without the
 * kernel loop.
 *
 * DMARC as DMARCbis (RFC 9989) defines it, reading RFC 7489 records too.
 * Four layers: record.c parses a DMARC policy record, discover.c runs the
 * DNS tree walk (policy discovery and the Organizational Domain, no
 * Public Suffix List), align.c finds the RFC5322.From domains of a header
 * and compares domains, and eval.c runs one message's evaluation as a
 * small state machine on DNS answers from an injected resolver.  hook.c
 * binds them to the kernel; dmarc.c holds the descriptor and settings.
 */
#ifndef DMARC_H
#define DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/dns.h>

/* DMARC results for Authentication-Results (RFC 8601 2.7.5 / RFC 9989). */
enum dmarc_result {
	DMARC_NONE,
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};

/* "pass", "none", …, lower case. */
const char *dmarc_result_name(enum dmarc_result result);

/* A Domain Owner Assessment Policy, least to most strict. */
enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy policy);

enum dmarc_psd {
	DMARC_PSD_U, /* the default: not a PSD */
	DMARC_PSD_Y,
	DMARC_PSD_N,
};

/* Longest domain name we handle, with its NUL. */
#define DMARC_NAME_MAX 254

/* --- record.c ------------------------------------------------------------ */

/*
 * A parsed DMARC policy record.  Tags with invalid values are ignored
 * (their defaults hold) and noted; p, sp and np decide whether the record
 * can be applied at all (RFC 9989 "DMARC Policy Discovery"; see `usable`).
 */
struct dmarc_record {
	enum dmarc_policy p, sp, np;
	bool p_set, sp_set, np_set; /* present with a valid value */
	/*
	 * The record can be applied: p is valid and sp/np (when present)
	 * are valid — or not, but rua holds a valid URI, and then the
	 * record counts as p=none (sp/np dropped).  Otherwise no DMARC
	 * processing is applied to the message.
	 */
	bool usable;
	bool adkim_strict, aspf_strict;
	enum dmarc_psd psd;
	int t; /* -1 absent, 0 "n", 1 "y" */
	int pct; /* RFC 7489 pct: -1 absent (or invalid), else 0..100 */
	bool rua_valid; /* rua holds at least one syntactically valid URI */
	char note[80]; /* the first ignored tag value, or "" */
};

/* dmarc_record_parse: the text is not a DMARC record at all. */
#define DMARC_NOT_RECORD 1

/*
 * Parse a TXT record (len bytes; NULs make it "not a record").  Returns
 * 0 with *r filled for a DMARC record (check r->usable), or
 * DMARC_NOT_RECORD when it does not start with the tag v=DMARC1 — such
 * records are discarded (RFC 9989 "General Record Format").
 */
int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *r);

/* --- discover.c ---------------------------------------------------------- */

/* At most this many queries per walk (RFC 9989 tree walk: the name + 7). */
#define DMARC_WALK_MAX 8

/* What the DMARC records at one name come to. */
enum dmarc_lookup_status {
	DMARC_LOOKUP_NONE, /* no record, or several (all discarded) */
	DMARC_LOOKUP_FOUND, /* exactly one DMARC record */
	DMARC_LOOKUP_TEMPFAIL, /* the DNS could not tell */
};

struct dmarc_lookup {
	enum dmarc_lookup_status status;
	size_t dmarc_records; /* v=DMARC1 records seen (>1: discarded) */
	struct dmarc_record rec; /* when FOUND */
};

/*
 * Sum up a TXT answer at a _dmarc name: records that are not DMARC
 * records are dropped, several DMARC records are all discarded (RFC 9989
 * DNS Tree Walk, step 2).  A bogus answer (DNSSEC) counts as a temporary
 * failure, a permanent one (REFUSED, a malformed name) as no record.
 */
void dmarc_lookup_from_answer(const struct ts_dns_answer *a,
			      struct dmarc_lookup *out);

enum dmarc_walk_mode {
	/* Policy discovery: stop at the first DMARC record. */
	DMARC_WALK_POLICY,
	/* Organizational Domain: stop at psd=n, or psd=y above the start. */
	DMARC_WALK_ORG,
};

struct dmarc_found {
	char domain[DMARC_NAME_MAX];
	struct dmarc_record rec;
};

/*
 * One DNS tree walk (RFC 9989 "DNS Tree Walk"): the name itself, then — for
 * names of 8 labels or more — its last 7 labels, then one label less each time,
 * down to the top-level label: never more than DMARC_WALK_MAX queries.
 */
struct dmarc_walk {
	enum dmarc_walk_mode mode;
	char start[DMARC_NAME_MAX];
	char target[DMARC_NAME_MAX]; /* the name now being asked */
	char qname[DMARC_NAME_MAX + 8]; /* "_dmarc." + target */
	unsigned steps; /* names asked so far */
	bool done;
	bool temperror; /* a lookup failed temporarily: walk is unsure */
	struct dmarc_found found[DMARC_WALK_MAX]; /* longest name first */
	size_t found_count;
};

/*
 * Start a walk at domain (lower case, no trailing dot, at most
 * DMARC_NAME_MAX - 1 bytes; longer ones are cut, which a caller avoids).
 */
void dmarc_walk_init(struct dmarc_walk *w, const char *domain,
		     enum dmarc_walk_mode mode);

/* The next "_dmarc.NAME" to look up, or NULL when the walk is over. */
const char *dmarc_walk_next(struct dmarc_walk *w);

/* Feed the answer for the name dmarc_walk_next gave. */
void dmarc_walk_feed(struct dmarc_walk *w, const struct dmarc_lookup *l);

/*
 * The Organizational Domain a finished DMARC_WALK_ORG walk determined
 * (RFC 9989 "Organizational Domain Discovery"): the psd=n domain; else the one
 * label below a psd=y domain other than the start; else the found domain with
 * the fewest labels; else the start.  Written to buf (DMARC_NAME_MAX bytes).
 */
const char *dmarc_walk_org(const struct dmarc_walk *w, char *buf);

/* Number of labels of a domain ("a.b" is 2; "" is 0). */
unsigned dmarc_label_count(const char *domain);

/* --- align.c ------------------------------------------------------------- */

/* dmarc_from_domains: at most this many distinct From domains kept. */
#define DMARC_FROM_MAX 8

/* The RFC5322.From domains of a message header. */
struct dmarc_from {
	size_t fields; /* From header fields seen */
	size_t addresses; /* mailboxes in them */
	/* distinct domains, lower-case A-labels, in order of appearance */
	char *domains[DMARC_FROM_MAX];
	size_t count;
	bool too_many; /* more distinct domains than DMARC_FROM_MAX */
	/* a mailbox without a usable domain (missing, not a name, bad IDN) */
	bool bad_domain;
};

/*
 * Collect the From domains of the header in data (len bytes; the header
 * ends at the first empty line).  U-labels become A-labels (RFC 9989
 * "Extract Author Domain"); a trailing dot goes.  Free with dmarc_from_clear.
 */
void dmarc_from_parse(const char *data, size_t len, struct dmarc_from *from);
void dmarc_from_clear(struct dmarc_from *from);

/*
 * Normalize a domain into buf (DMARC_NAME_MAX bytes): lower case, no
 * trailing dot; U-labels to A-labels.  Returns buf, or NULL when it is
 * not a usable host name (empty labels, bad characters, too long).
 */
const char *dmarc_domain_normalize(const char *domain, char *buf);

/* Case-insensitive equality of two normalized domains (strict mode). */
bool dmarc_domain_equal(const char *a, const char *b);

/* domain is parent itself or one of its subdomains (label-wise). */
bool dmarc_domain_within(const char *domain, const char *parent);

/* --- eval.c -------------------------------------------------------------- */

/*
 * How the evaluator asks DNS: like ts_dns_lookup/ts_dns_cancel, with a
 * context.  lookup returns a handle (NULL when it could not start; the
 * callback then never runs) and never calls fn before it returns.
 */
struct dmarc_resolver {
	void *ctx;
	void *(*lookup)(void *ctx, const char *name, enum ts_dns_type type,
			ts_dns_fn fn, void *arg);
	void (*cancel)(void *ctx, void *query);
};

/* What SPF and DKIM found, and the From domains. */
struct dmarc_request {
	const struct dmarc_from *from;
	/* the MAIL FROM (or HELO for <>) domain when SPF passed, or NULL */
	const char *spf_domain;
	bool spf_temperror; /* SPF gave temperror */
	const char *const *dkim_domains; /* d= of each dkim=pass */
	size_t dkim_count;
	bool dkim_temperror; /* some signature gave temperror */
	/* real DNS queries per message, past the first policy walk; 0: 40 */
	unsigned max_queries;
};

/* The verdict for the message (the strictest of its From domains). */
struct dmarc_outcome {
	enum dmarc_result result;
	const char *domain; /* the From domain it is about, or NULL */
	const char *policy_domain; /* where the policy record is, or NULL */
	const struct dmarc_record *rec; /* that record, or NULL */
	const char *org_domain; /* From's Organizational Domain, or NULL */
	char policy_tag; /* 'p', 's' (sp) or 'n' (np) when a record applies */
	enum dmarc_policy policy; /* the requested policy for this message */
	bool testing; /* t=y (or RFC 7489 pct < 100) */
	/* for fail: the policy after testing mode, else NONE */
	enum dmarc_policy disposition;
	bool spf_aligned, dkim_aligned;
	const char *reason; /* for none/permerror/temperror/fail, or NULL */
	unsigned queries; /* DNS queries made */
	unsigned answers; /* DNS answers received */
	/* every answer was DNSSEC secure / some answer was bogus */
	bool dnssec_secure, dnssec_bogus;
};

typedef void (*dmarc_done_fn)(const struct dmarc_outcome *o, void *arg);

struct dmarc_eval;

/*
 * A new evaluation; the request and what it points to are copied.  done
 * runs once, from dmarc_eval_run or from a DNS callback; the outcome is
 * valid while the evaluation lives.
 */
struct dmarc_eval *dmarc_eval_new(const struct dmarc_resolver *resolver,
				  const struct dmarc_request *req,
				  dmarc_done_fn done, void *arg);

/* Start (once): runs until it waits for DNS or is done. */
void dmarc_eval_run(struct dmarc_eval *ev);

/* Free, cancelling a lookup in flight; *ev = NULL.  NULL is fine. */
void dmarc_eval_free(struct dmarc_eval **ev);

#endif
