/*
 * modules/transports/transports.h — what the files of the transports
 * module share: its settings (transports.c) and the "direct" transport
 * (direct.c), which uses the pure target selection (mx.c) and the pure
 * SMTP client (client.c).  Nothing here is visible outside the module.
 */
#ifndef TRANSPORTS_TRANSPORTS_H
#define TRANSPORTS_TRANSPORTS_H

#include <tessera/tessera.h>
#include <tessera/queue.h>

#include "mx.h"

/* What a `[transport NAME]` instance is (its `type`). */
enum tr_type {
	TR_TYPE_DIRECT, /* MX lookup, SMTP to the domain's servers */
	TR_TYPE_SMTP, /* relay to a smarthost, port 25, no auth */
	TR_TYPE_SUBMISSION, /* relay, STARTTLS required, AUTH, port 587 */
	TR_TYPE_SUBMISSIONS, /* relay, implicit TLS, AUTH, port 465 */
	TR_TYPE_SOCKS, /* direct, connections through a SOCKS5 proxy */
};

/* One transport instance ("direct" is built in). */
struct tr_instance {
	char *name;
	enum tr_type type;
	char *host; /* smarthost (relay types) */
	unsigned port; /* 0: the type's default */
	bool tls_verify; /* relay: check the certificate (PKIX) */
	bool starttls; /* smtp type: opportunistic STARTTLS */
	char *tls_ca_file; /* NULL: the module's, or the system's */
	char *username; /* NULL: no AUTH */
	char *password; /* read from password_file */
	char *mechanism; /* NULL: the best the server offers */
	char *socks_host; /* socks type: the proxy */
	unsigned socks_port;
};

/* A route scope, in evaluation order. */
enum tr_scope {
	TR_SCOPE_ACCOUNT,
	TR_SCOPE_DOMAIN,
	TR_SCOPE_GLOBAL,
};

/* One `[route NAME]` section. */
struct tr_route {
	char *name;
	enum tr_scope scope;
	char *scope_name; /* the account or sender domain; NULL: global */
	char **from; /* sender domains; none: any */
	size_t from_count;
	char **to; /* recipient domains; none: any */
	size_t to_count;
	unsigned min_attempt; /* from this attempt on (1: always) */
	char *transport; /* instance name; NULL: direct */
};

/*
 * The route for one attempt (routes.c, pure): routes scoped to
 * `account` in file order, then those scoped to the sender's domain,
 * then global ones; the first whose from/to domains and min_attempt
 * match wins.  Domains compare case-insensitively; "*.example.org"
 * matches subdomains.  NULL when none matches (direct delivery).
 */
const struct tr_route *tr_route_find(const struct tr_route *routes,
				     size_t count, const char *account,
				     const char *from_domain,
				     const char *to_domain, unsigned attempt);

/* The module's settings, rebuilt on reload. */
struct tr_settings {
	char *helo_name;
	unsigned direct_port;
	uint64_t connect_timeout_ms;
	uint64_t command_timeout_ms;
	uint64_t data_timeout_ms;
	enum tr_family family;
	bool starttls;
	char *tls_ca_file; /* NULL: the system's trust store */
	unsigned max_per_host; /* connections open at once per destination */
	unsigned max_per_conn; /* transactions per connection */
	uint64_t idle_timeout_ms; /* a kept connection's wait; 0: no reuse */
	struct tr_instance *instances;
	size_t instance_count;
	struct tr_route *routes;
	size_t route_count;
};

/* The instance named `name`, or NULL ("direct" is always there). */
const struct tr_instance *tr_instance_find(const struct tr_settings *set,
					   const char *name);

/* The settings in force (ctx is the module's). */
const struct tr_settings *tr_settings(const struct ts_ctx *ctx);

struct tr_pool;
/* The connection pool (pool.h) of the module; lives until shutdown. */
struct tr_pool *tr_module_pool(const struct ts_ctx *ctx);

/*
 * The transport services (direct.c): one vtable for every type; the
 * instance name picks the behaviour.
 */
extern const struct ts_transport tr_direct_transport;

/* The pool's drop callback (direct.c): close a kept connection. */
void tr_direct_drop_parked(void *attempt);

#endif
