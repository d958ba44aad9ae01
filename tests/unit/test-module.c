/*
 * tests/unit/test-module.c — the module loader (kernel/module.c).
 *
 * Opens the real test modules of tests/modules/ (built into
 * TS_TEST_MODULEDIR) and checks what the loader fills in, each refusal's
 * exact text, that RTLD_NOW refuses an unresolved symbol at open, that
 * libltdl's init/exit stay balanced, and how ts__module_order sorts and
 * which errors it records.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <ltdl.h>

#include "kernel/kernel.h"

#ifndef TS_TEST_MODULEDIR
#error "TS_TEST_MODULEDIR must name the directory of the built test modules"
#endif

static const char *const test_dirs[] = { TS_TEST_MODULEDIR };

/* Open NAME from TS_TEST_MODULEDIR, asserting success. */
static struct ts__module *
test_open(const char *name)
{
	struct ts__module *mod = NULL;
	char *error = NULL;
	int rc = ts__module_open(name, test_dirs, 1, &mod, &error);
	if (rc != 0)
		fail_msg("opening %s: %s", name, error ? error : "(no error)");
	assert_null(error);
	assert_non_null(mod);
	return mod;
}

/*
 * Open NAME expecting refusal `want_rc` with exactly `want` (a printf
 * format), and nothing left open.
 */
static void test_refused(const char *name, int want_rc, const char *fmt, ...)
	TS_PRINTF(3, 4);

static void
test_refused(const char *name, int want_rc, const char *fmt, ...)
{
	struct ts__module *mod = (struct ts__module *)1;
	char *error = NULL;
	int rc = ts__module_open(name, test_dirs, 1, &mod, &error);

	va_list ap;
	va_start(ap, fmt);
	char *want = ts_xvasprintf(fmt, ap);
	va_end(ap);
	assert_int_equal(rc, want_rc);
	assert_null(mod);
	assert_non_null(error);
	assert_string_equal(error, want);
	free(want);
	free(error);
}

/* libltdl's init count is back at zero: one more lt_dlexit fails. */
static void
test_assert_ltdl_balanced(void)
{
	assert_int_not_equal(lt_dlexit(), 0);
}

/* Whether the dynamic linker still has PATH mapped. */
static bool
test_still_loaded(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL)
		return false;
	dlclose(h);
	return true;
}

