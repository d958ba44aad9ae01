/*
 * modules/dmarc/report.h — incoming DMARC aggregate reports (RFC 7489
 * section 7.2 and appendix C, RFC 9990): the parsed form, and the entry
 * points the rest of the dmarc module calls.
 *
 * A report arrives as mail to the configured `report_address`
 * (report-hook.c) or as files given to `tessera dmarc import`
 * (report-cli.c).  Both take the same path, dmarc_report_process(): the
 * input is unpacked (report-unpack.c: a MIME message, gzip, zip or plain
 * XML; decompression capped), each XML document parsed into a struct
 * dmarc_report (report-parse.c), and each report written as one JSON file
 * under DATA_DIR/dmarc/reports (report-store.c).  `tessera dmarc reports`
 * lists what is stored.
 *
 * Settings (report_address, report_max_size, the directory) live in the
 * module's struct dmarc_settings (dmarc-hook.h), read by dmarc.c.
 *
 * Everything declared here is module-internal; nothing is exported.
 */
#ifndef DMARC_REPORT_H
#define DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/common.h>
#include <tessera/config.h>

/* --- the parsed form ------------------------------------------------------ */

/*
 * Every string is NUL-terminated, white space trimmed, owned by the
 * report, and NULL when the element was absent.  Values are kept as the
 * reporter wrote them (no case folding, no validation beyond the numbers):
 * a report is evidence of what another receiver saw.
 */

/* <auth_results><dkim> */
struct dmarc_report_dkim {
	char *domain, *selector, *result, *human_result;
};

/* <auth_results><spf> */
struct dmarc_report_spf {
	char *domain, *scope, *result, *human_result;
};

/* <policy_evaluated><reason> */
struct dmarc_report_reason {
	char *type, *comment;
};

/* One <record>: a group of messages with the same source and results. */
struct dmarc_report_record {
	char *source_ip;
	uint64_t count;
	/* <policy_evaluated> */
	char *disposition, *dkim, *spf;
	struct dmarc_report_reason *reasons;
	size_t reason_count;
	/* <identifiers> */
	char *header_from, *envelope_from, *envelope_to;
	/* <auth_results> */
	struct dmarc_report_dkim *dkim_results;
	size_t dkim_count;
	struct dmarc_report_spf *spf_results;
	size_t spf_count;
};

struct dmarc_report {
	char *version; /* <version>, RFC 9990 (and some RFC 7489 senders) */
	/* <report_metadata> */
	char *org_name, *email, *extra_contact_info, *report_id;
	int64_t begin, end; /* <date_range>, seconds since the epoch */
	char **errors; /* <error> elements */
	size_t error_count;
	/* <policy_published> (pct from RFC 7489, np/t/psd from RFC 9990) */
	char *domain, *adkim, *aspf, *p, *sp, *np, *pct, *t, *psd, *fo,
		*discovery_method;
	struct dmarc_report_record *records;
	size_t record_count;

	/*
	 * Filled in when stored (or read back): the storage key (32 hex
	 * digits, see dmarc_report_key), the time it was stored, and where
	 * it came from ("message ID attachment NAME", "file PATH").
	 */
	char *key;
	int64_t stored;
	char *source;
};

/* Free a report and everything in it; sets *report to NULL. */
void dmarc_report_free(struct dmarc_report **report);

/*
 * Totals over the records: messages (sum of counts), messages that passed
 * DMARC (policy_evaluated dkim or spf "pass"), and the rest.
 */
struct dmarc_report_totals {
	uint64_t messages, pass, fail;
};
void dmarc_report_totals(const struct dmarc_report *report,
			 struct dmarc_report_totals *totals_r);

/* --- report-parse.c ------------------------------------------------------- */

/*
 * Parse one aggregate report (an XML document of len bytes) into a new
 * *report_r.  Elements are matched by local name, so the RFC 7489
 * namespace, the RFC 9990 one (urn:ietf:params:xml:ns:dmarc-2.0) and
 * none at all are the same; unknown elements are ignored.  The parser is
 * strict XML (malformed XML is refused, not guessed at), never touches the
 * network, loads no DTD and expands no entity other than the five
 * predefined ones and character references: a reference to a declared
 * entity contributes nothing.  org_name and report_id are required (they
 * name the report), and numbers must be numbers (date_range may carry a
 * ".0" fraction, which some reporters write).  Returns 0, or TS_E_INVAL
 * with a malloc'd reason in *error_r (with the XML line for syntax
 * errors).  Pure computation: any thread.
 */
int dmarc_report_parse(const char *xml, size_t len,
		       struct dmarc_report **report_r, char **error_r);

/*
 * Initialise libxml2 once, from the main thread, before any parse runs on
 * the work pool (libxml2's own rule for threaded use).  Idempotent.
 */
void dmarc_report_parser_init(void);

/* --- report-unpack.c ------------------------------------------------------ */

/* One report document found in the input, or why one could not be read. */
struct dmarc_report_doc {
	char *name; /* the attachment's file name, or NULL */
	char *xml; /* the XML, NUL-terminated (len bytes), or NULL */
	size_t len;
	char *error; /* why xml is NULL (e.g. "truncated gzip data") */
};

struct dmarc_report_docs {
	struct dmarc_report_doc *docs;
	size_t count;
};

