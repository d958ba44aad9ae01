/*
 * kernel/mime/mime-private.h — what the files of kernel/mime/ share and
 * the public header does not say: small string helpers and the
 * structural-field parsing the tree builder uses.
 */
#ifndef TS_KERNEL_MIME_PRIVATE_H
#define TS_KERNEL_MIME_PRIVATE_H

#include <tessera/mime.h>

/* RFC 5322 white space (and the CR of a CRLF some callers leave in). */
static inline bool
ts__mime_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* A NUL-terminated malloc'd copy of s[0..len) with white space trimmed. */
char *ts__mime_strdup_trim(const char *s, size_t len);

/* Append the UTF-8 encoding of code point cp. */
void ts__mime_buf_add_utf8(struct ts_mime_buf *b, uint32_t cp);

/*
 * Append s as UTF-8: valid sequences as they are, every invalid byte as
 * U+FFFD.  Returns how many bytes at the end were an incomplete sequence
 * left out (only when keep_tail is true; otherwise they are replaced).
 */
size_t ts__mime_add_valid_utf8(struct ts_mime_buf *b, const char *s, size_t len,
			       bool keep_tail);

/*
 * Set the structural fields of part (Content-*) and, when part->is_message,
 * its envelope, from the header in hdr (len bytes, complete lines).
 * in_digest: the parent is multipart/digest (default type message/rfc822).
 */
void ts__mime_part_parse_header(struct ts_mime_part *part, const char *hdr,
				size_t len, bool in_digest);

/* Free one part's fields (not its children). */
void ts__mime_part_free_fields(struct ts_mime_part *part);

#endif
