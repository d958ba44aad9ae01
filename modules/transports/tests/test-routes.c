/*
 * modules/transports/tests/test-routes.c — route evaluation
 * (routes.c) as a table: scope precedence (account, then the sender's
 * domain, then global), from/to domain matching with wildcards, the
 * minimum attempt, and no match.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../transports.h"

#define R(name, scope, sname, from, to, min, tr)                         \
	{                                                                \
		(char *)(name), scope, (char *)(sname), (char **)(from), \
			(from) != NULL ? 1 : 0, (char **)(to),           \
			(to) != NULL ? 1 : 0, min, (char *)(tr)          \
	}

static const char *const to_remote[] = { "remote.example" };
static const char *const to_any_sub[] = { "*.example.net" };
static const char *const from_corp[] = { "corp.example" };

/* File order on purpose: global first, so scope order, not file order,
 * must make account and domain routes win. */
static const struct tr_route routes[] = {
	R("g-remote", TR_SCOPE_GLOBAL, NULL, NULL, to_remote, 1, "relay"),
	R("g-late", TR_SCOPE_GLOBAL, NULL, NULL, NULL, 4, "fallback"),
	R("g-sub", TR_SCOPE_GLOBAL, NULL, NULL, to_any_sub, 1, "socks"),
	R("d-corp", TR_SCOPE_DOMAIN, "corp.example", NULL, to_remote, 1,
	  "corp-relay"),
	R("d-corp-from", TR_SCOPE_DOMAIN, "corp.example", from_corp, NULL, 2,
	  "corp-late"),
	R("a-alice", TR_SCOPE_ACCOUNT, "alice", NULL, to_remote, 1, NULL),
	R("a-bob-late", TR_SCOPE_ACCOUNT, "bob", NULL, NULL, 3, "bob-relay"),
};

struct row {
	const char *account, *from, *to;
	unsigned attempt;
	const char *route; /* expected route name, NULL: none */
};

static void
test_table(void **state)
{
	(void)state;
	static const struct row rows[] = {
		/* global only */
		{ NULL, "x.example", "remote.example", 1, "g-remote" },
		{ NULL, "x.example", "REMOTE.Example", 1, "g-remote" },
		{ NULL, "x.example", "other.example", 1, NULL },
		{ NULL, "x.example", "other.example", 3, NULL },
		{ NULL, "x.example", "other.example", 4, "g-late" },
		{ NULL, "x.example", "other.example", 9, "g-late" },
		{ NULL, "x.example", "a.example.net", 1, "g-sub" },
		{ NULL, "x.example", "a.b.example.net", 1, "g-sub" },
		{ NULL, "x.example", "example.net", 1, NULL },
		{ NULL, "x.example", "badexample.net", 1, NULL },
		/* domain scope beats global */
		{ NULL, "corp.example", "remote.example", 1, "d-corp" },
		{ NULL, "CORP.example", "remote.example", 1, "d-corp" },
		{ NULL, "corp.example", "other.example", 1, NULL },
		{ NULL, "corp.example", "other.example", 2, "d-corp-from" },
		/* account scope beats both; empty transport is a match */
		{ "alice", "corp.example", "remote.example", 1, "a-alice" },
		{ "alice", "corp.example", "other.example", 2, "d-corp-from" },
		{ "Alice", "x.example", "remote.example", 1, "g-remote" },
		{ "bob", "corp.example", "remote.example", 2, "d-corp" },
		{ "bob", "corp.example", "remote.example", 3, "a-bob-late" },
		{ "carol", "x.example", "remote.example", 1, "g-remote" },
		/* null sender: no from domain */
		{ NULL, "", "remote.example", 1, "g-remote" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		const struct tr_route *r = tr_route_find(
			routes, sizeof(routes) / sizeof(routes[0]), w->account,
			w->from, w->to, w->attempt);
		const char *got = r != NULL ? r->name : NULL;
		if ((got == NULL) != (w->route == NULL) ||
		    (got != NULL && strcmp(got, w->route) != 0))
			fail_msg("row %zu (%s %s→%s #%u): got %s, want %s", i,
				 w->account ? w->account : "-", w->from, w->to,
				 w->attempt, got ? got : "none",
				 w->route ? w->route : "none");
	}
	/* No routes at all. */
	assert_null(
		tr_route_find(NULL, 0, "alice", "a.example", "b.example", 1));
	/* The empty-transport route: matched, and it means direct. */
	const struct tr_route *r =
		tr_route_find(routes, 7, "alice", "x", "remote.example", 1);
	assert_null(r->transport);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
