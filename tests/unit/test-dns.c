/*
 * tests/unit/test-dns.c — the resolver's pure parts (kernel/dns-wire.c):
 * type, status and security names; reverse names; name validation; name
 * decoding with compression; and response messages turned into answers
 * (CNAME chains, each record type, negative answers, malformed input);
 * the [dns] semantic checks; and the lookup life cycle on a real loop
 * without any network: libunbound answers "localhost", its PTR and names
 * under "invalid." from its built-in local zones, and a bound UDP socket
 * that never answers stands for a dead server.  Lookups against a real
 * DNS server are tested end to end by tests/integration/test_dns.py.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/dns-private.h"
#include "kernel/dns.h"

/* --- a tiny message builder ---------------------------------------------- */

struct msg {
	uint8_t b[2048];
	size_t n;
};

static void
put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void
put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void
putbytes(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* "www.example.org" as uncompressed labels; returns its offset. */
static size_t
putname(struct msg *m, const char *name)
{
	size_t at = m->n;
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);
		put8(m, (unsigned)l);
		putbytes(m, name, l);
		name += l;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
	return at;
}

static void
putptr(struct msg *m, size_t offset)
{
	put16(m, 0xc000 | (unsigned)offset);
}

/* Header plus one question; returns the question name's offset. */
static size_t
header(struct msg *m, unsigned rcode, unsigned an, unsigned ns,
       const char *qname, unsigned qtype)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, 0x8180 | rcode);
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, 0);
	size_t q = putname(m, qname);
	put16(m, qtype);
	put16(m, 1);
	return q;
}

/* RR header with a compressed owner; rdlength filled by rr_end. */
static size_t
rr_begin(struct msg *m, size_t owner, unsigned type, uint32_t ttl)
{
	putptr(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, 0);
	return m->n;
}

static void
rr_end(struct msg *m, size_t rdata)
{
	size_t len = m->n - rdata;
	m->b[rdata - 2] = (uint8_t)(len >> 8);
	m->b[rdata - 1] = (uint8_t)(len & 0xff);
}

/* --- names ---------------------------------------------------------------- */

