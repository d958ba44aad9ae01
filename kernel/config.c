/*
 * kernel/config.c — read tessera.ini, then the .ini files of conf.d/ and
 * local.d/, into one configuration snapshot, check it against the key
 * tables the kernel and the modules declare, and answer the typed getters
 * of <tessera/config.h>.
 *
 * inih does the line syntax (sections, `key = value`, comments, indented
 * continuation lines).  Our own reader callback sits in front of it: it
 * counts lines so every value knows its `file:line`, and it judges each
 * line before inih sees it, so every bad line is reported with its own
 * message instead of inih's single "first error line".  Lines it rejects
 * reach inih blanked out.
 *
 * This file knows nothing about modules: the lead's boot code decides which
 * tables a section is bound to (ts__cfg_bind) and finds a module's section
 * (ts_cfg_module_section lives elsewhere).  Nothing here touches the event
 * loop; a snapshot is immutable once bound, so getters are safe from any
 * thread.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "kernel/kernel.h"

#define CFG_MAX_TABLES (sizeof(((struct ts_cfg_sect *)0)->tables) / \
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

static void
cfg_verror(struct ts_cfg *cfg, const char *where, const char *fmt,
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
	cfg_verror(cfg, where, fmt, ap);
	va_end(ap);
}

/* --- value syntax ------------------------------------------------------ */

/* Outcome of the internal value parsers. */
enum cfg_parse_result {
	CFG_PARSE_OK = 0,
	CFG_PARSE_BAD,     /* not of the type at all */
	CFG_PARSE_RANGE,   /* well formed but does not fit */
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
	{ "", 1 },
	{ "b", 1 },
	{ "k", 1ULL << 10 },
	{ "kb", 1ULL << 10 },
	{ "m", 1ULL << 20 },
	{ "mb", 1ULL << 20 },
	{ "g", 1ULL << 30 },
	{ "gb", 1ULL << 30 },
	{ "t", 1ULL << 40 },
	{ "tb", 1ULL << 40 },
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
					    "%lld..%lld", key->name, text,
					    key->min, key->max);
		case CFG_PARSE_RANGE:
			if (key->min == 0 && key->max == 0)
				return ts_xasprintf(
					"key '%s': %s is out of range "
					"%lld..%lld", key->name, text,
					LLONG_MIN, LLONG_MAX);
			return ts_xasprintf("key '%s': %s is out of range "
					    "%lld..%lld", key->name, text,
					    key->min, key->max);
		case CFG_PARSE_BAD:
			break;
		}
		return ts_xasprintf("key '%s': '%s' is not an integer",
				    key->name, text);
	case TS_CFG_DURATION:
		switch (cfg_parse_scaled(text, cfg_duration_units, false,
					 &u)) {
		case CFG_PARSE_OK:
			return NULL;
		case CFG_PARSE_RANGE:
			return ts_xasprintf("key '%s': '%s' is too large",
					    key->name, text);
		case CFG_PARSE_BAD:
			break;
		}
		return ts_xasprintf("key '%s': '%s' is not a duration "
				    "(e.g. 30s, 5m, 2h)", key->name, text);
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
				    "(e.g. 512, 64k, 10M, 1G)", key->name,
				    text);
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

/* The directory part of path ("." when there is none). */
static char *
cfg_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return ts_xstrdup(".");
	while (slash > path && slash[-1] == '/')
		slash--;
	if (slash == path)
		return ts_xstrdup("/");
	return ts_xstrndup(path, (size_t)(slash - path));
}

/* dir/name, without a leading "./" so messages stay short. */
static char *
cfg_join(const char *dir, const char *name)
{
	if (strcmp(dir, ".") == 0)
		return ts_xstrdup(name);
	size_t len = strlen(dir);
	if (len > 0 && dir[len - 1] == '/')
		return ts_xasprintf("%s%s", dir, name);
	return ts_xasprintf("%s/%s", dir, name);
}

static struct ts_cfg *
cfg_new(const char *main_path)
{
	struct ts_cfg *cfg = ts_xcalloc(1, sizeof(*cfg));

	cfg->main_path = ts_xstrdup(main_path);
	cfg->conf_dir = cfg_dirname(main_path);
	return cfg;
}

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