static void
test_open_good(void **state)
{
	(void)state;
	struct ts__module *mod = test_open("good_a");

	assert_string_equal(mod->name, "good_a");
	assert_string_equal(mod->path, TS_TEST_MODULEDIR "/good_a.so");
	assert_non_null(mod->handle);
	assert_non_null(mod->desc);
	void *self = dlopen(mod->path, RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(self);
	assert_ptr_equal(mod->desc, dlsym(self, "good_a_LTX_tessera_module"));
	dlclose(self);
	assert_int_equal(mod->desc->abi_major, TS_ABI_MAJOR);
	assert_int_equal(mod->desc->abi_minor, TS_ABI_MINOR);
	assert_int_equal(mod->desc->struct_size, sizeof(struct ts_module));
	assert_string_equal(mod->desc->build_signature, TS_BUILD_SIGNATURE);
	assert_string_equal(mod->desc->name, "good_a");
	assert_string_equal(mod->desc->version, "1.0");
	assert_null(mod->desc->requires);
	assert_false(mod->enabled);
	assert_null(mod->where);
	assert_false(mod->initialised);
	assert_ptr_equal(mod->ctx.name, mod->name);
	assert_ptr_equal(mod->ctx.module, mod);
	assert_null(mod->ctx.kernel);
	assert_null(mod->ctx.data);

	/* Loaded with RTLD_LOCAL: its symbols are not global. */
	assert_null(dlsym(RTLD_DEFAULT, "good_a_LTX_tessera_module"));
	assert_true(test_still_loaded(mod->path));

	ts__module_close(&mod);
	assert_null(mod);
	assert_false(test_still_loaded(TS_TEST_MODULEDIR "/good_a.so"));
	test_assert_ltdl_balanced();
}

static void
test_open_plain_symbol(void **state)
{
	(void)state;
	struct ts__module *mod = test_open("plain_sym");
	assert_string_equal(mod->desc->name, "plain_sym");
	assert_string_equal(mod->path, TS_TEST_MODULEDIR "/plain_sym.so");
	ts__module_close(&mod);
	test_assert_ltdl_balanced();
}

/* Directories are searched in order; a trailing slash is harmless. */
static void
test_open_search_order(void **state)
{
	(void)state;
	const char *const dirs[] = { "/nonexistent/tessera",
				     TS_TEST_MODULEDIR "/" };
	struct ts__module *mod = NULL;
	char *error = NULL;
	assert_int_equal(ts__module_open("good_b", dirs, 2, &mod, &error), 0);
	assert_null(error);
	assert_string_equal(mod->path, TS_TEST_MODULEDIR "/good_b.so");
	assert_string_equal(mod->desc->requires[0], "good_a");
	assert_null(mod->desc->requires[1]);
	ts__module_close(&mod);
	test_assert_ltdl_balanced();
}

/*
 * A directory holding only NAME.la: libltdl reads it and opens the shared
 * object it names; path is that object.
 */
static void
test_open_la(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-module-la-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *la = ts_xasprintf("%s/good_a.la", dir);
	FILE *f = fopen(la, "w");
	assert_non_null(f);
	fprintf(f,
		"# good_a.la - a libtool library file\n"
		"dlname='good_a.so'\n"
		"library_names='good_a.so'\n"
		"old_library=''\n"
		"dependency_libs=''\n"
		"installed=yes\n"
		"shouldnotlink=yes\n"
		"libdir='%s'\n",
		TS_TEST_MODULEDIR);
	assert_int_equal(fclose(f), 0);

	const char *const dirs[] = { dir };
	struct ts__module *mod = NULL;
	char *error = NULL;
	int rc = ts__module_open("good_a", dirs, 1, &mod, &error);
	if (rc != 0)
		fail_msg("%s", error);
	assert_string_equal(mod->path, TS_TEST_MODULEDIR "/good_a.so");
	assert_string_equal(mod->desc->name, "good_a");
	ts__module_close(&mod);
	test_assert_ltdl_balanced();

	assert_int_equal(unlink(la), 0);
	assert_int_equal(rmdir(dir), 0);
	free(la);
}

static void
test_open_not_found(void **state)
{
	(void)state;
	const char *const dirs[] = { "/nonexistent/a", "/nonexistent/b" };
	struct ts__module *mod = NULL;
	char *error = NULL;
	assert_int_equal(ts__module_open("nosuch", dirs, 2, &mod, &error),
			 TS_E_NOTFOUND);
	assert_null(mod);
	assert_string_equal(error, "module nosuch: no nosuch.so in "
				   "/nonexistent/a, /nonexistent/b");
	free(error);

	/* One directory: no list separator. */
	test_refused("nosuchmod", TS_E_NOTFOUND,
		     "module nosuchmod: no nosuchmod.so in %s",
		     TS_TEST_MODULEDIR);
	test_assert_ltdl_balanced();
}

static void
test_open_bad_name(void **state)
{
	(void)state;
	static const char *const bad[] = { "Good_a", "",     "good-a", "../x",
					   "a/b",    "a.so", "a b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ts__module *mod = NULL;
		char *error = NULL;
		assert_int_equal(
			ts__module_open(bad[i], test_dirs, 1, &mod, &error),
			TS_E_INVAL);
		assert_null(mod);
		assert_non_null(strstr(error, "bad module name"));
		assert_non_null(strstr(error, bad[i]));
		free(error);
	}
	test_assert_ltdl_balanced();
}

/* Each refusal, with its exact one-line text. */
static void
test_open_refusals(void **state)
{
	(void)state;
	const char *dir = TS_TEST_MODULEDIR;

	test_refused("abi_major", TS_E_INVAL,
		     "module abi_major (%s/abi_major.so): built for ABI "
		     "%d.%d, kernel provides %d.%d",
		     dir, TS_ABI_MAJOR + 1, TS_ABI_MINOR, TS_ABI_MAJOR,
		     TS_ABI_MINOR);
	test_refused("abi_minor", TS_E_INVAL,
		     "module abi_minor (%s/abi_minor.so): built for ABI "
		     "%d.%d, kernel provides %d.%d",
		     dir, TS_ABI_MAJOR, TS_ABI_MINOR + 1, TS_ABI_MAJOR,
		     TS_ABI_MINOR);
	test_refused("bad_size", TS_E_INVAL,
		     "module bad_size (%s/bad_size.so): descriptor size 40, "
		     "kernel expects %zu",
		     dir, sizeof(struct ts_module));
	test_refused("bad_sig", TS_E_INVAL,
		     "module bad_sig (%s/bad_sig.so): build signature "
		     "'ptr=4 time=4 off=4 asan=0', kernel has '%s'",
		     dir, TS_BUILD_SIGNATURE);
	test_refused("wrong_name", TS_E_INVAL,
		     "module wrong_name (%s/wrong_name.so): descriptor names "
		     "itself 'other'",
		     dir);
	test_refused("no_desc", TS_E_INVAL,
		     "module no_desc (%s/no_desc.so): no tessera_module "
		     "descriptor",
		     dir);

	/* Nothing stays mapped after a refusal. */
	assert_false(test_still_loaded(TS_TEST_MODULEDIR "/abi_major.so"));
	assert_false(test_still_loaded(TS_TEST_MODULEDIR "/no_desc.so"));
	test_assert_ltdl_balanced();
}

/* RTLD_NOW: an unresolved function is refused at open, not at call. */
static void
test_open_undefined_symbol(void **state)
{
	(void)state;
	struct ts__module *mod = NULL;
	char *error = NULL;
	assert_int_equal(
		ts__module_open("undef_sym", test_dirs, 1, &mod, &error),
		TS_E_INVAL);
	assert_null(mod);
	const char *prefix =
		"module undef_sym (" TS_TEST_MODULEDIR "/undef_sym.so): "
		"cannot load: ";
	assert_non_null(error);
	assert_memory_equal(error, prefix, strlen(prefix));
	/* dlerror's own words, not libltdl's "file not found". */
	assert_non_null(strstr(error, "undefined symbol"));
	assert_non_null(strstr(error, "ts_does_not_exist"));
	free(error);
	assert_false(test_still_loaded(TS_TEST_MODULEDIR "/undef_sym.so"));
	test_assert_ltdl_balanced();

	/* A good module still opens afterwards, in a fresh ltdl cycle. */
	mod = test_open("good_a");
	ts__module_close(&mod);
	test_assert_ltdl_balanced();
}

/* Close is NULL-safe; many opens and closes keep libltdl balanced. */
static void
test_close_balanced(void **state)
{
	(void)state;
	struct ts__module *none = NULL;
	ts__module_close(&none);
	assert_null(none);
	test_assert_ltdl_balanced();

	for (int i = 0; i < 50; i++) {
		struct ts__module *mod = test_open("good_a");
		ts__module_close(&mod);
	}
	test_assert_ltdl_balanced();

	/* Two at once, the same file twice, closed in either order. */
	struct ts__module *a1 = test_open("good_a");
	struct ts__module *b = test_open("good_b");
	struct ts__module *a2 = test_open("good_a");
	assert_ptr_not_equal(a1, a2);
	assert_ptr_equal(a1->desc, a2->desc);
	ts__module_close(&a1);
	assert_true(test_still_loaded(TS_TEST_MODULEDIR "/good_a.so"));
	assert_string_equal(a2->desc->name, "good_a");
	ts__module_close(&b);
	assert_string_equal(a2->desc->name, "good_a");
	ts__module_close(&a2);
	assert_false(test_still_loaded(TS_TEST_MODULEDIR "/good_a.so"));
	test_assert_ltdl_balanced();
}

/* --- ordering ------------------------------------------------------------ */

/*
 * A module made by hand, as ts__module_order sees it.  The lists are
 * NULL-terminated string arrays owned by the caller (static here).
 */
static struct ts__module *
test_fake(const char *name, bool enabled, const char *const *requires,
	  const char *const *after, const char *const *before)
{
	struct ts_module *desc = ts_xcalloc(1, sizeof(*desc));
	desc->abi_major = TS_ABI_MAJOR;
	desc->abi_minor = TS_ABI_MINOR;
	desc->struct_size = sizeof(*desc);
	desc->build_signature = TS_BUILD_SIGNATURE;
	desc->name = name;
	desc->requires = requires;
	desc->after = after;
	desc->before = before;

	struct ts__module *mod = ts_xcalloc(1, sizeof(*mod));
	mod->name = ts_xstrdup(name);
	mod->desc = desc;
	mod->enabled = enabled;
	mod->where = ts_xasprintf("fake.ini:%s", name);
	return mod;
}

static void
test_fake_free(struct ts__module **mods, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((void *)mods[i]->desc);
		free(mods[i]->name);
		free(mods[i]->where);
		free(mods[i]);
	}
}

