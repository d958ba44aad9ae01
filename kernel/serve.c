/*
 * kernel/serve.c — the life of `tessera serve`.
 *
 * Start: load and check everything, init modules, bind listeners (still
 * root), drop privileges, open the control socket, run the loop.  SIGHUP
 * re-reads the configuration and applies it only if every check passes.
 * SIGTERM/SIGINT stop accepting, ask each session to finish, and close
 * whatever is left when [core] shutdown_grace runs out; then modules shut
 * down in reverse order.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/boot.h"
#include "kernel/dns.h"
#include "kernel/store/accounts.h"
#include "kernel/net.h"
#include "kernel/serve.h"

struct ts_serve {
	struct ts_kernel kernel;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	char *config_path;
	int exit_status;
};

/* --- privileges ---------------------------------------------------------- */

/*
 * Make sure the data directory exists and belongs to the service user, so
 * the unprivileged process can write its databases and control socket.
 */
static int
ts_serve_prepare_data_dir(const char *dir, uid_t uid, gid_t gid, char **error_r)
{
	/* Create missing parents too, like mkdir -p. */
	char *path = ts_xstrdup(dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		/* Parents must stay traversable for the service user. */
		mode_t mode = saved == '\0' ? 0750 : 0755;
		if (mkdir(path, mode) != 0 && errno != EEXIST) {
			*error_r = ts_xasprintf("cannot create data_dir %s: %s",
						path, strerror(errno));
			free(path);
			return TS_E_IO;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(path);
	if (uid != (uid_t)-1 && chown(dir, uid, gid) != 0) {
		*error_r = ts_xasprintf("cannot chown data_dir %s: %s", dir,
					strerror(errno));
		return TS_E_IO;
	}
	return 0;
}

static int
ts_serve_drop_privileges(struct ts_kernel *k, bool allow_root, char **error_r)
{
	const struct ts_cfg_sect *core = ts_cfg_find(k->cfg, "core", NULL);
	const char *user = ts_cfg_str(core, "user");
	const char *data_dir = ts_cfg_str(core, "data_dir");

	if (geteuid() != 0) {
		if (user != NULL)
			ts_log(&k->kctx, TS_LOG_INFO,
			       "not started as root: running as uid=%u, "
			       "[core] user=%s not applied",
			       (unsigned)geteuid(), user);
		return ts_serve_prepare_data_dir(data_dir, (uid_t)-1, (gid_t)-1,
						 error_r);
	}
	if (user == NULL || *user == '\0') {
		if (!allow_root && !ts_cfg_bool(core, "allow_root")) {
			*error_r = ts_xstrdup(
				"refusing to run as root: set [core] user "
				"(e.g. user = tessera), or allow_root = yes "
				"or --allow-root to insist");
			return TS_E_INVAL;
		}
		ts_log(&k->kctx, TS_LOG_WARN,
		       "running as root because allow_root is set");
		return ts_serve_prepare_data_dir(data_dir, (uid_t)-1, (gid_t)-1,
						 error_r);
	}
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = ts_xasprintf("%s: no such user '%s'",
					ts_cfg_where(core, "user"), user);
		return TS_E_INVAL;
	}
	int rc = ts_serve_prepare_data_dir(data_dir, pw->pw_uid, pw->pw_gid,
					   error_r);
	if (rc != 0)
		return rc;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		*error_r = ts_xasprintf("cannot switch to user %s: %s", user,
					strerror(errno));
		return TS_E_IO;
	}
	/* Paranoia: a successful drop cannot be undone. */
	if (setuid(0) == 0) {
		*error_r = ts_xstrdup("privilege drop failed: could regain "
				      "root");
		return TS_E_IO;
	}
	ts_log(&k->kctx, TS_LOG_INFO, "dropped privileges user=%s uid=%u", user,
	       (unsigned)pw->pw_uid);
	return 0;
}

/* --- stopping ------------------------------------------------------------ */

static void
ts_serve_finish(struct ts_kernel *k)
{
	if (k->grace_timer_live) {
		uv_timer_stop(&k->grace_timer);
		uv_close((uv_handle_t *)&k->grace_timer, NULL);
		k->grace_timer_live = false;
	}
	struct ts_serve *srv = (struct ts_serve *)k;
	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
	uv_close((uv_handle_t *)&srv->sighup, NULL);
	ts__control_stop(k);
	/*
	 * Modules release their timers and handles in shutdown; the loop
	 * then ends by itself once nothing is left (pending pool work
	 * included).
	 */
	ts__boot_shutdown(k);
	ts_log(&k->kctx, TS_LOG_INFO, "tessera stopped");
}