static struct ts__cfg_entry *
cfg_entry_find(const struct ts_cfg_sect *s, const char *key)
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
	return cfg_entry_find(s, key);
}

const char *
ts__cfg_raw(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts__cfg_entry *e = cfg_entry_find(s, key);

	return e != NULL ? e->value : NULL;
}

bool
ts_cfg_is_set(const struct ts_cfg_sect *s, const char *key)
{
	return cfg_entry_find(s, key) != NULL;
}

const char *
ts_cfg_where(const struct ts_cfg_sect *s, const char *key)
{
	const struct ts__cfg_entry *e;

	if (key != NULL && (e = cfg_entry_find(s, key)) != NULL)
		return e->where;
	return s->where;
}

int
ts_cfg_error(struct ts_cfg *cfg, const struct ts_cfg_sect *s,
	     const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror(cfg, s != NULL ? ts_cfg_where(s, key) : NULL, fmt, ap);
	va_end(ap);
	return TS_E_INVAL;
}

/* --- parsing ----------------------------------------------------------- */

/* What the reader decided the current line is, for the handler. */
enum cfg_line_kind {
	CFG_LINE_SKIP,   /* blank, comment, header, or already reported */
	CFG_LINE_KEY,    /* key = value */
	CFG_LINE_CONT,   /* indented continuation of the previous value */
};

struct cfg_parser {
	struct ts_cfg *cfg;
	const char *file;       /* as it appears in "file:line" */
	FILE *fp;               /* the source: a file … */
	const char *text;       /* … or the rest of a string */
	char *linebuf;          /* getline's buffer */
	size_t linebuf_size;
	unsigned lineno;
	enum cfg_line_kind kind;
	/* Mirrors inih's "previous name" that makes indented lines continue. */
	bool have_prev_key;
	char *prev_key;
	struct ts_cfg_sect *sect; /* current section; NULL before/after bad */
	bool after_bad_header;    /* keys under a bad header: not reported */
	/* The entry a continuation line extends (index in sect->entries). */
	struct ts_cfg_sect *cont_sect;
	size_t cont_index;
};

static void cfg_parse_error(struct cfg_parser *p, const char *fmt, ...)
	TS_PRINTF(2, 3);

/* Record an error at the line being read. */
static void
cfg_parse_error(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;
	char *where = ts_xasprintf("%s:%u", p->file, p->lineno);

	va_start(ap, fmt);
	cfg_verror(p->cfg, where, fmt, ap);
	va_end(ap);
	free(where);
}

/*
 * Whether `where` ("file:line") names a line of the file being parsed.  The
 * part after the last ':' is all digits, so the file part is unambiguous.
 */
static bool
cfg_where_in_file(const char *where, const char *file)
{
	size_t len = strlen(file);

	return strncmp(where, file, len) == 0 && where[len] == ':' &&
	       strchr(where + len + 1, ':') == NULL;
}

static bool
cfg_chars_ok(const char *s, size_t n, const char *extra, bool upper)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (upper && c >= 'A' && c <= 'Z') ||
		    (c != '\0' && strchr(extra, c) != NULL))
			continue;
		return false;
	}
	return true;
}

static bool
cfg_key_name_ok(const char *s, size_t n)
{
	return cfg_chars_ok(s, n, "_", false);
}

static struct ts_cfg_sect *
cfg_sect_get(struct cfg_parser *p, const char *type, size_t type_len,
	     const char *name, size_t name_len)
{
	struct ts_cfg *cfg = p->cfg;
	char *t = ts_xstrndup(type, type_len);
	char *n = name != NULL ? ts_xstrndup(name, name_len) : NULL;
	struct ts_cfg_sect *s = (struct ts_cfg_sect *)ts_cfg_find(cfg, t, n);

	if (s != NULL) {
		/* Seen before: merge into it, keeping its place. */
		free(t);
		free(n);
		return s;
	}
	s = ts_xcalloc(1, sizeof(*s));
	s->type = t;
	s->name = n;
	s->where = ts_xasprintf("%s:%u", p->file, p->lineno);
	cfg->sects = ts_xrealloc(cfg->sects,
				 (cfg->sect_count + 1) * sizeof(*cfg->sects));
	cfg->sects[cfg->sect_count++] = s;
	return s;
}

