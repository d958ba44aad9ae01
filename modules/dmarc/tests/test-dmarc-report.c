/*
 * modules/dmarc/tests/test-dmarc-report.c — aggregate reports: every
 * report in ../shared/testdata/dmarc/reports unpacks and parses into the
 * expected records (bad.com is refused cleanly), and the hostile inputs
 * (truncated gzip, a gzip bomb, a zip whose header lies, an external
 * entity, an empty attachment, a mail without a report) get their
 * defined answers; storing twice keeps one copy.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "modules/dmarc/report.h"

static char *
dm_path(const char *rel)
{
	const char *src = getenv("TS_SRCDIR");
	return ts_xasprintf("%s/../shared/testdata/dmarc/reports/%s",
			    src != NULL ? src : ".", rel);
}

static char *
dm_read(const char *rel, size_t *len_r)
{
	char *path = dm_path(rel);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = ts_xrealloc(buf, cap + 1);
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	free(path);
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

#define DM_MAX (32u * 1024 * 1024)

/* Unpack + parse a test file; exactly one report expected. */
static struct dmarc_report *
dm_parse_file(const char *rel)
{
	size_t len;
	char *data = dm_read(rel, &len);
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(data, len, DM_MAX, &docs), 0);
	assert_int_equal(docs.count, 1);
	if (docs.docs[0].error != NULL)
		fail_msg("%s: %s", rel, docs.docs[0].error);
	struct dmarc_report *r = NULL;
	char *error = NULL;
	int rc = dmarc_report_parse(docs.docs[0].xml, docs.docs[0].len, &r,
				    &error);
	if (rc != 0)
		fail_msg("%s: %s", rel, error);
	dmarc_report_docs_free(&docs);
	free(data);
	return r;
}

static void
test_mail_dmarc_forms(void **state)
{
	(void)state;
	const char *files[] = { "mail-dmarc/test_dmarc.xml",
				"mail-dmarc/test_dmarc.xml.gz",
				"mail-dmarc/test_dmarc.xml.zip" };
	for (size_t i = 0; i < 3; i++) {
		struct dmarc_report *r = dm_parse_file(files[i]);
		assert_string_equal(r->org_name, "Test Sender");
		assert_string_equal(r->report_id, "1234567890");
		assert_int_equal(r->begin, 1609459200);
		assert_int_equal(r->end, 1609545600);
		assert_string_equal(r->domain, "example.com");
		assert_string_equal(r->p, "none");
		assert_string_equal(r->pct, "100");
		assert_int_equal(r->record_count, 1);
		assert_string_equal(r->records[0].source_ip, "1.2.3.4");
		assert_int_equal(r->records[0].count, 1);
		assert_int_equal(r->records[0].dkim_count, 1);
		assert_string_equal(r->records[0].dkim_results[0].selector,
				    "default");
		assert_string_equal(r->records[0].spf_results[0].scope,
				    "mfrom");
		dmarc_report_free(&r);
	}
}

static void
test_opendmarc_counts(void **state)
{
	(void)state;
	struct {
		const char *file, *org;
		size_t records;
	} cases[] = {
		{ "opendmarc/163.com!example.com!1337270400!1337356799."
		  "20120518163.xml",
		  "163.com", 50 },
		{ "opendmarc/good.com!example.com!1337270400!1337356799.xml",
		  "126.com", 754 },
		{ "opendmarc/yeah.net!example.com!1337270400!1337356799."
		  "20120518.xml",
		  "yeah.net", 254 },
	};
	for (size_t i = 0; i < 3; i++) {
		struct dmarc_report *r = dm_parse_file(cases[i].file);
		assert_string_equal(r->org_name, cases[i].org);
		assert_int_equal(r->record_count, cases[i].records);
		/* "1337270400.0": the fraction is dropped */
		assert_int_equal(r->begin, 1337270400);
		assert_int_equal(r->end, 1337356799);
		assert_string_equal(r->p, "reject");
		dmarc_report_free(&r);
	}
	struct dmarc_report *r = dm_parse_file(cases[2].file);
	assert_string_equal(r->records[0].source_ip, "209.85.214.181");
	assert_int_equal(r->records[0].count, 6);
	assert_string_equal(r->records[0].spf_results[0].domain, "gmail.com");
	assert_string_equal(r->records[0].dkim_results[0].human_result,
			    "verify result: all signatures verified");
	dmarc_report_free(&r);
}

