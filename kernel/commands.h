/*
 * kernel/commands.h — the built-in `tessera` subcommands.
 */
#ifndef TESSERA_COMMANDS_H
#define TESSERA_COMMANDS_H

#include <stdbool.h>

/* Whether `name` is a built-in command (modules may not take it). */
bool ts__command_is_builtin(const char *name);

/*
 * `tessera sendmail` (kernel/sendmail.c); argv[0] is "sendmail".
 * Returns a <sysexits.h> status.
 */
int ts__cmd_sendmail(int argc, char **argv);

/* The whole command line; returns the process exit status. */
int ts__main(int argc, char **argv);

#endif
