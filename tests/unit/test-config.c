/*
 * tests/unit/test-config.c — the configuration loader (kernel/config.c).
 *
 * Parses ini text and real directory trees (tessera.ini, conf.d/, local.d/
 * in a mkdtemp directory), binds sections to key tables and checks the
 * typed getters, the defaults and the exact `file:line: message` of every
 * error the loader reports.  Programming errors (wrong getter, undeclared
 * key, bad default) must abort; those run in a forked child.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel/kernel.h"

static const struct ts_cfg_key test_keys[] = {
	{ .name = "name", .type = TS_CFG_STRING, .default_value = "anon" },
	{ .name = "nodefault", .type = TS_CFG_STRING },
	{ .name = "enabled", .type = TS_CFG_BOOL, .default_value = "no" },
	{ .name = "flag", .type = TS_CFG_BOOL },
	{ .name = "port",
	  .type = TS_CFG_INT,
	  .default_value = "25",
	  .min = 1,
	  .max = 65535 },
	{ .name = "count", .type = TS_CFG_INT },
	{ .name = "timeout", .type = TS_CFG_DURATION, .default_value = "30s" },
	{ .name = "idle", .type = TS_CFG_DURATION },
	{ .name = "max_size", .type = TS_CFG_SIZE, .default_value = "10M" },
	{ .name = "mode",
	  .type = TS_CFG_ENUM,
	  .default_value = "none",
	  .choices = "none|starttls|tls" },
	{ .name = "modules",
	  .type = TS_CFG_LIST,
	  .default_value = "smtp, imap  dkim" },
	{ .name = "extra", .type = TS_CFG_LIST },
	{ .name = NULL },
};

static const struct ts_cfg_key test_more_keys[] = {
	{ .name = "more", .type = TS_CFG_STRING, .default_value = "m" },
	/* Declared again: the first table's declaration wins. */
	{ .name = "name", .type = TS_CFG_INT },
	{ .name = NULL },
};

static const struct ts_cfg_key *const test_tables[] = { test_keys,
							test_more_keys };

static void
bind_all(struct ts_cfg *cfg)
{
	for (size_t i = 0; i < cfg->sect_count; i++)
		ts__cfg_bind(cfg, cfg->sects[i], test_tables, 2);
}

/* Assert the recorded errors are exactly the NULL-terminated list. */
static void
expect_errors(const struct ts_cfg *cfg, ...)
{
	va_list ap;
	size_t n = 0;
	bool same = true;

	va_start(ap, cfg);
	for (const char *want; (want = va_arg(ap, const char *)) != NULL; n++) {
		if (n >= cfg->error_count || strcmp(cfg->errors[n], want) != 0)
			same = false;
	}
	va_end(ap);
	if (n != cfg->error_count)
		same = false;
	if (!same) {
		for (size_t i = 0; i < cfg->error_count; i++)
			print_error("got error %zu: %s\n", i, cfg->errors[i]);
		va_start(ap, cfg);
		const char *want;
		while ((want = va_arg(ap, const char *)) != NULL)
			print_error("wanted: %s\n", want);
		va_end(ap);
		fail_msg("errors differ (%zu recorded, %zu wanted)",
			 cfg->error_count, n);
	}
}