static void
test_type_names(void **state)
{
	enum ts_dns_type t;
	assert_string_equal(ts_dns_type_name(TS_DNS_MX), "MX");
	assert_string_equal(ts_dns_type_name(TS_DNS_TLSA), "TLSA");
	assert_null(ts_dns_type_name((enum ts_dns_type)99));
	assert_int_equal(ts_dns_type_parse("aaaa", &t), 0);
	assert_int_equal(t, TS_DNS_AAAA);
	assert_int_equal(ts_dns_type_parse("Cname", &t), 0);
	assert_int_equal(t, TS_DNS_CNAME);
	assert_int_equal(ts_dns_type_parse("SPF", &t), TS_E_NOTFOUND);
	assert_string_equal(ts_dns_status_name(TS_DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(ts_dns_status_name(TS_DNS_NODATA), "nodata");
	assert_string_equal(ts_dns_status_name(TS_DNS_TEMPFAIL), "tempfail");
	assert_string_equal(ts_dns_security_name(TS_DNS_SECURE), "secure");
	assert_string_equal(ts_dns_security_name(TS_DNS_BOGUS), "bogus");
	assert_string_equal(ts_dns_security_name(TS_DNS_INSECURE), "insecure");
}

static void
test_rcode_status(void **state)
{
	assert_int_equal(ts__dns_rcode_status(0), TS_DNS_NODATA);
	assert_int_equal(ts__dns_rcode_status(2), TS_DNS_TEMPFAIL);
	assert_int_equal(ts__dns_rcode_status(3), TS_DNS_NXDOMAIN);
	assert_int_equal(ts__dns_rcode_status(1), TS_DNS_PERMFAIL);
	assert_int_equal(ts__dns_rcode_status(5), TS_DNS_PERMFAIL);
}

static void
test_reverse_names(void **state)
{
	char out[TS__DNS_REVERSE_MAX];
	assert_int_equal(ts__dns_reverse_name("192.0.2.1", out), 0);
	assert_string_equal(out, "1.2.0.192.in-addr.arpa");
	assert_int_equal(ts__dns_reverse_name("2001:db8::1", out), 0);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
				 "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(strlen(out) + 1, TS__DNS_REVERSE_MAX);
	assert_int_equal(ts__dns_reverse_name("192.0.2", out), TS_E_INVAL);
	assert_int_equal(ts__dns_reverse_name("mail.example", out), TS_E_INVAL);
	assert_int_equal(ts__dns_reverse_name("", out), TS_E_INVAL);
}

static void
test_name_valid(void **state)
{
	char label64[70], long_name[300];
	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".test");
	memset(long_name, 0, sizeof(long_name));
	for (size_t i = 0; i < 255; i++)
		long_name[i] = i % 2 == 0 ? 'a' : '.';
	assert_true(ts__dns_name_valid("example.org"));
	assert_true(ts__dns_name_valid("example.org."));
	assert_true(ts__dns_name_valid("org"));
	assert_false(ts__dns_name_valid(""));
	assert_false(ts__dns_name_valid("."));
	assert_false(ts__dns_name_valid("a..b"));
	assert_false(ts__dns_name_valid(".a"));
	assert_false(ts__dns_name_valid(label64));
	label64[1] = '.'; /* now labels of 1 and 62 */
	assert_true(ts__dns_name_valid(label64));
	assert_false(ts__dns_name_valid(long_name)); /* 255 characters */
	long_name[254] = '\0'; /* 253 and a final dot */
	assert_true(ts__dns_name_valid(long_name));
	long_name[253] = 'a';
	assert_false(ts__dns_name_valid(long_name)); /* 254 */
	long_name[253] = '\0';
	assert_true(ts__dns_name_valid(long_name));
}

static void
test_name_decode(void **state)
{
	struct msg m = { .n = 0 };
	char out[TS__DNS_NAME_MAX];
	size_t pos;

	put16(&m, 0);
	size_t org = putname(&m, "example.org");
	/* "mail" + pointer to example.org */
	size_t mail = m.n;
	put8(&m, 4);
	putbytes(&m, "mail", 4);
	putptr(&m, org);
	size_t end = m.n;

	pos = org;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), 0);
	assert_string_equal(out, "example.org");
	assert_int_equal(pos, mail);
	pos = mail;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), 0);
	assert_string_equal(out, "mail.example.org");
	assert_int_equal(pos, end);

	/* The root. */
	put8(&m, 0);
	pos = end;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), 0);
	assert_string_equal(out, ".");
	assert_int_equal(pos, end + 1);

	/* Escapes: a dot, a backslash and a space inside labels. */
	size_t odd = m.n;
	put8(&m, 5);
	putbytes(&m, "a.b\\ ", 5);
	put8(&m, 0);
	pos = odd;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), 0);
	assert_string_equal(out, "a\\.b\\\\\\032");

	/* A pointer to itself, a forward pointer, truncation. */
	size_t self = m.n;
	putptr(&m, self);
	pos = self;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), TS_E_INVAL);
	size_t fwd = m.n;
	putptr(&m, fwd + 2);
	put8(&m, 0);
	pos = fwd;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), TS_E_INVAL);
	pos = mail;
	assert_int_equal(ts__dns_name_decode(m.b, mail + 3, &pos, out),
			 TS_E_INVAL);
	/* Extended label type 0x40. */
	size_t ext = m.n;
	put8(&m, 0x41);
	put8(&m, 0);
	pos = ext;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), TS_E_INVAL);
}