/*
 * A line starting with '[' (s, n bytes, already trimmed): `[type]` or
 * `[type name]`, optionally followed by a comment.  Switches the current
 * section or reports the header.
 */
static void
cfg_header(struct cfg_parser *p, const char *s, size_t n)
{
	const char *close = memchr(s, ']', n);
	size_t shown = n;
	bool ok = close != NULL;

	p->sect = NULL;
	p->cont_sect = NULL;
	if (ok) {
		const char *rest = close + 1;
		while (rest < s + n && isspace((unsigned char)*rest))
			rest++;
		if (rest < s + n && *rest != ';' && *rest != '#')
			ok = false;
		else
			shown = (size_t)(close - s) + 1;
	}
	/* Inside the brackets: type, then at most one name. */
	const char *type = s + 1, *end = ok ? close : s + n;
	while (type < end && isspace((unsigned char)*type))
		type++;
	size_t type_len = 0;
	while (type + type_len < end &&
	       !isspace((unsigned char)type[type_len]))
		type_len++;
	const char *name = type + type_len;
	while (name < end && isspace((unsigned char)*name))
		name++;
	size_t name_len = 0;
	while (name + name_len < end &&
	       !isspace((unsigned char)name[name_len]))
		name_len++;
	const char *after = name + name_len;
	while (after < end && isspace((unsigned char)*after))
		after++;

	if (ok)
		ok = cfg_chars_ok(type, type_len, "_-", false) &&
		     (name_len == 0 ||
		      cfg_chars_ok(name, name_len, "_.@-+", true)) &&
		     after == end;
	if (!ok) {
		cfg_parse_error(p, "bad section header '%.*s'", (int)shown, s);
		p->after_bad_header = true;
		return;
	}
	p->after_bad_header = false;
	p->sect = cfg_sect_get(p, type, type_len, name_len ? name : NULL,
			       name_len);
}

/*
 * inih's rule for where the name of `name = value` ends: at the first '='
 * or ':', or at an inline comment (';' after whitespace).
 */
static const char *
cfg_find_separator(const char *s)
{
	bool was_space = false;

	for (; *s != '\0'; s++) {
		if (*s == '=' || *s == ':' || (was_space && *s == ';'))
			break;
		was_space = isspace((unsigned char)*s);
	}
	return s;
}

/* Whether an indented line reads like `key = …` (a likely mistake). */
static bool
cfg_looks_like_key(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");

	if (n == 0)
		return false;
	s += n;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '=';
}

/*
 * Judge one line (NUL-terminated in line, which is inih's buffer) the way
 * inih will read it, report what is wrong, and leave in line what inih
 * should see: the line itself, "[]" for a header (so inih forgets the
 * previous key as it does on any header), or "" for a rejected line.
 */
static void
cfg_classify(struct cfg_parser *p, char *line)
{
	const char *s = line;

	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* a UTF-8 byte order mark, which inih skips too */
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;

	if (n == 0 || *s == ';' || *s == '#')
		return;
	if (p->have_prev_key && s > line) {
		if (cfg_looks_like_key(s)) {
			cfg_parse_error(p, "indented line would continue the "
					"value of '%s'; remove the "
					"indentation to start a new key",
					p->prev_key);
			line[0] = '\0';
			return;
		}
		p->kind = CFG_LINE_CONT;
		return;
	}
	if (*s == '[') {
		cfg_header(p, s, n);
		p->have_prev_key = false;
		strcpy(line, "[]");
		return;
	}
	const char *sep = cfg_find_separator(s);
	if (*sep != '=') {
		cfg_parse_error(p, "syntax error: expected '[section]' or "
				"'key = value'");
		line[0] = '\0';
		return;
	}
	size_t name_len = (size_t)(sep - s);
	while (name_len > 0 && isspace((unsigned char)s[name_len - 1]))
		name_len--;
	p->kind = CFG_LINE_KEY;
	p->have_prev_key = name_len > 0;
	free(p->prev_key);
	p->prev_key = ts_xstrndup(s, name_len);
}

