/*
 * kernel/store/account-cmd.c — `tessera account list|add|del|passwd`.
 *
 * Accounts themselves are configuration ([account NAME] sections, usually
 * in domains.d/); these commands manage what lives on disk for them: the
 * store (accounts/NAME/ under [core] data_dir) and its password secrets.
 * They load the configuration like `config check` does (no module is
 * initialised) and work on the files directly; SQLite's locking lets them
 * run beside a serving tessera.  Exit status: 0 ok, 1 error, 2 usage.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "kernel/boot.h"
#include "kernel/store/accounts.h"
#include "kernel/store/commands.h"
#include "kernel/store/store-private.h"

#define ACCOUNT_EXIT_USAGE 2
/* Longest password line read (the store refuses more than 1024 bytes). */
#define ACCOUNT_PASSWORD_MAX 4096

static const char account_usage[] =
	"account list [-c FILE]\n"
	"       tessera account add NAME [-c FILE]\n"
	"       tessera account del NAME --yes [-c FILE]\n"
	"       tessera account passwd NAME [-c FILE]\n"
	"       tessera account help";

static int account_fail(const char *fmt, ...) TS_PRINTF(1, 2);
static int account_usage_error(const char *fmt, ...) TS_PRINTF(1, 2);

/* "tessera: …" on stderr; exit status 1. */
static int
account_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tessera: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

/* "tessera: …" and the usage on stderr; exit status 2. */
static int
account_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tessera: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: tessera %s\n", account_usage);
	return ACCOUNT_EXIT_USAGE;
}

struct account_opts {
	const char *config;
	bool yes;
	bool help;
	const char *words[3];
	int word_count;
};

/* Parse -c FILE, --config[=]FILE, --yes, -h; -1 to go on, else status. */
static int
account_parse(int argc, char **argv, struct account_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->config = getenv("TESSERA_CONFIG");
	if (o->config == NULL || *o->config == '\0')
		o->config = TS_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return account_usage_error(
					"option %s needs a file", a);
			o->config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			o->config = a + 9;
		} else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
			o->yes = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = true;
		} else if (a[0] == '-' && a[1] != '\0') {
			return account_usage_error("unknown option %s", a);
		} else if (o->word_count < 3) {
			o->words[o->word_count++] = a;
		} else {
			return account_usage_error("unexpected argument '%s'",
						   a);
		}
	}
	return -1;
}

/* The configuration loaded for one command. */
struct account_env {
	uv_loop_t loop;
	struct ts_kernel k;
	const char *data_dir;
	bool booted;
};

static int
account_boot(struct account_env *env, const char *config)
{
	memset(env, 0, sizeof(*env));
	uv_loop_init(&env->loop);
	if (ts__boot_kernel(&env->k, &env->loop, config, false, TS_LOG_WARN) !=
	    0)
		return 1;
	env->booted = true;
	env->data_dir =
		ts_cfg_str(ts_cfg_find(env->k.cfg, "core", NULL), "data_dir");
	if (env->data_dir == NULL || *env->data_dir == '\0')
		return account_fail("%s: [core] data_dir is not set", config);
	return 0;
}

static void
account_end(struct account_env *env)
{
	if (env->booted)
		ts__boot_teardown(&env->k);
	env->booted = false;
	uv_run(&env->loop, UV_RUN_NOWAIT);
	uv_loop_close(&env->loop);
}

/* Path of the account's database (caller frees). */
static char *
account_db_path(const struct account_env *env, const char *name)
{
	char *dir = ts__store_account_dir(env->data_dir, name);
	char *path = ts_xasprintf("%s/index.db", dir);

	free(dir);
	return path;
}

static bool
account_store_exists(const struct account_env *env, const char *name)
{
	char *path = account_db_path(env, name);
	bool exists = access(path, F_OK) == 0;

	free(path);
	return exists;
}

/* A configured account, or an error message with the hint; 1 when not. */
static int
account_require(const struct account_env *env, const char *config,
		const char *name)
{
	if (ts__account_exists(&env->k, name))
		return 0;
	return account_fail("no account '%s' in %s: add an [account %s] "
			    "section (in domains.d/, say) first",
			    name, config, name);
}

/* --- list ------------------------------------------------------------ */

/* Whether the account has a password: "yes", "no", or "?" on error. */
static const char *
account_password_state(const struct account_env *env, const char *name)
{
	sqlite3 *db = NULL;
	char *error = NULL;
	bool set = false;
	const char *state = "?";

	if (ts__store_db_open(env->data_dir, name, &db, &error) != 0) {
		fprintf(stderr, "tessera: account %s: %s\n", name, error);
		free(error);
		return state;
	}
	if (ts__credentials_exist(db, &set) == 0)
		state = set ? "yes" : "no";
	ts__store_db_close(&db);
	return state;
}