void
ts__serve_conn_gone(struct ts_kernel *k)
{
	if (k->phase == TS__PHASE_STOP && k->conn_count == 0 &&
	    k->grace_timer_live)
		ts_serve_finish(k);
}

static void
ts_serve_grace_expired(uv_timer_t *timer)
{
	struct ts_kernel *k = timer->data;
	ts_log(&k->kctx, TS_LOG_WARN,
	       "shutdown grace expired, closing sessions count=%zu",
	       k->conn_count);
	ts__conns_abort(k, "shutdown grace expired");
}

void
ts__serve_stop(struct ts_kernel *k, const char *why)
{
	if (k->phase == TS__PHASE_STOP)
		return;
	k->phase = TS__PHASE_STOP;
	ts_log(&k->kctx, TS_LOG_INFO,
	       "stopping reason=%s sessions=%zu grace=%llums", why,
	       k->conn_count, (unsigned long long)k->shutdown_grace_ms);
	ts__listeners_stop(k);
	ts__queue_stop(k);
	uv_timer_init(k->loop, &k->grace_timer);
	k->grace_timer.data = k;
	k->grace_timer_live = true;
	uv_timer_start(&k->grace_timer, ts_serve_grace_expired,
		       k->shutdown_grace_ms, 0);
	ts__conns_shutdown(k);
	if (k->conn_count == 0)
		ts_serve_finish(k);
}

/* --- reload --------------------------------------------------------------- */

static bool
ts_serve_same_modules(const struct ts_kernel *k, const struct ts__boot *b,
		      char **diff_r)
{
	bool same = b->enabled_count == k->module_count;
	for (size_t i = 0; same && i < k->module_count; i++) {
		bool found = false;
		for (size_t j = 0; j < b->enabled_count; j++)
			if (strcmp(k->modules[i]->name, b->enabled[j]->name) ==
			    0)
				found = true;
		same = found;
	}
	if (!same)
		*diff_r = ts__module_names(b->enabled, b->enabled_count);
	return same;
}

static char *
ts_serve_join_errors(const struct ts_cfg *cfg)
{
	char *text = ts_xstrdup("");
	for (size_t i = 0; i < cfg->error_count; i++) {
		char *next = ts_xasprintf("%s%s\n", text, cfg->errors[i]);
		free(text);
		text = next;
	}
	return text;
}

int
ts__serve_reload(struct ts_kernel *k, char **error_r)
{
	struct ts__boot b;
	int rc = ts__boot_load(k->cfg->main_path, &b);
	char *diff = NULL;
	if (rc == 0 && !ts_serve_same_modules(k, &b, &diff)) {
		ts__cfg_error(b.cfg, NULL,
			      "changing which modules are loaded needs a "
			      "restart (enabled now: %s)",
			      diff);
		rc = TS_E_INVAL;
	}
	free(diff);
	if (rc == 0) {
		/* The running modules judge the new config. */
		rc = ts__boot_check(k, b.cfg);
		if (rc == 0)
			rc = ts__listeners_check(k, b.cfg);
	}
	if (rc != 0) {
		*error_r = ts_serve_join_errors(b.cfg);
		for (size_t i = 0; i < b.cfg->error_count; i++)
			ts_log(&k->kctx, TS_LOG_ERROR, "reload refused: %s",
			       b.cfg->errors[i]);
		ts_log(&k->kctx, TS_LOG_ERROR,
		       "reload refused, keeping the running configuration "
		       "errors=%zu",
		       b.cfg->error_count);
		ts__boot_free(&b);
		return TS_E_INVAL;
	}
	struct ts_cfg *old = k->cfg;
	k->cfg = b.cfg;
	b.cfg = NULL;
	ts__boot_free(&b);
	char *error = NULL;
	if (ts__boot_apply_core(k, k->cfg, &error) != 0) {
		ts_log(&k->kctx, TS_LOG_ERROR, "reload: %s", error);
		free(error);
	}
	if (ts__accounts_apply(k, k->cfg) != 0)
		ts_log(&k->kctx, TS_LOG_ERROR, "reload: accounts not applied");
	if (ts__dns_configure(k, k->cfg, &error) != 0) {
		ts_log(&k->kctx, TS_LOG_ERROR, "reload: dns: %s", error);
		free(error);
		error = NULL;
	}
	ts__queue_reload(k);
	if (ts__listeners_reload_tls(k, &error) != 0) {
		ts_log(&k->kctx, TS_LOG_ERROR,
		       "reload: tls certificates kept: %s", error);
		free(error);
		error = NULL;
	}
	for (size_t i = 0; i < k->module_count; i++) {
		struct ts__module *mod = k->modules[i];
		if (mod->desc->reload == NULL)
			continue;
		int mrc = mod->desc->reload(&mod->ctx, k->cfg);
		if (mrc != 0)
			ts_log(&k->kctx, TS_LOG_ERROR,
			       "module reload failed module=%s error=\"%s\"",
			       mod->name, ts_strerror(mrc));
	}
	ts__cfg_free(&old);
	ts_log(&k->kctx, TS_LOG_INFO,
	       "configuration reloaded (listener changes need a restart)");
	return 0;
}

