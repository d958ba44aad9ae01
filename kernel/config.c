/*
 * kernel/config.c — the configuration snapshot and its typed access: the
 * error list, the value syntax (booleans, integers, durations, sizes,
 * enums, lists), finding sections and keys, checking a section against the
 * key tables the kernel and the modules declare (ts__cfg_bind), and the
 * typed getters of <tessera/config.h>.
 *
 * It does not read files: kernel/config-parse.c turns tessera.ini and the
 * .ini files of conf.d/ and local.d/ into a snapshot of raw text, each
 * value with its `file:line`.  This file knows nothing about modules: the
 * lead's boot code decides which tables a section is bound to
 * (ts__cfg_bind) and finds a module's section (ts_cfg_module_section lives
 * elsewhere).  Nothing here touches the event loop; a snapshot is
 * immutable once bound, so getters are safe from any thread.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"
#include "kernel/config-private.h"

#define CFG_MAX_TABLES                               \
	(sizeof(((struct ts_cfg_sect *)0)->tables) / \
	 sizeof(((struct ts_cfg_sect *)0)->tables[0]))

/* --- errors ------------------------------------------------------------ */

/* A programming error (bad getter, bad default): say so and abort. */
static void cfg_die(const char *fmt, ...) TS_PRINTF(1, 2)
	__attribute__((noreturn));

static void
cfg_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tessera: config: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (programming error)\n", stderr);
	va_end(ap);
	abort();
}

void
ts__cfg_verror(struct ts_cfg *cfg, const char *where, const char *fmt,
	       va_list ap)
{
	char *msg = ts_xvasprintf(fmt, ap);

	if (where != NULL) {
		char *full = ts_xasprintf("%s: %s", where, msg);
		free(msg);
		msg = full;
	}
	ts__strv_push(&cfg->errors, &cfg->error_count, msg);
}

void
ts__cfg_error(struct ts_cfg *cfg, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts__cfg_verror(cfg, where, fmt, ap);
	va_end(ap);
}

/* --- value syntax ------------------------------------------------------ */

/* Outcome of the internal value parsers. */
enum cfg_parse_result {
	CFG_PARSE_OK = 0,
	CFG_PARSE_BAD, /* not of the type at all */
	CFG_PARSE_RANGE, /* well formed but does not fit */
};

struct cfg_unit {
	const char *suffix;
	uint64_t factor;
};

static const struct cfg_unit cfg_duration_units[] = {
	{ "", 1000 }, /* a bare number is seconds */
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 },
	{ "d", 24 * 60 * 60 * 1000 },
	{ NULL, 0 },
};

static const struct cfg_unit cfg_size_units[] = {
	{ "", 1 },	     { "b", 1 },
	{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 },
	{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 },
	{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 },
	{ "t", 1ULL << 40 }, { "tb", 1ULL << 40 },
	{ NULL, 0 },
};

/*
 * Parse "<digits><suffix>" where suffix is one of units (compared without
 * regard to case when nocase), and scale.  No sign, no spaces.
 */
static enum cfg_parse_result
cfg_parse_scaled(const char *text, const struct cfg_unit *units, bool nocase,
		 uint64_t *value_r)
{
	const char *p = text;
	uint64_t n = 0;

	if (!isdigit((unsigned char)*p))
		return CFG_PARSE_BAD;
	bool overflow = false;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			n = n * 10 + digit;
	}
	for (const struct cfg_unit *u = units; u->suffix != NULL; u++) {
		int diff = nocase ? strcasecmp(p, u->suffix)
				  : strcmp(p, u->suffix);
		if (diff != 0)
			continue;
		/* Only now is it a number of this type; then check the size. */
		if (overflow || n > UINT64_MAX / u->factor)
			return CFG_PARSE_RANGE;
		*value_r = n * u->factor;
		return CFG_PARSE_OK;
	}
	return CFG_PARSE_BAD;
}

static enum cfg_parse_result
cfg_parse_int(const char *text, long long *value_r)
{
	const char *p = text;

	if (*p == '+' || *p == '-')
		p++;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
		return CFG_PARSE_BAD;
	errno = 0;
	long long v = strtoll(text, NULL, 10);
	if (errno == ERANGE)
		return CFG_PARSE_RANGE;
	*value_r = v;
	return CFG_PARSE_OK;
}

