/*
 * modules/dmarc/report-cli.c — `tessera dmarc …`: what an admin does with
 * stored aggregate reports.
 *
 *   tessera dmarc reports [--domain D] [--json]   one line per report
 *   tessera dmarc show KEY                        one report, as JSON
 *   tessera dmarc import FILE…                    store reports from files
 *
 * The files are read directly (DATA_DIR/dmarc/reports, one JSON file per
 * report), so the server need not run.  A CLI: blocking is fine here.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <tessera/common.h>

#include "dmarc-hook.h"
#include "report.h"

static int
dmarc_cli_usage(void)
{
	fprintf(stderr,
		"usage: tessera dmarc reports [--domain DOMAIN] [--json]\n"
		"       tessera dmarc show KEY\n"
		"       tessera dmarc import FILE...\n");
	return 2;
}

static void
dmarc_cli_date(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

static int
dmarc_cli_list(const struct dmarc_settings *set, int argc, char **argv)
{
	const char *domain = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
			domain = argv[++i];
		else
			return dmarc_cli_usage();
	}
	struct dmarc_report **reports = NULL;
	size_t count = 0;
	char *error = NULL;
	if (dmarc_report_load_all(set->report_dir, &reports, &count,
				  &error) != 0) {
		fprintf(stderr, "tessera dmarc reports: %s\n", error);
		free(error);
		return 1;
	}
	if (!json)
		printf("%-32s  %-16s  %-16s  %-24s  %-20s  %8s %8s %8s\n",
		       "KEY", "BEGIN (UTC)", "END (UTC)", "ORGANIZATION",
		       "DOMAIN", "MESSAGES", "PASS", "FAIL");
	else
		printf("[");
	size_t shown = 0;
	for (size_t i = 0; i < count; i++) {
		const struct dmarc_report *r = reports[i];
		if (domain != NULL &&
		    (r->domain == NULL || strcasecmp(r->domain, domain) != 0))
			continue;
		if (json) {
			char *text = dmarc_report_to_json(r, false);
			printf("%s\n%s", shown > 0 ? "," : "", text);
			free(text);
			shown++;
			continue;
		}
		struct dmarc_report_totals t;
		char begin[32], end[32];
		dmarc_report_totals(r, &t);
		dmarc_cli_date(r->begin, begin, sizeof(begin));
		dmarc_cli_date(r->end, end, sizeof(end));
		printf("%-32s  %-16s  %-16s  %-24.24s  %-20.20s  %8llu %8llu "
		       "%8llu\n",
		       r->key != NULL ? r->key : "-", begin, end, r->org_name,
		       r->domain != NULL ? r->domain : "-",
		       (unsigned long long)t.messages,
		       (unsigned long long)t.pass, (unsigned long long)t.fail);
		shown++;
	}
	if (json)
		printf("]\n");
	else
		printf("%zu report%s\n", shown, shown == 1 ? "" : "s");
	dmarc_report_list_free(&reports, count);
	return 0;
}

static int
dmarc_cli_show(const struct dmarc_settings *set, int argc, char **argv)
{
	if (argc != 2)
		return dmarc_cli_usage();
	struct dmarc_report **reports = NULL;
	size_t count = 0;
	char *error = NULL;
	if (dmarc_report_load_all(set->report_dir, &reports, &count,
				  &error) != 0) {
		fprintf(stderr, "tessera dmarc show: %s\n", error);
		free(error);
		return 1;
	}
	int rc = 1;
	for (size_t i = 0; i < count; i++) {
		if (reports[i]->key != NULL &&
		    strcmp(reports[i]->key, argv[1]) == 0) {
			char *text = dmarc_report_to_json(reports[i], true);
			printf("%s\n", text);
			free(text);
			rc = 0;
			break;
		}
	}
	if (rc != 0)
		fprintf(stderr, "tessera dmarc show: no report with key %s\n",
			argv[1]);
	dmarc_report_list_free(&reports, count);
	return rc;
}

/* Read a whole file (at most max bytes); NULL with errno on failure. */
static char *
dmarc_cli_read(const char *path, uint64_t max, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 65536, len = 0;
	char *data = ts_xmalloc(cap);
	size_t n;
	while ((n = fread(data + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len > max) {
			free(data);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (len == cap) {
			cap *= 2;
			data = ts_xrealloc(data, cap);
		}
	}
	bool failed = ferror(f) != 0;
	fclose(f);
	if (failed) {
		free(data);
		errno = EIO;
		return NULL;
	}
	*len_r = len;
	return data;
}

static int
dmarc_cli_import(const struct dmarc_settings *set, int argc, char **argv)
{
	if (argc < 2)
		return dmarc_cli_usage();
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		size_t len;
		char *data = dmarc_cli_read(argv[i], set->report_max_size, &len);
		if (data == NULL) {
			fprintf(stderr, "%s: cannot read: %s\n", argv[i],
				errno == EFBIG ? "larger than report_max_size"
					       : strerror(errno));
			rc = 1;
			continue;
		}
		char *source = ts_xasprintf("file %s", argv[i]);
		struct dmarc_report_batch batch = { 0 };
		dmarc_report_process(set->report_dir, set->report_max_size,
				     source, data, len, &batch);
		for (size_t j = 0; j < batch.count; j++) {
			const struct dmarc_report_outcome *o = &batch.items[j];
			const char *what = o->name != NULL ? o->name : argv[i];
			if (o->status == DMARC_REPORT_FAILED) {
				fprintf(stderr, "%s: %s\n", what, o->error);
				rc = 1;
				continue;
			}
			printf("%s: %s org=\"%s\" id=\"%s\" domain=%s "
			       "records=%zu key=%s\n",
			       what,
			       o->status == DMARC_REPORT_DUPLICATE
				       ? "already stored"
				       : "stored",
			       o->report->org_name, o->report->report_id,
			       o->report->domain != NULL ? o->report->domain
							 : "-",
			       o->report->record_count, o->report->key);
		}
		dmarc_report_batch_free(&batch);
		free(source);
		free(data);
	}
	return rc;
}

int
dmarc_report_cli(struct ts_ctx *ctx, int argc, char **argv)
{
	const struct dmarc_settings *set = ts_ctx_data(ctx);
	/* argv[0] is "dmarc" */
	if (set == NULL || argc < 2)
		return dmarc_cli_usage();
	if (strcmp(argv[1], "reports") == 0)
		return dmarc_cli_list(set, argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return dmarc_cli_show(set, argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return dmarc_cli_import(set, argc - 1, argv + 1);
	return dmarc_cli_usage();
}