/* --- signals and main --------------------------------------------------- */

static void
ts_serve_signal(uv_signal_t *handle, int signum)
{
	struct ts_kernel *k = handle->data;
	if (signum == SIGHUP) {
		ts_log(&k->kctx, TS_LOG_INFO,
		       "SIGHUP: reloading configuration");
		char *error = NULL;
		ts__serve_reload(k, &error);
		free(error);
		return;
	}
	ts__serve_stop(k, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
ts_serve_signals(struct ts_serve *srv)
{
	uv_signal_t *handles[] = { &srv->sigterm, &srv->sigint, &srv->sighup };
	int signums[] = { SIGTERM, SIGINT, SIGHUP };
	for (size_t i = 0; i < 3; i++) {
		uv_signal_init(&srv->loop, handles[i]);
		handles[i]->data = &srv->kernel;
		uv_signal_start(handles[i], ts_serve_signal, signums[i]);
		/* Signals must not keep the loop alive once we are done. */
		uv_unref((uv_handle_t *)handles[i]);
	}
}

/*
 * Every connection is a descriptor: take the hard limit, so thousands of
 * idle sessions do not hit the soft default of 1024.
 */
static void
ts_serve_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
ts_serve_close_walk(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

int
ts__serve(const struct ts__serve_opts *opts)
{
	struct ts_serve *srv = ts_xcalloc(1, sizeof(*srv));
	struct ts_kernel *k = &srv->kernel;
	uv_loop_init(&srv->loop);
	signal(SIGPIPE, SIG_IGN);

	ts_serve_raise_fd_limit();
	int status = 1;
	if (ts__boot_kernel(k, &srv->loop, opts->config_path, true,
			    TS_LOG_TRACEDATA) != 0)
		goto out_loop;

	char *error = NULL;
	if (ts__listeners_start(k, &error) != 0 ||
	    ts_serve_drop_privileges(k, opts->allow_root, &error) != 0 ||
	    ts__control_start(k, &error) != 0 ||
	    ts__queue_start(k, &error) != 0) {
		fprintf(stderr, "tessera: %s\n", error);
		ts_log(&k->kctx, TS_LOG_ERROR, "cannot start: %s", error);
		free(error);
		ts__listeners_stop(k);
		ts__control_stop(k);
		ts__boot_teardown(k);
		goto out_loop;
	}
	ts_serve_signals(srv);
	k->phase = TS__PHASE_RUN;
	ts_log(&k->kctx, TS_LOG_INFO,
	       "tessera started version=%s pid=%ld modules=%zu listeners=%zu",
	       PACKAGE_VERSION, (long)getpid(), k->module_count,
	       k->listener_count);

	uv_run(&srv->loop, UV_RUN_DEFAULT);
	status = 0;
	ts__boot_teardown(k);

out_loop:
	uv_walk(&srv->loop, ts_serve_close_walk, NULL);
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&srv->loop) != 0)
		fprintf(stderr, "tessera: event loop closed with live "
				"handles\n");
	free(srv);
	return status;
}