static void
test_good_file(void **state)
{
	struct ts_cfg *cfg = ts__cfg_parse_string(
		"t.ini", "; a comment\n"
			 "# another\n"
			 "\n"
			 "[core]\n"
			 "name = mail.example.org ; trailing comment\n"
			 "enabled = Yes\r\n"
			 "flag=off\n"
			 "port = 2525\n"
			 "count = -12\n"
			 "timeout = 250ms\n"
			 "idle = 2h\n"
			 "max_size = 64k\n"
			 "mode = tls\n"
			 "modules = a,b , c\td\n"
			 "more = x\n"
			 "\n"
			 "[transport relay]\n"
			 "[transport b.x@y-z+1]\n"
			 "[ other ]\n"
			 "[transport a]\n");

	expect_errors(cfg, NULL);
	assert_string_equal(cfg->main_path, "t.ini");
	assert_string_equal(cfg->conf_dir, ".");
	bind_all(cfg);
	expect_errors(cfg, NULL);

	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_non_null(s);
	assert_true(s->bound);
	assert_int_equal(s->table_count, 2);
	assert_string_equal(ts_cfg_sect_type(s), "core");
	assert_null(ts_cfg_sect_name(s));
	assert_string_equal(ts_cfg_where(s, NULL), "t.ini:4");
	assert_string_equal(ts_cfg_str(s, "name"), "mail.example.org");
	assert_null(ts_cfg_str(s, "nodefault"));
	assert_true(ts_cfg_bool(s, "enabled"));
	assert_false(ts_cfg_bool(s, "flag"));
	assert_int_equal(ts_cfg_int(s, "port"), 2525);
	assert_int_equal(ts_cfg_int(s, "count"), -12);
	assert_int_equal(ts_cfg_duration_ms(s, "timeout"), 250);
	assert_int_equal(ts_cfg_duration_ms(s, "idle"), 2 * 3600 * 1000);
	assert_int_equal(ts_cfg_size(s, "max_size"), 64 * 1024);
	assert_string_equal(ts_cfg_str(s, "mode"), "tls");
	assert_string_equal(ts_cfg_str(s, "modules"), "a,b , c\td");
	assert_int_equal(ts_cfg_list_len(s, "modules"), 4);
	assert_string_equal(ts_cfg_list_item(s, "modules", 0), "a");
	assert_string_equal(ts_cfg_list_item(s, "modules", 1), "b");
	assert_string_equal(ts_cfg_list_item(s, "modules", 2), "c");
	assert_string_equal(ts_cfg_list_item(s, "modules", 3), "d");
	assert_string_equal(ts_cfg_str(s, "more"), "x");
	assert_int_equal(ts_cfg_list_len(s, "extra"), 0);
	assert_true(ts_cfg_is_set(s, "port"));
	assert_false(ts_cfg_is_set(s, "extra"));
	assert_string_equal(ts_cfg_where(s, "port"), "t.ini:8");
	assert_string_equal(ts_cfg_where(s, "extra"), "t.ini:4");
	assert_string_equal(ts__cfg_raw(s, "enabled"), "Yes");
	assert_null(ts__cfg_raw(s, "extra"));
	const struct ts__cfg_entry *e = ts__cfg_entry(s, "count");
	assert_non_null(e);
	assert_ptr_equal(e->schema, &test_keys[5]);
	assert_string_equal(e->where, "t.ini:9");

	/* Named sections, in file order; `[ other ]` trims its spaces. */
	const struct ts_cfg_sect *t = ts_cfg_next(cfg, "transport", NULL);
	assert_non_null(t);
	assert_string_equal(ts_cfg_sect_name(t), "relay");
	assert_string_equal(ts_cfg_where(t, NULL), "t.ini:17");
	t = ts_cfg_next(cfg, "transport", t);
	assert_string_equal(ts_cfg_sect_name(t), "b.x@y-z+1");
	t = ts_cfg_next(cfg, "transport", t);
	assert_string_equal(ts_cfg_sect_name(t), "a");
	assert_null(ts_cfg_next(cfg, "transport", t));
	assert_ptr_equal(ts_cfg_find(cfg, "transport", "a"), t);
	assert_null(ts_cfg_find(cfg, "transport", NULL));
	assert_null(ts_cfg_find(cfg, "transport", "zz"));
	assert_non_null(ts_cfg_find(cfg, "other", NULL));
	assert_null(ts_cfg_next(cfg, "nothing", NULL));
	/* A NULL type walks every section. */
	size_t all = 0;
	for (const struct ts_cfg_sect *x = ts_cfg_next(cfg, NULL, NULL);
	     x != NULL; x = ts_cfg_next(cfg, NULL, x))
		all++;
	assert_int_equal(all, 5);

	ts__cfg_free(&cfg);
	assert_null(cfg);
	ts__cfg_free(&cfg); /* harmless on NULL */
}

static const struct ts_cfg_key test_host_keys[] = {
	{ .name = "hostname", .type = TS_CFG_STRING, .default_value = "" },
	{ .name = NULL },
};

/* ts_cfg_hostname: [core] hostname, else the system's name. */
static void
test_hostname(void **state)
{
	(void)state;
	const struct ts_cfg_key *const tables[] = { test_host_keys };
	struct ts_cfg *cfg = ts__cfg_parse_string(
		"h.ini", "[core]\nhostname = mx.example.org\n");
	ts__cfg_bind(cfg, cfg->sects[0], tables, 1);
	expect_errors(cfg, NULL);
	char *name = ts_cfg_hostname(cfg);
	assert_string_equal(name, "mx.example.org");
	free(name);
	ts__cfg_free(&cfg);

	cfg = ts__cfg_parse_string("h.ini", "[core]\nhostname =\n");
	ts__cfg_bind(cfg, cfg->sects[0], tables, 1);
	char sys[256];
	if (gethostname(sys, sizeof(sys)) != 0 || sys[0] == '\0')
		strcpy(sys, "localhost");
	name = ts_cfg_hostname(cfg);
	assert_string_equal(name, sys);
	free(name);
	ts__cfg_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct ts_cfg *cfg = ts__cfg_parse_string("d.ini", "[core]\n");

	bind_all(cfg);
	expect_errors(cfg, NULL);
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_string_equal(ts_cfg_str(s, "name"), "anon");
	assert_null(ts_cfg_str(s, "nodefault"));
	assert_false(ts_cfg_bool(s, "enabled"));
	assert_false(ts_cfg_bool(s, "flag"));
	assert_int_equal(ts_cfg_int(s, "port"), 25);
	assert_int_equal(ts_cfg_int(s, "count"), 0);
	assert_int_equal(ts_cfg_duration_ms(s, "timeout"), 30000);
	assert_int_equal(ts_cfg_duration_ms(s, "idle"), 0);
	assert_int_equal(ts_cfg_size(s, "max_size"), 10 * 1024 * 1024);
	assert_string_equal(ts_cfg_str(s, "mode"), "none");
	assert_string_equal(ts_cfg_str(s, "modules"), "smtp, imap  dkim");
	assert_int_equal(ts_cfg_list_len(s, "modules"), 3);
	assert_string_equal(ts_cfg_list_item(s, "modules", 0), "smtp");
	assert_string_equal(ts_cfg_list_item(s, "modules", 1), "imap");
	assert_string_equal(ts_cfg_list_item(s, "modules", 2), "dkim");
	assert_int_equal(ts_cfg_list_len(s, "extra"), 0);
	assert_string_equal(ts_cfg_str(s, "more"), "m");
	assert_false(ts_cfg_is_set(s, "name"));
	assert_string_equal(ts_cfg_where(s, "name"), "d.ini:1");

	/* Binding again (a reload) rebuilds items without leaking. */
	ts__cfg_bind(cfg, cfg->sects[0], test_tables, 2);
	assert_int_equal(ts_cfg_list_len(s, "modules"), 3);
	ts__cfg_free(&cfg);
}

