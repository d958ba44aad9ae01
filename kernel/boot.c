/*
 * kernel/boot.c — turn a config path into a checked kernel with modules.
 *
 * Order matters and is the same for every command: parse all ini files;
 * bind [core]; open each module named by a [module X] section (disabled
 * ones too, only to learn which sections they own); bind every section to
 * its owner's schema; order the enabled modules; run their check
 * callbacks; run init; then validate what needs init's registrations
 * (listener protocols).  Every failure is a `file:line: message` in the
 * cfg's error list.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/boot.h"
#include "kernel/dns.h"
#include "kernel/store/accounts.h"
#include "kernel/net.h"

const struct ts_cfg_key ts__core_keys[] = {
	{ .name = "hostname",
	  .type = TS_CFG_STRING,
	  .doc = "this host's fully qualified name (default: the system's)" },
	{ .name = "data_dir",
	  .type = TS_CFG_STRING,
	  .default_value = TS_LOCALSTATEDIR,
	  .doc = "directory for databases, queue and the control socket" },
	{ .name = "module_dir",
	  .type = TS_CFG_LIST,
	  .default_value = TS_MODULEDIR,
	  .doc = "directories searched for NAME.so, in order" },
	{ .name = "user",
	  .type = TS_CFG_STRING,
	  .doc = "user to run as after binding ports (when started as root)" },
	{ .name = "allow_root",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "permit running as root when no user is set" },
	{ .name = "log_level",
	  .type = TS_CFG_ENUM,
	  .default_value = "info",
	  .choices = "error|warn|info|debug|trace|traceauth|tracedata",
	  .doc = "verbosity; traceauth and tracedata reveal secrets/data" },
	{ .name = "log_file",
	  .type = TS_CFG_STRING,
	  .doc = "append log lines to this file instead of stderr" },
	{ .name = "hook_timeout",
	  .type = TS_CFG_DURATION,
	  .default_value = "30s",
	  .doc = "how long an asynchronous hook may stay pending" },
	{ .name = "shutdown_grace",
	  .type = TS_CFG_DURATION,
	  .default_value = "30s",
	  .doc = "on SIGTERM, how long sessions may take to finish" },
	{ .name = "tls_priority",
	  .type = TS_CFG_STRING,
	  .default_value = "SECURE256:SECURE128:-VERS-ALL:+VERS-TLS1.3:"
			   "+VERS-TLS1.2:%SERVER_PRECEDENCE",
	  .doc = "GnuTLS priority string for every TLS session; TLS 1.0 and "
		 "1.1 stay off whatever it says" },
	{ .name = "control_socket",
	  .type = TS_CFG_STRING,
	  .doc = "unix socket for tessera status|reload|stop "
		 "(default: DATA_DIR/control)" },
	{ .name = NULL },
};

const struct ts_cfg_key ts__module_keys[] = {
	{ .name = "enabled",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "load this module" },
	{ .name = NULL },
};

/* --- loading ------------------------------------------------------------ */

static struct ts_cfg_sect *
ts_boot_core_section(struct ts_cfg *cfg)
{
	struct ts_cfg_sect *core = NULL;
	for (size_t i = 0; i < cfg->sect_count; i++) {
		struct ts_cfg_sect *s = cfg->sects[i];
		if (strcmp(s->type, "core") != 0)
			continue;
		if (s->name != NULL)
			ts__cfg_error(cfg, s->where,
				      "section [core] takes no name");
		else
			core = s;
	}
	if (core == NULL) {
		/* No [core] at all: every key takes its default. */
		core = ts_xcalloc(1, sizeof(*core));
		core->type = ts_xstrdup("core");
		core->where = ts_xstrdup(cfg->main_path);
		cfg->sects = ts_xrealloc(cfg->sects, (cfg->sect_count +
						      1) * sizeof(*cfg->sects));
		cfg->sects[cfg->sect_count++] = core;
	}
	const struct ts_cfg_key *tables[] = { ts__core_keys };
	ts__cfg_bind(cfg, core, tables, 1);
	return core;
}

