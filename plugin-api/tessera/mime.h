/*
 * tessera/mime.h — reading Internet messages: header fields, addresses,
 * encoded words, MIME structure, transfer encodings and decoded text.
 *
 * One library for every module that looks inside a message: IMAP (ENVELOPE,
 * BODYSTRUCTURE, body sections, SEARCH), DKIM (header fields as written),
 * DMARC (the From domain), the junk filter and webmail (decoded text).
 *
 * The structure parser reads a message as a byte stream (the store's
 * prefix followed by the message file, or one memory buffer) in chunks and
 * keeps only offsets, counts and the structural header fields, never the
 * bodies: its memory is bounded by the number of parts, not by the size of
 * the message.  Malformed MIME never fails a parse; each oddity has a
 * defined outcome, documented below.
 *
 * Everything here is pure computation plus, for ts_mime_parse_fd, blocking
 * reads of a file: call that one from the work pool, never from the loop.
 * Nothing keeps global state; every function is safe on any thread for
 * distinct objects.
 */
#ifndef TESSERA_MIME_H
#define TESSERA_MIME_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- a growable byte buffer (decoder output) ------------------------------ */

/*
 * Bytes with a NUL after the last one (not counted in len).  Zero-initialise
 * it; free data with free() (or ts_mime_buf_free).
 */
struct ts_mime_buf {
	char *data;
	size_t len, cap;
};

/* Append n bytes (data may be NULL only when n is 0). */
void ts_mime_buf_add(struct ts_mime_buf *b, const void *data, size_t n);
/* Free the buffer's data and zero it. */
void ts_mime_buf_free(struct ts_mime_buf *b);

/* --- header fields -------------------------------------------------------- */

/* One header field as ts_mime_header_next found it, pointing into the input. */
struct ts_mime_field {
	const char *name; /* as written, without the colon; not NUL-ended */
	size_t name_len;
	/*
	 * The raw value: from after the colon to before the line end of the
	 * field's last line, folding line breaks included (not NUL-ended).
	 */
	const char *value;
	size_t value_len;
	/* Offsets of the field in the input: first byte, after its line end. */
	size_t start, end;
};

/* Iterator over the header fields of a buffer; see ts_mime_header_init. */
struct ts_mime_header_iter {
	const char *data;
	size_t len, pos;
	bool done;
};

/*
 * Start iterating over the header in data (len bytes): the fields up to the
 * first empty line or the end of data.  A line that is not a field (no
 * colon) is skipped; a continuation line before any field is skipped too.
 * Line ends are LF or CRLF.
 */
void ts_mime_header_init(struct ts_mime_header_iter *it, const char *data,
			 size_t len);

/*
 * The next field into *field; false at the end of the header.  After the
 * last field, it->pos is the offset of the body (after the empty line), or
 * len when there is no empty line.
 */
bool ts_mime_header_next(struct ts_mime_header_iter *it,
			 struct ts_mime_field *field);

/*
 * Unfold a raw field value (RFC 5322 section 2.2.3): every CRLF or LF
 * followed by white space is removed, then leading and trailing white space
 * (and a stray CR) is trimmed.  Returns a NUL-terminated string the caller
 * frees; its length goes to *len_r if len_r is not NULL.  NUL bytes in the
 * value are kept (count with len_r).
 */
char *ts_mime_unfold(const char *value, size_t len, size_t *len_r);

/*
 * Case-insensitively compare a field name to name (NUL-terminated).
 */
bool ts_mime_field_is(const struct ts_mime_field *field, const char *name);

/*
 * Append to out the fields of the header in data (len bytes) whose names
 * are in names[0..n) (case-insensitive), or with exclude those that are
 * not, each exactly as written (folding kept), then the empty line that
 * ends a header ("\r\n"): IMAP's HEADER.FIELDS and HEADER.FIELDS.NOT.
 */
void ts_mime_header_filter(const char *data, size_t len,
			   const char *const *names, size_t n, bool exclude,
			   struct ts_mime_buf *out);

/* --- RFC 2047 encoded words, charsets ------------------------------------- */

/*
 * Convert len bytes in charset (any name glibc iconv knows; "us-ascii",
 * "utf-8" and unknown 8-bit bytes are handled without it) to UTF-8,
 * appending to out.  Invalid or unconvertible input becomes U+FFFD.
 * Returns false, appending nothing, when the charset is unknown.
 */