static void
test_value_errors(void **state)
{
	struct ts_cfg *cfg =
		ts__cfg_parse_string("v.ini", "[core]\n"
					      "enabled = maybe\n"
					      "port = 70000\n"
					      "count = 12x\n"
					      "timeout = 5 minutes\n"
					      "idle = 99999999999999999d\n"
					      "max_size = 10X\n"
					      "mode = fast\n"
					      "foo = 1\n"
					      "[listener smtp]\n"
					      "count = 99999999999999999999\n"
					      "port = 0\n"
					      "bar = 2\n"
					      "max_size = 17179869184T\n"
					      "idle = -5s\n");

	expect_errors(cfg, NULL);
	bind_all(cfg);
	expect_errors(
		cfg,
		"v.ini:2: key 'enabled': 'maybe' is not a boolean "
		"(yes/no, true/false, on/off, 1/0)",
		"v.ini:3: key 'port': 70000 is out of range 1..65535",
		"v.ini:4: key 'count': '12x' is not an integer",
		"v.ini:5: key 'timeout': '5 minutes' is not a duration "
		"(e.g. 30s, 5m, 2h)",
		"v.ini:6: key 'idle': '99999999999999999d' is too large",
		"v.ini:7: key 'max_size': '10X' is not a size "
		"(e.g. 512, 64k, 10M, 1G)",
		"v.ini:8: key 'mode': 'fast' is not one of none|starttls|tls",
		"v.ini:9: unknown key 'foo' in [core]",
		"v.ini:11: key 'count': 99999999999999999999 is out of range "
		"-9223372036854775808..9223372036854775807",
		"v.ini:12: key 'port': 0 is out of range 1..65535",
		"v.ini:13: unknown key 'bar' in [listener smtp]",
		"v.ini:14: key 'max_size': '17179869184T' is too large",
		"v.ini:15: key 'idle': '-5s' is not a duration "
		"(e.g. 30s, 5m, 2h)",
		NULL);

	/* Getters stay total: an invalid value reads as the default. */
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_false(ts_cfg_bool(s, "enabled"));
	assert_int_equal(ts_cfg_int(s, "port"), 25);
	assert_int_equal(ts_cfg_int(s, "count"), 0);
	assert_int_equal(ts_cfg_duration_ms(s, "timeout"), 30000);
	assert_int_equal(ts_cfg_size(s, "max_size"), 10 * 1024 * 1024);
	assert_string_equal(ts_cfg_str(s, "mode"), "none");
	ts__cfg_free(&cfg);
}

static void
test_syntax_errors(void **state)
{
	struct ts_cfg *cfg = ts__cfg_parse_string(
		"s.ini", "early = 1\n" /* 1 */
			 "[core]\n" /* 2 */
			 "name = a\n" /* 3 */
			 "name = b\n" /* 4 */
			 "just words\n" /* 5 */
			 "port: 25\n" /* 6 */
			 "Port = 25\n" /* 7 */
			 "my-key = 1\n" /* 8 */
			 "= nothing\n" /* 9 */
			 "[Core]\n" /* 10 */
			 "ignored = 1\n" /* 11: under a bad header */
			 "[core a b]\n" /* 12 */
			 "[core\n" /* 13 */
			 "[]\n" /* 14 */
			 "[core a!] ; comment\n" /* 15 */
			 "[core]x\n" /* 16 */
			 "[core] ; fine\n" /* 17: merges into line 2 */
			 "name = c\n" /* 18 */
			 "[other]\n" /* 19 */
			 "[core]\n" /* 20 */
			 "count = 1\n" /* 21 */
			 "count = 2\n" /* 22 */
			 "key ; = 3\n"); /* 23 */

	expect_errors(
		cfg, "s.ini:1: key 'early' outside a section",
		"s.ini:4: key 'name' already set at s.ini:3",
		"s.ini:5: syntax error: expected '[section]' or 'key = value'",
		"s.ini:6: syntax error: expected '[section]' or 'key = value'",
		"s.ini:7: bad key name 'Port' (use a-z, 0-9 and _)",
		"s.ini:8: bad key name 'my-key' (use a-z, 0-9 and _)",
		"s.ini:9: bad key name '' (use a-z, 0-9 and _)",
		"s.ini:10: bad section header '[Core]'",
		"s.ini:12: bad section header '[core a b]'",
		"s.ini:13: bad section header '[core'",
		"s.ini:14: bad section header '[]'",
		"s.ini:15: bad section header '[core a!]'",
		"s.ini:16: bad section header '[core]x'",
		"s.ini:18: key 'name' already set at s.ini:3",
		"s.ini:22: key 'count' already set at s.ini:21",
		"s.ini:23: syntax error: expected '[section]' or 'key = value'",
		NULL);
	/* Re-opened [core] merged into the first one, which kept its place. */
	assert_int_equal(cfg->sect_count, 2);
	assert_string_equal(cfg->sects[0]->type, "core");
	assert_string_equal(cfg->sects[0]->where, "s.ini:2");
	assert_string_equal(cfg->sects[1]->type, "other");
	const struct ts_cfg_sect *s = cfg->sects[0];
	assert_int_equal(s->entry_count, 2);
	assert_string_equal(ts__cfg_raw(s, "name"), "a");
	assert_string_equal(ts__cfg_raw(s, "count"), "1");
	ts__cfg_free(&cfg);
}

