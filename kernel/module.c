/*
 * kernel/module.c — find, open and vet module shared objects, and order
 * the enabled ones for init.
 *
 * Opening a module means: find NAME.so (or NAME.la) in the module
 * directories, load it through libltdl with RTLD_NOW so an unresolved
 * symbol is refused at once instead of crashing the server later, read its
 * descriptor and refuse it, with one line naming the file and both values,
 * if it was built for another ABI or another build.  Ordering means a
 * topological sort of the enabled modules by their requires/after/before
 * lists, ties broken by name.  This file does not run init or shutdown and
 * does not read the configuration: boot.c does, with what this file gives
 * it.
 */
#include "config.h"

#include <dlfcn.h>
#include <ltdl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/kernel.h"

/*
 * --- the RTLD_NOW loader ------------------------------------------------
 *
 * libltdl's stock "lt_dlopen" loader calls dlopen() with RTLD_LAZY, and
 * lt_dladvise offers no way to ask for RTLD_NOW.  A module referring to a
 * symbol the kernel does not export would then load fine and crash the
 * first time that function runs, perhaps hours later in the middle of a
 * mail transaction.  So we add our own loader, "tessera-now", whose
 * module_open calls dlopen(RTLD_NOW | RTLD_LOCAL).
 *
 * Prepending it is not enough: when a loader fails, libltdl simply tries
 * the next one (tryall_dlopen), and the stock loader would then open the
 * very same file lazily.  So, for as long as libltdl stays initialised, we
 * also remove the stock loader; what remains behind ours is "lt_preopen",
 * which only serves symbol lists linked into the binary.  lt_dlexit tears
 * all loaders down (and free()s their vtables, which is why ours is
 * malloc'd), and the next lt_dlinit brings the stock ones back, so this is
 * redone once per lt_dlinit cycle.
 *
 * When our dlopen fails, libltdl overwrites the error with the next
 * loader's "file not found"; our loader therefore keeps dlerror()'s text
 * itself so the refusal can say what really went wrong.
 */
#define MODULE_LOADER_NAME "tessera-now"
#define MODULE_STOCK_LOADER_NAME "lt_dlopen"

struct module_loader_data {
	char *last_error; /* dlerror() of the most telling failed open */
};

/* libltdl's module_open hook: dlopen with immediate binding. */
static lt_module
module_loader_open(lt_user_data data, const char *filename, lt_dladvise advise)
{
	struct module_loader_data *ld = data;
	(void)advise;

	void *handle = dlopen(filename, RTLD_NOW | RTLD_LOCAL);
	if (handle != NULL)
		return handle;

	/*
	 * For a .la file libltdl tries several candidate paths; keep the
	 * error of a file that exists (an undefined symbol, say) over a
	 * later "No such file" for a candidate that does not.
	 */
	const char *text = dlerror();
	if (ld->last_error == NULL ||
	    (filename != NULL && access(filename, F_OK) == 0)) {
		free(ld->last_error);
		ld->last_error = ts_xstrdup(text ? text : "dlopen failed");
	}
	return NULL;
}

/* libltdl's module_close hook; nonzero tells libltdl it failed. */
static int
module_loader_close(lt_user_data data, lt_module module)
{
	(void)data;
	return dlclose(module) != 0;
}

/* libltdl's find_sym hook. */
static void *
module_loader_sym(lt_user_data data, lt_module module, const char *symbol)
{
	(void)data;
	return dlsym(module, symbol);
}

/* Called by lt_dlloader_remove (so by the last lt_dlexit): free our data. */
static int
module_loader_exit(lt_user_data data)
{
	struct module_loader_data *ld = data;
	if (ld != NULL) {
		free(ld->last_error);
		free(ld);
	}
	return 0;
}

/*
 * Make sure "tessera-now" is the dlopen loader of the current lt_dlinit
 * cycle.  Returns our loader's data, or NULL with *error_r set.
 */
