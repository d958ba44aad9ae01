/*
 * hello — an example third-party tessera module.
 *
 * It shows the whole plugin surface a module author needs, in one small
 * file: a descriptor, config keys with defaults, a check callback, a
 * conn_open hook (refusing or slowing down listed peers), a tiny line
 * protocol served by a listener (with STARTTLS), and a CLI subcommand.  It is built with
 * nothing but the installed headers:
 *
 *   cc $(pkg-config --cflags --libs tessera-plugin) hello.c -o hello.so
 *
 * and loaded with `[module hello] enabled = yes` plus `module_dir`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/tessera.h>

static const struct ts_cfg_key hello_keys[] = {
	{ .name = "greeting",
	  .type = TS_CFG_STRING,
	  .default_value = "hello from tessera",
	  .doc = "text of the greeting and of `tessera hello`" },
	{ .name = "deny",
	  .type = TS_CFG_LIST,
	  .default_value = "",
	  .doc = "remote IPs refused at connect" },
	{ .name = "delay",
	  .type = TS_CFG_DURATION,
	  .default_value = "0",
	  .doc = "wait this long before greeting anyone" },
	{ .name = NULL },
};

struct hello {
	char *greeting;
	char **deny;
	size_t deny_count;
	uint64_t delay_ms;
};

static void
hello_settings_free(struct hello *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->deny_count; i++)
		free(h->deny[i]);
	free(h->deny);
	free(h->greeting);
	free(h);
}

static struct hello *
hello_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct hello *h = ts_xcalloc(1, sizeof(*h));
	h->greeting = ts_xstrdup(ts_cfg_str(s, "greeting"));
	h->deny_count = ts_cfg_list_len(s, "deny");
	h->deny = ts_xcalloc(h->deny_count + 1, sizeof(*h->deny));
	for (size_t i = 0; i < h->deny_count; i++)
		h->deny[i] = ts_xstrdup(ts_cfg_list_item(s, "deny", i));
	h->delay_ms = ts_cfg_duration_ms(s, "delay");
	return h;
}

/* --- the conn_open hook ------------------------------------------------ */

static int
hello_conn_open(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	struct hello *h = ts_ctx_data(ctx);
	struct ts_conn *conn = ts_hook_call_conn(call);
	const char *ip = conn != NULL ? ts_conn_remote_ip(conn) : "-";

	ts_log(ctx, TS_LOG_INFO, "hello saw a connection remote=%s", ip);
	for (size_t i = 0; i < h->deny_count; i++)
		if (strcmp(h->deny[i], ip) == 0)
			return ts_hook_reject(call, 554, "5.7.1",
					      "hello does not talk to %s", ip);
	if (h->delay_ms > 0)
		ts_hook_delay(call, h->delay_ms);
	return TS_HOOK_CONTINUE;
}

/* --- the "hello" protocol ---------------------------------------------- */

/* Per-connection state, kept in the connection's slot for this module. */
struct hello_conn {
	uint64_t bytes_left, bytes_seen; /* BYTES in progress */
	uint32_t checksum;               /* sum of the bytes, mod 2^32 */
	uint64_t stream_left;            /* STREAM output still to write */
};

static struct hello_conn *
hello_conn_get(struct ts_conn *conn)
{
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	struct hello_conn *hc = ts_conn_data(conn, ctx);
	if (hc == NULL) {
		hc = ts_xcalloc(1, sizeof(*hc));
		ts_conn_set_data(conn, ctx, hc, free);
	}
	return hc;
}

/*
 * Write the stream in 16 KiB pieces while little is queued; the kernel
 * calls `drained` when the peer has caught up, and we go on there.
 */
static void
hello_stream(struct ts_conn *conn)
{
	struct hello_conn *hc = hello_conn_get(conn);
	char piece[16384];
	memset(piece, 'z', sizeof(piece) - 1);
	piece[sizeof(piece) - 1] = '\n';
	while (hc->stream_left > 0 && ts_conn_output_pending(conn) < 128 * 1024) {
		size_t n = hc->stream_left < sizeof(piece) ? hc->stream_left
							   : sizeof(piece);
		if (ts_conn_write(conn, piece, n) != 0)
			return;
		hc->stream_left -= n;
		if (hc->stream_left == 0)
			ts_conn_printf(conn, "\r\n250 stream done\r\n");
	}
}

static void
hello_data(struct ts_conn *conn, const char *data, size_t len, bool last)
{
	struct hello_conn *hc = hello_conn_get(conn);
	for (size_t i = 0; i < len; i++)
		hc->checksum += (unsigned char)data[i];
	hc->bytes_seen += len;
	if (last)
		ts_conn_printf(conn, "250 received %llu bytes sum=%u\r\n",
			       (unsigned long long)hc->bytes_seen,
			       (unsigned)hc->checksum);
}

static void
hello_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	if (res->verdict == TS_VERDICT_REJECT ||
	    res->verdict == TS_VERDICT_TEMPFAIL) {
		ts_conn_printf(conn, "%d %s\r\n", res->code ? res->code : 554,
			       res->text ? res->text : "go away");
		ts_conn_close(conn, "refused at connect");
		return;
	}
	struct hello *h = ts_ctx_data(ts_conn_protocol_ctx(conn));
	ts_conn_printf(conn, "220 %s\r\n", h->greeting);
}