static struct ts_cfg *
test_cfg(void)
{
	return ts_xcalloc(1, sizeof(struct ts_cfg));
}

static void
test_cfg_free(struct ts_cfg *cfg)
{
	ts__strv_free(&cfg->errors);
	free(cfg);
}

/*
 * Order mods, expect success, and compare the names with `want`, a
 * space-separated list.
 */
static void
test_order_ok(struct ts__module *const *mods, size_t n, const char *want)
{
	struct ts_cfg *cfg = test_cfg();
	struct ts__module **ordered = NULL;
	size_t count = 99;
	int rc = ts__module_order(cfg, mods, n, &ordered, &count);
	if (rc != 0)
		fail_msg("order failed: %s",
			 cfg->error_count ? cfg->errors[0] : "(no error)");
	assert_int_equal(cfg->error_count, 0);

	char *got = ts_xstrdup("");
	for (size_t i = 0; i < count; i++) {
		char *longer = ts_xasprintf("%s%s%s", got, i ? " " : "",
					    ordered[i]->name);
		free(got);
		got = longer;
	}
	assert_string_equal(got, want);
	free(got);
	free(ordered);
	test_cfg_free(cfg);
}

/*
 * Order mods, expect TS_E_INVAL and exactly the errors listed (NULL
 * terminated), in order.
 */
