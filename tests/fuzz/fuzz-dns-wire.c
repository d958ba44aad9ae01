/*
 * tests/fuzz/fuzz-dns-wire.c — fuzz the DNS response parser.
 *
 * The input's first byte picks the type asked for (A, NS, CNAME, PTR, MX,
 * TXT, AAAA, TLSA); the rest is a response message for "example.org" of
 * that type, given to ts__dns_result_parse (kernel/dns-wire.c).  A parsed
 * answer's records are walked.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/dns-private.h"
#include "kernel/kernel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ts_dns_type types[] = {
		TS_DNS_A, TS_DNS_NS, TS_DNS_CNAME, TS_DNS_PTR,
		TS_DNS_MX, TS_DNS_TXT, TS_DNS_AAAA, TS_DNS_TLSA,
	};
	struct ts__dns_result *r;
	uint8_t *msg;

	if (size < 1)
		return 0;
	r = ts__dns_result_new("example.org.", types[data[0] % 8]);
	/* an exact-size copy: reads past the message are caught */
	msg = malloc(size - 1 + 1);
	if (msg == NULL)
		abort();
	memcpy(msg, data + 1, size - 1);
	if (ts__dns_result_parse(r, msg, size - 1) == 0) {
		const struct ts_dns_answer *a = &r->answer;
		size_t total = 0;

		if (a->canonical != NULL)
			total += strlen(a->canonical);
		/* touch every string the records point to */
		for (size_t i = 0; i < a->count; i++) {
			const struct ts_dns_record *rec = &a->records[i];

			switch (a->type) {
			case TS_DNS_A:
			case TS_DNS_AAAA:
				total += strlen(rec->u.addr);
				break;
			case TS_DNS_MX:
				total += strlen(rec->u.mx.exchange);
				break;
			case TS_DNS_TXT:
				for (size_t j = 0; j < rec->u.txt.len; j++)
					total += (uint8_t)rec->u.txt.text[j];
				break;
			case TS_DNS_TLSA:
				for (size_t j = 0; j < rec->u.tlsa.len; j++)
					total += rec->u.tlsa.data[j];
				break;
			default:
				total += strlen(rec->u.name);
				break;
			}
		}
		if (total == SIZE_MAX)
			abort();
	}
	free(msg);
	ts__dns_result_free(&r);
	return 0;
}