bool ts_mime_charset_to_utf8(const char *charset, const char *in, size_t len,
			     struct ts_mime_buf *out);

/*
 * Decode the RFC 2047 encoded words in an (unfolded) header value to UTF-8:
 * Q and B encodings, any charset iconv knows, a "*language" suffix ignored;
 * white space between two adjacent encoded words dropped, and the bytes of
 * adjacent words in one charset joined before conversion (a character may
 * be split between words).  A malformed word or one in an unknown charset
 * is left as written, and so is the text outside words (8-bit bytes
 * included: validate it if you need UTF-8); bytes inside a word that do
 * not convert become U+FFFD.  Returns a NUL-terminated string the caller frees,
 * its length in *len_r if not NULL.
 */
char *ts_mime_decode_words(const char *s, size_t len, size_t *len_r);

/* --- addresses (RFC 5322 section 3.4) ------------------------------------- */

enum ts_mime_address_kind {
	TS_MIME_ADDRESS_MAILBOX = 0, /* a mailbox (name, route, local@domain) */
	TS_MIME_ADDRESS_GROUP_START, /* "name:"; mailbox holds the group name */
	TS_MIME_ADDRESS_GROUP_END, /* ";" (every field NULL) */
};

/*
 * One element of a parsed address list.  Strings are NUL-terminated and
 * owned by the list.  Quoted strings are unquoted (backslash escapes
 * removed); encoded words are not decoded (use ts_mime_decode_words).
 */
struct ts_mime_address {
	struct ts_mime_address *next;
	enum ts_mime_address_kind kind;
	/*
	 * Display name: the phrase before "<", its words joined by one space;
	 * failing that the last comment; NULL when there is neither.
	 */
	char *name;
	/* Obsolete source route without the colon ("@a,@b"), or NULL. */
	char *route;
	/* Local part ("" when missing); the group name for GROUP_START. */
	char *mailbox;
	/* Domain ("" when missing, NULL for groups), as written. */
	char *domain;
	/* The element did not parse cleanly; the fields are a best guess. */
	bool invalid;
};

/*
 * Parse an address list (From, To, Cc, Sender, Reply-To, Bcc; raw or
 * unfolded value), tolerating real-world breakage: missing domains,
 * unquoted specials in display names, unbalanced "<" or quotes, empty
 * elements, groups without their ";".  Never fails; returns the list
 * (NULL when it has no address) for ts_mime_address_free.  Element count
 * is bounded (TS_MIME_MAX_ADDRESSES); the rest is ignored.
 */
#define TS_MIME_MAX_ADDRESSES 1000
struct ts_mime_address *ts_mime_address_parse(const char *s, size_t len);

/* Free a list from ts_mime_address_parse and set *list to NULL. */
void ts_mime_address_free(struct ts_mime_address **list);

/* --- transfer encodings (streaming) --------------------------------------- */

/*
 * Quoted-printable decoding (RFC 2045 section 6.7), lenient: "=" followed
 * by anything but two hex digits or a line end stays as written, trailing
 * white space before a line end is removed, soft line breaks are joined.
 * Zero-initialise the state, feed any number of chunks, then call
 * ts_mime_qp_finish.  Chunk boundaries may fall anywhere.
 */
struct ts_mime_qp {
	char pending[80]; /* "=" and a hex digit, or held white space */
	size_t npending;
};
void ts_mime_qp_decode(struct ts_mime_qp *qp, const char *in, size_t len,
		       struct ts_mime_buf *out);
void ts_mime_qp_finish(struct ts_mime_qp *qp, struct ts_mime_buf *out);

/*
 * Base64 decoding for MIME bodies (RFC 2045 section 6.8), lenient: bytes
 * outside the alphabet are skipped, "=" ends a quantum (what it completes
 * is emitted) and decoding resumes after it.  Same calling pattern as the
 * quoted-printable decoder.  (ts_base64_decode in tessera/sasl.h is the
 * strict one-shot decoder for protocol tokens.)
 */
struct ts_mime_base64 {
	uint32_t bits;
	unsigned int nbits_chars; /* characters in the current quantum */
};
void ts_mime_base64_decode(struct ts_mime_base64 *b, const char *in, size_t len,
			   struct ts_mime_buf *out);
void ts_mime_base64_finish(struct ts_mime_base64 *b, struct ts_mime_buf *out);

