/*
 * kernel/dns-wire.c — DNS names and answers in wire format.
 *
 * Pure functions with no loop and no libunbound: the names of types,
 * statuses and security states; reverse-lookup names; decoding names
 * (with compression) and turning a response message into the typed
 * struct ts_dns_answer the plugin API promises.  kernel/dns.c drives the
 * lookups; tests/unit/test-dns.c tests this file directly.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/dns-private.h"
#include "kernel/kernel.h"

/* --- names of things ----------------------------------------------------- */

static const struct {
	enum ts_dns_type type;
	const char *name;
} ts_dns_types[] = {
	{ TS_DNS_A, "A" },	   { TS_DNS_NS, "NS" },
	{ TS_DNS_CNAME, "CNAME" }, { TS_DNS_PTR, "PTR" },
	{ TS_DNS_MX, "MX" },	   { TS_DNS_TXT, "TXT" },
	{ TS_DNS_AAAA, "AAAA" },   { TS_DNS_TLSA, "TLSA" },
};

#define TS_DNS_TYPE_COUNT (sizeof(ts_dns_types) / sizeof(ts_dns_types[0]))

const char *
ts_dns_type_name(enum ts_dns_type type)
{
	for (size_t i = 0; i < TS_DNS_TYPE_COUNT; i++)
		if (ts_dns_types[i].type == type)
			return ts_dns_types[i].name;
	return NULL;
}

int
ts_dns_type_parse(const char *name, enum ts_dns_type *type_r)
{
	for (size_t i = 0; i < TS_DNS_TYPE_COUNT; i++)
		if (strcasecmp(ts_dns_types[i].name, name) == 0) {
			*type_r = ts_dns_types[i].type;
			return 0;
		}
	return TS_E_NOTFOUND;
}

const char *
ts_dns_status_name(enum ts_dns_status status)
{
	switch (status) {
	case TS_DNS_OK:
		return "ok";
	case TS_DNS_NXDOMAIN:
		return "nxdomain";
	case TS_DNS_NODATA:
		return "nodata";
	case TS_DNS_TEMPFAIL:
		return "tempfail";
	case TS_DNS_PERMFAIL:
		return "permfail";
	}
	return "unknown";
}

const char *
ts_dns_security_name(enum ts_dns_security sec)
{
	switch (sec) {
	case TS_DNS_INSECURE:
		return "insecure";
	case TS_DNS_SECURE:
		return "secure";
	case TS_DNS_BOGUS:
		return "bogus";
	}
	return "unknown";
}

enum ts_dns_status
ts__dns_rcode_status(int rcode)
{
	switch (rcode) {
	case 0:
		return TS_DNS_NODATA;
	case 2: /* SERVFAIL: the resolver's own failures end up here too */
		return TS_DNS_TEMPFAIL;
	case 3:
		return TS_DNS_NXDOMAIN;
	default:
		/* FORMERR, NOTIMP, REFUSED, YXDOMAIN…: asking again won't do.
		 */
		return TS_DNS_PERMFAIL;
	}
}

/* --- names ---------------------------------------------------------------- */

bool
ts__dns_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.') {
			if (++label > 63)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
	}
	return label > 0;
}

int
ts__dns_reverse_name(const char *ip, char *out)
{
	unsigned char addr[16];
	if (uv_inet_pton(AF_INET, ip, addr) == 0) {
		snprintf(out, TS__DNS_REVERSE_MAX, "%u.%u.%u.%u.in-addr.arpa",
			 addr[3], addr[2], addr[1], addr[0]);
		return 0;
	}
	if (uv_inet_pton(AF_INET6, ip, addr) != 0)
		return TS_E_INVAL;
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	for (int i = 15; i >= 0; i--) {
		*p++ = hex[addr[i] & 0x0f];
		*p++ = '.';
		*p++ = hex[addr[i] >> 4];
		*p++ = '.';
	}
	strcpy(p, "ip6.arpa");
	return 0;
}

/* Append one label byte in presentation form; o has room (checked). */
static size_t
ts_dns_label_byte(char *out, size_t o, uint8_t c)
{
	if (c == '.' || c == '\\') {
		out[o++] = '\\';
		out[o++] = (char)c;
	} else if (c < 0x21 || c > 0x7e) {
		o += (size_t)snprintf(out + o, 5, "\\%03u", c);
	} else {
		out[o++] = (char)c;
	}
	return o;
}

