/*
 * modules/transports/transports.c — the transports module's descriptor,
 * settings and init.
 *
 * It declares the `[module transports]` keys and the `[transport NAME]`
 * and `[route NAME]` sections, turns them (plus [core] hostname) into
 * struct tr_settings, checks them (`tessera config check` names the
 * file:line of a route's unknown transport), and registers the services
 * of kind "transport" the outbound queue hands deliveries to — "direct",
 * "smtp", "submission", "submissions" and "socks", all served by
 * direct.c — plus the queue_route hook that picks an instance per
 * attempt from the routes (routes.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "transports.h"

static const struct ts_cfg_key tr_keys[] = {
	{ .name = "helo_name",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "name given in EHLO/HELO (empty: [core] hostname)" },
	{ .name = "direct_port",
	  .type = TS_CFG_INT,
	  .default_value = "25",
	  .min = 1,
	  .max = 65535,
	  .doc = "port direct delivery connects to (a test knob; the "
		 "internet uses 25)" },
	{ .name = "connect_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "30s",
	  .doc = "time to establish a connection, per address" },
	{ .name = "command_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "5m",
	  .doc = "time to wait for the greeting and each reply, and for "
		 "progress while sending data (RFC 5321 4.5.3.2)" },
	{ .name = "data_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "10m",
	  .doc = "time to wait for the reply to the end of the data (RFC "
		 "5321 4.5.3.2.6)" },
	{ .name = "address_family",
	  .type = TS_CFG_ENUM,
	  .default_value = "ipv6-first",
	  .choices = "ipv6-first|ipv4-first|ipv6-only|ipv4-only",
	  .doc = "which addresses of a mail server to try, in which order" },
	{ .name = "starttls",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "use STARTTLS when the server offers it (opportunistic, "
		 "unverified); REQUIRETLS messages always use verified TLS" },
	{ .name = "tls_ca_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "PEM bundle of CAs for verified outbound TLS (empty: the "
		 "system's trust store)" },
	{ .name = "max_connections_per_host",
	  .type = TS_CFG_INT,
	  .default_value = "20",
	  .min = 1,
	  .max = 1000,
	  .doc = "connections open at once to one destination (host, port "
		 "and TLS requirements, per transport instance); more "
		 "deliveries wait for one, first come first served" },
	{ .name = "max_messages_per_connection",
	  .type = TS_CFG_INT,
	  .default_value = "100",
	  .min = 1,
	  .max = 100000,
	  .doc = "transactions on one connection before it is closed; 1: "
		 "no connection reuse" },
	{ .name = "idle_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "5s",
	  .doc = "how long a connection waits for the next delivery to the "
		 "same destination before QUIT; 0: no connection reuse" },
	{ .name = NULL },
};

static const struct ts_cfg_key tr_transport_keys[] = {
	{ .name = "type",
	  .type = TS_CFG_ENUM,
	  .default_value = "smtp",
	  .choices = "direct|smtp|submission|submissions|socks",
	  .doc = "direct (MX), smtp (smarthost, no auth), submission "
		 "(STARTTLS + AUTH), submissions (implicit TLS + AUTH), socks "
		 "(direct through a SOCKS5 proxy)" },
	{ .name = "host",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "the smarthost's name or address (smtp, submission, "
		 "submissions)" },
	{ .name = "port",
	  .type = TS_CFG_INT,
	  .default_value = "0",
	  .min = 0,
	  .max = 65535,
	  .doc = "the smarthost's port (0: 25, 587 or 465 by type)" },
	{ .name = "starttls",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "smtp type: use STARTTLS when offered (submission always "
		 "requires it)" },
	{ .name = "tls_verify",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "submission/submissions: check the smarthost's certificate "
		 "against host (PKIX)" },
	{ .name = "tls_ca_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "PEM CA bundle for tls_verify (empty: [module transports] "
		 "tls_ca_file, else the system's)" },
	{ .name = "username",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "user name for AUTH (submission, submissions; smtp: AUTH "
		 "only when set)" },
	{ .name = "password_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "file whose first line is the password (never the password "
		 "itself in the ini)" },
	{ .name = "mechanism",
	  .type = TS_CFG_ENUM,
	  .default_value = "auto",
	  .choices = "auto|SCRAM-SHA-256-PLUS|SCRAM-SHA-256|SCRAM-SHA-1-PLUS|"
		     "SCRAM-SHA-1|CRAM-MD5|PLAIN|LOGIN",
	  .doc = "SASL mechanism (auto: the most secure the server offers)" },
	{ .name = "socks_host",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "socks type: the SOCKS5 proxy's address (numeric)" },
	{ .name = "socks_port",
	  .type = TS_CFG_INT,
	  .default_value = "1080",
	  .min = 1,
	  .max = 65535,
	  .doc = "socks type: the SOCKS5 proxy's port" },
	{ .name = "announce_ips",
	  .type = TS_CFG_LIST,
	  .default_value = "",
	  .doc = "socks type: the proxy's public addresses, for "
		 "documentation and SPF (receivers see these, not ours)" },
	{ .name = NULL },
};

static const struct ts_cfg_key tr_route_keys[] = {
	{ .name = "account",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "scope: only mail submitted by this account (evaluated "
		 "first)" },
	{ .name = "domain",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "scope: only mail from this sender domain (after account "
		 "routes); neither account nor domain: global (last)" },
	{ .name = "from_domain",
	  .type = TS_CFG_LIST,
	  .default_value = "",
	  .doc = "sender domains this route matches (*.example.org for "
		 "subdomains; empty: any)" },
	{ .name = "to_domain",
	  .type = TS_CFG_LIST,
	  .default_value = "",
	  .doc = "recipient domains this route matches (empty: any)" },
	{ .name = "min_attempt",
	  .type = TS_CFG_INT,
	  .default_value = "1",
	  .min = 1,
	  .max = 1000,
	  .doc = "match from this delivery attempt on (4: the 4th and later)" },
	{ .name = "transport",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "the [transport NAME] to use (empty: direct)" },
	{ .name = NULL },
};

static const struct ts_cfg_section tr_sections[] = {
	{ .type = "transport",
	  .named = true,
	  .keys = tr_transport_keys,
	  .doc = "a named outbound transport instance" },
	{ .type = "route",
	  .named = true,
	  .keys = tr_route_keys,
	  .doc = "which transport a delivery attempt uses" },
	{ .type = NULL },
};

static void
tr_instance_clear(struct tr_instance *in)
{
	free(in->name);
	free(in->host);
	free(in->tls_ca_file);
	free(in->username);
	if (in->password != NULL) {
		memset(in->password, 0, strlen(in->password));
		free(in->password);
	}
	free(in->mechanism);
	free(in->socks_host);
}

static void
tr_route_clear(struct tr_route *r)
{
	free(r->name);
	free(r->scope_name);
	for (size_t i = 0; i < r->from_count; i++)
		free(r->from[i]);
	free(r->from);
	for (size_t i = 0; i < r->to_count; i++)
		free(r->to[i]);
	free(r->to);
	free(r->transport);
}

static void
tr_settings_free(struct tr_settings *set)
{
	if (set == NULL)
		return;
	free(set->helo_name);
	free(set->tls_ca_file);
	for (size_t i = 0; i < set->instance_count; i++)
		tr_instance_clear(&set->instances[i]);
	free(set->instances);
	for (size_t i = 0; i < set->route_count; i++)
		tr_route_clear(&set->routes[i]);
	free(set->routes);
	free(set);
}

static int
tr_type_parse(const char *text, enum tr_type *type_r)
{
	static const char *const names[] = { "direct", "smtp", "submission",
					     "submissions", "socks" };
	for (size_t i = 0; i < 5; i++)
		if (strcmp(text, names[i]) == 0) {
			*type_r = (enum tr_type)i;
			return 0;
		}
	return TS_E_INVAL;
}

/* The type's service name. */
static const char *
tr_type_service(enum tr_type type)
{
	static const char *const names[] = { "direct", "smtp", "submission",
					     "submissions", "socks" };
	return names[type];
}

