/*
 * modules/transports/mx.c — target selection for direct delivery.
 *
 * Pure functions from DNS answers to what to try: the MX hosts in order
 * (RFC 5321 5.1: lowest preference first, equal preferences in random
 * order, the domain itself when there is no MX, address literals as
 * they are), null MX (RFC 7505), and per host the addresses in the
 * configured family order.  The lookups themselves and the connections
 * are transports.c's job.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mx.h"

static void
tr_fail(struct tr_result *r, int code, const char *enhanced, char *text)
{
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	r->text = text;
	r->remote = false;
}

static bool
tr_is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

int
tr_mx_literal(const char *domain, struct tr_hosts *hosts_r,
	      struct tr_result *fail_r)
{
	memset(hosts_r, 0, sizeof(*hosts_r));
	if (domain[0] != '[')
		return 0;
	size_t len = strlen(domain);
	unsigned char buf[16];
	char ip[64];
	int ok = 0;
	if (len >= 3 && len - 2 < sizeof(ip) && domain[len - 1] == ']') {
		memcpy(ip, domain + 1, len - 2);
		ip[len - 2] = '\0';
		if (strncasecmp(ip, "IPv6:", 5) == 0) {
			memmove(ip, ip + 5, strlen(ip + 5) + 1);
			ok = inet_pton(AF_INET6, ip, buf) == 1;
		} else {
			ok = inet_pton(AF_INET, ip, buf) == 1;
		}
	}
	if (!ok) {
		tr_fail(fail_r, 553, "5.1.2",
			ts_xasprintf("malformed address literal %s", domain));
		return TS_E_INVAL;
	}
	hosts_r->hosts = ts_xcalloc(1, sizeof(*hosts_r->hosts));
	hosts_r->hosts[0].name = ts_xstrdup(ip);
	hosts_r->hosts[0].literal = true;
	hosts_r->count = 1;
	return 1;
}

int
tr_mx_hosts(const char *domain, const struct ts_dns_answer *mx,
	    tr_random_fn rnd, void *rnd_arg, struct tr_hosts *hosts_r,
	    struct tr_result *fail_r)
{
	memset(hosts_r, 0, sizeof(*hosts_r));
	if (mx->security == TS_DNS_BOGUS) {
		tr_fail(fail_r, 451, "4.4.3",
			ts_xasprintf("DNSSEC validation of the MX records "
				     "of %s failed: %s",
				     domain,
				     mx->why_bogus ? mx->why_bogus : "bogus"));
		return TS_E_NOTFOUND;
	}
	switch (mx->status) {
	case TS_DNS_OK:
		break;
	case TS_DNS_NODATA:
		/* RFC 5321 5.1: no MX, so the domain is its own host. */
		hosts_r->hosts = ts_xcalloc(1, sizeof(*hosts_r->hosts));
		hosts_r->hosts[0].name = ts_xstrdup(domain);
		hosts_r->count = 1;
		hosts_r->implicit = true;
		return 0;
	case TS_DNS_NXDOMAIN:
		tr_fail(fail_r, 550, "5.1.2",
			ts_xasprintf("domain %s does not exist", domain));
		return TS_E_NOTFOUND;
	case TS_DNS_PERMFAIL:
		tr_fail(fail_r, 550, "5.4.4",
			ts_xasprintf("MX lookup for %s failed permanently "
				     "(rcode %d)",
				     domain, mx->rcode));
		return TS_E_NOTFOUND;
	case TS_DNS_TEMPFAIL:
	default:
		tr_fail(fail_r, 451, "4.4.3",
			ts_xasprintf("temporary DNS failure looking up the "
				     "MX records of %s (rcode %d)",
				     domain, mx->rcode));
		return TS_E_NOTFOUND;
	}

	struct tr_host *h = ts_xcalloc(mx->count ? mx->count : 1, sizeof(*h));
	size_t n = 0;
	bool null_mx = false, ip_mx = false;
	for (size_t i = 0; i < mx->count; i++) {
		const char *ex = mx->records[i].u.mx.exchange;
		if (ex == NULL || ex[0] == '\0' || strcmp(ex, ".") == 0) {
			null_mx = true; /* RFC 7505: the root, "." */
			continue;
		}
		if (tr_is_ip(ex)) {
			ip_mx = true;
			continue;
		}
		h[n].name = ts_xstrdup(ex);
		h[n].preference = mx->records[i].u.mx.preference;
		/* insertion sort by preference, stable */
		size_t j = n++;
		while (j > 0 && h[j - 1].preference > h[j].preference) {
			struct tr_host t = h[j - 1];
			h[j - 1] = h[j];
			h[j] = t;
			j--;
		}
	}
	if (n == 0) {
		free(h);
		if (null_mx)
			tr_fail(fail_r, 556, "5.1.10",
				ts_xasprintf("domain %s does not accept mail "
					     "(null MX, RFC 7505)",
					     domain));
		else if (ip_mx)
			tr_fail(fail_r, 550, "5.4.4",
				ts_xasprintf("the MX records of %s name IP "
					     "addresses, not hosts (RFC 5321 "
					     "5.1)",
					     domain));
		else
			tr_fail(fail_r, 451, "4.4.3",
				ts_xasprintf("empty MX answer for %s", domain));
		return TS_E_NOTFOUND;
	}
	/* Shuffle each run of equal preferences (Fisher-Yates). */
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n && h[end].preference == h[start].preference)
			end++;
		for (size_t k = end - start; k > 1; k--) {
			size_t r = rnd(rnd_arg) % k;
			struct tr_host t = h[start + k - 1];
			h[start + k - 1] = h[start + r];
			h[start + r] = t;
		}
		start = end;
	}
	hosts_r->hosts = h;
	hosts_r->count = n;
	return 0;
}

