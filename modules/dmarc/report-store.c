/*
 * modules/dmarc/report-store.c — parsed reports on disk, one JSON file
 * each, and read back.
 *
 * Layout: DATA_DIR/dmarc/reports/KEY.json, KEY being 32 hex digits of
 * SHA-256 over org_name, NUL, report_id (so a report sent twice lands on
 * the same name and is kept once).  A file holds one JSON object (jansson)
 * that mirrors the report's XML:
 *
 *   { "format": "tessera-dmarc-report-1", "key": KEY, "stored": UNIXTIME,
 *     "source": "message ID" | "file PATH", "version": V,
 *     "report_metadata": { "org_name", "email", "extra_contact_info",
 *        "report_id", "date_range": { "begin": N, "end": N },
 *        "errors": [ … ] },
 *     "policy_published": { "domain", "adkim", "aspf", "p", "sp", "np",
 *        "pct", "t", "psd", "fo", "discovery_method" },
 *     "records": [ { "source_ip", "count": N,
 *        "policy_evaluated": { "disposition", "dkim", "spf",
 *           "reasons": [ { "type", "comment" } ] },
 *        "identifiers": { "header_from", "envelope_from", "envelope_to" },
 *        "auth_results": {
 *           "dkim": [ { "domain", "selector", "result", "human_result" } ],
 *           "spf": [ { "domain", "scope", "result", "human_result" } ] }
 *     } ] }
 *
 * Strings are as the reporter wrote them; a key whose element was absent
 * is left out.  A file is written to a temporary name in the same
 * directory, fsynced, then link()ed to its final name — link fails when
 * the name exists, which makes "first copy wins" atomic even between two
 * writers — and the directory is fsynced.  Everything here blocks: call it
 * from the work pool or a CLI command.  Not SQLite: DESIGN.md keeps SQLite
 * inside the store, and a report is written once and only read by the CLI.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>

#include "report.h"

#define DMARC_STORE_FORMAT "tessera-dmarc-report-1"
/* A stored file larger than this is not one of ours. */
#define DMARC_STORE_MAX_FILE (512u * 1024 * 1024)

void
dmarc_report_key(const struct dmarc_report *report,
		 char key_r[DMARC_REPORT_KEY_LEN + 1])
{
	size_t on = strlen(report->org_name), in = strlen(report->report_id);
	char *buf = ts_xmalloc(on + 1 + in);
	memcpy(buf, report->org_name, on);
	buf[on] = '\0';
	memcpy(buf + on + 1, report->report_id, in);
	unsigned char digest[32];
	gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, on + 1 + in, digest);
	free(buf);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < DMARC_REPORT_KEY_LEN / 2; i++) {
		key_r[2 * i] = hex[digest[i] >> 4];
		key_r[2 * i + 1] = hex[digest[i] & 0xf];
	}
	key_r[DMARC_REPORT_KEY_LEN] = '\0';
}

/* --- to JSON ---------------------------------------------------------------
 */

/*
 * A JSON string; bytes that are not UTF-8 (a file name given on the
 * command line, say) become '?' rather than losing the field.
 */