/* A name of more than 255 octets in wire form is refused. */
static void
test_name_decode_too_long(void **state)
{
	struct msg m = { .n = 0 };
	char out[TS__DNS_NAME_MAX];
	for (int i = 0; i < 5; i++) {
		put8(&m, 63);
		for (int j = 0; j < 63; j++)
			put8(&m, 'x');
	}
	put8(&m, 0);
	size_t pos = 0;
	assert_int_equal(ts__dns_name_decode(m.b, m.n, &pos, out), TS_E_INVAL);
}

/* --- answers -------------------------------------------------------------- */

static struct ts__dns_result *
parse(struct msg *m, const char *name, enum ts_dns_type type, int rc_want)
{
	struct ts__dns_result *r = ts__dns_result_new(name, type);
	assert_int_equal(ts__dns_result_parse(r, m->b, m->n), rc_want);
	return r;
}

static void
test_answer_cname_chain_to_a(void **state)
{
	struct msg m;
	size_t q = header(&m, 0, 4, 0, "alias.example.org", TS_DNS_A);
	size_t rd = rr_begin(&m, q, TS_DNS_CNAME, 300);
	size_t mid = putname(&m, "mid.example.org");
	rr_end(&m, rd);
	rd = rr_begin(&m, mid, TS_DNS_CNAME, 120);
	size_t www = m.n;
	put8(&m, 3);
	putbytes(&m, "WWW", 3);
	putptr(&m, q + 6); /* "example.org" inside the question */
	rr_end(&m, rd);
	rd = rr_begin(&m, www, TS_DNS_A, 600);
	putbytes(&m, "\xc0\x00\x02\x01", 4);
	rr_end(&m, rd);
	rd = rr_begin(&m, www, TS_DNS_A, 60);
	putbytes(&m, "\xc0\x00\x02\x02", 4);
	rr_end(&m, rd);

	struct ts__dns_result *r = parse(&m, "alias.example.org.", TS_DNS_A, 0);
	const struct ts_dns_answer *a = &r->answer;
	assert_string_equal(a->name, "alias.example.org");
	assert_int_equal(a->status, TS_DNS_OK);
	assert_int_equal(a->rcode, 0);
	assert_string_equal(a->canonical, "WWW.example.org");
	assert_int_equal(a->count, 2);
	assert_string_equal(a->records[0].u.addr, "192.0.2.1");
	assert_int_equal(a->records[0].ttl, 600);
	assert_string_equal(a->records[1].u.addr, "192.0.2.2");
	assert_int_equal(a->ttl, 60);
	ts__dns_result_free(&r);
	assert_null(r);

	/* Asked for the CNAME itself: no following. */
	header(&m, 0, 1, 0, "alias.example.org", TS_DNS_CNAME);
	rd = rr_begin(&m, 12, TS_DNS_CNAME, 300);
	putname(&m, "mid.example.org");
	rr_end(&m, rd);
	r = parse(&m, "alias.example.org", TS_DNS_CNAME, 0);
	assert_int_equal(r->answer.count, 1);
	assert_string_equal(r->answer.records[0].u.name, "mid.example.org");
	assert_string_equal(r->answer.canonical, "alias.example.org");
	ts__dns_result_free(&r);
}