/*
 * The first line of a password file, or NULL with *why_r.  Read at
 * startup and reload (not on the loop while it serves mail).
 */
static char *
tr_password_read(const char *path, const char **why_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*why_r = strerror(errno);
		return NULL;
	}
	char buf[1024];
	char *line = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (line == NULL) {
		*why_r = "empty file";
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		*why_r = "empty password";
		return NULL;
	}
	char *pw = ts_xstrdup(buf);
	memset(buf, 0, sizeof(buf));
	return pw;
}

static char *
tr_nonempty_dup(const char *s)
{
	return s != NULL && s[0] != '\0' ? ts_xstrdup(s) : NULL;
}

static void
tr_load_instances(struct tr_settings *set, const struct ts_cfg *cfg)
{
	size_t n = 1;
	for (const struct ts_cfg_sect *t = ts_cfg_next(cfg, "transport", NULL);
	     t != NULL; t = ts_cfg_next(cfg, "transport", t))
		n++;
	set->instances = ts_xcalloc(n, sizeof(*set->instances));
	/* The built-in "direct", unless a section redefines it. */
	bool own_direct = ts_cfg_find(cfg, "transport", "direct") != NULL;
	if (!own_direct) {
		set->instances[0].name = ts_xstrdup("direct");
		set->instances[0].type = TR_TYPE_DIRECT;
		set->instance_count = 1;
	}
	for (const struct ts_cfg_sect *t = ts_cfg_next(cfg, "transport", NULL);
	     t != NULL; t = ts_cfg_next(cfg, "transport", t)) {
		struct tr_instance *in = &set->instances[set->instance_count++];
		in->name = ts_xstrdup(ts_cfg_sect_name(t));
		if (tr_type_parse(ts_cfg_str(t, "type"), &in->type) != 0)
			in->type = TR_TYPE_SMTP;
		in->host = tr_nonempty_dup(ts_cfg_str(t, "host"));
		in->port = (unsigned)ts_cfg_int(t, "port");
		in->starttls = ts_cfg_bool(t, "starttls");
		in->tls_verify = ts_cfg_bool(t, "tls_verify");
		in->tls_ca_file = tr_nonempty_dup(ts_cfg_str(t, "tls_ca_file"));
		if (in->tls_ca_file == NULL && set->tls_ca_file != NULL)
			in->tls_ca_file = ts_xstrdup(set->tls_ca_file);
		in->username = tr_nonempty_dup(ts_cfg_str(t, "username"));
		const char *pf = ts_cfg_str(t, "password_file");
		if (in->username != NULL && pf[0] != '\0') {
			const char *why;
			in->password = tr_password_read(pf, &why);
		}
		const char *mech = ts_cfg_str(t, "mechanism");
		if (strcmp(mech, "auto") != 0)
			in->mechanism = ts_xstrdup(mech);
		in->socks_host = tr_nonempty_dup(ts_cfg_str(t, "socks_host"));
		in->socks_port = (unsigned)ts_cfg_int(t, "socks_port");
		if (in->port == 0)
			in->port = in->type == TR_TYPE_SUBMISSION    ? 587
				   : in->type == TR_TYPE_SUBMISSIONS ? 465
								     : 25;
	}
}