/* --- MIME structure
 * ------------------------------------------------------------ */

/* A Content-Type or Content-Disposition parameter. */
struct ts_mime_param {
	/*
	 * The name as written, RFC 2231 section numbers removed, with a
	 * trailing "*" when the value is in RFC 2231 extended form
	 * ("filename*").
	 */
	char *name;
	/*
	 * The value as written, quotes removed, RFC 2231 continuations
	 * joined; for an extended value "charset'language'%xx…" as sent.
	 * This is what IMAP's BODYSTRUCTURE shows.
	 */
	char *raw_value;
	/*
	 * The value decoded to UTF-8 (RFC 2231 charset and %-escapes; RFC
	 * 2047 words, which some mailers put in quoted values).
	 */
	char *value;
	/* The RFC 2231 language, or NULL. */
	char *language;
};

/* What a part holds, for walking the tree. */
enum ts_mime_part_kind {
	TS_MIME_PART_LEAF = 0, /* a body we do not look into */
	TS_MIME_PART_MULTIPART, /* children are its body parts */
	TS_MIME_PART_MESSAGE, /* message/rfc822 or message/global: one child,
			       * the encapsulated message */
};

/*
 * The raw (unfolded, not decoded) header fields of a message for IMAP's
 * ENVELOPE; NULL where the field is absent.  The first occurrence counts.
 */
struct ts_mime_envelope {
	char *date, *subject, *from, *sender, *reply_to, *to, *cc, *bcc,
		*in_reply_to, *message_id;
};

/*
 * One node of the tree.  Offsets are in the parsed stream (prefix then
 * file).  header_start..body_start is the header including the empty line
 * that ends it (IMAP's HEADER / MIME); body_start..body_end the body
 * (IMAP's TEXT, or the part's contents).  A part inside a multipart ends
 * before the line end that precedes the next boundary line (RFC 2046
 * section 5.1.1).  A message node (the root, or the child of a
 * message/rfc822 part) starts where its container's body starts.
 */
struct ts_mime_part {
	struct ts_mime_part *parent, *children, *next;
	unsigned int nchildren;
	unsigned int depth; /* 0 for the root */
	enum ts_mime_part_kind kind;
	/* The root or an encapsulated message: envelope is set. */
	bool is_message;

	uint64_t header_start, body_start, body_end;
	/* body_end - body_start */
	uint64_t body_size;
	/*
	 * Lines of the body: the LFs in it, as Dovecot counts them (IMAP's
	 * body-fld-lines).  An unterminated last line does not count, so
	 * neither does the last line of a part followed by a boundary (its
	 * line end belongs to the boundary).
	 */
	uint64_t body_lines;

	/*
	 * Content-Type: type and subtype as written (not case-folded); when
	 * the field is absent or unusable, the RFC 2045 default "text" /
	 * "plain" (charset us-ascii), or "message" / "rfc822" inside
	 * multipart/digest, and content_type_default is true.
	 */
	char *type, *subtype;
	bool content_type_default;
	struct ts_mime_param *params;
	size_t nparams;
	/* Content-Transfer-Encoding as written (trimmed), or NULL. */
	char *encoding;
	char *id, *description, *md5, *location; /* unfolded, or NULL */
	/* Content-Disposition value (e.g. "attachment") or NULL, params. */
	char *disposition;
	struct ts_mime_param *disposition_params;
	size_t ndisposition_params;
	/* Content-Language tags in order (comma separated in the field). */
	char **languages;
	size_t nlanguages;

	struct ts_mime_envelope *envelope; /* is_message only */
};

/* Bounds on what the parser builds; zero fields take the defaults. */
struct ts_mime_limits {
	/*
	 * Nesting depth (multiparts and encapsulated messages); a part deeper
	 * than this is a leaf whose body is not looked into.  Default 50.
	 */
	unsigned int max_depth;
	/*
	 * Parts in the tree.  Once reached, no boundary is recognised any
	 * more: the rest of the stream belongs to the current part, and
	 * every open part ends at the end of the stream.  Default 5000.
	 */
	unsigned int max_parts;
	/*
	 * Bytes of one part's header kept for parsing; fields past it are
	 * ignored (the header still ends at its empty line).  Default 256 KiB.
	 */
	size_t max_header_size;
	/* Bytes per read() in ts_mime_parse_fd; default 64 KiB. */
	size_t chunk_size;
};

