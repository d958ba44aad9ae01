/*
 * modules/imap/structure.c — writes ENVELOPE and BODYSTRUCTURE / BODY
 * from the MIME tree the kernel parsed (tessera/mime.h), with IMAP's
 * string quoting.
 *
 * What a field means and where a part starts is the kernel library's
 * business; this file only knows the IMAP grammar (RFC 3501 section 9,
 * RFC 9051 section 9) and the choices real servers make where the grammar
 * leaves room (Dovecot is the reference clients are used to).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modules/imap/structure.h"

/* --- strings -------------------------------------------------------------- */

void
imap_str_append(struct imap_str *s, const char *data, size_t len)
{
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < s->len + len + 1)
			cap *= 2;
		s->data = ts_xrealloc(s->data, cap);
		s->cap = cap;
	}
	if (len > 0)
		memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
}

void
imap_str_append_cstr(struct imap_str *s, const char *cstr)
{
	imap_str_append(s, cstr, strlen(cstr));
}

void
imap_str_free(struct imap_str *s)
{
	free(s->data);
	s->data = NULL;
	s->len = s->cap = 0;
}

void
imap_str_append_string(struct imap_str *s, const char *data, size_t len)
{
	bool literal = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) {
			literal = true;
			break;
		}
	}
	if (literal) {
		char head[32];
		int n = snprintf(head, sizeof(head), "{%zu}\r\n", len);
		imap_str_append(s, head, (size_t)n);
		imap_str_append(s, data, len);
		return;
	}
	imap_str_append(s, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '"' || data[i] == '\\') {
			imap_str_append(s, data + run, i - run);
			imap_str_append(s, "\\", 1);
			run = i;
		}
	}
	imap_str_append(s, data + run, len - run);
	imap_str_append(s, "\"", 1);
}

void
imap_str_append_nstring(struct imap_str *s, const char *cstr)
{
	if (cstr == NULL)
		imap_str_append(s, "NIL", 3);
	else
		imap_str_append_string(s, cstr, strlen(cstr));
}

/* --- ENVELOPE ------------------------------------------------------------- */

/* The address list of a field, or NULL (absent, empty, no address). */
static struct ts_mime_address *
structure_addresses(const char *value)
{
	if (value == NULL)
		return NULL;
	return ts_mime_address_parse(value, strlen(value));
}

static void
structure_address_list(struct imap_str *out, struct ts_mime_address *list)
{
	if (list == NULL) {
		imap_str_append_cstr(out, "NIL");
		return;
	}
	imap_str_append(out, "(", 1);
	for (struct ts_mime_address *a = list; a != NULL; a = a->next) {
		imap_str_append(out, "(", 1);
		switch (a->kind) {
		case TS_MIME_ADDRESS_GROUP_START:
			imap_str_append_cstr(out, "NIL NIL ");
			imap_str_append_nstring(out, a->mailbox);
			imap_str_append_cstr(out, " NIL");
			break;
		case TS_MIME_ADDRESS_GROUP_END:
			imap_str_append_cstr(out, "NIL NIL NIL NIL");
			break;
		case TS_MIME_ADDRESS_MAILBOX:
			imap_str_append_nstring(out, a->name);
			imap_str_append(out, " ", 1);
			imap_str_append_nstring(out, a->route);
			imap_str_append(out, " ", 1);
			imap_str_append_nstring(
				out, a->mailbox[0] != '\0' ? a->mailbox
							   : "MISSING_MAILBOX");
			imap_str_append(out, " ", 1);
			imap_str_append_nstring(
				out, a->domain[0] != '\0' ? a->domain
							  : "MISSING_DOMAIN");
			break;
		}
		imap_str_append(out, ")", 1);
	}
	imap_str_append(out, ")", 1);
}

void
imap_structure_envelope(struct imap_str *out,
			const struct ts_mime_part *message)
{
	static const struct ts_mime_envelope none = { 0 };
	const struct ts_mime_envelope *e =
		message->envelope ? message->envelope : &none;

	struct ts_mime_address *from = structure_addresses(e->from);
	struct ts_mime_address *sender = structure_addresses(e->sender);
	struct ts_mime_address *reply_to = structure_addresses(e->reply_to);
	struct ts_mime_address *to = structure_addresses(e->to);
	struct ts_mime_address *cc = structure_addresses(e->cc);
	struct ts_mime_address *bcc = structure_addresses(e->bcc);

	imap_str_append(out, "(", 1);
	imap_str_append_nstring(out, e->date);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, e->subject);
	imap_str_append(out, " ", 1);
	structure_address_list(out, from);
	imap_str_append(out, " ", 1);
	/* RFC 3501 section 7.4.2: Sender and Reply-To default to From. */
	structure_address_list(out, sender ? sender : from);
	imap_str_append(out, " ", 1);
	structure_address_list(out, reply_to ? reply_to : from);
	imap_str_append(out, " ", 1);
	structure_address_list(out, to);
	imap_str_append(out, " ", 1);
	structure_address_list(out, cc);
	imap_str_append(out, " ", 1);
	structure_address_list(out, bcc);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, e->in_reply_to);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, e->message_id);
	imap_str_append(out, ")", 1);

	ts_mime_address_free(&from);
	ts_mime_address_free(&sender);
	ts_mime_address_free(&reply_to);
	ts_mime_address_free(&to);
	ts_mime_address_free(&cc);
	ts_mime_address_free(&bcc);
}

