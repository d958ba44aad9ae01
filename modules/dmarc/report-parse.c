/*
 * modules/dmarc/report-parse.c — one aggregate report, XML to struct
 * dmarc_report.
 *
 * The document is read with libxml2's streaming reader: the top-level
 * elements (<version>, <report_metadata>, <policy_published>, each
 * <record>) are expanded one at a time into a small subtree, copied out,
 * and freed as the reader moves on, so memory follows the largest record,
 * not the size of the report.  Elements are matched by local name (both
 * namespaces of the RFCs, and none, look alike).  Only the parsed form is
 * made here (and freed, and totalled); finding the XML inside mail is
 * report-unpack.c's job, storing it report-store.c's.
 *
 * Safety: no network (XML_PARSE_NONET), no DTD loading, no entity
 * substitution (XML_PARSE_NOENT stays off) — references to declared
 * entities stay reference nodes, which the text collector skips, so
 * neither an external entity nor an entity expansion bomb reaches the
 * data.  libxml2's default limits (depth, text size) stay on.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#include "report.h"

/* More records than this is not a report we keep (memory bound). */
#define DMARC_REPORT_MAX_RECORDS 200000
/* Repeated elements inside one record or the metadata. */
#define DMARC_REPORT_MAX_REPEAT 100

void
dmarc_report_parser_init(void)
{
	xmlInitParser();
}

/* --- freeing and totals ----------------------------------------------------
 */

static void
dmarc_report_record_clear(struct dmarc_report_record *r)
{
	free(r->source_ip);
	free(r->disposition);
	free(r->dkim);
	free(r->spf);
	for (size_t i = 0; i < r->reason_count; i++) {
		free(r->reasons[i].type);
		free(r->reasons[i].comment);
	}
	free(r->reasons);
	free(r->header_from);
	free(r->envelope_from);
	free(r->envelope_to);
	for (size_t i = 0; i < r->dkim_count; i++) {
		free(r->dkim_results[i].domain);
		free(r->dkim_results[i].selector);
		free(r->dkim_results[i].result);
		free(r->dkim_results[i].human_result);
	}
	free(r->dkim_results);
	for (size_t i = 0; i < r->spf_count; i++) {
		free(r->spf_results[i].domain);
		free(r->spf_results[i].scope);
		free(r->spf_results[i].result);
		free(r->spf_results[i].human_result);
	}
	free(r->spf_results);
}

void
dmarc_report_free(struct dmarc_report **report)
{
	struct dmarc_report *r = *report;
	if (r == NULL)
		return;
	*report = NULL;
	free(r->version);
	free(r->org_name);
	free(r->email);
	free(r->extra_contact_info);
	free(r->report_id);
	for (size_t i = 0; i < r->error_count; i++)
		free(r->errors[i]);
	free(r->errors);
	char **policy[] = { &r->domain,
			    &r->adkim,
			    &r->aspf,
			    &r->p,
			    &r->sp,
			    &r->np,
			    &r->pct,
			    &r->t,
			    &r->psd,
			    &r->fo,
			    &r->discovery_method };
	for (size_t i = 0; i < sizeof(policy) / sizeof(policy[0]); i++)
		free(*policy[i]);
	for (size_t i = 0; i < r->record_count; i++)
		dmarc_report_record_clear(&r->records[i]);
	free(r->records);
	free(r->key);
	free(r->source);
	free(r);
}

void
dmarc_report_totals(const struct dmarc_report *report,
		    struct dmarc_report_totals *totals_r)
{
	memset(totals_r, 0, sizeof(*totals_r));
	for (size_t i = 0; i < report->record_count; i++) {
		const struct dmarc_report_record *r = &report->records[i];
		bool pass = (r->dkim != NULL && strcmp(r->dkim, "pass") == 0) ||
			    (r->spf != NULL && strcmp(r->spf, "pass") == 0);
		totals_r->messages += r->count;
		if (pass)
			totals_r->pass += r->count;
		else
			totals_r->fail += r->count;
	}
}

/* --- reading a subtree -----------------------------------------------------
 */

struct dmarc_parse {
	struct dmarc_report *report;
	char *error; /* the first problem found */
};

static void dmarc_parse_fail(struct dmarc_parse *p, const char *fmt, ...)
	TS_PRINTF(2, 3);

static void
dmarc_parse_fail(struct dmarc_parse *p, const char *fmt, ...)
{
	if (p->error != NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	p->error = ts_xvasprintf(fmt, ap);
	va_end(ap);
}

static bool
dmarc_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, name) == 0;
}

/*
 * The text directly inside an element (text and CDATA children joined),
 * white space trimmed.  Entity references are skipped: see the file
 * comment.
 */