/* A parsed message: the tree and what it was parsed from. */
struct ts_mime_message {
	struct ts_mime_part *root;
	uint64_t size; /* bytes in the stream */
	unsigned int nparts;
	/* A limit cut the parse short (the tree is still consistent). */
	bool truncated;
};

/* Incremental parser; see ts_mime_parser_new. */
struct ts_mime_parser;

/*
 * A parser fed with consecutive chunks of one message (ts_mime_parser_feed),
 * then finished (ts_mime_parser_finish).  limits may be NULL (defaults).
 */
struct ts_mime_parser *ts_mime_parser_new(const struct ts_mime_limits *limits);

/* Feed the next len bytes of the stream; chunks may split anything. */
void ts_mime_parser_feed(struct ts_mime_parser *parser, const void *data,
			 size_t len);

/*
 * End of stream: close every open part and hand the tree over (caller
 * frees with ts_mime_message_free).  Frees the parser and sets *parser to
 * NULL.  Never fails.
 */
struct ts_mime_message *ts_mime_parser_finish(struct ts_mime_parser **parser);

/* Free a parser without building a result; sets *parser to NULL. */
void ts_mime_parser_free(struct ts_mime_parser **parser);

/* Parse a message in memory; never fails.  limits may be NULL. */
struct ts_mime_message *
ts_mime_parse_buffer(const void *data, size_t len,
		     const struct ts_mime_limits *limits);

/*
 * Parse prefix (prefix_len bytes, may be 0; e.g. from ts_store_message_read)
 * followed by everything fd has from its current offset, reading
 * limits->chunk_size bytes at a time.  Blocking: work pool only.  Returns 0
 * and *msg_r, or TS_E_IO with a reason in *error_r (static or thread-safe
 * text) when a read fails.  fd is not closed.
 */
int ts_mime_parse_fd(const char *prefix, size_t prefix_len, int fd,
		     const struct ts_mime_limits *limits,
		     struct ts_mime_message **msg_r, const char **error_r);

/* Free a message tree and set *msg to NULL. */
void ts_mime_message_free(struct ts_mime_message **msg);

/* Case-insensitive test of a part's type and subtype (subtype may be NULL). */
bool ts_mime_part_is(const struct ts_mime_part *part, const char *type,
		     const char *subtype);

/* A parameter's value (decoded) by case-insensitive name, or NULL. */
const char *ts_mime_param_get(const struct ts_mime_param *params, size_t n,
			      const char *name);

/*
 * Parse a Content-Type style value ("type/subtype; a=b; c*0=…") into
 * malloc'd *type_r / *subtype_r (NULL when unusable) and a parameter
 * array (*params_r, *nparams_r; free with ts_mime_params_free).  For
 * Content-Disposition pass subtype_r NULL: the first token goes to *type_r.
 */
void ts_mime_content_type_parse(const char *value, size_t len, char **type_r,
				char **subtype_r,
				struct ts_mime_param **params_r,
				size_t *nparams_r);
void ts_mime_params_free(struct ts_mime_param *params, size_t n);

/* --- IMAP sections (RFC 3501 section 6.4.5, RFC 9051 section 6.4.5) ------- */

enum ts_mime_section_kind {
	TS_MIME_SECTION_ALL = 0, /* "" : the whole message */
	TS_MIME_SECTION_BODY, /* "1.2": the part's body */
	TS_MIME_SECTION_HEADER, /* "HEADER", "1.HEADER" */
	TS_MIME_SECTION_HEADER_FIELDS, /* the header; the caller filters */
	TS_MIME_SECTION_HEADER_FIELDS_NOT,
	TS_MIME_SECTION_TEXT, /* "TEXT", "1.TEXT": a message's body */
	TS_MIME_SECTION_MIME, /* "1.MIME": the part's own header */
};

/* Where a section is: a byte range of the stream and the part it names. */
struct ts_mime_section {
	enum ts_mime_section_kind kind;
	uint64_t start, end;
	/*
	 * The part the numbers lead to (for BINARY: its encoding); for
	 * HEADER/TEXT the message node whose header/body is meant.
	 */
	const struct ts_mime_part *part;
};

