/*
 * modules/dmarc/tests/test-dmarc-report.c — aggregate report parsing,
 * unpacking and storage, on the reports in ../shared/testdata/dmarc
 * (plain XML, gzip, zip, whole report mails from five reporters, the RFC
 * 7489 namespace and none) and on hostile inputs built here: malformed
 * XML, an external entity, truncated gzip, a zip bomb, a mail without a
 * report.  Expected values were read from the files with Python's XML
 * parser, not with this code.
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
#include <zlib.h>

#include <tessera/common.h>

#include "../report.h"

static char *data_dir;

static char *
slurp(const char *rel, size_t *len_r)
{
	char *path = ts_xasprintf("%s/reports/%s", data_dir, rel);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	free(path);
	size_t cap = 1 << 20, len = 0, n;
	char *data = ts_xmalloc(cap);
	while ((n = fread(data + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			data = ts_xrealloc(data, cap);
		}
	}
	fclose(f);
	*len_r = len;
	return data;
}

struct expect {
	const char *file, *org, *id, *domain;
	size_t records;
	unsigned long long messages;
};

static const struct expect expected[] = {
	{ "mail-dmarc/test_dmarc.xml", "Test Sender", "1234567890",
	  "example.com", 1, 1 },
	{ "mail-dmarc/test_dmarc.xml.gz", "Test Sender", "1234567890",
	  "example.com", 1, 1 },
	{ "mail-dmarc/test_dmarc.xml.zip", "Test Sender", "1234567890",
	  "example.com", 1, 1 },
	{ "mox/google.eml", "google.com", "13488712042596170873",
	  "ueber.net", 2, 5 },
	{ "mox/mailru.eml", "Mail.Ru", "82403907998914102491559779200",
	  "ueber.net", 1, 1 },
	{ "mox/outlook.eml", "Outlook.com",
	  "8be4eb9d89044800947965b8a040291c", "ueber.net", 1, 2 },
	{ "mox/xs4all.eml", "xs4all.nl",
	  "xs4all.nl.1627349682.9725429@dmarc-reports.xs4all.net",
	  "ueber.net", 1, 1 },
	{ "mox/yahoo.eml", "Yahoo! Inc.", "1559613526.307161", "ueber.net",
	  1, 1 },
	{ "opendmarc/163.com!example.com!1337270400!1337356799."
	  "20120518163.xml",
	  "163.com", "aggr_report_example.com_20120518_163.com",
	  "example.com", 50, 92 },
	{ "opendmarc/good.com!example.com!1337270400!1337356799.xml",
	  "126.com", "aggr_report_example.com_20120518_126.com",
	  "example.com", 754, 183934 },
	{ "opendmarc/yeah.net!example.com!1337270400!1337356799."
	  "20120518.xml",
	  "yeah.net", "aggr_report_example.com_20120518_yeah.net",
	  "example.com", 254, 21679 },
};

/* Unpack and parse one input; exactly one report expected. */
static struct dmarc_report *
parse_one(const char *data, size_t len)
{
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(data, len, 32u << 20, &docs), 0);
	assert_int_equal(docs.count, 1);
	assert_non_null(docs.docs[0].xml);
	struct dmarc_report *r = NULL;
	char *error = NULL;
	int rc = dmarc_report_parse(docs.docs[0].xml, docs.docs[0].len, &r,
				    &error);
	if (rc != 0)
		fail_msg("parse: %s", error);
	dmarc_report_docs_free(&docs);
	return r;
}

static void
test_shared_reports(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		const struct expect *e = &expected[i];
		size_t len;
		char *data = slurp(e->file, &len);
		struct dmarc_report *r = parse_one(data, len);
		assert_string_equal(r->org_name, e->org);
		assert_string_equal(r->report_id, e->id);
		assert_string_equal(r->domain, e->domain);
		assert_int_equal(r->record_count, e->records);
		struct dmarc_report_totals t;
		dmarc_report_totals(r, &t);
		assert_int_equal(t.messages, e->messages);
		assert_int_equal(t.pass + t.fail, t.messages);
		dmarc_report_free(&r);
		assert_null(r);
		free(data);
	}
}

static void
test_record_fields(void **state)
{
	(void)state;
	size_t len;
	char *data = slurp("mox/google.eml", &len);
	struct dmarc_report *r = parse_one(data, len);
	assert_true(r->begin > 1500000000 && r->end > r->begin);
	assert_non_null(r->p);
	const struct dmarc_report_record *rec = &r->records[0];
	assert_non_null(rec->source_ip);
	assert_non_null(rec->header_from);
	assert_true(rec->count >= 1);
	assert_non_null(rec->disposition);
	dmarc_report_free(&r);
	free(data);
}

static void
test_malformed_xml_refused(void **state)
{
	(void)state;
	size_t len;
	char *data = slurp("opendmarc/bad.com!example.com!1337140800!"
			   "1337227200.xml",
			   &len);
	struct dmarc_report *r = NULL;
	char *error = NULL;
	assert_int_equal(dmarc_report_parse(data, len, &r, &error),
			 TS_E_INVAL);
	assert_null(r);
	assert_non_null(error);
	assert_non_null(strstr(error, "line")); /* says where */
	free(error);
	free(data);

	/* Not a feedback document; and one without its report id. */
	static const char *const bad[] = {
		"<html><body>hi</body></html>",
		"<feedback><report_metadata><org_name>x</org_name>"
		"</report_metadata></feedback>",
		"",
	};
	for (size_t i = 0; i < 3; i++) {
		error = NULL;
		assert_int_equal(dmarc_report_parse(bad[i], strlen(bad[i]),
						    &r, &error),
				 TS_E_INVAL);
		assert_non_null(error);
		free(error);
	}
}