static json_t *
dmarc_json_string(const char *s)
{
	json_t *j = json_string(s);
	if (j != NULL)
		return j;
	char *copy = ts_xstrdup(s);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void
dmarc_json_set(json_t *obj, const char *name, const char *value)
{
	if (value != NULL)
		json_object_set_new(obj, name, dmarc_json_string(value));
}

static json_t *
dmarc_record_json(const struct dmarc_report_record *r)
{
	json_t *rec = json_object();
	dmarc_json_set(rec, "source_ip", r->source_ip);
	json_object_set_new(rec, "count", json_integer((json_int_t)r->count));
	json_t *pe = json_object();
	dmarc_json_set(pe, "disposition", r->disposition);
	dmarc_json_set(pe, "dkim", r->dkim);
	dmarc_json_set(pe, "spf", r->spf);
	if (r->reason_count > 0) {
		json_t *reasons = json_array();
		for (size_t i = 0; i < r->reason_count; i++) {
			json_t *why = json_object();
			dmarc_json_set(why, "type", r->reasons[i].type);
			dmarc_json_set(why, "comment", r->reasons[i].comment);
			json_array_append_new(reasons, why);
		}
		json_object_set_new(pe, "reasons", reasons);
	}
	json_object_set_new(rec, "policy_evaluated", pe);
	json_t *ids = json_object();
	dmarc_json_set(ids, "header_from", r->header_from);
	dmarc_json_set(ids, "envelope_from", r->envelope_from);
	dmarc_json_set(ids, "envelope_to", r->envelope_to);
	json_object_set_new(rec, "identifiers", ids);
	json_t *auth = json_object();
	json_t *dkim = json_array();
	for (size_t i = 0; i < r->dkim_count; i++) {
		const struct dmarc_report_dkim *d = &r->dkim_results[i];
		json_t *o = json_object();
		dmarc_json_set(o, "domain", d->domain);
		dmarc_json_set(o, "selector", d->selector);
		dmarc_json_set(o, "result", d->result);
		dmarc_json_set(o, "human_result", d->human_result);
		json_array_append_new(dkim, o);
	}
	json_object_set_new(auth, "dkim", dkim);
	json_t *spf = json_array();
	for (size_t i = 0; i < r->spf_count; i++) {
		const struct dmarc_report_spf *s = &r->spf_results[i];
		json_t *o = json_object();
		dmarc_json_set(o, "domain", s->domain);
		dmarc_json_set(o, "scope", s->scope);
		dmarc_json_set(o, "result", s->result);
		dmarc_json_set(o, "human_result", s->human_result);
		json_array_append_new(spf, o);
	}
	json_object_set_new(auth, "spf", spf);
	json_object_set_new(rec, "auth_results", auth);
	return rec;
}

char *
dmarc_report_to_json(const struct dmarc_report *r, bool pretty)
{
	json_t *root = json_object();
	json_object_set_new(root, "format", json_string(DMARC_STORE_FORMAT));
	dmarc_json_set(root, "key", r->key);
	if (r->stored != 0)
		json_object_set_new(root, "stored", json_integer(r->stored));
	dmarc_json_set(root, "source", r->source);
	dmarc_json_set(root, "version", r->version);

	json_t *meta = json_object();
	dmarc_json_set(meta, "org_name", r->org_name);
	dmarc_json_set(meta, "email", r->email);
	dmarc_json_set(meta, "extra_contact_info", r->extra_contact_info);
	dmarc_json_set(meta, "report_id", r->report_id);
	json_object_set_new(meta, "date_range",
			    json_pack("{s:I,s:I}", "begin",
				      (json_int_t)r->begin, "end",
				      (json_int_t)r->end));
	if (r->error_count > 0) {
		json_t *errors = json_array();
		for (size_t i = 0; i < r->error_count; i++)
			json_array_append_new(errors,
					      dmarc_json_string(r->errors[i]));
		json_object_set_new(meta, "errors", errors);
	}
	json_object_set_new(root, "report_metadata", meta);

	json_t *pol = json_object();
	dmarc_json_set(pol, "domain", r->domain);
	dmarc_json_set(pol, "adkim", r->adkim);
	dmarc_json_set(pol, "aspf", r->aspf);
	dmarc_json_set(pol, "p", r->p);
	dmarc_json_set(pol, "sp", r->sp);
	dmarc_json_set(pol, "np", r->np);
	dmarc_json_set(pol, "pct", r->pct);
	dmarc_json_set(pol, "t", r->t);
	dmarc_json_set(pol, "psd", r->psd);
	dmarc_json_set(pol, "fo", r->fo);
	dmarc_json_set(pol, "discovery_method", r->discovery_method);
	json_object_set_new(root, "policy_published", pol);

	json_t *records = json_array();
	for (size_t i = 0; i < r->record_count; i++)
		json_array_append_new(records,
				      dmarc_record_json(&r->records[i]));
	json_object_set_new(root, "records", records);

	char *text =
		json_dumps(root, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2)
							       : JSON_COMPACT));
	json_decref(root);
	if (text == NULL)
		abort(); /* only on out-of-memory */
	/* jansson allocates with malloc: the caller's free() is right. */
	return text;
}

