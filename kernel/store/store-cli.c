/*
 * kernel/store/store-cli.c — the plumbing shared by `tessera mailbox`,
 * `import`, `export` and `verifydata`: their option parser, loading the
 * configuration (to learn [core] data_dir and the configured accounts;
 * no module is initialised), and a few SQLite and keyword helpers.
 *
 * The commands themselves live in mailbox-cmd.c, import.c, export.c and
 * verify.c; the store's synchronous core (store-private.h) does the work.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/boot.h"
#include "kernel/store/store-cli.h"

int
ts__store_cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tessera: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: tessera %s\n", usage);
	return TS__STORE_CLI_USAGE;
}

int
ts__store_cli_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tessera: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

int
ts__store_cli_parse(int argc, char **argv, const char *usage,
		    bool special_use_ok, struct ts__store_cli_opts *o)
{
	bool help = false;

	memset(o, 0, sizeof(*o));
	o->config = getenv("TESSERA_CONFIG");
	if (o->config == NULL || *o->config == '\0')
		o->config = TS_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return ts__store_cli_usage(
					usage, "option %s needs a file", a);
			o->config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			o->config = a + 9;
		} else if (special_use_ok && strcmp(a, "--special-use") == 0) {
			if (i + 1 >= argc)
				return ts__store_cli_usage(
					usage, "option %s needs a value", a);
			o->special_use = argv[++i];
		} else if (special_use_ok &&
			   strncmp(a, "--special-use=", 14) == 0) {
			o->special_use = a + 14;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help = true;
		} else if (strcmp(a, "--") == 0) {
			/* Everything after -- is a word (a name like "-x"). */
			for (i++; i < argc; i++) {
				if (o->word_count >= 8)
					return ts__store_cli_usage(
						usage, "too many arguments");
				o->words[o->word_count++] = argv[i];
			}
		} else if (a[0] == '-' && a[1] != '\0') {
			return ts__store_cli_usage(usage, "unknown option %s",
						   a);
		} else if (o->word_count < 8) {
			o->words[o->word_count++] = argv[i];
		} else {
			return ts__store_cli_usage(usage, "too many arguments");
		}
	}
	if (help) {
		printf("usage: tessera %s\n", usage);
		return 0;
	}
	return -1;
}

int
ts__store_cli_boot(struct ts__store_cli *c, const char *config)
{
	memset(c, 0, sizeof(*c));
	uv_loop_init(&c->loop);
	if (ts__boot_kernel(&c->k, &c->loop, config, false, TS_LOG_WARN) != 0)
		return 1;
	c->booted = true;
	const struct ts_cfg_sect *core = ts_cfg_find(c->k.cfg, "core", NULL);
	c->data_dir = ts_cfg_str(core, "data_dir");
	if (c->data_dir == NULL || *c->data_dir == '\0')
		return ts__store_cli_fail("%s: [core] data_dir is not set",
					  config);
	return 0;
}

bool
ts__store_cli_account_known(struct ts__store_cli *c, const char *account)
{
	const char *name;
	for (size_t i = 0; (name = ts_account_name(&c->k.kctx, i)) != NULL; i++)
		if (strcmp(name, account) == 0)
			return true;
	ts__store_cli_fail("no account '%s' in the configuration", account);
	return false;
}

void
ts__store_cli_end(struct ts__store_cli *c)
{
	if (c->booted)
		ts__boot_teardown(&c->k);
	c->booted = false;
	uv_run(&c->loop, UV_RUN_NOWAIT);
	uv_loop_close(&c->loop);
}

int
ts__store_cli_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	*error_r = ts_xasprintf("sqlite: %s: %s", sql,
				msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return TS_E_IO;
}

bool
ts__store_cli_keyword_ok(const char *keyword)
{
	size_t len = strlen(keyword);
	if (len == 0 || len > 64)
		return false;
	for (const unsigned char *p = (const unsigned char *)keyword; *p; p++) {
		/* RFC 3501 atom-specials, '\\' (system flags) and 8-bit. */
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	}
	return true;
}