static struct module_loader_data *
module_loader_setup(char **error_r)
{
	const lt_dlvtable *have = lt_dlloader_find(MODULE_LOADER_NAME);
	if (have != NULL)
		return have->dlloader_data;

	struct module_loader_data *ld = ts_xcalloc(1, sizeof(*ld));
	/* lt_dlexit free()s every registered vtable, so it must be heap. */
	lt_dlvtable *vtable = ts_xcalloc(1, sizeof(*vtable));
	vtable->name = MODULE_LOADER_NAME;
	vtable->module_open = module_loader_open;
	vtable->module_close = module_loader_close;
	vtable->find_sym = module_loader_sym;
	vtable->dlloader_exit = module_loader_exit;
	vtable->dlloader_data = ld;
	vtable->priority = LT_DLLOADER_PREPEND;
	if (lt_dlloader_add(vtable) != 0) {
		const char *text = lt_dlerror();
		*error_r = ts_xasprintf("cannot add libltdl loader: %s",
					text ? text : "unknown error");
		free(vtable);
		free(ld);
		return NULL;
	}

	if (lt_dlloader_find(MODULE_STOCK_LOADER_NAME) != NULL) {
		lt_dlvtable *lazy =
			lt_dlloader_remove(MODULE_STOCK_LOADER_NAME);
		if (lazy == NULL) {
			/* Only if someone else opened files through it. */
			const char *text = lt_dlerror();
			*error_r = ts_xasprintf(
				"cannot remove libltdl's lazy dlopen loader: "
				"%s",
				text ? text : "in use");
			return NULL;
		}
		free(lazy);
	}
	return ld;
}

/* --- opening and vetting ------------------------------------------------ */

/*
 * Size of a 1.0 descriptor: up to and including `shutdown`, its last
 * field.  When ABI 1.1 appends fields, sizeof(struct ts_module) grows and
 * this stays put, so older 1.x modules still pass.
 */
#define MODULE_SIZE_1_0                         \
	(offsetof(struct ts_module, shutdown) + \
	 sizeof(((struct ts_module *)0)->shutdown))

/* A module name is [a-z0-9_]+: it becomes a file name and a C symbol. */
static bool
module_name_valid(const char *name)
{
	if (name == NULL || *name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	}
	return true;
}

/* dir + "/" + name + ext, without doubling a trailing slash. */
static char *
module_join(const char *dir, const char *name, const char *ext)
{
	size_t len = strlen(dir);
	const char *sep = (len > 0 && dir[len - 1] == '/') ? "" : "/";
	return ts_xasprintf("%s%s%s%s", dir, sep, name, ext);
}

/* True if path names a regular file (following symlinks). */
static bool
module_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The first existing DIR/NAME.so or DIR/NAME.la, directories in order and
 * .so before .la within each; NULL if none.  The caller frees.
 */
static char *
module_find_file(const char *name, const char *const *dirs, size_t dir_count)
{
	static const char *const exts[] = { ".so", ".la" };

	for (size_t i = 0; i < dir_count; i++) {
		for (size_t e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
			char *path = module_join(dirs[i], name, exts[e]);
			if (module_file_exists(path))
				return path;
			free(path);
		}
	}
	return NULL;
}

/* "module NAME: no NAME.so in DIR1, DIR2" */
static char *
module_not_found_text(const char *name, const char *const *dirs,
		      size_t dir_count)
{
	if (dir_count == 0)
		return ts_xasprintf("module %s: no %s.so: no module "
				    "directories",
				    name, name);
	char *list = ts_xstrdup(dirs[0]);
	for (size_t i = 1; i < dir_count; i++) {
		char *longer = ts_xasprintf("%s, %s", list, dirs[i]);
		free(list);
		list = longer;
	}
	char *text =
		ts_xasprintf("module %s: no %s.so in %s", name, name, list);
	free(list);
	return text;
}

/*
 * Vet a descriptor; returns NULL if the kernel can use it, else the
 * refusal (caller frees).  The checks go from the fields every ABI shares
 * to the ones only a matching layout makes meaningful, so no field is read
 * before we know it is where we think.
 */
static char *
module_check_desc(const char *name, const char *path,
		  const struct ts_module *desc)
{
	if (desc->abi_major != TS_ABI_MAJOR || desc->abi_minor > TS_ABI_MINOR)
		return ts_xasprintf("module %s (%s): built for ABI %u.%u, "
				    "kernel provides %u.%u",
				    name, path, desc->abi_major,
				    desc->abi_minor, (unsigned)TS_ABI_MAJOR,
				    (unsigned)TS_ABI_MINOR);

	if (desc->abi_minor == TS_ABI_MINOR) {
		if (desc->struct_size != sizeof(struct ts_module))
			return ts_xasprintf("module %s (%s): descriptor size "
					    "%zu, kernel expects %zu",
					    name, path, desc->struct_size,
					    sizeof(struct ts_module));
	} else if (desc->struct_size < MODULE_SIZE_1_0) {
		/* An older 1.x module: it lacks only fields added since. */
		return ts_xasprintf("module %s (%s): descriptor size %zu, "
				    "kernel expects at least %zu",
				    name, path, desc->struct_size,
				    (size_t)MODULE_SIZE_1_0);
	}

	if (desc->build_signature == NULL)
		return ts_xasprintf("module %s (%s): no build signature, "
				    "kernel has '%s'",
				    name, path, TS_BUILD_SIGNATURE);
	if (strcmp(desc->build_signature, TS_BUILD_SIGNATURE) != 0)
		return ts_xasprintf("module %s (%s): build signature '%s', "
				    "kernel has '%s'",
				    name, path, desc->build_signature,
				    TS_BUILD_SIGNATURE);

	if (desc->name == NULL)
		return ts_xasprintf("module %s (%s): descriptor has no name",
				    name, path);
	if (strcmp(desc->name, name) != 0)
		return ts_xasprintf("module %s (%s): descriptor names itself "
				    "'%s'",
				    name, path, desc->name);
	return NULL;
}