static int
account_list(const struct account_env *env)
{
	const struct ts_ctx *ctx = &env->k.kctx;
	size_t width = strlen("ACCOUNT");
	const char *name;

	for (size_t i = 0; (name = ts_account_name(ctx, i)) != NULL; i++)
		if (strlen(name) > width)
			width = strlen(name);
	printf("%-*s  STORE  PASSWORD  ADDRESSES\n", (int)width, "ACCOUNT");
	for (size_t i = 0; (name = ts_account_name(ctx, i)) != NULL; i++) {
		bool store = account_store_exists(env, name);
		printf("%-*s  %-5s  %-8s ", (int)width, name,
		       store ? "yes" : "no",
		       store ? account_password_state(env, name) : "no");
		const struct ts_cfg_sect *s =
			ts_cfg_find(env->k.cfg, "account", name);
		size_t n = s != NULL ? ts_cfg_list_len(s, "addresses") : 0;
		for (size_t j = 0; j < n; j++)
			printf(" %s", ts_cfg_list_item(s, "addresses", j));
		if (ts__account_is_postmaster(&env->k, name))
			printf(" (postmaster)");
		printf("\n");
	}
	return 0;
}

/* --- add, del -------------------------------------------------------- */

static int
account_add(const struct account_env *env, const char *config, const char *name)
{
	if (account_require(env, config, name) != 0)
		return 1;
	char *dir = ts__store_account_dir(env->data_dir, name);
	if (account_store_exists(env, name)) {
		account_fail("account %s already has a store (%s)", name, dir);
		free(dir);
		return 1;
	}
	sqlite3 *db = NULL;
	char *error = NULL;
	if (ts__store_db_open(env->data_dir, name, &db, &error) != 0) {
		account_fail("account %s: %s", name, error);
		free(error);
		free(dir);
		return 1;
	}
	ts__store_db_close(&db);
	printf("account %s: store created in %s\n", name, dir);
	free(dir);
	return 0;
}

/*
 * Remove everything inside directory fd `dir` (named `path` for errors),
 * depth first, without following symbolic links.  Returns 0 or -1.
 */
static int
account_remove_tree(int dir, const char *path)
{
	DIR *d = fdopendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		close(dir);
		fprintf(stderr, "tessera: cannot read %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = ts_xasprintf("%s/%s", path, de->d_name);
		int fd =
			openat(dirfd(d), de->d_name,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			if (account_remove_tree(fd, sub) != 0)
				rc = -1;
			else if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) !=
				 0)
				goto fail;
		} else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
			goto fail;
		}
		free(sub);
		continue;
	fail:
		fprintf(stderr, "tessera: cannot remove %s: %s\n", sub,
			strerror(errno));
		free(sub);
		rc = -1;
	}
	closedir(d);
	return rc;
}

/* Remove directory `path` and everything in it. */
static int
account_remove_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && account_remove_tree(fd, path) != 0)
		return -1; /* reported */
	if (fd < 0 || rmdir(path) != 0) {
		fprintf(stderr, "tessera: cannot remove %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Remove the store.  The name need not be configured any more (removing
 * an account from the configuration first is the usual order), but it
 * must be a valid account name, so it cannot point outside accounts/.
 */
static int
account_del(const struct account_env *env, const char *name, bool yes)
{
	if (!ts__account_name_ok(name))
		return account_fail("'%s' is not a valid account name", name);
	char *dir = ts__store_account_dir(env->data_dir, name);
	struct stat st;
	int rc = 1;

	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		account_fail("account %s has no store (%s)", name, dir);
	} else if (!yes) {
		fprintf(stderr,
			"tessera: account del %s removes %s and every "
			"message in it; add --yes to confirm\n",
			name, dir);
		rc = ACCOUNT_EXIT_USAGE;
	} else if (account_remove_dir(dir) != 0) {
		account_fail("account %s: store only partly removed (%s)", name,
			     dir);
	} else {
		printf("account %s: store %s removed%s\n", name, dir,
		       ts__account_exists(&env->k, name)
			       ? " (the [account] section is still "
				 "configured)"
			       : "");
		rc = 0;
	}
	free(dir);
	return rc;
}

/* --- passwd ---------------------------------------------------------- */

/*
 * Read one line from fp into buf (at most size - 1 bytes, without the
 * line end).  Returns 0, or -1 at end of input / on a line too long.
 */
static int
account_read_line(FILE *fp, char *buf, size_t size)
{
	if (fgets(buf, (int)size, fp) == NULL)
		return -1;
	size_t len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (!feof(fp))
		return -1; /* longer than the buffer */
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return 0;
}

