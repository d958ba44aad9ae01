/*
 * kernel/kernel.h — the kernel's private interfaces between its units.
 *
 * Modules never include this file: they see only plugin-api/tessera/.
 * Kernel-internal non-static names start with `ts__`.  All mutable state
 * lives in one struct ts_kernel (no globals); each module reaches it through
 * its struct ts_ctx.
 */
#ifndef TESSERA_KERNEL_H
#define TESSERA_KERNEL_H

#include <stdio.h>
#include <uv.h>

#include <tessera/tessera.h>

struct ts__module;
struct ts__hooks;
struct ts__listener;
struct ts__control;
struct ts__queue;
struct ts__dns;
struct ts__accounts;
struct ts__stores;

/* A NULL-terminated list of strings the owner frees with ts__strv_free. */
void ts__strv_push(char ***strv, size_t *n, char *s);
void ts__strv_free(char ***strv);

/* --- config (config.c) ------------------------------------------------ */

struct ts__cfg_entry {
	char *key;
	char *value;
	char *where; /* "file:line" */
	const struct ts_cfg_key *schema; /* set by ts__cfg_bind */
	char **items;
	size_t item_count; /* TS_CFG_LIST, set by bind */
};

struct ts_cfg_sect {
	char *type; /* "core", "module", "listener", "transport", … */
	char *name; /* instance name or NULL */
	char *where; /* "file:line" of the header */
	struct ts__cfg_entry *entries;
	size_t entry_count;
	/* Key tables the section was bound to (NULL-terminated tables). */
	const struct ts_cfg_key *tables[4];
	size_t table_count;
	bool bound;
	/*
	 * Split defaults of the LIST keys not written here (key, schema and
	 * items set; value and where NULL), made by ts__cfg_bind so the list
	 * getters never allocate.  Private to config.c.
	 */
	struct ts__cfg_entry *defaults;
	size_t default_count;
};

struct ts_cfg {
	char *main_path;
	char *conf_dir; /* directory of the main file */
	struct ts_cfg_sect **sects; /* in file order, after overrides */
	size_t sect_count;
	char **errors; /* "file:line: message", in the order found */
	size_t error_count;
	/* Module check callbacks report through the kernel's own format. */
};

/*
 * Parse main_path, then each <conf_dir>/conf.d/NAME.ini in lexical order,
 * then each <conf_dir>/domains.d/NAME.ini (domains and accounts), then
 * each <conf_dir>/local.d/NAME.ini; a later file's keys override the same
 * section's keys from an earlier file.
 * Never returns NULL: syntax errors, unreadable files, keys outside a
 * section and keys repeated within one file are recorded as errors.
 */
struct ts_cfg *ts__cfg_parse(const char *main_path);
/* Same, from a string (unit tests); `name` stands for the file name. */
struct ts_cfg *ts__cfg_parse_string(const char *name, const char *text);
void ts__cfg_free(struct ts_cfg **cfg);

/* Record an error; where may be NULL. */
void ts__cfg_error(struct ts_cfg *cfg, const char *where, const char *fmt, ...)
	TS_PRINTF(3, 4);

/*
 * Bind a section to key tables: every key must be declared in one of them
 * (else "file:line: unknown key 'x' in [type name]") and its value must
 * parse as its type (else "file:line: key: 'v' is not a duration"…).
 * Errors are recorded on cfg.  Getters on an unbound section abort.
 */
void ts__cfg_bind(struct ts_cfg *cfg, struct ts_cfg_sect *s,
		  const struct ts_cfg_key *const *tables, size_t table_count);

/* A key's raw text before binding, or NULL. */
const char *ts__cfg_raw(const struct ts_cfg_sect *s, const char *key);
const struct ts__cfg_entry *ts__cfg_entry(const struct ts_cfg_sect *s,
					  const char *key);

/* --- logging (log.c) -------------------------------------------------- */

struct ts__log {
	enum ts_log_level level;
	enum ts_log_level max; /* cap on level for non-serve commands */
	FILE *out; /* stderr unless [core] log_file is set */
	bool owns_out;
};

/*
 * Write one formatted line for `module` (and conn id when nonzero).  Used
 * by ts_log and ts_conn_log.
 */
void ts__log_write(struct ts__log *log, uv_loop_t *loop,
		   enum ts_log_level level, const char *module,
		   uint64_t conn_id, const char *remote, const char *fmt,
		   va_list ap) TS_PRINTF(7, 0);

/* --- the kernel -------------------------------------------------------- */

struct ts_ctx {
	struct ts_kernel *kernel;
	const char *name; /* "kernel" or the module's name */
	struct ts__module *module; /* NULL for the kernel's own ctx */
	unsigned index; /* load order; conn data slot */
	void *data;
};

struct ts__service {
	char *kind;
	char *name;
	const void *vtable;
	size_t size;
	struct ts_ctx *owner;
};

struct ts__cli_cmd {
	char *name;
	char *summary;
	char *usage;
	ts_cli_fn fn;
	struct ts_ctx *owner;
};

enum ts__phase {
	TS__PHASE_LOAD, /* modules opened, init not yet run */
	TS__PHASE_INIT, /* inside init callbacks: registrations allowed */
	TS__PHASE_RUN, /* serving */
	TS__PHASE_STOP, /* shutting down */
};

struct ts_kernel {
	uv_loop_t *loop;
	enum ts__phase phase;
	struct ts__log log;
	struct ts_cfg *cfg; /* current, checked configuration */
	struct ts_ctx kctx; /* the kernel's own context */

	/* Enabled modules in init order. */
	struct ts__module **modules;
	size_t module_count;

	struct ts__hooks *hooks;

	struct ts__service *services;
	size_t service_count;

	struct ts__cli_cmd *cli;
	size_t cli_count;

