/*
 * modules/transports/routes.c — which route applies to a delivery
 * attempt: a pure function over the `[route NAME]` sections, so the
 * precedence rules are tested as a table (tests/test-routes.c).
 *
 * Routes scoped to the submitting account are looked at first, then
 * those scoped to the sender's domain, then the global ones; within a
 * scope, file order.  The first route whose conditions all hold wins.
 * The queue_route hook that calls this lives in transports.c.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "transports.h"

/* "example.org" equals; "*.example.org" matches any subdomain. */
static bool
tr_domain_matches(const char *pattern, const char *domain)
{
	if (domain == NULL)
		return false;
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t pl = strlen(pattern + 1), dl = strlen(domain);
		return dl > pl &&
		       strcasecmp(domain + dl - pl, pattern + 1) == 0;
	}
	return strcasecmp(pattern, domain) == 0;
}

static bool
tr_domain_in(char *const *list, size_t count, const char *domain)
{
	if (count == 0)
		return true;
	for (size_t i = 0; i < count; i++)
		if (tr_domain_matches(list[i], domain))
			return true;
	return false;
}

static bool
tr_route_matches(const struct tr_route *r, const char *from_domain,
		 const char *to_domain, unsigned attempt)
{
	return attempt >= r->min_attempt &&
	       tr_domain_in(r->from, r->from_count, from_domain) &&
	       tr_domain_in(r->to, r->to_count, to_domain);
}

const struct tr_route *
tr_route_find(const struct tr_route *routes, size_t count, const char *account,
	      const char *from_domain, const char *to_domain, unsigned attempt)
{
	for (int scope = TR_SCOPE_ACCOUNT; scope <= TR_SCOPE_GLOBAL; scope++) {
		const char *owner = scope == TR_SCOPE_ACCOUNT  ? account
				    : scope == TR_SCOPE_DOMAIN ? from_domain
							       : NULL;
		if (scope != TR_SCOPE_GLOBAL &&
		    (owner == NULL || owner[0] == '\0'))
			continue;
		for (size_t i = 0; i < count; i++) {
			const struct tr_route *r = &routes[i];
			if ((int)r->scope != scope)
				continue;
			/* Account names are exact; domains are not. */
			if (scope == TR_SCOPE_ACCOUNT &&
			    strcmp(r->scope_name, owner) != 0)
				continue;
			if (scope == TR_SCOPE_DOMAIN &&
			    strcasecmp(r->scope_name, owner) != 0)
				continue;
			if (tr_route_matches(r, from_domain, to_domain,
					     attempt))
				return r;
		}
	}
	return NULL;
}