int
ts__dns_name_decode(const uint8_t *msg, size_t len, size_t *pos, char *out)
{
	size_t p = *pos, o = 0, wire = 1;
	bool jumped = false;

	for (;;) {
		if (p >= len)
			return TS_E_INVAL;
		uint8_t l = msg[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len)
				return TS_E_INVAL;
			size_t target = ((size_t)(l & 0x3f) << 8) | msg[p + 1];
			/* Only backwards: a pointer loop cannot happen. */
			if (target >= p)
				return TS_E_INVAL;
			if (!jumped)
				*pos = p + 2;
			jumped = true;
			p = target;
			continue;
		}
		if ((l & 0xc0) != 0)
			return TS_E_INVAL; /* extended label types (RFC 6891) */
		p++;
		if (l == 0)
			break;
		wire += (size_t)l + 1;
		if (wire > 255 || p + l > len)
			return TS_E_INVAL;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++)
			o = ts_dns_label_byte(out, o, msg[p + i]);
		p += l;
	}
	if (!jumped)
		*pos = p;
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

/* Skip a name without decoding it. */
static int
ts_dns_name_skip(const uint8_t *msg, size_t len, size_t *pos)
{
	char scratch[TS__DNS_NAME_MAX];
	return ts__dns_name_decode(msg, len, pos, scratch);
}

/* --- results -------------------------------------------------------------- */

char *
ts__dns_result_keep(struct ts__dns_result *r, const void *data, size_t len)
{
	char *copy = ts_xmalloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	ts__strv_push(&r->owned, &r->owned_count, copy);
	return copy;
}

static const char *
ts_dns_keep_str(struct ts__dns_result *r, const char *s)
{
	return ts__dns_result_keep(r, s, strlen(s));
}

struct ts__dns_result *
ts__dns_result_new(const char *name, enum ts_dns_type type)
{
	struct ts__dns_result *r = ts_xcalloc(1, sizeof(*r));
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	r->answer.name = ts__dns_result_keep(r, name, len);
	r->answer.type = type;
	ts__dns_result_fail(r, TS_DNS_TEMPFAIL, 2);
	return r;
}

void
ts__dns_result_fail(struct ts__dns_result *r, enum ts_dns_status status,
		    int rcode)
{
	r->answer.status = status;
	r->answer.rcode = rcode;
	r->answer.canonical = r->answer.name;
	r->answer.ttl = 0;
	r->answer.count = 0;
	r->answer.records = NULL;
}

void
ts__dns_result_free(struct ts__dns_result **result)
{
	struct ts__dns_result *r = *result;
	if (r == NULL)
		return;
	ts__strv_free(&r->owned);
	free(r->records);
	free(r);
	*result = NULL;
}

/* One resource record of the answer or authority section. */
struct ts_dns_rr {
	char *owner; /* presentation form, heap */
	uint16_t type;
	uint16_t class;
	uint32_t ttl;
	size_t rdata; /* offset in the message */
	size_t rdlength;
	bool answer; /* in the answer section (else authority) */
};

static uint16_t
ts_dns_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
ts_dns_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Read count RRs at *pos into rrs[]; each owner is allocated. */
static int
ts_dns_read_rrs(const uint8_t *msg, size_t len, size_t *pos,
		struct ts_dns_rr *rrs, size_t count, bool answer)
{
	char name[TS__DNS_NAME_MAX];
	for (size_t i = 0; i < count; i++) {
		if (ts__dns_name_decode(msg, len, pos, name) != 0 ||
		    *pos + 10 > len)
			return TS_E_INVAL;
		struct ts_dns_rr *rr = &rrs[i];
		rr->type = ts_dns_u16(msg + *pos);
		rr->class = ts_dns_u16(msg + *pos + 2);
		rr->ttl = ts_dns_u32(msg + *pos + 4);
		rr->rdlength = ts_dns_u16(msg + *pos + 8);
		rr->rdata = *pos + 10;
		rr->answer = answer;
		if (rr->rdata + rr->rdlength > len)
			return TS_E_INVAL;
		*pos = rr->rdata + rr->rdlength;
		rr->owner = ts_xstrdup(name);
	}
	return 0;
}