static void
test_order_fails(struct ts__module *const *mods, size_t n, ...)
{
	struct ts_cfg *cfg = test_cfg();
	struct ts__module **ordered = (struct ts__module **)1;
	size_t count = 99;
	assert_int_equal(ts__module_order(cfg, mods, n, &ordered, &count),
			 TS_E_INVAL);
	assert_null(ordered);
	assert_int_equal(count, 0);

	va_list ap;
	va_start(ap, n);
	size_t i = 0;
	for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
		if (i >= cfg->error_count)
			fail_msg("missing error: %s", want);
		assert_string_equal(cfg->errors[i], want);
	}
	va_end(ap);
	if (i != cfg->error_count)
		fail_msg("unexpected error: %s", cfg->errors[i]);
	test_cfg_free(cfg);
}

/* The real good_b requires the real good_a. */
static void
test_order_requires(void **state)
{
	(void)state;
	struct ts__module *mods[2] = { test_open("good_b"),
				       test_open("good_a") };
	mods[0]->enabled = mods[1]->enabled = true;
	test_order_ok(mods, 2, "good_a good_b");

	/* Nothing enabled: an empty order, not an error. */
	mods[0]->enabled = mods[1]->enabled = false;
	test_order_ok(mods, 2, "");

	ts__module_close(&mods[0]);
	ts__module_close(&mods[1]);
	test_assert_ltdl_balanced();
}

