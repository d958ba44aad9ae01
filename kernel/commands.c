/*
 * kernel/commands.c — the built-in subcommands and the command dispatcher.
 *
 * `tessera COMMAND [options]`: serve, localserve, config check, module
 * list, status, reload, stop, version, help, plus whatever enabled modules
 * register with ts_cli_add.  Usage errors (unknown command or option) print a
 * usage line and exit 2; configuration errors exit 1.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/boot.h"
#include "kernel/commands.h"
#include "kernel/serve.h"
#include "kernel/store/commands.h"
#include "kernel/store/store-private.h"

#define TS_EXIT_USAGE 2
#define TS_QUEUE_USAGE \
	"queue list | hold|release|kick|drop ID|--all | " \
	"requiretls ID yes|no|default"
#define TS_LOCALSERVE_USAGE \
	"localserve [--dir DIR] [--port-base N] [--allow-root]"

struct ts_command {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static int ts_cmd_help(int argc, char **argv);
static int ts_cmd_version(int argc, char **argv);
static int ts_cmd_serve(int argc, char **argv);
static int ts_cmd_localserve(int argc, char **argv);
static int ts_cmd_config(int argc, char **argv);
static int ts_cmd_module(int argc, char **argv);
static int ts_cmd_control(int argc, char **argv);

static const struct ts_command ts_commands[] = {
	{ "serve", "serve [-c FILE] [--allow-root]",
	  "run the mail server in the foreground", ts_cmd_serve },
	{ "localserve", TS_LOCALSERVE_USAGE,
	  "run a ready development mail server on 127.0.0.1",
	  ts_cmd_localserve },
	{ "config", "config check [-c FILE]",
	  "validate the configuration and every enabled module's settings",
	  ts_cmd_config },
	{ "module", "module list [--hooks] [-c FILE]",
	  "list configured modules, what they registered, hook order",
	  ts_cmd_module },
	{ "account", "account add|del|list|passwd …",
	  "manage accounts' stores and passwords (see tessera account help)",
	  ts__cmd_account },
	{ "mailbox", "mailbox list|create|rename|delete ACCOUNT …",
	  "manage an account's mailboxes", ts__cmd_mailbox },
	{ "import", "import mbox|maildir ACCOUNT MAILBOX PATH",
	  "import messages with their flags and keywords", ts__cmd_import },
	{ "export", "export mbox|maildir ACCOUNT DIR",
	  "export an account's mailboxes", ts__cmd_export },
	{ "verifydata", "verifydata [-c FILE]",
	  "check every invariant of every account's store",
	  ts__cmd_verifydata },
	{ "status", "status [-c FILE]", "ask the running server how it is",
	  ts_cmd_control },
	{ "reload", "reload [-c FILE]",
	  "make the running server re-read its configuration", ts_cmd_control },
	{ "stop", "stop [-c FILE]", "stop the running server gracefully",
	  ts_cmd_control },
	{ "queue", TS_QUEUE_USAGE,
	  "list or act on the running server's outbound queue",
	  ts_cmd_control },
	{ "sendmail",
	  "sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [RCPT…]",
	  "submit a message from stdin to the [sendmail] server",
	  ts__cmd_sendmail },
	{ "version", "version", "print the version and plugin ABI",
	  ts_cmd_version },
	{ "help", "help [COMMAND]", "show commands, or one command's usage",
	  ts_cmd_help },
};
#define TS_COMMAND_COUNT (sizeof(ts_commands) / sizeof(ts_commands[0]))

bool
ts__command_is_builtin(const char *name)
{
	for (size_t i = 0; i < TS_COMMAND_COUNT; i++)
		if (strcmp(ts_commands[i].name, name) == 0)
			return true;
	return false;
}

static const struct ts_command *
ts_command_find(const char *name)
{
	for (size_t i = 0; i < TS_COMMAND_COUNT; i++)
		if (strcmp(ts_commands[i].name, name) == 0)
			return &ts_commands[i];
	return NULL;
}

static int
ts_usage_error(const char *usage, const char *fmt, const char *what)
{
	fprintf(stderr, "tessera: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\nusage: tessera %s\n", usage);
	return TS_EXIT_USAGE;
}

/*
 * Options shared by commands.  Parses -c FILE, --config FILE,
 * --config=FILE, -h/--help and the flags a command allows; collects
 * positional words.  Returns -1 to go on, or an exit status.
 */