static char *
dmarc_text(const xmlNode *n)
{
	size_t len = 0;
	for (const xmlNode *c = n->children; c != NULL; c = c->next)
		if ((c->type == XML_TEXT_NODE ||
		     c->type == XML_CDATA_SECTION_NODE) &&
		    c->content != NULL)
			len += strlen((const char *)c->content);
	char *s = ts_xmalloc(len + 1), *w = s;
	for (const xmlNode *c = n->children; c != NULL; c = c->next)
		if ((c->type == XML_TEXT_NODE ||
		     c->type == XML_CDATA_SECTION_NODE) &&
		    c->content != NULL) {
			size_t k = strlen((const char *)c->content);
			memcpy(w, c->content, k);
			w += k;
		}
	*w = '\0';
	char *start = s;
	while (*start == ' ' || *start == '\t' || *start == '\r' ||
	       *start == '\n')
		start++;
	char *end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' ||
			       end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	if (start != s)
		memmove(s, start, (size_t)(end - start) + 1);
	return s;
}

/* Set *field from element n unless an earlier element already did. */
static void
dmarc_take(char **field, const xmlNode *n)
{
	if (*field == NULL)
		*field = dmarc_text(n);
}

/*
 * A non-negative decimal number; with fraction, a "." and digits may
 * follow (and are dropped).  Returns false for anything else.
 */
static bool
dmarc_number(const char *s, bool fraction, uint64_t *value_r)
{
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (fraction && *p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p != '\0')
		return false;
	*value_r = v;
	return true;
}

static void
dmarc_parse_date(struct dmarc_parse *p, const xmlNode *n, int64_t *value_r,
		 bool *seen)
{
	if (*seen)
		return;
	*seen = true;
	char *s = dmarc_text(n);
	uint64_t v;
	if (!dmarc_number(s, true, &v) || v > INT64_MAX)
		dmarc_parse_fail(p, "date_range %s is not a time: '%.40s'",
				 (const char *)n->name, s);
	else
		*value_r = (int64_t)v;
	free(s);
}

static void
dmarc_parse_metadata(struct dmarc_parse *p, const xmlNode *meta)
{
	struct dmarc_report *r = p->report;
	bool begin_seen = false, end_seen = false;
	for (const xmlNode *n = meta->children; n != NULL; n = n->next) {
		if (dmarc_is(n, "org_name"))
			dmarc_take(&r->org_name, n);
		else if (dmarc_is(n, "email"))
			dmarc_take(&r->email, n);
		else if (dmarc_is(n, "extra_contact_info"))
			dmarc_take(&r->extra_contact_info, n);
		else if (dmarc_is(n, "report_id"))
			dmarc_take(&r->report_id, n);
		else if (dmarc_is(n, "error") &&
			 r->error_count < DMARC_REPORT_MAX_REPEAT) {
			r->errors = ts_xrealloc(r->errors,
						(r->error_count + 1) *
							sizeof(*r->errors));
			r->errors[r->error_count++] = dmarc_text(n);
		} else if (dmarc_is(n, "date_range")) {
			for (const xmlNode *d = n->children; d != NULL;
			     d = d->next) {
				if (dmarc_is(d, "begin"))
					dmarc_parse_date(p, d, &r->begin,
							 &begin_seen);
				else if (dmarc_is(d, "end"))
					dmarc_parse_date(p, d, &r->end,
							 &end_seen);
			}
		}
	}
}

static void
dmarc_parse_policy(struct dmarc_parse *p, const xmlNode *pol)
{
	struct dmarc_report *r = p->report;
	static const struct {
		const char *name;
		size_t offset;
	} fields[] = {
		{ "domain", offsetof(struct dmarc_report, domain) },
		{ "adkim", offsetof(struct dmarc_report, adkim) },
		{ "aspf", offsetof(struct dmarc_report, aspf) },
		{ "p", offsetof(struct dmarc_report, p) },
		{ "sp", offsetof(struct dmarc_report, sp) },
		{ "np", offsetof(struct dmarc_report, np) },
		{ "pct", offsetof(struct dmarc_report, pct) },
		{ "t", offsetof(struct dmarc_report, t) },
		/* Some generators spell RFC 9989's t= out. */
		{ "testing", offsetof(struct dmarc_report, t) },
		{ "psd", offsetof(struct dmarc_report, psd) },
		{ "fo", offsetof(struct dmarc_report, fo) },
		{ "discovery_method",
		  offsetof(struct dmarc_report, discovery_method) },
	};
	for (const xmlNode *n = pol->children; n != NULL; n = n->next)
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (dmarc_is(n, fields[i].name)) {
				dmarc_take(
					(char **)((char *)r + fields[i].offset),
					n);
				break;
			}
}

