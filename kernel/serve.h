/*
 * kernel/serve.h — running the server: start, reload, graceful stop.
 */
#ifndef TESSERA_SERVE_H
#define TESSERA_SERVE_H

#include "kernel/kernel.h"

struct ts__serve_opts {
	const char *config_path;
	bool allow_root; /* --allow-root on the command line */
};

/* Run `tessera serve` until stopped; returns the exit status. */
int ts__serve(const struct ts__serve_opts *opts);

/*
 * Re-read the configuration and apply it if every check passes; otherwise
 * keep the running one.  Returns 0 or TS_E_INVAL; *error_r (caller frees)
 * gets every error line on failure.
 */
int ts__serve_reload(struct ts_kernel *k, char **error_r);

/* Begin a graceful stop (SIGTERM, control socket). */
void ts__serve_stop(struct ts_kernel *k, const char *why);

/* A connection was freed: finish a pending stop once none are left. */
void ts__serve_conn_gone(struct ts_kernel *k);

/* --- control socket (control.c) --- */

/* Default path of the control socket for a config. */
char *ts__control_path(const struct ts_cfg *cfg);
/* Listen on the control socket; returns 0 or TS_E_IO with *error_r. */
int ts__control_start(struct ts_kernel *k, char **error_r);
void ts__control_stop(struct ts_kernel *k);
/*
 * Client side: send one command line to a running server and print its
 * answer.  Returns the exit status (0 when it answered "ok …").
 */
int ts__control_send(const char *socket_path, const char *command);

#endif