/*
 * Open the found file and read its descriptor; libltdl must be
 * initialised.  On success fills *handle_r and *desc_r; on failure returns
 * the refusal (caller frees) with nothing left open.
 */
static char *
module_load(const char *name, const char *path, lt_dlhandle *handle_r,
	    const struct ts_module **desc_r)
{
	char *error = NULL;
	struct module_loader_data *ld = module_loader_setup(&error);
	if (ld == NULL) {
		char *text =
			ts_xasprintf("module %s (%s): %s", name, path, error);
		free(error);
		return text;
	}

	free(ld->last_error);
	ld->last_error = NULL;
	lt_dlhandle handle = lt_dlopen(path);
	if (handle == NULL) {
		const char *why = ld->last_error;
		if (why == NULL)
			why = lt_dlerror();
		char *text =
			ts_xasprintf("module %s (%s): cannot load: %s", name,
				     path, why ? why : "unknown error");
		free(ld->last_error);
		ld->last_error = NULL;
		return text;
	}

	char *ltx = ts_xasprintf("%s_LTX_tessera_module", name);
	const struct ts_module *desc = lt_dlsym(handle, ltx);
	free(ltx);
	if (desc == NULL)
		desc = lt_dlsym(handle, "tessera_module");
	if (desc == NULL) {
		(void)lt_dlclose(handle);
		return ts_xasprintf("module %s (%s): no tessera_module "
				    "descriptor",
				    name, path);
	}

	*handle_r = handle;
	*desc_r = desc;
	return NULL;
}

int
ts__module_open(const char *name, const char *const *dirs, size_t dir_count,
		struct ts__module **mod_r, char **error_r)
{
	*mod_r = NULL;
	*error_r = NULL;

	if (!module_name_valid(name)) {
		*error_r = ts_xasprintf("module '%s': bad module name (use "
					"a-z, 0-9 and _)",
					name ? name : "");
		return TS_E_INVAL;
	}
	char *path = module_find_file(name, dirs, dir_count);
	if (path == NULL) {
		*error_r = module_not_found_text(name, dirs, dir_count);
		return TS_E_NOTFOUND;
	}

	/* Reference counted: balanced by lt_dlexit here or in close. */
	if (lt_dlinit() != 0) {
		const char *text = lt_dlerror();
		*error_r =
			ts_xasprintf("module %s (%s): cannot initialise "
				     "libltdl: %s",
				     name, path, text ? text : "unknown error");
		/* lt_dlinit counts the call even when it fails. */
		lt_dlexit();
		free(path);
		return TS_E_IO;
	}

	lt_dlhandle handle = NULL;
	const struct ts_module *desc = NULL;
	char *error = module_load(name, path, &handle, &desc);
	if (error == NULL) {
		error = module_check_desc(name, path, desc);
		if (error != NULL)
			(void)lt_dlclose(handle);
	}
	if (error != NULL) {
		lt_dlexit();
		free(path);
		*error_r = error;
		return TS_E_INVAL;
	}

	/* For a .la, report the shared object libltdl actually opened. */
	const lt_dlinfo *info = lt_dlgetinfo(handle);
	if (info != NULL && info->filename != NULL &&
	    strcmp(info->filename, path) != 0) {
		free(path);
		path = ts_xstrdup(info->filename);
	}

	struct ts__module *mod = ts_xcalloc(1, sizeof(*mod));
	mod->name = ts_xstrdup(name);
	mod->path = path;
	mod->handle = handle;
	mod->desc = desc;
	mod->ctx.name = mod->name;
	mod->ctx.module = mod;
	*mod_r = mod;
	return 0;
}

/*
 * Unload the module and free it, `where` included (so whoever sets it
 * gives it a ts_xstrdup'd copy).  A failing dlclose leaves the object
 * mapped, which at exit harms nothing, so it is not reported.
 */