static char **
tr_list_copy(const struct ts_cfg_sect *s, const char *key, size_t *count_r)
{
	size_t n = ts_cfg_list_len(s, key);
	char **list = ts_xcalloc(n ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = ts_xstrdup(ts_cfg_list_item(s, key, i));
	*count_r = n;
	return list;
}

static void
tr_load_routes(struct tr_settings *set, const struct ts_cfg *cfg)
{
	size_t n = 0;
	for (const struct ts_cfg_sect *r = ts_cfg_next(cfg, "route", NULL);
	     r != NULL; r = ts_cfg_next(cfg, "route", r))
		n++;
	set->routes = ts_xcalloc(n ? n : 1, sizeof(*set->routes));
	for (const struct ts_cfg_sect *r = ts_cfg_next(cfg, "route", NULL);
	     r != NULL; r = ts_cfg_next(cfg, "route", r)) {
		struct tr_route *rt = &set->routes[set->route_count++];
		rt->name = ts_xstrdup(ts_cfg_sect_name(r));
		const char *account = ts_cfg_str(r, "account");
		const char *domain = ts_cfg_str(r, "domain");
		if (account[0] != '\0') {
			rt->scope = TR_SCOPE_ACCOUNT;
			rt->scope_name = ts_xstrdup(account);
		} else if (domain[0] != '\0') {
			rt->scope = TR_SCOPE_DOMAIN;
			rt->scope_name = ts_xstrdup(domain);
		} else {
			rt->scope = TR_SCOPE_GLOBAL;
		}
		rt->from = tr_list_copy(r, "from_domain", &rt->from_count);
		rt->to = tr_list_copy(r, "to_domain", &rt->to_count);
		rt->min_attempt = (unsigned)ts_cfg_int(r, "min_attempt");
		rt->transport = tr_nonempty_dup(ts_cfg_str(r, "transport"));
	}
}

const struct tr_instance *
tr_instance_find(const struct tr_settings *set, const char *name)
{
	for (size_t i = 0; i < set->instance_count; i++)
		if (strcmp(set->instances[i].name, name) == 0)
			return &set->instances[i];
	return NULL;
}

static struct tr_settings *
tr_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct tr_settings *set = ts_xcalloc(1, sizeof(*set));

	const char *helo = ts_cfg_str(s, "helo_name");
	set->helo_name = helo != NULL && helo[0] != '\0'
				 ? ts_xstrdup(helo)
				 : ts_cfg_hostname(cfg);
	set->direct_port = (unsigned)ts_cfg_int(s, "direct_port");
	set->connect_timeout_ms = ts_cfg_duration_ms(s, "connect_timeout");
	set->command_timeout_ms = ts_cfg_duration_ms(s, "command_timeout");
	set->data_timeout_ms = ts_cfg_duration_ms(s, "data_timeout");
	if (tr_family_parse(ts_cfg_str(s, "address_family"), &set->family) != 0)
		set->family = TR_FAMILY_IPV6_FIRST; /* the enum checked it */
	set->starttls = ts_cfg_bool(s, "starttls");
	set->max_per_host = (unsigned)ts_cfg_int(s, "max_connections_per_host");
	set->max_per_conn =
		(unsigned)ts_cfg_int(s, "max_messages_per_connection");
	set->idle_timeout_ms = ts_cfg_duration_ms(s, "idle_timeout");
	const char *ca = ts_cfg_str(s, "tls_ca_file");
	if (ca != NULL && ca[0] != '\0')
		set->tls_ca_file = ts_xstrdup(ca);
	tr_load_instances(set, cfg);
	tr_load_routes(set, cfg);
	return set;
}