static void
test_answer_aaaa_mx_txt_tlsa(void **state)
{
	struct msg m;
	size_t q = header(&m, 0, 1, 0, "example.org", TS_DNS_AAAA);
	size_t rd = rr_begin(&m, q, TS_DNS_AAAA, 100);
	putbytes(&m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	rr_end(&m, rd);
	struct ts__dns_result *r = parse(&m, "example.org", TS_DNS_AAAA, 0);
	assert_int_equal(r->answer.count, 1);
	assert_string_equal(r->answer.records[0].u.addr, "2001:db8::1");
	ts__dns_result_free(&r);

	q = header(&m, 0, 2, 0, "example.org", TS_DNS_MX);
	rd = rr_begin(&m, q, TS_DNS_MX, 100);
	put16(&m, 10);
	put8(&m, 2);
	putbytes(&m, "mx", 2);
	putptr(&m, q);
	rr_end(&m, rd);
	rd = rr_begin(&m, q, TS_DNS_MX, 100);
	put16(&m, 0);
	put8(&m, 0); /* null MX (RFC 7505) */
	rr_end(&m, rd);
	r = parse(&m, "example.org", TS_DNS_MX, 0);
	assert_int_equal(r->answer.count, 2);
	assert_int_equal(r->answer.records[0].u.mx.preference, 10);
	assert_string_equal(r->answer.records[0].u.mx.exchange,
			    "mx.example.org");
	assert_int_equal(r->answer.records[1].u.mx.preference, 0);
	assert_string_equal(r->answer.records[1].u.mx.exchange, ".");
	ts__dns_result_free(&r);

	q = header(&m, 0, 1, 0, "example.org", TS_DNS_TXT);
	rd = rr_begin(&m, q, TS_DNS_TXT, 100);
	put8(&m, 6);
	putbytes(&m, "v=spf1", 6);
	put8(&m, 0);
	put8(&m, 5);
	putbytes(&m, " -a\0l", 5);
	rr_end(&m, rd);
	r = parse(&m, "example.org", TS_DNS_TXT, 0);
	assert_int_equal(r->answer.count, 1);
	assert_int_equal(r->answer.records[0].u.txt.len, 11);
	assert_memory_equal(r->answer.records[0].u.txt.text, "v=spf1 -a\0l",
			    12);
	ts__dns_result_free(&r);

	q = header(&m, 0, 1, 0, "_25._tcp.mx.example.org", TS_DNS_TLSA);
	rd = rr_begin(&m, q, TS_DNS_TLSA, 100);
	putbytes(&m, "\x03\x01\x01\xde\xad\xbe\xef", 7);
	rr_end(&m, rd);
	r = parse(&m, "_25._tcp.mx.example.org", TS_DNS_TLSA, 0);
	assert_int_equal(r->answer.count, 1);
	assert_int_equal(r->answer.records[0].u.tlsa.usage, 3);
	assert_int_equal(r->answer.records[0].u.tlsa.selector, 1);
	assert_int_equal(r->answer.records[0].u.tlsa.matching, 1);
	assert_int_equal(r->answer.records[0].u.tlsa.len, 4);
	assert_memory_equal(r->answer.records[0].u.tlsa.data,
			    "\xde\xad\xbe\xef", 4);
	ts__dns_result_free(&r);
}

/* A record of another name or type in the answer section is not taken. */
static void
test_answer_ignores_others(void **state)
{
	struct msg m;
	size_t q = header(&m, 0, 2, 0, "a.example.org", TS_DNS_A);
	size_t rd = rr_begin(&m, q + 2, TS_DNS_A, 100); /* example.org */
	putbytes(&m, "\xc0\x00\x02\x09", 4);
	rr_end(&m, rd);
	rd = rr_begin(&m, q, 46 /* RRSIG */, 100);
	putbytes(&m, "whatever", 8);
	rr_end(&m, rd);
	struct ts__dns_result *r = parse(&m, "a.example.org", TS_DNS_A, 0);
	assert_int_equal(r->answer.status, TS_DNS_NODATA);
	assert_int_equal(r->answer.count, 0);
	ts__dns_result_free(&r);
}

/* Negative answers take their TTL from the SOA (RFC 2308). */
static void
test_answer_negative(void **state)
{
	struct msg m;
	size_t q = header(&m, 3, 0, 1, "nope.example.org", TS_DNS_A);
	size_t rd = rr_begin(&m, q + 5, 6 /* SOA */, 3600);
	putname(&m, "ns.example.org");
	putname(&m, "hostmaster.example.org");
	put32(&m, 1);
	put32(&m, 7200);
	put32(&m, 900);
	put32(&m, 86400);
	put32(&m, 300); /* MINIMUM */
	rr_end(&m, rd);
	struct ts__dns_result *r = parse(&m, "nope.example.org", TS_DNS_A, 0);
	assert_int_equal(r->answer.status, TS_DNS_NXDOMAIN);
	assert_int_equal(r->answer.rcode, 3);
	assert_int_equal(r->answer.ttl, 300);
	assert_int_equal(r->answer.count, 0);
	assert_null(r->answer.records);
	ts__dns_result_free(&r);

	m.b[3] = 0x80; /* NOERROR: the same message is NODATA */
	r = parse(&m, "nope.example.org", TS_DNS_A, 0);
	assert_int_equal(r->answer.status, TS_DNS_NODATA);
	assert_int_equal(r->answer.ttl, 300);
	ts__dns_result_free(&r);

	m.b[3] = 0x82; /* SERVFAIL */
	r = parse(&m, "nope.example.org", TS_DNS_A, 0);
	assert_int_equal(r->answer.status, TS_DNS_TEMPFAIL);
	assert_int_equal(r->answer.rcode, 2);
	ts__dns_result_free(&r);

	m.b[3] = 0x85; /* REFUSED */
	r = parse(&m, "nope.example.org", TS_DNS_A, 0);
	assert_int_equal(r->answer.status, TS_DNS_PERMFAIL);
	assert_int_equal(r->answer.rcode, 5);
	ts__dns_result_free(&r);
}

static void
test_answer_malformed(void **state)
{
	struct msg m;
	size_t q = header(&m, 0, 1, 0, "example.org", TS_DNS_A);
	size_t rd = rr_begin(&m, q, TS_DNS_A, 100);
	putbytes(&m, "\xc0\x00\x02", 3); /* an A of three bytes */
	rr_end(&m, rd);
	struct ts__dns_result *r =
		parse(&m, "example.org", TS_DNS_A, TS_E_INVAL);
	assert_int_equal(r->answer.status, TS_DNS_TEMPFAIL);
	assert_int_equal(r->answer.rcode, 2);
	assert_int_equal(r->answer.count, 0);
	assert_string_equal(r->answer.canonical, "example.org");
	ts__dns_result_free(&r);

	/* Truncated inside the record; then shorter than a header. */
	header(&m, 0, 1, 0, "example.org", TS_DNS_A);
	rd = rr_begin(&m, q, TS_DNS_A, 100);
	putbytes(&m, "\xc0\x00\x02\x01", 4);
	rr_end(&m, rd);
	m.n -= 2;
	r = parse(&m, "example.org", TS_DNS_A, TS_E_INVAL);
	ts__dns_result_free(&r);
	m.n = 11;
	r = parse(&m, "example.org", TS_DNS_A, TS_E_INVAL);
	ts__dns_result_free(&r);
}

/* --- [dns] checks -------------------------------------------------------- */

/* Parse and bind a config whose sections all take the [dns] keys. */
static struct ts_cfg *
dns_cfg(const char *text)
{
	struct ts_cfg *cfg = ts__cfg_parse_string("d.ini", text);
	const struct ts_cfg_key *const tables[] = { ts__dns_keys };
	for (size_t i = 0; i < cfg->sect_count; i++)
		ts__cfg_bind(cfg, cfg->sects[i], tables, 1);
	for (size_t i = 0; i < cfg->error_count; i++)
		print_error("config: %s\n", cfg->errors[i]);
	assert_int_equal(cfg->error_count, 0);
	return cfg;
}

/* Run the check; the errors must be exactly the NULL-ended list. */
static void
check_errors(const char *text, ...)
{
	struct ts_cfg *cfg = dns_cfg(text);
	int rc = ts__dns_check(cfg);
	va_list ap;
	size_t n = 0;
	bool same = true;
	va_start(ap, text);
	for (const char *want; (want = va_arg(ap, const char *)) != NULL; n++)
		if (n >= cfg->error_count || strcmp(cfg->errors[n], want) != 0)
			same = false;
	va_end(ap);
	if (!same || n != cfg->error_count) {
		for (size_t i = 0; i < cfg->error_count; i++)
			print_error("got: %s\n", cfg->errors[i]);
		fail_msg("errors differ (%zu recorded, %zu wanted)",
			 cfg->error_count, n);
	}
	assert_int_equal(rc, n > 0 ? TS_E_INVAL : 0);
	ts__cfg_free(&cfg);
}

static void
test_check_good(void **state)
{
	check_errors("[core]\n", NULL);
	check_errors("[dns]\nresolver = forward\n"
		     "forward = 127.0.0.1@5353, ::1 192.0.2.53\n"
		     "trust_anchor = example. IN DS 1 13 2 AB12\n"
		     "timeout = 250ms\nedns_buffer_size = 1232\n",
		     NULL);
	check_errors("[dns]\nresolver = recursive\n", NULL);
	check_errors("[dns]\nresolv_conf = /dev/null\n", NULL);
}

static void
test_check_errors(void **state)
{
	check_errors("[dns]\nresolver = forward\n",
		     "d.ini:2: resolver = forward needs at least one forward "
		     "address",
		     NULL);
	check_errors("[dns]\nresolver = forward\n"
		     "forward = 127.0.0.1@0 host.example ::1@65536 10.1.2.3@\n",
		     "d.ini:3: '127.0.0.1@0' is not IP or IP@PORT",
		     "d.ini:3: 'host.example' is not IP or IP@PORT",
		     "d.ini:3: '::1@65536' is not IP or IP@PORT",
		     "d.ini:3: '10.1.2.3@' is not IP or IP@PORT", NULL);
	check_errors("[dns]\nresolv_conf = /dev/null\nforward = 127.0.0.1\n",
		     "d.ini:3: forward is only used with resolver = forward "
		     "(resolver is system)",
		     NULL);
	check_errors("[dns]\nresolv_conf = /nonexistent/resolv.conf\n"
		     "trust_anchor_file = /nonexistent/root.key\n"
		     "trust_anchor = example. IN A 192.0.2.1\n"
		     "timeout = 0\n",
		     "d.ini:2: cannot read /nonexistent/resolv.conf: No such "
		     "file or directory",
		     "d.ini:3: cannot read /nonexistent/root.key: No such "
		     "file or directory",
		     "d.ini:4: 'example. IN A 192.0.2.1' is not a DS or "
		     "DNSKEY record",
		     "d.ini:5: timeout must be longer than 0", NULL);
	/* resolv_conf is read only by resolver = system. */
	check_errors("[dns]\nresolver = recursive\n"
		     "resolv_conf = /nonexistent/resolv.conf\n",
		     NULL);
}

/* --- lookups on a loop ---------------------------------------------------- */

struct loop_test {
	uv_loop_t loop;
	struct ts_kernel k;
	int silent_fd; /* a UDP socket that never answers */
	char silent[32]; /* its "127.0.0.1@PORT" */
	/* What the callback saw. */
	int calls;
	enum ts_dns_status status;
	enum ts_dns_security security;
	int rcode;
	char name[TS__DNS_NAME_MAX];
	char first[TS__DNS_NAME_MAX]; /* first record as text */
	size_t count;
	uint64_t at_ms;
	struct ts_dns_query *query; /* cancelled from inside the callback */
};

static int
loop_setup(void **state)
{
	struct loop_test *t = ts_xcalloc(1, sizeof(*t));
	uv_loop_init(&t->loop);
	ts__kernel_init(&t->k, &t->loop);
	t->silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	assert_int_equal(bind(t->silent_fd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(
		getsockname(t->silent_fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(t->silent, sizeof(t->silent), "127.0.0.1@%u",
		 ntohs(sin.sin_port));
	*state = t;
	return 0;
}

static int
loop_teardown(void **state)
{
	struct loop_test *t = *state;
	ts__dns_free(&t->k);
	assert_null(t->k.dns);
	ts__kernel_fini(&t->k);
	uv_run(&t->loop, UV_RUN_DEFAULT); /* close callbacks free memory */
	assert_int_equal(uv_loop_close(&t->loop), 0);
	close(t->silent_fd);
	free(t);
	return 0;
}

/* Give the kernel a [dns] config: forward to the silent socket. */
static void
loop_config(struct loop_test *t, const char *extra)
{
	char *text = ts_xasprintf("[dns]\nresolver = forward\n"
				  "forward = %s\n%s",
				  t->silent, extra);
	ts__cfg_free(&t->k.cfg);
	t->k.cfg = dns_cfg(text);
	free(text);
}

static void
loop_answer(const struct ts_dns_answer *a, void *arg)
{
	struct loop_test *t = arg;
	t->calls++;
	t->status = a->status;
	t->security = a->security;
	t->rcode = a->rcode;
	t->count = a->count;
	t->at_ms = uv_now(&t->loop);
	snprintf(t->name, sizeof(t->name), "%s", a->name);
	t->first[0] = '\0';
	if (a->count > 0 && (a->type == TS_DNS_A || a->type == TS_DNS_AAAA))
		snprintf(t->first, sizeof(t->first), "%s",
			 a->records[0].u.addr);
	else if (a->count > 0 && a->type == TS_DNS_PTR)
		snprintf(t->first, sizeof(t->first), "%s",
			 a->records[0].u.name);
	/* Cancelling the query being answered is a no-op. */
	ts_dns_cancel(&t->query);
}

/* Answers from libunbound's local zones come later, on the loop. */
static void
test_lookup_local_zones(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "");
	t->query = ts_dns_lookup(&t->k.kctx, "localhost.", TS_DNS_A,
				 loop_answer, t);
	assert_non_null(t->query);
	assert_int_equal(t->calls, 0); /* never from inside the lookup */
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 1);
	assert_null(t->query);
	assert_int_equal(t->status, TS_DNS_OK);
	assert_int_equal(t->security, TS_DNS_INSECURE);
	assert_string_equal(t->name, "localhost");
	assert_string_equal(t->first, "127.0.0.1");

	assert_non_null(ts_dns_lookup(&t->k.kctx, "nothing.invalid", TS_DNS_MX,
				      loop_answer, t));
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 2);
	assert_int_equal(t->status, TS_DNS_NXDOMAIN);
	assert_int_equal(t->rcode, 3);

	assert_non_null(
		ts_dns_lookup_ptr(&t->k.kctx, "127.0.0.1", loop_answer, t));
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 3);
	assert_int_equal(t->status, TS_DNS_OK);
	assert_string_equal(t->name, "1.0.0.127.in-addr.arpa");
	assert_string_equal(t->first, "localhost");
	assert_null(ts_dns_lookup_ptr(&t->k.kctx, "127.1", loop_answer, t));
	assert_int_equal(t->calls, 3);
}

static void
test_lookup_bad_name_is_permfail(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "");
	assert_non_null(ts_dns_lookup(&t->k.kctx, "a..example", TS_DNS_A,
				      loop_answer, t));
	assert_int_equal(t->calls, 0);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 1);
	assert_int_equal(t->status, TS_DNS_PERMFAIL);
	assert_int_equal(t->rcode, 1);
	assert_null(ts_dns_lookup(&t->k.kctx, "x.example", (enum ts_dns_type)99,
				  loop_answer, t));
}

