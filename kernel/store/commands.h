/*
 * kernel/store/commands.h — the store's built-in CLI commands.
 *
 * Each takes the command's argv (argv[0] is the command name) and returns
 * the exit status: 0 ok, 1 error, 2 usage.  They load the configuration
 * themselves (-c FILE) and work on the files directly; SQLite's locking
 * lets them run beside a serving tessera.
 */
#ifndef TESSERA_STORE_COMMANDS_H
#define TESSERA_STORE_COMMANDS_H

int ts__cmd_account(int argc, char **argv);    /* account-cmd.c */
int ts__cmd_mailbox(int argc, char **argv);    /* mailbox-cmd.c */
int ts__cmd_import(int argc, char **argv);     /* import.c */
int ts__cmd_export(int argc, char **argv);     /* export.c */
int ts__cmd_verifydata(int argc, char **argv); /* verify.c */

#endif