int
ts_parse_bool(const char *text, bool *value_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*value_r = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*value_r = false;
			return 0;
		}
	}
	return TS_E_INVAL;
}

int
ts_parse_duration_ms(const char *text, uint64_t *value_r)
{
	if (cfg_parse_scaled(text, cfg_duration_units, false, value_r) !=
	    CFG_PARSE_OK)
		return TS_E_INVAL;
	return 0;
}

int
ts_parse_size(const char *text, uint64_t *value_r)
{
	if (cfg_parse_scaled(text, cfg_size_units, true, value_r) !=
	    CFG_PARSE_OK)
		return TS_E_INVAL;
	return 0;
}

/* Whether text is exactly one of the '|'-separated choices. */
static bool
cfg_enum_has(const char *choices, const char *text)
{
	size_t len = strlen(text);
	const char *p = choices;

	for (;;) {
		size_t n = strcspn(p, "|");
		if (n == len && memcmp(p, text, n) == 0)
			return true;
		if (p[n] == '\0')
			return false;
		p += n + 1;
	}
}

/*
 * Check text as a value for key.  Returns NULL when it is fine, else the
 * complaint (caller frees), worded for `file:line: ` to go in front.
 */
static char *
cfg_value_problem(const struct ts_cfg_key *key, const char *text)
{
	bool b;
	long long ll;
	uint64_t u;

	switch (key->type) {
	case TS_CFG_STRING:
	case TS_CFG_LIST:
		return NULL;
	case TS_CFG_BOOL:
		if (ts_parse_bool(text, &b) == 0)
			return NULL;
		return ts_xasprintf("key '%s': '%s' is not a boolean "
				    "(yes/no, true/false, on/off, 1/0)",
				    key->name, text);
	case TS_CFG_INT:
		switch (cfg_parse_int(text, &ll)) {
		case CFG_PARSE_OK:
			if ((key->min == 0 && key->max == 0) ||
			    (ll >= key->min && ll <= key->max))
				return NULL;
			return ts_xasprintf("key '%s': %s is out of range "
					    "%lld..%lld",
					    key->name, text, key->min,
					    key->max);
		case CFG_PARSE_RANGE:
			if (key->min == 0 && key->max == 0)
				return ts_xasprintf(
					"key '%s': %s is out of range "
					"%lld..%lld",
					key->name, text, LLONG_MIN, LLONG_MAX);
			return ts_xasprintf("key '%s': %s is out of range "
					    "%lld..%lld",
					    key->name, text, key->min,
					    key->max);
		case CFG_PARSE_BAD:
			break;
		}
		return ts_xasprintf("key '%s': '%s' is not an integer",
				    key->name, text);
	case TS_CFG_DURATION:
		switch (cfg_parse_scaled(text, cfg_duration_units, false, &u)) {
		case CFG_PARSE_OK:
			return NULL;
		case CFG_PARSE_RANGE:
			return ts_xasprintf("key '%s': '%s' is too large",
					    key->name, text);
		case CFG_PARSE_BAD:
			break;
		}
		return ts_xasprintf("key '%s': '%s' is not a duration "
				    "(e.g. 30s, 5m, 2h)",
				    key->name, text);
	case TS_CFG_SIZE:
		switch (cfg_parse_scaled(text, cfg_size_units, true, &u)) {
		case CFG_PARSE_OK:
			return NULL;
		case CFG_PARSE_RANGE:
			return ts_xasprintf("key '%s': '%s' is too large",
					    key->name, text);
		case CFG_PARSE_BAD:
			break;
		}
		return ts_xasprintf("key '%s': '%s' is not a size "
				    "(e.g. 512, 64k, 10M, 1G)",
				    key->name, text);
	case TS_CFG_ENUM:
		if (cfg_enum_has(key->choices, text))
			return NULL;
		return ts_xasprintf("key '%s': '%s' is not one of %s",
				    key->name, text, key->choices);
	}
	return ts_xasprintf("key '%s': unknown type %d", key->name,
			    (int)key->type);
}