static void
test_lookup_timeout(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "timeout = 150ms\n");
	uv_update_time(&t->loop);
	uint64_t start = uv_now(&t->loop);
	assert_non_null(ts_dns_lookup(&t->k.kctx, "www.example.org", TS_DNS_A,
				      loop_answer, t));
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 1);
	assert_int_equal(t->status, TS_DNS_TEMPFAIL);
	assert_int_equal(t->rcode, 2);
	assert_true(t->at_ms - start >= 150);
	assert_true(t->at_ms - start < 2000);
}

/* Cancelled: no callback, and the loop is not kept alive. */
static void
test_lookup_cancel(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "");
	struct ts_dns_query *q = ts_dns_lookup(&t->k.kctx, "www.example.org",
					       TS_DNS_A, loop_answer, t);
	assert_non_null(q);
	ts_dns_cancel(&q);
	assert_null(q);
	ts_dns_cancel(&q); /* NULL is fine */
	uv_update_time(&t->loop);
	uint64_t start = uv_now(&t->loop);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 0);
	assert_true(uv_now(&t->loop) - start < 1000);

	/* An answer already waiting for delivery is dropped too. */
	q = ts_dns_lookup(&t->k.kctx, "localhost", TS_DNS_A, loop_answer, t);
	ts_dns_cancel(&q);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 0);
}

