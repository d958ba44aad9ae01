/*
 * kernel/config-parse.c — read tessera.ini, then the .ini files of conf.d/,
 * domains.d/ and local.d/, into one configuration snapshot.
 *
 * inih does the line syntax (sections, `key = value`, comments, indented
 * continuation lines).  Our own reader callback sits in front of it: it
 * counts lines so every value knows its `file:line`, and it judges each
 * line before inih sees it, so every bad line is reported with its own
 * message instead of inih's single "first error line".  Lines it rejects
 * reach inih blanked out.
 *
 * It is not for checking values: a parsed snapshot holds raw text.
 * kernel/config.c owns the snapshot model, binds sections to the key
 * tables (reporting unknown keys and bad values) and answers the getters.
 * Nothing here touches the event loop.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "kernel/kernel.h"
#include "kernel/config-private.h"

/* --- a new snapshot ---------------------------------------------------- */

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

/* --- parsing ----------------------------------------------------------- */

/* What the reader decided the current line is, for the handler. */
enum cfg_line_kind {
	CFG_LINE_SKIP, /* blank, comment, header, or already reported */
	CFG_LINE_KEY, /* key = value */
	CFG_LINE_CONT, /* indented continuation of the previous value */
};

struct cfg_parser {
	struct ts_cfg *cfg;
	const char *file; /* as it appears in "file:line" */
	FILE *fp; /* the source: a file … */
	const char *text; /* … or the rest of a string */
	char *linebuf; /* getline's buffer */
	size_t linebuf_size;
	unsigned lineno;
	enum cfg_line_kind kind;
	/* Mirrors inih's "previous name" that makes indented lines continue. */
	bool have_prev_key;
	char *prev_key;
	struct ts_cfg_sect *sect; /* current section; NULL before/after bad */
	bool after_bad_header; /* keys under a bad header: not reported */
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
	ts__cfg_verror(p->cfg, where, fmt, ap);
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

/*
 * Whether s (n bytes) holds only lower-case letters, digits and `extra`;
 * a section name (`name`) may also hold upper case and non-ASCII bytes,
 * so internationalised domains and addresses can be written as UTF-8
 * (the code reading the section checks them further).
 */
static bool
cfg_chars_ok(const char *s, size_t n, const char *extra, bool name)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (name && ((c >= 'A' && c <= 'Z') || c >= 0x80)) ||
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
	while (type + type_len < end && !isspace((unsigned char)type[type_len]))
		type_len++;
	const char *name = type + type_len;
	while (name < end && isspace((unsigned char)*name))
		name++;
	size_t name_len = 0;
	while (name + name_len < end && !isspace((unsigned char)name[name_len]))
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
			cfg_parse_error(p,
					"indented line would continue the "
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
	struct ts__cfg_entry *e = ts__cfg_entry_find(s, name);
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
		s->entries = ts_xrealloc(
			s->entries, (s->entry_count + 1) * sizeof(*s->entries));
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
	/* Domains and accounts: the site's data, kept apart from settings. */
	cfg_parse_dir(cfg, "domains.d");
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