struct ts_opts {
	const char *config;
	bool help;
	bool hooks;
	bool allow_root;
	bool all;
	char *words[8];
	int word_count;
};

static int
ts_parse_opts(int argc, char **argv, const char *usage, const char *flags,
	      struct ts_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->config = getenv("TESSERA_CONFIG");
	if (o->config == NULL || *o->config == '\0')
		o->config = TS_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return ts_usage_error(
					usage, "option %s needs a file", a);
			o->config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			o->config = a + 9;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = true;
		} else if (strcmp(a, "--hooks") == 0 &&
			   strstr(flags, "hooks") != NULL) {
			o->hooks = true;
		} else if (strcmp(a, "--allow-root") == 0 &&
			   strstr(flags, "allow-root") != NULL) {
			o->allow_root = true;
		} else if (strcmp(a, "--all") == 0 &&
			   strstr(flags, "all") != NULL && o->word_count < 8) {
			/* a word, so that it keeps its place after the verb */
			o->all = true;
			o->words[o->word_count++] = argv[i];
		} else if (a[0] == '-' && a[1] != '\0') {
			return ts_usage_error(usage, "unknown option %s", a);
		} else if (o->word_count < 8) {
			o->words[o->word_count++] = argv[i];
		} else {
			return ts_usage_error(usage, "too many arguments%s",
					      "");
		}
	}
	if (o->help) {
		printf("usage: tessera %s\n", usage);
		return 0;
	}
	return -1;
}

/* --- help, version ------------------------------------------------------- */

static void
ts_print_help(FILE *out)
{
	fprintf(out, "usage: tessera COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < TS_COMMAND_COUNT; i++)
		fprintf(out, "  %-34s %s\n", ts_commands[i].usage,
			ts_commands[i].summary);
	fprintf(out,
		"\nEnabled modules may add commands; "
		"`tessera module list` shows them.\n"
		"Every command takes -c FILE (default %s, or "
		"$TESSERA_CONFIG).\n",
		TS_DEFAULT_CONFIG);
}

static int
ts_cmd_help(int argc, char **argv)
{
	struct ts_opts o;
	int rc = ts_parse_opts(argc, argv, "help [COMMAND]", "", &o);
	if (rc >= 0)
		return rc;
	if (o.word_count == 0) {
		ts_print_help(stdout);
		return 0;
	}
	const struct ts_command *cmd = ts_command_find(o.words[0]);
	if (cmd == NULL)
		return ts_usage_error("help [COMMAND]", "unknown command '%s'",
				      o.words[0]);
	printf("usage: tessera %s\n%s\n", cmd->usage, cmd->summary);
	return 0;
}

static int
ts_cmd_version(int argc, char **argv)
{
	struct ts_opts o;
	int rc = ts_parse_opts(argc, argv, "version", "", &o);
	if (rc >= 0)
		return rc;
	if (o.word_count > 0)
		return ts_usage_error("version", "unexpected argument '%s'",
				      o.words[0]);
	printf("tessera %s (plugin ABI %d.%d, build %s)\n", PACKAGE_VERSION,
	       TS_ABI_MAJOR, TS_ABI_MINOR, TS_BUILD_SIGNATURE);
	return 0;
}

/* --- serve, config check ------------------------------------------------ */

static int
ts_cmd_serve(int argc, char **argv)
{
	struct ts_opts o;
	const char *usage = "serve [-c FILE] [--allow-root]";
	int rc = ts_parse_opts(argc, argv, usage, "allow-root", &o);
	if (rc >= 0)
		return rc;
	if (o.word_count > 0)
		return ts_usage_error(usage, "unexpected argument '%s'",
				      o.words[0]);
	struct ts__serve_opts so = {
		.config_path = o.config,
		.allow_root = o.allow_root,
	};
	return ts__serve(&so);
}

/* --- localserve ------------------------------------------------------- */

/* The account, its password and the ports' default base. */
#define TS_LOCALSERVE_ACCOUNT "localserve"
#define TS_LOCALSERVE_PASSWORD "localserve"
#define TS_LOCALSERVE_PORT_BASE 1000

/* mkdir that is happy when the directory is there already. */
static int
ts_localserve_mkdir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "tessera: cannot create %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* Write `text` to DIR/NAME (replacing it); 0 or 1 after a message. */
static int
ts_localserve_write(const char *dir, const char *name, const char *text)
{
	char *path = ts_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	int rc = 0;
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		fprintf(stderr, "tessera: cannot write %s: %s\n", path,
			strerror(errno));
		if (f != NULL)
			fclose(f);
		rc = 1;
	}
	free(path);
	return rc;
}