/* Without edges, by name; disabled modules are left out. */
static void
test_order_ties(void **state)
{
	(void)state;
	struct ts__module *mods[] = {
		test_fake("zeta", true, NULL, NULL, NULL),
		test_fake("alpha", true, NULL, NULL, NULL),
		test_fake("off", false, NULL, NULL, NULL),
		test_fake("mid", true, NULL, NULL, NULL),
		test_fake("beta", true, NULL, NULL, NULL),
	};
	size_t n = sizeof(mods) / sizeof(mods[0]);
	test_order_ok(mods, n, "alpha beta mid zeta");
	test_fake_free(mods, n);

	/*
	 * The smallest *ready* name goes next: b before z, although a
	 * depth-first walk from a would place z first.
	 */
	static const char *const a_req[] = { "z", NULL };
	struct ts__module *ready[] = {
		test_fake("z", true, NULL, NULL, NULL),
		test_fake("b", true, NULL, NULL, NULL),
		test_fake("a", true, a_req, NULL, NULL),
	};
	test_order_ok(ready, 3, "b z a");
	test_fake_free(ready, 3);
}

/* after/before order only modules that are present and enabled. */
static void
test_order_soft(void **state)
{
	(void)state;
	static const char *const x_before[] = { "a", "ghost", "off", NULL };
	static const char *const c_after[] = { "d", "ghost", NULL };
	static const char *const a_after[] = { "off", NULL };
	struct ts__module *mods[] = {
		test_fake("a", true, NULL, a_after, NULL),
		test_fake("b", true, NULL, NULL, NULL),
		test_fake("x", true, NULL, NULL, x_before),
		test_fake("c", true, NULL, c_after, NULL),
		test_fake("d", true, NULL, NULL, NULL),
		test_fake("off", false, NULL, NULL, NULL),
	};
	size_t n = sizeof(mods) / sizeof(mods[0]);
	/* x before a; c after d; ghost and off mean nothing. */
	test_order_ok(mods, n, "b d c x a");
	test_fake_free(mods, n);
}

/* A requirement not configured, and one disabled. */
static void
test_order_missing_requirement(void **state)
{
	(void)state;
	struct ts__module *mods[] = { test_open("needs_missing"),
				      test_open("good_b"),
				      test_open("good_a") };
	size_t n = sizeof(mods) / sizeof(mods[0]);
	mods[0]->where = ts_xstrdup("tessera.ini:7");
	mods[1]->where = ts_xstrdup("conf.d/20-b.ini:3");
	mods[0]->enabled = true;
	mods[1]->enabled = true;
	mods[2]->enabled = false;

	test_order_fails(mods, n,
			 "conf.d/20-b.ini:3: module good_b: requires "
			 "'good_a', which is disabled",
			 "tessera.ini:7: module needs_missing: requires "
			 "'nosuchmod', which is not configured (add [module "
			 "nosuchmod] enabled = yes)",
			 NULL);

	/* With good_a on, only the missing one is left. */
	mods[2]->enabled = true;
	test_order_fails(mods, n,
			 "tessera.ini:7: module needs_missing: requires "
			 "'nosuchmod', which is not configured (add [module "
			 "nosuchmod] enabled = yes)",
			 NULL);

	/* Without a where, the message stands alone. */
	free(mods[0]->where);
	mods[0]->where = NULL;
	struct ts_cfg *cfg = test_cfg();
	struct ts__module **ordered = NULL;
	size_t count = 0;
	assert_int_equal(ts__module_order(cfg, mods, n, &ordered, &count),
			 TS_E_INVAL);
	assert_int_equal(cfg->error_count, 1);
	assert_non_null(strstr(cfg->errors[0],
			       "module needs_missing: requires 'nosuchmod'"));
	test_cfg_free(cfg);

	/* Disabled itself, its requirements do not matter. */
	mods[0]->enabled = false;
	test_order_ok(mods, n, "good_a good_b");

	for (size_t i = 0; i < n; i++)
		ts__module_close(&mods[i]);
	test_assert_ltdl_balanced();
}

