/*
 * modules/spf/tests/spf-zone-check.c — run check_host() on zone data.
 *
 * A test-only program for the conformance runner (test_spf_suite.py): it
 * reads a scenario on stdin, answers the evaluator's lookups from it
 * through the injected resolver (asynchronously: answers are queued and
 * delivered from a loop, never inside lookup), and prints one line per
 * query.  Input lines: fields separated by one space; every field but the
 * first word and TYPE is "x" followed by the bytes in hex:
 *
 *   zone NAME TYPE DATA   TYPE: A AAAA PTR CNAME (DATA a name/address),
 *                         MX (DATA "PREF,EXCHANGE"), TXT, TIMEOUT (DATA "")
 *   query ID IP HELO SENDER     SENDER "-" for the null sender
 *
 * Output: "ID RESULT EXPLANATION-HEX-or--".  Names are matched without
 * regard to case; an unknown name is NXDOMAIN, a known one without
 * records of the type is NODATA, TIMEOUT makes it a temporary error, and
 * a name no query could carry is a permanent failure (as in the kernel).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "modules/spf/spf.h"

struct zrec {
	char *name;
	int type; /* enum ts_dns_type, or -1 for TIMEOUT */
	char *data;
	size_t len;
};

static struct zrec *zone;
static size_t zone_count;

struct pending {
	char *name;
	enum ts_dns_type type;
	ts_dns_fn fn;
	void *arg;
	bool cancelled;
	struct pending *next;
};

static struct pending *queue_head, **queue_tail = &queue_head;

static int
zone_type_parse(const char *name, enum ts_dns_type *t)
{
	static const struct {
		const char *name;
		enum ts_dns_type type;
	} types[] = {
		{ "A", TS_DNS_A },     { "AAAA", TS_DNS_AAAA },
		{ "MX", TS_DNS_MX },   { "PTR", TS_DNS_PTR },
		{ "TXT", TS_DNS_TXT }, { "CNAME", TS_DNS_CNAME },
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(types[i].name, name) == 0) {
			*t = types[i].type;
			return 0;
		}
	}
	return -1;
}

static char *
unhex(const char *h, size_t *len_r)
{
	size_t n = strlen(h) / 2;
	char *out = ts_xmalloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (char)v;
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

static bool
same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* As the kernel's check: labels of 1..63 octets, 253 in all. */
static bool
name_valid(const char *name)
{
	size_t n = strlen(name), label = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && name[i] != '.')
			label++;
		else if (label == 0 || label > 63)
			return false;
		else
			label = 0;
	}
	return true;
}

/* Answer name/type from the zone, following CNAMEs (at most 8). */
static void
answer(const char *name, enum ts_dns_type type, ts_dns_fn fn, void *arg)
{
	struct ts_dns_record recs[64];
	struct ts_dns_answer a = { .name = name,
				   .type = type,
				   .security = TS_DNS_INSECURE,
				   .canonical = name,
				   .records = recs };
	bool known = false, timeout = false;
	const char *cur = name;

	for (int hops = 0; hops < 8; hops++) {
		const char *cname = NULL;

		for (size_t i = 0; i < zone_count; i++) {
			struct zrec *z = &zone[i];

			if (!same_name(z->name, cur))
				continue;
			known = true;
			if (z->type == -1)
				timeout = true;
			else if (z->type == TS_DNS_CNAME &&
				 type != TS_DNS_CNAME)
				cname = z->data;
			if (z->type != (int)type || a.count >= 64)
				continue;
			switch (type) {
			case TS_DNS_A:
			case TS_DNS_AAAA:
				snprintf(recs[a.count].u.addr,
					 sizeof(recs[0].u.addr), "%s", z->data);
				break;
			case TS_DNS_TXT:
				recs[a.count].u.txt.text = z->data;
				recs[a.count].u.txt.len = z->len;
				break;
			case TS_DNS_MX:
				recs[a.count].u.mx.preference =
					(uint16_t)atoi(z->data);
				recs[a.count].u.mx.exchange =
					strchr(z->data, ',') + 1;
				break;
			default:
				recs[a.count].u.name = z->data;
				break;
			}
			a.count++;
		}
		if (a.count > 0 || cname == NULL)
			break;
		cur = cname;
	}
	if (!name_valid(name))
		a.status = TS_DNS_PERMFAIL; /* as the kernel: never sent */
	else if (a.count > 0)
		a.status = TS_DNS_OK;
	else if (timeout || (!known && strncasecmp(name, "error.", 6) == 0))
		a.status = TS_DNS_TEMPFAIL;
	else
		a.status = known ? TS_DNS_NODATA : TS_DNS_NXDOMAIN;
	fn(&a, arg);
}

