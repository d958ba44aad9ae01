/*
 * modules/spf/spf.h — the spf module's internal interfaces.
 *
 * Three layers, each usable without the kernel loop: record.c parses an
 * SPF record (RFC 7208 section 4.6 and 12), macro.c expands macro strings
 * (section 7), and eval.c runs check_host() (section 4) as a small state
 * machine driven by DNS answers from an injected resolver.  hook.c binds
 * them to the kernel (the resolver is ts_dns_lookup, the caller the
 * smtp_mail hook); spf.c holds the descriptor and settings.
 */
#ifndef SPF_H
#define SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tessera/dns.h>

/* check_host() results (RFC 7208 section 2.6). */
enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "pass", "permerror", …; lower case as in RFC 8601. */
const char *spf_result_name(enum spf_result result);

/* --- record.c ------------------------------------------------------------ */

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	enum spf_result qual; /* result when it matches */
	char *spec; /* domain-spec, or NULL for "the current domain" */
	int cidr4, cidr6; /* prefix lengths (32 / 128 when absent) */
	uint8_t net[16]; /* ip4 (first 4 bytes) / ip6 network */
	char *text; /* the term as written, for Received-SPF */
};

struct spf_record {
	struct spf_term *terms; /* mechanisms, in order */
	size_t count;
	char *redirect; /* redirect= domain-spec, or NULL */
	char *exp; /* exp= domain-spec, or NULL */
};

/* True when TXT text is an SPF record: "v=spf1" then a space or the end. */
bool spf_is_record(const char *text, size_t len);

/*
 * Parse a record.  Returns 0 and *rec_r, or -1 with *error_r saying what
 * is wrong (any syntax error makes the whole record a permerror).
 */
int spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
		     const char **error_r);
void spf_record_free(struct spf_record **rec);

/* --- macro.c ------------------------------------------------------------- */

/* What macros expand to (RFC 7208 section 7.3). */
struct spf_macro_env {
	const char *sender; /* s: local@domain */
	const char *local; /* l */
	const char *sender_domain; /* o */
	const char *domain; /* d: the current <domain> */
	const char *helo; /* h */
	const char *receiver; /* r (explanations only) */
	const char *p; /* p: validated name, NULL when not computed yet */
	int family; /* 4 or 6 */
	const uint8_t *ip; /* 4 or 16 bytes */
	time_t now; /* t (explanations only) */
};

#define SPF_MACRO_NEED_P 1 /* expansion needs %{p}: compute it, retry */

/*
 * Syntax check of a macro-string (exp: explanation letters c, r, t are
 * allowed).  Returns true when valid.
 */
bool spf_macro_valid(const char *s, size_t len, bool exp);

/* A domain-spec: a valid macro-string ending in a domain-end (section 12). */
bool spf_domain_spec_valid(const char *s, size_t len);

/*
 * Expand s into *out_r (caller frees).  Returns 0, SPF_MACRO_NEED_P when
 * env->p is NULL and s uses it, or -1 for a syntax error.  Domain names
 * (exp false) longer than 253 octets lose labels on the left.
 */
int spf_macro_expand(const char *s, const struct spf_macro_env *env, bool exp,
		     char **out_r);

/* --- eval.c -------------------------------------------------------------- */

/*
 * The resolver check_host() runs on: start a lookup, the callback runs
 * later (never inside lookup) with the answer; cancel abandons it.  The
 * kernel version wraps ts_dns_lookup; tests feed zone data.
 */
struct spf_resolver {
	void *(*lookup)(void *ctx, const char *name, enum ts_dns_type type,
			ts_dns_fn fn, void *arg);
	void (*cancel)(void *ctx, void *query);
	void *ctx;
};

struct spf_request {
	const char *ip; /* client address, numeric */
	const char *sender; /* "local@domain", or "" for the null sender */
	const char *helo;
	const char *receiver; /* our host name, for %{r} */
	unsigned max_dns_mechanisms; /* RFC 7208 4.6.4: 10 */
	unsigned max_void_lookups; /* 2 */
	time_t now;
};

struct spf_outcome {
	enum spf_result result;
	const char *domain; /* the <domain> checked */
	const char *sender; /* the <sender> used (postmaster@helo for <>) */
	const char *explanation; /* exp= text for a fail, or NULL */
	const char *problem; /* why for errors, or NULL */
	const char *mechanism; /* the matching term, or NULL */
	unsigned lookups; /* DNS queries made */
	bool all_secure; /* every answer validated by DNSSEC */
	bool any_bogus; /* some answer was DNSSEC-bogus */
};

struct spf_eval;

/* Called once with the outcome; the outcome lives as long as the eval. */
typedef void (*spf_done_fn)(const struct spf_outcome *outcome, void *arg);

/* A new evaluation of check_host(ip, domain of sender, sender). */
struct spf_eval *spf_eval_new(const struct spf_resolver *resolver,
			      const struct spf_request *req, spf_done_fn done,
			      void *arg);
/*
 * Start it.  `done` may run before this returns (a malformed domain, or
 * a bad IP address); otherwise it runs from a resolver callback.
 */
void spf_eval_run(struct spf_eval *ev);
/* Free (cancelling a lookup in flight); sets *ev to NULL. */
void spf_eval_free(struct spf_eval **ev);

#endif
