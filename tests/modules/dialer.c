/*
 * tests/modules/dialer.c — a test module for outbound connections.
 *
 * It serves a "dialer" protocol to the test: the line
 *
 *   DIAL <none|pkix> <server_name|-> <ca_file|-> <port> <ip>[,<ip>…]
 *
 * makes tessera connect out (ts_conn_connect, trying the addresses in
 * order), speak to the example module's "hello" protocol there (greeting,
 * STARTTLS, TLS with the given verification, TLSINFO, QUIT) and report one
 * line back: "OK ip=<ip> <hello's TLSINFO answer>" or "FAIL <why>".  It
 * uses only the public plugin API.  Not installed; built for tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/tessera.h>

struct dialer_control;

/*
 * One DIAL.  The outbound connection owns it (freed when that connection
 * ends or fails); the test's connection only points at it.
 */
struct dialer_job {
	struct ts_conn *control; /* the test's connection, or NULL if gone */
	struct dialer_control *dc; /* its per-connection data, or NULL */
	struct ts_conn *out;       /* the outbound connection */
	struct ts_tls_client_opts opts;
	char *server_name, *ca_file;
	int step; /* 0 greeting, 1 starttls reply, 2 tlsinfo reply, 3 done */
	bool reported;
};

/* Per test connection: the job in flight, if any. */
struct dialer_control {
	struct dialer_job *job;
};

static void
dialer_job_free(struct dialer_job *job)
{
	if (job->dc != NULL)
		job->dc->job = NULL;
	free(job->server_name);
	free(job->ca_file);
	free(job);
}

/* Tell the test once, and let it send the next DIAL. */
static void
dialer_report(struct dialer_job *job, const char *fmt, const char *text)
{
	if (job->reported || job->control == NULL)
		return;
	job->reported = true;
	ts_conn_printf(job->control, fmt, text);
	ts_conn_resume(job->control);
}

/* --- the outbound side ----------------------------------------------- */

static void
dialer_out_open(struct ts_conn *out, const struct ts_hook_result *res)
{
	(void)out;
	(void)res; /* the greeting comes as a line */
}

static void
dialer_out_line(struct ts_conn *out, const char *line, size_t len)
{
	(void)len;
	struct dialer_job *job = ts_conn_arg(out);
	switch (job->step) {
	case 0:
		ts_conn_printf(out, "STARTTLS\r\n");
		job->step = 1;
		break;
	case 1:
		if (strncmp(line, "220", 3) != 0) {
			dialer_report(job, "FAIL starttls refused: %s\r\n",
				      line);
			ts_conn_close(out, "starttls refused");
			return;
		}
		if (ts_conn_starttls_client(out, &job->opts) != 0) {
			dialer_report(job, "FAIL %s\r\n",
				      ts_conn_error(out) ? ts_conn_error(out)
							 : "starttls");
			ts_conn_close(out, "starttls failed");
		}
		break;
	case 2: {
		char *text = ts_xasprintf("OK ip=%s %s\r\n",
					  ts_conn_remote_ip(out), line);
		dialer_report(job, "%s", text);
		free(text);
		job->step = 3;
		ts_conn_printf(out, "QUIT\r\n");
		break;
	}
	default:
		ts_conn_close(out, "done");
	}
}

static void
dialer_out_tls_ready(struct ts_conn *out)
{
	struct dialer_job *job = ts_conn_arg(out);
	job->step = 2;
	ts_conn_printf(out, "TLSINFO\r\n");
}

static void
dialer_out_close(struct ts_conn *out)
{
	struct dialer_job *job = ts_conn_arg(out);
	const char *why = ts_conn_error(out);
	dialer_report(job, "FAIL %s\r\n", why != NULL ? why : "closed");
	dialer_job_free(job);
}

static void
dialer_out_failed(struct ts_conn *out, const char *error)
{
	struct dialer_job *job = ts_conn_arg(out);
	dialer_report(job, "FAIL %s\r\n", error);
	dialer_job_free(job);
}

