/*
 * tests/modules/dnsprobe.c — a test module that exercises the DNS API.
 *
 * It offers a "protocol" service, "dnsprobe", through which an
 * integration test runs lookups over a plain TCP connection and reads
 * each answer back as one line:
 *
 *   Q <TYPE> <NAME>   ->  ANSWER status=… rcode=… security=… ttl=…
 *                         canonical=… count=… records=r1|r2… [why=…]
 *   PTR <IP>          ->  the same, for the address's reverse name
 *   FLOOD <N> <TYPE> <NAME>
 *                     ->  FLOOD n=… ok=… max_lag_ms=… ms=…
 *   QUIT              ->  221 bye
 *
 * Records print as A/AAAA text, MX "10:mx.example.test", TXT text, TLSA
 * "3 1 1 <hex>", names as they are.  FLOOD starts N lookups at once (a
 * '#' in NAME becomes the lookup's index, so the names differ) while a
 * 10 ms timer measures how late the loop runs it: max_lag_ms is the
 * largest lateness seen until one tick after the last answer.  Input is
 * paused while lookups run; closing the connection cancels them.
 *
 * It uses only the public plugin API.  Not installed; built for tests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/tessera.h>

#define DNSPROBE_TICK_MS 10
#define DNSPROBE_FLOOD_MAX 5000

struct dnsprobe_conn;

/* One lookup of a connection; `query` is NULL once answered. */
struct dnsprobe_slot {
	struct dnsprobe_conn *pc;
	struct ts_dns_query *query;
};

/* Per-connection state. */
struct dnsprobe_conn {
	struct ts_conn *conn;
	struct dnsprobe_slot single;
	/* FLOOD */
	struct dnsprobe_slot *slots;
	size_t n, done, ok;
	struct ts_timer *tick;
	uint64_t started_ms, last_tick_ms, max_lag_ms;
};

static void
dnsprobe_conn_free(void *data)
{
	struct dnsprobe_conn *pc = data;
	/* The protocol's close cancelled the lookups and freed the timer. */
	free(pc->slots);
	free(pc);
}

static struct dnsprobe_conn *
dnsprobe_conn_get(struct ts_conn *conn)
{
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	struct dnsprobe_conn *pc = ts_conn_data(conn, ctx);
	if (pc == NULL) {
		pc = ts_xcalloc(1, sizeof(*pc));
		pc->conn = conn;
		pc->single.pc = pc;
		ts_conn_set_data(conn, ctx, pc, dnsprobe_conn_free);
	}
	return pc;
}

/* Append the answer's records, '|'-separated, to the line. */
static void
dnsprobe_records(char **line, const struct ts_dns_answer *a)
{
	char *out = *line;
	for (size_t i = 0; i < a->count; i++) {
		const struct ts_dns_record *r = &a->records[i];
		char *item = NULL;
		switch (a->type) {
		case TS_DNS_A:
		case TS_DNS_AAAA:
			item = ts_xstrdup(r->u.addr);
			break;
		case TS_DNS_MX:
			item = ts_xasprintf("%u:%s", r->u.mx.preference,
					    r->u.mx.exchange);
			break;
		case TS_DNS_NS:
		case TS_DNS_CNAME:
		case TS_DNS_PTR:
			item = ts_xstrdup(r->u.name);
			break;
		case TS_DNS_TXT:
			item = ts_xstrndup(r->u.txt.text, r->u.txt.len);
			for (char *p = item; *p != '\0'; p++)
				if (*p == '|' || *p == '\r' || *p == '\n')
					*p = '?';
			break;
		case TS_DNS_TLSA: {
			item = ts_xasprintf("%u %u %u ", r->u.tlsa.usage,
					    r->u.tlsa.selector,
					    r->u.tlsa.matching);
			for (size_t j = 0; j < r->u.tlsa.len; j++) {
				char *next = ts_xasprintf("%s%02x", item,
							  r->u.tlsa.data[j]);
				free(item);
				item = next;
			}
			break;
		}
		}
		char *next = ts_xasprintf("%s%s%s", out, i > 0 ? "|" : "",
					  item != NULL ? item : "?");
		free(item);
		free(out);
		out = next;
	}
	*line = out;
}