/* The module's state: settings (replaced on reload) and the pool. */
struct tr_module {
	struct tr_settings *set;
	struct tr_pool *pool;
};

const struct tr_settings *
tr_settings(const struct ts_ctx *ctx)
{
	const struct tr_module *m = ts_ctx_data(ctx);
	return m->set;
}

struct tr_pool *
tr_module_pool(const struct ts_ctx *ctx)
{
	const struct tr_module *m = ts_ctx_data(ctx);
	return m->pool;
}

/* Per-type required keys of the [transport NAME] sections. */
static int
tr_check_instances(struct ts_cfg *cfg)
{
	int rc = 0;
	for (const struct ts_cfg_sect *t = ts_cfg_next(cfg, "transport", NULL);
	     t != NULL; t = ts_cfg_next(cfg, "transport", t)) {
		enum tr_type type = TR_TYPE_SMTP;
		(void)tr_type_parse(ts_cfg_str(t, "type"), &type);
		bool relay = type == TR_TYPE_SMTP ||
			     type == TR_TYPE_SUBMISSION ||
			     type == TR_TYPE_SUBMISSIONS;
		if (relay && ts_cfg_str(t, "host")[0] == '\0')
			rc = ts_cfg_error(cfg, t, NULL,
					  "a %s transport needs host",
					  ts_cfg_str(t, "type"));
		const char *user = ts_cfg_str(t, "username");
		const char *pf = ts_cfg_str(t, "password_file");
		if ((type == TR_TYPE_SUBMISSION ||
		     type == TR_TYPE_SUBMISSIONS) &&
		    user[0] == '\0')
			rc = ts_cfg_error(cfg, t, NULL,
					  "a %s transport needs username and "
					  "password_file",
					  ts_cfg_str(t, "type"));
		if (user[0] != '\0' && pf[0] == '\0')
			rc = ts_cfg_error(cfg, t, "username",
					  "username without password_file");
		if (user[0] != '\0' && pf[0] != '\0') {
			const char *why;
			char *pw = tr_password_read(pf, &why);
			if (pw == NULL)
				rc = ts_cfg_error(cfg, t, "password_file",
						  "cannot read the password "
						  "from %s: %s",
						  pf, why);
			else
				memset(pw, 0, strlen(pw));
			free(pw);
		}
		if (type == TR_TYPE_SOCKS) {
			const char *sh = ts_cfg_str(t, "socks_host");
			if (sh[0] == '\0')
				rc = ts_cfg_error(cfg, t, NULL,
						  "a socks transport needs "
						  "socks_host");
		}
		const char *ca = ts_cfg_str(t, "tls_ca_file");
		if (ca[0] != '\0' && access(ca, R_OK) != 0)
			rc = ts_cfg_error(cfg, t, "tls_ca_file",
					  "cannot read %s", ca);
	}
	return rc;
}

/*
 * queue_route: the first matching route's transport instance, or no
 * opinion (direct) when none matches or its transport is empty.
 */