static void
hello_line(struct ts_conn *conn, const char *line, size_t len)
{
	(void)len;
	if (strcasecmp(line, "QUIT") == 0) {
		ts_conn_printf(conn, "221 bye\r\n");
		ts_conn_close(conn, "quit");
	} else if (strcasecmp(line, "STARTTLS") == 0) {
		/* The go-ahead goes out in clear, then TLS starts. */
		if (!ts_conn_tls_offered(conn)) {
			ts_conn_printf(conn, "454 TLS not available\r\n");
			return;
		}
		ts_conn_printf(conn, "220 ready to start TLS\r\n");
		if (ts_conn_starttls(conn) != 0)
			ts_conn_close(conn, "starttls failed");
	} else if (strcasecmp(line, "TLSINFO") == 0) {
		struct ts_tls_info info;
		if (ts_conn_tls_info(conn, &info) != 0)
			ts_conn_printf(conn, "250 plaintext\r\n");
		else
			ts_conn_printf(conn,
				       "250 version=%s cipher=%s sni=%s "
				       "client_cert=%s\r\n",
				       info.version, info.cipher,
				       info.server_name ? info.server_name
							: "-",
				       info.client_cert_offered ? "yes" : "no");
	} else if (strncasecmp(line, "BYTES ", 6) == 0) {
		/* Counted input (like BDAT): the next N bytes are data. */
		struct hello_conn *hc = hello_conn_get(conn);
		hc->bytes_left = strtoull(line + 6, NULL, 10);
		hc->bytes_seen = 0;
		hc->checksum = 0;
		if (hc->bytes_left == 0 ||
		    ts_conn_read_bytes(conn, hc->bytes_left) != 0)
			ts_conn_printf(conn, "501 BYTES needs a count\r\n");
	} else if (strncasecmp(line, "STREAM ", 7) == 0) {
		/* Large output, written as fast as the peer reads it. */
		struct hello_conn *hc = hello_conn_get(conn);
		hc->stream_left = strtoull(line + 7, NULL, 10) * 1024;
		hello_stream(conn);
	} else if (strncasecmp(line, "HELLO", 5) == 0 &&
		   (line[5] == ' ' || line[5] == '\0')) {
		const char *name = line[5] == ' ' ? line + 6 : "stranger";
		ts_conn_printf(conn, "250 hello %s\r\n", name);
	} else {
		ts_conn_printf(conn, "500 unknown command\r\n");
	}
}

/* An overlong line is a broken or hostile client: say so and hang up. */
static void
hello_line_too_long(struct ts_conn *conn)
{
	ts_conn_printf(conn, "500 line too long\r\n");
	ts_conn_close(conn, "line too long");
}

static void
hello_tls_ready(struct ts_conn *conn)
{
	/* A real protocol forgets everything said before TLS here. */
	ts_conn_log(conn, ts_conn_protocol_ctx(conn), TS_LOG_DEBUG,
		    "hello now under tls");
}

static void
hello_shutdown(struct ts_conn *conn)
{
	ts_conn_printf(conn, "421 shutting down\r\n");
	ts_conn_close(conn, "shutdown");
}

static const struct ts_protocol hello_protocol = {
	.open = hello_open,
	.line = hello_line,
	.line_too_long = hello_line_too_long,
	.shutdown = hello_shutdown,
	.tls_ready = hello_tls_ready,
	.data = hello_data,
	.drained = hello_stream,
};

/* --- the CLI subcommand ------------------------------------------------ */

static int
hello_cli(struct ts_ctx *ctx, int argc, char **argv)
{
	struct hello *h = ts_ctx_data(ctx);
	if (argc > 2) {
		fprintf(stderr, "usage: tessera hello [NAME]\n");
		return 2;
	}
	printf("%s, %s!\n", h->greeting, argc == 2 ? argv[1] : "world");
	return 0;
}

/* --- lifecycle --------------------------------------------------------- */

static int
hello_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	if (strlen(ts_cfg_str(s, "greeting")) > 200)
		return ts_cfg_error(cfg, s, "greeting",
				    "greeting longer than 200 characters");
	return 0;
}

static int
hello_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, hello_settings_new(cfg, ctx));
	int rc = ts_hook_add(ctx, TS_HOOK_CONN_OPEN, hello_conn_open, 0, 0);
	if (rc == 0)
		rc = ts_service_add(ctx, "protocol", "hello", &hello_protocol,
				    sizeof(hello_protocol));
	if (rc == 0)
		rc = ts_cli_add(ctx, "hello", "print the example greeting",
				"[NAME]", hello_cli);
	return rc;
}

static int
hello_reload(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	hello_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, hello_settings_new(cfg, ctx));
	return 0;
}

static void
hello_shutdown_module(struct ts_ctx *ctx)
{
	hello_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(hello) = {
	TS_MODULE_HEADER,
	.name = "hello",
	.version = "1.0",
	.description = "example module: greets, refuses listed peers",
	.config_keys = hello_keys,
	.init = hello_init,
	.check = hello_check,
	.reload = hello_reload,
	.shutdown = hello_shutdown_module,
};
