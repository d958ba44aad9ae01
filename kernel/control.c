/*
 * kernel/control.c — the unix control socket of a running server.
 *
 * `tessera status|reload|stop` connect here and send one line; the server
 * answers with lines starting "ok" or "error" and closes.  The socket lives
 * in the data directory (mode 0660), so only the service user and root can
 * use it.  This is also the seam later CLI commands (queue, account) use to
 * act on a running server.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kernel/serve.h"

#define TS_CONTROL_MAX_LINE 1024

struct ts__control {
	struct ts_kernel *kernel;
	uv_pipe_t pipe;
	char *path;
};

struct ts_control_client {
	uv_pipe_t pipe;
	struct ts_kernel *kernel;
	char buf[TS_CONTROL_MAX_LINE];
	size_t len;
	bool answered;
	bool pending; /* an asynchronous command will answer */
	bool gone;    /* the client left while pending */
};

char *
ts__control_path(const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	const char *path = ts_cfg_str(core, "control_socket");
	if (path != NULL && *path != '\0')
		return ts_xstrdup(path);
	return ts_xasprintf("%s/control", ts_cfg_str(core, "data_dir"));
}

static void
ts_control_client_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void
ts_control_written(uv_write_t *req, int status)
{
	struct ts_control_client *c = req->data;
	free(req);
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, ts_control_client_closed);
}

/* Send `text` and close the client once it is written. */
static void
ts_control_answer(struct ts_control_client *c, char *text)
{
	c->answered = true;
	c->pending = false;
	if (c->gone) {
		free(text);
		uv_close((uv_handle_t *)&c->pipe, ts_control_client_closed);
		return;
	}
	uv_read_stop((uv_stream_t *)&c->pipe);
	struct {
		uv_write_t req;
	} *w = ts_xmalloc(sizeof(*w) + strlen(text) + 1);
	char *copy = (char *)(w + 1);
	strcpy(copy, text);
	free(text);
	w->req.data = c;
	uv_buf_t buf = uv_buf_init(copy, (unsigned)strlen(copy));
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1,
		     ts_control_written) != 0) {
		free(w);
		uv_close((uv_handle_t *)&c->pipe, ts_control_client_closed);
	}
}

/* The answer of an asynchronous command (ts__queue_control). */
static void
ts_control_answer_later(char *text, void *arg)
{
	ts_control_answer(arg, text);
}

static void
ts_control_command(struct ts_control_client *c, const char *line)
{
	struct ts_kernel *k = c->kernel;
	ts_log(&k->kctx, TS_LOG_INFO, "control command=\"%s\"", line);
	if (strcmp(line, "status") == 0) {
		char *mods = ts__module_names(k->modules, k->module_count);
		char *text = ts_xasprintf(
			"ok running pid=%ld sessions=%zu listeners=%zu "
			"modules=%s\n",
			(long)getpid(), k->conn_count, k->listener_count, mods);
		free(mods);
		ts_control_answer(c, text);
	} else if (strcmp(line, "reload") == 0) {
		char *error = NULL;
		if (ts__serve_reload(k, &error) == 0)
			ts_control_answer(c, ts_xstrdup("ok reloaded\n"));
		else {
			char *text = ts_xasprintf("error reload refused, "
						  "running configuration "
						  "kept\n%s",
						  error);
			free(error);
			ts_control_answer(c, text);
		}
	} else if (strncmp(line, "queue ", 6) == 0) {
		c->pending = true;
		ts__queue_control(k, line + 6, ts_control_answer_later, c);
	} else if (strcmp(line, "stop") == 0) {
		ts_control_answer(c, ts_xstrdup("ok stopping\n"));
		ts__serve_stop(k, "control");
	} else {
		ts_control_answer(c, ts_xasprintf("error unknown command '%s' "
						  "(status, reload, stop, "
						  "queue …)\n",
						  line));
	}
}