/* Split a LIST value on commas and whitespace, dropping empty items. */
static void
cfg_split_list(const char *text, char ***items_r, size_t *count_r)
{
	static const char sep[] = ", \t\r\n\v\f";
	const char *p = text;

	*items_r = NULL;
	*count_r = 0;
	for (;;) {
		p += strspn(p, sep);
		if (*p == '\0')
			break;
		size_t n = strcspn(p, sep);
		ts__strv_push(items_r, count_r, ts_xstrndup(p, n));
		p += n;
	}
}

/* --- the snapshot ------------------------------------------------------ */

static void
cfg_entry_clear(struct ts__cfg_entry *e)
{
	free(e->key);
	free(e->value);
	free(e->where);
	ts__strv_free(&e->items);
	e->item_count = 0;
}

static void
cfg_sect_free(struct ts_cfg_sect *s)
{
	for (size_t i = 0; i < s->entry_count; i++)
		cfg_entry_clear(&s->entries[i]);
	free(s->entries);
	for (size_t i = 0; i < s->default_count; i++)
		cfg_entry_clear(&s->defaults[i]);
	free(s->defaults);
	free(s->type);
	free(s->name);
	free(s->where);
	free(s);
}

void
ts__cfg_free(struct ts_cfg **cfgp)
{
	struct ts_cfg *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->sect_count; i++)
		cfg_sect_free(cfg->sects[i]);
	free(cfg->sects);
	ts__strv_free(&cfg->errors);
	free(cfg->main_path);
	free(cfg->conf_dir);
	free(cfg);
	*cfgp = NULL;
}

