/*
 * tessera/config.h — typed, validated access to the ini configuration.
 *
 * The kernel reads tessera.ini, then each conf.d/NAME.ini in lexical
 * order, then each local.d/NAME.ini (which override key by key).  Every
 * section belongs to the
 * kernel or to an enabled module, which declares its keys in static tables
 * (struct ts_cfg_key).  The kernel checks syntax, unknown keys and value
 * types itself, reporting `file:line: message`; a module's check callback
 * adds semantic checks with ts_cfg_error().  After that, the getters below
 * cannot fail: they return the value or the declared default.
 */
#ifndef TESSERA_CONFIG_H
#define TESSERA_CONFIG_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ts_cfg_type {
	TS_CFG_STRING, /* any text */
	TS_CFG_BOOL, /* yes|no|true|false|on|off|1|0 */
	TS_CFG_INT, /* decimal integer within [min, max] */
	TS_CFG_DURATION, /* 250ms, 30s, 5m, 2h, 7d; a bare number is seconds */
	TS_CFG_SIZE, /* bytes: 512, 64k, 10M, 1G (powers of 1024) */
	TS_CFG_ENUM, /* one of `choices`, written "a|b|c" */
	TS_CFG_LIST, /* words separated by commas and/or spaces */
};

/*
 * One key of a section.  `doc` is the one-line meaning shown by
 * `tessera config keys`; keep it in sync with the conf.d file and the man
 * page.  For TS_CFG_INT, min == max == 0 means no bounds.
 */
struct ts_cfg_key {
	const char *name;
	enum ts_cfg_type type;
	const char
		*default_value; /* NULL: no default (getter returns NULL/0) */
	const char *choices; /* TS_CFG_ENUM only: "none|starttls|tls" */
	long long min, max; /* TS_CFG_INT only */
	const char *doc;
};

/*
 * A section type a module owns.  With `named`, sections are written
 * `[type NAME]` and there may be many; otherwise `[type]`, at most once.
 */
struct ts_cfg_section {
	const char *type;
	bool named;
	const struct ts_cfg_key *keys; /* NULL-terminated by name == NULL */
	const char *doc;
};

/* A whole configuration snapshot; immutable once checked. */
struct ts_cfg;
/* One section of it. */
struct ts_cfg_sect;

/* The `[module NAME]` section of the module owning ctx (never NULL). */
const struct ts_cfg_sect *ts_cfg_module_section(const struct ts_cfg *cfg,
						const struct ts_ctx *ctx);
/*
 * Sections of a type in file order: `[transport a]`, `[transport b]`…
 * Start with prev == NULL; NULL ends the iteration.
 */
const struct ts_cfg_sect *ts_cfg_next(const struct ts_cfg *cfg,
				      const char *type,
				      const struct ts_cfg_sect *prev);
/* The single section `[type]` or `[type name]` (name may be NULL); or NULL. */
const struct ts_cfg_sect *ts_cfg_find(const struct ts_cfg *cfg,
				      const char *type, const char *name);

/*
 * The server's host name: `[core] hostname`, or when that is empty the
 * system's host name ("localhost" if even that fails).  Modules use it
 * for greetings, Received lines and EHLO.  The caller frees the string.
 * Since ABI 1.2.
 */
char *ts_cfg_hostname(const struct ts_cfg *cfg);

const char *ts_cfg_sect_type(const struct ts_cfg_sect *s);
/* Instance name of a named section; NULL for `[type]`. */
const char *ts_cfg_sect_name(const struct ts_cfg_sect *s);
/* Whether the key was written in the files (rather than defaulted). */
bool ts_cfg_is_set(const struct ts_cfg_sect *s, const char *key);

/*
 * Typed getters.  Asking for a key the section's schema does not declare,
 * or with the wrong getter for its type, is a programming error and
 * aborts.  Strings are owned by the snapshot and live as long as it.
 */
const char *ts_cfg_str(const struct ts_cfg_sect *s, const char *key);
bool ts_cfg_bool(const struct ts_cfg_sect *s, const char *key);
long long ts_cfg_int(const struct ts_cfg_sect *s, const char *key);
uint64_t ts_cfg_duration_ms(const struct ts_cfg_sect *s, const char *key);
uint64_t ts_cfg_size(const struct ts_cfg_sect *s, const char *key);
/* TS_CFG_LIST: number of items and item i (0-based). */
size_t ts_cfg_list_len(const struct ts_cfg_sect *s, const char *key);
const char *ts_cfg_list_item(const struct ts_cfg_sect *s, const char *key,
			     size_t i);

/*
 * Where a key (or, with key == NULL, the section header) was written, as
 * "file:line".  Points into the snapshot; do not free.
 */
const char *ts_cfg_where(const struct ts_cfg_sect *s, const char *key);

/*
 * Report a semantic error from a module's check callback.  The kernel
 * prefixes the key's `file:line` (or the section's, with key == NULL) and
 * prints all errors together.  Returns TS_E_INVAL so a check can write
 * `return ts_cfg_error(...)`.
 */
int ts_cfg_error(struct ts_cfg *cfg, const struct ts_cfg_sect *s,
		 const char *key, const char *fmt, ...) TS_PRINTF(4, 5);

/*
 * Parse helpers with the same rules as the typed keys, for modules that
 * read values from elsewhere.  Return 0 or TS_E_INVAL.
 */
int ts_parse_bool(const char *text, bool *value_r);
int ts_parse_duration_ms(const char *text, uint64_t *value_r);
int ts_parse_size(const char *text, uint64_t *value_r);

#ifdef __cplusplus
}
#endif
#endif
