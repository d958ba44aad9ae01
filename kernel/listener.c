/*
 * kernel/listener.c — `[listener NAME]` sections: bind, listen, accept.
 *
 * A listener has one or more addresses, a port and the name of the protocol
 * service that serves it.  Sockets are bound while tessera may still be
 * root (so ports below 1024 work), before privileges are dropped.  The
 * accept backlog is large on purpose: a small one collapses throughput
 * under many concurrent senders.  TLS modes come with the network layer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/net.h"
#include "kernel/tls.h"

const struct ts_cfg_key ts__listener_keys[] = {
	{ .name = "address",
	  .type = TS_CFG_LIST,
	  .default_value = "127.0.0.1",
	  .doc = "addresses to listen on, IPv4 or IPv6, several allowed" },
	{ .name = "port",
	  .type = TS_CFG_INT,
	  .min = 1,
	  .max = 65535,
	  .doc = "TCP port (required)" },
	{ .name = "protocol",
	  .type = TS_CFG_STRING,
	  .doc = "protocol service that serves it, e.g. smtp (required)" },
	{ .name = "backlog",
	  .type = TS_CFG_INT,
	  .default_value = "4096",
	  .min = 1,
	  .max = 65535,
	  .doc = "accept queue length (the kernel caps it at somaxconn)" },
	{ .name = "max_line",
	  .type = TS_CFG_SIZE,
	  .default_value = "4k",
	  .doc = "longest input line accepted, in bytes" },
	{ .name = "session_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "1h",
	  .doc = "close a connection this long after it opened, busy or "
		 "not (0: never)" },
	{ .name = "memory_budget",
	  .type = TS_CFG_SIZE,
	  .default_value = "1M",
	  .doc = "most input plus queued output one connection may hold" },
	{ .name = "tls",
	  .type = TS_CFG_ENUM,
	  .default_value = "none",
	  .choices = "none|starttls|implicit",
	  .doc = "plaintext only, plaintext with STARTTLS, or TLS from the "
		 "first byte" },
	{ .name = "tls_cert",
	  .type = TS_CFG_LIST,
	  .doc = "PEM certificate files (chains), one per name; SNI picks "
		 "(default: a self-signed one for [core] hostname)" },
	{ .name = "tls_key",
	  .type = TS_CFG_LIST,
	  .doc = "PEM key files, in the order of tls_cert" },
	{ .name = "idle_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "5m",
	  .doc = "close a connection after this long without input" },
	{ .name = NULL },
};

struct ts__listener {
	struct ts_kernel *kernel;
	char *name;
	char *address;
	unsigned port;
	const struct ts_protocol *proto;
	struct ts_ctx *proto_ctx;
	struct ts__conn_limits limits; /* owns limits.creds' reference */
	uv_tcp_t tcp;
	bool open;
};

/*
 * Credentials for a TLS listener section; NULL creds for tls = none.
 * Returns 0 or TS_E_INVAL with *error_r.
 */
static int
ts_listener_creds(const struct ts_cfg *cfg, const struct ts_cfg_sect *s,
		  struct ts__tls_creds **creds_r, char **error_r)
{
	*creds_r = NULL;
	if (strcmp(ts_cfg_str(s, "tls"), "none") == 0)
		return 0;
	size_t n = ts_cfg_list_len(s, "tls_cert");
	const char **certs = ts_xcalloc(n + 1, sizeof(*certs));
	const char **keys = ts_xcalloc(n + 1, sizeof(*keys));
	for (size_t i = 0; i < n; i++) {
		certs[i] = ts_cfg_list_item(s, "tls_cert", i);
		keys[i] = ts_cfg_list_item(s, "tls_key", i);
	}
	char *hostname = ts_cfg_hostname(cfg);
	char *why = NULL;
	int rc = ts__tls_creds_new(certs, keys, n, hostname, creds_r, &why);
	if (rc != 0) {
		*error_r = ts_xasprintf("listener %s: %s", ts_cfg_sect_name(s),
					why);
		free(why);
	}
	free(hostname);
	free(certs);
	free(keys);
	return rc != 0 ? TS_E_INVAL : 0;
}

static int
ts_listener_parse_addr(const char *ip, unsigned port,
		       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') != NULL)
		return uv_ip6_addr(ip, (int)port, (struct sockaddr_in6 *)ss);
	return uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)ss);
}