/*
 * Where smtp.so (and imap.so) may be found: the build tree's module
 * directories when the running binary sits in one (they come first,
 * matching that binary), then the installed module directory.  Caller
 * frees.
 */
static char *
ts_localserve_module_dirs(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL)
			*slash = '\0';
		char *build = ts_xasprintf("%s/modules/smtp/.libs", exe);
		char *imap = ts_xasprintf("%s/modules/imap/.libs", exe);
		struct stat st;
		if (stat(build, &st) == 0 && S_ISDIR(st.st_mode)) {
			char *dirs = stat(imap, &st) == 0 && S_ISDIR(st.st_mode)
					     ? ts_xasprintf("%s %s %s", build,
							    imap, TS_MODULEDIR)
					     : ts_xasprintf("%s %s", build,
							    TS_MODULEDIR);
			free(build);
			free(imap);
			return dirs;
		}
		free(build);
		free(imap);
	}
	return ts_xstrdup(TS_MODULEDIR);
}

/* Whether imap.so is in one of the space-separated module dirs. */
static bool
ts_localserve_has_imap(const char *dirs)
{
	char *copy = ts_xstrdup(dirs);
	bool found = false;
	for (char *d = strtok(copy, " "); d != NULL && !found;
	     d = strtok(NULL, " ")) {
		char *path = ts_xasprintf("%s/imap.so", d);
		found = access(path, R_OK) == 0;
		free(path);
	}
	free(copy);
	return found;
}

/* Write DIR/tessera.ini, domains.d/ and conf.d/; 0 or 1. */
static int
ts_localserve_config(const char *dir, unsigned base, bool allow_root)
{
	char *sub[] = { ts_xasprintf("%s/conf.d", dir),
			ts_xasprintf("%s/domains.d", dir) };
	int rc = ts_localserve_mkdir(sub[0]) || ts_localserve_mkdir(sub[1]);
	free(sub[0]);
	free(sub[1]);
	if (rc != 0)
		return rc;

	char *modules = ts_localserve_module_dirs();
	/* IMAP too when the module is there (and its ports fit). */
	bool imap = ts_localserve_has_imap(modules) && base + 993 <= 65535;
	char *core = ts_xasprintf("; Written by `tessera localserve` "
				  "(rewritten at every start).\n"
				  "[core]\n"
				  "data_dir = %s/data\n"
				  "hostname = localhost\n"
				  "log_level = info\n"
				  "allow_root = %s\n"
				  "module_dir = %s\n",
				  dir, allow_root ? "yes" : "no", modules);
	free(modules);
	char *smtp = ts_xasprintf("; Written by `tessera localserve` "
				  "(rewritten at every start).\n"
				  "[module smtp]\n"
				  "enabled = yes\n"
				  "accept_all = " TS_LOCALSERVE_ACCOUNT "\n"
				  "test_localparts = yes\n"
				  "allow_plaintext_auth = yes\n"
				  "\n"
				  "[listener smtp]\n"
				  "address = 127.0.0.1\n"
				  "port = %u\n"
				  "protocol = smtp\n"
				  "tls = starttls\n"
				  "\n"
				  "[listener submission]\n"
				  "address = 127.0.0.1\n"
				  "port = %u\n"
				  "protocol = submission\n"
				  "tls = starttls\n"
				  "\n"
				  "[listener submissions]\n"
				  "address = 127.0.0.1\n"
				  "port = %u\n"
				  "protocol = submissions\n"
				  "tls = implicit\n",
				  base + 25, base + 587, base + 465);
	rc = ts_localserve_write(dir, "tessera.ini", core) ||
	     ts_localserve_write(dir, "domains.d/localserve.ini",
				 "; Written by `tessera localserve`.\n"
				 "[domain localhost]\n"
				 "\n"
				 "[account " TS_LOCALSERVE_ACCOUNT "]\n"
				 "addresses = " TS_LOCALSERVE_ACCOUNT
				 "@localhost\n") ||
	     ts_localserve_write(dir, "conf.d/20-smtp.ini", smtp);
	char *imap_ini = ts_xasprintf("; Written by `tessera localserve` "
				      "(rewritten at every start).\n"
				      "[module imap]\n"
				      "enabled = yes\n"
				      "allow_plaintext_auth = yes\n"
				      "\n"
				      "[listener imap]\n"
				      "address = 127.0.0.1\n"
				      "port = %u\n"
				      "protocol = imap\n"
				      "tls = starttls\n"
				      "max_line = 64k\n"
				      "idle_timeout = 31m\n"
				      "session_timeout = 0\n"
				      "\n"
				      "[listener imaps]\n"
				      "address = 127.0.0.1\n"
				      "port = %u\n"
				      "protocol = imaps\n"
				      "tls = implicit\n"
				      "max_line = 64k\n"
				      "idle_timeout = 31m\n"
				      "session_timeout = 0\n",
				      base + 143, base + 993);
	if (rc == 0 && imap)
		rc = ts_localserve_write(dir, "conf.d/20-imap.ini", imap_ini);
	else if (rc == 0) {
		char *old = ts_xasprintf("%s/conf.d/20-imap.ini", dir);
		(void)unlink(old);
		free(old);
	}
	free(imap_ini);
	free(core);
	free(smtp);
	return rc;
}