/* Decode a name that must fill rdata[off..end) exactly when `whole`. */
static int
ts_dns_rdata_name(struct ts__dns_result *r, const uint8_t *msg, size_t len,
		  const struct ts_dns_rr *rr, size_t off, const char **name_r)
{
	char name[TS__DNS_NAME_MAX];
	size_t pos = rr->rdata + off;
	if (ts__dns_name_decode(msg, len, &pos, name) != 0 ||
	    pos != rr->rdata + rr->rdlength)
		return TS_E_INVAL;
	*name_r = ts_dns_keep_str(r, name);
	return 0;
}

/* Decode the rdata of a record of the asked type into rec. */
static int
ts_dns_rdata(struct ts__dns_result *r, const uint8_t *msg, size_t len,
	     const struct ts_dns_rr *rr, struct ts_dns_record *rec)
{
	const uint8_t *d = msg + rr->rdata;
	size_t n = rr->rdlength;

	rec->ttl = rr->ttl;
	switch (rr->type) {
	case TS_DNS_A:
		if (n != 4)
			return TS_E_INVAL;
		uv_inet_ntop(AF_INET, d, rec->u.addr, sizeof(rec->u.addr));
		return 0;
	case TS_DNS_AAAA:
		if (n != 16)
			return TS_E_INVAL;
		uv_inet_ntop(AF_INET6, d, rec->u.addr, sizeof(rec->u.addr));
		return 0;
	case TS_DNS_MX:
		if (n < 3)
			return TS_E_INVAL;
		rec->u.mx.preference = ts_dns_u16(d);
		return ts_dns_rdata_name(r, msg, len, rr, 2,
					 &rec->u.mx.exchange);
	case TS_DNS_NS:
	case TS_DNS_CNAME:
	case TS_DNS_PTR:
		return ts_dns_rdata_name(r, msg, len, rr, 0, &rec->u.name);
	case TS_DNS_TXT: {
		/* One or more <length><bytes> strings, concatenated. */
		char *text = ts_xmalloc(n + 1);
		size_t t = 0;
		for (size_t i = 0; i < n;) {
			size_t l = d[i++];
			if (i + l > n) {
				free(text);
				return TS_E_INVAL;
			}
			memcpy(text + t, d + i, l);
			t += l;
			i += l;
		}
		text[t] = '\0';
		ts__strv_push(&r->owned, &r->owned_count, text);
		rec->u.txt.text = text;
		rec->u.txt.len = t;
		return 0;
	}
	case TS_DNS_TLSA:
		if (n < 3)
			return TS_E_INVAL;
		rec->u.tlsa.usage = d[0];
		rec->u.tlsa.selector = d[1];
		rec->u.tlsa.matching = d[2];
		rec->u.tlsa.data =
			(const uint8_t *)ts__dns_result_keep(r, d + 3, n - 3);
		rec->u.tlsa.len = n - 3;
		return 0;
	}
	return TS_E_INVAL;
}

static uint32_t
ts_dns_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Follow the CNAME chain from the asked name; returns the TTL bound. */
static uint32_t
ts_dns_follow(struct ts__dns_result *r, const uint8_t *msg, size_t len,
	      const struct ts_dns_rr *rrs, size_t count, int *rc_r)
{
	uint32_t ttl = UINT32_MAX;
	*rc_r = 0;
	if (r->answer.type == TS_DNS_CNAME)
		return ttl; /* the CNAME itself is the answer */
	for (int hops = 0; hops < 16; hops++) {
		const struct ts_dns_rr *link = NULL;
		for (size_t i = 0; i < count && link == NULL; i++)
			if (rrs[i].answer && rrs[i].type == TS_DNS_CNAME &&
			    strcasecmp(rrs[i].owner, r->answer.canonical) == 0)
				link = &rrs[i];
		if (link == NULL)
			break;
		const char *target;
		if (ts_dns_rdata_name(r, msg, len, link, 0, &target) != 0) {
			*rc_r = TS_E_INVAL;
			break;
		}
		r->answer.canonical = target;
		ttl = ts_dns_min(ttl, link->ttl);
	}
	return ttl;
}