static void
test_long_line(void **state)
{
	/* inih's buffer is 200 bytes: 199 of text fit, 200 do not. */
	char fits[200], too_long[600];
	memset(fits, 'x', sizeof(fits) - 1);
	memcpy(fits, "name = ", 7);
	fits[199] = '\0';
	memset(too_long, 'y', sizeof(too_long) - 1);
	memcpy(too_long, "nodefault = ", 12);
	too_long[599] = '\0';
	char *text = ts_xasprintf("[core]\n%s\n%s\nport = 7\n"
				  "[core x]\n%.200s\n",
				  fits, too_long, too_long);
	struct ts_cfg *cfg = ts__cfg_parse_string("l.ini", text);

	expect_errors(cfg, "l.ini:3: line too long (max 199 bytes)",
		      "l.ini:6: line too long (max 199 bytes)", NULL);
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_int_equal(strlen(ts__cfg_raw(s, "name")), 199 - 7);
	assert_null(ts__cfg_raw(s, "nodefault"));
	/* The rest of the long line was skipped; counting went on. */
	assert_string_equal(ts__cfg_raw(s, "port"), "7");
	assert_string_equal(ts_cfg_where(s, "port"), "l.ini:4");
	ts__cfg_free(&cfg);
	free(text);
}

static void
test_continuation(void **state)
{
	struct ts_cfg *cfg = ts__cfg_parse_string(
		"c.ini", "\xEF\xBB\xBF[core]\n" /* 1: with a byte order mark */
			 "modules = smtp imap,\n" /* 2 */
			 "    dkim, spf ; note\n" /* 3 */
			 "\n" /* 4 */
			 "\tdmarc\n" /* 5: blank line does not end it */
			 "extra =\n" /* 6 */
			 "  one\n" /* 7 */
			 "  two\n" /* 8 */
			 "  ; indented comment\n" /* 9 */
			 "  port = 26\n" /* 10: a key indented by mistake */
			 "Bad = 1\n" /* 11 */
			 "  lost\n" /* 12: continues a rejected key */
			 "[other]\n" /* 13 */
			 "  name = first\n" /* 14: indented, but first key */
			 "  more\n"); /* 15 */

	expect_errors(cfg,
		      "c.ini:10: indented line would continue the value of "
		      "'extra'; remove the indentation to start a new key",
		      "c.ini:11: bad key name 'Bad' (use a-z, 0-9 and _)",
		      NULL);
	bind_all(cfg);
	expect_errors(cfg,
		      "c.ini:10: indented line would continue the value of "
		      "'extra'; remove the indentation to start a new key",
		      "c.ini:11: bad key name 'Bad' (use a-z, 0-9 and _)",
		      NULL);
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_string_equal(ts_cfg_str(s, "modules"),
			    "smtp imap, dkim, spf dmarc");
	assert_string_equal(ts_cfg_where(s, "modules"), "c.ini:2");
	assert_int_equal(ts_cfg_list_len(s, "modules"), 5);
	assert_string_equal(ts_cfg_list_item(s, "modules", 4), "dmarc");
	assert_string_equal(ts_cfg_str(s, "extra"), "one two");
	assert_int_equal(ts_cfg_list_len(s, "extra"), 2);
	assert_false(ts_cfg_is_set(s, "port"));
	const struct ts_cfg_sect *o = ts_cfg_find(cfg, "other", NULL);
	assert_string_equal(ts_cfg_str(o, "name"), "first more");
	ts__cfg_free(&cfg);
}