static void *
zone_lookup(void *ctx, const char *name, enum ts_dns_type type, ts_dns_fn fn,
	    void *arg)
{
	struct pending *p = ts_xcalloc(1, sizeof(*p));

	(void)ctx;
	p->name = ts_xstrdup(name);
	p->type = type;
	p->fn = fn;
	p->arg = arg;
	*queue_tail = p;
	queue_tail = &p->next;
	return p;
}

static void
zone_cancel(void *ctx, void *query)
{
	(void)ctx;
	((struct pending *)query)->cancelled = true;
}

static void
run_queue(void)
{
	while (queue_head != NULL) {
		struct pending *p = queue_head;

		queue_head = p->next;
		if (queue_head == NULL)
			queue_tail = &queue_head;
		if (!p->cancelled)
			answer(p->name, p->type, p->fn, p->arg);
		free(p->name);
		free(p);
	}
}

struct result {
	bool done;
	enum spf_result r;
	char *exp;
};

static void
on_done(const struct spf_outcome *o, void *arg)
{
	struct result *res = arg;

	res->done = true;
	res->r = o->result;
	res->exp = o->explanation != NULL ? ts_xstrdup(o->explanation) : NULL;
}

static void
run_query(char *id, char *ip, char *helo, char *sender)
{
	static const struct spf_resolver resolver = {
		.lookup = zone_lookup,
		.cancel = zone_cancel,
	};
	struct spf_request req = {
		.ip = ip,
		.helo = helo,
		.receiver = "receiver.test",
		.sender = strcmp(sender, "-") == 0 ? "" : sender,
		.max_dns_mechanisms = 10,
		.max_void_lookups = 2,
		.now = 1000000000,
	};
	struct result res = { 0 };
	struct spf_eval *ev = spf_eval_new(&resolver, &req, on_done, &res);

	spf_eval_run(ev);
	run_queue();
	printf("%s %s ", id, res.done ? spf_result_name(res.r) : "unfinished");
	if (res.exp == NULL)
		printf("-");
	for (char *p = res.exp; p != NULL && *p != '\0'; p++)
		printf("%02x", (unsigned char)*p);
	printf("\n");
	free(res.exp);
	spf_eval_free(&ev);
}

int
main(void)
{
	char line[65536];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *f[5] = { 0 }, *save = NULL;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		for (char *t = strtok_r(line, " ", &save); t != NULL && n < 5;
		     t = strtok_r(NULL, " ", &save))
			f[n++] = t;
		if (n == 4 && strcmp(f[0], "zone") == 0) {
			struct zrec z;
			enum ts_dns_type t;

			z.name = unhex(f[1] + 1, &z.len);
			z.data = unhex(f[3] + 1, &z.len);
			if (strcmp(f[2], "TIMEOUT") == 0) {
				z.type = -1;
			} else if (zone_type_parse(f[2], &t) == 0) {
				z.type = (int)t;
			} else {
				fprintf(stderr, "bad type %s\n", f[2]);
				return 2;
			}
			zone = ts_xrealloc(zone,
					   (zone_count + 1) * sizeof(*zone));
			zone[zone_count++] = z;
		} else if (n == 5 && strcmp(f[0], "query") == 0) {
			size_t l;
			char *ip = unhex(f[2] + 1, &l),
			     *helo = unhex(f[3] + 1, &l),
			     *sender = unhex(f[4] + 1, &l);

			run_query(f[1], ip, helo, sender);
			free(ip);
			free(helo);
			free(sender);
		} else if (n > 0) {
			fprintf(stderr, "bad line: %s\n", f[0]);
			return 2;
		}
	}
	for (size_t i = 0; i < zone_count; i++) {
		free(zone[i].name);
		free(zone[i].data);
	}
	free(zone);
	return 0;
}
