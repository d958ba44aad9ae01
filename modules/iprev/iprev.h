/*
 * modules/iprev/iprev.h — the iprev check (RFC 8601 2.7.3): does the
 * client's address have a DNS name that leads back to it?
 *
 * The check asks PTR for the address, then A (IPv4) or AAAA (IPv6) for
 * at most `max_names` of the names it got, and passes as soon as one of
 * them lists the address.  It runs on an injected resolver so that the
 * logic is testable without the kernel; hook.c connects it to ts_dns.
 * Loop thread only.
 */
#ifndef IPREV_H
#define IPREV_H

#include <stdbool.h>
#include <stddef.h>

#include <tessera/dns.h>

/* RFC 8601 2.7.3 results. */
enum iprev_result {
	IPREV_PASS,	 /* a PTR name resolves back to the address */
	IPREV_FAIL,	 /* PTR names exist; none leads back to it */
	IPREV_TEMPERROR, /* a lookup failed in a way that may pass */
	IPREV_PERMERROR, /* no PTR record for the address */
};

/* "pass", "fail", "temperror", "permerror". */
const char *iprev_result_name(enum iprev_result result);

/*
 * How the check asks DNS.  lookup/lookup_ptr start a query and return
 * a handle (NULL: could not start; the callback will not run); the
 * callback runs later, never inside the call.  cancel abandons a query.
 */
struct iprev_resolver {
	void *ctx;
	void *(*lookup)(void *ctx, const char *name, enum ts_dns_type type,
			ts_dns_fn fn, void *arg);
	void *(*lookup_ptr)(void *ctx, const char *ip, ts_dns_fn fn,
			    void *arg);
	void (*cancel)(void *ctx, void *query);
};

struct iprev_outcome {
	enum iprev_result result;
	/* The name that led back (pass), else the first PTR name or NULL. */
	const char *name;
	const char *problem; /* why not pass, for logs; NULL on pass */
	unsigned lookups;    /* answers received */
	bool all_secure;     /* every answer DNSSEC-validated */
	bool any_bogus;	     /* an answer failed validation */
};

/* Called once with the outcome (valid during the call only). */
typedef void (*iprev_done_fn)(const struct iprev_outcome *outcome,
			      void *arg);

struct iprev_eval;

/*
 * A check of `ip` (numeric IPv4 or IPv6), asking about at most
 * max_names PTR names.  Nothing is asked before iprev_eval_run.  Free
 * with iprev_eval_free.
 */
struct iprev_eval *iprev_eval_new(const struct iprev_resolver *resolver,
				  const char *ip, unsigned max_names,
				  iprev_done_fn fn, void *arg);

/*
 * Start asking.  Returns true when the outcome is already known (a bad
 * address, a resolver that could not start): then `fn` is not called
 * and iprev_eval_outcome has it.  Otherwise `fn` runs later, once.
 */
bool iprev_eval_run(struct iprev_eval *e);

/* The outcome once known (after fn ran, or run returned true). */
const struct iprev_outcome *iprev_eval_outcome(const struct iprev_eval *e);

/* Cancel what is in flight and free; sets *e to NULL.  NULL is fine. */
void iprev_eval_free(struct iprev_eval **e);

#endif