static void
test_lists(void **state)
{
	struct ts_cfg *cfg =
		ts__cfg_parse_string("li.ini", "[core]\n"
					       "modules = ,, a,,b   ,c,\n"
					       "extra =   \n"
					       "[core one]\n"
					       "extra = solo\n");

	bind_all(cfg);
	expect_errors(cfg, NULL);
	const struct ts_cfg_sect *s = ts_cfg_find(cfg, "core", NULL);
	assert_int_equal(ts_cfg_list_len(s, "modules"), 3);
	assert_string_equal(ts_cfg_list_item(s, "modules", 0), "a");
	assert_string_equal(ts_cfg_list_item(s, "modules", 1), "b");
	assert_string_equal(ts_cfg_list_item(s, "modules", 2), "c");
	/* Written empty: an empty list, not the default. */
	assert_true(ts_cfg_is_set(s, "extra"));
	assert_int_equal(ts_cfg_list_len(s, "extra"), 0);
	const struct ts_cfg_sect *one = ts_cfg_find(cfg, "core", "one");
	assert_int_equal(ts_cfg_list_len(one, "extra"), 1);
	assert_string_equal(ts_cfg_list_item(one, "extra", 0), "solo");
	assert_int_equal(ts_cfg_list_len(one, "modules"), 3); /* default */
	ts__cfg_free(&cfg);
}

static void
test_parse_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True",
					   "on",  "ON",	 "1" };
	static const char *const no[] = { "no",	 "No",	"false", "FALSE",
					  "off", "Off", "0" };
	static const char *const bad[] = { "",	   "y",	   "n",	    "2",
					   "yess", " yes", "enable" };
	bool v;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = false;
		assert_int_equal(ts_parse_bool(yes[i], &v), 0);
		assert_true(v);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = true;
		assert_int_equal(ts_parse_bool(no[i], &v), 0);
		assert_false(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ts_parse_bool(bad[i], &v), TS_E_INVAL);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} good[] = {
		{ "0", 0 },
		{ "30", 30000 },
		{ "250ms", 250 },
		{ "30s", 30000 },
		{ "5m", 300000 },
		{ "2h", 7200000 },
		{ "7d", 604800000 },
		{ "007s", 7000 },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "213503982334d", 213503982334ULL * 86400000ULL },
	};
	static const char *const bad[] = {
		"",
		"s",
		"-5s",
		"+5s",
		"5 s",
		"5x",
		"1.5s",
		"5S",
		"5sec",
		"5ms5",
		" 5s",
		"18446744073709551616ms", /* UINT64_MAX + 1 */
		"18446744073709552s", /* * 1000 overflows */
		"213503982335d", /* * 86400000 overflows */
		"99999999999999999999999999",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		assert_int_equal(ts_parse_duration_ms(good[i].text, &v), 0);
		assert_true(v == good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (ts_parse_duration_ms(bad[i], &v) != TS_E_INVAL)
			fail_msg("'%s' parsed as a duration", bad[i]);
		assert_int_equal(v, 42); /* untouched on failure */
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
		{ "0", 0 },
		{ "512", 512 },
		{ "512b", 512 },
		{ "512B", 512 },
		{ "64k", 65536 },
		{ "64K", 65536 },
		{ "64kb", 65536 },
		{ "64KB", 65536 },
		{ "64kB", 65536 },
		{ "10M", 10485760 },
		{ "10m", 10485760 },
		{ "1G", 1073741824 },
		{ "1gb", 1073741824 },
		{ "1T", 1099511627776ULL },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"",
		"k",
		"-1",
		"+1",
		"1 k",
		"1x",
		"1.5M",
		"1KiB",
		"1bb",
		"1P",
		"16777216T", /* 2^64: overflows */
		"18446744073709551616", /* UINT64_MAX + 1 */
		"18014398509481984k", /* 2^54 * 1024 */
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		assert_int_equal(ts_parse_size(good[i].text, &v), 0);
		assert_true(v == good[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ts_parse_size(bad[i], &v) != TS_E_INVAL)
			fail_msg("'%s' parsed as a size", bad[i]);
	}
}

static void
test_int_edges(void **state)
{
	static const struct ts_cfg_key keys[] = {
		{ .name = "any", .type = TS_CFG_INT },
		{ .name = "neg", .type = TS_CFG_INT, .min = -10, .max = -1 },
		{ .name = NULL },
	};
	const struct ts_cfg_key *const tables[] = { keys };
	struct ts_cfg *cfg = ts__cfg_parse_string(
		"i.ini", "[a]\nany = -9223372036854775808\nneg = -10\n"
			 "[b]\nany = +9223372036854775807\nneg = -1\n"
			 "[c]\nany = 9223372036854775808\nneg = 0\n"
			 "[d]\nany = 1e3\nneg = - 5\n"
			 "[e]\nany = \nneg = -11\n");

	for (size_t i = 0; i < cfg->sect_count; i++)
		ts__cfg_bind(cfg, cfg->sects[i], tables, 1);
	expect_errors(cfg,
		      "i.ini:8: key 'any': 9223372036854775808 is out of range "
		      "-9223372036854775808..9223372036854775807",
		      "i.ini:9: key 'neg': 0 is out of range -10..-1",
		      "i.ini:11: key 'any': '1e3' is not an integer",
		      "i.ini:12: key 'neg': '- 5' is not an integer",
		      "i.ini:14: key 'any': '' is not an integer",
		      "i.ini:15: key 'neg': -11 is out of range -10..-1", NULL);
	assert_true(ts_cfg_int(cfg->sects[0], "any") == LLONG_MIN);
	assert_int_equal(ts_cfg_int(cfg->sects[0], "neg"), -10);
	assert_true(ts_cfg_int(cfg->sects[1], "any") == LLONG_MAX);
	assert_int_equal(ts_cfg_int(cfg->sects[1], "neg"), -1);
	ts__cfg_free(&cfg);
}

static void
test_where_and_errors(void **state)
{
	struct ts_cfg *cfg =
		ts__cfg_parse_string("w.ini", "\n[core]\nport = 30\n");
	struct ts_cfg_sect *s = cfg->sects[0];

	assert_string_equal(ts_cfg_where(s, "port"), "w.ini:3");
	assert_string_equal(ts_cfg_where(s, "name"), "w.ini:2");
	assert_string_equal(ts_cfg_where(s, NULL), "w.ini:2");
	assert_int_equal(ts_cfg_error(cfg, s, "port", "port %d is taken", 30),
			 TS_E_INVAL);
	assert_int_equal(ts_cfg_error(cfg, s, "name", "needs a name"),
			 TS_E_INVAL);
	assert_int_equal(ts_cfg_error(cfg, s, NULL, "whole section"),
			 TS_E_INVAL);
	ts__cfg_error(cfg, NULL, "no place %s", "at all");
	ts__cfg_error(cfg, "x.ini:9", "somewhere");
	expect_errors(cfg, "w.ini:3: port 30 is taken", "w.ini:2: needs a name",
		      "w.ini:2: whole section", "no place at all",
		      "x.ini:9: somewhere", NULL);
	ts__cfg_free(&cfg);
}

/* --- files and directories ---------------------------------------------- */

static void
write_file(const char *dir, const char *rel, const char *text)
{
	char *path = ts_xasprintf("%s/%s", dir, rel);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	free(path);
}

static void
remove_path(const char *dir, const char *rel)
{
	char *path = ts_xasprintf("%s/%s", dir, rel);
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			assert_int_equal(rmdir(path), 0);
		else
			assert_int_equal(unlink(path), 0);
	}
	free(path);
}