	/* Settings from [core], applied at start and reload. */
	uint64_t hook_timeout_ms;
	uint64_t shutdown_grace_ms;

	/* Listeners and live connections (listener.c, conn.c). */
	struct ts__listener **listeners;
	size_t listener_count;
	struct ts_conn *conns; /* doubly linked list */
	size_t conn_count;
	uint64_t next_conn_id;

	struct ts__control *control;
	/*
	 * One read buffer for ciphertext and dropped input of every
	 * connection: reads are consumed before the callback returns, so
	 * idle connections need none of their own (conn.c).
	 */
	char *conn_read_buf;
	struct ts__dns *dns; /* resolver state (dns.c); NULL until used */
	struct ts__accounts *accounts; /* address lookup (store/accounts.c) */
	struct ts__stores *stores;     /* open account stores (store/store.c) */
	struct ts__queue *queue;       /* outbound queue (queue/); serve only */
	unsigned pending_work; /* submitted, done callback not yet run */
	uv_timer_t grace_timer;
	bool grace_timer_live;
};

/* Initialise/finish the kernel's own ctx and loop-independent state. */
void ts__kernel_init(struct ts_kernel *k, uv_loop_t *loop);
void ts__kernel_fini(struct ts_kernel *k);

/* --- modules (module.c) ------------------------------------------------ */

struct ts__module {
	char *name;
	char *path; /* the file actually opened */
	void *handle; /* lt_dlhandle */
	const struct ts_module *desc;
	bool enabled;
	char *where; /* "file:line" of its [module NAME] header */
	struct ts_ctx ctx;
	bool initialised;
	/* What it registered, for `module list` (hook points as names). */
};

/*
 * Find NAME in the directories (NAME.la, then NAME.so, via libltdl),
 * open it with RTLD_NOW, read its descriptor (NAME_LTX_tessera_module,
 * then tessera_module) and check ABI major/minor, struct_size, build
 * signature and name.  On failure returns TS_E_NOTFOUND (no such file)
 * or TS_E_INVAL, and *error_r (caller frees) says, e.g.,
 * "module spf (/usr/lib/tessera/modules/spf.so): built for ABI 2.1,
 * kernel provides 1.0".
 */
int ts__module_open(const char *name, const char *const *dirs, size_t dir_count,
		    struct ts__module **mod_r, char **error_r);
/* "a,b,c": the modules' names joined with commas ("-" when none). */
char *ts__module_names(struct ts__module *const *mods, size_t count);

/* dlclose and free; sets *mod to NULL. */
void ts__module_close(struct ts__module **mod);

/*
 * Order the enabled modules of mods[] for init: each after its `requires`
 * and `after`, before its `before`, ties by name.  A requirement that is
 * missing (not in mods[]) or disabled, and a cycle, are errors recorded on
 * cfg at the requiring module's [module] line:
 *   "module dmarc: requires 'spf', which is not enabled"
 *   "module a: requirement cycle a -> b -> a"
 * Returns 0 with *ordered_r (caller frees the array, not the modules), or
 * TS_E_INVAL.
 */
int ts__module_order(struct ts_cfg *cfg, struct ts__module *const *mods,
		     size_t count, struct ts__module ***ordered_r,
		     size_t *ordered_count_r);

/* --- hooks (hook.c) ----------------------------------------------------- */

struct ts__hooks *ts__hooks_new(struct ts_kernel *k);
/* Cancels every pending run (calling cancel callbacks), then frees. */
void ts__hooks_free(struct ts__hooks **hooks);
/*
 * Visit the hooks of a point in effective order (for `module list
 * --hooks`): module name, priority, flags.
 */
void ts__hooks_each(const struct ts__hooks *hooks, enum ts_hook_point point,
		    void (*fn)(const char *module, int prio, unsigned flags,
			       void *arg),
		    void *arg);
/* Number of hooks a module added at a point (for `module list`). */
size_t ts__hooks_count(const struct ts__hooks *hooks,
		       const struct ts_ctx *owner, enum ts_hook_point point);
/* Cancel runs whose args.conn is conn (called when it closes). */
void ts__hooks_cancel_conn(struct ts__hooks *hooks, struct ts_conn *conn);

/* --- transactions (txn.c, auth-results.c) ---------------------------- */

/* Whether a result's method, result and property names are RFC 8601
 * keywords and no text holds a line break. */
bool ts__auth_result_valid(const struct ts_auth_result *r);

/* --- outbound queue (queue/queue.c) ------------------------------------ */

extern const struct ts_cfg_key ts__queue_keys[];
/* [sendmail]: where `tessera sendmail` submits (kernel/sendmail.c). */
extern const struct ts_cfg_key ts__sendmail_keys[];
/* Open the queue index, load the schedule, start delivering. */
int ts__queue_start(struct ts_kernel *k, char **error_r);
/* Apply changed [queue] settings. */
void ts__queue_reload(struct ts_kernel *k);
/* Stop starting deliveries; cancel those under way (they stay queued). */
void ts__queue_stop(struct ts_kernel *k);
/* Free everything; after the loop has finished its work. */
void ts__queue_free(struct ts_kernel *k);
/*
 * A `queue …` control command (the text after "queue "): list, hold,
 * release, kick, drop, requiretls.  answer(text, arg) runs once, maybe
 * later, with the reply ("ok …" or "error …", newline-terminated; taken).
 */
void ts__queue_control(struct ts_kernel *k, const char *args,
		       void (*answer)(char *text, void *arg), void *arg);

/* --- services and CLI (service.c, cli.c) ------------------------------ */

void ts__services_free(struct ts_kernel *k);
const struct ts__cli_cmd *ts__cli_find(const struct ts_kernel *k,
				       const char *name);
void ts__cli_free(struct ts_kernel *k);

#endif