static bool
ts_boot_valid_module_name(const char *name)
{
	if (name == NULL || *name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	return true;
}

static void
ts_boot_open_modules(struct ts__boot *b, const struct ts_cfg_sect *core)
{
	struct ts_cfg *cfg = b->cfg;
	size_t dir_count = ts_cfg_list_len(core, "module_dir");
	const char **dirs = ts_xcalloc(dir_count + 1, sizeof(*dirs));
	for (size_t i = 0; i < dir_count; i++)
		dirs[i] = ts_cfg_list_item(core, "module_dir", i);

	for (size_t i = 0; i < cfg->sect_count; i++) {
		struct ts_cfg_sect *s = cfg->sects[i];
		if (strcmp(s->type, "module") != 0)
			continue;
		if (!ts_boot_valid_module_name(s->name)) {
			ts__cfg_error(cfg, s->where,
				      "bad module section: write [module NAME] "
				      "with NAME of a-z, 0-9 and _");
			continue;
		}
		bool enabled = false;
		const char *raw = ts__cfg_raw(s, "enabled");
		if (raw != NULL && ts_parse_bool(raw, &enabled) != 0)
			continue; /* binding below reports the bad value */

		struct ts__module *mod = NULL;
		char *error = NULL;
		int rc =
			ts__module_open(s->name, dirs, dir_count, &mod, &error);
		if (rc != 0) {
			if (enabled) {
				if (rc == TS_E_NOTFOUND)
					ts__cfg_error(
						cfg, s->where,
						"unknown module '%s' (%s)",
						s->name, error);
				else
					ts__cfg_error(cfg, s->where, "%s",
						      error);
			}
			free(error);
			continue;
		}
		mod->enabled = enabled;
		mod->where = ts_xstrdup(s->where);
		b->all = ts_xrealloc(b->all,
				     (b->all_count + 1) * sizeof(*b->all));
		b->all[b->all_count++] = mod;
	}
	free(dirs);
}

static struct ts__module *
ts_boot_module(const struct ts__boot *b, const char *name)
{
	for (size_t i = 0; i < b->all_count; i++)
		if (strcmp(b->all[i]->name, name) == 0)
			return b->all[i];
	return NULL;
}

/*
 * Section types the kernel itself owns, besides [core] and [module NAME].
 * Each kernel unit declares its keys next to the code that reads them.
 */
static const struct ts_cfg_section ts_boot_kernel_sections[] = {
	{ .type = "listener", .named = true, .keys = ts__listener_keys },
	{ .type = "dns", .named = false, .keys = ts__dns_keys },
	{ .type = "queue", .named = false, .keys = ts__queue_keys },
	{ .type = "sendmail", .named = false, .keys = ts__sendmail_keys },
	{ .type = "domain", .named = true, .keys = ts__domain_keys },
	{ .type = "account", .named = true, .keys = ts__account_keys },
	{ .type = NULL },
};

static const struct ts_cfg_section *
ts_boot_kernel_section(const char *type)
{
	for (const struct ts_cfg_section *cs = ts_boot_kernel_sections;
	     cs->type != NULL; cs++)
		if (strcmp(cs->type, type) == 0)
			return cs;
	return NULL;
}

/* The module declaring section type `type`, enabled ones first. */
static const struct ts_cfg_section *
ts_boot_section_owner(const struct ts__boot *b, const char *type,
		      const struct ts__module **owner_r)
{
	const struct ts_cfg_section *found = NULL;
	for (size_t i = 0; i < b->all_count; i++) {
		const struct ts_cfg_section *cs =
			b->all[i]->desc->config_sections;
		for (; cs != NULL && cs->type != NULL; cs++) {
			if (strcmp(cs->type, type) != 0)
				continue;
			if (found == NULL || b->all[i]->enabled) {
				found = cs;
				*owner_r = b->all[i];
			}
			if (b->all[i]->enabled)
				return cs;
		}
	}
	return found;
}

static void
ts_boot_bind_sections(struct ts__boot *b)
{
	struct ts_cfg *cfg = b->cfg;

	for (size_t i = 0; i < cfg->sect_count; i++) {
		struct ts_cfg_sect *s = cfg->sects[i];
		if (strcmp(s->type, "core") == 0)
			continue;
		if (strcmp(s->type, "module") == 0) {
			const struct ts__module *mod =
				s->name != NULL ? ts_boot_module(b, s->name)
						: NULL;
			const struct ts_cfg_key *tables[2] = {
				ts__module_keys
			};
			size_t n = 1;
			if (mod != NULL && mod->enabled &&
			    mod->desc->config_keys != NULL)
				tables[n++] = mod->desc->config_keys;
			/*
			 * A disabled or missing module's own keys are not
			 * checked: it may not even be installed (a missing
			 * enabled one was reported already).  `enabled`
			 * itself always is.
			 */
			if (mod != NULL && mod->enabled) {
				ts__cfg_bind(cfg, s, tables, n);
			} else {
				bool dummy;
				const char *raw = ts__cfg_raw(s, "enabled");
				if (raw != NULL && ts_parse_bool(raw, &dummy))
					ts__cfg_error(
						cfg,
						ts__cfg_entry(s, "enabled")
							->where,
						"key 'enabled': '%s' is "
						"not yes or no",
						raw);
			}
			continue;
		}
		const struct ts__module *owner = NULL;
		const struct ts_cfg_section *cs = ts_boot_kernel_section(s->type);
		if (cs == NULL)
			cs = ts_boot_section_owner(b, s->type, &owner);
		if (cs == NULL) {
			ts__cfg_error(
				cfg, s->where,
				"unknown section [%s]: neither the kernel "
				"nor any configured module declares it",
				s->type);
			continue;
		}
		if (owner != NULL && !owner->enabled)
			continue; /* belongs to a disabled module */
		if (cs->named && s->name == NULL)
			ts__cfg_error(cfg, s->where,
				      "section [%s] needs a name: [%s NAME]",
				      s->type, s->type);
		else if (!cs->named && s->name != NULL)
			ts__cfg_error(cfg, s->where,
				      "section [%s] takes no name", s->type);
		const struct ts_cfg_key *tables[] = { cs->keys };
		ts__cfg_bind(cfg, s, tables, 1);
	}
}

int
ts__boot_load(const char *path, struct ts__boot *b)
{
	memset(b, 0, sizeof(*b));
	b->cfg = ts__cfg_parse(path);
	if (b->cfg->error_count > 0)
		return TS_E_INVAL; /* unreadable or unparsable: stop here */
	const struct ts_cfg_sect *core = ts_boot_core_section(b->cfg);
	ts_boot_open_modules(b, core);
	ts_boot_bind_sections(b);
	if (b->cfg->error_count > 0)
		return TS_E_INVAL;
	if (ts__module_order(b->cfg, b->all, b->all_count, &b->enabled,
			     &b->enabled_count) != 0)
		return TS_E_INVAL;
	return b->cfg->error_count > 0 ? TS_E_INVAL : 0;
}

void
ts__boot_free(struct ts__boot *b)
{
	for (size_t i = 0; i < b->all_count; i++)
		ts__module_close(&b->all[i]);
	free(b->all);
	free(b->enabled);
	ts__cfg_free(&b->cfg);
	memset(b, 0, sizeof(*b));
}

void
ts__boot_print_errors(const struct ts_cfg *cfg)
{
	for (size_t i = 0; i < cfg->error_count; i++)
		fprintf(stderr, "%s\n", cfg->errors[i]);
}

/* --- adopting and running modules -------------------------------------- */

void
ts__boot_adopt(struct ts_kernel *k, struct ts__boot *b)
{
	k->cfg = b->cfg;
	b->cfg = NULL;
	k->modules = b->enabled;
	k->module_count = b->enabled_count;
	b->enabled = NULL;
	b->enabled_count = 0;
	for (size_t i = 0; i < k->module_count; i++) {
		struct ts__module *mod = k->modules[i];
		mod->ctx.kernel = k;
		mod->ctx.name = mod->name;
		mod->ctx.module = mod;
		mod->ctx.index = (unsigned)i + 1; /* 0 is the kernel */
		/* The kernel closes adopted modules, not the boot. */
		for (size_t j = 0; j < b->all_count; j++)
			if (b->all[j] == mod)
				b->all[j] = NULL;
	}
}

int
ts__boot_apply_core(struct ts_kernel *k, const struct ts_cfg *cfg,
		    char **error_r)
{
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	enum ts_log_level level = TS_LOG_INFO;
	ts_log_level_parse(ts_cfg_str(core, "log_level"), &level);

	const char *log_file = ts_cfg_str(core, "log_file");
	if (log_file != NULL && *log_file != '\0') {
		FILE *out = fopen(log_file, "ae");
		if (out == NULL) {
			*error_r = ts_xasprintf("%s: cannot open log file %s: "
						"%m",
						ts_cfg_where(core, "log_file"),
						log_file);
			return TS_E_IO;
		}
		setvbuf(out, NULL, _IOLBF, 0);
		if (k->log.owns_out)
			fclose(k->log.out);
		k->log.out = out;
		k->log.owns_out = true;
	}
	k->log.level = level < k->log.max ? level : k->log.max;
	k->hook_timeout_ms = ts_cfg_duration_ms(core, "hook_timeout");
	k->shutdown_grace_ms = ts_cfg_duration_ms(core, "shutdown_grace");
	return 0;
}

int
ts__boot_check(struct ts_kernel *k, struct ts_cfg *cfg)
{
	int rc = ts__dns_check(cfg) != 0 ? TS_E_INVAL : 0;
	if (ts__accounts_check(cfg) != 0)
		rc = TS_E_INVAL;
	for (size_t i = 0; i < k->module_count; i++) {
		struct ts__module *mod = k->modules[i];
		if (mod->desc->check == NULL)
			continue;
		size_t before = cfg->error_count;
		int mrc = mod->desc->check(&mod->ctx, cfg);
		if (mrc != 0 && cfg->error_count == before)
			ts__cfg_error(cfg, mod->where,
				      "module %s: configuration refused (%s)",
				      mod->name, ts_strerror(mrc));
		if (mrc != 0 || cfg->error_count != before)
			rc = TS_E_INVAL;
	}
	return rc;
}

int
ts__boot_init(struct ts_kernel *k)
{
	enum ts__phase saved = k->phase;
	k->phase = TS__PHASE_INIT;
	for (size_t i = 0; i < k->module_count; i++) {
		struct ts__module *mod = k->modules[i];
		int rc = mod->desc->init != NULL
				 ? mod->desc->init(&mod->ctx, k->cfg)
				 : 0;
		if (rc != 0) {
			ts_log(&k->kctx, TS_LOG_ERROR,
			       "module init failed module=%s error=\"%s\"",
			       mod->name, ts_strerror(rc));
			k->phase = saved;
			ts__boot_shutdown(k);
			return TS_E_INVAL;
		}
		mod->initialised = true;
		ts_log(&k->kctx, TS_LOG_DEBUG,
		       "module initialised module=%s "
		       "version=%s",
		       mod->name,
		       mod->desc->version != NULL ? mod->desc->version : "-");
	}
	k->phase = saved;
	return 0;
}

void
ts__boot_shutdown(struct ts_kernel *k)
{
	for (size_t i = k->module_count; i-- > 0;) {
		struct ts__module *mod = k->modules[i];
		if (!mod->initialised)
			continue;
		mod->initialised = false;
		if (mod->desc->shutdown != NULL)
			mod->desc->shutdown(&mod->ctx);
		ts_log(&k->kctx, TS_LOG_DEBUG, "module shut down module=%s",
		       mod->name);
	}
}

int
ts__boot_kernel(struct ts_kernel *k, uv_loop_t *loop, const char *path,
		bool init, enum ts_log_level log_max)
{
	struct ts__boot b;
	ts__kernel_init(k, loop);
	k->log.max = log_max;
	if (k->log.level > log_max)
		k->log.level = log_max;
	if (ts__boot_load(path, &b) != 0) {
		ts__boot_print_errors(b.cfg);
		ts__boot_free(&b);
		ts__kernel_fini(k);
		return 1;
	}
	ts__boot_adopt(k, &b);
	ts__boot_free(&b);

	char *error = NULL;
	if (ts__boot_apply_core(k, k->cfg, &error) != 0 ||
	    ts__dns_configure(k, k->cfg, &error) != 0 ||
	    ts__accounts_apply(k, k->cfg) != 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		ts__boot_teardown(k);
		return 1;
	}
	if (ts__boot_check(k, k->cfg) != 0) {
		ts__boot_print_errors(k->cfg);
		ts__boot_teardown(k);
		return 1;
	}
	if (!init)
		return 0;
	if (ts__boot_init(k) != 0) {
		ts__boot_teardown(k);
		return 1;
	}
	if (ts__listeners_check(k, k->cfg) != 0) {
		ts__boot_print_errors(k->cfg);
		ts__boot_teardown(k);
		return 1;
	}
	return 0;
}

void
ts__boot_teardown(struct ts_kernel *k)
{
	ts__boot_shutdown(k);
	/* Registrations point into modules: drop them before dlclose. */
	ts__hooks_free(&k->hooks);
	ts__services_free(k);
	ts__cli_free(k);
	/* Let libuv close handles that shutdown callbacks released. */
	if (k->loop != NULL)
		uv_run(k->loop, UV_RUN_NOWAIT);
	for (size_t i = 0; i < k->module_count; i++)
		ts__module_close(&k->modules[i]);
	ts__kernel_fini(k);
}
