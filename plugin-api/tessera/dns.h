/*
 * tessera/dns.h — asynchronous, DNSSEC-aware DNS lookups.
 *
 * The kernel resolves through libunbound driven by the event loop: a lookup
 * never blocks, and its callback runs later on the loop thread with a typed
 * answer.  Every answer says how it ended (records, NXDOMAIN, no data,
 * temporary or permanent failure), the DNS rcode, whether DNSSEC proved it
 * secure, found it bogus, or could not tell (insecure), and its TTL.  CNAME
 * chains are followed by the resolver; `canonical` names the end.
 *
 * The resolver is configured in [dns] (see tessera.ini(5)): the system's
 * resolv.conf, forwarders, or full recursion with a trust anchor.  Tests
 * point it at a local DNS fixture; nothing here reaches the internet on its
 * own.
 */
#ifndef TESSERA_DNS_H
#define TESSERA_DNS_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Record types (their IANA numbers). */
enum ts_dns_type {
	TS_DNS_A = 1,
	TS_DNS_NS = 2,
	TS_DNS_CNAME = 5,
	TS_DNS_PTR = 12,
	TS_DNS_MX = 15,
	TS_DNS_TXT = 16,
	TS_DNS_AAAA = 28,
	TS_DNS_TLSA = 52,
};

/* "MX" for TS_DNS_MX; NULL for a type this API does not know. */
const char *ts_dns_type_name(enum ts_dns_type type);
/* Inverse (case-insensitive); 0 or TS_E_NOTFOUND. */
int ts_dns_type_parse(const char *name, enum ts_dns_type *type_r);

/* How a lookup ended. */
enum ts_dns_status {
	TS_DNS_OK,       /* records of the asked type: count >= 1 */
	TS_DNS_NXDOMAIN, /* the name does not exist */
	TS_DNS_NODATA,   /* the name exists, without records of this type */
	TS_DNS_TEMPFAIL, /* SERVFAIL, timeout, network: try again later */
	TS_DNS_PERMFAIL, /* REFUSED, FORMERR, a malformed name: won't work */
};

/* What DNSSEC says about the answer. */
enum ts_dns_security {
	TS_DNS_INSECURE, /* not signed, or no trust anchor covers it */
	TS_DNS_SECURE,   /* validated up to a trust anchor */
	TS_DNS_BOGUS,    /* signed but validation failed: do not trust */
};

const char *ts_dns_status_name(enum ts_dns_status status);   /* "nxdomain" */
const char *ts_dns_security_name(enum ts_dns_security sec); /* "secure" */

/* One record; which member is valid depends on the answer's type. */
struct ts_dns_record {
	uint32_t ttl;
	union {
		/* A, AAAA: numeric text ("192.0.2.1", "2001:db8::1"). */
		char addr[46];
		/* MX: preference and exchange (no trailing dot). */
		struct {
			uint16_t preference;
			const char *exchange;
		} mx;
		/* NS, CNAME, PTR: the target name (no trailing dot). */
		const char *name;
		/* TXT: the character-strings concatenated (RFC 7208 3.3). */
		struct {
			const char *text;
			size_t len; /* may contain NULs */
		} txt;
		/* TLSA (RFC 6698). */
		struct {
			uint8_t usage, selector, matching;
			const uint8_t *data;
			size_t len;
		} tlsa;
	} u;
};

struct ts_dns_answer {
	const char *name;      /* the name asked (no trailing dot) */
	enum ts_dns_type type; /* the type asked */
	enum ts_dns_status status;
	int rcode; /* DNS rcode: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, … */
	enum ts_dns_security security;
	const char *why_bogus; /* validator's reason when BOGUS, else NULL */
	const char *canonical; /* name after CNAMEs (== name when none) */
	uint32_t ttl;          /* smallest TTL of the records (or negative TTL) */
	size_t count;
	const struct ts_dns_record *records;
};

/* A lookup in flight; owned by the kernel. */
struct ts_dns_query;

/*
 * Called once, on the loop thread, with the answer; the answer and all its
 * strings are freed when it returns (copy what you keep).  Never called for
 * a cancelled query.
 */
typedef void (*ts_dns_fn)(const struct ts_dns_answer *answer, void *arg);

/*
 * Start a lookup of name/type.  The callback never runs before this
 * returns.  Returns the query (cancel it with ts_dns_cancel when you lose
 * interest, e.g. the client left), or NULL with the callback not to be
 * called when the lookup could not even start (logged).
 */
struct ts_dns_query *ts_dns_lookup(struct ts_ctx *ctx, const char *name,
				   enum ts_dns_type type, ts_dns_fn fn,
				   void *arg);

/*
 * PTR lookup of an IPv4 or IPv6 address in numeric form; the answer's name
 * is the reverse name (in-addr.arpa / ip6.arpa).  NULL for a bad address.
 */
struct ts_dns_query *ts_dns_lookup_ptr(struct ts_ctx *ctx, const char *ip,
				       ts_dns_fn fn, void *arg);

/* Abandon a query; its callback will not run.  Sets *query to NULL. */
void ts_dns_cancel(struct ts_dns_query **query);

#ifdef __cplusplus
}
#endif
#endif