/* Give the account its documented password; 0 or 1. */
static int
ts_localserve_password(const char *dir)
{
	char *data_dir = ts_xasprintf("%s/data", dir);
	sqlite3 *db = NULL;
	char *error = NULL;
	int rc = 0;
	if (ts_localserve_mkdir(data_dir) != 0)
		rc = 1;
	else if (ts__store_db_open(data_dir, TS_LOCALSERVE_ACCOUNT, &db,
				   &error) != 0 ||
		 ts__credentials_set(db, TS_LOCALSERVE_PASSWORD, &error) != 0) {
		fprintf(stderr, "tessera: %s\n", error);
		free(error);
		rc = 1;
	}
	ts__store_db_close(&db);
	free(data_dir);
	return rc;
}

/*
 * `tessera localserve`: a developer's mail server on loopback.  Writes a
 * configuration under DIR (every address accepted into one account, test
 * localparts on, listeners at port base + 25, 587 and 465, and IMAP at
 * base + 143 and 993 when the imap module is there), sets the
 * account's password, prints what a client needs and serves.
 */
static int
ts_cmd_localserve(int argc, char **argv)
{
	const char *usage = TS_LOCALSERVE_USAGE;
	const char *dir_arg = "./tessera-localserve";
	long base = TS_LOCALSERVE_PORT_BASE;
	bool allow_root = geteuid() == 0;
	bool allow_root_flag = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if ((strcmp(a, "--dir") == 0 ||
		     strcmp(a, "--port-base") == 0) &&
		    i + 1 < argc)
			val = argv[++i];
		else if (strncmp(a, "--dir=", 6) == 0 ||
			 strncmp(a, "--port-base=", 12) == 0)
			val = strchr(a, '=') + 1;
		if (val != NULL && strncmp(a, "--dir", 5) == 0) {
			dir_arg = val;
		} else if (val != NULL) {
			char *end;
			errno = 0;
			base = strtol(val, &end, 10);
			if (errno != 0 || end == val || *end != '\0' ||
			    base < 0 || base > 65535 - 587)
				return ts_usage_error(
					usage,
					"bad --port-base '%s' (0 to 64948)",
					val);
		} else if (strcmp(a, "--allow-root") == 0) {
			allow_root = allow_root_flag = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: tessera %s\n", usage);
			return 0;
		} else if (a[0] == '-') {
			return ts_usage_error(usage,
					      "unknown option or "
					      "missing value: %s",
					      a);
		} else {
			return ts_usage_error(usage, "unexpected argument '%s'",
					      a);
		}
	}
	if (ts_localserve_mkdir(dir_arg) != 0)
		return 1;
	char *dir = realpath(dir_arg, NULL);
	if (dir == NULL) {
		fprintf(stderr, "tessera: %s: %s\n", dir_arg, strerror(errno));
		return 1;
	}
	unsigned b = (unsigned)base;
	if (ts_localserve_config(dir, b, allow_root) != 0 ||
	    ts_localserve_password(dir) != 0) {
		free(dir);
		return 1;
	}
	char *conf_imap = ts_xasprintf("%s/conf.d/20-imap.ini", dir);
	char *imap_lines =
		access(conf_imap, R_OK) == 0
			? ts_xasprintf("  imap        127.0.0.1:%u (STARTTLS; "
				       "LOGIN also without TLS)\n"
				       "  imaps       127.0.0.1:%u (implicit "
				       "TLS)\n",
				       b + 143, b + 993)
			: ts_xstrdup("");
	free(conf_imap);
	printf("tessera localserve: a development mail server in %s\n"
	       "  smtp        127.0.0.1:%u (STARTTLS offered)\n"
	       "  submission  127.0.0.1:%u (STARTTLS; AUTH also without "
	       "TLS)\n"
	       "  submissions 127.0.0.1:%u (implicit TLS)\n"
	       "%s"
	       "  TLS uses a self-signed certificate for localhost.\n"
	       "  account " TS_LOCALSERVE_ACCOUNT
	       ", password " TS_LOCALSERVE_PASSWORD
	       ": every recipient, any domain,\n"
	       "  is delivered to its Inbox; submitted mail is never sent "
	       "out.\n"
	       "  Recipients whose localpart starts with temperror get 451, "
	       "permerror 550,\n"
	       "  timeout an answer (451) after 30 s.\n"
	       "  See the mail: tessera mailbox list " TS_LOCALSERVE_ACCOUNT
	       " -c %s/tessera.ini\n",
	       dir, b + 25, b + 587, b + 465, imap_lines, dir);
	free(imap_lines);
	fflush(stdout);
	char *config = ts_xasprintf("%s/tessera.ini", dir);
	struct ts__serve_opts so = {
		.config_path = config,
		.allow_root = allow_root_flag,
	};
	int rc = ts__serve(&so);
	free(config);
	free(dir);
	return rc;
}