static bool
cfg_same_name(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

const struct ts_cfg_sect *
ts_cfg_find(const struct ts_cfg *cfg, const char *type, const char *name)
{
	for (size_t i = 0; i < cfg->sect_count; i++) {
		const struct ts_cfg_sect *s = cfg->sects[i];
		if (strcmp(s->type, type) == 0 && cfg_same_name(s->name, name))
			return s;
	}
	return NULL;
}

/*
 * Sections of a type in file order.  A NULL type walks every section,
 * which the kernel uses to find sections nobody bound.
 */
const struct ts_cfg_sect *
ts_cfg_next(const struct ts_cfg *cfg, const char *type,
	    const struct ts_cfg_sect *prev)
{
	size_t i = 0;

	if (prev != NULL) {
		while (i < cfg->sect_count && cfg->sects[i] != prev)
			i++;
		i++; /* past prev; past the end if prev is not ours */
	}
	for (; i < cfg->sect_count; i++) {
		if (type == NULL || strcmp(cfg->sects[i]->type, type) == 0)
			return cfg->sects[i];
	}
	return NULL;
}

const char *
ts_cfg_sect_type(const struct ts_cfg_sect *s)
{
	return s->type;
}

const char *
ts_cfg_sect_name(const struct ts_cfg_sect *s)
{
	return s->name;
}

struct ts__cfg_entry *
ts__cfg_entry_find(const struct ts_cfg_sect *s, const char *key)
{
	for (size_t i = 0; i < s->entry_count; i++) {
		if (strcmp(s->entries[i].key, key) == 0)
			return &s->entries[i];
	}
	return NULL;
}

const struct ts__cfg_entry *
ts__cfg_entry(const struct ts_cfg_sect *s, const char *key)
{
	return ts__cfg_entry_find(s, key);
}

const char *
ts__cfg_raw(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts__cfg_entry *e = ts__cfg_entry_find(s, key);

	return e != NULL ? e->value : NULL;
}

bool
ts_cfg_is_set(const struct ts_cfg_sect *s, const char *key)
{
	return ts__cfg_entry_find(s, key) != NULL;
}

const char *
ts_cfg_where(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts__cfg_entry *e;

	if (key != NULL && (e = ts__cfg_entry_find(s, key)) != NULL)
		return e->where;
	return s->where;
}

int
ts_cfg_error(struct ts_cfg *cfg, const struct ts_cfg_sect *s, const char *key,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts__cfg_verror(cfg, s != NULL ? ts_cfg_where(s, key) : NULL, fmt, ap);
	va_end(ap);
	return TS_E_INVAL;
}

/* --- binding ----------------------------------------------------------- */

static const struct ts_cfg_key *
cfg_schema_find(const struct ts_cfg_key *const *tables, size_t count,
		const char *key)
{
	for (size_t t = 0; t < count; t++) {
		for (const struct ts_cfg_key *k = tables[t]; k->name != NULL;
		     k++) {
			if (strcmp(k->name, key) == 0)
				return k;
		}
	}
	return NULL;
}

/* "[type]" or "[type name]" for messages; caller frees. */
static char *
cfg_sect_label(const struct ts_cfg_sect *s)
{
	if (s->name == NULL)
		return ts_xasprintf("[%s]", s->type);
	return ts_xasprintf("[%s %s]", s->type, s->name);
}

/* A declaration whose default does not parse is the module's bug. */
static void
cfg_check_declaration(const struct ts_cfg_sect *s, const struct ts_cfg_key *k)
{
	if (k->type == TS_CFG_ENUM && k->choices == NULL)
		cfg_die("enum key '%s' for [%s] declares no choices", k->name,
			s->type);
	if (k->default_value == NULL)
		return;
	char *problem = cfg_value_problem(k, k->default_value);
	if (problem != NULL)
		cfg_die("bad default for [%s] %s", s->type, problem);
}

void
ts__cfg_bind(struct ts_cfg *cfg, struct ts_cfg_sect *s,
	     const struct ts_cfg_key *const *tables, size_t table_count)
{
	if (table_count > CFG_MAX_TABLES)
		cfg_die("[%s] bound to %zu key tables, at most %zu", s->type,
			table_count, CFG_MAX_TABLES);
	for (size_t t = 0; t < table_count; t++) {
		for (const struct ts_cfg_key *k = tables[t]; k->name != NULL;
		     k++)
			cfg_check_declaration(s, k);
		s->tables[t] = tables[t];
	}
	s->table_count = table_count;
	s->bound = true;

	for (size_t i = 0; i < s->entry_count; i++) {
		struct ts__cfg_entry *e = &s->entries[i];
		ts__strv_free(&e->items);
		e->item_count = 0;
		e->schema = cfg_schema_find(tables, table_count, e->key);
		if (e->schema == NULL) {
			char *label = cfg_sect_label(s);
			ts__cfg_error(cfg, e->where, "unknown key '%s' in %s",
				      e->key, label);
			free(label);
			continue;
		}
		char *problem = cfg_value_problem(e->schema, e->value);
		if (problem != NULL) {
			ts__cfg_error(cfg, e->where, "%s", problem);
			free(problem);
		}
		if (e->schema->type == TS_CFG_LIST)
			cfg_split_list(e->value, &e->items, &e->item_count);
	}

	/* Split LIST defaults now, so the getters need not allocate. */
	for (size_t i = 0; i < s->default_count; i++)
		cfg_entry_clear(&s->defaults[i]);
	free(s->defaults);
	s->defaults = NULL;
	s->default_count = 0;
	for (size_t t = 0; t < table_count; t++) {
		for (const struct ts_cfg_key *k = tables[t]; k->name != NULL;
		     k++) {
			if (k->type != TS_CFG_LIST ||
			    k->default_value == NULL ||
			    ts__cfg_entry_find(s, k->name) != NULL ||
			    cfg_schema_find(tables, t, k->name) != NULL)
				continue;
			s->defaults = ts_xrealloc(s->defaults,
						  (s->default_count + 1) *
							  sizeof(*s->defaults));
			struct ts__cfg_entry *d =
				&s->defaults[s->default_count++];
			memset(d, 0, sizeof(*d));
			d->key = ts_xstrdup(k->name);
			d->schema = k;
			cfg_split_list(k->default_value, &d->items,
				       &d->item_count);
		}
	}
}

/* --- getters ----------------------------------------------------------- */

static const char *const cfg_type_names[] = {
	[TS_CFG_STRING] = "string", [TS_CFG_BOOL] = "bool",
	[TS_CFG_INT] = "int",	    [TS_CFG_DURATION] = "duration",
	[TS_CFG_SIZE] = "size",	    [TS_CFG_ENUM] = "enum",
	[TS_CFG_LIST] = "list",
};

/*
 * The declaration of key for a getter, which accepts the types in the bit
 * mask `types`.  Anything else is the caller's bug and aborts.
 */
static const struct ts_cfg_key *
cfg_declared(const struct ts_cfg_sect *s, const char *key, const char *getter,
	     unsigned types)
{
	if (!s->bound)
		cfg_die("%s(\"%s\"): section [%s%s%s] is not bound to key "
			"tables",
			getter, key, s->type, s->name ? " " : "",
			s->name ? s->name : "");
	const struct ts_cfg_key *k =
		cfg_schema_find(s->tables, s->table_count, key);
	if (k == NULL)
		cfg_die("%s(\"%s\"): key '%s' is not declared for [%s%s%s]",
			getter, key, key, s->type, s->name ? " " : "",
			s->name ? s->name : "");
	if (!(types & (1u << k->type)))
		cfg_die("%s(\"%s\"): key '%s' of [%s] is a %s", getter, key,
			key, s->type,
			(unsigned)k->type < sizeof(cfg_type_names) /
						    sizeof(cfg_type_names[0])
				? cfg_type_names[k->type]
				: "key of unknown type");
	return k;
}

/*
 * The text a typed getter converts: the written value if it is valid,
 * else the default (a bad value was reported at bind time; the getters
 * stay total so a module's check callback can still run), else NULL.
 */
static const char *
cfg_value_text(const struct ts_cfg_sect *s, const struct ts_cfg_key *k)
{
	const struct ts__cfg_entry *e = ts__cfg_entry_find(s, k->name);

	if (e != NULL) {
		char *problem = cfg_value_problem(k, e->value);
		if (problem == NULL)
			return e->value;
		free(problem);
	}
	return k->default_value;
}

const char *
ts_cfg_str(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts_cfg_key *k = cfg_declared(
		s, key, "ts_cfg_str",
		1u << TS_CFG_STRING | 1u << TS_CFG_ENUM | 1u << TS_CFG_LIST);

	return cfg_value_text(s, k);
}

bool
ts_cfg_bool(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts_cfg_key *k =
		cfg_declared(s, key, "ts_cfg_bool", 1u << TS_CFG_BOOL);
	const char *text = cfg_value_text(s, k);
	bool value = false;

	if (text != NULL)
		(void)ts_parse_bool(text, &value);
	return value;
}

long long
ts_cfg_int(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts_cfg_key *k =
		cfg_declared(s, key, "ts_cfg_int", 1u << TS_CFG_INT);
	const char *text = cfg_value_text(s, k);
	long long value = 0;

	if (text != NULL)
		(void)cfg_parse_int(text, &value);
	return value;
}

uint64_t
ts_cfg_duration_ms(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts_cfg_key *k = cfg_declared(s, key, "ts_cfg_duration_ms",
						  1u << TS_CFG_DURATION);
	const char *text = cfg_value_text(s, k);
	uint64_t value = 0;

	if (text != NULL)
		(void)ts_parse_duration_ms(text, &value);
	return value;
}

uint64_t
ts_cfg_size(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts_cfg_key *k =
		cfg_declared(s, key, "ts_cfg_size", 1u << TS_CFG_SIZE);
	const char *text = cfg_value_text(s, k);
	uint64_t value = 0;

	if (text != NULL)
		(void)ts_parse_size(text, &value);
	return value;
}

/* The entry holding a LIST key's items: written, or the split default. */
static const struct ts__cfg_entry *
cfg_list_entry(const struct ts_cfg_sect *s, const char *key, const char *getter)
{
	const struct ts_cfg_key *k =
		cfg_declared(s, key, getter, 1u << TS_CFG_LIST);
	const struct ts__cfg_entry *e = ts__cfg_entry_find(s, k->name);

	if (e != NULL)
		return e;
	for (size_t i = 0; i < s->default_count; i++) {
		if (strcmp(s->defaults[i].key, key) == 0)
			return &s->defaults[i];
	}
	return NULL;
}

size_t
ts_cfg_list_len(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts__cfg_entry *e =
		cfg_list_entry(s, key, "ts_cfg_list_len");

	return e != NULL ? e->item_count : 0;
}

const char *
ts_cfg_list_item(const struct ts_cfg_sect *s, const char *key, size_t i)
{
	const struct ts__cfg_entry *e =
		cfg_list_entry(s, key, "ts_cfg_list_item");
	size_t count = e != NULL ? e->item_count : 0;

	if (i >= count)
		cfg_die("ts_cfg_list_item(\"%s\", %zu): the list has %zu "
			"items",
			key, i, count);
	return e->items[i];
}