void
ts__module_close(struct ts__module **modp)
{
	struct ts__module *mod = *modp;
	if (mod == NULL)
		return;
	*modp = NULL;
	if (mod->handle != NULL) {
		(void)lt_dlclose(mod->handle);
		lt_dlexit(); /* balances the lt_dlinit in ts__module_open */
	}
	free(mod->name);
	free(mod->path);
	free(mod->where);
	free(mod);
}

/* --- ordering ------------------------------------------------------------ */

/*
 * Edges of the ordering graph, kept as an n×n matrix (a server loads tens
 * of modules): edge[i * n + j] says module i must come after module j.
 * A hard edge comes from `requires`, a soft one from `after`/`before`.
 */
enum module_edge {
	MODULE_EDGE_NONE = 0,
	MODULE_EDGE_SOFT = 1,
	MODULE_EDGE_HARD = 2,
};

struct module_graph {
	struct ts__module **mods; /* enabled modules, sorted by name */
	size_t n;
	unsigned char *edge;
	bool *placed;
};

static int
module_cmp_name(const void *a, const void *b)
{
	const struct ts__module *const *ma = a;
	const struct ts__module *const *mb = b;
	return strcmp((*ma)->name, (*mb)->name);
}

/* Index of an enabled module by name, or g->n. */
static size_t
module_graph_find(const struct module_graph *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++) {
		if (strcmp(g->mods[i]->name, name) == 0)
			return i;
	}
	return g->n;
}

/* Record "after must follow before"; a hard edge is never downgraded. */
static void
module_graph_add(struct module_graph *g, size_t after, size_t before,
		 enum module_edge kind)
{
	unsigned char *e = &g->edge[after * g->n + before];
	if (*e < kind)
		*e = (unsigned char)kind;
}

/* Any of mods[] (enabled or not) by name, or NULL. */
static const struct ts__module *
module_find_any(struct ts__module *const *mods, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(mods[i]->name, name) == 0)
			return mods[i];
	}
	return NULL;
}

/*
 * Add the edges of module i.  A requirement that is not in mods[] or not
 * enabled is an error on cfg; returns the number of such errors.  Soft
 * edges to absent or disabled modules mean nothing and are dropped.
 */
static int
module_graph_edges(struct module_graph *g, size_t i, struct ts_cfg *cfg,
		   struct ts__module *const *mods, size_t count)
{
	const struct ts__module *mod = g->mods[i];
	const struct ts_module *desc = mod->desc;
	int errors = 0;

	for (const char *const *r = desc->requires; r && *r; r++) {
		size_t j = module_graph_find(g, *r);
		if (j < g->n) {
			module_graph_add(g, i, j, MODULE_EDGE_HARD);
			continue;
		}
		if (module_find_any(mods, count, *r) == NULL)
			ts__cfg_error(cfg, mod->where,
				      "module %s: requires '%s', which is "
				      "not configured (add [module %s] "
				      "enabled = yes)",
				      mod->name, *r, *r);
		else
			ts__cfg_error(cfg, mod->where,
				      "module %s: requires '%s', which is "
				      "disabled",
				      mod->name, *r);
		errors++;
	}
	for (const char *const *a = desc->after; a && *a; a++) {
		size_t j = module_graph_find(g, *a);
		if (j < g->n)
			module_graph_add(g, i, j, MODULE_EDGE_SOFT);
	}
	for (const char *const *b = desc->before; b && *b; b++) {
		size_t j = module_graph_find(g, *b);
		if (j < g->n)
			module_graph_add(g, j, i, MODULE_EDGE_SOFT);
	}
	return errors;
}

/* True if every module i must follow has been placed. */
static bool
module_graph_ready(const struct module_graph *g, size_t i)
{
	for (size_t j = 0; j < g->n; j++) {
		if (g->edge[i * g->n + j] != MODULE_EDGE_NONE && !g->placed[j])
			return false;
	}
	return true;
}

/*
 * From unplaced module `start`, repeatedly step to the first unplaced
 * module the current one must follow through an edge of at least
 * `min_kind`, until a module repeats.  On success the cycle is in
 * cycle[0..*len_r-1] (each entry must follow the next, the last the first)
 * and true is returned; false if the walk reaches a dead end.
 */
static bool
module_graph_walk(const struct module_graph *g, size_t start,
		  enum module_edge min_kind, size_t *cycle, size_t *len_r)
{
	size_t *pos = ts_xmalloc(g->n * sizeof(*pos));
	for (size_t i = 0; i < g->n; i++)
		pos[i] = g->n; /* not on the path */