static void
test_files(void **state)
{
	char dir[] = "/tmp/test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *sub = ts_xasprintf("%s/conf.d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	free(sub);
	sub = ts_xasprintf("%s/local.d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	free(sub);

	write_file(dir, "tessera.ini",
		   "[core]\n"
		   "name = main\n"
		   "port = 1\n");
	/* Lexical order: 10-a before 20-b, although written later. */
	write_file(dir, "conf.d/20-b.ini",
		   "[transport b]\n"
		   "port = 20\n"
		   "[core]\n"
		   "port = 2\n"
		   "mode = starttls\n");
	write_file(dir, "conf.d/10-a.ini",
		   "[transport a]\n"
		   "port = 10\n"
		   "[core]\n"
		   "count = 10\n"
		   "count = 11\n");
	write_file(dir, "conf.d/README", "[core]\nname = not ini\n");
	write_file(dir, "conf.d/.#20-b.ini", "[core]\nname = lock file\n");
	write_file(dir, "local.d/90-site.ini",
		   "; the admin's overrides\n"
		   "[core]\n"
		   "port = 587\n"
		   "modules = x\n"
		   "  y\n"
		   "[transport a]\n"
		   "port = 11\n"
		   "[transport c]\n");

	char *main_path = ts_xasprintf("%s/tessera.ini", dir);
	struct ts_cfg *cfg = ts__cfg_parse(main_path);
	char *a_ini = ts_xasprintf("%s/conf.d/10-a.ini", dir);
	char *b_ini = ts_xasprintf("%s/conf.d/20-b.ini", dir);
	char *site_ini = ts_xasprintf("%s/local.d/90-site.ini", dir);
	char *want;

	want = ts_xasprintf("%s:5: key 'count' already set at %s:4", a_ini,
			    a_ini);
	expect_errors(cfg, want, NULL);
	free(want);
	assert_string_equal(cfg->main_path, main_path);
	assert_string_equal(cfg->conf_dir, dir);

	/* Sections in file order: main, 10-a, 20-b, local.d. */
	assert_int_equal(cfg->sect_count, 4);
	assert_string_equal(cfg->sects[0]->type, "core");
	assert_string_equal(cfg->sects[1]->name, "a");
	assert_string_equal(cfg->sects[2]->name, "b");
	assert_string_equal(cfg->sects[3]->name, "c");

	bind_all(cfg);
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	want = ts_xasprintf("%s:1", main_path);
	assert_string_equal(ts_cfg_where(core, NULL), want);
	free(want);
	assert_string_equal(ts_cfg_str(core, "name"), "main");
	/* tessera.ini says 1, 20-b.ini says 2, local.d says 587. */
	assert_int_equal(ts_cfg_int(core, "port"), 587);
	want = ts_xasprintf("%s:3", site_ini);
	assert_string_equal(ts_cfg_where(core, "port"), want);
	free(want);
	assert_int_equal(ts_cfg_int(core, "count"), 10);
	assert_string_equal(ts_cfg_str(core, "mode"), "starttls");
	want = ts_xasprintf("%s:5", b_ini);
	assert_string_equal(ts_cfg_where(core, "mode"), want);
	free(want);
	assert_int_equal(ts_cfg_list_len(core, "modules"), 2);
	assert_string_equal(ts_cfg_list_item(core, "modules", 1), "y");

	const struct ts_cfg_sect *ta = ts_cfg_find(cfg, "transport", "a");
	assert_int_equal(ts_cfg_int(ta, "port"), 11);
	want = ts_xasprintf("%s:1", a_ini);
	assert_string_equal(ts_cfg_where(ta, NULL), want);
	free(want);
	ts__cfg_free(&cfg);

	/* A directory that cannot be listed is an error; missing is not. */
	remove_path(dir, "local.d/90-site.ini");
	remove_path(dir, "local.d");
	char *confd = ts_xasprintf("%s/conf.d", dir);
	if (geteuid() != 0) { /* root could list it anyway */
		assert_int_equal(chmod(confd, 0), 0);
		cfg = ts__cfg_parse(main_path);
		assert_int_equal(chmod(confd, 0700), 0);
		want = ts_xasprintf("%s: cannot read: Permission denied",
				    confd);
		expect_errors(cfg, want, NULL);
		free(want);
		assert_int_equal(cfg->sect_count, 1);
		ts__cfg_free(&cfg);
	}
	free(confd);

	remove_path(dir, "conf.d/10-a.ini");
	remove_path(dir, "conf.d/20-b.ini");
	remove_path(dir, "conf.d/README");
	remove_path(dir, "conf.d/.#20-b.ini");
	remove_path(dir, "conf.d");
	cfg = ts__cfg_parse(main_path);
	expect_errors(cfg, NULL);
	assert_int_equal(cfg->sect_count, 1);
	ts__cfg_free(&cfg);

	remove_path(dir, "tessera.ini");
	cfg = ts__cfg_parse(main_path);
	want = ts_xasprintf("%s: cannot read: No such file or directory",
			    main_path);
	expect_errors(cfg, want, NULL);
	free(want);
	assert_int_equal(cfg->sect_count, 0);
	ts__cfg_free(&cfg);

	assert_int_equal(rmdir(dir), 0);
	free(a_ini);
	free(b_ini);
	free(site_ini);
	free(main_path);
}

/*
 * domains.d/ is read after conf.d/ and before local.d/, in lexical order:
 * its keys override conf.d's, and local.d's override its.
 */
static void
test_domains_dir(void **state)
{
	char dir[] = "/tmp/test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const subs[] = { "conf.d", "domains.d", "local.d" };
	for (size_t i = 0; i < 3; i++) {
		char *sub = ts_xasprintf("%s/%s", dir, subs[i]);
		assert_int_equal(mkdir(sub, 0700), 0);
		free(sub);
	}
	write_file(dir, "tessera.ini", "[core]\nname = main\n");
	write_file(dir, "conf.d/50-z.ini",
		   "[transport conf]\n"
		   "[transport shared]\n"
		   "name = from conf.d\n"
		   "port = 1\n"
		   "count = 1\n");
	write_file(dir, "domains.d/20-b.ini",
		   "[transport d20]\n"
		   "[transport shared]\n"
		   "port = 20\n");
	write_file(dir, "domains.d/10-a.ini",
		   "[transport d10]\n"
		   "[transport shared]\n"
		   "port = 10\n"
		   "count = 10\n");
	write_file(dir, "domains.d/notes.txt", "[transport txt]\n");
	write_file(dir, "local.d/00-site.ini",
		   "[transport shared]\n"
		   "count = 99\n");

	char *main_path = ts_xasprintf("%s/tessera.ini", dir);
	struct ts_cfg *cfg = ts__cfg_parse(main_path);
	expect_errors(cfg, NULL);
	/* conf.d's sections, then domains.d's in lexical order. */
	assert_int_equal(cfg->sect_count, 5);
	assert_string_equal(cfg->sects[1]->name, "conf");
	assert_string_equal(cfg->sects[2]->name, "shared");
	assert_string_equal(cfg->sects[3]->name, "d10");
	assert_string_equal(cfg->sects[4]->name, "d20");
	bind_all(cfg);
	const struct ts_cfg_sect *shared = ts_cfg_find(cfg, "transport",
						       "shared");
	assert_string_equal(ts_cfg_str(shared, "name"), "from conf.d");
	/* 10-a says 10, then 20-b says 20. */
	assert_int_equal(ts_cfg_int(shared, "port"), 20);
	char *want = ts_xasprintf("%s/domains.d/20-b.ini:3", dir);
	assert_string_equal(ts_cfg_where(shared, "port"), want);
	free(want);
	/* local.d, read last, wins over domains.d. */
	assert_int_equal(ts_cfg_int(shared, "count"), 99);
	ts__cfg_free(&cfg);

	/* A domains.d that cannot be listed is an error. */
	char *domains = ts_xasprintf("%s/domains.d", dir);
	if (geteuid() != 0) {
		assert_int_equal(chmod(domains, 0), 0);
		cfg = ts__cfg_parse(main_path);
		assert_int_equal(chmod(domains, 0700), 0);
		want = ts_xasprintf("%s: cannot read: Permission denied",
				    domains);
		expect_errors(cfg, want, NULL);
		free(want);
		ts__cfg_free(&cfg);
	}
	free(domains);

	remove_path(dir, "conf.d/50-z.ini");
	remove_path(dir, "domains.d/10-a.ini");
	remove_path(dir, "domains.d/20-b.ini");
	remove_path(dir, "domains.d/notes.txt");
	remove_path(dir, "local.d/00-site.ini");
	for (size_t i = 0; i < 3; i++)
		remove_path(dir, subs[i]);
	remove_path(dir, "tessera.ini");
	assert_int_equal(rmdir(dir), 0);
	free(main_path);
}

/* A directory where the main file should be: reading it fails. */
static void
test_unreadable_main(void **state)
{
	char dir[] = "/tmp/test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = ts_xasprintf("%s/tessera.ini", dir);
	assert_int_equal(mkdir(path, 0700), 0);

	struct ts_cfg *cfg = ts__cfg_parse(path);
	char *want = ts_xasprintf("%s: cannot read: Is a directory", path);
	expect_errors(cfg, want, NULL);
	free(want);
	ts__cfg_free(&cfg);

	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(path);
}

/* A NUL byte would silently cut a line short in inih; it is reported. */
static void
test_nul_byte(void **state)
{
	char path[] = "/tmp/test-config-nul-XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "[core]\nname = a\0b\nport = 3\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1),
			 (ssize_t)sizeof(text) - 1);
	close(fd);
	struct ts_cfg *cfg = ts__cfg_parse(path);
	char *want = ts_xasprintf("%s:2: line contains a NUL byte", path);
	expect_errors(cfg, want, NULL);
	free(want);
	assert_null(ts__cfg_raw(cfg->sects[0], "name"));
	assert_string_equal(ts__cfg_raw(cfg->sects[0], "port"), "3");
	ts__cfg_free(&cfg);
	unlink(path);
}