static void
dnsprobe_answered(const struct ts_dns_answer *a, void *arg)
{
	struct dnsprobe_slot *slot = arg;
	struct dnsprobe_conn *pc = slot->pc;
	slot->query = NULL;
	char *records = ts_xstrdup("");
	dnsprobe_records(&records, a);
	ts_conn_printf(pc->conn,
		       "ANSWER status=%s rcode=%d security=%s ttl=%" PRIu32
		       " canonical=%s count=%zu records=%s%s%s\r\n",
		       ts_dns_status_name(a->status), a->rcode,
		       ts_dns_security_name(a->security), a->ttl, a->canonical,
		       a->count, a->count > 0 ? records : "-",
		       a->why_bogus != NULL ? " why=" : "",
		       a->why_bogus != NULL ? a->why_bogus : "");
	free(records);
	ts_conn_resume(pc->conn);
}

/* "Q <TYPE> <NAME>" or, with ptr, "PTR <IP>". */
static void
dnsprobe_query(struct ts_conn *conn, const char *args, bool ptr)
{
	struct dnsprobe_conn *pc = dnsprobe_conn_get(conn);
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	char type_name[16], name[512];
	enum ts_dns_type type = TS_DNS_PTR;

	if (ptr ? sscanf(args, "%511s", name) != 1
		: sscanf(args, "%15s %511s", type_name, name) != 2 ||
			    ts_dns_type_parse(type_name, &type) != 0) {
		ts_conn_printf(conn, "501 syntax: Q <TYPE> <NAME>\r\n");
		return;
	}
	ts_conn_pause(conn);
	pc->single.query = ptr ? ts_dns_lookup_ptr(ctx, name, dnsprobe_answered,
						   &pc->single)
			       : ts_dns_lookup(ctx, name, type,
					       dnsprobe_answered, &pc->single);
	if (pc->single.query == NULL) {
		ts_conn_printf(conn, "550 lookup not started\r\n");
		ts_conn_resume(conn);
	}
}

/* --- FLOOD ---------------------------------------------------------------- */

static void
dnsprobe_flood_tick(struct ts_timer *timer, void *arg)
{
	struct dnsprobe_conn *pc = arg;
	struct ts_ctx *ctx = ts_conn_protocol_ctx(pc->conn);
	uint64_t now = ts_now_ms(ctx);
	uint64_t due = pc->last_tick_ms + DNSPROBE_TICK_MS;
	if (now > due && now - due > pc->max_lag_ms)
		pc->max_lag_ms = now - due;
	pc->last_tick_ms = now;
	/* Report one tick after the last answer, so its cost is counted. */
	if (pc->done < pc->n)
		return;
	ts_timer_free(&pc->tick);
	ts_conn_printf(pc->conn,
		       "FLOOD n=%zu ok=%zu max_lag_ms=%" PRIu64 " ms=%" PRIu64
		       "\r\n",
		       pc->n, pc->ok, pc->max_lag_ms, now - pc->started_ms);
	free(pc->slots);
	pc->slots = NULL;
	pc->n = pc->done = pc->ok = 0;
	ts_conn_resume(pc->conn);
}

static void
dnsprobe_flood_answered(const struct ts_dns_answer *a, void *arg)
{
	struct dnsprobe_slot *slot = arg;
	slot->query = NULL;
	slot->pc->done++;
	if (a->status == TS_DNS_OK)
		slot->pc->ok++;
}