static void
test_bad_com_refused(void **state)
{
	(void)state;
	size_t len;
	char *data = dm_read("opendmarc/bad.com!example.com!1337140800!"
			     "1337227200.xml",
			     &len);
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(data, len, DM_MAX, &docs), 0);
	struct dmarc_report *r = NULL;
	char *error = NULL;
	assert_int_equal(dmarc_report_parse(docs.docs[0].xml, docs.docs[0].len,
					    &r, &error),
			 TS_E_INVAL);
	assert_null(r);
	assert_non_null(strstr(error, "XML line"));
	free(error);
	dmarc_report_docs_free(&docs);
	free(data);
}

static void
test_mox_mails(void **state)
{
	(void)state;
	struct {
		const char *file, *org, *id;
		size_t records;
		uint64_t messages;
	} cases[] = {
		{ "mox/google.eml", "google.com", "13488712042596170873", 2,
		  5 },
		{ "mox/mailru.eml", "Mail.Ru", "82403907998914102491559779200",
		  1, 1 },
		{ "mox/outlook.eml", "Outlook.com",
		  "8be4eb9d89044800947965b8a040291c", 1, 2 },
		{ "mox/xs4all.eml", "xs4all.nl",
		  "xs4all.nl.1627349682.9725429@dmarc-reports.xs4all.net", 1,
		  1 },
		{ "mox/yahoo.eml", "Yahoo! Inc.", "1559613526.307161", 1, 1 },
	};
	for (size_t i = 0; i < 5; i++) {
		struct dmarc_report *r = dm_parse_file(cases[i].file);
		assert_string_equal(r->org_name, cases[i].org);
		assert_string_equal(r->report_id, cases[i].id);
		assert_string_equal(r->domain, "ueber.net");
		assert_int_equal(r->record_count, cases[i].records);
		struct dmarc_report_totals t;
		dmarc_report_totals(r, &t);
		assert_int_equal(t.messages, cases[i].messages);
		if (i == 1) {
			assert_int_equal(t.fail, 1);
			assert_string_equal(r->records[0].disposition,
					    "reject");
		}
		if (i == 2) {
			assert_string_equal(r->records[0].envelope_to,
					    "outlook.com");
			assert_string_equal(r->fo, "1");
		}
		if (i == 4) /* "1559606399 " trimmed */
			assert_int_equal(r->end, 1559606399);
		dmarc_report_free(&r);
	}
}

static void
test_namespace_rfc9990(void **state)
{
	(void)state;
	const char *xml =
		"<?xml version=\"1.0\"?>\n"
		"<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">"
		"<version>1.0</version><report_metadata><org_name>o"
		"</org_name><email>e@x</email><report_id>r1</report_id>"
		"<date_range><begin>1</begin><end>2</end></date_range>"
		"</report_metadata><policy_published><domain>d.example"
		"</domain><p>quarantine</p><np>reject</np><t>y</t>"
		"<discovery_method>treewalk</discovery_method>"
		"</policy_published><record><row><source_ip>192.0.2.1"
		"</source_ip><count>3</count><policy_evaluated>"
		"<disposition>none</disposition><dkim>fail</dkim><spf>fail"
		"</spf><reason><type>policy_test_mode</type></reason>"
		"</policy_evaluated></row><identifiers><envelope_from>e.example"
		"</envelope_from><header_from>d.example</header_from>"
		"</identifiers><auth_results/></record></feedback>";
	struct dmarc_report *r = NULL;
	char *error = NULL;
	assert_int_equal(dmarc_report_parse(xml, strlen(xml), &r, &error), 0);
	assert_string_equal(r->version, "1.0");
	assert_string_equal(r->np, "reject");
	assert_string_equal(r->t, "y");
	assert_string_equal(r->discovery_method, "treewalk");
	assert_string_equal(r->records[0].reasons[0].type, "policy_test_mode");
	assert_string_equal(r->records[0].envelope_from, "e.example");
	/* JSON round trip keeps the fields */
	char *json = dmarc_report_to_json(r, false);
	struct dmarc_report *back =
		dmarc_report_from_json(json, strlen(json), &error);
	assert_non_null(back);
	assert_string_equal(back->np, "reject");
	assert_int_equal(back->records[0].count, 3);
	assert_string_equal(back->records[0].reasons[0].type,
			    "policy_test_mode");
	free(json);
	dmarc_report_free(&back);
	dmarc_report_free(&r);
}

