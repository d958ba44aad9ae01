/*
 * modules/imap/structure.h — IMAP's views of a parsed message: ENVELOPE
 * and BODYSTRUCTURE / BODY (RFC 3501 section 7.4.2, RFC 9051 section
 * 7.5.2), written from the tree of tessera/mime.h, and the string
 * quoting rules they use.
 *
 * Pure functions: no session, no store, no loop.
 */
#ifndef IMAP_STRUCTURE_H
#define IMAP_STRUCTURE_H

#include <tessera/mime.h>

/*
 * A growable string.  Zero-initialise it; data is NUL-terminated once
 * anything was appended; free it with imap_str_free.
 */
struct imap_str {
	char *data;
	size_t len, cap;
};

void imap_str_append(struct imap_str *s, const char *data, size_t len);
void imap_str_append_cstr(struct imap_str *s, const char *cstr);
/* Free the data and zero the string. */
void imap_str_free(struct imap_str *s);

/*
 * An IMAP string (RFC 3501 section 4.3): a quoted string when every byte
 * is 7-bit, not NUL, CR or LF ('"' and '\' escaped), a literal
 * ("{n}\r\n" then the bytes) otherwise.
 */
void imap_str_append_string(struct imap_str *s, const char *data, size_t len);
/* NIL for NULL, else imap_str_append_string of the NUL-terminated cstr. */
void imap_str_append_nstring(struct imap_str *s, const char *cstr);

/*
 * The ENVELOPE of message (a node with is_message set: the root, or the
 * child of a message/rfc822 part): fields raw (not decoded), absent
 * fields NIL, Sender and Reply-To copied from From when absent or empty,
 * address lists parsed (groups as RFC 3501 describes them; a missing
 * local part or domain shows as "MISSING_MAILBOX" / "MISSING_DOMAIN", as
 * Dovecot does).
 */
void imap_structure_envelope(struct imap_str *out,
			     const struct ts_mime_part *message);

/*
 * BODYSTRUCTURE (extended true: with the extension data MD5, disposition,
 * language, location for single parts; parameters, disposition, language,
 * location for multiparts) or BODY (extended false) of part, usually the
 * root.  Types, subtypes, parameters and encodings are written as the
 * message has them (not case-folded); defaults are "text" "plain"
 * ("charset" "us-ascii") and "7bit", as Dovecot writes them; a text part
 * without a charset gets ("charset" "us-ascii") appended to its
 * parameters.  A multipart with no parts (no boundary, no delimiter, or
 * too deep) is written with one empty text/plain part, since the grammar
 * needs at least one.
 */
void imap_structure_body(struct imap_str *out, const struct ts_mime_part *part,
			 bool extended);

#endif