static void
test_external_entity_not_loaded(void **state)
{
	(void)state;
	const char *xml =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<feedback><report_metadata><org_name>o&x;</org_name>"
		"<report_id>1</report_id></report_metadata>"
		"<policy_published><domain>d.example</domain></policy_published>"
		"</feedback>";
	struct dmarc_report *r = NULL;
	char *error = NULL;
	if (dmarc_report_parse(xml, strlen(xml), &r, &error) == 0) {
		assert_null(strstr(r->org_name, "root:"));
		dmarc_report_free(&r);
	} else {
		free(error);
	}
}

static char *
gzip_of(const char *in, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9,
				      Z_DEFAULT_STRATEGY),
			 Z_OK);
	size_t cap = deflateBound(&z, len) + 64;
	char *out = ts_xmalloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

static void
test_gzip_limits(void **state)
{
	(void)state;
	/* A bomb: 100 MiB of spaces, a few hundred KiB compressed. */
	size_t big = 100u << 20;
	char *spaces = ts_xmalloc(big);
	memset(spaces, ' ', big);
	memcpy(spaces, "<?xml version=\"1.0\"?>", 21);
	size_t zlen;
	char *bomb = gzip_of(spaces, big, &zlen);
	free(spaces);
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(bomb, zlen, 1u << 20, &docs), 0);
	assert_int_equal(docs.count, 1);
	assert_null(docs.docs[0].xml); /* refused at the cap */
	assert_non_null(docs.docs[0].error);
	dmarc_report_docs_free(&docs);

	/* Truncated: half of a good gzip. */
	size_t len;
	char *good = slurp("mail-dmarc/test_dmarc.xml.gz", &len);
	assert_int_equal(dmarc_report_unpack(good, len / 2, 1u << 20, &docs),
			 0);
	assert_int_equal(docs.count, 1);
	assert_null(docs.docs[0].xml);
	dmarc_report_docs_free(&docs);
	free(good);
	free(bomb);
}

static void
test_mail_without_report(void **state)
{
	(void)state;
	const char *mail = "From: a@example.org\r\nTo: b@example.org\r\n"
			   "Subject: hello\r\n\r\njust text\r\n";
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(mail, strlen(mail), 1u << 20,
					     &docs),
			 TS_E_NOTFOUND);
	assert_int_equal(docs.count, 0);
}

static void
test_store_and_duplicates(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/tessera-dmarc-report-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *dir = ts_xasprintf("%s/reports", tmpl);
	size_t len;
	char *data = slurp("mox/yahoo.eml", &len);
	struct dmarc_report_batch batch = { 0 };
	dmarc_report_process(dir, 32u << 20, "test", data, len, &batch);
	assert_int_equal(batch.count, 1);
	assert_int_equal(batch.items[0].status, DMARC_REPORT_STORED);
	dmarc_report_batch_free(&batch);
	/* The same report again: recognised, not stored twice. */
	dmarc_report_process(dir, 32u << 20, "test", data, len, &batch);
	assert_int_equal(batch.count, 1);
	assert_int_equal(batch.items[0].status, DMARC_REPORT_DUPLICATE);
	dmarc_report_batch_free(&batch);
	/* Not a report: one FAILED outcome saying why. */
	dmarc_report_process(dir, 32u << 20, "test", "hello", 5, &batch);
	assert_int_equal(batch.count, 1);
	assert_int_equal(batch.items[0].status, DMARC_REPORT_FAILED);
	assert_non_null(batch.items[0].error);
	dmarc_report_batch_free(&batch);

	struct dmarc_report **all = NULL;
	size_t count = 0;
	char *error = NULL;
	assert_int_equal(dmarc_report_load_all(dir, &all, &count, &error), 0);
	assert_int_equal(count, 1);
	assert_string_equal(all[0]->org_name, "Yahoo! Inc.");
	assert_int_equal(all[0]->record_count, 1);
	assert_non_null(all[0]->key);
	assert_int_equal(strlen(all[0]->key), DMARC_REPORT_KEY_LEN);
	dmarc_report_list_free(&all, count);
	free(data);
	char *cmd = ts_xasprintf("rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

int
main(void)
{
	const char *src = getenv("TS_SRCDIR");
	data_dir = ts_xasprintf("%s/../shared/testdata/dmarc",
				src != NULL ? src : ".");
	char *probe = ts_xasprintf("%s/README.md", data_dir);
	if (access(probe, R_OK) != 0) {
		fprintf(stderr, "no DMARC test data at %s: skipped\n",
			data_dir);
		free(probe);
		free(data_dir);
		return 77;
	}
	free(probe);
	dmarc_report_parser_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_reports),
		cmocka_unit_test(test_record_fields),
		cmocka_unit_test(test_malformed_xml_refused),
		cmocka_unit_test(test_external_entity_not_loaded),
		cmocka_unit_test(test_gzip_limits),
		cmocka_unit_test(test_mail_without_report),
		cmocka_unit_test(test_store_and_duplicates),
	};
	int rc = cmocka_run_group_tests_name("dmarc-report", tests, NULL,
					     NULL);
	free(data_dir);
	return rc;
}