static void
ts_control_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct ts_control_client *c = handle->data;
	*buf = uv_buf_init(c->buf + c->len,
			   (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void
ts_control_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct ts_control_client *c = stream->data;
	if (c->answered)
		return;
	if (nread < 0) {
		uv_read_stop(stream);
		if (c->pending)
			c->gone = true; /* closed when the answer comes */
		else
			uv_close((uv_handle_t *)&c->pipe,
				 ts_control_client_closed);
		return;
	}
	if (c->pending)
		return; /* one command per connection */
	c->len += (size_t)nread;
	c->buf[c->len] = '\0';
	char *lf = strchr(c->buf, '\n');
	if (lf == NULL) {
		if (c->len >= sizeof(c->buf) - 1)
			ts_control_answer(c,
					  ts_xstrdup("error line too long\n"));
		return;
	}
	*lf = '\0';
	if (lf > c->buf && lf[-1] == '\r')
		lf[-1] = '\0';
	ts_control_command(c, c->buf);
}

static void
ts_control_connection(uv_stream_t *server, int status)
{
	struct ts__control *ctl = server->data;
	if (status < 0)
		return;
	struct ts_control_client *c = ts_xcalloc(1, sizeof(*c));
	c->kernel = ctl->kernel;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, ts_control_alloc,
			  ts_control_read) != 0)
		uv_close((uv_handle_t *)&c->pipe, ts_control_client_closed);
}

int
ts__control_start(struct ts_kernel *k, char **error_r)
{
	struct ts__control *ctl = ts_xcalloc(1, sizeof(*ctl));
	ctl->kernel = k;
	ctl->path = ts__control_path(k->cfg);
	k->control = ctl;
	uv_pipe_init(k->loop, &ctl->pipe, 0);
	ctl->pipe.data = ctl;

	/* A stale socket from a crashed run would block the bind. */
	struct stat st;
	if (lstat(ctl->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(ctl->path);
	mode_t old = umask(0117);
	int rc = uv_pipe_bind(&ctl->pipe, ctl->path);
	umask(old);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ctl->pipe, 16,
			       ts_control_connection);
	if (rc != 0) {
		*error_r = ts_xasprintf("cannot listen on control socket %s: "
					"%s",
					ctl->path, uv_strerror(rc));
		return TS_E_IO;
	}
	ts_log(&k->kctx, TS_LOG_DEBUG, "control socket path=%s", ctl->path);
	return 0;
}

static void
ts_control_closed(uv_handle_t *handle)
{
	struct ts__control *ctl = handle->data;
	free(ctl->path);
	free(ctl);
}

void
ts__control_stop(struct ts_kernel *k)
{
	struct ts__control *ctl = k->control;
	if (ctl == NULL)
		return;
	k->control = NULL;
	unlink(ctl->path);
	uv_close((uv_handle_t *)&ctl->pipe, ts_control_closed);
}

/* --- client ------------------------------------------------------------- */

int
ts__control_send(const char *socket_path, const char *command)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "tessera: socket: %s\n", strerror(errno));
		return 1;
	}
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "tessera: control socket path too long: %s\n",
			socket_path);
		close(fd);
		return 1;
	}
	strcpy(sun.sun_path, socket_path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr,
			"tessera: cannot reach the server at %s: %s "
			"(is tessera serve running?)\n",
			socket_path, strerror(errno));
		close(fd);
		return 1;
	}
	char *line = ts_xasprintf("%s\n", command);
	ssize_t n = write(fd, line, strlen(line));
	free(line);
	if (n < 0) {
		fprintf(stderr, "tessera: write: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	char buf[4096];
	size_t total = 0;
	bool ok = false;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (total == 0 && n >= 2 && memcmp(buf, "ok", 2) == 0)
			ok = true;
		fwrite(buf, 1, (size_t)n, stdout);
		total += (size_t)n;
	}
	close(fd);
	return ok ? 0 : 1;
}