/* --- programming errors abort -------------------------------------------- */

typedef void (*abort_fn)(const struct ts_cfg_sect *s);

/*
 * Run fn in a child and check it dies of SIGABRT after writing a message
 * containing `needle` to stderr.
 */
static void
expect_abort(const struct ts_cfg_sect *s, abort_fn fn, const char *needle)
{
	char errpath[] = "/tmp/test-config-err-XXXXXX";
	int fd = mkstemp(errpath);
	assert_true(fd >= 0);

	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd, STDERR_FILENO);
		fn(s);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	char msg[1024] = "";
	ssize_t n = pread(fd, msg, sizeof(msg) - 1, 0);
	close(fd);
	unlink(errpath);
	assert_true(n >= 0);
	msg[n] = '\0';
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("child did not abort (status %d)", status);
	if (strstr(msg, needle) == NULL)
		fail_msg("abort message '%s' lacks '%s'", msg, needle);
}

static void
call_undeclared(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_str(s, "nonesuch");
}

static void
call_wrong_type(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_int(s, "timeout");
}

static void
call_str_on_bool(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_str(s, "enabled");
}

static void
call_list_on_string(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_list_len(s, "name");
}

static void
call_list_past_end(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_list_item(s, "modules", 3);
}

static void
call_unbound(const struct ts_cfg_sect *s)
{
	(void)ts_cfg_bool(s, "enabled");
}