void
tr_hosts_free(struct tr_hosts *hosts)
{
	for (size_t i = 0; i < hosts->count; i++)
		free(hosts->hosts[i].name);
	free(hosts->hosts);
	memset(hosts, 0, sizeof(*hosts));
}

int
tr_family_parse(const char *text, enum tr_family *family_r)
{
	static const char *const names[] = { "ipv6-first", "ipv4-first",
					     "ipv6-only", "ipv4-only" };
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(text, names[i]) == 0) {
			*family_r = (enum tr_family)i;
			return 0;
		}
	}
	return TS_E_INVAL;
}

bool
tr_family_wants(enum tr_family family, enum ts_dns_type type)
{
	if (type == TS_DNS_A)
		return family != TR_FAMILY_IPV6_ONLY;
	if (type == TS_DNS_AAAA)
		return family != TR_FAMILY_IPV4_ONLY;
	return false;
}

/* Append an answer's usable addresses. */
static void
tr_addrs_add(const struct ts_dns_answer *ans, enum ts_dns_type type,
	     char ***addrs, size_t *count)
{
	if (ans == NULL || ans->status != TS_DNS_OK ||
	    ans->security == TS_DNS_BOGUS)
		return;
	for (size_t i = 0; i < ans->count; i++) {
		const char *ip = ans->records[i].u.addr;
		unsigned char buf[16];
		if (inet_pton(type == TS_DNS_A ? AF_INET : AF_INET6, ip, buf) !=
		    1)
			continue;
		*addrs = ts_xrealloc(*addrs, (*count + 1) * sizeof(**addrs));
		(*addrs)[(*count)++] = ts_xstrdup(ip);
	}
}

static bool
tr_answer_temp(const struct ts_dns_answer *ans)
{
	return ans != NULL && (ans->status == TS_DNS_TEMPFAIL ||
			       ans->security == TS_DNS_BOGUS);
}

enum tr_addr_status
tr_addrs_from_answers(const struct ts_dns_answer *aaaa,
		      const struct ts_dns_answer *a, enum tr_family family,
		      char ***addrs_r, size_t *count_r, const char **why_r)
{
	char **addrs = NULL;
	size_t count = 0;
	if (!tr_family_wants(family, TS_DNS_AAAA))
		aaaa = NULL;
	if (!tr_family_wants(family, TS_DNS_A))
		a = NULL;
	if (family == TR_FAMILY_IPV4_FIRST) {
		tr_addrs_add(a, TS_DNS_A, &addrs, &count);
		tr_addrs_add(aaaa, TS_DNS_AAAA, &addrs, &count);
	} else {
		tr_addrs_add(aaaa, TS_DNS_AAAA, &addrs, &count);
		tr_addrs_add(a, TS_DNS_A, &addrs, &count);
	}
	*addrs_r = addrs;
	*count_r = count;
	*why_r = NULL;
	if (count > 0)
		return TR_ADDR_OK;
	if (tr_answer_temp(aaaa) || tr_answer_temp(a)) {
		*why_r = "temporary DNS failure looking up its address";
		return TR_ADDR_TEMP;
	}
	*why_r = "no address records";
	return TR_ADDR_NONE;
}

void
tr_addrs_free(char ***addrs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free((*addrs)[i]);
	free(*addrs);
	*addrs = NULL;
}