/* The next raw line of the source without its '\n'; false at the end. */
static bool
cfg_next_line(struct cfg_parser *p, const char **line_r, size_t *len_r)
{
	if (p->fp != NULL) {
		ssize_t len = getline(&p->linebuf, &p->linebuf_size, p->fp);
		if (len < 0)
			return false;
		if (len > 0 && p->linebuf[len - 1] == '\n')
			len--;
		*line_r = p->linebuf;
		*len_r = (size_t)len;
		return true;
	}
	if (p->text == NULL || *p->text == '\0')
		return false;
	const char *nl = strchr(p->text, '\n');
	*line_r = p->text;
	if (nl != NULL) {
		*len_r = (size_t)(nl - p->text);
		p->text = nl + 1;
	} else {
		*len_r = strlen(p->text);
		p->text += *len_r;
	}
	return true;
}

/*
 * inih's reader callback: hands inih one line at a time in its buffer of
 * `size` bytes (INI_MAX_LINE, 200 in Debian's build, on inih's stack).  A
 * line that would not fit is reported and replaced by a blank line, so
 * inih never sees half a line.
 */
static char *
cfg_reader(char *buf, int size, void *stream)
{
	struct cfg_parser *p = stream;
	const char *line;
	size_t len;

	if (!cfg_next_line(p, &line, &len))
		return NULL;
	p->lineno++;
	p->kind = CFG_LINE_SKIP;
	buf[0] = '\0';
	if (size < 3)
		return buf; /* cannot happen with inih's fixed buffer */
	if (len > (size_t)size - 1) {
		cfg_parse_error(p, "line too long (max %d bytes)", size - 1);
		return buf;
	}
	if (memchr(line, '\0', len) != NULL) {
		cfg_parse_error(p, "line contains a NUL byte");
		return buf;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	cfg_classify(p, buf);
	return buf;
}

/* Append an indented continuation line to the value it continues. */
static void
cfg_continue(struct cfg_parser *p, const char *text)
{
	if (p->cont_sect == NULL)
		return; /* continues a rejected key: already reported */
	struct ts__cfg_entry *e = &p->cont_sect->entries[p->cont_index];

	/* inih keeps inline comments on continuation lines; drop them too. */
	size_t n = strlen(text);
	for (size_t i = 1; i < n; i++) {
		if (text[i] == ';' && isspace((unsigned char)text[i - 1])) {
			n = i;
			break;
		}
	}
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	if (n == 0)
		return;
	char *value = e->value[0] == '\0'
			      ? ts_xstrndup(text, n)
			      : ts_xasprintf("%s %.*s", e->value, (int)n, text);
	free(e->value);
	e->value = value;
}

/*
 * inih's handler: one `name = value` (or a continuation, as a repeat of the
 * previous name).  The section comes from our reader, not from inih, which
 * truncates long section names.  Always returns 1: errors are ours to
 * record.
 */
static int
cfg_handler(void *user, const char *section, const char *name,
	    const char *value)
{
	struct cfg_parser *p = user;

	(void)section;
	if (p->kind == CFG_LINE_CONT) {
		cfg_continue(p, value);
		return 1;
	}
	if (p->kind != CFG_LINE_KEY)
		return 1;
	p->cont_sect = NULL;
	if (p->sect == NULL) {
		if (!p->after_bad_header)
			cfg_parse_error(p, "key '%s' outside a section", name);
		return 1;
	}
	if (!cfg_key_name_ok(name, strlen(name))) {
		cfg_parse_error(p, "bad key name '%s' (use a-z, 0-9 and _)",
				name);
		return 1;
	}
	struct ts_cfg_sect *s = p->sect;
	struct ts__cfg_entry *e = cfg_entry_find(s, name);
	char *where = ts_xasprintf("%s:%u", p->file, p->lineno);
	if (e != NULL && cfg_where_in_file(e->where, p->file)) {
		cfg_parse_error(p, "key '%s' already set at %s", name,
				e->where);
		free(where);
		return 1;
	}
	if (e != NULL) {
		/* A later file overrides an earlier one, key by key. */
		free(e->value);
		free(e->where);
	} else {
		s->entries = ts_xrealloc(s->entries, (s->entry_count + 1) *
						   sizeof(*s->entries));
		e = &s->entries[s->entry_count++];
		memset(e, 0, sizeof(*e));
		e->key = ts_xstrdup(name);
	}
	e->value = ts_xstrdup(value);
	e->where = where;
	p->cont_sect = s;
	p->cont_index = (size_t)(e - s->entries);
	return 1;
}

/* Run inih over one source (p->fp or p->text) named `file`. */
static void
cfg_parse_source(struct cfg_parser *p)
{
	int line = ini_parse_stream(cfg_reader, p, cfg_handler, p);

	/*
	 * The reader blanks every line it rejects, so inih should never
	 * find one; if it does, still say where.
	 */
	if (line > 0) {
		char *where = ts_xasprintf("%s:%d", p->file, line);
		ts__cfg_error(p->cfg, where, "syntax error");
		free(where);
	} else if (line < 0) {
		ts__cfg_error(p->cfg, p->file, "cannot parse (inih error %d)",
			      line);
	}
	free(p->linebuf);
	free(p->prev_key);
}

static void
cfg_parse_file(struct ts_cfg *cfg, const char *path)
{
	struct cfg_parser p = { .cfg = cfg, .file = path };

	p.fp = fopen(path, "r");
	if (p.fp == NULL) {
		ts__cfg_error(cfg, path, "cannot read: %s", strerror(errno));
		return;
	}
	cfg_parse_source(&p);
	if (ferror(p.fp))
		ts__cfg_error(cfg, path, "cannot read: %s", strerror(errno));
	fclose(p.fp);
}

static int
cfg_ini_filter(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	/* Dot files are editor leftovers (".#10-smtp.ini"), not config. */
	return d->d_name[0] != '.' && len > 4 &&
	       strcmp(d->d_name + len - 4, ".ini") == 0;
}

/* Byte order, not the locale's: the same files load the same way anywhere. */
static int
cfg_ini_compare(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Parse the .ini files of <conf_dir>/<sub> in lexical order (may be absent). */
static void
cfg_parse_dir(struct ts_cfg *cfg, const char *sub)
{
	char *dir = cfg_join(cfg->conf_dir, sub);
	struct dirent **list;
	int n = scandir(dir, &list, cfg_ini_filter, cfg_ini_compare);

	if (n < 0) {
		if (errno != ENOENT)
			ts__cfg_error(cfg, dir, "cannot read: %s",
				      strerror(errno));
		free(dir);
		return;
	}
	for (int i = 0; i < n; i++) {
		char *path = cfg_join(dir, list[i]->d_name);
		cfg_parse_file(cfg, path);
		free(path);
		free(list[i]);
	}
	free(list);
	free(dir);
}

struct ts_cfg *
ts__cfg_parse(const char *main_path)
{
	struct ts_cfg *cfg = cfg_new(main_path);

	cfg_parse_file(cfg, main_path);
	cfg_parse_dir(cfg, "conf.d");
	cfg_parse_dir(cfg, "local.d");
	return cfg;
}

struct ts_cfg *
ts__cfg_parse_string(const char *name, const char *text)
{
	struct ts_cfg *cfg = cfg_new(name);
	struct cfg_parser p = { .cfg = cfg, .file = name, .text = text };

	cfg_parse_source(&p);
	return cfg;
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
			    cfg_entry_find(s, k->name) != NULL ||
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
	[TS_CFG_STRING] = "string",
	[TS_CFG_BOOL] = "bool",
	[TS_CFG_INT] = "int",
	[TS_CFG_DURATION] = "duration",
	[TS_CFG_SIZE] = "size",
	[TS_CFG_ENUM] = "enum",
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
			"tables", getter, key, s->type, s->name ? " " : "",
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
	const struct ts__cfg_entry *e = cfg_entry_find(s, k->name);

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
cfg_list_entry(const struct ts_cfg_sect *s, const char *key,
	       const char *getter)
{
	const struct ts_cfg_key *k =
		cfg_declared(s, key, getter, 1u << TS_CFG_LIST);
	const struct ts__cfg_entry *e = cfg_entry_find(s, k->name);

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
			"items", key, i, count);
	return e->items[i];
}