/*
 * A new configuration applies to new lookups; one in flight finishes on
 * the old context (here: times out after the old timeout).
 */
static void
test_reconfigure_keeps_running_lookups(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "timeout = 200ms\n");
	uv_update_time(&t->loop);
	uint64_t start = uv_now(&t->loop);
	assert_non_null(ts_dns_lookup(&t->k.kctx, "slow.example.org", TS_DNS_A,
				      loop_answer, t));
	loop_config(t, "timeout = 5s\n");
	assert_int_equal(ts__dns_configure(&t->k, t->k.cfg, NULL), 0);
	assert_non_null(ts_dns_lookup(&t->k.kctx, "localhost", TS_DNS_AAAA,
				      loop_answer, t));
	/* Turns that do not wait: only the local answer is ready. */
	uv_run(&t->loop, UV_RUN_NOWAIT);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	assert_int_equal(t->calls, 1);
	assert_string_equal(t->first, "::1");
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 2);
	assert_int_equal(t->status, TS_DNS_TEMPFAIL);
	assert_string_equal(t->name, "slow.example.org");
	assert_true(t->at_ms - start >= 200);
	assert_true(t->at_ms - start < 2000);
}

/* Freeing the resolver with lookups in flight: no callback, no leak. */
static void
test_free_with_lookups_in_flight(void **state)
{
	struct loop_test *t = *state;
	loop_config(t, "");
	for (int i = 0; i < 20; i++)
		assert_non_null(ts_dns_lookup(&t->k.kctx, "www.example.org",
					      TS_DNS_TXT, loop_answer, t));
	uv_run(&t->loop, UV_RUN_NOWAIT); /* the queries go out */
	ts__dns_free(&t->k);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_rcode_status),
		cmocka_unit_test(test_reverse_names),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_name_decode),
		cmocka_unit_test(test_name_decode_too_long),
		cmocka_unit_test(test_answer_cname_chain_to_a),
		cmocka_unit_test(test_answer_aaaa_mx_txt_tlsa),
		cmocka_unit_test(test_answer_ignores_others),
		cmocka_unit_test(test_answer_negative),
		cmocka_unit_test(test_answer_malformed),
		cmocka_unit_test(test_check_good),
		cmocka_unit_test(test_check_errors),
		cmocka_unit_test_setup_teardown(test_lookup_local_zones,
						loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(
			test_lookup_bad_name_is_permfail, loop_setup,
			loop_teardown),
		cmocka_unit_test_setup_teardown(test_lookup_timeout, loop_setup,
						loop_teardown),
		cmocka_unit_test_setup_teardown(test_lookup_cancel, loop_setup,
						loop_teardown),
		cmocka_unit_test_setup_teardown(
			test_reconfigure_keeps_running_lookups, loop_setup,
			loop_teardown),
		cmocka_unit_test_setup_teardown(
			test_free_with_lookups_in_flight, loop_setup,
			loop_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