/* --- from JSON -------------------------------------------------------------
 */

static char *
dmarc_json_get(const json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));
	return s != NULL ? ts_xstrdup(s) : NULL;
}

static void
dmarc_record_from_json(const json_t *o, struct dmarc_report_record *r)
{
	r->source_ip = dmarc_json_get(o, "source_ip");
	json_int_t count = json_integer_value(json_object_get(o, "count"));
	r->count = count > 0 ? (uint64_t)count : 0;
	const json_t *pe = json_object_get(o, "policy_evaluated");
	r->disposition = dmarc_json_get(pe, "disposition");
	r->dkim = dmarc_json_get(pe, "dkim");
	r->spf = dmarc_json_get(pe, "spf");
	const json_t *reasons = json_object_get(pe, "reasons");
	size_t n = json_array_size(reasons);
	if (n > 0) {
		r->reasons = ts_xcalloc(n, sizeof(*r->reasons));
		for (size_t i = 0; i < n; i++) {
			const json_t *why = json_array_get(reasons, i);
			r->reasons[i].type = dmarc_json_get(why, "type");
			r->reasons[i].comment = dmarc_json_get(why, "comment");
		}
		r->reason_count = n;
	}
	const json_t *ids = json_object_get(o, "identifiers");
	r->header_from = dmarc_json_get(ids, "header_from");
	r->envelope_from = dmarc_json_get(ids, "envelope_from");
	r->envelope_to = dmarc_json_get(ids, "envelope_to");
	const json_t *auth = json_object_get(o, "auth_results");
	const json_t *dkim = json_object_get(auth, "dkim");
	n = json_array_size(dkim);
	if (n > 0) {
		r->dkim_results = ts_xcalloc(n, sizeof(*r->dkim_results));
		for (size_t i = 0; i < n; i++) {
			const json_t *d = json_array_get(dkim, i);
			r->dkim_results[i].domain = dmarc_json_get(d, "domain");
			r->dkim_results[i].selector =
				dmarc_json_get(d, "selector");
			r->dkim_results[i].result = dmarc_json_get(d, "result");
			r->dkim_results[i].human_result =
				dmarc_json_get(d, "human_result");
		}
		r->dkim_count = n;
	}
	const json_t *spf = json_object_get(auth, "spf");
	n = json_array_size(spf);
	if (n > 0) {
		r->spf_results = ts_xcalloc(n, sizeof(*r->spf_results));
		for (size_t i = 0; i < n; i++) {
			const json_t *s = json_array_get(spf, i);
			r->spf_results[i].domain = dmarc_json_get(s, "domain");
			r->spf_results[i].scope = dmarc_json_get(s, "scope");
			r->spf_results[i].result = dmarc_json_get(s, "result");
			r->spf_results[i].human_result =
				dmarc_json_get(s, "human_result");
		}
		r->spf_count = n;
	}
}

