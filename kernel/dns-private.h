/*
 * kernel/dns-private.h — the resolver's internal pieces, shared between
 * kernel/dns.c, kernel/dns-wire.c, kernel/dns-event.c and the unit test
 * tests/unit/test-dns.c.  Nothing here is part of the plugin API.
 */
#ifndef TESSERA_KERNEL_DNS_PRIVATE_H
#define TESSERA_KERNEL_DNS_PRIVATE_H

#include <uv.h>

#include <tessera/tessera.h>

struct ub_event_base;

/*
 * Room for a name in presentation form: 255 wire octets, each at worst
 * "\DDD", plus the NUL.
 */
#define TS__DNS_NAME_MAX 1024
/* Room for a reverse name: 32 nibbles with dots, "ip6.arpa", the NUL. */
#define TS__DNS_REVERSE_MAX 73

/* --- dns-wire.c: names and answers in wire format ----------------------- */

/*
 * A parsed answer and everything its pointers point to.  `answer` is what
 * the callback sees; `owned` lists every allocation it refers to.
 */
struct ts__dns_result {
	struct ts_dns_answer answer;
	struct ts_dns_record *records;
	char **owned;
	size_t owned_count;
};

/*
 * A result for name/type (name copied, a trailing dot dropped) that says
 * TEMPFAIL with rcode 2 until ts__dns_result_parse or _fail fills it.
 */
struct ts__dns_result *ts__dns_result_new(const char *name,
					  enum ts_dns_type type);
void ts__dns_result_free(struct ts__dns_result **result);

/*
 * Fill the result from a DNS response message (RFC 1035 4.1): the header's
 * rcode; the CNAME chain from the asked name followed in the answer
 * section (at most 16 links) to `canonical`; the records of the asked type
 * owned by `canonical`; the status (rcode 0 with records: OK, without:
 * NODATA; 3: NXDOMAIN; 2: TEMPFAIL; others: PERMFAIL); and the TTL, the
 * smallest of the records and CNAMEs used, or for a negative answer the
 * SOA's min(TTL, MINIMUM) from the authority section (RFC 2308 5), 0 when
 * there is none.  Security is left alone.  Returns 0, or TS_E_INVAL for a
 * malformed message, after which the result says TEMPFAIL (rcode 2).
 */
int ts__dns_result_parse(struct ts__dns_result *result, const uint8_t *msg,
			 size_t len);

/* Make the result a failure without records (canonical = name, ttl 0). */
void ts__dns_result_fail(struct ts__dns_result *result,
			 enum ts_dns_status status, int rcode);

/* The status an rcode stands for when there are no records to look at. */
enum ts_dns_status ts__dns_rcode_status(int rcode);

/*
 * Copy bytes (plus a NUL) into the result's ownership; returns the copy.
 */
char *ts__dns_result_keep(struct ts__dns_result *result, const void *data,
			  size_t len);

/*
 * Decode the possibly compressed name at msg[*pos] into `out` (size at
 * least TS__DNS_NAME_MAX) in presentation form without the trailing dot:
 * "mx.example.org"; the root is ".".  Dots and backslashes inside a label
 * are escaped as "\." and "\\", other bytes outside 0x21..0x7e as "\DDD".
 * Compression pointers must point backwards (which rules out loops).
 * Advances *pos past the name as it sits at *pos.  Returns 0 or
 * TS_E_INVAL.
 */
int ts__dns_name_decode(const uint8_t *msg, size_t len, size_t *pos, char *out);

/*
 * Whether a name may be looked up: 1 to 253 characters besides an
 * optional final dot, no empty label, no label over 63 characters.
 */
bool ts__dns_name_valid(const char *name);

/*
 * The reverse-lookup name of a numeric IPv4 or IPv6 address:
 * "1.2.0.192.in-addr.arpa", "1.0.0...8.b.d.0.1.0.0.2.ip6.arpa".  `out`
 * has TS__DNS_REVERSE_MAX bytes.  Returns 0 or TS_E_INVAL.
 */
int ts__dns_reverse_name(const char *ip, char *out);

/* --- dns-event.c: libunbound's event base on the libuv loop ------------- */

/*
 * An event base for ub_ctx_create_ub_event() whose events are libuv poll
 * and timer handles on `loop`.  Those handles are unreferenced: work that
 * libunbound keeps going on its own (a cancelled query's retries) never
 * keeps the loop alive.  Free it after deleting every ub_ctx using it.
 */
struct ub_event_base *ts__dns_evbase_new(uv_loop_t *loop);
void ts__dns_evbase_free(struct ub_event_base **base);

#endif