static void
dmarc_parse_row(struct dmarc_parse *p, struct dmarc_report_record *rec,
		const xmlNode *row, size_t index, bool *count_seen)
{
	for (const xmlNode *n = row->children; n != NULL; n = n->next) {
		if (dmarc_is(n, "source_ip")) {
			dmarc_take(&rec->source_ip, n);
		} else if (dmarc_is(n, "count") && !*count_seen) {
			*count_seen = true;
			char *s = dmarc_text(n);
			if (!dmarc_number(s, false, &rec->count) ||
			    rec->count > INT64_MAX)
				dmarc_parse_fail(p,
						 "record %zu: count is not a "
						 "number: '%.40s'",
						 index + 1, s);
			free(s);
		} else if (dmarc_is(n, "policy_evaluated")) {
			for (const xmlNode *e = n->children; e != NULL;
			     e = e->next) {
				if (dmarc_is(e, "disposition"))
					dmarc_take(&rec->disposition, e);
				else if (dmarc_is(e, "dkim"))
					dmarc_take(&rec->dkim, e);
				else if (dmarc_is(e, "spf"))
					dmarc_take(&rec->spf, e);
				else if (dmarc_is(e, "reason") &&
					 rec->reason_count <
						 DMARC_REPORT_MAX_REPEAT) {
					rec->reasons = ts_xrealloc(
						rec->reasons,
						(rec->reason_count + 1) *
							sizeof(*rec->reasons));
					struct dmarc_report_reason *why =
						&rec->reasons
							 [rec->reason_count++];
					memset(why, 0, sizeof(*why));
					for (const xmlNode *c = e->children;
					     c != NULL; c = c->next) {
						if (dmarc_is(c, "type"))
							dmarc_take(&why->type,
								   c);
						else if (dmarc_is(c, "comment"))
							dmarc_take(
								&why->comment,
								c);
					}
				}
			}
		}
	}
}

static void
dmarc_parse_auth(struct dmarc_report_record *rec, const xmlNode *auth)
{
	for (const xmlNode *n = auth->children; n != NULL; n = n->next) {
		if (dmarc_is(n, "dkim") &&
		    rec->dkim_count < DMARC_REPORT_MAX_REPEAT) {
			rec->dkim_results =
				ts_xrealloc(rec->dkim_results,
					    (rec->dkim_count + 1) *
						    sizeof(*rec->dkim_results));
			struct dmarc_report_dkim *d =
				&rec->dkim_results[rec->dkim_count++];
			memset(d, 0, sizeof(*d));
			for (const xmlNode *c = n->children; c != NULL;
			     c = c->next) {
				if (dmarc_is(c, "domain"))
					dmarc_take(&d->domain, c);
				else if (dmarc_is(c, "selector"))
					dmarc_take(&d->selector, c);
				else if (dmarc_is(c, "result"))
					dmarc_take(&d->result, c);
				else if (dmarc_is(c, "human_result"))
					dmarc_take(&d->human_result, c);
			}
		} else if (dmarc_is(n, "spf") &&
			   rec->spf_count < DMARC_REPORT_MAX_REPEAT) {
			rec->spf_results =
				ts_xrealloc(rec->spf_results,
					    (rec->spf_count + 1) *
						    sizeof(*rec->spf_results));
			struct dmarc_report_spf *s =
				&rec->spf_results[rec->spf_count++];
			memset(s, 0, sizeof(*s));
			for (const xmlNode *c = n->children; c != NULL;
			     c = c->next) {
				if (dmarc_is(c, "domain"))
					dmarc_take(&s->domain, c);
				else if (dmarc_is(c, "scope"))
					dmarc_take(&s->scope, c);
				else if (dmarc_is(c, "result"))
					dmarc_take(&s->result, c);
				else if (dmarc_is(c, "human_result"))
					dmarc_take(&s->human_result, c);
			}
		}
	}
}

static void
dmarc_parse_record(struct dmarc_parse *p, const xmlNode *node, size_t *capacity)
{
	struct dmarc_report *r = p->report;
	if (r->record_count >= DMARC_REPORT_MAX_RECORDS) {
		dmarc_parse_fail(p, "more than %d records",
				 DMARC_REPORT_MAX_RECORDS);
		return;
	}
	if (r->record_count == *capacity) {
		*capacity = *capacity == 0 ? 16 : *capacity * 2;
		r->records = ts_xrealloc(r->records,
					 *capacity * sizeof(*r->records));
	}
	size_t index = r->record_count++;
	struct dmarc_report_record *rec = &r->records[index];
	memset(rec, 0, sizeof(*rec));
	bool count_seen = false;
	for (const xmlNode *n = node->children; n != NULL; n = n->next) {
		if (dmarc_is(n, "row")) {
			dmarc_parse_row(p, rec, n, index, &count_seen);
		} else if (dmarc_is(n, "identifiers")) {
			for (const xmlNode *c = n->children; c != NULL;
			     c = c->next) {
				if (dmarc_is(c, "header_from"))
					dmarc_take(&rec->header_from, c);
				else if (dmarc_is(c, "envelope_from"))
					dmarc_take(&rec->envelope_from, c);
				else if (dmarc_is(c, "envelope_to"))
					dmarc_take(&rec->envelope_to, c);
			}
		} else if (dmarc_is(n, "auth_results")) {
			dmarc_parse_auth(rec, n);
		}
	}
	if (!count_seen)
		dmarc_parse_fail(p, "record %zu has no count", index + 1);
}