int
ts__listeners_check(struct ts_kernel *k, struct ts_cfg *cfg)
{
	int rc = 0;
	char **seen = NULL;
	size_t seen_count = 0;

	const struct ts_cfg_sect *s = NULL;
	while ((s = ts_cfg_next(cfg, "listener", s)) != NULL) {
		const char *proto = ts_cfg_str(s, "protocol");
		if (!ts_cfg_is_set(s, "port"))
			rc = ts_cfg_error(cfg, s, NULL,
					  "listener %s: port is required",
					  ts_cfg_sect_name(s));
		if (proto == NULL)
			rc = ts_cfg_error(cfg, s, NULL,
					  "listener %s: protocol is required",
					  ts_cfg_sect_name(s));
		else if (ts_service_find(&k->kctx, "protocol", proto,
					 sizeof(struct ts_protocol),
					 NULL) == NULL)
			rc = ts_cfg_error(cfg, s, "protocol",
					  "listener %s: no enabled module "
					  "serves protocol '%s'",
					  ts_cfg_sect_name(s), proto);
		if (ts_cfg_list_len(s, "tls_cert") !=
		    ts_cfg_list_len(s, "tls_key"))
			rc = ts_cfg_error(cfg, s, "tls_key",
					  "listener %s: %zu tls_cert but %zu "
					  "tls_key files",
					  ts_cfg_sect_name(s),
					  ts_cfg_list_len(s, "tls_cert"),
					  ts_cfg_list_len(s, "tls_key"));
		else if (ts_cfg_list_len(s, "tls_cert") > 0) {
			/* Load them now, so a bad file is a config error. */
			struct ts__tls_creds *creds = NULL;
			char *why = NULL;
			if (ts_listener_creds(cfg, s, &creds, &why) != 0) {
				rc = ts_cfg_error(cfg, s, "tls_cert", "%s",
						  why);
				free(why);
			}
			ts__tls_creds_unref(&creds);
		}
		unsigned port = (unsigned)ts_cfg_int(s, "port");
		for (size_t i = 0; i < ts_cfg_list_len(s, "address"); i++) {
			const char *ip = ts_cfg_list_item(s, "address", i);
			struct sockaddr_storage ss;
			if (ts_listener_parse_addr(ip, port ? port : 1, &ss)) {
				rc = ts_cfg_error(cfg, s, "address",
						  "'%s' is not an IP address",
						  ip);
				continue;
			}
			char *key = ts_xasprintf("[%s]:%u", ip, port);
			for (size_t j = 0; j < seen_count; j++) {
				if (port != 0 && strcmp(seen[j], key) == 0) {
					rc = ts_cfg_error(cfg, s, "address",
							  "%s is used by two "
							  "listeners",
							  key);
					break;
				}
			}
			ts__strv_push(&seen, &seen_count, key);
		}
	}
	ts__strv_free(&seen);
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	char *why = NULL;
	if (ts__tls_priority_check(ts_cfg_str(core, "tls_priority"), &why)) {
		rc = ts_cfg_error(cfg, core, "tls_priority", "%s", why);
		free(why);
	}
	return rc;
}

static void
ts_listener_connection(uv_stream_t *server, int status)
{
	struct ts__listener *l = server->data;
	if (status < 0) {
		ts_log(&l->kernel->kctx, TS_LOG_WARN,
		       "accept error listener=%s error=%s", l->name,
		       uv_strerror(status));
		return;
	}
	if (l->kernel->phase != TS__PHASE_RUN)
		return;
	ts__conn_accept(l->kernel, server, l->name, l->proto, l->proto_ctx,
			&l->limits);
}

static void
ts_listener_closed(uv_handle_t *handle)
{
	struct ts__listener *l = handle->data;
	ts__tls_creds_unref(&l->limits.creds);
	free((char *)l->limits.tls_priority);
	free(l->name);
	free(l->address);
	free(l);
}