/*
 * Resolve an IMAP section specification: part numbers separated by dots,
 * optionally followed by HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or
 * MIME (case-insensitive; MIME only after a number; a field list after
 * HEADER.FIELDS is not part of spec).  "1" of a non-multipart message is
 * its body; numbers after a message/rfc822 part address the encapsulated
 * message's parts.  Returns 0 and *section_r, TS_E_INVAL for a malformed
 * spec, or TS_E_NOTFOUND when the part does not exist (IMAP answers an
 * empty string for that).
 */
int ts_mime_section_find(const struct ts_mime_message *msg, const char *spec,
			 struct ts_mime_section *section_r);

/* --- decoded text and search ---------------------------------------------- */

/*
 * Streaming decoder of a text part's body to UTF-8: transfer encoding
 * (quoted-printable, base64, or none) then charset (the part's charset
 * parameter; us-ascii when absent).  Feed the raw body bytes
 * (body_start..body_end); the text is appended to out.
 */
struct ts_mime_text_decoder;

/*
 * A decoder for part (its encoding and charset are read now; part may be
 * freed afterwards).  Parts with an unknown charset decode as UTF-8 with
 * invalid bytes replaced.
 */
struct ts_mime_text_decoder *
ts_mime_text_decoder_new(const struct ts_mime_part *part);
void ts_mime_text_decoder_feed(struct ts_mime_text_decoder *d, const void *in,
			       size_t len, struct ts_mime_buf *out);
/* Flush what is held back, append it to out and free *d (set to NULL). */
void ts_mime_text_decoder_finish(struct ts_mime_text_decoder **d,
				 struct ts_mime_buf *out);

/*
 * Whether the library can undo part's Content-Transfer-Encoding: absent,
 * 7bit, 8bit, binary, quoted-printable or base64 (IMAP's BINARY answers
 * [UNKNOWN-CTE] otherwise).
 */
bool ts_mime_encoding_known(const struct ts_mime_part *part);

/*
 * A decoder that undoes only the transfer encoding (IMAP BINARY, saving
 * an attachment): same calls as the text decoder, output bytes as they
 * are (no charset conversion, no UTF-8 check).  An unknown encoding
 * passes the bytes through.
 */
struct ts_mime_text_decoder *
ts_mime_binary_decoder_new(const struct ts_mime_part *part);

/*
 * Case-insensitive substring search in a UTF-8 stream: ASCII letters and
 * the simple case mappings of Latin-1, Latin Extended-A, Greek and
 * Cyrillic compare equal.  Feed consecutive chunks (UTF-8 sequences may be
 * split between chunks); ts_mime_matcher_feed returns true once the needle
 * has been seen (and keeps returning true).  An empty needle matches at
 * once.
 */
struct ts_mime_matcher;
struct ts_mime_matcher *ts_mime_matcher_new(const char *needle, size_t len);
bool ts_mime_matcher_feed(struct ts_mime_matcher *m, const char *text,
			  size_t len);
/* Forget the stream seen so far (and any match) to search a new one. */
void ts_mime_matcher_reset(struct ts_mime_matcher *m);
void ts_mime_matcher_free(struct ts_mime_matcher **m);

/* One-shot: does haystack contain needle, case-insensitively (as above)? */
bool ts_mime_contains(const char *haystack, size_t hlen, const char *needle,
		      size_t nlen);

/*
 * SEARCH over a message in memory (data, len; tree from parsing it).
 * TS_MIME_SEARCH_BODY looks in the decoded text of every text part
 * (message/rfc822 parts included, their headers decoded too);
 * TS_MIME_SEARCH_TEXT also in the top-level header (encoded words decoded).
 */
enum ts_mime_search_scope {
	TS_MIME_SEARCH_BODY = 0,
	TS_MIME_SEARCH_TEXT,
};
bool ts_mime_search(const struct ts_mime_message *msg, const void *data,
		    size_t len, enum ts_mime_search_scope scope,
		    const char *needle, size_t nlen);

/*
 * The same over prefix + fd (reads with pread from offset 0 of the file,
 * so the parse's offsets apply); blocking: work pool only.  Returns 1 when
 * found, 0 when not, TS_E_IO when reading fails.
 */
int ts_mime_search_fd(const struct ts_mime_message *msg, const char *prefix,
		      size_t prefix_len, int fd,
		      enum ts_mime_search_scope scope, const char *needle,
		      size_t nlen);

#ifdef __cplusplus
}
#endif
#endif