/* The negative TTL from the authority section's SOA (RFC 2308 5). */
static uint32_t
ts_dns_negative_ttl(const uint8_t *msg, size_t len, const struct ts_dns_rr *rrs,
		    size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct ts_dns_rr *rr = &rrs[i];
		if (rr->answer || rr->type != 6 || rr->rdlength < 22)
			continue;
		size_t pos = rr->rdata;
		/* MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM. */
		if (ts_dns_name_skip(msg, len, &pos) != 0 ||
		    ts_dns_name_skip(msg, len, &pos) != 0 ||
		    pos + 20 != rr->rdata + rr->rdlength)
			continue;
		return ts_dns_min(rr->ttl, ts_dns_u32(msg + pos + 16));
	}
	return 0;
}

static int
ts_dns_parse_sections(struct ts__dns_result *r, const uint8_t *msg, size_t len,
		      struct ts_dns_rr *rrs, size_t ancount, size_t nscount,
		      size_t pos)
{
	int rc = ts_dns_read_rrs(msg, len, &pos, rrs, ancount, true);
	if (rc == 0)
		rc = ts_dns_read_rrs(msg, len, &pos, rrs + ancount, nscount,
				     false);
	if (rc != 0)
		return rc;

	size_t total = ancount + nscount;
	uint32_t ttl = ts_dns_follow(r, msg, len, rrs, ancount, &rc);
	if (rc != 0)
		return rc;

	size_t n = 0;
	for (size_t i = 0; i < ancount; i++)
		if (rrs[i].type == r->answer.type && rrs[i].class == 1 &&
		    strcasecmp(rrs[i].owner, r->answer.canonical) == 0)
			n++;
	r->records = n > 0 ? ts_xcalloc(n, sizeof(*r->records)) : NULL;
	size_t k = 0;
	for (size_t i = 0; i < ancount && rc == 0; i++) {
		if (rrs[i].type != r->answer.type || rrs[i].class != 1 ||
		    strcasecmp(rrs[i].owner, r->answer.canonical) != 0)
			continue;
		rc = ts_dns_rdata(r, msg, len, &rrs[i], &r->records[k]);
		ttl = ts_dns_min(ttl, rrs[i].ttl);
		k++;
	}
	if (rc != 0)
		return rc;
	r->answer.count = n;
	r->answer.records = r->records;
	if (n > 0) {
		r->answer.status = TS_DNS_OK;
	} else {
		r->answer.status = ts__dns_rcode_status(r->answer.rcode);
		ttl = ts_dns_min(ttl,
				 ts_dns_negative_ttl(msg, len, rrs, total));
	}
	r->answer.ttl = ttl == UINT32_MAX ? 0 : ttl;
	return 0;
}

int
ts__dns_result_parse(struct ts__dns_result *r, const uint8_t *msg, size_t len)
{
	if (len < 12) {
		ts__dns_result_fail(r, TS_DNS_TEMPFAIL, 2);
		return TS_E_INVAL;
	}
	size_t qdcount = ts_dns_u16(msg + 4);
	size_t ancount = ts_dns_u16(msg + 6);
	size_t nscount = ts_dns_u16(msg + 8);
	size_t pos = 12;
	int rc = 0;
	for (size_t i = 0; i < qdcount && rc == 0; i++) {
		rc = ts_dns_name_skip(msg, len, &pos);
		if (rc == 0 && (pos += 4) > len)
			rc = TS_E_INVAL;
	}
	/* Each record takes at least 11 bytes: a cheap sanity bound. */
	if (rc == 0 && (ancount + nscount) * 11 > len - pos)
		rc = TS_E_INVAL;
	struct ts_dns_rr *rrs = NULL;
	if (rc == 0) {
		r->answer.rcode = msg[3] & 0x0f;
		r->answer.canonical = r->answer.name;
		rrs = ts_xcalloc(ancount + nscount + 1, sizeof(*rrs));
		rc = ts_dns_parse_sections(r, msg, len, rrs, ancount, nscount,
					   pos);
		for (size_t i = 0; i < ancount + nscount; i++)
			free(rrs[i].owner);
		free(rrs);
	}
	if (rc != 0) {
		free(r->records);
		r->records = NULL;
		ts__dns_result_fail(r, TS_DNS_TEMPFAIL, 2);
	}
	return rc;
}