struct dmarc_report *
dmarc_report_from_json(const char *text, size_t len, char **error_r)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	if (root == NULL) {
		*error_r = ts_xasprintf("line %d: %s", jerr.line, jerr.text);
		return NULL;
	}
	const char *format = json_string_value(json_object_get(root, "format"));
	const json_t *meta = json_object_get(root, "report_metadata");
	if (format == NULL || strcmp(format, DMARC_STORE_FORMAT) != 0 ||
	    !json_is_object(meta)) {
		*error_r = ts_xstrdup("not a stored dmarc report");
		json_decref(root);
		return NULL;
	}
	struct dmarc_report *r = ts_xcalloc(1, sizeof(*r));
	r->key = dmarc_json_get(root, "key");
	r->stored =
		(int64_t)json_integer_value(json_object_get(root, "stored"));
	r->source = dmarc_json_get(root, "source");
	r->version = dmarc_json_get(root, "version");
	r->org_name = dmarc_json_get(meta, "org_name");
	r->email = dmarc_json_get(meta, "email");
	r->extra_contact_info = dmarc_json_get(meta, "extra_contact_info");
	r->report_id = dmarc_json_get(meta, "report_id");
	const json_t *range = json_object_get(meta, "date_range");
	r->begin = (int64_t)json_integer_value(json_object_get(range, "begin"));
	r->end = (int64_t)json_integer_value(json_object_get(range, "end"));
	const json_t *errors = json_object_get(meta, "errors");
	size_t n = json_array_size(errors);
	if (n > 0) {
		r->errors = ts_xcalloc(n, sizeof(*r->errors));
		for (size_t i = 0; i < n; i++) {
			const char *e =
				json_string_value(json_array_get(errors, i));
			r->errors[r->error_count++] = ts_xstrdup(e ? e : "");
		}
	}
	const json_t *pol = json_object_get(root, "policy_published");
	r->domain = dmarc_json_get(pol, "domain");
	r->adkim = dmarc_json_get(pol, "adkim");
	r->aspf = dmarc_json_get(pol, "aspf");
	r->p = dmarc_json_get(pol, "p");
	r->sp = dmarc_json_get(pol, "sp");
	r->np = dmarc_json_get(pol, "np");
	r->pct = dmarc_json_get(pol, "pct");
	r->t = dmarc_json_get(pol, "t");
	r->psd = dmarc_json_get(pol, "psd");
	r->fo = dmarc_json_get(pol, "fo");
	r->discovery_method = dmarc_json_get(pol, "discovery_method");
	const json_t *records = json_object_get(root, "records");
	n = json_array_size(records);
	if (n > 0) {
		r->records = ts_xcalloc(n, sizeof(*r->records));
		for (size_t i = 0; i < n; i++)
			dmarc_record_from_json(json_array_get(records, i),
					       &r->records[i]);
		r->record_count = n;
	}
	json_decref(root);
	if (r->org_name == NULL || r->report_id == NULL) {
		dmarc_report_free(&r);
		*error_r = ts_xstrdup("no org_name or report_id");
		return NULL;
	}
	return r;
}

/* --- files -----------------------------------------------------------------
 */

static int
dmarc_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/*
 * Create dir and its missing parents (mode 0750), fsyncing the parent of
 * each one made so the new entry is durable.
 */
static int
dmarc_mkdirs(const char *dir, char **error_r)
{
	struct stat st;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	char *path = ts_xstrdup(dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0750) == 0) {
			char *slash = strrchr(path, '/');
			if (slash != NULL && slash != path) {
				*slash = '\0';
				dmarc_fsync_dir(path);
				*slash = '/';
			}
		} else if (errno != EEXIST) {
			*error_r = ts_xasprintf("cannot create %s: %s", path,
						strerror(errno));
			free(path);
			return TS_E_IO;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return 0;
}

