/*
 * modules/dmarc/report-unpack.c — from what arrived to the report XML.
 *
 * Reporters send an aggregate report as a mail attachment (RFC 7489
 * section 7.2.1.1: gzip, zip or plain XML, base64-encoded), and an admin
 * may also hand us the bare file.  This file recognises each form by its
 * first bytes, walks a message's MIME tree with the kernel's MIME library
 * to find the attachments, undoes the transfer encoding, and decompresses
 * — zlib for gzip, libzip for zip — never beyond a size cap, so a small
 * archive that inflates to gigabytes (a zip bomb) costs at most the cap.
 * It does not parse the XML (report-parse.c does).
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zip.h>
#include <zlib.h>

#include <tessera/mime.h>

#include "report.h"

/* Reports found in one message (RFC 7489 wants one; be generous). */
#define DMARC_UNPACK_MAX_DOCS 20

enum dmarc_blob {
	DMARC_BLOB_GZIP,
	DMARC_BLOB_ZIP,
	DMARC_BLOB_XML,
	DMARC_BLOB_OTHER,
};

static enum dmarc_blob
dmarc_blob_kind(const unsigned char *p, size_t len)
{
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return DMARC_BLOB_GZIP;
	if (len >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
		return DMARC_BLOB_ZIP;
	size_t i = 0;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len &&
	       (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < len && p[i] == '<')
		return DMARC_BLOB_XML;
	return DMARC_BLOB_OTHER;
}

static struct dmarc_report_doc *
dmarc_doc_add(struct dmarc_report_docs *docs, const char *name)
{
	docs->docs = ts_xrealloc(docs->docs,
				 (docs->count + 1) * sizeof(*docs->docs));
	struct dmarc_report_doc *d = &docs->docs[docs->count++];
	memset(d, 0, sizeof(*d));
	d->name = name != NULL ? ts_xstrdup(name) : NULL;
	return d;
}

static void dmarc_doc_error(struct dmarc_report_docs *docs, const char *name,
			    const char *fmt, ...) TS_PRINTF(3, 4);

static void
dmarc_doc_error(struct dmarc_report_docs *docs, const char *name,
		const char *fmt, ...)
{
	struct dmarc_report_doc *d = dmarc_doc_add(docs, name);
	va_list ap;
	va_start(ap, fmt);
	d->error = ts_xvasprintf(fmt, ap);
	va_end(ap);
}

void
dmarc_report_docs_free(struct dmarc_report_docs *docs)
{
	for (size_t i = 0; i < docs->count; i++) {
		free(docs->docs[i].name);
		free(docs->docs[i].xml);
		free(docs->docs[i].error);
	}
	free(docs->docs);
	docs->docs = NULL;
	docs->count = 0;
}

/* --- gzip ------------------------------------------------------------------
 */

/*
 * Inflate a gzip stream (several members are joined, RFC 1952 2.2) into a
 * NUL-terminated buffer of at most max bytes.  Returns NULL with a reason
 * in err.
 */
static char *
dmarc_gunzip(const unsigned char *in, size_t len, uint64_t max, size_t *len_r,
	     char *err, size_t errlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 16 + 15: gzip framing only, the largest window. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errlen, "cannot start zlib");
		return NULL;
	}
	size_t cap = len * 4 < 65536 ? 65536 : len * 4;
	if (cap > max + 1)
		cap = (size_t)max + 1;
	char *out = ts_xmalloc(cap + 1);
	size_t used = 0, pos = 0;
	bool done = false;
	for (;;) {
		if (used == cap) {
			if (cap > max) {
				snprintf(err, errlen,
					 "decompressed report larger than "
					 "%" PRIu64 " bytes",
					 max);
				break;
			}
			cap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
			out = ts_xrealloc(out, cap + 1);
		}
		size_t in_chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
		size_t out_chunk =
			cap - used > UINT_MAX ? UINT_MAX : cap - used;
		zs.next_in = (Bytef *)(in + pos);
		zs.avail_in = (uInt)in_chunk;
		zs.next_out = (Bytef *)(out + used);
		zs.avail_out = (uInt)out_chunk;
		int rc = inflate(&zs, Z_NO_FLUSH);
		pos += in_chunk - zs.avail_in;
		used += out_chunk - zs.avail_out;
		if (rc == Z_STREAM_END) {
			/* Another member may follow; other trailing bytes
			 * are ignored, as gzip(1) does. */
			if (len - pos >= 2 && in[pos] == 0x1f &&
			    in[pos + 1] == 0x8b) {
				inflateReset(&zs);
				continue;
			}
			done = true;
			break;
		}
		if (rc == Z_OK)
			continue; /* progress; maybe out of room */
		if (rc == Z_BUF_ERROR) {
			/* No progress possible: the input ended early. */
			snprintf(err, errlen, "truncated gzip data");
			break;
		}
		snprintf(err, errlen, "bad gzip data: %s",
			 zs.msg != NULL ? zs.msg : "error");
		break;
	}
	inflateEnd(&zs);
	if (!done) {
		free(out);
		return NULL;
	}
	out[used] = '\0';
	*len_r = used;
	return out;
}