/*
 * Find the report documents in data (len bytes): gzip, zip (the entries
 * named *.xml, or the only entry) or plain XML are taken as they are;
 * anything else is read as an Internet message whose attachments of type
 * application/gzip, application/zip, text/xml, application/xml (and their
 * x- and octet-stream variants, or a name ending in .xml, .gz or .zip) are
 * decoded (base64 or quoted-printable) and unpacked the same way.  No
 * decompressed document may exceed max_size bytes (a zip bomb stops there,
 * with an error; nothing larger is ever allocated).  Appends to *docs one
 * entry per document found or failed; returns 0, or TS_E_NOTFOUND
 * (nothing appended) when the input holds no report at all.  Pure
 * computation: any thread.
 */
int dmarc_report_unpack(const void *data, size_t len, uint64_t max_size,
			struct dmarc_report_docs *docs);

/* Free the documents' contents and zero *docs. */
void dmarc_report_docs_free(struct dmarc_report_docs *docs);

/* --- report-store.c ------------------------------------------------------- */

/*
 * The storage key of a report: the first 16 bytes of SHA-256 over
 * org_name, a NUL byte and report_id, as 32 lower-case hex digits, in
 * key_r (33 bytes).  The same report sent twice has the same key.
 */
#define DMARC_REPORT_KEY_LEN 32
void dmarc_report_key(const struct dmarc_report *report,
		      char key_r[DMARC_REPORT_KEY_LEN + 1]);

/*
 * Store a report as DIR/KEY.json (DIR created if missing): written to a
 * temporary file, fsynced, linked to its name, the directory fsynced.  A
 * report already stored under that key is kept as it is and *duplicate_r
 * set (no double counting).  Sets report->key and report->stored.
 * Blocking: the work pool or a CLI command.  Returns 0, or TS_E_IO with a
 * malloc'd reason in *error_r.
 */
int dmarc_report_store(const char *dir, struct dmarc_report *report,
		       bool *duplicate_r, char **error_r);

/*
 * Read every DIR/KEY.json report, sorted by begin, then org_name, then
 * report_id.  A missing DIR is an empty list.  A file that does not read
 * back is skipped with a line on stderr.  Blocking (CLI).  Returns 0 and
 * a malloc'd array of *count_r reports (free with dmarc_report_list_free),
 * or TS_E_IO with a malloc'd reason.
 */
int dmarc_report_load_all(const char *dir, struct dmarc_report ***reports_r,
			  size_t *count_r, char **error_r);
void dmarc_report_list_free(struct dmarc_report ***reports, size_t count);

/*
 * The JSON text of a report as stored (indented when pretty), malloc'd;
 * and back: a new report from JSON text, or NULL with a malloc'd reason.
 */
char *dmarc_report_to_json(const struct dmarc_report *report, bool pretty);
struct dmarc_report *dmarc_report_from_json(const char *text, size_t len,
					    char **error_r);

/* --- processing (report-hook.c) ------------------------------------------- */

enum dmarc_report_status {
	DMARC_REPORT_STORED = 0,
	DMARC_REPORT_DUPLICATE, /* the same org and report id are stored */
	DMARC_REPORT_FAILED, /* not a usable report, or not stored */
};

/* What became of one report document. */
struct dmarc_report_outcome {
	enum dmarc_report_status status;
	char *name; /* attachment file name, or NULL */
	struct dmarc_report *report; /* parsed report, NULL if it did not */
	char *error; /* reason for FAILED */
};

struct dmarc_report_batch {
	struct dmarc_report_outcome *items;
	size_t count;
};

/*
 * Unpack, parse and store every report in data (len bytes) under dir;
 * source names the input in the stored reports ("message ID", "file
 * PATH").  One outcome per document found, or a single FAILED one saying
 * why there was none.  Blocking: the work pool or a CLI command.
 */
void dmarc_report_process(const char *dir, uint64_t max_size,
			  const char *source, const void *data, size_t len,
			  struct dmarc_report_batch *batch);
void dmarc_report_batch_free(struct dmarc_report_batch *batch);

/* --- module wiring (report-hook.c, report-cli.c) ------------------------- */

/*
 * The `[module dmarc]` keys of the report code; dmarc.c lists them in its
 * key table and keeps their values in struct dmarc_settings
 * (dmarc-hook.h).
 */
/* clang-format off */
#define DMARC_REPORT_CONFIG_KEYS                                            \
	{ .name = "report_address",                                         \
	  .type = TS_CFG_STRING,                                            \
	  .default_value = "",                                              \
	  .doc = "local address receiving DMARC aggregate reports; they "   \
		 "are parsed and stored (tessera dmarc reports); empty: off" }, \
	{ .name = "report_max_size",                                        \
	  .type = TS_CFG_SIZE,                                              \
	  .default_value = "32M",                                           \
	  .doc = "largest report message read, and largest decompressed "   \
		 "report; larger ones are refused (zip bombs)" }
/* clang-format on */

struct ts_hook_call;

/*
 * deliver_local: when the recipient is report_address, read the message
 * on the work pool, store the reports in it (dmarc_report_process) and
 * log what became of each; the message itself is delivered as usual.
 */
int dmarc_report_hook(struct ts_hook_call *call);

/*
 * `tessera dmarc reports [--domain D] [--json] | show KEY | import
 * FILE…` (report-cli.c): list, show and import stored reports.
 */
int dmarc_report_cli(struct ts_ctx *ctx, int argc, char **argv);

#endif
