/*
 * tessera/cli.h — subcommands that modules add to the `tessera` binary.
 *
 * `tessera NAME args…` loads the configuration and every enabled module
 * (running their init, but starting no listener), then calls the command
 * registered as NAME.  Commands write to stdout/stderr and return the exit
 * status.  Built-in commands cannot be overridden.
 */
#ifndef TESSERA_CLI_H
#define TESSERA_CLI_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is the command name; returns the process exit status. */
typedef int (*ts_cli_fn)(struct ts_ctx *ctx, int argc, char **argv);

/*
 * Register `tessera NAME`.  `summary` is one line for `tessera help`,
 * `usage` the argument synopsis ("[-v] ADDRESS").  Only during init.
 * Returns 0, TS_E_EXIST, TS_E_INVAL (bad name) or TS_E_STATE.
 */
int ts_cli_add(struct ts_ctx *ctx, const char *name, const char *summary,
	       const char *usage, ts_cli_fn fn);

#ifdef __cplusplus
}
#endif
#endif