/* --- zip -------------------------------------------------------------------
 */

static bool
dmarc_name_ends(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n >= k && strcasecmp(name + n - k, suffix) == 0;
}

/* Read entry i into a new document (or an error document). */
static void
dmarc_unzip_entry(zip_t *za, zip_uint64_t i, const char *name, uint64_t max,
		  struct dmarc_report_docs *docs)
{
	zip_stat_t st;
	zip_stat_init(&st);
	if (zip_stat_index(za, i, 0, &st) == 0 &&
	    (st.valid & ZIP_STAT_SIZE) != 0 && st.size > max) {
		dmarc_doc_error(docs, name,
				"zip entry of %" PRIu64 " bytes is larger "
				"than %" PRIu64,
				(uint64_t)st.size, max);
		return;
	}
	zip_file_t *zf = zip_fopen_index(za, i, 0);
	if (zf == NULL) {
		dmarc_doc_error(docs, name, "cannot open zip entry: %s",
				zip_strerror(za));
		return;
	}
	/*
	 * The declared size is a hint, not a bound: read at most max + 1
	 * bytes whatever the header says.
	 */
	size_t cap = 65536, used = 0;
	char *out = ts_xmalloc(cap + 1);
	for (;;) {
		if (used == cap) {
			if (cap > max) {
				dmarc_doc_error(docs, name,
						"decompressed report larger "
						"than %" PRIu64 " bytes",
						max);
				goto fail;
			}
			cap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
			out = ts_xrealloc(out, cap + 1);
		}
		zip_int64_t n = zip_fread(zf, out + used, cap - used);
		if (n < 0) {
			dmarc_doc_error(docs, name, "bad zip entry: %s",
					zip_file_strerror(zf));
			goto fail;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	zip_fclose(zf);
	out[used] = '\0';
	struct dmarc_report_doc *d = dmarc_doc_add(docs, name);
	d->xml = out;
	d->len = used;
	return;
fail:
	zip_fclose(zf);
	free(out);
}

static void
dmarc_unzip(const unsigned char *in, size_t len, const char *name, uint64_t max,
	    struct dmarc_report_docs *docs)
{
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = zip_source_buffer_create(in, len, 0, &ze);
	if (src == NULL) {
		dmarc_doc_error(docs, name, "cannot read zip: %s",
				zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return;
	}
	zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &ze);
	if (za == NULL) {
		dmarc_doc_error(docs, name, "not a readable zip archive: %s",
				zip_error_strerror(&ze));
		zip_source_free(src);
		zip_error_fini(&ze);
		return;
	}
	zip_error_fini(&ze);
	zip_int64_t n = zip_get_num_entries(za, 0);
	size_t found = 0;
	for (zip_int64_t i = 0; i < n && found < DMARC_UNPACK_MAX_DOCS; i++) {
		const char *entry = zip_get_name(za, (zip_uint64_t)i, 0);
		if (entry == NULL)
			continue;
		/* RFC 7489 7.2.1.1: the report is the .xml file inside; a
		 * lone entry of another name is taken too. */
		if (dmarc_name_ends(entry, ".xml") || n == 1) {
			dmarc_unzip_entry(za, (zip_uint64_t)i, entry, max,
					  docs);
			found++;
		}
	}
	if (found == 0)
		dmarc_doc_error(docs, name, "no .xml file in the zip archive");
	zip_discard(za);
}

/* --- one attachment or file ------------------------------------------------
 */

/*
 * Unpack one blob as gzip, zip or XML.  Returns false (adding nothing)
 * when it is none of them.
 */
static bool
dmarc_unpack_blob(const unsigned char *data, size_t len, const char *name,
		  uint64_t max, struct dmarc_report_docs *docs)
{
	char err[160];
	switch (dmarc_blob_kind(data, len)) {
	case DMARC_BLOB_GZIP: {
		size_t out_len;
		char *xml = dmarc_gunzip(data, len, max, &out_len, err,
					 sizeof(err));
		if (xml == NULL) {
			dmarc_doc_error(docs, name, "%s", err);
		} else {
			struct dmarc_report_doc *d = dmarc_doc_add(docs, name);
			d->xml = xml;
			d->len = out_len;
		}
		return true;
	}
	case DMARC_BLOB_ZIP:
		dmarc_unzip(data, len, name, max, docs);
		return true;
	case DMARC_BLOB_XML: {
		if (len > max) {
			dmarc_doc_error(docs, name,
					"report larger than %" PRIu64 " bytes",
					max);
			return true;
		}
		struct dmarc_report_doc *d = dmarc_doc_add(docs, name);
		d->xml = ts_xstrndup((const char *)data, len);
		d->len = len;
		return true;
	}
	case DMARC_BLOB_OTHER:
		break;
	}
	return false;
}

/* --- inside a message ------------------------------------------------------
 */

static const char *
dmarc_part_name(const struct ts_mime_part *part)
{
	const char *name =
		ts_mime_param_get(part->disposition_params,
				  part->ndisposition_params, "filename");
	if (name == NULL)
		name = ts_mime_param_get(part->params, part->nparams, "name");
	return name;
}

/*
 * Whether a leaf part should hold a report: by its type, or failing that
 * by its file name.  *maybe_r is set for application/octet-stream, which
 * is tried but skipped quietly when its contents are no report.
 */
static bool
dmarc_part_wanted(const struct ts_mime_part *part, const char *name,
		  bool *maybe_r)
{
	static const char *const types[] = {
		"gzip", "x-gzip", "zip", "x-zip", "x-zip-compressed", "xml",
	};
	*maybe_r = false;
	if (ts_mime_part_is(part, "text", "xml"))
		return true;
	if (ts_mime_part_is(part, "application", NULL)) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (ts_mime_part_is(part, "application", types[i]))
				return true;
	}
	if (name != NULL &&
	    (dmarc_name_ends(name, ".xml") || dmarc_name_ends(name, ".gz") ||
	     dmarc_name_ends(name, ".zip")))
		return true;
	if (ts_mime_part_is(part, "application", "octet-stream")) {
		*maybe_r = true;
		return true;
	}
	return false;
}

static void
dmarc_unpack_part(const unsigned char *data, const struct ts_mime_part *part,
		  uint64_t max, struct dmarc_report_docs *docs)
{
	for (const struct ts_mime_part *c = part->children; c != NULL;
	     c = c->next)
		dmarc_unpack_part(data, c, max, docs);
	if (part->kind != TS_MIME_PART_LEAF ||
	    docs->count >= DMARC_UNPACK_MAX_DOCS)
		return;
	const char *name = dmarc_part_name(part);
	bool maybe;
	if (!dmarc_part_wanted(part, name, &maybe))
		return;
	struct ts_mime_buf body = { 0 };
	struct ts_mime_text_decoder *dec = ts_mime_binary_decoder_new(part);
	ts_mime_text_decoder_feed(dec, (const char *)data + part->body_start,
				  (size_t)part->body_size, &body);
	ts_mime_text_decoder_finish(&dec, &body);
	if (body.len == 0) {
		if (!maybe)
			dmarc_doc_error(docs, name, "empty attachment");
	} else if (!dmarc_unpack_blob((const unsigned char *)body.data,
				      body.len, name, max, docs) &&
		   !maybe) {
		dmarc_doc_error(docs, name,
				"attachment is not gzip, zip or XML");
	}
	ts_mime_buf_free(&body);
}

int
dmarc_report_unpack(const void *data, size_t len, uint64_t max_size,
		    struct dmarc_report_docs *docs)
{
	size_t before = docs->count;
	if (!dmarc_unpack_blob(data, len, NULL, max_size, docs)) {
		struct ts_mime_message *msg =
			ts_mime_parse_buffer(data, len, NULL);
		dmarc_unpack_part(data, msg->root, max_size, docs);
		ts_mime_message_free(&msg);
	}
	return docs->count > before ? 0 : TS_E_NOTFOUND;
}