static int
ts_listener_bind(struct ts_kernel *k, const struct ts_cfg_sect *s,
		 const char *ip, char **error_r)
{
	struct ts__listener *l = ts_xcalloc(1, sizeof(*l));
	l->kernel = k;
	l->name = ts_xstrdup(ts_cfg_sect_name(s));
	l->address = ts_xstrdup(ip);
	l->port = (unsigned)ts_cfg_int(s, "port");
	l->proto =
		ts_service_find(&k->kctx, "protocol", ts_cfg_str(s, "protocol"),
				sizeof(struct ts_protocol), &l->proto_ctx);
	l->limits.max_line = (size_t)ts_cfg_size(s, "max_line");
	l->limits.idle_timeout_ms = ts_cfg_duration_ms(s, "idle_timeout");
	l->limits.session_timeout_ms =
		ts_cfg_duration_ms(s, "session_timeout");
	l->limits.memory_budget = (size_t)ts_cfg_size(s, "memory_budget");
	const char *mode = ts_cfg_str(s, "tls");
	l->limits.tls_mode = strcmp(mode, "implicit") == 0 ? TS__TLS_IMPLICIT
			     : strcmp(mode, "starttls") == 0 ? TS__TLS_STARTTLS
							     : TS__TLS_NONE;
	/* A copy: k->cfg is replaced on reload, the listener stays. */
	l->limits.tls_priority = ts_xstrdup(
		ts_cfg_str(ts_cfg_find(k->cfg, "core", NULL), "tls_priority"));
	uv_tcp_init(k->loop, &l->tcp);
	l->tcp.data = l;
	k->listeners = ts_xrealloc(k->listeners, (k->listener_count + 1) *
							 sizeof(*k->listeners));
	k->listeners[k->listener_count++] = l;

	int rc = ts_listener_creds(k->cfg, s, &l->limits.creds, error_r);
	if (rc != 0)
		return rc;
	struct sockaddr_storage ss;
	rc = ts_listener_parse_addr(ip, l->port, &ss);
	if (rc == 0)
		rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss,
				 ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY
							  : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp,
			       (int)ts_cfg_int(s, "backlog"),
			       ts_listener_connection);
	if (rc != 0) {
		*error_r = ts_xasprintf("%s: listener %s: cannot listen on "
					"[%s]:%u: %s",
					ts_cfg_where(s, NULL), l->name, ip,
					l->port, uv_strerror(rc));
		return TS_E_IO;
	}
	l->open = true;
	ts_log(&k->kctx, TS_LOG_INFO,
	       "listening listener=%s address=[%s]:%u protocol=%s", l->name, ip,
	       l->port, ts_cfg_str(s, "protocol"));
	return 0;
}

int
ts__listeners_start(struct ts_kernel *k, char **error_r)
{
	const struct ts_cfg_sect *s = NULL;
	while ((s = ts_cfg_next(k->cfg, "listener", s)) != NULL) {
		for (size_t i = 0; i < ts_cfg_list_len(s, "address"); i++) {
			int rc = ts_listener_bind(
				k, s, ts_cfg_list_item(s, "address", i),
				error_r);
			if (rc != 0) {
				ts__listeners_stop(k);
				return rc;
			}
		}
	}
	return 0;
}

void
ts__listeners_stop(struct ts_kernel *k)
{
	for (size_t i = 0; i < k->listener_count; i++) {
		struct ts__listener *l = k->listeners[i];
		if (l->open)
			ts_log(&k->kctx, TS_LOG_INFO,
			       "stopped listening listener=%s "
			       "address=[%s]:%u",
			       l->name, l->address, l->port);
		uv_close((uv_handle_t *)&l->tcp, ts_listener_closed);
	}
	free(k->listeners);
	k->listeners = NULL;
	k->listener_count = 0;
}

int
ts__listeners_reload_tls(struct ts_kernel *k, char **error_r)
{
	/* Build everything first, so a failure changes nothing. */
	struct ts__tls_creds **fresh =
		ts_xcalloc(k->listener_count + 1, sizeof(*fresh));
	int rc = 0;
	for (size_t i = 0; i < k->listener_count && rc == 0; i++) {
		const struct ts_cfg_sect *s =
			ts_cfg_find(k->cfg, "listener", k->listeners[i]->name);
		if (s != NULL)
			rc = ts_listener_creds(k->cfg, s, &fresh[i], error_r);
	}
	const char *priority =
		ts_cfg_str(ts_cfg_find(k->cfg, "core", NULL), "tls_priority");
	for (size_t i = 0; i < k->listener_count; i++) {
		struct ts__listener *l = k->listeners[i];
		free((char *)l->limits.tls_priority);
		l->limits.tls_priority = ts_xstrdup(priority);
		if (rc != 0 || fresh[i] == NULL || l->limits.creds == NULL) {
			ts__tls_creds_unref(&fresh[i]);
			continue;
		}
		/* Established sessions keep a reference to the old ones. */
		ts__tls_creds_unref(&l->limits.creds);
		l->limits.creds = fresh[i];
		ts_log(&k->kctx, TS_LOG_INFO,
		       "tls certificates reloaded listener=%s address=[%s]:%u",
		       l->name, l->address, l->port);
	}
	free(fresh);
	return rc;
}