static int
dmarc_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
dmarc_report_store(const char *dir, struct dmarc_report *report,
		   bool *duplicate_r, char **error_r)
{
	*duplicate_r = false;
	if (dmarc_mkdirs(dir, error_r) != 0)
		return TS_E_IO;
	char key[DMARC_REPORT_KEY_LEN + 1];
	dmarc_report_key(report, key);
	free(report->key);
	report->key = ts_xstrdup(key);
	char *path = ts_xasprintf("%s/%s.json", dir, key);
	struct stat st;
	if (stat(path, &st) == 0) {
		*duplicate_r = true;
		free(path);
		return 0;
	}
	report->stored = (int64_t)time(NULL);
	char *text = dmarc_report_to_json(report, false);
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&rnd;
	char *tmp = ts_xasprintf("%s/.tmp-%s-%016" PRIx64, dir, key, rnd);
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		*error_r = ts_xasprintf("cannot create %s: %s", tmp,
					strerror(errno));
		rc = TS_E_IO;
		goto out;
	}
	if (dmarc_write_all(fd, text, strlen(text)) != 0 ||
	    dmarc_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
		*error_r = ts_xasprintf("cannot write %s: %s", tmp,
					strerror(errno));
		close(fd);
		unlink(tmp);
		rc = TS_E_IO;
		goto out;
	}
	if (close(fd) != 0) {
		*error_r = ts_xasprintf("cannot write %s: %s", tmp,
					strerror(errno));
		unlink(tmp);
		rc = TS_E_IO;
		goto out;
	}
	if (link(tmp, path) != 0) {
		if (errno == EEXIST) {
			*duplicate_r = true; /* another writer was first */
		} else {
			*error_r = ts_xasprintf("cannot link %s: %s", path,
						strerror(errno));
			rc = TS_E_IO;
		}
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	if (dmarc_fsync_dir(dir) != 0) {
		*error_r = ts_xasprintf("cannot fsync %s: %s", dir,
					strerror(errno));
		rc = TS_E_IO;
	}
out:
	free(tmp);
	free(text);
	free(path);
	return rc;
}

/* A whole file into memory; NULL with errno set. */
static char *
dmarc_read_file(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st = { 0 };
	if (fstat(fd, &st) != 0 || st.st_size > DMARC_STORE_MAX_FILE) {
		int e = st.st_size > DMARC_STORE_MAX_FILE ? EFBIG : errno;
		close(fd);
		errno = e;
		return NULL;
	}
	size_t size = (size_t)st.st_size, n = 0;
	char *buf = ts_xmalloc(size + 1);
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len_r = n;
	return buf;
}

static bool
dmarc_is_key_file(const char *name)
{
	size_t n = strlen(name);
	if (n != DMARC_REPORT_KEY_LEN + 5 ||
	    strcmp(name + DMARC_REPORT_KEY_LEN, ".json") != 0)
		return false;
	for (size_t i = 0; i < DMARC_REPORT_KEY_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

static int
dmarc_report_cmp(const void *a, const void *b)
{
	const struct dmarc_report *x = *(const struct dmarc_report *const *)a;
	const struct dmarc_report *y = *(const struct dmarc_report *const *)b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	int c = strcmp(x->org_name, y->org_name);
	return c != 0 ? c : strcmp(x->report_id, y->report_id);
}

int
dmarc_report_load_all(const char *dir, struct dmarc_report ***reports_r,
		      size_t *count_r, char **error_r)
{
	*reports_r = NULL;
	*count_r = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = ts_xasprintf("cannot read %s: %s", dir,
					strerror(errno));
		return TS_E_IO;
	}
	struct dmarc_report **list = NULL;
	size_t count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!dmarc_is_key_file(de->d_name))
			continue;
		char *path = ts_xasprintf("%s/%s", dir, de->d_name);
		size_t len;
		char *text = dmarc_read_file(path, &len);
		if (text == NULL) {
			fprintf(stderr, "tessera dmarc: %s: %s\n", path,
				strerror(errno));
			free(path);
			continue;
		}
		char *why = NULL;
		struct dmarc_report *r =
			dmarc_report_from_json(text, len, &why);
		free(text);
		if (r == NULL) {
			fprintf(stderr, "tessera dmarc: %s: %s\n", path, why);
			free(why);
			free(path);
			continue;
		}
		free(path);
		if (r->key == NULL)
			r->key = ts_xstrndup(de->d_name, DMARC_REPORT_KEY_LEN);
		list = ts_xrealloc(list, (count + 1) * sizeof(*list));
		list[count++] = r;
	}
	closedir(d);
	if (count > 1)
		qsort(list, count, sizeof(*list), dmarc_report_cmp);
	*reports_r = list;
	*count_r = count;
	return 0;
}

void
dmarc_report_list_free(struct dmarc_report ***reports, size_t count)
{
	if (*reports == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		dmarc_report_free(&(*reports)[i]);
	free(*reports);
	*reports = NULL;
}