/* The real cyc_a and cyc_b require each other. */
static void
test_order_requirement_cycle(void **state)
{
	(void)state;
	struct ts__module *mods[] = { test_open("cyc_b"), test_open("cyc_a"),
				      test_open("good_a") };
	size_t n = sizeof(mods) / sizeof(mods[0]);
	for (size_t i = 0; i < n; i++)
		mods[i]->enabled = true;
	mods[0]->where = ts_xstrdup("b.ini:2");
	mods[1]->where = ts_xstrdup("a.ini:1");
	test_order_fails(mods, n,
			 "a.ini:1: module cyc_a: requirement cycle cyc_a -> "
			 "cyc_b -> cyc_a",
			 NULL);
	for (size_t i = 0; i < n; i++)
		ts__module_close(&mods[i]);
	test_assert_ltdl_balanced();
}

/* Longer cycles, self-requirement, and cycles made by after/before. */
static void
test_order_cycles(void **state)
{
	(void)state;
	static const char *const c1_req[] = { "c2", NULL };
	static const char *const c2_req[] = { "c3", NULL };
	static const char *const c3_req[] = { "c1", NULL };
	static const char *const y_req[] = { "c1", NULL };
	struct ts__module *three[] = {
		test_fake("z", true, NULL, NULL, NULL),
		test_fake("c3", true, c3_req, NULL, NULL),
		test_fake("y", true, y_req, NULL, NULL),
		test_fake("c2", true, c2_req, NULL, NULL),
		test_fake("c1", true, c1_req, NULL, NULL),
	};
	test_order_fails(three, 5,
			 "fake.ini:c1: module c1: requirement cycle c1 -> c2 "
			 "-> c3 -> c1",
			 NULL);
	test_fake_free(three, 5);

	static const char *const self_req[] = { "selfish", NULL };
	struct ts__module *self[] = {
		test_fake("selfish", true, self_req, NULL, NULL),
	};
	test_order_fails(self, 1,
			 "fake.ini:selfish: module selfish: requirement cycle "
			 "selfish -> selfish",
			 NULL);
	test_fake_free(self, 1);

	static const char *const p_after[] = { "q", NULL };
	static const char *const q_after[] = { "p", NULL };
	struct ts__module *soft[] = {
		test_fake("q", true, NULL, q_after, NULL),
		test_fake("p", true, NULL, p_after, NULL),
	};
	test_order_fails(soft, 2,
			 "fake.ini:p: module p: ordering cycle p -> q -> p",
			 NULL);
	test_fake_free(soft, 2);

	/* a requires b but says it comes before b. */
	static const char *const a_req[] = { "b", NULL };
	static const char *const a_before[] = { "b", NULL };
	struct ts__module *mixed[] = {
		test_fake("a", true, a_req, NULL, a_before),
		test_fake("b", true, NULL, NULL, NULL),
	};
	test_order_fails(mixed, 2,
			 "fake.ini:a: module a: ordering cycle a -> b -> a",
			 NULL);
	test_fake_free(mixed, 2);

	/* A requirement cycle is named as such even beside a soft one. */
	static const char *const m_req[] = { "n", NULL };
	static const char *const n_req[] = { "m", NULL };
	static const char *const e_after[] = { "f", NULL };
	static const char *const f_after[] = { "e", NULL };
	struct ts__module *both[] = {
		test_fake("e", true, NULL, e_after, NULL),
		test_fake("f", true, NULL, f_after, NULL),
		test_fake("m", true, m_req, NULL, NULL),
		test_fake("n", true, n_req, NULL, NULL),
	};
	test_order_fails(both, 4,
			 "fake.ini:m: module m: requirement cycle m -> n -> m",
			 NULL);
	test_fake_free(both, 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_good),
		cmocka_unit_test(test_open_plain_symbol),
		cmocka_unit_test(test_open_search_order),
		cmocka_unit_test(test_open_la),
		cmocka_unit_test(test_open_not_found),
		cmocka_unit_test(test_open_bad_name),
		cmocka_unit_test(test_open_refusals),
		cmocka_unit_test(test_open_undefined_symbol),
		cmocka_unit_test(test_close_balanced),
		cmocka_unit_test(test_order_requires),
		cmocka_unit_test(test_order_ties),
		cmocka_unit_test(test_order_soft),
		cmocka_unit_test(test_order_missing_requirement),
		cmocka_unit_test(test_order_requirement_cycle),
		cmocka_unit_test(test_order_cycles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
