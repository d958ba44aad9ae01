/*
 * kernel/mime/section.c — IMAP body section specifications ("1.2",
 * "3.HEADER", "2.MIME", "TEXT") resolved to byte ranges of a parsed
 * message (RFC 3501 and RFC 9051, section 6.4.5).
 *
 * Only the numbering and the range live here; filtering HEADER.FIELDS and
 * decoding BINARY are the IMAP module's, with ts_mime_header_next and the
 * decoders of codec.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/mime/mime-private.h"

/* Child n (1-based) of a multipart, or NULL. */
static const struct ts_mime_part *
section_child(const struct ts_mime_part *mp, unsigned long n)
{
	const struct ts_mime_part *c = mp->children;
	for (unsigned long k = 1; c != NULL && k < n; k++)
		c = c->next;
	return c;
}

/*
 * Part n inside container: a multipart's child n, or the container
 * itself for n = 1 (a non-multipart message or body has only part 1).
 */
static const struct ts_mime_part *
section_select(const struct ts_mime_part *container, unsigned long n)
{
	if (container->kind == TS_MIME_PART_MULTIPART)
		return section_child(container, n);
	return n == 1 ? container : NULL;
}

int
ts_mime_section_find(const struct ts_mime_message *msg, const char *spec,
		     struct ts_mime_section *section_r)
{
	const struct ts_mime_part *root = msg->root, *part = NULL;
	const char *s = spec;
	int found = 0;

	memset(section_r, 0, sizeof(*section_r));
	/* Part numbers: nz-number *("." nz-number). */
	while (*s >= '0' && *s <= '9') {
		if (*s == '0')
			return TS_E_INVAL;
		unsigned long n = 0;
		while (*s >= '0' && *s <= '9') {
			if (n > 1000000)
				return TS_E_INVAL;
			n = n * 10 + (unsigned long)(*s - '0');
			s++;
		}
		if (found == 0) {
			const struct ts_mime_part *container;
			if (part == NULL)
				container = root;
			else if (part->kind == TS_MIME_PART_MESSAGE)
				container = part->children;
			else if (part->kind == TS_MIME_PART_MULTIPART)
				container = part;
			else
				container = NULL;
			part = container ? section_select(container, n) : NULL;
			if (part == NULL)
				found = TS_E_NOTFOUND;
		}
		if (part == NULL)
			part = root; /* keep parsing to validate the spec */
		if (*s == '\0')
			break;
		if (*s != '.')
			return TS_E_INVAL;
		s++;
		if (*s == '\0')
			return TS_E_INVAL;
	}
	bool numbered = s != spec;

	enum ts_mime_section_kind kind;
	if (*s == '\0')
		kind = numbered ? TS_MIME_SECTION_BODY : TS_MIME_SECTION_ALL;
	else if (strcasecmp(s, "HEADER") == 0)
		kind = TS_MIME_SECTION_HEADER;
	else if (strcasecmp(s, "HEADER.FIELDS") == 0)
		kind = TS_MIME_SECTION_HEADER_FIELDS;
	else if (strcasecmp(s, "HEADER.FIELDS.NOT") == 0)
		kind = TS_MIME_SECTION_HEADER_FIELDS_NOT;
	else if (strcasecmp(s, "TEXT") == 0)
		kind = TS_MIME_SECTION_TEXT;
	else if (strcasecmp(s, "MIME") == 0 && numbered)
		kind = TS_MIME_SECTION_MIME;
	else
		return TS_E_INVAL;
	if (found != 0)
		return found;

	section_r->kind = kind;
	switch (kind) {
	case TS_MIME_SECTION_ALL:
		section_r->part = root;
		section_r->start = root->header_start;
		section_r->end = root->body_end;
		return 0;
	case TS_MIME_SECTION_BODY:
		section_r->part = part;
		section_r->start = part->body_start;
		section_r->end = part->body_end;
		return 0;
	case TS_MIME_SECTION_MIME:
		section_r->part = part;
		section_r->start = part->header_start;
		section_r->end = part->body_start;
		return 0;
	default:
		break;
	}
	/* HEADER, HEADER.FIELDS[.NOT], TEXT: of the message the numbers name.
	 */
	const struct ts_mime_part *m = root;
	if (numbered) {
		if (part->kind != TS_MIME_PART_MESSAGE)
			return TS_E_NOTFOUND;
		m = part->children;
	}
	section_r->part = m;
	if (kind == TS_MIME_SECTION_TEXT) {
		section_r->start = m->body_start;
		section_r->end = m->body_end;
	} else {
		section_r->start = m->header_start;
		section_r->end = m->body_start;
	}
	return 0;
}