static void
test_external_entity(void **state)
{
	(void)state;
	char path[] = "/tmp/dmarc-xxe-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SECRET", 6), 6);
	close(fd);
	char *xml = ts_xasprintf(
		"<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY xxe "
		"SYSTEM \"file://%s\">]>\n<feedback><report_metadata>"
		"<org_name>a&xxe;b</org_name><report_id>1</report_id>"
		"</report_metadata></feedback>",
		path);
	struct dmarc_report *r = NULL;
	char *error = NULL;
	int rc = dmarc_report_parse(xml, strlen(xml), &r, &error);
	if (rc == 0) {
		assert_null(strstr(r->org_name, "SECRET"));
		assert_string_equal(r->org_name, "ab");
		dmarc_report_free(&r);
	} else {
		free(error);
	}
	free(xml);
	unlink(path);
}

/* gzip of n bytes of 'a' (a bomb when n is large), truncated if asked. */
static unsigned char *
dm_gzip(size_t n, size_t *len_r)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9,
				      Z_DEFAULT_STRATEGY),
			 Z_OK);
	size_t cap = n / 500 + 4096, used = 0;
	unsigned char *out = ts_xmalloc(cap);
	static unsigned char chunk[1 << 20];
	memset(chunk, 'a', sizeof(chunk));
	chunk[0] = '<';
	size_t left = n;
	while (left > 0) {
		size_t k = left < sizeof(chunk) ? left : sizeof(chunk);
		left -= k;
		zs.next_in = chunk;
		zs.avail_in = (uInt)k;
		while (zs.avail_in > 0) {
			if (cap - used < 65536) {
				cap *= 2;
				out = ts_xrealloc(out, cap);
			}
			zs.next_out = out + used;
			zs.avail_out = (uInt)(cap - used);
			deflate(&zs, Z_NO_FLUSH);
			used = cap - zs.avail_out;
		}
	}
	int rc;
	do {
		if (cap - used < 65536) {
			cap *= 2;
			out = ts_xrealloc(out, cap);
		}
		zs.next_out = out + used;
		zs.avail_out = (uInt)(cap - used);
		rc = deflate(&zs, Z_FINISH);
		used = cap - zs.avail_out;
	} while (rc != Z_STREAM_END);
	deflateEnd(&zs);
	*len_r = used;
	return out;
}

static void
test_gzip_bomb_and_truncation(void **state)
{
	(void)state;
	size_t len;
	unsigned char *bomb = dm_gzip(100u * 1024 * 1024, &len);
	assert_true(len < 1024 * 1024);
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(dmarc_report_unpack(bomb, len, DM_MAX, &docs), 0);
	assert_int_equal(docs.count, 1);
	assert_null(docs.docs[0].xml);
	assert_non_null(strstr(docs.docs[0].error, "larger than"));
	dmarc_report_docs_free(&docs);
	free(bomb);

	size_t glen;
	char *gz = dm_read("mail-dmarc/test_dmarc.xml.gz", &glen);
	assert_int_equal(dmarc_report_unpack(gz, glen / 2, DM_MAX, &docs), 0);
	assert_null(docs.docs[0].xml);
	assert_string_equal(docs.docs[0].error, "truncated gzip data");
	dmarc_report_docs_free(&docs);
	free(gz);
}