static const struct ts_cfg_key bad_default_keys[] = {
	{ .name = "wait", .type = TS_CFG_DURATION, .default_value = "soon" },
	{ .name = NULL },
};

static void
call_bind_bad_default(const struct ts_cfg_sect *s)
{
	const struct ts_cfg_key *const tables[] = { bad_default_keys };
	struct ts_cfg *cfg = ts__cfg_parse_string("b.ini", "[x]\n");

	ts__cfg_bind(cfg, cfg->sects[0], tables, 1);
}

static void
test_aborts(void **state)
{
	struct ts_cfg *cfg =
		ts__cfg_parse_string("a.ini", "[core]\n[unbound]\n");
	ts__cfg_bind(cfg, cfg->sects[0], test_tables, 2);
	const struct ts_cfg_sect *s = cfg->sects[0];

	expect_abort(s, call_undeclared, "'nonesuch' is not declared");
	expect_abort(s, call_wrong_type,
		     "ts_cfg_int(\"timeout\"): key 'timeout' of [core] is a "
		     "duration");
	expect_abort(s, call_str_on_bool, "'enabled' of [core] is a bool");
	expect_abort(s, call_list_on_string, "'name' of [core] is a string");
	expect_abort(s, call_list_past_end, "the list has 3 items");
	expect_abort(cfg->sects[1], call_unbound,
		     "ts_cfg_bool(\"enabled\"): section [unbound] is not "
		     "bound");
	expect_abort(NULL, call_bind_bad_default,
		     "bad default for [x] key 'wait': 'soon' is not a "
		     "duration");
	ts__cfg_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_int_edges),
		cmocka_unit_test(test_where_and_errors),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_domains_dir),
		cmocka_unit_test(test_unreadable_main),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
