/*
 * kernel/boot.h — from a config path to a checked kernel with its modules.
 *
 * Shared by `serve`, `config check`, `module list`, module CLI commands and
 * SIGHUP: parse the ini files, open the modules they name, bind every
 * section to its schema, order the modules, then run their check callbacks
 * and (when asked) their init.
 */
#ifndef TESSERA_BOOT_H
#define TESSERA_BOOT_H

#include "kernel/kernel.h"

/* The default main config file. */
#define TS_DEFAULT_CONFIG TS_SYSCONFDIR "/tessera.ini"

/* Keys of [core] and of the kernel's part of [module NAME]. */
extern const struct ts_cfg_key ts__core_keys[];
extern const struct ts_cfg_key ts__module_keys[];

/* What ts__boot_load produces. */
struct ts__boot {
	struct ts_cfg *cfg;
	/* Every [module X] that could be opened, enabled or not. */
	struct ts__module **all;
	size_t all_count;
	/* The enabled ones, in init order (pointers into all[]). */
	struct ts__module **enabled;
	size_t enabled_count;
};

/*
 * Parse and bind.  Returns 0, or TS_E_INVAL with every problem recorded in
 * b->cfg->errors (b->cfg is set either way).  Release with ts__boot_free.
 */
int ts__boot_load(const char *path, struct ts__boot *b);
/* Close every module not adopted by a kernel, free the cfg if still owned. */
void ts__boot_free(struct ts__boot *b);

/*
 * Move the config and the enabled modules of b into k (b keeps the
 * disabled ones to close) and apply [core] settings (log level, file,
 * timeouts).
 */
void ts__boot_adopt(struct ts_kernel *k, struct ts__boot *b);
/* Apply [core] settings of cfg to k (start and reload). */
int ts__boot_apply_core(struct ts_kernel *k, const struct ts_cfg *cfg,
			char **error_r);

/* Run every module's check against cfg; errors land in cfg. */
int ts__boot_check(struct ts_kernel *k, struct ts_cfg *cfg);
/*
 * Init every module in order.  On failure, the modules already initialised
 * are shut down in reverse and TS_E_INVAL is returned.
 */
int ts__boot_init(struct ts_kernel *k);
/* Shut down initialised modules in reverse order and close them all. */
void ts__boot_shutdown(struct ts_kernel *k);

/* Print cfg's errors to stderr, one per line. */
void ts__boot_print_errors(const struct ts_cfg *cfg);

/*
 * The full sequence for commands that do not serve: load, adopt, check,
 * init (when `init` is true), and validate names that need the services
 * registered by init.  On failure prints the errors and returns 1; the
 * kernel is then already torn down.  `log_max` caps [core] log_level:
 * commands other than serve log only warnings and errors, so their own
 * output stays readable.
 */
int ts__boot_kernel(struct ts_kernel *k, uv_loop_t *loop, const char *path,
		    bool init, enum ts_log_level log_max);
/* Tear down what ts__boot_kernel built. */
void ts__boot_teardown(struct ts_kernel *k);

#endif