	size_t len = 0, cur = start;
	bool found = false;
	for (;;) {
		if (pos[cur] < g->n) {
			/* cycle[pos[cur]..len-1] is the loop. */
			size_t first = pos[cur];
			memmove(cycle, cycle + first,
				(len - first) * sizeof(*cycle));
			*len_r = len - first;
			found = true;
			break;
		}
		pos[cur] = len;
		cycle[len++] = cur;
		size_t next = g->n;
		for (size_t j = 0; j < g->n; j++) {
			if (!g->placed[j] &&
			    g->edge[cur * g->n + j] >= min_kind) {
				next = j;
				break;
			}
		}
		if (next == g->n)
			break;
		cur = next;
	}
	free(pos);
	return found;
}

/*
 * The sort is stuck: report one cycle among the unplaced modules.  A cycle
 * of `requires` alone is reported as such, since only changing which
 * modules are enabled can fix it; otherwise an after/before edge is part
 * of it.  The path starts at the cycle's smallest name.
 */
static void
module_graph_report_cycle(const struct module_graph *g, struct ts_cfg *cfg)
{
	size_t *cycle = ts_xmalloc((g->n + 1) * sizeof(*cycle));
	size_t len = 0;
	bool hard = false;

	for (size_t i = 0; i < g->n && !hard; i++) {
		if (!g->placed[i])
			hard = module_graph_walk(g, i, MODULE_EDGE_HARD, cycle,
						 &len);
	}
	if (!hard) {
		/* Every stuck module follows an unplaced one: this loops. */
		size_t first = 0;
		while (g->placed[first])
			first++;
		module_graph_walk(g, first, MODULE_EDGE_SOFT, cycle, &len);
	}

	/* Rotate so the smallest index (= name) comes first. */
	size_t min = 0;
	for (size_t k = 1; k < len; k++) {
		if (cycle[k] < cycle[min])
			min = k;
	}
	char *text = ts_xstrdup(g->mods[cycle[min]]->name);
	for (size_t k = 1; k <= len; k++) {
		const struct ts__module *step = g->mods[cycle[(min + k) % len]];
		char *longer = ts_xasprintf("%s -> %s", text, step->name);
		free(text);
		text = longer;
	}
	const struct ts__module *at = g->mods[cycle[min]];
	ts__cfg_error(cfg, at->where, "module %s: %s cycle %s", at->name,
		      hard ? "requirement" : "ordering", text);
	free(text);
	free(cycle);
}

int
ts__module_order(struct ts_cfg *cfg, struct ts__module *const *mods,
		 size_t count, struct ts__module ***ordered_r,
		 size_t *ordered_count_r)
{
	*ordered_r = NULL;
	*ordered_count_r = 0;

	struct module_graph g = { 0 };
	g.mods = ts_xcalloc(count, sizeof(*g.mods));
	for (size_t i = 0; i < count; i++) {
		if (mods[i]->enabled)
			g.mods[g.n++] = mods[i];
	}
	/* Sorted by name, "first ready index" is "smallest ready name". */
	qsort(g.mods, g.n, sizeof(*g.mods), module_cmp_name);
	g.edge = ts_xcalloc(g.n * g.n, 1);
	g.placed = ts_xcalloc(g.n, sizeof(*g.placed));

	int errors = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (g.mods[i]->desc != NULL)
			errors += module_graph_edges(&g, i, cfg, mods, count);
	}

	struct ts__module **ordered = ts_xcalloc(g.n, sizeof(*ordered));
	size_t placed = 0;
	while (placed < g.n) {
		size_t pick = g.n;
		for (size_t i = 0; i < g.n; i++) {
			if (!g.placed[i] && module_graph_ready(&g, i)) {
				pick = i;
				break;
			}
		}
		if (pick == g.n) {
			module_graph_report_cycle(&g, cfg);
			errors++;
			break;
		}
		g.placed[pick] = true;
		ordered[placed++] = g.mods[pick];
	}

	free(g.placed);
	free(g.edge);
	free(g.mods);
	if (errors > 0) {
		free(ordered);
		return TS_E_INVAL;
	}
	*ordered_r = ordered;
	*ordered_count_r = placed;
	return 0;
}

char *
ts__module_names(struct ts__module *const *mods, size_t count)
{
	if (count == 0)
		return ts_xstrdup("-");
	char *names = ts_xstrdup(mods[0]->name);
	for (size_t i = 1; i < count; i++) {
		char *longer = ts_xasprintf("%s,%s", names, mods[i]->name);
		free(names);
		names = longer;
	}
	return names;
}