static void
test_zip_size_cap(void **state)
{
	(void)state;
	size_t len;
	char *zip = dm_read("mail-dmarc/test_dmarc.xml.zip", &len);
	struct dmarc_report_docs docs = { 0 };
	/* a cap below the entry's size: refused, nothing larger read */
	assert_int_equal(dmarc_report_unpack(zip, len, 100, &docs), 0);
	assert_null(docs.docs[0].xml);
	assert_non_null(strstr(docs.docs[0].error, "larger than"));
	dmarc_report_docs_free(&docs);
	/* a broken archive */
	assert_int_equal(dmarc_report_unpack(zip, len / 2, DM_MAX, &docs), 0);
	assert_null(docs.docs[0].xml);
	dmarc_report_docs_free(&docs);
	free(zip);
}

static void
test_mail_without_report(void **state)
{
	(void)state;
	const char *plain = "From: a@b\r\nSubject: hi\r\n\r\nno report\r\n";
	struct dmarc_report_docs docs = { 0 };
	assert_int_equal(
		dmarc_report_unpack(plain, strlen(plain), DM_MAX, &docs),
		TS_E_NOTFOUND);
	assert_int_equal(docs.count, 0);
	const char *empty =
		"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n"
		"\r\n--x\r\nContent-Type: application/gzip\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n\r\n--x--\r\n";
	assert_int_equal(
		dmarc_report_unpack(empty, strlen(empty), DM_MAX, &docs), 0);
	assert_int_equal(docs.count, 1);
	assert_string_equal(docs.docs[0].error, "empty attachment");
	dmarc_report_docs_free(&docs);
	struct dmarc_report_batch batch = { 0 };
	dmarc_report_process("/nonexistent-dir", DM_MAX, "test", plain,
			     strlen(plain), &batch);
	assert_int_equal(batch.count, 1);
	assert_int_equal(batch.items[0].status, DMARC_REPORT_FAILED);
	dmarc_report_batch_free(&batch);
}

static void
test_store_duplicate(void **state)
{
	(void)state;
	char dir[] = "/tmp/dmarc-store-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *sub = ts_xasprintf("%s/dmarc/reports", dir);
	for (int i = 0; i < 2; i++) {
		struct dmarc_report *r = dm_parse_file("mox/google.eml");
		bool dup;
		char *error = NULL;
		assert_int_equal(dmarc_report_store(sub, r, &dup, &error), 0);
		assert_int_equal(dup, i == 1);
		assert_int_equal(strlen(r->key), DMARC_REPORT_KEY_LEN);
		dmarc_report_free(&r);
	}
	struct dmarc_report **list;
	size_t count;
	char *error = NULL;
	assert_int_equal(dmarc_report_load_all(sub, &list, &count, &error), 0);
	assert_int_equal(count, 1);
	assert_string_equal(list[0]->org_name, "google.com");
	assert_int_equal(list[0]->record_count, 2);
	assert_string_equal(list[0]->records[1].dkim_results[0].selector,
			    "koriander");
	char *path = ts_xasprintf("%s/%s.json", sub, list[0]->key);
	assert_int_equal(unlink(path), 0);
	free(path);
	dmarc_report_list_free(&list, count);
	rmdir(sub);
	char *parent = ts_xasprintf("%s/dmarc", dir);
	rmdir(parent);
	free(parent);
	rmdir(dir);
	free(sub);
}

int
main(void)
{
	dmarc_report_parser_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mail_dmarc_forms),
		cmocka_unit_test(test_opendmarc_counts),
		cmocka_unit_test(test_bad_com_refused),
		cmocka_unit_test(test_mox_mails),
		cmocka_unit_test(test_namespace_rfc9990),
		cmocka_unit_test(test_external_entity),
		cmocka_unit_test(test_gzip_bomb_and_truncation),
		cmocka_unit_test(test_zip_size_cap),
		cmocka_unit_test(test_mail_without_report),
		cmocka_unit_test(test_store_duplicate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