static const struct ts_protocol dialer_out_protocol = {
	.open = dialer_out_open,
	.line = dialer_out_line,
	.close = dialer_out_close,
	.tls_ready = dialer_out_tls_ready,
	.connect_failed = dialer_out_failed,
};

/* --- the test's side ------------------------------------------------- */

static void
dialer_dial(struct ts_conn *conn, char *args)
{
	char *verify = strtok(args, " ");
	char *name = strtok(NULL, " ");
	char *ca = strtok(NULL, " ");
	char *port = strtok(NULL, " ");
	char *list = strtok(NULL, " ");
	if (list == NULL) {
		ts_conn_printf(conn, "501 DIAL verify name ca port ips\r\n");
		return;
	}
	const char *ips[8];
	size_t n = 0;
	for (char *ip = strtok(list, ","); ip != NULL && n < 8;
	     ip = strtok(NULL, ","))
		ips[n++] = ip;

	struct dialer_job *job = ts_xcalloc(1, sizeof(*job));
	job->control = conn;
	job->server_name = strcmp(name, "-") ? ts_xstrdup(name) : NULL;
	job->ca_file = strcmp(ca, "-") ? ts_xstrdup(ca) : NULL;
	job->opts.verify = strcmp(verify, "pkix") == 0 ? TS_TLS_VERIFY_PKIX
						       : TS_TLS_VERIFY_NONE;
	job->opts.server_name = job->server_name;
	job->opts.ca_file = job->ca_file;

	struct ts_connect_opts opts = {
		.addresses = ips,
		.address_count = n,
		.port = (unsigned)atoi(port),
		.timeout_ms = 2000,
		.name = job->server_name,
	};
	struct ts_ctx *ctx = ts_conn_protocol_ctx(conn);
	struct dialer_control *dc = ts_conn_data(conn, ctx);
	ts_conn_pause(conn);
	job->out = ts_conn_connect(ctx, &opts, &dialer_out_protocol, job);
	if (job->out == NULL) {
		dialer_job_free(job);
		ts_conn_printf(conn, "501 bad DIAL arguments\r\n");
		ts_conn_resume(conn);
		return;
	}
	job->dc = dc;
	dc->job = job;
}

static void
dialer_open(struct ts_conn *conn, const struct ts_hook_result *res)
{
	(void)res;
	ts_conn_set_data(conn, ts_conn_protocol_ctx(conn),
			 ts_xcalloc(1, sizeof(struct dialer_control)), free);
	ts_conn_printf(conn, "200 dialer ready\r\n");
}

static void
dialer_line(struct ts_conn *conn, const char *line, size_t len)
{
	(void)len;
	if (strncmp(line, "DIAL ", 5) == 0) {
		char *args = ts_xstrdup(line + 5);
		dialer_dial(conn, args);
		free(args);
	} else if (strcmp(line, "QUIT") == 0) {
		ts_conn_printf(conn, "221 bye\r\n");
		ts_conn_close(conn, "quit");
	} else {
		ts_conn_printf(conn, "500 unknown command\r\n");
	}
}

/* The test left: detach from its job (the outbound side finishes alone). */
static void
dialer_close(struct ts_conn *conn)
{
	struct dialer_control *dc =
		ts_conn_data(conn, ts_conn_protocol_ctx(conn));
	if (dc == NULL || dc->job == NULL)
		return;
	struct dialer_job *job = dc->job;
	dc->job = NULL;
	job->dc = NULL;
	job->control = NULL;
	/* Its close (or connect_failed, while connecting) frees the job. */
	ts_conn_close(job->out, "control gone");
}

static const struct ts_protocol dialer_protocol = {
	.open = dialer_open,
	.line = dialer_line,
	.close = dialer_close,
};

static int
dialer_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	(void)cfg;
	return ts_service_add(ctx, "protocol", "dialer", &dialer_protocol,
			      sizeof(dialer_protocol));
}

TS_MODULE(dialer) = {
	TS_MODULE_HEADER,
	.name = "dialer",
	.version = "1.0",
	.description = "test module: outbound connections with STARTTLS",
	.init = dialer_init,
};