static int
tr_route_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct tr_settings *set = tr_settings(ctx);
	struct ts_delivery *d = ts_hook_call_delivery(call);
	const char *to = ts_hook_call_arg(call);
	if (d == NULL || to == NULL || set == NULL || set->route_count == 0)
		return TS_HOOK_CONTINUE;
	const struct ts_txn_mail *m = ts_delivery_mail(d);
	const struct tr_route *r = tr_route_find(
		set->routes, set->route_count, ts_delivery_account(d),
		m->domain, to, ts_delivery_attempt(d));
	if (r == NULL)
		return TS_HOOK_CONTINUE;
	const char *name = r->transport != NULL ? r->transport : "direct";
	const struct tr_instance *in = tr_instance_find(set, name);
	ts_log(ctx, TS_LOG_DEBUG,
	       "route matched id=%s route=%s transport=%s attempt=%u",
	       ts_delivery_id(d), r->name, name, ts_delivery_attempt(d));
	if (in == NULL) /* a reload removed it; the check prevents this */
		return ts_hook_tempfail(call, 451, "4.3.5",
					"route %s names an unknown transport "
					"%s",
					r->name, name);
	return ts_hook_route(call, tr_type_service(in->type), in->name);
}

static int
tr_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	int rc = 0;
	static const char *const timeouts[] = { "connect_timeout",
						"command_timeout",
						"data_timeout" };
	for (size_t i = 0; i < 3; i++)
		if (ts_cfg_duration_ms(s, timeouts[i]) == 0)
			rc = ts_cfg_error(cfg, s, timeouts[i],
					  "%s must be more than 0",
					  timeouts[i]);
	const char *ca = ts_cfg_str(s, "tls_ca_file");
	if (ca != NULL && ca[0] != '\0' && access(ca, R_OK) != 0)
		rc = ts_cfg_error(cfg, s, "tls_ca_file", "cannot read %s", ca);
	if (tr_check_instances(cfg) != 0)
		rc = TS_E_INVAL;
	for (const struct ts_cfg_sect *r = ts_cfg_next(cfg, "route", NULL);
	     r != NULL; r = ts_cfg_next(cfg, "route", r)) {
		const char *t = ts_cfg_str(r, "transport");
		if (t[0] != '\0' && strcmp(t, "direct") != 0 &&
		    ts_cfg_find(cfg, "transport", t) == NULL)
			rc = ts_cfg_error(cfg, r, "transport",
					  "unknown transport \"%s\" (no "
					  "[transport %s] section)",
					  t, t);
		if (ts_cfg_is_set(r, "account") && ts_cfg_is_set(r, "domain"))
			rc = ts_cfg_error(cfg, r, NULL,
					  "a route has one scope: account or "
					  "domain, not both");
	}
	return rc;
}

static int
tr_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	struct tr_module *m = ts_xcalloc(1, sizeof(*m));
	m->set = tr_settings_new(cfg, ctx);
	m->pool = tr_pool_new(tr_direct_drop_parked);
	ts_ctx_set_data(ctx, m);
	for (int t = TR_TYPE_DIRECT; t <= TR_TYPE_SOCKS; t++) {
		int rc = ts_service_add(
			ctx, "transport", tr_type_service((enum tr_type)t),
			&tr_direct_transport, sizeof(tr_direct_transport));
		if (rc != 0)
			return rc;
	}
	return ts_hook_add(ctx, TS_HOOK_QUEUE_ROUTE, tr_route_hook, 0, 0);
}

/*
 * Deliveries in flight copy what they keep (the HELO name) and read the
 * rest when they need it, so a reload applies from their next step.
 */
static int
tr_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	struct tr_module *m = ts_ctx_data(ctx);
	tr_settings_free(m->set);
	m->set = tr_settings_new(cfg, ctx);
	return 0;
}

static void
tr_shutdown(struct ts_ctx *ctx)
{
	struct tr_module *m = ts_ctx_data(ctx);
	if (m == NULL)
		return;
	/* Kept connections are closed; those in use outlive the pool. */
	tr_pool_free(&m->pool);
	tr_settings_free(m->set);
	free(m);
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(transports) = {
	TS_MODULE_HEADER,
	.name = "transports",
	.version = "0.1",
	.description = "outbound transports: direct delivery to MX hosts, "
		       "relays with SASL, SOCKS5, routes",
	.config_keys = tr_keys,
	.config_sections = tr_sections,
	.init = tr_init,
	.check = tr_check,
	.reload = tr_reload,
	.shutdown = tr_shutdown,
};