/* --- BODYSTRUCTURE -------------------------------------------------------- */

/* A text part without charset gets ("charset" "us-ascii") (Dovecot). */
static void
structure_params(struct imap_str *out, const struct ts_mime_param *params,
		 size_t n, bool add_charset)
{
	bool has_charset = false;
	for (size_t k = 0; k < n; k++)
		if (strcasecmp(params[k].name, "charset") == 0)
			has_charset = true;
	if (n == 0 && !add_charset) {
		imap_str_append_cstr(out, "NIL");
		return;
	}
	imap_str_append(out, "(", 1);
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			imap_str_append(out, " ", 1);
		imap_str_append_nstring(out, params[k].name);
		imap_str_append(out, " ", 1);
		imap_str_append_nstring(out, params[k].raw_value);
	}
	if (add_charset && !has_charset) {
		if (n > 0)
			imap_str_append(out, " ", 1);
		imap_str_append_cstr(out, "\"charset\" \"us-ascii\"");
	}
	imap_str_append(out, ")", 1);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
structure_dsp_lang_loc(struct imap_str *out, const struct ts_mime_part *part)
{
	if (part->disposition == NULL) {
		imap_str_append_cstr(out, "NIL");
	} else {
		imap_str_append(out, "(", 1);
		imap_str_append_nstring(out, part->disposition);
		imap_str_append(out, " ", 1);
		structure_params(out, part->disposition_params,
				 part->ndisposition_params, false);
		imap_str_append(out, ")", 1);
	}
	imap_str_append(out, " ", 1);
	if (part->nlanguages == 0) {
		imap_str_append_cstr(out, "NIL");
	} else {
		imap_str_append(out, "(", 1);
		for (size_t k = 0; k < part->nlanguages; k++) {
			if (k > 0)
				imap_str_append(out, " ", 1);
			imap_str_append_nstring(out, part->languages[k]);
		}
		imap_str_append(out, ")", 1);
	}
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, part->location);
}

static void
structure_number(struct imap_str *out, uint64_t n)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%" PRIu64, n);
	imap_str_append(out, buf, (size_t)len);
}

/* The part written in place of a multipart's missing children. */
static void
structure_empty_part(struct imap_str *out, bool extended)
{
	imap_str_append_cstr(out, "(\"text\" \"plain\" (\"charset\" "
				  "\"us-ascii\") NIL NIL \"7bit\" 0 0");
	if (extended)
		imap_str_append_cstr(out, " NIL NIL NIL NIL");
	imap_str_append(out, ")", 1);
}

void
imap_structure_body(struct imap_str *out, const struct ts_mime_part *part,
		    bool extended)
{
	imap_str_append(out, "(", 1);
	if (part->kind == TS_MIME_PART_MULTIPART) {
		if (part->children == NULL)
			structure_empty_part(out, extended);
		for (const struct ts_mime_part *c = part->children; c != NULL;
		     c = c->next)
			imap_structure_body(out, c, extended);
		imap_str_append(out, " ", 1);
		imap_str_append_nstring(out, part->subtype);
		if (extended) {
			imap_str_append(out, " ", 1);
			structure_params(out, part->params, part->nparams,
					 false);
			imap_str_append(out, " ", 1);
			structure_dsp_lang_loc(out, part);
		}
		imap_str_append(out, ")", 1);
		return;
	}

	bool text = ts_mime_part_is(part, "text", NULL);
	imap_str_append_nstring(out, part->type);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, part->subtype);
	imap_str_append(out, " ", 1);
	structure_params(out, part->params, part->nparams, text);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, part->id);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, part->description);
	imap_str_append(out, " ", 1);
	imap_str_append_nstring(out, part->encoding ? part->encoding : "7bit");
	imap_str_append(out, " ", 1);
	structure_number(out, part->body_size);
	if (part->kind == TS_MIME_PART_MESSAGE) {
		imap_str_append(out, " ", 1);
		imap_structure_envelope(out, part->children);
		imap_str_append(out, " ", 1);
		imap_structure_body(out, part->children, extended);
		imap_str_append(out, " ", 1);
		structure_number(out, part->body_lines);
	} else if (text) {
		imap_str_append(out, " ", 1);
		structure_number(out, part->body_lines);
	}
	if (extended) {
		imap_str_append(out, " ", 1);
		imap_str_append_nstring(out, part->md5);
		imap_str_append(out, " ", 1);
		structure_dsp_lang_loc(out, part);
	}
	imap_str_append(out, ")", 1);
}