/* Prompt on stderr and read a line from the terminal without echo. */
static int
account_read_hidden(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;

	/*
	 * Echo goes off before the prompt appears, and without flushing:
	 * a fast typist (or a script) answering the prompt at once must be
	 * neither echoed nor lost.
	 */
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &quiet) != 0)
		return -1;
	fputs(prompt, stderr);
	fflush(stderr);
	int rc = account_read_line(stdin, buf, size);
	(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
	return rc;
}

/*
 * The new password: typed twice on a terminal, or one line of stdin when
 * it is not one.  Returns 0 with buf filled, or an exit status.
 */
static int
account_get_password(const char *name, char *buf, char *again, size_t size)
{
	if (!isatty(STDIN_FILENO)) {
		if (account_read_line(stdin, buf, size) != 0)
			return account_fail("account %s: no password line on "
					    "standard input (or longer than "
					    "%d bytes)",
					    name, ACCOUNT_PASSWORD_MAX - 1);
		return 0;
	}
	char *prompt = ts_xasprintf("New password for %s: ", name);
	int rc = account_read_hidden(prompt, buf, size);
	free(prompt);
	if (rc != 0)
		return account_fail("account %s: cannot read the password",
				    name);
	if (buf[0] == '\0')
		return 0; /* refused by the caller, without asking again */
	if (account_read_hidden("Retype it: ", again, size) != 0)
		return account_fail("account %s: cannot read the password",
				    name);
	if (strcmp(buf, again) != 0)
		return account_fail("account %s: the passwords differ; "
				    "nothing changed",
				    name);
	return 0;
}

static int
account_passwd(const struct account_env *env, const char *config,
	       const char *name)
{
	if (account_require(env, config, name) != 0)
		return 1;
	char *buf = ts_xcalloc(2, ACCOUNT_PASSWORD_MAX);
	char *again = buf + ACCOUNT_PASSWORD_MAX;
	int rc = account_get_password(name, buf, again, ACCOUNT_PASSWORD_MAX);

	if (rc == 0 && buf[0] == '\0')
		rc = account_fail("account %s: empty password refused; "
				  "nothing changed",
				  name);
	if (rc == 0) {
		sqlite3 *db = NULL;
		char *error = NULL;
		bool created = !account_store_exists(env, name);
		if (ts__store_db_open(env->data_dir, name, &db, &error) != 0 ||
		    ts__credentials_set(db, buf, &error) != 0) {
			rc = account_fail("account %s: %s", name, error);
			free(error);
		} else {
			printf("account %s: password set%s\n", name,
			       created ? " (store created)" : "");
		}
		ts__store_db_close(&db);
	}
	explicit_bzero(buf, 2 * ACCOUNT_PASSWORD_MAX);
	free(buf);
	return rc;
}

/* --- dispatch -------------------------------------------------------- */

int
ts__cmd_account(int argc, char **argv)
{
	struct account_opts o;
	int rc = account_parse(argc, argv, &o);

	if (rc >= 0)
		return rc;
	const char *sub = o.word_count > 0 ? o.words[0] : NULL;
	if (o.help || (sub != NULL && strcmp(sub, "help") == 0)) {
		printf("usage: tessera %s\n\n"
		       "  list    configured accounts: store, password, "
		       "addresses\n"
		       "  add     create the store of a configured account\n"
		       "  del     remove an account's store and messages "
		       "(needs --yes)\n"
		       "  passwd  set the password (typed twice, or one line "
		       "on stdin)\n"
		       "\nAccounts are [account NAME] sections of the "
		       "configuration (domains.d/).\n",
		       account_usage);
		return 0;
	}
	if (sub == NULL)
		return account_usage_error("missing subcommand");

	bool list = strcmp(sub, "list") == 0;
	if (!list && strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0 &&
	    strcmp(sub, "passwd") != 0)
		return account_usage_error("unknown subcommand '%s'", sub);
	if (list && o.word_count != 1)
		return account_usage_error("unexpected argument '%s'",
					   o.words[1]);
	if (!list && o.word_count != 2)
		return o.word_count < 2
			       ? account_usage_error("account %s needs NAME",
						     sub)
			       : account_usage_error("unexpected argument "
						     "'%s'",
						     o.words[2]);
	if (o.yes && strcmp(sub, "del") != 0)
		return account_usage_error("--yes is only for account del");

	struct account_env env;
	rc = account_boot(&env, o.config);
	if (rc == 0) {
		const char *name = o.words[1];
		if (list)
			rc = account_list(&env);
		else if (strcmp(sub, "add") == 0)
			rc = account_add(&env, o.config, name);
		else if (strcmp(sub, "del") == 0)
			rc = account_del(&env, name, o.yes);
		else
			rc = account_passwd(&env, o.config, name);
	}
	account_end(&env);
	return rc;
}