/* "FLOOD <N> <TYPE> <NAME>" */
static void
dnsprobe_flood(struct ts_conn *conn, const char *args)
{
	struct dnsprobe_conn *pc = dnsprobe_conn_get(conn);
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	char type_name[16], pattern[256];
	size_t n;
	enum ts_dns_type type;

	if (sscanf(args, "%zu %15s %255s", &n, type_name, pattern) != 3 ||
	    n == 0 || n > DNSPROBE_FLOOD_MAX ||
	    ts_dns_type_parse(type_name, &type) != 0) {
		ts_conn_printf(conn, "501 syntax: FLOOD <N> <TYPE> <NAME>\r\n");
		return;
	}
	ts_conn_pause(conn);
	pc->slots = ts_xcalloc(n, sizeof(*pc->slots));
	pc->n = n;
	pc->started_ms = pc->last_tick_ms = ts_now_ms(ctx);
	pc->max_lag_ms = 0;
	pc->tick = ts_timer_new(ctx, dnsprobe_flood_tick, pc);
	ts_timer_start(pc->tick, DNSPROBE_TICK_MS, DNSPROBE_TICK_MS);
	char *hash = strchr(pattern, '#');
	for (size_t i = 0; i < n; i++) {
		char *name = hash == NULL ? ts_xstrdup(pattern)
					  : ts_xasprintf("%.*s%zu%s",
							 (int)(hash - pattern),
							 pattern, i, hash + 1);
		pc->slots[i].pc = pc;
		pc->slots[i].query =
			ts_dns_lookup(ctx, name, type, dnsprobe_flood_answered,
				      &pc->slots[i]);
		if (pc->slots[i].query == NULL)
			pc->done++;
		free(name);
	}
}

/* --- the protocol --------------------------------------------------------- */

static void
dnsprobe_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	if (res != NULL && (res->verdict == TS_VERDICT_REJECT ||
			    res->verdict == TS_VERDICT_TEMPFAIL)) {
		ts_conn_printf(conn, "554 refused\r\n");
		ts_conn_close(conn, "rejected");
		return;
	}
	dnsprobe_conn_get(conn);
	ts_conn_printf(conn, "200 dnsprobe ready\r\n");
}

static void
dnsprobe_line(struct ts_conn *conn, const char *line, size_t len)
{
	if (strcmp(line, "QUIT") == 0) {
		ts_conn_printf(conn, "221 bye\r\n");
		ts_conn_close(conn, "quit");
	} else if (strncmp(line, "Q ", 2) == 0) {
		dnsprobe_query(conn, line + 2, false);
	} else if (strncmp(line, "PTR ", 4) == 0) {
		dnsprobe_query(conn, line + 4, true);
	} else if (strncmp(line, "FLOOD ", 6) == 0) {
		dnsprobe_flood(conn, line + 6);
	} else {
		ts_conn_printf(conn, "500 unknown command\r\n");
	}
}

/* Cancel whatever is still running: no callback may follow. */
static void
dnsprobe_close(struct ts_conn *conn)
{
	struct dnsprobe_conn *pc =
		ts_conn_data(conn, ts_conn_protocol_ctx(conn));
	if (pc == NULL)
		return;
	size_t cancelled = pc->single.query != NULL;
	ts_dns_cancel(&pc->single.query);
	for (size_t i = 0; i < pc->n; i++) {
		cancelled += pc->slots[i].query != NULL;
		ts_dns_cancel(&pc->slots[i].query);
	}
	if (cancelled > 0)
		ts_log(ts_conn_protocol_ctx(conn), TS_LOG_INFO,
		       "dnsprobe cancelled lookups=%zu", cancelled);
	if (pc->tick != NULL)
		ts_timer_free(&pc->tick);
}

static const struct ts_protocol dnsprobe_protocol = {
	.open = dnsprobe_open,
	.line = dnsprobe_line,
	.line_too_long = NULL,
	.shutdown = NULL,
	.close = dnsprobe_close,
};

static int
dnsprobe_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	return ts_service_add(ctx, "protocol", "dnsprobe", &dnsprobe_protocol,
			      sizeof(dnsprobe_protocol));
}

TS_MODULE(dnsprobe) = {
	TS_MODULE_HEADER,
	.name = "dnsprobe",
	.version = "1.0",
	.description = "runs DNS lookups for tests over a line protocol",
	.init = dnsprobe_init,
};