/* --- the document ----------------------------------------------------------
 */

/* libxml2's first error, kept instead of printed to stderr. */
static void
dmarc_parse_xml_error(void *arg, xmlErrorPtr err)
{
	struct dmarc_parse *p = arg;
	if (err == NULL || err->level < XML_ERR_ERROR || p->error != NULL)
		return;
	const char *msg = err->message != NULL ? err->message : "error";
	size_t len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	dmarc_parse_fail(p, "XML line %d: %.*s", err->line, (int)len, msg);
}

int
dmarc_report_parse(const char *xml, size_t len, struct dmarc_report **report_r,
		   char **error_r)
{
	struct dmarc_parse p = { .report = ts_xcalloc(1, sizeof(*p.report)) };
	*report_r = NULL;
	*error_r = NULL;
	if (len > INT32_MAX) {
		*error_r = ts_xstrdup("report too large");
		dmarc_report_free(&p.report);
		return TS_E_INVAL;
	}
	/* No NOENT, no DTDLOAD/DTDATTR, no HUGE: see the file comment. */
	xmlTextReaderPtr reader =
		xmlReaderForMemory(xml, (int)len, "report.xml", NULL,
				   XML_PARSE_NONET | XML_PARSE_NOWARNING);
	if (reader == NULL) {
		*error_r = ts_xstrdup("cannot start the XML parser");
		dmarc_report_free(&p.report);
		return TS_E_INVAL;
	}
	xmlTextReaderSetStructuredErrorHandler(reader, dmarc_parse_xml_error,
					       &p);
	bool root_seen = false, meta_seen = false, policy_seen = false;
	size_t capacity = 0;
	int ret = xmlTextReaderRead(reader);
	while (ret == 1 && p.error == NULL) {
		if (xmlTextReaderNodeType(reader) != XML_READER_TYPE_ELEMENT) {
			ret = xmlTextReaderRead(reader);
			continue;
		}
		const char *name =
			(const char *)xmlTextReaderConstLocalName(reader);
		int depth = xmlTextReaderDepth(reader);
		if (depth == 0) {
			if (name == NULL || strcmp(name, "feedback") != 0) {
				dmarc_parse_fail(&p,
						 "root element is <%.40s>, "
						 "not <feedback>",
						 name != NULL ? name : "?");
				break;
			}
			root_seen = true;
			ret = xmlTextReaderRead(reader);
			continue;
		}
		bool wanted =
			depth == 1 && name != NULL &&
			(strcmp(name, "record") == 0 ||
			 (strcmp(name, "report_metadata") == 0 && !meta_seen) ||
			 (strcmp(name, "policy_published") == 0 &&
			  !policy_seen) ||
			 (strcmp(name, "version") == 0 &&
			  p.report->version == NULL));
		if (!wanted) {
			ret = xmlTextReaderRead(reader);
			continue;
		}
		xmlNodePtr node = xmlTextReaderExpand(reader);
		if (node == NULL) {
			/* The error handler has said why. */
			ret = -1;
			break;
		}
		if (strcmp(name, "record") == 0) {
			dmarc_parse_record(&p, node, &capacity);
		} else if (strcmp(name, "report_metadata") == 0) {
			meta_seen = true;
			dmarc_parse_metadata(&p, node);
		} else if (strcmp(name, "policy_published") == 0) {
			policy_seen = true;
			dmarc_parse_policy(&p, node);
		} else {
			p.report->version = dmarc_text(node);
		}
		ret = xmlTextReaderNext(reader);
	}
	if (ret < 0 && p.error == NULL)
		dmarc_parse_fail(&p, "malformed XML");
	xmlFreeTextReader(reader);
	if (p.error == NULL && !root_seen)
		dmarc_parse_fail(&p, "no <feedback> element");
	if (p.error == NULL && !meta_seen)
		dmarc_parse_fail(&p, "no <report_metadata>");
	if (p.error == NULL &&
	    (p.report->org_name == NULL || p.report->org_name[0] == '\0'))
		dmarc_parse_fail(&p, "no org_name in report_metadata");
	if (p.error == NULL &&
	    (p.report->report_id == NULL || p.report->report_id[0] == '\0'))
		dmarc_parse_fail(&p, "no report_id in report_metadata");
	if (p.error != NULL) {
		dmarc_report_free(&p.report);
		*error_r = p.error;
		return TS_E_INVAL;
	}
	*report_r = p.report;
	return 0;
}
