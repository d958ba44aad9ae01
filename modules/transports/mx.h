/*
 * modules/transports/mx.h — which hosts and addresses direct delivery
 * tries, from DNS answers (pure; see mx.c).
 */
#ifndef TRANSPORTS_MX_H
#define TRANSPORTS_MX_H

#include <tessera/common.h>
#include <tessera/dns.h>

#include "client.h"

/* One host to try: an MX exchange, the domain itself, or an address. */
struct tr_host {
	char *name; /* host name, or a numeric address when literal */
	uint16_t preference;
	bool literal; /* name is a numeric IPv4/IPv6 address */
};

/* The hosts in the order to try them. */
struct tr_hosts {
	struct tr_host *hosts;
	size_t count;
	bool implicit; /* no MX records: the domain itself (RFC 5321 5.1) */
};

/* A random number source, injected so tests can fix the order. */
typedef uint32_t (*tr_random_fn)(void *arg);

/*
 * Whether domain is an address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]"); then *hosts_r holds that one address.  Returns
 * 1 (a literal), 0 (a domain name: look up MX), or TS_E_INVAL with
 * *fail_r filled (a malformed literal: permanent failure).
 */
int tr_mx_literal(const char *domain, struct tr_hosts *hosts_r,
		  struct tr_result *fail_r);

/*
 * From the answer to the MX query for `domain`, the hosts to try:
 * preference order, equal preferences shuffled with rnd; no MX records
 * → the domain itself; null MX (RFC 7505) → 556 5.1.10; NXDOMAIN → 550
 * 5.1.2; temporary DNS failures (and DNSSEC bogus answers) → 451 4.4.3.
 * Exchanges that are IP addresses are skipped (RFC 5321 5.1 wants a host
 * name); CNAMEs are fine (the address lookup follows them).  Returns 0
 * with *hosts_r (free with tr_hosts_free), or TS_E_NOTFOUND with
 * *fail_r (its text malloc'd).
 */
int tr_mx_hosts(const char *domain, const struct ts_dns_answer *mx,
		tr_random_fn rnd, void *rnd_arg, struct tr_hosts *hosts_r,
		struct tr_result *fail_r);

void tr_hosts_free(struct tr_hosts *hosts);

/* Which address families, in which order. */
enum tr_family {
	TR_FAMILY_IPV6_FIRST,
	TR_FAMILY_IPV4_FIRST,
	TR_FAMILY_IPV6_ONLY,
	TR_FAMILY_IPV4_ONLY,
};

/* Parse "ipv6-first" etc.; 0 or TS_E_INVAL. */
int tr_family_parse(const char *text, enum tr_family *family_r);
/* Whether the family setting needs lookups of type (A or AAAA). */
bool tr_family_wants(enum tr_family family, enum ts_dns_type type);

/* What the address lookups of one host gave. */
enum tr_addr_status {
	TR_ADDR_OK, /* addresses to try */
	TR_ADDR_NONE, /* the host has no address (of the wanted families) */
	TR_ADDR_TEMP, /* a lookup failed temporarily and none answered */
};

/*
 * The ordered address list of a host from its AAAA and A answers (either
 * may be NULL: not asked).  *addrs_r is a malloc'd array of malloc'd
 * strings (free with tr_addrs_free), *why_r a static reason for
 * TR_ADDR_NONE/TR_ADDR_TEMP.
 */
enum tr_addr_status tr_addrs_from_answers(const struct ts_dns_answer *aaaa,
					  const struct ts_dns_answer *a,
					  enum tr_family family,
					  char ***addrs_r, size_t *count_r,
					  const char **why_r);
void tr_addrs_free(char ***addrs, size_t count);

#endif
