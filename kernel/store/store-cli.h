/*
 * kernel/store/store-cli.h — what the store's CLI commands share
 * (store-cli.c): option parsing, loading the configuration to learn the
 * data directory and the accounts, small SQLite helpers, and the text
 * forms of flags used by import and export.
 */
#ifndef TESSERA_STORE_CLI_H
#define TESSERA_STORE_CLI_H

#include <sqlite3.h>

#include "kernel/kernel.h"

#define TS__STORE_CLI_USAGE 2

/* Parsed command line of a store command. */
struct ts__store_cli_opts {
	const char *config;
	const char *special_use; /* --special-use VALUE (mailbox create) */
	char *words[8];
	int word_count;
};

/*
 * Parse -c FILE (--config FILE, --config=FILE), -h/--help and, when
 * `special_use_ok`, --special-use VALUE; collect positional words.
 * Returns -1 to go on, or the exit status (0 after --help, 2 for a usage
 * error, with the usage printed).
 */
int ts__store_cli_parse(int argc, char **argv, const char *usage,
			bool special_use_ok, struct ts__store_cli_opts *o);
/* Print "tessera: <fmt…>" and the usage to stderr; returns 2. */
int ts__store_cli_usage(const char *usage, const char *fmt, ...)
	TS_PRINTF(2, 3);
/* Print "tessera: <fmt…>" to stderr; returns 1. */
int ts__store_cli_fail(const char *fmt, ...) TS_PRINTF(1, 2);

/* A loaded configuration (no modules initialised). */
struct ts__store_cli {
	uv_loop_t loop;
	struct ts_kernel k;
	const char *data_dir;
	bool booted;
};

/* Load and check the configuration.  Returns 0, or 1 with errors printed. */
int ts__store_cli_boot(struct ts__store_cli *c, const char *config);
/* Whether `account` is configured; prints an error when not. */
bool ts__store_cli_account_known(struct ts__store_cli *c, const char *account);
/* Undo ts__store_cli_boot (safe when it failed). */
void ts__store_cli_end(struct ts__store_cli *c);

/* Run SQL without parameters; TS_E_IO with *error_r (caller frees). */
int ts__store_cli_exec(sqlite3 *db, const char *sql, char **error_r);

/* Every TS_FLAG_* bit the store knows. */
#define TS__STORE_FLAG_KNOWN 0x7fu

/*
 * Whether `keyword` is usable as an IMAP keyword (an atom without
 * '\\'; at most 64 bytes).
 */
bool ts__store_cli_keyword_ok(const char *keyword);

#endif