static int
ts_cmd_config(int argc, char **argv)
{
	struct ts_opts o;
	const char *usage = "config check [-c FILE]";
	int rc = ts_parse_opts(argc, argv, usage, "", &o);
	if (rc >= 0)
		return rc;
	if (o.word_count != 1 || strcmp(o.words[0], "check") != 0)
		return ts_usage_error(usage, "unknown or missing subcommand%s",
				      o.word_count ? " (try check)" : "");

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ts_kernel k;
	rc = ts__boot_kernel(&k, &loop, o.config, true, TS_LOG_WARN);
	if (rc == 0) {
		printf("%s: configuration ok, %zu module%s enabled\n", o.config,
		       k.module_count, k.module_count == 1 ? "" : "s");
		ts__boot_teardown(&k);
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	return rc;
}

/* --- module list --------------------------------------------------------- */

static void
ts_print_hook(const char *module, int prio, unsigned flags, void *arg)
{
	bool *first = arg;
	printf("%s%s(%d%s)", *first ? " " : ", ", module, prio,
	       (flags & TS_HOOK_PARALLEL) ? ", parallel" : "");
	*first = false;
}

static void
ts_print_module(const struct ts_kernel *k, const struct ts__module *mod)
{
	const struct ts_module *d = mod->desc;
	printf("%s %s enabled=%s file=%s\n", mod->name,
	       d->version != NULL ? d->version : "-",
	       mod->enabled ? "yes" : "no", mod->path);
	if (d->description != NULL)
		printf("  description: %s\n", d->description);
	printf("  requires:");
	const char *const *r = d->requires;
	if (r == NULL || *r == NULL)
		printf(" -");
	for (; r != NULL && *r != NULL; r++)
		printf(" %s", *r);
	printf("\n");
	if (!mod->enabled)
		return;

	printf("  hooks:");
	bool any = false;
	for (int p = 0; p < TS_HOOK_POINT_COUNT; p++) {
		size_t n = ts__hooks_count(k->hooks, &mod->ctx,
					   (enum ts_hook_point)p);
		if (n == 0)
			continue;
		printf(" %s", ts_hook_point_name((enum ts_hook_point)p));
		if (n > 1)
			printf("x%zu", n);
		any = true;
	}
	printf("%s\n  services:", any ? "" : " -");
	any = false;
	for (size_t i = 0; i < k->service_count; i++) {
		if (k->services[i].owner != &mod->ctx)
			continue;
		printf(" %s/%s", k->services[i].kind, k->services[i].name);
		any = true;
	}
	printf("%s\n  commands:", any ? "" : " -");
	any = false;
	for (size_t i = 0; i < k->cli_count; i++) {
		if (k->cli[i].owner != &mod->ctx)
			continue;
		printf(" %s", k->cli[i].name);
		any = true;
	}
	printf("%s\n", any ? "" : " -");
}

static int
ts_cmd_module(int argc, char **argv)
{
	struct ts_opts o;
	const char *usage = "module list [--hooks] [-c FILE]";
	int rc = ts_parse_opts(argc, argv, usage, "hooks", &o);
	if (rc >= 0)
		return rc;
	if (o.word_count != 1 || strcmp(o.words[0], "list") != 0)
		return ts_usage_error(usage, "unknown or missing subcommand%s",
				      o.word_count ? " (try list)" : "");

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ts_kernel k;
	struct ts__boot b;
	ts__kernel_init(&k, &loop);
	k.log.max = TS_LOG_WARN;
	rc = 1;
	if (ts__boot_load(o.config, &b) != 0) {
		ts__boot_print_errors(b.cfg);
		ts__boot_free(&b);
		ts__kernel_fini(&k);
		goto out;
	}
	ts__boot_adopt(&k, &b);
	char *error = NULL;
	if (ts__boot_apply_core(&k, k.cfg, &error) != 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
	} else if (ts__boot_check(&k, k.cfg) != 0) {
		ts__boot_print_errors(k.cfg);
	} else if (ts__boot_init(&k) == 0) {
		rc = 0;
		for (size_t i = 0; i < k.module_count; i++)
			ts_print_module(&k, k.modules[i]);
		for (size_t i = 0; i < b.all_count; i++)
			if (b.all[i] != NULL && !b.all[i]->enabled)
				ts_print_module(&k, b.all[i]);
		if (o.hooks) {
			printf("hook order:\n");
			for (int p = 0; p < TS_HOOK_POINT_COUNT; p++) {
				bool first = true;
				printf("  %s:", ts_hook_point_name(
							(enum ts_hook_point)p));
				ts__hooks_each(k.hooks, (enum ts_hook_point)p,
					       ts_print_hook, &first);
				printf("%s\n", first ? " -" : "");
			}
		}
	}
	ts__boot_free(&b);
	ts__boot_teardown(&k);
out:
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	return rc;
}

/* --- control-socket commands --------------------------------------------- */

static int
ts_cmd_control(int argc, char **argv)
{
	struct ts_opts o;
	bool queue = strcmp(argv[0], "queue") == 0;
	char *usage = queue ? ts_xasprintf("%s [-c FILE]", TS_QUEUE_USAGE)
			    : ts_xasprintf("%s [-c FILE]", argv[0]);
	int rc = ts_parse_opts(argc, argv, usage, queue ? "all" : "", &o);
	if (rc < 0 && !queue && o.word_count > 0)
		rc = ts_usage_error(usage, "unexpected argument '%s'",
				    o.words[0]);
	if (rc < 0 && queue && o.word_count == 0)
		rc = ts_usage_error(usage, "which queue command?%s", "");
	free(usage);
	if (rc >= 0)
		return rc;
	/* The queue's words go to the server, which checks them. */
	char *line = ts_xstrdup(argv[0]);
	for (int i = 0; queue && i < o.word_count; i++) {
		char *next = ts_xasprintf("%s %s", line, o.words[i]);
		free(line);
		line = next;
	}
	struct ts_cfg *cfg = ts__cfg_parse(o.config);
	if (cfg->error_count > 0) {
		ts__boot_print_errors(cfg);
		ts__cfg_free(&cfg);
		return 1;
	}
	/*
	 * Only the socket's path matters here, read raw: a running server
	 * must stay reachable (e.g. to be told to reload) even when some
	 * other key of the file on disk is broken.
	 */
	const char *socket_path = NULL, *data_dir = NULL;
	for (size_t i = 0; i < cfg->sect_count; i++) {
		if (strcmp(cfg->sects[i]->type, "core") != 0)
			continue;
		socket_path = ts__cfg_raw(cfg->sects[i], "control_socket");
		data_dir = ts__cfg_raw(cfg->sects[i], "data_dir");
	}
	char *path;
	if (socket_path != NULL && *socket_path != '\0')
		path = ts_xstrdup(socket_path);
	else
		path = ts_xasprintf("%s/control", data_dir != NULL
							  ? data_dir
							  : TS_LOCALSTATEDIR);
	rc = ts__control_send(path, line);
	free(line);
	free(path);
	ts__cfg_free(&cfg);
	return rc;
}

/* --- module commands and dispatch ------------------------------------------
 */

/*
 * `tessera NAME …` for a command some module registered: boot fully (init,
 * no listeners), run it, tear down.  Returns -1 if no module has NAME.
 */
static int
ts_run_module_command(int argc, char **argv)
{
	const char *config = getenv("TESSERA_CONFIG");
	if (config == NULL || *config == '\0')
		config = TS_DEFAULT_CONFIG;
	/* -c may come anywhere; the module sees its own arguments only. */
	char **args = ts_xcalloc((size_t)argc + 1, sizeof(*args));
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			config = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
			continue;
		}
		args[n++] = argv[i];
	}

	/*
	 * Without a loadable configuration we cannot know which commands the
	 * modules offer: treat the word as an unknown command (exit 2) and
	 * say why, rather than as a configuration error.
	 */
	struct ts__boot probe;
	if (ts__boot_load(config, &probe) != 0) {
		fprintf(stderr,
			"tessera: '%s' is no built-in command, and module "
			"commands are unknown: %s\n",
			argv[0], probe.cfg->errors[0]);
		ts__boot_free(&probe);
		free(args);
		return -1;
	}
	ts__boot_free(&probe);

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ts_kernel k;
	int rc = ts__boot_kernel(&k, &loop, config, true, TS_LOG_WARN);
	if (rc == 0) {
		const struct ts__cli_cmd *cmd = ts__cli_find(&k, argv[0]);
		if (cmd == NULL) {
			rc = -1;
		} else {
			k.phase = TS__PHASE_RUN;
			rc = cmd->fn(cmd->owner, n, args);
			/* Let work the command queued complete. */
			uv_run(&loop, UV_RUN_DEFAULT);
		}
		ts__boot_teardown(&k);
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	free(args);
	return rc;
}

int
ts__main(int argc, char **argv)
{
	/* Invoked as "sendmail" (a link): the sendmail interface. */
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	base = base != NULL ? base + 1 : argc > 0 ? argv[0] : "";
	if (strcmp(base, "sendmail") == 0)
		return ts__cmd_sendmail(argc, argv);
	if (argc < 2) {
		ts_print_help(stderr);
		return TS_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		ts_print_help(stdout);
		return 0;
	}
	if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
		name = "version";
	const struct ts_command *cmd = ts_command_find(name);
	if (cmd != NULL) {
		argv[1] = (char *)cmd->name;
		return cmd->run(argc - 1, argv + 1);
	}
	if (name[0] != '-') {
		int rc = ts_run_module_command(argc - 1, argv + 1);
		if (rc >= 0)
			return rc;
	}
	fprintf(stderr,
		"tessera: unknown command '%s'\n"
		"usage: tessera COMMAND [options] "
		"(see tessera help)\n",
		name);
	return TS_EXIT_USAGE;
}
